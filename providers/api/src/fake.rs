//! A fake cloud kept in a directory, for tests, benchmarks and demos.
//!
//! The resources live in `<dir>/resources.jsonl`, an append-only log of puts
//! and deletes replayed at open, so a killed `hke` and its re-run see the same
//! cloud, and a test can list what is left (`FakeCloud::resources_in`). It
//! behaves like a strict cloud: names are unique per kind except for machines
//! (which, like EC2 instances, can be duplicated unless the same client token
//! is sent), creating something that references a missing resource fails,
//! deleting something still referenced fails with a transient
//! `DependencyViolation`, and deleting what is not there is `NotFound`.
//!
//! Faults are injected by call number (1-based, counting every call):
//! throttling with `Retry-After`, a permanent failure, or a process abort
//! ("crash") before or after the call's effect. Every call is appended to
//! `<dir>/calls.jsonl` with its start time.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::ProviderError;
use crate::provider::Provider;
use crate::resource::{outputs, Found, Kind, Outputs, Request, Spec, OUT_ADDRESS, OUT_DNS_NAME, OUT_PRIVATE_IP};
use crate::TAG_CLUSTER;

/// Behaviour of the fake cloud.
#[derive(Debug, Clone, Default)]
pub struct FakeConfig {
    /// Create latency per kind (default: `default_latency`).
    pub latency: BTreeMap<Kind, Duration>,
    /// Delete latency per kind (default: the create latency).
    pub delete_latency: BTreeMap<Kind, Duration>,
    pub default_latency: Duration,
    /// Latency of reads and lists.
    pub read_latency: Duration,
    /// Every Nth call is throttled.
    pub throttle_every: Option<u64>,
    /// The Retry-After of a throttled call.
    pub retry_after: Duration,
    /// The Nth call fails permanently.
    pub fail_at: Option<u64>,
    /// The Nth call aborts the process: before its effect when N is even,
    /// after it when N is odd (the worst case: created, id never returned).
    pub crash_at: Option<u64>,
}

impl FakeConfig {
    /// Read the configuration from `HKE_FAKE_*` variables through `get`
    /// (tests pass their own lookup; the binary passes its environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<FakeConfig, String> {
        let num = |name: &str| -> Result<Option<u64>, String> {
            match get(name) {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("{name}={v:?} is not a whole number")),
            }
        };
        let ms = |n: Option<u64>| n.map(Duration::from_millis);
        let mut c = FakeConfig {
            default_latency: ms(num("HKE_FAKE_LATENCY_MS")?).unwrap_or(Duration::from_millis(5)),
            read_latency: ms(num("HKE_FAKE_READ_LATENCY_MS")?).unwrap_or(Duration::from_millis(1)),
            throttle_every: num("HKE_FAKE_THROTTLE_EVERY")?,
            retry_after: ms(num("HKE_FAKE_RETRY_AFTER_MS")?).unwrap_or(Duration::from_millis(50)),
            fail_at: num("HKE_FAKE_FAIL_AT")?,
            crash_at: num("HKE_FAKE_CRASH_AT")?,
            ..FakeConfig::default()
        };
        if let Some(m) = ms(num("HKE_FAKE_MACHINE_LATENCY_MS")?) {
            c.latency.insert(Kind::Machine, m);
        }
        Ok(c)
    }

    pub fn create_latency(&self, kind: Kind) -> Duration {
        self.latency.get(&kind).copied().unwrap_or(self.default_latency)
    }

    pub fn delete_latency(&self, kind: Kind) -> Duration {
        self.delete_latency
            .get(&kind)
            .copied()
            .unwrap_or_else(|| self.create_latency(kind))
    }
}

/// A resource as the fake cloud stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    pub id: String,
    pub kind: Kind,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub client_token: String,
    pub references: Vec<String>,
    pub outputs: Outputs,
    pub spec: Spec<String>,
    pub user_data: Option<String>,
}

/// One line of `calls.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub n: u64,
    /// Milliseconds since the Unix epoch when the call arrived.
    pub at_ms: u64,
    pub op: String,
    pub kind: Option<Kind>,
    pub name: String,
    /// `ok`, `throttled`, `failed`, `notFound`, `inUse`, `exists`.
    pub result: String,
}

