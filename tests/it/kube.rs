//! A real Kubernetes control plane for tests, started from what `hke
//! generate` wrote: etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler (v1.36.4, built from source by `e2e/k8s/build.sh`) serving
//! with hke's own certificates, and kwok simulating every Node object (it
//! marks nodes Ready, keeps their leases and runs the pods bound to them).
//!
//! Nodes are registered from the boot files: `sim_node` reads what a
//! machine's boot file makes its kubelet (and, on control-plane nodes,
//! kubeadm) put on the Node object, and `ControlPlane::register_node`
//! creates it with the kubelet's own identity (`system:node:NAME`, so the
//! Node authorizer and NodeRestriction judge it as they judge a kubelet).
//!
//! Everything listens on 127.0.0.1 on ports picked at run time, writes only
//! under a temporary directory, and is killed (and waited for) on drop.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use hke::model::types::OsType;
use hke::ops::generate::Prepared;
use hke::render::{FileKind, NodeSpec};

use crate::support::{root, text};
use crate::upstream::k8s_tool;

/// How long a component may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// kubeadm's labels on control-plane nodes (cmd/kubeadm/app/constants:
/// `LabelNodeRoleControlPlane`, `LabelExcludeFromExternalLB`; applied by
/// phases/markcontrolplane `labelsToAdd`, each with the empty value).
pub const KUBEADM_CONTROL_PLANE_LABELS: [&str; 2] = [
    "node-role.kubernetes.io/control-plane",
    "node.kubernetes.io/exclude-from-external-load-balancers",
];

/// The build number each Windows Server release reports (what the kubelet
/// labels its node with, see `sim_node`): Microsoft's "Windows Server
/// release information" (learn.microsoft.com/windows-server/get-started/
/// windows-server-release-info): 2019 = 17763, 2022 = 20348, 2025 = 26100.
/// Stated here, not taken from hke's version table, so a wrong entry there
/// shows up as a RuntimeClass that selects no node.
pub const WINDOWS_BUILDS: [(&str, &str); 3] = [("2019", "10.0.17763"), ("2022", "10.0.20348"), ("2025", "10.0.26100")];

/// A node taint (`v1.Taint`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    pub effect: String,
}

impl Taint {
    /// `key[=value]:Effect`, the kubelet's `--register-with-taints` syntax.
    fn parse(s: &str) -> Taint {
        let (kv, effect) = s
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("taint {s:?} has no effect"));
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        Taint {
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
        }
    }

    /// Keeps pods that do not tolerate it off the node.
    pub fn repels(&self) -> bool {
        self.effect == "NoSchedule" || self.effect == "NoExecute"
    }
}

/// A node as its boot file makes it register.
#[derive(Debug, Clone)]
pub struct SimNode {
    pub name: String,
    pub os: OsType,
    /// The Node's labels once the machine has booted: the kubelet's own,
    /// its `--node-labels`, and on control-plane nodes kubeadm's.
    pub labels: BTreeMap<String, String>,
    /// The Node's taints once the machine has booted.
    pub taints: Vec<Taint>,
    /// What the kubelet itself registers the Node with; the rest
    /// (control-plane nodes) is kubeadm's mark-control-plane patch.
    pub kubelet_labels: BTreeMap<String, String>,
    pub kubelet_taints: Vec<Taint>,
    /// The kubelet's effective flags, by name without dashes.
    pub kubelet_flags: BTreeMap<String, String>,
    /// Windows: the Windows Server release the machine boots (`2022`).
    pub windows_version: Option<String>,
    pub control_plane: bool,
}

impl SimNode {
    pub fn os_name(&self) -> &'static str {
        match self.os {
            OsType::Linux => "linux",
            OsType::Windows => "windows",
        }
    }
}

/// A command line as (name, value) pairs (`--name=value`; a bare
/// `--name` is `true`), in order.
fn flag_pairs<S: AsRef<str>>(args: &[S]) -> Vec<(String, String)> {
    args.iter()
        .map(|a| {
            let a = a.as_ref().trim_start_matches('-');
            match a.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (a.to_string(), "true".to_string()),
            }
        })
        .collect()
}

/// The hostname the kubelet registers under: k8s.io/component-helpers
/// node/util/hostname.go `GetHostname` (the override or the machine's
/// name, trimmed and lower-cased); without a cloud provider it is also the
/// node name (cmd/kubelet/app/server.go).
fn kubelet_hostname(override_: Option<&str>, machine: &str) -> String {
    override_.unwrap_or(machine).trim().to_lowercase()
}

