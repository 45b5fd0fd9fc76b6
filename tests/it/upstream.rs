//! The rendered files judged by the upstream code that reads them on a
//! node: kubeadm's config loaders, containerd's config loader and platform
//! parser, libcni (loaded by file name, as go-cni does), flannel's net-conf
//! parser, and the kubelet's and kube-proxy's own flag sets. The checker
//! (`e2e/k8s`, Go, built from source through the module proxy and cached)
//! links those packages; this test hands it every file of every example ×
//! plugin.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use hke::model::types::OsType;
use hke::render::FileKind;

use crate::support::{root, text};

/// An upstream tool built by `e2e/k8s/build.sh` (from source through the Go
/// module proxy; seconds when its cache is warm), built first if needed.
pub fn k8s_tool(name: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_build_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let script = root().join("e2e/k8s/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(name)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "e2e/k8s/build.sh {name} failed (Go and the module proxy are needed; .ci/run has them):\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    bin_dir().join(name)
}

#[allow(clippy::disallowed_methods)]
fn bin_dir() -> PathBuf {
    std::env::var_os("HKE_K8S_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hke/k8s-bin"))
}

fn check(index: &Path) -> std::process::Output {
    Command::new(k8s_tool("hke-k8s-check"))
        .arg(index)
        .output()
        .expect("hke-k8s-check runs")
}

/// A file of a node's, written under `dir` with its own file name (CNI
/// files are judged by name), and its index entry.
fn put(dir: &Path, n: &mut usize, name: &str, file_name: &str, content: &str) -> PathBuf {
    *n += 1;
    let d = dir.join(format!("{n}"));
    std::fs::create_dir_all(&d).expect("mkdir");
    let path = d.join(file_name);
    std::fs::write(&path, content).unwrap_or_else(|e| panic!("{name}: {e}"));
    path
}

fn os_name(os: OsType) -> &'static str {
    match os {
        OsType::Windows => "windows",
        OsType::Linux => "linux",
    }
}

#[test]
fn every_rendered_file_passes_the_upstream_parsers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut items = Vec::new();
    let mut n = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for (variant, p) in crate::nodes::variants() {
        for (node, spec) in crate::nodes::specs(&p) {
            let os = os_name(spec.os);
            let label = |what: &str| format!("{variant} {node} {what}");
            for f in &spec.files {
                let file_name = f.path.rsplit(['/', '\\']).next().unwrap_or("file");
                let kind = match f.kind {
                    FileKind::KubeadmConfig => "kubeadm-config",
                    FileKind::ContainerdConfig => "containerd-config",
                    FileKind::Cni => "cni",
                    FileKind::FlannelNetConf => "flannel-netconf",
                    _ => continue,
                };
                let path = put(tmp.path(), &mut n, &variant, file_name, &f.content);
                kinds.insert(kind);
                items.push(json!({"kind": kind, "name": label(&f.path), "path": path, "os": os}));
            }
            for platform in &spec.platforms {
                kinds.insert("platform");
                items.push(json!({"kind": "platform", "name": label("pause platform"), "value": platform}));
            }
            kinds.insert("kubelet-flags");
            items.push(json!({"kind": "kubelet-flags", "name": label("kubelet"), "os": os, "args": spec.kubelet_args}));
            if !spec.kube_proxy_args.is_empty() {
                kinds.insert("kube-proxy-flags");
                items.push(json!({"kind": "kube-proxy-flags", "name": label("kube-proxy"), "os": os, "args": spec.kube_proxy_args}));
            }
        }
        // What the add-on manifests install on Linux nodes.
        if p.cluster.network.plugin == hke::model::types::NetworkPlugin::Flannel {
            let path = put(
                tmp.path(),
                &mut n,
                &variant,
                "10-flannel.conflist",
                &hke::render::addons::flannel_linux_cni_file().content,
            );
            items.push(json!({"kind": "cni", "name": format!("{variant} flannel DaemonSet CNI"), "path": path}));
            let path = put(
                tmp.path(),
                &mut n,
                &variant,
                "net-conf.json",
                &hke::render::addons::flannel_net_conf(&p.cluster),
            );
            items
                .push(json!({"kind": "flannel-netconf", "name": format!("{variant} flannel ConfigMap"), "path": path}));
        }
    }
    for k in [
        "kubeadm-config",
        "containerd-config",
        "cni",
        "flannel-netconf",
        "platform",
        "kubelet-flags",
        "kube-proxy-flags",
    ] {
        assert!(kinds.contains(k), "no {k} was checked");
    }
    let index = tmp.path().join("index.json");
    std::fs::write(
        &index,
        serde_json::to_vec_pretty(&json!({"items": items})).expect("json"),
    )
    .expect("write");
    let out = check(&index);
    assert!(
        out.status.success(),
        "upstream parsers refused rendered files:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("{} passed, 0 failed", items.len())),
        "{stdout}"
    );
}

/// The checker fails on what hke used to render (so a pass means something).
#[test]
fn the_upstream_parsers_refuse_the_old_defects() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut n = 0;
    let conflist = r#"{"cniVersion":"0.3.1","name":"x","plugins":[{"type":"win-bridge"}]}"#;
    let as_conf = put(tmp.path(), &mut n, "bad", "10-hke.conf", conflist);
    let dup = put(
        tmp.path(),
        &mut n,
        "bad",
        "config.toml",
        "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runhcs-wcow-hypervisor]\n  runtime_type = 'io.containerd.runhcs.v1'\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runhcs-wcow-hypervisor]\n  runtime_type = 'io.containerd.runhcs.v1'\n",
    );
    let items = vec![
        json!({"kind": "platform", "name": "old pause platform", "value": "windows/amd64:10.0.20348"}),
        json!({"kind": "cni", "name": "conflist in a .conf", "path": as_conf}),
        json!({"kind": "containerd-config", "name": "duplicate table", "path": dup, "os": "windows"}),
        json!({"kind": "kubelet-flags", "name": "removed flag", "os": "linux", "args": ["--network-plugin=cni"]}),
    ];
    let index = tmp.path().join("index.json");
    std::fs::write(&index, serde_json::to_vec(&json!({"items": items})).expect("json")).expect("write");
    let out = check(&index);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("0 passed, 4 failed"), "{stdout}");
}
