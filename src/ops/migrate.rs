//! `migrate`: rewrite an old acs-engine/aks-engine model to values hke
//! supports, recording every change so the user can review it.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::versions;
use crate::cluster::defaults::{self, infer_windows_version};
use crate::cluster::validate::{LEGACY_API_VERSIONS, REMOVED_KUBELET_FLAGS};
use crate::model::diag::Rejected;
use crate::model::load::{self, SetArg};
use crate::model::types::{K8sVersion, WindowsVersion};
use crate::model::vlabs::ApiModel;

/// One change `migrate` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    /// What happened, in words; never a secret's value.
    pub change: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Rejected(Rejected),
    #[error("cannot migrate: hke builds Kubernetes clusters; {0} is not supported")]
    NotKubernetes(String),
}

use crate::secrets::is_placeholder;

struct Log(Vec<Change>);

impl Log {
    /// Remove kubelet flags that Kubernetes no longer has.
    fn strip_removed_flags(&mut self, flags: Option<&mut crate::model::vlabs::FlagMap>, path: &str) {
        let Some(flags) = flags else { return };
        for (flag, since) in REMOVED_KUBELET_FLAGS {
            if flags.remove(*flag).is_some() {
                self.add(path, format!("removed {flag} (removed from Kubernetes in {since})"));
            }
        }
    }

    fn add(&mut self, path: &str, change: impl Into<String>) {
        self.0.push(Change {
            path: path.to_string(),
            change: change.into(),
        });
    }
}