/// The YAML documents of a rendered multi-document file.
pub fn yaml_docs(content: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(content)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap_or_else(|e| panic!("YAML: {e}\n{content}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// The document of `kind` in a kubeadm configuration file.
pub fn kubeadm_doc(content: &str, kind: &str) -> Option<serde_yaml::Value> {
    yaml_docs(content)
        .into_iter()
        .find(|d| d.get("kind").and_then(|k| k.as_str()) == Some(kind))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeRegistration {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cri_socket: Option<String>,
    /// `None` (absent) and `Some([])` differ: kubeadm puts its default
    /// control-plane taint only where the field is absent.
    #[serde(default)]
    taints: Option<Vec<Taint>>,
    #[serde(default)]
    kubelet_extra_args: Vec<KubeadmArg>,
}

#[derive(Debug, Clone, Deserialize)]
struct KubeadmArg {
    name: String,
    value: String,
}

/// The kubeadm configuration file a Linux node's boot file writes.
pub fn kubeadm_config(spec: &NodeSpec) -> &str {
    &spec
        .files
        .iter()
        .find(|f| f.kind == FileKind::KubeadmConfig)
        .unwrap_or_else(|| panic!("Linux node {} has no kubeadm configuration", spec.name))
        .content
}

/// What a machine's boot file makes its kubelet register, and, on
/// control-plane nodes, what kubeadm adds. `hostname` is the machine's
/// host name (for a machine group's instances, the name the cloud gives
/// them); `image` is the plan's image name (`windows-2022`, `ubuntu-24.04`).
pub fn sim_node(spec: &NodeSpec, hostname: &str, image: &str) -> SimNode {
    let kubeadm = (spec.os == OsType::Linux).then(|| kubeadm_config(spec));
    sim_node_from(spec.os, &spec.kubelet_args, kubeadm, hostname, image)
}

/// `sim_node` from the pieces a boot file holds: the Windows kubelet
/// service's arguments, or the Linux node's kubeadm configuration.
pub fn sim_node_from(
    os: OsType,
    kubelet_args: &[String],
    kubeadm: Option<&str>,
    hostname: &str,
    image: &str,
) -> SimNode {
    let (args, control_plane_taints): (Vec<(String, String)>, Option<Vec<Taint>>) = match os {
        OsType::Windows => {
            // The kubelet service runs with exactly these arguments (the
            // script substitutes the instance name); kubeadm join's
            // kubeadm-flags.env is not read by it.
            let args: Vec<String> = kubelet_args
                .iter()
                .map(|a| a.replace(hke::render::NODE_NAME_PLACEHOLDER, hostname))
                .collect();
            (flag_pairs(&args), None)
        }
        OsType::Linux => {
            let cfg = kubeadm.unwrap_or_else(|| panic!("{hostname}: a Linux node without a kubeadm configuration"));
            let (doc, control_plane) = match kubeadm_doc(cfg, "InitConfiguration") {
                Some(d) => (d, true),
                None => {
                    let d = kubeadm_doc(cfg, "JoinConfiguration")
                        .unwrap_or_else(|| panic!("{hostname}: neither Init- nor JoinConfiguration:\n{cfg}"));
                    let cp = d.get("controlPlane").is_some_and(|v| !v.is_null());
                    (d, cp)
                }
            };
            let reg: NodeRegistration = doc
                .get("nodeRegistration")
                .map(|v| serde_yaml::from_value(v.clone()).expect("nodeRegistration"))
                .unwrap_or_default();
            // kubeadm util/config SetNodeRegistrationDynamicDefaults: the
            // name defaults to the host name (GetHostname, lower-cased);
            // absent taints on a control-plane node become
            // `node-role.kubernetes.io/control-plane:NoSchedule`.
            let node_name = kubelet_hostname(reg.name.as_deref(), hostname);
            let taints = match reg.taints {
                Some(t) => t,
                None if control_plane => vec![Taint {
                    key: KUBEADM_CONTROL_PLANE_LABELS[0].into(),
                    value: String::new(),
                    effect: "NoSchedule".into(),
                }],
                None => Vec::new(),
            };
            // kubeadm phases/kubelet/flags.go buildKubeletArgsCommon: the
            // CRI endpoint; --register-with-taints only where taints are
            // registered by flag (join without controlPlane: cmd/phases/
            // join/kubelet.go `registerTaintsUsingFlags`; init and
            // control-plane joins taint in mark-control-plane instead);
            // --hostname-override when the node name is not the host name.
            // kubeletExtraArgs replace base flags of the same name and are
            // appended in order (util/arguments.go ArgumentsToCommand).
            let mut base: Vec<(String, String)> = Vec::new();
            if let Some(cri) = &reg.cri_socket {
                base.push(("container-runtime-endpoint".into(), cri.clone()));
            }
            if !control_plane && !taints.is_empty() {
                let list: Vec<String> = taints.iter().map(taint_string).collect();
                base.push(("register-with-taints".into(), list.join(",")));
            }
            if node_name != kubelet_hostname(None, hostname) {
                base.push(("hostname-override".into(), node_name));
            }
            let extra: Vec<(String, String)> = reg
                .kubelet_extra_args
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect();
            base.retain(|(n, _)| !extra.iter().any(|(e, _)| e == n));
            base.extend(extra);
            (base, control_plane.then_some(taints))
        }
    };
    // pflag: the last occurrence of a flag wins, except --node-labels, a
    // MapStringString whose occurrences add up (k8s.io/component-base
    // cli/flag/map_string_string.go Set; keys and values trimmed).
    let flags: BTreeMap<String, String> = args.iter().cloned().collect();
    let mut node_labels: BTreeMap<String, String> = BTreeMap::new();
    for (_, l) in args.iter().filter(|(n, _)| n == "node-labels") {
        for kv in l.split(',').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("{hostname}: --node-labels entry {kv:?}"));
            node_labels.insert(k.trim().into(), v.trim().into());
        }
    }

    let name = kubelet_hostname(flags.get("hostname-override").map(String::as_str), hostname);
    let os_name = match os {
        OsType::Linux => "linux",
        OsType::Windows => "windows",
    };
    // pkg/kubelet/kubelet_node_status.go initialNode: hostname, OS and
    // architecture labels (stable and beta) from the kubelet's own GOOS and
    // GOARCH (hke installs amd64 binaries), then getOSSpecificLabels, then
    // --node-labels, which override.
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", os_name),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", os_name),
        ("beta.kubernetes.io/arch", "amd64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let windows_version = (os == OsType::Windows).then(|| {
        image
            .strip_prefix("windows-")
            .unwrap_or_else(|| panic!("{name}: Windows node with image {image:?}"))
            .to_string()
    });
    if let Some(v) = &windows_version {
        // pkg/kubelet/kubelet_node_status_windows.go getOSSpecificLabels:
        // `node.kubernetes.io/windows-build` = osInfo.GetBuild(), which is
        // "%d.%d.%s" of major, minor and build number
        // (pkg/kubelet/winstats/version.go).
        let build = WINDOWS_BUILDS
            .iter()
            .find(|(r, _)| r == v)
            .unwrap_or_else(|| panic!("{name}: no known build for Windows Server {v}"))
            .1;
        labels.insert("node.kubernetes.io/windows-build".into(), build.into());
    }
    labels.extend(node_labels);
    // initialNode: --register-with-taints, plus the uninitialized taint
    // when the kubelet defers to an external cloud provider.
    let mut kubelet_taints: Vec<Taint> = flags
        .get("register-with-taints")
        .filter(|t| !t.is_empty())
        .map(|t| t.split(',').map(Taint::parse).collect())
        .unwrap_or_default();
    if flags.get("cloud-provider").is_some_and(|c| c == "external") {
        kubelet_taints.push(Taint {
            key: "node.cloudprovider.kubernetes.io/uninitialized".into(),
            value: "true".into(),
            effect: "NoSchedule".into(),
        });
    }
    let kubelet_labels = labels.clone();
    let mut taints = kubelet_taints.clone();
    if let Some(cp_taints) = &control_plane_taints {
        // phases/markcontrolplane markControlPlaneNode: its labels with
        // empty values; taints = the configured ones, then the node's
        // existing ones not among them.
        for l in KUBEADM_CONTROL_PLANE_LABELS {
            labels.insert(l.into(), String::new());
        }
        taints = cp_taints.clone();
        for t in &kubelet_taints {
            if !taints.contains(t) {
                taints.push(t.clone());
            }
        }
    }
    SimNode {
        name,
        os,
        labels,
        taints,
        kubelet_labels,
        kubelet_taints,
        kubelet_flags: flags,
        windows_version,
        control_plane: control_plane_taints.is_some(),
    }
}

