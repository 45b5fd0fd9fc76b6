//! Command-line interface: one module per verb, each parsing its flags and
//! calling one library function.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::model::diag::Rejected;
use crate::model::load::SetArg;
use crate::ui::Format;

mod check;
mod ci;
mod deploy;
mod generate;
mod janitor;
mod logs;
mod migrate;
mod plan;
mod render;
mod schema;
mod status;
mod teardown;
mod validate;

#[derive(Debug, Parser)]
#[command(
    name = "hke",
    version,
    about = "hybrid Kubernetes engine: acs-engine style API models to Linux+Windows clusters on Azure, AWS and GCP"
)]
pub struct Cli {
    /// Output format: text for people (stderr), json for machines (stdout).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render everything for a cluster into an output directory, offline.
    Generate(generate::Args),
    /// Check an API model and report every problem at once.
    Validate(validate::Args),
    /// Rewrite an old acs-engine/aks-engine model to today's supported values.
    Migrate(migrate::Args),
    /// Print the JSON Schema of the API model (the field reference).
    Schema(schema::Args),
    /// Show the resources a cluster consists of, in creation order.
    Plan(plan::Args),
    /// Create the cluster (or continue a deploy that stopped).
    Deploy(deploy::Args),
    /// Delete every resource of a cluster, including ones the state lost.
    Teardown(teardown::Args),
    /// Show what the state records for a cluster.
    Status(status::Args),
    /// Print the boot file (cloud-init or PowerShell) of one node.
    Render(render::Args),
    /// CI: an ephemeral cluster around one command (`hke ci run -m F -- make test`).
    Ci(ci::Args),
    /// The post-deploy checklist of the Kubernetes Windows guide, on a deployed cluster.
    Check(check::Args),
    /// Fetch every node's serial console (bootstrap and service logs), no SSH needed.
    Logs(logs::Args),
    /// Delete clusters whose time is up, found by their tags (hke.io/created + hke.io/ttl).
    Janitor(janitor::Args),
}

/// The model input shared by several verbs.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// The API model (vlabs JSON). `generate` and `validate` default to the
    /// built-in example (examples/windows.json).
    #[arg(short = 'm', long = "api-model", value_name = "FILE")]
    pub api_model: Option<PathBuf>,
    /// Edit the model before defaults: --set properties.masterProfile.count=3
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = parse_set)]
    pub set: Vec<SetArg>,
}

/// Where to reach the cloud, over the model's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct CloudArgs {
    /// The region (AWS, GCP) or location (Azure), over the model's.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The cloud API endpoint (an emulator, a private or sovereign endpoint);
    /// also HKE_AWS_ENDPOINT_URL, HKE_AZURE_ENDPOINT_URL, HKE_GCP_ENDPOINT_URL.
    #[arg(long = "endpoint-url", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The GCP project, over the model's (also HKE_GCP_PROJECT).
    #[arg(long, value_name = "PROJECT")]
    pub project: Option<String>,
    /// The GCP zone, over the model's (also HKE_GCP_ZONE).
    #[arg(long, value_name = "ZONE")]
    pub zone: Option<String>,
    /// The Azure subscription id, over the model's
    /// `providerProfile.subscriptionId` (also AZURE_SUBSCRIPTION_ID).
    #[arg(long, value_name = "ID")]
    pub subscription: Option<String>,
}

impl CloudArgs {
    /// The command line's say in the cloud target (it wins over the model
    /// and the environment: `ops::target`).
    pub fn flags(&self) -> crate::ops::target::Flags {
        crate::ops::target::Flags {
            region: self.region.clone(),
            endpoint: self.endpoint_url.clone(),
            project: self.project.clone(),
            zone: self.zone.clone(),
            subscription: self.subscription.clone(),
        }
    }
}

fn parse_set(s: &str) -> Result<SetArg, String> {
    s.parse()
}

/// The shipped example, built into the binary.
pub const BUILTIN_EXAMPLE: &str = include_str!("../../examples/windows.json");

impl ModelArgs {
    /// The model text; without `--api-model`, the built-in example when
    /// `default_ok`, else a usage error.
    pub fn read(&self, default_ok: bool) -> Result<String, Failure> {
        match &self.api_model {
            Some(p) => {
                std::fs::read_to_string(p).map_err(|e| Failure::Usage(format!("cannot read {}: {e}", p.display())))
            }
            None if default_ok => {
                crate::ui::say("no --api-model given: using the built-in example (examples/windows.json)");
                Ok(BUILTIN_EXAMPLE.to_string())
            }
            None => Err(Failure::Usage("--api-model FILE is required".into())),
        }
    }

