//! Validation: the defaulted vlabs model → a `Cluster`, or every error at once.
//!
//! Each check names the JSON path, the offending value (never a secret's) and
//! the fix. A field that fails to parse is reported and replaced by its
//! default so the remaining checks still run.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::catalog::versions;
use crate::catalog::vmsizes;
use crate::cluster::defaults::{self, infer_windows_version};
use crate::cluster::names::{self, node_name, WINDOWS_NAME_MAX};
use crate::cluster::{Cluster, Endpoint, LinuxAccess, Masters, Network, Pool, Provider, WindowsAccess};
use crate::model::diag::{Diagnostics, Origins};
use crate::model::types::{
    Cidr, Cloud, DnsPrefix, K8sVersion, KeyAlgorithm, NetworkPlugin, OsType, WindowsVersion, WindowsVersionError,
};
use crate::model::vlabs::{self, ApiModel};
use crate::secrets::{self, password, Secret};

/// Legacy acs-engine API versions that `hke migrate` rewrites.
pub const LEGACY_API_VERSIONS: &[&str] = &[
    "2015-11-01-preview",
    "2016-03-30",
    "2016-09-30",
    "2017-01-31",
    "2017-07-01",
    "2017-08-31",
    "2018-03-31",
];

/// User names Azure refuses for VMs; hke refuses them on every cloud.
pub const RESERVED_USERNAMES: &[&str] = &[
    "1",
    "123",
    "a",
    "actuser",
    "adm",
    "admin",
    "admin1",
    "admin2",
    "administrator",
    "aspnet",
    "backup",
    "console",
    "david",
    "guest",
    "john",
    "owner",
    "root",
    "server",
    "sql",
    "support",
    "support_388945a0",
    "sys",
    "test",
    "test1",
    "test2",
    "test3",
    "user",
    "user1",
    "user2",
    "user3",
    "user4",
    "user5",
];

/// kubelet flags removed from Kubernetes (acs-engine models still carry them).
pub const REMOVED_KUBELET_FLAGS: &[(&str, &str)] = &[
    ("--network-plugin", "1.24"),
    ("--network-plugin-mtu", "1.24"),
    ("--cni-bin-dir", "1.24"),
    ("--cni-conf-dir", "1.24"),
    ("--cni-cache-dir", "1.24"),
    ("--non-masquerade-cidr", "1.24"),
    ("--image-pull-progress-deadline", "1.24"),
    ("--docker-endpoint", "1.24"),
    ("--experimental-dockershim-root-directory", "1.24"),
    ("--cadvisor-port", "1.12"),
    ("--allow-privileged", "1.15"),
    ("--keep-terminated-pod-volumes", "1.31"),
    ("--container-runtime", "1.27"),
    ("--azure-container-registry-config", "1.30"),
    ("--pod-infra-container-image", "1.35"),
    ("--hairpin-mode", "1.35"),
];

/// kubelet flags hke sets itself.
pub const OWNED_KUBELET_FLAGS: &[&str] = &[
    "--kubeconfig",
    "--bootstrap-kubeconfig",
    "--container-runtime-endpoint",
    "--node-ip",
    "--hostname-override",
    "--config",
];

const MAX_NODES: u64 = 5000;

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
}

fn is_placeholder(s: &str) -> bool {
    let t = s.trim();
    t.len() >= 3 && t.starts_with('<') && t.ends_with('>')
}

fn is_secret_path(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
    last.contains("password") || last.contains("secret") || last.contains("privatekey") || last.contains("token")
}

