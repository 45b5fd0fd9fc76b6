//! A fake Azure Resource Manager for hke's tests. There is no Azure compute
//! emulator; this follows the public REST contract the real SDK pipeline
//! relies on:
//!
//! - HTTPS only, with a certificate from a test CA made at start (`ca_pem`);
//!   a token endpoint (`POST /{tenant}/oauth2/v2.0/token`, the client
//!   credentials grant) and bearer-token checks on every ARM call (401
//!   `InvalidAuthenticationToken` without one);
//! - `PUT` answers 201 (new) or 200 (update) with the resource in
//!   `provisioningState` `Creating`/`Updating` and an `Azure-AsyncOperation`
//!   URL; the operation is `InProgress` for `Config::operation_time`, then
//!   `Succeeded` (or `Failed` with an ARM error, for names in
//!   `Config::fail_once`, or with a retryable error for the PUTs
//!   `Config::retryable` picks); resource groups are synchronous, as in ARM;
//! - `DELETE` answers 202 with `Azure-AsyncOperation` and `Location`
//!   (which answers 202 until done, then 200); a missing resource in an
//!   existing group is 204, a missing group 404; deleting a group removes
//!   everything in it; deleting a VM removes its extensions, and its NIC
//!   and OS disk when their `deleteOption` is `Delete`;
//! - 404 `ResourceGroupNotFound` / `ParentResourceNotFound` for missing
//!   parents, 400 `InvalidResourceReference` for references to missing
//!   resources, 400 `InvalidParameter` for bodies missing required
//!   properties (location, address prefixes, rule fields, image, OS
//!   profile, NIC, custom data over 64 KiB, a static IP outside its subnet
//!   or taken), 404 `PlatformImageNotFound` for images not in the catalog;
//! - 409 for conflicting deletes: a resource another one still uses (a NIC
//!   on a VM, a subnet or NSG with NICs, a public IP on a load balancer, a
//!   load balancer pool with NICs, an availability set with VMs), and any
//!   write while an operation is running on the same resource
//!   (`AnotherOperationInProgress`);
//! - 429 with `Retry-After` on every Nth request (`Config::throttle_every`),
//!   or ARM's per-principal token buckets (`Config::rate_limits`:
//!   `RateLimits::arm()`, reads 250 + 25/s, writes and deletes 200 + 10/s)
//!   with `x-ms-ratelimit-remaining-subscription-reads/-writes/-deletes` on
//!   every answer;
//! - load balancer outbound rules held to their frontends' SNAT ports on the
//!   load balancer's PUT and on every NIC or scale set PUT that joins the
//!   pool (400 `SpecifiedAllocatedOutboundPortsForOutboundRule...`), and the
//!   default port allocation table when `allocatedOutboundPorts` is 0
//!   (`snat()`);
//! - operation times per resource type (`Config::operation_times`);
//! - computed properties: public IP address and FQDN
//!   (`<label>.<location>.cloudapp.azure.com`), NIC private addresses from
//!   the subnet, ids of load balancer parts, OS disks;
//! - GET hides `adminPassword` and `customData` as ARM does; `resources()`
//!   shows everything it holds (for tests);
//! - lists with `$filter=tagName eq 'k' [and tagValue eq 'v']` over
//!   resource groups and resources, paged with `nextLink`; a resources list
//!   filtered by tag name and value carries no `tags` (as ARM documents);
//! - Compute's limits: 200 VMs per availability set, scale sets of at most
//!   100 VMs in a single placement group and 1,000 in all;
//! - `retrieveBootDiagnosticsData` and the serial log blob it points to.
//!
//! Every request is logged with its time and answer (`calls()`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

/// The service principal secret the identity endpoint accepts.
pub const CLIENT_SECRET: &str = "e2e-client-secret-value";

pub const TOKEN: &str = "fake-arm-access-token";

#[derive(Debug, Clone)]
pub struct Config {
    pub subscription: String,
    /// From PUT/DELETE to the operation's end.
    pub operation_time: Duration,
    /// Per resource type (lower case, `microsoft.compute/virtualmachines`),
    /// instead of `operation_time`.
    pub operation_times: Vec<(String, Duration)>,
    /// `retry-after-ms` given with each operation status (how soon to poll).
    pub poll_after: Duration,
    /// Refuse every Nth ARM request with 429.
    pub throttle_every: Option<u64>,
    /// The Retry-After (seconds) of a 429.
    pub throttle_retry_after_secs: u64,
    /// Resource names whose first PUT operation fails (`AllocationFailed`).
    pub fail_once: Vec<String>,
    /// Items per page of a list.
    pub page_size: usize,
    /// Send `Azure-AsyncOperation` with PUTs (some services answer with the
    /// resource's `provisioningState` only).
    pub async_header: bool,
    /// PUTs whose operation ends `Failed` with a retryable error, once each.
    pub retryable: Vec<Retryable>,
    /// Whether a resources list filtered by tag name only still carries the
    /// resources' tags. ARM documents the tags missing for a tag name *and*
    /// value filter only; `false` drops them for any tag filter.
    pub tags_in_tag_name_lists: bool,
    /// ARM's per-principal token buckets (`RateLimits::arm()`), off when
    /// `None`: a request over its bucket is answered 429 with Retry-After.
    pub rate_limits: Option<RateLimits>,
}

/// A token bucket: holds `capacity`, gains `refill` tokens every `interval`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketShape {
    pub capacity: f64,
    pub refill: f64,
    pub interval: Duration,
}

/// The buckets ARM keeps per subscription, principal and operation type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    pub reads: BucketShape,
    pub writes: BucketShape,
    pub deletes: BucketShape,
}

impl RateLimits {
    /// As documented: "the token bucket algorithm ... per subscription,
    /// principal and operation type": reads a bucket of 250 refilled 25 a
    /// second, writes 200 and 10, deletes 200 and 10
    /// (learn.microsoft.com/azure/azure-resource-manager/management/
    /// request-limits-and-throttling, "Subscription and tenant limits").
    pub fn arm() -> RateLimits {
        let shape = |capacity, refill| BucketShape {
            capacity,
            refill,
            interval: Duration::from_secs(1),
        };
        RateLimits {
            reads: shape(250.0, 25.0),
            writes: shape(200.0, 10.0),
            deletes: shape(200.0, 10.0),
        }
    }

    /// `factor` times each bucket's size and refill (a subscription with
    /// raised limits; tests that meet them sooner).
    pub fn scaled(self, factor: f64) -> RateLimits {
        let f = |b: BucketShape| BucketShape {
            capacity: (b.capacity * factor).max(1.0),
            refill: b.refill * factor,
            ..b
        };
        RateLimits {
            reads: f(self.reads),
            writes: f(self.writes),
            deletes: f(self.deletes),
        }
    }

    /// The same limits on a clock `factor` times faster (refills every
    /// `interval / factor`), for benchmarks that scale time down.
    pub fn faster(self, factor: f64) -> RateLimits {
        let f = |b: BucketShape| BucketShape {
            interval: b.interval.div_f64(factor.max(1e-6)),
            ..b
        };
        RateLimits {
            reads: f(self.reads),
            writes: f(self.writes),
            deletes: f(self.deletes),
        }
    }
}

/// The bucket (and its remaining-calls header) a request draws from:
/// "x-ms-ratelimit-remaining-subscription-reads / -writes / -deletes"
/// (request-limits-and-throttling, "Remaining requests").
fn bucket_of(method: &hyper::Method) -> (&'static str, &'static str) {
    match *method {
        hyper::Method::GET | hyper::Method::HEAD => ("reads", "x-ms-ratelimit-remaining-subscription-reads"),
        hyper::Method::DELETE => ("deletes", "x-ms-ratelimit-remaining-subscription-deletes"),
        _ => ("writes", "x-ms-ratelimit-remaining-subscription-writes"),
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// The last refill step.
    at: Instant,
}

/// Take a token of `shape` from `b` at `now`: the tokens left, or how long
/// until the next refill step.
fn take(b: &mut Bucket, shape: &BucketShape, now: Instant) -> Result<f64, Duration> {
    let interval = shape.interval.max(Duration::from_micros(1));
    let steps = (now.saturating_duration_since(b.at).as_secs_f64() / interval.as_secs_f64()).floor();
    if steps >= 1.0 {
        b.tokens = (b.tokens + steps * shape.refill).min(shape.capacity);
        b.at += interval.mul_f64(steps);
    }
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        Ok(b.tokens)
    } else {
        Err((b.at + interval).saturating_duration_since(now))
    }
}

