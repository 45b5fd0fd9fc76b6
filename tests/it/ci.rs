//! `hke ci run` on the fake cloud: success, failure, timeout, SIGTERM during
//! deploy and during the command, late Windows nodes, keep-on-failure. After
//! each, the cloud holds nothing of the cluster (unless kept) and
//! junit_runner.xml parses with junitparser (a real consumer's parser).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hke_provider_api::fake::FakeCloud;
use serde_json::Value;

use crate::support::{root, text};

fn kubectl() -> PathBuf {
    root().join("tests/it/fixtures/kubectl")
}

fn ci(dir: &Path, extra: &[&str], command: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hke"));
    c.args(["ci", "run", "-m"])
        .arg(root().join("examples/windows.json"))
        .args(["--set", "properties.providerProfile.name=fake", "--kubectl"])
        .arg(kubectl())
        .args(["--artifacts", "art"])
        .args(extra)
        .arg("--")
        .args(command)
        .current_dir(dir)
        .env("HKE_FAKE_CLOUD", dir.join("cloud"))
        .env("HKE_CI_POLL_MS", "50")
        .env("FAKE_KUBECTL_LINUX", "5")
        .env("FAKE_KUBECTL_WINDOWS", "3")
        .env_remove("ARTIFACTS");
    c
}

/// The phases as junitparser reads them: name → passed/failure/skipped.
fn junit(dir: &Path) -> Vec<(String, String, String)> {
    let v = junit_cases(&dir.join("art/junit_runner.xml"));
    let names: Vec<&str> = v.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["deploy", "wait-ready", "test", "collect-logs", "teardown"]);
    v
}

/// The test cases of a JUnit file as junitparser (a real consumer's
/// parser) reads them: (name, passed/failure/skipped, message).
pub fn junit_cases(file: &Path) -> Vec<(String, String, String)> {
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
out = []
for suite in xml:
    for case in suite:
        kind, msg = "passed", ""
        for r in case.result:
            kind = "failure" if isinstance(r, Failure) else "skipped" if isinstance(r, Skipped) else "other"
            msg = r.message or ""
        out.append([case.name, kind, msg])
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "junitparser (pip install junitparser, as .ci/run does) failed: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn phase<'a>(j: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
    let p = j.iter().find(|(n, _, _)| n == name).expect("phase");
    (p.1.as_str(), p.2.as_str())
}

fn metadata(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("art/metadata.json")).expect("metadata")).expect("json")
}

fn cloud_is_empty(dir: &Path) {
    let left: Vec<String> = FakeCloud::resources_in(&dir.join("cloud"))
        .into_iter()
        .map(|s| format!("{} {}", s.kind, s.name))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn no_secrets_in_artifacts(dir: &Path) {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).expect("dir").flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut files = Vec::new();
    walk(&dir.join("art"), &mut files);
    for f in files {
        let t = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            !t.contains("PRIVATE KEY") && !t.contains("adminPassword"),
            "{}",
            f.display()
        );
    }
}

fn run(c: &mut Command) -> Output {
    c.output().expect("hke runs")
}

#[test]
fn a_passing_command_gets_a_ready_cluster_and_everything_is_torn_down() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = run(&mut ci(
        tmp.path(),
        &["--name-prefix", "pr-1234"],
        &[
            "sh",
            "-c",
            r#"cp "$KUBECONFIG" seen-kubeconfig && echo "$HKE_CLUSTER" > seen-name"#,
        ],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let j = junit(tmp.path());
    assert!(j.iter().all(|(_, k, _)| k == "passed"), "{j:?}");
    let name = std::fs::read_to_string(tmp.path().join("seen-name")).expect("command ran");
    let name = name.trim();
    assert!(
        name.starts_with("pr-1234-") && name.len() == "pr-1234-".len() + 6,
        "{name}"
    );
    let kc: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("seen-kubeconfig")).expect("kc")).expect("json");
    assert!(kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .is_some_and(|s| s.starts_with("https://")));
    let m = metadata(tmp.path());
    assert_eq!(m["cluster"], name);
    assert_eq!(m["cloud"], "fake");
    assert_eq!(m["exitCode"], 0);
    assert_eq!(m["nodes"]["windows"], 3);
    assert_eq!(m["kubernetesVersion"], "1.36.4");
    // Logs of every node (5 Linux + 3 Windows).
    let logs: Vec<_> = std::fs::read_dir(tmp.path().join("art/logs")).expect("logs").collect();
    assert_eq!(logs.len(), 8);
    no_secrets_in_artifacts(tmp.path());
    cloud_is_empty(tmp.path());
}

#[test]
fn a_failing_command_keeps_its_exit_code_and_still_tears_down() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = run(&mut ci(tmp.path(), &[], &["sh", "-c", "exit 7"]));
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let j = junit(tmp.path());
    assert_eq!(phase(&j, "test"), ("failure", "sh -c exit 7 exited with 7"));
    assert_eq!(phase(&j, "teardown").0, "passed");
    cloud_is_empty(tmp.path());
}

#[test]
fn a_command_past_the_timeout_is_stopped_and_the_cluster_torn_down() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t0 = Instant::now();
    let out = run(&mut ci(tmp.path(), &["--timeout", "3s"], &["sleep", "60"]));
    assert_eq!(out.status.code(), Some(12), "{}", text(&out.stderr));
    assert!(t0.elapsed() < Duration::from_secs(40), "{:?}", t0.elapsed());
    let j = junit(tmp.path());
    let (kind, msg) = phase(&j, "test");
    assert_eq!(kind, "failure");
    assert!(msg.contains("timed out"), "{msg}");
    cloud_is_empty(tmp.path());
}

