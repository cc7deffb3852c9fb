//! `replicate deployment list|get|create|update|delete`. Running one is
//! `replicate run --deployment OWNER/NAME`.

use replicate_protocol::api::{
    CreateDeployment, DeleteDeployment, Deployment, GetDeployment, ListDeployments,
    UpdateDeployment,
};

use super::model::owner_name;
use super::{Ctx, print_list};
use crate::args::{DeploymentCommand, DeploymentCreateArgs, DeploymentUpdateArgs};
use crate::exit::CliError;
use crate::output;
use crate::text::safe_line;

/// Runs a `deployment` subcommand.
pub fn run(ctx: &Ctx, cmd: DeploymentCommand) -> Result<(), CliError> {
    match cmd {
        DeploymentCommand::List(a) => {
            let client = ctx.client_with(|b| b.max_pages(a.max_pages))?;
            let items = client.paginate(ListDeployments::new());
            print_list(items, a.json, "No deployments.", row)
        }
        DeploymentCommand::Get(a) => {
            let d = owner_name(&a.name, "deployment")?;
            let client = ctx.client()?;
            let deployment = client.execute(GetDeployment::new(&d.owner, &d.name))?;
            show(&deployment, a.json)
        }
        DeploymentCommand::Create(a) => create(ctx, a),
        DeploymentCommand::Update(a) => update(ctx, a),
        DeploymentCommand::Delete(a) => {
            let d = owner_name(&a.name, "deployment")?;
            let client = ctx.client()?;
            client.execute(DeleteDeployment::new(&d.owner, &d.name))?;
            output::outln(&format!("deleted {d}"))
        }
    }
}

/// `deployment create`: the model and the scaling are checked before anything is sent.
fn create(ctx: &Ctx, a: DeploymentCreateArgs) -> Result<(), CliError> {
    let model = owner_name(&a.model, "--model")?;
    check_scaling(Some(a.min_instances), Some(a.max_instances))?;
    let create = CreateDeployment::new(
        a.name,
        model.to_string(),
        a.version,
        a.hardware,
        a.min_instances,
        a.max_instances,
    );
    let client = ctx.client()?;
    let deployment = client.execute(create)?;
    show(&deployment, a.json)
}

/// `deployment update`: only the options given are sent (clap requires at least one).
fn update(ctx: &Ctx, a: DeploymentUpdateArgs) -> Result<(), CliError> {
    let d = owner_name(&a.deployment, "deployment")?;
    check_scaling(a.min_instances, a.max_instances)?;
    let mut update = UpdateDeployment::new(&d.owner, &d.name);
    if let Some(v) = a.version {
        update = update.version(v);
    }
    if let Some(h) = a.hardware {
        update = update.hardware(h);
    }
    if let Some(n) = a.min_instances {
        update = update.min_instances(n);
    }
    if let Some(n) = a.max_instances {
        update = update.max_instances(n);
    }
    let client = ctx.client()?;
    let deployment = client.execute(update)?;
    show(&deployment, a.json)
}

/// A minimum above the maximum is a usage error, with nothing sent.
fn check_scaling(min: Option<u32>, max: Option<u32>) -> Result<(), CliError> {
    match (min, max) {
        (Some(lo), Some(hi)) if lo > hi => Err(CliError::usage(format!(
            "--min-instances ({lo}) exceeds --max-instances ({hi})"
        ))),
        _ => Ok(()),
    }
}

/// Prints a deployment: its JSON, or one `field: value` line each.
fn show(d: &Deployment, json: bool) -> Result<(), CliError> {
    if json {
        return output::json(d);
    }
    let mut s = String::new();
    let mut field =
        |name: &str, value: &str| s.push_str(&format!("{name:<15} {}\n", safe_line(value)));
    field("deployment:", &format!("{}/{}", d.owner, d.name));
    if let Some(r) = &d.current_release {
        if let Some(n) = r.number {
            field("release:", &n.to_string());
        }
        if let Some(m) = &r.model {
            field("model:", m);
        }
        if let Some(v) = &r.version {
            field("version:", v);
        }
        if let Some(c) = &r.configuration {
            if let Some(h) = &c.hardware {
                field("hardware:", h);
            }
            field("instances:", &instances(c.min_instances, c.max_instances));
        }
        if let Some(t) = r.created_at {
            field("released_at:", &output::timestamp(t));
        }
    }
    output::out(&s)
}

/// `min-max`, with `?` for what is not known.
fn instances(min: Option<u32>, max: Option<u32>) -> String {
    let n = |v: Option<u32>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    format!("{}-{}", n(min), n(max))
}

/// One line of `deployment list`: name, model, hardware, instances, release.
fn row(d: &Deployment) -> String {
    let r = d.current_release.as_ref();
    let c = r.and_then(|r| r.configuration.as_ref());
    format!(
        "{:<32}  {:<32}  {:<16}  {:<7}  release {}",
        safe_line(&format!("{}/{}", d.owner, d.name)),
        safe_line(r.and_then(|r| r.model.as_deref()).unwrap_or("-")),
        safe_line(c.and_then(|c| c.hardware.as_deref()).unwrap_or("-")),
        instances(
            c.and_then(|c| c.min_instances),
            c.and_then(|c| c.max_instances)
        ),
        r.and_then(|r| r.number)
            .map_or_else(|| "-".to_owned(), |n| n.to_string())
    )
}
