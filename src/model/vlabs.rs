//! The vlabs API model, mirrored field for field.
//!
//! These types are the user reference: their doc comments become the JSON
//! Schema (`hke schema`). Every field is optional here so that a missing
//! required value becomes a validation message naming the field and the fix,
//! never a serde error. Keys are matched case-insensitively by the loader
//! (`model::load`), as acs-engine did; the names below are the canonical
//! spellings written back to `apimodel.json`.
//!
//! Fields carry an `x-hke` schema extension that says how hke treats them:
//! absent = acted on for every cloud; `"azure"` = acted on by the Azure
//! provider only (a warning elsewhere); `"inert"` = an acs-engine/aks-engine
//! setting that hke keeps in the model but does not act on (always a warning).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Any;

pub type FlagMap = BTreeMap<String, String>;

/// An API model: `{"apiVersion": "vlabs", "properties": {...}}`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiModel {
    /// Always `vlabs`. Legacy acs-engine API versions (2016-…, 2017-…) are
    /// rewritten by `hke migrate`.
    pub api_version: Option<String>,
    /// The cloud location (Azure region). `properties.providerProfile.location`
    /// takes precedence.
    pub location: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub name: Option<String>,
    /// Tags added to every cloud resource of the cluster.
    pub tags: Option<BTreeMap<String, String>>,
    #[schemars(extend("x-hke" = "inert"))]
    pub plan: Option<Any>,
    pub properties: Option<Properties>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Properties {
    pub orchestrator_profile: Option<OrchestratorProfile>,
    /// The Linux control plane.
    pub master_profile: Option<MasterProfile>,
    /// Worker pools, Linux or Windows.
    pub agent_pool_profiles: Option<Vec<AgentPoolProfile>>,
    pub linux_profile: Option<LinuxProfile>,
    /// Required when any pool has `osType: Windows`.
    pub windows_profile: Option<WindowsProfile>,
    #[schemars(extend("x-hke" = "azure"))]
    pub service_principal_profile: Option<ServicePrincipalProfile>,
    /// Certificates, keys and tokens. Generated when absent and written back
    /// to the output `apimodel.json`, so re-generating keeps them.
    pub certificate_profile: Option<CertificateProfile>,
    #[schemars(extend("x-hke" = "inert"))]
    pub aad_profile: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub extension_profiles: Option<Any>,
    pub feature_flags: Option<FeatureFlags>,
    #[schemars(extend("x-hke" = "inert"))]
    pub custom_cloud_profile: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub telemetry_profile: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub az_profile: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub jumpbox_profile: Option<Any>,
    /// hke addition: which cloud to build on, and where.
    pub provider_profile: Option<ProviderProfile>,
}

