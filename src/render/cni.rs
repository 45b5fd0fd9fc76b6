//! CNI configuration and the Windows data plane of each network plugin,
//! computed from the cluster — never hand-written.
//!
//! | plugin | Windows CNI | HNS network | kube-proxy |
//! |---|---|---|---|
//! | kubenet | `win-bridge` (containernetworking/plugins) with `apiVersion: 2` (HCN: containerd's pod namespaces are HCN namespaces, the v1 path fails with "failed to find HNSEndpoint"), host-local from `.3` | `l2bridge` (L2Bridge), made by the script over HNS with gateway `.1` and a host endpoint `.2` (kube-up's cluster/gce/windows k8s-node-setup.psm1) | kernelspace, `--network-name=l2bridge` |
//! | flannel | the `flannel` CNI plugin delegating to `win-overlay` with `apiVersion: 2` | `flannel.4096` (Overlay), made by flanneld (pkg/backend/vxlan/vxlan_windows.go) | kernelspace, `--network-name=flannel.4096`, `--source-vip` reserved with host-local from the node's flannel subnet (sig-windows-tools' former kube-proxy start.ps1, rke2's ReserveSourceVip) |
//! | azure | `azure-vnet` (Azure CNI) | `azure` (made by azure-vnet) | kernelspace |
//! | calico | `calico` (Calico for Windows) | `Calico` (made by calico-node) | kernelspace, `--source-vip` of `Calico_ep` |
//!
//! Policies in the HNS v2 form (`apiVersion: 2`): OutBoundNAT with
//! `Settings.Exceptions` — the cluster (pod), service and node ranges keep
//! their source address — and an SDNRoute with `NeedEncap` sending service
//! traffic through the host's VFP rules (containernetworking/plugins
//! pkg/hns/netconf_windows.go; win-overlay/sample-v2.conf).

use serde_json::{json, Value};

use crate::cluster::Cluster;
use crate::model::types::NetworkPlugin;

/// Placeholders the Windows script fills in at boot, once it knows the
/// node's pod range (kubenet: assigned by the first master) and address.
pub const POD_CIDR_PLACEHOLDER: &str = "__HKE_POD_CIDR__";
pub const POD_RANGE_START_PLACEHOLDER: &str = "__HKE_POD_RANGE_START__";
pub const NODE_IP_PLACEHOLDER: &str = "__HKE_NODE_IP__";

/// VXLAN network identifier and port for overlay plugins: Windows needs VNI
/// ≥ 4096 and port 4789, and Linux must match to interoperate (flannel
/// Documentation/backends.md).
pub const VXLAN_VNI: u32 = 4096;
pub const VXLAN_PORT: u16 = 4789;

pub fn hns_network_name(p: NetworkPlugin) -> &'static str {
    match p {
        NetworkPlugin::Kubenet => "l2bridge",
        // flannel names its VXLAN network flannel.<VNI> (vxlan_windows.go).
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

/// HNS v2 endpoint policies: OutBoundNAT and the service route.
fn v2_policies(c: &Cluster) -> Vec<Value> {
    vec![
        json!({"name": "EndpointPolicy", "value": {"Type": "OutBoundNAT", "Settings": {"Exceptions": outbound_nat_exceptions(c)}}}),
        json!({"name": "EndpointPolicy", "value": {"Type": "SDNRoute", "Settings": {"DestinationPrefix": c.network.service_cidr.to_string(), "NeedEncap": true}}}),
    ]
}

/// Azure CNI's AdditionalArgs (its own HNS v1 spelling).
fn azure_policies(c: &Cluster) -> Value {
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

/// The CNI version hke writes: every plugin it installs supports it.
pub const CNI_VERSION: &str = "0.3.1";

/// A CNI file: its name decides how containerd (go-cni) reads it — a
/// `.conflist` is a list with `plugins`, a `.conf` one plugin with a `type`;
/// a list in a `.conf` is refused.
#[derive(Debug, Clone)]
pub struct CniFile {
    pub file_name: &'static str,
    pub config: Value,
}

/// The Windows CNI configuration of a cluster's nodes. kubenet's values
/// that only the node knows are placeholders the script fills in.
pub fn windows_config(c: &Cluster) -> Option<CniFile> {
    let name = hns_network_name(c.network.plugin);
    match c.network.plugin {
        NetworkPlugin::Kubenet => {
            let mut policies = v2_policies(c);
            // The node itself is reached through the host endpoint, not
            // the bridge (kube-up: an SDNRoute for the management IP).
            policies.push(json!({"name": "EndpointPolicy", "value": {"Type": "SDNRoute", "Settings": {"DestinationPrefix": format!("{NODE_IP_PLACEHOLDER}/32"), "NeedEncap": true}}}));
            Some(CniFile {
                file_name: "10-l2bridge.conflist",
                config: json!({
                    "cniVersion": CNI_VERSION,
                    "name": name,
                    "plugins": [{
                        "type": "win-bridge",
                        "apiVersion": 2,
                        "capabilities": {"portMappings": true, "dns": true},
                        "ipam": {
                            "type": "host-local",
                            // .1 is the network's gateway and .2 the host
                            // endpoint: pods start at .3.
                            "ranges": [[{"subnet": POD_CIDR_PLACEHOLDER, "rangeStart": POD_RANGE_START_PLACEHOLDER}]],
                            "routes": [{"dst": "0.0.0.0/0"}]
                        },
                        "dns": dns(c),
                        "policies": policies,
                    }]
                }),
            })
        }
        NetworkPlugin::Flannel => Some(CniFile {
            file_name: "10-flannel.conflist",
            config: json!({
                "cniVersion": CNI_VERSION,
                // win-overlay finds the HNS network by this name.
                "name": name,
                "plugins": [{
                    "type": "flannel",
                    "capabilities": {"portMappings": true, "dns": true},
                    // The flannel plugin adds host-local IPAM over the node's
                    // lease and defaults to win-bridge without this
                    // (flannel-io/cni-plugin flannel_windows.go).
                    "delegate": {
                        "type": "win-overlay",
                        "apiVersion": 2,
                        "dns": dns(c),
                        "policies": v2_policies(c),
                    }
                }]
            }),
        }),
        // Calico for Windows writes its own CNI configuration (calico-node's
        // install step), from the values hke gives the service.
        NetworkPlugin::Calico => None,
        NetworkPlugin::Azure => Some(CniFile {
            file_name: "10-azure.conflist",
            config: json!({
                "cniVersion": CNI_VERSION,
                "name": name,
                "plugins": [{
                    "type": "azure-vnet",
                    "mode": "bridge",
                    "bridge": "azure0",
                    "capabilities": {"portMappings": true, "dns": true},
                    "ipam": {"type": "azure-vnet-ipam"},
                    "dns": dns(c),
                    "AdditionalArgs": azure_policies(c),
                }]
            }),
        }),
    }
}

/// Where Windows nodes get the CNI plugin binaries for a plugin.
pub fn windows_plugins_url(p: NetworkPlugin) -> String {
    let t = crate::catalog::versions::table();
    match p {
        NetworkPlugin::Azure => t.addons.azure_cni_windows.clone(),
        _ => t.addons.cni_plugins_windows.clone(),
    }
}
