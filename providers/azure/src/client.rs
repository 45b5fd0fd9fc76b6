//! The `Provider` over ARM REST (feature `client`): `Azure` and its
//! configuration, the credential chain and the HTTP client.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport, Url};
use hke_provider_api::resource::{OUT_ADDRESS, OUT_DNS_NAME, OUT_ID, OUT_PRIVATE_IP};
use hke_provider_api::snat;
use hke_provider_api::{
    outputs, Found, Kind, MachineGroupSpec, MachineSpec, Os, Outputs, Provider, ProviderError, Request, Rule, Spec,
    TAG_CLUSTER,
};
use serde_json::Value;

use crate::arm::{self, Arm, R};
use crate::bodies::*;
use crate::models::*;
use crate::tags;

/// The public cloud's Resource Manager.
pub const PUBLIC_ENDPOINT: &str = "https://management.azure.com";

/// Where and as whom hke works.
#[derive(Debug, Clone)]
pub struct AzureConfig {
    pub cluster: String,
    pub subscription: Option<String>,
    /// Location for resources when the group does not say.
    pub location: Option<String>,
    /// The resource group hke's resources live in (the plan's group name).
    pub resource_group: String,
    /// Resource Manager endpoint (sovereign clouds, Azure Stack, tests).
    pub endpoint: Option<String>,
    /// Token scope; defaults to `<endpoint>/.default`.
    pub scope: Option<String>,
    /// Extra trusted CA certificates (PEM) for the endpoint and the
    /// authority: Azure Stack Hub, TLS-inspecting proxies, tests.
    pub ca_file: Option<PathBuf>,
    /// Poll interval of long-running operations when ARM does not say.
    pub poll: Duration,
    /// Pace calls under ARM's documented per-principal buckets; `None`:
    /// unless `HKE_PACING=off`.
    pub pacing: Option<bool>,
    /// Times the documented buckets' sizes and refills (a subscription with
    /// raised limits, a test); `None`: `HKE_AZURE_RATE_SCALE`, else 1.
    pub rate_scale: Option<f64>,
    /// The buckets refill this many times faster (benchmarks that scale
    /// time down).
    pub clock_scale: f64,
}

impl AzureConfig {
    pub fn new(cluster: &str) -> AzureConfig {
        AzureConfig {
            cluster: cluster.into(),
            subscription: None,
            location: None,
            resource_group: cluster.into(),
            endpoint: None,
            scope: None,
            ca_file: None,
            poll: Duration::from_secs(5),
            pacing: None,
            rate_scale: None,
            clock_scale: 1.0,
        }
    }
}

pub struct Azure {
    arm: Arm,
    cluster: String,
    subscription: String,
    resource_group: String,
    location: Mutex<Option<String>>,
    /// The `nodes` backend pool of the cluster's load balancer, once found.
    outbound_pool: tokio::sync::Mutex<Option<String>>,
    /// The route table once made and bound to the subnets (one set-up at
    /// a time).
    route_table: tokio::sync::Mutex<Option<String>>,
    /// The group is hke's own (made by it or tagged for this cluster): no
    /// other cluster's resource can hold a name in it, so creates PUT
    /// without reading first (ARM's PUT is idempotent by id).
    own_group: std::sync::atomic::AtomicBool,
    /// Private addresses of the NICs this process made, by VM id (the
    /// next hops of kubenet routes).
    private_ips: Mutex<BTreeMap<String, String>>,
    /// The group's VMs, listed for the VM creations waiting on them.
    vms: arm::Watch,
}

/// `HKE_PACING` and `HKE_AZURE_RATE_SCALE` where the caller did not say:
/// (pacing, rate scale).
// Read here until `deploy::provider_for` passes them (as for AWS and GCP).
#[allow(clippy::disallowed_methods)]
/// Pacing on unless the caller says otherwise (hke's `HKE_PACING`, read by
/// `ops::target`), at the documented rates times `rate_scale`.
fn pacing_of(cfg: &AzureConfig) -> (bool, f64) {
    (
        cfg.pacing.unwrap_or(true),
        cfg.rate_scale.filter(|f| *f > 0.0).unwrap_or(1.0),
    )
}

fn config_error(msg: String) -> ProviderError {
    ProviderError::permanent("InvalidConfiguration", msg)
}

/// The credential chain: a service principal secret, workload identity
/// (federated token file), managed identity (`IDENTITY_ENDPOINT`, or
/// `HKE_AZURE_MANAGED_IDENTITY=1` on a VM), else the Azure CLI / azd login.
// The chain reads the standard AZURE_* variables, as azure_identity's
// credentials themselves do.
#[allow(clippy::disallowed_methods)]
fn credential(options: &ClientOptions) -> R<Arc<dyn TokenCredential>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let err = |what: &str, e: azure_core::Error| config_error(format!("{what}: {e}"));
    if let (Some(tenant), Some(client), Some(secret)) = (
        var("AZURE_TENANT_ID"),
        var("AZURE_CLIENT_ID"),
        var("AZURE_CLIENT_SECRET"),
    ) {
        let c = azure_identity::ClientSecretCredential::new(
            &tenant,
            client,
            secret.into(),
            Some(azure_identity::ClientSecretCredentialOptions {
                client_options: options.clone(),
            }),
        )
        .map_err(|e| err("AZURE_CLIENT_SECRET credential", e))?;
        return Ok(c);
    }
    if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        let mut o = azure_identity::WorkloadIdentityCredentialOptions::default();
        o.credential_options.client_options = options.clone();
        let c = azure_identity::WorkloadIdentityCredential::new(Some(o))
            .map_err(|e| err("workload identity (AZURE_FEDERATED_TOKEN_FILE)", e))?;
        return Ok(c);
    }
    if var("IDENTITY_ENDPOINT").is_some() || var("HKE_AZURE_MANAGED_IDENTITY").is_some_and(|v| v != "0") {
        let mut o = azure_identity::ManagedIdentityCredentialOptions {
            client_options: options.clone(),
            ..Default::default()
        };
        if let Some(id) = var("AZURE_CLIENT_ID") {
            o.user_assigned_id = Some(azure_identity::UserAssignedId::ClientId(id));
        }
        let c = azure_identity::ManagedIdentityCredential::new(Some(o)).map_err(|e| err("managed identity", e))?;
        return Ok(c);
    }
    let c = azure_identity::DeveloperToolsCredential::new(None).map_err(|e| err("Azure CLI credential", e))?;
    Ok(c)
}

