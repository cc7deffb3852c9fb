//! `replicate`: run Replicate models and manage predictions, files and models from a terminal.
//!
//! Built on the blocking client `replicate-ureq`. See `replicate --help` for the commands, the
//! configuration and the exit codes (0 success, 1 prediction failed/canceled/aborted, 2 usage
//! error, 3 API/network error).
// The doc comments of the arguments are clap's `--help` text, where `<https://...>` would print
// its brackets: bare URLs are meant there.
#![allow(rustdoc::bare_urls)]

use std::process::ExitCode;

mod args;
mod chain;
mod commands;
mod exit;
mod input;
mod output;
mod text;
mod typed;
mod web;

fn main() -> ExitCode {
    install_panic_hook();
    let cli = args::parse();
    match commands::dispatch(cli) {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(err) => {
            for line in err.lines() {
                output::note(&line);
            }
            ExitCode::from(err.code)
        }
    }
}

/// A bug must not print a panic message and a backtrace at a user: one line, exit 3.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        output::note(&format!(
            "error: internal error (please report it): {}",
            output::shorten(&payload, 200)
        ));
        std::process::exit(i32::from(exit::RUNTIME));
    }));
}