#[derive(Debug)]
pub struct FakeCloud {
    dir: PathBuf,
    config: FakeConfig,
    calls: AtomicU64,
    ids: AtomicU64,
    /// The resources, indexed by id and written through to the log. Also
    /// serializes check-then-write (latency is spent outside it).
    state: Mutex<BTreeMap<String, Stored>>,
    log: Mutex<fs::File>,
    calls_log: Mutex<fs::File>,
}

/// One line of `resources.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum LogLine {
    Put(Box<Stored>),
    Delete(String),
}

/// Cut a log back to its last complete line.
fn trim_torn_tail(path: &Path) -> std::io::Result<()> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if data.is_empty() || data.ends_with(b"\n") {
        return Ok(());
    }
    let keep = data.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
    fs::OpenOptions::new().write(true).open(path)?.set_len(keep as u64)
}

const RESOURCES_LOG: &str = "resources.jsonl";
const CALLS_LOG: &str = "calls.jsonl";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn io_err(e: std::io::Error, what: &Path) -> ProviderError {
    ProviderError::transient("FakeIo", format!("fake cloud cannot use {}: {e}", what.display()), None)
}

impl FakeCloud {
    pub fn open(dir: impl Into<PathBuf>, config: FakeConfig) -> Result<FakeCloud, String> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create the fake cloud in {}: {e}", dir.display()))?;
        let existing: BTreeMap<String, Stored> = Self::resources_in(&dir)
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        // Appends only: several processes may use one fake cloud, one after
        // the other, and a rewrite could lose another's appends.
        let path = dir.join(RESOURCES_LOG);
        // A process aborted mid-append leaves a torn last line: cut it, so
        // the next append starts on a line of its own.
        for log in [path.clone(), dir.join(CALLS_LOG)] {
            trim_torn_tail(&log).map_err(|e| format!("cannot repair {}: {e}", log.display()))?;
        }
        let append = |p: PathBuf| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| format!("cannot open {}: {e}", p.display()))
        };
        let log = Mutex::new(append(path)?);
        let calls_log = Mutex::new(append(dir.join(CALLS_LOG))?);
        // Continue id numbering after whatever is already there.
        let next = existing
            .keys()
            .filter_map(|id| id.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()))
            .max()
            .unwrap_or(0);
        Ok(FakeCloud {
            dir,
            config,
            calls: AtomicU64::new(0),
            ids: AtomicU64::new(next),
            state: Mutex::new(existing),
            log,
            calls_log,
        })
    }

    /// How many calls this process made.
    pub fn call_count(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &FakeConfig {
        &self.config
    }

    /// Every resource in the cloud.
    pub fn resources(&self) -> Vec<Stored> {
        let mut v: Vec<Stored> = self
            .state
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| (a.kind, &a.name, &a.id).cmp(&(b.kind, &b.name, &b.id)));
        v
    }

    fn poisoned() -> ProviderError {
        ProviderError::permanent("FakePoisoned", "fake cloud lock poisoned")
    }

    /// Every resource of the fake cloud in `dir`.
    pub fn resources_in(dir: &Path) -> Vec<Stored> {
        let mut live: BTreeMap<String, Stored> = BTreeMap::new();
        for line in fs::read_to_string(dir.join(RESOURCES_LOG)).unwrap_or_default().lines() {
            // A torn last line (a crash mid-append) never happened.
            match serde_json::from_str::<LogLine>(line) {
                Ok(LogLine::Put(s)) => {
                    live.insert(s.id.clone(), *s);
                }
                Ok(LogLine::Delete(id)) => {
                    live.remove(&id);
                }
                Err(_) => break,
            }
        }
        let mut v: Vec<Stored> = live.into_values().collect();
        v.sort_by(|a, b| (a.kind, &a.name, &a.id).cmp(&(b.kind, &b.name, &b.id)));
        v
    }

    /// Every call recorded in `dir`.
    pub fn calls_in(dir: &Path) -> Vec<Call> {
        fs::read_to_string(dir.join(CALLS_LOG))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn record(&self, n: u64, at_ms: u64, op: &str, kind: Option<Kind>, name: &str, result: &str) {
        let call = Call {
            n,
            at_ms,
            op: op.into(),
            kind,
            name: name.into(),
            result: result.into(),
        };
        if let (Ok(line), Ok(mut f)) = (serde_json::to_string(&call), self.calls_log.lock()) {
            let _ = writeln!(f, "{line}");
        }
    }

    /// Count the call and apply injected faults that come before any effect.
    fn begin(&self, op: &str, kind: Option<Kind>, name: &str) -> Result<(u64, u64), ProviderError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let at = now_ms();
        if self.config.crash_at == Some(n) && n % 2 == 0 {
            self.record(n, at, op, kind, name, "crashed");
            std::process::abort();
        }
        if self
            .config
            .throttle_every
            .is_some_and(|every| every > 0 && n % every == 0)
        {
            self.record(n, at, op, kind, name, "throttled");
            return Err(ProviderError::transient(
                "Throttled",
                format!("{op} {name}: too many requests"),
                Some(self.config.retry_after),
            ));
        }
        if self.config.fail_at == Some(n) {
            self.record(n, at, op, kind, name, "failed");
            return Err(ProviderError::permanent(
                "InjectedFailure",
                format!("{op} {name}: injected failure at call {n}"),
            ));
        }
        Ok((n, at))
    }

    fn after_effect(&self, n: u64) {
        if self.config.crash_at == Some(n) && n % 2 == 1 {
            std::process::abort();
        }
    }

    /// Append a line to the resource log (one write: a crash leaves at most
    /// a torn last line, which replay ignores).
    fn append(&self, line: &LogLine) -> Result<(), ProviderError> {
        let path = self.dir.join(RESOURCES_LOG);
        let mut text = serde_json::to_vec(line).map_err(|e| ProviderError::permanent("FakeEncode", e.to_string()))?;
        text.push(b'\n');
        let mut f = self.log.lock().map_err(|_| Self::poisoned())?;
        f.write_all(&text).map_err(|e| io_err(e, &path))
    }

    fn outputs_for(&self, req: &Request, id: &str, all: &BTreeMap<String, Stored>) -> Outputs {
        let seq = self.ids.load(Ordering::SeqCst);
        let mut more: Vec<(&str, String)> = Vec::new();
        match &req.spec {
            Spec::PublicAddress { dns_label, .. } => {
                more.push((OUT_ADDRESS, format!("203.0.113.{}", 1 + seq % 250)));
                if let Some(label) = dns_label {
                    more.push((OUT_DNS_NAME, format!("{label}.fake.hke.invalid")));
                }
            }
            Spec::LoadBalancer {
                address: Some(address), ..
            } => {
                if let Some(a) = all.get(address) {
                    for k in [OUT_ADDRESS, OUT_DNS_NAME] {
                        if let Some(v) = a.outputs.get(k) {
                            more.push((k, v.clone()));
                        }
                    }
                }
            }
            Spec::LoadBalancer { address: None, .. } => {
                more.push((OUT_DNS_NAME, format!("{}-{seq}.lb.fake.hke.invalid", req.name)));
            }
            Spec::MachineGroup(g) => {
                more.push(("count", g.count.to_string()));
                let names: Vec<String> = (0..g.count).map(|i| format!("{}{i:06}", g.name_prefix)).collect();
                more.push(("instances", names.join(",")));
            }
            Spec::Machine(m) => {
                let ip = m
                    .private_ip
                    .clone()
                    .unwrap_or_else(|| format!("10.{}.{}.{}", 200 + (seq >> 16) % 50, (seq >> 8) % 256, seq % 256));
                more.push((OUT_PRIVATE_IP, ip));
            }
            _ => {}
        }
        let more: Vec<(&str, &str)> = more.iter().map(|(k, v)| (*k, v.as_str())).collect();
        outputs(id, &more)
    }
}

