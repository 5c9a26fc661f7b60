//! (being built by the store helper)
