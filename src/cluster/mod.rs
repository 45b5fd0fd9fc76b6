//! The validated cluster: every value decided and parsed. Only
//! `validate::validate` builds one, so holding a `Cluster` means the model
//! passed every check.

pub mod defaults;
pub mod names;
pub mod validate;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use rand::{CryptoRng, RngCore};
use serde::Serialize;

use crate::model::diag::{Diagnostics, Origins, Rejected};
use crate::model::load::SetArg;
use crate::model::vlabs::ApiModel;

use crate::model::types::{Cidr, Cloud, DnsPrefix, K8sVersion, KeyAlgorithm, NetworkPlugin, OsType, WindowsVersion};
use crate::secrets::Secret;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub name: DnsPrefix,
    /// Short stable id (8 hex digits) used in resource names and tags.
    pub id: String,
    pub provider: Provider,
    pub kubernetes: K8sVersion,
    pub containerd_version: String,
    pub network: Network,
    pub endpoint: Endpoint,
    pub masters: Masters,
    pub pools: Vec<Pool>,
    pub linux: LinuxAccess,
    pub windows: Option<WindowsAccess>,
    pub key_algorithm: KeyAlgorithm,
    /// Flags for every node's kubelet, after defaults and the model's `kubeletConfig`.
    pub kubelet_flags: BTreeMap<String, String>,
    pub api_server_flags: BTreeMap<String, String>,
    pub controller_manager_flags: BTreeMap<String, String>,
    pub scheduler_flags: BTreeMap<String, String>,
    pub win_dsr: bool,
    /// Extra tags for every cloud resource.
    pub tags: BTreeMap<String, String>,
    pub bootstrap_token: Secret,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    pub cloud: Cloud,
    /// Azure location, AWS region or GCP region.
    pub location: String,
    pub gcp_project: Option<String>,
    pub gcp_zone: Option<String>,
    pub azure_subscription: Option<String>,
    pub azure_resource_group: Option<String>,
    /// OpenStack's settings (`None` on other clouds).
    pub openstack: Option<OpenStack>,
}

/// Where a cluster lives on OpenStack, from the provider profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenStack {
    /// The clouds.yaml entry (`None`: `OS_CLOUD` or the `OS_*` variables).
    pub cloud: Option<String>,
    /// The external network (`None`: the project's only one).
    pub external_network: Option<String>,
    /// Glance image (name or id) per node OS: `linux`, `windows-2022`, ….
    pub images: BTreeMap<String, String>,
    /// `Some(false)`: no Octavia, a floating IP on the single master.
    pub octavia: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    pub plugin: NetworkPlugin,
    /// `calico` or `azure` network policy, if any.
    pub policy: Option<String>,
    /// The VNet / VPC / subnetwork range the nodes live in.
    pub node_cidr: Cidr,
    pub pod_cidr: Cidr,
    pub service_cidr: Cidr,
    pub dns_service_ip: Ipv4Addr,
    /// The `kubernetes` service address (first of the service CIDR).
    pub kubernetes_service_ip: Ipv4Addr,
    pub docker_bridge: Cidr,
    pub max_pods: u32,
    pub kube_proxy_mode: String,
    pub cluster_domain: String,
    /// Source ranges allowed to reach the API server.
    pub api_source_ranges: Vec<String>,
}

