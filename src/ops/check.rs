//! `hke check`: the post-deploy checklist of the Kubernetes Windows guide
//! ("Guide for Running Windows Containers in Kubernetes", and the validation
//! steps sig-windows asks of a new cluster), run against a deployed cluster
//! with kubectl.
//!
//! Steps, in order (each is a JUnit test case):
//! - `nodes`: every planned node registered and Ready, per OS and per
//!   Windows build (`node.kubernetes.io/windows-build`);
//! - `runtimeclasses`: the RuntimeClass of each Windows version exists;
//! - `webserver-<version>`: a win-webserver Deployment per Windows version,
//!   scheduled only by its RuntimeClass (no nodeSelector of its own), Ready,
//!   and every pod on a node of that version's build;
//! - `client`: a Linux pod (busybox) that serves and fetches HTTP;
//! - `service-<version>`: a NodePort Service in front of it, with a ClusterIP,
//!   a node port and the pods as ready endpoints;
//! - data plane (need real nodes; `--api-only` skips them and prints the
//!   exact calls it would make): `reach-<version>` (ClusterIP and NodePort
//!   from the Linux pod), `dns-<version>` (the service's name resolved from
//!   the Windows pod), `outbound-<version>` (HTTPS to the internet from the
//!   Windows pod), `pod-to-pod-<version>` (Windows pod ↔ Linux pod, which
//!   are on different nodes by construction);
//! - `cleanup`: the check's namespace is deleted (also after a failure,
//!   unless `--keep`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::cluster::Cluster;
use crate::model::types::OsType;
use crate::ops::junit::{Phase, PhaseResult};

/// Steps that need a data plane (kubelets, a CNI, kube-proxy, DNS): on a
/// simulated cluster (kwok) they cannot pass.
pub const DATA_PLANE_STEPS: [&str; 4] = ["reach", "dns", "outbound", "pod-to-pod"];

/// Every step name (without the per-version suffix), for `--skip`.
pub const STEPS: [&str; 10] = [
    "nodes",
    "runtimeclasses",
    "webserver",
    "client",
    "service",
    "reach",
    "dns",
    "outbound",
    "pod-to-pod",
    "cleanup",
];

/// The Linux client image: busybox has httpd, wget and nslookup.
pub const CLIENT_IMAGE: &str = "docker.io/library/busybox:1.37.0";
/// Where the outbound step connects (the Windows guide uses an HTTPS site).
pub const OUTBOUND_URL: &str = "https://www.bing.com";

/// What the cluster should have, from its model.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expected {
    pub linux_nodes: u32,
    /// Windows nodes per build (`10.0.20348` → 2).
    pub windows_nodes: BTreeMap<String, u32>,
    pub versions: Vec<WindowsTarget>,
}

/// One Windows version to exercise.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsTarget {
    /// `2022`
    pub version: String,
    /// `10.0.20348`
    pub build: String,
    /// The RuntimeClass hke renders for it (`windows-2022`).
    pub runtime_class: String,
    /// `mcr.microsoft.com/windows/servercore:ltsc2022`
    pub image: String,
}

impl Expected {
    pub fn of(c: &Cluster) -> Expected {
        let t = crate::catalog::versions::table();
        let linux_nodes = c.masters.count
            + c.pools
                .iter()
                .filter(|p| p.os == OsType::Linux)
                .map(|p| p.count)
                .sum::<u32>();
        let mut windows_nodes: BTreeMap<String, u32> = BTreeMap::new();
        for p in c.pools.iter().filter(|p| p.os == OsType::Windows) {
            if let Some(w) = p.windows {
                *windows_nodes.entry(t.windows(w).build.clone()).or_default() += p.count;
            }
        }
        let classes = crate::render::runtime_classes(c);
        let versions = c
            .windows_versions()
            .into_iter()
            .filter_map(|w| {
                let e = t.windows(w);
                let class = classes.iter().find(|k| !k.hyperv && k.build == e.build)?;
                Some(WindowsTarget {
                    version: w.to_string(),
                    build: e.build.clone(),
                    runtime_class: class.name.clone(),
                    image: format!("mcr.microsoft.com/windows/servercore:{}", e.container_tag),
                })
            })
            .collect();
        Expected {
            linux_nodes,
            windows_nodes,
            versions,
        }
    }
}

