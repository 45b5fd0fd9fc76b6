//! The engine against the fake cloud: schedule quality, retries, crashes at
//! every call, teardown without state, the lock, and event output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hke::context::Env;
use hke::engine::{Event, EventSink, RetryPolicy};
use hke::ops::deploy::{self, Options};
use hke_provider_api::fake::{FakeCloud, FakeConfig};
use hke_provider_api::Kind;

use crate::support::{example, root, text};

const FAKE: &str = "properties.providerProfile.name=fake";

fn hke_env(cwd: &Path, cloud: &Path, extra: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hke"));
    cmd.args(args)
        .current_dir(cwd)
        .env("HKE_FAKE_CLOUD", cloud)
        .env("HKE_FAKE_LATENCY_MS", "0")
        .stdin(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().expect("hke runs")
}

fn deploy_args(model: &str) -> Vec<String> {
    vec![
        "deploy".into(),
        "-m".into(),
        model.into(),
        "--set".into(),
        FAKE.into(),
        "-o".into(),
        "out".into(),
    ]
}

fn run(cwd: &Path, cloud: &Path, extra: &[(&str, String)], args: &[String]) -> Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    hke_env(cwd, cloud, extra, &a)
}

fn teardown_args() -> Vec<String> {
    ["teardown", "--cluster", "kubernetes-windows", "-o", "out", "--yes"]
        .map(String::from)
        .to_vec()
}

fn example_path() -> String {
    root().join("examples/windows.json").to_string_lossy().into_owned()
}

/// (kind, name) of everything in the fake cloud, failing on duplicates.
fn inventory(cloud: &Path) -> BTreeSet<(Kind, String)> {
    let mut seen = BTreeSet::new();
    for r in FakeCloud::resources_in(cloud) {
        assert_eq!(
            r.tags.get("hke.io/cluster").map(String::as_str),
            Some("kubernetes-windows"),
            "{r:?}"
        );
        assert!(r.tags.contains_key("hke.io/created"), "{r:?}");
        assert!(seen.insert((r.kind, r.name.clone())), "duplicate {} {}", r.kind, r.name);
    }
    seen
}

fn planned() -> BTreeSet<(Kind, String)> {
    let sets = vec![FAKE.parse().expect("set")];
    let p = hke::ops::generate::prepare(
        &example("windows.json"),
        &sets,
        &mut crate::support::rng(1),
        crate::support::now(),
    )
    .expect("valid");
    hke::plan::plan(&p.cluster)
        .expect("plan")
        .resources
        .values()
        .map(|r| (r.spec.kind(), r.name.clone()))
        .collect()
}

#[test]
fn a_crash_at_every_call_then_a_rerun_completes_without_duplicates() {
    let want = planned();
    // Count the calls of an undisturbed deploy.
    let tmp = tempfile::tempdir().expect("tmp");
    let cloud = tmp.path().join("cloud");
    let ok = run(tmp.path(), &cloud, &[], &deploy_args(&example_path()));
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let calls = FakeCloud::calls_in(&cloud).len() as u64;
    assert_eq!(calls, want.len() as u64, "one create per resource");

    for n in 1..=calls {
        let tmp = tempfile::tempdir().expect("tmp");
        let cloud = tmp.path().join("cloud");
        let crashed = run(
            tmp.path(),
            &cloud,
            &[("HKE_FAKE_CRASH_AT", n.to_string())],
            &deploy_args(&example_path()),
        );
        assert!(!crashed.status.success(), "call {n}: the injected crash happened");
        if n % 3 == 0 {
            // Teardown straight after the crash leaves nothing behind.
            let down = run(tmp.path(), &cloud, &[], &teardown_args());
            assert!(down.status.success(), "call {n}: {}", text(&down.stderr));
            assert!(
                FakeCloud::resources_in(&cloud).is_empty(),
                "call {n}: teardown after a crash left {:?}",
                inventory(&cloud)
            );
            continue;
        }
        let again = run(tmp.path(), &cloud, &[], &deploy_args(&example_path()));
        assert!(
            again.status.success(),
            "call {n}: re-run failed: {}",
            text(&again.stderr)
        );
        assert_eq!(
            inventory(&cloud),
            want,
            "call {n}: the re-run ends complete, with nothing twice"
        );
        let down = run(tmp.path(), &cloud, &[], &teardown_args());
        assert!(down.status.success(), "call {n}: {}", text(&down.stderr));
        assert!(FakeCloud::resources_in(&cloud).is_empty(), "call {n}");
    }
}

