use std::path::PathBuf;

use rand::rngs::OsRng;

use super::{report_rejected, Failure, ModelArgs};
use crate::ops::generate;
use crate::output::OutputError;
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where to write (default: _output/<dnsPrefix>).
    #[arg(short = 'o', long = "output-directory", value_name = "DIR")]
    pub output_directory: Option<PathBuf>,
    /// Replace an existing output directory.
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub fn run(a: Args, format: Format) -> Result<(), Failure> {
    let text = a.model.read(true)?;
    let prepared =
        generate::prepare(&text, &a.model.set, &mut OsRng, generate::now()).map_err(|r| report_rejected(r, format))?;
    let dir = a
        .output_directory
        .clone()
        .unwrap_or_else(|| generate::default_dir(&prepared.cluster));
    let tree = generate::tree(&prepared).map_err(|e| Failure::Other(e.into()))?;
    tree.commit(&dir, a.force).map_err(|e| match e {
        OutputError::Exists(_) => Failure::Usage(e.to_string()),
        OutputError::Io { .. } => Failure::Other(anyhow::Error::new(e)),
    })?;
    match format {
        Format::Text => {
            ui::diagnostics(&prepared.warnings);
            let c = &prepared.cluster;
            ui::say(&format!(
                "generated {} ({} on {} {}, Kubernetes {}, {} node(s)) in {}",
                c.name,
                c.network.plugin,
                c.provider.cloud,
                c.provider.location,
                c.kubernetes,
                c.node_count(),
                dir.display()
            ));
        }
        Format::Json => ui::json(&serde_json::json!({
            "ok": true,
            "outputDirectory": dir,
            "cluster": prepared.cluster.name,
            "files": tree.paths().collect::<Vec<_>>(),
            "warnings": prepared.warnings,
        })),
    }
    Ok(())
}
