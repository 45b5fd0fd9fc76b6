//! A fake Compute Engine REST server (`/compute/v1/projects/...`) for hke's
//! tests, following the public contract the real client relies on:
//!
//! - insert (POST to a collection) and delete return an `Operation` that
//!   goes PENDING → RUNNING → DONE over `Config::operation_time`; the
//!   resource appears (or disappears) when its operation is DONE, and
//!   operations are read at `.../operations/{name}`;
//! - GET of a missing resource is 404 `notFound`; inserting a name twice is
//!   409 `alreadyExists`; a body without a valid `name` is 400 `invalid`; a
//!   reference to a missing network or subnetwork is 404;
//! - deleting a network that subnetworks, firewalls, routes or instances
//!   still use is 400 `resourceInUseByAnotherResource`;
//! - every Nth request can be refused with 429 `rateLimitExceeded` or 503,
//!   or with the 403 of an exceeded rate quota as Compute Engine sends it
//!   (reason `rateLimitExceeded`, alternating with `userRateLimitExceeded`;
//!   the message names the quota metric, not the reason), operation polls
//!   included;
//! - chosen calls can be refused with the 403 of a missing permission
//!   (reason `forbidden`, "Required 'compute.networks.create' permission");
//! - list (GET of a collection) with a `labels.KEY=VALUE` filter, and
//!   aggregated lists (`projects/{p}/aggregated/{collection}`) by scope;
//! - images seeded from `Config::images`, read by family (the newest one
//!   that is not deprecated); an instance whose source image does not exist
//!   is 404;
//! - bodies missing a required property are 400 `required`; instance
//!   metadata over GCE's size limits is 400;
//! - instances get an internal address in their subnetwork and an external
//!   one per access config; forwarding rules resolve an address URL to its
//!   IP, and an address or target pool in use by a forwarding rule cannot
//!   be deleted (instances can, as on GCE);
//! - target pools' `addInstance`/`removeInstance`, applied when their
//!   operation is DONE; instances' `serialPort` output;
//! - health checks (`regions/{r}/healthChecks`, `global/healthChecks`, legacy
//!   `global/httpHealthChecks`), regional backend services, unmanaged
//!   instance groups (`addInstances`/`removeInstances`/`listInstances`, 400
//!   `memberAlreadyExists` for an instance already in the group) and Cloud
//!   Routers with NAT: a backend service, target pool or router naming a
//!   health check, group or address that does not exist is 404 `notFound`,
//!   and what they name cannot be deleted while they do (400
//!   `resourceInUseByAnotherResource`); a backend service needs a health
//!   check, a health check its protocol's settings, and a target pool takes
//!   legacy HTTP health checks only;
//! - `zones/{z}` for preflight checks;
//! - `operations/{name}/wait` (zonal, regional, global), which answers when
//!   the operation is DONE or at a deadline (two minutes on GCE);
//! - optionally, Compute Engine's rate quotas (`Config::rate_quota`): each
//!   quota group counted per fixed window, and a call over its group's quota
//!   refused with the 403 `rateLimitExceeded` of an exceeded rate quota;
//!   every throttled answer is counted (`throttled()`).
//!
//! Everything it holds is in memory and readable with `resources()`; every
//! request is logged (`calls()`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Config {
    /// From insert/delete to DONE (a third PENDING, the rest RUNNING).
    pub operation_time: Duration,
    /// The operation time of a collection's operations (`instances`,
    /// `networks`, `targetPools` for its `addInstance`…), over
    /// `operation_time`.
    pub operation_times: BTreeMap<String, Duration>,
    /// Refuse every Nth request with 429 (`rateLimitExceeded`).
    pub throttle_every: Option<u64>,
    /// Refuse every Nth request with 503.
    pub unavailable_every: Option<u64>,
    /// Refuse every Nth request (operation polls too) with 403 and reason
    /// `rateLimitExceeded` (every other one `userRateLimitExceeded`): "If
    /// your project exceeds a rate quota, you receive a 403 error with the
    /// reason rateLimitExceeded" (cloud.google.com/compute/api-quota).
    pub rate_quota_every: Option<u64>,
    /// Compute Engine's rate quotas, enforced: so many calls of each quota
    /// group per fixed window (windows counted from the fake's start, as GCE
    /// counts synchronized minutes), the rest answered 403
    /// `rateLimitExceeded`. "Google enforces rate quotas at a per-minute
    /// (60 seconds) interval for each group … If your project exceeds a rate
    /// quota, you receive a 403 error with the reason rateLimitExceeded"
    /// (cloud.google.com/compute/docs/api-rate-limits; default 1,500 a minute
    /// per group). Tests scale the window and the count down.
    pub rate_quota: Option<RateQuota>,
    /// How long `operations/{name}/wait` waits at most for an operation to
    /// be DONE: "Waits for the specified Operation resource to return as DONE
    /// or for the request to approach the 2 minute deadline"
    /// (cloud.google.com/compute/docs/reference/rest/v1/zoneOperations/wait).
    pub wait_deadline: Duration,
    /// Calls refused with 403 `forbidden` (no permission): each entry is the
    /// start of a logged call, `POST projects/p/global/networks`.
    pub forbidden: Vec<String>,
    /// Public images (`{"project", "name", "family", "creationTimestamp",
    /// "deprecated"?}`); `default_images()` has the families hke uses.
    pub images: Vec<Value>,
}

/// A rate quota of `calls` per `window` for each quota group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    pub calls: u32,
    pub window: Duration,
}

impl RateQuota {
    /// Compute Engine's default: 1,500 requests a minute per group.
    pub const DOCUMENTED: RateQuota = RateQuota {
        calls: 1500,
        window: Duration::from_secs(60),
    };
}