#[test]
fn teardown_without_any_state_sweeps_by_tag() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cloud = tmp.path().join("cloud");
    assert!(run(tmp.path(), &cloud, &[], &deploy_args(&example_path()))
        .status
        .success());
    assert_eq!(inventory(&cloud).len(), planned().len());
    std::fs::remove_dir_all(tmp.path().join("out")).expect("lose the whole output directory");
    let no_cloud = run(
        tmp.path(),
        &cloud,
        &[],
        &[
            "teardown".into(),
            "--cluster".into(),
            "kubernetes-windows".into(),
            "--yes".into(),
        ],
    );
    assert_eq!(
        no_cloud.status.code(),
        Some(2),
        "without apimodel.json the cloud must be named"
    );
    assert!(text(&no_cloud.stderr).contains("--cloud"));
    let down = run(
        tmp.path(),
        &cloud,
        &[],
        &[
            "teardown".into(),
            "--cluster".into(),
            "kubernetes-windows".into(),
            "--cloud".into(),
            "fake".into(),
            "--yes".into(),
        ],
    );
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(FakeCloud::resources_in(&cloud).is_empty());
}

#[test]
fn a_second_deploy_of_the_same_cluster_is_stopped_by_the_lock() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cloud = tmp.path().join("cloud");
    let mut first = Command::new(env!("CARGO_BIN_EXE_hke"));
    first
        .args(deploy_args(&example_path()))
        .current_dir(tmp.path())
        .env("HKE_FAKE_CLOUD", &cloud)
        .env("HKE_FAKE_MACHINE_LATENCY_MS", "1500")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = first.spawn().expect("spawn");
    let lock = tmp.path().join("out/state.lock");
    let t0 = std::time::Instant::now();
    while !lock.exists() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lock.exists(), "the first deploy took the lock");
    let second = run(tmp.path(), &cloud, &[], &deploy_args(&example_path()));
    assert_eq!(second.status.code(), Some(2), "{}", text(&second.stderr));
    let msg = text(&second.stderr);
    assert!(
        msg.contains("locked by `hke deploy`") && msg.contains("delete"),
        "{msg}"
    );
    assert!(child.wait().expect("wait").success(), "the first deploy completes");
    let state: hke::engine::state::State =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/state.json")).expect("state"))
            .expect("valid state");
    assert_eq!(state.resources.len(), planned().len());
    assert!(!lock.exists(), "released");
}

#[test]
fn json_output_is_one_event_per_line_and_nothing_else() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cloud = tmp.path().join("cloud");
    let mut args = vec!["--output".to_string(), "json".to_string()];
    args.extend(deploy_args(&example_path()));
    let out = run(
        tmp.path(),
        &cloud,
        &[
            ("HKE_FAKE_THROTTLE_EVERY", "5".into()),
            ("HKE_FAKE_RETRY_AFTER_MS", "10".into()),
        ],
        &args,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.len(), events.len(), "every line is an event");
    assert!(kinds.contains(&"begin") && kinds.last() == Some(&"end"), "{kinds:?}");
    assert!(kinds.contains(&"retry"), "throttling shows as retry events");
    let end = events.last().expect("end");
    assert_eq!(end["summary"]["created"], planned().len());
}

#[test]
fn a_permanent_failure_names_the_resource_and_a_rerun_continues() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cloud = tmp.path().join("cloud");
    let failed = run(
        tmp.path(),
        &cloud,
        &[("HKE_FAKE_FAIL_AT", "4".into())],
        &deploy_args(&example_path()),
    );
    assert_eq!(failed.status.code(), Some(1));
    let msg = text(&failed.stderr);
    assert!(
        msg.contains("InjectedFailure") && msg.contains("run the same command again"),
        "{msg}"
    );
    let again = run(tmp.path(), &cloud, &[], &deploy_args(&example_path()));
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(inventory(&cloud), planned());
    let up_to_date = run(tmp.path(), &cloud, &[], &deploy_args(&example_path()));
    assert!(
        text(&up_to_date.stderr).contains("up to date"),
        "{}",
        text(&up_to_date.stderr)
    );
}

