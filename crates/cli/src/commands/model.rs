//! `replicate model get|versions OWNER/NAME`.

use replicate_protocol::ModelRef;
use replicate_protocol::api::{GetModel, ListModelVersions};

use super::{Ctx, print_list};
use crate::args::ModelCommand;
use crate::exit::CliError;
use crate::output;
use crate::text::safe_line;

/// Parses OWNER/NAME (no version).
fn model_ref(arg: &str) -> Result<ModelRef, CliError> {
    let model: ModelRef = arg
        .parse()
        .map_err(|e: replicate_ureq::Error| CliError::usage(e.to_string()))?;
    if model.version.is_some() {
        return Err(CliError::usage(format!(
            "expected OWNER/NAME without a version, got {arg:?}"
        )));
    }
    Ok(model)
}

/// Runs a `model` subcommand.
pub fn run(ctx: &Ctx, cmd: ModelCommand) -> Result<(), CliError> {
    let args = match cmd {
        ModelCommand::Get(a) => a,
        ModelCommand::Versions(a) => {
            let model = model_ref(&a.model)?;
            let client = ctx.client_with(|b| b.max_pages(a.list.max_pages))?;
            let versions = client.paginate(ListModelVersions::new(&model.owner, &model.name));
            let empty = format!("{model} has no versions.");
            return print_list(versions, a.list.json, &empty, |v| {
                format!(
                    "{}  {}  cog {}",
                    safe_line(&v.id),
                    v.created_at.map(output::timestamp).unwrap_or_default(),
                    safe_line(v.cog_version.as_deref().unwrap_or("-"))
                )
            });
        }
    };
    let model = model_ref(&args.model)?;
    let client = ctx.client()?;
    let m = client.execute(GetModel::new(&model.owner, &model.name))?;
    if args.json {
        return output::json(&m);
    }
    let mut s = String::new();
    let mut field =
        |name: &str, value: &str| s.push_str(&format!("{name:<16} {}\n", safe_line(value)));
    field("model:", &m.full_name());
    if let Some(d) = &m.description {
        field("description:", d);
    }
    if let Some(v) = &m.visibility {
        field("visibility:", v);
    }
    if let Some(o) = m.is_official {
        field("official:", if o { "yes" } else { "no" });
    }
    if let Some(n) = m.run_count {
        field("run_count:", &n.to_string());
    }
    if let Some(v) = &m.latest_version {
        field("latest_version:", &v.id);
    }
    if let Some(u) = &m.url {
        field("url:", u);
    }
    output::out(&s)
}
