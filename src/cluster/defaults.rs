//! Every default hke applies, in one place.
//!
//! `apply` fills the fields a user left out of the vlabs model and nothing
//! else: a value that is present, even a wrong one, is left for validation to
//! judge. Generated secrets are written into the model, so the output
//! `apimodel.json` is complete and generating again from it changes nothing.
//! Values derived from others (kubelet flags from `maxPods`, node names) are
//! not written back; `validate` computes them into the `Cluster`.

use std::net::Ipv4Addr;

use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use crate::catalog::versions;
use crate::model::diag::{Diagnostics, Origins};
use crate::model::types::{Cidr, Cloud, WindowsVersion, WindowsVersionError};
use crate::model::vlabs::{self, ApiModel};
use crate::secrets;

pub const API_VERSION: &str = "vlabs";
pub const ORCHESTRATOR: &str = "Kubernetes";
pub const DEFAULT_CLOUD: Cloud = Cloud::Azure;
pub const DEFAULT_AZURE_LOCATION: &str = "eastus";
pub const DEFAULT_AWS_REGION: &str = "us-east-1";
pub const DEFAULT_GCP_REGION: &str = "us-central1";
/// Keystone's default region name (`keystone-manage bootstrap
/// --bootstrap-region-id`), which most single-region clouds keep.
pub const DEFAULT_OPENSTACK_REGION: &str = "RegionOne";

/// Node network for plugins whose pods live in their own range.
pub const NODE_CIDR: &str = "10.240.0.0/16";
/// Node network with Azure CNI: pods take VNet addresses, so it is larger.
pub const NODE_CIDR_AZURE_CNI: &str = "10.240.0.0/12";
/// Pod network for up to 256 nodes (a /24 per node).
pub const POD_CIDR: &str = "10.244.0.0/16";
/// Pod network for up to 1024 nodes.
pub const POD_CIDR_LARGE: &str = "10.244.0.0/14";
/// Pod network for up to 4096 nodes.
pub const POD_CIDR_XLARGE: &str = "10.128.0.0/12";
pub const SERVICE_CIDR: &str = "10.0.0.0/16";
pub const DNS_SERVICE_IP: &str = "10.0.0.10";
pub const DOCKER_BRIDGE_SUBNET: &str = "172.17.0.1/16";
/// The mask of each node's pod CIDR (kube-controller-manager's default).
pub const NODE_POD_CIDR_MASK: u8 = 24;
pub const MAX_PODS: i64 = 110;
pub const MAX_PODS_AZURE_CNI: i64 = 30;
pub const KUBE_PROXY_MODE: &str = "iptables";
pub const CONTAINER_RUNTIME: &str = "containerd";
pub const MASTER_COUNT: i64 = 1;
/// An Azure size; mapped to the nearest native type on AWS and GCP.
pub const VM_SIZE: &str = "Standard_D2s_v3";
pub const OS_DISK_GB: i64 = 128;
/// Offset of the first master in the last /24 of the node network, as acs-engine.
pub const FIRST_MASTER_OFFSET: u32 = 5;
/// The Azure internal load balancer sits this many addresses after the first master.
pub const INTERNAL_LB_OFFSET: u32 = 10;
pub const ADMIN_USERNAME: &str = "azureuser";
pub const KEY_ALGORITHM: &str = "ECDSA-P256";
pub const CLUSTER_DOMAIN: &str = "cluster.local";
pub const API_SERVER_PORT: u16 = 6443;
pub const SSH_ENABLED: bool = true;
pub const AUTOMATIC_UPDATES: bool = false;

/// kubelet flags every node gets unless the model overrides them.
pub const KUBELET_FLAGS: &[(&str, &str)] = &[
    (
        "--eviction-hard",
        "memory.available<750Mi,nodefs.available<10%,nodefs.inodesFree<5%",
    ),
    ("--image-gc-high-threshold", "85"),
    ("--image-gc-low-threshold", "80"),
    ("--read-only-port", "0"),
    ("--rotate-certificates", "true"),
    ("--streaming-connection-idle-timeout", "4h"),
    ("--event-qps", "0"),
];

/// Default location of a cloud.
pub fn default_location(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Azure | Cloud::Fake => DEFAULT_AZURE_LOCATION,
        Cloud::Aws => DEFAULT_AWS_REGION,
        Cloud::Gcp => DEFAULT_GCP_REGION,
        Cloud::OpenStack => DEFAULT_OPENSTACK_REGION,
    }
}

