use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Failure;
use crate::engine::state::{self, Status};
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster's name (its dnsPrefix).
    #[arg(long, value_name = "NAME", required_unless_present = "output_directory")]
    pub cluster: Option<String>,
    /// The output directory (default: _output/<name>).
    #[arg(short = 'o', long = "output-directory", value_name = "DIR")]
    pub output_directory: Option<PathBuf>,
}

pub fn run(a: Args, format: Format) -> Result<(), Failure> {
    let dir = a
        .output_directory
        .clone()
        .or_else(|| a.cluster.as_ref().map(|c| PathBuf::from("_output").join(c)))
        .ok_or_else(|| Failure::Usage("name the cluster with --cluster NAME".into()))?;
    let st = state::load(&dir).map_err(|e| Failure::Other(e.into()))?;
    match format {
        Format::Json => ui::json(&serde_json::to_value(&st).unwrap_or_default()),
        Format::Text => {
            if st.resources.is_empty() {
                ui::say(&format!("{}: no resources recorded", dir.display()));
                return Ok(());
            }
            let mut counts: BTreeMap<(String, &str), usize> = BTreeMap::new();
            for e in st.resources.values() {
                let s = match e.status {
                    Status::Created => "created",
                    Status::Intent => "being created",
                    Status::Deleting => "being deleted",
                };
                *counts.entry((e.kind.to_string(), s)).or_default() += 1;
            }
            ui::say(&format!(
                "cluster {} on {} (since {})",
                st.cluster,
                st.cloud,
                st.created.clone().unwrap_or_default()
            ));
            for ((kind, s), n) in counts {
                ui::say(&format!("  {kind:>14}: {n} {s}"));
            }
        }
    }
    Ok(())
}
