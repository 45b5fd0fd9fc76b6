//! The cluster add-ons hke installs, rendered by hke itself: pinned
//! versions and images, the cluster's own values (pod and service ranges,
//! VXLAN VNI and port), placed on the first master and applied from there.
//! Nothing is fetched from a URL at boot, so what the tests apply is exactly
//! what a cluster gets, and private mirrors only need the images.
//!
//! Objects are built as JSON values and written as YAML documents (JSON is
//! YAML), so no value can break the document's structure.

use serde_json::{json, Value};

use super::cni;
use super::{FileKind, RenderError, WriteFile};
use crate::cluster::Cluster;
use crate::model::types::NetworkPlugin;

/// Pinned add-on versions (data/versions.json holds the URLs of binaries).
pub mod images {
    /// flannel release and its CNI plugin image (flannel-io/flannel
    /// chart/kube-flannel/values.yaml of v0.28.9).
    pub const FLANNEL: &str = "ghcr.io/flannel-io/flannel:v0.28.9";
    pub const FLANNEL_CNI_PLUGIN: &str = "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel2";
}

/// A manifest file: its objects as YAML documents.
fn documents(objects: &[Value]) -> String {
    let mut out = String::from("# Rendered by hke for this cluster; applied by the first master.\n");
    for o in objects {
        out.push_str("---\n");
        out.push_str(&serde_json::to_string_pretty(o).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// The manifests of a cluster's network plugin, by file name.
pub fn manifests(c: &Cluster) -> Result<Vec<(String, String)>, RenderError> {
    let mut out = Vec::new();
    if c.network.plugin == NetworkPlugin::Flannel {
        out.push(("20-flannel.yaml".to_string(), documents(&flannel(c))));
    }
    Ok(out)
}

/// Files every Linux node gets for the network plugin, beyond the kubeadm
/// configuration and containerd's: Azure CNI's configuration list (flannel
/// installs its CNI files from its DaemonSet; kubenet writes its bridge once
/// the node has its range).
pub fn linux_node_files(c: &Cluster) -> Vec<WriteFile> {
    match c.network.plugin {
        NetworkPlugin::Azure => vec![WriteFile::new(
            "/etc/cni/net.d/10-azure.conflist",
            "0644",
            FileKind::Cni,
            azure_linux_cni(),
        )],
        _ => Vec::new(),
    }
}

/// Azure CNI on Linux: azure-vnet in bridge mode with azure-vnet-ipam
/// (pods take the NIC's secondary addresses), then portmap
/// (azure-container-networking cni/azure-linux.conflist).
fn azure_linux_cni() -> String {
    serde_json::to_string_pretty(&json!({
        "cniVersion": "0.3.0",
        "name": "azure",
        "plugins": [
            {
                "type": "azure-vnet",
                "mode": "bridge",
                "bridge": "azure0",
                "ipam": {"type": "azure-vnet-ipam"}
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
        ]
    }))
    .unwrap_or_default()
}

/// flannel's net-conf.json, the same on Linux (in the ConfigMap) and on
/// Windows (beside flanneld.exe). Windows' VXLAN needs VNI ≥ 4096 and UDP
/// 4789 and Linux must use the same to interoperate (flannel
/// Documentation/backends.md; pkg/backend/vxlan/vxlan_windows.go rejects
/// other values; Linux's default is VNI 1 on port 8472).
pub fn flannel_net_conf(c: &Cluster) -> String {
    serde_json::to_string_pretty(&json!({
        "Network": c.network.pod_cidr.to_string(),
        "EnableNFTables": false,
        "Backend": {
            "Type": "vxlan",
            "VNI": cni::VXLAN_VNI,
            "Port": cni::VXLAN_PORT,
        }
    }))
    .unwrap_or_default()
}

/// flannel's Linux CNI configuration list (the flannel plugin delegating
/// to bridge, plus portmap), installed by the DaemonSet's init container.
fn flannel_linux_cni() -> String {
    serde_json::to_string_pretty(&json!({
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": true, "isDefaultGateway": true}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    }))
    .unwrap_or_default()
}

/// The flannel Linux CNI list, as a file, for checks.
pub fn flannel_linux_cni_file() -> WriteFile {
    WriteFile::new(
        "/etc/cni/net.d/10-flannel.conflist",
        "0644",
        FileKind::Cni,
        flannel_linux_cni(),
    )
}

const FLANNEL_NS: &str = "kube-flannel";

/// flannel on Linux: namespace, RBAC, configuration and the DaemonSet
/// (objects and fields as in flannel v0.28's kube-flannel.yml). Windows
/// nodes run flanneld.exe as a service with the node's own credentials
/// (templates/windows/node.ps1.hbs): flannel publishes no Windows image.
fn flannel(c: &Cluster) -> Vec<Value> {
    let labels = json!({"app": "flannel", "k8s-app": "flannel", "tier": "node"});
    vec![
        json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": FLANNEL_NS, "labels": {
                "k8s-app": "flannel",
                "pod-security.kubernetes.io/enforce": "privileged"
            }}
        }),
        json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "flannel", "namespace": FLANNEL_NS, "labels": {"k8s-app": "flannel"}}
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "flannel", "labels": {"k8s-app": "flannel"}},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}
            ]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "flannel", "labels": {"k8s-app": "flannel"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flannel"},
            "subjects": [{"kind": "ServiceAccount", "name": "flannel", "namespace": FLANNEL_NS}]
        }),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-flannel-cfg", "namespace": FLANNEL_NS, "labels": labels},
            "data": {
                "cni-conf.json": flannel_linux_cni(),
                "net-conf.json": flannel_net_conf(c),
            }
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "kube-flannel-ds", "namespace": FLANNEL_NS, "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app": "flannel"}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": [
                                {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                            ]}]
                        }}},
                        "hostNetwork": true,
                        "priorityClassName": "system-node-critical",
                        "tolerations": [
                            {"operator": "Exists", "effect": "NoSchedule"},
                            {"operator": "Exists", "effect": "NoExecute"}
                        ],
                        "serviceAccountName": "flannel",
                        "initContainers": [
                            {
                                "name": "install-cni-plugin",
                                "image": images::FLANNEL_CNI_PLUGIN,
                                "command": ["cp"],
                                "args": ["-f", "/flannel", "/opt/cni/bin/flannel"],
                                "volumeMounts": [{"name": "cni-plugin", "mountPath": "/opt/cni/bin"}]
                            },
                            {
                                "name": "install-cni",
                                "image": images::FLANNEL,
                                "command": ["cp"],
                                "args": ["-f", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"],
                                "volumeMounts": [
                                    {"name": "cni", "mountPath": "/etc/cni/net.d"},
                                    {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"}
                                ]
                            }
                        ],
                        "containers": [{
                            "name": "kube-flannel",
                            "image": images::FLANNEL,
                            "command": ["/opt/bin/flanneld"],
                            "args": ["--ip-masq", "--kube-subnet-mgr"],
                            "resources": {"requests": {"cpu": "100m", "memory": "50Mi"}},
                            "securityContext": {"privileged": false, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                            "env": [
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "EVENT_QUEUE_DEPTH", "value": "5000"}
                            ],
                            "volumeMounts": [
                                {"name": "run", "mountPath": "/run/flannel"},
                                {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
                                {"name": "xtables-lock", "mountPath": "/run/xtables.lock"}
                            ]
                        }],
                        "volumes": [
                            {"name": "run", "hostPath": {"path": "/run/flannel"}},
                            {"name": "cni-plugin", "hostPath": {"path": "/opt/cni/bin"}},
                            {"name": "cni", "hostPath": {"path": "/etc/cni/net.d"}},
                            {"name": "flannel-cfg", "configMap": {"name": "kube-flannel-cfg"}},
                            {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}}
                        ]
                    }
                }
            }
        }),
    ]
}
