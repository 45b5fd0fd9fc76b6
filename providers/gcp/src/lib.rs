//! hke's GCP provider: the `Provider` trait over the Compute Engine API
//! (google-cloud-compute-v1, only the services hke calls), with Application
//! Default Credentials from google-cloud-auth.
//!
//! | hke resource       | Compute Engine                                                       |
//! |--------------------|----------------------------------------------------------------------|
//! | group              | nothing (a project is not created); checks the zone exists           |
//! | network            | VPC network, custom subnet mode; Cloud Router with Cloud NAT on two  |
//! |                    | addresses of its own (the nodes' way out)                            |
//! | subnet             | regional subnetwork of the node range                                |
//! | firewall           | one ingress firewall rule per hke rule, targeting the cluster's tag; |
//! |                    | a restricted `apiserver` rule also admits the NAT addresses; a rule  |
//! |                    | for the health check probes on the API port                          |
//! | public address     | regional external address                                            |
//! | load balancer      | regional HTTPS health check of `/readyz`, unmanaged instance group,  |
//! |                    | regional backend service (EXTERNAL, TCP) and forwarding rule (TCP,   |
//! |                    | the API port) on the address: a passthrough network load balancer    |
//! | lb member          | the instance in the instance group (`addInstances`)                  |
//! | route              | route to the node's pod range via the instance (kubenet)             |
//! | machine            | instance: image by family, machine type, pd-balanced boot disk of    |
//! |                    | the model's size, an external address (masters only), boot file in   |
//! |                    | metadata (`user-data` for cloud-init, `windows-startup-script-ps1`), |
//! |                    | `canIpForward` for kubenet, the firewall's network tag, labels       |
//! | machine group      | `count` instances named `<prefix>NNNNNN` (as a VM scale set names them) |
//!
//! Instances, addresses and forwarding rules carry hke's tags as labels
//! (`hke-io-cluster`); networks, subnetworks, firewall rules, routes,
//! routers, health checks, backend services, instance groups and the NAT
//! addresses (which go with their network) carry them in their description.
//! Every id is the resource's self link, so teardown needs no zone or region.
//!
//! Every insert and delete is followed through its zonal, regional or global
//! operation to DONE; an operation that ends in error is an error naming the
//! resource. The client's own retries are off: throttling (429, and 403
//! with reason `rateLimitExceeded`/`userRateLimitExceeded`, read from the
//! error's details since the message does not say it), 5xx and resources
//! still in use go through the engine's backoff, except within a resource
//! of several objects (the network and its NAT, the load balancer's parts,
//! the firewall's rules), whose steps are each retried in place, looked up
//! first and adopted on 409 (`retrying`, `ensure_part`). Polling an
//! operation tolerates those same errors; a 403 for a missing permission
//! stays a permanent error that names the credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use google_cloud_compute_v1::client::{
    Addresses, Firewalls, ForwardingRules, GlobalOperations, Images, InstanceGroups, Instances, Networks,
    RegionBackendServices, RegionHealthChecks, RegionOperations, Routers, Routes, Subnetworks, TargetPools,
    ZoneOperations, Zones,
};
use google_cloud_compute_v1::model::{
    self as gce, AccessConfig, Address, AttachedDisk, AttachedDiskInitializeParams, Backend, BackendService, Firewall,
    ForwardingRule, HTTPSHealthCheck, HealthCheck, Instance, InstanceGroup, InstanceGroupsAddInstancesRequest,
    InstanceGroupsRemoveInstancesRequest, InstanceReference, Metadata, Network, NetworkInterface, Operation, Route,
    Router, RouterNat, Subnetwork, Tags, TargetPoolsRemoveInstanceRequest,
};
use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::polling_error_policy::{PollingErrorPolicy, PollingErrorPolicyExt};
use google_cloud_gax::polling_state::PollingState;
use google_cloud_gax::retry_policy::NeverRetry;
use google_cloud_gax::retry_result::RetryResult;
use hke_provider_api::pace::gce as quota;
use hke_provider_api::resource::{OUT_ADDRESS, OUT_ID, OUT_PRIVATE_IP};
use hke_provider_api::{
    outputs, Found, Kind, Limit, MachineGroupSpec, MachineSpec, NotFoundExt, Os, Outputs, Pacer, Provider,
    ProviderError, Request, Rule, Spec, TAG_CLUSTER,
};

pub mod error;
pub mod tags;

use error::from_gax;

type R<T> = Result<T, ProviderError>;

/// The label naming a machine group's instances.
const LABEL_GROUP: &str = "hke-io-group";
/// The label with a machine group's size (a group is complete when it has
/// that many instances).
const LABEL_PARTS: &str = "hke-io-parts";
/// The tag (in descriptions) with the number of rules of a firewall.
const TAG_PARTS: &str = "hke.io/parts";
/// The quota groups of Compute Engine's rate quotas that hke's calls fall
/// in (legacy metrics of cloud.google.com/compute/docs/api-rate-limits),
/// each paced as its own bucket.
mod pace {
    /// Queries: inserts, deletes, `addInstance`/`removeInstance`.
    pub const MUTATIONS: &str = hke_provider_api::pace::gce::MUTATIONS;
    /// Read requests: `*.get`.
    pub const READS: &str = hke_provider_api::pace::gce::READS;
    /// List requests: `*.list`.
    pub const LISTS: &str = hke_provider_api::pace::gce::LISTS;
    /// Heavy-weight read requests (per project): `*.aggregatedList`.
    pub const AGGREGATED_LISTS: &str = "gce/aggregated-lists";
    /// Heavy-weight read requests (per region): `zoneOperations.wait`,
    /// `regionOperations.wait` (`globalOperations.wait` counted here too).
    pub const OPERATION_WAITS: &str = hke_provider_api::pace::gce::HEAVY_READS;
}

/// Tries of a read before its error counts.
const READ_ATTEMPTS: u32 = 8;
/// Instances inserted at once for a machine group: each insert is followed
/// through its operation's wait, so this many operations are in flight; the
/// pacer keeps the inserts under the mutation quota.
const GROUP_CONCURRENCY: usize = 50;

/// Where and for which cluster.
#[derive(Debug, Clone)]
pub struct GcpConfig {
    /// The cluster's name: the `hke-io-cluster` label.
    pub cluster: String,
    /// The project; required.
    pub project: Option<String>,
    /// The region (subnetwork, address, forwarding rule); derived from the
    /// zone when absent.
    pub region: Option<String>,
    /// The zone of the instances.
    pub zone: Option<String>,
    /// An endpoint override (an emulator, a private endpoint):
    /// `http://127.0.0.1:PORT` serves `/compute/v1/...`.
    pub endpoint: Option<String>,
    /// The first pause between reads of something hke waits for (an
    /// instance to run, a throttled wait to be retried); it doubles up to
    /// ten times this, at most 5 s.
    pub poll: Duration,
    /// How long to follow one operation or wait for an instance to run.
    pub wait: Duration,
    /// The rate quota of each group of methods (calls per window) that hke
    /// paces itself under: Compute Engine's default of 1,500 a minute.
    /// Tests and benchmarks scale it down.
    pub rate_quota: (u32, Duration),
    /// Pace calls under `rate_quota` (off only to show what an unpaced
    /// client meets).
    pub pacing: bool,
}

impl GcpConfig {
    pub fn new(cluster: &str) -> GcpConfig {
        GcpConfig {
            cluster: cluster.to_string(),
            project: None,
            region: None,
            zone: None,
            endpoint: None,
            poll: Duration::from_millis(500),
            wait: Duration::from_secs(900),
            rate_quota: (quota::PER_MINUTE, quota::WINDOW),
            pacing: true,
        }
    }
}

/// Whether following an operation rides out this error: throttling (429,
/// and the 403 `rateLimitExceeded` of an exceeded rate quota: operation
/// reads and waits have quotas of their own), 5xx and network errors (the
/// mutation was accepted: giving up would lose track of it).
fn ride_out(error: &GaxError) -> bool {
    matches!(error.http_status_code(), Some(429) | Some(500..=599))
        || error::rate_limited(error)
        || error.is_io()
        || error.is_connect()
        || error.is_timeout()
        || error
            .status()
            .is_some_and(|s| matches!(s.code.name(), "UNAVAILABLE" | "RESOURCE_EXHAUSTED" | "INTERNAL"))
}

/// The same rule as the client's polling error policy (for its own
/// pollers).
#[derive(Debug, Clone)]
struct PollThroughTransientErrors;

impl PollingErrorPolicy for PollThroughTransientErrors {
    fn on_error(&self, _state: &PollingState, error: GaxError) -> RetryResult {
        if ride_out(&error) {
            RetryResult::Continue(error)
        } else {
            RetryResult::Permanent(error)
        }
    }
}

/// A resource's scope, from its self link.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Global,
    Region(String),
    Zone(String),
}

/// A parsed self link: `…/projects/P/zones/Z/instances/N`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    project: String,
    scope: Scope,
    collection: String,
    name: String,
}

fn parse_link(link: &str) -> Option<Link> {
    let i = link.find("projects/")?;
    let parts: Vec<&str> = link[i..].split('/').collect();
    match parts.as_slice() {
        ["projects", p, "global", c, n] => Some(Link {
            project: p.to_string(),
            scope: Scope::Global,
            collection: c.to_string(),
            name: n.to_string(),
        }),
        ["projects", p, "regions", r, c, n] => Some(Link {
            project: p.to_string(),
            scope: Scope::Region(r.to_string()),
            collection: c.to_string(),
            name: n.to_string(),
        }),
        ["projects", p, "zones", z, c, n] => Some(Link {
            project: p.to_string(),
            scope: Scope::Zone(z.to_string()),
            collection: c.to_string(),
            name: n.to_string(),
        }),
        _ => None,
    }
}

/// The last path segment of a URL (`…/zones/us-central1-a` → `us-central1-a`).
fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// GCE's source range for "anywhere".
fn source_range(s: &str) -> String {
    match s {
        "*" | "Internet" | "any" => "0.0.0.0/0".to_string(),
        other => other.to_string(),
    }
}

/// An hke firewall rule as a GCE ingress rule's `allowed` entry.
fn allowed(rule: &Rule) -> gce::firewall::Allowed {
    let protocol = match rule.protocol.as_str() {
        "all" | "*" => "all",
        p => p,
    };
    let mut a = gce::firewall::Allowed::new().set_ip_protocol(protocol);
    if protocol != "all" && rule.ports != "*" {
        a = a.set_ports([rule.ports.clone()]);
    }
    a
}

