use rand::rngs::OsRng;

use super::{report_rejected, Failure, ModelArgs};
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The node (or machine-group pool) whose boot file to print; without
    /// it, the names are listed.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// The API server address to render (default: as planned).
    #[arg(long, value_name = "HOST")]
    pub endpoint: Option<String>,
}

pub fn run(a: Args, format: Format) -> Result<(), Failure> {
    let text = a.model.read(true)?;
    let p = crate::ops::generate::prepare(&text, &a.model.set, &mut OsRng, crate::ops::generate::now())
        .map_err(|r| report_rejected(r, format))?;
    let c = &p.cluster;
    let plan = crate::plan::plan(c).map_err(|e| Failure::Other(e.into()))?;
    let Some(node) = &a.node else {
        let names: Vec<&str> = plan
            .resources
            .values()
            .filter(|r| {
                matches!(
                    r.spec,
                    hke_provider_api::Spec::Machine(_) | hke_provider_api::Spec::MachineGroup(_)
                )
            })
            .map(|r| r.name.as_str())
            .collect();
        ui::stdout(&names.join("\n"));
        return Ok(());
    };
    let r = crate::render::Renderer::new(c, &p.pki, &plan.pod_cidrs).map_err(|e| Failure::Other(e.into()))?;
    let endpoint = a.endpoint.clone().unwrap_or_else(|| crate::cluster::endpoint_host(c));
    let f = r.node(node, &endpoint).map_err(|e| match e {
        crate::render::RenderError::UnknownNode(_) => {
            Failure::Usage(format!("{e}; `hke render -m FILE` lists the names"))
        }
        other => Failure::Other(other.into()),
    })?;
    ui::stdout(&f.content);
    Ok(())
}
