//! Rendering what each machine runs at first boot: cloud-init for Linux
//! nodes, a PowerShell script for Windows nodes, the kubeadm configurations,
//! the Windows CNI configuration and the cluster manifests hke applies.
//!
//! Templates live in `templates/` and are rendered by handlebars in strict
//! mode (a missing key fails) over typed contexts. No value is interpolated
//! raw: templates call an escaping helper (`ps`, `sh`, `yaml`, `json`, `b64`)
//! for every value, which a test checks.

pub mod addons;
pub mod cni;
pub mod containerd;
pub mod escape;
pub mod kubeconfig;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, OnceLock};

use handlebars::{Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason};
use serde::Serialize;

use crate::catalog::versions;
use crate::cluster::{Cluster, Pool};
use crate::model::types::{NetworkPlugin, OsType, WindowsVersion};
use crate::pki::Pki;

/// Template sources, compiled into the binary.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "linux/cloud-init",
        include_str!("../../templates/linux/cloud-init.yaml.hbs"),
    ),
    (
        "linux/bootstrap",
        include_str!("../../templates/linux/bootstrap.sh.hbs"),
    ),
    (
        "linux/kubeadm-init",
        include_str!("../../templates/linux/kubeadm-init.yaml.hbs"),
    ),
    (
        "linux/kubeadm-join",
        include_str!("../../templates/linux/kubeadm-join.yaml.hbs"),
    ),
    ("windows/node", include_str!("../../templates/windows/node.ps1.hbs")),
    (
        "manifests/runtimeclasses",
        include_str!("../../templates/manifests/runtimeclasses.yaml.hbs"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {0}: {1}")]
    Template(String, String),
    #[error("no node named {0} in this cluster")]
    UnknownNode(String),
    #[error("{0}")]
    Other(String),
}

fn helper(name: &'static str, f: fn(&str) -> String) -> impl handlebars::HelperDef + Send + Sync + 'static {
    move |h: &Helper, _: &Handlebars, _: &Context, _: &mut RenderContext, out: &mut dyn Output| -> HelperResult {
        let v = h
            .param(0)
            .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex(name, 0))?
            .value();
        let other;
        let text = match v {
            serde_json::Value::String(s) => s.as_str(),
            serde_json::Value::Null => {
                return Err(RenderErrorReason::Other(format!("{name}: the value is null")).into());
            }
            v => {
                other = v.to_string();
                other.as_str()
            }
        };
        out.write(&f(text))?;
        Ok(())
    }
}

/// The template registry: strict, no HTML escaping, our helpers.
pub fn registry() -> Result<Handlebars<'static>, RenderError> {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    h.register_escape_fn(handlebars::no_escape);
    h.register_helper("ps", Box::new(helper("ps", escape::ps)));
    h.register_helper("sh", Box::new(helper("sh", escape::sh)));
    h.register_helper("yaml", Box::new(helper("yaml", escape::yaml)));
    h.register_helper("json", Box::new(helper("json", escape::json)));
    h.register_helper("b64", Box::new(helper("b64", escape::b64)));
    h.register_helper(
        "num",
        Box::new(
            |h: &Helper, _: &Handlebars, _: &Context, _: &mut RenderContext, out: &mut dyn Output| -> HelperResult {
                match h.param(0).map(|p| p.value()) {
                    Some(serde_json::Value::Number(n)) => {
                        out.write(&n.to_string())?;
                        Ok(())
                    }
                    other => Err(RenderErrorReason::Other(format!("num: {other:?} is not a number")).into()),
                }
            },
        ),
    );
    for (name, src) in TEMPLATES {
        h.register_template_string(name, *src)
            .map_err(|e| RenderError::Template(name.to_string(), e.to_string()))?;
    }
    Ok(h)
}

fn render<T: Serialize>(h: &Handlebars, name: &str, ctx: &T) -> Result<String, RenderError> {
    h.render(name, ctx)
        .map_err(|e| RenderError::Template(name.to_string(), e.to_string()))
}

/// A flag for kubeadm's v1beta4 `extraArgs` lists.
#[derive(Debug, Clone, Serialize)]
pub struct Arg {
    pub name: String,
    pub value: String,
}

