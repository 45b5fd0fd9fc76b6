//! The executor: runs a plan against a provider, concurrently along the DAG,
//! recording intent before every create and the id after; and tears down in
//! reverse, finding by tags what the state does not know.

pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hke_provider_api::{
    Class, Kind, MachineGroupSpec, MachineSpec, Outputs, Provider, ProviderError, Request, Spec, Val,
};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::engine::state::{Entry, Journal, State, StateError, Status};
use crate::plan::{Plan, Planned};

/// When and how often to retry transient errors.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            max_attempts: 12,
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with jitter in [d/2, d], never sooner than the
    /// cloud's Retry-After.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(20)).min(self.cap);
        let half = exp / 2;
        let jitter =
            Duration::from_micros(rand::thread_rng().gen_range(0..=half.as_micros().min(u64::MAX as u128) as u64));
        (half + jitter).max(retry_after.unwrap_or_default())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    Deploy,
    Teardown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Created,
    /// Found in the cloud after a crash and taken into the state.
    Adopted,
    Unchanged,
    Deleted,
    AlreadyGone,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub created: usize,
    pub adopted: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub already_gone: usize,
    pub failed: usize,
    pub retries: usize,
    pub elapsed_ms: u64,
}

/// What the engine reports while it works; the UI renders these.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    #[serde(rename_all = "camelCase")]
    Begin {
        op: Op,
        cluster: String,
        total: usize,
        by_kind: BTreeMap<Kind, usize>,
    },
    #[serde(rename_all = "camelCase")]
    Start {
        op: Op,
        id: String,
        kind: Kind,
        name: String,
    },
    #[serde(rename_all = "camelCase")]
    Done {
        op: Op,
        id: String,
        kind: Kind,
        name: String,
        outcome: Outcome,
        elapsed_ms: u64,
    },
    #[serde(rename_all = "camelCase")]
    Retry {
        op: Op,
        id: String,
        kind: Kind,
        name: String,
        attempt: u32,
        wait_ms: u64,
        reason: String,
    },
    #[serde(rename_all = "camelCase")]
    Failed {
        op: Op,
        id: String,
        kind: Kind,
        name: String,
        error: String,
    },
    #[serde(rename_all = "camelCase")]
    Note { message: String },
    #[serde(rename_all = "camelCase")]
    End { op: Op, summary: Summary },
}

pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Produces a machine's user data once its inputs are known.
pub trait Bootstrap: Send + Sync {
    fn user_data(&self, node: &str, inputs: &BTreeMap<String, String>) -> Result<String, String>;

