//! The orchestrator (type, version, release) and kubernetesConfig: network
//! plugin and policy, the address ranges, the DNS service address, maxPods,
//! the proxy mode, the container runtime, feature flags, the components'
//! flags and the cluster-wide kubelet flags.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::catalog::versions::Table;
use crate::cluster::defaults;
use crate::model::types::{Cidr, Cloud, K8sVersion, NetworkPlugin};
use crate::model::vlabs;

use super::fields::{check_durations, check_flags};
use super::{Parts, V};

/// What kubernetesConfig decides, for the later sections and the `Cluster`.
pub(super) struct Kube {
    pub(super) plugin: NetworkPlugin,
    pub(super) policy: Option<String>,
    pub(super) node_cidr: Cidr,
    pub(super) pod_cidr: Cidr,
    pub(super) service_cidr: Cidr,
    pub(super) docker_bridge: Cidr,
    pub(super) kubernetes_service_ip: Ipv4Addr,
    pub(super) dns_service_ip: Ipv4Addr,
    pub(super) max_pods: u32,
    pub(super) proxy_mode: String,
    pub(super) containerd_version: String,
    /// Cluster-wide kubelet flags: defaults, derived values, then the model.
    pub(super) kubelet_flags: BTreeMap<String, String>,
}

/// The address ranges of the cluster.
struct Ranges {
    node_cidr: Cidr,
    pod_cidr: Cidr,
    service_cidr: Cidr,
    docker_bridge: Cidr,
}

/// orchestratorType, and the Kubernetes version (orchestratorVersion, else
/// orchestratorRelease) against the version table.
pub(super) fn orchestrator(v: &mut V<'_>, orch: &vlabs::OrchestratorProfile, table: &Table) -> K8sVersion {
    let otype = orch.orchestrator_type.as_deref().unwrap_or("Kubernetes");
    if !otype.eq_ignore_ascii_case("kubernetes") {
        v.err(
            "properties.orchestratorProfile.orchestratorType",
            format!("hke builds Kubernetes clusters; {otype} is not supported"),
            None,
        );
    }
    let vpath = "properties.orchestratorProfile.orchestratorVersion";
    let rpath = "properties.orchestratorProfile.orchestratorRelease";
    let fallback = table.default_version();
    let mut version_ok = false;
    let k8s = match orch.orchestrator_version.as_deref() {
        Some(s) => match s.parse::<K8sVersion>() {
            Ok(ver) if table.supports(&ver) => {
                if let Some(latest) = table.latest_patch(&ver) {
                    if ver > latest {
                        v.warn(
                            vpath,
                            format!("Kubernetes {ver} is newer than hke's table knows ({latest}); make sure it exists"),
                            None,
                        );
                    }
                }
                version_ok = true;
                ver
            }
            Ok(ver) => {
                let path = if v.origins.contains(vpath) { vpath } else { rpath };
                v.err(
                    path,
                    format!(
                        "Kubernetes {ver} is not supported; supported versions are {}",
                        table.supported_list()
                    ),
                    format!(
                        "set orchestratorRelease to {} (and remove orchestratorVersion), or run `hke migrate`",
                        table.kubernetes.default
                    ),
                );
                fallback
            }
            Err(e) => {
                v.err(vpath, e, None);
                fallback
            }
        },
        None => {
            let r = orch.orchestrator_release.as_deref().unwrap_or("");
            v.err(
                rpath,
                format!(
                    "Kubernetes release {r:?} is not supported; supported versions are {}",
                    table.supported_list()
                ),
                format!(
                    "set orchestratorRelease to {}, or run `hke migrate`",
                    table.kubernetes.default
                ),
            );
            fallback
        }
    };
    if let Some(r) = orch.orchestrator_release.as_deref() {
        if version_ok && !r.is_empty() && r.trim_start_matches('v') != k8s.release() {
            v.err(
                rpath,
                format!("orchestratorRelease {r} does not match orchestratorVersion {k8s}"),
                "give only one of them".to_string(),
            );
        }
    }
    k8s
}

