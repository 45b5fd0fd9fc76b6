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
//! - every Nth request can be refused with 429 `rateLimitExceeded` or 503;
//! - list (GET of a collection) with a `labels.KEY=VALUE` filter.
//!
//! Everything it holds is in memory and readable with `resources()`.

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
    /// Refuse every Nth request with 429 (`rateLimitExceeded`).
    pub throttle_every: Option<u64>,
    /// Refuse every Nth request with 503.
    pub unavailable_every: Option<u64>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            operation_time: Duration::from_millis(300),
            throttle_every: None,
            unavailable_every: None,
        }
    }
}

#[derive(Debug)]
enum Effect {
    Insert(String, Value),
    Delete(String),
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
}

/// A running fake. Stops when dropped.
pub struct FakeGce {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeGce {
    /// Listen on a free loopback port.
    pub async fn start(config: Config) -> std::io::Result<FakeGce> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let base = format!("http://{addr}");
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
                        async move { Ok::<_, Infallible>(handle(req, &state, &config, &base).await) }
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
            state,
            stop: Some(tx),
        })
    }

    /// The endpoint to give a client (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every resource it holds, by path (`projects/p/global/networks/n`).
    pub fn resources(&self) -> BTreeMap<String, Value> {
        match self.state.lock() {
            Ok(mut s) => {
                advance(&mut s, Duration::MAX);
                s.resources.clone()
            }
            Err(_) => BTreeMap::new(),
        }
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
        }
    }
}

/// `projects/{p}/global/{c}[/{n}]`, `projects/{p}/regions|zones/{s}/{c}[/{n}]`.
struct Target {
    project: String,
    /// `global`, `regions/us-central1`, `zones/us-central1-a`.
    scope: String,
    collection: String,
    name: Option<String>,
}