/// The HTTP client under the pipeline, trusting `ca_file`'s certificates too.
pub fn http_client(ca_file: Option<&PathBuf>) -> R<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(120));
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).map_err(|e| config_error(format!("HKE_AZURE_CA_FILE {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            config_error(format!(
                "HKE_AZURE_CA_FILE {}: not PEM certificates: {e}",
                path.display()
            ))
        })?;
        b = b.tls_certs_merge(certs);
    }
    b.build()
        .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))
}

impl Azure {
    /// Build the client and check the subscription is reachable with the
    /// credential (a wrong endpoint, subscription or login fails here).
    pub async fn connect(cfg: AzureConfig) -> R<Azure> {
        let subscription = cfg.subscription.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
            config_error(
                "no Azure subscription: set properties.providerProfile.subscriptionId, --subscription, or AZURE_SUBSCRIPTION_ID"
                    .into(),
            )
        })?;
        let endpoint = cfg.endpoint.clone().unwrap_or_else(|| PUBLIC_ENDPOINT.to_string());
        let base = Url::parse(&format!("{}/", endpoint.trim_end_matches('/')))
            .map_err(|e| config_error(format!("endpoint {endpoint}: {e}")))?;
        let scope = cfg
            .scope
            .clone()
            .unwrap_or_else(|| format!("{}/.default", endpoint.trim_end_matches('/')));
        let http = http_client(cfg.ca_file.as_ref())?;
        // Reach the endpoint first: a wrong URL or an untrusted certificate
        // is reported at once, not after the pipeline's retries.
        if let Err(e) = http.get(base.clone()).send().await {
            let mut cause = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                cause = format!("{cause}: {s}");
                src = s.source();
            }
            return Err(ProviderError::unreachable(format!(
                "cannot reach the Azure Resource Manager at {endpoint}: {cause}. Check --endpoint-url / \
                 HKE_AZURE_ENDPOINT_URL, and HKE_AZURE_CA_FILE when the endpoint uses a private CA"
            )));
        }
        let transport = Transport::new(Arc::new(http.clone()));
        let options = ClientOptions {
            transport: Some(transport.clone()),
            ..Default::default()
        };
        let cred = credential(&options)?;
        let mut arm = Arm::new(base, cred, scope, transport, http, cfg.poll);
        let (pacing, rate_scale) = pacing_of(&cfg);
        if !pacing {
            arm.pacer = hke_provider_api::Pacer::off();
        }
        arm.limits = arm::Limits::scaled(rate_scale, cfg.clock_scale);
        let az = Azure {
            arm,
            cluster: cfg.cluster.clone(),
            subscription: subscription.clone(),
            resource_group: cfg.resource_group.clone(),
            location: Mutex::new(cfg.location.clone()),
            outbound_pool: tokio::sync::Mutex::new(None),
            route_table: tokio::sync::Mutex::new(None),
            own_group: std::sync::atomic::AtomicBool::new(false),
            private_ips: Mutex::new(BTreeMap::new()),
            vms: arm::Watch::new(
                format!(
                    "/subscriptions/{subscription}/resourceGroups/{}/providers/Microsoft.Compute/virtualMachines",
                    cfg.resource_group
                ),
                API_COMPUTE,
            ),
        };
        let sub: Option<Value> = az
            .arm
            .get(&format!("/subscriptions/{subscription}"), API_SUBSCRIPTIONS)
            .await
            .map_err(|e| match e.class {
                // A refused credential stays one (main exits 3 for it).
                hke_provider_api::Class::Credentials => e,
                _ => ProviderError {
                    class: hke_provider_api::Class::Permanent,
                    ..e
                },
            })?;
        if sub.is_none() {
            return Err(config_error(format!(
                "subscription {subscription} not found for this identity: check providerProfile.subscriptionId / \
                 --subscription / AZURE_SUBSCRIPTION_ID and the account you are logged in with"
            )));
        }
        Ok(az)
    }

    /// (calls that waited for ARM's buckets, total time waited).
    pub fn paced(&self) -> (u64, Duration) {
        self.arm.pacer.waited()
    }

    fn rg_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.resource_group
        )
    }

    fn id(&self, rtype: &str, name: &str) -> String {
        format!("{}/providers/{rtype}/{name}", self.rg_id())
    }

    fn location(&self) -> R<String> {
        self.location
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .ok_or_else(|| config_error("no Azure location: set the model's location".into()))
    }

    fn tags(&self, req: &Request) -> Tags {
        tags::to_azure(&req.tags)
    }

    /// Tags say the resource belongs to this cluster.
    fn ours(&self, t: &Tags) -> bool {
        tags::from_azure(t).get(TAG_CLUSTER).map(String::as_str) == Some(self.cluster.as_str())
    }

    /// Read a resource for adoption: `Some` when it exists and succeeded,
    /// waiting while an earlier operation is still running on it.
    async fn existing(&self, path: &str, api: &str) -> R<Option<Observed>> {
        for _ in 0..720 {
            let Some(o) = self.arm.get::<Observed>(path, api).await? else {
                return Ok(None);
            };
            match o.provisioning_state() {
                None | Some("Succeeded") => return Ok(Some(o)),
                Some("Failed") | Some("Canceled") => return Ok(None),
                Some(_) => tokio::time::sleep(self.arm.poll).await,
            }
        }
        Ok(None)
    }

    /// Create a resource unless it exists (adopted, never PUT twice).
    /// Another cluster's resource of that name is an error.
    async fn ensure<B: serde::Serialize>(&self, path: &str, api: &str, body: &B) -> R<Observed> {
        self.ensure_for(path, api, body, |_| true, None).await
    }

    /// `ensure`, where `complete` says whether the PUT's own answer holds
    /// what the caller reads (else the resource is read once it is made).
    /// In a group of hke's own, the resource is PUT without a read first:
    /// the engine reads before it creates anything a previous run may have
    /// made, and a PUT of the same body is idempotent.
    async fn ensure_for<B: serde::Serialize>(
        &self,
        path: &str,
        api: &str,
        body: &B,
        complete: impl Fn(&Observed) -> bool,
        watch: Option<&arm::Watch>,
    ) -> R<Observed> {
        if !self.own_group.load(std::sync::atomic::Ordering::SeqCst) {
            if let Some(o) = self.existing(path, api).await? {
                if !o.tags.is_empty() && !self.ours(&o.tags) && tags::from_azure(&o.tags).contains_key(TAG_CLUSTER) {
                    return Err(ProviderError::permanent(
                        "Conflict",
                        format!("{path} exists and belongs to another cluster"),
                    ));
                }
                return Ok(o);
            }
        }
        let parse = |v: Value| {
            serde_json::from_value::<Observed>(v)
                .map_err(|e| ProviderError::permanent("InvalidResponse", format!("{path}: {e}")))
        };
        let o = parse(self.arm.put_watched(path, api, body, arm::Need::Done, watch).await?)?;
        if complete(&o) {
            return Ok(o);
        }
        match self.arm.get::<Observed>(path, api).await? {
            Some(o) => Ok(o),
            None => Err(ProviderError::permanent(
                "ResourceNotFound",
                format!("{path} was made but cannot be read"),
            )),
        }
    }

    // ---- kinds ------------------------------------------------------------

    async fn create_group(&self, req: &Request, location: &str) -> R<Outputs> {
        if let Ok(mut l) = self.location.lock() {
            *l = Some(location.to_string());
        }
        let path = self.rg_id();
        if let Some(o) = self.arm.get::<Observed>(&path, API_RESOURCES).await? {
            if let Some(l) = o.location.clone() {
                if let Ok(mut cur) = self.location.lock() {
                    *cur = Some(l);
                }
            }
            let owner = tags::from_azure(&o.tags).get(TAG_CLUSTER).cloned();
            return match owner {
                Some(c) if c == self.cluster => {
                    self.own_group.store(true, std::sync::atomic::Ordering::SeqCst);
                    Ok(outputs(&path, &[("owned", "true")]))
                }
                Some(c) => Err(ProviderError::permanent(
                    "Conflict",
                    format!("resource group {} belongs to cluster {c}", self.resource_group),
                )),
                // The user's own group: used, never tagged or deleted.
                None => Ok(outputs(&path, &[("owned", "false")])),
            };
        }
        let body = Resource::new(location, &self.tags(req), Empty {});
        self.arm.put(&path, API_RESOURCES, &body).await?;
        self.own_group.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(outputs(&path, &[("owned", "true")]))
    }

    async fn create_network(&self, req: &Request, cidr: &str) -> R<Outputs> {
        let path = self.id("Microsoft.Network/virtualNetworks", &req.name);
        let body = Resource::new(
            &self.location()?,
            &self.tags(req),
            VnetProps {
                address_space: AddressSpace {
                    address_prefixes: vec![cidr.into()],
                },
            },
        );
        self.ensure(&path, API_NETWORK, &body).await?;
        Ok(outputs(&path, &[]))
    }

    async fn create_subnet(&self, req: &Request, network: &str, cidr: &str) -> R<Outputs> {
        let path = format!("{network}/subnets/{}", req.name);
        let body = Child::new(
            &req.name,
            SubnetProps {
                address_prefix: cidr.into(),
                route_table: None,
            },
        );
        // Read first even in hke's own group: a PUT without the route table
        // kubenet bound to it would unbind it.
        if self.existing(&path, API_NETWORK).await?.is_none() {
            self.arm.put_for(&path, API_NETWORK, &body, arm::Need::Done).await?;
        }
        Ok(outputs(&path, &[]))
    }

    async fn create_firewall(&self, req: &Request, rules: &[Rule]) -> R<Outputs> {
        let path = self.id("Microsoft.Network/networkSecurityGroups", &req.name);
        let body = Resource::new(&self.location()?, &self.tags(req), nsg_props(rules));
        self.ensure(&path, API_NETWORK, &body).await?;
        Ok(outputs(&path, &[]))
    }

    async fn create_address(&self, req: &Request, dns_label: Option<&str>) -> R<Outputs> {
        let path = self.id("Microsoft.Network/publicIPAddresses", &req.name);
        let body = Resource::new(&self.location()?, &self.tags(req), public_ip_props(dns_label))
            .with_sku(Sku::named("Standard"));
        let labelled = dns_label.is_some();
        let o = self
            .ensure_for(
                &path,
                API_NETWORK,
                &body,
                |o| o.str_at("/ipAddress").is_some() && (!labelled || o.str_at("/dnsSettings/fqdn").is_some()),
                None,
            )
            .await?;
        Ok(address_outputs(&path, &o))
    }

    async fn create_load_balancer(&self, req: &Request, address: Option<&str>, port: u16) -> R<Outputs> {
        let address = address
            .ok_or_else(|| ProviderError::permanent("InvalidPlan", "an Azure load balancer needs a public IP"))?;
        let path = self.id("Microsoft.Network/loadBalancers", &req.name);
        let outbound = self.outbound_addresses(&req.name).await?;
        let body = Resource::new(
            &self.location()?,
            &self.tags(req),
            lb_props(|c, n| format!("{path}/{c}/{n}"), address, &outbound, port),
        )
        .with_sku(Sku::named("Standard"));
        self.ensure(&path, API_NETWORK, &body).await?;
        self.lb_outputs(&path, address).await
    }

    /// The extra outbound addresses the plan made for load balancer `lb`
    /// (named `snat::outbound_address_name`), in order: one list of the
    /// group's public IPs.
    async fn outbound_addresses(&self, lb: &str) -> R<Vec<String>> {
        let prefix = snat::outbound_address_prefix(lb).to_ascii_lowercase();
        let pips: Vec<Listed> = self
            .arm
            .list(
                &format!("{}/providers/Microsoft.Network/publicIPAddresses", self.rg_id()),
                API_NETWORK,
                None,
            )
            .await?;
        let mut found: Vec<(u64, String)> = pips
            .into_iter()
            .filter(|p| self.ours(&p.tags))
            .filter_map(|p| {
                let k = p.name.to_ascii_lowercase().strip_prefix(&prefix)?.parse::<u64>().ok()?;
                Some((k, p.id))
            })
            .collect();
        found.sort();
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    async fn lb_outputs(&self, path: &str, address_id: &str) -> R<Outputs> {
        let pip = self
            .arm
            .get::<Observed>(address_id, API_NETWORK)
            .await?
            .unwrap_or_default();
        let mut o = address_outputs(path, &pip);
        o.insert("address_id".into(), address_id.into());
        Ok(o)
    }

    async fn create_placement_group(&self, req: &Request) -> R<Outputs> {
        let path = self.id("Microsoft.Compute/availabilitySets", &req.name);
        let body = Resource::new(
            &self.location()?,
            &self.tags(req),
            AvailabilitySetProps {
                platform_fault_domain_count: 2,
                platform_update_domain_count: 5,
            },
        )
        .with_sku(Sku::named("Aligned"));
        self.ensure(&path, API_COMPUTE, &body).await?;
        Ok(outputs(&path, &[]))
    }

    /// The `nodes` backend pool (outbound rule) of the cluster's load
    /// balancer, looked up once.
    async fn outbound_pool(&self) -> R<Option<String>> {
        let mut cached = self.outbound_pool.lock().await;
        if cached.is_none() {
            let lbs: Vec<Listed> = self
                .arm
                .list(
                    &format!("{}/providers/Microsoft.Network/loadBalancers", self.rg_id()),
                    API_NETWORK,
                    None,
                )
                .await?;
            *cached = lbs
                .into_iter()
                .find(|l| self.ours(&l.tags))
                .map(|l| format!("{}/backendAddressPools/{POOL_NODES}", l.id));
        }
        Ok(cached.clone())
    }

    async fn create_machine(&self, req: &Request, m: &MachineSpec<String>) -> R<Outputs> {
        let MachineSpec {
            subnet,
            firewall,
            os,
            size,
            image,
            disk_gb,
            private_ip,
            placement,
            ip_forwarding,
            pod_ips,
            ..
        } = m;
        let location = self.location()?;
        let tags = self.tags(req);
        let nic_path = self.id("Microsoft.Network/networkInterfaces", &format!("{}-nic", req.name));
        let pools: Vec<String> = self.outbound_pool().await?.into_iter().collect();
        let nic = Resource::new(
            &location,
            &tags,
            nic_props(
                subnet,
                firewall,
                private_ip.as_deref(),
                *ip_forwarding,
                &pools,
                *pod_ips,
            ),
        );
        let nic_o = self
            .ensure_for(
                &nic_path,
                API_NETWORK,
                &nic,
                |o| o.str_at("/ipConfigurations/0/properties/privateIPAddress").is_some(),
                None,
            )
            .await?;
        let vm_path = self.id("Microsoft.Compute/virtualMachines", &req.name);
        let body = Resource::new(
            &location,
            &tags,
            vm_props(VmInput {
                name: &req.name,
                nic: &nic_path,
                os,
                size,
                image: &image.lookup,
                disk_gb: *disk_gb,
                placement: placement.as_deref(),
                login: req.login.as_ref(),
                user_data: req.user_data.as_deref().unwrap_or_default(),
            })?,
        );
        self.ensure_for(&vm_path, API_COMPUTE, &body, |_| true, Some(&self.vms))
            .await?;
        if *os == Os::Windows {
            let ext_path = format!("{vm_path}/extensions/{BOOTSTRAP_EXTENSION}");
            let ext = Resource::new(&location, &BTreeMap::new(), bootstrap_extension());
            self.ensure(&ext_path, API_COMPUTE, &ext).await?;
        }
        let ip = nic_o
            .str_at("/ipConfigurations/0/properties/privateIPAddress")
            .unwrap_or_default();
        // Not an empty one: a route through this machine would take it for
        // the next hop's address (`create_route` reads the NIC instead).
        if let (false, Ok(mut ips)) = (ip.is_empty(), self.private_ips.lock()) {
            ips.insert(vm_path.to_ascii_lowercase(), ip.clone());
        }
        Ok(outputs(&vm_path, &[(OUT_PRIVATE_IP, &ip), ("nic", &nic_path)]))
    }

    async fn read_machine(&self, name: &str) -> R<Option<Outputs>> {
        let vm_path = self.id("Microsoft.Compute/virtualMachines", name);
        let Some(vm) = self.existing(&vm_path, API_COMPUTE).await? else {
            return Ok(None);
        };
        let windows = vm
            .properties
            .pointer("/storageProfile/osDisk/osType")
            .and_then(|v| v.as_str())
            == Some("Windows")
            || vm.properties.pointer("/osProfile/windowsConfiguration").is_some();
        if windows
            && self
                .existing(&format!("{vm_path}/extensions/{BOOTSTRAP_EXTENSION}"), API_COMPUTE)
                .await?
                .is_none()
        {
            return Ok(None);
        }
        let nic_path = self.id("Microsoft.Network/networkInterfaces", &format!("{name}-nic"));
        let nic = self
            .arm
            .get::<Observed>(&nic_path, API_NETWORK)
            .await?
            .unwrap_or_default();
        let ip = nic
            .str_at("/ipConfigurations/0/properties/privateIPAddress")
            .unwrap_or_default();
        if let (false, Ok(mut ips)) = (ip.is_empty(), self.private_ips.lock()) {
            ips.insert(vm_path.to_ascii_lowercase(), ip.clone());
        }
        Ok(Some(outputs(&vm_path, &[(OUT_PRIVATE_IP, &ip), ("nic", &nic_path)])))
    }

    async fn create_machine_group(&self, req: &Request, g: &MachineGroupSpec<String>) -> R<Outputs> {
        let MachineGroupSpec {
            subnet,
            firewall,
            os,
            size,
            image,
            disk_gb,
            count,
            name_prefix,
            ip_forwarding,
            pod_ips,
            ..
        } = g;
        if *count > SCALE_SET_MAX {
            return Err(ProviderError::permanent(
                "InvalidParameter",
                format!(
                    "{}: {count} instances, over the {SCALE_SET_MAX} an Azure scale set holds; split the pool",
                    req.name
                ),
            ));
        }
        let path = self.id("Microsoft.Compute/virtualMachineScaleSets", &req.name);
        let pools: Vec<String> = self.outbound_pool().await?.into_iter().collect();
        let vm = vm_props(VmInput {
            name: name_prefix,
            nic: "",
            os,
            size,
            image: &image.lookup,
            disk_gb: *disk_gb,
            placement: None,
            login: req.login.as_ref(),
            user_data: req.user_data.as_deref().unwrap_or_default(),
        })?;
        let props = vmss_props(
            vm,
            name_prefix,
            ScaleSetNet {
                subnet,
                nsg: firewall,
                forwarding: *ip_forwarding,
                pools: &pools,
                pod_ips: *pod_ips,
            },
            os,
            *count,
        );
        let body = Resource::new(&self.location()?, &self.tags(req), props).with_sku(Sku {
            name: size.clone(),
            tier: Some("Standard".into()),
            capacity: Some(*count),
        });
        self.ensure(&path, API_COMPUTE, &body).await?;
        Ok(outputs(&path, &[("count", &count.to_string())]))
    }

    /// A master joins the API server's backend pool: its NIC's IP
    /// configuration gains the pool (read-modify-write of the NIC).
    async fn create_member(&self, lb: &str, machine: &str) -> R<Outputs> {
        let nic_path = nic_of(machine);
        let pool = format!("{lb}/backendAddressPools/{POOL_MASTERS}");
        let id = format!("{nic_path}|{pool}");
        let Some(mut nic) = self.arm.get::<Value>(&nic_path, API_NETWORK).await? else {
            return Err(ProviderError::not_found(format!("{nic_path} (the machine's NIC)")));
        };
        if nic_pools(&nic).iter().any(|p| p.eq_ignore_ascii_case(&pool)) {
            // A NIC whose update failed (a retryable operation failure) shows
            // the pool it did not get: PUT it again.
            if !failed(&nic) {
                return Ok(outputs(&id, &[]));
            }
        } else {
            edit_pools(&mut nic, |pools| pools.push(serde_json::json!({ "id": pool })));
        }
        self.arm
            .put_for(&nic_path, API_NETWORK, &strip_readonly(nic), arm::Need::Done)
            .await?;
        Ok(outputs(&id, &[]))
    }

    async fn read_member(&self, name_or_id: &str) -> R<Option<Outputs>> {
        let Some((nic_path, pool)) = name_or_id.split_once('|') else {
            return Ok(None);
        };
        let Some(nic) = self.arm.get::<Value>(nic_path, API_NETWORK).await? else {
            return Ok(None);
        };
        Ok(
            (!failed(&nic) && nic_pools(&nic).iter().any(|p| p.eq_ignore_ascii_case(pool)))
                .then(|| outputs(name_or_id, &[])),
        )
    }

    async fn delete_member(&self, id: &str) -> R<()> {
        let Some((nic_path, pool)) = id.split_once('|') else {
            return Err(ProviderError::not_found(id.to_string()));
        };
        let Some(mut nic) = self.arm.get::<Value>(nic_path, API_NETWORK).await? else {
            return Err(ProviderError::not_found(nic_path.to_string()));
        };
        if !nic_pools(&nic).iter().any(|p| p.eq_ignore_ascii_case(pool)) {
            return Err(ProviderError::not_found(id.to_string()));
        }
        edit_pools(&mut nic, |pools| {
            pools.retain(|p| !p["id"].as_str().unwrap_or_default().eq_ignore_ascii_case(pool))
        });
        self.arm
            .put_for(nic_path, API_NETWORK, &strip_readonly(nic), arm::Need::Done)
            .await?;
        Ok(())
    }

    /// kubenet: the VNet's route table, made and bound to every subnet on
    /// first use.
    async fn route_table_for(&self, req: &Request, network: &str) -> R<String> {
        let mut done = self.route_table.lock().await;
        if let Some(rt) = done.as_ref() {
            return Ok(rt.clone());
        }
        let vnet_name = network.rsplit('/').next().unwrap_or_default();
        let rt = self.id("Microsoft.Network/routeTables", &format!("{vnet_name}-routetable"));
        let body = Resource::new(
            &self.location()?,
            &self.tags(req),
            RouteTableProps {
                disable_bgp_route_propagation: false,
            },
        );
        self.ensure(&rt, API_NETWORK, &body).await?;
        let subnets: Vec<Value> = self.arm.list(&format!("{network}/subnets"), API_NETWORK, None).await?;
        for s in subnets {
            let bound = !failed(&s)
                && s.pointer("/properties/routeTable/id")
                    .and_then(|v| v.as_str())
                    .is_some_and(|id| id.eq_ignore_ascii_case(&rt));
            let Some(id) = s["id"].as_str().map(String::from) else {
                continue;
            };
            if !bound {
                let mut s = strip_readonly(s);
                s["properties"]["routeTable"] = serde_json::json!({ "id": rt });
                self.arm.put_for(&id, API_NETWORK, &s, arm::Need::Done).await?;
            }
        }
        *done = Some(rt.clone());
        Ok(rt)
    }

    async fn create_route(&self, req: &Request, network: &str, destination: &str, next_hop: &str) -> R<Outputs> {
        let rt = self.route_table_for(req, network).await?;
        let known = self
            .private_ips
            .lock()
            .ok()
            .and_then(|ips| ips.get(&next_hop.to_ascii_lowercase()).cloned());
        let ip = match known {
            Some(ip) => ip,
            None => {
                let nic = self
                    .arm
                    .get::<Observed>(&nic_of(next_hop), API_NETWORK)
                    .await?
                    .ok_or_else(|| ProviderError::not_found(format!("{} (next hop)", nic_of(next_hop))))?;
                nic.str_at("/ipConfigurations/0/properties/privateIPAddress")
                    .ok_or_else(|| ProviderError::transient("NoAddress", "the next hop has no private IP yet", None))?
            }
        };
        let path = format!("{rt}/routes/{}", req.name);
        let body = Child::new(
            &req.name,
            RouteProps {
                address_prefix: destination.into(),
                next_hop_type: "VirtualAppliance".into(),
                next_hop_ip_address: ip,
            },
        );
        self.ensure(&path, API_NETWORK, &body).await?;
        Ok(outputs(&path, &[]))
    }

    /// Every resource group and resource with the cluster tag (any cluster
    /// when `cluster` is `None`).
    async fn tagged(&self, cluster: Option<&str>) -> R<Vec<Found>> {
        let filter = tag_filter(cluster);
        let sub = format!("/subscriptions/{}", self.subscription);
        let mut found = Vec::new();
        let groups: Vec<Listed> = self
            .arm
            .list(&format!("{sub}/resourcegroups"), API_RESOURCES, Some(&filter))
            .await?;
        for g in groups {
            if let Some(tags) = self.listed_tags(&g, cluster).await? {
                found.push(Found {
                    kind: Kind::Group,
                    name: g.name,
                    id: g.id,
                    tags,
                });
            }
        }
        let resources: Vec<Listed> = self
            .arm
            .list(&format!("{sub}/resources"), API_RESOURCES, Some(&filter))
            .await?;
        for r in resources {
            let Some(kind) = r.kind.as_deref().and_then(kind_of_type) else {
                continue;
            };
            if let Some(tags) = self.listed_tags(&r, cluster).await? {
                found.push(Found {
                    kind,
                    name: r.name,
                    id: r.id,
                    tags,
                });
            }
        }
        Ok(found)
    }

    /// hke's tags of an item of a tag-filtered list, `None` when it is not
    /// the cluster's. "When you filter by a tag name and value, the tags for
    /// each resource are not returned in the results" (Resources - List,
    /// learn.microsoft.com/rest/api/resources/resources/list): for one
    /// cluster, ARM's filter already says the item carries `hke.io/cluster`
    /// with that value, so it is trusted and costs no call (tags that are
    /// returned must still agree). Listing by tag name only (the janitor),
    /// ARM returns the tags; where it does not, the item is read.
    async fn listed_tags(&self, item: &Listed, cluster: Option<&str>) -> R<Option<BTreeMap<String, String>>> {
        let mut t = tags::from_azure(&item.tags);
        match cluster {
            Some(c) => match t.get(TAG_CLUSTER) {
                Some(v) if v != c => Ok(None),
                Some(_) => Ok(Some(t)),
                None => {
                    t.insert(TAG_CLUSTER.to_string(), c.to_string());
                    Ok(Some(t))
                }
            },
            None => {
                if !t.contains_key(TAG_CLUSTER) {
                    t = match self.arm.get::<Observed>(&item.id, api_of(&item.id)).await? {
                        Some(o) => tags::from_azure(&o.tags),
                        None => return Ok(None),
                    };
                }
                Ok(t.contains_key(TAG_CLUSTER).then_some(t))
            }
        }
    }
}

