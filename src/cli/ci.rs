use std::path::PathBuf;
use std::time::Duration;

use super::{runtime, CloudArgs, Failure, ModelArgs};
use crate::context::Env;
use crate::ops::ci::{self, Options};
use crate::ops::janitor::parse_duration;
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: CiCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CiCommand {
    /// Deploy a uniquely named cluster, wait for its nodes, run COMMAND with
    /// KUBECONFIG set, collect logs and tear down — whatever happens.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub where_: CloudArgs,
    /// The cluster name's start; a random suffix makes it unique (default: the model's dnsPrefix).
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Option<String>,
    /// The hke.io/ttl tag, so `hke janitor` removes the cluster if this job cannot.
    #[arg(long, default_value = "3h", value_parser = parse_ttl)]
    pub ttl: String,
    /// Deploy, wait and COMMAND together must end within this.
    #[arg(long, default_value = "90m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How long Linux nodes may take to be Ready.
    #[arg(long, default_value = "20m", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// How long Windows nodes may take to be Ready (they reboot once).
    #[arg(long, default_value = "40m", value_parser = parse_duration)]
    pub windows_ready_timeout: Duration,
    /// Proceed once this many Windows nodes are Ready (default: all of them).
    #[arg(long, value_name = "N")]
    pub min_windows_nodes: Option<u32>,
    /// Where junit_runner.xml, metadata.json and logs/ go (default: $ARTIFACTS, else ./_artifacts).
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Keep the cluster when a phase failed, and print how to tear it down.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// The kubectl to ask for the nodes.
    #[arg(long, default_value = "kubectl", value_name = "PATH")]
    pub kubectl: String,
    /// Run `hke check` (the Windows guide's checklist) before COMMAND; a
    /// failed step fails the run (exit 14) and COMMAND does not run.
    #[arg(long)]
    pub check: bool,
    /// With --check: skip the steps that need a data plane.
    #[arg(long, requires = "check")]
    pub check_api_only: bool,
    /// With --check: skip a step (repeatable; see `hke check --help`).
    #[arg(long, value_name = "STEP", requires = "check", value_parser = super::check::parse_step)]
    pub check_skip: Vec<String>,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// The job: run with KUBECONFIG, HKE_CLUSTER and ARTIFACTS set.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn parse_ttl(s: &str) -> Result<String, String> {
    parse_duration(s).map(|_| s.trim().to_string())
}

pub fn run(a: Args, format: Format, env: &Env) -> Result<(), Failure> {
    let CiCommand::Run(a) = a.command;
    let text = a.model.read(false)?;
    let artifacts = a
        .artifacts
        .clone()
        .or_else(|| env.get("ARTIFACTS").filter(|a| !a.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("_artifacts"));
    let poll = env
        .get("HKE_CI_POLL_MS")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(10));
    let rt = runtime()?;
    let events = ui::event_sink(Format::Text);
    let outcome = rt
        .block_on(ci::run(
            Options {
                text,
                sets: a.model.set.clone(),
                name_prefix: a.name_prefix.clone(),
                ttl: a.ttl.clone(),
                timeout: a.timeout,
                ready_timeout: a.ready_timeout,
                windows_ready_timeout: a.windows_ready_timeout,
                min_windows_nodes: a.min_windows_nodes,
                artifacts,
                keep_on_failure: a.keep_on_failure,
                command: a.command.clone(),
                kubectl: a.kubectl.clone(),
                flags: a.where_.flags(),
                parallelism: usize::from(a.parallelism),
                poll,
                command_stdout_to_stderr: format == Format::Json,
                check: a.check.then(|| super::check::skips(a.check_api_only, &a.check_skip)),
            },
            env,
            events,
        ))
        .map_err(|e| super::deploy::map_error(e, format))?;
    if format == Format::Json {
        ui::stdout(&serde_json::to_string_pretty(&outcome.metadata).unwrap_or_default());
    }
    if outcome.exit_code == 0 {
        ui::say(&outcome.message);
        Ok(())
    } else {
        Err(Failure::Exit(outcome.exit_code, outcome.message))
    }
}