pub struct Options {
    pub kubectl: String,
    pub kubeconfig: PathBuf,
    pub expected: Expected,
    /// Step names (without version suffix) not to run.
    pub skip: BTreeSet<String>,
    /// Why skipped steps are skipped (`--api-only`, `--skip`).
    pub skip_reason: String,
    /// How long pods may take to be Ready (Windows images are large).
    pub ready_timeout: Duration,
    pub poll: Duration,
    /// The namespace the check works in (created, then deleted).
    pub namespace: String,
    /// Keep the namespace afterwards.
    pub keep: bool,
}

/// One step's result, with the kubectl calls it made (or would make).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    pub result: PhaseResult,
    pub seconds: f64,
    pub message: String,
    pub commands: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub namespace: String,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub steps: Vec<Step>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failed == 0
    }

    /// The steps as phases, for the JUnit writer.
    pub fn phases(&self) -> Vec<Phase> {
        self.steps
            .iter()
            .map(|s| Phase {
                name: s.name.clone(),
                seconds: s.seconds,
                result: s.result,
                message: Some(s.message.clone()).filter(|m| !m.is_empty()),
            })
            .collect()
    }
}

/// A random namespace name for one check.
pub fn namespace(rng: &mut impl rand::RngCore) -> String {
    format!("hke-check-{:06x}", rng.next_u32() & 0xff_ffff)
}

/// Shell-like quoting for printing a command (never executed through a shell).
fn show(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Kubectl<'a> {
    o: &'a Options,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl<'_> {
    fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut v = vec![
            self.o.kubectl.clone(),
            "--kubeconfig".to_string(),
            self.o.kubeconfig.display().to_string(),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    async fn run(&self, step: &mut Vec<String>, args: &[&str], stdin: Option<&str>) -> Out {
        let argv = self.argv(args);
        step.push(show(&argv));
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .kill_on_drop(true);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Out {
                    ok: false,
                    stdout: String::new(),
                    stderr: format!("cannot run {}: {e}", argv[0]),
                }
            }
        };
        let mut child = child;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use tokio::io::AsyncWriteExt;
            let _ = pipe.write_all(text.as_bytes()).await;
            drop(pipe);
        }
        match tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await {
            Err(_) => Out {
                ok: false,
                stdout: String::new(),
                stderr: format!("{} did not answer in 120 s", show(&argv)),
            },
            Ok(Err(e)) => Out {
                ok: false,
                stdout: String::new(),
                stderr: e.to_string(),
            },
            Ok(Ok(out)) => Out {
                ok: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            },
        }
    }

    async fn json(&self, step: &mut Vec<String>, args: &[&str]) -> Result<Value, String> {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["-o", "json", "--request-timeout=30s"]);
        let out = self.run(step, &a, None).await;
        if !out.ok {
            return Err(format!("kubectl {}: {}", args.join(" "), out.stderr));
        }
        serde_json::from_str(&out.stdout).map_err(|e| format!("kubectl {}: {e}", args.join(" ")))
    }

    async fn apply(&self, step: &mut Vec<String>, manifest: &Value) -> Result<(), String> {
        let text = serde_json::to_string(manifest).unwrap_or_default();
        // Server-side apply with strict field validation: an unknown field
        // is an error, not a silent drop.
        let out = self
            .run(
                step,
                &[
                    "apply",
                    "--server-side",
                    "--field-manager=hke-check",
                    "--validate=strict",
                    "-f",
                    "-",
                ],
                Some(&text),
            )
            .await;
        if out.ok {
            Ok(())
        } else {
            Err(format!("kubectl apply: {}", out.stderr))
        }
    }
}

