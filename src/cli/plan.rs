use rand::rngs::OsRng;

use super::{report_rejected, Failure, ModelArgs};
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print Graphviz DOT (render with `dot -Tsvg`).
    #[arg(long, conflicts_with = "json")]
    pub dot: bool,
    /// Print the plan as JSON (what `generate` writes to plan.json).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args, format: Format) -> Result<(), Failure> {
    let text = a.model.read(true)?;
    let prepared = crate::ops::generate::prepare(&text, &a.model.set, &mut OsRng, crate::ops::generate::now())
        .map_err(|r| report_rejected(r, format))?;
    let plan = crate::plan::plan(&prepared.cluster).map_err(|e| Failure::Usage(e.to_string()))?;
    if a.dot {
        ui::stdout(&plan.to_dot());
    } else if a.json || format == Format::Json {
        ui::json(&serde_json::to_value(&plan).unwrap_or_default());
    } else {
        let mut out = String::new();
        for id in plan.topological_order().map_err(|e| Failure::Other(e.into()))? {
            let p = &plan.resources[&id];
            out.push_str(&format!(
                "{:<14} {:<44} after {}\n",
                p.spec.kind(),
                p.name,
                if p.depends_on.is_empty() {
                    "-".to_string()
                } else {
                    p.depends_on.join(", ")
                }
            ));
        }
        let counts: Vec<String> = plan.summary().iter().map(|(k, n)| format!("{n} {k}")).collect();
        out.push_str(&format!("{} resources: {}\n", plan.resources.len(), counts.join(", ")));
        ui::stdout(&out);
    }
    Ok(())
}
