//! What a node registers with, read from its boot file the way the node's
//! own programs read it: on Linux, kubeadm's nodeRegistration in the
//! `/etc/hke/kubeadm.yaml` cloud-init writes; on Windows, the kubelet's
//! command line in the PowerShell script. The tests register kwok nodes
//! from this, so a label or taint the boot file does not give the kubelet is
//! not on the simulated node either.

use base64::Engine;
use hke::model::types::OsType;
use serde_yaml::Value;

use crate::kube::{sim_node_from, SimNode};

/// The files a Linux boot file's cloud-init writes, decoded.
pub fn linux_files(name: &str, boot: &str) -> Vec<(String, String)> {
    let doc: Value = serde_yaml::from_str(boot).unwrap_or_else(|e| panic!("{name}: cloud-init: {e}"));
    doc["write_files"]
        .as_sequence()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            let content = f["content"].as_str().unwrap_or_default();
            let text = if f["encoding"] == "b64" {
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(content)
                        .unwrap_or_else(|e| panic!("{name}: {}: {e}", f["path"].as_str().unwrap_or("?"))),
                )
                .expect("utf-8")
            } else {
                content.to_string()
            };
            (f["path"].as_str().unwrap_or_default().to_string(), text)
        })
        .collect()
}

/// The single-quoted strings of the Windows script's `$KubeletArgs = @( ... )`,
/// the kubelet service's command line.
fn windows_kubelet_args(name: &str, boot: &str) -> Vec<String> {
    let start = boot
        .find("$KubeletArgs = @(")
        .unwrap_or_else(|| panic!("{name}: the Windows script sets no $KubeletArgs"));
    let body = &boot[start..];
    let end = body
        .find("\n)")
        .unwrap_or_else(|| panic!("{name}: $KubeletArgs does not end"));
    body[..end]
        .lines()
        .skip(1)
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix('\'')
                .and_then(|l| l.strip_suffix('\''))
                .map(|s| s.replace("''", "'"))
        })
        .collect()
}

/// How a machine registers, read from its boot file alone (cloud-init or
/// PowerShell) as the node's own programs read it: on Linux, kubeadm's
/// configuration in `/etc/hke/kubeadm.yaml`; on Windows, the kubelet
/// service's arguments. `name` is the machine's host name (a scale-set
/// instance's for a group); `image` the machine's image (`windows-2022`),
/// whose OS build the kubelet reports.
pub fn from_boot_file(name: &str, boot: &str, image: &str) -> SimNode {
    if boot.starts_with("#cloud-config") {
        let kubeadm = linux_files(name, boot)
            .into_iter()
            .find(|(p, _)| p == "/etc/hke/kubeadm.yaml")
            .map(|(_, t)| t)
            .unwrap_or_else(|| panic!("{name}: no /etc/hke/kubeadm.yaml in write_files"));
        sim_node_from(OsType::Linux, &[], Some(&kubeadm), name, image)
    } else {
        sim_node_from(OsType::Windows, &windows_kubelet_args(name, boot), None, name, image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::planned_nodes;
    use crate::nodes::{specs, variants};
    use crate::support::{example, now, rng};

    /// Read from the boot file (as the node does) or from hke's typed
    /// NodeSpec (as `kube::planned_nodes` does), a node registers the same.
    #[test]
    fn the_boot_file_and_the_node_spec_register_the_same_node() {
        for (variant, p) in variants() {
            let planned = planned_nodes(&p);
            let plan = hke::plan::plan(&p.cluster).expect("plan");
            let mut seen = 0;
            for (_, spec) in specs(&p) {
                for node in planned.iter().filter(|n| {
                    n.name == spec.name.to_lowercase()
                        || plan.resources.values().any(|r| {
                            r.name == spec.name
                                && matches!(&r.spec, hke_provider_api::Spec::MachineGroup(g) if n.name.starts_with(g.name_prefix.as_str()))
                        })
                }) {
                    let image = match node.windows_version.as_deref() {
                        Some(v) => format!("windows-{v}"),
                        None => "ubuntu".to_string(),
                    };
                    let read = from_boot_file(&node.name, &spec.boot.content, &image);
                    assert_eq!(read.labels, node.labels, "{variant} {}", node.name);
                    assert_eq!(read.taints, node.taints, "{variant} {}", node.name);
                    assert_eq!(read.control_plane, node.control_plane, "{variant} {}", node.name);
                    seen += 1;
                }
            }
            assert_eq!(seen, planned.len(), "{variant}: every planned node compared");
        }
    }

    #[test]
    fn a_pools_register_with_taints_reaches_its_windows_kubelet_only() {
        let set: hke::model::load::SetArg =
            "properties.agentPoolProfiles[1].kubernetesConfig.kubeletConfig.--register-with-taints=os=windows:NoSchedule"
                .parse()
                .expect("set");
        let p = hke::ops::generate::prepare(&example("windows.json"), &[set], &mut rng(3), now())
            .unwrap_or_else(|r| panic!("{:?}", r.diagnostics));
        let mut windows = 0;
        for (_, spec) in specs(&p) {
            let image = if spec.os == OsType::Windows {
                "windows-2022"
            } else {
                "ubuntu"
            };
            let r = from_boot_file(&spec.name.to_lowercase(), &spec.boot.content, image);
            let tainted = r
                .taints
                .iter()
                .any(|t| t.key == "os" && t.value == "windows" && t.effect == "NoSchedule");
            assert_eq!(tainted, r.os == OsType::Windows, "{}: {:?}", spec.name, r.taints);
            windows += usize::from(r.os == OsType::Windows);
            if r.os == OsType::Windows {
                // The build label is the kubelet's own, from the OS.
                assert_eq!(r.labels["node.kubernetes.io/windows-build"], "10.0.20348");
                assert!(
                    !r.kubelet_flags["node-labels"].contains("windows-build"),
                    "{:?}",
                    r.kubelet_flags
                );
            }
        }
        assert!(windows > 0);
    }

    /// A model's own `--node-labels` reach the kubelet with the pool's, on
    /// both OSes.
    #[test]
    fn a_models_node_labels_join_the_pools_on_linux_and_windows() {
        let sets: Vec<hke::model::load::SetArg> = [0, 1]
            .iter()
            .map(|i| {
                format!("properties.agentPoolProfiles[{i}].kubernetesConfig.kubeletConfig.--node-labels=team=blue")
                    .parse()
                    .expect("set")
            })
            .collect();
        let p = hke::ops::generate::prepare(&example("windows.json"), &sets, &mut rng(3), now())
            .unwrap_or_else(|r| panic!("{:?}", r.diagnostics));
        for (_, spec) in specs(&p).into_iter().filter(|(_, s)| !s.name.contains("master")) {
            let image = if spec.os == OsType::Windows {
                "windows-2022"
            } else {
                "ubuntu"
            };
            let r = from_boot_file(&spec.name.to_lowercase(), &spec.boot.content, image);
            assert_eq!(
                r.labels.get("team").map(String::as_str),
                Some("blue"),
                "{}: {:?}",
                spec.name,
                r.labels
            );
            assert!(r.labels.contains_key("hke.io/pool"), "{}: {:?}", spec.name, r.labels);
        }
    }
}