fn ready(node_or_pod: &Value) -> bool {
    node_or_pod["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn name_of(v: &Value) -> String {
    v["metadata"]["name"].as_str().unwrap_or("?").to_string()
}

const BUILD_LABEL: &str = "node.kubernetes.io/windows-build";

/// The win-webserver of the Windows guide: PowerShell's HttpListener on
/// port 80 in a Server Core container, placed by its RuntimeClass only.
pub fn webserver(ns: &str, w: &WindowsTarget, replicas: u32) -> Value {
    let name = format!("win-webserver-{}", w.version);
    let script = "$l = New-Object System.Net.HttpListener; $l.Prefixes.Add('http://*:80/'); $l.Start(); \
                  while ($l.IsListening) { $c = $l.GetContext(); \
                  $b = [System.Text.Encoding]::UTF8.GetBytes('hke-check ' + $env:COMPUTERNAME); \
                  $c.Response.ContentLength64 = $b.Length; $c.Response.OutputStream.Write($b, 0, $b.Length); \
                  $c.Response.Close() }";
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "runtimeClassName": w.runtime_class,
                    "containers": [{
                        "name": "web",
                        "image": w.image,
                        "command": ["powershell.exe", "-NoProfile", "-Command", script],
                        "ports": [{"containerPort": 80}],
                        "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5}
                    }]
                }
            }
        }
    })
}

pub fn service(ns: &str, w: &WindowsTarget) -> Value {
    let name = format!("win-webserver-{}", w.version);
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "type": "NodePort",
            "selector": {"app": name},
            "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]
        }
    })
}

/// A Linux pod that serves HTTP on 8080 and has wget and nslookup.
pub fn client(ns: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "linux-client", "namespace": ns, "labels": {"app": "linux-client"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "linux-client"}},
            "template": {
                "metadata": {"labels": {"app": "linux-client"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [{
                        "name": "client",
                        "image": CLIENT_IMAGE,
                        "command": ["sh", "-c", "mkdir -p /www && echo hke-check > /www/index.html && exec httpd -f -p 8080 -h /www"],
                        "ports": [{"containerPort": 8080}]
                    }]
                }
            }
        }
    })
}

struct Runner<'a> {
    k: Kubectl<'a>,
    o: &'a Options,
    steps: Vec<Step>,
}

enum Verdict {
    Pass(String),
    Fail(String),
    Skip(String),
}

