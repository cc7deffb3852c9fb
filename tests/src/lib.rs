//! Shared harness for the cross-client scenario tests.
