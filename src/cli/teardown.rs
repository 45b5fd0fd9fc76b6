use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use super::{runtime, CloudArgs, Failure, ModelArgs};
use crate::cli::deploy::map_error;
use crate::context::Env;
use crate::engine::RetryPolicy;
use crate::model::types::Cloud;
use crate::ops::deploy;
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
    // Which cluster, where its files are, and which cloud.
    let (name, dir, model_cloud) = if let Some(path) = &a.api_model {
        let m = ModelArgs {
            api_model: Some(path.clone()),
            set: vec![],
        };
        let text = m.read(false)?;
        let p = crate::ops::generate::prepare(&text, &[], &mut rand::rngs::OsRng, crate::ops::generate::now())
            .map_err(|r| super::report_rejected(r, format))?;
        let dir = a
            .output_directory
            .clone()
            .unwrap_or_else(|| crate::ops::generate::default_dir(&p.cluster));
        (p.cluster.name.to_string(), dir, Some(p.cluster.provider.clone()))
    } else if let Some(name) = &a.cluster {
        let dir = a
            .output_directory
            .clone()
            .unwrap_or_else(|| PathBuf::from("_output").join(name));
        let model = dir.join("apimodel.json");
        let cloud = match std::fs::read_to_string(&model) {
            Ok(text) => crate::ops::generate::prepare(&text, &[], &mut rand::rngs::OsRng, crate::ops::generate::now())
                .ok()
                .map(|p| p.cluster.provider.clone()),
            Err(_) => None,
        };
        (name.clone(), dir, cloud)
    } else {
        return Err(Failure::Usage(
            "name the cluster: --api-model FILE or --cluster NAME".into(),
        ));
    };
    let model_region = model_cloud.as_ref().map(|p| p.location.clone());
    let env = &a
        .where_
        .overlay(env)
        .with_default(
            deploy::FLAG_PROJECT,
            model_cloud.as_ref().and_then(|p| p.gcp_project.as_deref()),
        )
        .with_default(
            deploy::FLAG_ZONE,
            model_cloud.as_ref().and_then(|p| p.gcp_zone.as_deref()),
        )
        .with_default(
            deploy::FLAG_SUBSCRIPTION,
            model_cloud.as_ref().and_then(|p| p.azure_subscription.as_deref()),
        )
        .with_default(
            deploy::FLAG_RESOURCE_GROUP,
            model_cloud.as_ref().and_then(|p| p.azure_resource_group.as_deref()),
        );
    let cloud = match (&a.cloud, model_cloud.map(|p| p.cloud)) {
        (Some(c), _) => c.parse::<Cloud>().map_err(Failure::Usage)?,
        (None, Some(c)) => c,
        (None, None) => {
            return Err(Failure::Usage(format!(
                "{} has no apimodel.json to tell the cloud; pass --cloud azure|aws|gcp|fake",
                dir.display()
            )))
        }
    };
    let _token = confirm(a.yes, &name, cloud)?;
    let events = ui::event_sink(format);
    let rt = runtime()?;
    let cancel = super::cancel_on_ctrl_c(&rt);
    rt.block_on(deploy::teardown(
        deploy::TeardownOptions {
            dir: dir.clone(),
            cluster: name.clone(),
            cloud,
            region: a.where_.region.clone().or(model_region),
            endpoint: a.where_.endpoint_url.clone(),
            retry: RetryPolicy::default(),
            parallelism: usize::from(a.parallelism),
            cancel,
        },
        env,
        events,
        None,
    ))
    .map_err(|e| map_error(e, format))?;
    Ok(())
}
