use std::path::PathBuf;

use super::{report_rejected, runtime, CloudArgs, Failure, ModelArgs};
use crate::context::Env;
use crate::engine::RetryPolicy;
use crate::ops::deploy::{self, DeployError, Options};
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// The output directory (default: _output/<dnsPrefix>). An existing
    /// apimodel.json there is reused, so a re-run continues the same cluster.
    #[arg(short = 'o', long = "output-directory", value_name = "DIR")]
    pub output_directory: Option<PathBuf>,
    /// How many cloud calls may run at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Time to live (e.g. 3h, 90m, 2d), written as the hke.io/ttl tag: `hke
    /// janitor` deletes the cluster once it has passed.
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
    pub ttl: Option<String>,
}

fn parse_ttl(s: &str) -> Result<String, String> {
    crate::ops::janitor::parse_duration(s).map(|_| s.trim().to_string())
}

pub fn map_error(e: DeployError, format: Format) -> Failure {
    use crate::ops::deploy::Failing;
    match e.failing() {
        Failing::Credentials => {
            return Failure::Credentials(format!("the cloud refused hke's credentials: {e}"));
        }
        Failing::Unreachable => return Failure::Unreachable(format!("the cloud could not be reached: {e}")),
        Failing::Usage | Failing::Failed => {}
    }
    match e {
        DeployError::Rejected(r) => report_rejected(r, format),
        DeployError::Usage(m) => Failure::Usage(m),
        DeployError::State(crate::engine::state::StateError::Locked(m)) => Failure::Usage(m),
        // The cloud does not know the target (no project, region or
        // subscription): the user's settings, exit 2.
        DeployError::Connect(p) => Failure::Usage(p.to_string()),
        DeployError::Engine(crate::engine::EngineError::Interrupted, dir) => Failure::Interrupted(format!(
            "interrupted: the calls in flight finished and are recorded in {}; run the same command again to continue, or `hke teardown` to remove what exists",
            dir.display()
        )),
        other => Failure::Other(anyhow::Error::new(other)),
    }
}

pub fn run(a: Args, format: Format, env: &Env) -> Result<(), Failure> {
    let text = a.model.read(true)?;
    let events = ui::event_sink(format);
    let rt = runtime()?;
    let opts = Options {
        parallelism: usize::from(a.parallelism),
        ttl: a.ttl.clone(),
        retry: RetryPolicy::default(),
        durability: crate::engine::state::Durability::GroupCommit,
        cancel: super::cancel_on_ctrl_c(&rt),
    };
    let model = deploy::Model {
        text: &text,
        sets: &a.model.set,
        output_dir: a.output_directory.as_deref(),
    };
    let done = rt
        .block_on(deploy::deploy_model(model, &a.cloud.flags(), env, opts, events, None))
        .map_err(|e| map_error(e, format))?;
    if format == Format::Text {
        ui::say(&format!("kubeconfig: export KUBECONFIG={}", done.kubeconfig.display()));
    }
    Ok(())
}
