//! The replicate command line.
fn main() {}
