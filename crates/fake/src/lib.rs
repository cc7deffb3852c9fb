//! A Replicate-compatible fake server.
