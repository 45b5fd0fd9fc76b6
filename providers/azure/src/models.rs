//! Typed ARM request and response bodies of the resources hke uses, with
//! the api-version each is sent with. Only the properties hke sets or reads
//! are modelled; ARM ignores absent optional ones.
//!
//! The same bodies make the `azuredeploy.json` template (see `template`),
//! so a template deployment and `hke deploy` build identical resources.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const API_RESOURCES: &str = "2021-04-01";
pub const API_SUBSCRIPTIONS: &str = "2022-12-01";
pub const API_NETWORK: &str = "2024-05-01";
pub const API_COMPUTE: &str = "2024-07-01";
/// Managed disks belong to the Disk RP inside Microsoft.Compute, which has
/// its own api-versions (Disks - Delete: `api-version=2024-03-02`,
/// 2025-01-02, ...); the Compute api-version of VMs is refused for them.
pub const API_DISKS: &str = "2024-03-02";

pub type Tags = BTreeMap<String, String>;

/// `{"id": "..."}`, how ARM references another resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubRef {
    pub id: String,
}

impl SubRef {
    pub fn to(id: impl Into<String>) -> SubRef {
        SubRef { id: id.into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sku {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
}

impl Sku {
    pub fn named(name: &str) -> Sku {
        Sku {
            name: name.into(),
            tier: None,
            capacity: None,
        }
    }
}

/// A top-level resource: where it lives, its tags and SKU, and its typed
/// properties.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resource<P> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    pub properties: P,
}

impl<P> Resource<P> {
    pub fn new(location: &str, tags: &Tags, properties: P) -> Resource<P> {
        Resource {
            id: None,
            name: None,
            location: Some(location.into()),
            tags: tags.clone(),
            sku: None,
            properties,
        }
    }

    pub fn with_sku(mut self, sku: Sku) -> Resource<P> {
        self.sku = Some(sku);
        self
    }
}

/// A child resource (subnet, route, LB parts): a name and properties.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Child<P> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub properties: P,
}

impl<P> Child<P> {
    pub fn new(name: &str, properties: P) -> Child<P> {
        Child {
            id: None,
            name: name.into(),
            properties,
        }
    }
}

/// What every GET returns besides the properties hke reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    #[serde(default)]
    pub provisioning_state: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Observed {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub tags: Tags,
    #[serde(default)]
    pub properties: serde_json::Value,
}

impl Observed {
    pub fn provisioning_state(&self) -> Option<&str> {
        self.properties.get("provisioningState").and_then(|v| v.as_str())
    }

    pub fn str_at(&self, pointer: &str) -> Option<String> {
        self.properties
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .map(String::from)
    }
}

/// The body of an `Azure-AsyncOperation` status URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AsyncStatus {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub error: Option<ArmError>,
}

/// ARM's error object; `details` holds the inner errors (a
/// `RetryableError` names its cause there, `ReferencedResourceNotProvisioned`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ArmError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub details: Vec<ArmError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: Option<ArmError>,
}

/// A page of a list call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    #[serde(default)]
    pub value: Vec<Listed>,
    #[serde(default)]
    pub next_link: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Listed {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub tags: Tags,
}

// ---- resource groups ----------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Empty {}

