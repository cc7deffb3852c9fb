//! `replicate hardware`, `replicate collection list|get` and `replicate search`: what there is
//! to run, and on what.

use replicate_protocol::api::{GetCollection, ListCollections, ListHardware, Search};

use super::model::model_row;
use super::{Ctx, print_list};
use crate::args::{CollectionCommand, JsonFlag, SearchArgs};
use crate::exit::CliError;
use crate::output;
use crate::text::safe_line;

/// `hardware`: an aligned table of SKU and name (one answer, not paginated).
pub fn hardware(ctx: &Ctx, args: JsonFlag) -> Result<(), CliError> {
    let client = ctx.client()?;
    let hardware = client.execute(ListHardware::new())?;
    if args.json {
        return output::json(&hardware);
    }
    if hardware.is_empty() {
        output::note("No hardware.");
        return Ok(());
    }
    let rows: Vec<(String, String)> = hardware
        .iter()
        .map(|h| {
            (
                safe_line(&h.sku),
                safe_line(h.name.as_deref().unwrap_or("")),
            )
        })
        .collect();
    output::out(&table(&rows))
}

/// Two columns, the first padded to its widest cell (in characters).
fn table(rows: &[(String, String)]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(a, b)| vec![a.clone(), b.clone()])
        .collect();
    output::aligned(&rows, usize::MAX)
        .into_iter()
        .map(|line| line + "\n")
        .collect()
}

/// Runs a `collection` subcommand.
pub fn collection(ctx: &Ctx, cmd: CollectionCommand) -> Result<(), CliError> {
    match cmd {
        CollectionCommand::List(a) => {
            let client = ctx.client_with(|b| b.max_pages(a.max_pages))?;
            let items = client.paginate(ListCollections::new());
            print_list(items, a.json, "No collections.", |c| {
                format!(
                    "{:<24}  {}",
                    safe_line(&c.slug),
                    output::shorten(&safe_line(&summary(&c.name, c.description.as_deref())), 120)
                )
            })
        }
        CollectionCommand::Get(a) => {
            let client = ctx.client()?;
            let c = client.execute(GetCollection::new(&a.slug))?;
            if a.json {
                return output::json(&c);
            }
            let mut s = format!(
                "{:<13} {}\n{:<13} {}\n",
                "collection:",
                safe_line(&c.slug),
                "name:",
                safe_line(&c.name)
            );
            if let Some(d) = &c.description {
                s.push_str(&format!("{:<13} {}\n", "description:", safe_line(d)));
            }
            s.push_str(&format!("models ({}):\n", c.models.len()));
            for m in &c.models {
                s.push_str("  ");
                s.push_str(&model_row(m));
                s.push('\n');
            }
            output::out(&s)
        }
    }
}

/// `name: description`, or the name alone.
fn summary(name: &str, description: Option<&str>) -> String {
    match description.filter(|d| !d.is_empty()) {
        Some(d) => format!("{name}: {d}"),
        None => name.to_owned(),
    }
}

/// `search`: models (by relevance), then collections, then documentation pages.
pub fn search(ctx: &Ctx, args: SearchArgs) -> Result<(), CliError> {
    let mut search = Search::new(&args.query);
    if let Some(limit) = args.limit {
        search = search.limit(limit);
    }
    let client = ctx.client()?;
    let found = client.execute(search)?;
    if args.json {
        return output::json(&found);
    }
    if found.models.is_empty() && found.collections.is_empty() && found.pages.is_empty() {
        output::note(&format!("Nothing found for {:?}.", safe_line(&args.query)));
        return Ok(());
    }
    let mut s = String::new();
    if !found.models.is_empty() {
        s.push_str(&format!("models ({}):\n", found.models.len()));
        for r in &found.models {
            let m = &r.model;
            let about = r
                .metadata
                .generated_description
                .as_deref()
                .or(m.description.as_deref())
                .unwrap_or("");
            s.push_str(&format!(
                "  {:<40}  {}\n",
                safe_line(&m.full_name()),
                output::shorten(&safe_line(about), 100)
            ));
        }
    }
    if !found.collections.is_empty() {
        s.push_str(&format!("collections ({}):\n", found.collections.len()));
        for c in &found.collections {
            s.push_str(&format!(
                "  {:<40}  {}\n",
                safe_line(&c.slug),
                output::shorten(&safe_line(&summary(&c.name, c.description.as_deref())), 100)
            ));
        }
    }
    if !found.pages.is_empty() {
        s.push_str(&format!("pages ({}):\n", found.pages.len()));
        for p in &found.pages {
            s.push_str(&format!(
                "  {:<40}  {}\n",
                safe_line(&p.name),
                safe_line(&p.href)
            ));
        }
    }
    output::out(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_the_first_column() {
        let rows = vec![
            ("cpu".to_owned(), "CPU".to_owned()),
            (
                "gpu-a100-large".to_owned(),
                "Nvidia A100 (80GB) GPU".to_owned(),
            ),
            ("x".to_owned(), String::new()),
        ];
        assert_eq!(
            table(&rows),
            "cpu             CPU\ngpu-a100-large  Nvidia A100 (80GB) GPU\nx\n"
        );
    }
}
