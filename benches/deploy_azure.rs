//! `cargo bench --bench deploy_azure`: about 1,000 nodes deployed to and
//! torn down from `e2e/fake-arm` enforcing ARM's per-principal token
//! buckets (reads 250 + 25/s, writes 200 + 10/s, deletes 200 + 10/s; 429
//! with Retry-After beyond), with operation times of a real subscription,
//! all time divided by `SCALE`. Two clusters: 3 masters and ten pools of
//! 100 (a scale set each), and 3 masters and 53 pools of 19 (every node a
//! VM with its NIC, the path that costs calls per node). Prints the wall
//! time against a lower bound (the critical path of operation times, the
//! write bucket for the writes a deploy cannot do without, and the
//! operation time of every resource over the engine's parallelism), ARM
//! requests per node (mutating, reads, operation polls), throttled answers
//! (the goal is 0) and peak memory.
//!
//! Under `cargo test --benches` (no `--bench`) it runs small clusters,
//! scaled further down. `cargo test --workspace` does not build benches.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hke::context::Env;
use hke::engine::RetryPolicy;
use hke::ops::deploy::{self, Options, TeardownOptions};
use hke_fake_arm::{Call, Config, FakeArm, RateLimits};
use hke_provider_api::{Kind, MachineSpec, Os, Provider, Spec, Val};
use hke_provider_azure::{Azure, AzureConfig};

/// Seconds an ARM operation on each resource type takes, from PUT to
/// `Succeeded` (typical of a real subscription; not documented figures).
const OPERATION_SECS: [(&str, f64); 11] = [
    ("microsoft.network/virtualnetworks", 5.0),
    ("microsoft.network/virtualnetworks/subnets", 3.0),
    ("microsoft.network/networksecuritygroups", 3.0),
    ("microsoft.network/publicipaddresses", 3.0),
    ("microsoft.network/loadbalancers", 5.0),
    ("microsoft.network/networkinterfaces", 2.0),
    ("microsoft.network/routetables/routes", 3.0),
    ("microsoft.compute/availabilitysets", 1.0),
    ("microsoft.compute/virtualmachines", 60.0),
    ("microsoft.compute/virtualmachines/extensions", 90.0),
    ("microsoft.compute/virtualmachinescalesets", 120.0),
];

/// How soon ARM asks to poll an operation again (`retry-after`), seconds.
const POLL_SECS: f64 = 10.0;

fn op_secs(t: &str) -> f64 {
    OPERATION_SECS
        .iter()
        .find(|(c, _)| *c == t)
        .map(|(_, s)| *s)
        .unwrap_or(5.0)
}

/// A plan resource's time on the critical path: its operations that must
/// follow one another (a Windows VM's bootstrap extension after it).
fn resource_secs(spec: &Spec<Val>) -> f64 {
    match spec {
        Spec::Machine(MachineSpec { os: Os::Windows, .. }) => {
            kind_secs(Kind::Machine) + op_secs("microsoft.compute/virtualmachines/extensions")
        }
        _ => kind_secs(spec.kind()),
    }
}

/// The longest chain of `resource_secs` through the plan.
fn critical_path(plan: &hke::plan::Plan, scale: f64) -> Duration {
    let mut finish: BTreeMap<String, f64> = BTreeMap::new();
    for id in plan.topological_order().unwrap_or_default() {
        let p = &plan.resources[&id];
        let start = p
            .depends_on
            .iter()
            .filter_map(|d| finish.get(d))
            .fold(0.0_f64, |a, b| a.max(*b));
        finish.insert(id, start + resource_secs(&p.spec));
    }
    Duration::from_secs_f64(finish.values().fold(0.0_f64, |a, b| a.max(*b)) / scale)
}

fn kind_secs(kind: Kind) -> f64 {
    match kind {
        Kind::Group => 0.0,
        Kind::Network => op_secs("microsoft.network/virtualnetworks"),
        Kind::Subnet => op_secs("microsoft.network/virtualnetworks/subnets"),
        Kind::Firewall => op_secs("microsoft.network/networksecuritygroups"),
        Kind::PublicAddress => op_secs("microsoft.network/publicipaddresses"),
        Kind::LoadBalancer => op_secs("microsoft.network/loadbalancers"),
        // The master's NIC joins the API server's pool.
        Kind::LbMember => op_secs("microsoft.network/networkinterfaces"),
        Kind::Route => op_secs("microsoft.network/routetables/routes"),
        Kind::PlacementGroup => op_secs("microsoft.compute/availabilitysets"),
        // Its NIC, then the VM (Linux: no extension).
        Kind::Machine => op_secs("microsoft.network/networkinterfaces") + op_secs("microsoft.compute/virtualmachines"),
        Kind::MachineGroup => op_secs("microsoft.compute/virtualmachinescalesets"),
    }
}