#[async_trait]
impl Provider for FakeCloud {
    fn cloud(&self) -> &str {
        "fake"
    }

    async fn create(&self, req: &Request) -> Result<Outputs, ProviderError> {
        let kind = req.spec.kind();
        let (n, at) = self.begin("create", Some(kind), &req.name)?;
        tokio::time::sleep(self.config.create_latency(kind)).await;
        let result = {
            let mut all = self.state.lock().map_err(|_| Self::poisoned())?;
            if let Some(existing) = all
                .values()
                .find(|s| s.client_token == req.client_token && s.kind == kind)
            {
                Ok(existing.outputs.clone())
            } else if kind != Kind::Machine && all.values().any(|s| s.kind == kind && s.name == req.name) {
                Err(ProviderError::already_exists(format!("{kind} {} exists", req.name)))
            } else if let Some(missing) = req.references.iter().find(|r| !all.contains_key(*r)) {
                Err(ProviderError::permanent(
                    "InvalidReference",
                    format!("{kind} {} references {missing}, which does not exist", req.name),
                ))
            } else {
                let seq = self.ids.fetch_add(1, Ordering::SeqCst) + 1;
                let id = format!("{}-{seq:06}", kind.name().to_ascii_lowercase());
                let outputs = self.outputs_for(req, &id, &all);
                let outputs_clone = outputs.clone();
                let stored = Stored {
                    id,
                    kind,
                    name: req.name.clone(),
                    tags: req.tags.clone(),
                    client_token: req.client_token.clone(),
                    references: req.references.clone(),
                    outputs: outputs.clone(),
                    spec: req.spec.clone(),
                    user_data: req.user_data.clone(),
                };
                self.append(&LogLine::Put(Box::new(stored.clone()))).map(|()| {
                    all.insert(stored.id.clone(), stored);
                    outputs_clone
                })
            }
        };
        let label = match &result {
            Ok(_) => "ok",
            Err(e) if e.class == crate::Class::AlreadyExists => "exists",
            Err(_) => "failed",
        };
        self.record(n, at, "create", Some(kind), &req.name, label);
        self.after_effect(n);
        result
    }