/// Which PUT an injected operation failure hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMatch {
    /// The resource's name (case-insensitive).
    Name(String),
    /// The resource's type, `Microsoft.Network/networkInterfaces`
    /// (case-insensitive; `.../subnets` for children).
    Type(String),
    /// The Nth accepted resource PUT (1-based; resource groups, which have
    /// no operation, are not counted).
    Nth(u64),
}

/// A PUT whose operation ends `Failed` with ARM's error `code` (and an
/// inner detail `detail`), the first time the match hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retryable {
    pub when: PutMatch,
    pub code: String,
    pub detail: Option<String>,
}

impl Retryable {
    /// `RetryableError` with the inner `ReferencedResourceNotProvisioned`,
    /// exactly as ARM ended a NIC PUT while its subnet was being updated
    /// (hashicorp/terraform-provider-azurerm#30197).
    pub fn not_provisioned(when: PutMatch) -> Retryable {
        Retryable {
            when,
            code: "RetryableError".into(),
            detail: Some("ReferencedResourceNotProvisioned".into()),
        }
    }

    /// An operation ended by another one on the same resource.
    pub fn another_operation(when: PutMatch) -> Retryable {
        Retryable {
            when,
            code: "AnotherOperationInProgress".into(),
            detail: None,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            subscription: "00000000-0000-0000-0000-000000000001".into(),
            operation_time: Duration::from_millis(300),
            operation_times: Vec::new(),
            poll_after: Duration::from_millis(100),
            throttle_every: None,
            throttle_retry_after_secs: 1,
            fail_once: Vec::new(),
            page_size: 4,
            async_header: true,
            retryable: Vec::new(),
            tags_in_tag_name_lists: true,
            rate_limits: None,
        }
    }
}

/// Marketplace images the fake knows: (publisher, offer, sku).
/// Windows Server SKUs ending in `-g2` and Ubuntu 24.04's `server` are the
/// generation 2 (UEFI) images; the others generation 1 (the Marketplace's
/// `hyperVGeneration` of each SKU).
pub const IMAGES: [(&str, &str, &str); 14] = [
    (
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2019-datacenter-core-smalldisk",
    ),
    (
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2022-datacenter-core-smalldisk",
    ),
    (
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2025-datacenter-core-smalldisk",
    ),
    (
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2019-datacenter-core-smalldisk-g2",
    ),
    (
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2022-datacenter-core-smalldisk-g2",
    ),
    (
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2025-datacenter-core-smalldisk-g2",
    ),
    ("MicrosoftWindowsServer", "WindowsServer", "2019-datacenter-core"),
    ("MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-core"),
    ("MicrosoftWindowsServer", "WindowsServer", "2025-datacenter-core"),
    ("MicrosoftWindowsServer", "WindowsServer", "2019-datacenter-core-g2"),
    ("MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-core-g2"),
    ("MicrosoftWindowsServer", "WindowsServer", "2025-datacenter-core-g2"),
    ("Canonical", "ubuntu-24_04-lts", "server"),
    ("Canonical", "ubuntu-24_04-lts", "server-gen1"),
];

/// The image generation of a catalog SKU.
fn image_generation(sku: &str) -> u8 {
    let sku = sku.to_ascii_lowercase();
    if sku.ends_with("-g2") || sku == "server" {
        2
    } else {
        1
    }
}

/// Sizes that boot only generation 1 images, and the rule for those that
/// boot only generation 2 (the v6 series and later): Azure docs, Support for
/// generation 2 VMs. Compute refuses a mismatch with 400 BadRequest "The
/// selected VM size '...' cannot boot Hypervisor Generation '2'." (the
/// message users report, e.g. AutomatedLab#1638).
fn size_boots(size: &str, generation: u8) -> bool {
    const GEN1_ONLY: [&str; 7] = [
        "standard_d2",
        "standard_d2_v2",
        "standard_d3_v2",
        "standard_d2_v3",
        "standard_d4_v3",
        "standard_d16_v3",
        "standard_nc6",
    ];
    let size = size.to_ascii_lowercase();
    let series = size
        .rsplit_once("_v")
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .unwrap_or(1);
    match generation {
        2 => !GEN1_ONLY.contains(&size.as_str()),
        _ => series < 6,
    }
}

fn generation_mismatch(size: Option<&str>, sku: &str) -> Option<String> {
    let size = size?;
    let g = image_generation(sku);
    (!size_boots(size, g)).then(|| {
        format!(
            "The selected VM size '{size}' cannot boot Hypervisor Generation '{g}'. If this was a Create operation \
             please check that the Hypervisor Generation of the Image matches the Hypervisor Generation of the \
             selected VM Size."
        )
    })
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Call {
    pub at: Instant,
    pub method: String,
    /// The path (lower case), without the query.
    pub path: String,
    pub status: u16,
    /// The wait the answer asked for (Retry-After or retry-after-ms).
    pub retry_after: Option<Duration>,
}

#[derive(Debug)]
struct Operation {
    /// When it ends.
    due: Instant,
    /// Lower-case path of the resource.
    target: String,
    delete: bool,
    /// The ARM error the operation ends with (`{"code", "message", ...}`).
    failed: Option<Value>,
    done: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Lower-case id → resource body (as stored, with secrets).
    resources: BTreeMap<String, Value>,
    operations: BTreeMap<String, Operation>,
    requests: u64,
    ids: u64,
    calls: Vec<Call>,
    failed_once: Vec<String>,
    /// Accepted resource PUTs so far.
    puts: u64,
    /// Indexes into `Config::retryable` that have fired.
    retried: Vec<usize>,
    /// Paths (lower case) whose PUT operation an injected failure ended.
    injected: Vec<String>,
    /// ARM's token buckets by operation type (`Config::rate_limits`).
    buckets: BTreeMap<&'static str, Bucket>,
    /// Requests answered 429 by a bucket or `throttle_every`.
    throttled: u64,
}

/// A running fake. Stops when dropped.
pub struct FakeArm {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn tls(addr_ip: Ipv4Addr) -> Result<(String, rustls::ServerConfig), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let e = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hke fake ARM test CA");
    let ca = ca_params.self_signed(&ca_key).map_err(e)?;
    let key = KeyPair::generate().map_err(e)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(e)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(addr_ip)));
    params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(e)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .map_err(|e| e.to_string())?;
    Ok((ca.pem(), config))
}

