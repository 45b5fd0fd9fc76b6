//! What a node registers with, read from its boot file the way the node's
//! own programs read it: on Linux, kubeadm's nodeRegistration in the
//! `/etc/hke/kubeadm.yaml` cloud-init writes; on Windows, the kubelet's
//! command line in the PowerShell script. The tests register kwok nodes
//! from this, so a label or taint the boot file does not give the kubelet is
//! not on the simulated node either.

use std::collections::BTreeMap;

use base64::Engine;
use hke::model::types::OsType;
use serde::Deserialize;
use serde_yaml::Value;

use crate::kube::{SimNode, Taint};

/// `k=v,k2=v2` as the kubelet's `--node-labels` takes it.
fn labels_arg(s: &str, into: &mut BTreeMap<String, String>) {
    for kv in s.split(',').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        into.insert(k.to_string(), v.to_string());
    }
}

/// `key=value:Effect,...` as `--register-with-taints` takes it.
fn taints_arg(s: &str) -> Vec<Taint> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            let (kv, effect) = t.rsplit_once(':').unwrap_or((t, ""));
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Taint {
                key: k.into(),
                value: v.into(),
                effect: effect.into(),
            }
        })
        .collect()
}

/// The labels every kubelet sets on its own Node (pkg/kubelet/
/// kubelet_node_status.go, initialNode: hostname, os and arch from the
/// running binary).
fn own_labels(name: &str, os: &str, labels: &mut BTreeMap<String, String>) {
    labels.insert("kubernetes.io/hostname".into(), name.into());
    labels.insert("kubernetes.io/os".into(), os.into());
    labels.insert("kubernetes.io/arch".into(), "amd64".into());
}

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

/// How a machine registers, read from its boot file alone (cloud-init or
/// PowerShell). `name` is the machine's name (a scale-set instance's for a
/// group, which the script learns at boot).
pub fn from_boot_file(name: &str, boot: &str) -> SimNode {
    if boot.starts_with("#cloud-config") {
        linux(name, boot)
    } else {
        windows(name, boot)
    }
}

fn linux(name: &str, boot: &str) -> SimNode {
    let text = linux_files(name, boot)
        .into_iter()
        .find(|(p, _)| p == "/etc/hke/kubeadm.yaml")
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("{name}: no /etc/hke/kubeadm.yaml in write_files"));
    let mut kubelet_labels = BTreeMap::new();
    let mut kubelet_taints = Vec::new();
    let mut kubelet_flags = BTreeMap::new();
    let mut kubeadm_taints = Vec::new();
    let mut control_plane = false;
    for d in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(d).unwrap_or_else(|e| panic!("{name}: kubeadm.yaml: {e}"));
        let kind = v["kind"].as_str().unwrap_or_default();
        if kind != "InitConfiguration" && kind != "JoinConfiguration" {
            continue;
        }
        control_plane = kind == "InitConfiguration" || !v["controlPlane"].is_null();
        let reg = &v["nodeRegistration"];
        // kubeadm v1beta4: kubeletExtraArgs is a list of {name, value}.
        for a in reg["kubeletExtraArgs"].as_sequence().cloned().unwrap_or_default() {
            let (n, val) = (
                a["name"].as_str().unwrap_or_default(),
                a["value"].as_str().unwrap_or_default(),
            );
            kubelet_flags.insert(n.to_string(), val.to_string());
            match n {
                "node-labels" => labels_arg(val, &mut kubelet_labels),
                "register-with-taints" => kubelet_taints.extend(taints_arg(val)),
                _ => {}
            }
        }
        match reg["taints"].as_sequence() {
            // kubeadm hands nodeRegistration.taints to the kubelet as
            // --register-with-taints (cmd/kubeadm/app/phases/kubelet
            // flags.go).
            Some(list) => kubelet_taints.extend(list.iter().map(|t| Taint {
                key: t["key"].as_str().unwrap_or_default().into(),
                value: t["value"].as_str().unwrap_or_default().into(),
                effect: t["effect"].as_str().unwrap_or_default().into(),
            })),
            // Left out (nil) on a control-plane node: kubeadm's default
            // control-plane taint (v1beta4 SetDefaults_NodeRegistration),
            // set by its mark-control-plane phase.
            None if control_plane => kubeadm_taints.push(Taint {
                key: "node-role.kubernetes.io/control-plane".into(),
                value: String::new(),
                effect: "NoSchedule".into(),
            }),
            None => {}
        }
    }
    own_labels(name, "linux", &mut kubelet_labels);
    let mut labels = kubelet_labels.clone();
    if control_plane {
        // kubeadm's mark-control-plane phase: the role label and the
        // exclusion from external load balancers, both empty.
        labels.insert("node-role.kubernetes.io/control-plane".into(), String::new());
        labels.insert(
            "node.kubernetes.io/exclude-from-external-load-balancers".into(),
            String::new(),
        );
    }
    let mut taints = kubelet_taints.clone();
    taints.extend(kubeadm_taints);
    SimNode {
        name: name.to_string(),
        os: OsType::Linux,
        labels,
        taints,
        kubelet_labels,
        kubelet_taints,
        kubelet_flags,
        windows_version: None,
        control_plane,
    }
}

