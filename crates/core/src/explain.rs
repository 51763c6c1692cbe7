//! The decision told to a person (filled in below).
