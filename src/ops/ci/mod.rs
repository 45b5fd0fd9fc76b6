//! `hke ci run`: an ephemeral cluster for one CI job. A unique name; deploy;
//! wait for the nodes (Windows with its own, longer timeout); run the job's
//! command with `KUBECONFIG` set; collect every node's console; tear down.
//!
//! Teardown is decided before the first create call and runs whatever
//! happens after it: the command fails, the run times out, or hke receives
//! SIGINT or SIGTERM (the first signal stops the current phase; later ones
//! only say that teardown is still running). `junit_runner.xml` and
//! `metadata.json` are rewritten after every phase, so a job killed outright
//! still leaves what happened so far.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::context::{now_rfc3339, Env};
use crate::engine::{EventSink, RetryPolicy};
use crate::model::load::SetArg;
use crate::model::types::OsType;
use crate::ops::deploy::{self, TeardownOptions};
pub use crate::ops::junit::{junit_suite, xml_escape, Phase, PhaseResult};
use crate::ops::target::{provider_for, Target};
use crate::ops::workspace::Workspace;

/// Exit codes of a run whose command did not decide it.
pub mod exit {
    pub const DEPLOY_FAILED: i32 = 10;
    pub const NOT_READY: i32 = 11;
    pub const TIMED_OUT: i32 = 12;
    pub const TEARDOWN_FAILED: i32 = 13;
    /// `--check` found a step that failed; the command did not run.
    pub const CHECK_FAILED: i32 = 14;
    pub const SIGINT: i32 = 130;
    pub const SIGTERM: i32 = 143;
}

pub struct Options {
    pub text: String,
    pub sets: Vec<SetArg>,
    /// The cluster name's start (default: the model's dnsPrefix).
    pub name_prefix: Option<String>,
    pub ttl: String,
    /// Deploy, wait and test together must end within this.
    pub timeout: Duration,
    pub ready_timeout: Duration,
    pub windows_ready_timeout: Duration,
    /// Proceed once this many Windows nodes are Ready (default: all).
    pub min_windows_nodes: Option<u32>,
    pub artifacts: PathBuf,
    pub keep_on_failure: bool,
    pub command: Vec<String>,
    pub kubectl: String,
    /// The command line's say in the cloud target.
    pub flags: crate::ops::target::Flags,
    pub parallelism: usize,
    /// How often to ask the cluster for its nodes.
    pub poll: Duration,
    /// Send the command's standard output to stderr (with `--output json`,
    /// hke's stdout carries only its JSON result).
    pub command_stdout_to_stderr: bool,
    /// `--check`: run `hke check` before the command (steps to skip, and why).
    pub check: Option<(std::collections::BTreeSet<String>, String)>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub cluster: String,
    pub cloud: String,
    pub region: String,
    pub kubernetes_version: String,
    pub containerd_version: String,
    pub windows_versions: Vec<String>,
    pub nodes: BTreeMap<String, u64>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub phases: Vec<Phase>,
    pub exit_code: Option<i32>,
    /// Where the cluster's files are when it was kept (`--keep-on-failure`).
    pub kept: Option<String>,
}

pub struct Outcome {
    pub exit_code: i32,
    pub message: String,
    pub metadata: Metadata,
}

/// A unique cluster name: the prefix and 6 random hex digits, at most 45
/// characters (the dnsPrefix limit).
pub fn unique_name(prefix: &str, rng: &mut impl rand::RngCore) -> String {
    let suffix = format!("{:06x}", rng.next_u32() & 0xff_ffff);
    let mut p: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    p.truncate(45 - 7);
    let p = p.trim_matches('-');
    let p = if p.starts_with(|c: char| c.is_ascii_alphabetic()) {
        p.to_string()
    } else {
        format!("ci{p}")
    };
    format!("{}-{suffix}", p.trim_end_matches('-'))
}

/// JUnit XML with one test case per phase.
pub fn junit(m: &Metadata) -> String {
    junit_suite(
        "hke ci run",
        &format!("hke ci run {}", m.cluster),
        "hke.ci",
        &m.started_at,
        &[
            ("cluster", m.cluster.as_str()),
            ("cloud", m.cloud.as_str()),
            ("region", m.region.as_str()),
            ("kubernetesVersion", m.kubernetes_version.as_str()),
        ],
        &m.phases,
    )
}

