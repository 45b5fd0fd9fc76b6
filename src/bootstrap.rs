//! What each machine is given at first boot.
//!
//! Until the bootstrap renderer lands (cloud-init and PowerShell from
//! templates), every machine receives its node manifest: a JSON document with
//! everything its bootstrap needs that is not secret — name, role, OS, pool,
//! labels, taints, pod CIDR, versions and the resolved API endpoint.

use std::collections::BTreeMap;

use serde_json::json;

use crate::cluster::Cluster;
use crate::engine::Bootstrap;
use crate::model::types::OsType;
use crate::plan::Plan;

pub struct NodeManifests {
    nodes: BTreeMap<String, serde_json::Value>,
}

impl NodeManifests {
    pub fn new(c: &Cluster, plan: &Plan) -> NodeManifests {
        let mut nodes = BTreeMap::new();
        let common =
            |role: &str, os: &str, pool: Option<&str>, labels: &BTreeMap<String, String>, taints: &[String]| {
                json!({
                    "cluster": c.name,
                    "role": role,
                    "os": os,
                    "pool": pool,
                    "kubernetesVersion": c.kubernetes,
                    "containerdVersion": c.containerd_version,
                    "networkPlugin": c.network.plugin,
                    "serviceCidr": c.network.service_cidr,
                    "clusterCidr": c.network.pod_cidr,
                    "dnsServiceIP": c.network.dns_service_ip,
                    "labels": labels,
                    "taints": taints,
                })
            };
        for n in &c.masters.names {
            let mut v = common("control-plane", "linux", None, &BTreeMap::new(), &[]);
            v["node"] = json!(n);
            v["podCidr"] = json!(plan.pod_cidrs.get(n));
            nodes.insert(n.clone(), v);
        }
        for p in &c.pools {
            let os = if p.os == OsType::Windows { "windows" } else { "linux" };
            // A machine group's instances share one bootstrap.
            let mut g = common("worker", os, Some(&p.name), &p.labels, &p.taints);
            g["instances"] = json!(p.count);
            if let Some(w) = p.windows {
                g["windowsVersion"] = json!(w);
            }
            nodes.insert(crate::plan::group_name(c, &p.name), g);
            for n in &p.node_names {
                let mut v = common("worker", os, Some(&p.name), &p.labels, &p.taints);
                v["node"] = json!(n);
                v["podCidr"] = json!(plan.pod_cidrs.get(n));
                if let Some(w) = p.windows {
                    v["windowsVersion"] = json!(w);
                }
                nodes.insert(n.clone(), v);
            }
        }
        NodeManifests { nodes }
    }
}

impl Bootstrap for NodeManifests {
    fn user_data(&self, node: &str, inputs: &BTreeMap<String, String>) -> Result<String, String> {
        let mut v = self
            .nodes
            .get(node)
            .cloned()
            .ok_or_else(|| format!("no bootstrap for node {node}"))?;
        v["inputs"] = json!(inputs);
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
    }
}
