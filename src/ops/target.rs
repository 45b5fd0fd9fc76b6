//! Where a command works on a cloud, resolved once: the command line's flags
//! win over the model, which wins over the environment. Every verb that
//! talks to a cloud (deploy, teardown, logs, check, ci, janitor) resolves a
//! [`Target`] here and hands it to [`provider_for`], which reads nothing
//! else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hke_provider_api::fake::{FakeCloud, FakeConfig};
use hke_provider_api::{Provider, ProviderError};

use crate::cluster;
use crate::context::Env;
use crate::model::types::Cloud;

/// What the command line says about the cloud (`--region`, `--endpoint-url`,
/// `--project`, `--zone`, `--subscription`).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub project: Option<String>,
    pub zone: Option<String>,
    pub subscription: Option<String>,
}

/// A cloud target, every value decided.
#[derive(Debug, Clone)]
pub struct Target {
    pub cloud: Cloud,
    /// The cluster (its `hke.io/cluster` tag); empty for the janitor.
    pub cluster: String,
    /// Region (AWS, GCP) or location (Azure); `None` leaves it to the cloud's
    /// own configuration chain (AWS_REGION, the profile).
    pub region: Option<String>,
    /// An API endpoint override (an emulator, a sovereign cloud, a private
    /// endpoint): `--endpoint-url`, else `HKE_<CLOUD>_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    /// GCP: `--project`, the model's, `HKE_GCP_PROJECT`; the same for the zone.
    pub project: Option<String>,
    pub zone: Option<String>,
    /// Azure: `--subscription`, the model's, `AZURE_SUBSCRIPTION_ID`.
    pub subscription: Option<String>,
    /// Azure: the model's resource group; `None` is the cluster's name.
    pub resource_group: Option<String>,
    /// OpenStack: the model's cloud, external network and Octavia choice.
    pub openstack: Option<cluster::OpenStack>,
    /// How the provider paces and polls, from `HKE_*` variables.
    pub tuning: Tuning,
}

/// Settings that only the environment gives: pacing, poll intervals,
/// certificate files, the fake cloud.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    /// Pace calls under the clouds' documented rate limits (`HKE_PACING`,
    /// on unless `off`).
    pub pacing: bool,
    pub aws_rate_scale: Option<f64>,
    pub gcp_poll: Option<Duration>,
    /// `HKE_GCP_RATE_QUOTA`: calls per window.
    pub gcp_rate_quota: Option<(u32, Duration)>,
    pub azure_scope: Option<String>,
    /// `HKE_AZURE_RATE_SCALE`: ARM's buckets times this (raised limits).
    pub azure_rate_scale: Option<f64>,
    pub azure_ca_file: Option<PathBuf>,
    pub azure_poll: Option<Duration>,
    /// The fake cloud's directory and behaviour (`HKE_FAKE_*`).
    pub fake_dir: PathBuf,
    pub fake: Option<FakeConfig>,
    /// `HKE_FAKE_API_SERVER` (host:port): a real API server the fake
    /// cloud's load balancer fronts (a kwok control plane in the tests).
    pub fake_api_server: Option<String>,
    /// OpenStack: the `OS_*` and `HKE_OPENSTACK_*` variables, `HOME` and
    /// `XDG_CONFIG_HOME`, read by the provider as the OpenStack CLI reads
    /// them (never printed: they hold passwords).
    pub openstack_vars: std::collections::BTreeMap<String, String>,
}