fn args(flags: &BTreeMap<String, String>) -> Vec<Arg> {
    flags
        .iter()
        .map(|(k, v)| Arg {
            name: k.trim_start_matches('-').to_string(),
            value: v.clone(),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

fn taints(list: &[String]) -> Vec<Taint> {
    list.iter()
        .filter_map(|t| {
            let (kv, effect) = t.rsplit_once(':')?;
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Some(Taint {
                key: k.into(),
                value: v.into(),
                effect: effect.into(),
            })
        })
        .collect()
}

/// What a rendered file is: tests hand each file to the upstream code that
/// reads it on a node (kubeadm, containerd, libcni, flannel, kubelet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    KubeadmConfig,
    ContainerdConfig,
    /// A CNI network configuration (`.conf`) or list (`.conflist`).
    Cni,
    FlannelNetConf,
    Kubeconfig,
    Script,
    Certificate,
    PrivateKey,
    /// Kubernetes objects the first master applies.
    Manifest,
}

/// One file a node writes (base64 in cloud-init, a PowerShell literal in
/// the Windows script: no escaping issues).
#[derive(Debug, Clone, Serialize)]
pub struct WriteFile {
    pub path: String,
    pub permissions: String,
    #[serde(skip)]
    pub kind: FileKind,
    pub content: String,
    /// Readable by its owner only (Windows: SYSTEM and Administrators).
    pub secret: bool,
}

impl WriteFile {
    pub fn new(path: impl Into<String>, permissions: &str, kind: FileKind, content: impl Into<String>) -> WriteFile {
        WriteFile {
            path: path.into(),
            permissions: permissions.into(),
            kind,
            secret: permissions == "0600",
            content: content.into(),
        }
    }
}

/// Everything a node gets, typed: the files its boot file writes, the
/// arguments its kubelet (and, on Windows, kube-proxy) runs with, and the
/// platform strings it hands to containerd. The boot file is rendered from
/// exactly this.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub os: OsType,
    pub files: Vec<WriteFile>,
    /// The kubelet's flags as hke sets them (Linux: kubeadm's
    /// kubeletExtraArgs; Windows: the kubelet service's command line).
    pub kubelet_args: Vec<String>,
    /// Windows: kube-proxy's command line.
    pub kube_proxy_args: Vec<String>,
    /// containerd platform specifiers (`ctr images pull --platform`).
    pub platforms: Vec<String>,
    pub boot: BootFile,
}

/// Context of `linux/kubeadm-init` and `linux/kubeadm-join`.
#[derive(Debug, Clone, Serialize)]
pub struct KubeadmCtx {
    pub node_name: String,
    pub node_ip: String,
    pub cluster_name: String,
    pub kubernetes_version: String,
    pub endpoint: String,
    pub port: u16,
    /// `host:port`.
    pub endpoint_address: String,
    pub service_cidr: String,
    pub pod_cidr: String,
    pub dns_domain: String,
    pub cluster_dns: String,
    pub max_pods: u32,
    pub token: String,
    pub ca_hash: String,
    pub control_plane: bool,
    pub cert_sans: Vec<String>,
    pub kubelet_args: Vec<Arg>,
    pub api_server_args: Vec<Arg>,
    pub controller_manager_args: Vec<Arg>,
    pub scheduler_args: Vec<Arg>,
    pub taints: Vec<Taint>,
    pub node_labels: String,
    pub kube_proxy_mode: String,
    pub pause_image: String,
}

/// Context of `linux/bootstrap`.
#[derive(Debug, Clone, Serialize)]
pub struct LinuxBootstrapCtx {
    pub node_name: String,
    pub role: String,
    pub kubernetes_version: String,
    pub kubernetes_release: String,
    pub containerd_version: String,
    pub pause_image: String,
    pub init: bool,
    pub join: bool,
    /// A control-plane node: it keeps the bootstrap token alive.
    pub control_plane: bool,
    pub apply_manifests: bool,
    /// Manifests still applied from their pinned upstream URL: Calico's, in
    /// clusters without Windows pools (Calico for Windows needs the Tigera
    /// operator, which hke does not render yet; validation refuses it).
    pub remote_manifests: Vec<String>,
    /// kubenet: the node waits for its pod CIDR and configures the bridge.
    pub kubenet: bool,
    /// Azure CNI: its binaries (the configuration list is one of the files).
    pub azure_cni: bool,
    pub azure_cni_url: String,
    /// The CNI plugins release (kubenet's bridge, Azure CNI's portmap and loopback).
    pub cni_plugins: bool,
    pub cluster_cidr: String,
    pub node_cidr: String,
    pub service_cidr: String,
    pub cni_plugins_url: String,
    /// kubenet, first master: the pod CIDR hke assigns to each node (the
    /// same ranges its cloud routes point at).
    pub pod_cidrs: Vec<PodCidr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodCidr {
    pub node: String,
    pub cidr: String,
}

/// Context of `linux/cloud-init`.
#[derive(Debug, Clone, Serialize)]
pub struct CloudInitCtx {
    pub node_name: String,
    pub admin_username: String,
    pub ssh_keys: Vec<String>,
    pub files: Vec<WriteFile>,
}

/// Context of `windows/node`.
#[derive(Debug, Clone, Serialize)]
pub struct WindowsCtx {
    pub node_name: String,
    pub pool: String,
    pub windows_version: String,
    pub kubernetes_version: String,
    pub binaries_base_url: String,
    pub containerd_version: String,
    pub containerd_url: String,
    pub pause_image: String,
    pub pause_platform: String,
    pub always_pull_pause: bool,
    pub network_plugin: String,
    pub overlay: bool,
    pub hns_network_name: String,
    pub kubelet_args: Vec<String>,
    pub kube_proxy_args: Vec<String>,
    pub flanneld_args: Vec<String>,
    pub endpoint: String,
    pub port: u16,
    pub token: String,
    pub ca_hash: String,
    pub cni_plugins_url: String,
    pub cni_file_name: String,
    pub flannel_cni_url: String,
    pub flanneld_url: String,
    pub ssh_enabled: bool,
    pub ssh_keys: Vec<String>,
    pub hyperv: bool,
    pub files: Vec<WriteFile>,
}

/// Context of `manifests/runtimeclasses`.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeClassCtx {
    pub classes: Vec<RuntimeClass>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuntimeClass {
    pub name: String,
    pub handler: String,
    pub build: String,
    /// Hyper-V classes also select the nodes that offer it.
    pub hyperv: bool,
    pub tolerations: Vec<Taint>,
}

pub use crate::cluster::names::HYPERV_LABEL;
/// containerd's runtime handler names on Windows.
pub const HANDLER_PROCESS: &str = "runhcs-wcow-process";
pub const HANDLER_HYPERV: &str = "runhcs-wcow-hypervisor";

/// Filled in by the Windows script: a machine group's instance name, and
/// kube-proxy's source VIP on overlay networks.
pub const NODE_NAME_PLACEHOLDER: &str = "__HKE_NODE_NAME__";
pub const SOURCE_VIP_PLACEHOLDER: &str = "__HKE_SOURCE_VIP__";
/// kube-proxy's kubeconfig on Windows nodes (client certificate inside).
pub const WINDOWS_KUBE_PROXY_KUBECONFIG: &str = r"C:\k\kube-proxy.conf";
/// flannel's net-conf.json on Windows (`--net-config-path`).
pub const WINDOWS_FLANNEL_NET_CONF: &str = r"C:\etc\kube-flannel\net-conf.json";

/// Where Kubernetes node binaries are downloaded from (`<base>/v<version>/bin/windows/amd64/kubelet.exe`).
pub const DEFAULT_BINARIES_BASE_URL: &str = "https://dl.k8s.io";

/// The pause image of a Kubernetes cluster (multi-arch, with Windows LTSC builds).
pub fn pause_image() -> String {
    format!("registry.k8s.io/pause:{}", versions::table().pause)
}

fn node_labels(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The distinct taints of some pools, as tolerations.
fn tolerations<'p>(pools: impl Iterator<Item = &'p Pool>) -> Vec<Taint> {
    let mut out: Vec<Taint> = Vec::new();
    for p in pools {
        for t in taints(&p.taints) {
            if !out
                .iter()
                .any(|x| x.key == t.key && x.value == t.value && x.effect == t.effect)
            {
                out.push(t);
            }
        }
    }
    out
}

/// The RuntimeClasses for the Windows versions of a cluster: one per version,
/// tolerating the taints of that version's pools, and a Hyper-V one where a
/// pool offers Hyper-V isolation.
pub fn runtime_classes(c: &Cluster) -> Vec<RuntimeClass> {
    let t = versions::table();
    let mut out: Vec<RuntimeClass> = Vec::new();
    for w in c.windows_versions() {
        out.push(RuntimeClass {
            name: format!("windows-{w}"),
            handler: HANDLER_PROCESS.into(),
            build: t.windows(w).build.clone(),
            hyperv: false,
            tolerations: tolerations(c.pools.iter().filter(|p| p.windows == Some(w))),
        });
        if c.pools.iter().any(|p| p.windows == Some(w) && p.hyperv) {
            out.push(RuntimeClass {
                name: format!("windows-{w}-hyperv"),
                handler: HANDLER_HYPERV.into(),
                build: t.windows(w).build.clone(),
                hyperv: true,
                tolerations: tolerations(c.pools.iter().filter(|p| p.windows == Some(w) && p.hyperv)),
            });
        }
    }
    out
}

/// What a node is.
#[derive(Debug, Clone)]
pub enum NodeRef<'a> {
    Master(usize),
    Worker(&'a Pool, Option<usize>),
}

/// Find a node (or a machine-group pool) by name.
pub fn find_node<'a>(c: &'a Cluster, name: &str) -> Option<NodeRef<'a>> {
    if let Some(i) = c.masters.names.iter().position(|n| n == name) {
        return Some(NodeRef::Master(i));
    }
    for p in &c.pools {
        if let Some(i) = p.node_names.iter().position(|n| n == name) {
            return Some(NodeRef::Worker(p, Some(i)));
        }
        if crate::plan::group_name(c, &p.name) == name || p.name == name {
            return Some(NodeRef::Worker(p, None));
        }
    }
    None
}

