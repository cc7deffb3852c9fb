//! Downloading outputs: to memory or streamed to files, with a size cap, redirects followed by
//! the [`Download`](replicate_protocol::Download) flow, and never the API token for output
//! hosts. The code is the async client's too, generated once (`download_methods!`).

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, Write};

use crate::Client;

replicate_protocol::download_methods!(;);