/// kubernetesConfig, in the order of its checks.
pub(super) fn kubernetes_config(v: &mut V<'_>, x: &Parts<'_>, cloud: Cloud, k8s: K8sVersion, table: &Table) -> Kube {
    let k = x.k;
    let plugin = network_plugin(v, k, cloud);
    let policy = network_policy(v, k, plugin, x.any_windows);
    let Ranges {
        node_cidr,
        pod_cidr,
        service_cidr,
        docker_bridge,
    } = ranges(v, x, plugin);
    let (kubernetes_service_ip, dns_service_ip) = dns_service_ip(v, k, service_cidr);
    let (max_pods, proxy_mode, containerd_version) = node_settings(v, k, k8s, table);
    features_and_flags(v, x.p, k);
    let kubelet_flags = kubelet_flags(k, max_pods, dns_service_ip);
    Kube {
        plugin,
        policy,
        node_cidr,
        pod_cidr,
        service_cidr,
        docker_bridge,
        kubernetes_service_ip,
        dns_service_ip,
        max_pods,
        proxy_mode,
        containerd_version,
        kubelet_flags,
    }
}

/// networkPlugin, where it runs, and networkMode.
fn network_plugin(v: &mut V<'_>, k: &vlabs::KubernetesConfig, cloud: Cloud) -> NetworkPlugin {
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    let plugin_name = k.network_plugin.clone().unwrap_or_default().to_ascii_lowercase();
    let plugin = match plugin_name.as_str() {
        "azure" => NetworkPlugin::Azure,
        "kubenet" => NetworkPlugin::Kubenet,
        "flannel" => NetworkPlugin::Flannel,
        "calico" => NetworkPlugin::Calico,
        "cilium" | "antrea" => {
            v.err(
                &format!("{kpath}.networkPlugin"),
                format!(
                    "networkPlugin {plugin_name} is not supported by hke: it has no Windows data plane hke can install"
                ),
                "use calico or flannel".to_string(),
            );
            NetworkPlugin::Flannel
        }
        other => {
            v.err(
                &format!("{kpath}.networkPlugin"),
                format!("unknown networkPlugin {other:?}"),
                "use azure (Azure only), kubenet, flannel or calico".to_string(),
            );
            NetworkPlugin::Flannel
        }
    };
    if plugin == NetworkPlugin::Azure && !matches!(cloud, Cloud::Azure | Cloud::Fake) {
        v.err(
            &format!("{kpath}.networkPlugin"),
            format!("Azure CNI runs only on Azure, not on {cloud}"),
            "use flannel, calico or kubenet".to_string(),
        );
    }
    if k.network_mode.as_deref().is_some_and(|m| !m.is_empty()) && plugin != NetworkPlugin::Azure {
        v.err(
            &format!("{kpath}.networkMode"),
            "networkMode needs networkPlugin azure",
            "remove networkMode".to_string(),
        );
    }
    plugin
}

/// networkPolicy, with the plugin and the Windows pools (Calico with
/// Windows pools is refused here too).
fn network_policy(
    v: &mut V<'_>,
    k: &vlabs::KubernetesConfig,
    plugin: NetworkPlugin,
    any_windows: bool,
) -> Option<String> {
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    if plugin == NetworkPlugin::Calico && any_windows {
        // Calico for Windows is installed only through the Tigera operator
        // since Calico 3.28 (the manifest install and its images are gone);
        // hke does not render the operator yet, and a cluster whose Windows
        // nodes cannot network is worse than a clear refusal.
        v.err(
            &format!("{kpath}.networkPlugin"),
            "networkPlugin calico with Windows pools is not supported by this hke version: Calico for Windows needs the Tigera operator, which hke does not install yet",
            "use networkPlugin flannel (VXLAN) or kubenet, or remove the Windows pools".to_string(),
        );
    }
    let policy_name = k.network_policy.clone().unwrap_or_default().to_ascii_lowercase();
    match policy_name.as_str() {
        "" | "none" => None,
        "calico" => {
            if plugin != NetworkPlugin::Calico && any_windows {
                v.err(
                    &format!("{kpath}.networkPolicy"),
                    format!("networkPolicy calico with networkPlugin {plugin} cannot enforce policy on Windows nodes"),
                    "remove networkPolicy: hke installs no network policy engine on Windows nodes yet".to_string(),
                );
            } else if plugin == NetworkPlugin::Flannel {
                v.err(
                    &format!("{kpath}.networkPolicy"),
                    "networkPolicy calico is not supported with networkPlugin flannel",
                    "use networkPlugin calico".to_string(),
                );
            }
            Some("calico".to_string())
        }
        "azure" => {
            if plugin != NetworkPlugin::Azure {
                v.err(
                    &format!("{kpath}.networkPolicy"),
                    format!("networkPolicy azure needs networkPlugin azure, not {plugin}"),
                    None,
                );
            } else if any_windows {
                v.err(
                    &format!("{kpath}.networkPolicy"),
                    "networkPolicy azure is not supported with Windows pools",
                    "remove networkPolicy, or use networkPlugin calico with networkPolicy calico".to_string(),
                );
            }
            Some("azure".to_string())
        }
        other => {
            v.err(
                &format!("{kpath}.networkPolicy"),
                format!("networkPolicy {other:?} is not supported"),
                "use calico, or leave it empty".to_string(),
            );
            None
        }
    }
}

