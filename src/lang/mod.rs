//! The equation language (see issue 2).
