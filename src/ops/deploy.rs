use std::path::{Path, PathBuf};
use std::sync::Arc;

use hke_provider_api::Provider;

use crate::context::{now_rfc3339, Env};
use crate::engine::state;
use crate::engine::{Engine, Event, EventSink, RetryPolicy, Summary};
use crate::model::load::SetArg;
use crate::model::types::Cloud;
use crate::ops::boot::BootFiles;
use crate::ops::target::{provider_for, Flags, Target};
use crate::ops::workspace::Workspace;
use crate::output::Mode;
use crate::plan;

pub use crate::ops::error::{DeployError, Failing};

pub struct Options {
    pub parallelism: usize,
    pub ttl: Option<String>,
    pub retry: RetryPolicy,
    pub durability: state::Durability,
    /// Set by Ctrl-C: stop starting new work.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

/// Take the cluster's lock, reporting a broken stale one.
fn take_lock(dir: &Path, command: &str, events: &EventSink) -> Result<state::Lock, DeployError> {
    let stale = events.clone();
    Ok(state::lock(dir, command, &now_rfc3339(), move |h| {
        stale(&Event::Note {
            message: format!("broke a stale lock of pid {} (started {})", h.pid, h.started),
        })
    })?)
}

pub struct Deployed {
    pub dir: PathBuf,
    pub summary: Summary,
    pub kubeconfig: PathBuf,
}

/// A model to deploy, as `hke deploy` takes it.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    pub text: &'a str,
    pub sets: &'a [SetArg],
    /// Default: `_output/<dnsPrefix>`.
    pub output_dir: Option<&'a Path>,
}

/// What `hke deploy` does: open (or generate) the model's workspace, resolve
/// its target (`flags` over the model over `env`), and deploy it.
pub async fn deploy_model(
    model: Model<'_>,
    flags: &Flags,
    env: &Env,
    opts: Options,
    events: EventSink,
    provider: Option<Arc<dyn Provider>>,
) -> Result<Deployed, DeployError> {
    let ws = Workspace::open_or_generate(model.text, model.sets, model.output_dir.map(Path::to_path_buf), &events)?;
    let target = ws.target(flags, env)?;
    deploy(&ws, &target, opts, events, provider).await
}

/// Deploy (or continue deploying) the cluster of a workspace.
pub async fn deploy(
    ws: &Workspace,
    target: &Target,
    opts: Options,
    events: EventSink,
    provider: Option<Arc<dyn Provider>>,
) -> Result<Deployed, DeployError> {
    let dir = ws.dir.clone();
    let c = ws.cluster();
    let plan = &ws.plan;
    crate::output::write_atomic(
        &dir.join("plan.json"),
        &serde_json::to_vec_pretty(plan).unwrap_or_default(),
        Mode::Public,
    )?;
    let _lock = take_lock(&dir, "hke deploy", &events)?;
    let provider = match provider {
        Some(p) => p,
        None => provider_for(target).await?,
    };
    let mut st = state::load(&dir)?;
    st.cluster = c.name.to_string();
    st.cloud = c.provider.cloud.to_string();
    let created = match &st.created {
        Some(c) => c.clone(),
        None => {
            // The creation time is the first deploy's, also when that
            // deploy is killed before its state is folded at the end: kept
            // before any cloud call, so a resumed deploy tags what it makes
            // (and re-tags what it adopts) with the same `hke.io/created`.
            let now = now_rfc3339();
            st.created = Some(now.clone());
            state::compact(&dir, &st)?;
            now
        }
    };
    let journal = Arc::new(state::Journal::open_with(&dir, opts.durability)?);
    let tags = hke_provider_api::standard_tags(c.name.as_str(), &created, opts.ttl.as_deref(), &c.tags);
    let engine = Arc::new(Engine {
        provider,
        journal: journal.clone(),
        parallelism: opts.parallelism,
        retry: opts.retry.clone(),
        events: events.clone(),
        bootstrap: Arc::new(BootFiles::new(c, &ws.prepared.pki, plan)),
        tags,
        cluster: c.name.to_string(),
        cancel: opts.cancel.clone(),
    });
    let result = engine.deploy(plan, st.clone()).await;
    drop(engine);
    if let Ok(j) = Arc::try_unwrap(journal) {
        j.close();
    }
    // Fold the journal into the snapshot whatever happened.
    let merged = state::load(&dir)?;
    let merged = state::State {
        cluster: st.cluster.clone(),
        cloud: st.cloud.clone(),
        created: st.created.clone(),
        ..merged
    };
    state::compact(&dir, &merged)?;
    let (_, summary) = result.map_err(|e| DeployError::Engine(e, dir.clone()))?;
    if !c.endpoint.resolved {
        // The address is known now: point the kubeconfig at it.
        let lb = merged
            .resources
            .get(plan::LB)
            .map(|e| e.outputs.clone())
            .unwrap_or_default();
        if let Some(host) = lb.get("dnsName").or_else(|| lb.get("address")) {
            ws.set_kubeconfig_server(&format!("https://{host}:{}", c.endpoint.port))?;
        }
    }
    if c.provider.cloud == Cloud::Fake {
        // The fake cloud boots no machine; its load balancer can front a
        // real API server instead (a kwok control plane in the tests), at
        // HKE_FAKE_API_SERVER (host:port; it must serve hke's certificate).
        if let Some(addr) = &target.tuning.fake_api_server {
            ws.set_kubeconfig_server(&format!("https://{addr}"))?;
        }
    }
    Ok(Deployed {
        dir,
        summary,
        kubeconfig: ws.kubeconfig(),
    })
}