/// `$filter` for resources tagged with the cluster tag (of any cluster
/// when `cluster` is `None`).
fn tag_filter(cluster: Option<&str>) -> String {
    let key = tags::key_to_azure(TAG_CLUSTER);
    match cluster {
        Some(c) => format!("tagName eq '{key}' and tagValue eq '{}'", c.replace('\'', "''")),
        None => format!("tagName eq '{key}'"),
    }
}

/// What each ARM type is to teardown. NICs and disks left by a machine that
/// never finished go with the machines (before the load balancer their NIC
/// references); the route table goes with the network, after the subnets
/// it is bound to.
pub fn kind_of_type(t: &str) -> Option<Kind> {
    Some(match t.to_ascii_lowercase().as_str() {
        "microsoft.network/virtualnetworks" | "microsoft.network/routetables" => Kind::Network,
        "microsoft.network/networksecuritygroups" => Kind::Firewall,
        "microsoft.network/publicipaddresses" => Kind::PublicAddress,
        "microsoft.network/loadbalancers" => Kind::LoadBalancer,
        "microsoft.compute/availabilitysets" => Kind::PlacementGroup,
        "microsoft.compute/virtualmachines" | "microsoft.network/networkinterfaces" | "microsoft.compute/disks" => {
            Kind::Machine
        }
        "microsoft.compute/virtualmachinescalesets" => Kind::MachineGroup,
        _ => return None,
    })
}