/// Every name [`find_node`] knows, each mapped to what it finds: one
/// lookup per node instead of a walk of the cluster.
pub fn node_index(c: &Cluster) -> std::collections::HashMap<String, NodeRef<'_>> {
    let names = c.masters.names.len() + c.pools.iter().map(|p| p.node_names.len() + 2).sum::<usize>();
    let mut index = std::collections::HashMap::with_capacity(names);
    for (i, n) in c.masters.names.iter().enumerate() {
        index.entry(n.clone()).or_insert(NodeRef::Master(i));
    }
    for p in &c.pools {
        for (i, n) in p.node_names.iter().enumerate() {
            index.entry(n.clone()).or_insert(NodeRef::Worker(p, Some(i)));
        }
        for n in [crate::plan::group_name(c, &p.name), p.name.clone()] {
            index.entry(n).or_insert(NodeRef::Worker(p, None));
        }
    }
    index
}

impl NodeRef<'_> {
    /// The OS the node (or the machine group's instances) runs.
    pub fn os(&self) -> OsType {
        match self {
            NodeRef::Master(_) => OsType::Linux,
            NodeRef::Worker(p, _) => p.os,
        }
    }
}

/// A rendered boot file and the name it is written under.
#[derive(Debug, Clone)]
pub struct BootFile {
    /// `cloud-init.yaml` or `bootstrap.ps1`.
    pub file_name: &'static str,
    pub content: String,
}

/// Compile the templates now (once per process; a renderer made later
/// finds them compiled).
pub fn compile_templates() {
    let _ = shared_registry();
}

/// The compiled templates, built once per process.
fn shared_registry() -> Result<&'static Handlebars<'static>, RenderError> {
    static REGISTRY: std::sync::OnceLock<Result<Handlebars<'static>, String>> = std::sync::OnceLock::new();
    match REGISTRY.get_or_init(|| registry().map_err(|e| e.to_string())) {
        Ok(h) => Ok(h),
        Err(e) => Err(RenderError::Template("registry".into(), e.clone())),
    }
}

/// The boot file name of a node of an OS.
pub fn boot_file_name(os: OsType) -> &'static str {
    match os {
        OsType::Linux => "cloud-init.yaml",
        OsType::Windows => "bootstrap.ps1",
    }
}