/// The quota group of a call (legacy metrics of
/// cloud.google.com/compute/docs/api-rate-limits), and the metric its 403
/// names.
pub fn quota_group(method: &str, short_path: &str) -> (&'static str, &'static str) {
    let parts: Vec<&str> = short_path.split('/').filter(|p| !p.is_empty()).collect();
    let operation = parts.iter().rev().nth(1) == Some(&"operations")
        || (parts.iter().rev().nth(2) == Some(&"operations") && parts.last() == Some(&"wait"));
    match method {
        "POST" if operation => ("operation-waits", "Heavy-weight read requests"),
        "GET" if operation => ("operation-reads", "Operation read requests"),
        "GET" if parts.get(2) == Some(&"aggregated") => ("aggregated-lists", "Heavy-weight read requests"),
        "GET" => {
            // A collection (`.../global/networks`, `.../zones/z/instances`) or one item.
            let scoped = matches!(parts.get(2), Some(&"regions") | Some(&"zones"));
            let at = if scoped { 5 } else { 4 };
            let family = parts.get(4) == Some(&"family");
            if parts.len() == at && !family && !(scoped && parts.len() == 4) {
                ("lists", "List requests")
            } else {
                ("reads", "Read requests")
            }
        }
        _ => ("mutations", "Queries"),
    }
}

/// Two images per family hke uses (an older and a newer one, so a family
/// lookup has to pick), and a deprecated newest one for Windows 2022.
pub fn default_images() -> Vec<Value> {
    let mut out = Vec::new();
    for (project, family) in [
        ("windows-cloud", "windows-2019-core"),
        ("windows-cloud", "windows-2022-core"),
        ("windows-cloud", "windows-2025-core"),
        ("ubuntu-os-cloud", "ubuntu-2404-lts-amd64"),
    ] {
        for (i, date) in ["20261001", "20261101"].iter().enumerate() {
            out.push(json!({
                "project": project, "family": family,
                "name": format!("{family}-v{date}"),
                "creationTimestamp": format!("2026-{}-01T00:00:00.000-07:00", 10 + i),
            }));
        }
    }
    out.push(json!({
        "project": "windows-cloud", "family": "windows-2022-core",
        "name": "windows-2022-core-v20261115", "creationTimestamp": "2026-11-15T00:00:00.000-07:00",
        "deprecated": {"state": "DEPRECATED"},
    }));
    out
}

impl Default for Config {
    fn default() -> Config {
        Config {
            operation_time: Duration::from_millis(300),
            operation_times: BTreeMap::new(),
            throttle_every: None,
            unavailable_every: None,
            rate_quota_every: None,
            rate_quota: None,
            wait_deadline: Duration::from_secs(120),
            forbidden: Vec::new(),
            images: default_images(),
        }
    }
}

#[derive(Debug)]
enum Effect {
    Insert(String, Value),
    Delete(String),
    /// Add (true) or remove instance URLs of a target pool or instance
    /// group (in its field of members).
    Members(String, Vec<String>, bool),
}

#[derive(Debug)]
struct Operation {
    started: Instant,
    value: Value,
    effect: Option<Effect>,
}