/// The api-version for an ARM id, by its resource type.
pub fn api_of(id: &str) -> &'static str {
    let lower = id.to_ascii_lowercase();
    if lower.contains("/providers/microsoft.compute/disks/") {
        API_DISKS
    } else if lower.contains("/providers/microsoft.compute/") {
        API_COMPUTE
    } else if lower.contains("/providers/microsoft.network/") {
        API_NETWORK
    } else {
        API_RESOURCES
    }
}

/// The NIC hke makes for a machine (`<vm>-nic` in the VM's group).
fn nic_of(machine_id: &str) -> String {
    let (rg, name) = machine_id
        .split_once("/providers/")
        .map(|(rg, rest)| (rg, rest.rsplit('/').next().unwrap_or_default()))
        .unwrap_or((machine_id, ""));
    format!("{rg}/providers/Microsoft.Network/networkInterfaces/{name}-nic")
}

/// The resource's last operation failed (`provisioningState` Failed): what
/// its body says was not applied.
fn failed(v: &Value) -> bool {
    matches!(
        v.pointer("/properties/provisioningState").and_then(|s| s.as_str()),
        Some("Failed") | Some("Canceled")
    )
}

fn nic_pools(nic: &Value) -> Vec<String> {
    nic.pointer("/properties/ipConfigurations/0/properties/loadBalancerBackendAddressPools")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|p| p["id"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn edit_pools(nic: &mut Value, f: impl FnOnce(&mut Vec<Value>)) {
    let cfg = &mut nic["properties"]["ipConfigurations"][0]["properties"];
    let mut pools: Vec<Value> = cfg["loadBalancerBackendAddressPools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    f(&mut pools);
    cfg["loadBalancerBackendAddressPools"] = Value::Array(pools);
}

/// A GET body made fit to PUT back: without read-only state.
fn strip_readonly(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("etag");
        if let Some(p) = o.get_mut("properties").and_then(|p| p.as_object_mut()) {
            p.remove("provisioningState");
            p.remove("resourceGuid");
        }
    }
    v
}

fn address_outputs(id: &str, pip: &Observed) -> Outputs {
    let ip = pip.str_at("/ipAddress").unwrap_or_default();
    let fqdn = pip.str_at("/dnsSettings/fqdn").unwrap_or_default();
    outputs(id, &[(OUT_ADDRESS, &ip), (OUT_DNS_NAME, &fqdn)])
}

#[async_trait]
impl Provider for Azure {
    fn cloud(&self) -> &str {
        "azure"
    }

    async fn create(&self, req: &Request) -> R<Outputs> {
        match &req.spec {
            Spec::Group { location, .. } => self.create_group(req, location).await,
            Spec::Network { cidr, .. } => self.create_network(req, cidr).await,
            Spec::Subnet { network, cidr } => self.create_subnet(req, network, cidr).await,
            Spec::Firewall { rules, .. } => self.create_firewall(req, rules).await,
            Spec::PublicAddress { dns_label, .. } => self.create_address(req, dns_label.as_deref()).await,
            Spec::LoadBalancer { address, port, .. } => self.create_load_balancer(req, address.as_deref(), *port).await,
            Spec::LbMember {
                load_balancer, machine, ..
            } => self.create_member(load_balancer, machine).await,
            Spec::Route {
                network,
                destination,
                next_hop,
            } => self.create_route(req, network, destination, next_hop).await,
            Spec::PlacementGroup { .. } => self.create_placement_group(req).await,
            Spec::Machine(m) => self.create_machine(req, m).await,
            Spec::MachineGroup(g) => self.create_machine_group(req, g).await,
        }
    }

    async fn read(&self, kind: Kind, name: &str) -> R<Option<Outputs>> {
        let simple = |t: &str, api: &'static str| (self.id(t, name), api);
        let (path, api) = match kind {
            Kind::Group => {
                let path = self.rg_id();
                return Ok(match self.arm.get::<Observed>(&path, API_RESOURCES).await? {
                    Some(o) => {
                        if let (Some(l), Ok(mut cur)) = (o.location.clone(), self.location.lock()) {
                            *cur = Some(l);
                        }
                        let owned = if self.ours(&o.tags) { "true" } else { "false" };
                        Some(outputs(&path, &[("owned", owned)]))
                    }
                    None => None,
                });
            }
            Kind::Network => simple("Microsoft.Network/virtualNetworks", API_NETWORK),
            Kind::Subnet => {
                // Subnets live in the cluster's VNet; find it by tag.
                let vnets: Vec<Listed> = self
                    .arm
                    .list(
                        &format!("{}/providers/Microsoft.Network/virtualNetworks", self.rg_id()),
                        API_NETWORK,
                        None,
                    )
                    .await?;
                let Some(vnet) = vnets.into_iter().find(|v| self.ours(&v.tags)) else {
                    return Ok(None);
                };
                (format!("{}/subnets/{name}", vnet.id), API_NETWORK)
            }
            Kind::Firewall => simple("Microsoft.Network/networkSecurityGroups", API_NETWORK),
            Kind::PublicAddress => {
                let (path, api) = simple("Microsoft.Network/publicIPAddresses", API_NETWORK);
                return Ok(self.existing(&path, api).await?.map(|o| address_outputs(&path, &o)));
            }
            Kind::LoadBalancer => {
                let (path, api) = simple("Microsoft.Network/loadBalancers", API_NETWORK);
                let Some(lb) = self.existing(&path, api).await? else {
                    return Ok(None);
                };
                let Some(address) = lb.str_at("/frontendIPConfigurations/0/properties/publicIPAddress/id") else {
                    return Ok(None);
                };
                return self.lb_outputs(&path, &address).await.map(Some);
            }
            Kind::PlacementGroup => simple("Microsoft.Compute/availabilitySets", API_COMPUTE),
            Kind::Machine => return self.read_machine(name).await,
            Kind::MachineGroup => simple("Microsoft.Compute/virtualMachineScaleSets", API_COMPUTE),
            // Members and routes are found by id (the engine's state); a
            // resumed run re-checks a member, which is read-before-write.
            Kind::LbMember => return self.read_member(name).await,
            Kind::Route => return Ok(None),
        };
        Ok(self.existing(&path, api).await?.map(|_| outputs(&path, &[])))
    }

    async fn delete(&self, kind: Kind, name: &str, id: Option<&str>) -> R<()> {
        let id = match id {
            Some(id) => id.to_string(),
            None => match self.read(kind, name).await? {
                Some(o) => o.get(OUT_ID).cloned().unwrap_or_default(),
                None => return Err(ProviderError::not_found(format!("{kind} {name}"))),
            },
        };
        match kind {
            Kind::LbMember => self.delete_member(&id).await,
            Kind::Group => {
                // Only a group hke made (it carries the cluster tag) goes.
                match self.arm.get::<Observed>(&id, API_RESOURCES).await? {
                    None => Err(ProviderError::not_found(id)),
                    Some(o) if self.ours(&o.tags) => self.arm.delete(&id, API_RESOURCES).await,
                    Some(_) => Err(ProviderError::not_found(format!("{id} (the user's group: kept)"))),
                }
            }
            _ => self.arm.delete(&id, api_of(&id)).await,
        }
    }

    async fn list(&self, cluster: &str) -> R<Vec<Found>> {
        self.tagged(Some(cluster)).await
    }

    async fn list_all(&self) -> R<Vec<Found>> {
        self.tagged(None).await
    }

    /// A group hke made goes in one delete, with everything in it.
    async fn delete_cluster(&self, cluster: &str) -> R<Vec<String>> {
        let groups: Vec<Listed> = self
            .arm
            .list(
                &format!("/subscriptions/{}/resourcegroups", self.subscription),
                API_RESOURCES,
                Some(&tag_filter(Some(cluster))),
            )
            .await?;
        let mut deleted = Vec::new();
        // The filter is the server's; tags it returns must agree with it.
        for g in groups
            .into_iter()
            .filter(|g| tags::from_azure(&g.tags).get(TAG_CLUSTER).is_none_or(|c| c == cluster))
        {
            match self.arm.delete(&g.id, API_RESOURCES).await {
                Ok(()) => deleted.push(g.id),
                Err(e) if e.class == hke_provider_api::Class::NotFound => deleted.push(g.id),
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// The serial console log from boot diagnostics.
    async fn console_output(&self, kind: Kind, name: &str, id: &str) -> R<Vec<(String, String)>> {
        if kind != Kind::Machine || !id.to_ascii_lowercase().contains("/virtualmachines/") {
            return Ok(Vec::new());
        }
        let v = self
            .arm
            .post(&format!("{id}/retrieveBootDiagnosticsData"), API_COMPUTE)
            .await?;
        let Some(uri) = v.get("serialConsoleLogBlobUri").and_then(|u| u.as_str()) else {
            return Ok(Vec::new());
        };
        let text = self
            .arm
            .http
            .get(uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ProviderError::transient("BootDiagnostics", format!("{name}: serial log: {e}"), None))?
            .text()
            .await
            .map_err(|e| ProviderError::transient("BootDiagnostics", format!("{name}: serial log: {e}"), None))?;
        Ok(vec![(name.to_string(), text)])
    }
}

#[cfg(test)]
mod tests;
