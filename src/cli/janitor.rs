use super::{runtime, CloudArgs, Failure};
use crate::context::Env;
use crate::engine::RetryPolicy;
use crate::model::types::Cloud;
use crate::ops::janitor::{self, Options};
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cloud to clean: aws, azure, gcp or fake.
    #[arg(long, value_name = "CLOUD")]
    pub cloud: String,
    #[command(flatten)]
    pub where_: CloudArgs,
    /// Expire clusters created longer ago than this (e.g. 3h, 2d), whatever
    /// their hke.io/ttl tag says.
    #[arg(long, value_name = "DURATION", value_parser = janitor::parse_duration)]
    pub older_than: Option<std::time::Duration>,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only clusters with this tag (repeatable; all must match).
    #[arg(long = "include-tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub include: Vec<(String, String)>,
    /// Never clusters with this tag (repeatable; any matches).
    #[arg(long = "exclude-tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub exclude: Vec<(String, String)>,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

pub fn run(a: Args, format: Format, env: &Env) -> Result<(), Failure> {
    let cloud: Cloud = a.cloud.parse().map_err(Failure::Usage)?;
    let target =
        crate::ops::target::Target::resolve(cloud, "", None, &a.where_.flags(), env).map_err(Failure::Usage)?;
    let rt = runtime()?;
    let cancel = super::cancel_on_ctrl_c(&rt);
    // The report is the one thing on stdout; teardown progress goes to
    // stderr as text whatever --output says.
    let events = ui::event_sink(Format::Text);
    let report = rt
        .block_on(janitor::run(
            Options {
                target,
                older_than: a.older_than,
                dry_run: a.dry_run,
                include: a.include.clone(),
                exclude: a.exclude.clone(),
                now: time::OffsetDateTime::now_utc(),
                parallelism: usize::from(a.parallelism),
                retry: RetryPolicy::default(),
                cancel,
            },
            events,
        ))
        .map_err(|e| crate::cli::deploy::map_error(e, format))?;
    if format == Format::Text {
        for c in &report.expired {
            let verb = if report.dry_run { "would delete" } else { "expired" };
            ui::say(&format!(
                "{verb}: {} ({} resource(s), created {}, expired {})",
                c.cluster,
                c.resources,
                c.created.as_deref().unwrap_or("?"),
                c.expires.as_deref().unwrap_or("?")
            ));
        }
        for c in &report.kept {
            ui::say(&format!("kept: {}: {}", c.cluster, c.reason));
        }
    }
    ui::stdout(&serde_json::to_string_pretty(&report).unwrap_or_default());
    if report.failed.is_empty() {
        Ok(())
    } else {
        let names: Vec<String> = report
            .failed
            .iter()
            .map(|f| format!("{}: {}", f.cluster, f.error))
            .collect();
        Err(Failure::Other(anyhow::anyhow!(
            "could not delete {} cluster(s):\n{}",
            names.len(),
            names.join("\n")
        )))
    }
}
