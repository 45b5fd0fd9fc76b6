//! `hke ci run --check` and `hke check` against a real control plane (etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler built from
//! source; kwok simulating the nodes; see `kube.rs`), not a kubectl
//! stand-in.
//!
//! The built-in fake cloud boots nothing, so this test plays the machines:
//! whenever the fake cloud holds a machine, its node registers with exactly
//! what the machine's user data gives the kubelet (read from the boot file
//! by `kubelet.rs`), and the first master applies the manifests its boot
//! file carries, as its bootstrap does. `hke ci run` then waits on real Node
//! objects, `--check` schedules real pods through the RuntimeClasses, and
//! the command sees the real API. The fake cloud's load balancer fronts the
//! control plane through `HKE_FAKE_API_SERVER`; the cluster's certificates
//! are the control plane's because `ci run` deploys the `apimodel.json`
//! `hke generate` wrote (its certificateProfile holds them).
//!
//! Where the stand-in stays (`tests/it/fixtures/kubectl`, in `ci.rs`):
//! SIGTERM, timeout and late-Windows-node timing tests, which need node
//! readiness on cue rather than a control plane's start-up time.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hke_provider_api::fake::FakeCloud;
use hke_provider_api::Kind;
use serde_json::Value;

use crate::kube::ControlPlane;
use crate::kubelet;
use crate::support::{root, text};
use crate::upstream::k8s_tool;

const WINDOWS_TAINT: &str =
    "properties.agentPoolProfiles[1].kubernetesConfig.kubeletConfig.--register-with-taints=os=windows:NoSchedule";

