//! `replicate account`.

use replicate_protocol::api::GetAccount;

use super::Ctx;
use crate::args::JsonFlag;
use crate::exit::CliError;
use crate::output;
use crate::text::safe_line;

/// Shows the account the token belongs to.
pub fn run(ctx: &Ctx, args: JsonFlag) -> Result<(), CliError> {
    let client = ctx.client()?;
    let account = client.execute(GetAccount::new())?;
    if args.json {
        return output::json(&account);
    }
    let mut s = format!(
        "{:<10} {}\n{:<10} {}\n",
        "username:",
        safe_line(&account.username),
        "type:",
        safe_line(&account.type_)
    );
    if let Some(n) = &account.name {
        s.push_str(&format!("{:<10} {}\n", "name:", safe_line(n)));
    }
    if let Some(g) = &account.github_url {
        s.push_str(&format!("{:<10} {}\n", "github:", safe_line(g)));
    }
    output::out(&s)
}