/// The node, pod, service and docker bridge ranges: each parses, has no
/// host bits and overlaps none of the others. The master profile is first
/// read here (vnetCidr), so its absence is reported here.
fn ranges(v: &mut V<'_>, x: &Parts<'_>, plugin: NetworkPlugin) -> Ranges {
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    let (p, k, master) = (x.p, x.k, x.master);
    let mpath = "properties.masterProfile";
    if p.master_profile.is_none() {
        v.err(
            mpath,
            "masterProfile is missing",
            "add {\"count\": 1, \"dnsPrefix\": \"mycluster\"}".to_string(),
        );
    }
    let node_cidr: Cidr = v.parse(
        &format!("{mpath}.vnetCidr"),
        master.vnet_cidr.as_deref(),
        defaults::NODE_CIDR,
        None,
    );
    let pod_cidr: Cidr = v.parse(
        &format!("{kpath}.clusterSubnet"),
        k.cluster_subnet.as_deref(),
        defaults::POD_CIDR,
        None,
    );
    let service_cidr: Cidr = v.parse(
        &format!("{kpath}.serviceCidr"),
        k.service_cidr.as_deref(),
        defaults::SERVICE_CIDR,
        None,
    );
    let docker_bridge: Cidr = v.parse(
        &format!("{kpath}.dockerBridgeSubnet"),
        k.docker_bridge_subnet.as_deref(),
        defaults::DOCKER_BRIDGE_SUBNET,
        None,
    );
    for (path, c) in [
        ("vnetCidr", &node_cidr),
        ("clusterSubnet", &pod_cidr),
        ("serviceCidr", &service_cidr),
    ] {
        if c.has_host_bits() {
            let full = if path == "vnetCidr" {
                format!("{mpath}.{path}")
            } else {
                format!("{kpath}.{path}")
            };
            v.err(
                &full,
                format!("{c} has host bits set"),
                format!("write {}/{}", c.network(), c.prefix()),
            );
        }
    }
    if plugin == NetworkPlugin::Azure {
        if !(node_cidr.contains(pod_cidr.network()) && node_cidr.prefix() <= pod_cidr.prefix()) {
            v.err(
                &format!("{kpath}.clusterSubnet"),
                format!("with Azure CNI pods take VNet addresses, so clusterSubnet {pod_cidr} must lie inside vnetCidr {node_cidr}"),
                "remove clusterSubnet, or make it equal to vnetCidr".to_string(),
            );
        }
        overlap_check(
            v,
            &[
                (&format!("{mpath}.vnetCidr"), "vnetCidr", node_cidr),
                (&format!("{kpath}.serviceCidr"), "serviceCidr", service_cidr),
                (
                    &format!("{kpath}.dockerBridgeSubnet"),
                    "dockerBridgeSubnet",
                    docker_bridge,
                ),
            ],
        );
    } else {
        overlap_check(
            v,
            &[
                (&format!("{mpath}.vnetCidr"), "vnetCidr", node_cidr),
                (&format!("{kpath}.clusterSubnet"), "clusterSubnet", pod_cidr),
                (&format!("{kpath}.serviceCidr"), "serviceCidr", service_cidr),
                (
                    &format!("{kpath}.dockerBridgeSubnet"),
                    "dockerBridgeSubnet",
                    docker_bridge,
                ),
            ],
        );
    }
    Ranges {
        node_cidr,
        pod_cidr,
        service_cidr,
        docker_bridge,
    }
}

