//! `cargo bench --bench deploy_aws`: a cluster deployed to and torn down
//! from moto's EC2 and ELBv2 server (`python3 -m moto.server`, as
//! `e2e/moto.rs` starts it) through hke's AWS provider with its client-side
//! pacing on. Prints the wall time, API calls per node (mutating and
//! describes, by action), the throttled answers (moto never throttles, so
//! also how many calls hke's pacer held back and the lower bound the EC2 and
//! ELBv2 buckets of `providers/aws/src/pace.rs` put on the calls made) and
//! peak memory (hke's process; moto runs in its own).
//!
//! After the deploy it deploys again with the state lost (every resource
//! is found by its tags and adopted, nothing is created) and counts those
//! calls too.
//!
//! `-- --unbatched` turns off the provider's batched DescribeInstances (one
//! call per instance, as before), to compare.
//! `-- --nodes N --pool S` sets the size: N nodes besides 3 masters, in
//! Linux pools of S (pools of 20 or more are one machine group, one
//! RunInstances per zone; smaller pools are one instance per node). With
//! `--bench` and no size, 1,000 nodes in pools of 100. Under
//! `cargo test --benches` it deploys 3 masters and 10 nodes.
#![allow(clippy::print_stdout)]

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hke::context::Env;
use hke::engine::RetryPolicy;
use hke::ops::deploy::{self, Options, TeardownOptions};
use hke_provider_api::Provider;

const REGION: &str = "us-west-2";