/// What every node of a cluster shares, computed once per [`Renderer`]
/// (a large cluster renders a thousand boot files from one).
struct Shared {
    /// The API server certificate's names, as kubeadm's certSANs.
    sans: Vec<String>,
    /// Linux: containerd's configuration and the plugin's files.
    linux_files: Vec<WriteFile>,
    /// Linux control plane: the CA keys and the service-account key pair.
    master_pki: Vec<WriteFile>,
    /// Windows: containerd's configuration.
    windows_containerd: WriteFile,
    /// Windows: the CNI configuration list and its file name.
    windows_cni: Option<(WriteFile, &'static str)>,
    /// Windows, flannel: net-conf.json.
    windows_flannel: Option<WriteFile>,
}

/// The names a pool's boot file is rendered with to be instantiated per
/// node (see [`Renderer::boot_file`]): of different lengths, from the
/// characters of node names, and unlike anything else in a boot file.
const NAME_PROBES: [&str; 2] = ["zqhke-probe-1", "zqx-other-node-probe-22"];

/// A name every escaping helper but `b64` writes as it is (node names are
/// lowercase letters, digits and hyphens).
fn verbatim_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `text` with every `probe` replaced by `name`. The probe's first byte is
/// found with `str::find` (memchr), which keeps this fast in debug builds.
fn instantiate(text: &str, probe: &str, name: &str) -> String {
    let first = probe.as_bytes()[0] as char;
    let mut out = String::with_capacity(text.len() + 8 * name.len());
    let mut rest = text;
    while let Some(i) = rest.find(first) {
        if rest[i..].starts_with(probe) {
            out.push_str(&rest[..i]);
            out.push_str(name);
            rest = &rest[i + probe.len()..];
        } else {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// A pool's boot texts rendered with [`NAME_PROBES`]`[0]`.
enum PoolBoot {
    Linux { kubeadm: String, script: String },
    Windows { script: String },
}

pub struct Renderer<'a> {
    h: &'static Handlebars<'static>,
    c: &'a Cluster,
    pki: &'a Pki,
    pod_cidrs: Cow<'a, BTreeMap<String, String>>,
    shared: OnceLock<Shared>,
    /// Windows: kube-proxy's kubeconfig for the first endpoint asked for.
    kube_proxy: OnceLock<(String, WriteFile)>,
    /// Pools' boot texts by pool and endpoint, see [`Renderer::boot_file`].
    pools: PoolBoots,
}

type PoolBoots = Mutex<HashMap<(String, String), Arc<OnceLock<Option<PoolBoot>>>>>;

impl<'a> Renderer<'a> {
    pub fn new(
        c: &'a Cluster,
        pki: &'a Pki,
        pod_cidrs: &'a BTreeMap<String, String>,
    ) -> Result<Renderer<'a>, RenderError> {
        Self::with_pod_cidrs(c, pki, Cow::Borrowed(pod_cidrs))
    }

    /// [`Renderer::new`] owning the pod CIDRs (a renderer that outlives the
    /// plan they come from).
    pub fn with_pod_cidrs(
        c: &'a Cluster,
        pki: &'a Pki,
        pod_cidrs: Cow<'a, BTreeMap<String, String>>,
    ) -> Result<Renderer<'a>, RenderError> {
        Ok(Renderer {
            h: shared_registry()?,
            c,
            pki,
            pod_cidrs,
            shared: OnceLock::new(),
            kube_proxy: OnceLock::new(),
            pools: Mutex::default(),
        })
    }

    fn shared(&self) -> &Shared {
        self.shared.get_or_init(|| {
            let c = self.c;
            let pki = self.pki;
            let sans = crate::pki::apiserver_sans(c)
                .iter()
                .map(|s| match s {
                    rcgen::SanType::DnsName(d) => d.as_str().to_string(),
                    rcgen::SanType::IpAddress(ip) => ip.to_string(),
                    _ => String::new(),
                })
                .filter(|s| !s.is_empty() && !s.starts_with('*'))
                .collect();
            let mut linux_files = vec![WriteFile::new(
                containerd::LINUX_PATH,
                "0644",
                FileKind::ContainerdConfig,
                containerd::linux_config(&pause_image()),
            )];
            linux_files.extend(addons::linux_node_files(c));
            let secret = |path: &str, content: &str| {
                WriteFile::new(
                    format!("/etc/kubernetes/pki/{path}"),
                    "0600",
                    FileKind::PrivateKey,
                    content,
                )
            };
            let public = |path: &str, content: &str| {
                WriteFile::new(
                    format!("/etc/kubernetes/pki/{path}"),
                    "0644",
                    FileKind::Certificate,
                    content,
                )
            };
            let master_pki = vec![
                public("ca.crt", &pki.ca.cert),
                secret("ca.key", pki.ca.key.expose()),
                public("front-proxy-ca.crt", &pki.front_proxy_ca.cert),
                secret("front-proxy-ca.key", pki.front_proxy_ca.key.expose()),
                public("etcd/ca.crt", &pki.etcd_ca.cert),
                secret("etcd/ca.key", pki.etcd_ca.key.expose()),
                public("sa.pub", &pki.service_account_public),
                secret("sa.key", pki.service_account_private.expose()),
            ];
            let pause = c
                .windows
                .as_ref()
                .and_then(|w| w.pause_image.clone())
                .unwrap_or_else(pause_image);
            let windows_containerd = WriteFile::new(
                containerd::WINDOWS_PATH,
                "0644",
                FileKind::ContainerdConfig,
                containerd::windows_config(&pause),
            );
            let windows_cni = cni::windows_config(c).map(|f| {
                (
                    WriteFile::new(
                        format!(r"{}\{}", containerd::WINDOWS_CNI_CONF, f.file_name),
                        "0644",
                        FileKind::Cni,
                        serde_json::to_string_pretty(&f.config).unwrap_or_default(),
                    ),
                    f.file_name,
                )
            });
            let windows_flannel = (c.network.plugin == NetworkPlugin::Flannel).then(|| {
                WriteFile::new(
                    WINDOWS_FLANNEL_NET_CONF,
                    "0644",
                    FileKind::FlannelNetConf,
                    addons::flannel_net_conf(c),
                )
            });
            Shared {
                sans,
                linux_files,
                master_pki,
                windows_containerd,
                windows_cni,
                windows_flannel,
            }
        })
    }

    /// kube-proxy's kubeconfig on Windows nodes reaching the API server at
    /// `endpoint`.
    fn kube_proxy_kubeconfig(&self, endpoint: &str) -> WriteFile {
        let make = || {
            let c = self.c;
            WriteFile::new(
                WINDOWS_KUBE_PROXY_KUBECONFIG,
                "0600",
                FileKind::Kubeconfig,
                serde_json::to_string(&crate::render::kubeconfig::kube_proxy(
                    c,
                    self.pki,
                    &format!("https://{endpoint}:{}", c.endpoint.port),
                ))
                .unwrap_or_default(),
            )
        };
        let (cached_for, file) = self.kube_proxy.get_or_init(|| (endpoint.to_string(), make()));
        if cached_for == endpoint {
            file.clone()
        } else {
            make()
        }
    }

    /// The manifests the first master applies, by file name (applied in
    /// this order). Every add-on is rendered here, pinned and with the
    /// cluster's values: nothing is fetched from a URL at boot.
    pub fn manifests(&self) -> Result<Vec<(String, String)>, RenderError> {
        let mut out = Vec::new();
        if self.c.windows.is_some() {
            out.push((
                "10-runtimeclasses.yaml".to_string(),
                render(
                    self.h,
                    "manifests/runtimeclasses",
                    &RuntimeClassCtx {
                        classes: runtime_classes(self.c),
                    },
                )?,
            ));
        }
        out.extend(addons::manifests(self.c)?);
        Ok(out)
    }

    fn kubeadm(
        &self,
        name: &str,
        ip: Option<Ipv4Addr>,
        control_plane: bool,
        pool: Option<&Pool>,
        endpoint: &str,
    ) -> KubeadmCtx {
        let c = self.c;
        let mut sans: Vec<String> = self.shared().sans.clone();
        if !sans.iter().any(|s| s == endpoint) {
            sans.push(endpoint.to_string());
        }
        let (flags, labels, taint_list) = match pool {
            Some(p) => (&p.kubelet_flags, node_labels(&p.labels), taints(&p.taints)),
            None => {
                // The control plane keeps workloads off when Linux workers
                // exist (acs-engine's rule), so system pods land on workers.
                let any_linux = c.pools.iter().any(|p| p.os == OsType::Linux);
                let t = if any_linux {
                    vec![Taint {
                        key: "node-role.kubernetes.io/control-plane".into(),
                        value: String::new(),
                        effect: "NoSchedule".into(),
                    }]
                } else {
                    vec![]
                };
                (&c.masters.kubelet_flags, String::new(), t)
            }
        };
        let mut kubelet: BTreeMap<String, String> = flags.clone();
        kubelet.remove("--register-with-taints");
        // The pool's labels and any `--node-labels` of the model's own: one
        // kubeletExtraArgs entry holds both (the kubelet would merge repeated
        // flags; kubeadm passes one value per name).
        let merged: Vec<String> = [labels.clone(), flags.get("--node-labels").cloned().unwrap_or_default()]
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect();
        if !merged.is_empty() {
            kubelet.insert("--node-labels".into(), merged.join(","));
        }
        let mut cm = c.controller_manager_flags.clone();
        match c.network.plugin {
            // hke assigns the planned ranges itself, so routes and nodes agree.
            NetworkPlugin::Kubenet => {
                cm.insert("--allocate-node-cidrs".into(), "false".into());
            }
            NetworkPlugin::Flannel | NetworkPlugin::Calico => {
                cm.entry("--allocate-node-cidrs".into())
                    .or_insert_with(|| "true".into());
            }
            NetworkPlugin::Azure => {}
        }
        KubeadmCtx {
            node_name: name.into(),
            node_ip: ip.map(|i| i.to_string()).unwrap_or_default(),
            cluster_name: c.name.to_string(),
            kubernetes_version: format!("v{}", c.kubernetes),
            endpoint: endpoint.into(),
            port: c.endpoint.port,
            endpoint_address: format!("{endpoint}:{}", c.endpoint.port),
            service_cidr: c.network.service_cidr.to_string(),
            pod_cidr: c.network.pod_cidr.to_string(),
            dns_domain: c.network.cluster_domain.clone(),
            cluster_dns: c.network.dns_service_ip.to_string(),
            max_pods: c.network.max_pods,
            token: c.bootstrap_token.expose().to_string(),
            ca_hash: self.pki.discovery_hash.clone(),
            control_plane,
            cert_sans: sans,
            kubelet_args: args(&kubelet),
            api_server_args: args(&c.api_server_flags),
            controller_manager_args: args(&cm),
            scheduler_args: args(&c.scheduler_flags),
            taints: taint_list,
            node_labels: labels,
            kube_proxy_mode: c.network.kube_proxy_mode.clone(),
            pause_image: pause_image(),
        }
    }

    /// The boot file of a node. `endpoint` is the API server's address as
    /// known now (the planned name, or the load balancer's resolved address).
    pub fn node(&self, name: &str, endpoint: &str) -> Result<BootFile, RenderError> {
        Ok(self.node_spec(name, endpoint)?.boot)
    }

    /// Everything a node (or a machine group's instances) gets, typed.
    pub fn node_spec(&self, name: &str, endpoint: &str) -> Result<NodeSpec, RenderError> {
        let node = find_node(self.c, name).ok_or_else(|| RenderError::UnknownNode(name.into()))?;
        self.node_spec_of(name, node, endpoint)
    }

    /// [`Renderer::node_spec`] of a node already found (by [`find_node`] or
    /// [`node_index`]).
    pub fn node_spec_of(&self, name: &str, node: NodeRef<'_>, endpoint: &str) -> Result<NodeSpec, RenderError> {
        let c = self.c;
        match node {
            NodeRef::Master(i) => self.linux(name, c.masters.ips.get(i).copied(), true, i == 0, None, endpoint),
            // A machine group's instances name themselves after their host.
            NodeRef::Worker(p, None) if p.os == OsType::Linux => self.linux("", None, false, false, Some(p), endpoint),
            NodeRef::Worker(p, None) => self.windows("", p, endpoint),
            NodeRef::Worker(p, _) if p.os == OsType::Linux => self.linux(name, None, false, false, Some(p), endpoint),
            NodeRef::Worker(p, _) => self.windows(name, p, endpoint),
        }
    }

    fn linux(
        &self,
        name: &str,
        ip: Option<Ipv4Addr>,
        master: bool,
        first: bool,
        pool: Option<&Pool>,
        endpoint: &str,
    ) -> Result<NodeSpec, RenderError> {
        let (kubeadm, script, kubelet_args) = self.linux_texts(name, ip, master, first, pool, endpoint)?;
        let (files, content) = self.cloud_init(name, kubeadm, script, master, first)?;
        Ok(NodeSpec {
            name: name.into(),
            os: OsType::Linux,
            files,
            kubelet_args,
            kube_proxy_args: Vec::new(),
            platforms: Vec::new(),
            boot: BootFile {
                file_name: boot_file_name(OsType::Linux),
                content,
            },
        })
    }

    /// A Linux node's kubeadm configuration, bootstrap script and kubelet
    /// flags.
    fn linux_texts(
        &self,
        name: &str,
        ip: Option<Ipv4Addr>,
        master: bool,
        first: bool,
        pool: Option<&Pool>,
        endpoint: &str,
    ) -> Result<(String, String, Vec<String>), RenderError> {
        let c = self.c;
        let ctx = self.kubeadm(name, ip, master, pool, endpoint);
        let kubelet_args: Vec<String> = ctx
            .kubelet_args
            .iter()
            .map(|a| format!("--{}={}", a.name, a.value))
            .collect();
        let kubeadm = if first {
            render(self.h, "linux/kubeadm-init", &ctx)?
        } else {
            render(self.h, "linux/kubeadm-join", &ctx)?
        };
        let boot = LinuxBootstrapCtx {
            node_name: name.into(),
            role: if master {
                "control-plane".into()
            } else {
                "worker".into()
            },
            kubernetes_version: c.kubernetes.to_string(),
            kubernetes_release: c.kubernetes.release(),
            containerd_version: c.containerd_version.clone(),
            pause_image: pause_image(),
            init: first,
            join: !first,
            control_plane: master,
            apply_manifests: first,
            remote_manifests: if c.network.plugin == NetworkPlugin::Calico {
                vec![versions::table().addons.calico.clone()]
            } else {
                Vec::new()
            },
            kubenet: c.network.plugin == NetworkPlugin::Kubenet,
            azure_cni: c.network.plugin == NetworkPlugin::Azure,
            azure_cni_url: versions::table().addons.azure_cni_linux.clone(),
            cni_plugins: matches!(c.network.plugin, NetworkPlugin::Kubenet | NetworkPlugin::Azure),
            cluster_cidr: c.network.pod_cidr.to_string(),
            node_cidr: c.network.node_cidr.to_string(),
            service_cidr: c.network.service_cidr.to_string(),
            cni_plugins_url: versions::table().addons.cni_plugins_linux.clone(),
            pod_cidrs: if first && c.network.plugin == NetworkPlugin::Kubenet {
                self.pod_cidrs
                    .iter()
                    .map(|(node, cidr)| PodCidr {
                        node: node.clone(),
                        cidr: cidr.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        };
        let script = render(self.h, "linux/bootstrap", &boot)?;
        Ok((kubeadm, script, kubelet_args))
    }

    /// A Linux node's files and its cloud-init document.
    fn cloud_init(
        &self,
        name: &str,
        kubeadm: String,
        script: String,
        master: bool,
        first: bool,
    ) -> Result<(Vec<WriteFile>, String), RenderError> {
        let c = self.c;
        let shared = self.shared();
        let mut files = vec![
            WriteFile::new("/etc/hke/kubeadm.yaml", "0600", FileKind::KubeadmConfig, kubeadm),
            shared.linux_files[0].clone(),
            WriteFile::new("/etc/hke/bootstrap.sh", "0700", FileKind::Script, script),
        ];
        files.extend(shared.linux_files[1..].iter().cloned());
        if master {
            files.extend(shared.master_pki.iter().cloned());
        }
        if first {
            for (file, content) in self.manifests()? {
                files.push(WriteFile::new(
                    format!("/etc/hke/manifests/{file}"),
                    "0644",
                    FileKind::Manifest,
                    content,
                ));
            }
        }
        let ctx = CloudInitCtx {
            node_name: name.into(),
            admin_username: c.linux.admin_username.clone(),
            ssh_keys: c.linux.ssh_public_keys.clone(),
            files,
        };
        let content = render(self.h, "linux/cloud-init", &ctx)?;
        Ok((ctx.files, content))
    }

    /// The boot file of a node found by [`find_node`] or [`node_index`]:
    /// the same bytes as [`Renderer::node_spec_of`]'s, made faster for the
    /// workers of a pool. Their boot files differ only by the node's name,
    /// so the pool's are rendered once with a probe name and instantiated
    /// per node by replacing it (Linux: the kubeadm configuration and the
    /// script, before cloud-init encodes them).
    ///
    /// Instantiating is used only where it is provably the same as
    /// rendering: the pool renders identically under a second probe of
    /// another length (every use of the name is verbatim: no branch, length
    /// or encoding depends on it), and the node's name, like the probes,
    /// is one that every escaping helper but `b64` leaves as it is.
    pub fn boot_file(&self, name: &str, node: NodeRef<'_>, endpoint: &str) -> Result<BootFile, RenderError> {
        let slot = match node {
            NodeRef::Worker(p, Some(_)) if verbatim_name(name) => Some(self.pool_boot(p, endpoint)),
            _ => None,
        };
        match slot.as_deref().and_then(|s| s.get()).and_then(Option::as_ref) {
            Some(PoolBoot::Linux { kubeadm, script }) => {
                let kubeadm = instantiate(kubeadm, NAME_PROBES[0], name);
                let script = instantiate(script, NAME_PROBES[0], name);
                let (_, content) = self.cloud_init(name, kubeadm, script, false, false)?;
                Ok(BootFile {
                    file_name: boot_file_name(OsType::Linux),
                    content,
                })
            }
            Some(PoolBoot::Windows { script }) => Ok(BootFile {
                file_name: boot_file_name(OsType::Windows),
                content: instantiate(script, NAME_PROBES[0], name),
            }),
            None => Ok(self.node_spec_of(name, node, endpoint)?.boot),
        }
    }

    /// A pool's name-independent boot texts for `endpoint`, rendered and
    /// checked once (`None`: they depend on the name other than verbatim,
    /// or do not render; each node is then rendered in full).
    fn pool_boot(&self, p: &Pool, endpoint: &str) -> Arc<OnceLock<Option<PoolBoot>>> {
        let slot = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(pools.entry((p.name.clone(), endpoint.to_string())).or_default())
        };
        slot.get_or_init(|| {
            let texts = |probe: &str| -> Option<PoolBoot> {
                Some(match p.os {
                    OsType::Linux => {
                        let (kubeadm, script, _) =
                            self.linux_texts(probe, None, false, false, Some(p), endpoint).ok()?;
                        PoolBoot::Linux { kubeadm, script }
                    }
                    OsType::Windows => PoolBoot::Windows {
                        script: self.windows(probe, p, endpoint).ok()?.boot.content,
                    },
                })
            };
            let [a, b] = NAME_PROBES;
            let (one, other) = (texts(a)?, texts(b)?);
            let same = |x: &str, y: &str| instantiate(x, a, b) == y;
            let verbatim = match (&one, &other) {
                (
                    PoolBoot::Linux { kubeadm, script },
                    PoolBoot::Linux {
                        kubeadm: kubeadm_b,
                        script: script_b,
                    },
                ) => same(kubeadm, kubeadm_b) && same(script, script_b),
                (PoolBoot::Windows { script }, PoolBoot::Windows { script: script_b }) => same(script, script_b),
                _ => false,
            };
            verbatim.then_some(one)
        });
        slot
    }

    fn windows(&self, name: &str, p: &Pool, endpoint: &str) -> Result<NodeSpec, RenderError> {
        let c = self.c;
        let t = versions::table();
        let w: WindowsVersion = p.windows.unwrap_or(WindowsVersion::Ws2022);
        let win = c.windows.as_ref();
        let plugin = c.network.plugin;
        // Machine-group instances learn their name at boot.
        let node = if name.is_empty() { NODE_NAME_PLACEHOLDER } else { name };
        let mut kubelet: Vec<String> = vec![
            // The kubelet talks to the service manager itself.
            "--windows-service".into(),
            r"--config=C:\var\lib\kubelet\config.yaml".into(),
            r"--bootstrap-kubeconfig=C:\etc\kubernetes\bootstrap-kubelet.conf".into(),
            r"--kubeconfig=C:\etc\kubernetes\kubelet.conf".into(),
            r"--cert-dir=C:\var\lib\kubelet\pki".into(),
            format!("--container-runtime-endpoint={}", containerd::WINDOWS_ENDPOINT),
            format!("--hostname-override={node}"),
        ];
        if !p.labels.is_empty() {
            kubelet.push(format!("--node-labels={}", node_labels(&p.labels)));
        }
        if !p.taints.is_empty() {
            kubelet.push(format!("--register-with-taints={}", p.taints.join(",")));
        }
        kubelet.extend(
            p.kubelet_flags
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "--register-with-taints" | "--eviction-hard"))
                .map(|(k, v)| format!("{k}={v}")),
        );
        // Windows has no cgroups and no resolv.conf (sig-windows-tools'
        // StartKubelet.ps1, kube-up's kubelet flags).
        kubelet.push("--cgroups-per-qos=false".into());
        kubelet.push("--enforce-node-allocatable=".into());
        kubelet.push("--resolv-conf=".into());

        let network = cni::hns_network_name(plugin);
        let mut kube_proxy: Vec<String> = vec![
            "--windows-service".into(),
            format!("--kubeconfig={WINDOWS_KUBE_PROXY_KUBECONFIG}"),
            format!("--hostname-override={node}"),
            // Windows' data plane (pkg/proxy/winkernel): HNS load balancers
            // on the plugin's network.
            "--proxy-mode=kernelspace".into(),
            format!("--network-name={network}"),
            format!("--cluster-cidr={}", c.network.pod_cidr),
            "--v=2".into(),
        ];
        if plugin == NetworkPlugin::Flannel {
            // Overlay networks need the source VIP (winkernel refuses to
            // start without it), reserved by the script at boot.
            kube_proxy.push(format!("--source-vip={SOURCE_VIP_PLACEHOLDER}"));
        }
        let flanneld: Vec<String> = if plugin == NetworkPlugin::Flannel {
            vec![
                "--kube-subnet-mgr".into(),
                // The node's own identity: flannel reads nodes and patches
                // its own node's status, which the Node authorizer allows.
                r"--kubeconfig-file=C:\etc\kubernetes\kubelet.conf".into(),
                format!("--net-config-path={WINDOWS_FLANNEL_NET_CONF}"),
                format!("--iface={}", cni::NODE_IP_PLACEHOLDER),
            ]
        } else {
            Vec::new()
        };

        let pause = win.and_then(|w| w.pause_image.clone()).unwrap_or_else(pause_image);
        let build = t.windows(w).build.clone();
        let pause_platform = format!("windows({build})/amd64");
        let shared = self.shared();
        let mut files = vec![shared.windows_containerd.clone(), self.kube_proxy_kubeconfig(endpoint)];
        let cni_file_name = shared.windows_cni.as_ref().map(|(f, name)| {
            files.push(f.clone());
            *name
        });
        files.extend(shared.windows_flannel.iter().cloned());
        let ctx = WindowsCtx {
            node_name: name.into(),
            pool: p.name.clone(),
            windows_version: w.to_string(),
            kubernetes_version: c.kubernetes.to_string(),
            binaries_base_url: DEFAULT_BINARIES_BASE_URL.into(),
            containerd_version: c.containerd_version.clone(),
            containerd_url: format!(
                "https://github.com/containerd/containerd/releases/download/v{v}/containerd-{v}-windows-amd64.tar.gz",
                v = c.containerd_version
            ),
            pause_image: pause,
            pause_platform: pause_platform.clone(),
            always_pull_pause: win.is_some_and(|w| w.always_pull_pause_image),
            network_plugin: plugin.to_string(),
            overlay: plugin.is_overlay(),
            hns_network_name: network.into(),
            kubelet_args: kubelet,
            kube_proxy_args: kube_proxy,
            flanneld_args: flanneld,
            endpoint: endpoint.into(),
            port: c.endpoint.port,
            token: c.bootstrap_token.expose().to_string(),
            ca_hash: self.pki.discovery_hash.clone(),
            cni_plugins_url: cni::windows_plugins_url(plugin),
            cni_file_name: cni_file_name.unwrap_or_default().into(),
            flannel_cni_url: if plugin == NetworkPlugin::Flannel {
                t.addons.flannel_cni_windows.clone()
            } else {
                String::new()
            },
            flanneld_url: if plugin == NetworkPlugin::Flannel {
                t.addons.flanneld_windows.clone()
            } else {
                String::new()
            },
            ssh_enabled: win.is_some_and(|w| w.ssh_enabled),
            ssh_keys: c.linux.ssh_public_keys.clone(),
            hyperv: p.hyperv,
            files,
        };
        let content = render(self.h, "windows/node", &ctx)?;
        Ok(NodeSpec {
            name: name.into(),
            os: OsType::Windows,
            files: ctx.files,
            kubelet_args: ctx.kubelet_args,
            kube_proxy_args: ctx.kube_proxy_args,
            platforms: vec![pause_platform],
            boot: BootFile {
                file_name: boot_file_name(OsType::Windows),
                content,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::endpoint_host;

    /// A cluster with its PKI, as `ops::generate::prepare` makes them.
    struct Prepared {
        cluster: Cluster,
        pki: Pki,
    }

    /// An example with a network plugin and three workers per pool, with a
    /// fixed seed and clock.
    fn prepared(example: &str, plugin: &str) -> Prepared {
        use rand::SeedableRng;
        let sets: Vec<_> = [
            format!("properties.orchestratorProfile.kubernetesConfig.networkPlugin={plugin}"),
            "properties.agentPoolProfiles[0].count=3".into(),
            "properties.agentPoolProfiles[1].count=3".into(),
        ]
        .iter()
        .map(|s| s.parse().expect("set"))
        .collect();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20000);
        let b = crate::cluster::build(example, &sets, &mut rng).expect("valid");
        let profile = b
            .model
            .properties
            .as_ref()
            .and_then(|p| p.certificate_profile.clone())
            .unwrap_or_default();
        let mut diags = b.diagnostics;
        let pki = crate::pki::issue(&b.cluster, &profile, now, &b.origins, &mut diags).expect("pki");
        Prepared {
            cluster: b.cluster,
            pki,
        }
    }

    fn variants() -> Vec<(String, Prepared)> {
        let mut out = Vec::new();
        for (name, text, plugins) in [
            (
                "windows.json",
                include_str!("../../examples/windows.json"),
                &["azure", "kubenet", "flannel"][..],
            ),
            (
                "windows-aws.json",
                include_str!("../../examples/windows-aws.json"),
                &["kubenet", "flannel"][..],
            ),
            (
                "windows-gcp.json",
                include_str!("../../examples/windows-gcp.json"),
                &["kubenet", "flannel"][..],
            ),
        ] {
            for plugin in plugins {
                out.push((format!("{name}/{plugin}"), prepared(text, plugin)));
            }
        }
        out
    }

    /// Every name a cluster answers to: masters, nodes, machine groups, pools.
    fn names(c: &Cluster) -> Vec<String> {
        let mut out = c.masters.names.clone();
        for p in &c.pools {
            out.extend(p.node_names.iter().cloned());
            out.push(crate::plan::group_name(c, &p.name));
            out.push(p.name.clone());
        }
        out
    }

    #[test]
    fn boot_files_instantiated_per_pool_are_the_rendered_ones() {
        let (mut linux, mut windows) = (0, 0);
        for (variant, p) in variants() {
            let c = &p.cluster;
            let plan = crate::plan::plan(c).expect("plan");
            let r = Renderer::new(c, &p.pki, &plan.pod_cidrs).expect("renderer");
            for endpoint in [endpoint_host(c), "10.1.2.3".to_string()] {
                for name in names(c) {
                    let node = find_node(c, &name).expect("a node");
                    let fast = r.boot_file(&name, node.clone(), &endpoint).expect("boot file");
                    let full = r.node_spec_of(&name, node, &endpoint).expect("node spec").boot;
                    assert_eq!(fast.file_name, full.file_name, "{variant} {name}");
                    assert!(
                        fast.content == full.content,
                        "{variant} {name} at {endpoint}: boot files differ"
                    );
                }
            }
            // The pools' workers were instantiated, not rendered one by one.
            let pools = r.pools.lock().expect("lock");
            for ((pool, _), slot) in pools.iter() {
                let instantiated = slot.get().is_some_and(Option::is_some);
                assert!(instantiated, "{variant}: pool {pool} is rendered node by node");
                match c.pools.iter().find(|p| &p.name == pool).map(|p| p.os) {
                    Some(OsType::Linux) => linux += 1,
                    Some(OsType::Windows) => windows += 1,
                    None => {}
                }
            }
        }
        assert!(
            linux > 0 && windows > 0,
            "no pool of individual machines: linux {linux}, windows {windows}"
        );
    }

    #[test]
    fn a_name_used_other_than_verbatim_is_not_instantiated() {
        let [a, b] = NAME_PROBES;
        let encoded = |name: &str| format!("name: {name}\ndata: {}\n", escape::b64(&format!("node {name}")));
        assert_ne!(instantiate(&encoded(a), a, b), encoded(b));
        let verbatim = |name: &str| format!("$NodeName = {}\n# {}\n", escape::ps(name), escape::yaml(name));
        assert_eq!(instantiate(&verbatim(a), a, b), verbatim(b));
        assert!(verbatim_name("aa91k8s01000") && verbatim_name("k8s-linuxpool1-12345678-0"));
        assert!(!verbatim_name("") && !verbatim_name("Node") && !verbatim_name("a'b") && !verbatim_name("a.b"));
    }

    #[test]
    fn instantiate_replaces_every_probe_and_nothing_else() {
        let p = NAME_PROBES[0];
        assert_eq!(instantiate("", p, "n1"), "");
        assert_eq!(
            instantiate("no probe, zq and z here", p, "n1"),
            "no probe, zq and z here"
        );
        assert_eq!(
            instantiate(&format!("{p}-{p} z{p}zq {p}"), p, "node-7"),
            "node-7-node-7 znode-7zq node-7"
        );
        assert_eq!(instantiate(&format!("zqhke-probe{p}"), p, "x"), "zqhke-probex");
        assert_eq!(instantiate(&format!("€ {p} ü"), p, "x"), "€ x ü");
    }

    #[test]
    fn the_node_index_finds_what_find_node_finds() {
        for (variant, p) in variants() {
            let c = &p.cluster;
            let index = node_index(c);
            for name in names(c) {
                assert_eq!(
                    format!("{:?}", index.get(&name)),
                    format!("{:?}", find_node(c, &name).as_ref()),
                    "{variant} {name}"
                );
            }
            assert!(!index.contains_key("no-such-node"));
        }
    }
}
