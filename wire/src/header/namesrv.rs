//! Headers of the `namesrv` command family.
