//! Headers of the `admin` command family.