/// The single-quoted strings of `$KubeletArgs = @( ... )`.
fn kubelet_args(boot: &str) -> Vec<String> {
    let start = boot
        .find("$KubeletArgs = @(")
        .expect("the Windows script sets $KubeletArgs");
    let body = &boot[start..];
    let end = body.find("\n)").expect("$KubeletArgs ends");
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

fn windows(name: &str, boot: &str) -> SimNode {
    let mut labels = BTreeMap::new();
    let mut taints = Vec::new();
    let mut flags = BTreeMap::new();
    for a in kubelet_args(boot) {
        let a = a.replace(hke::render::NODE_NAME_PLACEHOLDER, name);
        let (k, v) = a
            .trim_start_matches('-')
            .split_once('=')
            .unwrap_or((a.trim_start_matches('-'), "true"));
        flags.insert(k.to_string(), v.to_string());
        match k {
            "node-labels" => labels_arg(v, &mut labels),
            "register-with-taints" => taints.extend(taints_arg(v)),
            _ => {}
        }
    }
    own_labels(name, "windows", &mut labels);
    SimNode {
        name: name.to_string(),
        os: OsType::Windows,
        labels: labels.clone(),
        taints: taints.clone(),
        kubelet_labels: labels,
        kubelet_taints: taints,
        kubelet_flags: flags,
        windows_version: None,
        control_plane: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::{specs, variants};
    use crate::support::{example, now, rng};

    /// The same labels reach the kubelet whichever way one reads them:
    /// from the boot file (as the node does) or from hke's typed NodeSpec.
    #[test]
    fn every_boot_file_registers_its_pool_labels_build_and_role() {
        for (variant, p) in variants() {
            for (_, spec) in specs(&p) {
                let r = from_boot_file(&spec.name, &spec.boot.content);
                let from_spec: Vec<&String> = spec
                    .kubelet_args
                    .iter()
                    .filter(|a| a.starts_with("--node-labels="))
                    .collect();
                for a in from_spec {
                    let mut want = BTreeMap::new();
                    labels_arg(a.trim_start_matches("--node-labels="), &mut want);
                    for (k, v) in want {
                        assert_eq!(r.labels.get(&k), Some(&v), "{variant} {}: {k}", spec.name);
                    }
                }
                match spec.os {
                    OsType::Windows => {
                        let build = r
                            .labels
                            .get("node.kubernetes.io/windows-build")
                            .cloned()
                            .unwrap_or_default();
                        assert!(build.starts_with("10.0."), "{variant} {}: build {build:?}", spec.name);
                        assert_eq!(r.os, OsType::Windows);
                    }
                    OsType::Linux => {
                        let master = spec.name.contains("master");
                        assert_eq!(
                            r.labels.contains_key("node-role.kubernetes.io/control-plane"),
                            master,
                            "{variant} {}",
                            spec.name
                        );
                        assert_eq!(
                            r.taints
                                .iter()
                                .any(|t| t.key == "node-role.kubernetes.io/control-plane"),
                            master,
                            "{variant} {}: {:?}",
                            spec.name,
                            r.taints
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_pools_register_with_taints_reaches_its_windows_kubelet_only() {
        let set: hke::model::load::SetArg =
            "properties.agentPoolProfiles[1].kubernetesConfig.kubeletConfig.--register-with-taints=os=windows:NoSchedule"
                .parse()
                .expect("set");
        let p = hke::generate::prepare(&example("windows.json"), &[set], &mut rng(3), now())
            .unwrap_or_else(|r| panic!("{:?}", r.diagnostics));
        let mut windows = 0;
        for (_, spec) in specs(&p) {
            let r = from_boot_file(&spec.name, &spec.boot.content);
            let tainted = r
                .taints
                .iter()
                .any(|t| t.key == "os" && t.value == "windows" && t.effect == "NoSchedule");
            assert_eq!(tainted, r.os == OsType::Windows, "{}: {:?}", spec.name, r.taints);
            windows += usize::from(r.os == OsType::Windows);
        }
        assert!(windows > 0);
    }

    #[test]
    fn taint_and_label_arguments_parse_as_the_kubelet_reads_them() {
        let t = taints_arg("os=windows:NoSchedule,dedicated:NoExecute");
        assert_eq!(
            (t[0].key.as_str(), t[0].value.as_str(), t[0].effect.as_str()),
            ("os", "windows", "NoSchedule")
        );
        assert_eq!(
            (t[1].key.as_str(), t[1].value.as_str(), t[1].effect.as_str()),
            ("dedicated", "", "NoExecute")
        );
        let mut l = BTreeMap::new();
        labels_arg("a=1,b=,c", &mut l);
        assert_eq!(l.len(), 3);
        assert_eq!(l["a"], "1");
    }
}