    async fn read(&self, kind: Kind, name: &str) -> Result<Option<Outputs>, ProviderError> {
        let (n, at) = self.begin("read", Some(kind), name)?;
        tokio::time::sleep(self.config.read_latency).await;
        let found = self
            .resources()
            .into_iter()
            .find(|s| s.kind == kind && s.name == name)
            .map(|s| s.outputs);
        self.record(
            n,
            at,
            "read",
            Some(kind),
            name,
            if found.is_some() { "ok" } else { "notFound" },
        );
        self.after_effect(n);
        Ok(found)
    }

    async fn delete(&self, kind: Kind, name: &str, id: Option<&str>) -> Result<(), ProviderError> {
        let (n, at) = self.begin("delete", Some(kind), name)?;
        tokio::time::sleep(self.config.delete_latency(kind)).await;
        let result = {
            let mut all = self.state.lock().map_err(|_| Self::poisoned())?;
            let targets: Vec<Stored> = all
                .values()
                .filter(|s| s.kind == kind && (id.is_some_and(|i| i == s.id) || (id.is_none() && s.name == name)))
                .cloned()
                .collect();
            if targets.is_empty() {
                Err(ProviderError::not_found(format!("{kind} {name} not found")))
            } else if let Some(user) = all
                .values()
                .find(|s| s.references.iter().any(|r| targets.iter().any(|t| &t.id == r)))
            {
                Err(ProviderError::transient(
                    "DependencyViolation",
                    format!("{kind} {name} is still used by {} {}", user.kind, user.name),
                    None,
                ))
            } else {
                let mut r = Ok(());
                for t in targets {
                    match self.append(&LogLine::Delete(t.id.clone())) {
                        Ok(()) => {
                            all.remove(&t.id);
                        }
                        Err(e) => r = Err(e),
                    }
                }
                r
            }
        };
        let label = match &result {
            Ok(()) => "ok",
            Err(e) if e.class == crate::Class::NotFound => "notFound",
            Err(e) if e.is_transient() => "inUse",
            Err(_) => "failed",
        };
        self.record(n, at, "delete", Some(kind), name, label);
        self.after_effect(n);
        result
    }

    async fn list(&self, cluster: &str) -> Result<Vec<Found>, ProviderError> {
        self.list_where(cluster, |c| c == cluster).await
    }

    async fn list_all(&self) -> Result<Vec<Found>, ProviderError> {
        self.list_where("*", |_| true).await
    }