/// Default network plugin: Azure CNI on Azure (what acs-engine models
/// meant), flannel elsewhere (cloud route tables cap at 50–250 routes).
pub fn default_network_plugin(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Azure | Cloud::Fake => "azure",
        _ => "flannel",
    }
}

/// The smallest default pod network that gives every node a /24.
pub fn default_pod_cidr(nodes: u64) -> &'static str {
    if nodes <= 256 {
        POD_CIDR
    } else if nodes <= 1024 {
        POD_CIDR_LARGE
    } else {
        POD_CIDR_XLARGE
    }
}

/// First master IP of a node network: `.5` of its last /24 (10.240.255.5 for
/// 10.240.0.0/16), or the 5th address of a smaller network.
pub fn first_master_ip(node: &Cidr) -> Option<Ipv4Addr> {
    if node.prefix() <= 24 {
        let last24 = u32::from(node.broadcast()) & !0xFF;
        Some(Ipv4Addr::from(last24 + FIRST_MASTER_OFFSET))
    } else {
        node.nth(u64::from(FIRST_MASTER_OFFSET - 1))
    }
}

/// A short stable id of the cluster, from its DNS prefix: names and tags use
/// it so that two clusters never share resource names.
pub fn cluster_id(dns_prefix: &str) -> String {
    let digest = Sha256::digest(dns_prefix.as_bytes());
    hex::encode(&digest[..4])
}

/// The provider named by the model (default Azure), if it parses.
pub fn cloud_of(model: &ApiModel) -> Cloud {
    model
        .properties
        .as_ref()
        .and_then(|p| p.provider_profile.as_ref())
        .and_then(|p| p.name.as_deref())
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CLOUD)
}

fn is_windows(pool: &vlabs::AgentPoolProfile) -> bool {
    pool.os_type
        .as_deref()
        .is_some_and(|o| o.eq_ignore_ascii_case("windows"))
}

/// Infer the Windows version of acs-engine image pins (`windowsSku`,
/// `imageVersion`), when `windowsVersion` is not given. `None` when nothing
/// says.
pub fn infer_windows_version(
    w: &vlabs::WindowsProfile,
) -> Option<(&'static str, Result<WindowsVersion, WindowsVersionError>)> {
    if let Some(sku) = w.windows_sku.as_deref().filter(|s| !s.is_empty()) {
        let lower = sku.to_ascii_lowercase();
        for token in [
            "2025", "2022", "2019", "2016", "1709", "1803", "1809", "1903", "1909", "2004", "20h2",
        ] {
            if lower.contains(token) {
                return Some(("windowsSku", token.parse()));
            }
        }
    }
    if let Some(v) = w.image_version.as_deref().filter(|s| !s.is_empty() && *s != "latest") {
        let first = v.split('.').next().unwrap_or_default();
        return Some(("imageVersion", first.parse()));
    }
    None
}