#[derive(Debug, Default)]
struct State {
    resources: BTreeMap<String, Value>,
    /// Names inserted but not DONE yet (a second insert is still a conflict).
    pending: BTreeMap<String, String>,
    operations: BTreeMap<String, Operation>,
    requests: u64,
    ids: u64,
    /// `METHOD path [name]` of every request, in order.
    calls: Vec<String>,
    /// `STATUS reason METHOD path [name]` of every request refused by
    /// injection (throttling, rate quotas, permissions), in order.
    refused: Vec<String>,
    /// Throttled answers (429, and 403 for a rate quota, injected or
    /// enforced).
    throttled: u64,
    /// Calls counted against each quota group in each window.
    quota_used: BTreeMap<(&'static str, u64), u32>,
}

/// A running fake. Stops when dropped.
pub struct FakeGce {
    addr: SocketAddr,
    started: Instant,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeGce {
    /// Listen on a free loopback port.
    pub async fn start(config: Config) -> std::io::Result<FakeGce> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut initial = State::default();
        for image in &config.images {
            let (Some(project), Some(name)) = (image["project"].as_str(), image["name"].as_str()) else {
                continue;
            };
            let path = format!("projects/{project}/global/images/{name}");
            let mut v = image.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("project");
                o.insert("kind".into(), json!("compute#image"));
                o.insert("status".into(), json!("READY"));
                o.insert("selfLink".into(), json!(format!("http://{addr}/compute/v1/{path}")));
            }
            initial.resources.insert(path, v);
        }
        let state = Arc::new(Mutex::new(initial));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let base = format!("http://{addr}");
        let started = Instant::now();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = &mut rx => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (state, config, base) = (shared.clone(), config.clone(), base.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (state, config, base) = (state.clone(), config.clone(), base.clone());
                        async move { Ok::<_, Infallible>(handle(req, &state, &config, &base, started).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(FakeGce {
            addr,
            started,
            state,
            stop: Some(tx),
        })
    }

    /// The endpoint to give a client (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far: `POST projects/p/global/networks hke-vnet`,
    /// `GET projects/p/zones/z/instances/n`, `DELETE …`.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().map(|s| s.calls.clone()).unwrap_or_default()
    }

    /// Every resource it holds (not the seeded images), by path
    /// (`projects/p/global/networks/n`).
    pub fn resources(&self) -> BTreeMap<String, Value> {
        match self.state.lock() {
            Ok(mut s) => {
                advance(&mut s, Duration::MAX);
                s.resources
                    .iter()
                    .filter(|(p, _)| !p.contains("/global/images/"))
                    .map(|(p, v)| (p.clone(), shown(v)))
                    .collect()
            }
            Err(_) => BTreeMap::new(),
        }
    }

    /// The instances (paths) of an instance group, by the group's path: what
    /// `listInstances` answers.
    pub fn group_members(&self, path: &str) -> Vec<String> {
        match self.state.lock() {
            Ok(mut s) => {
                advance(&mut s, Duration::MAX);
                s.resources
                    .get(path)
                    .and_then(|g| g["_instances"].as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(reference)
                    .collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Every request refused by injection: `403 rateLimitExceeded GET
    /// projects/p/global/operations/operation-7-insert`.
    pub fn refused(&self) -> Vec<String> {
        self.state.lock().map(|s| s.refused.clone()).unwrap_or_default()
    }

    /// How many answers were throttling: 429, or 403 for an exceeded rate
    /// quota (injected or enforced).
    pub fn throttled(&self) -> u64 {
        self.state.lock().map(|s| s.throttled).unwrap_or(0)
    }

    /// Calls counted against each quota group in each window (with
    /// `Config::rate_quota`): the most any window of a group saw.
    pub fn busiest_windows(&self) -> BTreeMap<String, u32> {
        let mut out: BTreeMap<String, u32> = BTreeMap::new();
        if let Ok(s) = self.state.lock() {
            for ((group, _), n) in &s.quota_used {
                let e = out.entry((*group).to_string()).or_default();
                *e = (*e).max(*n);
            }
        }
        out
    }

    /// When it started (quota windows count from here).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// How many requests it has answered.
    pub fn requests(&self) -> u64 {
        self.state.lock().map(|s| s.requests).unwrap_or(0)
    }
}

impl Drop for FakeGce {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: &Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

fn error(status: StatusCode, reason: &str, message: &str) -> Reply {
    reply(
        status,
        &json!({"error": {"code": status.as_u16(), "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}]}}),
    )
}

/// A 403 as Compute Engine sends it for an exceeded rate quota: the
/// message names the quota metric and limit, only `errors[].reason` says
/// `rateLimitExceeded` (the body seen in hail-is/hail#10613 and
/// hashicorp/terraform-provider-google#8360).
fn rate_quota_error(metric: &str, reason: &str) -> Reply {
    let message = format!(
        "Quota exceeded for quota metric '{metric}' and limit '{metric} per minute' of service \
         'compute.googleapis.com' for consumer 'project_number:123456789012'."
    );
    reply(
        StatusCode::FORBIDDEN,
        &json!({"error": {"code": 403, "message": message,
            "errors": [{"message": message, "domain": "usageLimits", "reason": reason}],
            "status": "PERMISSION_DENIED"}}),
    )
}

/// The 403 of a missing permission (`compute.networks.create` for a POST to
/// `.../networks`).
fn forbidden_error(method: &hyper::Method, short: &str) -> Reply {
    let parts: Vec<&str> = short.split('/').filter(|p| !p.is_empty()).collect();
    let at = if parts.get(2) == Some(&"global") { 3 } else { 4 };
    let collection = parts.get(at).copied().unwrap_or("resources");
    let verb = match method.as_str() {
        "POST" => "create",
        "DELETE" => "delete",
        _ => "get",
    };
    let message = format!("Required 'compute.{collection}.{verb}' permission for '{short}'");
    reply(
        StatusCode::FORBIDDEN,
        &json!({"error": {"code": 403, "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "forbidden"}],
            "status": "PERMISSION_DENIED"}}),
    )
}

/// Apply the effects of operations whose time has come; `horizon` = MAX
/// finishes everything (for inspection).
fn advance(s: &mut State, horizon: Duration) {
    let now = Instant::now();
    let mut done = Vec::new();
    for (path, op) in s.operations.iter_mut() {
        let elapsed = now.duration_since(op.started);
        let total = op.value["_total_ms"]
            .as_u64()
            .map(Duration::from_millis)
            .unwrap_or_default();
        let status = if horizon == Duration::MAX || elapsed >= total {
            "DONE"
        } else if elapsed >= total / 3 {
            "RUNNING"
        } else {
            "PENDING"
        };
        op.value["status"] = json!(status);
        op.value["progress"] = json!(match status {
            "DONE" => 100,
            "RUNNING" => 50,
            _ => 0,
        });
        if status == "DONE" {
            if let Some(effect) = op.effect.take() {
                done.push((path.clone(), effect));
            }
        }
    }
    for (_, effect) in done {
        match effect {
            Effect::Insert(path, value) => {
                s.pending.remove(&path);
                s.resources.insert(path, value);
            }
            Effect::Delete(path) => {
                s.resources.remove(&path);
            }
            Effect::Members(path, urls, add) => {
                // A target pool shows its members; an instance group lists
                // them with `listInstances` and shows their number.
                let field = if path.contains("/instanceGroups/") {
                    "_instances"
                } else {
                    "instances"
                };
                if let Some(pool) = s.resources.get_mut(&path) {
                    let mut members: Vec<Value> = pool[field].as_array().cloned().unwrap_or_default();
                    for url in urls {
                        let present = members.iter().any(|m| m.as_str() == Some(url.as_str()));
                        if add && !present {
                            members.push(json!(url));
                        } else if !add {
                            members.retain(|m| m.as_str() != Some(url.as_str()));
                        }
                    }
                    if field == "_instances" {
                        pool["size"] = json!(members.len());
                    }
                    pool[field] = json!(members);
                }
            }
        }
    }
}

/// What a request addresses.
#[derive(Debug, PartialEq)]
enum Target {
    /// `projects/{p}/global/{c}[/{n}[/{verb}]]`, `projects/{p}/regions|zones/{s}/{c}[/{n}[/{verb}]]`.
    Resource {
        project: String,
        /// `global`, `regions/us-central1`, `zones/us-central1-a`.
        scope: String,
        collection: String,
        name: Option<String>,
        /// A custom method: `addInstance`, `serialPort`.
        verb: Option<String>,
    },
    /// `projects/{p}/aggregated/{c}`.
    Aggregated { project: String, collection: String },
    /// `projects/{p}/global/images/family/{f}`.
    ImageFamily { project: String, family: String },
    /// `projects/{p}/zones/{z}`.
    Zone { project: String, zone: String },
}

fn parse(path: &str) -> Option<Target> {
    let rest = path.strip_prefix("/compute/v1/projects/")?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let (project, rest) = parts.split_first()?;
    let project = project.to_string();
    let (scope, rest) = match rest {
        ["aggregated", c] => {
            return Some(Target::Aggregated {
                project,
                collection: c.to_string(),
            })
        }
        ["global", "images", "family", f] => {
            return Some(Target::ImageFamily {
                project,
                family: f.to_string(),
            })
        }
        ["zones", z] => {
            return Some(Target::Zone {
                project,
                zone: z.to_string(),
            })
        }
        ["global", rest @ ..] => ("global".to_string(), rest),
        [kind @ ("regions" | "zones"), s, rest @ ..] => (format!("{kind}/{s}"), rest),
        _ => return None,
    };
    let (collection, name, verb) = match rest {
        [c] => (c, None, None),
        [c, n] => (c, Some(n.to_string()), None),
        [c, n, v] => (c, Some(n.to_string()), Some(v.to_string())),
        _ => return None,
    };
    Some(Target::Resource {
        project,
        scope,
        collection: collection.to_string(),
        name,
        verb,
    })
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !n.ends_with('-')
}

/// A reference (full URL or relative path) as a resource path.
fn reference(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let i = s.find("projects/")?;
    Some(s[i..].to_string())
}

/// The references that must exist before a resource of `collection`.
fn insert_references(collection: &str, body: &Value) -> Vec<String> {
    let mut refs = blocking_references(collection, body);
    match collection {
        // A target pool's health checks: GCE answers a reference to a
        // missing resource with 404 `notFound`, "The resource
        // 'projects/…/healthChecks/…' was not found" (the message seen in
        // kubernetes/kops#17692).
        "targetPools" => {
            for hc in body["healthChecks"].as_array().cloned().unwrap_or_default() {
                refs.extend(reference(&hc));
            }
        }
        "routes" => refs.extend(reference(&body["nextHopInstance"])),
        "instances" => {
            for disk in body["disks"].as_array().cloned().unwrap_or_default() {
                refs.extend(reference(&disk["initializeParams"]["sourceImage"]));
            }
        }
        _ => {}
    }
    refs
}

/// The references that keep their target from being deleted (GCE lets an
/// instance go while routes or target pools name it).
fn blocking_references(collection: &str, body: &Value) -> Vec<String> {
    let mut refs = Vec::new();
    match collection {
        "subnetworks" | "firewalls" | "routes" => refs.extend(reference(&body["network"])),
        "instances" => {
            for nic in body["networkInterfaces"].as_array().cloned().unwrap_or_default() {
                refs.extend(reference(&nic["network"]));
                refs.extend(reference(&nic["subnetwork"]));
            }
        }
        "forwardingRules" => {
            refs.extend(reference(&body["target"]));
            refs.extend(reference(&body["backendService"]));
            refs.extend(reference(&body["_address"]));
        }
        // A backend service keeps its health checks and backend groups in
        // use; a router its network and its NAT's addresses.
        "backendServices" => {
            for hc in body["healthChecks"].as_array().cloned().unwrap_or_default() {
                refs.extend(reference(&hc));
            }
            for b in body["backends"].as_array().cloned().unwrap_or_default() {
                refs.extend(reference(&b["group"]));
            }
        }
        "routers" => {
            refs.extend(reference(&body["network"]));
            for nat in body["nats"].as_array().cloned().unwrap_or_default() {
                for ip in nat["natIps"].as_array().cloned().unwrap_or_default() {
                    refs.extend(reference(&ip));
                }
            }
        }
        "instanceGroups" => {
            refs.extend(reference(&body["network"]));
            refs.extend(reference(&body["subnetwork"]));
        }
        _ => {}
    }
    refs
}

/// A body GCE refuses as invalid (400 `invalid`), beyond missing
/// properties: its message.
fn invalid_body(collection: &str, body: &Value) -> Option<String> {
    match collection {
        // "healthChecks[]: The URL of the HttpHealthCheck resource … Only
        // legacy HttpHealthChecks are supported" (compute/docs/reference/rest/v1/targetPools).
        "targetPools" => body["healthChecks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|hc| hc.as_str())
            .find(|hc| !hc.contains("/global/httpHealthChecks/"))
            .map(|hc| {
                format!("Invalid value for field 'resource.healthChecks[0]': '{hc}'. Only legacy HttpHealthChecks are supported.")
            }),
        // A health check of a type carries that type's settings
        // (compute/docs/reference/rest/v1/regionHealthChecks: `type` and
        // `httpsHealthCheck`, `tcpHealthCheck`…).
        "healthChecks" => {
            let kind = body["type"].as_str().unwrap_or_default();
            let block = match kind {
                "TCP" => "tcpHealthCheck",
                "SSL" => "sslHealthCheck",
                "HTTP" => "httpHealthCheck",
                "HTTPS" => "httpsHealthCheck",
                "HTTP2" => "http2HealthCheck",
                "GRPC" => "grpcHealthCheck",
                _ => return Some(format!("Invalid value for field 'resource.type': '{kind}'.")),
            };
            body[block]
                .is_null()
                .then(|| format!("Invalid value for field 'resource.{block}': ''. {kind} healthCheck missing."))
        }
        _ => None,
    }
}

/// The properties GCE requires, per collection: the first one missing.
fn missing_property(collection: &str, body: &Value) -> Option<&'static str> {
    let has = |v: &Value| !(v.is_null() || v.as_str() == Some("") || v.as_array().is_some_and(Vec::is_empty));
    let required: &[(&str, &Value)] = match collection {
        "subnetworks" => &[("network", &body["network"]), ("ipCidrRange", &body["ipCidrRange"])],
        "firewalls" => &[("network", &body["network"])],
        "routes" => &[("network", &body["network"]), ("destRange", &body["destRange"])],
        "backendServices" => &[("healthChecks", &body["healthChecks"])],
        "healthChecks" => &[("type", &body["type"])],
        "routers" => &[("network", &body["network"])],
        "instances" => &[
            ("machineType", &body["machineType"]),
            ("disks", &body["disks"]),
            ("networkInterfaces", &body["networkInterfaces"]),
        ],
        _ => &[],
    };
    if let Some((name, _)) = required.iter().find(|(_, v)| !has(v)) {
        return Some(name);
    }
    match collection {
        "firewalls" if !has(&body["allowed"]) && !has(&body["denied"]) => Some("allowed"),
        // A forwarding rule sends to a target (pool) or a backend service.
        "forwardingRules" if !has(&body["target"]) && !has(&body["backendService"]) => Some("target"),
        "routes"
            if ["nextHopInstance", "nextHopIp", "nextHopGateway", "nextHopNetwork"]
                .iter()
                .all(|k| !has(&body[*k])) =>
        {
            Some("nextHopInstance")
        }
        _ => None,
    }
}

fn kind_of(collection: &str) -> String {
    let singular = collection
        .strip_suffix("es")
        .filter(|s| s.ends_with("ss"))
        .unwrap_or_else(|| collection.strip_suffix('s').unwrap_or(collection));
    format!("compute#{singular}")
}

fn labels_match(item: &Value, filter: &str) -> bool {
    // `labels.KEY=VALUE`, `labels.KEY = "VALUE"`; anything else matches all.
    let Some(expr) = filter.trim().strip_prefix("labels.") else {
        return true;
    };
    let Some((k, v)) = expr.split_once('=') else {
        return true;
    };
    let (k, v) = (k.trim(), v.trim().trim_matches('"'));
    item["labels"][k].as_str() == Some(v)
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(c) => {
                        out.push(c);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A resource as the API shows it (without the fake's private `_` fields).
fn shown(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !k.starts_with('_'));
    }
    v
}

fn not_found(path: &str) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("The resource '{path}' was not found"),
    )
}

/// GCE's metadata limits: 256 KiB per value, 512 KiB in all.
fn metadata_error(body: &Value) -> Option<String> {
    let items = body["metadata"]["items"].as_array().cloned().unwrap_or_default();
    let mut total = 0;
    for item in &items {
        let (k, v) = (
            item["key"].as_str().unwrap_or_default(),
            item["value"].as_str().unwrap_or_default(),
        );
        if v.len() > 256 * 1024 {
            return Some(format!(
                "Value for field 'resource.metadata.items[{k}].value' is too large"
            ));
        }
        total += k.len() + v.len();
    }
    (total > 512 * 1024).then(|| "Metadata total size exceeds 512 KB".to_string())
}

/// The first free host address of a CIDR range among `used`.
fn next_ip(cidr: &str, used: &[String]) -> Option<String> {
    let (ip, prefix) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    let size = 1u32.checked_shl(32 - prefix).unwrap_or(0);
    // GCE keeps the first two and the last two addresses of a range.
    (2..size.saturating_sub(2))
        .map(|i| std::net::Ipv4Addr::from(u32::from(ip) + i).to_string())
        .find(|a| !used.contains(a))
}

/// Fill in what GCE computes on insert.
/// `Err` is the path of a missing address.
fn complete_insert(s: &mut State, collection: &str, v: &mut Value) -> Result<(), String> {
    match collection {
        "instances" => {
            v["status"] = json!("RUNNING");
            let used: Vec<String> = s
                .resources
                .iter()
                .filter(|(p, _)| p.contains("/instances/"))
                .filter_map(|(_, i)| i["networkInterfaces"][0]["networkIP"].as_str().map(str::to_string))
                .collect();
            let mut nics = v["networkInterfaces"].as_array().cloned().unwrap_or_default();
            for (n, nic) in nics.iter_mut().enumerate() {
                if nic["networkIP"].as_str().is_none() {
                    let range = reference(&nic["subnetwork"])
                        .and_then(|p| s.resources.get(&p))
                        .and_then(|sub| sub["ipCidrRange"].as_str().map(str::to_string));
                    let mut taken = used.clone();
                    taken.extend(s.pending.keys().cloned());
                    let ip = range.and_then(|r| next_ip(&r, &taken));
                    if let Some(ip) = ip {
                        nic["networkIP"] = json!(ip);
                    }
                }
                nic["name"] = json!(format!("nic{n}"));
                for ac in nic["accessConfigs"].as_array_mut().into_iter().flatten() {
                    if ac["natIP"].as_str().is_none() {
                        s.ids += 1;
                        ac["natIP"] = json!(format!("198.51.100.{}", 1 + s.ids % 250));
                    }
                }
            }
            v["networkInterfaces"] = json!(nics);
        }
        "addresses" => {
            if v["address"].as_str().is_none() {
                v["address"] = json!(format!("203.0.113.{}", 1 + s.ids % 250));
            }
            v["status"] = json!("RESERVED");
        }
        "forwardingRules" => {
            // An address given by URL: the rule shows its IP and keeps it in use.
            if let Some(path) = reference(&v["IPAddress"]) {
                let Some(ip) = s
                    .resources
                    .get(&path)
                    .and_then(|a| a["address"].as_str())
                    .map(str::to_string)
                else {
                    return Err(path);
                };
                v["_address"] = json!(path);
                v["IPAddress"] = json!(ip);
            }
        }
        "targetPools" if v["instances"].is_null() => v["instances"] = json!([]),
        "instanceGroups" => {
            v["size"] = json!(0);
            v["_instances"] = json!([]);
        }
        _ => {}
    }
    Ok(())
}

/// What a request gets: an answer now, or (an operation's wait) an answer
/// once the operation is DONE or the deadline passes.
enum Answer {
    Now(Reply),
    Wait { op_path: String, left: Duration },
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: &Mutex<State>,
    config: &Config,
    base: &str,
    started: Instant,
) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = match state.lock() {
        Ok(mut s) => respond(&mut s, &method, &path, &query, &body, config, base, started),
        Err(_) => Answer::Now(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backendError",
            "state poisoned",
        )),
    };
    match answer {
        Answer::Now(r) => r,
        Answer::Wait { op_path, left } => {
            tokio::time::sleep(left.min(config.wait_deadline)).await;
            let Ok(mut s) = state.lock() else {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "backendError", "state poisoned");
            };
            advance(&mut s, Duration::ZERO);
            match s.operations.get(&op_path) {
                Some(op) => reply(StatusCode::OK, &shown(&op.value)),
                None => not_found(&op_path),
            }
        }
    }
}

/// The answer to a request, decided under the state's lock.
#[allow(clippy::too_many_arguments)]
fn respond(
    s: &mut State,
    method: &hyper::Method,
    path: &str,
    query: &str,
    body: &[u8],
    config: &Config,
    base: &str,
    started: Instant,
) -> Answer {
    let method = method.clone();
    let (path, query) = (path.to_string(), query.to_string());
    let r = respond_now(s, method, path, query, body, config, base, started);
    let header = |k: &str| r.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    match (header(WAIT_OP), header(WAIT_US).and_then(|us| us.parse().ok())) {
        (Some(op_path), Some(us)) => Answer::Wait {
            op_path,
            left: Duration::from_micros(us),
        },
        _ => Answer::Now(r),
    }
}

/// The fake's own marks of a wait still to be served (never sent).
const WAIT_OP: &str = "x-hke-fake-wait-operation";
const WAIT_US: &str = "x-hke-fake-wait-us";

fn waiting(op_path: &str, left: Duration) -> Reply {
    let mut r = reply(StatusCode::ACCEPTED, &json!({}));
    let us = (left.as_micros() as u64 + 1).to_string();
    for (k, v) in [(WAIT_OP, op_path.to_string()), (WAIT_US, us)] {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// See `respond`; a wait is answered here only when it need not wait.
#[allow(clippy::too_many_arguments)]
fn respond_now(
    s: &mut State,
    method: hyper::Method,
    path: String,
    query: String,
    body: &[u8],
    config: &Config,
    base: &str,
    started: Instant,
) -> Reply {
    s.requests += 1;
    let n = s.requests;
    let short = path.strip_prefix("/compute/v1/").unwrap_or(&path).to_string();
    let named = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["name"].as_str().map(|n| format!(" {n}")))
        .unwrap_or_default();
    let call = format!("{method} {short}{named}");
    s.calls.push(call.clone());
    let (group, metric) = quota_group(method.as_str(), &short);
    if let Some(q) = config.rate_quota {
        let window = (started.elapsed().as_nanos() / q.window.as_nanos().max(1)) as u64;
        let used = s.quota_used.entry((group, window)).or_default();
        if *used >= q.calls {
            s.throttled += 1;
            s.refused.push(format!("403 rateLimitExceeded {call}"));
            return rate_quota_error(metric, "rateLimitExceeded");
        }
        *used += 1;
    }
    if config.throttle_every.is_some_and(|e| e > 0 && n % e == 0) {
        s.throttled += 1;
        s.refused.push(format!("429 rateLimitExceeded {call}"));
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        );
    }
    if let Some(e) = config.rate_quota_every.filter(|e| *e > 0 && n % *e == 0) {
        let reason = if (n / e) % 2 == 0 {
            "userRateLimitExceeded"
        } else {
            "rateLimitExceeded"
        };
        s.throttled += 1;
        s.refused.push(format!("403 {reason} {call}"));
        return rate_quota_error(metric, reason);
    }
    if config.forbidden.iter().any(|f| call.starts_with(f.as_str())) {
        s.refused.push(format!("403 forbidden {call}"));
        return forbidden_error(&method, &short);
    }
    if config.unavailable_every.is_some_and(|e| e > 0 && n % e == 0) {
        s.refused.push(format!("503 backendError {call}"));
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "backendError",
            "The service is currently unavailable.",
        );
    }
    advance(s, Duration::ZERO);
    let link = |p: &str| format!("{base}/compute/v1/{p}");
    let (project, scope, collection, name, verb) = match parse(&path) {
        None => return error(StatusCode::NOT_FOUND, "notFound", &format!("no such API: {path}")),
        Some(Target::Zone { project, zone }) => {
            let region = zone.rsplit_once('-').map(|(r, _)| r).unwrap_or(&zone).to_string();
            return reply(
                StatusCode::OK,
                &json!({"kind": "compute#zone", "name": zone, "status": "UP",
                    "region": link(&format!("projects/{project}/regions/{region}")),
                    "selfLink": link(&format!("projects/{project}/zones/{zone}"))}),
            );
        }
        Some(Target::ImageFamily { project, family }) => {
            let prefix = format!("projects/{project}/global/images/");
            let newest = s
                .resources
                .iter()
                .filter(|(p, v)| {
                    p.starts_with(&prefix) && v["family"].as_str() == Some(family.as_str()) && v["deprecated"].is_null()
                })
                .max_by_key(|(_, v)| v["creationTimestamp"].as_str().unwrap_or_default().to_string());
            return match newest {
                Some((_, v)) => reply(StatusCode::OK, &shown(v)),
                None => not_found(&format!("projects/{project}/global/images/family/{family}")),
            };
        }
        Some(Target::Aggregated { project, collection }) => {
            if method != hyper::Method::GET {
                return error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "badRequest",
                    &format!("{method} {path}"),
                );
            }
            let filter = query_param(&query, "filter").unwrap_or_default();
            let mut scopes: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            let prefix = format!("projects/{project}/");
            for (p, v) in &s.resources {
                let Some(rest) = p.strip_prefix(&prefix) else { continue };
                let parts: Vec<&str> = rest.split('/').collect();
                let scope = match parts.as_slice() {
                    ["global", c, _] if *c == collection => "global".to_string(),
                    [k @ ("regions" | "zones"), z, c, _] if *c == collection => format!("{k}/{z}"),
                    _ => continue,
                };
                if labels_match(v, &filter) {
                    scopes.entry(scope).or_default().push(shown(v));
                }
            }
            let items: serde_json::Map<String, Value> = scopes
                .into_iter()
                .map(|(scope, list)| (scope, json!({ collection.clone(): list })))
                .collect();
            return reply(
                StatusCode::OK,
                &json!({"kind": format!("{}AggregatedList", kind_of(&collection)), "id": format!("projects/{project}/aggregated/{collection}"), "items": items}),
            );
        }
        Some(Target::Resource {
            project,
            scope,
            collection,
            name,
            verb,
        }) => (project, scope, collection, name, verb),
    };
    let coll_path = format!("projects/{project}/{scope}/{collection}");
    match (method.as_str(), collection.as_str(), &name, verb.as_deref()) {
        ("GET", "operations", Some(name), None) => match s.operations.get(&format!("{coll_path}/{name}")) {
            Some(op) => reply(StatusCode::OK, &shown(&op.value)),
            None => not_found(&format!("{coll_path}/{name}")),
        },
        ("POST", "operations", Some(name), Some("wait")) => {
            let op_path = format!("{coll_path}/{name}");
            let Some(op) = s.operations.get(&op_path) else {
                return not_found(&op_path);
            };
            let total = op.value["_total_ms"]
                .as_u64()
                .map(Duration::from_millis)
                .unwrap_or_default();
            let left = total.saturating_sub(op.started.elapsed());
            if left.is_zero() {
                reply(StatusCode::OK, &shown(&op.value))
            } else {
                waiting(&op_path, left)
            }
        }
        ("GET", "instances", Some(name), Some("serialPort")) => {
            let path = format!("{coll_path}/{name}");
            match s.resources.get(&path) {
                Some(_) => {
                    let contents = format!(
                        "[    1.0] fake serial console of {name}\n### hke-log-begin bootstrap.log\n{name}: bootstrap started (fake)\n### hke-log-end bootstrap.log\n"
                    );
                    let start: u64 = query_param(&query, "start").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let slice = contents.get(start as usize..).unwrap_or_default().to_string();
                    reply(
                        StatusCode::OK,
                        &json!({"kind": "compute#serialPortOutput", "contents": slice, "start": start.to_string(),
                            "next": contents.len().to_string(), "selfLink": link(&format!("{path}/serialPort"))}),
                    )
                }
                None => not_found(&path),
            }
        }
        ("GET", _, Some(name), None) => match s.resources.get(&format!("{coll_path}/{name}")) {
            Some(v) => reply(StatusCode::OK, &shown(v)),
            None => not_found(&format!("{coll_path}/{name}")),
        },
        ("GET", _, None, None) => {
            let filter = query_param(&query, "filter").unwrap_or_default();
            let prefix = format!("{coll_path}/");
            let items: Vec<Value> = s
                .resources
                .iter()
                .filter(|(p, _)| p.starts_with(&prefix) && !p[prefix.len()..].contains('/'))
                .filter(|(_, v)| labels_match(v, &filter))
                .map(|(_, v)| shown(v))
                .collect();
            reply(
                StatusCode::OK,
                &json!({"kind": format!("{}List", kind_of(&collection)), "id": coll_path, "items": items, "selfLink": link(&coll_path)}),
            )
        }
        ("POST", "instanceGroups", Some(group), Some("listInstances")) => {
            let path = format!("{coll_path}/{group}");
            match s.resources.get(&path) {
                Some(g) => {
                    let items: Vec<Value> = g["_instances"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|url| json!({"instance": url}))
                        .collect();
                    reply(
                        StatusCode::OK,
                        &json!({"kind": "compute#instanceGroupsListInstances", "id": path, "items": items}),
                    )
                }
                None => not_found(&path),
            }
        }
        ("POST", "instanceGroups", Some(group), Some(verb @ ("addInstances" | "removeInstances"))) => {
            let path = format!("{coll_path}/{group}");
            let Some(current) = s.resources.get(&path) else {
                return not_found(&path);
            };
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return error(StatusCode::BAD_REQUEST, "parseError", "Parse Error");
            };
            let urls: Vec<String> = v["instances"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|i| i["instance"].as_str().map(str::to_string))
                .collect();
            let add = verb == "addInstances";
            let members: Vec<String> = current["_instances"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(reference)
                .collect();
            let mut full = Vec::new();
            for url in &urls {
                let Some(p) = reference(&json!(url)) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid",
                        &format!("Invalid value for field 'instances': '{url}'"),
                    );
                };
                if add && !s.resources.contains_key(&p) {
                    return not_found(&p);
                }
                // "Resource '…/instances/x' is already a member of
                // '…/instanceGroups/y'." with reason memberAlreadyExists
                // (the 400 in ansible-collections/google.cloud#349;
                // kubernetes/ingress-gce#2587 ignores it).
                if add && members.contains(&p) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "memberAlreadyExists",
                        &format!("Resource '{p}' is already a member of '{path}'."),
                    );
                }
                full.push(link(&p));
            }
            operation(
                s,
                config,
                &project,
                &scope,
                verb,
                &path,
                Some(Effect::Members(path.clone(), full, add)),
                base,
            )
        }
        ("POST", "targetPools", Some(pool), Some(verb @ ("addInstance" | "removeInstance"))) => {
            let path = format!("{coll_path}/{pool}");
            if !s.resources.contains_key(&path) {
                return not_found(&path);
            }
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return error(StatusCode::BAD_REQUEST, "parseError", "Parse Error");
            };
            let urls: Vec<String> = v["instances"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|i| i["instance"].as_str().map(str::to_string))
                .collect();
            if urls.is_empty() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "required",
                    "Required field 'instances' not specified",
                );
            }
            let add = verb == "addInstance";
            let mut full = Vec::new();
            for url in &urls {
                let Some(p) = reference(&json!(url)) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid",
                        &format!("Invalid value for field 'instances': '{url}'"),
                    );
                };
                if add && !s.resources.contains_key(&p) {
                    return not_found(&p);
                }
                full.push(link(&p));
            }
            operation(
                s,
                config,
                &project,
                &scope,
                verb,
                &path,
                Some(Effect::Members(path.clone(), full, add)),
                base,
            )
        }
        ("POST", _, None, None) => {
            let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "parseError",
                    "This API does not support parsing form-encoded input.",
                );
            };
            let Some(name) = v["name"].as_str().map(str::to_string).filter(|n| valid_name(n)) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    &format!(
                        "Invalid value for field 'resource.name': '{}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'",
                        v["name"].as_str().unwrap_or_default()
                    ),
                );
            };
            if let Some(field) = missing_property(&collection, &v) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "required",
                    &format!("Required field 'resource.{field}' not specified"),
                );
            }
            if let Some(message) = metadata_error(&v) {
                return error(StatusCode::BAD_REQUEST, "invalid", &message);
            }
            if let Some(message) = invalid_body(&collection, &v) {
                return error(StatusCode::BAD_REQUEST, "invalid", &message);
            }
            let path = format!("{coll_path}/{name}");
            if s.resources.contains_key(&path) || s.pending.contains_key(&path) {
                return error(
                    StatusCode::CONFLICT,
                    "alreadyExists",
                    &format!("The resource '{path}' already exists"),
                );
            }
            for r in insert_references(&collection, &v) {
                let found = match r.split_once("/global/images/family/") {
                    Some((project, family)) => s.resources.iter().any(|(p, img)| {
                        p.starts_with(&format!("{project}/global/images/")) && img["family"].as_str() == Some(family)
                    }),
                    None => s.resources.contains_key(&r),
                };
                if !found {
                    return not_found(&r);
                }
            }
            s.ids += 1;
            let id = 4_000_000_000_000_000_000u64 + s.ids;
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), json!(id.to_string()));
                o.insert("kind".into(), json!(kind_of(&collection)));
                o.insert("selfLink".into(), json!(link(&path)));
                o.insert("creationTimestamp".into(), json!("2026-11-22T12:00:00.000-08:00"));
                if let Some(zone) = scope.strip_prefix("zones/") {
                    o.insert("zone".into(), json!(link(&format!("projects/{project}/zones/{zone}"))));
                }
                if let Some(region) = scope.strip_prefix("regions/") {
                    o.insert(
                        "region".into(),
                        json!(link(&format!("projects/{project}/regions/{region}"))),
                    );
                }
            }
            if let Err(missing) = complete_insert(s, &collection, &mut v) {
                return not_found(&missing);
            }
            s.pending.insert(path.clone(), name);
            operation(
                s,
                config,
                &project,
                &scope,
                "insert",
                &path,
                Some(Effect::Insert(path.clone(), v)),
                base,
            )
        }
        ("DELETE", _, Some(name), None) => {
            let path = format!("{coll_path}/{name}");
            if !s.resources.contains_key(&path) {
                return not_found(&path);
            }
            let users: Vec<String> = s
                .resources
                .iter()
                .filter(|(p, v)| {
                    let coll = p.rsplit('/').nth(1).unwrap_or_default();
                    blocking_references(coll, v).contains(&path)
                })
                .map(|(p, _)| p.clone())
                .collect();
            if let Some(user) = users.first() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "resourceInUseByAnotherResource",
                    &format!("The {collection} resource '{path}' is already being used by '{user}'"),
                );
            }
            operation(
                s,
                config,
                &project,
                &scope,
                "delete",
                &path,
                Some(Effect::Delete(path.clone())),
                base,
            )
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "badRequest",
            &format!("{method} {path}"),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn operation(
    s: &mut State,
    config: &Config,
    project: &str,
    scope: &str,
    kind: &str,
    target: &str,
    effect: Option<Effect>,
    base: &str,
) -> Reply {
    s.ids += 1;
    let name = format!("operation-{}-{kind}", s.ids);
    let collection = target.rsplit('/').nth(1).unwrap_or_default();
    let time = config
        .operation_times
        .get(collection)
        .copied()
        .unwrap_or(config.operation_time);
    let op_path = format!("projects/{project}/{scope}/operations/{name}");
    let mut v = json!({
        "kind": "compute#operation",
        "id": (5_000_000_000_000_000_000u64 + s.ids).to_string(),
        "name": name,
        "operationType": kind,
        "targetLink": format!("{base}/compute/v1/{target}"),
        "status": "PENDING",
        "progress": 0,
        "insertTime": "2026-11-22T12:00:00.000-08:00",
        "selfLink": format!("{base}/compute/v1/{op_path}"),
        "_total_ms": time.as_millis() as u64,
    });
    if let Some(region) = scope.strip_prefix("regions/") {
        v["region"] = json!(format!("{base}/compute/v1/projects/{project}/regions/{region}"));
    }
    if let Some(zone) = scope.strip_prefix("zones/") {
        v["zone"] = json!(format!("{base}/compute/v1/projects/{project}/zones/{zone}"));
    }
    let out = shown(&v);
    s.operations.insert(
        op_path,
        Operation {
            started: Instant::now(),
            value: v,
            effect,
        },
    );
    // An operation of zero time is done at once.
    advance(s, Duration::ZERO);
    reply(StatusCode::OK, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_names_and_filters() {
        assert_eq!(
            parse("/compute/v1/projects/p1/regions/us-central1/subnetworks/s1"),
            Some(Target::Resource {
                project: "p1".into(),
                scope: "regions/us-central1".into(),
                collection: "subnetworks".into(),
                name: Some("s1".into()),
                verb: None,
            })
        );
        assert_eq!(
            parse("/compute/v1/projects/p1/aggregated/instances"),
            Some(Target::Aggregated {
                project: "p1".into(),
                collection: "instances".into()
            })
        );
        assert_eq!(
            parse("/compute/v1/projects/windows-cloud/global/images/family/windows-2022-core"),
            Some(Target::ImageFamily {
                project: "windows-cloud".into(),
                family: "windows-2022-core".into()
            })
        );
        assert!(parse("/compute/v1/projects/p1/global").is_none());
        assert_eq!(
            next_ip("10.240.0.0/16", &["10.240.0.2".into()]).as_deref(),
            Some("10.240.0.3")
        );
        assert!(missing_property("instances", &json!({"name": "x"})).is_some());
        assert!(missing_property("routes", &json!({"network": "n", "destRange": "10.0.0.0/24"})).is_some());
        assert!(valid_name("hke-vnet-1") && !valid_name("Hke") && !valid_name("a-") && !valid_name(""));
        assert_eq!(kind_of("addresses"), "compute#address");
        assert_eq!(kind_of("networks"), "compute#network");
        let item = json!({"labels": {"hke-io-cluster": "c1"}});
        assert!(labels_match(&item, "labels.hke-io-cluster = \"c1\""));
        assert!(!labels_match(&item, "labels.hke-io-cluster=c2"));
        assert_eq!(percent_decode("labels.a%3Db+x"), "labels.a=b x");
        let group = |m: &str, p: &str| quota_group(m, p).0;
        assert_eq!(group("POST", "projects/p/global/networks"), "mutations");
        assert_eq!(group("DELETE", "projects/p/zones/z/instances/i"), "mutations");
        assert_eq!(
            group("POST", "projects/p/regions/r/targetPools/t/addInstance"),
            "mutations"
        );
        assert_eq!(group("GET", "projects/p/global/networks/n"), "reads");
        assert_eq!(group("GET", "projects/p/zones/z/instances/i"), "reads");
        assert_eq!(group("GET", "projects/p/zones/z"), "reads");
        assert_eq!(group("GET", "projects/p/zones/z/instances/i/serialPort"), "reads");
        assert_eq!(group("GET", "projects/p/global/images/family/f"), "reads");
        assert_eq!(group("GET", "projects/p/global/firewalls"), "lists");
        assert_eq!(group("GET", "projects/p/zones/z/instances"), "lists");
        assert_eq!(group("GET", "projects/p/aggregated/instances"), "aggregated-lists");
        assert_eq!(group("GET", "projects/p/zones/z/operations/o"), "operation-reads");
        assert_eq!(group("GET", "projects/p/global/operations/o"), "operation-reads");
        assert_eq!(group("POST", "projects/p/zones/z/operations/o/wait"), "operation-waits");
        assert_eq!(group("POST", "projects/p/global/operations/o/wait"), "operation-waits");
    }
}
