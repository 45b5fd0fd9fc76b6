//! `deploy` and `teardown`: the edges where hke meets a cloud.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hke_provider_api::fake::{FakeCloud, FakeConfig};
use hke_provider_api::Provider;
use rand::rngs::OsRng;
use time::format_description::well_known::Rfc3339;

use crate::context::Env;
use crate::engine::state::{self, StateError};
use crate::engine::{Engine, EngineError, Event, EventSink, RetryPolicy, Summary};
use crate::model::diag::Rejected;
use crate::model::load::SetArg;
use crate::model::types::Cloud;
use crate::ops::boot::BootFiles;
use crate::ops::generate::{self, Prepared};
use crate::output::{Mode, OutputError};
use crate::plan::{self, Plan, PlanError};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Rejected(Rejected),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}\nthe state in {1} records what exists: run the same command again to continue, or `hke teardown` to remove it")]
    Engine(EngineError, PathBuf),
    #[error("cannot write {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

pub struct Options {
    pub text: String,
    pub sets: Vec<SetArg>,
    pub output_dir: Option<PathBuf>,
    pub parallelism: usize,
    pub ttl: Option<String>,
    pub retry: RetryPolicy,
    pub durability: state::Durability,
    /// Set by Ctrl-C: stop starting new work.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
    /// Overrides of the model's region and the cloud's endpoint.
    pub region: Option<String>,
    pub endpoint: Option<String>,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}

/// Rewrite a file of the output directory in place, with its mode.
fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> Result<(), DeployError> {
    Ok(crate::output::write_atomic(path, bytes, mode)?)
}

/// Where a provider should work: the cloud, the cluster (its tag), and the
/// overrides given on the command line or in `HKE_*` variables.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub cluster: String,
    /// Region (AWS, GCP) or location (Azure); `None` leaves it to the cloud's
    /// own configuration chain.
    pub region: Option<String>,
    /// An API endpoint override (an emulator, a sovereign cloud, a private
    /// endpoint): `--endpoint-url`, else `HKE_<CLOUD>_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    /// GCP project and zone from the model; `--project`/`--zone` win, and
    /// HKE_GCP_PROJECT/HKE_GCP_ZONE fill in.
    pub project: Option<String>,
    pub zone: Option<String>,
    /// Azure subscription and resource group from the model;
    /// `--subscription` wins, AZURE_SUBSCRIPTION_ID fills in; the group
    /// defaults to the cluster's name.
    pub subscription: Option<String>,
    pub resource_group: Option<String>,
}

/// Where `--project`, `--zone`, `--subscription` and the model's resource
/// group travel with the environment.
pub const FLAG_PROJECT: &str = "--project";
pub const FLAG_ZONE: &str = "--zone";
pub const FLAG_SUBSCRIPTION: &str = "--subscription";
pub const FLAG_RESOURCE_GROUP: &str = "--resource-group";

