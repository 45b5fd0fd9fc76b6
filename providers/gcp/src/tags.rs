//! hke's tags on GCE: as labels where a resource has them (instances,
//! addresses, forwarding rules), and in the description where it has none
//! (networks, subnetworks, firewall rules, routes, target pools).

use std::collections::{BTreeMap, HashMap};

use hke_provider_api::{gcp_label, gcp_labels, TAG_CLUSTER};

/// Descriptions that carry tags start with this.
const PREFIX: &str = "hke:";

/// The labels of a resource of the cluster.
pub fn labels(tags: &BTreeMap<String, String>) -> HashMap<String, String> {
    gcp_labels(tags).into_iter().collect()
}

/// A description with hke's own tags (`hke.io/*`), which survive exactly:
/// `hke: hke.io/cluster=c hke.io/created=2026-11-22T12:00:00Z`.
pub fn description(tags: &BTreeMap<String, String>) -> String {
    let mut out = PREFIX.to_string();
    for (k, v) in tags.iter().filter(|(k, _)| k.starts_with("hke.io/")) {
        let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        out.push_str(&format!(" {k}={v}"));
    }
    out
}

/// The tags a description carries (none if it is not hke's).
pub fn from_description(d: Option<&str>) -> BTreeMap<String, String> {
    let Some(rest) = d.and_then(|d| d.strip_prefix(PREFIX)) else {
        return BTreeMap::new();
    };
    rest.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Tags back from labels: `hke-io-cluster` is `hke.io/cluster` again, and a
/// time label (`2026-11-22t12-00-00z`) RFC 3339 again, so the janitor reads
/// them as it reads any cloud's.
pub fn from_labels(labels: &HashMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| match k.strip_prefix("hke-io-") {
            Some(rest) => (format!("hke.io/{rest}"), unlabel_time(v).unwrap_or_else(|| v.clone())),
            None => (k.clone(), v.clone()),
        })
        .collect()
}

/// `2026-11-22t12-00-00z` → `2026-11-22T12:00:00Z`.
fn unlabel_time(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = b.len() == 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b't'
        && digits(11..13)
        && b[13] == b'-'
        && digits(14..16)
        && b[16] == b'-'
        && digits(17..19)
        && b[19] == b'z';
    shape.then(|| format!("{}T{}:{}:{}Z", &v[..10], &v[11..13], &v[14..16], &v[17..19]))
}

/// The label filter for a cluster's resources.
pub fn cluster_filter(cluster: &str) -> String {
    format!("labels.{}={}", gcp_label(TAG_CLUSTER), gcp_label(cluster))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> BTreeMap<String, String> {
        let mut t = BTreeMap::new();
        t.insert("hke.io/cluster".into(), "hke-windows-gcp".into());
        t.insert("hke.io/created".into(), "2026-11-22T12:00:00Z".into());
        t.insert("hke.io/ttl".into(), "3h".into());
        t.insert("team".into(), "windows".into());
        t
    }

    #[test]
    fn tags_survive_labels_and_descriptions() {
        let t = tags();
        let back = from_labels(&labels(&t));
        assert_eq!(back, t);
        let d = description(&t);
        assert!(d.starts_with("hke: "), "{d}");
        let mut hke_only = t.clone();
        hke_only.remove("team");
        assert_eq!(from_description(Some(&d)), hke_only);
        assert!(from_description(Some("made by hand")).is_empty());
        assert!(from_description(None).is_empty());
        assert_eq!(
            cluster_filter("hke-windows-gcp"),
            "labels.hke-io-cluster=hke-windows-gcp"
        );
        assert_eq!(unlabel_time("2026-11-22t12-00-00"), None);
    }
}