/// hke addition: the target cloud. Defaults to Azure so that old models mean
/// what they meant.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderProfile {
    /// `azure` (default), `aws`, `gcp`, `openstack`, or `fake` (the in-process test cloud).
    pub name: Option<String>,
    /// Azure location, AWS region or GCP region. Overrides the top-level
    /// `location`.
    pub location: Option<String>,
    /// Alias of `location`, as AWS and GCP users spell it.
    pub region: Option<String>,
    /// GCP project id.
    pub project: Option<String>,
    /// GCP zone (defaults to `<region>-a`).
    pub zone: Option<String>,
    /// Azure subscription id (otherwise from the credential chain).
    pub subscription_id: Option<String>,
    /// Azure resource group (default: the dnsPrefix; created and tagged by hke).
    pub resource_group: Option<String>,
    /// OpenStack: the `clouds.yaml` entry to use (as `OS_CLOUD`; the
    /// `OS_CLOUD` variable fills in).
    pub cloud: Option<String>,
    /// OpenStack: the external network for the router's gateway and the
    /// API server's floating IP (default: the project's only external
    /// network).
    pub external_network: Option<String>,
    /// OpenStack: the Glance image (name or id) per node OS, which OpenStack
    /// needs since it has no public catalog: `linux`, and `windows-2019`,
    /// `windows-2022`, `windows-2025` for each Windows version in use.
    pub images: Option<std::collections::BTreeMap<String, String>>,
    /// OpenStack: `false` when the cloud has no Octavia load balancer; the
    /// API server then gets a floating IP on its single master (validation
    /// refuses several masters). Default: Octavia for several masters.
    pub octavia: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrchestratorProfile {
    /// Must be `Kubernetes` (case-insensitive; empty means Kubernetes).
    pub orchestrator_type: Option<String>,
    /// A minor release such as `1.36`; resolved to its newest supported patch.
    pub orchestrator_release: Option<String>,
    /// An exact version such as `1.36.4`.
    pub orchestrator_version: Option<String>,
    pub kubernetes_config: Option<KubernetesConfig>,
    #[schemars(extend("x-hke" = "inert"))]
    pub openshift_config: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub dcos_config: Option<Any>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesConfig {
    /// `azure` (Azure CNI; Azure only), `kubenet`, `flannel` or `calico`.
    pub network_plugin: Option<String>,
    /// `""`, `calico`, `azure` (Linux-only clusters), or the legacy `none`.
    pub network_policy: Option<String>,
    /// Azure CNI mode (`transparent` or `bridge`).
    #[schemars(extend("x-hke" = "azure"))]
    pub network_mode: Option<String>,
    /// Pod network CIDR.
    pub cluster_subnet: Option<String>,
    /// Service CIDR.
    pub service_cidr: Option<String>,
    /// Cluster DNS service IP; inside `serviceCidr`, not its first address.
    #[serde(rename = "dnsServiceIP")]
    pub dns_service_ip: Option<String>,
    /// Docker bridge CIDR; checked for overlaps even with containerd.
    pub docker_bridge_subnet: Option<String>,
    /// Pods per node (default 110; 30 with Azure CNI).
    pub max_pods: Option<i64>,
    /// `iptables` (default) or `ipvs` (Linux nodes).
    pub kube_proxy_mode: Option<String>,
    /// `containerd` (default). `docker` is refused for Kubernetes 1.24+.
    pub container_runtime: Option<String>,
    /// containerd version installed on every node.
    pub containerd_version: Option<String>,
    /// Always on in hke clusters; `false` is refused.
    pub enable_rbac: Option<bool>,
    /// kubelet flags for every node (`{"--max-pods": "50"}`).
    pub kubelet_config: Option<FlagMap>,
    pub api_server_config: Option<FlagMap>,
    pub controller_manager_config: Option<FlagMap>,
    pub scheduler_config: Option<FlagMap>,
    #[schemars(extend("x-hke" = "azure"))]
    pub cloud_controller_manager_config: Option<FlagMap>,
    #[schemars(extend("x-hke" = "azure"))]
    pub load_balancer_sku: Option<String>,
    #[serde(rename = "excludeMasterFromStandardLB")]
    #[schemars(extend("x-hke" = "azure"))]
    pub exclude_master_from_standard_lb: Option<bool>,
    #[serde(rename = "loadBalancerOutboundIPs")]
    #[schemars(extend("x-hke" = "azure"))]
    pub load_balancer_outbound_ips: Option<i64>,
    #[schemars(extend("x-hke" = "azure"))]
    pub outbound_rule_idle_timeout_in_minutes: Option<i64>,
    #[schemars(extend("x-hke" = "azure"))]
    pub use_managed_identity: Option<bool>,
    #[serde(rename = "userAssignedID")]
    #[schemars(extend("x-hke" = "azure"))]
    pub user_assigned_id: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub use_instance_metadata: Option<bool>,
    #[schemars(extend("x-hke" = "azure"))]
    pub use_cloud_controller_manager: Option<bool>,
    #[serde(rename = "azureCNIVersion")]
    #[schemars(extend("x-hke" = "azure"))]
    pub azure_cni_version: Option<String>,
    #[serde(rename = "azureCNIURLLinux")]
    #[schemars(extend("x-hke" = "azure"))]
    pub azure_cni_url_linux: Option<String>,
    #[serde(rename = "azureCNIURLWindows")]
    #[schemars(extend("x-hke" = "azure"))]
    pub azure_cni_url_windows: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub private_cluster: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub addons: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub components: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub container_runtime_config: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub moby_version: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub docker_engine_version: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "linuxMobyURL")]
    pub linux_moby_url: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "linuxRuncURL")]
    pub linux_runc_url: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "linuxContainerdURL")]
    pub linux_containerd_url: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub kubernetes_image_base: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub kubernetes_image_base_type: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub mcr_kubernetes_image_base: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub custom_hyperkube_image: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "customKubeAPIServerImage")]
    pub custom_kube_api_server_image: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub custom_kube_controller_manager_image: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub custom_kube_scheduler_image: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub custom_kube_proxy_image: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "customKubeBinaryURL")]
    pub custom_kube_binary_url: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub custom_ccm_image: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "customWindowsPackageURL")]
    pub custom_windows_package_url: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "windowsNodeBinariesURL")]
    pub windows_node_binaries_url: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "windowsContainerdURL")]
    pub windows_containerd_url: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "windowsSdnPluginURL")]
    pub windows_sdn_plugin_url: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub enable_secure_kubelet: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "enableAggregatedAPIs")]
    pub enable_aggregated_apis: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub enable_data_encryption_at_rest: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub etcd_encryption_key: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub enable_encryption_with_external_kms: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub enable_pod_security_policy: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub pod_security_policy_config: Option<FlagMap>,
    #[schemars(extend("x-hke" = "inert"))]
    pub key_vault_sku: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub etcd_version: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "etcdDiskSizeGB")]
    pub etcd_disk_size_gb: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "etcdStorageLimitGB")]
    pub etcd_storage_limit_gb: Option<i64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cloud_provider_backoff: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cloud_provider_backoff_mode: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cloud_provider_backoff_retries: Option<i64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cloud_provider_backoff_jitter: Option<f64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cloud_provider_backoff_duration: Option<i64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cloud_provider_backoff_exponent: Option<f64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cloud_provider_rate_limit: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "cloudProviderRateLimitQPS")]
    pub cloud_provider_rate_limit_qps: Option<f64>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "cloudProviderRateLimitQPSWrite")]
    pub cloud_provider_rate_limit_qps_write: Option<f64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cloud_provider_rate_limit_bucket: Option<i64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cloud_provider_rate_limit_bucket_write: Option<i64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cloud_provider_disable_outbound_snat: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub maximum_load_balancer_rule_count: Option<i64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub enable_multiple_standard_load_balancers: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub tags: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub gchighthreshold: Option<i64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub gclowthreshold: Option<i64>,
    #[schemars(extend("x-hke" = "inert"))]
    pub kube_reserved_cgroup: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub private_azure_registry_server: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    #[serde(rename = "microsoftAptRepositoryURL")]
    pub microsoft_apt_repository_url: Option<String>,
}