/// Report `<your-...>` placeholders anywhere in the model.
fn check_placeholders(v: &mut V<'_>, value: &serde_json::Value, path: &str) {
    match value {
        serde_json::Value::String(s) if is_placeholder(s) => {
            let last = path.rsplit('.').next().unwrap_or(path);
            let hint = match last {
                "adminPassword" => {
                    "remove adminPassword and hke generates a strong one (kept in the output apimodel.json)".to_string()
                }
                "keyData" => {
                    "remove the publicKeys entry and hke generates a key pair, or paste your OpenSSH public key"
                        .to_string()
                }
                "adminUsername" => "write a user name such as azureuser".to_string(),
                "dnsPrefix" => "write a DNS prefix such as mycluster".to_string(),
                _ => "replace the placeholder with a real value, or remove the key".to_string(),
            };
            let shown = if is_secret_path(path) {
                "the value".to_string()
            } else {
                format!("{s:?}")
            };
            v.err(path, format!("{shown} is a placeholder"), hint);
        }
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                check_placeholders(v, x, &child);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                check_placeholders(v, x, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

fn label_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn dns_subdomain_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Check a node label; `Err` says what is wrong.
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if !label_name_ok(name) {
        return Err(format!(
            "label key {key:?} is invalid: the name part must be 1–63 characters of letters, digits, '-', '_' and '.', beginning and ending with a letter or digit"
        ));
    }
    if let Some(p) = prefix {
        if !dns_subdomain_ok(p) {
            return Err(format!(
                "label key {key:?} is invalid: the prefix {p:?} must be a lowercase DNS subdomain"
            ));
        }
        let restricted = |d: &str| p == d || p.ends_with(&format!(".{d}"));
        let allowed = |d: &str| p == d || p.ends_with(&format!(".{d}"));
        if (restricted("kubernetes.io") || restricted("k8s.io"))
            && !allowed("node.kubernetes.io")
            && !allowed("kubelet.kubernetes.io")
        {
            return Err(format!(
                "label key {key:?} uses the reserved prefix {p:?}: kubelets may only set kubernetes.io labels under node.kubernetes.io/ and kubelet.kubernetes.io/; use a prefix of your own such as example.com/"
            ));
        }
    }
    if !value.is_empty() && !label_name_ok(value) {
        return Err(format!(
            "label value {value:?} of {key:?} is invalid: at most 63 characters of letters, digits, '-', '_' and '.', beginning and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Parse `--register-with-taints` (`k=v:Effect,k2:Effect`).
pub fn parse_taints(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (kv, effect) = t
            .rsplit_once(':')
            .ok_or_else(|| format!("taint {t:?} has no effect; write key=value:NoSchedule"))?;
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            return Err(format!(
                "taint {t:?} has effect {effect:?}; use NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let unprefixed_ok = |s: &str| check_label(s, "").is_ok();
        if !unprefixed_ok(k) || (!v.is_empty() && !label_name_ok(v)) {
            return Err(format!("taint {t:?} has an invalid key or value"));
        }
        out.push(t.to_string());
    }
    Ok(out)
}

fn check_flags(v: &mut V<'_>, path: &str, flags: Option<&vlabs::FlagMap>, kubelet: bool) {
    let Some(flags) = flags else { return };
    for key in flags.keys() {
        let p = format!("{path}[{key:?}]");
        if !key.starts_with("--") || key.len() < 3 {
            v.err(
                &p,
                format!("flag {key:?} must be written with its dashes"),
                format!("write \"--{}\"", key.trim_start_matches('-')),
            );
            continue;
        }
        if kubelet {
            if let Some((_, since)) = REMOVED_KUBELET_FLAGS.iter().find(|(f, _)| f == key) {
                v.err(
                    &p,
                    format!("kubelet flag {key} was removed in Kubernetes {since}"),
                    "remove it (hke migrate removes it)".to_string(),
                );
            } else if OWNED_KUBELET_FLAGS.contains(&key.as_str()) {
                v.err(
                    &p,
                    format!("kubelet flag {key} is set by hke itself"),
                    "remove it".to_string(),
                );
            }
        }
    }
}

fn check_vm_size(v: &mut V<'_>, cloud: Cloud, path: &str, size: &str) {
    let azure_shaped = size.starts_with("Standard_") || size.starts_with("Basic_");
    match cloud {
        Cloud::Azure | Cloud::Fake => {
            if !azure_shaped || size.contains(' ') {
                v.err(
                    path,
                    format!("{size:?} is not an Azure VM size"),
                    "use an Azure size such as Standard_D2s_v3".to_string(),
                );
            }
        }
        Cloud::Aws | Cloud::Gcp => {
            if azure_shaped {
                if vmsizes::lookup(size).is_none() {
                    let example = if cloud == Cloud::Aws {
                        "m5.large"
                    } else {
                        "n2-standard-2"
                    };
                    v.err(
                        path,
                        format!("Azure size {size:?} has no mapping to {cloud}"),
                        format!(
                            "use a native {cloud} type such as {example}, or one of the mapped Azure sizes: {}",
                            vmsizes::names().join(", ")
                        ),
                    );
                }
            } else if !vmsizes::is_native(cloud, size) {
                let example = if cloud == Cloud::Aws {
                    "m5.large"
                } else {
                    "n2-standard-2"
                };
                v.err(
                    path,
                    format!("{size:?} is not a machine type on {cloud}"),
                    format!("use a type such as {example}"),
                );
            }
        }
    }
}

fn check_username(v: &mut V<'_>, path: &str, name: &str, windows: bool) {
    if name.is_empty() {
        v.err(
            path,
            "the user name is empty",
            "write a user name such as azureuser, or remove the key for the default".to_string(),
        );
        return;
    }
    if RESERVED_USERNAMES.contains(&name.to_ascii_lowercase().as_str()) {
        v.err(
            path,
            format!("{name:?} is a reserved user name"),
            "choose another, such as azureuser".to_string(),
        );
        return;
    }
    if windows {
        if name.len() > 20 || name.chars().any(|c| "\\/\"[]:|<>+=;,?*@ ".contains(c)) || name.ends_with('.') {
            v.err(
                path,
                format!("{name:?} is not a valid Windows user name"),
                "use at most 20 characters, none of \\/\"[]:|<>+=;,?*@ or spaces, not ending with '.'".to_string(),
            );
        }
    } else {
        // Azure and cloud-init accept mixed case (acs-engine examples use
        // "azureUser"); refuse what useradd cannot create.
        let ok = name.len() <= 32
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !ok {
            v.err(
                path,
                format!("{name:?} is not a valid Linux user name"),
                "use at most 32 letters, digits, '_', '-' and '.', starting with a letter or '_'".to_string(),
            );
        }
    }
}

fn check_password(v: &mut V<'_>, path: &str, pw: &str, user: &str) {
    if is_placeholder(pw) {
        return; // reported by the placeholder scan
    }
    if pw.is_empty() {
        v.err(
            path,
            "the Windows admin password is empty",
            "remove adminPassword and hke generates one".to_string(),
        );
        return;
    }
    let n = pw.chars().count();
    if !(12..=123).contains(&n) {
        v.err(
            path,
            format!("the Windows admin password has {n} characters; it needs 12 to 123"),
            "use a longer password, or remove adminPassword and hke generates one".to_string(),
        );
    }
    if password::classes(pw) < 3 {
        v.err(
            path,
            "the Windows admin password does not meet complexity rules: it needs three of lowercase, uppercase, digits and symbols",
            "add characters of the missing kinds, or remove adminPassword and hke generates one".to_string(),
        );
    }
    if user.len() >= 3 && pw.to_ascii_lowercase().contains(&user.to_ascii_lowercase()) {
        v.err(
            path,
            format!("the Windows admin password contains the user name {user:?}"),
            "choose a password without it".to_string(),
        );
    }
    if password::DISALLOWED.iter().any(|d| d.eq_ignore_ascii_case(pw)) {
        v.err(
            path,
            "the Windows admin password is on Azure's list of disallowed passwords",
            "choose another".to_string(),
        );
    }
}

fn overlap_check(v: &mut V<'_>, ranges: &[(&str, &str, Cidr)]) {
    for (i, (pa, na, a)) in ranges.iter().enumerate() {
        for (pb, nb, b) in &ranges[i + 1..] {
            if a.overlaps(b) {
                // Blame the range the user wrote (the later one if both).
                let (path, other) = if v.origins.contains(pb) || !v.origins.contains(pa) {
                    (pb, (na, a))
                } else {
                    (pa, (nb, b))
                };
                let this = if path == pb { (nb, b) } else { (na, a) };
                v.err(
                    path,
                    format!("{} {} overlaps {} {}", this.0, this.1, other.0, other.1),
                    "choose ranges that do not overlap (defaults: vnetCidr 10.240.0.0/16, clusterSubnet 10.244.0.0/16, serviceCidr 10.0.0.0/16, dockerBridgeSubnet 172.17.0.1/16)".to_string(),
                );
            }
        }
    }
}

/// Validate the defaulted model. `None` when there were errors (all in `diags`).
pub fn validate(m: &ApiModel, origins: &Origins, diags: &mut Diagnostics) -> Option<Cluster> {
    let mut v = V { origins, diags };
    let table = versions::table();
    let before = v
        .diags
        .items
        .iter()
        .filter(|d| d.severity == crate::model::diag::Severity::Error)
        .count();

    if let Ok(json) = serde_json::to_value(m) {
        check_placeholders(&mut v, &json, "");
    }

    // apiVersion.
    match m.api_version.as_deref() {
        Some("vlabs") => {}
        Some(a) if LEGACY_API_VERSIONS.contains(&a) => v.err(
            "apiVersion",
            format!("apiVersion {a} is a legacy acs-engine API version; hke reads vlabs"),
            "run `hke migrate --api-model FILE`, which rewrites it".to_string(),
        ),
        Some(a) => v.err(
            "apiVersion",
            format!("unknown apiVersion {a:?}"),
            "write \"apiVersion\": \"vlabs\"".to_string(),
        ),
        None => v.err(
            "apiVersion",
            "apiVersion is missing",
            "write \"apiVersion\": \"vlabs\"".to_string(),
        ),
    }

    let default_props = vlabs::Properties::default();
    let p = m.properties.as_ref().unwrap_or(&default_props);
    if m.properties.is_none() {
        v.err("properties", "properties is missing", None);
    }

    // Provider.
    let pp = p.provider_profile.clone().unwrap_or_default();
    let cloud: Cloud = v.parse("properties.providerProfile.name", pp.name.as_deref(), "azure", None);
    let location = pp.location.clone().unwrap_or_default();
    if let (Some(r), Some(l)) = (pp.region.as_deref(), pp.location.as_deref()) {
        if !r.is_empty() && r != l {
            v.err(
                "properties.providerProfile.region",
                format!("region {r:?} and location {l:?} disagree"),
                "give only one of them".to_string(),
            );
        }
    }
    if let Some(top) = m.location.as_deref().filter(|t| !t.is_empty()) {
        if top != location && !location.is_empty() {
            v.err(
                "location",
                format!("location {top:?} and properties.providerProfile.location {location:?} disagree"),
                "give only one of them".to_string(),
            );
        }
    }
    let location_ok = match cloud {
        Cloud::Azure | Cloud::Fake => {
            !location.is_empty() && location.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        }
        Cloud::Aws => {
            let parts: Vec<&str> = location.split('-').collect();
            parts.len() >= 3
                && parts
                    .last()
                    .is_some_and(|d| d.chars().all(|c| c.is_ascii_digit()) && !d.is_empty())
        }
        Cloud::Gcp => {
            let parts: Vec<&str> = location.split('-').collect();
            parts.len() == 2 && parts[1].chars().last().is_some_and(|c| c.is_ascii_digit())
        }
    };
    if !location_ok {
        let example = match cloud {
            Cloud::Aws => "us-east-1",
            Cloud::Gcp => "us-central1",
            _ => "westus2",
        };
        v.err(
            "properties.providerProfile.location",
            format!("{location:?} is not a location on {cloud}"),
            format!("use a location such as {example}"),
        );
    }
    if cloud == Cloud::Gcp {
        match pp.project.as_deref() {
            None | Some("") => v.err(
                "properties.providerProfile.project",
                "GCP needs a project",
                "set properties.providerProfile.project to your project id (or --set properties.providerProfile.project=ID)".to_string(),
            ),
            Some(pr) => {
                let ok = (6..=30).contains(&pr.len())
                    && pr.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && pr.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !ok {
                    v.err("properties.providerProfile.project", format!("{pr:?} is not a GCP project id"), "use 6–30 lowercase letters, digits and hyphens".to_string());
                }
            }
        }
        if let Some(z) = pp.zone.as_deref() {
            if !z.starts_with(&format!("{location}-")) {
                v.err(
                    "properties.providerProfile.zone",
                    format!("zone {z:?} is not in region {location:?}"),
                    format!("use a zone such as {location}-a"),
                );
            }
        }
    }

    // Orchestrator.
    let default_orch = vlabs::OrchestratorProfile::default();
    let orch = p.orchestrator_profile.as_ref().unwrap_or(&default_orch);
    let otype = orch.orchestrator_type.as_deref().unwrap_or("Kubernetes");
    if !otype.eq_ignore_ascii_case("kubernetes") {
        v.err(
            "properties.orchestratorProfile.orchestratorType",
            format!("hke builds Kubernetes clusters; {otype} is not supported"),
            None,
        );
    }
    let vpath = "properties.orchestratorProfile.orchestratorVersion";
    let rpath = "properties.orchestratorProfile.orchestratorRelease";
    let fallback = table.default_version();
    let mut version_ok = false;
    let k8s = match orch.orchestrator_version.as_deref() {
        Some(s) => match s.parse::<K8sVersion>() {
            Ok(ver) if table.supports(&ver) => {
                if let Some(latest) = table.latest_patch(&ver) {
                    if ver > latest {
                        v.warn(
                            vpath,
                            format!("Kubernetes {ver} is newer than hke's table knows ({latest}); make sure it exists"),
                            None,
                        );
                    }
                }
                version_ok = true;
                ver
            }
            Ok(ver) => {
                let path = if origins.contains(vpath) { vpath } else { rpath };
                v.err(
                    path,
                    format!(
                        "Kubernetes {ver} is not supported; supported versions are {}",
                        table.supported_list()
                    ),
                    format!(
                        "set orchestratorRelease to {} (and remove orchestratorVersion), or run `hke migrate`",
                        table.kubernetes.default
                    ),
                );
                fallback
            }
            Err(e) => {
                v.err(vpath, e, None);
                fallback
            }
        },
        None => {
            let r = orch.orchestrator_release.as_deref().unwrap_or("");
            v.err(
                rpath,
                format!(
                    "Kubernetes release {r:?} is not supported; supported versions are {}",
                    table.supported_list()
                ),
                format!(
                    "set orchestratorRelease to {}, or run `hke migrate`",
                    table.kubernetes.default
                ),
            );
            fallback
        }
    };
    if let Some(r) = orch.orchestrator_release.as_deref() {
        if version_ok && !r.is_empty() && r.trim_start_matches('v') != k8s.release() {
            v.err(
                rpath,
                format!("orchestratorRelease {r} does not match orchestratorVersion {k8s}"),
                "give only one of them".to_string(),
            );
        }
    }

    // Kubernetes config.
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    let default_k = vlabs::KubernetesConfig::default();
    let k = orch.kubernetes_config.as_ref().unwrap_or(&default_k);
    let plugin_name = k.network_plugin.clone().unwrap_or_default().to_ascii_lowercase();
    let plugin = match plugin_name.as_str() {
        "azure" => NetworkPlugin::Azure,
        "kubenet" => NetworkPlugin::Kubenet,
        "flannel" => NetworkPlugin::Flannel,
        "calico" => NetworkPlugin::Calico,
        "cilium" | "antrea" => {
            v.err(
                &format!("{kpath}.networkPlugin"),
                format!(
                    "networkPlugin {plugin_name} is not supported by hke: it has no Windows data plane hke can install"
                ),
                "use calico or flannel".to_string(),
            );
            NetworkPlugin::Flannel
        }
        other => {
            v.err(
                &format!("{kpath}.networkPlugin"),
                format!("unknown networkPlugin {other:?}"),
                "use azure (Azure only), kubenet, flannel or calico".to_string(),
            );
            NetworkPlugin::Flannel
        }
    };
    if plugin == NetworkPlugin::Azure && !matches!(cloud, Cloud::Azure | Cloud::Fake) {
        v.err(
            &format!("{kpath}.networkPlugin"),
            format!("Azure CNI runs only on Azure, not on {cloud}"),
            "use flannel, calico or kubenet".to_string(),
        );
    }
    if k.network_mode.as_deref().is_some_and(|m| !m.is_empty()) && plugin != NetworkPlugin::Azure {
        v.err(
            &format!("{kpath}.networkMode"),
            "networkMode needs networkPlugin azure",
            "remove networkMode".to_string(),
        );
    }

    let pools_in = p.agent_pool_profiles.clone().unwrap_or_default();
    let any_windows = pools_in.iter().any(|pool| {
        pool.os_type
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case("windows"))
    });
    if plugin == NetworkPlugin::Calico && any_windows {
        // Calico for Windows is installed only through the Tigera operator
        // since Calico 3.28 (the manifest install and its images are gone);
        // hke does not render the operator yet, and a cluster whose Windows
        // nodes cannot network is worse than a clear refusal.
        v.err(
            &format!("{kpath}.networkPlugin"),
            "networkPlugin calico with Windows pools is not supported by this hke version: Calico for Windows needs the Tigera operator, which hke does not install yet",
            "use networkPlugin flannel (VXLAN) or kubenet, or remove the Windows pools".to_string(),
        );
    }
    let policy_name = k.network_policy.clone().unwrap_or_default().to_ascii_lowercase();
    let policy = match policy_name.as_str() {
        "" | "none" => None,
        "calico" => {
            if plugin != NetworkPlugin::Calico && any_windows {
                v.err(
                    &format!("{kpath}.networkPolicy"),
                    format!("networkPolicy calico with networkPlugin {plugin} cannot enforce policy on Windows nodes"),
                    "remove networkPolicy: hke installs no network policy engine on Windows nodes yet".to_string(),
                );
            } else if plugin == NetworkPlugin::Flannel {
                v.err(
                    &format!("{kpath}.networkPolicy"),
                    "networkPolicy calico is not supported with networkPlugin flannel",
                    "use networkPlugin calico".to_string(),
                );
            }
            Some("calico".to_string())
        }
        "azure" => {
            if plugin != NetworkPlugin::Azure {
                v.err(
                    &format!("{kpath}.networkPolicy"),
                    format!("networkPolicy azure needs networkPlugin azure, not {plugin}"),
                    None,
                );
            } else if any_windows {
                v.err(
                    &format!("{kpath}.networkPolicy"),
                    "networkPolicy azure is not supported with Windows pools",
                    "remove networkPolicy, or use networkPlugin calico with networkPolicy calico".to_string(),
                );
            }
            Some("azure".to_string())
        }
        other => {
            v.err(
                &format!("{kpath}.networkPolicy"),
                format!("networkPolicy {other:?} is not supported"),
                "use calico, or leave it empty".to_string(),
            );
            None
        }
    };

    let mpath = "properties.masterProfile";
    let default_master = vlabs::MasterProfile::default();
    let master = p.master_profile.as_ref().unwrap_or(&default_master);
    if p.master_profile.is_none() {
        v.err(
            mpath,
            "masterProfile is missing",
            "add {\"count\": 1, \"dnsPrefix\": \"mycluster\"}".to_string(),
        );
    }
    let node_cidr: Cidr = v.parse(
        &format!("{mpath}.vnetCidr"),
        master.vnet_cidr.as_deref(),
        defaults::NODE_CIDR,
        None,
    );
    let pod_cidr: Cidr = v.parse(
        &format!("{kpath}.clusterSubnet"),
        k.cluster_subnet.as_deref(),
        defaults::POD_CIDR,
        None,
    );
    let service_cidr: Cidr = v.parse(
        &format!("{kpath}.serviceCidr"),
        k.service_cidr.as_deref(),
        defaults::SERVICE_CIDR,
        None,
    );
    let docker_bridge: Cidr = v.parse(
        &format!("{kpath}.dockerBridgeSubnet"),
        k.docker_bridge_subnet.as_deref(),
        defaults::DOCKER_BRIDGE_SUBNET,
        None,
    );
    for (path, c) in [
        ("vnetCidr", &node_cidr),
        ("clusterSubnet", &pod_cidr),
        ("serviceCidr", &service_cidr),
    ] {
        if c.has_host_bits() {
            let full = if path == "vnetCidr" {
                format!("{mpath}.{path}")
            } else {
                format!("{kpath}.{path}")
            };
            v.err(
                &full,
                format!("{c} has host bits set"),
                format!("write {}/{}", c.network(), c.prefix()),
            );
        }
    }
    if plugin == NetworkPlugin::Azure {
        if !(node_cidr.contains(pod_cidr.network()) && node_cidr.prefix() <= pod_cidr.prefix()) {
            v.err(
                &format!("{kpath}.clusterSubnet"),
                format!("with Azure CNI pods take VNet addresses, so clusterSubnet {pod_cidr} must lie inside vnetCidr {node_cidr}"),
                "remove clusterSubnet, or make it equal to vnetCidr".to_string(),
            );
        }
        overlap_check(
            &mut v,
            &[
                (&format!("{mpath}.vnetCidr"), "vnetCidr", node_cidr),
                (&format!("{kpath}.serviceCidr"), "serviceCidr", service_cidr),
                (
                    &format!("{kpath}.dockerBridgeSubnet"),
                    "dockerBridgeSubnet",
                    docker_bridge,
                ),
            ],
        );
    } else {
        overlap_check(
            &mut v,
            &[
                (&format!("{mpath}.vnetCidr"), "vnetCidr", node_cidr),
                (&format!("{kpath}.clusterSubnet"), "clusterSubnet", pod_cidr),
                (&format!("{kpath}.serviceCidr"), "serviceCidr", service_cidr),
                (
                    &format!("{kpath}.dockerBridgeSubnet"),
                    "dockerBridgeSubnet",
                    docker_bridge,
                ),
            ],
        );
    }
    let dns_path = format!("{kpath}.dnsServiceIP");
    let kubernetes_service_ip = service_cidr.nth(1).unwrap_or(service_cidr.network());
    let dns_service_ip = match k.dns_service_ip.as_deref().map(str::parse::<Ipv4Addr>) {
        Some(Ok(ip)) => {
            if !service_cidr.contains(ip) {
                v.err(
                    &dns_path,
                    format!("dnsServiceIP {ip} is not within serviceCidr {service_cidr}"),
                    format!("use an address such as {}", service_cidr.nth(10).unwrap_or(ip)),
                );
            } else if ip == service_cidr.network() || ip == service_cidr.broadcast() || ip == kubernetes_service_ip {
                v.err(
                    &dns_path,
                    format!("dnsServiceIP {ip} is reserved in serviceCidr {service_cidr} (network, broadcast or the kubernetes service address)"),
                    format!("use an address such as {}", service_cidr.nth(10).unwrap_or(ip)),
                );
            }
            ip
        }
        Some(Err(_)) => {
            v.err(
                &dns_path,
                format!("{:?} is not an IPv4 address", k.dns_service_ip.as_deref().unwrap_or("")),
                None,
            );
            Ipv4Addr::new(10, 0, 0, 10)
        }
        None => Ipv4Addr::new(10, 0, 0, 10),
    };
    let max_pods = k.max_pods.unwrap_or(defaults::MAX_PODS);
    if !(5..=250).contains(&max_pods) {
        v.err(
            &format!("{kpath}.maxPods"),
            format!("maxPods {max_pods} is out of range"),
            "use 5 to 250".to_string(),
        );
    }
    let max_pods = max_pods.clamp(5, 250) as u32;
    let proxy_mode = k
        .kube_proxy_mode
        .clone()
        .unwrap_or_else(|| defaults::KUBE_PROXY_MODE.into());
    if !["iptables", "ipvs", "nftables"].contains(&proxy_mode.as_str()) {
        v.err(
            &format!("{kpath}.kubeProxyMode"),
            format!("unknown kubeProxyMode {proxy_mode:?}"),
            "use iptables, ipvs or nftables".to_string(),
        );
    }
    match k
        .container_runtime
        .as_deref()
        .unwrap_or("containerd")
        .to_ascii_lowercase()
        .as_str()
    {
        "containerd" => {}
        "docker" => v.err(
            &format!("{kpath}.containerRuntime"),
            format!("containerRuntime docker is not available in Kubernetes {k8s}: dockershim was removed in 1.24"),
            "use containerd (hke migrate rewrites it)".to_string(),
        ),
        other => v.err(
            &format!("{kpath}.containerRuntime"),
            format!("containerRuntime {other:?} is not supported"),
            "use containerd".to_string(),
        ),
    }
    let containerd_version = k.containerd_version.clone().unwrap_or_else(|| table.containerd.clone());
    let cv: Vec<u32> = containerd_version.split('.').filter_map(|x| x.parse().ok()).collect();
    if cv.len() < 2 || (cv[0], cv[1]) < (1, 7) {
        v.err(
            &format!("{kpath}.containerdVersion"),
            format!("containerd {containerd_version} is not supported; hke installs containerd 1.7 or 2.x"),
            format!("remove containerdVersion for {}", table.containerd),
        );
    }
    if k.enable_rbac == Some(false) {
        v.err(
            &format!("{kpath}.enableRbac"),
            "hke clusters always use RBAC",
            "remove enableRbac".to_string(),
        );
    }
    if let Some(ff) = &p.feature_flags {
        if ff.enable_ipv6_dual_stack == Some(true) {
            v.err(
                "properties.featureFlags.enableIPv6DualStack",
                "IPv6 dual-stack is not supported by hke yet",
                "remove it".to_string(),
            );
        }
        if ff.enable_ipv6_only == Some(true) {
            v.err(
                "properties.featureFlags.enableIPv6Only",
                "IPv6-only clusters are not supported by hke (and cannot run Windows nodes)",
                "remove it".to_string(),
            );
        }
    }
    check_flags(
        &mut v,
        &format!("{kpath}.kubeletConfig"),
        k.kubelet_config.as_ref(),
        true,
    );
    check_flags(
        &mut v,
        &format!("{kpath}.apiServerConfig"),
        k.api_server_config.as_ref(),
        false,
    );
    check_flags(
        &mut v,
        &format!("{kpath}.controllerManagerConfig"),
        k.controller_manager_config.as_ref(),
        false,
    );
    check_flags(
        &mut v,
        &format!("{kpath}.schedulerConfig"),
        k.scheduler_config.as_ref(),
        false,
    );

    // Master profile.
    let name: DnsPrefix = match master.dns_prefix.as_deref() {
        None | Some("") => {
            v.err(
                &format!("{mpath}.dnsPrefix"),
                "dnsPrefix is missing or empty; it names the cluster and its DNS label",
                "set it, e.g. \"dnsPrefix\": \"mycluster\" (hke migrate fills one in)".to_string(),
            );
            DnsPrefix::from_str("hke-cluster").unwrap_or_else(|_| unreachable!())
        }
        Some(s) => match s.parse() {
            Ok(d) => d,
            Err(e) => {
                if !is_placeholder(s) {
                    v.err(&format!("{mpath}.dnsPrefix"), e, None);
                }
                DnsPrefix::from_str("hke-cluster").unwrap_or_else(|_| unreachable!())
            }
        },
    };
    let id = defaults::cluster_id(name.as_str());
    let master_count = master.count.unwrap_or(1);
    if ![1, 3, 5].contains(&master_count) {
        v.err(
            &format!("{mpath}.count"),
            format!("masterProfile count {master_count} is not allowed"),
            "use 1, 3 or 5 (etcd needs an odd quorum)".to_string(),
        );
    }
    let master_count = if [1, 3, 5].contains(&master_count) {
        master_count as u32
    } else {
        1
    };
    let master_size = master.vm_size.clone().unwrap_or_else(|| defaults::VM_SIZE.into());
    check_vm_size(&mut v, cloud, &format!("{mpath}.vmSize"), &master_size);
    let master_disk = master.os_disk_size_gb.unwrap_or(defaults::OS_DISK_GB);
    if !(30..=2048).contains(&master_disk) {
        v.err(
            &format!("{mpath}.osDiskSizeGB"),
            format!("osDiskSizeGB {master_disk} is out of range"),
            "use 30 to 2048".to_string(),
        );
    }
    let fpath = format!("{mpath}.firstConsecutiveStaticIP");
    let first_ip = match master
        .first_consecutive_static_ip
        .as_deref()
        .map(str::parse::<Ipv4Addr>)
    {
        Some(Ok(ip)) => ip,
        Some(Err(_)) => {
            v.err(
                &fpath,
                format!(
                    "{:?} is not an IPv4 address",
                    master.first_consecutive_static_ip.as_deref().unwrap_or("")
                ),
                None,
            );
            defaults::first_master_ip(&node_cidr).unwrap_or(node_cidr.network())
        }
        None => defaults::first_master_ip(&node_cidr).unwrap_or(node_cidr.network()),
    };
    let mut master_ips = Vec::new();
    for i in 0..master_count {
        let ip = Ipv4Addr::from(u32::from(first_ip).wrapping_add(i));
        if !node_cidr.contains(ip) || ip == node_cidr.network() || ip == node_cidr.broadcast() {
            v.err(
                &fpath,
                format!("master {i} would get {ip}, which is not a usable address of vnetCidr {node_cidr}"),
                "choose a firstConsecutiveStaticIP with room for every master inside vnetCidr".to_string(),
            );
            break;
        }
        master_ips.push(ip);
    }
    if cloud == Cloud::Aws && master_ips.len() == master_count as usize {
        aws_spread_masters(&mut v, &fpath, &node_cidr, &mut master_ips);
    }
    let internal_lb_ip = (cloud == Cloud::Azure && master_count > 1)
        .then(|| Ipv4Addr::from(u32::from(first_ip).wrapping_add(defaults::INTERNAL_LB_OFFSET)))
        .filter(|ip| node_cidr.contains(*ip) && *ip != node_cidr.broadcast());
    if cloud == Cloud::Azure && master_count > 1 && internal_lb_ip.is_none() {
        v.err(
            &fpath,
            format!("the internal load balancer address ({first_ip} + 10) is outside vnetCidr {node_cidr}"),
            "choose a lower firstConsecutiveStaticIP".to_string(),
        );
    }
    let mut extra_sans = Vec::new();
    for (i, san) in master
        .subject_alt_names
        .clone()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let ok = san.parse::<Ipv4Addr>().is_ok()
            || dns_subdomain_ok(&san.to_ascii_lowercase())
            || (san.starts_with("*.") && dns_subdomain_ok(&san[2..].to_ascii_lowercase()));
        if ok {
            extra_sans.push(san);
        } else {
            v.err(
                &format!("{mpath}.subjectAltNames[{i}]"),
                format!("{san:?} is neither a DNS name nor an IPv4 address"),
                None,
            );
        }
    }
    let mut api_source_ranges = Vec::new();
    match master.http_source_address_prefix.as_deref() {
        None | Some("*") | Some("") | Some("Internet") => api_source_ranges.push("0.0.0.0/0".to_string()),
        Some(s) => match s.parse::<Cidr>() {
            Ok(c) => api_source_ranges.push(c.to_string()),
            Err(e) => v.err(
                &format!("{mpath}.HTTPSourceAddressPrefix"),
                e,
                "use a CIDR such as 203.0.113.0/24, or \"*\"".to_string(),
            ),
        },
    }
    check_flags(
        &mut v,
        &format!("{mpath}.kubernetesConfig.kubeletConfig"),
        master
            .kubernetes_config
            .as_ref()
            .and_then(|c| c.kubelet_config.as_ref()),
        true,
    );

    // Cluster-wide kubelet flags: defaults, derived values, then the model.
    let mut kubelet_flags: BTreeMap<String, String> = defaults::KUBELET_FLAGS
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    kubelet_flags.insert("--max-pods".into(), max_pods.to_string());
    kubelet_flags.insert("--cluster-dns".into(), dns_service_ip.to_string());
    kubelet_flags.insert("--cluster-domain".into(), defaults::CLUSTER_DOMAIN.into());
    if let Some(user) = &k.kubelet_config {
        kubelet_flags.extend(user.clone());
    }
    let master_kubelet = {
        let mut f = kubelet_flags.clone();
        if let Some(user) = master
            .kubernetes_config
            .as_ref()
            .and_then(|c| c.kubelet_config.as_ref())
        {
            f.extend(user.clone());
        }
        f
    };

    // Windows profile.
    let default_windows = table.default_windows();
    let wprof = p.windows_profile.clone().unwrap_or_default();
    let wpath = "properties.windowsProfile";
    let profile_windows: WindowsVersion = match wprof.windows_version.as_deref() {
        Some(s) => parse_windows(&mut v, &format!("{wpath}.windowsVersion"), s).unwrap_or(default_windows),
        None => match infer_windows_version(&wprof) {
            Some((field, Err(e))) if any_windows => {
                let val = match &e {
                    WindowsVersionError::Retired(s) | WindowsVersionError::Unknown(s) => s.clone(),
                };
                v.err(
                    &format!("{wpath}.{field}"),
                    format!("the image pins Windows Server {val}, which is retired; supported versions are 2019, 2022 and 2025"),
                    "set windowsProfile.windowsVersion to 2022 and remove the image pin, or run `hke migrate`".to_string(),
                );
                default_windows
            }
            Some((_, Ok(w))) => w,
            _ => default_windows,
        },
    };
    if let (Some(wv), Some((field, pinned)), true) = (
        wprof.windows_version.as_deref(),
        infer_windows_version(&wprof),
        any_windows && cloud == Cloud::Azure,
    ) {
        match pinned {
            Ok(pinned) if wv.parse::<WindowsVersion>().ok() != Some(pinned) => v.err(
                &format!("{wpath}.{field}"),
                format!("the image pin is Windows Server {pinned} but windowsVersion is {wv}"),
                "make them agree, or remove the image pin".to_string(),
            ),
            Ok(_) => {}
            Err(WindowsVersionError::Retired(r) | WindowsVersionError::Unknown(r)) => v.err(
                &format!("{wpath}.{field}"),
                format!(
                    "the image pins Windows Server {r}, which is retired; supported versions are 2019, 2022 and 2025"
                ),
                "remove the image pin (windowsSku/imageVersion), or run `hke migrate`".to_string(),
            ),
        }
    }
    let windows = if any_windows {
        let user = wprof.admin_username.clone().unwrap_or_default();
        if !is_placeholder(&user) {
            check_username(&mut v, &format!("{wpath}.adminUsername"), &user, true);
        }
        let pw = wprof.admin_password.clone().unwrap_or_default();
        check_password(&mut v, &format!("{wpath}.adminPassword"), &pw, &user);
        Some(WindowsAccess {
            admin_username: user,
            admin_password: Secret::new(pw),
            ssh_enabled: wprof.ssh_enabled.unwrap_or(defaults::SSH_ENABLED),
            automatic_updates: wprof.enable_automatic_updates.unwrap_or(defaults::AUTOMATIC_UPDATES),
            pause_image: wprof.windows_pause_image_url.clone().filter(|s| !s.is_empty()),
            always_pull_pause_image: wprof.always_pull_windows_pause_image.unwrap_or(false),
            azure_hybrid_benefit: wprof.enable_ahub.unwrap_or(false),
            azure_image_version: wprof
                .image_version
                .clone()
                .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("latest")),
        })
    } else {
        None
    };

    // Pools.
    let mut pools = Vec::new();
    let mut names = BTreeSet::new();
    if pools_in.is_empty() {
        v.warn(
            "properties.agentPoolProfiles",
            "the cluster has no worker pools; workloads will run on the control plane",
            None,
        );
    }
    if pools_in.len() > 100 {
        v.err(
            "properties.agentPoolProfiles",
            format!("{} pools is too many", pools_in.len()),
            "use at most 100 pools".to_string(),
        );
    }
    for (idx, pool) in pools_in.iter().enumerate() {
        let pp = format!("properties.agentPoolProfiles[{idx}]");
        let pname = pool.name.clone().unwrap_or_default();
        let name_ok = !pname.is_empty()
            && pname.len() <= 12
            && pname.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && pname.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !name_ok {
            v.err(
                &format!("{pp}.name"),
                format!("pool name {pname:?} is invalid"),
                "use 1–12 lowercase letters and digits, starting with a letter".to_string(),
            );
        } else if !names.insert(pname.clone()) {
            v.err(
                &format!("{pp}.name"),
                format!("pool name {pname:?} is used twice"),
                "pool names must be unique".to_string(),
            );
        }
        let os = match pool.os_type.as_deref().unwrap_or("Linux").to_ascii_lowercase().as_str() {
            "linux" | "" => OsType::Linux,
            "windows" => OsType::Windows,
            other => {
                v.err(
                    &format!("{pp}.osType"),
                    format!("osType {other:?} is unknown"),
                    "use Linux or Windows".to_string(),
                );
                OsType::Linux
            }
        };
        let count = pool.count.unwrap_or(0);
        if !(1..=1000).contains(&count) {
            v.err(
                &format!("{pp}.count"),
                format!("pool count {count} is out of range"),
                "use 1 to 1000".to_string(),
            );
        }
        let count = count.clamp(0, 1000) as u32;
        let size = pool.vm_size.clone().unwrap_or_else(|| defaults::VM_SIZE.into());
        check_vm_size(&mut v, cloud, &format!("{pp}.vmSize"), &size);
        let disk = pool.os_disk_size_gb.unwrap_or(defaults::OS_DISK_GB);
        if !(30..=2048).contains(&disk) {
            v.err(
                &format!("{pp}.osDiskSizeGB"),
                format!("osDiskSizeGB {disk} is out of range"),
                "use 30 to 2048 (128 for Windows)".to_string(),
            );
        } else if os == OsType::Windows && disk < 64 {
            v.warn(
                &format!("{pp}.osDiskSizeGB"),
                format!("{disk} GB is small for a Windows node: container images fill it quickly"),
                "use 128".to_string(),
            );
        }
        if pool.dns_prefix.as_deref().is_some_and(|d| !d.is_empty()) {
            v.err(
                &format!("{pp}.dnsPrefix"),
                "a pool's dnsPrefix must be empty for Kubernetes",
                "remove it".to_string(),
            );
        }
        if pool.ports.as_ref().is_some_and(|p| !p.is_empty()) {
            v.err(
                &format!("{pp}.ports"),
                "a pool's ports must be empty for Kubernetes",
                "remove them".to_string(),
            );
        }
        let windows_version = if os == OsType::Windows {
            Some(match pool.windows_version.as_deref() {
                Some(s) => parse_windows(&mut v, &format!("{pp}.windowsVersion"), s).unwrap_or(profile_windows),
                None => profile_windows,
            })
        } else {
            if pool.windows_version.is_some() {
                v.err(
                    &format!("{pp}.windowsVersion"),
                    "windowsVersion is set on a Linux pool",
                    "remove it, or set osType to Windows".to_string(),
                );
            }
            None
        };
        let hyperv = pool.hyperv_isolation.unwrap_or(false);
        if hyperv && os != OsType::Windows {
            v.err(
                &format!("{pp}.hypervIsolation"),
                "Hyper-V isolation is for Windows pools",
                "remove it, or set osType to Windows".to_string(),
            );
        }
        if let Some(ami) = pool.image_id.as_deref() {
            let hex = ami.strip_prefix("ami-").unwrap_or_default();
            if cloud != Cloud::Aws {
                v.err(
                    &format!("{pp}.imageId"),
                    format!("imageId {ami:?} pins an AWS AMI, but the cluster is on {cloud}"),
                    "remove it (Azure pools pin images with imageReference)".to_string(),
                );
            } else if !(matches!(hex.len(), 8 | 17) && hex.chars().all(|c| c.is_ascii_hexdigit())) {
                v.err(
                    &format!("{pp}.imageId"),
                    format!("imageId {ami:?} is not an AMI id"),
                    "use an id like ami-0123456789abcdef0 (see `aws ec2 describe-images`)".to_string(),
                );
            }
        }
        let mut labels = BTreeMap::new();
        labels.insert("hke.io/pool".to_string(), pname.clone());
        if hyperv && os == OsType::Windows {
            labels.insert(names::HYPERV_LABEL.to_string(), "true".to_string());
        }
        labels.insert("agentpool".to_string(), pname.clone());
        // No `node.kubernetes.io/windows-build` here: the kubelet on Windows
        // labels its node with the build the OS reports (pkg/kubelet/
        // kubelet_node_status_windows.go getOSSpecificLabels), and a label
        // hke set from its table would override the truth the RuntimeClasses
        // select on.
        for (key, val) in pool.custom_node_labels.clone().unwrap_or_default() {
            match check_label(&key, &val) {
                Ok(()) => {
                    labels.insert(key, val);
                }
                Err(e) => v.err(&format!("{pp}.customNodeLabels[{key:?}]"), e, None),
            }
        }
        let pool_flags = pool.kubernetes_config.as_ref().and_then(|c| c.kubelet_config.as_ref());
        check_flags(
            &mut v,
            &format!("{pp}.kubernetesConfig.kubeletConfig"),
            pool_flags,
            true,
        );
        let mut flags = kubelet_flags.clone();
        if let Some(f) = pool_flags {
            flags.extend(f.clone());
        }
        let taints = match flags.get("--register-with-taints") {
            Some(t) => parse_taints(t).unwrap_or_else(|e| {
                v.err(
                    &format!("{pp}.kubernetesConfig.kubeletConfig[\"--register-with-taints\"]"),
                    e,
                    None,
                );
                Vec::new()
            }),
            None => Vec::new(),
        };
        let node_names: Vec<String> = (0..count).map(|i| node_name(&id, cloud, &pname, idx, os, i)).collect();
        if os == OsType::Windows {
            if let Some(long) = node_names.iter().find(|n| n.len() > WINDOWS_NAME_MAX) {
                v.err(
                    &format!("{pp}.name"),
                    format!("Windows computer name {long:?} is longer than {WINDOWS_NAME_MAX} characters"),
                    None,
                );
            }
        }
        pools.push(Pool {
            name: pname,
            index: idx,
            os,
            count,
            vm_size: size,
            os_disk_gb: disk.clamp(0, 2048) as u32,
            windows: windows_version,
            hyperv: hyperv && os == OsType::Windows,
            image_id: pool.image_id.clone(),
            node_names,
            labels,
            taints,
            kubelet_flags: flags,
        });
    }

    azure_rules(&mut v, k, master, &pools_in);
    if cloud == Cloud::Azure {
        azure_limits(&mut v, plugin, name.as_str(), master_count, &pools);
    }
    for (path, flags) in [
        (format!("{kpath}.kubeletConfig"), k.kubelet_config.as_ref()),
        (
            format!("{kpath}.controllerManagerConfig"),
            k.controller_manager_config.as_ref(),
        ),
    ] {
        check_durations(&mut v, &path, flags);
    }

    // Capacity of the networks.
    let nodes = u64::from(master_count) + pools.iter().map(|p| u64::from(p.count)).sum::<u64>();
    if nodes > MAX_NODES {
        v.err(
            "properties.agentPoolProfiles",
            format!("{nodes} nodes is more than hke supports ({MAX_NODES})"),
            None,
        );
    }
    if node_cidr.size() < nodes + 16 {
        v.err(
            &format!("{mpath}.vnetCidr"),
            format!("vnetCidr {node_cidr} has too few addresses for {nodes} nodes"),
            "use a larger range such as 10.240.0.0/16".to_string(),
        );
    }
    match plugin {
        NetworkPlugin::Kubenet | NetworkPlugin::Flannel => {
            let cap = if pod_cidr.prefix() <= defaults::NODE_POD_CIDR_MASK {
                1u64 << (defaults::NODE_POD_CIDR_MASK - pod_cidr.prefix())
            } else {
                0
            };
            if cap < nodes {
                v.err(
                    &format!("{kpath}.clusterSubnet"),
                    format!("clusterSubnet {pod_cidr} holds {cap} node pod ranges (/24 each) but the cluster has {nodes} nodes"),
                    format!("use a larger range such as {}", defaults::default_pod_cidr(nodes)),
                );
            }
        }
        NetworkPlugin::Calico => {
            if pod_cidr.size() < nodes * 64 {
                v.err(
                    &format!("{kpath}.clusterSubnet"),
                    format!("clusterSubnet {pod_cidr} is too small for {nodes} nodes"),
                    format!("use a larger range such as {}", defaults::default_pod_cidr(nodes)),
                );
            }
        }
        NetworkPlugin::Azure => {
            let need = nodes * (u64::from(max_pods) + 1) + 16;
            if node_cidr.size() < need {
                v.err(
                    &format!("{mpath}.vnetCidr"),
                    format!(
                        "with Azure CNI every node takes {} addresses; vnetCidr {node_cidr} cannot hold {nodes} nodes",
                        max_pods + 1
                    ),
                    "use a larger vnetCidr such as 10.240.0.0/12, or lower maxPods".to_string(),
                );
            }
        }
    }
    // AWS: the cluster's route table holds the default route and, with
    // kubenet, one route per node; "Routes per route table (non-propagated
    // routes)" defaults to 50 (Amazon VPC quotas, docs.aws.amazon.com/vpc/
    // latest/userguide/amazon-vpc-limits.html). Over that, CreateRoute fails
    // mid-deploy: refuse the model instead.
    if plugin == NetworkPlugin::Kubenet && cloud == Cloud::Aws && nodes + AWS_FIXED_ROUTES > AWS_ROUTES_PER_TABLE {
        v.err(
            &format!("{kpath}.networkPlugin"),
            format!(
                "networkPlugin \"kubenet\" on AWS needs {} routes in the cluster's route table ({nodes} nodes and the \
                 default route), over the {AWS_ROUTES_PER_TABLE} a route table holds by default",
                nodes + AWS_FIXED_ROUTES
            ),
            format!(
                "use networkPlugin flannel or calico, or at most {} nodes with kubenet",
                AWS_ROUTES_PER_TABLE - AWS_FIXED_ROUTES
            ),
        );
    }

    // Linux access.
    let lp = p.linux_profile.clone().unwrap_or_default();
    let lpath = "properties.linuxProfile";
    let luser = lp.admin_username.clone().unwrap_or_default();
    if !is_placeholder(&luser) {
        check_username(&mut v, &format!("{lpath}.adminUsername"), &luser, false);
    }
    let ssh = lp.ssh.clone().unwrap_or_default();
    let mut keys = Vec::new();
    for (i, key) in ssh.public_keys.clone().unwrap_or_default().iter().enumerate() {
        let kp = format!("{lpath}.ssh.publicKeys[{i}].keyData");
        let data = key.key_data.clone().unwrap_or_default();
        if data.trim().is_empty() {
            v.err(
                &kp,
                "keyData is empty",
                "remove the publicKeys entry and hke generates a key pair, or paste your OpenSSH public key (hke migrate removes empty keys)".to_string(),
            );
        } else if !is_placeholder(&data) {
            match ssh_key::PublicKey::from_openssh(data.trim()) {
                Ok(_) => keys.push(data.trim().to_string()),
                Err(_) => v.err(
                    &kp,
                    "keyData is not an OpenSSH public key",
                    "paste the one line of your id_ed25519.pub or id_rsa.pub".to_string(),
                ),
            }
        }
    }
    if ssh.public_keys.as_ref().is_none_or(|k| k.is_empty()) {
        v.err(
            &format!("{lpath}.ssh"),
            "no SSH public key",
            "remove linuxProfile.ssh and hke generates a key pair".to_string(),
        );
    }

    // Certificates and token.
    let cp = p.certificate_profile.clone().unwrap_or_default();
    let key_algorithm: KeyAlgorithm = v.parse(
        "properties.certificateProfile.keyAlgorithm",
        cp.key_algorithm.as_deref(),
        defaults::KEY_ALGORITHM,
        None,
    );
    let token = cp.bootstrap_token.clone().unwrap_or_default();
    if !secrets::is_bootstrap_token(&token) {
        v.err(
            "properties.certificateProfile.bootstrapToken",
            "the bootstrap token is not of the form [a-z0-9]{6}.[a-z0-9]{16}",
            "remove bootstrapToken and hke generates one".to_string(),
        );
    }

    // Endpoint.
    let port = defaults::API_SERVER_PORT;
    let (san_names, url, resolved) = match cloud {
        Cloud::Azure => {
            let fqdn = format!("{name}.{location}.cloudapp.azure.com");
            (vec![fqdn.clone()], format!("https://{fqdn}:{port}"), true)
        }
        Cloud::Fake => {
            let fqdn = format!("{name}.{location}.fake.hke.invalid");
            (vec![fqdn.clone()], format!("https://{fqdn}:{port}"), true)
        }
        Cloud::Aws => (
            vec![format!("*.elb.{location}.amazonaws.com")],
            format!("https://{name}.pending.hke.invalid:{port}"),
            false,
        ),
        Cloud::Gcp => (Vec::new(), format!("https://{name}.pending.hke.invalid:{port}"), false),
    };

    let errors_now = v
        .diags
        .items
        .iter()
        .filter(|d| d.severity == crate::model::diag::Severity::Error)
        .count();
    if errors_now > before {
        return None;
    }
    let mut tags = m.tags.clone().unwrap_or_default();
    tags.retain(|k, _| !k.starts_with("hke.io/"));
    Some(Cluster {
        name: name.clone(),
        id: id.clone(),
        provider: Provider {
            cloud,
            location,
            gcp_project: pp.project.clone(),
            gcp_zone: pp.zone.clone(),
            azure_subscription: pp.subscription_id.clone(),
            azure_resource_group: pp.resource_group.clone(),
        },
        kubernetes: k8s,
        containerd_version,
        network: Network {
            plugin,
            policy,
            node_cidr,
            pod_cidr,
            service_cidr,
            dns_service_ip,
            kubernetes_service_ip,
            docker_bridge,
            max_pods,
            kube_proxy_mode: proxy_mode,
            cluster_domain: defaults::CLUSTER_DOMAIN.into(),
            api_source_ranges,
        },
        endpoint: Endpoint {
            san_names,
            url,
            resolved,
            port,
            internal_lb_ip,
        },
        masters: Masters {
            count: master_count,
            vm_size: master_size,
            os_disk_gb: master_disk as u32,
            names: (0..master_count).map(|i| format!("k8s-master-{id}-{i}")).collect(),
            ips: master_ips,
            extra_sans,
            kubelet_flags: master_kubelet,
        },
        pools,
        linux: LinuxAccess {
            admin_username: luser,
            ssh_public_keys: keys,
            ssh_private_key: ssh.private_key.clone().map(Secret::new),
        },
        windows,
        key_algorithm,
        kubelet_flags,
        api_server_flags: k.api_server_config.clone().unwrap_or_default(),
        controller_manager_flags: k.controller_manager_config.clone().unwrap_or_default(),
        scheduler_flags: k.scheduler_config.clone().unwrap_or_default(),
        win_dsr: p.feature_flags.as_ref().and_then(|f| f.enable_win_dsr).unwrap_or(false),
        tags,
        bootstrap_token: Secret::new(token),
    })
}

fn parse_windows(v: &mut V<'_>, path: &str, s: &str) -> Option<WindowsVersion> {
    match s.parse::<WindowsVersion>() {
        Ok(w) => Some(w),
        Err(WindowsVersionError::Retired(r)) => {
            v.err(
                path,
                format!("Windows Server {r} is retired; supported versions are 2019, 2022 and 2025"),
                "use 2022 (hke migrate rewrites retired versions)".to_string(),
            );
            None
        }
        Err(WindowsVersionError::Unknown(u)) => {
            v.err(
                path,
                format!("{u:?} is not a Windows Server version"),
                "use 2019, 2022 or 2025".to_string(),
            );
            None
        }
    }
}

/// Flags whose values are Go durations.
pub const DURATION_FLAGS: &[&str] = &[
    "--node-status-update-frequency",
    "--node-monitor-grace-period",
    "--pod-eviction-timeout",
    "--route-reconciliation-period",
    "--streaming-connection-idle-timeout",
    "--runtime-request-timeout",
    "--image-pull-progress-deadline",
];

/// Does `s` parse as a Go duration (`300ms`, `1h2m3.5s`, `0`)?
pub fn is_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    let mut any = false;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[num_len..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u) && !(**u == "m" && rest.starts_with("ms")));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
        any = true;
    }
    any
}

fn check_durations(v: &mut V<'_>, path: &str, flags: Option<&vlabs::FlagMap>) {
    for (flag, value) in flags.into_iter().flatten() {
        if DURATION_FLAGS.contains(&flag.as_str()) && !is_go_duration(value) {
            v.err(
                &format!("{path}[{flag:?}]"),
                format!("{flag} {value:?} is not a duration"),
                "write a duration such as 10s, 5m0s or 1h".to_string(),
            );
        }
    }
}

fn in_range(v: &mut V<'_>, path: &str, value: Option<i64>, range: std::ops::RangeInclusive<i64>, what: &str) {
    if let Some(n) = value {
        if !range.contains(&n) {
            v.err(
                path,
                format!("{n}{what} is out of range"),
                format!("use {} to {}", range.start(), range.end()),
            );
        }
    }
}

fn one_of(v: &mut V<'_>, path: &str, value: Option<&str>, allowed: &[&str]) {
    if let Some(x) = value.filter(|x| !x.is_empty()) {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(x)) {
            v.err(
                path,
                format!("{x:?} is not allowed"),
                format!("use one of {}", allowed.join(", ")),
            );
        }
    }
}

