//! `replicate model get|versions|list|create|delete` (`model schema`: see [`super::schema`]).

use replicate_protocol::ModelRef;
use replicate_protocol::api::{
    CreateModel, DeleteModel, GetModel, ListModelVersions, ListModels, Model, Visibility,
};

use super::{Ctx, print_list};
use crate::args::{ModelArgs, ModelCommand, ModelCreateArgs, VisibilityArg};
use crate::exit::CliError;
use crate::output;
use crate::text::safe_line;

/// Parses OWNER/NAME (no version): a usage error otherwise. `what` names the argument.
pub(super) fn owner_name(arg: &str, what: &str) -> Result<ModelRef, CliError> {
    let model: ModelRef = arg
        .parse()
        .map_err(|e: replicate_ureq::Error| CliError::usage(format!("{what}: {e}")))?;
    if model.version.is_some() {
        return Err(CliError::usage(format!(
            "{what}: expected OWNER/NAME without a version, got {:?}",
            safe_line(arg)
        )));
    }
    Ok(model)
}

/// Parses a model's OWNER/NAME (no version).
fn model_ref(arg: &str) -> Result<ModelRef, CliError> {
    owner_name(arg, "model")
}

/// Runs a `model` subcommand.
pub fn run(ctx: &Ctx, cmd: ModelCommand) -> Result<(), CliError> {
    match cmd {
        ModelCommand::Get(args) => get(ctx, args),
        ModelCommand::Versions(a) => {
            let model = model_ref(&a.model)?;
            let client = ctx.client_with(|b| b.max_pages(a.list.max_pages))?;
            let versions = client.paginate(ListModelVersions::new(&model.owner, &model.name));
            let empty = format!("{model} has no versions.");
            print_list(versions, a.list.json, &empty, |v| {
                format!(
                    "{}  {}  cog {}",
                    safe_line(&v.id),
                    v.created_at.map(output::timestamp).unwrap_or_default(),
                    safe_line(v.cog_version.as_deref().unwrap_or("-"))
                )
            })
        }
        ModelCommand::List(a) => {
            let client = ctx.client_with(|b| b.max_pages(a.max_pages))?;
            let models = client.paginate(ListModels::new());
            print_list(models, a.json, "No models.", model_row)
        }
        ModelCommand::Create(a) => create(ctx, a),
        ModelCommand::Schema(a) => super::schema::show(ctx, a),
        ModelCommand::Delete(a) => {
            let model = model_ref(&a.name)?;
            let client = ctx.client()?;
            client.execute(DeleteModel::new(&model.owner, &model.name))?;
            output::outln(&format!("deleted {model}"))
        }
    }
}

/// One line of `model list`: name, visibility, run count, description.
pub(super) fn model_row(m: &Model) -> String {
    let runs = m
        .run_count
        .map_or_else(|| "-".to_owned(), |n| n.to_string());
    format!(
        "{:<40}  {:<7}  {:>7} runs  {}",
        safe_line(&m.full_name()),
        safe_line(m.visibility.as_deref().unwrap_or("-")),
        runs,
        output::shorten(&safe_line(m.description.as_deref().unwrap_or("")), 80)
    )
    .trim_end()
    .to_owned()
}

/// `model create`.
fn create(ctx: &Ctx, a: ModelCreateArgs) -> Result<(), CliError> {
    let model = model_ref(&a.model)?;
    let visibility = match a.visibility {
        VisibilityArg::Public => Visibility::Public,
        VisibilityArg::Private => Visibility::Private,
    };
    let mut create = CreateModel::new(&model.owner, &model.name, visibility, &a.hardware);
    if let Some(d) = a.description {
        create = create.description(d);
    }
    let client = ctx.client()?;
    let m = client.execute(create)?;
    if a.json {
        return output::json(&m);
    }
    output::out(&model_fields(&m))
}

/// `model get`.
fn get(ctx: &Ctx, args: ModelArgs) -> Result<(), CliError> {
    let model = model_ref(&args.model)?;
    let client = ctx.client()?;
    let m = client.execute(GetModel::new(&model.owner, &model.name))?;
    if args.json {
        return output::json(&m);
    }
    output::out(&model_fields(&m))
}

/// A model, one `field: value` line each.
fn model_fields(m: &Model) -> String {
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
    s
}