/// The provider for a cloud.
pub async fn provider_for(cloud: Cloud, target: &Target, env: &Env) -> Result<Arc<dyn Provider>, DeployError> {
    let endpoint = target
        .endpoint
        .clone()
        .or_else(|| env.get(&format!("HKE_{}_ENDPOINT_URL", cloud.to_string().to_ascii_uppercase())))
        .filter(|e| !e.is_empty());
    match cloud {
        Cloud::Fake => {
            let cfg = FakeConfig::from_lookup(|k| env.get(k)).map_err(DeployError::Usage)?;
            let cloud = FakeCloud::open(env.fake_cloud_dir(), cfg).map_err(DeployError::Usage)?;
            Ok(Arc::new(cloud))
        }
        #[cfg(feature = "aws")]
        Cloud::Aws => {
            let mut cfg = hke_provider_aws::AwsConfig::new(&target.cluster, target.region.as_deref());
            cfg.endpoint = endpoint;
            cfg.pacing = pacing(env)?;
            if let Some(v) = env.get("HKE_AWS_RATE_SCALE").filter(|v| !v.is_empty()) {
                cfg.rate_scale =
                    v.parse::<f64>().ok().filter(|f| *f > 0.0).ok_or_else(|| {
                        DeployError::Usage(format!("HKE_AWS_RATE_SCALE={v:?} is not a positive number"))
                    })?;
            }
            let aws = hke_provider_aws::Aws::connect(cfg)
                .await
                .map_err(|e| DeployError::Usage(e.to_string()))?;
            Ok(Arc::new(aws))
        }
        #[cfg(feature = "gcp")]
        Cloud::Gcp => {
            let pick = |flag: &str, model: &Option<String>, var: &str| {
                env.get(flag)
                    .or_else(|| model.clone())
                    .or_else(|| env.get(var))
                    .filter(|v| !v.is_empty())
            };
            let mut cfg = hke_provider_gcp::GcpConfig::new(&target.cluster);
            cfg.project = pick(FLAG_PROJECT, &target.project, "HKE_GCP_PROJECT");
            cfg.zone = pick(FLAG_ZONE, &target.zone, "HKE_GCP_ZONE");
            cfg.region = target.region.clone().or_else(|| env.get("HKE_GCP_REGION"));
            cfg.endpoint = endpoint;
            if let Some(ms) = env.get("HKE_GCP_POLL_MS").and_then(|v| v.parse::<u64>().ok()) {
                cfg.poll = std::time::Duration::from_millis(ms.max(1));
            }
            cfg.pacing = pacing(env)?;
            if let Some(v) = env.get("HKE_GCP_RATE_QUOTA").filter(|v| !v.is_empty()) {
                cfg.rate_quota = rate_quota(&v).ok_or_else(|| {
                    DeployError::Usage(format!(
                        "HKE_GCP_RATE_QUOTA={v:?} is not CALLS/WINDOW (1500/60s, 20/500ms)"
                    ))
                })?;
            }
            let gcp = hke_provider_gcp::Gcp::connect(cfg)
                .await
                .map_err(|e| DeployError::Usage(e.to_string()))?;
            Ok(Arc::new(gcp))
        }
        #[cfg(feature = "azure")]
        Cloud::Azure => {
            let mut cfg = hke_provider_azure::AzureConfig::new(&target.cluster);
            cfg.subscription = env
                .get(FLAG_SUBSCRIPTION)
                .or_else(|| target.subscription.clone())
                .or_else(|| env.get("AZURE_SUBSCRIPTION_ID"))
                .filter(|v| !v.is_empty());
            if let Some(rg) = target
                .resource_group
                .clone()
                .or_else(|| env.get(FLAG_RESOURCE_GROUP))
                .filter(|v| !v.is_empty())
            {
                cfg.resource_group = rg;
            }
            cfg.location = target.region.clone().filter(|v| !v.is_empty());
            cfg.endpoint = endpoint;
            cfg.scope = env.get("HKE_AZURE_SCOPE").filter(|v| !v.is_empty());
            cfg.ca_file = env
                .get("HKE_AZURE_CA_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from);
            if let Some(ms) = env.get("HKE_AZURE_POLL_MS").and_then(|v| v.parse::<u64>().ok()) {
                cfg.poll = std::time::Duration::from_millis(ms.max(1));
            }
            let az = hke_provider_azure::Azure::connect(cfg)
                .await
                .map_err(|e| DeployError::Usage(e.to_string()))?;
            Ok(Arc::new(az))
        }
        // Reached when a provider's feature is off.
        #[allow(unreachable_patterns)]
        other => {
            let _ = endpoint;
            Err(DeployError::Usage(format!(
                "this hke is built without the {other} provider. `hke plan` shows what it would create; \
                 --set properties.providerProfile.name=fake deploys to the built-in fake cloud"
            )))
        }
    }
}

/// Whether providers pace their calls under the clouds' rate limits:
/// always, unless `HKE_PACING=off` (for tests that show what an unpaced
/// client meets).
#[cfg_attr(not(any(feature = "aws", feature = "gcp")), allow(dead_code))]
fn pacing(env: &Env) -> Result<bool, DeployError> {
    match env.get("HKE_PACING").as_deref() {
        None | Some("") | Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(v) => Err(DeployError::Usage(format!("HKE_PACING={v:?}: on or off"))),
    }
}

/// `CALLS/WINDOW`: `1500/60s`, `20/500ms`.
#[cfg_attr(not(feature = "gcp"), allow(dead_code))]
fn rate_quota(v: &str) -> Option<(u32, std::time::Duration)> {
    let (calls, window) = v.split_once('/')?;
    let calls: u32 = calls.trim().parse().ok().filter(|c| *c > 0)?;
    let window = window.trim();
    let window = match window.strip_suffix("ms") {
        Some(ms) => std::time::Duration::from_millis(ms.parse().ok()?),
        None => std::time::Duration::from_secs(window.strip_suffix('s')?.parse().ok()?),
    };
    (!window.is_zero()).then_some((calls, window))
}

/// The resource group (or other isolation unit) the plan names.
fn plan_group_name(plan: &Plan) -> String {
    plan.resources
        .get(plan::GROUP)
        .map(|g| g.name.clone())
        .unwrap_or_else(|| plan.cluster.clone())
}

/// Load the cluster for `opts`: the output directory's apimodel.json when a
/// previous run wrote one (so secrets and certificates are kept), otherwise a
/// freshly generated directory.
pub fn materialize(opts: &Options, events: &EventSink) -> Result<(Prepared, PathBuf), DeployError> {
    let fresh =
        generate::prepare(&opts.text, &opts.sets, &mut OsRng, generate::now()).map_err(DeployError::Rejected)?;
    let dir = opts
        .output_dir
        .clone()
        .unwrap_or_else(|| generate::default_dir(&fresh.cluster));
    let existing = dir.join("apimodel.json");
    if existing.is_file() {
        let text = std::fs::read_to_string(&existing).map_err(|e| DeployError::Io(existing.clone(), e))?;
        let prepared = generate::prepare(&text, &[], &mut OsRng, generate::now()).map_err(DeployError::Rejected)?;
        events(&Event::Note {
            message: format!(
                "using {} from an earlier run (its secrets and certificates are kept)",
                existing.display()
            ),
        });
        // Say so when the model given now asks for something else: deploy
        // builds what apimodel.json says (it does not scale or upgrade).
        let shape = |p: &Prepared| {
            plan::plan(&p.cluster)
                .map(|pl| {
                    pl.resources
                        .values()
                        .map(|r| (r.spec.kind(), r.name.clone()))
                        .collect::<std::collections::BTreeSet<_>>()
                })
                .ok()
        };
        if shape(&fresh) != shape(&prepared) || fresh.cluster.kubernetes != prepared.cluster.kubernetes {
            events(&Event::Note {
                message: format!(
                    "the given model (with its --set edits) differs from {}: deploy builds what that file says; to change the cluster, tear it down and deploy again, or use another --output-directory",
                    existing.display()
                ),
            });
        }
        Ok((prepared, dir))
    } else {
        generate::tree(&fresh)
            .map_err(|e| DeployError::Usage(e.to_string()))?
            .commit(&dir, false)?;
        events(&Event::Note {
            message: format!("generated {}", dir.display()),
        });
        Ok((fresh, dir))
    }
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

/// Deploy (or continue deploying) a cluster.
pub async fn deploy(
    opts: Options,
    env: &Env,
    events: EventSink,
    provider: Option<Arc<dyn Provider>>,
) -> Result<Deployed, DeployError> {
    let (prepared, dir) = materialize(&opts, &events)?;
    let c = &prepared.cluster;
    let plan: Plan = plan::plan(c)?;
    write_atomic(
        &dir.join("plan.json"),
        &serde_json::to_vec_pretty(&plan).unwrap_or_default(),
        Mode::Public,
    )?;
    let _lock = take_lock(&dir, "hke deploy", &events)?;
    let provider = match provider {
        Some(p) => p,
        None => {
            let target = Target {
                cluster: c.name.to_string(),
                region: opts.region.clone().or_else(|| Some(c.provider.location.clone())),
                endpoint: opts.endpoint.clone(),
                project: c.provider.gcp_project.clone(),
                zone: c.provider.gcp_zone.clone(),
                subscription: c.provider.azure_subscription.clone(),
                resource_group: Some(plan_group_name(&plan)),
            };
            provider_for(c.provider.cloud, &target, env).await?
        }
    };
    let mut st = state::load(&dir)?;
    st.cluster = c.name.to_string();
    st.cloud = c.provider.cloud.to_string();
    let created = st.created.get_or_insert_with(now_rfc3339).clone();
    let journal = Arc::new(state::Journal::open_with(&dir, opts.durability)?);
    let tags = hke_provider_api::standard_tags(c.name.as_str(), &created, opts.ttl.as_deref(), &c.tags);
    let engine = Arc::new(Engine {
        provider,
        journal: journal.clone(),
        parallelism: opts.parallelism,
        retry: opts.retry.clone(),
        events: events.clone(),
        bootstrap: Arc::new(BootFiles::new(c, &prepared.pki, &plan)),
        tags,
        cluster: c.name.to_string(),
        cancel: opts.cancel.clone(),
    });
    let result = engine.deploy(&plan, st.clone()).await;
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
    let kubeconfig = dir.join(format!("kubeconfig/kubeconfig.{}.json", c.provider.location));
    if !c.endpoint.resolved {
        // The address is known now: point the kubeconfig at it.
        let lb = merged
            .resources
            .get(plan::LB)
            .map(|e| e.outputs.clone())
            .unwrap_or_default();
        if let Some(host) = lb.get("dnsName").or_else(|| lb.get("address")) {
            let text = std::fs::read_to_string(&kubeconfig).map_err(|e| DeployError::Io(kubeconfig.clone(), e))?;
            let mut kc: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| DeployError::Usage(e.to_string()))?;
            kc["clusters"][0]["cluster"]["server"] = serde_json::json!(format!("https://{host}:{}", c.endpoint.port));
            // It holds the admin's client key.
            write_atomic(
                &kubeconfig,
                &serde_json::to_vec_pretty(&kc).unwrap_or_default(),
                Mode::Secret,
            )?;
        }
    }
    if c.provider.cloud == Cloud::Fake {
        // The fake cloud boots no machine; its load balancer can front a
        // real API server instead (a kwok control plane in the tests), at
        // HKE_FAKE_API_SERVER (host:port; it must serve hke's certificate).
        if let Some(addr) = env.get("HKE_FAKE_API_SERVER").filter(|a| !a.is_empty()) {
            let text = std::fs::read_to_string(&kubeconfig).map_err(|e| DeployError::Io(kubeconfig.clone(), e))?;
            let mut kc: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| DeployError::Usage(e.to_string()))?;
            kc["clusters"][0]["cluster"]["server"] = serde_json::json!(format!("https://{addr}"));
            write_atomic(
                &kubeconfig,
                &serde_json::to_vec_pretty(&kc).unwrap_or_default(),
                Mode::Secret,
            )?;
        }
    }
    Ok(Deployed {
        dir,
        summary,
        kubeconfig,
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
    /// The cluster's name: the `hke.io/cluster` tag to sweep.
    pub cluster: String,
    pub cloud: Cloud,
    /// Region and endpoint (from the model, or the command line).
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub retry: RetryPolicy,
    pub parallelism: usize,
    /// Set by Ctrl-C: stop starting new work.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

/// Tear down a cluster.
pub async fn teardown(
    opts: TeardownOptions,
    env: &Env,
    events: EventSink,
    provider: Option<Arc<dyn Provider>>,
) -> Result<TornDown, DeployError> {
    let TeardownOptions {
        dir,
        cluster,
        cloud,
        region,
        endpoint,
        retry,
        parallelism,
        cancel,
    } = opts;
    let dir = dir.as_path();
    let cluster = cluster.as_str();
    std::fs::create_dir_all(dir).map_err(|e| DeployError::Io(dir.to_path_buf(), e))?;
    let _lock = take_lock(dir, "hke teardown", &events)?;
    let provider = match provider {
        Some(p) => p,
        None => {
            let target = Target {
                cluster: cluster.to_string(),
                region,
                endpoint,
                ..Target::default()
            };
            provider_for(cloud, &target, env).await?
        }
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