/// dnsServiceIP: a free address of serviceCidr. Returns the kubernetes
/// service address and the DNS service address.
fn dns_service_ip(v: &mut V<'_>, k: &vlabs::KubernetesConfig, service_cidr: Cidr) -> (Ipv4Addr, Ipv4Addr) {
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    let dns_path = format!("{kpath}.dnsServiceIP");
    let kubernetes_service_ip = service_cidr.nth(1).unwrap_or(service_cidr.network());
    let dns_service_ip = match k.dns_service_ip.as_deref().map(str::parse::<Ipv4Addr>) {
        Some(Ok(ip)) => {
            if !service_cidr.contains(ip) {
                v.err(
                    &dns_path,
                    format!("dnsServiceIP {ip} is not within serviceCidr {service_cidr}"),
                    format!("use an address such as {}", service_cidr.nth(10).unwrap_or(ip)),
                );
            } else if ip == service_cidr.network() || ip == service_cidr.broadcast() || ip == kubernetes_service_ip {
                v.err(
                    &dns_path,
                    format!("dnsServiceIP {ip} is reserved in serviceCidr {service_cidr} (network, broadcast or the kubernetes service address)"),
                    format!("use an address such as {}", service_cidr.nth(10).unwrap_or(ip)),
                );
            }
            ip
        }
        Some(Err(_)) => {
            v.err(
                &dns_path,
                format!("{:?} is not an IPv4 address", k.dns_service_ip.as_deref().unwrap_or("")),
                None,
            );
            Ipv4Addr::new(10, 0, 0, 10)
        }
        None => Ipv4Addr::new(10, 0, 0, 10),
    };
    (kubernetes_service_ip, dns_service_ip)
}

/// maxPods, kubeProxyMode, containerRuntime, containerdVersion and
/// enableRbac. Returns maxPods, the proxy mode and the containerd version.
fn node_settings(v: &mut V<'_>, k: &vlabs::KubernetesConfig, k8s: K8sVersion, table: &Table) -> (u32, String, String) {
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    let max_pods = k.max_pods.unwrap_or(defaults::MAX_PODS);
    if !(5..=250).contains(&max_pods) {
        v.err(
            &format!("{kpath}.maxPods"),
            format!("maxPods {max_pods} is out of range"),
            "use 5 to 250".to_string(),
        );
    }
    let max_pods = max_pods.clamp(5, 250) as u32;
    let proxy_mode = k
        .kube_proxy_mode
        .clone()
        .unwrap_or_else(|| defaults::KUBE_PROXY_MODE.into());
    if !["iptables", "ipvs", "nftables"].contains(&proxy_mode.as_str()) {
        v.err(
            &format!("{kpath}.kubeProxyMode"),
            format!("unknown kubeProxyMode {proxy_mode:?}"),
            "use iptables, ipvs or nftables".to_string(),
        );
    }
    match k
        .container_runtime
        .as_deref()
        .unwrap_or("containerd")
        .to_ascii_lowercase()
        .as_str()
    {
        "containerd" => {}
        "docker" => v.err(
            &format!("{kpath}.containerRuntime"),
            format!("containerRuntime docker is not available in Kubernetes {k8s}: dockershim was removed in 1.24"),
            "use containerd (hke migrate rewrites it)".to_string(),
        ),
        other => v.err(
            &format!("{kpath}.containerRuntime"),
            format!("containerRuntime {other:?} is not supported"),
            "use containerd".to_string(),
        ),
    }
    let containerd_version = k.containerd_version.clone().unwrap_or_else(|| table.containerd.clone());
    let cv: Vec<u32> = containerd_version.split('.').filter_map(|x| x.parse().ok()).collect();
    if cv.len() < 2 || (cv[0], cv[1]) < (1, 7) {
        v.err(
            &format!("{kpath}.containerdVersion"),
            format!("containerd {containerd_version} is not supported; hke installs containerd 1.7 or 2.x"),
            format!("remove containerdVersion for {}", table.containerd),
        );
    }
    if k.enable_rbac == Some(false) {
        v.err(
            &format!("{kpath}.enableRbac"),
            "hke clusters always use RBAC",
            "remove enableRbac".to_string(),
        );
    }
    (max_pods, proxy_mode, containerd_version)
}

