use std::path::PathBuf;

use super::{runtime, CloudArgs, Failure};
use crate::context::Env;
use crate::ops::target::provider_for;
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: super::ClusterDirArgs,
    /// Where to write the logs: <DIR>/<node>/console.log and one file per
    /// log section the node printed.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    #[command(flatten)]
    pub where_: CloudArgs,
}

pub fn run(a: Args, format: Format, env: &Env) -> Result<(), Failure> {
    let ws = a.dir.load(format)?;
    let target = ws
        .target(&a.where_.flags(), env)
        .map_err(|e| super::deploy::map_error(e, format))?;
    let state = crate::engine::state::load(&ws.dir).map_err(|e| Failure::Other(e.into()))?;
    let rt = runtime()?;
    let collected = rt.block_on(async {
        let provider = provider_for(&target)
            .await
            .map_err(|e| super::deploy::map_error(e.into(), format))?;
        Ok::<_, Failure>(crate::ops::logs::collect(provider, &state, &a.to).await)
    })?;
    match format {
        Format::Json => ui::stdout(&serde_json::to_string_pretty(&collected).unwrap_or_default()),
        Format::Text => {
            for (node, files) in &collected.nodes {
                ui::say(&format!("{node}: {}", files.join(", ")));
            }
            for (node, why) in &collected.failed {
                ui::say(&format!("{node}: FAILED: {why}"));
            }
            ui::say(&format!(
                "logs of {} node(s) in {}",
                collected.nodes.len(),
                a.to.display()
            ));
        }
    }
    if collected.failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Other(anyhow::anyhow!(
            "could not read the console of {} machine(s)",
            collected.failed.len()
        )))
    }
}