/// User and system CPU seconds of this process so far.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 (11 and 12 after the name), in
    // clock ticks of (almost always) 100 a second.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

const CLUSTER: &str = "bench-azure";
const LOCATION: &str = "westus2";

fn model(pools: u32, per_pool: u32) -> String {
    let pools: Vec<serde_json::Value> = (0..pools)
        .map(|i| {
            let windows = i % 2 == 1;
            serde_json::json!({
                "name": format!("{}{i}", if windows { "win" } else { "lin" }),
                "count": per_pool,
                "vmSize": "Standard_D2s_v3",
                "osType": if windows { "Windows" } else { "Linux" },
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "vlabs",
        "location": LOCATION,
        "properties": {
            "orchestratorProfile": {"kubernetesConfig": {"networkPlugin": "flannel"}},
            "masterProfile": {"count": 3, "dnsPrefix": CLUSTER, "vmSize": "Standard_D2s_v3"},
            "agentPoolProfiles": pools,
            "windowsProfile": {"adminUsername": "azureuser"},
            "linuxProfile": {"adminUsername": "azureuser"},
        }
    })
    .to_string()
}

/// ARM requests by class, as ARM's buckets count them.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    mutating: usize,
    reads: usize,
    polls: usize,
    throttled: usize,
}

fn counts(calls: &[Call]) -> Counts {
    let mut c = Counts::default();
    for call in calls {
        if call.path.ends_with("/oauth2/v2.0/token") || call.path.starts_with("/blobs/") || call.status == 401 {
            continue;
        }
        if call.status == 429 {
            c.throttled += 1;
        }
        match call.method.as_str() {
            "GET" if call.path.contains("/providers/microsoft.fake/operations/") => c.polls += 1,
            "GET" | "HEAD" => c.reads += 1,
            _ => c.mutating += 1,
        }
    }
    c
}

fn run(name: &str, pools: u32, per_pool: u32, scale: f64, parallelism: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let secs = |s: f64| Duration::from_secs_f64(s / scale);
    let limits = RateLimits::arm().faster(scale);
    let fake = rt
        .block_on(FakeArm::start(Config {
            operation_time: secs(5.0),
            operation_times: OPERATION_SECS.iter().map(|(t, s)| (t.to_string(), secs(*s))).collect(),
            poll_after: secs(POLL_SECS),
            rate_limits: Some(limits),
            page_size: 100,
            ..Config::default()
        }))
        .expect("fake-arm");
    login(&format!("{}/", fake.url()));
    let ca = tempfile::NamedTempFile::new().expect("ca file");
    std::fs::write(ca.path(), fake.ca_pem()).expect("ca");
    let text = model(pools, per_pool);
    let prepared =
        hke::ops::generate::prepare(&text, &[], &mut rand::rngs::OsRng, hke::ops::generate::now()).expect("model");
    let plan = hke::plan::plan(&prepared.cluster).expect("plan");
    let nodes = 3 + pools * per_pool;
    let mut cfg = AzureConfig::new(CLUSTER);
    cfg.subscription = Some(Config::default().subscription);
    cfg.location = Some(LOCATION.into());
    cfg.endpoint = Some(fake.url());
    cfg.ca_file = Some(ca.path().to_path_buf());
    cfg.poll = secs(5.0);
    cfg.pacing = Some(true);
    cfg.rate_scale = Some(1.0);
    cfg.clock_scale = scale;
    let client = Arc::new(rt.block_on(Azure::connect(cfg)).expect("connect"));
    let azure: Arc<dyn Provider> = client.clone();
    let cpu0 = cpu_secs();
    let env = Env::from_pairs(Vec::<(String, String)>::new());
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
            Some(azure.clone()),
        ))
        .expect("deploy");
    let command = t0.elapsed();
    let cpu = cpu_secs() - cpu0;
    let (waits, waited) = client.paced();
    let wall = Duration::from_millis(engine_ms.load(Ordering::SeqCst));
    assert_eq!(deployed.summary.failed, 0);
    let calls = fake.calls();
    let c = counts(&calls);
    let resources = fake.resources();
    let vms = resources
        .keys()
        .filter(|p| p.contains("/virtualmachines/") && !p.contains("/extensions/"))
        .count();
    let instances: u64 = resources
        .iter()
        .filter(|(p, _)| p.contains("/virtualmachinescalesets/"))
        .filter_map(|(_, v)| v.pointer("/sku/capacity").and_then(|c| c.as_u64()))
        .sum();
    assert_eq!(
        vms as u64 + instances,
        u64::from(nodes),
        "every node is a VM or an instance"
    );
    // Lower bound: the critical path of operation times; the write bucket
    // for the writes (one PUT per ARM resource) and the last operation they
    // start; every resource's operations over the engine's parallelism.
    let critical = critical_path(&plan, scale);
    let writes = limits.writes;
    let write_secs = (c.mutating as f64 - writes.capacity).max(0.0) / writes.refill * writes.interval.as_secs_f64();
    let write_bound = Duration::from_secs_f64(write_secs) + secs(op_secs("microsoft.compute/virtualmachines"));
    let work: f64 = plan.resources.values().map(|r| resource_secs(&r.spec)).sum();
    let parallel_bound = secs(work / parallelism as f64);
    let bound = critical.max(write_bound).max(parallel_bound);
    let per_node = |n: usize| n as f64 / f64::from(nodes);
    let snat = fake.snat(&format!(
        "/subscriptions/{}/resourcegroups/{CLUSTER}/providers/microsoft.network/loadbalancers/{CLUSTER}-apiserver",
        Config::default().subscription
    ));

    let t1 = Instant::now();
    rt.block_on(deploy::teardown(
        &hke::ops::target::Target::of_cluster(&prepared.cluster, &Default::default(), &env).expect("target"),
        TeardownOptions {
            dir: out,
            retry: RetryPolicy::default(),
            parallelism,
            cancel: Default::default(),
        },
        sink,
        Some(azure),
    ))
    .expect("teardown");
    let teardown = t1.elapsed();
    let left = fake.resources();
    assert!(
        left.is_empty(),
        "teardown left {:?}",
        left.keys().take(5).collect::<Vec<_>>()
    );
    let all = fake.calls();
    println!(
        "deploy to fake-arm, {name}: {nodes} nodes, {} plan resources, parallelism {parallelism}, time scale 1/{scale}\n  \
         wall {:.2}s (engine; whole command {:.2}s) = {:.0}s unscaled; lower bound {:.2}s = {:.0}s unscaled \
         (critical path {:.0}s, write bucket for {} writes {:.0}s, operations / parallelism {:.0}s); \
         wall / lower bound {:.2}\n  \
         ARM requests per node: {:.2} (mutating {:.2}, reads {:.2}, operation polls {:.2}); {} in all\n  \
         outbound rule: {:?}\n  \
         throttled answers: {} during the deploy, {} with the teardown (goal 0); {waits} calls waited for \
         ARM's buckets, {:.1}s in all; CPU {cpu:.1}s over the deploy\n  \
         teardown {:.2}s ({} more requests); peak memory {:.1} MiB (hke and the fake, one process)",
        plan.resources.len(),
        wall.as_secs_f64(),
        command.as_secs_f64(),
        wall.as_secs_f64() * scale,
        bound.as_secs_f64(),
        bound.as_secs_f64() * scale,
        critical.as_secs_f64() * scale,
        c.mutating,
        write_bound.as_secs_f64() * scale,
        parallel_bound.as_secs_f64() * scale,
        wall.as_secs_f64() / bound.as_secs_f64(),
        per_node(c.mutating + c.reads + c.polls),
        per_node(c.mutating),
        per_node(c.reads),
        per_node(c.polls),
        c.mutating + c.reads + c.polls,
        snat.first().map(|r| (r.frontends, r.instances, r.per_instance)),
        c.throttled,
        counts(&all[calls.len()..]).throttled,
        waited.as_secs_f64(),
        teardown.as_secs_f64(),
        all.len() - calls.len(),
        peak_rss_mib(),
    );
    assert_eq!(fake.throttled(), 0, "throttled");
    let _guard = rt.enter();
    drop(fake);
}

/// The service principal the fake's identity endpoint issues its token
/// to (read by azure_identity's credential from the environment).
fn login(authority: &str) {
    std::env::set_var("AZURE_TENANT_ID", "72f988bf-0000-0000-0000-000000000000");
    std::env::set_var("AZURE_CLIENT_ID", "hke-bench");
    std::env::set_var("AZURE_CLIENT_SECRET", "bench-client-secret-value");
    std::env::set_var("AZURE_AUTHORITY_HOST", authority);
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let runs: &[(&str, u32, u32, f64, usize)] = if bench {
        &[
            (
                "3 masters + 10 pools of 100 (flannel: a scale set per pool)",
                10,
                100,
                20.0,
                10,
            ),
            (
                "3 masters + 53 pools of 19 (flannel: every node a VM)",
                53,
                19,
                5.0,
                256,
            ),
        ]
    } else {
        &[
            ("3 masters + 2 pools of 30 (flannel: scale sets)", 2, 30, 100.0, 10),
            ("3 masters + 4 pools of 5 (flannel: VMs)", 4, 5, 100.0, 50),
        ]
    };
    for (name, pools, per_pool, scale, parallelism) in runs {
        run(name, *pools, *per_pool, *scale, *parallelism);
    }
}
