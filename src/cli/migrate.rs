use std::path::PathBuf;

use super::{report_rejected, Failure, ModelArgs};
use crate::ops::migrate::{self, MigrateError};
use crate::output::{Mode, Tree};
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Write the migrated model here (default: stdout in text mode).
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub fn run(a: Args, format: Format) -> Result<(), Failure> {
    let text = a.model.read(false)?;
    let (model, changes) = match migrate::migrate(&text, &a.model.set) {
        Ok(x) => x,
        Err(MigrateError::Rejected(r)) => return Err(report_rejected(r, format)),
        Err(e @ MigrateError::NotKubernetes(_)) => return Err(Failure::Usage(e.to_string())),
    };
    let mut json = serde_json::to_string_pretty(&model).map_err(|e| Failure::Other(e.into()))?;
    json.push('\n');
    if let Some(out) = &a.out {
        if out.exists() && !a.force {
            return Err(Failure::Usage(format!(
                "{} already exists; pass --force to replace it",
                out.display()
            )));
        }
        // The model may hold secrets: write it privately and atomically.
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let name = out
            .file_name()
            .map(PathBuf::from)
            .ok_or_else(|| Failure::Usage(format!("{} is not a file name", out.display())))?;
        let staging = tempfile::Builder::new()
            .prefix(".hke-migrate-")
            .tempdir_in(&dir)
            .map_err(|e| Failure::Other(e.into()))?;
        let mut tree = Tree::default();
        tree.add(&name, json.clone(), Mode::Secret);
        let inner = staging.path().join("out");
        tree.commit(&inner, false).map_err(|e| Failure::Other(e.into()))?;
        std::fs::rename(inner.join(&name), out)
            .map_err(|e| Failure::Other(anyhow::anyhow!("cannot write {}: {e}", out.display())))?;
    }
    match format {
        Format::Text => {
            for c in &changes {
                ui::say(&format!("changed: {}: {}", c.path, c.change));
            }
            ui::say(&format!("{} change(s)", changes.len()));
            if a.out.is_none() {
                ui::stdout(&json);
            }
        }
        Format::Json => ui::json(&serde_json::json!({
            "ok": true,
            "changes": changes,
            "output": a.out,
            "model": if a.out.is_none() { serde_json::to_value(&model).ok() } else { None },
        })),
    }
    Ok(())
}