    async fn console_output(&self, kind: Kind, name: &str, id: &str) -> Result<Vec<(String, String)>, ProviderError> {
        let (n, at) = self.begin("console", Some(kind), name)?;
        tokio::time::sleep(self.config.read_latency).await;
        let Some(stored) = self.resources().into_iter().find(|s| s.id == id) else {
            self.record(n, at, "console", Some(kind), name, "notFound");
            return Err(ProviderError::not_found(format!("{kind} {name}")));
        };
        let machines: Vec<String> = match stored.outputs.get("instances") {
            Some(list) => list.split(',').map(str::to_string).collect(),
            None => vec![stored.name.clone()],
        };
        self.record(n, at, "console", Some(kind), name, "ok");
        // What a booting node prints: firmware noise, then the bootstrap's
        // own log sections (the fake cloud boots nothing, so it says so).
        Ok(machines
            .into_iter()
            .map(|m| {
                let text = format!(
                    "[    0.000000] fake firmware: booting {m} ({id})\n\
                     ### hke-log-begin bootstrap.log\n\
                     {m}: the fake cloud runs no bootstrap\n\
                     ### hke-log-end bootstrap.log\n"
                );
                (m, text)
            })
            .collect())
    }
}

impl FakeCloud {
    async fn list_where(&self, cluster: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<Found>, ProviderError> {
        let (n, at) = self.begin("list", None, cluster)?;
        tokio::time::sleep(self.config.read_latency).await;
        let found = self
            .resources()
            .into_iter()
            .filter(|s| s.tags.get(TAG_CLUSTER).is_some_and(|c| keep(c)))
            .map(|s| Found {
                kind: s.kind,
                name: s.name,
                id: s.id,
                tags: s.tags,
            })
            .collect();
        self.record(n, at, "list", None, cluster, "ok");
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Val;
    use crate::Class;

    fn req(name: &str, spec: Spec<String>, refs: &[&str]) -> Request {
        let mut tags = BTreeMap::new();
        tags.insert(TAG_CLUSTER.to_string(), "c1".to_string());
        Request {
            logical_id: name.into(),
            name: name.into(),
            spec,
            tags,
            references: refs.iter().map(|s| s.to_string()).collect(),
            client_token: format!("tok-{name}"),
            user_data: None,
            login: None,
        }
    }

    fn quick() -> FakeConfig {
        FakeConfig {
            default_latency: Duration::from_millis(1),
            ..FakeConfig::default()
        }
    }

    #[tokio::test]
    async fn strict_cloud_semantics() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cloud = FakeCloud::open(tmp.path(), quick()).expect("open");
        let g = cloud
            .create(&req(
                "g",
                Spec::Group {
                    location: "x".into(),
                    ssh_public_key: None,
                },
                &[],
            ))
            .await
            .expect("group");
        let gid = g[crate::resource::OUT_ID].clone();
        let net = cloud
            .create(&req(
                "n",
                Spec::Network {
                    cidr: "10.0.0.0/16".into(),
                    group: gid.clone(),
                },
                &[&gid],
            ))
            .await
            .expect("network");
        // Same token: the same resource comes back.
        let again = cloud
            .create(&req(
                "n",
                Spec::Network {
                    cidr: "10.0.0.0/16".into(),
                    group: gid.clone(),
                },
                &[&gid],
            ))
            .await
            .expect("idempotent");
        assert_eq!(net, again);
        // Same name, other token: AlreadyExists.
        let mut other = req(
            "n",
            Spec::Network {
                cidr: "10.0.0.0/16".into(),
                group: gid.clone(),
            },
            &[&gid],
        );
        other.client_token = "different".into();
        assert_eq!(
            cloud.create(&other).await.expect_err("exists").class,
            Class::AlreadyExists
        );
        // A dangling reference is refused.
        let bad = cloud
            .create(&req(
                "s",
                Spec::Subnet {
                    network: "nope".into(),
                    cidr: "10.0.0.0/24".into(),
                },
                &["nope"],
            ))
            .await;
        assert_eq!(bad.expect_err("dangling").class, Class::Permanent);
        // Deleting what is in use is transient; deleting what is gone is NotFound.
        let e = cloud.delete(Kind::Group, "g", None).await.expect_err("in use");
        assert!(e.is_transient() && e.code.as_deref() == Some("DependencyViolation"));
        cloud.delete(Kind::Network, "n", None).await.expect("delete network");
        cloud.delete(Kind::Group, "g", None).await.expect("delete group");
        assert_eq!(
            cloud.delete(Kind::Group, "g", None).await.expect_err("gone").class,
            Class::NotFound
        );
        assert!(cloud.resources().is_empty());
        let _ = Val::lit("unused");
    }

    #[tokio::test]
    async fn throttling_and_failures_follow_the_call_count() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cfg = FakeConfig {
            throttle_every: Some(2),
            retry_after: Duration::from_millis(30),
            fail_at: Some(3),
            ..quick()
        };
        let cloud = FakeCloud::open(tmp.path(), cfg).expect("open");
        assert!(cloud.read(Kind::Group, "a").await.is_ok(), "call 1");
        let e = cloud.read(Kind::Group, "a").await.expect_err("call 2 throttled");
        assert_eq!(e.retry_after(), Some(Duration::from_millis(30)));
        assert_eq!(
            cloud.read(Kind::Group, "a").await.expect_err("call 3 fails").class,
            Class::Permanent
        );
        let calls = FakeCloud::calls_in(tmp.path());
        assert_eq!(
            calls.iter().map(|c| c.result.as_str()).collect::<Vec<_>>(),
            vec!["notFound", "throttled", "failed"]
        );
    }