impl Target {
    /// Resolve a target: `flags` over `model` (the cluster's provider
    /// profile, when its model is at hand) over `env`. A malformed `HKE_*`
    /// value is a usage error naming the variable.
    pub fn resolve(
        cloud: Cloud,
        cluster: &str,
        model: Option<&cluster::Provider>,
        flags: &Flags,
        env: &Env,
    ) -> Result<Target, String> {
        let some = |v: Option<String>| v.filter(|v| !v.is_empty());
        let pick = |flag: &Option<String>, from_model: Option<&Option<String>>, var: &str| {
            some(flag.clone())
                .or_else(|| some(from_model.cloned().flatten()))
                .or_else(|| some(env.get(var)))
        };
        let region = some(flags.region.clone())
            .or_else(|| model.map(|m| m.location.clone()).filter(|l| !l.is_empty()))
            .or_else(|| {
                // GCP has no region chain of its own in hke's client.
                (cloud == Cloud::Gcp).then(|| env.get("HKE_GCP_REGION")).flatten()
            })
            .filter(|v| !v.is_empty());
        let endpoint = some(flags.endpoint.clone())
            .or_else(|| some(env.get(&format!("HKE_{}_ENDPOINT_URL", cloud.to_string().to_ascii_uppercase()))));
        Ok(Target {
            cloud,
            cluster: cluster.to_string(),
            region,
            endpoint,
            project: pick(&flags.project, model.map(|m| &m.gcp_project), "HKE_GCP_PROJECT"),
            zone: pick(&flags.zone, model.map(|m| &m.gcp_zone), "HKE_GCP_ZONE"),
            subscription: pick(
                &flags.subscription,
                model.map(|m| &m.azure_subscription),
                "AZURE_SUBSCRIPTION_ID",
            ),
            // The resource group the plan names: the model's, or the
            // cluster's name. Without a model the provider's own default.
            resource_group: model.map(|m| m.azure_resource_group.clone().unwrap_or_else(|| cluster.to_string())),
            openstack: model.and_then(|m| m.openstack.clone()),
            tuning: Tuning::from_env(cloud, env)?,
        })
    }
}

impl Target {
    /// The target of a cluster whose model is at hand.
    pub fn of_cluster(c: &cluster::Cluster, flags: &Flags, env: &Env) -> Result<Target, String> {
        Target::resolve(c.provider.cloud, c.name.as_str(), Some(&c.provider), flags, env)
    }
}

impl Tuning {
    fn from_env(cloud: Cloud, env: &Env) -> Result<Tuning, String> {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty());
        let ms = |k: &str| {
            get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .map(|m| Duration::from_millis(m.max(1)))
        };
        let pacing = match get("HKE_PACING").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(v) => return Err(format!("HKE_PACING={v:?}: on or off")),
        };
        let mut t = Tuning {
            pacing,
            fake_dir: env.fake_cloud_dir(),
            ..Tuning::default()
        };
        match cloud {
            Cloud::Aws => {
                if let Some(v) = get("HKE_AWS_RATE_SCALE") {
                    t.aws_rate_scale = Some(
                        v.parse::<f64>()
                            .ok()
                            .filter(|f| *f > 0.0)
                            .ok_or_else(|| format!("HKE_AWS_RATE_SCALE={v:?} is not a positive number"))?,
                    );
                }
            }
            Cloud::Gcp => {
                t.gcp_poll = ms("HKE_GCP_POLL_MS");
                if let Some(v) = get("HKE_GCP_RATE_QUOTA") {
                    t.gcp_rate_quota =
                        Some(rate_quota(&v).ok_or_else(|| {
                            format!("HKE_GCP_RATE_QUOTA={v:?} is not CALLS/WINDOW (1500/60s, 20/500ms)")
                        })?);
                }
            }
            Cloud::Azure => {
                t.azure_scope = get("HKE_AZURE_SCOPE");
                if let Some(v) = get("HKE_AZURE_RATE_SCALE") {
                    t.azure_rate_scale = Some(
                        v.parse::<f64>()
                            .ok()
                            .filter(|f| *f > 0.0)
                            .ok_or_else(|| format!("HKE_AZURE_RATE_SCALE={v:?} is not a positive number"))?,
                    );
                }
                t.azure_ca_file = get("HKE_AZURE_CA_FILE").map(PathBuf::from);
                t.azure_poll = ms("HKE_AZURE_POLL_MS");
            }
            Cloud::OpenStack => {
                let mut vars = env.matching("OS_", &["HOME", "XDG_CONFIG_HOME"]);
                vars.extend(env.matching("HKE_OPENSTACK_", &[]));
                t.openstack_vars = vars;
            }
            Cloud::Fake => {
                t.fake = Some(FakeConfig::from_lookup(|k| env.get(k))?);
                t.fake_api_server = get("HKE_FAKE_API_SERVER");
            }
        }
        Ok(t)
    }
}