/// "User-defined routes per route table: 400" (Azure subscription and service
/// limits, Networking limits - Azure Resource Manager).
pub const AZURE_ROUTES_PER_TABLE: u64 = 400;
/// "Virtual machines per availability set: 200" (Azure subscription and
/// service limits, Virtual Machines limits - Azure Resource Manager).
pub const AZURE_AVAILABILITY_SET_MAX: u32 = 200;

/// Azure's limits on what the plan makes, refused here rather than
/// mid-deploy. A pool is also one scale set at most: the pool count check
/// (1 to 1000) matches a scale set's 1,000 instances, and sets over 100
/// span placement groups (the provider sets `singlePlacementGroup: false`).
fn azure_limits(v: &mut V<'_>, plugin: NetworkPlugin, name: &str, master_count: u32, pools: &[Pool]) {
    let mpath = "properties.masterProfile";
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    // dnsPrefix is the DNS label of the API server's public IP, which ARM
    // requires to match ^[a-z][a-z0-9-]{1,61}[a-z0-9]$ (domainNameLabel,
    // Network REST API "Check Dns Name Availability").
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        v.err(
            &format!("{mpath}.dnsPrefix"),
            format!(
                "dnsPrefix {name:?} has capital letters; on Azure it is the DNS label of the API server's public IP, \
                 which must be lower case"
            ),
            format!("use \"dnsPrefix\": {:?}", name.to_ascii_lowercase()),
        );
    }
    // kubenet: one route per node in the VNet's one route table.
    if plugin == NetworkPlugin::Kubenet {
        let routes = u64::from(master_count) + pools.iter().map(|p| u64::from(p.count)).sum::<u64>();
        if routes > AZURE_ROUTES_PER_TABLE {
            v.err(
                &format!("{kpath}.networkPlugin"),
                format!(
                    "networkPlugin \"kubenet\" on Azure needs one route per node: {routes} routes, over the \
                     {AZURE_ROUTES_PER_TABLE} routes an Azure route table holds"
                ),
                format!("use networkPlugin azure, flannel or calico, or at most {AZURE_ROUTES_PER_TABLE} nodes with kubenet"),
            );
        }
    }
    // A pool's machines share an availability set unless the pool is a
    // scale set, which every pool of 20 or more is, but with kubenet (a
    // route per machine). Such a pool is refused rather than split over
    // several sets: with kubenet it cannot become a scale set, and the
    // route limit caps the cluster at 400 nodes anyway.
    for pool in pools {
        let in_set = plugin == NetworkPlugin::Kubenet || pool.count < names::MACHINE_GROUP_MIN;
        if in_set && pool.count > AZURE_AVAILABILITY_SET_MAX {
            v.err(
                &format!("properties.agentPoolProfiles[{}].count", pool.index),
                format!(
                    "pool {} has {} nodes; with networkPlugin \"kubenet\" each is a VM in the pool's availability set, \
                     which holds at most {AZURE_AVAILABILITY_SET_MAX} VMs",
                    pool.name, pool.count
                ),
                format!(
                    "split it into pools of at most {AZURE_AVAILABILITY_SET_MAX} nodes, or use networkPlugin azure, \
                     flannel or calico (the pool becomes one scale set)"
                ),
            );
        }
    }
}