fn taint_string(t: &Taint) -> String {
    if t.value.is_empty() {
        format!("{}:{}", t.key, t.effect)
    } else {
        format!("{}={}:{}", t.key, t.value, t.effect)
    }
}

/// One simulated node per planned machine (every instance of a machine
/// group, named as the fake cloud names them: prefix + 6 digits), from the
/// boot file the machine is given.
pub fn planned_nodes(p: &Prepared) -> Vec<SimNode> {
    let plan = hke::plan::plan(&p.cluster).expect("plan");
    let r = hke::render::Renderer::new(&p.cluster, &p.pki, &plan.pod_cidrs).expect("renderer");
    let host = hke::cluster::endpoint_host(&p.cluster);
    let mut out = Vec::new();
    for res in plan.resources.values() {
        let (image, hostnames) = match &res.spec {
            hke_provider_api::Spec::Machine(m) => (&m.image, vec![res.name.clone()]),
            hke_provider_api::Spec::MachineGroup(g) => (
                &g.image,
                (0..g.count).map(|i| format!("{}{i:06}", g.name_prefix)).collect(),
            ),
            _ => continue,
        };
        let spec = r.node_spec(&res.name, &host).expect("node spec");
        for h in hostnames {
            out.push(sim_node(&spec, &h, &image.name));
        }
    }
    out
}

/// The rendered kubeadm configuration of the first master (the one with
/// the InitConfiguration), read from a generated directory's boot files.
pub fn init_config(out_dir: &Path) -> String {
    let boot = out_dir.join("bootstrap");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&boot).unwrap_or_else(|e| panic!("{}: {e}", boot.display())) {
        let path = e.expect("entry").path().join("cloud-init.yaml");
        let Ok(ci) = std::fs::read_to_string(&path) else {
            continue;
        };
        let doc: serde_yaml::Value = serde_yaml::from_str(&ci).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for f in doc["write_files"].as_sequence().into_iter().flatten() {
            if f["path"].as_str() != Some("/etc/hke/kubeadm.yaml") {
                continue;
            }
            let raw = f["content"].as_str().expect("content");
            let content = match f["encoding"].as_str() {
                Some("b64") | Some("base64") => text(
                    &base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .expect("base64 kubeadm.yaml"),
                ),
                _ => raw.to_string(),
            };
            if kubeadm_doc(&content, "InitConfiguration").is_some() {
                found.push(content);
            }
        }
    }
    assert_eq!(found.len(), 1, "one InitConfiguration under {}", boot.display());
    found.remove(0)
}

/// A ClusterConfiguration's `extraArgs` of one component (`apiServer`, ...).
fn extra_args(cluster_cfg: &serde_yaml::Value, component: &str) -> Vec<(String, String)> {
    cluster_cfg
        .get(component)
        .and_then(|c| c.get("extraArgs"))
        .map(|a| serde_yaml::from_value::<Vec<KubeadmArg>>(a.clone()).expect("extraArgs"))
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.name, a.value))
        .collect()
}

/// An ordered flag list where setting a name again replaces its value
/// (kubeadm's extraArgs override its defaults the same way).
#[derive(Default)]
struct Flags(Vec<(String, String)>);

impl Flags {
    fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Flags {
        let value = value.into();
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
        self
    }

    fn extend(&mut self, args: &[(String, String)]) {
        for (n, v) in args {
            self.set(n, v.clone());
        }
    }

    fn args(&self) -> Vec<String> {
        self.0.iter().map(|(n, v)| format!("--{n}={v}")).collect()
    }
}

/// `N` distinct free ports on 127.0.0.1 (all held open until every one is
/// picked).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("bound").port())
}