    /// How to name the model in messages.
    pub fn name(&self) -> String {
        self.api_model
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the built-in example".into())
    }
}

/// How a command failed; `main` maps it to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad input: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The cloud refused hke's credentials or their permissions: exit 3.
    #[error("{0}")]
    Credentials(String),
    /// The cloud could not be reached (DNS, connection, TLS): exit 4.
    #[error("{0}")]
    Unreachable(String),
    /// The model was rejected: exit 2, diagnostics already printed.
    #[error("{0}")]
    Rejected(Rejected),
    /// Stopped by Ctrl-C after the calls in flight finished: exit 130.
    #[error("{0}")]
    Interrupted(String),
    /// Anything else: exit 1.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
    /// A run that decides its own exit code (`hke ci run`).
    #[error("{1}")]
    Exit(i32, String),
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) | Failure::Rejected(_) => 2,
            Failure::Credentials(_) => 3,
            Failure::Unreachable(_) => 4,
            Failure::Interrupted(_) => 130,
            Failure::Other(_) => 1,
            Failure::Exit(code, _) => *code,
        }
    }
}

pub fn run(cli: Cli, env: &crate::context::Env) -> Result<(), Failure> {
    match cli.command {
        Command::Generate(a) => generate::run(a, cli.output),
        Command::Validate(a) => validate::run(a, cli.output),
        Command::Migrate(a) => migrate::run(a, cli.output),
        Command::Schema(a) => schema::run(a),
        Command::Plan(a) => plan::run(a, cli.output),
        Command::Deploy(a) => deploy::run(a, cli.output, env),
        Command::Teardown(a) => teardown::run(a, cli.output, env),
        Command::Status(a) => status::run(a, cli.output),
        Command::Render(a) => render::run(a, cli.output),
        Command::Janitor(a) => janitor::run(a, cli.output, env),
        Command::Logs(a) => logs::run(a, cli.output, env),
        Command::Check(a) => check::run(a, cli.output, env),
        Command::Ci(a) => ci::run(a, cli.output, env),
    }
}

/// Ctrl-C during a cloud run: the first asks the engine to start nothing new
/// and let the calls in flight finish (so they are recorded); the second
/// stops at once (the next run still finds everything through the state's
/// intents and the resources' tags).
pub fn cancel_on_ctrl_c(rt: &tokio::runtime::Runtime) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flag.clone();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            f.store(true, std::sync::atomic::Ordering::SeqCst);
            crate::ui::say("interrupted: finishing the calls in flight (Ctrl-C again to stop at once)");
            if tokio::signal::ctrl_c().await.is_ok() {
                crate::ui::say("stopped; run the same command again to continue");
                std::process::exit(130);
            }
        }
    });
    flag
}

/// The async runtime for verbs that talk to a cloud.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(e.into()))
}

/// Report a rejected model in the chosen format.
/// A deployed cluster, by name and directory (`logs`, `check`).
#[derive(Debug, clap::Args)]
pub struct ClusterDirArgs {
    /// The cluster's name (its dnsPrefix).
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    /// The cluster's output directory (default: _output/NAME).
    #[arg(short = 'o', long = "output-directory", value_name = "DIR")]
    pub output_directory: Option<PathBuf>,
}

impl ClusterDirArgs {
    /// The cluster's workspace: its directory, prepared and planned once.
    pub fn load(&self, format: Format) -> Result<crate::ops::workspace::Workspace, Failure> {
        let dir = self
            .output_directory
            .clone()
            .unwrap_or_else(|| PathBuf::from("_output").join(&self.cluster));
        crate::ops::workspace::Workspace::load(&dir).map_err(|e| deploy::map_error(e, format))
    }
}

pub fn report_rejected(r: Rejected, format: Format) -> Failure {
    match format {
        Format::Text => {
            crate::ui::diagnostics(&r.diagnostics);
            crate::ui::say(&format!("{r}"));
        }
        Format::Json => {
            let (errors, warnings): (Vec<_>, Vec<_>) = r
                .diagnostics
                .iter()
                .partition(|d| d.severity == crate::model::diag::Severity::Error);
            crate::ui::json(&serde_json::json!({ "ok": false, "errors": errors, "warnings": warnings }));
        }
    }
    Failure::Rejected(r)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Catches clashing flags (a regression: migrate's -o once clashed with --output).
        super::Cli::command().debug_assert();
    }
}
