//! Headers of the `transaction` command family.
