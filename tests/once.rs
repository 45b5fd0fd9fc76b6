//! Each command prepares its cluster (issues or reads back the PKI) and plans
//! it at most once: the verbs hand the prepared workspace down instead of
//! model text. A test binary of its own, since the counters are per process
//! and the verbs run in this one, one after another.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use clap::Parser;
use hke::cli::{self, Cli};
use hke::context::Env;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run one command in this process; (prepared, planned) while it ran.
fn counted(args: &[&str], env: &Env) -> (usize, usize) {
    let before = (
        hke::ops::generate::PREPARED.load(Ordering::SeqCst),
        hke::plan::PLANNED.load(Ordering::SeqCst),
    );
    let cli = Cli::try_parse_from(std::iter::once("hke").chain(args.iter().copied())).expect("arguments");
    cli::run(cli, env).unwrap_or_else(|f| panic!("hke {}: {f}", args.join(" ")));
    (
        hke::ops::generate::PREPARED.load(Ordering::SeqCst) - before.0,
        hke::plan::PLANNED.load(Ordering::SeqCst) - before.1,
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn each_command_prepares_and_plans_its_cluster_at_most_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = root().join("examples/windows.json");
    let out = tmp.path().join("out");
    let env = Env::from_pairs([
        ("HKE_FAKE_CLOUD".to_string(), s(&tmp.path().join("cloud")).to_string()),
        ("HKE_FAKE_LATENCY_MS".to_string(), "0".to_string()),
        ("HKE_CI_POLL_MS".to_string(), "20".to_string()),
    ]);
    let fake = ["--set", "properties.providerProfile.name=fake"];
    let with = |head: &[&str]| -> Vec<String> { head.iter().chain(fake.iter()).map(|a| a.to_string()).collect() };
    let run = |args: Vec<String>| counted(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env);

    // generate, then deploy into a new directory: one preparation, one plan.
    let gen_dir = tmp.path().join("gen");
    assert_eq!(
        run(with(&["generate", "-m", s(&model), "-o", s(&gen_dir)])),
        (1, 1),
        "generate"
    );
    let deploy = with(&["deploy", "-m", s(&model), "-o", s(&out)]);
    assert_eq!(run(deploy.clone()), (1, 1), "deploy generating its directory");
    // Again: the directory's apimodel.json, read back once (it used to be
    // prepared twice and planned three times).
    assert_eq!(run(deploy), (1, 1), "deploy continuing from its directory");
    let name = std::fs::read_to_string(out.join("cluster.json")).expect("cluster.json");
    let name = serde_json::from_str::<serde_json::Value>(&name).expect("json")["name"]
        .as_str()
        .expect("name")
        .to_string();
    let logs = tmp.path().join("logs");
    assert_eq!(
        run(vec![
            "logs".into(),
            "--cluster".into(),
            name.clone(),
            "-o".into(),
            s(&out).into(),
            "--to".into(),
            s(&logs).into()
        ]),
        (1, 1),
        "logs"
    );
    // Teardown needs neither certificates nor a plan.
    assert_eq!(
        run(vec![
            "teardown".into(),
            "--cluster".into(),
            name,
            "-o".into(),
            s(&out).into(),
            "--yes".into()
        ]),
        (0, 0),
        "teardown"
    );
    // ci run: validate, generate, deploy, wait, test, logs, teardown — one
    // preparation and one plan (it used to be up to four and three).
    let kubectl = root().join("tests/it/fixtures/kubectl");
    let art = tmp.path().join("art");
    let mut ci = vec!["ci".to_string(), "run".into(), "-m".into(), s(&model).into()];
    ci.extend(fake.iter().map(|a| a.to_string()));
    ci.extend(
        [
            "--kubectl",
            s(&kubectl),
            "--artifacts",
            s(&art),
            "--ready-timeout",
            "1s",
            "--windows-ready-timeout",
            "1s",
            "--",
            "true",
        ]
        .iter()
        .map(|a| a.to_string()),
    );
    let ci_args: Vec<&str> = ci.iter().map(String::as_str).collect();
    let before = (
        hke::ops::generate::PREPARED.load(Ordering::SeqCst),
        hke::plan::PLANNED.load(Ordering::SeqCst),
    );
    // The fake kubectl finds no Ready node, so the run fails its wait (exit
    // 11): what is counted is the preparation, not the outcome.
    let cli = Cli::try_parse_from(std::iter::once("hke").chain(ci_args.iter().copied())).expect("arguments");
    let _ = cli::run(cli, &env);
    assert_eq!(
        (
            hke::ops::generate::PREPARED.load(Ordering::SeqCst) - before.0,
            hke::plan::PLANNED.load(Ordering::SeqCst) - before.1,
        ),
        (1, 1),
        "ci run"
    );
    let meta = std::fs::read_to_string(art.join("metadata.json")).expect("metadata.json");
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("json");
    let deploy = meta["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .find(|p| p["name"] == "deploy")
        .expect("a deploy phase");
    assert_eq!(deploy["result"], "passed", "{meta}");
}