/// Signals: the first stops the current phase, the rest are acknowledged.
struct Signals {
    received: Arc<AtomicI32>,
    notify: Arc<tokio::sync::Notify>,
}

impl Signals {
    fn install(stop: Arc<AtomicBool>) -> Signals {
        let received = Arc::new(AtomicI32::new(0));
        let notify = Arc::new(tokio::sync::Notify::new());
        let (r, s, n) = (received.clone(), stop, notify.clone());
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                return;
            };
            loop {
                let sig = tokio::select! {
                    _ = int.recv() => 2,
                    _ = term.recv() => 15,
                };
                if r.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    s.store(true, Ordering::SeqCst);
                    n.notify_waiters();
                    crate::ui::say(&format!(
                        "received {}: stopping; the cluster is still collected and torn down",
                        if sig == 2 { "SIGINT" } else { "SIGTERM" }
                    ));
                } else {
                    crate::ui::say("teardown is still running; it is not skipped");
                }
            }
        });
        Signals { received, notify }
    }

    fn received(&self) -> i32 {
        self.received.load(Ordering::SeqCst)
    }
}

struct Run {
    artifacts: PathBuf,
    meta: Metadata,
}

impl Run {
    fn record(&mut self, name: &str, t0: Instant, result: PhaseResult, message: Option<String>) {
        if let Some(m) = &message {
            let verb = match result {
                PhaseResult::Passed => "passed",
                PhaseResult::Failed => "FAILED",
                PhaseResult::Skipped => "skipped",
            };
            crate::ui::say(&format!("ci: {name} {verb}: {m}"));
        }
        self.meta.phases.push(Phase {
            name: name.to_string(),
            seconds: t0.elapsed().as_secs_f64(),
            result,
            message,
        });
        self.write();
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.record(name, Instant::now(), PhaseResult::Skipped, Some(why.to_string()));
    }

    fn failed(&self, name: &str) -> bool {
        self.meta
            .phases
            .iter()
            .any(|p| p.name == name && p.result == PhaseResult::Failed)
    }

    fn write(&self) {
        let _ = std::fs::create_dir_all(&self.artifacts);
        let _ = std::fs::write(self.artifacts.join("junit_runner.xml"), junit(&self.meta));
        let _ = std::fs::write(
            self.artifacts.join("metadata.json"),
            serde_json::to_vec_pretty(&self.meta).unwrap_or_default(),
        );
    }
}

#[derive(Debug, Default)]
struct Readiness {
    linux_ready: u32,
    windows_ready: u32,
    not_ready: Vec<String>,
}

/// Ask kubectl for the nodes and count the Ready ones per OS.
async fn readiness(kubectl: &str, kubeconfig: &Path) -> Result<Readiness, String> {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["get", "nodes", "-o", "json", "--request-timeout=30s"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| format!("{kubectl} get nodes did not answer in 60 s"))?
    .map_err(|e| format!("cannot run {kubectl}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{kubectl} get nodes: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{kubectl} get nodes -o json: {e}"))?;
    let mut r = Readiness::default();
    for item in v["items"].as_array().cloned().unwrap_or_default() {
        let name = item["metadata"]["name"].as_str().unwrap_or("?").to_string();
        let windows = item["metadata"]["labels"]["kubernetes.io/os"] == "windows";
        let cond = item["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned());
        let ready = cond.as_ref().is_some_and(|c| c["status"] == "True");
        match (ready, windows) {
            (true, true) => r.windows_ready += 1,
            (true, false) => r.linux_ready += 1,
            (false, _) => r.not_ready.push(format!(
                "{name} ({})",
                cond.and_then(|c| c["reason"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "no Ready condition".into())
            )),
        }
    }
    Ok(r)
}

/// Kill a process group: TERM, then KILL after a grace period.
async fn kill_group(child: &mut tokio::process::Child, grace: Duration) -> Option<std::process::ExitStatus> {
    let Some(pid) = child.id() else {
        return child.wait().await.ok();
    };
    let group = format!("-{pid}");
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", "--", &group])
        .status()
        .await;
    if let Ok(s) = tokio::time::timeout(grace, child.wait()).await {
        return s.ok();
    }
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", "--", &group])
        .status()
        .await;
    child.wait().await.ok()
}

fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(1))
}

