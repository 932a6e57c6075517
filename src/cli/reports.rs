//! `provisio reports` and `provisio users timeline`: reading the provisioning report.

use super::RemoteArgs;
use super::client::{ClientError, encode};
use super::output::{cell, print_json, print_table, when};
use super::session::connect;
use crate::domain::Page;
use crate::domain::job::Report;
use crate::service::reports::{ReportParams, TimelineEntry};
use clap::Args;
use reqwest::Method;
use serde_json::Value;

const NO_BODY: Option<&Value> = None;

/// Filters of `provisio reports`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// End-user identifier: username, email, directory id or target id.
    #[arg(long)]
    pub user: Option<String>,
    /// Match identifiers that start with --user.
    #[arg(long)]
    pub prefix: bool,
    /// App name or id.
    #[arg(long)]
    pub app: Option<String>,
    /// A span ending now: 24h, 7d, 30d, ...
    #[arg(long)]
    pub since: Option<String>,
    /// Start of the span (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// End of the span (RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    /// success, failure, retrying, skipped or dry_run.
    #[arg(long)]
    pub outcome: Option<String>,
    /// create, update, deactivate, reactivate, delete, adopt, group_create, ...
    #[arg(long)]
    pub operation: Option<String>,
    /// user, group or connection.
    #[arg(long)]
    pub kind: Option<String>,
    /// Records per page.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Fetch every page.
    #[arg(long)]
    pub all: bool,
    /// Print CSV (for auditors) instead of a table.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
}

fn query_string(params: &ReportParams) -> Result<String, ClientError> {
    let value = serde_json::to_value(params).map_err(|e| ClientError::Other(e.to_string()))?;
    let mut parts = Vec::new();
    if let Value::Object(map) = value {
        for (key, value) in map {
            match value {
                Value::Null => {}
                Value::String(text) => parts.push(format!("{key}={}", encode(&text))),
                other => parts.push(format!("{key}={other}")),
            }
        }
    }
    Ok(parts.join("&"))
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

const CSV_HEADER: &str = "started_at,duration_ms,app,kind,username,email,directory_id,target_id,operation,outcome,attempt,http_method,http_path,http_status,message,diff,correlation_id,cause";

fn csv_line(r: &Report) -> String {
    let fields = [
        when(r.started_at),
        r.duration_ms.to_string(),
        r.app_name.clone(),
        r.subject_kind.as_str().to_owned(),
        r.username.clone().unwrap_or_default(),
        r.email.clone().unwrap_or_default(),
        r.subject_id.clone(),
        r.target_id.clone().unwrap_or_default(),
        r.operation.as_str().to_owned(),
        r.outcome.as_str().to_owned(),
        r.attempt.to_string(),
        r.http_method.clone().unwrap_or_default(),
        r.http_path.clone().unwrap_or_default(),
        r.http_status.map(|s| s.to_string()).unwrap_or_default(),
        r.message.clone().unwrap_or_default(),
        r.diff.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        r.correlation_id.clone(),
        r.cause.clone(),
    ];
    fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
}

fn row(r: &Report) -> Vec<String> {
    vec![
        when(r.started_at),
        r.app_name.clone(),
        cell(&r.username),
        r.operation.as_str().to_owned(),
        r.outcome.as_str().to_owned(),
        r.http_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
        cell(&r.message),
    ]
}

/// `provisio reports`.
pub async fn reports(remote: &RemoteArgs, args: ReportArgs) -> Result<(), ClientError> {
    let client = connect(remote)?;
    let mut params = ReportParams {
        user: args.user,
        match_mode: args.prefix.then(|| "prefix".to_owned()),
        app: args.app,
        from: args.from,
        to: args.to,
        since: args.since,
        outcome: args.outcome,
        operation: args.operation,
        kind: args.kind,
        cursor: None,
        limit: Some(args.limit),
    };
    let mut records = Vec::new();
    let next = loop {
        let page: Page<Report> = client
            .request(
                Method::GET,
                &format!("/api/v1/reports?{}", query_string(&params)?),
                NO_BODY,
            )
            .await?;
        records.extend(page.items);
        match page.next_cursor {
            Some(cursor) if args.all => params.cursor = Some(cursor),
            other => break other,
        }
    };
    if args.csv {
        println!("{CSV_HEADER}");
        for record in &records {
            println!("{}", csv_line(record));
        }
    } else if remote.json {
        print_json(&Page {
            items: records,
            next_cursor: next.clone(),
        });
    } else {
        print_table(
            &["TIME", "APP", "USER", "OPERATION", "OUTCOME", "STATUS", "MESSAGE"],
            &records.iter().map(row).collect::<Vec<_>>(),
        );
    }
    if let (Some(_), false) = (&next, remote.json) {
        eprintln!("more records: add --all, or narrow the search");
    }
    Ok(())
}

/// `provisio users timeline USER`.
pub async fn timeline(remote: &RemoteArgs, user: &str) -> Result<(), ClientError> {
    let client = connect(remote)?;
    let entries: Vec<TimelineEntry> = client
        .request(
            Method::GET,
            &format!("/api/v1/users/{}/timeline", encode(user)),
            NO_BODY,
        )
        .await?;
    if remote.json {
        print_json(&entries);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|entry| match (&entry.change, &entry.report) {
            (Some(change), _) => vec![
                when(entry.at),
                "directory".into(),
                format!("{} {}", change.entity.as_str(), change.operation.as_str()),
                change.data.get("changed").map(|c| c.to_string()).unwrap_or_default(),
                change.actor.clone(),
            ],
            (None, Some(report)) => vec![
                when(entry.at),
                report.app_name.clone(),
                format!("{} {}", report.operation.as_str(), report.outcome.as_str()),
                report.diff.as_ref().map(|d| d.to_string()).unwrap_or_default(),
                cell(&report.message),
            ],
            (None, None) => vec![
                when(entry.at),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        })
        .collect();
    print_table(&["TIME", "WHERE", "WHAT", "CHANGES", "BY / MESSAGE"], &rows);
    Ok(())
}