/// How clients reach the API server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// DNS name or wildcard known before deploy (Azure FQDN, AWS ELB
    /// wildcard), used for certificate SANs.
    pub san_names: Vec<String>,
    /// The URL written to the kubeconfig. On clouds whose address is only
    /// known after deploy, deploy rewrites it.
    pub url: String,
    /// Is `url` final, or a placeholder to be replaced at deploy?
    pub resolved: bool,
    pub port: u16,
    /// Azure internal load balancer address (multi-master clusters).
    pub internal_lb_ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Masters {
    pub count: u32,
    pub vm_size: String,
    pub os_disk_gb: u32,
    pub ips: Vec<Ipv4Addr>,
    pub names: Vec<String>,
    pub extra_sans: Vec<String>,
    pub kubelet_flags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    pub name: String,
    /// Position in `agentPoolProfiles`.
    pub index: usize,
    pub os: OsType,
    pub count: u32,
    pub vm_size: String,
    pub os_disk_gb: u32,
    pub windows: Option<WindowsVersion>,
    /// Hyper-V isolated containers offered (Windows pools).
    pub hyperv: bool,
    /// A pinned cloud image (AWS AMI id).
    pub image_id: Option<String>,
    /// Node names (Windows computer names are at most 15 characters).
    pub node_names: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// `key=value:Effect` taints from `--register-with-taints`.
    pub taints: Vec<String>,
    /// kubelet flags of this pool (cluster flags merged with the pool's).
    pub kubelet_flags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxAccess {
    pub admin_username: String,
    pub ssh_public_keys: Vec<String>,
    /// Set when hke generated the key pair.
    pub ssh_private_key: Option<Secret>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsAccess {
    pub admin_username: String,
    pub admin_password: Secret,
    pub ssh_enabled: bool,
    pub automatic_updates: bool,
    pub pause_image: Option<String>,
    pub always_pull_pause_image: bool,
    /// Azure Hybrid Benefit (`enableAHUB`): machines run with licenseType
    /// `Windows_Server`.
    pub azure_hybrid_benefit: bool,
    /// A pinned marketplace image version (`imageVersion`), else the newest.
    pub azure_image_version: Option<String>,
}

impl Cluster {
    pub fn windows_versions(&self) -> Vec<WindowsVersion> {
        let mut v: Vec<WindowsVersion> = self.pools.iter().filter_map(|p| p.windows).collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn node_count(&self) -> u64 {
        u64::from(self.masters.count) + self.pools.iter().map(|p| u64::from(p.count)).sum::<u64>()
    }
}

/// The API server host a node should use as known now: the planned name,
/// or a placeholder where the cloud assigns it at deploy.
pub fn endpoint_host(c: &Cluster) -> String {
    let u = c.endpoint.url.trim_start_matches("https://");
    u.rsplit_once(':').map(|(h, _)| h).unwrap_or(u).to_string()
}

/// The administrator account of a cluster's machines, for clouds that
/// create it (Azure's osProfile).
pub fn login(c: &Cluster, os: &hke_provider_api::Os) -> Option<hke_provider_api::Login> {
    match os {
        hke_provider_api::Os::Linux => Some(hke_provider_api::Login {
            username: c.linux.admin_username.clone(),
            ssh_public_keys: c.linux.ssh_public_keys.clone(),
            password: None,
        }),
        hke_provider_api::Os::Windows => c.windows.as_ref().map(|w| hke_provider_api::Login {
            username: w.admin_username.clone(),
            ssh_public_keys: c.linux.ssh_public_keys.clone(),
            password: Some(w.admin_password.expose().to_string()),
        }),
    }
}

/// A model that passed the cluster stage: loaded, defaulted and validated.
#[derive(Debug)]
pub struct Built {
    /// The defaulted model (secrets filled in, certificates not yet).
    pub model: ApiModel,
    pub cluster: Cluster,
    /// Where each value came from, for diagnostics of later stages.
    pub origins: Origins,
    /// Warnings so far (errors would have rejected the model).
    pub diagnostics: Diagnostics,
}

/// Load, default and validate a model: everything up to the PKI.
pub fn build<R: RngCore + CryptoRng>(text: &str, sets: &[SetArg], rng: &mut R) -> Result<Built, Rejected> {
    let loaded = crate::model::load::load(text, sets)?;
    let mut diagnostics = loaded.diagnostics;
    let model = defaults::apply(loaded.model, &loaded.origins, rng, &mut diagnostics);
    let cluster = validate::validate(&model, &loaded.origins, &mut diagnostics);
    match (cluster, diagnostics.has_errors()) {
        (Some(cluster), false) => Ok(Built {
            model,
            cluster,
            origins: loaded.origins,
            diagnostics,
        }),
        _ => Err(Rejected {
            diagnostics: diagnostics.items,
        }),
    }
}

/// The shipped example, built with `sets` and a fixed seed, for unit tests.
#[cfg(test)]
pub fn example(sets: &[&str]) -> Cluster {
    use rand::SeedableRng;
    let text = include_str!("../../examples/windows.json");
    let sets: Vec<_> = sets.iter().map(|s| s.parse().expect("set")).collect();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    build(text, &sets, &mut rng).expect("valid").cluster
}