/// The last `n` lines of a log file.
fn tail(path: &Path, n: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()));
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A plain-HTTP GET on 127.0.0.1 (etcd's metrics listener, kwok's server):
/// the status line's code and the body.
fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not HTTP: {buf:?}"))?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// kwok's own stages (sigs.k8s.io/kwok v0.8.0 kustomize/stage: node/fast,
/// node/heartbeat-with-lease and pod/fast, what `kwokctl` configures),
/// read from the pinned module in the Go module cache of e2e/k8s.
fn kwok_stages() -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "cd e2e/k8s/tools && GOMODCACHE=\"$HOME/.cache/hke/gomod\" GOFLAGS=-mod=readonly GOTOOLCHAIN=local \
             \"${GO:-$(command -v go || echo /usr/local/go/bin/go)}\" mod download -json sigs.k8s.io/kwok",
        )
        .current_dir(root())
        .output()
        .expect("go runs");
    assert!(
        out.status.success(),
        "go mod download sigs.k8s.io/kwok: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).expect("go mod download -json");
    let dir = PathBuf::from(info["Dir"].as_str().expect("Dir")).join("kustomize/stage");
    let mut stages = String::new();
    for f in [
        "node/fast/node-initialize.yaml",
        "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "pod/fast/pod-ready.yaml",
        "pod/fast/pod-complete.yaml",
        "pod/fast/pod-delete.yaml",
    ] {
        let p = dir.join(f);
        stages.push_str("---\n");
        stages.push_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    }
    stages
}

struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// A running control plane (see the module documentation).
pub struct ControlPlane {
    procs: Vec<Proc>,
    server: String,
    kubeconfig: PathBuf,
    /// For kubectl's health probes of components with self-signed serving
    /// certificates.
    probe_kubeconfig: PathBuf,
    kubectl: PathBuf,
    dir: tempfile::TempDir,
    /// Control planes run one at a time (the machine has two cores).
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for p in self.procs.iter_mut().rev() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

impl ControlPlane {
    /// Start everything from a `hke generate` output directory: its `pki/`
    /// (CA, apiserver serving certificate, etcd CA and certificates,
    /// front-proxy CA and client, service-account key pair), its admin
    /// kubeconfig and the first master's rendered kubeadm configuration
    /// (networking and the components' extraArgs, as kubeadm would apply
    /// them).
    #[allow(clippy::print_stderr)]
    pub fn start(out_dir: &Path) -> ControlPlane {
        static ONE: Mutex<()> = Mutex::new(());
        let bins: BTreeMap<&str, PathBuf> = [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            "kubectl",
        ]
        .into_iter()
        .map(|b| (b, k8s_tool(b)))
        .collect();
        let stages = kwok_stages();
        let guard = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let t0 = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().to_path_buf();
        let pki = out_dir.join("pki");
        let f = |name: &str| pki.join(name).display().to_string();

        let init = init_config(out_dir);
        let cluster_cfg = kubeadm_doc(&init, "ClusterConfiguration").expect("the first master's ClusterConfiguration");
        let net = |k: &str| cluster_cfg["networking"][k].as_str().map(str::to_string);
        let service_subnet = net("serviceSubnet").expect("networking.serviceSubnet");
        let pod_subnet = net("podSubnet");
        let dns_domain = net("dnsDomain").unwrap_or_else(|| "cluster.local".into());
        let cluster_name = cluster_cfg["clusterName"].as_str().unwrap_or("kubernetes").to_string();

        let [etcd_port, etcd_peer, etcd_metrics, api_port, kcm_port, sched_port, kwok_port] = free_ports();
        let server = format!("https://127.0.0.1:{api_port}");

        // The admin kubeconfig hke wrote, pointed at this apiserver. The
        // serving certificate must name 127.0.0.1; otherwise the client
        // verifies it against one of its DNS names.
        let kc_dir = out_dir.join("kubeconfig");
        let kc_file = std::fs::read_dir(&kc_dir)
            .unwrap_or_else(|e| panic!("{}: {e}", kc_dir.display()))
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|x| x == "json"))
            .expect("an admin kubeconfig");
        let mut kc: Value =
            serde_json::from_str(&std::fs::read_to_string(&kc_file).expect("kubeconfig")).expect("json");
        let (has_loopback, dns_name) = apiserver_sans(&pki.join("apiserver.crt"));
        for c in kc["clusters"].as_array_mut().expect("clusters") {
            c["cluster"]["server"] = json!(server);
            if !has_loopback {
                c["cluster"]["tls-server-name"] = json!(dns_name.clone().expect("a DNS name in the apiserver SANs"));
            }
        }
        let kubeconfig = d.join("admin.kubeconfig");
        std::fs::write(&kubeconfig, serde_json::to_vec_pretty(&kc).expect("json")).expect("write kubeconfig");
        // For health probes of the components, whose serving certificates
        // are self-signed: the admin's client certificate, no CA.
        let mut probe = kc.clone();
        for c in probe["clusters"].as_array_mut().expect("clusters") {
            c["cluster"] = json!({"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": true});
        }
        let probe_kubeconfig = d.join("probe.kubeconfig");
        std::fs::write(&probe_kubeconfig, serde_json::to_vec_pretty(&probe).expect("json")).expect("write");
        let kcp = kubeconfig.display().to_string();

        let mut cp = ControlPlane {
            procs: Vec::new(),
            server,
            kubeconfig,
            probe_kubeconfig,
            kubectl: bins["kubectl"].clone(),
            dir,
            _one_at_a_time: guard,
        };