fn parse(path: &str) -> Option<Target> {
    let rest = path.strip_prefix("/compute/v1/projects/")?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let (project, rest) = parts.split_first()?;
    let (scope, rest) = match rest {
        ["global", rest @ ..] => ("global".to_string(), rest),
        [kind @ ("regions" | "zones"), s, rest @ ..] => (format!("{kind}/{s}"), rest),
        _ => return None,
    };
    match rest {
        [c] => Some(Target {
            project: project.to_string(),
            scope,
            collection: c.to_string(),
            name: None,
        }),
        [c, n] => Some(Target {
            project: project.to_string(),
            scope,
            collection: c.to_string(),
            name: Some(n.to_string()),
        }),
        _ => None,
    }
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
fn references(collection: &str, body: &Value) -> Vec<String> {
    let mut refs = Vec::new();
    match collection {
        "subnetworks" | "firewalls" | "routes" => refs.extend(reference(&body["network"])),
        "instances" => {
            for nic in body["networkInterfaces"].as_array().cloned().unwrap_or_default() {
                refs.extend(reference(&nic["network"]));
                refs.extend(reference(&nic["subnetwork"]));
            }
        }
        _ => {}
    }
    refs
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

async fn handle(req: Request<hyper::body::Incoming>, state: &Mutex<State>, config: &Config, base: &str) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Ok(mut s) = state.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "backendError", "state poisoned");
    };
    s.requests += 1;
    let n = s.requests;
    if config.throttle_every.is_some_and(|e| e > 0 && n % e == 0) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        );
    }
    if config.unavailable_every.is_some_and(|e| e > 0 && n % e == 0) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "backendError",
            "The service is currently unavailable.",
        );
    }
    advance(&mut s, Duration::ZERO);
    let Some(t) = parse(&path) else {
        return error(StatusCode::NOT_FOUND, "notFound", &format!("no such API: {path}"));
    };
    let coll_path = format!("projects/{}/{}/{}", t.project, t.scope, t.collection);
    let link = |p: &str| format!("{base}/compute/v1/{p}");
    match (method.as_str(), t.collection.as_str(), &t.name) {
        ("GET", "operations", Some(name)) => match s.operations.get(&format!("{coll_path}/{name}")) {
            Some(op) => {
                let mut v = op.value.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("_total_ms");
                }
                reply(StatusCode::OK, &v)
            }
            None => error(
                StatusCode::NOT_FOUND,
                "notFound",
                &format!("The resource '{coll_path}/{name}' was not found"),
            ),
        },
        ("GET", _, Some(name)) => match s.resources.get(&format!("{coll_path}/{name}")) {
            Some(v) => reply(StatusCode::OK, v),
            None => error(
                StatusCode::NOT_FOUND,
                "notFound",
                &format!("The resource '{coll_path}/{name}' was not found"),
            ),
        },
        ("GET", _, None) => {
            let filter = query_param(&query, "filter").unwrap_or_default();
            let prefix = format!("{coll_path}/");
            let items: Vec<Value> = s
                .resources
                .iter()
                .filter(|(p, _)| p.starts_with(&prefix) && !p[prefix.len()..].contains('/'))
                .filter(|(_, v)| labels_match(v, &filter))
                .map(|(_, v)| v.clone())
                .collect();
            reply(
                StatusCode::OK,
                &json!({"kind": format!("{}List", kind_of(&t.collection)), "id": coll_path, "items": items, "selfLink": link(&coll_path)}),
            )
        }
        ("POST", _, None) => {
            let Ok(mut v) = serde_json::from_slice::<Value>(&body) else {
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
            let path = format!("{coll_path}/{name}");
            if s.resources.contains_key(&path) || s.pending.contains_key(&path) {
                return error(
                    StatusCode::CONFLICT,
                    "alreadyExists",
                    &format!("The resource '{path}' already exists"),
                );
            }
            for r in references(&t.collection, &v) {
                if !s.resources.contains_key(&r) {
                    return error(
                        StatusCode::NOT_FOUND,
                        "notFound",
                        &format!("The resource '{r}' was not found"),
                    );
                }
            }
            s.ids += 1;
            let id = 4_000_000_000_000_000_000u64 + s.ids;
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), json!(id.to_string()));
                o.insert("kind".into(), json!(kind_of(&t.collection)));
                o.insert("selfLink".into(), json!(link(&path)));
                o.insert("creationTimestamp".into(), json!("2026-11-22T12:00:00.000-08:00"));
                if t.collection == "instances" {
                    o.insert("status".into(), json!("RUNNING"));
                }
                if t.collection == "addresses" && !o.contains_key("address") {
                    o.insert("address".into(), json!(format!("203.0.113.{}", 1 + s.ids % 250)));
                }
            }
            s.pending.insert(path.clone(), name);
            operation(
                &mut s,
                config,
                &t,
                "insert",
                &path,
                Some(Effect::Insert(path.clone(), v)),
                base,
            )
        }
        ("DELETE", _, Some(name)) => {
            let path = format!("{coll_path}/{name}");
            if !s.resources.contains_key(&path) {
                return error(
                    StatusCode::NOT_FOUND,
                    "notFound",
                    &format!("The resource '{path}' was not found"),
                );
            }
            let users: Vec<String> = s
                .resources
                .iter()
                .filter(|(p, v)| {
                    let coll = p.rsplit('/').nth(1).unwrap_or_default();
                    references(coll, v).contains(&path)
                })
                .map(|(p, _)| p.clone())
                .collect();
            if let Some(user) = users.first() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "resourceInUseByAnotherResource",
                    &format!(
                        "The {} resource '{path}' is already being used by '{user}'",
                        t.collection
                    ),
                );
            }
            operation(
                &mut s,
                config,
                &t,
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

fn operation(
    s: &mut State,
    config: &Config,
    t: &Target,
    kind: &str,
    target: &str,
    effect: Option<Effect>,
    base: &str,
) -> Reply {
    s.ids += 1;
    let name = format!("operation-{}-{kind}", s.ids);
    let op_path = format!("projects/{}/{}/operations/{name}", t.project, t.scope);
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
        "_total_ms": config.operation_time.as_millis() as u64,
    });
    if let Some(region) = t.scope.strip_prefix("regions/") {
        v["region"] = json!(format!("{base}/compute/v1/projects/{}/regions/{region}", t.project));
    }
    if let Some(zone) = t.scope.strip_prefix("zones/") {
        v["zone"] = json!(format!("{base}/compute/v1/projects/{}/zones/{zone}", t.project));
    }
    let mut shown = v.clone();
    if let Some(o) = shown.as_object_mut() {
        o.remove("_total_ms");
    }
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
    reply(StatusCode::OK, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_names_and_filters() {
        let t = parse("/compute/v1/projects/p1/regions/us-central1/subnetworks/s1").expect("path");
        assert_eq!(
            (t.scope.as_str(), t.collection.as_str()),
            ("regions/us-central1", "subnetworks")
        );
        assert_eq!(t.name.as_deref(), Some("s1"));
        assert!(parse("/compute/v1/projects/p1/global").is_none());
        assert!(valid_name("hke-vnet-1") && !valid_name("Hke") && !valid_name("a-") && !valid_name(""));
        assert_eq!(kind_of("addresses"), "compute#address");
        assert_eq!(kind_of("networks"), "compute#network");
        let item = json!({"labels": {"hke-io-cluster": "c1"}});
        assert!(labels_match(&item, "labels.hke-io-cluster = \"c1\""));
        assert!(!labels_match(&item, "labels.hke-io-cluster=c2"));
        assert_eq!(percent_decode("labels.a%3Db+x"), "labels.a=b x");
    }
}