    /// The administrator account of a machine, for clouds that create it.
    fn login(&self, os: &hke_provider_api::Os) -> Option<hke_provider_api::Login> {
        let _ = os;
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{} failed: {}", .0.len(), .0.iter().map(|(id, e)| format!("{id}: {e}")).collect::<Vec<_>>().join("; "))]
    Failed(Vec<(String, StepError)>),
    #[error("interrupted: the calls in flight finished and are recorded; nothing new was started")]
    Interrupted,
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why one step (a resource's create or delete) failed: the cloud's own
/// error, kept typed up to `main` (which tells a refused credential from an
/// unreachable cloud from a refused request), or hke's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Cloud(#[from] ProviderError),
    /// hke's side: a reference without outputs, a boot file that would not
    /// render, the state file.
    #[error("{0}")]
    Hke(String),
}

impl From<String> for StepError {
    fn from(s: String) -> Self {
        StepError::Hke(s)
    }
}

impl EngineError {
    /// The cloud errors among the failures.
    pub fn cloud_errors(&self) -> Vec<&ProviderError> {
        match self {
            EngineError::Failed(f) => f
                .iter()
                .filter_map(|(_, e)| match e {
                    StepError::Cloud(p) => Some(p),
                    StepError::Hke(_) => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Typical create latency of each kind on a real cloud, for scheduling
/// priorities only (machines dominate; network objects are quick).
pub fn typical_latency(kind: Kind) -> Duration {
    Duration::from_secs(match kind {
        Kind::Group | Kind::Route | Kind::PlacementGroup => 2,
        Kind::Subnet | Kind::Firewall | Kind::PublicAddress => 3,
        Kind::Network | Kind::LbMember => 5,
        Kind::LoadBalancer => 10,
        Kind::Machine | Kind::MachineGroup => 60,
    })
}

pub struct Engine {
    pub provider: Arc<dyn Provider>,
    pub journal: Arc<Journal>,
    pub parallelism: usize,
    pub retry: RetryPolicy,
    pub events: EventSink,
    pub bootstrap: Arc<dyn Bootstrap>,
    /// Tags for every created resource.
    pub tags: BTreeMap<String, String>,
    pub cluster: String,
    /// Set to stop starting new work (Ctrl-C): calls in flight finish and
    /// are recorded, then the run ends with `EngineError::Interrupted`.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl Engine {
    fn cancelled(&self) -> bool {
        self.cancel.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The idempotency token of a logical resource of a cluster.
pub fn client_token(cluster: &str, logical_id: &str) -> String {
    let d = Sha256::digest(format!("{cluster}/{logical_id}").as_bytes());
    format!("hke-{}", &hex::encode(d)[..32])
}

struct Shared {
    state: Mutex<State>,
    summary: Mutex<Summary>,
}

impl Engine {
    fn emit(&self, e: Event) {
        (self.events)(&e);
    }

    /// Call `f` until it succeeds, fails permanently, or runs out of attempts.
    async fn with_retry<T, F, Fut>(
        &self,
        op: Op,
        id: &str,
        kind: Kind,
        name: &str,
        shared: &Shared,
        mut f: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Ok(t) => return Ok(t),
                Err(e) if e.is_transient() && attempt + 1 < self.retry.max_attempts => {
                    let wait = self.retry.delay(attempt, e.retry_after());
                    attempt += 1;
                    if let Ok(mut s) = shared.summary.lock() {
                        s.retries += 1;
                    }
                    self.emit(Event::Retry {
                        op,
                        id: id.into(),
                        kind,
                        name: name.into(),
                        attempt,
                        wait_ms: wait.as_millis() as u64,
                        reason: e.to_string(),
                    });
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn resolve(&self, id: &str, p: &Planned, outputs: &BTreeMap<String, Outputs>) -> Result<Request, String> {
        let mut references = BTreeSet::new();
        let spec: Spec<String> = p
            .spec
            .try_map(&mut |v: &Val| match v {
                Val::Lit(s) => Ok(s.clone()),
                Val::Ref { resource, output } => {
                    let o = outputs
                        .get(resource)
                        .ok_or_else(|| format!("{resource} has no outputs yet"))?;
                    if let Some(rid) = o.get(hke_provider_api::resource::OUT_ID) {
                        references.insert(rid.clone());
                    }
                    o.get(output)
                        .cloned()
                        .ok_or_else(|| format!("{resource} has no output {output:?}"))
                }
            })?
            .fold_sources();
        let (user_data, login) = match &spec {
            Spec::Machine(MachineSpec {
                bootstrap_inputs, os, ..
            })
            | Spec::MachineGroup(MachineGroupSpec {
                bootstrap_inputs, os, ..
            }) => (
                Some(self.bootstrap.user_data(&p.name, bootstrap_inputs)?),
                self.bootstrap.login(os),
            ),
            _ => (None, None),
        };
        Ok(Request {
            logical_id: id.into(),
            name: p.name.clone(),
            spec,
            tags: self.tags.clone(),
            references: references.into_iter().collect(),
            client_token: client_token(&self.cluster, id),
            user_data,
            login,
        })
    }

    /// Look a resource up by kind and name (with retries).
    async fn read_existing(
        &self,
        id: &str,
        kind: Kind,
        name: &str,
        shared: &Shared,
    ) -> Result<Option<Outputs>, StepError> {
        let provider = self.provider.clone();
        self.with_retry(Op::Deploy, id, kind, name, shared, || {
            let provider = provider.clone();
            let name = name.to_string();
            async move { provider.read(kind, &name).await }
        })
        .await
        .map_err(StepError::Cloud)
    }

    async fn create_one(
        &self,
        id: &str,
        req: Request,
        prior: Option<Entry>,
        shared: &Shared,
    ) -> Result<(Outputs, Outcome), StepError> {
        let kind = req.spec.kind();
        let name = req.name.clone();
        let entry = |status, outputs: Outputs| Entry {
            kind,
            name: name.clone(),
            status,
            id: outputs.get(hke_provider_api::resource::OUT_ID).cloned(),
            outputs,
        };
        let provider = self.provider.clone();
        // A previous run may have created it and died before recording the id.
        if prior.is_some() {
            if let Some(outputs) = self.read_existing(id, kind, &name, shared).await? {
                self.journal
                    .record(id, Some(entry(Status::Created, outputs.clone())))
                    .await
                    .map_err(|e| StepError::Hke(e.to_string()))?;
                return Ok((outputs, Outcome::Adopted));
            }
        }
        self.journal
            .record(id, Some(entry(Status::Intent, Outputs::new())))
            .await
            .map_err(|e| StepError::Hke(e.to_string()))?;
        let req = Arc::new(req);
        let created = self
            .with_retry(Op::Deploy, id, kind, &name, shared, || {
                let provider = provider.clone();
                let req = req.clone();
                async move { provider.create(&req).await }
            })
            .await;
        let (outputs, outcome) = match created {
            Ok(o) => (o, Outcome::Created),
            Err(e) if e.class == Class::AlreadyExists => match self.read_existing(id, kind, &name, shared).await? {
                Some(o) => (o, Outcome::Adopted),
                None => {
                    return Err(StepError::Cloud(ProviderError {
                        message: format!("{}, but it cannot be read", e.message),
                        ..e
                    }))
                }
            },
            Err(e) => return Err(StepError::Cloud(e)),
        };
        // The intent is durable: if this record is lost in a crash, the next
        // run finds the resource by name.
        self.journal
            .record_soon(id, Some(entry(Status::Created, outputs.clone())))
            .await
            .map_err(|e| StepError::Hke(e.to_string()))?;
        Ok((outputs, outcome))
    }

    /// Create everything in `plan` that `state` does not record as created.
    pub async fn deploy(self: &Arc<Self>, plan: &Plan, state: State) -> Result<(State, Summary), EngineError> {
        let started = Instant::now();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            summary: Mutex::new(Summary::default()),
        });
        self.emit(Event::Begin {
            op: Op::Deploy,
            cluster: plan.cluster.clone(),
            total: plan.resources.len(),
            by_kind: plan.summary(),
        });
        let mut outputs: BTreeMap<String, Outputs> = BTreeMap::new();
        let mut done: BTreeSet<String> = BTreeSet::new();
        {
            let st = shared
                .state
                .lock()
                .map_err(|_| EngineError::Failed(vec![("state".into(), StepError::Hke("lock poisoned".into()))]))?;
            for (id, p) in &plan.resources {
                if let Some(e) = st.resources.get(id) {
                    if e.status == Status::Created && e.id.is_some() {
                        outputs.insert(id.clone(), e.outputs.clone());
                        done.insert(id.clone());
                        self.emit(Event::Done {
                            op: Op::Deploy,
                            id: id.clone(),
                            kind: p.spec.kind(),
                            name: p.name.clone(),
                            outcome: Outcome::Unchanged,
                            elapsed_ms: 0,
                        });
                    }
                }
            }
        }
        if let Ok(mut s) = shared.summary.lock() {
            s.unchanged = done.len();
        }
        let mut waiting: BTreeMap<String, usize> = BTreeMap::new();
        let mut dependents: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, p) in &plan.resources {
            if done.contains(id) {
                continue;
            }
            let n = p.depends_on.iter().filter(|d| !done.contains(*d)).count();
            waiting.insert(id.clone(), n);
            for d in &p.depends_on {
                dependents.entry(d.clone()).or_default().push(id.clone());
            }
        }
        // Highest bottom level first; ties by id for determinism.
        let levels = plan.bottom_levels(typical_latency);
        let key = |id: &str| {
            (
                std::cmp::Reverse(levels.get(id).copied().unwrap_or_default()),
                id.to_string(),
            )
        };
        let mut ready: BTreeSet<(std::cmp::Reverse<Duration>, String)> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| key(id))
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        let mut failures: Vec<(String, StepError)> = Vec::new();
        let parallelism = self.parallelism.max(1);
        loop {
            while tasks.len() < parallelism && failures.is_empty() && !self.cancelled() {
                let Some((_, id)) = ready.pop_first() else { break };
                let p = plan.resources[&id].clone();
                let req = match self.resolve(&id, &p, &outputs) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push((id.clone(), StepError::Hke(e)));
                        break;
                    }
                };
                let prior = shared.state.lock().ok().and_then(|s| s.resources.get(&id).cloned());
                let engine = self.clone();
                let shared = shared.clone();
                self.emit(Event::Start {
                    op: Op::Deploy,
                    id: id.clone(),
                    kind: p.spec.kind(),
                    name: p.name.clone(),
                });
                tasks.spawn(async move {
                    let t0 = Instant::now();
                    let r = engine.create_one(&id, req, prior, &shared).await;
                    (id, p, r, t0.elapsed())
                });
            }
            let Some(joined) = tasks.join_next().await else { break };
            let (id, p, result, elapsed) = match joined {
                Ok(x) => x,
                Err(e) => {
                    failures.push(("task".into(), StepError::Hke(e.to_string())));
                    continue;
                }
            };
            match result {
                Ok((o, outcome)) => {
                    if let Ok(mut st) = shared.state.lock() {
                        st.resources.insert(
                            id.clone(),
                            Entry {
                                kind: p.spec.kind(),
                                name: p.name.clone(),
                                status: Status::Created,
                                id: o.get(hke_provider_api::resource::OUT_ID).cloned(),
                                outputs: o.clone(),
                            },
                        );
                    }
                    if let Ok(mut s) = shared.summary.lock() {
                        match outcome {
                            Outcome::Adopted => s.adopted += 1,
                            _ => s.created += 1,
                        }
                    }
                    self.emit(Event::Done {
                        op: Op::Deploy,
                        id: id.clone(),
                        kind: p.spec.kind(),
                        name: p.name.clone(),
                        outcome,
                        elapsed_ms: elapsed.as_millis() as u64,
                    });
                    outputs.insert(id.clone(), o);
                    for d in dependents.get(&id).into_iter().flatten() {
                        if let Some(n) = waiting.get_mut(d) {
                            *n -= 1;
                            if *n == 0 {
                                ready.insert(key(d));
                            }
                        }
                    }
                }
                Err(e) => {
                    self.emit(Event::Failed {
                        op: Op::Deploy,
                        id: id.clone(),
                        kind: p.spec.kind(),
                        name: p.name.clone(),
                        error: e.to_string(),
                    });
                    failures.push((id, e));
                }
            }
        }
        self.finish(Op::Deploy, &shared, failures, started)
    }

    /// Close a run: the summary, the End event, and the result.
    fn finish(
        &self,
        op: Op,
        shared: &Shared,
        failures: Vec<(String, StepError)>,
        started: Instant,
    ) -> Result<(State, Summary), EngineError> {
        if self.cancelled() && failures.is_empty() {
            let mut summary = shared.summary.lock().map(|s| s.clone()).unwrap_or_default();
            summary.elapsed_ms = started.elapsed().as_millis() as u64;
            self.emit(Event::End { op, summary });
            return Err(EngineError::Interrupted);
        }
        let mut summary = shared.summary.lock().map(|s| s.clone()).unwrap_or_default();
        summary.failed = failures.len();
        summary.elapsed_ms = started.elapsed().as_millis() as u64;
        self.emit(Event::End {
            op,
            summary: summary.clone(),
        });
        let state = shared.state.lock().map(|s| s.clone()).unwrap_or_default();
        if failures.is_empty() {
            Ok((state, summary))
        } else {
            Err(EngineError::Failed(failures))
        }
    }

    /// Delete every resource of the cluster: what `state` records and what
    /// the cloud reports under the cluster's tag, lowest teardown rank first.
    pub async fn teardown(self: &Arc<Self>, state: State) -> Result<(State, Summary), EngineError> {
        let started = Instant::now();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            summary: Mutex::new(Summary::default()),
        });
        let mut failures: Vec<(String, StepError)> = Vec::new();
        let mut first = true;
        if !self.cancelled() {
            self.delete_whole(&shared).await?;
        }
        // A pass deletes everything known; a later pass catches whatever the
        // first could not see: created concurrently, or an insert still in
        // flight when the sweep listed (Compute Engine lists a resource only
        // once its insert operation is DONE). A pass that failed is retried
        // only when the cloud now shows something the failed pass did not
        // have, typically the resource that kept the failed one in use.
        let mut seen: BTreeSet<(Kind, String)> = BTreeSet::new();
        for pass in 0..4 {
            let targets = self.teardown_targets(&shared).await?;
            if targets.is_empty() {
                failures.clear();
                break;
            }
            let new = targets
                .iter()
                .filter(|t| !seen.contains(&(t.kind, t.name.clone())))
                .count();
            if !failures.is_empty() && new == 0 {
                break;
            }
            seen.extend(targets.iter().map(|t| (t.kind, t.name.clone())));
            if first {
                let mut by_kind = BTreeMap::new();
                for t in &targets {
                    *by_kind.entry(t.kind).or_insert(0) += 1;
                }
                self.emit(Event::Begin {
                    op: Op::Teardown,
                    cluster: self.cluster.clone(),
                    total: targets.len(),
                    by_kind,
                });
                first = false;
            } else {
                self.emit(Event::Note {
                    message: format!("pass {}: {} more resource(s) found by tag", pass + 1, targets.len()),
                });
            }
            failures.clear();
            for rank in 0..=5u8 {
                let layer: Vec<Target> = targets
                    .iter()
                    .filter(|t| t.kind.teardown_rank() == rank)
                    .cloned()
                    .collect();
                failures.extend(self.delete_layer(layer, &shared).await);
                if !failures.is_empty() || self.cancelled() {
                    break;
                }
            }
            if self.cancelled() {
                break;
            }
        }
        self.finish(Op::Teardown, &shared, failures, started)
    }

    /// Where the cloud deletes a cluster in one call (an Azure resource
    /// group hke made), do that first: what the state records goes with it.
    async fn delete_whole(&self, shared: &Shared) -> Result<(), EngineError> {
        let provider = self.provider.clone();
        let cluster = self.cluster.clone();
        let started = Instant::now();
        let deleted = self
            .with_retry(Op::Teardown, "cluster", Kind::Group, &cluster, shared, || {
                let provider = provider.clone();
                let cluster = cluster.clone();
                async move { provider.delete_cluster(&cluster).await }
            })
            .await
            .map_err(|e| EngineError::Failed(vec![("cluster".into(), StepError::Cloud(e))]))?;
        if deleted.is_empty() {
            return Ok(());
        }
        let recorded: Vec<(String, Kind, String)> = shared
            .state
            .lock()
            .map(|s| {
                s.resources
                    .iter()
                    .map(|(id, e)| (id.clone(), e.kind, e.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        self.emit(Event::Begin {
            op: Op::Teardown,
            cluster: self.cluster.clone(),
            total: recorded.len().max(deleted.len()),
            by_kind: BTreeMap::new(),
        });
        for g in &deleted {
            self.emit(Event::Note {
                message: format!("deleted {g} with everything in it"),
            });
        }
        for (id, kind, name) in recorded {
            self.journal
                .record_soon(&id, None)
                .await
                .map_err(|e| EngineError::Failed(vec![(id.clone(), StepError::Hke(e.to_string()))]))?;
            if let Ok(mut st) = shared.state.lock() {
                st.resources.remove(&id);
            }
            if let Ok(mut s) = shared.summary.lock() {
                s.deleted += 1;
            }
            self.emit(Event::Done {
                op: Op::Teardown,
                id,
                kind,
                name,
                outcome: Outcome::Deleted,
                elapsed_ms: started.elapsed().as_millis() as u64,
            });
        }
        Ok(())
    }

    async fn teardown_targets(&self, shared: &Shared) -> Result<Vec<Target>, EngineError> {
        let provider = self.provider.clone();
        let cluster = self.cluster.clone();
        let found = self
            .with_retry(Op::Teardown, "list", Kind::Group, &cluster, shared, || {
                let provider = provider.clone();
                let cluster = cluster.clone();
                async move { provider.list(&cluster).await }
            })
            .await
            .map_err(|e| EngineError::Failed(vec![("list".into(), StepError::Cloud(e))]))?;
        let mut targets: Vec<Target> = Vec::new();
        let st = shared.state.lock().map(|s| s.clone()).unwrap_or_default();
        for (id, e) in &st.resources {
            targets.push(Target {
                logical_id: Some(id.clone()),
                kind: e.kind,
                name: e.name.clone(),
                id: e.id.clone(),
            });
        }
        for f in found {
            match targets
                .iter_mut()
                .find(|t| t.kind == f.kind && (t.id.as_deref() == Some(&f.id) || (t.id.is_none() && t.name == f.name)))
            {
                Some(t) => t.id = Some(f.id),
                None => targets.push(Target {
                    logical_id: None,
                    kind: f.kind,
                    name: f.name,
                    id: Some(f.id),
                }),
            }
        }
        Ok(targets)
    }

    async fn delete_layer(self: &Arc<Self>, layer: Vec<Target>, shared: &Arc<Shared>) -> Vec<(String, StepError)> {
        let mut failures = Vec::new();
        let mut queue = layer.into_iter();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.len() < self.parallelism.max(1) && !self.cancelled() {
                let Some(t) = queue.next() else { break };
                let engine = self.clone();
                let shared = shared.clone();
                let label = t.logical_id.clone().unwrap_or_else(|| format!("{}/{}", t.kind, t.name));
                self.emit(Event::Start {
                    op: Op::Teardown,
                    id: label.clone(),
                    kind: t.kind,
                    name: t.name.clone(),
                });
                tasks.spawn(async move {
                    let t0 = Instant::now();
                    let r = engine.delete_one(&t, &label, &shared).await;
                    (t, label, r, t0.elapsed())
                });
            }
            let Some(joined) = tasks.join_next().await else { break };
            let Ok((t, label, result, elapsed)) = joined else {
                failures.push((
                    "task".to_string(),
                    StepError::Hke("a teardown task panicked".to_string()),
                ));
                continue;
            };
            match result {
                Ok(outcome) => {
                    if let Ok(mut s) = shared.summary.lock() {
                        match outcome {
                            Outcome::AlreadyGone => s.already_gone += 1,
                            _ => s.deleted += 1,
                        }
                    }
                    self.emit(Event::Done {
                        op: Op::Teardown,
                        id: label,
                        kind: t.kind,
                        name: t.name,
                        outcome,
                        elapsed_ms: elapsed.as_millis() as u64,
                    });
                }
                Err(e) => {
                    self.emit(Event::Failed {
                        op: Op::Teardown,
                        id: label.clone(),
                        kind: t.kind,
                        name: t.name.clone(),
                        error: e.to_string(),
                    });
                    failures.push((label, e));
                }
            }
        }
        failures
    }

    async fn delete_one(&self, t: &Target, label: &str, shared: &Shared) -> Result<Outcome, StepError> {
        if let Some(lid) = &t.logical_id {
            let entry = Entry {
                kind: t.kind,
                name: t.name.clone(),
                status: Status::Deleting,
                id: t.id.clone(),
                outputs: Outputs::new(),
            };
            self.journal
                .record(lid, Some(entry))
                .await
                .map_err(|e| StepError::Hke(e.to_string()))?;
        }
        let provider = self.provider.clone();
        let r = self
            .with_retry(Op::Teardown, label, t.kind, &t.name, shared, || {
                let provider = provider.clone();
                let t = t.clone();
                async move { provider.delete(t.kind, &t.name, t.id.as_deref()).await }
            })
            .await;
        let outcome = match r {
            Ok(()) => Outcome::Deleted,
            Err(e) if e.class == Class::NotFound => Outcome::AlreadyGone,
            Err(e) => return Err(StepError::Cloud(e)),
        };
        if let Some(lid) = &t.logical_id {
            self.journal
                .record_soon(lid, None)
                .await
                .map_err(|e| StepError::Hke(e.to_string()))?;
            if let Ok(mut st) = shared.state.lock() {
                st.resources.remove(lid);
            }
        }
        Ok(outcome)
    }
}

#[derive(Debug, Clone)]
struct Target {
    logical_id: Option<String>,
    kind: Kind,
    name: String,
    id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_are_capped_and_honour_retry_after() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_attempts: 10,
        };
        for attempt in 0..12 {
            let d = p.delay(attempt, None);
            let exp = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(1));
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?}");
        }
        assert!(p.delay(0, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }

    #[test]
    fn client_tokens_are_stable_and_distinct() {
        assert_eq!(client_token("c", "machine/a"), client_token("c", "machine/a"));
        assert_ne!(client_token("c", "machine/a"), client_token("c", "machine/b"));
        assert_ne!(client_token("c1", "machine/a"), client_token("c2", "machine/a"));
        assert!(client_token("c", "x").len() <= 64);
    }
}
