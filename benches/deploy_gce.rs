//! `cargo bench --bench deploy_gce`: a 1,003-node cluster (3 masters and
//! ten pools of 100, half Windows) deployed to and torn down from
//! `e2e/fake-gce` enforcing Compute Engine's rate quotas (1,500 calls a
//! minute in each quota group, 403 `rateLimitExceeded` beyond), with
//! operation times of a real project, all time divided by `SCALE` so that it
//! runs in a minute or two. Prints the wall time against a lower bound
//! (the critical path of operation times, and the quota: the calls a deploy
//! cannot do without, in windows of 1,500), API calls per node by quota
//! group, throttled answers (the goal is 0) and peak memory.
//!
//! Under `cargo test --benches` (no `--bench`) it runs a 63-node cluster,
//! scaled further down. `cargo test --workspace` does not build benches.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hke::context::Env;
use hke::engine::RetryPolicy;
use hke::ops::deploy::{self, Options, TeardownOptions};
use hke_fake_gce::{Config, FakeGce, RateQuota};
use hke_provider_api::Kind;

/// Seconds a Compute Engine operation of each collection takes, from
/// insert to DONE (typical of a real project; not documented figures).
const OPERATION_SECS: [(&str, f64); 8] = [
    ("networks", 15.0),
    ("subnetworks", 15.0),
    ("firewalls", 8.0),
    ("addresses", 3.0),
    ("targetPools", 5.0),
    ("forwardingRules", 10.0),
    ("routes", 8.0),
    ("instances", 25.0),
];

fn op_secs(collection: &str) -> f64 {
    OPERATION_SECS
        .iter()
        .find(|(c, _)| *c == collection)
        .map(|(_, s)| *s)
        .unwrap_or(5.0)
}