impl FakeArm {
    /// Listen on a free loopback port, over TLS.
    pub async fn start(config: Config) -> std::io::Result<FakeArm> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (ca_pem, server) = tls(Ipv4Addr::LOCALHOST).map_err(std::io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let base = format!("https://{addr}");
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = &mut rx => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (state, config, base, acceptor) = (shared.clone(), config.clone(), base.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let (state, config, base) = (state.clone(), config.clone(), base.clone());
                        async move { Ok::<_, Infallible>(handle(req, &state, &config, &base).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(tls);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(FakeArm {
            addr,
            ca_pem,
            state,
            stop: Some(tx),
        })
    }

    /// `https://127.0.0.1:PORT`: the ARM endpoint and the authority host.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The test CA that signed the server's certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().map(|s| s.calls.clone()).unwrap_or_default()
    }

    /// Everything it holds, by lower-case id, with every operation
    /// finished and secrets shown.
    pub fn resources(&self) -> BTreeMap<String, Value> {
        match self.state.lock() {
            Ok(mut s) => {
                advance(&mut s, true);
                s.resources.clone()
            }
            Err(_) => BTreeMap::new(),
        }
    }

    /// Paths (lower case) whose PUT operation `Config::retryable` failed, in
    /// order.
    pub fn injected(&self) -> Vec<String> {
        self.state.lock().map(|s| s.injected.clone()).unwrap_or_default()
    }

    /// The outbound rules of load balancer `lb_id` (any case): what each
    /// backend instance gets, from `allocatedOutboundPorts` or the default
    /// table.
    pub fn snat(&self, lb_id: &str) -> Vec<Snat> {
        let Ok(s) = self.state.lock() else { return Vec::new() };
        let id = lb_id.to_ascii_lowercase();
        let Some(lb) = s.resources.get(&id) else {
            return Vec::new();
        };
        snat_of(lb, &id, &|pool: &str| pool_instances(&s, pool, ""))
    }

    /// Requests answered 429 (by `Config::rate_limits` or `throttle_every`).
    pub fn throttled(&self) -> u64 {
        self.state.lock().map(|st| st.throttled).unwrap_or(0)
    }

    pub fn requests(&self) -> u64 {
        self.state.lock().map(|s| s.requests).unwrap_or(0)
    }

    /// Put a resource in place directly (a user's own resource group, a
    /// stray resource), bypassing the API.
    pub fn seed(&self, id: &str, body: Value) {
        if let Ok(mut s) = self.state.lock() {
            let mut body = body;
            body["id"] = json!(id);
            s.resources.insert(id.to_ascii_lowercase(), body);
        }
    }
}

impl Drop for FakeArm {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: &Value) -> Reply {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    reply(status, &json!({"error": {"code": code, "message": message}}))
}

fn header(r: &mut Reply, k: &'static str, v: &str) {
    if let Ok(v) = hyper::header::HeaderValue::from_str(v) {
        r.headers_mut().insert(k, v);
    }
}

/// Finish the operations whose time has come (all of them with `all`).
fn advance(s: &mut State, all: bool) {
    let now = Instant::now();
    let mut finished = Vec::new();
    for (id, op) in s.operations.iter_mut() {
        if !op.done && (all || now >= op.due) {
            op.done = true;
            finished.push((id.clone(), op.target.clone(), op.delete, op.failed.clone()));
        }
    }
    for (_, target, delete, failed) in finished {
        if delete {
            remove(s, &target);
        } else if let Some(r) = s.resources.get_mut(&target) {
            r["properties"]["provisioningState"] = json!(if failed.is_some() { "Failed" } else { "Succeeded" });
            if failed.is_none() {
                let r = r.clone();
                on_succeeded(s, &target, r);
            }
        }
    }
}

/// Effects of a successful create: the VM's OS disk.
fn on_succeeded(s: &mut State, id: &str, r: Value) {
    if id.contains("/providers/microsoft.compute/virtualmachines/") && !id.contains("/extensions/") {
        if let Some(disk) = r
            .pointer("/properties/storageProfile/osDisk/name")
            .and_then(|v| v.as_str())
        {
            let rg = id.split("/providers/").next().unwrap_or_default();
            let disk_id = format!("{rg}/providers/Microsoft.Compute/disks/{disk}");
            let size = r.pointer("/properties/storageProfile/osDisk/diskSizeGB").cloned();
            s.resources.insert(
                disk_id.to_ascii_lowercase(),
                json!({"id": disk_id, "name": disk, "type": "Microsoft.Compute/disks",
                       "location": r["location"], "managedBy": r["id"],
                       "properties": {"diskSizeGB": size, "provisioningState": "Succeeded"}}),
            );
        }
    }
}

/// Remove a resource and what goes with it.
fn remove(s: &mut State, id: &str) {
    let Some(r) = s.resources.remove(id) else { return };
    let prefix = format!("{id}/");
    // Children (subnets, routes, extensions, everything in a group).
    let children: Vec<String> = s.resources.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
    for c in children {
        s.resources.remove(&c);
    }
    if id.contains("/providers/microsoft.compute/virtualmachines/") {
        if let Some(nics) = r
            .pointer("/properties/networkProfile/networkInterfaces")
            .and_then(|v| v.as_array())
        {
            for n in nics {
                if n.pointer("/properties/deleteOption").and_then(|v| v.as_str()) == Some("Delete") {
                    if let Some(nid) = n["id"].as_str() {
                        s.resources.remove(&nid.to_ascii_lowercase());
                    }
                }
            }
        }
        if r.pointer("/properties/storageProfile/osDisk/deleteOption")
            .and_then(|v| v.as_str())
            == Some("Delete")
        {
            if let Some(disk) = r
                .pointer("/properties/storageProfile/osDisk/name")
                .and_then(|v| v.as_str())
            {
                let rg = id.split("/providers/").next().unwrap_or_default();
                s.resources.remove(&format!(
                    "{rg}/providers/microsoft.compute/disks/{}",
                    disk.to_ascii_lowercase()
                ));
            }
        }
    }
}

/// `(rg id, provider type path, name)` of a resource id, lower case.
fn parts(id: &str) -> Option<(String, String, String)> {
    let (rg, rest) = id.split_once("/providers/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.len() < 3 || segs.len() % 2 == 0 {
        return None;
    }
    let name = segs.last()?.to_string();
    let mut t = vec![segs[0].to_string()];
    for (i, s) in segs.iter().enumerate().skip(1) {
        if i % 2 == 1 {
            t.push(s.to_string());
        }
    }
    Some((rg.to_string(), t.join("/"), name))
}

fn is_group(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    segs.len() == 4 && segs[0] == "subscriptions" && segs[2] == "resourcegroups"
}

/// Every `{"id": ...}` reference in a body.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "id" {
                    continue;
                }
                if let Some(id) = x.get("id").and_then(|i| i.as_str()) {
                    if x.as_object().is_some_and(|o| o.len() <= 2) {
                        out.push(id.to_string());
                    }
                }
                references(x, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                if let Some(id) = x.get("id").and_then(|i| i.as_str()) {
                    out.push(id.to_string());
                }
                references(x, out);
            }
        }
        _ => {}
    }
}

/// Does the resource (or a part of it: `.../backendAddressPools/x`) exist?
fn exists(s: &State, id: &str) -> bool {
    let lower = id.to_ascii_lowercase();
    if s.resources.contains_key(&lower) {
        return true;
    }
    // A part of a load balancer: its parent exists with that part.
    for part in ["/backendaddresspools/", "/frontendipconfigurations/", "/probes/"] {
        if let Some((parent, name)) = lower.split_once(part) {
            let key = match part {
                "/backendaddresspools/" => "backendAddressPools",
                "/frontendipconfigurations/" => "frontendIPConfigurations",
                _ => "probes",
            };
            return s.resources.get(parent).is_some_and(|lb| {
                lb.pointer(&format!("/properties/{key}"))
                    .and_then(|a| a.as_array())
                    .is_some_and(|a| {
                        a.iter()
                            .any(|p| p["name"].as_str().map(str::to_ascii_lowercase).as_deref() == Some(name))
                    })
            });
        }
    }
    false
}

fn invalid(message: String) -> Result<(), (StatusCode, &'static str, String)> {
    Err((StatusCode::BAD_REQUEST, "InvalidParameter", message))
}

fn str_at<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(|x| x.as_str()).filter(|x| !x.is_empty())
}

fn ipv4_net(cidr: &str) -> Option<(u32, u32)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip) & mask, mask))
}

/// Properties a body of a type must have (JSON pointers).
const REQUIRED: &[(&str, &str)] = &[
    (
        "microsoft.network/virtualnetworks",
        "/properties/addressSpace/addressPrefixes/0",
    ),
    ("microsoft.network/virtualnetworks/subnets", "/properties/addressPrefix"),
    (
        "microsoft.network/loadbalancers",
        "/properties/frontendIPConfigurations/0",
    ),
    (
        "microsoft.network/networkinterfaces",
        "/properties/ipConfigurations/0/properties/subnet/id",
    ),
    ("microsoft.network/routetables/routes", "/properties/addressPrefix"),
    ("microsoft.network/routetables/routes", "/properties/nextHopType"),
    (
        "microsoft.compute/virtualmachines",
        "/properties/hardwareProfile/vmSize",
    ),
    ("microsoft.compute/virtualmachines", "/properties/osProfile"),
    (
        "microsoft.compute/virtualmachines",
        "/properties/networkProfile/networkInterfaces/0/id",
    ),
    ("microsoft.compute/virtualmachines/extensions", "/properties/publisher"),
    ("microsoft.compute/virtualmachines/extensions", "/properties/type"),
    (
        "microsoft.compute/virtualmachines/extensions",
        "/properties/typeHandlerVersion",
    ),
];

