//! What the bed's APIs say the test project holds (inventory.py, run with
//! the bed's openstacksdk), and the questions the test asks of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::bed::{python, Bed};

/// The collections of Neutron and Octavia objects hke tags.
pub const TAGGED: [&str; 7] = [
    "networks",
    "subnets",
    "routers",
    "ports",
    "security_groups",
    "floatingips",
    "loadbalancers",
];

/// A cluster's tag as OpenStack tags carry it (providers/openstack tags.rs:
/// `hke.io/cluster` becomes `hke.io:cluster`).
pub fn cluster_tag(cluster: &str) -> String {
    format!("hke.io:cluster={cluster}")
}

pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

pub fn tags(v: &Value) -> Vec<&str> {
    v["tags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub struct Inventory {
    v: Value,
}

impl Inventory {
    pub fn read(bed: &Bed) -> Inventory {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/openstack_support/inventory.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .arg(bed.clouds())
            .env_clear()
            .env("PATH", crate::harness::path())
            .env("HOME", bed.dir().join("data/home"));
        let out = crate::bounded(cmd, "inventory.py");
        assert!(
            out.status.success(),
            "inventory.py failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Inventory {
            v: serde_json::from_slice(&out.stdout).expect("inventory JSON"),
        }
    }

    pub fn all(&self, collection: &str) -> &[Value] {
        self.v[collection].as_array().map(Vec::as_slice).unwrap_or_default()
    }

    /// The objects of a collection that carry the cluster's tag.
    pub fn tagged(&self, collection: &str, cluster: &str) -> Vec<&Value> {
        let tag = cluster_tag(cluster);
        self.all(collection)
            .iter()
            .filter(|o| tags(o).contains(&tag.as_str()))
            .collect()
    }

    /// The objects of a collection with this name (floating IPs: this
    /// description, where hke keeps their name).
    pub fn named(&self, collection: &str, name: &str) -> Vec<&Value> {
        let key = if collection == "floatingips" {
            "description"
        } else {
            "name"
        };
        self.all(collection).iter().filter(|o| s(o, key) == name).collect()
    }

    pub fn external_network(&self, name: &str) -> &Value {
        let found: Vec<&Value> = self
            .all("external_networks")
            .iter()
            .filter(|n| s(n, "name") == name)
            .collect();
        assert_eq!(found.len(), 1, "external network {name}");
        found[0]
    }

    /// Every object that belongs to the cluster: tagged with it, or named
    /// as one of its resources (`names`, from its plan), or with the
    /// cluster's name as the start of its name (an object a killed create
    /// left before tagging it), and its keypair. Empty once it is torn down.
    pub fn of_cluster(&self, cluster: &str, names: &BTreeSet<String>) -> Vec<String> {
        let tag = cluster_tag(cluster);
        let prefix = format!("{cluster}-");
        let mut out = Vec::new();
        let collections = TAGGED
            .iter()
            .chain(&["servers", "listeners", "pools", "keypairs"])
            .copied();
        for c in collections {
            for o in self.all(c) {
                let name = if c == "floatingips" {
                    s(o, "description")
                } else {
                    s(o, "name")
                };
                let ours = tags(o).contains(&tag.as_str())
                    || names.contains(name)
                    || name.starts_with(&prefix)
                    || (c == "keypairs" && name == format!("hke-{cluster}"));
                if ours {
                    out.push(format!("{c} {name} {}", s(o, "id")));
                }
            }
        }
        out
    }

    /// What a deploy that writes nothing leaves as it was: every object of
    /// the cluster with the fields that change on any update (Neutron's
    /// `revision_number` and `updated_at`, Nova's `updated`, Octavia's
    /// `updated_at`), by collection and id.
    pub fn fingerprint(&self, cluster: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for c in TAGGED.iter().chain(&["servers"]) {
            for o in self.tagged(c, cluster) {
                out.insert(
                    format!("{c}/{}", s(o, "id")),
                    format!(
                        "{} {} {} {}",
                        o["revision_number"],
                        s(o, "updated_at"),
                        s(o, "updated"),
                        s(o, "provisioning_status")
                    ),
                );
            }
        }
        // The load balancers' parts, which hke does not tag.
        let lbs: BTreeSet<&str> = self
            .tagged("loadbalancers", cluster)
            .iter()
            .map(|l| s(l, "id"))
            .collect();
        let refers = |o: &Value, key: &str, ids: &BTreeSet<&str>| {
            o[key]
                .as_array()
                .is_some_and(|a| a.iter().any(|r| ids.contains(s(r, "id"))))
        };
        let pools: BTreeSet<&str> = self
            .all("pools")
            .iter()
            .filter(|p| refers(p, "loadbalancers", &lbs))
            .map(|p| s(p, "id"))
            .collect();
        for (c, key, ids) in [
            ("listeners", "loadbalancers", &lbs),
            ("pools", "loadbalancers", &lbs),
            ("healthmonitors", "pools", &pools),
        ] {
            for o in self.all(c).iter().filter(|o| refers(o, key, ids)) {
                out.insert(format!("{c}/{}", s(o, "id")), s(o, "updated_at").to_string());
                for m in o["hke_members"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    out.insert(format!("members/{}", s(m, "id")), s(m, "updated_at").to_string());
                }
            }
        }
        out
    }
}
