//! CNI configuration, computed from the cluster — never hand-written.
//!
//! Windows: OutBoundNAT exceptions are the cluster (pod) CIDR, the service
//! CIDR and the node network CIDR (traffic to those keeps its source
//! address); a ROUTE policy with NeedEncap sends service traffic through the
//! host; DNS is the cluster DNS IP with the cluster's search suffix.

use serde_json::{json, Value};

use crate::cluster::{Cluster, Pool};
use crate::model::types::NetworkPlugin;

/// Placeholder the Windows script replaces with the node's pod CIDR once the
/// control plane has assigned it (kubenet).
pub const POD_CIDR_PLACEHOLDER: &str = "__HKE_POD_CIDR__";

/// VXLAN network identifier for overlay plugins (Windows needs ≥ 4096).
pub const VXLAN_VNI: u32 = 4096;
pub const VXLAN_PORT: u16 = 4789;

pub fn hns_network_name(p: NetworkPlugin) -> &'static str {
    match p {
        NetworkPlugin::Kubenet => "l2bridge",
        NetworkPlugin::Flannel => "flannel.4096",
        NetworkPlugin::Calico => "Calico",
        NetworkPlugin::Azure => "azure",
    }
}

pub fn hns_network_type(p: NetworkPlugin) -> &'static str {
    match p {
        NetworkPlugin::Kubenet | NetworkPlugin::Azure => "L2Bridge",
        NetworkPlugin::Flannel | NetworkPlugin::Calico => "Overlay",
    }
}

/// The OutBoundNAT exception list.
pub fn outbound_nat_exceptions(c: &Cluster) -> Vec<String> {
    let mut v = vec![
        c.network.pod_cidr.to_string(),
        c.network.service_cidr.to_string(),
        c.network.node_cidr.to_string(),
    ];
    v.dedup();
    v
}

fn v1_policies(c: &Cluster) -> Value {
    json!([
        {"Name": "EndpointPolicy", "Value": {"Type": "OutBoundNAT", "ExceptionList": outbound_nat_exceptions(c)}},
        {"Name": "EndpointPolicy", "Value": {"Type": "ROUTE", "DestinationPrefix": c.network.service_cidr.to_string(), "NeedEncap": true}}
    ])
}

fn dns(c: &Cluster) -> Value {
    json!({
        "Nameservers": [c.network.dns_service_ip.to_string()],
        "Search": [format!("svc.{}", c.network.cluster_domain), c.network.cluster_domain.clone()]
    })
}

/// The Windows CNI configuration of a pool's nodes. `pod_cidr` is the node's
/// pod range when known at render time (kubenet otherwise gets a placeholder
/// the script fills in).
pub fn windows_config(c: &Cluster, _pool: &Pool, pod_cidr: Option<&str>) -> Value {
    match c.network.plugin {
        NetworkPlugin::Kubenet => json!({
            "cniVersion": "0.3.0",
            "name": hns_network_name(NetworkPlugin::Kubenet),
            "type": "win-bridge",
            "master": "Ethernet",
            "capabilities": {"portMappings": true, "dns": true},
            "ipam": {"type": "host-local", "subnet": pod_cidr.unwrap_or(POD_CIDR_PLACEHOLDER)},
            "dns": dns(c),
            "policies": v1_policies(c),
        }),
        NetworkPlugin::Flannel => json!({
            "cniVersion": "0.3.0",
            "name": hns_network_name(NetworkPlugin::Flannel),
            "type": "flannel",
            "capabilities": {"portMappings": true, "dns": true},
            "delegate": {
                "type": "win-overlay",
                "dns": dns(c),
                "policies": v1_policies(c),
            },
        }),
        NetworkPlugin::Calico => json!({
            "cniVersion": "0.3.1",
            "name": hns_network_name(NetworkPlugin::Calico),
            "type": "calico",
            "mode": "vxlan",
            "vxlan_vni": VXLAN_VNI,
            "capabilities": {"portMappings": true, "dns": true},
            "ipam": {"type": "calico-ipam", "subnet": "usePodCidr"},
            "dns": dns(c),
            "policies": v1_policies(c),
        }),
        NetworkPlugin::Azure => json!({
            "cniVersion": "0.3.0",
            "name": "azure",
            "plugins": [{
                "type": "azure-vnet",
                "mode": "bridge",
                "bridge": "azure0",
                "capabilities": {"portMappings": true, "dns": true},
                "ipam": {"type": "azure-vnet-ipam"},
                "dns": dns(c),
                "AdditionalArgs": [
                    {"Name": "EndpointPolicy", "Value": {"Type": "OutBoundNAT", "ExceptionList": outbound_nat_exceptions(c)}},
                    {"Name": "EndpointPolicy", "Value": {"Type": "ROUTE", "DestinationPrefix": c.network.service_cidr.to_string(), "NeedEncap": true}}
                ]
            }]
        }),
    }
}

/// Where Windows nodes get the CNI plugin binaries for a plugin.
pub fn windows_plugins_url(p: NetworkPlugin) -> String {
    let t = crate::versions::table();
    match p {
        NetworkPlugin::Azure => t.addons.azure_cni_windows.clone(),
        _ => t.addons.cni_plugins_windows.clone(),
    }
}

/// Manifests the first master applies for the network plugin (Linux side and
/// the Windows HostProcess DaemonSets where the plugin needs them).
pub fn linux_manifest_urls(c: &Cluster) -> Vec<String> {
    let t = crate::versions::table();
    let windows = c.windows.is_some();
    let mut v = Vec::new();
    match c.network.plugin {
        NetworkPlugin::Flannel => {
            v.push(t.addons.flannel.clone());
            if windows {
                v.push(t.addons.flannel_windows.clone());
                v.push(t.addons.kube_proxy_windows.clone());
            }
        }
        NetworkPlugin::Calico => {
            v.push(t.addons.calico.clone());
            if windows {
                v.push(t.addons.calico_windows.clone());
                v.push(t.addons.kube_proxy_windows.clone());
            }
        }
        NetworkPlugin::Kubenet | NetworkPlugin::Azure => {
            if windows {
                v.push(t.addons.kube_proxy_windows.clone());
            }
        }
    }
    v
}