impl Runner<'_> {
    fn push(&mut self, name: &str, t0: Instant, v: Verdict, commands: Vec<String>) -> bool {
        let (result, message) = match v {
            Verdict::Pass(m) => (PhaseResult::Passed, m),
            Verdict::Fail(m) => (PhaseResult::Failed, m),
            Verdict::Skip(m) => (PhaseResult::Skipped, m),
        };
        crate::ui::say(&format!(
            "check: {name} {}{}",
            match result {
                PhaseResult::Passed => "passed",
                PhaseResult::Failed => "FAILED",
                PhaseResult::Skipped => "skipped",
            },
            if message.is_empty() {
                String::new()
            } else {
                format!(": {}", message.lines().next().unwrap_or_default())
            }
        ));
        self.steps.push(Step {
            name: name.to_string(),
            result,
            seconds: t0.elapsed().as_secs_f64(),
            message,
            commands,
        });
        result != PhaseResult::Failed
    }

    fn skipped(&self, step: &str) -> bool {
        self.o.skip.contains(step)
    }

    async fn nodes(&mut self) -> (Verdict, Vec<String>, Vec<Value>) {
        let mut cmds = Vec::new();
        let v = match self.k.json(&mut cmds, &["get", "nodes"]).await {
            Ok(v) => v,
            Err(e) => return (Verdict::Fail(e), cmds, Vec::new()),
        };
        let nodes = items(&v);
        let mut linux = 0u32;
        let mut windows: BTreeMap<String, u32> = BTreeMap::new();
        let mut not_ready = Vec::new();
        for n in &nodes {
            let labels = &n["metadata"]["labels"];
            if !ready(n) {
                not_ready.push(name_of(n));
                continue;
            }
            if labels["kubernetes.io/os"] == "windows" {
                let build = labels[BUILD_LABEL].as_str().unwrap_or("(no build label)").to_string();
                *windows.entry(build).or_default() += 1;
            } else {
                linux += 1;
            }
        }
        let e = &self.o.expected;
        let mut parts = vec![format!("Linux {linux}/{} Ready", e.linux_nodes)];
        let mut ok = linux >= e.linux_nodes;
        for (build, want) in &e.windows_nodes {
            let got = windows.get(build).copied().unwrap_or(0);
            ok &= got >= *want;
            parts.push(format!("Windows {build} {got}/{want} Ready"));
        }
        if !not_ready.is_empty() {
            parts.push(format!("not Ready: {}", not_ready.join(", ")));
        }
        let msg = parts.join("; ");
        (if ok { Verdict::Pass(msg) } else { Verdict::Fail(msg) }, cmds, nodes)
    }

    /// Wait until a Deployment has all its replicas available; its pods.
    async fn rollout(&mut self, cmds: &mut Vec<String>, name: &str) -> Result<Vec<Value>, String> {
        let ns = self.o.namespace.clone();
        let deadline = Instant::now() + self.o.ready_timeout;
        let mut polls = 0u32;
        loop {
            // Only the first and the last poll are recorded: the calls are
            // the same in between.
            let mut scratch = Vec::new();
            let rec = if polls == 0 { &mut *cmds } else { &mut scratch };
            polls += 1;
            let d = self.k.json(rec, &["-n", &ns, "get", "deployment", name]).await?;
            let want = d["spec"]["replicas"].as_u64().unwrap_or(1);
            let available = d["status"]["availableReplicas"].as_u64().unwrap_or(0);
            let pods = items(
                &self
                    .k
                    .json(rec, &["-n", &ns, "get", "pods", "-l", &format!("app={name}")])
                    .await?,
            );
            let ready_pods: Vec<Value> = pods.iter().filter(|p| ready(p)).cloned().collect();
            if available >= want && ready_pods.len() as u64 >= want {
                return Ok(ready_pods);
            }
            if Instant::now() >= deadline {
                let why: Vec<String> = pods
                    .iter()
                    .map(|p| {
                        let cond = p["status"]["conditions"]
                            .as_array()
                            .and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled").cloned())
                            .unwrap_or_default();
                        format!(
                            "{} on {} ({}{})",
                            name_of(p),
                            p["spec"]["nodeName"].as_str().unwrap_or("no node"),
                            p["status"]["phase"].as_str().unwrap_or("?"),
                            cond["message"].as_str().map(|m| format!(": {m}")).unwrap_or_default()
                        )
                    })
                    .collect();
                return Err(format!(
                    "{available}/{want} available after {} s: {}",
                    self.o.ready_timeout.as_secs(),
                    if why.is_empty() {
                        "no pods".to_string()
                    } else {
                        why.join("; ")
                    }
                ));
            }
            tokio::time::sleep(self.o.poll).await;
        }
    }

    async fn exec(&mut self, cmds: &mut Vec<String>, pod: &str, argv: &[&str]) -> Result<String, String> {
        let ns = self.o.namespace.clone();
        let mut a = vec!["-n", ns.as_str(), "exec", pod, "--"];
        a.extend_from_slice(argv);
        let out = self.k.run(cmds, &a, None).await;
        if out.ok {
            Ok(out.stdout.trim().to_string())
        } else {
            Err(format!("{}: {}", argv.join(" "), out.stderr))
        }
    }

    /// A data-plane step: run the probes, or with the step skipped, list
    /// the exact calls it would make.
    async fn probe(&mut self, step: &str, name: &str, probes: Vec<(String, Vec<String>, String)>) {
        let t0 = Instant::now();
        if self.skipped(step) {
            let cmds: Vec<String> = probes
                .iter()
                .map(|(pod, argv, _)| {
                    let mut a = vec![
                        "-n".to_string(),
                        self.o.namespace.clone(),
                        "exec".into(),
                        pod.clone(),
                        "--".into(),
                    ];
                    a.extend(argv.iter().cloned());
                    show(&self.k.argv(&a.iter().map(String::as_str).collect::<Vec<_>>()))
                })
                .collect();
            self.push(name, t0, Verdict::Skip(self.o.skip_reason.clone()), cmds);
            return;
        }
        let mut cmds = Vec::new();
        let mut fails = Vec::new();
        let mut oks = Vec::new();
        for (pod, argv, expect) in &probes {
            let a: Vec<&str> = argv.iter().map(String::as_str).collect();
            match self.exec(&mut cmds, pod, &a).await {
                Ok(out) if out.contains(expect.as_str()) => oks.push(format!("{}: ok", argv.join(" "))),
                Ok(out) => fails.push(format!("{}: answered {:?}, expected {:?}", argv.join(" "), out, expect)),
                Err(e) => fails.push(e),
            }
        }
        let v = if fails.is_empty() {
            Verdict::Pass(oks.join("; "))
        } else {
            Verdict::Fail(fails.join("\n"))
        };
        self.push(name, t0, v, cmds);
    }
}