/// Play the machines of the fake cloud in `cloud` until `stop`: register
/// each machine's node from its user data; the first master also applies
/// its manifests. Returns the names registered.
fn play_machines(cp: &ControlPlane, cloud: &Path, stop: &AtomicBool) -> BTreeSet<String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    while !stop.load(Ordering::SeqCst) {
        for m in FakeCloud::resources_in(cloud) {
            let Some(boot) = m.user_data.clone() else { continue };
            let image = match &m.spec {
                hke_provider_api::Spec::Machine(m) => m.image.name.clone(),
                hke_provider_api::Spec::MachineGroup(g) => g.image.name.clone(),
                _ => continue,
            };
            let names: Vec<String> = match m.kind {
                Kind::Machine => vec![m.name.clone()],
                Kind::MachineGroup => m
                    .outputs
                    .get("instances")
                    .map(|s| s.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
                _ => continue,
            };
            for name in names {
                if done.contains(&name) {
                    continue;
                }
                let node = kubelet::from_boot_file(&name, &boot, &image);
                cp.register_node(&node);
                if boot.starts_with("#cloud-config") {
                    for (path, content) in kubelet::linux_files(&name, &boot) {
                        if path.starts_with("/etc/hke/manifests/") {
                            cp.apply(&path, &content, "hke");
                        }
                    }
                }
                done.insert(name);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    done
}

fn generate(dir: &Path, sets: &[&str]) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hke"));
    c.args(["generate", "-m"])
        .arg(root().join("examples/windows.json"))
        .args(["--set", "properties.providerProfile.name=fake"]);
    for s in sets {
        c.args(["--set", s]);
    }
    let out = c.arg("-o").arg(dir).output().expect("hke runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The JUnit test cases of a file, as junitparser reads them.
fn cases(file: &Path) -> Vec<(String, String)> {
    crate::ci::junit_cases(file)
        .into_iter()
        .map(|(n, k, _)| (n, k))
        .collect()
}

#[test]
#[allow(clippy::print_stderr)]
fn ci_run_waits_on_real_nodes_checks_the_cluster_and_hke_check_reports_what_fails() {
    let t0 = std::time::Instant::now();
    let tmp = tempfile::tempdir().expect("tmp");
    let gen = tmp.path().join("gen");
    generate(&gen, &[WINDOWS_TAINT]);
    let cp = ControlPlane::start(&gen);
    let kubectl = k8s_tool("kubectl");
    let cloud = tmp.path().join("cloud");
    let stop = AtomicBool::new(false);

    // ci run renames the cluster: the certificates that name its machines
    // are issued anew, by the same CAs; the CAs, the admin's certificate and
    // the service-account keys stay the control plane's.
    let mut model: Value =
        serde_json::from_str(&std::fs::read_to_string(gen.join("apimodel.json")).expect("model")).expect("json");
    let profile = model["properties"]["certificateProfile"]
        .as_object_mut()
        .expect("certificateProfile");
    for k in [
        "apiServerCertificate",
        "apiServerPrivateKey",
        "etcdServerCertificate",
        "etcdServerPrivateKey",
        "etcdPeerCertificates",
        "etcdPeerPrivateKeys",
    ] {
        profile.remove(k);
    }
    let ci_model = tmp.path().join("ci-model.json");
    std::fs::write(&ci_model, model.to_string()).expect("write");

    let (out, registered) = std::thread::scope(|s| {
        let player = s.spawn(|| play_machines(&cp, &cloud, &stop));
        let out = Command::new(env!("CARGO_BIN_EXE_hke"))
            .args(["ci", "run", "-m"])
            .arg(&ci_model)
            .args(["--name-prefix", "live", "--kubectl"])
            .arg(&kubectl)
            .args(["--check", "--check-api-only", "--artifacts", "art"])
            .args(["--ready-timeout", "3m", "--windows-ready-timeout", "3m"])
            .arg("--")
            .args([
                "sh",
                "-c",
                &format!(
                    r#"{} get nodes -o json > seen-nodes.json && {} auth whoami -o json > seen-whoami.json"#,
                    kubectl.display(),
                    kubectl.display()
                ),
            ])
            .current_dir(tmp.path())
            .env("HKE_FAKE_CLOUD", &cloud)
            .env("HKE_FAKE_API_SERVER", cp.server().trim_start_matches("https://"))
            .env("HKE_CI_POLL_MS", "500")
            // kubectl's discovery cache goes to $HOME/.kube/cache: keep it in the test's directory.
            .env("HOME", tmp.path())
            .env_remove("ARTIFACTS")
            .output()
            .expect("hke runs");
        stop.store(true, Ordering::SeqCst);
        (out, player.join().expect("the machines' player"))
    });
    eprintln!("ci run done at {:.1}s", t0.elapsed().as_secs_f64());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{}", cp.diagnostics());
    // Every planned machine registered: 3 masters, 2 Linux, 3 Windows.
    assert_eq!(registered.len(), 8, "{registered:?}");

    // The command saw the real API: the nodes, as the admin hke issued.
    let nodes: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("seen-nodes.json")).expect("ran")).expect("json");
    let names: BTreeSet<String> = nodes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names, registered);
    let whoami: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("seen-whoami.json")).expect("ran"))
            .expect("json");
    let groups = whoami["status"]["userInfo"]["groups"].to_string();
    assert!(
        groups.contains("system:masters") || groups.contains("kubeadm:cluster-admins"),
        "{whoami}"
    );

    // The check ran before the command, on real scheduling.
    let check = std::fs::read_to_string(tmp.path().join("art/junit_check.xml")).expect("junit_check.xml");
    let c = cases(&tmp.path().join("art/junit_check.xml"));
    let kind = |n: &str| c.iter().find(|(name, _)| name == n).map(|(_, k)| k.as_str());
    for step in [
        "nodes",
        "runtimeclasses",
        "client",
        "webserver-2022",
        "service-2022",
        "cleanup",
    ] {
        assert_eq!(kind(step), Some("passed"), "{step}: {check}");
    }
    for step in ["reach-2022", "dns-2022", "outbound-2022", "pod-to-pod-2022"] {
        assert_eq!(kind(step), Some("skipped"), "{step}: {check}");
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("art/check.json")).expect("check.json"))
            .expect("json");
    let step = |n: &str| {
        report["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == n).cloned())
            .unwrap_or_else(|| panic!("no step {n}: {report}"))
    };
    // The webserver landed on the Windows nodes by its RuntimeClass alone
    // (it has no nodeSelector or toleration of its own).
    let web = step("webserver-2022")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(web.contains("by RuntimeClass windows-2022 on 10.0.20348"), "{web}");
    // The skipped probes name the exact calls, with the addresses the API gave.
    let svc = step("service-2022")["message"].as_str().unwrap_or_default().to_string();
    let cluster_ip = svc
        .strip_prefix("ClusterIP ")
        .and_then(|s| s.split(':').next())
        .unwrap_or_else(|| panic!("{svc}"));
    let reach = step("reach-2022")["commands"].to_string();
    assert!(
        reach.contains(&format!("wget -q -T 10 -O - http://{cluster_ip}:80/")),
        "{reach}"
    );
    let dns = step("dns-2022")["commands"].to_string();
    assert!(dns.contains("win-webserver-2022.hke-check-"), "{dns}");
    // The metadata tells the phases in order.
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("art/metadata.json")).expect("metadata"))
            .expect("json");
    let phases: Vec<&str> = meta["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        phases,
        ["deploy", "wait-ready", "check", "test", "collect-logs", "teardown"]
    );
    let took: Vec<String> = meta["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| {
            format!(
                "{} {:.1}s",
                p["name"].as_str().unwrap_or("?"),
                p["seconds"].as_f64().unwrap_or(0.0)
            )
        })
        .collect();
    eprintln!("ci run against the control plane: {}", took.join(", "));
    assert!(FakeCloud::resources_in(&cloud).is_empty(), "torn down");

    // `hke check` on its own, against a model that promises a 2019 pool the
    // cluster does not have: the steps that cannot pass fail, by name, and
    // the rest still run.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    let mut model: Value =
        serde_json::from_str(&std::fs::read_to_string(gen.join("apimodel.json")).expect("model")).expect("json");
    model["properties"]["agentPoolProfiles"][1]["windowsVersion"] = "2019".into();
    std::fs::write(other.join("apimodel.json"), model.to_string()).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_hke"))
        .args(["check", "--cluster", "other", "-o"])
        .arg(&other)
        .arg("--kubeconfig")
        .arg(cp.kubeconfig())
        .arg("--kubectl")
        .arg(&kubectl)
        .args(["--api-only", "--ready-timeout", "15s", "--output", "json", "--junit"])
        .arg(tmp.path().join("other.xml"))
        .env("HKE_CHECK_POLL_MS", "500")
        .env("HOME", tmp.path())
        .output()
        .expect("hke runs");
    eprintln!("hke check done at {:.1}s", t0.elapsed().as_secs_f64());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    let result = |n: &str| {
        report["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == n))
            .map(|s| s["result"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no step {n}: {report}"))
    };
    assert_eq!(result("nodes"), "failed", "{report}");
    assert_eq!(result("runtimeclasses"), "failed", "{report}");
    assert_eq!(result("webserver-2019"), "failed", "{report}");
    assert_eq!(result("service-2019"), "failed", "{report}");
    assert_eq!(result("client"), "passed", "{report}");
    assert_eq!(result("cleanup"), "passed", "{report}");
    let nodes_msg = report["steps"][0]["message"].as_str().unwrap_or_default();
    assert!(nodes_msg.contains("Windows 10.0.17763 0/3 Ready"), "{nodes_msg}");
    let xml = std::fs::read_to_string(tmp.path().join("other.xml")).expect("junit");
    assert!(
        cases(&tmp.path().join("other.xml")).contains(&("webserver-2019".to_string(), "failure".to_string())),
        "{xml}"
    );
    // Nothing of either check is left in the cluster.
    let left = cp.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    let leftover: Vec<&str> = left.lines().filter(|l| l.contains("hke-check-")).collect();
    for ns in leftover {
        let phase = cp.kubectl_ok(&["get", ns, "-o", "jsonpath={.status.phase}"]);
        assert_eq!(phase.trim(), "Terminating", "{ns} left behind");
    }
}

/// The bootstrap token keeper every control-plane node runs hourly, as its
/// boot file writes it, against the real API: it recreates a token the
/// token cleaner removed, pushes an expiring one's expiry 24 h ahead, and
/// the token then authenticates as a bootstrapper.
#[test]
fn the_control_planes_keep_the_nodes_bootstrap_token_valid() {
    let tmp = tempfile::tempdir().expect("tmp");
    let gen = tmp.path().join("gen");
    generate(&gen, &[]);
    let cp = ControlPlane::start(&gen);
    // A joining control-plane node's boot file (master-1): the keeper and
    // the kubeadm configuration it reads the token from.
    let master = std::fs::read_dir(gen.join("bootstrap"))
        .expect("bootstrap/")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .is_some_and(|n| n.starts_with("k8s-master-") && n.ends_with("-1"))
        })
        .expect("master 1");
    let boot = std::fs::read_to_string(master.join("cloud-init.yaml")).expect("cloud-init");
    let files = kubelet::linux_files("master-1", &boot);
    let file = |p: &str| {
        files
            .iter()
            .find(|(path, _)| path == p)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("{p} not written"))
    };
    let script = file("/etc/hke/bootstrap.sh");
    let keeper = script
        .split("<<'TOKEN'\n")
        .nth(1)
        .and_then(|s| s.split("\nTOKEN\n").next())
        .expect("the keeper script in the bootstrap");
    assert!(
        script.contains("systemctl enable --now hke-bootstrap-token.timer"),
        "{script}"
    );
    let kubeadm_yaml = tmp.path().join("kubeadm.yaml");
    std::fs::write(&kubeadm_yaml, file("/etc/hke/kubeadm.yaml")).expect("write");
    let keeper = keeper
        .replace("/etc/kubernetes/admin.conf", &cp.kubeconfig().display().to_string())
        .replace("/etc/hke/kubeadm.yaml", &kubeadm_yaml.display().to_string());
    let keeper_file = tmp.path().join("hke-bootstrap-token");
    std::fs::write(&keeper_file, &keeper).expect("write");
    let bin = k8s_tool("kubeadm").parent().expect("bin dir").to_path_buf();
    let _ = k8s_tool("kubectl");
    let run = || {
        let out = Command::new("bash")
            .arg(&keeper_file)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("HOME", tmp.path())
            .output()
            .expect("bash runs");
        assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    };
    let token = file("/etc/hke/kubeadm.yaml")
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("token: ")
                .map(|t| t.trim_matches('"').to_string())
        })
        .expect("a token in the join configuration");
    let id = token.split('.').next().expect("id").to_string();
    let secret = format!("bootstrap-token-{id}");
    let expiry = || -> time::OffsetDateTime {
        let v = cp.get_json(&["-n", "kube-system", "secret", &secret]);
        let b64 = v["data"]["expiration"].as_str().expect("expiration");
        let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64");
        time::OffsetDateTime::parse(
            &String::from_utf8(raw).expect("utf-8"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
    };
    let now = time::OffsetDateTime::now_utc();
    let near_a_day = |t: time::OffsetDateTime| {
        let h = (t - now).whole_minutes();
        (23 * 60..=24 * 60 + 5).contains(&h)
    };

    // 1. Gone (cleaned up, or never made here): recreated, for 24 h.
    let said = run();
    assert!(said.contains(&format!("bootstrap token {id} valid until")), "{said}");
    assert!(near_a_day(expiry()), "{}", expiry());
    // 2. About to expire: pushed 24 h ahead.
    let soon = (now + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    cp.kubectl_ok(&[
        "-n",
        "kube-system",
        "patch",
        "secret",
        &secret,
        "--type=merge",
        "-p",
        &format!(r#"{{"stringData":{{"expiration":"{soon}"}}}}"#),
    ]);
    assert!(!near_a_day(expiry()));
    run();
    assert!(near_a_day(expiry()), "{}", expiry());
    // 3. The token authenticates as a bootstrapper (kubeadm's join group).
    let out = Command::new(k8s_tool("kubectl"))
        .args([
            "--kubeconfig",
            "/dev/null",
            "--server",
            cp.server(),
            "--certificate-authority",
        ])
        .arg(gen.join("pki/ca.crt"))
        .args(["--token", &token, "auth", "whoami", "-o", "json"])
        .output()
        .expect("kubectl");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let who: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(who["status"]["userInfo"]["username"], format!("system:bootstrap:{id}"));
    assert!(
        who["status"]["userInfo"]["groups"]
            .to_string()
            .contains("system:bootstrappers:kubeadm:default-node-token"),
        "{who}"
    );
}
