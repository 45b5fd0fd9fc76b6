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

/// Every file under `dir` with its size and modification time, or `None`
/// when `dir` does not exist.
fn snapshot(dir: &Path) -> Option<Vec<(PathBuf, u64, std::time::SystemTime)>> {
    fn walk(d: &Path, out: &mut Vec<(PathBuf, u64, std::time::SystemTime)>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
            out.push((p.clone(), m.len(), m.modified().unwrap_or(std::time::UNIX_EPOCH)));
            if m.is_dir() {
                walk(&p, out);
            }
        }
    }
    let m = std::fs::symlink_metadata(dir).ok()?;
    let mut out = vec![(
        dir.to_path_buf(),
        m.len(),
        m.modified().unwrap_or(std::time::UNIX_EPOCH),
    )];
    walk(dir, &mut out);
    out.sort();
    Some(out)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let p = e.expect("entry").path();
        let dest = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}

/// Preflight checks that cannot pass in a test sandbox, each for a reason
/// the node itself does not share:
/// - `CRI`, `ContainerRuntimeVersion`: no containerd here (the node's
///   bootstrap installs and starts it before kubeadm runs);
/// - `KubeletVersion`, `SystemVerification`: no kubelet binary on PATH
///   (both run `kubelet --version`; the node installs the kubelet first);
/// - `FileContent--proc-sys-net-ipv4-ip_forward`: forwarding is off in the
///   sandbox and not the test's to change (bootstrap.sh writes
///   `net.ipv4.ip_forward = 1` to /etc/sysctl.d before kubeadm).
const SANDBOX_PREFLIGHT_IGNORES: &str =
    "CRI,ContainerRuntimeVersion,KubeletVersion,SystemVerification,FileContent--proc-sys-net-ipv4-ip_forward";

/// `kubeadm init --dry-run` with the first master's configuration (its
/// certificatesDir pointed at a copy of a PKI directory), writing into a
/// dry-run directory of the test's (`KUBEADM_INIT_DRYRUN_DIR`, so nothing
/// goes to /etc/kubernetes/tmp). kubeadm's dry run reads the service-account
/// key from its dry-run directory, not from certificatesDir (cmd/kubeadm/
/// app/cmd/phases/init/certs.go: runCertsSa uses CertificateWriteDir, while
/// runCAPhase copies the CAs over from CertificatesDir), so the PKI's
/// sa.key/sa.pub are placed there, where a real init reads them.
fn kubeadm_init_dry_run(tmp: &Path, init: &str, pki: &Path) -> (std::process::Output, PathBuf) {
    let cfg_path = tmp.join("kubeadm.yaml");
    let certs_line = "certificatesDir: \"/etc/kubernetes/pki\"";
    assert_eq!(init.matches(certs_line).count(), 1, "{init}");
    std::fs::write(
        &cfg_path,
        init.replace(certs_line, &format!("certificatesDir: {:?}", pki.display().to_string())),
    )
    .expect("write");
    let dry = tmp.join("dryrun");
    std::fs::create_dir_all(&dry).expect("mkdir");
    for f in ["sa.key", "sa.pub"] {
        if pki.join(f).exists() {
            std::fs::copy(pki.join(f), dry.join(f)).expect("copy");
        }
    }
    let out = Command::new(k8s_tool("kubeadm"))
        .args(["init", "--dry-run"])
        .arg(format!("--config={}", cfg_path.display()))
        .arg(format!("--ignore-preflight-errors={SANDBOX_PREFLIGHT_IGNORES}"))
        .env("KUBEADM_INIT_DRYRUN_DIR", &dry)
        .env("HOME", tmp)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubeadm runs");
    (out, dry)
}

