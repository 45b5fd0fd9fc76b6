//! `hke janitor` against the fake cloud: clusters with back-dated
//! `hke.io/created` tags next to fresh ones and untagged resources.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use hke_provider_api::fake::{FakeCloud, FakeConfig};
use hke_provider_api::{Provider, Request, Spec, TAG_CLUSTER, TAG_CREATED, TAG_TTL};
use serde_json::Value;

use crate::support::text;

fn put(cloud: &FakeCloud, name: &str, tags: &[(&str, &str)]) {
    let tags: BTreeMap<String, String> = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let req = Request {
        logical_id: format!("network/{name}"),
        name: name.into(),
        spec: Spec::Network {
            cidr: "10.0.0.0/16".into(),
            group: "none".into(),
        },
        tags,
        references: vec![],
        client_token: format!("tok-{name}"),
        user_data: None,
        login: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(cloud.create(&req)).expect("create");
}

/// Hours before now, as an hke.io/created value.
fn ago(hours: i64) -> String {
    (time::OffsetDateTime::now_utc() - time::Duration::hours(hours))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn janitor(dir: &Path, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hke"))
        .arg("janitor")
        .args(["--cloud", "fake"])
        .args(args)
        .env("HKE_FAKE_CLOUD", dir)
        .output()
        .expect("hke runs");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON report ({e}):\n{}", text(&out.stdout)));
    (out.status.success(), report, text(&out.stderr))
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            c.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| c["cluster"].as_str().expect("cluster").to_string())
        })
        .collect();
    n.sort();
    n
}

fn seed(dir: &Path) {
    let cloud = FakeCloud::open(dir, FakeConfig::default()).expect("cloud");
    let old = ago(5);
    let fresh = ago(1);
    let ancient = ago(24 * 10);
    for part in ["vnet", "nsg", "vm"] {
        put(
            &cloud,
            &format!("old-{part}"),
            &[(TAG_CLUSTER, "old"), (TAG_CREATED, &old), (TAG_TTL, "3h")],
        );
        put(
            &cloud,
            &format!("fresh-{part}"),
            &[(TAG_CLUSTER, "fresh"), (TAG_CREATED, &fresh), (TAG_TTL, "3h")],
        );
    }
    put(
        &cloud,
        "forever-vnet",
        &[(TAG_CLUSTER, "forever"), (TAG_CREATED, &ancient)],
    );
    put(
        &cloud,
        "pinned-vnet",
        &[
            (TAG_CLUSTER, "pinned"),
            (TAG_CREATED, &old),
            (TAG_TTL, "1h"),
            ("keep", "true"),
        ],
    );
    // Not hke's: never touched.
    put(&cloud, "someone-elses-vnet", &[("team", "db")]);
}

fn left(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = FakeCloud::resources_in(dir).into_iter().map(|s| s.name).collect();
    v.sort();
    v
}

#[test]
fn dry_run_lists_exactly_the_expired_clusters_and_deletes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    seed(tmp.path());
    let before = left(tmp.path());
    let (ok, report, err) = janitor(tmp.path(), &["--dry-run", "--exclude-tag", "keep=true"]);
    assert!(ok, "{err}");
    assert_eq!(names(&report["expired"]), vec!["old"]);
    assert_eq!(names(&report["kept"]), vec!["forever", "fresh"]);
    assert_eq!(report["expired"][0]["resources"], 3);
    assert_eq!(left(tmp.path()), before, "a dry run deletes nothing");
    assert!(err.contains("would delete: old"), "{err}");
}

#[test]
fn the_janitor_deletes_exactly_the_expired_clusters() {
    let tmp = tempfile::tempdir().expect("tmp");
    seed(tmp.path());
    let (ok, report, err) = janitor(tmp.path(), &["--exclude-tag", "keep=true"]);
    assert!(ok, "{err}");
    assert_eq!(names(&report["deleted"]), vec!["old"]);
    assert_eq!(
        left(tmp.path()),
        vec![
            "forever-vnet",
            "fresh-nsg",
            "fresh-vm",
            "fresh-vnet",
            "pinned-vnet",
            "someone-elses-vnet"
        ]
    );
    // --older-than reaches clusters without a TTL; the pinned one is still excluded.
    let (ok, report, err) = janitor(tmp.path(), &["--older-than", "7d", "--exclude-tag", "keep=true"]);
    assert!(ok, "{err}");
    assert_eq!(names(&report["deleted"]), vec!["forever"]);
    assert_eq!(
        left(tmp.path()),
        vec![
            "fresh-nsg",
            "fresh-vm",
            "fresh-vnet",
            "pinned-vnet",
            "someone-elses-vnet"
        ]
    );
}

#[test]
fn a_cluster_that_cannot_be_deleted_is_named_and_the_exit_code_says_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    seed(tmp.path());
    // Every call after the listing fails permanently.
    let out = Command::new(env!("CARGO_BIN_EXE_hke"))
        .args(["janitor", "--cloud", "fake", "--exclude-tag", "keep=true"])
        .env("HKE_FAKE_CLOUD", tmp.path())
        .env("HKE_FAKE_FAIL_AT", "2")
        .output()
        .expect("hke runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["failed"][0]["cluster"], "old");
    assert!(
        text(&out.stderr).contains("could not delete 1 cluster(s)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    for args in [
        vec!["janitor", "--cloud", "fake", "--older-than", "soon"],
        vec!["janitor", "--cloud", "mars"],
        vec!["janitor", "--cloud", "fake", "--include-tag", "novalue"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hke"))
            .args(&args)
            .env("HKE_FAKE_CLOUD", tmp.path())
            .output()
            .expect("hke runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
    }
}
