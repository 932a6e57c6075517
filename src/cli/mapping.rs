//! `provisio apps mapping APP [set|remove]`: the attribute mapping as a table, edited one row at
//! a time through the API's single-rule operations.

use super::RemoteArgs;
use super::client::{Client, ClientError, encode};
use super::output::{print_json, print_table};
use crate::domain::app::App;
use crate::domain::mapping::{MappingRule, Source};
use crate::domain::mapping_rows::{MappingRow, Transform};
use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

/// `apps mapping APP ...`.
#[derive(Debug, Subcommand)]
pub enum MappingAction {
    /// Set the rule for a target attribute (replacing the one there); validated like a whole mapping.
    Set {
        /// SCIM attribute path, e.g. `title` or `emails[type eq "work"].value`.
        target: String,
        /// A profile attribute (`email`, `title`), `constant:VALUE` (`constant:true`), or a JSON
        /// source object (`{"concat": [...]}`).
        source: String,
        /// Convert the value: `lower` or `upper`.
        #[arg(long)]
        transform: Option<String>,
    },
    /// Remove the rule for a target attribute (`userName` cannot be removed).
    Remove {
        /// SCIM attribute path.
        target: String,
    },
}

/// Prints the mapping of `app`, or changes one row of it and prints the result.
pub async fn mapping(
    remote: &RemoteArgs,
    client: &Client,
    app: &str,
    action: Option<MappingAction>,
) -> Result<(), ClientError> {
    let base = format!("/api/v1/apps/{}/mapping", encode(app));
    match action {
        None => {}
        Some(MappingAction::Set {
            target,
            source,
            transform,
        }) => {
            let mut source = Source::from_short(&source).map_err(|e| ClientError::Usage(e.to_string()))?;
            if let Some(transform) = transform {
                source = Transform::parse(&transform)
                    .map_err(|e| ClientError::Usage(e.to_string()))?
                    .apply(source);
            }
            let rule = MappingRule { target, source };
            let _: App = client
                .request(Method::PUT, &format!("{base}/rules"), Some(&rule))
                .await?;
        }
        Some(MappingAction::Remove { target }) => {
            let _: App = client
                .request(
                    Method::DELETE,
                    &format!("{base}/rules?target={}", encode(&target)),
                    None::<&Value>,
                )
                .await?;
        }
    }
    let rows: Vec<MappingRow> = client.request(Method::GET, &base, None::<&Value>).await?;
    if remote.json {
        print_json(&rows);
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            vec![
                row.target.clone(),
                row.source.clone(),
                row.transform.clone().unwrap_or_else(|| "-".into()),
                if row.required { "yes".into() } else { "no".into() },
            ]
        })
        .collect();
    print_table(&["TARGET", "SOURCE", "TRANSFORM", "REQUIRED"], &table);
    Ok(())
}