/// Deploy `text` on the fake cloud into `out`, as `hke deploy` would.
async fn deploy_fake(
    text: &str,
    out: &Path,
    opts: Options,
    sink: EventSink,
    cloud: Arc<FakeCloud>,
) -> Result<deploy::Deployed, deploy::DeployError> {
    let sets = [FAKE.parse().expect("set")];
    let model = deploy::Model {
        text,
        sets: &sets,
        output_dir: Some(out),
    };
    deploy::deploy_model(model, &Default::default(), &Env::default(), opts, sink, Some(cloud)).await
}

fn engine_options(parallelism: usize) -> Options {
    engine_options_with(parallelism, hke::engine::state::Durability::GroupCommit)
}

fn engine_options_with(parallelism: usize, durability: hke::engine::state::Durability) -> Options {
    Options {
        parallelism,
        ttl: Some("3h".into()),
        retry: RetryPolicy {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(200),
            max_attempts: 12,
        },
        durability,
        cancel: Default::default(),
    }
}

#[test]
fn throttled_calls_are_not_retried_before_retry_after() {
    let tmp = tempfile::tempdir().expect("tmp");
    let retry_after = Duration::from_millis(120);
    let cfg = FakeConfig {
        default_latency: Duration::from_millis(2),
        throttle_every: Some(3),
        retry_after,
        ..FakeConfig::default()
    };
    let cloud = Arc::new(FakeCloud::open(tmp.path().join("cloud"), cfg).expect("cloud"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("rt");
    let sink: EventSink = Arc::new(|_: &Event| {});
    rt.block_on(deploy_fake(
        &example("windows.json"),
        &tmp.path().join("out"),
        engine_options(10),
        sink,
        cloud.clone(),
    ))
    .expect("deploy succeeds despite throttling");
    let calls = FakeCloud::calls_in(&tmp.path().join("cloud"));
    let throttled: Vec<_> = calls.iter().filter(|c| c.result == "throttled").collect();
    assert!(throttled.len() >= 5, "throttling happened: {}", throttled.len());
    for t in throttled {
        let next = calls
            .iter()
            .find(|c| c.n > t.n && c.op == t.op && c.name == t.name)
            .unwrap_or_else(|| panic!("call {} was retried", t.n));
        assert!(
            next.at_ms >= t.at_ms + retry_after.as_millis() as u64,
            "{} {} retried after {} ms, sooner than Retry-After",
            t.op,
            t.name,
            next.at_ms - t.at_ms
        );
    }
    assert_eq!(inventory(&tmp.path().join("cloud")), planned());
    let tags: BTreeMap<String, String> = cloud.resources()[0].tags.clone();
    assert_eq!(tags.get("hke.io/ttl").map(String::as_str), Some("3h"));
}

/// The schedule, measured on tokio's paused clock: virtual time advances only
/// through the fake cloud's latencies, so the makespan is independent of how
/// busy the machine running the test is.
fn makespan(parallelism: usize) -> (Duration, Duration) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cfg = FakeConfig {
        default_latency: Duration::from_millis(200),
        read_latency: Duration::from_millis(10),
        ..FakeConfig::default()
    };
    cfg.latency.insert(Kind::Machine, Duration::from_secs(4));
    cfg.latency.insert(Kind::LoadBalancer, Duration::from_secs(1));
    let latency = |k: Kind| cfg.create_latency(k);
    let sets = vec![FAKE.parse().expect("set")];
    let p = hke::ops::generate::prepare(
        &example("windows.json"),
        &sets,
        &mut crate::support::rng(1),
        crate::support::now(),
    )
    .expect("valid");
    let plan = hke::plan::plan(&p.cluster).expect("plan");
    let total: Duration = plan.resources.values().map(|r| latency(r.spec.kind())).sum();
    let bound = plan.critical_path(latency).max(total / parallelism as u32);
    let cloud = Arc::new(FakeCloud::open(tmp.path().join("cloud"), cfg.clone()).expect("cloud"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("rt");
    let sink: EventSink = Arc::new(|_: &Event| {});
    let took = rt.block_on(async {
        let t0 = tokio::time::Instant::now();
        deploy_fake(
            &example("windows.json"),
            &tmp.path().join("out"),
            // Inline journal writes: no thread hand-off during which the
            // paused clock could jump ahead.
            engine_options_with(parallelism, hke::engine::state::Durability::Inline),
            sink,
            cloud,
        )
        .await
        .expect("deploy");
        t0.elapsed()
    });
    (took, bound)
}

#[test]
fn the_schedule_stays_within_1_2_of_the_lower_bound() {
    for parallelism in [1, 2, 3, 10] {
        let (took, bound) = makespan(parallelism);
        let ratio = took.as_secs_f64() / bound.as_secs_f64();
        assert!(
            took >= bound,
            "parallelism {parallelism}: {took:?} beats the physical bound {bound:?}?"
        );
        assert!(
            ratio <= 1.2,
            "parallelism {parallelism}: makespan {took:?} vs bound {bound:?} (ratio {ratio:.3})"
        );
    }
}

#[test]
fn a_terminal_shows_one_progress_bar_per_kind() {
    // `script` (util-linux) runs hke on a real pseudo-terminal.
    let tmp = tempfile::tempdir().expect("tmp");
    let cloud = tmp.path().join("cloud");
    let cmd = format!(
        "{} deploy -m {} --set {FAKE} -o out",
        env!("CARGO_BIN_EXE_hke"),
        example_path()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(tmp.path())
        .env("HKE_FAKE_CLOUD", &cloud)
        .env("HKE_FAKE_LATENCY_MS", "50")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) is installed");
    let screen = text(&out.stdout);
    assert!(out.status.success(), "{screen}");
    for kind in ["machine", "loadBalancer", "lbMember"] {
        assert!(screen.contains(kind), "no {kind} bar in:\n{screen}");
    }
    assert!(
        screen.contains("8/8") && screen.contains("[=="),
        "bars with counts:\n{screen}"
    );
    assert!(screen.contains("deploy: 17 created"), "{screen}");
}

#[test]
fn deploy_says_when_the_model_differs_from_the_existing_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cloud = tmp.path().join("cloud");
    assert!(run(tmp.path(), &cloud, &[], &deploy_args(&example_path()))
        .status
        .success());
    let mut args = deploy_args(&example_path());
    args.extend([
        "--set".to_string(),
        "properties.agentPoolProfiles[0].count=5".to_string(),
    ]);
    let again = run(tmp.path(), &cloud, &[], &args);
    assert!(again.status.success());
    let msg = text(&again.stderr);
    assert!(msg.contains("differs from") && msg.contains("up to date"), "{msg}");
    assert_eq!(
        inventory(&cloud),
        planned(),
        "nothing was changed behind the user's back"
    );
}

#[test]
fn ctrl_c_finishes_the_calls_in_flight_and_a_rerun_continues() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cloud = tmp.path().join("cloud");
    let child = Command::new(env!("CARGO_BIN_EXE_hke"))
        .args(deploy_args(&example_path()))
        .current_dir(tmp.path())
        .env("HKE_FAKE_CLOUD", &cloud)
        .env("HKE_FAKE_LATENCY_MS", "300")
        .env("HKE_FAKE_MACHINE_LATENCY_MS", "3000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Interrupt once some resources exist but before the machines are done.
    let t0 = std::time::Instant::now();
    while FakeCloud::resources_in(&cloud).len() < 3 && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let msg = text(&out.stderr);
    assert!(
        msg.contains("finishing the calls in flight") && msg.contains("run the same command again"),
        "{msg}"
    );
    assert!(!tmp.path().join("out/state.lock").exists(), "the lock is released");
    let partial = inventory(&cloud);
    assert!(
        !partial.is_empty() && partial.len() < planned().len(),
        "stopped part-way: {}",
        partial.len()
    );
    let again = run(tmp.path(), &cloud, &[], &deploy_args(&example_path()));
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(inventory(&cloud), planned());
}