/// Fill every default. Warnings about guesses go to `diags`.
pub fn apply<R: RngCore + CryptoRng>(
    mut m: ApiModel,
    origins: &Origins,
    rng: &mut R,
    diags: &mut Diagnostics,
) -> ApiModel {
    let table = versions::table();
    let cloud = cloud_of(&m);
    if m.api_version.is_none() {
        m.api_version = Some(API_VERSION.into());
    }
    let top_location = m.location.clone().filter(|l| !l.is_empty());
    let props = m.properties.get_or_insert_with(Default::default);

    // Provider and location.
    let provider = props.provider_profile.get_or_insert_with(Default::default);
    provider.name.get_or_insert_with(|| cloud.name().into());
    if provider.location.as_deref().unwrap_or("").is_empty() {
        let location = provider
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .or(top_location)
            .unwrap_or_else(|| {
                let l = default_location(cloud);
                diags.warning(
                    "location",
                    origins.lookup("location"),
                    format!("no location given; using {l}"),
                    Some("set \"location\" or properties.providerProfile.location".into()),
                );
                l.into()
            });
        provider.location = Some(location);
    }
    if cloud == Cloud::Gcp && provider.zone.is_none() {
        provider.zone = provider.location.as_ref().map(|l| format!("{l}-a"));
    }
    let location = provider.location.clone();
    if m.location.as_deref().unwrap_or("").is_empty() {
        m.location = location;
    }
    let props = m.properties.get_or_insert_with(Default::default);

    // Orchestrator and versions.
    let orch = props.orchestrator_profile.get_or_insert_with(Default::default);
    if orch.orchestrator_type.as_deref().unwrap_or("").is_empty() {
        orch.orchestrator_type = Some(ORCHESTRATOR.into());
    }
    let version = match (
        orch.orchestrator_version.as_deref(),
        orch.orchestrator_release.as_deref(),
    ) {
        (Some(v), _) if !v.is_empty() => Some(v.to_string()),
        (_, Some(r)) if !r.is_empty() => table.resolve_release(r).map(|v| v.to_string()),
        _ => Some(table.default_version().to_string()),
    };
    if orch.orchestrator_version.as_deref().unwrap_or("").is_empty() {
        orch.orchestrator_version = version.clone();
    }
    if orch.orchestrator_release.as_deref().unwrap_or("").is_empty() {
        orch.orchestrator_release = version
            .as_deref()
            .and_then(|v| v.parse::<crate::model::types::K8sVersion>().ok())
            .map(|v| v.release());
    }

    // Node count decides the default pod network size.
    let pools = props.agent_pool_profiles.get_or_insert_with(Vec::new);
    let master = props.master_profile.get_or_insert_with(Default::default);
    let masters = master.count.unwrap_or(MASTER_COUNT).max(0) as u64;
    let nodes: u64 = masters + pools.iter().map(|p| p.count.unwrap_or(0).max(0) as u64).sum::<u64>();

    // Networking.
    let k = orch.kubernetes_config.get_or_insert_with(Default::default);
    let policy = k.network_policy.clone().unwrap_or_default().to_ascii_lowercase();
    if k.network_plugin.as_deref().unwrap_or("").is_empty() {
        // Legacy spellings: policy "none" meant kubenet, "azure" meant Azure
        // CNI, and "calico" with no plugin meant Calico.
        let plugin = match policy.as_str() {
            "none" => "kubenet",
            "azure" => "azure",
            "calico" => "calico",
            _ => default_network_plugin(cloud),
        };
        k.network_plugin = Some(plugin.into());
        if policy == "none" || policy == "azure" {
            k.network_policy = Some(String::new());
        }
    }
    let azure_cni = k
        .network_plugin
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("azure"));
    if master.vnet_cidr.as_deref().unwrap_or("").is_empty() {
        let given_pods = k.cluster_subnet.clone().filter(|s| !s.is_empty());
        let first_ip = master
            .first_consecutive_static_ip
            .as_deref()
            .and_then(|s| s.parse::<Ipv4Addr>().ok());
        let default_node: Cidr = if azure_cni { NODE_CIDR_AZURE_CNI } else { NODE_CIDR }
            .parse()
            .unwrap_or_else(|_| unreachable!("constant parses"));
        master.vnet_cidr = Some(match (azure_cni, given_pods, first_ip) {
            // With Azure CNI, acs-engine's clusterSubnet was the one subnet of
            // nodes and pods.
            (true, Some(pods), _) => pods,
            // A master address outside the default network (a custom VNet):
            // the /16 around it.
            (_, _, Some(ip)) if !default_node.contains(ip) => Cidr::new(ip, 16)
                .map(|c| format!("{}/16", c.network()))
                .unwrap_or_else(|| default_node.to_string()),
            _ => default_node.to_string(),
        });
    }
    if k.cluster_subnet.as_deref().unwrap_or("").is_empty() {
        k.cluster_subnet = Some(if azure_cni {
            master.vnet_cidr.clone().unwrap_or_default()
        } else {
            default_pod_cidr(nodes).into()
        });
    }
    let service_given = !k.service_cidr.as_deref().unwrap_or("").is_empty();
    if !service_given {
        k.service_cidr = Some(SERVICE_CIDR.into());
    }
    if k.dns_service_ip.as_deref().unwrap_or("").is_empty() {
        // With a custom service CIDR, the DNS IP is its 10th address.
        let ip = if service_given {
            k.service_cidr
                .as_deref()
                .and_then(|s| s.parse::<Cidr>().ok())
                .and_then(|c| c.nth(10))
                .map(|ip| ip.to_string())
        } else {
            Some(DNS_SERVICE_IP.into())
        };
        k.dns_service_ip = ip;
    }
    k.docker_bridge_subnet
        .get_or_insert_with(|| DOCKER_BRIDGE_SUBNET.into());
    k.max_pods
        .get_or_insert(if azure_cni { MAX_PODS_AZURE_CNI } else { MAX_PODS });
    k.kube_proxy_mode.get_or_insert_with(|| KUBE_PROXY_MODE.into());
    if k.container_runtime.as_deref().unwrap_or("").is_empty() {
        k.container_runtime = Some(CONTAINER_RUNTIME.into());
    }
    k.containerd_version.get_or_insert_with(|| table.containerd.clone());
    k.enable_rbac.get_or_insert(true);

    // Control plane.
    master.count.get_or_insert(MASTER_COUNT);
    if master.vm_size.as_deref().unwrap_or("").is_empty() {
        master.vm_size = Some(VM_SIZE.into());
    }
    if master.os_disk_size_gb.unwrap_or(0) == 0 {
        master.os_disk_size_gb = Some(OS_DISK_GB);
    }
    if master.first_consecutive_static_ip.as_deref().unwrap_or("").is_empty() {
        master.first_consecutive_static_ip = master
            .vnet_cidr
            .as_deref()
            .and_then(|c| c.parse::<Cidr>().ok())
            .and_then(|c| first_master_ip(&c))
            .map(|ip| ip.to_string());
    }

    // Pools.
    let any_windows = pools.iter().any(is_windows);
    // The pools' default Windows version: windowsVersion, else what the
    // acs-engine image pin says, else the table's default. A pin naming a
    // retired release decides nothing: validation reports it.
    let default_windows: Option<String> = match props.windows_profile.as_ref() {
        None => Some(table.default_windows().name().to_string()),
        Some(w) => match (w.windows_version.as_deref(), infer_windows_version(w)) {
            (Some(v), _) => Some(v.to_string()),
            (None, Some((_, Ok(v)))) => Some(v.name().to_string()),
            (None, Some((_, Err(_)))) => None,
            (None, None) => {
                let custom = w.windows_image_source_url.is_some()
                    || w.image_reference.is_some()
                    || w.windows_publisher
                        .as_deref()
                        .is_some_and(|p| !p.eq_ignore_ascii_case("MicrosoftWindowsServer"));
                if custom && any_windows && cloud == Cloud::Azure {
                    diags.warning(
                        "properties.windowsProfile",
                        origins.lookup("properties.windowsProfile"),
                        format!(
                            "cannot tell the Windows version of the custom image; assuming {}",
                            table.default_windows()
                        ),
                        Some("set properties.windowsProfile.windowsVersion to the image's version".into()),
                    );
                }
                Some(table.default_windows().name().to_string())
            }
        },
    };
    for pool in pools.iter_mut() {
        if pool.os_type.as_deref().unwrap_or("").is_empty() {
            pool.os_type = Some("Linux".into());
        }
        if pool.vm_size.as_deref().unwrap_or("").is_empty() {
            pool.vm_size = Some(VM_SIZE.into());
        }
        if pool.os_disk_size_gb.unwrap_or(0) == 0 {
            pool.os_disk_size_gb = Some(OS_DISK_GB);
        }
        if is_windows(pool) && pool.windows_version.is_none() {
            pool.windows_version = default_windows.clone();
        }
    }

    // Access: Linux.
    let linux = props.linux_profile.get_or_insert_with(Default::default);
    if linux.admin_username.as_deref().unwrap_or("").is_empty() {
        linux.admin_username = Some(ADMIN_USERNAME.into());
    }
    let ssh = linux.ssh.get_or_insert_with(Default::default);
    if ssh.public_keys.as_ref().is_none_or(|k| k.is_empty()) {
        let comment = format!("{}@hke", linux.admin_username.as_deref().unwrap_or(ADMIN_USERNAME));
        match secrets::generate_ssh_key(rng, &comment) {
            Ok((public, private)) => {
                ssh.public_keys = Some(vec![vlabs::PublicKey { key_data: Some(public) }]);
                ssh.private_key = Some(private.expose().to_string());
            }
            Err(e) => diags.error(
                "properties.linuxProfile.ssh",
                origins.lookup("properties.linuxProfile"),
                e,
                None,
            ),
        }
    }

    // Access: Windows.
    if any_windows {
        let w = props.windows_profile.get_or_insert_with(Default::default);
        if w.admin_username.is_none() {
            w.admin_username = Some(ADMIN_USERNAME.into());
        }
        if w.admin_password.is_none() {
            w.admin_password = Some(secrets::generate_password(rng).expose().to_string());
        }
        if w.windows_version.is_none() {
            w.windows_version = default_windows;
        }
        w.ssh_enabled.get_or_insert(SSH_ENABLED);
        w.enable_automatic_updates.get_or_insert(AUTOMATIC_UPDATES);
    }

    // Certificates: only the algorithm and the token here; the PKI stage
    // issues certificates once addresses are validated.
    let certs = props.certificate_profile.get_or_insert_with(Default::default);
    certs.key_algorithm.get_or_insert_with(|| KEY_ALGORITHM.into());
    if certs.bootstrap_token.is_none() {
        certs.bootstrap_token = Some(secrets::generate_bootstrap_token(rng).expose().to_string());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn first_master_ip_follows_acs_engine() {
        let ip = |c: &str| first_master_ip(&c.parse().expect("cidr")).map(|i| i.to_string());
        assert_eq!(ip("10.240.0.0/16").as_deref(), Some("10.240.255.5"));
        assert_eq!(ip("10.240.0.0/12").as_deref(), Some("10.255.255.5"));
        assert_eq!(ip("192.168.1.0/24").as_deref(), Some("192.168.1.5"));
        assert_eq!(ip("192.168.1.0/28").as_deref(), Some("192.168.1.4"));
    }

    #[test]
    fn pod_network_grows_with_the_cluster() {
        for (nodes, cidr) in [
            (3, POD_CIDR),
            (256, POD_CIDR),
            (257, POD_CIDR_LARGE),
            (1003, POD_CIDR_LARGE),
            (2000, POD_CIDR_XLARGE),
        ] {
            assert_eq!(default_pod_cidr(nodes), cidr);
            let c: Cidr = cidr.parse().expect("cidr");
            assert!(1u64 << (NODE_POD_CIDR_MASK - c.prefix()) >= nodes);
            assert!(!c.overlaps(&NODE_CIDR.parse().expect("cidr")));
            assert!(!c.overlaps(&SERVICE_CIDR.parse().expect("cidr")));
        }
    }

    #[test]
    fn default_ranges_do_not_overlap() {
        let ranges = [NODE_CIDR, POD_CIDR, SERVICE_CIDR, DOCKER_BRIDGE_SUBNET];
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                let (x, y): (Cidr, Cidr) = (a.parse().expect("a"), b.parse().expect("b"));
                assert!(!x.overlaps(&y), "{a} overlaps {b}");
            }
        }
        assert!(!NODE_CIDR_AZURE_CNI
            .parse::<Cidr>()
            .expect("c")
            .overlaps(&SERVICE_CIDR.parse().expect("c")));
    }

    #[test]
    fn windows_version_is_inferred_from_acs_engine_pins() {
        let w = |sku: Option<&str>, ver: Option<&str>| vlabs::WindowsProfile {
            windows_sku: sku.map(String::from),
            image_version: ver.map(String::from),
            ..Default::default()
        };
        let get = |p: vlabs::WindowsProfile| infer_windows_version(&p).map(|(f, r)| (f, r.map(|v| v.name())));
        assert_eq!(
            get(w(Some("2019-datacenter-core-smalldisk-2008"), None)),
            Some(("windowsSku", Ok("2019")))
        );
        assert!(matches!(
            get(w(Some("Datacenter-Core-1803-with-Containers-smalldisk"), None)),
            Some(("windowsSku", Err(_)))
        ));
        assert_eq!(
            get(w(None, Some("17763.1282.2006061953"))),
            Some(("imageVersion", Ok("2019")))
        );
        assert_eq!(get(w(None, Some("latest"))), None);
        assert_eq!(get(w(None, None)), None);
    }

    #[test]
    fn apply_fills_only_what_is_missing_and_is_idempotent() {
        let text = include_str!("../../examples/windows.json");
        let loaded = crate::model::load::load(text, &[]).expect("example loads");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let mut d = Diagnostics::default();
        let once = apply(loaded.model.clone(), &loaded.origins, &mut rng, &mut d);
        let twice = apply(once.clone(), &loaded.origins, &mut rng, &mut d);
        assert_eq!(once, twice, "defaults are a fixed point");
        let p = once.properties.expect("properties");
        let w = p.windows_profile.expect("windows");
        assert!(w.admin_password.is_some());
        assert!(p
            .agent_pool_profiles
            .expect("pools")
            .iter()
            .all(|pool| !is_windows(pool) || pool.windows_version.is_some()));
    }
}