/// kubeadm itself takes hke's first-master configuration and PKI: the CAs,
/// certificates and service-account key are used, not regenerated; the
/// join hash every node is given is the one kubeadm computes from the CA;
/// the kubeconfigs kubeadm writes point at hke's endpoint with hke's CA;
/// and kubeadm marks the control plane exactly as `kube::sim_node`
/// assumes. Run twice per variant: with all of `pki/` as certificatesDir,
/// and with only what the first master's boot file writes under
/// /etc/kubernetes/pki (kubeadm makes the leaf certificates from hke's
/// CAs). Nothing under /etc/kubernetes, /var/lib/kubelet or /var/lib/etcd
/// changes.
#[test]
fn kubeadm_init_dry_run_accepts_the_first_masters_config_and_hkes_pki() {
    let host_dirs = ["/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd"].map(Path::new);
    let before: Vec<_> = host_dirs.iter().map(|d| snapshot(d)).collect();
    let mut runs = 0;
    for (variant, p) in crate::nodes::variants() {
        let tmp = tempfile::tempdir().expect("tmp");
        let out_dir = tmp.path().join("out");
        hke::ops::generate::tree(&p)
            .expect("tree")
            .commit(&out_dir, false)
            .expect("write");
        let init = crate::kube::init_config(&out_dir);
        let hash = std::fs::read_to_string(out_dir.join("pki/discovery-hash.txt")).expect("hash");
        let ca = std::fs::read_to_string(out_dir.join("pki/ca.crt")).expect("ca");
        let cluster = crate::kube::kubeadm_doc(&init, "ClusterConfiguration").expect("ClusterConfiguration");
        let endpoint = cluster["controlPlaneEndpoint"].as_str().expect("controlPlaneEndpoint");
        let master0 = crate::kube::planned_nodes(&p)
            .into_iter()
            .find(|n| n.name == p.cluster.masters.names[0])
            .expect("master 0");

        // What the first master's boot file writes under /etc/kubernetes/pki.
        let (_, spec) = crate::nodes::specs(&p)
            .into_iter()
            .find(|(_, s)| s.name == p.cluster.masters.names[0])
            .expect("master 0 spec");
        let boot_pki = tmp.path().join("boot-pki");
        for f in spec.files.iter().filter(|f| f.path.starts_with("/etc/kubernetes/pki/")) {
            let dest = boot_pki.join(&f.path["/etc/kubernetes/pki/".len()..]);
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            std::fs::write(&dest, &f.content).expect("write");
        }
        let full_pki = tmp.path().join("pki");
        copy_dir(&out_dir.join("pki"), &full_pki);

        for (which, pki, leaves) in [("pki/", &full_pki, true), ("master 0's boot files", &boot_pki, false)] {
            let run = tmp.path().join(if leaves { "run-full" } else { "run-boot" });
            std::fs::create_dir_all(&run).expect("mkdir");
            let (o, dry) = kubeadm_init_dry_run(&run, &init, pki);
            let stdout = text(&o.stdout);
            let all = format!("{stdout}{}", text(&o.stderr));
            let ctx = format!("{variant} with {which}");
            assert!(o.status.success(), "{ctx}: kubeadm init --dry-run failed:\n{all}");
            assert!(
                stdout.contains("Your Kubernetes control-plane has initialized successfully!"),
                "{ctx}:\n{all}"
            );
            let mut used = vec![
                "[certs] Using existing ca certificate authority",
                "[certs] Using existing front-proxy-ca certificate authority",
                "[certs] Using existing etcd/ca certificate authority",
                "[certs] Using the existing \"sa\" key",
            ];
            if leaves {
                used.extend([
                    "[certs] Using existing apiserver certificate and key on disk",
                    "[certs] Using existing front-proxy-client certificate and key on disk",
                    "[certs] Using existing etcd/server certificate and key on disk",
                    "[certs] Using existing apiserver-etcd-client certificate and key on disk",
                ]);
            }
            for line in used {
                assert!(stdout.contains(line), "{ctx}: no {line:?} in\n{all}");
            }
            for made in ["ca", "front-proxy-ca", "etcd/ca", "sa"] {
                assert!(
                    !stdout.contains(&format!("Generating \"{made}\"")),
                    "{ctx}: kubeadm generated its own {made}:\n{all}"
                );
            }
            // The hash every node joins with is kubeadm's own, from hke's CA.
            assert!(
                stdout.contains(&format!("--discovery-token-ca-cert-hash {}", hash.trim())),
                "{ctx}: kubeadm's join hash is not hke's {}:\n{all}",
                hash.trim()
            );
            // admin.conf: hke's endpoint and CA.
            let admin: serde_yaml::Value =
                serde_yaml::from_str(&std::fs::read_to_string(dry.join("admin.conf")).expect("admin.conf"))
                    .expect("yaml");
            let cluster0 = &admin["clusters"][0]["cluster"];
            assert_eq!(
                cluster0["server"].as_str(),
                Some(format!("https://{endpoint}").as_str()),
                "{ctx}"
            );
            use base64::Engine;
            let ca_data = base64::engine::general_purpose::STANDARD
                .decode(cluster0["certificate-authority-data"].as_str().expect("ca data"))
                .expect("base64");
            assert_eq!(text(&ca_data).trim(), ca.trim(), "{ctx}: admin.conf trusts another CA");
            // mark-control-plane as kube::sim_node has it.
            let marked = |what: &str| -> Vec<String> {
                let prefix = format!(
                    "[mark-control-plane] Marking the node {} as control-plane by adding the {what}",
                    master0.name
                );
                stdout
                    .lines()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .map(|rest| {
                        rest.trim_start_matches(':')
                            .trim()
                            .trim_start_matches('[')
                            .trim_end_matches(']')
                            .split_whitespace()
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let labels: Vec<String> = crate::kube::KUBEADM_CONTROL_PLANE_LABELS
                .iter()
                .map(|s| s.to_string())
                .collect();
            assert_eq!(marked("labels"), labels, "{ctx}:\n{all}");
            let taints: Vec<String> = master0
                .taints
                .iter()
                .map(|t| {
                    if t.value.is_empty() {
                        format!("{}:{}", t.key, t.effect)
                    } else {
                        format!("{}={}:{}", t.key, t.value, t.effect)
                    }
                })
                .collect();
            assert_eq!(marked("taints"), taints, "{ctx}:\n{all}");
            runs += 1;
        }
    }
    assert!(runs >= 14, "{runs}");
    let after: Vec<_> = host_dirs.iter().map(|d| snapshot(d)).collect();
    assert_eq!(before, after, "kubeadm's dry run changed {host_dirs:?}");
}

/// The dry run is not blind: a service-account key kubeadm cannot load
/// fails it, and so does an apiserver certificate from another CA.
#[test]
fn kubeadm_init_dry_run_refuses_a_broken_pki() {
    let (_, p) = crate::nodes::variants().into_iter().next().expect("a variant");
    let (_, other) = crate::nodes::variants().into_iter().nth(1).expect("another variant");
    let tmp = tempfile::tempdir().expect("tmp");
    let out_dir = tmp.path().join("out");
    hke::ops::generate::tree(&p)
        .expect("tree")
        .commit(&out_dir, false)
        .expect("write");
    let other_dir = tmp.path().join("other");
    hke::ops::generate::tree(&other)
        .expect("tree")
        .commit(&other_dir, false)
        .expect("write");
    let init = crate::kube::init_config(&out_dir);
    let broken_sa_key = |pki: &Path| std::fs::write(pki.join("sa.key"), "not a key\n").expect("write");
    let foreign_apiserver_cert = |pki: &Path| {
        for f in ["apiserver.crt", "apiserver.key"] {
            std::fs::copy(other_dir.join("pki").join(f), pki.join(f)).expect("copy");
        }
    };
    type BreakIt<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, BreakIt, &str); 2] = [
        ("sa.key", &broken_sa_key, "could not be loaded properly"),
        (
            "apiserver.crt",
            &foreign_apiserver_cert,
            "not signed by CA certificate ca",
        ),
    ];
    for (what, break_it, want) in cases {
        let run = tmp.path().join(what);
        let pki = run.join("pki");
        copy_dir(&out_dir.join("pki"), &pki);
        break_it(&pki);
        let (o, _) = kubeadm_init_dry_run(&run, &init, &pki);
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(!o.status.success(), "a broken {what} passed:\n{all}");
        assert!(all.contains(want), "broken {what}: no {want:?} in\n{all}");
    }
}
