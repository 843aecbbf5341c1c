//! Headers of the `consumer` command family.
