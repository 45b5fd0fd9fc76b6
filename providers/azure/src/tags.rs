//! hke's tags on Azure. Tag names may not contain `/` (nor `<>%&\?`), so
//! `hke.io/cluster` is written `hke.io_cluster`, and read back.

use std::collections::BTreeMap;

const FORBIDDEN: [char; 7] = ['/', '<', '>', '%', '&', '\\', '?'];

/// A tag key as Azure accepts it.
pub fn key_to_azure(k: &str) -> String {
    k.chars()
        .map(|c| if FORBIDDEN.contains(&c) { '_' } else { c })
        .collect()
}

/// hke's own keys read back (`hke.io_cluster` → `hke.io/cluster`).
pub fn key_from_azure(k: &str) -> String {
    match k.strip_prefix("hke.io_") {
        Some(rest) => format!("hke.io/{rest}"),
        None => k.to_string(),
    }
}

pub fn to_azure(t: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    t.iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            v.truncate(256);
            (key_to_azure(k), v)
        })
        .collect()
}

pub fn from_azure(t: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    t.iter().map(|(k, v)| (key_from_azure(k), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hke_tags_round_trip() {
        let mut t = BTreeMap::new();
        t.insert("hke.io/cluster".to_string(), "c1".to_string());
        t.insert("hke.io/created".to_string(), "2026-11-23T10:00:00Z".to_string());
        t.insert("team".to_string(), "win".to_string());
        let a = to_azure(&t);
        assert!(a.keys().all(|k| !k.contains('/')), "{a:?}");
        assert_eq!(a["hke.io_cluster"], "c1");
        assert_eq!(from_azure(&a), t);
        assert_eq!(key_to_azure("a/b?c"), "a_b_c");
    }
}
