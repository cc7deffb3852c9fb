//! `replicate model get|versions OWNER/NAME`.

use replicate_protocol::ModelRef;
use replicate_protocol::api::{GetModel, ListModelVersions};

use super::Ctx;
use crate::args::ModelCommand;
use crate::exit::CliError;
use crate::output::{self, note};

/// Runs a `model` subcommand.
pub fn run(ctx: &Ctx, cmd: ModelCommand) -> Result<(), CliError> {
    let (args, versions) = match cmd {
        ModelCommand::Get(a) => (a, false),
        ModelCommand::Versions(a) => (a, true),
    };
    let model: ModelRef = args
        .model
        .parse()
        .map_err(|e: replicate_ureq::Error| CliError::usage(e.to_string()))?;
    if model.version.is_some() {
        return Err(CliError::usage(format!(
            "expected OWNER/NAME without a version, got {:?}",
            args.model
        )));
    }
    let client = ctx.client()?;
    if versions {
        let mut all = Vec::new();
        for v in client.paginate(ListModelVersions::new(&model.owner, &model.name)) {
            all.push(v?);
        }
        if args.json {
            return output::json(&all);
        }
        if all.is_empty() {
            note(&format!("{model} has no versions."));
        }
        for v in &all {
            output::outln(&format!(
                "{}  {}  cog {}",
                v.id,
                v.created_at.map(output::timestamp).unwrap_or_default(),
                v.cog_version.as_deref().unwrap_or("-")
            ))?;
        }
        return Ok(());
    }
    let m = client.execute(GetModel::new(&model.owner, &model.name))?;
    if args.json {
        return output::json(&m);
    }
    let mut s = String::new();
    let mut field = |name: &str, value: &str| s.push_str(&format!("{name:<16} {value}\n"));
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