/// Migrate a model's text. Returns the new model and the changes.
pub fn migrate(text: &str, sets: &[SetArg]) -> Result<(ApiModel, Vec<Change>), MigrateError> {
    let loaded = load::load(text, sets).map_err(MigrateError::Rejected)?;
    let mut m = loaded.model;
    let mut log = Log(Vec::new());
    let table = versions::table();

    match m.api_version.as_deref() {
        Some("vlabs") => {}
        Some(a) if LEGACY_API_VERSIONS.contains(&a) => {
            log.add(
                "apiVersion",
                format!("{a} → vlabs (the legacy fields hke reads are the same)"),
            );
            m.api_version = Some("vlabs".into());
        }
        other => {
            log.add("apiVersion", format!("{} → vlabs", other.unwrap_or("(missing)")));
            m.api_version = Some("vlabs".into());
        }
    }
    let props = m.properties.get_or_insert_with(Default::default);
    let cloud = props
        .provider_profile
        .as_ref()
        .and_then(|p| p.name.as_deref())
        .and_then(|n| n.parse().ok())
        .unwrap_or(defaults::DEFAULT_CLOUD);

    // Orchestrator.
    let orch = props.orchestrator_profile.get_or_insert_with(Default::default);
    if let Some(t) = orch.orchestrator_type.as_deref() {
        if !t.is_empty() && !t.eq_ignore_ascii_case("kubernetes") {
            return Err(MigrateError::NotKubernetes(t.to_string()));
        }
    }
    let version_ok = orch
        .orchestrator_version
        .as_deref()
        .and_then(|v| v.parse::<K8sVersion>().ok())
        .is_some_and(|v| table.supports(&v));
    let release_ok = orch
        .orchestrator_release
        .as_deref()
        .is_none_or(|r| r.is_empty() || table.resolve_release(r).is_some());
    let version_given = orch.orchestrator_version.as_deref().is_some_and(|v| !v.is_empty());
    if (version_given && !version_ok) || !release_ok {
        let old = orch
            .orchestrator_version
            .clone()
            .filter(|v| !v.is_empty())
            .or(orch.orchestrator_release.clone())
            .unwrap_or_default();
        let new = table.kubernetes.default.clone();
        log.add(
            "properties.orchestratorProfile.orchestratorRelease",
            format!(
                "Kubernetes {old} → {new} (newest patch {}); supported: {}",
                table.default_version(),
                table.supported_list()
            ),
        );
        orch.orchestrator_version = None;
        orch.orchestrator_release = Some(new);
    }

    // Kubernetes config.
    let any_windows = props.agent_pool_profiles.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| p.os_type.as_deref().is_some_and(|o| o.eq_ignore_ascii_case("windows")))
    });
    let orch = props.orchestrator_profile.get_or_insert_with(Default::default);
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    if let Some(k) = orch.kubernetes_config.as_mut() {
        let runtime = k.container_runtime.clone().unwrap_or_default().to_ascii_lowercase();
        if !runtime.is_empty() && runtime != "containerd" {
            log.add(
                &format!("{kpath}.containerRuntime"),
                format!("{runtime} → containerd (dockershim was removed in Kubernetes 1.24)"),
            );
            k.container_runtime = Some("containerd".into());
        }
        for (field, slot) in [
            ("dockerEngineVersion", &mut k.docker_engine_version),
            ("mobyVersion", &mut k.moby_version),
        ] {
            if let Some(old) = slot.take() {
                log.add(
                    &format!("{kpath}.{field}"),
                    format!("removed {old:?} (hke installs containerd)"),
                );
            }
        }
        if let Some(cv) = k.containerd_version.clone() {
            let parts: Vec<u32> = cv.split('.').filter_map(|x| x.parse().ok()).collect();
            if parts.len() < 2 || (parts[0], parts[1]) < (1, 7) {
                log.add(
                    &format!("{kpath}.containerdVersion"),
                    format!("removed {cv:?} (end of life; hke installs {})", table.containerd),
                );
                k.containerd_version = None;
            }
        }
        let plugin = k.network_plugin.clone().unwrap_or_default().to_ascii_lowercase();
        let policy = k.network_policy.clone().unwrap_or_default().to_ascii_lowercase();
        if plugin == "cilium" || plugin == "antrea" {
            log.add(
                &format!("{kpath}.networkPlugin"),
                format!("{plugin} → calico (hke has no Windows data plane for {plugin})"),
            );
            k.network_plugin = Some("calico".into());
            if policy == plugin {
                log.add(&format!("{kpath}.networkPolicy"), format!("{policy} → calico"));
                k.network_policy = Some("calico".into());
            }
        }
        if plugin == "azure"
            && !matches!(
                cloud,
                crate::model::types::Cloud::Azure | crate::model::types::Cloud::Fake
            )
        {
            log.add(
                &format!("{kpath}.networkPlugin"),
                format!("azure → flannel (Azure CNI runs only on Azure, not {cloud})"),
            );
            k.network_plugin = Some("flannel".into());
        }
        let plugin = k.network_plugin.clone().unwrap_or_default().to_ascii_lowercase();
        match policy.as_str() {
            "none" => {
                if plugin.is_empty() {
                    log.add(
                        &format!("{kpath}.networkPlugin"),
                        "(unset) → kubenet (what networkPolicy \"none\" meant)",
                    );
                    k.network_plugin = Some("kubenet".into());
                }
                log.add(
                    &format!("{kpath}.networkPolicy"),
                    "removed \"none\" (no policy is the default)",
                );
                k.network_policy = None;
            }
            "calico" if any_windows && plugin != "calico" => {
                log.add(
                    &format!("{kpath}.networkPlugin"),
                    format!(
                        "{} → calico (Calico policy on Windows needs the Calico plugin)",
                        if plugin.is_empty() { "(unset)" } else { &plugin }
                    ),
                );
                k.network_plugin = Some("calico".into());
            }
            "azure" if any_windows => {
                log.add(
                    &format!("{kpath}.networkPolicy"),
                    "removed \"azure\" (Azure network policy cannot run with Windows pools)",
                );
                k.network_policy = None;
                if plugin.is_empty() {
                    k.network_plugin = Some("azure".into());
                }
            }
            "cilium" | "antrea" if plugin == "calico" => {}
            "cilium" | "antrea" => {
                log.add(&format!("{kpath}.networkPolicy"), format!("{policy} → calico"));
                k.network_policy = Some("calico".into());
                k.network_plugin = Some("calico".into());
            }
            _ => {}
        }
        if k.enable_rbac == Some(false) {
            log.add(
                &format!("{kpath}.enableRbac"),
                "removed false (hke clusters always use RBAC)",
            );
            k.enable_rbac = None;
        }
        log.strip_removed_flags(k.kubelet_config.as_mut(), &format!("{kpath}.kubeletConfig"));
    }
    if let Some(ff) = props.feature_flags.as_mut() {
        if ff.enable_ipv6_dual_stack.take() == Some(true) {
            log.add(
                "properties.featureFlags.enableIPv6DualStack",
                "removed (hke builds IPv4 clusters)",
            );
        }
        if ff.enable_ipv6_only.take() == Some(true) {
            log.add(
                "properties.featureFlags.enableIPv6Only",
                "removed (hke builds IPv4 clusters)",
            );
        }
    }

    // Master.
    let master = props.master_profile.get_or_insert_with(Default::default);
    let dns_empty = master
        .dns_prefix
        .as_deref()
        .is_none_or(|d| d.is_empty() || is_placeholder(d));
    if dns_empty {
        let hash = hex::encode(&Sha256::digest(text.as_bytes())[..4]);
        let name = format!("hke-{hash}");
        log.add(
            "properties.masterProfile.dnsPrefix",
            format!("(empty) → {name} (rename it if you like)"),
        );
        master.dns_prefix = Some(name);
    }
    log.strip_removed_flags(
        master
            .kubernetes_config
            .as_mut()
            .and_then(|c| c.kubelet_config.as_mut()),
        "properties.masterProfile.kubernetesConfig.kubeletConfig",
    );

    // Windows.
    let target = table.default_windows();
    if let Some(w) = props.windows_profile.as_mut() {
        let wpath = "properties.windowsProfile";
        if let Some(v) = w.windows_version.clone() {
            if v.parse::<WindowsVersion>().is_err() {
                log.add(
                    &format!("{wpath}.windowsVersion"),
                    format!("{v} → {target} (retired or unknown)"),
                );
                w.windows_version = Some(target.name().into());
            }
        }
        if let Some((field, Err(_))) = infer_windows_version(w) {
            let old = w
                .windows_sku
                .clone()
                .filter(|_| field == "windowsSku")
                .or(w.image_version.clone())
                .unwrap_or_default();
            log.add(
                &format!("{wpath}.{field}"),
                format!("removed the image pin {old:?} (a retired Windows Server release); windowsVersion {target} replaces it"),
            );
            w.windows_sku = None;
            w.image_version = None;
            w.windows_offer = None;
            w.windows_publisher = None;
            w.windows_version.get_or_insert_with(|| target.name().into());
        }
        if let Some(old) = w.windows_docker_version.take() {
            log.add(
                &format!("{wpath}.windowsDockerVersion"),
                format!("removed {old:?} (hke installs containerd)"),
            );
        }
        let pw = w.admin_password.clone();
        if pw.as_deref().is_some_and(|p| p.is_empty() || is_placeholder(p)) {
            log.add(
                &format!("{wpath}.adminPassword"),
                "removed a placeholder; hke generates a strong password",
            );
            w.admin_password = None;
        }
        if w.admin_username
            .as_deref()
            .is_some_and(|u| u.is_empty() || is_placeholder(u))
        {
            log.add(
                &format!("{wpath}.adminUsername"),
                format!("placeholder → {}", defaults::ADMIN_USERNAME),
            );
            w.admin_username = Some(defaults::ADMIN_USERNAME.into());
        }
    }
    for (i, pool) in props.agent_pool_profiles.iter_mut().flatten().enumerate() {
        let pp = format!("properties.agentPoolProfiles[{i}]");
        if let Some(v) = pool.windows_version.clone() {
            if v.parse::<WindowsVersion>().is_err() {
                log.add(
                    &format!("{pp}.windowsVersion"),
                    format!("{v} → {target} (retired or unknown)"),
                );
                pool.windows_version = Some(target.name().into());
            }
        }
        log.strip_removed_flags(
            pool.kubernetes_config.as_mut().and_then(|c| c.kubelet_config.as_mut()),
            &format!("{pp}.kubernetesConfig.kubeletConfig"),
        );
    }

    // Linux access.
    if let Some(l) = props.linux_profile.as_mut() {
        if l.admin_username
            .as_deref()
            .is_some_and(|u| u.is_empty() || is_placeholder(u))
        {
            log.add(
                "properties.linuxProfile.adminUsername",
                format!("placeholder → {}", defaults::ADMIN_USERNAME),
            );
            l.admin_username = Some(defaults::ADMIN_USERNAME.into());
        }
        if let Some(ssh) = l.ssh.as_mut() {
            if let Some(keys) = ssh.public_keys.as_mut() {
                let before = keys.len();
                keys.retain(|k| {
                    k.key_data
                        .as_deref()
                        .is_some_and(|d| !d.trim().is_empty() && !is_placeholder(d))
                });
                if keys.len() < before {
                    log.add(
                        "properties.linuxProfile.ssh.publicKeys",
                        format!("removed {} empty or placeholder key(s)", before - keys.len()),
                    );
                }
                if keys.is_empty() {
                    l.ssh = None;
                    log.add("properties.linuxProfile.ssh", "no key left; hke generates a key pair");
                }
            }
        }
    }
    Ok((m, log.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_model_is_brought_to_today() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/seed/windows.json");
        let text = std::fs::read_to_string(path).expect("the shared corpus is beside the project");
        let (m, changes) = migrate(&text, &[]).expect("migrates");
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert!(
            paths.contains(&"properties.orchestratorProfile.orchestratorRelease"),
            "{paths:?}"
        );
        assert!(paths.contains(&"properties.windowsProfile.adminPassword"), "{paths:?}");
        assert!(paths.contains(&"properties.linuxProfile.ssh"), "{paths:?}");
        let p = m.properties.expect("p");
        assert_eq!(p.windows_profile.as_ref().and_then(|w| w.admin_password.clone()), None);
        assert_eq!(
            p.orchestrator_profile.and_then(|o| o.orchestrator_release).as_deref(),
            Some(versions::table().kubernetes.default.as_str())
        );
        for c in &changes {
            assert!(!c.change.contains("<your-password>"), "secrets are not echoed: {c:?}");
        }
    }

    #[test]
    fn other_orchestrators_cannot_be_migrated() {
        let text = r#"{"apiVersion":"vlabs","properties":{"orchestratorProfile":{"orchestratorType":"DCOS"}}}"#;
        let e = migrate(text, &[]).expect_err("dcos");
        assert_eq!(
            e.to_string(),
            "cannot migrate: hke builds Kubernetes clusters; DCOS is not supported"
        );
    }
}