/// Azure-only settings: checked wherever they appear, since a wrong value is
/// wrong on every cloud (and off Azure they only warn as having no effect).
fn azure_rules(
    v: &mut V<'_>,
    k: &vlabs::KubernetesConfig,
    master: &vlabs::MasterProfile,
    pools: &[vlabs::AgentPoolProfile],
) {
    const CACHING: &[&str] = &["None", "ReadWrite", "ReadOnly"];
    const AVAILABILITY: &[&str] = &["AvailabilitySet", "VirtualMachineScaleSets"];
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    let mpath = "properties.masterProfile";
    let fields: [(String, Option<&str>, &[&str]); 5] = [
        (
            format!("{kpath}.loadBalancerSku"),
            k.load_balancer_sku.as_deref(),
            &["Standard", "Basic"],
        ),
        (
            format!("{kpath}.networkMode"),
            k.network_mode.as_deref(),
            &["transparent", "bridge"],
        ),
        (
            format!("{mpath}.storageProfile"),
            master.storage_profile.as_deref(),
            &["ManagedDisks", "StorageAccount"],
        ),
        (
            format!("{mpath}.availabilityProfile"),
            master.availability_profile.as_deref(),
            AVAILABILITY,
        ),
        (
            format!("{mpath}.osDiskCachingType"),
            master.os_disk_caching_type.as_deref(),
            CACHING,
        ),
    ];
    for (path, value, allowed) in &fields {
        one_of(v, path, *value, allowed);
    }
    in_range(
        v,
        &format!("{kpath}.outboundRuleIdleTimeoutInMinutes"),
        k.outbound_rule_idle_timeout_in_minutes,
        4..=120,
        "",
    );
    in_range(
        v,
        &format!("{mpath}.ipAddressCount"),
        master.ip_address_count,
        0..=256,
        "",
    );
    let mut profiles = BTreeSet::new();
    let master_vnet = master.vnet_subnet_id.as_deref().is_some_and(|s| !s.is_empty());
    for (i, pool) in pools.iter().enumerate() {
        let pp = format!("properties.agentPoolProfiles[{i}]");
        let fields: [(&str, Option<&str>, &[&str]); 6] = [
            (
                "storageProfile",
                pool.storage_profile.as_deref(),
                &["ManagedDisks", "StorageAccount", "Ephemeral"],
            ),
            (
                "availabilityProfile",
                pool.availability_profile.as_deref(),
                AVAILABILITY,
            ),
            (
                "scaleSetPriority",
                pool.scale_set_priority.as_deref(),
                &["Regular", "Low", "Spot"],
            ),
            (
                "scaleSetEvictionPolicy",
                pool.scale_set_eviction_policy.as_deref(),
                &["Delete", "Deallocate"],
            ),
            ("osDiskCachingType", pool.os_disk_caching_type.as_deref(), CACHING),
            ("dataDiskCachingType", pool.data_disk_caching_type.as_deref(), CACHING),
        ];
        for (field, value, allowed) in fields {
            one_of(v, &format!("{pp}.{field}"), value, allowed);
        }
        if let Some(p) = pool.availability_profile.as_deref().filter(|p| !p.is_empty()) {
            profiles.insert(p.to_ascii_lowercase());
        }
        if let Some(disks) = &pool.disk_sizes_gb {
            if disks.len() > 4 {
                v.err(
                    &format!("{pp}.diskSizesGB"),
                    format!("{} data disks given", disks.len()),
                    "use at most 4".to_string(),
                );
            }
            for (j, d) in disks.iter().enumerate() {
                in_range(v, &format!("{pp}.diskSizesGB[{j}]"), Some(*d), 1..=32767, " GB");
            }
        }
        in_range(v, &format!("{pp}.ipAddressCount"), pool.ip_address_count, 0..=256, "");
        if pool.vnet_subnet_id.as_deref().is_some_and(|s| !s.is_empty()) != master_vnet {
            v.err(
                &format!("{pp}.vnetSubnetID"),
                "the master profile and every pool must all name a custom VNet subnet, or none of them",
                "set vnetSubnetID everywhere, or remove it everywhere".to_string(),
            );
        }
    }
    if profiles.len() > 1 {
        v.err(
            "properties.agentPoolProfiles",
            "pools mix AvailabilitySet and VirtualMachineScaleSets",
            "use one availabilityProfile for every pool".to_string(),
        );
    }
}

