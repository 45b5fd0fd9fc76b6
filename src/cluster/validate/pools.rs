//! The agent pools: names, OS, count, size and disk, Windows versions,
//! Hyper-V, AMIs, node labels, kubelet flags and taints, node names.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::defaults;
use crate::cluster::names::{self, node_name, WINDOWS_NAME_MAX};
use crate::cluster::Pool;
use crate::model::types::{Cloud, OsType, WindowsVersion};
use crate::model::vlabs;

use super::fields::{check_flags, check_label, check_vm_size, parse_taints};
use super::windows::parse_windows;
use super::V;

/// What every pool takes from the sections before.
pub(super) struct Shared<'a> {
    pub(super) cloud: Cloud,
    /// The cluster id (node names).
    pub(super) id: &'a str,
    /// The Windows profile's version, for Windows pools without one.
    pub(super) profile_windows: WindowsVersion,
    /// The cluster-wide kubelet flags, under each pool's own.
    pub(super) kubelet_flags: &'a BTreeMap<String, String>,
}

/// Whether any pool runs Windows.
pub(super) fn any_windows(pools: &[vlabs::AgentPoolProfile]) -> bool {
    pools.iter().any(|pool| {
        pool.os_type
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case("windows"))
    })
}

/// The pools, in order, each checked in full before the next.
pub(super) fn pools(v: &mut V<'_>, pools_in: &[vlabs::AgentPoolProfile], shared: &Shared<'_>) -> Vec<Pool> {
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
        pools.push(one_pool(v, idx, pool, &mut names, shared));
    }
    pools
}

/// One pool, in the order of its checks.
fn one_pool(
    v: &mut V<'_>,
    idx: usize,
    pool: &vlabs::AgentPoolProfile,
    names: &mut BTreeSet<String>,
    s: &Shared<'_>,
) -> Pool {
    let cloud = s.cloud;
    let pp = format!("properties.agentPoolProfiles[{idx}]");
    let pname = pool_name(v, &pp, pool, names);
    let (os, count, size, disk) = machines(v, &pp, pool, cloud);
    let (windows_version, hyperv) = settings(v, &pp, pool, os, s);
    let labels = labels(v, &pp, pool, &pname, hyperv && os == OsType::Windows);
    let (flags, taints) = kubelet(v, &pp, pool, s.kubelet_flags);
    let node_names: Vec<String> = (0..count).map(|i| node_name(s.id, cloud, &pname, idx, os, i)).collect();
    if os == OsType::Windows {
        if let Some(long) = node_names.iter().find(|n| n.len() > WINDOWS_NAME_MAX) {
            v.err(
                &format!("{pp}.name"),
                format!("Windows computer name {long:?} is longer than {WINDOWS_NAME_MAX} characters"),
                None,
            );
        }
    }
    Pool {
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
    }
}

/// The pool's name: valid and unique.
fn pool_name(v: &mut V<'_>, pp: &str, pool: &vlabs::AgentPoolProfile, names: &mut BTreeSet<String>) -> String {
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
    pname
}

/// osType, count, vmSize and osDiskSizeGB.
fn machines(v: &mut V<'_>, pp: &str, pool: &vlabs::AgentPoolProfile, cloud: Cloud) -> (OsType, u32, String, i64) {
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
    check_vm_size(v, cloud, &format!("{pp}.vmSize"), &size);
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
    (os, count, size, disk)
}

/// acs-engine leftovers (dnsPrefix, ports), the Windows version, Hyper-V
/// isolation and the AWS AMI. Returns the Windows version and Hyper-V.
fn settings(
    v: &mut V<'_>,
    pp: &str,
    pool: &vlabs::AgentPoolProfile,
    os: OsType,
    shared: &Shared<'_>,
) -> (Option<WindowsVersion>, bool) {
    let (cloud, profile_windows) = (shared.cloud, shared.profile_windows);
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
            Some(s) => parse_windows(v, &format!("{pp}.windowsVersion"), s).unwrap_or(profile_windows),
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
    (windows_version, hyperv)
}

/// The node labels: hke's, then the pool's customNodeLabels.
fn labels(
    v: &mut V<'_>,
    pp: &str,
    pool: &vlabs::AgentPoolProfile,
    pname: &str,
    hyperv: bool,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("hke.io/pool".to_string(), pname.to_string());
    if hyperv {
        labels.insert(names::HYPERV_LABEL.to_string(), "true".to_string());
    }
    labels.insert("agentpool".to_string(), pname.to_string());
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
    labels
}

/// The pool's kubelet flags over the cluster's, and the taints they
/// register. Returns the flags and the taints.
fn kubelet(
    v: &mut V<'_>,
    pp: &str,
    pool: &vlabs::AgentPoolProfile,
    kubelet_flags: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let pool_flags = pool.kubernetes_config.as_ref().and_then(|c| c.kubelet_config.as_ref());
    check_flags(v, &format!("{pp}.kubernetesConfig.kubeletConfig"), pool_flags, true);
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
    (flags, taints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::names::windows_stem;

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
}