/// The Linux control plane.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MasterProfile {
    /// 1, 3 or 5.
    pub count: Option<i64>,
    /// 3–45 characters, letters, digits and hyphens; starts with a letter.
    /// Names the cluster, its DNS label and `_output/<dnsPrefix>`.
    pub dns_prefix: Option<String>,
    /// Azure size (`Standard_D2s_v3`), or a native AWS/GCP machine type.
    pub vm_size: Option<String>,
    /// OS disk size in GB (default 128).
    #[serde(rename = "osDiskSizeGB")]
    pub os_disk_size_gb: Option<i64>,
    /// Extra SANs for the API server certificate.
    pub subject_alt_names: Option<Vec<String>>,
    /// Node network CIDR (the VNet/VPC/subnetwork range).
    pub vnet_cidr: Option<String>,
    /// First master's private IP; the others follow consecutively.
    #[serde(rename = "firstConsecutiveStaticIP")]
    pub first_consecutive_static_ip: Option<String>,
    /// Source range allowed to reach the API server (default `*`).
    #[serde(rename = "HTTPSourceAddressPrefix")]
    pub http_source_address_prefix: Option<String>,
    /// kubeletConfig here applies to the masters.
    pub kubernetes_config: Option<PoolKubernetesConfig>,
    #[serde(rename = "vnetSubnetID")]
    #[schemars(extend("x-hke" = "azure"))]
    pub vnet_subnet_id: Option<String>,
    #[serde(rename = "agentVnetSubnetID")]
    #[schemars(extend("x-hke" = "azure"))]
    pub agent_vnet_subnet_id: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub ip_address_count: Option<i64>,
    #[schemars(extend("x-hke" = "azure"))]
    pub storage_profile: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub availability_profile: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub availability_zones: Option<Vec<String>>,
    #[schemars(extend("x-hke" = "azure"))]
    pub image_reference: Option<ImageReference>,
    #[schemars(extend("x-hke" = "azure"))]
    pub single_placement_group: Option<bool>,
    #[schemars(extend("x-hke" = "azure"))]
    pub platform_fault_domain_count: Option<i64>,
    #[schemars(extend("x-hke" = "azure"))]
    pub platform_update_domain_count: Option<i64>,
    #[serde(rename = "customVMTags")]
    #[schemars(extend("x-hke" = "azure"))]
    pub custom_vm_tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "ultraSSDEnabled")]
    #[schemars(extend("x-hke" = "azure"))]
    pub ultra_ssd_enabled: Option<bool>,
    #[schemars(extend("x-hke" = "azure"))]
    pub encryption_at_host: Option<bool>,
    #[serde(rename = "proximityPlacementGroupID")]
    #[schemars(extend("x-hke" = "azure"))]
    pub proximity_placement_group_id: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub os_disk_caching_type: Option<String>,
    /// hke uses Ubuntu LTS on every cloud; acs-engine distros are ignored.
    #[schemars(extend("x-hke" = "inert"))]
    pub distro: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub custom_files: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub oauth_enabled: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub pre_provision_extension: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub extensions: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub audit_d_enabled: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub sysctld_config: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub cosmos_etcd: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub fqdn: Option<String>,
}