        // etcd: one member, clients over TLS with hke's etcd CA and server
        // certificate, client certificates required.
        let etcd_url = format!("https://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        cp.spawn(
            "etcd",
            &bins["etcd"],
            &[
                "--name=sim".into(),
                format!("--data-dir={}", d.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=sim={peer_url}"),
                format!("--listen-metrics-urls=http://127.0.0.1:{etcd_metrics}"),
                format!("--cert-file={}", f("etcd/server.crt")),
                format!("--key-file={}", f("etcd/server.key")),
                format!("--trusted-ca-file={}", f("etcd/ca.crt")),
                "--client-cert-auth=true".into(),
            ],
        );
        cp.wait_ready("etcd", |_| match http_get(etcd_metrics, "/readyz") {
            Ok((200, _)) => Ok(()),
            Ok((code, body)) => Err(format!("/readyz: {code} {body}")),
            Err(e) => Err(e),
        });
        let t_etcd = t0.elapsed();

        // kube-apiserver: kubeadm's flags (cmd/kubeadm/app/phases/
        // controlplane/manifests.go getAPIServerCommand) on hke's files,
        // then the ClusterConfiguration's apiServer.extraArgs, then what
        // this sandbox needs (addresses and ports).
        let mut api = Flags::default();
        api.set("advertise-address", "127.0.0.1")
            .set("allow-privileged", "true")
            .set("authorization-mode", "Node,RBAC")
            .set("client-ca-file", f("ca.crt"))
            .set("enable-admission-plugins", "NodeRestriction")
            .set("enable-bootstrap-token-auth", "true")
            .set("etcd-cafile", f("etcd/ca.crt"))
            .set("etcd-certfile", f("apiserver-etcd-client.crt"))
            .set("etcd-keyfile", f("apiserver-etcd-client.key"))
            .set("proxy-client-cert-file", f("front-proxy-client.crt"))
            .set("proxy-client-key-file", f("front-proxy-client.key"))
            .set("requestheader-allowed-names", "front-proxy-client")
            .set("requestheader-client-ca-file", f("front-proxy-ca.crt"))
            .set("requestheader-extra-headers-prefix", "X-Remote-Extra-")
            .set("requestheader-group-headers", "X-Remote-Group")
            .set("requestheader-username-headers", "X-Remote-User")
            .set(
                "service-account-issuer",
                format!("https://kubernetes.default.svc.{dns_domain}"),
            )
            .set("service-account-key-file", f("sa.pub"))
            .set("service-account-signing-key-file", f("sa.key"))
            .set("service-cluster-ip-range", service_subnet.clone())
            .set("tls-cert-file", f("apiserver.crt"))
            .set("tls-private-key-file", f("apiserver.key"));
        api.extend(&extra_args(&cluster_cfg, "apiServer"));
        api.set("advertise-address", "127.0.0.1")
            .set("bind-address", "127.0.0.1")
            .set("secure-port", api_port.to_string())
            .set("etcd-servers", etcd_url.clone());
        cp.spawn("kube-apiserver", &bins["kube-apiserver"], &api.args());
        cp.wait_ready("kube-apiserver", |cp| {
            let o = cp.kubectl(&["get", "--raw", "/readyz"]);
            if o.status.success() {
                Ok(())
            } else {
                Err(format!("{}{}", text(&o.stdout), text(&o.stderr)))
            }
        });
        let t_api = t0.elapsed();

        // kube-controller-manager: kubeadm's flags (getControllerManagerCommand:
        // service-account credentials signed with hke's sa.key, hke's CA as
        // root and signing CA, node CIDRs from podSubnet), the extraArgs,
        // then the sandbox's (one instance: no leader election; FlexVolume
        // probing inside the tempdir instead of /usr/libexec).
        let mut kcm = Flags::default();
        kcm.set("bind-address", "127.0.0.1")
            .set("kubeconfig", kcp.clone())
            .set("authentication-kubeconfig", kcp.clone())
            .set("authorization-kubeconfig", kcp.clone())
            .set("client-ca-file", f("ca.crt"))
            .set("requestheader-client-ca-file", f("front-proxy-ca.crt"))
            .set("root-ca-file", f("ca.crt"))
            .set("service-account-private-key-file", f("sa.key"))
            .set("cluster-signing-cert-file", f("ca.crt"))
            .set("cluster-signing-key-file", f("ca.key"))
            .set("use-service-account-credentials", "true")
            .set("controllers", "*,bootstrapsigner,tokencleaner")
            .set("cluster-name", cluster_name);
        if let Some(pods) = &pod_subnet {
            kcm.set("allocate-node-cidrs", "true")
                .set("cluster-cidr", pods.clone())
                .set("service-cluster-ip-range", service_subnet.clone());
        }
        kcm.extend(&extra_args(&cluster_cfg, "controllerManager"));
        kcm.set("bind-address", "127.0.0.1")
            .set("secure-port", kcm_port.to_string())
            .set("leader-elect", "false")
            .set("flex-volume-plugin-dir", d.join("flexvolume").display().to_string());
        cp.spawn("kube-controller-manager", &bins["kube-controller-manager"], &kcm.args());

        // kube-scheduler: kubeadm's flags (getSchedulerCommand), the
        // extraArgs, the sandbox's.
        let mut sched = Flags::default();
        sched
            .set("bind-address", "127.0.0.1")
            .set("kubeconfig", kcp.clone())
            .set("authentication-kubeconfig", kcp.clone())
            .set("authorization-kubeconfig", kcp.clone());
        sched.extend(&extra_args(&cluster_cfg, "scheduler"));
        sched
            .set("bind-address", "127.0.0.1")
            .set("secure-port", sched_port.to_string())
            .set("leader-elect", "false");
        cp.spawn("kube-scheduler", &bins["kube-scheduler"], &sched.args());

        // kwok: every Node object is simulated (Ready, leases renewed,
        // bound pods run), with kwok's own stages; pod IPs from podSubnet.
        let stages_file = d.join("kwok-stages.yaml");
        std::fs::write(&stages_file, stages).expect("write stages");
        let mut kwok_args = vec![
            format!("--kubeconfig={kcp}"),
            format!("--config={}", stages_file.display()),
            "--manage-all-nodes=true".into(),
            "--node-lease-duration-seconds=40".into(),
            format!("--server-address=127.0.0.1:{kwok_port}"),
        ];
        if let Some(pods) = &pod_subnet {
            kwok_args.push(format!("--cidr={pods}"));
        }
        cp.spawn("kwok", &bins["kwok"], &kwok_args);

        cp.wait_ready("kube-controller-manager", |cp| cp.probe_https(kcm_port, "/healthz"));
        cp.wait_ready("kube-scheduler", |cp| cp.probe_https(sched_port, "/readyz"));
        cp.wait_ready("kwok", |_| match http_get(kwok_port, "/healthz") {
            Ok((200, _)) => Ok(()),
            Ok((code, body)) => Err(format!("/healthz: {code} {body}")),
            Err(e) => Err(e),
        });
        eprintln!(
            "control plane of {} ready in {:.1}s (etcd {:.1}s, kube-apiserver {:.1}s, the rest {:.1}s)",
            out_dir.display(),
            t0.elapsed().as_secs_f64(),
            t_etcd.as_secs_f64(),
            (t_api - t_etcd).as_secs_f64(),
            (t0.elapsed() - t_api).as_secs_f64()
        );
        cp
    }