/// Run the checklist. Never leaves its namespace behind unless `keep`.
pub async fn run(o: &Options) -> Report {
    let mut r = Runner {
        k: Kubectl { o },
        o,
        steps: Vec::new(),
    };
    let ns = o.namespace.clone();

    // 1. Nodes.
    let t0 = Instant::now();
    let nodes = if r.skipped("nodes") {
        r.push("nodes", t0, Verdict::Skip(o.skip_reason.clone()), Vec::new());
        Vec::new()
    } else {
        let (v, cmds, nodes) = r.nodes().await;
        r.push("nodes", t0, v, cmds);
        nodes
    };
    let build_of: BTreeMap<String, String> = nodes
        .iter()
        .map(|n| {
            (
                name_of(n),
                n["metadata"]["labels"][BUILD_LABEL].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let internal_ip = |node: &str| -> Option<String> {
        nodes.iter().find(|n| name_of(n) == node).and_then(|n| {
            n["status"]["addresses"].as_array().and_then(|a| {
                a.iter()
                    .find(|a| a["type"] == "InternalIP")
                    .and_then(|a| a["address"].as_str().map(str::to_string))
            })
        })
    };

    // 2. RuntimeClasses.
    let t0 = Instant::now();
    if r.skipped("runtimeclasses") {
        r.push("runtimeclasses", t0, Verdict::Skip(o.skip_reason.clone()), Vec::new());
    } else {
        let mut cmds = Vec::new();
        let mut missing = Vec::new();
        for w in &o.expected.versions {
            match r.k.json(&mut cmds, &["get", "runtimeclass", &w.runtime_class]).await {
                Ok(v) if v["scheduling"]["nodeSelector"][BUILD_LABEL] == w.build.as_str() => {}
                Ok(v) => missing.push(format!(
                    "{} selects build {}, not {}",
                    w.runtime_class, v["scheduling"]["nodeSelector"][BUILD_LABEL], w.build
                )),
                Err(e) => missing.push(e),
            }
        }
        let v = if missing.is_empty() {
            Verdict::Pass(
                o.expected
                    .versions
                    .iter()
                    .map(|w| w.runtime_class.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        } else {
            Verdict::Fail(missing.join("\n"))
        };
        r.push("runtimeclasses", t0, v, cmds);
    }

    // 3. The namespace and the workloads.
    let t0 = Instant::now();
    let mut setup_cmds = Vec::new();
    let made = r
        .k
        .apply(
            &mut setup_cmds,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"app.kubernetes.io/managed-by": "hke-check"}}}),
        )
        .await;
    if let Err(e) = made {
        r.push("namespace", t0, Verdict::Fail(e), setup_cmds);
        return finish(r).await;
    }

    // The Linux client first: its image is small and the probes need it.
    let t0 = Instant::now();
    let mut client_pod: Option<(String, String)> = None;
    if r.skipped("client") {
        let mut c = setup_cmds.clone();
        c.truncate(1);
        r.push("client", t0, Verdict::Skip(o.skip_reason.clone()), c);
    } else {
        let mut cmds = std::mem::take(&mut setup_cmds);
        let v = match r.k.apply(&mut cmds, &client(&ns)).await {
            Err(e) => Verdict::Fail(e),
            Ok(()) => match r.rollout(&mut cmds, "linux-client").await {
                Err(e) => Verdict::Fail(e),
                Ok(pods) => {
                    let p = &pods[0];
                    let node = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
                    let on_windows = nodes
                        .iter()
                        .any(|n| name_of(n) == node && n["metadata"]["labels"]["kubernetes.io/os"] == "windows");
                    if on_windows {
                        Verdict::Fail(format!("{} landed on Windows node {node}", name_of(p)))
                    } else {
                        client_pod = Some((name_of(p), p["status"]["podIP"].as_str().unwrap_or("").to_string()));
                        Verdict::Pass(format!("{} Ready on {node}", name_of(p)))
                    }
                }
            },
        };
        r.push("client", t0, v, cmds);
    }

    for w in o.expected.versions.clone() {
        let app = format!("win-webserver-{}", w.version);
        let replicas = o.expected.windows_nodes.get(&w.build).copied().unwrap_or(1).clamp(1, 2);
        // Webserver.
        let t0 = Instant::now();
        let mut web_pod: Option<(String, String, String)> = None;
        if r.skipped("webserver") {
            r.push(
                &format!("webserver-{}", w.version),
                t0,
                Verdict::Skip(o.skip_reason.clone()),
                Vec::new(),
            );
        } else {
            let mut cmds = Vec::new();
            let v = match r.k.apply(&mut cmds, &webserver(&ns, &w, replicas)).await {
                Err(e) => Verdict::Fail(e),
                Ok(()) => match r.rollout(&mut cmds, &app).await {
                    Err(e) => Verdict::Fail(e),
                    Ok(pods) => {
                        let wrong: Vec<String> = pods
                            .iter()
                            .filter_map(|p| {
                                let node = p["spec"]["nodeName"].as_str().unwrap_or("");
                                let build = build_of.get(node).map(String::as_str).unwrap_or("");
                                (build != w.build).then(|| format!("{} on {node} (build {build:?})", name_of(p)))
                            })
                            .collect();
                        if wrong.is_empty() {
                            let p = &pods[0];
                            web_pod = Some((
                                name_of(p),
                                p["status"]["podIP"].as_str().unwrap_or("").to_string(),
                                p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                            ));
                            let on: BTreeSet<&str> =
                                pods.iter().filter_map(|p| p["spec"]["nodeName"].as_str()).collect();
                            Verdict::Pass(format!(
                                "{} pod(s) Ready by RuntimeClass {} on {} node(s): {}",
                                pods.len(),
                                w.runtime_class,
                                w.build,
                                on.into_iter().collect::<Vec<_>>().join(", ")
                            ))
                        } else {
                            Verdict::Fail(format!("not on a {} node: {}", w.build, wrong.join(", ")))
                        }
                    }
                },
            };
            r.push(&format!("webserver-{}", w.version), t0, v, cmds);
        }

        // Service.
        let t0 = Instant::now();
        let mut svc: Option<(String, u64)> = None;
        if r.skipped("service") {
            r.push(
                &format!("service-{}", w.version),
                t0,
                Verdict::Skip(o.skip_reason.clone()),
                Vec::new(),
            );
        } else {
            let mut cmds = Vec::new();
            let v = match r.k.apply(&mut cmds, &service(&ns, &w)).await {
                Err(e) => Verdict::Fail(e),
                Ok(()) => {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        let mut scratch = Vec::new();
                        let rec = if svc.is_none() && cmds.len() < 3 {
                            &mut cmds
                        } else {
                            &mut scratch
                        };
                        let s = r.k.json(rec, &["-n", &ns, "get", "service", &app]).await;
                        let slices =
                            r.k.json(
                                rec,
                                &[
                                    "-n",
                                    &ns,
                                    "get",
                                    "endpointslices",
                                    "-l",
                                    &format!("kubernetes.io/service-name={app}"),
                                ],
                            )
                            .await;
                        let (s, slices) = match (s, slices) {
                            (Ok(s), Ok(sl)) => (s, sl),
                            (Err(e), _) | (_, Err(e)) => break Verdict::Fail(e),
                        };
                        let ip = s["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
                        let port = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap_or(0);
                        let ready_ips: BTreeSet<String> = items(&slices)
                            .iter()
                            .flat_map(|sl| sl["endpoints"].as_array().cloned().unwrap_or_default())
                            .filter(|e| e["conditions"]["ready"] == true)
                            .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                            .filter_map(|a| a.as_str().map(str::to_string))
                            .collect();
                        let Some((_, want, _)) = web_pod.as_ref() else {
                            // Nothing can become a ready endpoint: say what
                            // the API did give, without waiting.
                            break Verdict::Fail(format!(
                                "ClusterIP {ip:?}, NodePort {port}, no ready endpoint: the webserver has no Ready pod"
                            ));
                        };
                        if !ip.is_empty() && ip != "None" && port > 0 && ready_ips.contains(want) {
                            svc = Some((ip.clone(), port));
                            break Verdict::Pass(format!(
                                "ClusterIP {ip}:80, NodePort {port}, ready endpoints {}",
                                ready_ips.into_iter().collect::<Vec<_>>().join(", ")
                            ));
                        }
                        if Instant::now() >= deadline {
                            break Verdict::Fail(format!(
                                "ClusterIP {ip:?}, NodePort {port}, ready endpoints {ready_ips:?} after 60 s"
                            ));
                        }
                        tokio::time::sleep(o.poll).await;
                    }
                }
            };
            r.push(&format!("service-{}", w.version), t0, v, cmds);
        }

        // Data plane.
        let client_name = client_pod
            .as_ref()
            .map(|c| c.0.clone())
            .unwrap_or_else(|| "<linux-client pod>".into());
        let client_ip = client_pod
            .as_ref()
            .map(|c| c.1.clone())
            .unwrap_or_else(|| "<linux-client IP>".into());
        let (web_name, web_ip, web_node) = web_pod
            .clone()
            .unwrap_or_else(|| (format!("<{app} pod>"), format!("<{app} IP>"), String::new()));
        let (cluster_ip, node_port) = svc
            .clone()
            .map(|(ip, p)| (ip, p.to_string()))
            .unwrap_or_else(|| ("<ClusterIP>".into(), "<NodePort>".into()));
        let node_ip = internal_ip(&web_node).unwrap_or_else(|| "<node IP>".into());
        let fqdn = format!("{app}.{ns}.svc.cluster.local");
        let wget = |url: String| {
            vec![
                "wget".into(),
                "-q".into(),
                "-T".into(),
                "10".into(),
                "-O".into(),
                "-".into(),
                url,
            ]
        };
        let reach = vec![
            (
                client_name.clone(),
                wget(format!("http://{cluster_ip}:80/")),
                "hke-check".to_string(),
            ),
            (
                client_name.clone(),
                wget(format!("http://{node_ip}:{node_port}/")),
                "hke-check".to_string(),
            ),
        ];
        r.probe("reach", &format!("reach-{}", w.version), reach).await;
        let dns = vec![(
            web_name.clone(),
            vec![
                "powershell.exe".into(),
                "-NoProfile".into(),
                "-Command".into(),
                format!("(Resolve-DnsName -Type A -Name {fqdn}).IPAddress"),
            ],
            cluster_ip.clone(),
        )];
        r.probe("dns", &format!("dns-{}", w.version), dns).await;
        let outbound = vec![(
            web_name.clone(),
            vec![
                "curl.exe".into(),
                "-sS".into(),
                "-o".into(),
                "NUL".into(),
                "-w".into(),
                "%{http_code}".into(),
                "--max-time".into(),
                "20".into(),
                OUTBOUND_URL.into(),
            ],
            "200".to_string(),
        )];
        r.probe("outbound", &format!("outbound-{}", w.version), outbound).await;
        let p2p = vec![
            (
                client_name.clone(),
                wget(format!("http://{web_ip}:80/")),
                "hke-check".to_string(),
            ),
            (
                web_name.clone(),
                vec![
                    "curl.exe".into(),
                    "-sS".into(),
                    "--max-time".into(),
                    "10".into(),
                    format!("http://{client_ip}:8080/"),
                ],
                "hke-check".to_string(),
            ),
        ];
        r.probe("pod-to-pod", &format!("pod-to-pod-{}", w.version), p2p).await;
    }
    finish(r).await
}

async fn finish(mut r: Runner<'_>) -> Report {
    let o = r.o;
    let t0 = Instant::now();
    if o.keep || r.skipped("cleanup") {
        r.push(
            "cleanup",
            t0,
            Verdict::Skip(format!("namespace {} kept", o.namespace)),
            Vec::new(),
        );
    } else {
        let mut cmds = Vec::new();
        let out =
            r.k.run(
                &mut cmds,
                &[
                    "delete",
                    "namespace",
                    &o.namespace,
                    "--ignore-not-found",
                    "--wait=false",
                ],
                None,
            )
            .await;
        let v = if out.ok {
            Verdict::Pass(format!("namespace {} deleted", o.namespace))
        } else {
            Verdict::Fail(format!("namespace {} left behind: {}", o.namespace, out.stderr))
        };
        r.push("cleanup", t0, v, cmds);
    }
    let count = |x: PhaseResult| r.steps.iter().filter(|s| s.result == x).count();
    Report {
        namespace: o.namespace.clone(),
        passed: count(PhaseResult::Passed),
        failed: count(PhaseResult::Failed),
        skipped: count(PhaseResult::Skipped),
        steps: r.steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(sets: &[&str]) -> Cluster {
        crate::cluster::example(sets)
    }

    #[test]
    fn expected_counts_come_from_the_model_per_os_and_build() {
        let e = Expected::of(&cluster(&[]));
        assert_eq!(e.linux_nodes, 3 + 2, "masters and the Linux pool");
        assert_eq!(e.windows_nodes.get("10.0.20348"), Some(&3));
        assert_eq!(e.versions.len(), 1);
        let w = &e.versions[0];
        assert_eq!((w.version.as_str(), w.runtime_class.as_str()), ("2022", "windows-2022"));
        assert_eq!(w.image, "mcr.microsoft.com/windows/servercore:ltsc2022");

        let two = Expected::of(&cluster(&["properties.agentPoolProfiles[1].windowsVersion=2019"]));
        assert_eq!(two.windows_nodes.get("10.0.17763"), Some(&3));
        assert_eq!(two.versions[0].runtime_class, "windows-2019");
    }

    #[test]
    fn the_webserver_is_placed_by_its_runtime_class_alone() {
        let e = Expected::of(&cluster(&[]));
        let d = webserver("ns1", &e.versions[0], 2);
        let spec = &d["spec"]["template"]["spec"];
        assert_eq!(spec["runtimeClassName"], "windows-2022");
        assert!(spec.get("nodeSelector").is_none(), "{spec}");
        assert!(spec.get("tolerations").is_none(), "{spec}");
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(
            d["spec"]["selector"]["matchLabels"]["app"],
            d["spec"]["template"]["metadata"]["labels"]["app"]
        );
        let s = service("ns1", &e.versions[0]);
        assert_eq!(s["spec"]["selector"]["app"], "win-webserver-2022");
        assert_eq!(s["spec"]["type"], "NodePort");
        let c = client("ns1");
        assert_eq!(
            c["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/os"],
            "linux"
        );
    }

    #[test]
    fn printed_commands_quote_what_a_shell_would_split() {
        let argv: Vec<String> = [
            "kubectl",
            "exec",
            "p",
            "--",
            "powershell.exe",
            "-Command",
            "(Resolve-DnsName x).IPAddress",
            "it's",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            show(&argv),
            r#"kubectl exec p -- powershell.exe -Command '(Resolve-DnsName x).IPAddress' 'it'\''s'"#
        );
    }
}
