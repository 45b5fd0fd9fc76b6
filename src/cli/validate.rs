use rand::rngs::OsRng;

use super::{report_rejected, Failure, ModelArgs};
use crate::ops::generate;
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(a: Args, format: Format) -> Result<(), Failure> {
    let text = a.model.read(true)?;
    let prepared =
        generate::prepare(&text, &a.model.set, &mut OsRng, generate::now()).map_err(|r| report_rejected(r, format))?;
    match format {
        Format::Text => {
            ui::diagnostics(&prepared.warnings);
            ui::say(&format!("{} is valid", a.model.name()));
        }
        Format::Json => {
            ui::json(&serde_json::json!({ "ok": true, "warnings": prepared.warnings, "cluster": prepared.cluster }))
        }
    }
    Ok(())
}