    #[test]
    fn config_from_lookup() {
        let env: BTreeMap<&str, &str> = [
            ("HKE_FAKE_LATENCY_MS", "20"),
            ("HKE_FAKE_MACHINE_LATENCY_MS", "200"),
            ("HKE_FAKE_CRASH_AT", "7"),
        ]
        .into_iter()
        .collect();
        let c = FakeConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).expect("parses");
        assert_eq!(c.create_latency(Kind::Subnet), Duration::from_millis(20));
        assert_eq!(c.create_latency(Kind::Machine), Duration::from_millis(200));
        assert_eq!(c.crash_at, Some(7));
        assert!(FakeConfig::from_lookup(|k| (k == "HKE_FAKE_FAIL_AT").then(|| "x".to_string())).is_err());
    }
}

#[cfg(test)]
mod torn {
    use super::*;

    #[tokio::test]
    async fn a_torn_last_line_does_not_swallow_the_next_run() {
        let tmp = tempfile::tempdir().expect("tmp");
        let quick = FakeConfig {
            default_latency: Duration::from_millis(1),
            ..FakeConfig::default()
        };
        let req = |n: &str| Request {
            logical_id: n.into(),
            name: n.into(),
            spec: Spec::Group {
                location: "x".into(),
                ssh_public_key: None,
            },
            tags: BTreeMap::new(),
            references: vec![],
            client_token: n.into(),
            user_data: None,
            login: None,
        };
        {
            let cloud = FakeCloud::open(tmp.path(), quick.clone()).expect("open");
            cloud.create(&req("a")).await.expect("a");
        }
        // A crash mid-append.
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(tmp.path().join(RESOURCES_LOG))
            .expect("log");
        f.write_all(b"{\"put\":{\"id\":\"gro").expect("torn");
        let cloud = FakeCloud::open(tmp.path(), quick).expect("reopen");
        cloud.create(&req("b")).await.expect("b");
        let names: Vec<String> = FakeCloud::resources_in(tmp.path())
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, vec!["a", "b"]);
    }
}

#[cfg(test)]
mod paused {
    use super::*;

    #[test]
    fn concurrent_creates_overlap_their_latency() {
        let tmp = tempfile::tempdir().expect("tmp");
        let cfg = FakeConfig {
            default_latency: Duration::from_secs(4),
            ..FakeConfig::default()
        };
        let cloud = std::sync::Arc::new(FakeCloud::open(tmp.path(), cfg).expect("open"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("rt");
        let took = rt.block_on(async {
            let t0 = tokio::time::Instant::now();
            let mut js = tokio::task::JoinSet::new();
            for i in 0..2 {
                let cloud = cloud.clone();
                js.spawn(async move {
                    let req = Request {
                        logical_id: format!("g{i}"),
                        name: format!("g{i}"),
                        spec: Spec::Group {
                            location: "x".into(),
                            ssh_public_key: None,
                        },
                        tags: BTreeMap::new(),
                        references: vec![],
                        client_token: format!("t{i}"),
                        user_data: None,
                        login: None,
                    };
                    cloud.create(&req).await.expect("create");
                });
            }
            while js.join_next().await.is_some() {}
            t0.elapsed()
        });
        assert_eq!(took, Duration::from_secs(4));
    }
}