/// Run the whole job. Never returns before teardown has run (or was skipped
/// by `--keep-on-failure`).
pub async fn run(opts: Options, env: &Env, events: EventSink) -> Result<Outcome, deploy::DeployError> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + opts.timeout;
    // Validate first: a bad model fails before anything exists.
    let probe =
        crate::cluster::build(&opts.text, &opts.sets, &mut rand::rngs::OsRng).map_err(deploy::DeployError::Rejected)?;
    let prefix = opts
        .name_prefix
        .clone()
        .unwrap_or_else(|| probe.cluster.name.to_string());
    let name = unique_name(&prefix, &mut rand::rngs::OsRng);
    let mut sets = opts.sets.clone();
    sets.push(
        format!("properties.masterProfile.dnsPrefix={name}")
            .parse()
            .map_err(deploy::DeployError::Usage)?,
    );
    // The cluster stage once more with the unique name; the workspace
    // issues its PKI and plans it once, at deploy.
    let built =
        crate::cluster::build(&opts.text, &sets, &mut rand::rngs::OsRng).map_err(deploy::DeployError::Rejected)?;
    let cluster = built.cluster.clone();
    let c = &cluster;
    let target = Target::of_cluster(c, &opts.flags, env).map_err(deploy::DeployError::Usage)?;
    let linux_nodes: u32 = c.masters.count
        + c.pools
            .iter()
            .filter(|p| p.os == OsType::Linux)
            .map(|p| p.count)
            .sum::<u32>();
    let windows_nodes: u32 = c
        .pools
        .iter()
        .filter(|p| p.os == OsType::Windows)
        .map(|p| p.count)
        .sum();
    let min_windows = opts.min_windows_nodes.unwrap_or(windows_nodes).min(windows_nodes);
    let mut nodes = BTreeMap::new();
    nodes.insert("masters".to_string(), u64::from(c.masters.count));
    nodes.insert("linux".to_string(), u64::from(linux_nodes - c.masters.count));
    nodes.insert("windows".to_string(), u64::from(windows_nodes));
    let mut run = Run {
        artifacts: opts.artifacts.clone(),
        meta: Metadata {
            cluster: name.clone(),
            cloud: c.provider.cloud.to_string(),
            region: target.region.clone().unwrap_or_else(|| c.provider.location.clone()),
            kubernetes_version: c.kubernetes.to_string(),
            containerd_version: c.containerd_version.clone(),
            windows_versions: c.windows_versions().iter().map(|w| w.to_string()).collect(),
            nodes,
            started_at: now_rfc3339(),
            finished_at: None,
            phases: Vec::new(),
            exit_code: None,
            kept: None,
        },
    };
    run.write();
    // The cluster's files (secrets included) live outside the artifacts.
    let scratch = tempfile::Builder::new()
        .prefix(&format!("hke-ci-{name}-"))
        .tempdir()
        .map_err(|e| deploy::DeployError::Io(std::env::temp_dir(), e))?;
    let out_dir = scratch.path().join("cluster");
    let stop = Arc::new(AtomicBool::new(false));
    let signals = Signals::install(stop.clone());
    // The run's deadline stops deploy, wait and test like a signal would.
    let timed_out = Arc::new(AtomicBool::new(false));
    {
        let (stop, timed_out, notify) = (stop.clone(), timed_out.clone(), signals.notify.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            timed_out.store(true, Ordering::SeqCst);
            stop.store(true, Ordering::SeqCst);
            notify.notify_waiters();
        });
    }
    crate::ui::say(&format!(
        "ci: cluster {name} on {} ({} Linux, {} Windows node(s)); it is torn down whatever happens",
        c.provider.cloud, linux_nodes, windows_nodes
    ));
    let interrupted = |signals: &Signals, timed_out: &AtomicBool| -> Option<String> {
        match signals.received() {
            2 => Some("interrupted by SIGINT".into()),
            15 => Some("interrupted by SIGTERM".into()),
            _ if timed_out.load(Ordering::SeqCst) => {
                Some(format!("timed out after {} s (--timeout)", opts.timeout.as_secs()))
            }
            _ => None,
        }
    };

    // 1. Deploy.
    let t0 = Instant::now();
    let ws = Workspace::generate(built, out_dir.clone(), &events);
    let deployed = match &ws {
        Ok(ws) => {
            deploy::deploy(
                ws,
                &target,
                deploy::Options {
                    parallelism: opts.parallelism,
                    ttl: Some(opts.ttl.clone()),
                    retry: RetryPolicy::default(),
                    durability: crate::engine::state::Durability::GroupCommit,
                    cancel: stop.clone(),
                },
                events.clone(),
                None,
            )
            .await
        }
        Err(e) => Err(deploy::DeployError::Usage(e.to_string())),
    };
    let kubeconfig = match deployed {
        Ok(d) => {
            run.record("deploy", t0, PhaseResult::Passed, None);
            let k = if d.kubeconfig.is_absolute() {
                d.kubeconfig
            } else {
                std::env::current_dir().unwrap_or_default().join(d.kubeconfig)
            };
            Some(k)
        }
        Err(e) => {
            let why = interrupted(&signals, &timed_out).unwrap_or_else(|| e.to_string());
            run.record("deploy", t0, PhaseResult::Failed, Some(why));
            None
        }
    };

    // 2. Wait until the nodes are Ready.
    let mut ready = false;
    match &kubeconfig {
        None => run.skip("wait-ready", "deploy did not finish"),
        Some(k) => {
            let t0 = Instant::now();
            let linux_deadline = Instant::now() + opts.ready_timeout;
            let windows_deadline = Instant::now() + opts.windows_ready_timeout.max(opts.ready_timeout);
            let mut last: Result<Readiness, String> = Err("not asked yet".into());
            let failure = loop {
                if let Some(why) = interrupted(&signals, &timed_out) {
                    break Some(why);
                }
                last = readiness(&opts.kubectl, k).await;
                let (linux_ok, windows_ok) = match &last {
                    Ok(r) => (r.linux_ready >= linux_nodes, r.windows_ready >= min_windows),
                    Err(_) => (false, false),
                };
                if linux_ok && windows_ok {
                    break None;
                }
                let now = Instant::now();
                if (!linux_ok && now >= linux_deadline) || now >= windows_deadline {
                    let detail = match &last {
                        Ok(r) => format!(
                            "{}/{linux_nodes} Linux and {}/{windows_nodes} Windows node(s) Ready (need {linux_nodes} and {min_windows}); not ready: {}",
                            r.linux_ready,
                            r.windows_ready,
                            if r.not_ready.is_empty() { "none registered".to_string() } else { r.not_ready.join(", ") }
                        ),
                        Err(e) => e.clone(),
                    };
                    let which = if linux_ok { "Windows" } else { "Linux" };
                    break Some(format!("{which} nodes not Ready in time: {detail}"));
                }
                tokio::select! {
                    _ = tokio::time::sleep(opts.poll) => {}
                    _ = signals.notify.notified() => {}
                }
            };
            match failure {
                None => {
                    ready = true;
                    let note = match &last {
                        Ok(r) if r.windows_ready < windows_nodes => Some(format!(
                            "proceeding with {}/{windows_nodes} Windows node(s) (--min-windows-nodes {min_windows})",
                            r.windows_ready
                        )),
                        _ => None,
                    };
                    run.record("wait-ready", t0, PhaseResult::Passed, note);
                }
                Some(why) => run.record("wait-ready", t0, PhaseResult::Failed, Some(why)),
            }
        }
    }

    // 3. `--check`: the Windows guide's checklist before the command.
    if let Some((skip, skip_reason)) = &opts.check {
        match (&kubeconfig, ready) {
            (Some(k), true) => {
                let t0 = Instant::now();
                let check_opts = crate::ops::check::Options {
                    kubectl: opts.kubectl.clone(),
                    kubeconfig: k.clone(),
                    expected: crate::ops::check::Expected::of(c),
                    skip: skip.clone(),
                    skip_reason: skip_reason.clone(),
                    ready_timeout: opts.windows_ready_timeout.min(Duration::from_secs(1800)),
                    poll: opts.poll,
                    namespace: crate::ops::check::namespace(&mut rand::rngs::OsRng),
                    keep: false,
                };
                let report = tokio::select! {
                    r = crate::ops::check::run(&check_opts) => Some(r),
                    _ = signals.notify.notified() => None,
                };
                match report {
                    Some(report) => {
                        let _ = std::fs::write(
                            opts.artifacts.join("junit_check.xml"),
                            junit_suite(
                                "hke check",
                                &format!("hke check {name}"),
                                "hke.check",
                                &now_rfc3339(),
                                &[("cluster", name.as_str())],
                                &report.phases(),
                            ),
                        );
                        let _ = std::fs::write(
                            opts.artifacts.join("check.json"),
                            serde_json::to_vec_pretty(&report).unwrap_or_default(),
                        );
                        let msg = format!(
                            "{} passed, {} failed, {} skipped (junit_check.xml)",
                            report.passed, report.failed, report.skipped
                        );
                        if report.ok() {
                            run.record("check", t0, PhaseResult::Passed, Some(msg));
                        } else {
                            let failed: Vec<String> = report
                                .steps
                                .iter()
                                .filter(|s| s.result == PhaseResult::Failed)
                                .map(|s| format!("{}: {}", s.name, s.message))
                                .collect();
                            run.record(
                                "check",
                                t0,
                                PhaseResult::Failed,
                                Some(format!("{msg}\n{}", failed.join("\n"))),
                            );
                            ready = false;
                        }
                    }
                    None => {
                        let why = interrupted(&signals, &timed_out).unwrap_or_else(|| "stopped".into());
                        run.record("check", t0, PhaseResult::Failed, Some(why));
                        ready = false;
                    }
                }
            }
            _ => run.skip("check", "the cluster was not ready"),
        }
    }

    // 4. The job's command.
    let mut command_code: Option<i32> = None;
    match (&kubeconfig, ready) {
        (Some(k), true) => {
            let t0 = Instant::now();
            let mut cmd = tokio::process::Command::new(&opts.command[0]);
            cmd.args(&opts.command[1..])
                .env("KUBECONFIG", k)
                .env("HKE_CLUSTER", &name)
                .env("ARTIFACTS", &opts.artifacts)
                .process_group(0)
                .kill_on_drop(true);
            if opts.command_stdout_to_stderr {
                use std::os::fd::AsFd;
                if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
                    cmd.stdout(std::process::Stdio::from(fd));
                }
            }
            match cmd.spawn() {
                Err(e) => run.record(
                    "test",
                    t0,
                    PhaseResult::Failed,
                    Some(format!("cannot start {}: {e}", opts.command[0])),
                ),
                Ok(mut child) => {
                    let status = tokio::select! {
                        s = child.wait() => s.ok(),
                        _ = signals.notify.notified() => None,
                        _ = tokio::time::sleep_until(deadline) => None,
                    };
                    let status = match status {
                        Some(s) => Some(s),
                        None => {
                            kill_group(&mut child, Duration::from_secs(10)).await;
                            None
                        }
                    };
                    match (status, interrupted(&signals, &timed_out)) {
                        (Some(s), _) if s.success() => {
                            command_code = Some(0);
                            run.record("test", t0, PhaseResult::Passed, None);
                        }
                        (Some(s), _) => {
                            let code = exit_code_of(s);
                            command_code = Some(code);
                            run.record(
                                "test",
                                t0,
                                PhaseResult::Failed,
                                Some(format!("{} exited with {code}", opts.command.join(" "))),
                            );
                        }
                        (None, why) => run.record(
                            "test",
                            t0,
                            PhaseResult::Failed,
                            Some(format!(
                                "{}: {} stopped",
                                why.unwrap_or_else(|| "stopped".into()),
                                opts.command.join(" ")
                            )),
                        ),
                    }
                }
            }
        }
        _ if run.failed("check") => run.skip("test", "hke check failed"),
        _ => run.skip("test", "the cluster was not ready"),
    }

    // From here on nothing stops: logs and teardown run to the end.
    let state = crate::engine::state::load(&out_dir).unwrap_or_default();
    let has_machines = state.resources.values().any(|e| {
        matches!(
            e.kind,
            hke_provider_api::Kind::Machine | hke_provider_api::Kind::MachineGroup
        ) && e.id.is_some()
    });

    // 5. Logs.
    if has_machines {
        let t0 = Instant::now();
        let logs = opts.artifacts.join("logs");
        let collected = match provider_for(&target).await {
            Ok(p) => tokio::time::timeout(Duration::from_secs(600), crate::ops::logs::collect(p, &state, &logs))
                .await
                .map_err(|_| "log collection took over 10 minutes".to_string()),
            Err(e) => Err(e.to_string()),
        };
        match collected {
            Ok(got) if got.failed.is_empty() => run.record(
                "collect-logs",
                t0,
                PhaseResult::Passed,
                Some(format!("{} node(s) in {}", got.nodes.len(), logs.display())),
            ),
            Ok(got) => {
                let list: Vec<String> = got.failed.iter().map(|(n, e)| format!("{n}: {e}")).collect();
                run.record("collect-logs", t0, PhaseResult::Failed, Some(list.join("\n")));
            }
            Err(e) => run.record("collect-logs", t0, PhaseResult::Failed, Some(e)),
        }
    } else {
        run.skip("collect-logs", "no machine was created");
    }

    // 6. Teardown.
    let anything_failed = run.meta.phases.iter().any(|p| p.result == PhaseResult::Failed);
    if opts.keep_on_failure && anything_failed {
        let kept = scratch.keep();
        let dir = kept.join("cluster");
        run.meta.kept = Some(dir.display().to_string());
        run.skip(
            "teardown",
            &format!(
                "kept for debugging (--keep-on-failure): hke teardown -o {} --cluster {name} --yes",
                dir.display()
            ),
        );
    } else {
        let t0 = Instant::now();
        let torn = deploy::teardown(
            &target,
            TeardownOptions {
                dir: out_dir.clone(),
                retry: RetryPolicy::default(),
                parallelism: opts.parallelism,
                // Signals do not reach teardown.
                cancel: Arc::new(AtomicBool::new(false)),
            },
            events,
            None,
        )
        .await;
        match torn {
            Ok(_) => run.record("teardown", t0, PhaseResult::Passed, None),
            Err(e) => run.record("teardown", t0, PhaseResult::Failed, Some(e.to_string())),
        }
    }

    let code = match signals.received() {
        2 => exit::SIGINT,
        15 => exit::SIGTERM,
        _ if timed_out.load(Ordering::SeqCst) && !ready => exit::TIMED_OUT,
        _ if run.failed("deploy") => {
            if timed_out.load(Ordering::SeqCst) {
                exit::TIMED_OUT
            } else {
                exit::DEPLOY_FAILED
            }
        }
        _ if run.failed("wait-ready") => exit::NOT_READY,
        _ if run.failed("check") => exit::CHECK_FAILED,
        _ if command_code.is_none() && run.failed("test") && timed_out.load(Ordering::SeqCst) => exit::TIMED_OUT,
        _ if command_code.is_some_and(|c| c != 0) => command_code.unwrap_or(1),
        _ if run.failed("test") => 1,
        _ if run.failed("teardown") => exit::TEARDOWN_FAILED,
        _ => 0,
    };
    run.meta.finished_at = Some(now_rfc3339());
    run.meta.exit_code = Some(code);
    run.write();
    let summary: Vec<String> = run
        .meta
        .phases
        .iter()
        .map(|p| format!("{} {:?} ({:.0}s)", p.name, p.result, p.seconds))
        .collect();
    let message = format!(
        "ci: {} in {:.0}s, exit {code}: {}",
        name,
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    );
    Ok(Outcome {
        exit_code: code,
        message,
        metadata: run.meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn names_are_unique_valid_dns_prefixes() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let a = unique_name("hke-windows-aws", &mut rng);
        let b = unique_name("hke-windows-aws", &mut rng);
        assert_ne!(a, b);
        for n in [
            a,
            unique_name(&"x".repeat(80), &mut rng),
            unique_name("9lives_PR#12", &mut rng),
        ] {
            assert!(n.parse::<crate::model::types::DnsPrefix>().is_ok(), "{n}");
        }
    }

    #[test]
    fn xml_escaping_keeps_text_and_drops_what_xml_cannot_carry() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;\n"
        );
    }
}
