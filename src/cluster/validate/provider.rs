//! apiVersion and the provider: the cloud, its location and the
//! cloud-specific provider fields.

use crate::cluster::Provider;
use crate::model::types::Cloud;
use crate::model::vlabs::{self, ApiModel};

use super::V;

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

/// apiVersion: vlabs, or a legacy version `hke migrate` rewrites.
pub(super) fn api_version(v: &mut V<'_>, m: &ApiModel) {
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
}

/// The provider profile: the cloud, the location (agreeing with `region`
/// and the top-level `location`) and, on GCP, the project and zone.
pub(super) fn provider(v: &mut V<'_>, m: &ApiModel, p: &vlabs::Properties) -> Provider {
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
    check_location(v, cloud, &location);
    if cloud == Cloud::Gcp {
        gcp(v, &pp, &location);
    }
    let openstack = (cloud == Cloud::OpenStack).then(|| crate::cluster::OpenStack {
        cloud: pp.cloud.clone().filter(|c| !c.is_empty()),
        external_network: pp.external_network.clone().filter(|n| !n.is_empty()),
        images: pp.images.clone().unwrap_or_default(),
        octavia: pp.octavia,
    });
    Provider {
        cloud,
        location,
        gcp_project: pp.project.clone(),
        gcp_zone: pp.zone.clone(),
        azure_subscription: pp.subscription_id.clone(),
        azure_resource_group: pp.resource_group.clone(),
        openstack,
    }
}

/// The location has the shape of the cloud's regions.
fn check_location(v: &mut V<'_>, cloud: Cloud, location: &str) {
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
        // Region names are the operator's (Keystone's region ids).
        Cloud::OpenStack => {
            !location.is_empty()
                && location
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        }
    };
    if !location_ok {
        let example = match cloud {
            Cloud::Aws => "us-east-1",
            Cloud::Gcp => "us-central1",
            Cloud::OpenStack => "RegionOne",
            _ => "westus2",
        };
        v.err(
            "properties.providerProfile.location",
            format!("{location:?} is not a location on {cloud}"),
            format!("use a location such as {example}"),
        );
    }
}

/// GCP: the project id, and a zone inside the region.
fn gcp(v: &mut V<'_>, pp: &vlabs::ProviderProfile, location: &str) {
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
