//! The capacity of the networks: the node count, the node range, the pod
//! range for the plugin, and the AWS route table's limit.

use crate::cluster::defaults;
use crate::cluster::Pool;
use crate::model::types::{Cloud, NetworkPlugin};

use super::kubernetes::Kube;
use super::V;

const MAX_NODES: u64 = 5000;

/// AWS's default "Routes per route table (non-propagated routes)" (Amazon
/// VPC quotas).
pub const AWS_ROUTES_PER_TABLE: u64 = 50;
/// Routes of the cluster's route table besides the nodes' (0.0.0.0/0 to the
/// internet gateway).
const AWS_FIXED_ROUTES: u64 = 1;

/// The networks hold every node: the node count, then the node range, the
/// pod range for the plugin, and the AWS route table.
pub(super) fn capacity(v: &mut V<'_>, cloud: Cloud, kube: &Kube, master_count: u32, pools: &[Pool]) {
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    let mpath = "properties.masterProfile";
    let node_cidr = kube.node_cidr;
    let nodes = u64::from(master_count) + pools.iter().map(|p| u64::from(p.count)).sum::<u64>();
    if nodes > MAX_NODES {
        v.err(
            "properties.agentPoolProfiles",
            format!("{nodes} nodes is more than hke supports ({MAX_NODES})"),
            None,
        );
    }
    if node_cidr.size() < nodes + 16 {
        v.err(
            &format!("{mpath}.vnetCidr"),
            format!("vnetCidr {node_cidr} has too few addresses for {nodes} nodes"),
            "use a larger range such as 10.240.0.0/16".to_string(),
        );
    }
    plugin_capacity(v, kube, nodes);
    // AWS: the cluster's route table holds the default route and, with
    // kubenet, one route per node; "Routes per route table (non-propagated
    // routes)" defaults to 50 (Amazon VPC quotas, docs.aws.amazon.com/vpc/
    // latest/userguide/amazon-vpc-limits.html). Over that, CreateRoute fails
    // mid-deploy: refuse the model instead.
    if kube.plugin == NetworkPlugin::Kubenet && cloud == Cloud::Aws && nodes + AWS_FIXED_ROUTES > AWS_ROUTES_PER_TABLE {
        v.err(
            &format!("{kpath}.networkPlugin"),
            format!(
                "networkPlugin \"kubenet\" on AWS needs {} routes in the cluster's route table ({nodes} nodes and the \
                 default route), over the {AWS_ROUTES_PER_TABLE} a route table holds by default",
                nodes + AWS_FIXED_ROUTES
            ),
            format!(
                "use networkPlugin flannel or calico, or at most {} nodes with kubenet",
                AWS_ROUTES_PER_TABLE - AWS_FIXED_ROUTES
            ),
        );
    }
}

/// The pod range (or, with Azure CNI, the node range) holds every node's pods.
fn plugin_capacity(v: &mut V<'_>, kube: &Kube, nodes: u64) {
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    let mpath = "properties.masterProfile";
    let (plugin, node_cidr, pod_cidr, max_pods) = (kube.plugin, kube.node_cidr, kube.pod_cidr, kube.max_pods);
    match plugin {
        NetworkPlugin::Kubenet | NetworkPlugin::Flannel => {
            let cap = if pod_cidr.prefix() <= defaults::NODE_POD_CIDR_MASK {
                1u64 << (defaults::NODE_POD_CIDR_MASK - pod_cidr.prefix())
            } else {
                0
            };
            if cap < nodes {
                v.err(
                    &format!("{kpath}.clusterSubnet"),
                    format!("clusterSubnet {pod_cidr} holds {cap} node pod ranges (/24 each) but the cluster has {nodes} nodes"),
                    format!("use a larger range such as {}", defaults::default_pod_cidr(nodes)),
                );
            }
        }
        NetworkPlugin::Calico => {
            if pod_cidr.size() < nodes * 64 {
                v.err(
                    &format!("{kpath}.clusterSubnet"),
                    format!("clusterSubnet {pod_cidr} is too small for {nodes} nodes"),
                    format!("use a larger range such as {}", defaults::default_pod_cidr(nodes)),
                );
            }
        }
        NetworkPlugin::Azure => {
            let need = nodes * (u64::from(max_pods) + 1) + 16;
            if node_cidr.size() < need {
                v.err(
                    &format!("{mpath}.vnetCidr"),
                    format!(
                        "with Azure CNI every node takes {} addresses; vnetCidr {node_cidr} cannot hold {nodes} nodes",
                        max_pods + 1
                    ),
                    "use a larger vnetCidr such as 10.240.0.0/12, or lower maxPods".to_string(),
                );
            }
        }
    }
}
