//! Configuration (see issue 3).