/// `CALLS/WINDOW`: `1500/60s`, `20/500ms`.
fn rate_quota(v: &str) -> Option<(u32, Duration)> {
    let (calls, window) = v.split_once('/')?;
    let calls: u32 = calls.trim().parse().ok().filter(|c| *c > 0)?;
    let window = window.trim();
    let window = match window.strip_suffix("ms") {
        Some(ms) => Duration::from_millis(ms.parse().ok()?),
        None => Duration::from_secs(window.strip_suffix('s')?.parse().ok()?),
    };
    (!window.is_zero()).then_some((calls, window))
}

/// Why no provider could be made for a target.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The cloud answered, or could not be reached: typed, so `main` tells
    /// a refused credential (exit 3) from an unreachable cloud (exit 4).
    #[error("{0}")]
    Cloud(#[from] ProviderError),
    /// This hke was built without the cloud, or the fake cloud's directory
    /// is unusable: the user's to fix (exit 2).
    #[error("{0}")]
    Usage(String),
}

/// The provider for a target; it reads nothing but the target.
pub async fn provider_for(t: &Target) -> Result<Arc<dyn Provider>, ConnectError> {
    match t.cloud {
        Cloud::Fake => {
            let cfg = t.tuning.fake.clone().unwrap_or_default();
            let cloud = FakeCloud::open(t.tuning.fake_dir.clone(), cfg).map_err(ConnectError::Usage)?;
            Ok(Arc::new(cloud))
        }
        #[cfg(feature = "aws")]
        Cloud::Aws => {
            let mut cfg = hke_provider_aws::AwsConfig::new(&t.cluster, t.region.as_deref());
            cfg.endpoint = t.endpoint.clone();
            cfg.pacing = t.tuning.pacing;
            if let Some(s) = t.tuning.aws_rate_scale {
                cfg.rate_scale = s;
            }
            Ok(Arc::new(hke_provider_aws::Aws::connect(cfg).await?))
        }
        #[cfg(feature = "gcp")]
        Cloud::Gcp => {
            let mut cfg = hke_provider_gcp::GcpConfig::new(&t.cluster);
            cfg.project = t.project.clone();
            cfg.zone = t.zone.clone();
            cfg.region = t.region.clone();
            cfg.endpoint = t.endpoint.clone();
            if let Some(p) = t.tuning.gcp_poll {
                cfg.poll = p;
            }
            cfg.pacing = t.tuning.pacing;
            if let Some(q) = t.tuning.gcp_rate_quota {
                cfg.rate_quota = q;
            }
            Ok(Arc::new(hke_provider_gcp::Gcp::connect(cfg).await?))
        }
        #[cfg(feature = "azure")]
        Cloud::Azure => {
            let mut cfg = hke_provider_azure::AzureConfig::new(&t.cluster);
            cfg.subscription = t.subscription.clone();
            if let Some(rg) = &t.resource_group {
                cfg.resource_group = rg.clone();
            }
            cfg.location = t.region.clone();
            cfg.endpoint = t.endpoint.clone();
            cfg.scope = t.tuning.azure_scope.clone();
            cfg.pacing = Some(t.tuning.pacing);
            cfg.rate_scale = t.tuning.azure_rate_scale;
            cfg.ca_file = t.tuning.azure_ca_file.clone();
            if let Some(p) = t.tuning.azure_poll {
                cfg.poll = p;
            }
            Ok(Arc::new(hke_provider_azure::Azure::connect(cfg).await?))
        }
        #[cfg(feature = "openstack")]
        Cloud::OpenStack => {
            let vars = &t.tuning.openstack_vars;
            let mut cfg = hke_provider_openstack::OpenStackConfig::from_lookup(&t.cluster, |k| vars.get(k).cloned())
                .map_err(ConnectError::Usage)?;
            // The model over OS_CLOUD and HKE_OPENSTACK_*; flags over both.
            if let Some(os) = &t.openstack {
                if os.cloud.is_some() {
                    cfg.cloud = os.cloud.clone();
                }
                if os.external_network.is_some() {
                    cfg.external_network = os.external_network.clone();
                }
                if os.octavia.is_some() {
                    cfg.octavia = os.octavia;
                }
            }
            if t.region.is_some() {
                cfg.region = t.region.clone();
            }
            if t.endpoint.is_some() {
                cfg.auth_url = t.endpoint.clone();
            }
            Ok(Arc::new(hke_provider_openstack::OpenStack::connect(cfg).await?))
        }
        // Reached when a provider's feature is off.
        #[allow(unreachable_patterns)]
        other => Err(ConnectError::Usage(format!(
            "this hke is built without the {other} provider. `hke plan` shows what it would create; \
             --set properties.providerProfile.name=fake deploys to the built-in fake cloud"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn model() -> cluster::Provider {
        cluster::Provider {
            cloud: Cloud::Gcp,
            location: "europe-west1".into(),
            gcp_project: Some("from-model".into()),
            gcp_zone: None,
            azure_subscription: Some("sub-model".into()),
            azure_resource_group: Some("rg-model".into()),
            openstack: None,
        }
    }

    #[test]
    fn flags_win_over_the_model_which_wins_over_the_environment() {
        let e = env(&[
            ("HKE_GCP_PROJECT", "from-env"),
            ("HKE_GCP_ZONE", "zone-env"),
            ("HKE_GCP_REGION", "region-env"),
            ("HKE_GCP_ENDPOINT_URL", "http://127.0.0.1:1"),
        ]);
        let m = model();
        let t = Target::resolve(Cloud::Gcp, "c", Some(&m), &Flags::default(), &e).expect("resolves");
        assert_eq!(t.project.as_deref(), Some("from-model"));
        assert_eq!(
            t.zone.as_deref(),
            Some("zone-env"),
            "the model has none: the environment fills in"
        );
        assert_eq!(t.region.as_deref(), Some("europe-west1"));
        assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        let flags = Flags {
            project: Some("from-flag".into()),
            region: Some("us-east1".into()),
            endpoint: Some("http://127.0.0.1:2".into()),
            ..Flags::default()
        };
        let t = Target::resolve(Cloud::Gcp, "c", Some(&m), &flags, &e).expect("resolves");
        assert_eq!(t.project.as_deref(), Some("from-flag"));
        assert_eq!(t.region.as_deref(), Some("us-east1"));
        assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:2"));
        // Without a model (teardown with the state lost): the environment.
        let t = Target::resolve(Cloud::Gcp, "c", None, &Flags::default(), &e).expect("resolves");
        assert_eq!(t.project.as_deref(), Some("from-env"));
        assert_eq!(t.region.as_deref(), Some("region-env"));
        // Azure: subscription from the model over AZURE_SUBSCRIPTION_ID.
        let e = env(&[("AZURE_SUBSCRIPTION_ID", "sub-env")]);
        let t = Target::resolve(Cloud::Azure, "c", Some(&m), &Flags::default(), &e).expect("resolves");
        assert_eq!(t.subscription.as_deref(), Some("sub-model"));
        assert_eq!(t.resource_group.as_deref(), Some("rg-model"));
        let t = Target::resolve(Cloud::Azure, "c", None, &Flags::default(), &e).expect("resolves");
        assert_eq!(t.subscription.as_deref(), Some("sub-env"));
        assert_eq!(t.resource_group, None, "the provider's default");
        // A model without a group: the cluster's name, as the plan names it.
        let no_group = crate::cluster::Provider {
            azure_resource_group: None,
            ..m.clone()
        };
        let t = Target::resolve(Cloud::Azure, "c", Some(&no_group), &Flags::default(), &e).expect("resolves");
        assert_eq!(t.resource_group.as_deref(), Some("c"));
    }

    #[test]
    fn malformed_variables_name_themselves() {
        let e = env(&[("HKE_PACING", "maybe")]);
        let err = Target::resolve(Cloud::Aws, "c", None, &Flags::default(), &e).expect_err("refused");
        assert!(err.contains("HKE_PACING"), "{err}");
        let e = env(&[("HKE_GCP_RATE_QUOTA", "fast")]);
        let err = Target::resolve(Cloud::Gcp, "c", None, &Flags::default(), &e).expect_err("refused");
        assert!(err.contains("HKE_GCP_RATE_QUOTA"), "{err}");
        // Only the target cloud's variables are read.
        let t = Target::resolve(Cloud::Azure, "c", None, &Flags::default(), &e).expect("resolves");
        assert!(t.tuning.gcp_rate_quota.is_none());
        assert_eq!(rate_quota("20/500ms"), Some((20, Duration::from_millis(500))));
        assert_eq!(rate_quota("0/1s"), None);
    }
}
