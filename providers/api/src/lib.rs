//! The vocabulary shared by hke and its cloud crates: resource kinds and
//! specs, the `Provider` trait, classified errors, the tags every resource
//! carries, the pacer that keeps calls under each cloud's rate limits, and a
//! fake cloud for tests, benchmarks and demos.
//!
//! The tags (Azure, AWS) or labels (GCP) let teardown and the janitor find a
//! cluster's resources even when the state file is lost.

use std::collections::BTreeMap;

pub mod error;
pub mod fake;
pub mod pace;
pub mod provider;
pub mod resource;
pub mod snat;

pub use error::{Class, LeftBehind, NotFoundExt, ProviderError};
pub use pace::{Limit, Pacer};
pub use provider::Provider;
pub use resource::{
    outputs, Found, Image, Kind, Login, MachineGroupSpec, MachineSpec, Os, Outputs, Request, Rule, Spec, Val,
};

/// Tag naming the cluster a resource belongs to.
pub const TAG_CLUSTER: &str = "hke.io/cluster";
/// Tag with the RFC 3339 creation time.
pub const TAG_CREATED: &str = "hke.io/created";
/// Tag with the time to live (`3h`, `90m`), for the janitor.
pub const TAG_TTL: &str = "hke.io/ttl";

/// The standard tags of a cluster's resources, over the user's own tags.
pub fn standard_tags(
    cluster: &str,
    created_rfc3339: &str,
    ttl: Option<&str>,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut t = user.clone();
    t.insert(TAG_CLUSTER.into(), cluster.into());
    t.insert(TAG_CREATED.into(), created_rfc3339.into());
    if let Some(ttl) = ttl {
        t.insert(TAG_TTL.into(), ttl.into());
    }
    t
}

/// GCP labels allow only `[a-z0-9_-]`, keys start with a letter, and both are
/// at most 63 characters: `hke.io/cluster` becomes `hke-io-cluster`, and an
/// RFC 3339 time `2026-11-22t12-00-00z`.
pub fn gcp_label(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(63);
    out
}

/// Tags as GCP labels.
pub fn gcp_labels(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .map(|(k, v)| {
            let mut key = gcp_label(k);
            if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
                key.insert(0, 'x');
                key.truncate(63);
            }
            (key, gcp_label(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_tags_win_over_user_tags() {
        let mut user = BTreeMap::new();
        user.insert("team".to_string(), "windows".to_string());
        user.insert(TAG_CLUSTER.to_string(), "spoofed".to_string());
        let t = standard_tags("kubernetes-windows", "2026-11-22T12:00:00Z", Some("3h"), &user);
        assert_eq!(t[TAG_CLUSTER], "kubernetes-windows");
        assert_eq!(t["team"], "windows");
        assert_eq!(t[TAG_TTL], "3h");
        assert!(!standard_tags("c", "t", None, &BTreeMap::new()).contains_key(TAG_TTL));
    }

    #[test]
    fn gcp_labels_follow_gcp_syntax() {
        let t = standard_tags("Kubernetes-Windows", "2026-11-22T12:00:00Z", None, &BTreeMap::new());
        let l = gcp_labels(&t);
        assert_eq!(l["hke-io-cluster"], "kubernetes-windows");
        assert_eq!(l["hke-io-created"], "2026-11-22t12-00-00z");
        let long = gcp_label(&"A".repeat(100));
        assert_eq!(long.len(), 63);
        let mut odd = BTreeMap::new();
        odd.insert("9lives".to_string(), "x".to_string());
        assert!(gcp_labels(&odd).contains_key("x9lives"));
    }
}
