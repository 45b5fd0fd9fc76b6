use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::{runtime, Failure};
use crate::context::Env;
use crate::ops::check::{self, Options, DATA_PLANE_STEPS, STEPS};
use crate::ops::janitor::parse_duration;
use crate::ui::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: super::ClusterDirArgs,
    /// The kubeconfig to use (default: the cluster's, in its directory).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubectl to run.
    #[arg(long, default_value = "kubectl", value_name = "PATH")]
    pub kubectl: String,
    /// Skip the steps that need a data plane (reach, dns, outbound,
    /// pod-to-pod), e.g. on a simulated cluster; they still print the calls
    /// they would make.
    #[arg(long)]
    pub api_only: bool,
    /// Skip a step: nodes, runtimeclasses, webserver, client, service,
    /// reach, dns, outbound, pod-to-pod, cleanup (repeatable).
    #[arg(long, value_name = "STEP", value_parser = parse_step)]
    pub skip: Vec<String>,
    /// How long the test pods may take to be Ready (Windows images are large).
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub ready_timeout: Duration,
    /// Write the results as JUnit XML to this file too.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Keep the check's namespace (and its pods) afterwards.
    #[arg(long)]
    pub keep: bool,
}

pub fn parse_step(s: &str) -> Result<String, String> {
    if STEPS.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!("unknown step {s:?}; the steps are {}", STEPS.join(", ")))
    }
}

/// The skip set and its reason, from `--api-only` and `--skip`.
pub fn skips(api_only: bool, skip: &[String]) -> (BTreeSet<String>, String) {
    let mut set: BTreeSet<String> = skip.iter().cloned().collect();
    let reason = if api_only {
        set.extend(DATA_PLANE_STEPS.iter().map(|s| s.to_string()));
        "needs a data plane (--api-only)".to_string()
    } else {
        "--skip".to_string()
    };
    (set, reason)
}

pub fn run(a: Args, format: Format, env: &Env) -> Result<(), Failure> {
    let ws = a.dir.load(format)?;
    let kubeconfig = a.kubeconfig.clone().unwrap_or_else(|| ws.kubeconfig());
    if !kubeconfig.exists() {
        return Err(Failure::Usage(format!(
            "no kubeconfig at {}; deploy the cluster first, or pass --kubeconfig",
            kubeconfig.display()
        )));
    }
    let (skip, skip_reason) = skips(a.api_only, &a.skip);
    let poll = env
        .get("HKE_CHECK_POLL_MS")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(5));
    let opts = Options {
        kubectl: a.kubectl.clone(),
        kubeconfig,
        expected: check::Expected::of(ws.cluster()),
        skip,
        skip_reason,
        ready_timeout: a.ready_timeout,
        poll,
        namespace: check::namespace(&mut rand::rngs::OsRng),
        keep: a.keep,
    };
    let started = crate::context::now_rfc3339();
    let rt = runtime()?;
    let report = rt.block_on(check::run(&opts));
    if let Some(path) = &a.junit {
        let xml = crate::ops::ci::junit_suite(
            "hke check",
            &format!("hke check {}", a.dir.cluster),
            "hke.check",
            &started,
            &[("cluster", a.dir.cluster.as_str())],
            &report.phases(),
        );
        std::fs::write(path, xml.as_bytes())
            .map_err(|e| Failure::Other(anyhow::anyhow!("cannot write {}: {e}", path.display())))?;
    }
    match format {
        Format::Json => ui::stdout(&serde_json::to_string_pretty(&report).unwrap_or_default()),
        Format::Text => ui::say(&format!(
            "check {}: {} passed, {} failed, {} skipped",
            a.dir.cluster, report.passed, report.failed, report.skipped
        )),
    }
    if report.ok() {
        Ok(())
    } else {
        Err(Failure::Exit(
            1,
            format!("check {}: {} step(s) failed", a.dir.cluster, report.failed),
        ))
    }
}