    fn spawn(&mut self, name: &'static str, bin: &Path, args: &[String]) {
        let log = self.dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(bin)
            .args(args)
            .current_dir(self.dir.path())
            // kwok's work directory (default ~/.kwok) and anything else
            // keyed on HOME stay inside the tempdir.
            .env("KWOK_WORKDIR", self.dir.path().join("kwok"))
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} ({}): {e}", bin.display()));
        self.procs.push(Proc { name, child, log });
    }

    /// Wait until `probe` passes, failing fast (with the log's tail) when
    /// any component has exited.
    fn wait_ready(&mut self, name: &str, probe: impl Fn(&ControlPlane) -> Result<(), String>) {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < READY_TIMEOUT {
            for p in &mut self.procs {
                if let Ok(Some(status)) = p.child.try_wait() {
                    panic!(
                        "{} exited ({status}) while waiting for {name} to be ready; its log ends:\n{}",
                        p.name,
                        tail(&p.log, 40)
                    );
                }
            }
            match probe(self) {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = self
            .procs
            .iter()
            .find(|p| p.name == name)
            .map(|p| tail(&p.log, 40))
            .unwrap_or_default();
        panic!("{name} not ready after {READY_TIMEOUT:?}: {last}\n{name}'s log ends:\n{log}");
    }

    /// A component's health endpoint over HTTPS, with its self-signed
    /// serving certificate unverified: a liveness probe, not a trust
    /// decision.
    fn probe_https(&self, port: u16, path: &str) -> Result<(), String> {
        let o = Command::new(&self.kubectl)
            .arg(format!("--kubeconfig={}", self.probe_kubeconfig.display()))
            .arg(format!("--server=https://127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .arg(format!(
                "--cache-dir={}",
                self.dir.path().join("kubectl-cache").display()
            ))
            .args(["get", "--raw", path])
            .output()
            .map_err(|e| e.to_string())?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!("{path}: {}{}", text(&o.stdout), text(&o.stderr)))
        }
    }

    /// The admin kubeconfig (hke's admin client certificate and CA,
    /// `server: https://127.0.0.1:PORT`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The control plane's scratch directory (logs, kubeconfigs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.kubectl);
        c.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.path().join("kubectl-cache").display()
            ))
            .args(args)
            .env("HOME", self.dir.path());
        c
    }

    /// kubectl as the admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd(args).output().expect("kubectl runs")
    }

    /// kubectl as the admin with `input` on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .kubectl_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    /// kubectl that must succeed: its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args);
        assert!(
            o.status.success(),
            "kubectl {}: {}{}",
            args.join(" "),
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// `kubectl get ARGS -o json`.
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&a)).expect("kubectl json")
    }

    /// Server-side apply of `objects` (YAML or JSON documents) with strict
    /// field validation: an unknown or duplicate field fails.
    pub fn apply(&self, what: &str, objects: &str, field_manager: &str) -> String {
        let o = self.kubectl_stdin(
            &[
                "apply",
                "--server-side",
                &format!("--field-manager={field_manager}"),
                "--validate=strict",
                "-f",
                "-",
            ],
            objects,
        );
        assert!(
            o.status.success(),
            "the apiserver refused {what}:\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// Poll `f` every 250 ms until it returns `Ok`; on timeout panic with
    /// its last error and the cluster's state.
    pub fn wait_for<T>(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
        let start = Instant::now();
        loop {
            match f() {
                Ok(v) => return v,
                Err(e) if start.elapsed() >= timeout => {
                    panic!(
                        "timed out after {timeout:?} waiting for {what}: {e}\n{}",
                        self.diagnostics()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    /// Nodes, pods, recent events and the components' log tails.
    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        for args in [
            &["get", "nodes", "-o", "wide", "--show-labels"][..],
            &[
                "get",
                "nodes",
                "-o",
                "custom-columns=NAME:.metadata.name,TAINTS:.spec.taints",
            ],
            &["get", "pods", "-A", "-o", "wide"],
            &["get", "events", "-A", "--sort-by=.lastTimestamp"],
        ] {
            let o = self.kubectl(args);
            let out = text(&o.stdout);
            let lines: Vec<&str> = out.lines().collect();
            s.push_str(&format!(
                "--- kubectl {}\n{}{}\n",
                args.join(" "),
                lines[lines.len().saturating_sub(60)..].join("\n"),
                text(&o.stderr)
            ));
        }
        for p in &self.procs {
            s.push_str(&format!("--- {} log ends:\n{}\n", p.name, tail(&p.log, 15)));
        }
        s
    }

    /// Register a node as its kubelet does: created with the node's own
    /// identity (`system:node:NAME` in `system:nodes`, so the Node
    /// authorizer and NodeRestriction apply), its labels, taints and OS in
    /// nodeInfo; then, on control-plane nodes, kubeadm's mark-control-plane
    /// patch as the admin. Checks the Node object afterwards.
    pub fn register_node(&self, node: &SimNode) {
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": node.name, "labels": node.kubelet_labels},
            "spec": {"taints": node.kubelet_taints},
            "status": {"nodeInfo": {"operatingSystem": node.os_name(), "architecture": "amd64"}}
        });
        let user = format!("--as=system:node:{}", node.name);
        let o = self.kubectl_stdin(
            &[
                "create",
                &user,
                "--as-group=system:nodes",
                "--as-group=system:authenticated",
                "-f",
                "-",
            ],
            &obj.to_string(),
        );
        assert!(
            o.status.success(),
            "node {} could not register as its kubelet would: {}{}",
            node.name,
            text(&o.stdout),
            text(&o.stderr)
        );
        if node.labels != node.kubelet_labels || node.taints != node.kubelet_taints {
            let patch = json!({"metadata": {"labels": node.labels}, "spec": {"taints": node.taints}});
            self.kubectl_ok(&["patch", "node", &node.name, "--type=merge", "-p", &patch.to_string()]);
        }
        let got = self.get_json(&["node", &node.name]);
        for (k, v) in &node.labels {
            assert_eq!(
                got["metadata"]["labels"][k].as_str(),
                Some(v.as_str()),
                "node {} label {k}: {got}",
                node.name
            );
        }
        let taints: BTreeSet<Taint> = serde_json::from_value(got["spec"]["taints"].clone()).unwrap_or_default();
        for t in &node.taints {
            assert!(taints.contains(t), "node {} lacks taint {t:?}: {got}", node.name);
        }
    }

    /// Wait until every named node is Ready (kwok's node-initialize stage)
    /// and free of the not-ready taint (the node lifecycle controller).
    pub fn wait_nodes_ready(&self, names: &[&str], timeout: Duration) {
        self.wait_for("nodes Ready", timeout, || {
            let nodes = self.get_json(&["nodes"]);
            let mut missing = Vec::new();
            for n in names {
                let node = nodes["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|x| x["metadata"]["name"] == json!(n));
                let ready = node.is_some_and(|x| {
                    x["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                        && !x["spec"]["taints"].as_array().into_iter().flatten().any(|t| {
                            t["key"]
                                .as_str()
                                .is_some_and(|k| k.starts_with("node.kubernetes.io/not-ready"))
                        })
                });
                if !ready {
                    missing.push(*n);
                }
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("not ready: {missing:?}"))
            }
        });
    }

    /// CoreDNS and kube-proxy, installed by kubeadm itself from a rendered
    /// InitConfiguration/ClusterConfiguration, as `kubeadm init` does on
    /// the first master (its `addon` phase, against this apiserver).
    pub fn kubeadm_addons(&self, init_config: &str) -> String {
        let cfg = self.dir.path().join("kubeadm-init.yaml");
        std::fs::write(&cfg, init_config).expect("write kubeadm config");
        let o = Command::new(k8s_tool("kubeadm"))
            .args(["init", "phase", "addon", "all"])
            .arg(format!("--config={}", cfg.display()))
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .env("HOME", self.dir.path())
            .output()
            .expect("kubeadm runs");
        assert!(
            o.status.success(),
            "kubeadm init phase addon all: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }
}

/// Whether the apiserver certificate names 127.0.0.1, and its first
/// non-wildcard DNS name.
fn apiserver_sans(cert: &Path) -> (bool, Option<String>) {
    use x509_parser::extensions::GeneralName;
    let pem_bytes = std::fs::read(cert).unwrap_or_else(|e| panic!("{}: {e}", cert.display()));
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem_bytes).expect("PEM");
    let x = pem.parse_x509().expect("X.509");
    let mut loopback = false;
    let mut dns = None;
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::IPAddress(ip) => loopback |= *ip == [127, 0, 0, 1],
                GeneralName::DNSName(d) if dns.is_none() && !d.starts_with('*') => dns = Some(d.to_string()),
                _ => {}
            }
        }
    }
    (loopback, dns)
}

