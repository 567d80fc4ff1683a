//! The storage interface and its dialects (see issue 3).