/// AWS's default "Routes per route table (non-propagated routes)" (Amazon
/// VPC quotas).
pub const AWS_ROUTES_PER_TABLE: u64 = 50;
/// Routes of the cluster's route table besides the nodes' (0.0.0.0/0 to the
/// internet gateway).
const AWS_FIXED_ROUTES: u64 = 1;

/// AWS: spread several masters one per availability zone. An AWS subnet
/// lies in one zone, and the provider makes the node range's quarters its
/// subnets, quarter q in the region's zone q mod 3 (providers/aws
/// `create_subnets`): consecutive addresses would put every master in one
/// quarter, so one zone. Master 0 keeps firstConsecutiveStaticIP; master i
/// takes the same place in the quarter of the next zone, one address
/// further in each round of three. A range too small to quarter (smaller
/// than /26) keeps consecutive addresses.
fn aws_spread_masters(v: &mut V<'_>, fpath: &str, node: &Cidr, ips: &mut [Ipv4Addr]) {
    const ZONES: u32 = 3;
    if ips.len() < 2 || node.prefix() > 26 {
        return;
    }
    let base = u32::from(node.network());
    let quarter = (node.size() / 4) as u32;
    let first = u32::from(ips[0]) - base;
    let (q0, offset) = (first / quarter, first % quarter);
    for (i, ip) in ips.iter_mut().enumerate() {
        let i = i as u32;
        let zone = (q0 % ZONES + i) % ZONES;
        let q = if q0 % ZONES == zone { q0 } else { zone };
        let at = offset + i / ZONES;
        // AWS keeps the first four addresses and the last of every subnet.
        if at < 4 || at >= quarter - 1 {
            v.err(
                fpath,
                format!(
                    "on AWS the masters are spread over the zones' subnets (quarters of vnetCidr {node}); master {i} \
                     would get address {at} of its quarter, which AWS reserves"
                ),
                "choose a firstConsecutiveStaticIP at least 4 addresses past the start of its quarter and a few before its end"
                    .to_string(),
            );
            return;
        }
        *ip = Ipv4Addr::from(base + q * quarter + at);
    }
}