/// The harness itself: a control plane from a generated directory serves
/// with hke's certificates, registers nodes as their kubelets would and
/// schedules a pod onto a simulated node; its processes are gone after drop.
#[test]
fn a_control_plane_starts_from_hkes_pki_and_runs_pods_on_simulated_nodes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let (_, p) = crate::nodes::variants().into_iter().next().expect("a variant");
    hke::ops::generate::tree(&p)
        .expect("tree")
        .commit(&out, false)
        .expect("write");
    let pids;
    {
        let cp = ControlPlane::start(&out);
        pids = cp.procs.iter().map(|p| p.child.id()).collect::<Vec<_>>();
        // The apiserver serves hke's certificate, which the admin
        // kubeconfig's CA (hke's) verifies, and hke's admin certificate is
        // cluster-admin.
        assert_eq!(cp.kubectl_ok(&["auth", "can-i", "*", "*"]).trim(), "yes");
        assert!(cp.server().starts_with("https://127.0.0.1:"), "{}", cp.server());
        // Tokens signed with hke's sa.key (the controller-manager's) are
        // accepted by the apiserver (hke's sa.pub): a TokenRequest works
        // and the token authenticates.
        cp.kubectl_ok(&["create", "serviceaccount", "probe"]);
        let token = cp.kubectl_ok(&["create", "token", "probe"]);
        // Asked with a kubeconfig that carries the token alone (with a
        // client certificate too, x509 would authenticate first).
        let mut kc: Value = serde_json::from_str(&std::fs::read_to_string(cp.kubeconfig()).expect("kc")).expect("json");
        for u in kc["users"].as_array_mut().expect("users") {
            u["user"] = json!({"token": token.trim()});
        }
        let token_kc = cp.dir().join("token.kubeconfig");
        std::fs::write(&token_kc, kc.to_string()).expect("write");
        let who = Command::new(k8s_tool("kubectl"))
            .arg(format!("--kubeconfig={}", token_kc.display()))
            .args(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])
            .env("HOME", cp.dir())
            .output()
            .expect("kubectl");
        assert_eq!(
            text(&who.stdout),
            "system:serviceaccount:default:probe",
            "{}",
            text(&who.stderr)
        );

        let nodes = planned_nodes(&p);
        let win = nodes.iter().find(|n| n.os == OsType::Windows).expect("a Windows node");
        cp.register_node(win);
        cp.wait_nodes_ready(&[&win.name], Duration::from_secs(60));
        // The kubelet's own identity may not register another node.
        let other = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "someone-else"}});
        let o = cp.kubectl_stdin(
            &[
                "create",
                &format!("--as=system:node:{}", win.name),
                "--as-group=system:nodes",
                "-f",
                "-",
            ],
            &other.to_string(),
        );
        assert!(!o.status.success(), "NodeRestriction let a node create another");
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "probe", "namespace": "default"},
            "spec": {
                "nodeSelector": {"kubernetes.io/os": "windows"},
                "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "c", "image": "mcr.microsoft.com/windows/nanoserver:ltsc2022"}]
            }
        });
        cp.apply("a probe pod", &pod.to_string(), "test");
        cp.wait_for("the probe pod Running", Duration::from_secs(60), || {
            let p = cp.get_json(&["pod", "probe"]);
            match (p["spec"]["nodeName"].as_str(), p["status"]["phase"].as_str()) {
                (Some(n), Some("Running")) if n == win.name => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    }
    // Every process was killed and reaped.
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived its ControlPlane"
        );
    }
}