/// Required properties per type (ARM's `InvalidParameter` and friends).
fn check_body(s: &State, rtype: &str, id: &str, body: &Value) -> Result<(), (StatusCode, &'static str, String)> {
    let top = !rtype.contains("/subnets") && !rtype.contains("/routes") && !rtype.ends_with("/extensions");
    if top && str_at(body, "/location").is_none() {
        return invalid("location is required".into());
    }
    for (t, pointer) in REQUIRED {
        if *t == rtype
            && body
                .pointer(pointer)
                .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
        {
            return invalid(format!(
                "{} is required",
                pointer.trim_start_matches('/').replace('/', ".")
            ));
        }
    }
    match rtype {
        "microsoft.network/networksecuritygroups" => {
            for r in body
                .pointer("/properties/securityRules")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                for f in ["priority", "direction", "access", "protocol", "destinationPortRange"] {
                    if r["properties"].get(f).is_none() {
                        return invalid(format!("securityRules[{}].properties.{f} is required", r["name"]));
                    }
                }
            }
        }
        "microsoft.network/publicipaddresses"
            if str_at(body, "/sku/name") == Some("Standard")
                && str_at(body, "/properties/publicIPAllocationMethod") != Some("Static") =>
        {
            return invalid("a Standard SKU public IP must be Static".into());
        }
        "microsoft.network/networkinterfaces" => {
            if let Some(ip) = str_at(body, "/properties/ipConfigurations/0/properties/privateIPAddress") {
                let subnet = str_at(body, "/properties/ipConfigurations/0/properties/subnet/id").unwrap_or_default();
                let prefix = s
                    .resources
                    .get(&subnet.to_ascii_lowercase())
                    .and_then(|sn| str_at(sn, "/properties/addressPrefix").map(String::from))
                    .unwrap_or_default();
                let inside = match (ip.parse::<Ipv4Addr>(), ipv4_net(&prefix)) {
                    (Ok(a), Some((net, mask))) => u32::from(a) & mask == net,
                    _ => false,
                };
                if !inside {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        "PrivateIPAddressNotInSubnet",
                        format!("{ip} is not in subnet {prefix}"),
                    ));
                }
            }
        }
        "microsoft.compute/virtualmachines" => {
            let img = |k: &str| str_at(body, &format!("/properties/storageProfile/imageReference/{k}"));
            let (Some(p), Some(o), Some(k), Some(_)) = (img("publisher"), img("offer"), img("sku"), img("version"))
            else {
                return invalid(
                    "properties.storageProfile.imageReference needs publisher, offer, sku and version".into(),
                );
            };
            if !IMAGES.iter().any(|(ip, io, is)| {
                ip.eq_ignore_ascii_case(p) && io.eq_ignore_ascii_case(o) && is.eq_ignore_ascii_case(k)
            }) {
                return Err((
                    StatusCode::NOT_FOUND,
                    "PlatformImageNotFound",
                    format!("the platform image '{p}:{o}:{k}' is not available"),
                ));
            }
            if let Some(m) = generation_mismatch(str_at(body, "/properties/hardwareProfile/vmSize"), k) {
                return Err((StatusCode::BAD_REQUEST, "BadRequest", m));
            }
            let os = body.pointer("/properties/osProfile");
            let Some(os) = os else {
                return invalid("properties.osProfile is required".into());
            };
            for f in ["computerName", "adminUsername"] {
                if str_at(os, &format!("/{f}")).is_none() {
                    return invalid(format!("properties.osProfile.{f} is required"));
                }
            }
            if os.get("windowsConfiguration").is_some() {
                if str_at(os, "/adminPassword").is_none() {
                    return invalid("properties.osProfile.adminPassword is required for Windows".into());
                }
                if str_at(os, "/computerName").is_some_and(|n| n.len() > 15) {
                    return invalid("a Windows computer name is at most 15 characters".into());
                }
            } else if os.pointer("/linuxConfiguration/ssh/publicKeys/0/keyData").is_none()
                && str_at(os, "/adminPassword").is_none()
            {
                return invalid("a Linux VM needs an SSH public key or a password".into());
            }
            if str_at(os, "/customData").is_some_and(|d| d.len() > 87_380) {
                return invalid("properties.osProfile.customData is over 64 KiB".into());
            }
            // "Virtual machines per availability set: 200" (Azure subscription
            // and service limits, Virtual Machines limits - Azure Resource
            // Manager). ARM's wording for a full set is not documented.
            if let Some(set) = str_at(body, "/properties/availabilitySet/id").map(str::to_ascii_lowercase) {
                let members = s
                    .resources
                    .iter()
                    .filter(|(k, r)| {
                        k.as_str() != id
                            && k.contains("/providers/microsoft.compute/virtualmachines/")
                            && str_at(r, "/properties/availabilitySet/id").is_some_and(|a| a.eq_ignore_ascii_case(&set))
                    })
                    .count();
                if members >= AVAILABILITY_SET_MAX {
                    return invalid(format!(
                        "the availability set {set} already holds {members} virtual machines; an availability set \
                         holds at most {AVAILABILITY_SET_MAX}"
                    ));
                }
            }
        }
        "microsoft.compute/virtualmachinescalesets" => {
            // "By default, a scale set consists of a single placement group
            // with a maximum size of 100 VMs. If ... singlePlacementGroup is
            // set to false, the scale set ... has a range of 0-1,000 VMs"
            // (learn.microsoft.com/azure/virtual-machine-scale-sets/
            // virtual-machine-scale-sets-placement-groups). Compute refuses
            // an out-of-range value with 400 InvalidParameter naming it.
            if let Some(sku) = str_at(
                body,
                "/properties/virtualMachineProfile/storageProfile/imageReference/sku",
            ) {
                if let Some(m) = generation_mismatch(str_at(body, "/sku/name"), sku) {
                    return Err((StatusCode::BAD_REQUEST, "BadRequest", m));
                }
            }
            let capacity = body.pointer("/sku/capacity").and_then(|c| c.as_u64()).unwrap_or(0);
            let single = body
                .pointer("/properties/singlePlacementGroup")
                .and_then(|b| b.as_bool())
                .unwrap_or(true);
            let max = if single {
                SINGLE_PLACEMENT_GROUP_MAX
            } else {
                SCALE_SET_MAX
            };
            if capacity > max {
                return invalid(format!(
                    "The value {capacity} of parameter 'sku.capacity' is out of range. The value must be between \
                     0 and {max}, inclusive{}",
                    if single {
                        " (singlePlacementGroup is true: set it to false for more than 100 VMs)"
                    } else {
                        ""
                    }
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Ephemeral ports one frontend public IP gives outbound rules
/// (learn.microsoft.com/azure/load-balancer/load-balancer-outbound-connections:
/// "Azure gives 64,000 for use as ephemeral ports").
pub const SNAT_PORTS_PER_IP: u64 = 64_000;

/// SNAT ports per backend instance when an outbound rule leaves
/// `allocatedOutboundPorts` at 0: the default port allocation table by
/// backend pool size (learn.microsoft.com/azure/load-balancer/
/// load-balancer-outbound-connections, "Default port allocation table";
/// more frontend IPs do not multiply it, MicrosoftDocs/azure-docs#41830).
/// The table ends at 1,000 instances; beyond, the last row is kept.
pub fn default_snat_ports(instances: u64) -> u64 {
    match instances {
        0..=50 => 1024,
        51..=100 => 512,
        101..=200 => 256,
        201..=400 => 128,
        401..=800 => 64,
        _ => 32,
    }
}

/// Backend instances (IP configurations) in the pool `pool` (lower-case
/// id): NICs' IP configurations and each scale set's per instance, not
/// counting the resource `except` (the one being PUT).
fn pool_instances(s: &State, pool: &str, except: &str) -> u64 {
    let in_pool = |cfg: &Value| {
        cfg.pointer("/properties/loadBalancerBackendAddressPools")
            .and_then(|a| a.as_array())
            .is_some_and(|a| {
                a.iter()
                    .any(|p| p["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(pool)))
            })
    };
    s.resources
        .iter()
        .filter(|(k, _)| {
            k.as_str() != except
                && (k.contains("/microsoft.network/networkinterfaces/")
                    || k.contains("/microsoft.compute/virtualmachinescalesets/"))
        })
        .map(|(_, r)| body_instances(r, &in_pool))
        .sum()
}

/// The IP configurations of a NIC or scale set body that `in_pool` picks.
fn body_instances(r: &Value, in_pool: &impl Fn(&Value) -> bool) -> u64 {
    let count = |cfgs: Option<&Value>| {
        cfgs.and_then(|a| a.as_array())
            .map(|a| a.iter().filter(|c| in_pool(c)).count() as u64)
            .unwrap_or(0)
    };
    let ty = r["type"].as_str().unwrap_or_default().to_ascii_lowercase();
    if ty == "microsoft.network/networkinterfaces" {
        count(r.pointer("/properties/ipConfigurations"))
    } else if ty == "microsoft.compute/virtualmachinescalesets" {
        let capacity = r.pointer("/sku/capacity").and_then(|c| c.as_u64()).unwrap_or(0);
        let per = r
            .pointer("/properties/virtualMachineProfile/networkProfile/networkInterfaceConfigurations")
            .and_then(|a| a.as_array())
            .map(|nics| {
                nics.iter()
                    .map(|n| count(n.pointer("/properties/ipConfigurations")))
                    .sum::<u64>()
            })
            .unwrap_or(0);
        capacity * per
    } else {
        0
    }
}

/// One outbound rule's SNAT arithmetic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snat {
    /// The rule's id.
    pub rule: String,
    /// `allocatedOutboundPorts` (0: the default table).
    pub allocated: u64,
    pub frontends: u64,
    pub instances: u64,
    /// What each backend instance gets.
    pub per_instance: u64,
}

/// Every outbound rule of load balancer `lb` (its body) with the backend
/// instance count `instances(pool)` gives its pool.
fn snat_of(lb: &Value, lb_id: &str, instances: &impl Fn(&str) -> u64) -> Vec<Snat> {
    lb.pointer("/properties/outboundRules")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
        .map(|r| {
            let name = r["name"].as_str().unwrap_or_default();
            let allocated = r
                .pointer("/properties/allocatedOutboundPorts")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            let frontends = r
                .pointer("/properties/frontendIPConfigurations")
                .and_then(|a| a.as_array())
                .map(|a| a.len() as u64)
                .unwrap_or(0);
            let pool = str_at(r, "/properties/backendAddressPool/id")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let n = instances(&pool);
            Snat {
                rule: format!("{lb_id}/outboundRules/{name}"),
                allocated,
                frontends,
                instances: n,
                per_instance: if allocated == 0 {
                    default_snat_ports(n)
                } else {
                    allocated
                },
            }
        })
        .collect()
}

/// ARM's check of an outbound rule's port allocation, on the load
/// balancer's PUT and on every NIC or scale set PUT that changes its pool.
/// The codes are those of learn.microsoft.com/azure/load-balancer/
/// load-balancer-common-deployment-errors (added by MicrosoftDocs/
/// azure-docs#124508); the wording of the capacity one is ARM's own, as
/// users report it ("Specified Allocated Outbound Ports 1024 for Outbound
/// Rule ... exceeds total number of available ports 624. Reduce allocated
/// ports or increase number of IP addresses for outbound rule."). The rule:
/// "Number of frontend IPs * 64K / Number of backend instances"
/// (learn.microsoft.com/azure/load-balancer/outbound-rules, Scale) and
/// allocatedOutboundPorts a multiple of 8, at most 64,000 per instance.
fn check_snat(rules: &[Snat]) -> Result<(), (StatusCode, &'static str, String)> {
    for r in rules.iter().filter(|r| r.allocated > 0) {
        if r.allocated % 8 != 0 {
            return Err((
                StatusCode::BAD_REQUEST,
                "SpecifiedAllocatedOutboundPortsForOutboundRuleIsNotAMultipleOfEight",
                format!(
                    "Specified Allocated Outbound Ports {} for Outbound Rule {} is not a multiple of 8.",
                    r.allocated, r.rule
                ),
            ));
        }
        if r.allocated > SNAT_PORTS_PER_IP {
            return Err((
                StatusCode::BAD_REQUEST,
                "SpecifiedAllocatedOutboundPortsForOutboundRuleExceedsTotalNumberOfAllowedPortsPerRule",
                format!(
                    "Specified Allocated Outbound Ports {} for Outbound Rule {} exceeds the {SNAT_PORTS_PER_IP} ports \
                     allowed per instance.",
                    r.allocated, r.rule
                ),
            ));
        }
        if r.instances > 0 && r.allocated * r.instances > r.frontends * SNAT_PORTS_PER_IP {
            let available = (r.frontends * SNAT_PORTS_PER_IP / r.instances) / 8 * 8;
            return Err((
                StatusCode::BAD_REQUEST,
                "SpecifiedAllocatedOutboundPortsForOutboundRuleExceedsTotalNumberOfAvailablePorts",
                format!(
                    "Specified Allocated Outbound Ports {} for Outbound Rule {} exceeds total number of available \
                     ports {available}. Reduce allocated ports or increase number of IP addresses for outbound rule.",
                    r.allocated, r.rule
                ),
            ));
        }
    }
    Ok(())
}

/// The SNAT check of a PUT of `body` at `id` (lower case): a load balancer
/// with its rules, or a NIC or scale set joining pools.
fn snat_put(s: &State, rtype: &str, id: &str, body: &Value) -> Result<(), (StatusCode, &'static str, String)> {
    match rtype {
        "microsoft.network/loadbalancers" => {
            let rules = snat_of(body, id, &|pool: &str| pool_instances(s, pool, id));
            check_snat(&rules)
        }
        "microsoft.network/networkinterfaces" | "microsoft.compute/virtualmachinescalesets" => {
            let mut body = body.clone();
            body["type"] = json!(rtype);
            let mut refs = Vec::new();
            references(&body["properties"], &mut refs);
            let mut lbs: Vec<String> = refs
                .iter()
                .filter_map(|r| {
                    let r = r.to_ascii_lowercase();
                    r.split_once("/backendaddresspools/").map(|(lb, _)| lb.to_string())
                })
                .collect();
            lbs.sort();
            lbs.dedup();
            for lb_id in lbs {
                let Some(lb) = s.resources.get(&lb_id) else { continue };
                let rules = snat_of(lb, &lb_id, &|pool: &str| {
                    let in_pool = |cfg: &Value| {
                        cfg.pointer("/properties/loadBalancerBackendAddressPools")
                            .and_then(|a| a.as_array())
                            .is_some_and(|a| {
                                a.iter()
                                    .any(|p| p["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(pool)))
                            })
                    };
                    pool_instances(s, pool, id) + body_instances(&body, &in_pool)
                });
                check_snat(&rules)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Virtual machines in one availability set (Azure VM limits).
pub const AVAILABILITY_SET_MAX: usize = 200;
/// Instances of a scale set in a single placement group.
pub const SINGLE_PLACEMENT_GROUP_MAX: u64 = 100;
/// Instances of a scale set.
pub const SCALE_SET_MAX: u64 = 1000;

/// Each resource provider accepts only its own api-versions per resource
/// type; another one is refused with 400 `NoRegisteredProviderFound` ("No
/// registered resource provider found for location ... and API version ...
/// for type ... The supported api-versions are ...", as ARM answers). The
/// Disk RP inside Microsoft.Compute versions managed disks apart from VMs
/// (REST reference: Disks use 2024-03-02, 2025-01-02, ...; virtual machines
/// 2024-07-01, 2024-11-01, ...). Only these two are told apart here.
fn unsupported_api_version(rtype: &str, version: Option<&str>) -> Option<Reply> {
    const DISKS: [&str; 4] = ["2023-04-02", "2023-10-02", "2024-03-02", "2025-01-02"];
    const COMPUTE: [&str; 4] = ["2023-09-01", "2024-03-01", "2024-07-01", "2024-11-01"];
    let supported: &[&str] = if rtype.starts_with("microsoft.compute/disks") {
        &DISKS
    } else if rtype.starts_with("microsoft.compute/") {
        &COMPUTE
    } else {
        return None;
    };
    let v = version.unwrap_or_default();
    if supported.contains(&v) {
        return None;
    }
    Some(error(
        StatusCode::BAD_REQUEST,
        "NoRegisteredProviderFound",
        &format!(
            "No registered resource provider found for location 'westus2' and API version '{v}' for type '{}'. The supported api-versions are '{}'.",
            rtype.split_once('/').map(|(_, t)| t).unwrap_or(rtype),
            supported.join(", ")
        ),
    ))
}

/// What still uses the resource `id` (a reason a delete conflicts).
fn used_by(s: &State, id: &str) -> Option<(String, &'static str)> {
    let id = id.to_ascii_lowercase();
    if id.contains("/providers/microsoft.compute/disks/") {
        return None;
    }
    let code = if id.contains("/networkinterfaces/") {
        "NicInUse"
    } else if id.contains("/virtualnetworks/") {
        "InUseSubnetCannotBeDeleted"
    } else if id.contains("/networksecuritygroups/") {
        "InUseNetworkSecurityGroupCannotBeDeleted"
    } else if id.contains("/publicipaddresses/") {
        "PublicIPAddressCannotBeDeleted"
    } else if id.contains("/routetables/") {
        "InUseRouteTableCannotBeDeleted"
    } else if id.contains("/loadbalancers/") {
        "InUseLoadBalancerCannotBeDeleted"
    } else {
        "OperationNotAllowed"
    };
    let own = format!("{id}/");
    for (k, v) in &s.resources {
        if *k == id || k.starts_with(&own) {
            continue;
        }
        let mut refs = Vec::new();
        references(v, &mut refs);
        if refs.iter().any(|r| {
            let r = r.to_ascii_lowercase();
            r == id || r.starts_with(&own)
        }) {
            return Some((k.clone(), code));
        }
    }
    None
}

fn filter_matches(filter: &str, tags: &Value) -> bool {
    // tagName eq 'k' [and tagValue eq 'v']
    let quoted: Vec<String> = filter
        .split('\'')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect();
    let Some(name) = quoted.first() else { return true };
    let Some(obj) = tags.as_object() else { return false };
    let Some((_, v)) = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) else {
        return false;
    };
    match quoted.get(1) {
        Some(want) => v.as_str() == Some(want.as_str()),
        None => true,
    }
}

/// The view of a resource a GET returns: no secrets, as ARM.
fn shown(v: &Value) -> Value {
    // Copied without the secrets (never cloned: custom data is large).
    let without = |o: &serde_json::Map<String, Value>, skip: &[&str]| -> serde_json::Map<String, Value> {
        o.iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .map(|(k, x)| (k.clone(), x.clone()))
            .collect()
    };
    let Some(top) = v.as_object() else { return v.clone() };
    let mut out = without(top, &["properties"]);
    if let Some(p) = top.get("properties") {
        let shown_props = match p.as_object() {
            Some(po) => {
                let mut props = without(po, &["protectedSettings", "osProfile"]);
                if let Some(os) = po.get("osProfile") {
                    let os = match os.as_object() {
                        Some(oo) => Value::Object(without(oo, &["adminPassword", "customData"])),
                        None => os.clone(),
                    };
                    props.insert("osProfile".into(), os);
                }
                Value::Object(props)
            }
            None => p.clone(),
        };
        out.insert("properties".into(), shown_props);
    }
    Value::Object(out)
}

fn query(uri: &hyper::Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(req: Request<hyper::body::Incoming>, state: &Arc<Mutex<State>>, config: &Config, base: &str) -> Reply {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path = uri.path().trim_end_matches('/').to_string();
    let lower = path.to_ascii_lowercase();
    let q = query(&uri);
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = match state.lock() {
        Ok(s) => s,
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "poisoned"),
    };
    let r = respond(&mut s, config, base, &method, &path, &lower, &q, auth.as_deref(), &body);
    let retry_after = r
        .headers()
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .or_else(|| {
            r.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs)
        });
    s.calls.push(Call {
        at: Instant::now(),
        method: method.to_string(),
        path: lower,
        status: r.status().as_u16(),
        retry_after,
    });
    r
}

#[allow(clippy::too_many_arguments)]
fn respond(
    s: &mut State,
    config: &Config,
    base: &str,
    method: &hyper::Method,
    path: &str,
    lower: &str,
    q: &BTreeMap<String, String>,
    auth: Option<&str>,
    body: &Bytes,
) -> Reply {
    // The identity platform: client credentials for a bearer token.
    if method == hyper::Method::POST && lower.ends_with("/oauth2/v2.0/token") {
        let form = String::from_utf8_lossy(body);
        if !form.contains("grant_type=client_credentials") || !form.contains("client_secret=") {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "client credentials expected",
            );
        }
        // A wrong secret: 401 invalid_client with AADSTS7000215, as the
        // Microsoft identity platform answers (learn.microsoft.com/entra/
        // identity-platform/reference-error-codes).
        if !form.contains(&format!("client_secret={CLIENT_SECRET}")) {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided.",
            );
        }
        return reply(
            StatusCode::OK,
            &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": TOKEN}),
        );
    }
    // Boot diagnostics blobs (SAS URLs: no bearer token).
    if method == hyper::Method::GET && lower.starts_with("/blobs/") {
        let vm = lower
            .trim_start_matches("/blobs/")
            .split('/')
            .next()
            .unwrap_or_default();
        let mut r = Response::new(Full::new(Bytes::from(format!(
            "[    1.0] boot\n### hke-log-begin bootstrap.log\nbootstrap of {vm} finished\n### hke-log-end bootstrap.log\n"
        ))));
        *r.status_mut() = StatusCode::OK;
        return r;
    }
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "the access token is missing or invalid",
        );
    }
    s.requests += 1;
    if let Some(n) = config.throttle_every {
        if n > 0 && s.requests % n == 0 {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "the request is being throttled",
            );
            header(&mut r, "retry-after", &config.throttle_retry_after_secs.to_string());
            s.throttled += 1;
            return r;
        }
    }
    // ARM's buckets: "When you reach the limit, you receive the HTTP status
    // code 429 Too many requests" with "a Retry-After value in the header"
    // (request-limits-and-throttling, "Error code"); every answer says how
    // many requests of its type are left.
    let mut remaining = None;
    if let Some(limits) = &config.rate_limits {
        let (kind, header_name) = bucket_of(method);
        let shape = match kind {
            "reads" => limits.reads,
            "deletes" => limits.deletes,
            _ => limits.writes,
        };
        let now = Instant::now();
        let b = s.buckets.entry(kind).or_insert(Bucket {
            tokens: shape.capacity,
            at: now,
        });
        match take(b, &shape, now) {
            Ok(left) => remaining = Some((header_name, left.floor() as u64)),
            Err(wait) => {
                s.throttled += 1;
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    &format!("The request is being throttled: the subscription's {kind} limit is reached."),
                );
                // Whole seconds, at least one.
                header(&mut r, "retry-after", &wait.as_secs_f64().ceil().max(1.0).to_string());
                header(&mut r, header_name, "0");
                return r;
            }
        }
    }
    let mut r = respond_arm(s, config, base, method, path, lower, q, body);
    if let Some((name, left)) = remaining {
        header(&mut r, name, &left.to_string());
    }
    r
}

/// An authenticated ARM request that its bucket let through.
#[allow(clippy::too_many_arguments)]
fn respond_arm(
    s: &mut State,
    config: &Config,
    base: &str,
    method: &hyper::Method,
    path: &str,
    lower: &str,
    q: &BTreeMap<String, String>,
    body: &Bytes,
) -> Reply {
    advance(s, false);
    let sub = format!("/subscriptions/{}", config.subscription.to_ascii_lowercase());
    if !lower.starts_with(&sub) && lower.starts_with("/subscriptions/") {
        return error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("the subscription in {path} could not be found"),
        );
    }
    // Operation status and results.
    if let Some(op_id) = lower.strip_prefix(&format!("{sub}/providers/microsoft.fake/operations/")) {
        let Some(op) = s.operations.get(op_id) else {
            return error(StatusCode::NOT_FOUND, "NotFound", "no such operation");
        };
        let status = match (&op.failed, op.done) {
            (_, false) => "InProgress",
            (Some(_), true) => "Failed",
            (None, true) => "Succeeded",
        };
        let location_style = q.contains_key("location");
        if location_style {
            let mut r = reply(
                if op.done { StatusCode::OK } else { StatusCode::ACCEPTED },
                &Value::Null,
            );
            if !op.done {
                header(&mut r, "retry-after-ms", &config.poll_after.as_millis().to_string());
            }
            return r;
        }
        let mut v = json!({"id": format!("{path}"), "name": op_id, "status": status});
        if let (Some(e), true) = (&op.failed, op.done) {
            v["error"] = e.clone();
        }
        let mut r = reply(StatusCode::OK, &v);
        if !op.done {
            header(&mut r, "retry-after-ms", &config.poll_after.as_millis().to_string());
        }
        return r;
    }
    if lower == sub {
        return reply(
            StatusCode::OK,
            &json!({"id": path, "subscriptionId": config.subscription, "state": "Enabled", "displayName": "fake"}),
        );
    }
    if method == hyper::Method::GET && (lower == format!("{sub}/resourcegroups") || lower == format!("{sub}/resources"))
    {
        return list(s, config, base, path, lower, q, |k, _| {
            if lower.ends_with("/resourcegroups") {
                is_group(k)
            } else {
                !is_group(k) && parts(k).is_some_and(|(_, t, _)| t.matches('/').count() == 1)
            }
        });
    }
    if method == hyper::Method::POST && lower.ends_with("/retrievebootdiagnosticsdata") {
        let vm = lower.trim_end_matches("/retrievebootdiagnosticsdata");
        let Some(v) = s.resources.get(vm) else {
            return error(StatusCode::NOT_FOUND, "ResourceNotFound", &format!("{path} not found"));
        };
        let name = v["name"].as_str().unwrap_or_default().to_string();
        return reply(
            StatusCode::OK,
            &json!({"consoleScreenshotBlobUri": format!("{base}/blobs/{name}/screenshot.bmp?sv=fake"),
                    "serialConsoleLogBlobUri": format!("{base}/blobs/{name}/serial.log?sv=fake")}),
        );
    }
    // A collection inside a group or a resource (`.../loadBalancers`,
    // `.../virtualNetworks/v/subnets`): an even number of segments after
    // `providers`.
    if method == hyper::Method::GET {
        if let Some((_, rest)) = lower.split_once("/providers/") {
            if rest.split('/').count() % 2 == 0 {
                let prefix = format!("{lower}/");
                return list(s, config, base, path, lower, q, |k, _| {
                    k.starts_with(&prefix) && !k[prefix.len()..].contains('/')
                });
            }
        }
    }
    let group = is_group(lower);
    let (rg, rtype) = if group {
        (lower.to_string(), "microsoft.resources/resourcegroups".to_string())
    } else {
        match parts(lower) {
            Some((rg, t, _)) => (rg, t),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "InvalidResourceType",
                    &format!("{path}: unknown"),
                )
            }
        }
    };
    if let Some(refused) = unsupported_api_version(&rtype, q.get("api-version").map(String::as_str)) {
        return refused;
    }
    match *method {
        hyper::Method::GET => match s.resources.get(lower) {
            Some(v) => reply(StatusCode::OK, &shown(v)),
            None if !group && !s.resources.contains_key(&rg) => error(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                &format!("resource group of {path} could not be found"),
            ),
            None => error(
                StatusCode::NOT_FOUND,
                if group {
                    "ResourceGroupNotFound"
                } else {
                    "ResourceNotFound"
                },
                &format!("{path} was not found"),
            ),
        },
        hyper::Method::PUT => put(s, config, base, path, lower, &rg, &rtype, group, body),
        hyper::Method::DELETE => delete(s, config, base, path, lower, &rg, group),
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "not supported"),
    }
}

