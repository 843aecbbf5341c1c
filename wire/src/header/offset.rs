//! Headers of the `offset` command family.
