use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use super::{runtime, CloudArgs, Failure, ModelArgs};
use crate::cli::deploy::map_error;
use crate::context::Env;
use crate::engine::RetryPolicy;
use crate::model::types::Cloud;
use crate::ops::deploy;
use crate::ops::target::Target;
use crate::ops::workspace::MODEL_FILE;
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The API model of the cluster (or use --cluster).
    #[arg(short = 'm', long = "api-model", value_name = "FILE", conflicts_with = "cluster")]
    pub api_model: Option<PathBuf>,
    /// The cluster's name (its dnsPrefix).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The output directory (default: _output/<name>).
    #[arg(short = 'o', long = "output-directory", value_name = "DIR")]
    pub output_directory: Option<PathBuf>,
    /// The cloud, when the output directory is gone (state lost).
    #[arg(long, value_name = "CLOUD")]
    pub cloud: Option<String>,
    #[command(flatten)]
    pub where_: CloudArgs,
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

/// Proof that the user agreed to delete: only `--yes` or a typed
/// confirmation makes one.
pub struct DestructiveToken(());

fn confirm(yes: bool, cluster: &str, cloud: Cloud) -> Result<DestructiveToken, Failure> {
    if yes {
        return Ok(DestructiveToken(()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Usage(format!(
            "refusing to delete cluster {cluster} without --yes: standard input is not a terminal"
        )));
    }
    ui::say(&format!(
        "This deletes every resource of cluster {cluster} on {cloud}. Type the cluster name to continue:"
    ));
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Other(e.into()))?;
    if line.trim() == cluster {
        Ok(DestructiveToken(()))
    } else {
        Err(Failure::Usage("not confirmed; nothing was deleted".into()))
    }
}

pub fn run(a: Args, format: Format, env: &Env) -> Result<(), Failure> {
    // Which cluster, where its files are, and what its model says of the
    // cloud. Teardown needs no PKI and no plan: the cluster stage will do.
    let built = |text: &str| crate::cluster::build(text, &[], &mut rand::rngs::OsRng);
    let (name, dir, model) = if let Some(path) = &a.api_model {
        let m = ModelArgs {
            api_model: Some(path.clone()),
            set: vec![],
        };
        let text = m.read(false)?;
        let given = built(&text).map_err(|r| super::report_rejected(r, format))?;
        let dir = a
            .output_directory
            .clone()
            .unwrap_or_else(|| crate::ops::generate::default_dir(&given.cluster));
        // The directory's own model when it has one: it is what was deployed.
        let on_disk = std::fs::read_to_string(dir.join(MODEL_FILE))
            .ok()
            .and_then(|t| built(&t).ok());
        let c = on_disk.map(|b| b.cluster).unwrap_or(given.cluster);
        (c.name.to_string(), dir, Some(c.provider.clone()))
    } else if let Some(name) = &a.cluster {
        let dir = a
            .output_directory
            .clone()
            .unwrap_or_else(|| PathBuf::from("_output").join(name));
        let provider = std::fs::read_to_string(dir.join(MODEL_FILE))
            .ok()
            .and_then(|t| built(&t).ok())
            .map(|b| b.cluster.provider.clone());
        (name.clone(), dir, provider)
    } else {
        return Err(Failure::Usage(
            "name the cluster: --api-model FILE or --cluster NAME".into(),
        ));
    };
    let cloud = match (&a.cloud, model.as_ref().map(|p| p.cloud)) {
        (Some(c), _) => c.parse::<Cloud>().map_err(Failure::Usage)?,
        (None, Some(c)) => c,
        (None, None) => {
            return Err(Failure::Usage(format!(
                "{} has no apimodel.json to tell the cloud; pass --cloud azure|aws|gcp|fake",
                dir.display()
            )))
        }
    };
    let target = Target::resolve(cloud, &name, model.as_ref(), &a.where_.flags(), env).map_err(Failure::Usage)?;
    let _token = confirm(a.yes, &name, cloud)?;
    let events = ui::event_sink(format);
    let rt = runtime()?;
    let cancel = super::cancel_on_ctrl_c(&rt);
    rt.block_on(deploy::teardown(
        &target,
        deploy::TeardownOptions {
            dir: dir.clone(),
            retry: RetryPolicy::default(),
            parallelism: usize::from(a.parallelism),
            cancel,
        },
        events,
        None,
    ))
    .map_err(|e| map_error(e, format))?;
    Ok(())
}