/// Start a run, wait for a line on stderr (or a file), send SIGTERM twice.
fn terminate_when(mut c: Command, stderr_contains: Option<&str>, file: Option<&Path>) -> (Output, Duration) {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id().to_string();
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "never reached the point:\n{seen}"
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(20)) {
            seen.push_str(&line);
            seen.push('\n');
        }
        let hit = match (stderr_contains, file) {
            (Some(s), _) => seen.contains(s),
            (None, Some(f)) => f.exists(),
            (None, None) => true,
        };
        if hit {
            break;
        }
    }
    let signalled = Instant::now();
    for _ in 0..2 {
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        std::thread::sleep(Duration::from_millis(150));
    }
    let status = child.wait().expect("wait");
    let took = signalled.elapsed();
    let _ = reader.join();
    while let Ok(line) = rx.try_recv() {
        seen.push_str(&line);
        seen.push('\n');
    }
    (
        Output {
            status,
            stdout: Vec::new(),
            stderr: seen.into_bytes(),
        },
        took,
    )
}

#[test]
fn sigterm_during_deploy_still_tears_down() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut c = ci(tmp.path(), &[], &["true"]);
    // Slow enough that the second signal arrives while tearing down.
    c.env("HKE_FAKE_MACHINE_LATENCY_MS", "600")
        .env("HKE_FAKE_LATENCY_MS", "150");
    let (out, _) = terminate_when(c, Some("created machine"), None);
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("teardown is still running"),
        "a second signal is acknowledged:\n{}",
        text(&out.stderr)
    );
    let j = junit(tmp.path());
    assert_eq!(phase(&j, "deploy"), ("failure", "interrupted by SIGTERM"));
    assert_eq!(phase(&j, "test").0, "skipped");
    assert_eq!(
        phase(&j, "collect-logs").0,
        "passed",
        "machines existed: their logs are kept"
    );
    assert_eq!(phase(&j, "teardown").0, "passed");
    cloud_is_empty(tmp.path());
}

#[test]
fn sigterm_during_the_command_stops_it_and_tears_down() {
    let tmp = tempfile::tempdir().expect("tmp");
    let started = tmp.path().join("started");
    let c = ci(tmp.path(), &[], &["sh", "-c", "touch started; sleep 60"]);
    let (out, took) = terminate_when(c, None, Some(&started));
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(30), "the command was stopped ({took:?})");
    let j = junit(tmp.path());
    let (kind, msg) = phase(&j, "test");
    assert_eq!(kind, "failure");
    assert!(msg.contains("SIGTERM"), "{msg}");
    assert_eq!(phase(&j, "teardown").0, "passed");
    cloud_is_empty(tmp.path());
}

#[test]
fn late_windows_nodes_fail_the_wait_unless_fewer_are_enough() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut c = ci(
        tmp.path(),
        &["--ready-timeout", "1s", "--windows-ready-timeout", "2s"],
        &["true"],
    );
    c.env("FAKE_KUBECTL_WINDOWS_READY", "false");
    let out = run(&mut c);
    assert_eq!(out.status.code(), Some(11), "{}", text(&out.stderr));
    let j = junit(tmp.path());
    let (kind, msg) = phase(&j, "wait-ready");
    assert_eq!(kind, "failure");
    assert!(
        msg.contains("Windows nodes not Ready") && msg.contains("0/3 Windows"),
        "{msg}"
    );
    assert_eq!(phase(&j, "test").0, "skipped");
    cloud_is_empty(tmp.path());

    let tmp = tempfile::tempdir().expect("tmp");
    let mut c = ci(tmp.path(), &["--min-windows-nodes", "0"], &["true"]);
    c.env("FAKE_KUBECTL_WINDOWS_READY", "false");
    let out = run(&mut c);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    cloud_is_empty(tmp.path());
}

#[test]
fn keep_on_failure_keeps_the_cluster_and_says_how_to_remove_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = run(&mut ci(tmp.path(), &["--keep-on-failure"], &["false"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let j = junit(tmp.path());
    let (kind, msg) = phase(&j, "teardown");
    assert_eq!(kind, "skipped");
    assert!(msg.contains("hke teardown -o"), "{msg}");
    let m = metadata(tmp.path());
    let kept = PathBuf::from(m["kept"].as_str().expect("kept dir"));
    assert!(!FakeCloud::resources_in(&tmp.path().join("cloud")).is_empty());
    let td = Command::new(env!("CARGO_BIN_EXE_hke"))
        .args([
            "teardown",
            "--yes",
            "--cluster",
            m["cluster"].as_str().expect("name"),
            "-o",
        ])
        .arg(&kept)
        .env("HKE_FAKE_CLOUD", tmp.path().join("cloud"))
        .output()
        .expect("teardown");
    assert!(td.status.success(), "{}", text(&td.stderr));
    cloud_is_empty(tmp.path());
    let _ = std::fs::remove_dir_all(kept.parent().expect("scratch"));
}

#[test]
fn with_json_output_stdout_is_one_json_document_even_when_the_command_prints() {
    let tmp = tempfile::tempdir().expect("tmp");
    let c = ci(tmp.path(), &[], &["sh", "-c", "echo hello from the job"]);
    // The global flag goes before the verb.
    let args: Vec<std::ffi::OsString> = c.get_args().map(|a| a.to_os_string()).collect();
    let mut j = Command::new(env!("CARGO_BIN_EXE_hke"));
    j.arg("--output").arg("json").args(args).current_dir(tmp.path());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => j.env(k, v),
            None => j.env_remove(k),
        };
    }
    let out = j.output().expect("hke runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", text(&out.stdout)));
    assert_eq!(doc["exitCode"], 0);
    assert!(text(&out.stderr).contains("hello from the job"));
}
