//! The version table (`data/versions.json`), compiled into the binary.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::model::types::{K8sVersion, WindowsVersion};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    pub checked: String,
    pub kubernetes: Kubernetes,
    pub containerd: String,
    pub pause: String,
    pub addons: Addons,
    pub windows: Windows,
    pub linux: ImageSet,
}

/// URLs of what nodes fetch at boot.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Addons {
    /// Calico's Linux manifest, for clusters without Windows pools only.
    pub calico: String,
    pub flanneld_windows: String,
    pub flannel_cni_windows: String,
    pub cni_plugins_linux: String,
    pub cni_plugins_windows: String,
    pub azure_cni_linux: String,
    pub azure_cni_windows: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kubernetes {
    pub default: String,
    pub releases: Vec<Release>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub release: String,
    pub version: String,
    pub end_of_life: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Windows {
    pub default: String,
    pub versions: Vec<WindowsEntry>,
    pub retired: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsEntry {
    pub version: String,
    pub build: String,
    pub container_tag: String,
    #[serde(flatten)]
    pub images: ImageSet,
}

/// Where each cloud finds an OS image.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageSet {
    pub azure: AzureImage,
    pub aws: AwsImage,
    pub gcp: GcpImage,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct AzureImage {
    pub publisher: String,
    pub offer: String,
    /// The generation 1 (BIOS) SKU.
    pub sku: String,
    /// The generation 2 (UEFI) SKU of the same image.
    #[serde(rename = "skuGen2")]
    pub sku_gen2: String,
    pub version: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AwsImage {
    pub ami_name_pattern: String,
    pub owner: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct GcpImage {
    pub project: String,
    pub family: String,
}

/// The table shipped with this build.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Checked by the `shipped_table_is_well_formed` test; a broken table
        // cannot be built into a passing binary.
        serde_json::from_str(include_str!("../../data/versions.json")).unwrap_or_else(|e| {
            panic!("data/versions.json is malformed: {e}");
        })
    })
}

impl Table {
    /// The newest supported patch of `release` (`1.36`).
    pub fn resolve_release(&self, release: &str) -> Option<K8sVersion> {
        let r = release.trim().trim_start_matches('v');
        self.kubernetes
            .releases
            .iter()
            .find(|x| x.release == r)
            .and_then(|x| x.version.parse().ok())
    }

    pub fn default_version(&self) -> K8sVersion {
        self.resolve_release(&self.kubernetes.default).unwrap_or(K8sVersion {
            major: 1,
            minor: 36,
            patch: 0,
        })
    }

    /// Is the version's minor release supported?
    pub fn supports(&self, v: &K8sVersion) -> bool {
        self.resolve_release(&v.release()).is_some()
    }

    /// The newest known patch of `v`'s release.
    pub fn latest_patch(&self, v: &K8sVersion) -> Option<K8sVersion> {
        self.resolve_release(&v.release())
    }

    /// "1.35.9, 1.36.4, 1.37.1" for messages.
    pub fn supported_list(&self) -> String {
        let mut v: Vec<&str> = self.kubernetes.releases.iter().map(|r| r.version.as_str()).collect();
        v.sort_by_key(|s| s.parse::<K8sVersion>().ok());
        v.join(", ")
    }

    pub fn windows(&self, v: WindowsVersion) -> &WindowsEntry {
        self.windows
            .versions
            .iter()
            .find(|w| w.version == v.name())
            .unwrap_or(&self.windows.versions[0])
    }

    pub fn default_windows(&self) -> WindowsVersion {
        self.windows.default.parse().unwrap_or(WindowsVersion::Ws2022)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_is_well_formed() {
        let t = table();
        assert!(t.kubernetes.releases.len() >= 2);
        for r in &t.kubernetes.releases {
            let v: K8sVersion = r.version.parse().expect("version parses");
            assert_eq!(v.release(), r.release, "{} belongs to {}", r.version, r.release);
            assert!(r.end_of_life.len() == 10 && r.end_of_life.as_bytes()[4] == b'-');
        }
        assert!(
            t.resolve_release(&t.kubernetes.default).is_some(),
            "default release is in the table"
        );
        // Every supported Windows version has an entry with a build and images.
        for w in WindowsVersion::ALL {
            let e = t.windows(w);
            assert_eq!(e.version, w.name());
            assert!(e.build.starts_with("10.0."));
            assert!(e.container_tag.starts_with("ltsc"));
            assert!(e.images.aws.ami_name_pattern.contains(w.name()));
            assert!(e.images.gcp.family.contains(w.name()));
        }
        assert!(t.default_windows() == WindowsVersion::Ws2022);
        assert!(t.containerd.starts_with("2."), "containerd 2.x");
    }

    #[test]
    fn releases_resolve_to_their_newest_patch() {
        let t = table();
        let v = t.resolve_release("1.36").expect("1.36 supported");
        assert_eq!(v.release(), "1.36");
        assert!(t.supports(&"1.36.1".parse().expect("v")));
        assert!(!t.supports(&"1.11.1".parse().expect("v")));
        assert!(t.supported_list().contains(&t.default_version().to_string()));
    }
}