/// A plan resource's time on the critical path: its operations that must
/// follow one another.
fn kind_secs(kind: Kind) -> f64 {
    match kind {
        Kind::Group | Kind::PlacementGroup => 0.0,
        Kind::Network => op_secs("networks"),
        Kind::Subnet => op_secs("subnetworks"),
        // Its rules are inserted at once.
        Kind::Firewall => op_secs("firewalls"),
        Kind::PublicAddress => op_secs("addresses"),
        // The target pool, then the forwarding rule.
        Kind::LoadBalancer => op_secs("targetPools") + op_secs("forwardingRules"),
        Kind::LbMember => op_secs("targetPools"),
        Kind::Route => op_secs("routes"),
        Kind::Machine | Kind::MachineGroup => op_secs("instances"),
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn model(pools: u32, per_pool: u32) -> String {
    let pools: Vec<serde_json::Value> = (0..pools)
        .map(|i| {
            let windows = i % 2 == 1;
            serde_json::json!({
                "name": format!("{}pool{i}", if windows { "win" } else { "lin" }),
                "count": per_pool,
                "vmSize": if windows { "n2-standard-4" } else { "n2-standard-2" },
                "osType": if windows { "Windows" } else { "Linux" },
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "vlabs",
        "properties": {
            "providerProfile": {"name": "gcp", "project": "bench-project", "region": "us-central1", "zone": "us-central1-a"},
            "orchestratorProfile": {"kubernetesConfig": {"networkPlugin": "flannel"}},
            "masterProfile": {"count": 3, "dnsPrefix": "bench-gce", "vmSize": "n2-standard-2"},
            "agentPoolProfiles": pools,
            "windowsProfile": {"adminUsername": "hkeadmin"},
            "linuxProfile": {"adminUsername": "hkeadmin"},
        }
    })
    .to_string()
}

/// Calls of the fake's log by quota group.
fn by_group(calls: &[String]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for c in calls {
        let mut parts = c.split(' ');
        let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        *out.entry(hke_fake_gce::quota_group(method, path).0).or_default() += 1;
    }
    out
}

/// The shortest time `calls` calls of one quota group can take (the first
/// window's quota at once, each further quota a window later), plus the
/// operation the last one starts.
fn quota_bound(calls: usize, quota: RateQuota, then: Duration) -> Duration {
    let windows = calls.div_ceil(quota.calls as usize).saturating_sub(1) as u32;
    quota.window * windows + then
}

fn run(name: &str, pools: u32, per_pool: u32, scale: f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let secs = |s: f64| Duration::from_secs_f64(s / scale);
    let quota = RateQuota {
        calls: 1500,
        window: secs(60.0),
    };
    let fake = rt
        .block_on(FakeGce::start(Config {
            operation_time: secs(5.0),
            operation_times: OPERATION_SECS.iter().map(|(c, s)| (c.to_string(), secs(*s))).collect(),
            rate_quota: Some(quota),
            wait_deadline: secs(120.0),
            ..Config::default()
        }))
        .expect("fake-gce");
    let text = model(pools, per_pool);
    let prepared =
        hke::ops::generate::prepare(&text, &[], &mut rand::rngs::OsRng, hke::ops::generate::now()).expect("model");
    let plan = hke::plan::plan(&prepared.cluster).expect("plan");
    let nodes = 3 + pools * per_pool;
    let env = Env::from_pairs([
        ("HKE_GCP_ENDPOINT_URL".to_string(), fake.url()),
        (
            "HKE_GCP_RATE_QUOTA".to_string(),
            format!("{}/{}ms", quota.calls, quota.window.as_millis()),
        ),
        (
            "HKE_GCP_POLL_MS".to_string(),
            format!("{}", (500.0 / scale).max(1.0) as u64),
        ),
        // For the teardown, which has no model.
        ("HKE_GCP_PROJECT".to_string(), "bench-project".to_string()),
        ("HKE_GCP_ZONE".to_string(), "us-central1-a".to_string()),
    ]);
    let parallelism = 10;
    let engine_ms = Arc::new(AtomicU64::new(0));
    let em = engine_ms.clone();
    let sink: hke::engine::EventSink = Arc::new(move |e: &hke::engine::Event| {
        if let hke::engine::Event::End { summary, .. } = e {
            em.store(summary.elapsed_ms, Ordering::SeqCst);
        }
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let t0 = Instant::now();
    let deployed = rt
        .block_on(deploy::deploy_model(
            deploy::Model {
                text: &text,
                sets: &[],
                output_dir: Some(&out),
            },
            &Default::default(),
            &env,
            Options {
                parallelism,
                ttl: None,
                retry: RetryPolicy::default(),
                durability: hke::engine::state::Durability::GroupCommit,
                cancel: Default::default(),
            },
            sink.clone(),
            None,
        ))
        .expect("deploy");
    let command = t0.elapsed();
    let wall = Duration::from_millis(engine_ms.load(Ordering::SeqCst));
    assert_eq!(deployed.summary.failed, 0);
    let calls = fake.calls();
    let throttled = fake.throttled();
    let instances = fake.resources().keys().filter(|p| p.contains("/instances/")).count();
    assert_eq!(instances, nodes as usize, "every node is an instance");
    // Lower bound: the critical path of operation times, and the quota of
    // the mutations a deploy cannot do without (one insert per GCE object).
    let critical = plan.critical_path(|k| Duration::from_secs_f64(kind_secs(k) / scale));
    let groups = by_group(&calls);
    let inserts = calls
        .iter()
        .filter(|c| c.starts_with("POST ") && !c.ends_with("/wait"))
        .count();
    let bound = critical.max(quota_bound(inserts, quota, secs(op_secs("instances"))));
    let per_node = |n: usize| n as f64 / f64::from(nodes);
    let get = |g: &str| groups.get(g).copied().unwrap_or(0);
    let reads = get("reads") + get("lists") + get("aggregated-lists");
    let polls = get("operation-reads") + get("operation-waits");
    let busiest = fake.busiest_windows();

    let t1 = Instant::now();
    rt.block_on(deploy::teardown(
        &hke::ops::target::Target::resolve(
            hke::model::types::Cloud::Gcp,
            &prepared.cluster.name.to_string(),
            None,
            &Default::default(),
            &env,
        )
        .expect("target"),
        TeardownOptions {
            dir: out,
            retry: RetryPolicy::default(),
            parallelism,
            cancel: Default::default(),
        },
        sink,
        None,
    ))
    .expect("teardown");
    let teardown = t1.elapsed();
    let left = fake.resources();
    assert!(
        left.is_empty(),
        "teardown left {:?}",
        left.keys().take(5).collect::<Vec<_>>()
    );
    let all = fake.calls().len();
    println!(
        "deploy to fake-gce, {name}: {nodes} nodes, {} plan resources, parallelism {parallelism}, time scale 1/{scale}\n  \
         wall {:.2}s (engine; whole command {:.2}s) = {:.0}s unscaled; lower bound {:.2}s = {:.0}s unscaled \
         (critical path {:.0}s, quota of {inserts} inserts {:.0}s); wall / lower bound {:.2}\n  \
         API calls per node: {:.2} (mutations {:.2}, reads {:.2}, operation waits/polls {:.2}); {} calls in all\n  \
         busiest quota window (of {}): {:?}\n  \
         throttled answers: {throttled} during the deploy, {} with the teardown (goal 0)\n  \
         teardown {:.2}s ({} more calls); peak memory {:.1} MiB (hke and the fake, one process)",
        plan.resources.len(),
        wall.as_secs_f64(),
        command.as_secs_f64(),
        wall.as_secs_f64() * scale,
        bound.as_secs_f64(),
        bound.as_secs_f64() * scale,
        critical.as_secs_f64() * scale,
        quota_bound(inserts, quota, secs(op_secs("instances"))).as_secs_f64() * scale,
        wall.as_secs_f64() / bound.as_secs_f64(),
        per_node(calls.len()),
        per_node(get("mutations")),
        per_node(reads),
        per_node(polls),
        calls.len(),
        quota.calls,
        busiest,
        fake.throttled(),
        teardown.as_secs_f64(),
        all - calls.len(),
        peak_rss_mib(),
    );
    assert_eq!(
        fake.throttled(),
        0,
        "throttled: {:?}",
        fake.refused().iter().take(5).collect::<Vec<_>>()
    );
    let _guard = rt.enter();
    drop(fake);
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if bench {
        run(
            "3 masters + 10 pools of 100 (flannel: a machine group per pool)",
            10,
            100,
            5.0,
        );
    } else {
        run("3 masters + 2 pools of 30 (flannel)", 2, 30, 50.0);
    }
}
