//! Sans-IO core of the Replicate API client.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod sse;
pub mod webhook;
