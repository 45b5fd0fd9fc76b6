//! hke's tags as OpenStack tags: Neutron, Octavia and Nova tags are plain
//! strings, so each `key=value` pair is one tag string.
//!
//! Nova allows at most 60 characters per tag and neither `/` nor `,` in it
//! (Compute API reference, "Server tags": `tag` is 1–60 characters matching
//! `^[^,/]*$`; nova/api/validation/parameter_types.py), and at most 50 tags
//! per server (Compute API reference, "Replace Tags": "The maximum number
//! of tags is 50"). Neutron's `tags` list filter is a comma-separated list
//! (Networking API reference, "Filtering by Tags"), so a comma cannot be
//! part of a tag either. The encoding keeps every tag within the strictest
//! of those rules so one string works for every service:
//!
//! - in the key, `%` `:` `,` `=` are percent-encoded and then `/` becomes
//!   `:` (`hke.io/cluster` → `hke.io:cluster`, which keeps the longest
//!   cluster tag, `hke.io:cluster=` and a 45-character DNS prefix, at 60);
//! - in the value, `%` `,` `/` are percent-encoded.
//!
//! Tags longer than 60 characters are left out of the tag list (Nova keeps
//! every tag in the server's metadata too, whose keys and values may be up
//! to 255 characters: Compute API reference, "Create Server", `metadata`).

use std::collections::BTreeMap;

use hke_provider_api::TAG_CLUSTER;

/// The longest tag string (Nova's limit; Neutron and Octavia allow more).
pub const MAX_TAG_LEN: usize = 60;
/// The most tags a server may carry (Nova).
pub const MAX_SERVER_TAGS: usize = 50;
/// Set on a multi-step resource once every step is done: `read` adopts only
/// resources that carry it.
pub const TAG_COMPLETE: &str = "hke.io/complete";
/// Names the machine group a server (and its port) belongs to.
pub const TAG_GROUP: &str = "hke.io/group";
/// A machine group's size (the group is complete with that many servers).
pub const TAG_PARTS: &str = "hke.io/parts";

fn escape(s: &str, extra: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || extra.contains(&c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One tag string for `key=value`.
pub fn encode(key: &str, value: &str) -> String {
    let k = escape(key, &[':', ',', '=']).replace('/', ":");
    format!("{k}={}", escape(value, &[',', '/']))
}

/// The key and value of a tag string made by `encode`; `None` for tags that
/// are not `key=value` (somebody else's).
pub fn decode(tag: &str) -> Option<(String, String)> {
    let (k, v) = tag.split_once('=')?;
    if k.is_empty() {
        return None;
    }
    Some((unescape(&k.replace(':', "/"))?, unescape(v)?))
}

/// The tag strings of a resource, hke's own first, each at most 60
/// characters (longer ones are left out).
pub fn encode_all(tags: &BTreeMap<String, String>) -> Vec<String> {
    let (own, user): (Vec<_>, Vec<_>) = tags.iter().partition(|(k, _)| k.starts_with("hke.io/"));
    own.into_iter()
        .chain(user)
        .map(|(k, v)| encode(k, v))
        .filter(|t| t.len() <= MAX_TAG_LEN)
        .collect()
}

/// A server's tags: as `encode_all`, at most 50.
pub fn server_tags(tags: &BTreeMap<String, String>) -> Vec<String> {
    let mut t = encode_all(tags);
    t.truncate(MAX_SERVER_TAGS);
    t
}

/// The tags back from tag strings (others' tags are skipped).
pub fn decode_all<S: AsRef<str>>(tags: &[S]) -> BTreeMap<String, String> {
    tags.iter().filter_map(|t| decode(t.as_ref())).collect()
}

/// A server metadata key for a tag key: Nova allows only
/// `^[a-zA-Z0-9-_:. ]{1,255}$` (nova/api/validation/parameter_types.py,
/// `metadata`), so `/` becomes `:` as in tags and anything else outside that
/// set `_` (the tags, not the metadata, are what hke reads back).
pub fn metadata_key(key: &str) -> String {
    let mut k: String = key
        .chars()
        .map(|c| match c {
            '/' => ':',
            c if c.is_ascii_alphanumeric() || "-_:. ".contains(c) => c,
            _ => '_',
        })
        .collect();
    if k.is_empty() {
        k.push('_');
    }
    while k.len() > 255 {
        k.pop();
    }
    k
}

/// Server metadata with every tag (values cut to Nova's 255 bytes).
pub fn metadata(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            while v.len() > 255 {
                v.pop();
            }
            (metadata_key(k), v)
        })
        .collect()
}

/// The tag string every resource of `cluster` carries (the list filter).
pub fn cluster_tag(cluster: &str) -> String {
    encode(TAG_CLUSTER, cluster)
}

/// Whether a cluster name fits the 60-character tag limit.
pub fn cluster_fits(cluster: &str) -> bool {
    cluster_tag(cluster).len() <= MAX_TAG_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_within_nova_rules() {
        let mut t = BTreeMap::new();
        t.insert("hke.io/cluster".to_string(), "kubernetes-windows".to_string());
        t.insert("hke.io/created".to_string(), "2026-11-22T12:00:00Z".to_string());
        t.insert("team/sub,x=y%".to_string(), "a/b,c=d%e:f".to_string());
        t.insert("long".to_string(), "v".repeat(80));
        let enc = encode_all(&t);
        assert_eq!(enc[0], "hke.io:cluster=kubernetes-windows");
        assert_eq!(enc[1], "hke.io:created=2026-11-22T12:00:00Z");
        for s in &enc {
            assert!(s.len() <= MAX_TAG_LEN, "{s}");
            assert!(!s.contains('/') && !s.contains(','), "{s}");
        }
        let back = decode_all(&enc);
        let mut want = t.clone();
        want.remove("long");
        assert_eq!(back, want);
        assert_eq!(decode("plain-tag"), None);
        assert_eq!(decode("=x"), None);
        assert_eq!(decode("a=%zz"), None);
    }

    #[test]
    fn the_longest_cluster_name_fits() {
        let name = "a".repeat(45);
        assert!(cluster_fits(&name));
        assert_eq!(cluster_tag(&name).len(), 60);
        assert!(!cluster_fits(&"a".repeat(46)));
        assert_eq!(
            decode(&cluster_tag("c1")),
            Some((TAG_CLUSTER.to_string(), "c1".to_string()))
        );
    }

    #[test]
    fn metadata_keys_follow_nova_rules() {
        assert_eq!(metadata_key("hke.io/cluster"), "hke.io:cluster");
        assert_eq!(metadata_key("team=x,y"), "team_x_y");
        assert_eq!(metadata_key(""), "_");
        let mut t = BTreeMap::new();
        t.insert("k".to_string(), "v".repeat(300));
        assert_eq!(metadata(&t)["k"].len(), 255);
    }

    #[test]
    fn at_most_fifty_server_tags() {
        let t: BTreeMap<String, String> = (0..70).map(|i| (format!("k{i:02}"), "v".to_string())).collect();
        assert_eq!(server_tags(&t).len(), 50);
    }
}