/// moto's server on a free loopback port; killed on drop.
struct Moto {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Moto {
    fn start() -> Moto {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().expect("tmp");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("log");
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_AMIS_PATH", root.join("e2e/moto-amis.json"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("moto starts (pip install 'moto[server]')");
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(60), "moto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, port, _dir: dir }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// moto's resident memory (MiB), from /proc.
    fn rss_mib(&self) -> f64 {
        let mut s = String::new();
        let _ =
            std::fs::File::open(format!("/proc/{}/status", self.child.id())).and_then(|mut f| f.read_to_string(&mut s));
        s.lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

fn model(nodes: u32, pool: u32) -> String {
    let pools: Vec<serde_json::Value> = (0..nodes.div_ceil(pool.max(1)))
        .map(|i| {
            serde_json::json!({
                "name": format!("pool{i}"),
                "count": pool.min(nodes - i * pool),
                "vmSize": "m5.large",
                "osType": "Linux",
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "vlabs",
        "properties": {
            "providerProfile": {"name": "aws", "region": REGION},
            "orchestratorProfile": {"kubernetesConfig": {"networkPlugin": "flannel"}},
            "masterProfile": {"count": 3, "dnsPrefix": "bench-aws", "vmSize": "m5.large"},
            "agentPoolProfiles": pools,
            "linuxProfile": {"adminUsername": "ubuntu"},
        }
    })
    .to_string()
}

fn run(nodes: u32, pool: u32, batch: bool) {
    // moto takes any credentials; keep the host's AWS configuration out.
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_CONFIG_FILE", "/nonexistent/hke-bench-aws-config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/hke-bench-aws-credentials"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(k, v);
    }
    let moto = Moto::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let text = model(nodes, pool);
    let prepared =
        hke::ops::generate::prepare(&text, &[], &mut rand::rngs::OsRng, hke::ops::generate::now()).expect("model");
    let cluster = prepared.cluster.name.to_string();
    let plan = hke::plan::plan(&prepared.cluster).expect("plan");
    let all_nodes = 3 + nodes;
    // A provider per command, as each `hke` run has its own.
    let connect = || {
        let mut cfg = hke_provider_aws::AwsConfig::new(&cluster, Some(REGION));
        cfg.endpoint = Some(moto.url());
        cfg.batch = batch;
        let aws = Arc::new(
            rt.block_on(hke_provider_aws::Aws::connect(cfg))
                .expect("connect to moto"),
        );
        let provider: Arc<dyn Provider> = aws.clone();
        (aws, provider)
    };
    let (aws, provider) = connect();
    let env = Env::from_pairs([("HKE_AWS_ENDPOINT_URL".to_string(), moto.url())]);
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
    let options = || Options {
        parallelism,
        ttl: None,
        retry: RetryPolicy::default(),
        durability: hke::engine::state::Durability::GroupCommit,
        cancel: Default::default(),
    };
    let model = || deploy::Model {
        text: &text,
        sets: &[],
        output_dir: Some(&out),
    };
    let before = aws.call_stats();
    let t0 = Instant::now();
    let deployed = rt
        .block_on(deploy::deploy_model(
            model(),
            &Default::default(),
            &env,
            options(),
            sink.clone(),
            Some(provider.clone()),
        ))
        .expect("deploy");
    let command = t0.elapsed();
    let wall = Duration::from_millis(engine_ms.load(Ordering::SeqCst));
    assert_eq!(deployed.summary.failed, 0);
    let stats = aws.call_stats();
    let (held, held_for) = aws.paced();
    let calls = stats.total() - before.total();
    let describes = stats.describes() - before.describes();
    let bound = stats.lower_bound();
    let per_node = |n: u64| n as f64 / f64::from(all_nodes);
    let mut by_action: Vec<(String, u64)> = stats
        .actions
        .iter()
        .map(|(a, n)| (a.clone(), n - before.actions.get(a).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    by_action.sort_by_key(|a| std::cmp::Reverse(a.1));
    let busiest: Vec<String> = {
        let mut v: Vec<(String, f64)> = stats
            .buckets
            .iter()
            .map(|(k, (l, t))| {
                (
                    k.clone(),
                    (*t as f64 - l.capacity - l.per_second).max(0.0) / l.per_second,
                )
            })
            .filter(|(_, s)| *s > 0.0)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.iter().take(3).map(|(k, s)| format!("{k} {s:.1}s")).collect()
    };

    // Again with the state lost: every resource is looked up and adopted.
    for f in [hke::engine::state::STATE_FILE, hke::engine::state::JOURNAL_FILE] {
        let _ = std::fs::remove_file(out.join(f));
    }
    let (aws2, provider2) = connect();
    let connected = aws2.call_stats();
    let t2 = Instant::now();
    let again = rt
        .block_on(deploy::deploy_model(
            model(),
            &Default::default(),
            &env,
            options(),
            sink.clone(),
            Some(provider2),
        ))
        .expect("redeploy");
    let redeploy = t2.elapsed();
    assert_eq!(again.summary.failed, 0);
    let reread = aws2.call_stats();
    for action in ["RunInstances", "CreateVpc", "CreateLoadBalancer"] {
        assert!(
            !reread.actions.contains_key(action),
            "the redeploy adopts, it sends no {action}"
        );
    }
    let re_calls = reread.total() - connected.total();
    let re_describes = reread.describes() - connected.describes();
    let re_instances = reread.actions.get("DescribeInstances").copied().unwrap_or(0)
        - connected.actions.get("DescribeInstances").copied().unwrap_or(0);

    let (aws3, provider3) = connect();
    let connected = aws3.call_stats();

    let t1 = Instant::now();
    rt.block_on(deploy::teardown(
        &hke::ops::target::Target::resolve(hke::model::types::Cloud::Aws, &cluster, None, &Default::default(), &env)
            .expect("target"),
        TeardownOptions {
            dir: out,
            retry: RetryPolicy::default(),
            parallelism,
            cancel: Default::default(),
        },
        sink,
        Some(provider3),
    ))
    .expect("teardown");
    let teardown = t1.elapsed();
    let left = rt.block_on(provider.list(&cluster)).expect("list");
    assert!(
        left.is_empty(),
        "teardown left {:?}",
        left.iter().take(5).collect::<Vec<_>>()
    );
    let after = aws3.call_stats();
    let instance_calls =
        |s: &hke_provider_aws::pace::CallStats| s.actions.get("DescribeInstances").copied().unwrap_or(0);
    println!(
        "deploy to moto (AWS), 3 masters + {nodes} nodes in pools of {pool}, DescribeInstances {}: {} plan resources, parallelism {parallelism}\n  \
         wall {:.2}s (engine; whole command {:.2}s); lower bound of the calls under EC2's and ELBv2's buckets {:.2}s \
         (slowest buckets: {})\n  \
         API calls per node: {:.2} (mutating {:.2}, describes {:.2}, of which DescribeInstances {:.2}); {calls} calls in all\n  \
         by action: {}\n  \
         throttled answers: 0 (moto does not throttle); calls the pacer held back: {held} ({:.1}s in all)\n  \
         redeploy with the state lost (all adopted) {:.2}s: {re_calls} calls, per node {:.2} (describes {:.2}, DescribeInstances {:.2})\n  \
         teardown {:.2}s ({} more calls, per node {:.2}; DescribeInstances {:.2} per node); peak memory {:.1} MiB (hke; moto {:.0} MiB)",
        if batch { "batched" } else { "one call per instance" },
        plan.resources.len(),
        wall.as_secs_f64(),
        command.as_secs_f64(),
        bound.as_secs_f64(),
        if busiest.is_empty() { "none over its burst".to_string() } else { busiest.join(", ") },
        per_node(calls),
        per_node(calls - describes),
        per_node(describes),
        per_node(instance_calls(&stats) - instance_calls(&before)),
        by_action.iter().map(|(a, n)| format!("{a} {n}")).collect::<Vec<_>>().join(", "),
        held_for.as_secs_f64(),
        redeploy.as_secs_f64(),
        per_node(re_calls),
        per_node(re_describes),
        per_node(re_instances),
        teardown.as_secs_f64(),
        after.total() - connected.total(),
        per_node(after.total() - connected.total()),
        per_node(instance_calls(&after) - instance_calls(&connected)),
        peak_rss_mib(),
        moto.rss_mib(),
    );
    let _guard = rt.enter();
    drop(moto);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u32>().ok())
    };
    let bench = args.iter().any(|a| a == "--bench");
    let nodes = value("--nodes").unwrap_or(if bench { 1000 } else { 10 });
    let pool = value("--pool").unwrap_or(if bench { 100 } else { 10 });
    run(nodes, pool, !args.iter().any(|a| a == "--unbatched"));
}
