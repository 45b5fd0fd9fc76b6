//! What each machine is given at first boot: its rendered boot file
//! (cloud-init or PowerShell), rendered once the values it needs from other
//! resources (the API server's address) are known.

use std::collections::BTreeMap;

use crate::cluster::Cluster;
use crate::engine::Bootstrap;
use crate::pki::Pki;
use crate::plan::{Plan, INPUT_ENDPOINT};
use crate::render::Renderer;

/// Renders boot files for the engine.
pub struct BootFiles {
    cluster: Cluster,
    pki: Pki,
    pod_cidrs: BTreeMap<String, String>,
}

impl BootFiles {
    pub fn new(c: &Cluster, pki: &Pki, plan: &Plan) -> BootFiles {
        BootFiles {
            cluster: c.clone(),
            pki: pki.clone(),
            pod_cidrs: plan.pod_cidrs.clone(),
        }
    }
}

impl Bootstrap for BootFiles {
    fn user_data(&self, node: &str, inputs: &BTreeMap<String, String>) -> Result<String, String> {
        let endpoint = inputs
            .get(INPUT_ENDPOINT)
            .cloned()
            .unwrap_or_else(|| crate::cluster::endpoint_host(&self.cluster));
        let r = Renderer::new(&self.cluster, &self.pki, &self.pod_cidrs).map_err(|e| e.to_string())?;
        r.node(node, &endpoint).map(|f| f.content).map_err(|e| e.to_string())
    }

    fn login(&self, os: &hke_provider_api::Os) -> Option<hke_provider_api::Login> {
        crate::cluster::login(&self.cluster, os)
    }
}
