//! Blocking Replicate client.