/// Addresses of a network's Cloud NAT. "Each NAT IP address … has 64,512
/// available ports", and a VM gets 64 by default: one address serves 1,008
/// VMs (cloud.google.com/nat/docs/ports-and-addresses); two serve more
/// nodes than hke plans.
pub const NAT_ADDRESSES: u32 = 2;

/// The Cloud Router that carries a network's NAT.
pub fn nat_router_name(network: &str) -> String {
    let mut n = format!("{network}-nat");
    n.truncate(63);
    n.trim_end_matches('-').to_string()
}

/// The name of a network's NAT address `k`.
pub fn nat_address_name(network: &str, k: u32) -> String {
    let suffix = format!("-nat-{k}");
    let mut n = network.to_string();
    n.truncate(63 - suffix.len());
    format!("{}{suffix}", n.trim_end_matches('-'))
}

/// Where Compute Engine's health check probes come from, for an external
/// passthrough Network Load Balancer: "35.191.0.0/16, 209.85.152.0/22,
/// 209.85.204.0/22" (load-balancing/docs/firewall-rules, health check
/// ranges). The backends' firewall must admit them on the checked port.
pub const HEALTH_CHECK_RANGES: [&str; 3] = ["35.191.0.0/16", "209.85.152.0/22", "209.85.204.0/22"];

/// The firewall rule that admits the health check probes.
pub const HEALTH_CHECK_RULE: &str = "lb-health-checks";

/// A firewall rule's GCE name: the firewall's name and the rule's.
pub fn rule_name(firewall: &str, rule: &str) -> String {
    let mut n = format!("{firewall}-{rule}");
    n.truncate(63);
    n.trim_end_matches('-').to_string()
}

/// The name of a machine group's instance `i`: the prefix and six digits,
/// as a VM scale set names its instances.
pub fn group_instance_name(prefix: &str, i: u32) -> String {
    format!("{prefix}{i:06}")
}

/// The metadata key a boot file goes in.
pub fn metadata_key(os: &Os) -> &'static str {
    match os {
        Os::Linux => "user-data",
        Os::Windows => "windows-startup-script-ps1",
    }
}

/// The Compute Engine provider.
pub struct Gcp {
    cfg: GcpConfig,
    project: String,
    networks: Networks,
    subnetworks: Subnetworks,
    firewalls: Firewalls,
    routes: Routes,
    addresses: Addresses,
    forwarding_rules: ForwardingRules,
    /// Target pools: only to tear down an older hke's load balancers.
    target_pools: TargetPools,
    region_health_checks: RegionHealthChecks,
    region_backend_services: RegionBackendServices,
    instance_groups: InstanceGroups,
    routers: Routers,
    instances: Instances,
    images: Images,
    zones: Zones,
    zone_operations: ZoneOperations,
    region_operations: RegionOperations,
    global_operations: GlobalOperations,
    /// Client-side token buckets, one per quota group, each of `quota`.
    pacer: Pacer,
    quota: Limit,
    /// Image family → the image it resolved to (the same image for every
    /// machine of a deploy). Held across the lookup, so that machines
    /// created at once look a family up once.
    image_cache: tokio::sync::Mutex<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Gcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gcp")
            .field("project", &self.project)
            .field("region", &self.cfg.region)
            .field("zone", &self.cfg.zone)
            .finish()
    }
}

/// Whether Application Default Credentials are configured by file (the
/// variables google-cloud-auth itself reads for them).
#[allow(clippy::disallowed_methods)]
fn adc_file_present() -> bool {
    if std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").is_some() {
        return true;
    }
    std::env::var_os("HOME")
        .map(|h| std::path::PathBuf::from(h).join(".config/gcloud/application_default_credentials.json"))
        .is_some_and(|p| p.is_file())
}

impl Gcp {
    /// Build the clients and check that the project and zone answer.
    ///
    /// Credentials are Application Default Credentials. With an endpoint
    /// override and no credentials file, requests go unauthenticated (an
    /// emulator), and never to the metadata server.
    pub async fn connect(cfg: GcpConfig) -> R<Gcp> {
        let project = cfg.project.clone().filter(|p| !p.is_empty()).ok_or_else(|| {
            ProviderError::permanent(
                "NoProject",
                "GCP needs a project: set properties.providerProfile.project, --project or HKE_GCP_PROJECT",
            )
        })?;
        let mut cfg = cfg;
        if cfg.region.is_none() {
            cfg.region = cfg
                .zone
                .as_deref()
                .and_then(|z| z.rsplit_once('-'))
                .map(|(r, _)| r.to_string());
        }
        let creds = if cfg.endpoint.is_some() && !adc_file_present() {
            google_cloud_auth::credentials::anonymous::Builder::new().build()
        } else {
            google_cloud_auth::credentials::Builder::default()
                .build()
                .map_err(|e| {
                    ProviderError::credentials(
                        "Credentials",
                        format!(
                            "no usable Google credentials ({e}); set GOOGLE_APPLICATION_CREDENTIALS or run \
                         `gcloud auth application-default login`"
                        ),
                    )
                })?
        };
        let (poll, wait) = (cfg.poll, cfg.wait);
        let backoff = move || {
            ExponentialBackoffBuilder::new()
                .with_initial_delay(poll)
                .with_maximum_delay(Duration::from_secs(5).max(poll))
                .with_scaling(1.5)
                .clamp()
        };
        let polling = move || PollThroughTransientErrors.with_time_limit(wait);
        macro_rules! client {
            ($t:ty) => {{
                let mut b = <$t>::builder()
                    .with_credentials(creds.clone())
                    .with_retry_policy(NeverRetry)
                    .with_polling_backoff_policy(backoff())
                    .with_polling_error_policy(polling());
                if let Some(ep) = &cfg.endpoint {
                    b = b.with_endpoint(ep.clone());
                }
                b.build().await.map_err(|e| {
                    ProviderError::permanent(
                        "ClientBuild",
                        format!("cannot set up the Compute Engine client: {e}"),
                    )
                })?
            }};
        }
        let gcp = Gcp {
            project,
            networks: client!(Networks),
            subnetworks: client!(Subnetworks),
            firewalls: client!(Firewalls),
            routes: client!(Routes),
            addresses: client!(Addresses),
            forwarding_rules: client!(ForwardingRules),
            target_pools: client!(TargetPools),
            region_health_checks: client!(RegionHealthChecks),
            region_backend_services: client!(RegionBackendServices),
            instance_groups: client!(InstanceGroups),
            routers: client!(Routers),
            instances: client!(Instances),
            images: client!(Images),
            zones: client!(Zones),
            zone_operations: client!(ZoneOperations),
            region_operations: client!(RegionOperations),
            global_operations: client!(GlobalOperations),
            pacer: if cfg.pacing { Pacer::new() } else { Pacer::off() },
            quota: quota::limit(cfg.rate_quota.0, cfg.rate_quota.1),
            image_cache: tokio::sync::Mutex::new(BTreeMap::new()),
            cfg,
        };
        gcp.preflight().await?;
        Ok(gcp)
    }