#[cfg(test)]
mod aws_tests {
    use super::*;

    fn spread(cidr: &str, first: &str, n: u32) -> (Vec<String>, bool) {
        let node: Cidr = cidr.parse().expect("cidr");
        let first: Ipv4Addr = first.parse().expect("ip");
        let mut ips: Vec<Ipv4Addr> = (0..n).map(|i| Ipv4Addr::from(u32::from(first) + i)).collect();
        let origins = crate::model::diag::Origins::default();
        let mut diags = crate::model::diag::Diagnostics::default();
        let mut v = V {
            origins: &origins,
            diags: &mut diags,
        };
        aws_spread_masters(
            &mut v,
            "properties.masterProfile.firstConsecutiveStaticIP",
            &node,
            &mut ips,
        );
        (ips.iter().map(Ipv4Addr::to_string).collect(), diags.has_errors())
    }

    #[test]
    fn aws_masters_take_one_quarter_per_zone() {
        // Quarter q of 10.240.0.0/16 is in zone q mod 3: 3 → a, 1 → b, 2 → c.
        assert_eq!(
            spread("10.240.0.0/16", "10.240.255.5", 3),
            (
                vec!["10.240.255.5".into(), "10.240.127.5".into(), "10.240.191.5".into()],
                false
            )
        );
        // Five masters: a second round one address further on.
        assert_eq!(
            spread("10.240.0.0/16", "10.240.255.5", 5).0,
            vec![
                "10.240.255.5",
                "10.240.127.5",
                "10.240.191.5",
                "10.240.255.6",
                "10.240.127.6"
            ]
        );
        // A first address in quarter 0 (zone a): then b and c.
        assert_eq!(
            spread("10.0.0.0/24", "10.0.0.10", 3).0,
            vec!["10.0.0.10", "10.0.0.74", "10.0.0.138"]
        );
        // One master, or a range too small to quarter: as given.
        assert_eq!(spread("10.240.0.0/16", "10.240.255.5", 1).0, vec!["10.240.255.5"]);
        assert_eq!(
            spread("10.0.0.0/27", "10.0.0.4", 3).0,
            vec!["10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
        // An address AWS reserves in another quarter is an error.
        assert!(spread("10.0.0.0/24", "10.0.0.194", 3).1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::names::windows_stem;

    #[test]
    fn labels() {
        for (k, val) in [
            ("app", "web"),
            ("example.com/tier", "gold"),
            ("node.kubernetes.io/windows-build", "10.0.20348"),
            ("x", ""),
        ] {
            assert!(check_label(k, val).is_ok(), "{k}={val}");
        }
        for (k, val) in [
            ("kubernetes.io/os", "windows"),
            ("-bad", "x"),
            ("a/b/c", "x"),
            ("app", "-x"),
            ("Example.com/a", "b"),
            (&"a".repeat(64), "x"),
        ] {
            assert!(check_label(k, val).is_err(), "{k}={val}");
        }
    }

    #[test]
    fn taints() {
        assert_eq!(
            parse_taints("os=windows:NoSchedule").expect("ok"),
            vec!["os=windows:NoSchedule"]
        );
        assert_eq!(parse_taints("a:NoExecute, b=c:PreferNoSchedule").expect("ok").len(), 2);
        for bad in ["os=windows", "os=windows:Never", "=x:NoSchedule"] {
            assert!(parse_taints(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_node_names_fit_in_fifteen_characters() {
        let id = defaults::cluster_id("kubernetes-windows");
        let n = node_name(&id, Cloud::Azure, "windowspool1", 99, OsType::Windows, 999);
        assert!(n.len() <= WINDOWS_NAME_MAX, "{n}");
        assert_eq!(&n[..4], &id[..4]);
        assert_ne!(
            node_name(&id, Cloud::Azure, "p", 1, OsType::Windows, 0),
            node_name(&id, Cloud::Azure, "p", 2, OsType::Windows, 0)
        );
        // GCE names start with a letter.
        assert_eq!(windows_stem("97c3abcd", Cloud::Gcp), "p7c3");
        assert_eq!(windows_stem("07c3abcd", Cloud::Gcp), "g7c3");
        assert_eq!(windows_stem("97c3abcd", Cloud::Azure), "97c3");
        assert_eq!(windows_stem("a7c3abcd", Cloud::Gcp), "a7c3");
        let g = node_name("97c3abcd", Cloud::Gcp, "w", 1, OsType::Windows, 0);
        assert!(
            g.starts_with(|c: char| c.is_ascii_lowercase()) && g.len() <= WINDOWS_NAME_MAX,
            "{g}"
        );
    }

    #[test]
    fn go_durations() {
        for ok in ["0", "10s", "5m0s", "1h2m3.5s", "300ms", "1.5h", "-2s"] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["", "10", "5 m", "1d", "s", "1.2.3s", "abc"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }

    #[test]
    fn placeholders_are_detected_without_echoing_secrets() {
        assert!(is_placeholder("<your-password>"));
        assert!(!is_placeholder("a<b>"));
        assert!(is_secret_path("properties.windowsProfile.adminPassword"));
        assert!(!is_secret_path("properties.masterProfile.dnsPrefix"));
    }
}
