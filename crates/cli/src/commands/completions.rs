//! `replicate completions SHELL`: a completion script for the shell, from the grammar itself.

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};
use crate::exit::CliError;
use crate::output;

/// Prints the completion script of `args.shell` on stdout. It needs no token and sends nothing.
pub fn run(args: CompletionsArgs) -> Result<(), CliError> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "replicate", &mut script);
    let script = String::from_utf8(script)
        .map_err(|e| CliError::runtime(format!("the completion script is not UTF-8: {e}")))?;
    output::out(&script)
}
