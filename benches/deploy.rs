//! `cargo bench --bench deploy`: deploy and teardown against the fake cloud
//! with realistic latencies scaled down, for the example and a 1,000-node
//! model. Prints wall time, the lower bound max(critical path, total call
//! latency ÷ parallelism), their ratio, provider calls and peak memory.
//!
//! Under `cargo test` (no `--bench`) it runs once, scaled further down.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hke::context::Env;
use hke::engine::RetryPolicy;
use hke::ops::deploy::{self, Options, TeardownOptions};
use hke_provider_api::fake::{FakeCloud, FakeConfig};
use hke_provider_api::Kind;

/// Seconds a real cloud takes for each kind (Azure-like).
fn real_latency(kind: Kind) -> f64 {
    match kind {
        Kind::Group => 2.0,
        Kind::Network => 5.0,
        Kind::Subnet | Kind::Firewall | Kind::PublicAddress => 3.0,
        Kind::LoadBalancer => 10.0,
        Kind::LbMember => 5.0,
        Kind::Route | Kind::PlacementGroup => 2.0,
        Kind::Machine | Kind::MachineGroup => 60.0,
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

fn big_model(plugin: &str) -> String {
    let pools: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            serde_json::json!({
                "name": format!("{}pool{i}", if i % 2 == 1 { "win" } else { "lin" }),
                "count": 100,
                "osType": if i % 2 == 1 { "Windows" } else { "Linux" },
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "vlabs",
        "location": "westus2",
        "properties": {
            "providerProfile": {"name": "fake"},
            "orchestratorProfile": {"kubernetesConfig": {"networkPlugin": plugin}},
            "masterProfile": {"count": 3, "dnsPrefix": "big-hybrid"},
            "agentPoolProfiles": pools,
        }
    })
    .to_string()
}

fn run(name: &str, text: &str, scale: f64, parallelism: usize) {
    let tmp = tempfile::tempdir().expect("tmp");
    let latency = |k: Kind| Duration::from_secs_f64(real_latency(k) / scale);
    let mut cfg = FakeConfig {
        read_latency: Duration::from_millis(1),
        ..FakeConfig::default()
    };
    for k in Kind::ALL {
        cfg.latency.insert(k, latency(k));
    }
    let cloud = Arc::new(FakeCloud::open(tmp.path().join("cloud"), cfg).expect("fake cloud"));
    let sets = vec!["properties.providerProfile.name=fake".parse().expect("set")];
    let prepared =
        hke::ops::generate::prepare(text, &sets, &mut rand::rngs::OsRng, hke::ops::generate::now()).expect("model");
    let plan = hke::plan::plan(&prepared.cluster).expect("plan");
    let critical = plan.critical_path(latency);
    let total: Duration = plan.resources.values().map(|r| latency(r.spec.kind())).sum();
    let bound = critical.max(total / parallelism as u32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The engine's own time (from its End event): what the bound is about.
    let engine_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let em = engine_ms.clone();
    let sink: hke::engine::EventSink = Arc::new(move |e: &hke::engine::Event| {
        if let hke::engine::Event::End { summary, .. } = e {
            em.store(summary.elapsed_ms, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let out = tmp.path().join("out");
    let t0 = Instant::now();
    rt.block_on(deploy::deploy_model(
        deploy::Model {
            text,
            sets: &sets,
            output_dir: Some(&out),
        },
        &Default::default(),
        &Env::default(),
        Options {
            parallelism,
            ttl: None,
            retry: RetryPolicy::default(),
            durability: hke::engine::state::Durability::GroupCommit,
            cancel: Default::default(),
        },
        sink.clone(),
        Some(cloud.clone()),
    ))
    .expect("deploy");
    let command = t0.elapsed();
    let wall = Duration::from_millis(engine_ms.load(std::sync::atomic::Ordering::SeqCst));
    let calls = cloud.call_count();
    let t1 = Instant::now();
    rt.block_on(deploy::teardown(
        &hke::ops::target::Target::resolve(
            hke::model::types::Cloud::Fake,
            &prepared.cluster.name.to_string(),
            None,
            &Default::default(),
            &Env::default(),
        )
        .expect("target"),
        TeardownOptions {
            dir: out,
            retry: RetryPolicy::default(),
            parallelism,
            cancel: Default::default(),
        },
        sink,
        Some(cloud.clone()),
    ))
    .expect("teardown");
    let teardown = t1.elapsed();
    assert!(cloud.resources().is_empty(), "teardown leaves nothing");
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    for r in plan.resources.values() {
        *by_kind.entry(r.spec.kind()).or_default() += 1;
    }
    println!(
        "deploy {name}: {} resources, parallelism {parallelism}, latency scale 1/{scale}\n  whole command {:.3}s (generate included); engine wall {:.3}s, lower bound {:.3}s (critical path {:.3}s, total latency/parallelism {:.3}s), ratio {:.3}\n  provider calls {calls} (deploy), teardown {:.3}s, peak memory {:.1} MiB",
        plan.resources.len(),
        command.as_secs_f64(),
        wall.as_secs_f64(),
        bound.as_secs_f64(),
        critical.as_secs_f64(),
        (total / parallelism as u32).as_secs_f64(),
        wall.as_secs_f64() / bound.as_secs_f64(),
        teardown.as_secs_f64(),
        peak_rss_mib(),
    );
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/windows.json")).expect("example");
    // Scaled latencies stay well above the 1 ms timer granularity of the fake.
    let (scale_small, scale_big) = if bench { (200.0, 500.0) } else { (2000.0, 20000.0) };
    run("examples/windows.json", &example, scale_small, 10);
    run(
        "1,000-node model (3 + 10×100), kubenet: a machine and a route per node",
        &big_model("kubenet"),
        scale_big,
        10,
    );
    run(
        "1,000-node model (3 + 10×100), azure CNI: a machine group per pool",
        &big_model("azure"),
        scale_big,
        10,
    );
}
