//! Headers of the `send` command family.
