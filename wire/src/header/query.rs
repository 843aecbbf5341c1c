//! Headers of the `query` command family.