// ---- network --------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpace {
    pub address_prefixes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VnetProps {
    pub address_space: AddressSpace,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetProps {
    pub address_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_table: Option<SubRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityRuleProps {
    pub priority: u32,
    pub direction: String,
    pub access: String,
    pub protocol: String,
    pub source_port_range: String,
    pub destination_port_range: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_address_prefixes: Vec<String>,
    pub destination_address_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NsgProps {
    pub security_rules: Vec<Child<SecurityRuleProps>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsSettings {
    pub domain_name_label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicIpProps {
    #[serde(rename = "publicIPAllocationMethod")]
    pub public_ip_allocation_method: String,
    #[serde(rename = "publicIPAddressVersion")]
    pub public_ip_address_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_settings: Option<DnsSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrontendProps {
    #[serde(rename = "publicIPAddress")]
    pub public_ip_address: SubRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeProps {
    pub protocol: String,
    pub port: u16,
    pub interval_in_seconds: u32,
    pub number_of_probes: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LbRuleProps {
    #[serde(rename = "frontendIPConfiguration")]
    pub frontend_ip_configuration: SubRef,
    pub backend_address_pool: SubRef,
    pub probe: SubRef,
    pub protocol: String,
    pub frontend_port: u16,
    pub backend_port: u16,
    #[serde(rename = "enableFloatingIP")]
    pub enable_floating_ip: bool,
    pub idle_timeout_in_minutes: u32,
    pub disable_outbound_snat: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundRuleProps {
    #[serde(rename = "frontendIPConfigurations")]
    pub frontend_ip_configurations: Vec<SubRef>,
    pub backend_address_pool: SubRef,
    /// SNAT ports per backend instance (0: ARM's default table by pool size).
    #[serde(default)]
    pub allocated_outbound_ports: u32,
    pub protocol: String,
    pub enable_tcp_reset: bool,
    pub idle_timeout_in_minutes: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LbProps {
    #[serde(rename = "frontendIPConfigurations")]
    pub frontend_ip_configurations: Vec<Child<FrontendProps>>,
    pub backend_address_pools: Vec<Child<Empty>>,
    pub probes: Vec<Child<ProbeProps>>,
    pub load_balancing_rules: Vec<Child<LbRuleProps>>,
    pub outbound_rules: Vec<Child<OutboundRuleProps>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpConfigProps {
    #[serde(default)]
    pub primary: bool,
    pub subnet: SubRef,
    #[serde(rename = "privateIPAllocationMethod")]
    pub private_ip_allocation_method: String,
    #[serde(rename = "privateIPAddress", default, skip_serializing_if = "Option::is_none")]
    pub private_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_backend_address_pools: Vec<SubRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NicProps {
    #[serde(rename = "enableIPForwarding", default)]
    pub enable_ip_forwarding: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_security_group: Option<SubRef>,
    pub ip_configurations: Vec<Child<IpConfigProps>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableProps {
    #[serde(default)]
    pub disable_bgp_route_propagation: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteProps {
    pub address_prefix: String,
    pub next_hop_type: String,
    pub next_hop_ip_address: String,
}

// ---- compute --------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilitySetProps {
    pub platform_fault_domain_count: u32,
    pub platform_update_domain_count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReference {
    pub publisher: String,
    pub offer: String,
    pub sku: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedDisk {
    pub storage_account_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OsDisk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub create_option: String,
    pub caching: String,
    #[serde(rename = "diskSizeGB")]
    pub disk_size_gb: u32,
    pub managed_disk: ManagedDisk,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_option: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageProfile {
    pub image_reference: ImageReference,
    pub os_disk: OsDisk,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshKey {
    pub path: String,
    pub key_data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshConfig {
    pub public_keys: Vec<SshKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxConfig {
    pub disable_password_authentication: bool,
    pub ssh: SshConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsConfig {
    #[serde(rename = "provisionVMAgent")]
    pub provision_vm_agent: bool,
    pub enable_automatic_updates: bool,
}

/// The OS profile. `admin_password` and `custom_data` are secrets: this
/// type's `Debug` hides them.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OsProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computer_name_prefix: Option<String>,
    pub admin_username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<String>,
    /// Base64 of the rendered bootstrap.
    pub custom_data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_configuration: Option<LinuxConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_configuration: Option<WindowsConfig>,
}

impl std::fmt::Debug for OsProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsProfile")
            .field("computer_name", &self.computer_name)
            .field("admin_username", &self.admin_username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HardwareProfile {
    pub vm_size: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NicRefProps {
    pub primary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_option: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NicRef {
    pub id: String,
    pub properties: NicRefProps,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkProfile {
    pub network_interfaces: Vec<NicRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootDiagnostics {
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticsProfile {
    pub boot_diagnostics: BootDiagnostics,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmProps {
    pub hardware_profile: HardwareProfile,
    pub storage_profile: StorageProfile,
    pub os_profile: OsProfile,
    pub network_profile: NetworkProfile,
    pub diagnostics_profile: DiagnosticsProfile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_set: Option<SubRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_type: Option<String>,
}

/// A VM extension (Windows: runs the bootstrap CustomData).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionProps {
    pub publisher: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub type_handler_version: String,
    pub auto_upgrade_minor_version: bool,
    pub settings: serde_json::Value,
    #[serde(default)]
    pub protected_settings: serde_json::Value,
}

impl std::fmt::Debug for ExtensionProps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionProps")
            .field("publisher", &self.publisher)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssIpConfig {
    /// Required once a NIC has several IP configurations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    pub subnet: SubRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_backend_address_pools: Vec<SubRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssNicProps {
    pub primary: bool,
    #[serde(rename = "enableIPForwarding")]
    pub enable_ip_forwarding: bool,
    pub network_security_group: SubRef,
    pub ip_configurations: Vec<Child<VmssIpConfig>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssNetworkProfile {
    pub network_interface_configurations: Vec<Child<VmssNicProps>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssExtensionProfile {
    pub extensions: Vec<Child<ExtensionProps>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssVmProfile {
    pub storage_profile: StorageProfile,
    pub os_profile: OsProfile,
    pub network_profile: VmssNetworkProfile,
    pub diagnostics_profile: DiagnosticsProfile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_profile: Option<VmssExtensionProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_type: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePolicy {
    pub mode: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmssProps {
    pub orchestration_mode: String,
    pub upgrade_policy: UpgradePolicy,
    pub overprovision: bool,
    /// `false` lets the set span placement groups: needed above 100
    /// instances (ARM's default `true` caps a set at 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_placement_group: Option<bool>,
    pub virtual_machine_profile: VmssVmProfile,
}