fn list(
    s: &State,
    config: &Config,
    base: &str,
    path: &str,
    lower: &str,
    q: &BTreeMap<String, String>,
    keep: impl Fn(&str, &Value) -> bool,
) -> Reply {
    let filter = q.get("$filter").cloned().unwrap_or_default();
    // Resources - List: "When you filter by a tag name and value, the tags
    // for each resource are not returned in the results" (REST reference,
    // learn.microsoft.com/rest/api/resources/resources/list). Resource
    // group lists are not documented so and keep them.
    let by_tag = filter.to_ascii_lowercase().contains("tagname");
    let by_value = filter.to_ascii_lowercase().contains("tagvalue");
    let untagged = lower.ends_with("/resources") && by_tag && (by_value || !config.tags_in_tag_name_lists);
    let all: Vec<&Value> = s
        .resources
        .iter()
        .filter(|(k, v)| keep(k, v))
        .filter(|(_, v)| filter.is_empty() || filter_matches(&filter, &v["tags"]))
        .map(|(_, v)| v)
        .collect();
    let skip: usize = q.get("$skiptoken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(config.page_size.max(1))
        .map(|v| {
            let mut v = shown(v);
            if untagged {
                if let Some(o) = v.as_object_mut() {
                    o.remove("tags");
                }
            }
            v
        })
        .collect();
    let mut v = json!({ "value": page });
    if skip + config.page_size.max(1) < all.len() {
        let mut next = format!(
            "{base}{path}?api-version={}&$skiptoken={}",
            q.get("api-version").cloned().unwrap_or_default(),
            skip + config.page_size.max(1)
        );
        if !filter.is_empty() {
            next.push_str("&$filter=");
            next.push_str(&filter.replace(' ', "%20").replace('\'', "%27"));
        }
        v["nextLink"] = json!(next);
    }
    reply(StatusCode::OK, &v)
}

fn busy(s: &State, lower: &str) -> bool {
    s.operations.values().any(|o| !o.done && o.target == lower)
}

fn new_operation(s: &mut State, config: &Config, target: &str, delete: bool, failed: Option<Value>) -> String {
    s.ids += 1;
    let id = format!("op-{:06}", s.ids);
    let rtype = parts(target).map(|(_, t, _)| t).unwrap_or_default();
    let time = config
        .operation_times
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(&rtype))
        .map(|(_, d)| *d)
        .unwrap_or(config.operation_time);
    s.operations.insert(
        id.clone(),
        Operation {
            due: Instant::now() + time,
            target: target.to_string(),
            delete,
            failed,
            done: false,
        },
    );
    id
}