/// Feature flags hke refuses, and the components' flags.
fn features_and_flags(v: &mut V<'_>, p: &vlabs::Properties, k: &vlabs::KubernetesConfig) {
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    if let Some(ff) = &p.feature_flags {
        if ff.enable_ipv6_dual_stack == Some(true) {
            v.err(
                "properties.featureFlags.enableIPv6DualStack",
                "IPv6 dual-stack is not supported by hke yet",
                "remove it".to_string(),
            );
        }
        if ff.enable_ipv6_only == Some(true) {
            v.err(
                "properties.featureFlags.enableIPv6Only",
                "IPv6-only clusters are not supported by hke (and cannot run Windows nodes)",
                "remove it".to_string(),
            );
        }
    }
    check_flags(v, &format!("{kpath}.kubeletConfig"), k.kubelet_config.as_ref(), true);
    check_flags(
        v,
        &format!("{kpath}.apiServerConfig"),
        k.api_server_config.as_ref(),
        false,
    );
    check_flags(
        v,
        &format!("{kpath}.controllerManagerConfig"),
        k.controller_manager_config.as_ref(),
        false,
    );
    check_flags(
        v,
        &format!("{kpath}.schedulerConfig"),
        k.scheduler_config.as_ref(),
        false,
    );
}

/// Cluster-wide kubelet flags: defaults, derived values, then the model.
fn kubelet_flags(k: &vlabs::KubernetesConfig, max_pods: u32, dns_service_ip: Ipv4Addr) -> BTreeMap<String, String> {
    let mut kubelet_flags: BTreeMap<String, String> = defaults::KUBELET_FLAGS
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    kubelet_flags.insert("--max-pods".into(), max_pods.to_string());
    kubelet_flags.insert("--cluster-dns".into(), dns_service_ip.to_string());
    kubelet_flags.insert("--cluster-domain".into(), defaults::CLUSTER_DOMAIN.into());
    if let Some(user) = &k.kubelet_config {
        kubelet_flags.extend(user.clone());
    }
    kubelet_flags
}

/// Go durations among the kubelet and controller manager flags.
pub(super) fn durations(v: &mut V<'_>, k: &vlabs::KubernetesConfig) {
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    for (path, flags) in [
        (format!("{kpath}.kubeletConfig"), k.kubelet_config.as_ref()),
        (
            format!("{kpath}.controllerManagerConfig"),
            k.controller_manager_config.as_ref(),
        ),
    ] {
        check_durations(v, &path, flags);
    }
}

fn overlap_check(v: &mut V<'_>, ranges: &[(&str, &str, Cidr)]) {
    for (i, (pa, na, a)) in ranges.iter().enumerate() {
        for (pb, nb, b) in &ranges[i + 1..] {
            if a.overlaps(b) {
                // Blame the range the user wrote (the later one if both).
                let (path, other) = if v.origins.contains(pb) || !v.origins.contains(pa) {
                    (pb, (na, a))
                } else {
                    (pa, (nb, b))
                };
                let this = if path == pb { (nb, b) } else { (na, a) };
                v.err(
                    path,
                    format!("{} {} overlaps {} {}", this.0, this.1, other.0, other.1),
                    "choose ranges that do not overlap (defaults: vnetCidr 10.240.0.0/16, clusterSubnet 10.244.0.0/16, serviceCidr 10.0.0.0/16, dockerBridgeSubnet 172.17.0.1/16)".to_string(),
                );
            }
        }
    }
}
