//! Validation: the defaulted vlabs model → a `Cluster`, or every error at once.
//!
//! Each check names the JSON path, the offending value (never a secret's) and
//! the fix. A field that fails to parse is reported and replaced by its
//! default so the remaining checks still run.
//!
//! `validate` runs the sections in the order of their diagnostics, one file
//! each: the placeholder scan (`fields`), apiVersion and the provider
//! (`provider`), the orchestrator and kubernetesConfig (`kubernetes`), the
//! master profile (`masters`), the Windows profile (`windows`), the pools
//! (`pools`), Azure's rules and limits (`azure`), the capacity of the
//! networks (`network`), then Linux access, certificates and the endpoint
//! (`access`). Checks of single fields the sections share are in `fields`.

use std::str::FromStr;

use crate::catalog::versions;
use crate::cluster::defaults;
use crate::cluster::{Cluster, Network};
use crate::model::diag::{Diagnostics, Origins, Severity};
use crate::model::types::Cloud;
use crate::model::vlabs::{self, ApiModel};

mod access;
mod azure;
mod fields;
mod kubernetes;
mod masters;
mod network;
mod openstack;
mod pools;
mod provider;
mod windows;

pub use access::RESERVED_USERNAMES;
pub use azure::{AZURE_AVAILABILITY_SET_MAX, AZURE_ROUTES_PER_TABLE};
pub use fields::{
    check_label, is_go_duration, parse_taints, DURATION_FLAGS, OWNED_KUBELET_FLAGS, REMOVED_KUBELET_FLAGS,
};
pub use network::AWS_ROUTES_PER_TABLE;
pub use provider::LEGACY_API_VERSIONS;

/// Where the sections report: each diagnostic gets its path's origin.
struct V<'a> {
    origins: &'a Origins,
    diags: &'a mut Diagnostics,
}

impl V<'_> {
    fn err(&mut self, path: &str, message: impl Into<String>, hint: impl Into<Option<String>>) {
        self.diags.error(path, self.origins.lookup(path), message, hint.into());
    }

    fn warn(&mut self, path: &str, message: impl Into<String>, hint: impl Into<Option<String>>) {
        self.diags
            .warning(path, self.origins.lookup(path), message, hint.into());
    }

    /// Parse `value` with `FromStr`; report and fall back to `fallback` on failure.
    fn parse<T: FromStr<Err = String>>(
        &mut self,
        path: &str,
        value: Option<&str>,
        fallback: &str,
        hint: Option<String>,
    ) -> T {
        match value {
            Some(v) => match v.parse::<T>() {
                Ok(t) => t,
                Err(e) => {
                    self.err(path, e, hint);
                    fallback
                        .parse()
                        .unwrap_or_else(|_| unreachable!("defaults parse: {fallback}"))
                }
            },
            None => fallback
                .parse()
                .unwrap_or_else(|_| unreachable!("defaults parse: {fallback}")),
        }
    }

    /// Errors reported so far (before this validation too).
    fn errors(&self) -> usize {
        self.diags
            .items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

/// The parts of the model several sections read. A profile the model lacks
/// reads as an empty one; where that matters, a section reports it.
struct Parts<'m> {
    p: &'m vlabs::Properties,
    k: &'m vlabs::KubernetesConfig,
    master: &'m vlabs::MasterProfile,
    /// Whether any pool runs Windows.
    any_windows: bool,
}

/// Validate the defaulted model. `None` when there were errors (all in `diags`).
pub fn validate(m: &ApiModel, origins: &Origins, diags: &mut Diagnostics) -> Option<Cluster> {
    let mut v = V { origins, diags };
    let table = versions::table();
    let before = v.errors();

    if let Ok(json) = serde_json::to_value(m) {
        fields::check_placeholders(&mut v, &json, "");
    }
    provider::api_version(&mut v, m);
    let default_props = vlabs::Properties::default();
    let p = m.properties.as_ref().unwrap_or(&default_props);
    if m.properties.is_none() {
        v.err("properties", "properties is missing", None);
    }
    let default_orch = vlabs::OrchestratorProfile::default();
    let orch = p.orchestrator_profile.as_ref().unwrap_or(&default_orch);
    let default_k = vlabs::KubernetesConfig::default();
    let default_master = vlabs::MasterProfile::default();
    let pools_in = p.agent_pool_profiles.clone().unwrap_or_default();
    let parts = Parts {
        p,
        k: orch.kubernetes_config.as_ref().unwrap_or(&default_k),
        master: p.master_profile.as_ref().unwrap_or(&default_master),
        any_windows: pools::any_windows(&pools_in),
    };
    let (k, master) = (parts.k, parts.master);

    let provider = provider::provider(&mut v, m, p);
    let cloud = provider.cloud;
    let k8s = kubernetes::orchestrator(&mut v, orch, table);
    let kube = kubernetes::kubernetes_config(&mut v, &parts, cloud, k8s, table);
    let control = masters::masters(&mut v, master, cloud, &kube);
    let (profile_windows, windows) = windows::windows(&mut v, p, table, cloud, parts.any_windows);
    let shared = pools::Shared {
        cloud,
        id: &control.id,
        profile_windows,
        kubelet_flags: &kube.kubelet_flags,
    };
    let pools = pools::pools(&mut v, &pools_in, &shared);
    azure::azure_rules(&mut v, k, master, &pools_in);
    if cloud == Cloud::Azure {
        azure::azure_limits(
            &mut v,
            kube.plugin,
            control.name.as_str(),
            control.masters.count,
            &pools,
        );
    }
    kubernetes::durations(&mut v, k);
    network::capacity(&mut v, cloud, &kube, control.masters.count, &pools);
    openstack::openstack(&mut v, &provider, kube.plugin, control.masters.count, &pools);
    let linux = access::linux(&mut v, p);
    let (key_algorithm, bootstrap_token) = access::certificates(&mut v, p);
    let endpoint = access::endpoint(&provider, &control.name, control.internal_lb_ip);

    if v.errors() > before {
        return None;
    }
    let mut tags = m.tags.clone().unwrap_or_default();
    tags.retain(|k, _| !k.starts_with("hke.io/"));
    Some(Cluster {
        name: control.name,
        id: control.id,
        provider,
        kubernetes: k8s,
        containerd_version: kube.containerd_version,
        network: Network {
            plugin: kube.plugin,
            policy: kube.policy,
            node_cidr: kube.node_cidr,
            pod_cidr: kube.pod_cidr,
            service_cidr: kube.service_cidr,
            dns_service_ip: kube.dns_service_ip,
            kubernetes_service_ip: kube.kubernetes_service_ip,
            docker_bridge: kube.docker_bridge,
            max_pods: kube.max_pods,
            kube_proxy_mode: kube.proxy_mode,
            cluster_domain: defaults::CLUSTER_DOMAIN.into(),
            api_source_ranges: control.api_source_ranges,
        },
        endpoint,
        masters: control.masters,
        pools,
        linux,
        windows,
        key_algorithm,
        kubelet_flags: kube.kubelet_flags,
        api_server_flags: k.api_server_config.clone().unwrap_or_default(),
        controller_manager_flags: k.controller_manager_config.clone().unwrap_or_default(),
        scheduler_flags: k.scheduler_config.clone().unwrap_or_default(),
        win_dsr: p.feature_flags.as_ref().and_then(|f| f.enable_win_dsr).unwrap_or(false),
        tags,
        bootstrap_token,
    })
}
