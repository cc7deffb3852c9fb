//! Async Replicate client.