    /// A wrong project, zone, endpoint or credential fails here, before
    /// anything is created, and is not retried.
    async fn preflight(&self) -> R<()> {
        let Some(zone) = self.cfg.zone.clone() else {
            return Ok(());
        };
        let what = format!("check zone {zone} of project {}", self.project);
        let r = self
            .reading(pace::READS, || async {
                self.zones
                    .get()
                    .set_project(&self.project)
                    .set_zone(&zone)
                    .send()
                    .await
                    .map_err(|e| from_gax(&what, e))
            })
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(mut err) => {
                err.class = hke_provider_api::Class::Permanent;
                Err(err)
            }
        }
    }

    /// A read (get or list page), retried through throttling, 5xx and
    /// network errors: a listing makes many calls, and one refused call
    /// must not fail the whole sweep.
    async fn reading<T, F, Fut>(&self, group: &str, mut call: F) -> R<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = R<T>>,
    {
        let mut pause = self.cfg.poll;
        let mut attempt = 0;
        loop {
            self.pace(group).await;
            match call().await {
                Err(e) if e.is_transient() && attempt < READ_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(e.retry_after().unwrap_or(pause)).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                other => return other,
            }
        }
    }

    /// Every item of a paged listing; `page(token)` fetches one page as
    /// (items, next page token). Each page is retried like any read.
    async fn all_pages<T, F, Fut>(&self, what: &str, group: &str, mut page: F) -> R<Vec<T>>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), GaxError>>,
    {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let (items, next) = self
                .reading(group, || {
                    let fetch = page(token.clone());
                    async move { fetch.await.map_err(|e| from_gax(what, e)) }
                })
                .await?;
            out.extend(items);
            match next.filter(|t| !t.is_empty()) {
                Some(t) => token = t,
                None => return Ok(out),
            }
        }
    }

    fn region(&self) -> R<&str> {
        self.cfg.region.as_deref().ok_or_else(|| {
            ProviderError::permanent("NoRegion", "GCP needs a region: set providerProfile.region or --region")
        })
    }

    fn zone(&self) -> R<&str> {
        self.cfg
            .zone
            .as_deref()
            .ok_or_else(|| ProviderError::permanent("NoZone", "GCP needs a zone: set providerProfile.zone or --zone"))
    }

    /// The longest pause between reads of something hke waits for: 5 s at
    /// the default first pause of 0.5 s (ten first pauses, so that a scaled
    /// down poll, as in tests and benchmarks, scales it too).
    fn max_pause(&self) -> Duration {
        (self.cfg.poll * 10).min(Duration::from_secs(5))
    }

    /// Wait for a token of a quota group's bucket (see `hke_provider_api::pace::gce`).
    async fn pace(&self, group: &str) {
        self.pacer.acquire(group, self.quota, 1).await;
    }

    /// Send an insert, delete or other mutation (`send`, not yet started),
    /// paced as a mutation, and follow its operation to DONE.
    async fn run<F>(&self, what: &str, send: F) -> R<()>
    where
        F: std::future::Future<Output = Result<Operation, GaxError>>,
    {
        self.pace(pace::MUTATIONS).await;
        self.finish(what, send.await).await
    }

    /// `run` for an insert whose resource's self link is all the caller
    /// needs: the operation's target link, or `None` when the resource
    /// existed already (409: the caller reads it).
    async fn run_linked<F>(&self, what: &str, send: F) -> R<Option<String>>
    where
        F: std::future::Future<Output = Result<Operation, GaxError>>,
    {
        self.pace(pace::MUTATIONS).await;
        let op = match send.await.map_err(|e| from_gax(what, e)) {
            Ok(op) => op,
            Err(e) if e.class == hke_provider_api::Class::AlreadyExists => return Ok(None),
            Err(e) => return Err(e),
        };
        let op = self.follow(what, op).await?;
        match Self::check(what, &op) {
            Ok(()) => Ok(op.target_link.filter(|l| !l.is_empty())),
            Err(e) if e.class == hke_provider_api::Class::AlreadyExists => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Retry one step of a multi-step create or delete through transient
    /// errors (throttling, 5xx, a resource still in use), as `reading` does
    /// for reads: the steps are idempotent (an insert already made answers
    /// 409 and is adopted, a delete already done 404), and a resource of
    /// many calls would otherwise seldom get through a throttled minute in
    /// one go.
    async fn retrying<T, F, Fut>(&self, mut step: F) -> R<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = R<T>>,
    {
        let mut pause = self.cfg.poll;
        let mut attempt = 0;
        loop {
            match step().await {
                Err(e) if e.is_transient() && attempt < READ_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(e.retry_after().unwrap_or(pause)).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                other => return other,
            }
        }
    }

    /// One object of a multi-step create: its self link, looked up first
    /// (so that a resumed create inserts nothing twice), else inserted and
    /// followed to DONE.
    async fn ensure_part<G, GF, I, IF>(&self, what: &str, get: G, insert: I) -> R<String>
    where
        G: Fn() -> GF,
        GF: std::future::Future<Output = R<Option<String>>>,
        I: Fn() -> IF,
        IF: std::future::Future<Output = Result<Operation, GaxError>>,
    {
        if let Some(link) = self.retrying(&get).await? {
            return Ok(link);
        }
        let inserted = self.retrying(|| self.run_linked(what, insert())).await?;
        match inserted {
            Some(link) => Ok(link),
            None => self.retrying(&get).await?.ok_or_else(|| gone(what, "(inserted)")),
        }
    }

    /// A get's self link, or `None` when GCE answers 404.
    async fn link_of<T, F>(&self, what: String, get: F, link: fn(&T) -> Option<String>) -> R<Option<String>>
    where
        F: std::future::Future<Output = Result<T, GaxError>>,
    {
        self.pace(pace::READS).await;
        match get.await {
            Ok(v) => Ok(link(&v)),
            Err(e) => Err(from_gax(&what, e)).none_if_not_found(),
        }
    }

    /// Follow an accepted operation to DONE; an operation that ended in
    /// error is an error about `what`.
    async fn finish(&self, what: &str, r: Result<Operation, GaxError>) -> R<()> {
        let op = r.map_err(|e| from_gax(what, e))?;
        let op = self.follow(what, op).await?;
        Self::check(what, &op)
    }

    /// Wait for an operation with its scope's `operations.wait`, which
    /// answers when the operation is DONE or close to a two-minute deadline
    /// (and so costs one call where polling `operations.get` costs many);
    /// called again until DONE. Throttling, 5xx and network errors are
    /// ridden out (the mutation was accepted: giving up would lose track of
    /// it), with a growing pause.
    async fn follow(&self, what: &str, mut op: Operation) -> R<Operation> {
        let started = Instant::now();
        let mut pause = self.cfg.poll;
        loop {
            if op.status == Some(gce::operation::Status::Done) {
                return Ok(op);
            }
            if started.elapsed() > self.cfg.wait {
                return Err(ProviderError::transient(
                    "Timeout",
                    format!("{what}: the operation is not done after {:?}", self.cfg.wait),
                    None,
                ));
            }
            let name = op.name.clone().unwrap_or_default();
            let link = op.self_link.as_deref().and_then(parse_link);
            let project = link
                .as_ref()
                .map(|l| l.project.clone())
                .unwrap_or_else(|| self.project.clone());
            let scope = match (&link, &op.zone, &op.region) {
                (Some(l), _, _) => l.scope.clone(),
                (None, Some(z), _) => Scope::Zone(last_segment(z).to_string()),
                (None, None, Some(r)) => Scope::Region(last_segment(r).to_string()),
                _ => Scope::Global,
            };
            self.pace(pace::OPERATION_WAITS).await;
            let r = match &scope {
                Scope::Zone(z) => {
                    self.zone_operations
                        .wait()
                        .set_project(&project)
                        .set_zone(z)
                        .set_operation(&name)
                        .send()
                        .await
                }
                Scope::Region(r) => {
                    self.region_operations
                        .wait()
                        .set_project(&project)
                        .set_region(r)
                        .set_operation(&name)
                        .send()
                        .await
                }
                Scope::Global => {
                    self.global_operations
                        .wait()
                        .set_project(&project)
                        .set_operation(&name)
                        .send()
                        .await
                }
            };
            match r {
                Ok(next) => {
                    op = next;
                    pause = self.cfg.poll;
                }
                Err(e) if ride_out(&e) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.max_pause());
                }
                Err(e) => return Err(from_gax(&format!("{what}: wait for operation {name}"), e)),
            }
        }
    }

    /// A finished operation's error, if it ended in one.
    fn check(what: &str, op: &Operation) -> R<()> {
        let first = op.error.as_ref().and_then(|e| e.errors.first());
        if first.is_none() && op.http_error_status_code.is_none() {
            return Ok(());
        }
        let code = first.and_then(|e| e.code.clone());
        let message = first
            .and_then(|e| e.message.clone())
            .or_else(|| op.http_error_message.clone())
            .unwrap_or_else(|| "the operation failed".into());
        let status = op.http_error_status_code.and_then(|s| u16::try_from(s).ok());
        let class = error::classify(status, &format!("{} {message}", code.clone().unwrap_or_default()));
        Err(ProviderError {
            class,
            left_behind: hke_provider_api::LeftBehind::Nothing,
            code,
            message: format!("{what}: {message}"),
        })
    }

    /// The image of a family (`windows-cloud/windows-2022-core`): the newest
    /// one that is not deprecated, resolved once per deploy.
    async fn image(&self, lookup: &BTreeMap<String, String>) -> R<String> {
        if let Some(link) = lookup.get("image") {
            return Ok(link.clone());
        }
        let (Some(project), Some(family)) = (lookup.get("project"), lookup.get("family")) else {
            return Err(ProviderError::permanent(
                "NoImage",
                format!("the image lookup {lookup:?} names no project and family"),
            ));
        };
        let key = format!("{project}/{family}");
        let mut cache = self.image_cache.lock().await;
        if let Some(link) = cache.get(&key) {
            return Ok(link.clone());
        }
        self.pace(pace::READS).await;
        let image = self
            .images
            .get_from_family()
            .set_project(project)
            .set_family(family)
            .send()
            .await
            .map_err(|e| from_gax(&format!("find the image of family {family} in project {project}"), e))?;
        let link = image
            .self_link
            .unwrap_or_else(|| format!("projects/{project}/global/images/family/{family}"));
        cache.insert(key, link.clone());
        Ok(link)
    }

    // ---- networks ----

    /// The network's self link, if it exists.
    async fn network_link(&self, name: &str) -> R<Option<String>> {
        self.pace(pace::READS).await;
        match self
            .networks
            .get()
            .set_project(&self.project)
            .set_network(name)
            .send()
            .await
        {
            Ok(n) => Ok(Some(n.self_link.unwrap_or_default())),
            Err(e) => Err(from_gax(&format!("read network {name}"), e)).none_if_not_found(),
        }
    }

    /// Complete when the network and its NAT router (made last) exist.
    async fn read_network(&self, name: &str) -> R<Option<Outputs>> {
        let Some(link) = self.network_link(name).await? else {
            return Ok(None);
        };
        let region = self.region()?;
        let router = nat_router_name(name);
        self.pace(pace::READS).await;
        match self
            .routers
            .get()
            .set_project(&self.project)
            .set_region(region)
            .set_router(&router)
            .send()
            .await
        {
            Ok(_) => Ok(Some(outputs(&link, &[]))),
            Err(e) => Err(from_gax(&format!("read router {router}"), e)).none_if_not_found(),
        }
    }

    /// The VPC network, then the nodes' way out: Cloud NAT on a Cloud
    /// Router, with addresses of its own. Only the masters have external
    /// addresses; every other machine leaves through the NAT ("Public NAT
    /// … lets VMs without external IP addresses" reach the internet,
    /// cloud.google.com/nat/docs/overview), so a node's packet to the API
    /// server's public address comes from one of these addresses, which
    /// the `apiserver` firewall rule admits whatever `apiServerSourceRanges`
    /// says (see `create_firewall`). A VM with an external address would
    /// reach it from that address instead ("External passthrough Network
    /// Load Balancers can receive traffic from … Google Cloud VMs with
    /// external IPs … VMs that have internet access through Cloud NAT",
    /// load-balancing/docs/network/networklb-backend-service), one per node
    /// and unknown until the node exists. Masters reach their own load
    /// balancer locally: the guest environment routes a forwarding rule's
    /// address to each of its backends.
    async fn create_network(&self, req: &Request) -> R<Outputs> {
        let name = req.name.as_str();
        let description = tags::description(&req.tags);
        let link = self
            .ensure_part(
                &format!("create network {name}"),
                || self.network_link(name),
                || {
                    let body = Network::new()
                        .set_name(name)
                        .set_auto_create_subnetworks(false)
                        .set_description(description.clone());
                    self.networks.insert().set_project(&self.project).set_body(body).send()
                },
            )
            .await?;
        let region = self.region()?.to_string();
        let mut nat_ips = Vec::new();
        for k in 0..NAT_ADDRESSES {
            let address = nat_address_name(name, k);
            // No labels: the tag sweep must not take an address the router
            // still uses; it goes with the network.
            nat_ips.push(
                self.ensure_part(
                    &format!("create address {address}"),
                    || async { Ok(self.read_address(&address).await?.and_then(|o| o.get(OUT_ID).cloned())) },
                    || {
                        let body = Address::new()
                            .set_name(&address)
                            .set_address_type(gce::address::AddressType::External)
                            .set_description(description.clone());
                        self.addresses
                            .insert()
                            .set_project(&self.project)
                            .set_region(&region)
                            .set_body(body)
                            .send()
                    },
                )
                .await?,
            );
        }
        let router = nat_router_name(name);
        self.ensure_part(
            &format!("create router {router}"),
            || {
                self.link_of(
                    format!("read router {router}"),
                    self.routers
                        .get()
                        .set_project(&self.project)
                        .set_region(&region)
                        .set_router(&router)
                        .send(),
                    |r: &Router| r.self_link.clone(),
                )
            },
            || {
                let body = Router::new()
                    .set_name(&router)
                    .set_network(&link)
                    .set_nats([RouterNat::new()
                        .set_name("nodes")
                        .set_nat_ip_allocate_option(gce::router_nat::NatIpAllocateOption::ManualOnly)
                        .set_nat_ips(nat_ips.clone())
                        .set_source_subnetwork_ip_ranges_to_nat(
                            gce::router_nat::SourceSubnetworkIpRangesToNat::AllSubnetworksAllIpRanges,
                        )])
                    .set_description(description.clone());
                self.routers
                    .insert()
                    .set_project(&self.project)
                    .set_region(&region)
                    .set_body(body)
                    .send()
            },
        )
        .await?;
        Ok(outputs(&link, &[]))
    }

    /// The addresses the NAT of a network (by its self link) gives the
    /// nodes' packets.
    async fn nat_ips(&self, network: &str) -> R<Vec<String>> {
        let name = parse_link(network)
            .map(|l| l.name)
            .unwrap_or_else(|| network.to_string());
        let mut ips = Vec::new();
        for k in 0..NAT_ADDRESSES {
            let a = nat_address_name(&name, k);
            let found = self
                .retrying(|| self.read_address(&a))
                .await?
                .and_then(|o| o.get(OUT_ADDRESS).cloned())
                .ok_or_else(|| ProviderError::not_found(format!("NAT address {a}")))?;
            ips.push(found);
        }
        Ok(ips)
    }

    /// The router (it uses the network and the addresses), the NAT
    /// addresses, then the network.
    async fn delete_network(&self, id: &str) -> R<()> {
        let Some(l) = parse_link(id) else {
            return self.delete_link(id).await;
        };
        let region = match self.cfg.region.clone() {
            Some(r) => Some(r),
            None => self.nat_region(&l.name).await?,
        };
        if let Some(region) = region {
            let router = format!(
                "projects/{}/regions/{region}/routers/{}",
                l.project,
                nat_router_name(&l.name)
            );
            self.retrying(|| self.delete_link(&router)).await.done_if_not_found()?;
            for k in 0..NAT_ADDRESSES {
                let a = format!(
                    "projects/{}/regions/{region}/addresses/{}",
                    l.project,
                    nat_address_name(&l.name, k)
                );
                self.retrying(|| self.delete_link(&a)).await.done_if_not_found()?;
            }
        }
        self.delete_link(id).await
    }

    /// The region of a network's NAT router or addresses, for a provider
    /// that was given none (the janitor's): from the project's lists.
    async fn nat_region(&self, network: &str) -> R<Option<String>> {
        let router = nat_router_name(network);
        let routers = self
            .all_pages("list routers", pace::AGGREGATED_LISTS, |token| async move {
                let p = self
                    .routers
                    .aggregated_list()
                    .set_project(&self.project)
                    .set_page_token(token)
                    .send()
                    .await?;
                Ok((
                    p.items.into_values().flat_map(|s| s.routers).collect(),
                    p.next_page_token,
                ))
            })
            .await?;
        let region_of = |link: Option<&str>| {
            link.and_then(parse_link).and_then(|l| match l.scope {
                Scope::Region(r) => Some(r),
                _ => None,
            })
        };
        if let Some(r) = routers.iter().find(|r| r.name.as_deref() == Some(router.as_str())) {
            return Ok(region_of(r.self_link.as_deref()));
        }
        let address = nat_address_name(network, 0);
        let addresses = self
            .all_pages("list addresses", pace::AGGREGATED_LISTS, |token| async move {
                let p = self
                    .addresses
                    .aggregated_list()
                    .set_project(&self.project)
                    .set_page_token(token)
                    .send()
                    .await?;
                Ok((
                    p.items.into_values().flat_map(|s| s.addresses).collect(),
                    p.next_page_token,
                ))
            })
            .await?;
        Ok(addresses
            .iter()
            .find(|a| a.name.as_deref() == Some(address.as_str()))
            .and_then(|a| region_of(a.self_link.as_deref())))
    }

    async fn read_subnet(&self, name: &str) -> R<Option<Outputs>> {
        let region = self.region()?;
        self.pace(pace::READS).await;
        let r = self
            .subnetworks
            .get()
            .set_project(&self.project)
            .set_region(region)
            .set_subnetwork(name)
            .send()
            .await;
        match r {
            Ok(s) => Ok(Some(outputs(&s.self_link.unwrap_or_default(), &[]))),
            Err(e) => Err(from_gax(&format!("read subnetwork {name}"), e)).none_if_not_found(),
        }
    }

    async fn create_subnet(&self, req: &Request, network: &str, cidr: &str) -> R<Outputs> {
        let region = self.region()?.to_string();
        let body = Subnetwork::new()
            .set_name(&req.name)
            .set_network(network)
            .set_ip_cidr_range(cidr)
            .set_description(tags::description(&req.tags));
        let r = self
            .subnetworks
            .insert()
            .set_project(&self.project)
            .set_region(&region)
            .set_body(body)
            .send();
        if let Some(link) = self.run_linked(&format!("create subnetwork {}", req.name), r).await? {
            return Ok(outputs(&link, &[]));
        }
        self.read_subnet(&req.name)
            .await?
            .ok_or_else(|| gone("subnetwork", &req.name))
    }

    // ---- firewall ----

    /// The cluster's firewall rules (name → rule), by their description.
    async fn firewall_rules(&self, cluster: Option<&str>) -> R<Vec<Firewall>> {
        let all = self
            .all_pages("list firewall rules", pace::LISTS, |token| async move {
                let p = self
                    .firewalls
                    .list()
                    .set_project(&self.project)
                    .set_page_token(token)
                    .send()
                    .await?;
                Ok((p.items, p.next_page_token))
            })
            .await?;
        Ok(all
            .into_iter()
            .filter(|f| owned(f.description.as_deref(), cluster))
            .collect())
    }

    /// Complete when every rule exists: each rule's description says how
    /// many the firewall has (`hke.io/parts`).
    async fn read_firewall(&self, name: &str) -> R<Option<Outputs>> {
        let existing: Vec<Firewall> = self
            .firewall_rules(Some(&self.cfg.cluster))
            .await?
            .into_iter()
            .filter(|f| f.target_tags.iter().any(|t| t == name))
            .collect();
        let parts: Option<usize> = existing
            .first()
            .and_then(|f| tags::from_description(f.description.as_deref()).get(TAG_PARTS).cloned())
            .and_then(|p| p.parse().ok());
        Ok((parts == Some(existing.len())).then(|| outputs(name, &[])))
    }

    async fn create_firewall(&self, req: &Request, network: &str, rules: &[Rule]) -> R<Outputs> {
        let existing: Vec<String> = self
            .firewall_rules(Some(&self.cfg.cluster))
            .await?
            .into_iter()
            .filter_map(|f| f.name)
            .collect();
        let rules = self.with_own_sources(network, rules).await?;
        let rules = rules.as_slice();
        let mut marked = req.tags.clone();
        marked.insert(TAG_PARTS.into(), rules.len().to_string());
        // The rules are independent: inserted at once, each followed to DONE.
        let inserts = rules
            .iter()
            .map(|rule| (rule_name(&req.name, &rule.name), rule))
            .filter(|(name, _)| !existing.contains(name))
            .map(|(name, rule)| {
                let body = Firewall::new()
                    .set_name(&name)
                    .set_network(network)
                    .set_direction(gce::firewall::Direction::Ingress)
                    .set_priority(1000)
                    .set_source_ranges(rule.sources.iter().map(|s| source_range(s)))
                    .set_allowed([allowed(rule)])
                    .set_target_tags([req.name.clone()])
                    .set_description(tags::description(&marked));
                async move {
                    self.retrying(|| async {
                        let r = self
                            .firewalls
                            .insert()
                            .set_project(&self.project)
                            .set_body(body.clone())
                            .send();
                        adopt(self.run(&format!("create firewall rule {name}"), r).await)
                    })
                    .await
                }
            });
        for r in futures_util::future::join_all(inserts).await {
            r?;
        }
        Ok(outputs(&req.name, &[]))
    }

    /// The plan's rules as GCE needs them: a restricted `apiserver` rule
    /// also admits the nodes' NAT addresses (see `create_network`), and the
    /// health check probes reach the API port (`HEALTH_CHECK_RANGES`).
    async fn with_own_sources(&self, network: &str, rules: &[Rule]) -> R<Vec<Rule>> {
        let mut out = rules.to_vec();
        let Some(api) = out.iter_mut().find(|r| r.name == "apiserver") else {
            return Ok(out);
        };
        let open = api.sources.iter().any(|s| source_range(s) == "0.0.0.0/0");
        if !open {
            for ip in self.nat_ips(network).await? {
                let range = format!("{ip}/32");
                if !api.sources.contains(&range) {
                    api.sources.push(range);
                }
            }
        }
        let probes = Rule {
            name: HEALTH_CHECK_RULE.into(),
            protocol: "tcp".into(),
            ports: api.ports.clone(),
            sources: HEALTH_CHECK_RANGES.iter().map(|r| r.to_string()).collect(),
        };
        out.push(probes);
        Ok(out)
    }

    /// Delete the firewall rules of a tag (the firewall's id), or one rule
    /// by its self link.
    async fn delete_firewall(&self, id: &str) -> R<()> {
        let names: Vec<String> = match parse_link(id) {
            Some(l) => vec![l.name],
            None => self
                .firewall_rules(Some(&self.cfg.cluster))
                .await?
                .into_iter()
                .filter(|f| f.target_tags.iter().any(|t| t == id))
                .filter_map(|f| f.name)
                .collect(),
        };
        if names.is_empty() {
            return Err(ProviderError::not_found(format!("firewall rules of {id}")));
        }
        for name in names {
            let r = self
                .firewalls
                .delete()
                .set_project(&self.project)
                .set_firewall(&name)
                .send();
            self.run(&format!("delete firewall rule {name}"), r)
                .await
                .done_if_not_found()?;
        }
        Ok(())
    }

    // ---- address and load balancer ----

    async fn read_address(&self, name: &str) -> R<Option<Outputs>> {
        let region = self.region()?;
        self.pace(pace::READS).await;
        let r = self
            .addresses
            .get()
            .set_project(&self.project)
            .set_region(region)
            .set_address(name)
            .send()
            .await;
        match r {
            Ok(a) => Ok(Some(outputs(
                &a.self_link.unwrap_or_default(),
                &[(OUT_ADDRESS, a.address.as_deref().unwrap_or_default())],
            ))),
            Err(e) => Err(from_gax(&format!("read address {name}"), e)).none_if_not_found(),
        }
    }

    async fn create_address(&self, req: &Request) -> R<Outputs> {
        let region = self.region()?.to_string();
        let body = Address::new()
            .set_name(&req.name)
            .set_address_type(gce::address::AddressType::External)
            .set_labels(tags::labels(&req.tags))
            .set_description(tags::description(&req.tags));
        let r = self
            .addresses
            .insert()
            .set_project(&self.project)
            .set_region(&region)
            .set_body(body)
            .send();
        adopt(self.run(&format!("create address {}", req.name), r).await)?;
        self.read_address(&req.name)
            .await?
            .ok_or_else(|| gone("address", &req.name))
    }

    async fn read_load_balancer(&self, name: &str) -> R<Option<Outputs>> {
        let region = self.region()?;
        self.pace(pace::READS).await;
        let r = self
            .forwarding_rules
            .get()
            .set_project(&self.project)
            .set_region(region)
            .set_forwarding_rule(name)
            .send()
            .await;
        match r {
            Ok(f) => Ok(Some(outputs(
                &f.self_link.unwrap_or_default(),
                &[(OUT_ADDRESS, f.ip_address.as_deref().unwrap_or_default())],
            ))),
            Err(e) => Err(from_gax(&format!("read forwarding rule {name}"), e)).none_if_not_found(),
        }
    }

    /// The API server's passthrough network load balancer, backend service
    /// based: a regional HTTPS health check of `/readyz`, an unmanaged
    /// instance group of the masters (in the cluster's zone), a regional
    /// backend service (EXTERNAL, TCP) over the group with the check, and a
    /// forwarding rule of the API port on the cluster's address. A target
    /// pool would take only a legacy HTTP health check ("Only legacy
    /// HttpHealthChecks are supported", compute/docs/reference/rest/v1/targetPools),
    /// and the API server answers HTTPS only; a backend service takes
    /// "non-legacy health checks (for TCP, SSL, HTTP, HTTPS, and HTTP/2)"
    /// (load-balancing/docs/network/transition-to-backend-services), regional
    /// ones for an external passthrough load balancer, as kops does on GCE
    /// (regions/…/healthChecks and regions/…/backendServices, kubernetes/kops#17692)
    /// and OpenShift's installer for its internal API load balancer (an HTTPS
    /// check of /readyz on the API port, data/data/gcp/network/lb-private.tf).
    /// The rule is made last: when it exists, the load balancer is complete.
    async fn create_load_balancer(&self, req: &Request, address: Option<&str>, port: u16) -> R<Outputs> {
        let region = self.region()?.to_string();
        let zone = self.zone()?.to_string();
        let name = req.name.as_str();
        let description = tags::description(&req.tags);
        // "GET /readyz" is the API server's readiness (kubernetes.io/docs/
        // reference/using-api/health-checks), readable without credentials
        // (the system:public-info-viewer role). Interval, timeout and
        // thresholds: Compute Engine's defaults (5 s, 5 s, 2, 2).
        let check_link = self
            .ensure_part(
                &format!("create health check {name}"),
                || {
                    self.link_of(
                        format!("read health check {name}"),
                        self.region_health_checks
                            .get()
                            .set_project(&self.project)
                            .set_region(&region)
                            .set_health_check(name)
                            .send(),
                        |h: &HealthCheck| h.self_link.clone(),
                    )
                },
                || {
                    let body = HealthCheck::new()
                        .set_name(name)
                        .set_type(gce::health_check::Type::Https)
                        .set_https_health_check(
                            HTTPSHealthCheck::new()
                                .set_port(i32::from(port))
                                .set_request_path("/readyz"),
                        )
                        .set_description(description.clone());
                    self.region_health_checks
                        .insert()
                        .set_project(&self.project)
                        .set_region(&region)
                        .set_body(body)
                        .send()
                },
            )
            .await?;
        let group_link = self
            .ensure_part(
                &format!("create instance group {name}"),
                || {
                    self.link_of(
                        format!("read instance group {name}"),
                        self.instance_groups
                            .get()
                            .set_project(&self.project)
                            .set_zone(&zone)
                            .set_instance_group(name)
                            .send(),
                        |g: &InstanceGroup| g.self_link.clone(),
                    )
                },
                || {
                    let body = InstanceGroup::new().set_name(name).set_description(description.clone());
                    self.instance_groups
                        .insert()
                        .set_project(&self.project)
                        .set_zone(&zone)
                        .set_body(body)
                        .send()
                },
            )
            .await?;
        let service_link = self
            .ensure_part(
                &format!("create backend service {name}"),
                || {
                    self.link_of(
                        format!("read backend service {name}"),
                        self.region_backend_services
                            .get()
                            .set_project(&self.project)
                            .set_region(&region)
                            .set_backend_service(name)
                            .send(),
                        |b: &BackendService| b.self_link.clone(),
                    )
                },
                || {
                    let body = BackendService::new()
                        .set_name(name)
                        .set_load_balancing_scheme(gce::backend_service::LoadBalancingScheme::External)
                        .set_protocol(gce::backend_service::Protocol::Tcp)
                        .set_health_checks([check_link.clone()])
                        .set_backends([Backend::new()
                            .set_group(group_link.clone())
                            .set_balancing_mode(gce::backend::BalancingMode::Connection)])
                        .set_description(description.clone());
                    self.region_backend_services
                        .insert()
                        .set_project(&self.project)
                        .set_region(&region)
                        .set_body(body)
                        .send()
                },
            )
            .await?;
        self.ensure_part(
            &format!("create forwarding rule {name}"),
            || async {
                Ok(self
                    .read_load_balancer(name)
                    .await?
                    .and_then(|o| o.get(OUT_ID).cloned()))
            },
            || {
                let mut rule = ForwardingRule::new()
                    .set_name(name)
                    .set_ip_protocol(gce::forwarding_rule::IPProtocol::Tcp)
                    .set_port_range(port.to_string())
                    .set_backend_service(service_link.clone())
                    .set_load_balancing_scheme(gce::forwarding_rule::LoadBalancingScheme::External)
                    .set_labels(tags::labels(&req.tags))
                    .set_description(description.clone());
                if let Some(a) = address {
                    rule = rule.set_ip_address(a);
                }
                self.forwarding_rules
                    .insert()
                    .set_project(&self.project)
                    .set_region(&region)
                    .set_body(rule)
                    .send()
            },
        )
        .await?;
        self.read_load_balancer(name)
            .await?
            .ok_or_else(|| gone("forwarding rule", name))
    }

    /// The load balancer's parts, by the name they share, in the order they
    /// go: the rule, the backend service (or an older hke's target pool),
    /// then what the service used.
    /// Parts whose scope is unknown (a janitor's provider has no zone) are
    /// left to their own link, which the tag sweep finds too.
    fn lb_parts(&self, lb: &str) -> Option<Vec<Link>> {
        let l = parse_link(lb)?;
        let zone = match &l.scope {
            Scope::Zone(z) => Some(z.clone()),
            _ => self.cfg.zone.clone(),
        };
        // A zone is its region and a letter (`us-central1-a`).
        let region = match &l.scope {
            Scope::Region(r) => Some(r.clone()),
            Scope::Zone(z) => z.rsplit_once('-').map(|(r, _)| r.to_string()),
            Scope::Global => self.cfg.region.clone(),
        };
        let part = |scope: Scope, collection: &str| Link {
            project: l.project.clone(),
            scope,
            collection: collection.to_string(),
            name: l.name.clone(),
        };
        let mut parts = Vec::new();
        if let Some(r) = &region {
            for c in ["forwardingRules", "backendServices", "targetPools"] {
                parts.push(part(Scope::Region(r.clone()), c));
            }
        }
        if let Some(z) = zone {
            parts.push(part(Scope::Zone(z), "instanceGroups"));
        }
        if let Some(r) = region {
            parts.push(part(Scope::Region(r), "healthChecks"));
        }
        (!parts.is_empty()).then_some(parts)
    }

    /// The load balancer's instance group (same name as its rule, in the
    /// cluster's zone).
    fn group_of(&self, lb: &str) -> R<Link> {
        self.lb_parts(lb)
            .and_then(|parts| parts.into_iter().find(|p| p.collection == "instanceGroups"))
            .ok_or_else(|| ProviderError::permanent("BadReference", format!("{lb} is not a self link")))
    }

    async fn create_member(&self, load_balancer: &str, machine: &str) -> R<Outputs> {
        let group = self.group_of(load_balancer)?;
        let Scope::Zone(zone) = &group.scope else {
            return Err(ProviderError::permanent(
                "BadReference",
                format!("{load_balancer}: no zone"),
            ));
        };
        let what = format!("add {} to instance group {}", last_segment(machine), group.name);
        let added = self
            .retrying(|| {
                let body = InstanceGroupsAddInstancesRequest::new()
                    .set_instances([InstanceReference::new().set_instance(machine)]);
                let r = self
                    .instance_groups
                    .add_instances()
                    .set_project(&group.project)
                    .set_zone(zone)
                    .set_instance_group(&group.name)
                    .set_body(body)
                    .send();
                self.run(&what, r)
            })
            .await;
        match added {
            Ok(()) => {}
            // A member already (a resumed run): GCE answers 400
            // memberAlreadyExists (ansible-collections/google.cloud#349;
            // kubernetes/ingress-gce#2587 ignores it the same way).
            Err(e) if e.message.contains("memberAlreadyExists") || e.message.contains("already a member") => {}
            Err(e) => return Err(e),
        }
        let link = format!("projects/{}/zones/{zone}/instanceGroups/{}", group.project, group.name);
        Ok(outputs(&format!("{link}|{machine}"), &[]))
    }

    async fn delete_member(&self, id: &str) -> R<()> {
        let Some((group, machine)) = id.split_once('|') else {
            return Err(ProviderError::not_found(format!("member {id}")));
        };
        let Some(l) = parse_link(group) else {
            return Err(ProviderError::not_found(format!("member {id}")));
        };
        match (&l.scope, l.collection.as_str()) {
            (Scope::Zone(zone), "instanceGroups") => {
                let body = InstanceGroupsRemoveInstancesRequest::new()
                    .set_instances([InstanceReference::new().set_instance(machine)]);
                let r = self
                    .instance_groups
                    .remove_instances()
                    .set_project(&l.project)
                    .set_zone(zone)
                    .set_instance_group(&l.name)
                    .set_body(body)
                    .send();
                self.run(
                    &format!("remove {} from instance group {}", last_segment(machine), l.name),
                    r,
                )
                .await
            }
            // An older hke's target pool member.
            (Scope::Region(region), _) => {
                let body = TargetPoolsRemoveInstanceRequest::new()
                    .set_instances([InstanceReference::new().set_instance(machine)]);
                let r = self
                    .target_pools
                    .remove_instance()
                    .set_project(&l.project)
                    .set_region(region)
                    .set_target_pool(&l.name)
                    .set_body(body)
                    .send();
                self.run(
                    &format!("remove {} from target pool {}", last_segment(machine), l.name),
                    r,
                )
                .await
            }
            _ => Err(ProviderError::not_found(format!("member {id}"))),
        }
    }

    /// Delete a load balancer from any of its parts' links: every part, in
    /// order (a part in use by the next refuses its delete until that one is
    /// gone); not found when no part was there.
    async fn delete_load_balancer(&self, id: &str) -> R<()> {
        let parts = self
            .lb_parts(id)
            .ok_or_else(|| ProviderError::permanent("BadReference", format!("{id} is not a self link")))?;
        let mut deleted = false;
        for part in parts {
            let link = format!(
                "projects/{}/{}/{}/{}",
                part.project,
                match &part.scope {
                    Scope::Region(r) => format!("regions/{r}"),
                    Scope::Zone(z) => format!("zones/{z}"),
                    Scope::Global => "global".to_string(),
                },
                part.collection,
                part.name
            );
            match self.retrying(|| self.delete_link(&link)).await {
                Ok(()) => deleted = true,
                Err(e) => Err(e).done_if_not_found()?,
            }
        }
        if deleted {
            Ok(())
        } else {
            Err(ProviderError::not_found(format!("load balancer {id}")))
        }
    }

    // ---- routes ----

    async fn read_route(&self, name: &str) -> R<Option<Outputs>> {
        self.pace(pace::READS).await;
        match self
            .routes
            .get()
            .set_project(&self.project)
            .set_route(name)
            .send()
            .await
        {
            Ok(r) => Ok(Some(outputs(&r.self_link.unwrap_or_default(), &[]))),
            Err(e) => Err(from_gax(&format!("read route {name}"), e)).none_if_not_found(),
        }
    }

    async fn create_route(&self, req: &Request, network: &str, destination: &str, next_hop: &str) -> R<Outputs> {
        let body = Route::new()
            .set_name(&req.name)
            .set_network(network)
            .set_dest_range(destination)
            .set_next_hop_instance(next_hop)
            .set_priority(1000_u32)
            .set_description(tags::description(&req.tags));
        let r = self.routes.insert().set_project(&self.project).set_body(body).send();
        if let Some(link) = self.run_linked(&format!("create route {}", req.name), r).await? {
            return Ok(outputs(&link, &[]));
        }
        self.read_route(&req.name)
            .await?
            .ok_or_else(|| gone("route", &req.name))
    }

    // ---- instances ----

    #[allow(clippy::too_many_arguments)]
    async fn instance_body(
        &self,
        name: &str,
        req: &Request,
        subnet: &str,
        firewall: &str,
        os: &Os,
        size: &str,
        image: &hke_provider_api::Image,
        disk_gb: u32,
        private_ip: Option<&str>,
        ip_forwarding: bool,
        extra_labels: &[(&str, String)],
    ) -> R<Instance> {
        let zone = self.zone()?;
        let source_image = self.image(&image.lookup).await?;
        let mut labels = tags::labels(&req.tags);
        for (k, v) in extra_labels {
            labels.insert((*k).to_string(), v.clone());
        }
        let disk = AttachedDisk::new()
            .set_boot(true)
            .set_auto_delete(true)
            .set_type(gce::attached_disk::Type::Persistent)
            .set_initialize_params(
                AttachedDiskInitializeParams::new()
                    .set_source_image(source_image)
                    .set_disk_size_gb(i64::from(disk_gb))
                    .set_disk_type(format!("zones/{zone}/diskTypes/pd-balanced"))
                    .set_labels(labels.clone()),
            );
        let mut nic = NetworkInterface::new().set_subnetwork(subnet);
        // Machines with a planned static address (the masters) keep an
        // external address; the others leave through the network's Cloud
        // NAT (see `create_network`).
        if let Some(ip) = private_ip {
            nic = nic.set_network_ip(ip).set_access_configs([AccessConfig::new()
                .set_name("external-nat")
                .set_type(gce::access_config::Type::OneToOneNat)]);
        }
        let mut items = Vec::new();
        if let Some(boot) = &req.user_data {
            items.push(gce::metadata::Items::new().set_key(metadata_key(os)).set_value(boot));
        }
        Ok(Instance::new()
            .set_name(name)
            .set_machine_type(format!("zones/{zone}/machineTypes/{size}"))
            .set_disks([disk])
            .set_network_interfaces([nic])
            .set_metadata(Metadata::new().set_items(items))
            .set_tags(Tags::new().set_items([firewall.to_string()]))
            .set_can_ip_forward(ip_forwarding)
            .set_labels(labels)
            .set_description(tags::description(&req.tags)))
    }

    fn instance_outputs(i: &Instance) -> Outputs {
        let nic = i.network_interfaces.first();
        let private = nic.and_then(|n| n.network_ip.clone()).unwrap_or_default();
        let public = nic
            .and_then(|n| n.access_configs.first())
            .and_then(|a| a.nat_ip.clone())
            .unwrap_or_default();
        outputs(
            i.self_link.as_deref().unwrap_or_default(),
            &[(OUT_PRIVATE_IP, &private), (OUT_ADDRESS, &public)],
        )
    }

    async fn get_instance(&self, zone: &str, name: &str) -> R<Option<Instance>> {
        self.pace(pace::READS).await;
        let r = self
            .instances
            .get()
            .set_project(&self.project)
            .set_zone(zone)
            .set_instance(name)
            .send()
            .await;
        match r {
            Ok(i) => Ok(Some(i)),
            Err(e) => Err(from_gax(&format!("read instance {name}"), e)).none_if_not_found(),
        }
    }

    /// Insert an instance and follow its operation; an instance of that
    /// name that exists already (a retried or resumed create) answers 409,
    /// which adopts it: no read first.
    async fn insert_instance(&self, zone: &str, body: Instance) -> R<()> {
        let name = body.name.clone().unwrap_or_default();
        let r = self
            .instances
            .insert()
            .set_project(&self.project)
            .set_zone(zone)
            .set_body(body)
            .send();
        adopt(self.run(&format!("create instance {name}"), r).await)
    }

    /// Insert an instance and wait until it runs.
    async fn run_instance(&self, body: Instance) -> R<Instance> {
        let zone = self.zone()?.to_string();
        let name = body.name.clone().unwrap_or_default();
        self.insert_instance(&zone, body).await?;
        let started = Instant::now();
        let mut pause = self.cfg.poll;
        loop {
            let i = self
                .get_instance(&zone, &name)
                .await?
                .ok_or_else(|| gone("instance", &name))?;
            match i.status {
                Some(gce::instance::Status::Running) => return Ok(i),
                Some(gce::instance::Status::Terminated) | Some(gce::instance::Status::Stopped) => {
                    return Err(ProviderError::permanent(
                        "InstanceStopped",
                        format!(
                            "instance {name} stopped before it ran: {}",
                            i.status_message.unwrap_or_default()
                        ),
                    ))
                }
                _ if started.elapsed() > self.cfg.wait => {
                    return Err(ProviderError::transient(
                        "Timeout",
                        format!("instance {name} is not running after {:?}", self.cfg.wait),
                        None,
                    ))
                }
                _ => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.max_pause());
                }
            }
        }
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
            ip_forwarding,
            ..
        } = m;
        let body = self
            .instance_body(
                &req.name,
                req,
                subnet,
                firewall,
                os,
                size,
                image,
                *disk_gb,
                private_ip.as_deref(),
                *ip_forwarding,
                &[],
            )
            .await?;
        let i = self.run_instance(body).await?;
        Ok(Self::instance_outputs(&i))
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
            ..
        } = g;
        let group = hke_provider_api::gcp_label(&req.name);
        let zone = self.zone()?.to_string();
        // One listing finds what a resumed create already made, instead of
        // a read per instance.
        let existing: BTreeSet<String> = self
            .group_instances(&req.name)
            .await?
            .into_iter()
            .filter_map(|i| i.name)
            .collect();
        let mut bodies = Vec::new();
        for i in 0..*count {
            let name = group_instance_name(name_prefix, i);
            if existing.contains(&name) {
                continue;
            }
            bodies.push(
                self.instance_body(
                    &name,
                    req,
                    subnet,
                    firewall,
                    os,
                    size,
                    image,
                    *disk_gb,
                    None,
                    *ip_forwarding,
                    &[(LABEL_GROUP, group.clone()), (LABEL_PARTS, count.to_string())],
                )
                .await?,
            );
        }
        use futures_util::stream::{self, StreamExt};
        let results: Vec<R<()>> = stream::iter(bodies.into_iter().map(|b| self.insert_instance(&zone, b)))
            .buffer_unordered(GROUP_CONCURRENCY)
            .collect()
            .await;
        let mut first_error = None;
        for r in results {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        self.wait_group_running(&req.name, *count).await?;
        Ok(outputs(&format!("mg:{}", req.name), &[("count", &count.to_string())]))
    }

    /// Wait until every instance of a group runs, one listing per round
    /// instead of a read per instance.
    async fn wait_group_running(&self, name: &str, count: u32) -> R<()> {
        let started = Instant::now();
        let mut pause = self.cfg.poll;
        loop {
            let found = self.group_instances(name).await?;
            if let Some(i) = found.iter().find(|i| {
                matches!(
                    i.status,
                    Some(gce::instance::Status::Terminated) | Some(gce::instance::Status::Stopped)
                )
            }) {
                return Err(ProviderError::permanent(
                    "InstanceStopped",
                    format!(
                        "instance {} stopped before it ran: {}",
                        i.name.clone().unwrap_or_default(),
                        i.status_message.clone().unwrap_or_default()
                    ),
                ));
            }
            let running = found
                .iter()
                .filter(|i| i.status == Some(gce::instance::Status::Running))
                .count();
            if running >= count as usize {
                return Ok(());
            }
            if started.elapsed() > self.cfg.wait {
                return Err(ProviderError::transient(
                    "Timeout",
                    format!(
                        "{running} of the {count} instances of {name} run after {:?}",
                        self.cfg.wait
                    ),
                    None,
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.max_pause());
        }
    }

    /// Every instance of the cluster (or of every cluster), in any zone.
    async fn all_instances(&self, filter: &str) -> R<Vec<Instance>> {
        self.all_pages("list instances", pace::AGGREGATED_LISTS, |token| async move {
            let p = self
                .instances
                .aggregated_list()
                .set_project(&self.project)
                .set_filter(filter)
                .set_page_token(token)
                .send()
                .await?;
            Ok((
                p.items.into_values().flat_map(|s| s.instances).collect(),
                p.next_page_token,
            ))
        })
        .await
    }

    async fn group_instances(&self, name: &str) -> R<Vec<Instance>> {
        let filter = format!("labels.{LABEL_GROUP}={}", hke_provider_api::gcp_label(name));
        let cluster = hke_provider_api::gcp_label(&self.cfg.cluster);
        Ok(self
            .all_instances(&filter)
            .await?
            .into_iter()
            .filter(|i| i.labels.get("hke-io-cluster") == Some(&cluster))
            .collect())
    }

    async fn delete_instance_link(&self, link: &Link) -> R<()> {
        let Scope::Zone(zone) = &link.scope else {
            return Err(ProviderError::permanent(
                "BadReference",
                format!("{} is not zonal", link.name),
            ));
        };
        let r = self
            .instances
            .delete()
            .set_project(&link.project)
            .set_zone(zone)
            .set_instance(&link.name)
            .send();
        self.run(&format!("delete instance {}", link.name), r).await
    }

    async fn delete_group(&self, name: &str) -> R<()> {
        let found = self.group_instances(name).await?;
        if found.is_empty() {
            return Err(ProviderError::not_found(format!("machine group {name}")));
        }
        use futures_util::stream::{self, StreamExt};
        let links: Vec<Link> = found
            .iter()
            .filter_map(|i| i.self_link.as_deref().and_then(parse_link))
            .collect();
        let results: Vec<R<()>> = stream::iter(links.into_iter().map(|l| self.delete_group_member(l)))
            .buffer_unordered(GROUP_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn delete_group_member(&self, link: Link) -> R<()> {
        self.delete_instance_link(&link).await.done_if_not_found()
    }

    async fn serial_output(&self, link: &Link) -> R<String> {
        let Scope::Zone(zone) = &link.scope else {
            return Ok(String::new());
        };
        self.pace(pace::READS).await;
        let out = self
            .instances
            .get_serial_port_output()
            .set_project(&link.project)
            .set_zone(zone)
            .set_instance(&link.name)
            .set_port(1)
            .send()
            .await
            .map_err(|e| from_gax(&format!("read the serial console of {}", link.name), e))?;
        Ok(out.contents.unwrap_or_default())
    }

    /// Delete whatever a self link names.
    async fn delete_link(&self, id: &str) -> R<()> {
        let Some(l) = parse_link(id) else {
            return Err(ProviderError::permanent(
                "BadReference",
                format!("{id} is not a self link"),
            ));
        };
        let what = format!("delete {} {}", l.collection, l.name);
        let region = match &l.scope {
            Scope::Region(r) => r.clone(),
            _ => String::new(),
        };
        if !matches!(l.collection.as_str(), "instances" | "firewalls") {
            self.pace(pace::MUTATIONS).await;
        }
        let r = match (l.collection.as_str(), &l.scope) {
            ("instances", _) => return self.delete_instance_link(&l).await,
            ("networks", _) => {
                self.networks
                    .delete()
                    .set_project(&l.project)
                    .set_network(&l.name)
                    .send()
                    .await
            }
            ("routes", _) => {
                self.routes
                    .delete()
                    .set_project(&l.project)
                    .set_route(&l.name)
                    .send()
                    .await
            }
            ("firewalls", _) => return self.delete_firewall(id).await,
            ("subnetworks", Scope::Region(_)) => {
                self.subnetworks
                    .delete()
                    .set_project(&l.project)
                    .set_region(&region)
                    .set_subnetwork(&l.name)
                    .send()
                    .await
            }
            ("addresses", Scope::Region(_)) => {
                self.addresses
                    .delete()
                    .set_project(&l.project)
                    .set_region(&region)
                    .set_address(&l.name)
                    .send()
                    .await
            }
            ("forwardingRules", Scope::Region(_)) => {
                self.forwarding_rules
                    .delete()
                    .set_project(&l.project)
                    .set_region(&region)
                    .set_forwarding_rule(&l.name)
                    .send()
                    .await
            }
            ("targetPools", Scope::Region(_)) => {
                self.target_pools
                    .delete()
                    .set_project(&l.project)
                    .set_region(&region)
                    .set_target_pool(&l.name)
                    .send()
                    .await
            }
            ("backendServices", Scope::Region(_)) => {
                self.region_backend_services
                    .delete()
                    .set_project(&l.project)
                    .set_region(&region)
                    .set_backend_service(&l.name)
                    .send()
                    .await
            }
            ("healthChecks", Scope::Region(_)) => {
                self.region_health_checks
                    .delete()
                    .set_project(&l.project)
                    .set_region(&region)
                    .set_health_check(&l.name)
                    .send()
                    .await
            }
            ("instanceGroups", Scope::Zone(zone)) => {
                self.instance_groups
                    .delete()
                    .set_project(&l.project)
                    .set_zone(zone)
                    .set_instance_group(&l.name)
                    .send()
                    .await
            }
            ("routers", Scope::Region(_)) => {
                self.routers
                    .delete()
                    .set_project(&l.project)
                    .set_region(&region)
                    .set_router(&l.name)
                    .send()
                    .await
            }
            _ => {
                return Err(ProviderError::permanent(
                    "BadReference",
                    format!("hke does not delete {id}"),
                ))
            }
        };
        self.finish(&what, r).await
    }

    /// Every resource hke tagged, of one cluster or of all.
    async fn found(&self, cluster: Option<&str>) -> R<Vec<Found>> {
        let mut out = Vec::new();
        let filter = &cluster.map(tags::cluster_filter).unwrap_or_default();
        let mut push = |kind: Kind, name: Option<String>, link: Option<String>, t: BTreeMap<String, String>| {
            if let (Some(name), Some(id)) = (name, link) {
                if t.contains_key(TAG_CLUSTER) {
                    out.push(Found {
                        kind,
                        name,
                        id,
                        tags: t,
                    });
                }
            }
        };
        // Labelled resources: filtered by the API.
        for i in self.all_instances(filter).await? {
            push(Kind::Machine, i.name, i.self_link, tags::from_labels(&i.labels));
        }
        let addresses = self
            .all_pages("list addresses", pace::AGGREGATED_LISTS, |token| async move {
                let p = self
                    .addresses
                    .aggregated_list()
                    .set_project(&self.project)
                    .set_filter(filter)
                    .set_page_token(token)
                    .send()
                    .await?;
                Ok((
                    p.items.into_values().flat_map(|s| s.addresses).collect(),
                    p.next_page_token,
                ))
            })
            .await?;
        for a in addresses {
            push(Kind::PublicAddress, a.name, a.self_link, tags::from_labels(&a.labels));
        }
        let rules = self
            .all_pages("list forwarding rules", pace::AGGREGATED_LISTS, |token| async move {
                let p = self
                    .forwarding_rules
                    .aggregated_list()
                    .set_project(&self.project)
                    .set_filter(filter)
                    .set_page_token(token)
                    .send()
                    .await?;
                Ok((
                    p.items.into_values().flat_map(|s| s.forwarding_rules).collect(),
                    p.next_page_token,
                ))
            })
            .await?;
        for f in rules {
            push(Kind::LoadBalancer, f.name, f.self_link, tags::from_labels(&f.labels));
        }
        // Resources without labels: by their description.
        let described = |d: Option<&str>| owned(d, cluster).then(|| tags::from_description(d));
        let pools = self
            .all_pages("list target pools", pace::AGGREGATED_LISTS, |token| async move {
                let p = self
                    .target_pools
                    .aggregated_list()
                    .set_project(&self.project)
                    .set_page_token(token)
                    .send()
                    .await?;
                Ok((
                    p.items.into_values().flat_map(|s| s.target_pools).collect(),
                    p.next_page_token,
                ))
            })
            .await?;
        for p in pools {
            if let Some(t) = described(p.description.as_deref()) {
                push(Kind::LoadBalancer, p.name, p.self_link, t);
            }
        }
        // The load balancer's other parts (a crash may leave them without
        // their rule): each one's delete takes every part.
        let groups = self
            .all_pages("list instance groups", pace::AGGREGATED_LISTS, |token| async move {
                let p = self
                    .instance_groups
                    .aggregated_list()
                    .set_project(&self.project)
                    .set_page_token(token)
                    .send()
                    .await?;
                Ok((
                    p.items.into_values().flat_map(|s| s.instance_groups).collect(),
                    p.next_page_token,
                ))
            })
            .await?;
        for g in groups {
            if let Some(t) = described(g.description.as_deref()) {
                push(Kind::LoadBalancer, g.name, g.self_link, t);
            }
        }
        if let Some(region) = self.cfg.region.clone() {
            let region = region.as_str();
            let services = self
                .all_pages("list backend services", pace::LISTS, |token| async move {
                    let p = self
                        .region_backend_services
                        .list()
                        .set_project(&self.project)
                        .set_region(region)
                        .set_page_token(token)
                        .send()
                        .await?;
                    Ok((p.items, p.next_page_token))
                })
                .await?;
            for b in services {
                if let Some(t) = described(b.description.as_deref()) {
                    push(Kind::LoadBalancer, b.name, b.self_link, t);
                }
            }
            let checks = self
                .all_pages("list health checks", pace::LISTS, |token| async move {
                    let p = self
                        .region_health_checks
                        .list()
                        .set_project(&self.project)
                        .set_region(region)
                        .set_page_token(token)
                        .send()
                        .await?;
                    Ok((p.items, p.next_page_token))
                })
                .await?;
            for h in checks {
                if let Some(t) = described(h.description.as_deref()) {
                    push(Kind::LoadBalancer, h.name, h.self_link, t);
                }
            }
        }
        let subnets = self
            .all_pages("list subnetworks", pace::AGGREGATED_LISTS, |token| async move {
                let p = self
                    .subnetworks
                    .aggregated_list()
                    .set_project(&self.project)
                    .set_page_token(token)
                    .send()
                    .await?;
                Ok((
                    p.items.into_values().flat_map(|s| s.subnetworks).collect(),
                    p.next_page_token,
                ))
            })
            .await?;
        for sn in subnets {
            if let Some(t) = described(sn.description.as_deref()) {
                push(Kind::Subnet, sn.name, sn.self_link, t);
            }
        }
        for f in self.firewall_rules(cluster).await? {
            let t = tags::from_description(f.description.as_deref());
            push(Kind::Firewall, f.name, f.self_link, t);
        }
        let routes = self
            .all_pages("list routes", pace::LISTS, |token| async move {
                let p = self
                    .routes
                    .list()
                    .set_project(&self.project)
                    .set_page_token(token)
                    .send()
                    .await?;
                Ok((p.items, p.next_page_token))
            })
            .await?;
        for r in routes {
            if let Some(t) = described(r.description.as_deref()) {
                push(Kind::Route, r.name, r.self_link, t);
            }
        }
        let networks = self
            .all_pages("list networks", pace::LISTS, |token| async move {
                let p = self
                    .networks
                    .list()
                    .set_project(&self.project)
                    .set_page_token(token)
                    .send()
                    .await?;
                Ok((p.items, p.next_page_token))
            })
            .await?;
        for n in networks {
            if let Some(t) = described(n.description.as_deref()) {
                push(Kind::Network, n.name, n.self_link, t);
            }
        }
        Ok(out)
    }
}

/// Whether a description marks a resource of `cluster` (of any cluster
/// when `None`).
fn owned(description: Option<&str>, cluster: Option<&str>) -> bool {
    let t = tags::from_description(description);
    match (t.get(TAG_CLUSTER), cluster) {
        (Some(c), Some(want)) => c == want,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// An insert's "already exists" (a retried or resumed create) is fine: the
/// caller reads the resource next.
fn adopt(r: R<()>) -> R<()> {
    match r {
        Err(e) if e.class == hke_provider_api::Class::AlreadyExists => Ok(()),
        other => other,
    }
}

/// A resource that its finished insert did not leave behind.
fn gone(kind: &str, name: &str) -> ProviderError {
    ProviderError::transient(
        "NotYetVisible",
        format!("{kind} {name} was created but cannot be read yet"),
        None,
    )
}

#[async_trait]
impl Provider for Gcp {
    fn cloud(&self) -> &str {
        "gcp"
    }

    async fn create(&self, req: &Request) -> R<Outputs> {
        match &req.spec {
            // A project is not something hke makes: the group is the zone check.
            Spec::Group { .. } => Ok(outputs(&format!("projects/{}", self.project), &[])),
            Spec::Network { .. } => self.create_network(req).await,
            Spec::Subnet { network, cidr } => self.create_subnet(req, network, cidr).await,
            Spec::Firewall { network, rules, .. } => self.create_firewall(req, network, rules).await,
            Spec::PublicAddress { .. } => self.create_address(req).await,
            Spec::LoadBalancer { address, port, .. } => self.create_load_balancer(req, address.as_deref(), *port).await,
            Spec::LbMember {
                load_balancer, machine, ..
            } => self.create_member(load_balancer, machine).await,
            Spec::Route {
                network,
                destination,
                next_hop,
            } => self.create_route(req, network, destination, next_hop).await,
            Spec::Machine(m) => self.create_machine(req, m).await,
            Spec::MachineGroup(g) => self.create_machine_group(req, g).await,
            Spec::PlacementGroup { .. } => Err(ProviderError::permanent(
                "Unsupported",
                "placement groups are planned on Azure only",
            )),
        }
    }

    async fn read(&self, kind: Kind, name: &str) -> R<Option<Outputs>> {
        match kind {
            Kind::Group => Ok(Some(outputs(&format!("projects/{}", self.project), &[]))),
            Kind::Network => self.read_network(name).await,
            Kind::Subnet => self.read_subnet(name).await,
            Kind::Firewall => self.read_firewall(name).await,
            Kind::PublicAddress => self.read_address(name).await,
            Kind::LoadBalancer => self.read_load_balancer(name).await,
            // Adding a pool member is idempotent: a resumed run does it again.
            Kind::LbMember | Kind::PlacementGroup => Ok(None),
            Kind::Route => self.read_route(name).await,
            Kind::Machine => {
                let zone = self.zone()?.to_string();
                Ok(self
                    .get_instance(&zone, name)
                    .await?
                    .filter(|i| i.status == Some(gce::instance::Status::Running))
                    .map(|i| Self::instance_outputs(&i)))
            }
            Kind::MachineGroup => {
                let found = self.group_instances(name).await?;
                let parts: Option<usize> = found
                    .first()
                    .and_then(|i| i.labels.get(LABEL_PARTS))
                    .and_then(|p| p.parse().ok());
                let running = found.iter().all(|i| i.status == Some(gce::instance::Status::Running));
                Ok((parts == Some(found.len()) && running)
                    .then(|| outputs(&format!("mg:{name}"), &[("count", &found.len().to_string())])))
            }
        }
    }

    async fn delete(&self, kind: Kind, name: &str, id: Option<&str>) -> R<()> {
        let id = match id {
            Some(id) => id.to_string(),
            None => match kind {
                Kind::Firewall => name.to_string(),
                Kind::MachineGroup => format!("mg:{name}"),
                _ => match self.read(kind, name).await? {
                    Some(o) => o.get(OUT_ID).cloned().unwrap_or_default(),
                    None => return Err(ProviderError::not_found(format!("{kind} {name}"))),
                },
            },
        };
        match kind {
            Kind::Group => Err(ProviderError::not_found(format!("{name} (a project is not deleted)"))),
            Kind::PlacementGroup => Err(ProviderError::not_found(format!("{name} (none on GCP)"))),
            Kind::LbMember => self.delete_member(&id).await,
            Kind::MachineGroup => self.delete_group(id.strip_prefix("mg:").unwrap_or(name)).await,
            Kind::Firewall => self.delete_firewall(&id).await,
            Kind::LoadBalancer => self.delete_load_balancer(&id).await,
            Kind::Network => self.delete_network(&id).await,
            _ => self.delete_link(&id).await,
        }
    }

    async fn list(&self, cluster: &str) -> R<Vec<Found>> {
        self.found(Some(cluster)).await
    }

    async fn list_all(&self) -> R<Vec<Found>> {
        self.found(None).await
    }

    async fn console_output(&self, kind: Kind, name: &str, id: &str) -> R<Vec<(String, String)>> {
        let links: Vec<Link> = match kind {
            Kind::Machine => parse_link(id).into_iter().collect(),
            Kind::MachineGroup => self
                .group_instances(id.strip_prefix("mg:").unwrap_or(name))
                .await?
                .iter()
                .filter_map(|i| i.self_link.as_deref().and_then(parse_link))
                .collect(),
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        for l in links {
            let text = self.serial_output(&l).await?;
            out.push((l.name.clone(), text));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_links_parse_by_scope() {
        let l = parse_link("https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instances/n")
            .expect("zonal");
        assert_eq!(l.scope, Scope::Zone("us-central1-a".into()));
        assert_eq!((l.collection.as_str(), l.name.as_str()), ("instances", "n"));
        let g = parse_link("projects/p/global/networks/v").expect("global");
        assert_eq!(g.scope, Scope::Global);
        assert!(parse_link("mg:group").is_none());
    }

    #[test]
    fn polling_rides_out_rate_quotas_but_not_permission_errors() {
        let gce_403 = |reason: &str| {
            let status: google_cloud_gax::error::rpc::Status = serde_json::from_value(serde_json::json!({
                "code": 7,
                "message": "Quota exceeded for quota metric 'Operation read requests'",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}],
            }))
            .expect("status");
            GaxError::service(status)
        };
        let state = PollingState::default();
        let policy = PollThroughTransientErrors;
        assert!(matches!(
            policy.on_error(&state, gce_403("rateLimitExceeded")),
            RetryResult::Continue(_)
        ));
        assert!(matches!(
            policy.on_error(&state, gce_403("userRateLimitExceeded")),
            RetryResult::Continue(_)
        ));
        assert!(matches!(
            policy.on_error(&state, gce_403("forbidden")),
            RetryResult::Permanent(_)
        ));
    }

    #[test]
    fn rules_names_and_boot_keys() {
        let all = Rule {
            name: "nodes".into(),
            protocol: "all".into(),
            ports: "*".into(),
            sources: vec!["10.240.0.0/16".into()],
        };
        let a = allowed(&all);
        assert_eq!(a.ip_protocol.as_deref(), Some("all"));
        assert!(a.ports.is_empty());
        let api = Rule {
            name: "apiserver".into(),
            protocol: "tcp".into(),
            ports: "6443".into(),
            sources: vec!["*".into()],
        };
        assert_eq!(allowed(&api).ports, vec!["6443".to_string()]);
        assert_eq!(source_range("*"), "0.0.0.0/0");
        assert_eq!(rule_name("c-nsg", "apiserver"), "c-nsg-apiserver");
        assert!(rule_name(&"x".repeat(70), "y").len() <= 63);
        assert_eq!(group_instance_name("abcdk8s01", 7), "abcdk8s01000007");
        assert_eq!(group_instance_name("abcdk8s01", 7).len(), 15);
        assert_eq!(metadata_key(&Os::Windows), "windows-startup-script-ps1");
        assert_eq!(metadata_key(&Os::Linux), "user-data");
    }
}