#[allow(clippy::too_many_arguments)]
fn put(
    s: &mut State,
    config: &Config,
    base: &str,
    path: &str,
    lower: &str,
    rg: &str,
    rtype: &str,
    group: bool,
    body: &Bytes,
) -> Reply {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "InvalidRequestContent", "the body is not JSON");
    };
    if busy(s, lower) {
        return error(
            StatusCode::CONFLICT,
            "AnotherOperationInProgress",
            &format!("another operation on {path} is in progress"),
        );
    }
    let name = path.rsplit('/').next().unwrap_or_default().to_string();
    let existed = s.resources.contains_key(lower);
    if group {
        if str_at(&v, "/location").is_none() {
            return error(StatusCode::BAD_REQUEST, "InvalidParameter", "location is required");
        }
        if existed {
            if let Some(cur) = s.resources.get(lower) {
                if s.resources.keys().any(|k| k.starts_with(&format!("{lower}/"))) && cur["location"] != v["location"] {
                    return error(
                        StatusCode::CONFLICT,
                        "InvalidResourceGroupLocation",
                        "a group's location cannot change",
                    );
                }
            }
        }
        v["id"] = json!(path);
        v["name"] = json!(name);
        v["type"] = json!("Microsoft.Resources/resourceGroups");
        v["properties"] = json!({"provisioningState": "Succeeded"});
        s.resources.insert(lower.to_string(), v.clone());
        return reply(if existed { StatusCode::OK } else { StatusCode::CREATED }, &v);
    }
    if !s.resources.contains_key(rg) {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            &format!("resource group of {path} could not be found"),
        );
    }
    // A child's parent must exist (subnets, routes, extensions).
    if rtype.matches('/').count() > 1 {
        let parent = lower.rsplitn(3, '/').nth(2).unwrap_or_default();
        if !s.resources.contains_key(parent) {
            return error(
                StatusCode::NOT_FOUND,
                "ParentResourceNotFound",
                &format!("the parent of {path} ({parent}) was not found"),
            );
        }
    }
    if let Err((status, code, message)) = check_body(s, rtype, lower, &v) {
        return error(status, code, &format!("{path}: {message}"));
    }
    let mut refs = Vec::new();
    references(&v["properties"], &mut refs);
    for r in refs {
        let own = r.to_ascii_lowercase().starts_with(&format!("{lower}/"));
        if !own && !exists(s, &r) {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidResourceReference",
                &format!("{path} references {r}, which was not found"),
            );
        }
    }
    if let Err((status, code, message)) = snat_put(s, rtype, lower, &v) {
        return error(status, code, &message);
    }
    // Computed properties.
    v["id"] = json!(path);
    v["name"] = json!(name);
    let display_type = {
        let (_, rest) = path.split_once("/providers/").unwrap_or_default();
        let segs: Vec<&str> = rest.split('/').collect();
        let mut t = vec![segs.first().copied().unwrap_or_default()];
        t.extend(segs.iter().skip(1).step_by(2));
        t.join("/")
    };
    v["type"] = json!(display_type);
    if !v["properties"].is_object() {
        v["properties"] = json!({});
    }
    s.ids += 1;
    let n = s.ids;
    match rtype {
        "microsoft.network/publicipaddresses" => {
            v["properties"]["ipAddress"] = json!(format!("20.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255));
            if let Some(label) = str_at(&v, "/properties/dnsSettings/domainNameLabel").map(String::from) {
                let loc = str_at(&v, "/location").unwrap_or_default().to_string();
                v["properties"]["dnsSettings"]["fqdn"] = json!(format!("{label}.{loc}.cloudapp.azure.com"));
            }
        }
        "microsoft.network/loadbalancers" => {
            for part in [
                "frontendIPConfigurations",
                "backendAddressPools",
                "probes",
                "loadBalancingRules",
                "outboundRules",
            ] {
                if let Some(a) = v["properties"][part].as_array_mut() {
                    for p in a {
                        let pname = p["name"].as_str().unwrap_or_default().to_string();
                        p["id"] = json!(format!("{path}/{part}/{pname}"));
                    }
                }
            }
        }
        "microsoft.network/networkinterfaces" => {
            let subnet = str_at(&v, "/properties/ipConfigurations/0/properties/subnet/id")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if str_at(&v, "/properties/ipConfigurations/0/properties/privateIPAddress").is_none() {
                let prefix = s
                    .resources
                    .get(&subnet)
                    .and_then(|sn| str_at(sn, "/properties/addressPrefix").map(String::from))
                    .unwrap_or_default();
                let taken: std::collections::HashSet<String> = s
                    .resources
                    .iter()
                    .filter(|(k, _)| k.as_str() != lower)
                    .filter_map(|(_, r)| {
                        str_at(r, "/properties/ipConfigurations/0/properties/privateIPAddress").map(String::from)
                    })
                    .collect();
                if let Some((net, _)) = ipv4_net(&prefix) {
                    let ip = (4..u32::MAX)
                        .map(|i| Ipv4Addr::from(net + i).to_string())
                        .find(|ip| !taken.contains(ip))
                        .unwrap_or_default();
                    v["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = json!(ip);
                }
            } else {
                let ip = str_at(&v, "/properties/ipConfigurations/0/properties/privateIPAddress").unwrap_or_default();
                let clash = s.resources.iter().any(|(k, r)| {
                    k.as_str() != lower
                        && str_at(r, "/properties/ipConfigurations/0/properties/privateIPAddress") == Some(ip)
                });
                if clash {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "PrivateIPAddressInUse",
                        &format!("{ip} is in use"),
                    );
                }
            }
            if let Some(a) = v["properties"]["ipConfigurations"].as_array_mut() {
                for p in a {
                    let pname = p["name"].as_str().unwrap_or_default().to_string();
                    p["id"] = json!(format!("{path}/ipConfigurations/{pname}"));
                }
            }
        }
        "microsoft.compute/virtualmachines" => {
            v["properties"]["vmId"] = json!(format!("00000000-0000-4000-8000-{n:012}"));
        }
        _ => {}
    }
    s.puts += 1;
    let failed = if config.fail_once.iter().any(|f| f.eq_ignore_ascii_case(&name)) && !s.failed_once.contains(&name) {
        s.failed_once.push(name.clone());
        Some(json!({"code": "AllocationFailed",
                    "message": format!("allocation of {name} failed: the requested size is not available (injected)")}))
    } else {
        retryable_failure(s, config, path, rtype, &name)
    };
    v["properties"]["provisioningState"] = json!(if existed { "Updating" } else { "Creating" });
    s.resources.insert(lower.to_string(), v.clone());
    let op = new_operation(s, config, lower, false, failed);
    let mut r = reply(if existed { StatusCode::OK } else { StatusCode::CREATED }, &shown(&v));
    if !config.async_header {
        return r;
    }
    header(
        &mut r,
        "azure-asyncoperation",
        &format!(
            "{base}/subscriptions/{}/providers/Microsoft.Fake/operations/{op}?api-version=2024-01-01",
            config.subscription
        ),
    );
    header(&mut r, "retry-after-ms", &config.poll_after.as_millis().to_string());
    r
}

/// The retryable error an injected failure ends this PUT's operation with:
/// the first `Config::retryable` entry that matches and has not fired. ARM
/// ends operations this way when a referenced resource is still being
/// updated (`RetryableError` / `ReferencedResourceNotProvisioned`, seen in
/// hashicorp/terraform-provider-azurerm#30197) or another operation on the
/// resource won (`AnotherOperationInProgress`).
fn retryable_failure(s: &mut State, config: &Config, path: &str, rtype: &str, name: &str) -> Option<Value> {
    let n = s.puts;
    let (i, r) = config.retryable.iter().enumerate().find(|(i, r)| {
        !s.retried.contains(i)
            && match &r.when {
                PutMatch::Name(want) => want.eq_ignore_ascii_case(name),
                PutMatch::Type(want) => want.eq_ignore_ascii_case(rtype),
                PutMatch::Nth(want) => *want == n,
            }
    })?;
    s.retried.push(i);
    s.injected.push(path.to_ascii_lowercase());
    let mut e = match r.code.as_str() {
        "RetryableError" => json!({"code": "RetryableError", "message": "A retryable error occurred."}),
        "AnotherOperationInProgress" => json!({"code": "AnotherOperationInProgress",
            "message": format!("Operation on {path} was canceled: another operation on this or a dependent resource is in progress (injected)")}),
        code => json!({"code": code, "message": format!("{path}: {code} (injected)")}),
    };
    if let Some(d) = &r.detail {
        let message = if d == "ReferencedResourceNotProvisioned" {
            format!(
                "Cannot proceed with operation because resource {path}/subnet used by resource {path} is not in \
                 Succeeded state. Resource is in Updating state and the last operation that updated/is updating \
                 the resource is PutSubnetOperation."
            )
        } else {
            format!("{d} (injected)")
        };
        e["details"] = json!([{"code": d, "message": message}]);
    }
    Some(e)
}

fn delete(s: &mut State, config: &Config, base: &str, path: &str, lower: &str, rg: &str, group: bool) -> Reply {
    if !s.resources.contains_key(lower) {
        if group || !s.resources.contains_key(rg) {
            return error(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                &format!("resource group {path} could not be found"),
            );
        }
        return reply(StatusCode::NO_CONTENT, &Value::Null);
    }
    if busy(s, lower) {
        return error(
            StatusCode::CONFLICT,
            "AnotherOperationInProgress",
            &format!("another operation on {path} is in progress"),
        );
    }
    if !group {
        if let Some((user, code)) = used_by(s, lower) {
            let name = path.rsplit('/').next().unwrap_or_default();
            let message = if lower.contains("/providers/microsoft.compute/availabilitysets/") {
                // Compute's own words (Azure docs, "Understand common error
                // messages when you manage virtual machines in Azure").
                format!(
                    "Availability Set {name} cannot be deleted. Before deleting an Availability Set please ensure \
                     that it does not contain any VM."
                )
            } else {
                format!("{path} is in use by {user}")
            };
            return error(StatusCode::CONFLICT, code, &message);
        }
    }
    if let Some(r) = s.resources.get_mut(lower) {
        r["properties"]["provisioningState"] = json!("Deleting");
    }
    let op = new_operation(s, config, lower, true, None);
    let mut r = reply(StatusCode::ACCEPTED, &Value::Null);
    let op_url = format!(
        "{base}/subscriptions/{}/providers/Microsoft.Fake/operations/{op}",
        config.subscription
    );
    header(
        &mut r,
        "azure-asyncoperation",
        &format!("{op_url}?api-version=2024-01-01"),
    );
    header(
        &mut r,
        "location",
        &format!("{op_url}?api-version=2024-01-01&location=1"),
    );
    header(&mut r, "retry-after-ms", &config.poll_after.as_millis().to_string());
    r
}
