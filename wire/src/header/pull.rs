//! Headers of the `pull` command family.