/// A per-pool `kubernetesConfig`; only `kubeletConfig` is honoured here, as in
/// acs-engine.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolKubernetesConfig {
    /// kubelet flags for this pool, merged over the cluster's. Use
    /// `"--register-with-taints": "os=windows:NoSchedule"` to taint a pool.
    pub kubelet_config: Option<FlagMap>,
    #[schemars(extend("x-hke" = "inert"))]
    pub container_runtime: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoolProfile {
    /// 1–12 characters, a-z and 0-9, starting with a letter; unique.
    pub name: Option<String>,
    /// 1–1000 nodes.
    pub count: Option<i64>,
    /// Azure size (`Standard_D2s_v3`), or a native AWS/GCP machine type.
    pub vm_size: Option<String>,
    /// `Linux` (default) or `Windows`.
    pub os_type: Option<String>,
    /// OS disk size in GB (default 128; Windows needs at least 64).
    #[serde(rename = "osDiskSizeGB")]
    pub os_disk_size_gb: Option<i64>,
    /// Windows pools: `2019`, `2022` or `2025`; default from windowsProfile.
    pub windows_version: Option<String>,
    /// hke addition, Windows pools: also offer Hyper-V isolated containers
    /// (a containerd runtime handler and a `windows-<version>-hyperv`
    /// RuntimeClass). Needs a VM size with nested virtualization.
    pub hyperv_isolation: Option<bool>,
    /// hke addition, AWS: pin the pool's AMI (`ami-…`) instead of taking the
    /// newest image of the pool's OS (Ubuntu LTS, or Windows Server Core of
    /// the pool's version).
    pub image_id: Option<String>,
    /// Labels for every node of the pool.
    pub custom_node_labels: Option<BTreeMap<String, String>>,
    pub kubernetes_config: Option<PoolKubernetesConfig>,
    #[schemars(extend("x-hke" = "azure"))]
    pub availability_profile: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub storage_profile: Option<String>,
    #[serde(rename = "diskSizesGB")]
    #[schemars(extend("x-hke" = "azure"))]
    pub disk_sizes_gb: Option<Vec<i64>>,
    #[serde(rename = "vnetSubnetID")]
    #[schemars(extend("x-hke" = "azure"))]
    pub vnet_subnet_id: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub ip_address_count: Option<i64>,
    #[schemars(extend("x-hke" = "azure"))]
    pub image_reference: Option<ImageReference>,
    #[schemars(extend("x-hke" = "azure"))]
    pub scale_set_priority: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub scale_set_eviction_policy: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub spot_max_price: Option<f64>,
    #[schemars(extend("x-hke" = "azure"))]
    pub accelerated_networking_enabled: Option<bool>,
    #[schemars(extend("x-hke" = "azure"))]
    pub accelerated_networking_enabled_windows: Option<bool>,
    #[schemars(extend("x-hke" = "azure"))]
    pub single_placement_group: Option<bool>,
    #[schemars(extend("x-hke" = "azure"))]
    pub availability_zones: Option<Vec<String>>,
    #[schemars(extend("x-hke" = "azure"))]
    pub vmss_over_provisioning_enabled: Option<bool>,
    #[serde(rename = "customVMTags")]
    #[schemars(extend("x-hke" = "azure"))]
    pub custom_vm_tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "diskEncryptionSetID")]
    #[schemars(extend("x-hke" = "azure"))]
    pub disk_encryption_set_id: Option<String>,
    #[serde(rename = "ultraSSDEnabled")]
    #[schemars(extend("x-hke" = "azure"))]
    pub ultra_ssd_enabled: Option<bool>,
    #[schemars(extend("x-hke" = "azure"))]
    pub encryption_at_host: Option<bool>,
    #[serde(rename = "enableVMSSNodePublicIP")]
    #[schemars(extend("x-hke" = "azure"))]
    pub enable_vmss_node_public_ip: Option<bool>,
    #[serde(rename = "loadBalancerBackendAddressPoolIDs")]
    #[schemars(extend("x-hke" = "azure"))]
    pub load_balancer_backend_address_pool_ids: Option<Vec<String>>,
    #[serde(rename = "proximityPlacementGroupID")]
    #[schemars(extend("x-hke" = "azure"))]
    pub proximity_placement_group_id: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub os_disk_caching_type: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub data_disk_caching_type: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub platform_fault_domain_count: Option<i64>,
    #[schemars(extend("x-hke" = "azure"))]
    pub platform_update_domain_count: Option<i64>,
    /// Must be empty for Kubernetes.
    pub dns_prefix: Option<String>,
    /// Must be empty for Kubernetes.
    pub ports: Option<Vec<i64>>,
    #[schemars(extend("x-hke" = "inert"))]
    pub distro: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub role: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub pre_provision_extension: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub extensions: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub audit_d_enabled: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub sysctld_config: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub vmss_name: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub fqdn: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageReference {
    pub name: Option<String>,
    pub resource_group: Option<String>,
    pub subscription_id: Option<String>,
    pub gallery: Option<String>,
    pub version: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinuxProfile {
    /// Admin user on Linux nodes (default `azureuser`).
    pub admin_username: Option<String>,
    /// SSH keys; a key pair is generated when none is given.
    pub ssh: Option<SshConfig>,
    #[schemars(extend("x-hke" = "azure"))]
    pub secrets: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub scriptroot: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub custom_search_domain: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub custom_nodes_dns: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub run_unattended_upgrades_on_bootstrap: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub enable_unattended_upgrades: Option<bool>,
    #[serde(rename = "eth0MTU")]
    #[schemars(extend("x-hke" = "inert"))]
    pub eth0_mtu: Option<i64>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SshConfig {
    pub public_keys: Option<Vec<PublicKey>>,
    /// hke addition: the private half of a key pair hke generated (OpenSSH
    /// format). Kept so that re-generating from `apimodel.json` writes the
    /// same key file again.
    pub private_key: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// An OpenSSH public key (`ssh-ed25519 AAAA…`, `ssh-rsa AAAA…`).
    pub key_data: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowsProfile {
    /// Windows admin user (default `azureuser`); not a reserved name.
    pub admin_username: Option<String>,
    /// 12–123 characters, three of: lower, upper, digit, symbol. Generated
    /// when absent.
    pub admin_password: Option<String>,
    /// hke addition: default Windows Server version for Windows pools
    /// (`2019`, `2022` or `2025`; default `2022`).
    pub windows_version: Option<String>,
    /// Enable OpenSSH on Windows nodes with the linuxProfile keys (default true).
    pub ssh_enabled: Option<bool>,
    /// Windows Update on nodes (default false: nodes are cattle).
    pub enable_automatic_updates: Option<bool>,
    /// Override the pause (infra) image.
    #[serde(rename = "windowsPauseImageURL")]
    pub windows_pause_image_url: Option<String>,
    pub always_pull_windows_pause_image: Option<bool>,
    /// Azure marketplace image pin.
    #[schemars(extend("x-hke" = "azure"))]
    pub windows_publisher: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub windows_offer: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub windows_sku: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub image_version: Option<String>,
    #[serde(rename = "windowsImageSourceURL")]
    #[schemars(extend("x-hke" = "azure"))]
    pub windows_image_source_url: Option<String>,
    #[schemars(extend("x-hke" = "azure"))]
    pub image_reference: Option<ImageReference>,
    #[serde(rename = "enableAHUB")]
    #[schemars(extend("x-hke" = "azure"))]
    pub enable_ahub: Option<bool>,
    #[schemars(extend("x-hke" = "azure"))]
    pub secrets: Option<Any>,
    #[schemars(extend("x-hke" = "inert"))]
    pub windows_docker_version: Option<String>,
    #[serde(rename = "csiProxyURL")]
    #[schemars(extend("x-hke" = "inert"))]
    pub csi_proxy_url: Option<String>,
    #[serde(rename = "enableCSIProxy")]
    #[schemars(extend("x-hke" = "inert"))]
    pub enable_csi_proxy: Option<bool>,
    #[serde(rename = "provisioningScriptsPackageURL")]
    #[schemars(extend("x-hke" = "inert"))]
    pub provisioning_scripts_package_url: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub is_credential_auto_generated: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub windows_runtimes: Option<Any>,
    #[serde(rename = "windowsSecureTLSEnabled")]
    #[schemars(extend("x-hke" = "inert"))]
    pub windows_secure_tls_enabled: Option<bool>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipalProfile {
    pub client_id: Option<String>,
    pub secret: Option<String>,
    pub object_id: Option<String>,
    pub keyvault_secret_ref: Option<Any>,
}

/// PEM certificates and keys. Absent values are generated; present ones are
/// used as they are.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateProfile {
    /// hke addition: `ECDSA-P256` (default), `RSA-2048` or `RSA-4096`.
    pub key_algorithm: Option<String>,
    pub ca_certificate: Option<String>,
    pub ca_private_key: Option<String>,
    pub api_server_certificate: Option<String>,
    pub api_server_private_key: Option<String>,
    /// The admin client certificate (O=system:masters) of the kubeconfig.
    pub kube_config_certificate: Option<String>,
    pub kube_config_private_key: Option<String>,
    /// hke addition: the front-proxy CA and client.
    pub front_proxy_ca_certificate: Option<String>,
    pub front_proxy_ca_private_key: Option<String>,
    pub front_proxy_client_certificate: Option<String>,
    pub front_proxy_client_private_key: Option<String>,
    /// hke addition: the etcd CA.
    pub etcd_ca_certificate: Option<String>,
    pub etcd_ca_private_key: Option<String>,
    pub etcd_server_certificate: Option<String>,
    pub etcd_server_private_key: Option<String>,
    pub etcd_client_certificate: Option<String>,
    pub etcd_client_private_key: Option<String>,
    /// One per master.
    pub etcd_peer_certificates: Option<Vec<String>>,
    pub etcd_peer_private_keys: Option<Vec<String>>,
    /// hke addition: the client certificate kube-proxy uses on Windows
    /// nodes (CN=system:kube-proxy, which Kubernetes' default RBAC binds to
    /// the system:node-proxier role).
    pub kube_proxy_certificate: Option<String>,
    pub kube_proxy_private_key: Option<String>,
    /// hke addition: the service-account signing key pair.
    pub service_account_public_key: Option<String>,
    pub service_account_private_key: Option<String>,
    /// hke addition: the kubeadm bootstrap token (`abcdef.0123456789abcdef`).
    pub bootstrap_token: Option<String>,
    /// acs-engine's shared kubelet client certificate. hke nodes join with a
    /// bootstrap token instead.
    #[schemars(extend("x-hke" = "inert"))]
    pub client_certificate: Option<String>,
    #[schemars(extend("x-hke" = "inert"))]
    pub client_private_key: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFlags {
    /// IPv6 dual-stack is not supported by hke yet; `true` is refused.
    #[serde(rename = "enableIPv6DualStack")]
    pub enable_ipv6_dual_stack: Option<bool>,
    /// IPv6-only clusters cannot run Windows nodes; `true` is refused.
    #[serde(rename = "enableIPv6Only")]
    pub enable_ipv6_only: Option<bool>,
    /// Direct server return for kube-proxy on Windows.
    #[serde(rename = "enableWinDSR")]
    pub enable_win_dsr: Option<bool>,
    #[serde(rename = "enableCSERunInBackground")]
    #[schemars(extend("x-hke" = "inert"))]
    pub enable_cse_run_in_background: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub block_outbound_internet: Option<bool>,
    #[schemars(extend("x-hke" = "inert"))]
    pub enable_telemetry: Option<bool>,
}

/// The aks-engine e2e wrapper: `{"env": {...}, "options": {...}, "apiModel": {...}}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct E2eWrapper {
    pub env: Option<Any>,
    pub options: Option<Any>,
    pub api_model: Option<ApiModel>,
}