/// The labels and taints come from the rendered files: a taint and a label
/// added to a pool reach the simulated node, the kubelet's own labels are
/// there, and a control-plane node carries kubeadm's marks.
#[test]
fn simulated_nodes_carry_what_their_boot_files_register() {
    let (_, p) = crate::nodes::variants().into_iter().next().expect("a variant");
    let nodes = planned_nodes(&p);
    let plan = hke::plan::plan(&p.cluster).expect("plan");
    let machines = plan
        .resources
        .values()
        .map(|r| match &r.spec {
            hke_provider_api::Spec::Machine(_) => 1,
            hke_provider_api::Spec::MachineGroup(g) => g.count as usize,
            _ => 0,
        })
        .sum::<usize>();
    assert_eq!(nodes.len(), machines);
    for n in &nodes {
        assert_eq!(n.labels["kubernetes.io/hostname"], n.name);
        assert_eq!(n.labels["kubernetes.io/os"], n.os_name());
        if n.os == OsType::Windows {
            let build = &n.labels["node.kubernetes.io/windows-build"];
            assert!(build.starts_with("10.0."), "{build}");
        }
    }
    let master0 = nodes
        .iter()
        .find(|n| n.name == p.cluster.masters.names[0])
        .expect("master 0");
    assert!(master0.control_plane);
    for l in KUBEADM_CONTROL_PLANE_LABELS {
        assert_eq!(master0.labels.get(l).map(String::as_str), Some(""), "{master0:?}");
        assert!(!master0.kubelet_labels.contains_key(l));
    }

    // A tainted, labelled Windows pool and a tainted Linux pool.
    let sets: Vec<hke::model::load::SetArg> = [
        "properties.agentPoolProfiles[0].kubernetesConfig.kubeletConfig.--register-with-taints=dedicated=infra:NoExecute",
        "properties.agentPoolProfiles[1].kubernetesConfig.kubeletConfig.--register-with-taints=os=windows:NoSchedule",
        "properties.agentPoolProfiles[1].kubernetesConfig.kubeletConfig.--node-labels=team=web",
    ]
    .iter()
    .map(|s| s.parse().expect("set"))
    .collect();
    let tainted = hke::ops::generate::prepare(
        &crate::support::example("windows.json"),
        &sets,
        &mut crate::support::rng(3),
        crate::support::now(),
    )
    .unwrap_or_else(|r| panic!("{:?}", r.diagnostics));
    let nodes = planned_nodes(&tainted);
    let win: Vec<&SimNode> = nodes.iter().filter(|n| n.os == OsType::Windows).collect();
    assert!(!win.is_empty());
    for n in &win {
        assert_eq!(n.taints, vec![Taint::parse("os=windows:NoSchedule")], "{n:?}");
        // The pool's --node-labels adds to hke's (the kubelet merges
        // repeated --node-labels).
        assert_eq!(n.labels.get("team").map(String::as_str), Some("web"), "{n:?}");
        assert_eq!(n.labels["hke.io/pool"], "windowspool1", "{n:?}");
        assert_eq!(n.kubelet_taints, n.taints, "the kubelet registers it");
    }
    let linux_workers: Vec<&SimNode> = nodes
        .iter()
        .filter(|n| n.os == OsType::Linux && !n.control_plane)
        .collect();
    assert!(!linux_workers.is_empty());
    for n in &linux_workers {
        assert_eq!(n.taints, vec![Taint::parse("dedicated=infra:NoExecute")], "{n:?}");
        assert_eq!(
            n.kubelet_flags.get("register-with-taints").map(String::as_str),
            Some("dedicated=infra:NoExecute"),
            "kubeadm join passes JoinConfiguration taints as a kubelet flag"
        );
    }
}