pub struct TornDown {
    pub dir: PathBuf,
    pub summary: Summary,
}

/// What to tear down.
pub struct TeardownOptions {
    /// The cluster's output directory (state, lock).
    pub dir: PathBuf,
    pub retry: RetryPolicy,
    pub parallelism: usize,
    /// Set by Ctrl-C: stop starting new work.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

/// Tear down a cluster.
pub async fn teardown(
    target: &Target,
    opts: TeardownOptions,
    events: EventSink,
    provider: Option<Arc<dyn Provider>>,
) -> Result<TornDown, DeployError> {
    let TeardownOptions {
        dir,
        retry,
        parallelism,
        cancel,
    } = opts;
    let dir = dir.as_path();
    let cluster = target.cluster.as_str();
    std::fs::create_dir_all(dir).map_err(|e| DeployError::Io(dir.to_path_buf(), e))?;
    let _lock = take_lock(dir, "hke teardown", &events)?;
    let provider = match provider {
        Some(p) => p,
        None => provider_for(target).await?,
    };
    let st = state::load(dir)?;
    let journal = Arc::new(state::Journal::open(dir)?);
    let engine = Arc::new(Engine {
        provider,
        journal: journal.clone(),
        parallelism,
        retry,
        events,
        bootstrap: Arc::new(NoBootstrap),
        tags: Default::default(),
        cluster: cluster.to_string(),
        cancel,
    });
    let result = engine.teardown(st.clone()).await;
    drop(engine);
    if let Ok(j) = Arc::try_unwrap(journal) {
        j.close();
    }
    let merged = state::load(dir)?;
    match result {
        Ok((_, summary)) => {
            // Nothing is left: the state has nothing to say.
            for f in [state::STATE_FILE, state::JOURNAL_FILE] {
                let _ = std::fs::remove_file(dir.join(f));
            }
            Ok(TornDown {
                dir: dir.to_path_buf(),
                summary,
            })
        }
        Err(e) => {
            state::compact(dir, &state::State { ..merged })?;
            Err(DeployError::Engine(e, dir.to_path_buf()))
        }
    }
}

struct NoBootstrap;

impl crate::engine::Bootstrap for NoBootstrap {
    fn user_data(&self, node: &str, _: &std::collections::BTreeMap<String, String>) -> Result<String, String> {
        Err(format!("teardown does not create machines ({node})"))
    }
}
