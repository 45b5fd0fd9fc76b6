//! Azure VM sizes and their nearest AWS and GCP types (`data/vmsizes.json`).

use std::sync::OnceLock;

use serde::Deserialize;

use crate::model::types::Cloud;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Size {
    pub azure: String,
    pub vcpus: u32,
    #[serde(rename = "memoryGiB")]
    pub memory_gib: u32,
    pub aws: String,
    pub gcp: String,
    /// The VM generations an Azure size boots: `V1`, `V2` or `V1,V2`.
    #[serde(default)]
    pub hyper_v_generations: Option<String>,
}

#[derive(Debug, Deserialize)]
struct File {
    sizes: Vec<Size>,
}

fn sizes() -> &'static [Size] {
    static SIZES: OnceLock<Vec<Size>> = OnceLock::new();
    SIZES.get_or_init(|| {
        serde_json::from_str::<File>(include_str!("../../data/vmsizes.json"))
            .map(|f| f.sizes)
            .unwrap_or_else(|e| panic!("data/vmsizes.json is malformed: {e}"))
    })
}

/// The entry for an Azure size (case-insensitive).
pub fn lookup(azure: &str) -> Option<&'static Size> {
    sizes().iter().find(|s| s.azure.eq_ignore_ascii_case(azure))
}

/// Does an Azure size boot generation 2 (UEFI) images, and generation 1?
/// From the table; a size it does not know boots generation 1 unless it is
/// of the v6 series or later, which boot only generation 2 (Azure docs,
/// Support for generation 2 VMs). A size that cannot boot an image's
/// generation fails the VM create ("cannot boot Hypervisor Generation").
pub fn azure_generations(size: &str) -> (bool, bool) {
    if let Some(g) = lookup(size).and_then(|s| s.hyper_v_generations.as_deref()) {
        return (g.contains("V1"), g.contains("V2"));
    }
    let series = size
        .rsplit_once("_v")
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .unwrap_or(1);
    if series >= 6 {
        (false, true)
    } else {
        (true, false)
    }
}

/// The Azure sizes with a mapping.
pub fn names() -> Vec<&'static str> {
    sizes().iter().map(|s| s.azure.as_str()).collect()
}

/// Does `size` look like a native machine type of `cloud`?
pub fn is_native(cloud: Cloud, size: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    match cloud {
        // m5.large, c6in.2xlarge, u-6tb1.metal
        Cloud::Aws => match size.split_once('.') {
            Some((family, kind)) => {
                !family.is_empty()
                    && family.chars().all(|c| ok(c) || c == '-')
                    && !kind.is_empty()
                    && kind.chars().all(ok)
            }
            None => false,
        },
        // n2-standard-2, e2-medium, custom-4-16384
        Cloud::Gcp => size.contains('-') && size.split('-').all(|p| !p.is_empty() && p.chars().all(ok)),
        Cloud::Azure | Cloud::Fake => size.starts_with("Standard_") || size.starts_with("Basic_"),
        // Flavor names are the operator's: anything that is not an Azure size.
        Cloud::OpenStack => !size.trim().is_empty() && !size.starts_with("Standard_") && !size.starts_with("Basic_"),
    }
}

/// The machine type to ask `cloud` for.
pub fn native(cloud: Cloud, size: &str) -> Option<String> {
    match cloud {
        Cloud::Azure | Cloud::Fake => Some(size.to_string()),
        Cloud::Aws | Cloud::Gcp if is_native(cloud, size) => Some(size.to_string()),
        Cloud::Aws => lookup(size).map(|s| s.aws.clone()),
        Cloud::Gcp => lookup(size).map(|s| s.gcp.clone()),
        Cloud::OpenStack if is_native(cloud, size) => Some(size.to_string()),
        // An Azure size: the smallest flavor with its vCPUs and memory,
        // which the OpenStack provider picks from the cloud's flavor list
        // (its `size_request` form: `2vcpu-8192mib`).
        Cloud::OpenStack => lookup(size).map(|s| format!("{}vcpu-{}mib", s.vcpus, s.memory_gib * 1024)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_corpus_size_maps_and_natives_pass_through() {
        for s in [
            "Standard_D2_v3",
            "Standard_D2_v2",
            "Standard_D2s_v3",
            "Standard_DS2_v2",
            "Standard_D2",
            "Standard_B2s",
            "Standard_NC6",
            "Standard_D4s_v3",
            "Standard_D3_v2",
            "Standard_D16_v3",
        ] {
            let e = lookup(s).unwrap_or_else(|| panic!("{s} has no mapping"));
            assert!(is_native(Cloud::Aws, &e.aws), "{}", e.aws);
            assert!(is_native(Cloud::Gcp, &e.gcp), "{}", e.gcp);
        }
        assert_eq!(native(Cloud::Aws, "standard_d2s_v3").as_deref(), Some("m5.large"));
        assert_eq!(native(Cloud::Aws, "c6i.large").as_deref(), Some("c6i.large"));
        assert_eq!(native(Cloud::Gcp, "e2-standard-4").as_deref(), Some("e2-standard-4"));
        assert!(!is_native(Cloud::Aws, "n2-standard-2"));
        assert!(!is_native(Cloud::Gcp, "m5.large"));
    }
}

#[cfg(test)]
mod generation_tests {
    use super::azure_generations;

    #[test]
    fn sizes_boot_the_generations_azure_documents() {
        assert_eq!(azure_generations("Standard_D2_v3"), (true, false));
        assert_eq!(azure_generations("Standard_D2s_v3"), (true, true));
        assert_eq!(azure_generations("standard_d2s_v5"), (true, true));
        // Not in the table: the v6 series boots only generation 2, older
        // series generation 1.
        assert_eq!(azure_generations("Standard_D4ds_v6"), (false, true));
        assert_eq!(azure_generations("Standard_F4s_v2"), (true, false));
    }
}
