//! Rendered boot files, proven by real third-party checkers: Debian's
//! cloud-init schema, the tree-sitter PowerShell grammar, the Kubernetes
//! JSON schema (kubernetes-validate), and JSON parsing for CNI configs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use hke::model::load::SetArg;
use hke::ops::generate::{boot_files, prepare, Prepared};

use crate::support::{corpus_files, example, now, rng, text};

fn prepared(model: &str, sets: &[&str]) -> Prepared {
    let sets: Vec<SetArg> = sets.iter().map(|s| s.parse().expect("set")).collect();
    prepare(model, &sets, &mut rng(4), now()).unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
}

pub fn files_of(p: &Prepared) -> BTreeMap<String, String> {
    let plan = hke::plan::plan(&p.cluster).expect("plan");
    boot_files(&p.cluster, &p.pki, &plan)
        .expect("renders")
        .into_iter()
        .collect()
}

/// Every shipped example under every network plugin it can use.
fn example_variants() -> Vec<(String, Prepared)> {
    crate::nodes::variants()
}

/// Every corpus model that generates after `hke migrate`.
fn corpus_variants() -> Vec<(String, Prepared)> {
    corpus_files()
        .into_iter()
        .filter_map(|path| {
            let t = std::fs::read_to_string(&path).ok()?;
            let (m, _) = hke::ops::migrate::migrate(&t, &[]).ok()?;
            let json = serde_json::to_string(&m).ok()?;
            prepare(&json, &[], &mut rng(6), now())
                .ok()
                .map(|p| (path.display().to_string(), p))
        })
        .collect()
}

/// PowerShell's single-quote characters (all of them close a '…' literal).
fn is_ps_quote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}')
}

/// Decode the single-quoted literal that starts at `text` (just after its
/// opening quote): a doubled quote character stands for itself.
fn ps_decode(text: &str) -> (String, usize) {
    let mut out = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_ps_quote(c) {
            if chars.peek().is_some_and(|(_, n)| is_ps_quote(*n)) {
                let (_, n) = chars.next().expect("peeked");
                out.push(n);
                continue;
            }
            return (out, i + c.len_utf8());
        }
        out.push(c);
    }
    panic!("unterminated PowerShell literal");
}

/// The text of the PowerShell single-quoted literal assigned to `var`.
fn ps_literal(script: &str, var: &str) -> String {
    let start = script
        .find(&format!("{var} = '"))
        .unwrap_or_else(|| panic!("{var} not assigned"))
        + var.len()
        + 4;
    ps_decode(&script[start..]).0
}

/// The literals of a PowerShell array assignment `$Var = @( '…' '…' )`.
fn ps_array(script: &str, var: &str) -> Vec<String> {
    let start = script
        .find(&format!("{var} = @("))
        .unwrap_or_else(|| panic!("{var} not assigned"))
        + var.len()
        + 5;
    let mut rest = &script[start..];
    let mut out = Vec::new();
    loop {
        let trimmed = rest.trim_start();
        if trimmed.starts_with(')') {
            return out;
        }
        let q = trimmed.chars().next().expect("array continues");
        assert!(
            is_ps_quote(q),
            "unexpected {:?} in {var}",
            &trimmed[..trimmed.len().min(20)]
        );
        let (value, used) = ps_decode(&trimmed[q.len_utf8()..]);
        out.push(value);
        rest = &trimmed[q.len_utf8() + used..];
    }
}

fn pwsh_errors(script: &str) -> Vec<String> {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_pwsh::LANGUAGE.into())
        .expect("grammar loads");
    let tree = parser.parse(script, None).expect("parses");
    let mut errors = Vec::new();
    let mut cursor = tree.walk();
    let mut stack = vec![tree.root_node()];
    while let Some(n) = stack.pop() {
        if n.is_error() || n.is_missing() {
            let line = n.start_position().row + 1;
            errors.push(format!(
                "line {line}: {} {:?}",
                n.kind(),
                script.lines().nth(line - 1).unwrap_or("")
            ));
        }
        for child in n.children(&mut cursor) {
            stack.push(child);
        }
    }
    errors
}

#[test]
fn windows_scripts_parse_under_the_powershell_grammar() {
    let mut checked = 0;
    for (name, p) in example_variants().into_iter().chain(corpus_variants()) {
        for (path, content) in files_of(&p).iter().filter(|(k, _)| k.ends_with(".ps1")) {
            let errors = pwsh_errors(content);
            assert!(errors.is_empty(), "{name} {path}: {errors:#?}");
            // The diagnostics script the node writes out is PowerShell too.
            let start = content.find("-Value @'\n").expect("diagnostics here-string") + "-Value @'\n".len();
            let end = start + content[start..].find("\n'@").expect("end of here-string");
            let inner = &content[start..end];
            assert!(inner.contains("### hke-log-begin"), "{name} {path}");
            let errors = pwsh_errors(inner);
            assert!(errors.is_empty(), "{name} {path} (diagnostics): {errors:#?}");
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} scripts checked");
    // The check can fail: a broken script is caught.
    assert!(!pwsh_errors("$a = 'unterminated\nif ($x {").is_empty());
}

fn cloud_init_available() -> bool {
    Command::new("cloud-init")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn cloud_init_passes_debians_schema_check() {
    assert!(
        cloud_init_available(),
        "Debian's cloud-init must be installed (.ci/run installs it)"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    // The examples: the `cloud-init schema -c` command itself, file by file.
    let mut n = 0;
    for (name, p) in example_variants() {
        for (path, content) in files_of(&p).iter().filter(|(k, _)| k.ends_with("cloud-init.yaml")) {
            // A master, a joining master and a worker cover the shapes.
            if !(path.contains("master-") || path.contains("-0/")) {
                continue;
            }
            let f = tmp.path().join(format!("ci-{n}.yaml"));
            std::fs::write(&f, content).expect("write");
            let out = Command::new("cloud-init")
                .args(["schema", "-c"])
                .arg(&f)
                .output()
                .expect("cloud-init runs");
            assert!(
                out.status.success(),
                "{name} {path}: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 20, "{n}");
    // A broken config is refused (the check can fail).
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "#cloud-config\nwrite_files:\n  - path: 1\n    encoding: bogus\n").expect("write");
    let out = Command::new("cloud-init")
        .args(["schema", "-c"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "cloud-init accepted a broken config");

    // Every corpus model: one Python process with cloud-init's own validator,
    // which also decodes every written file and checks YAML and bash syntax.
    let dir = tmp.path().join("corpus");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut count = 0;
    for (i, (_, p)) in corpus_variants().into_iter().enumerate() {
        for (j, (_, content)) in files_of(&p)
            .iter()
            .filter(|(k, _)| k.ends_with("cloud-init.yaml"))
            .enumerate()
        {
            std::fs::write(dir.join(format!("{i}-{j}.yaml")), content).expect("write");
            count += 1;
        }
    }
    assert!(count > 100, "{count}");
    let script = r##"
import base64, glob, subprocess, sys, yaml
from cloudinit.config.schema import get_schema, validate_cloudconfig_schema
schema = get_schema()
bad = []
for path in sorted(glob.glob(sys.argv[1] + "/*.yaml")):
    text = open(path).read()
    if not text.startswith("#cloud-config"):
        bad.append(path + ": no #cloud-config header"); continue
    cfg = yaml.safe_load(text)
    try:
        validate_cloudconfig_schema(cfg, schema, strict=True)
    except Exception as e:
        bad.append(path + ": " + str(e))
    for f in cfg.get("write_files", []):
        body = base64.b64decode(f["content"]).decode()
        if f["path"].endswith(".yaml"):
            list(yaml.safe_load_all(body))
        if f["path"].endswith(".sh"):
            r = subprocess.run(["bash", "-n"], input=body, text=True, capture_output=True)
            if r.returncode:
                bad.append(path + " " + f["path"] + ": " + r.stderr)
print("\n".join(bad))
sys.exit(1 if bad else 0)
"##;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&dir)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
}

/// PyPI's kubernetes-validate, through the Python that has it.
fn kubernetes_validate() -> Command {
    let mut c = Command::new("python3");
    c.args(["-m", "kubernetes_validate"]);
    c
}

#[test]
fn manifests_validate_against_the_kubernetes_schema() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut paths = Vec::new();
    for (i, (_, p)) in example_variants().into_iter().chain(corpus_variants()).enumerate() {
        for (path, m) in files_of(&p)
            .iter()
            .filter(|(k, _)| k.starts_with("bootstrap/manifests/"))
        {
            let f = tmp
                .path()
                .join(format!("{i}-{}", path.rsplit('/').next().unwrap_or("m.yaml")));
            std::fs::write(&f, m).expect("write");
            paths.push(f);
        }
    }
    assert!(paths.len() > 50, "{}", paths.len());
    let release = hke::catalog::versions::table().default_version();
    let version = format!("{}.{}.0", release.major, release.minor);
    let out = kubernetes_validate()
        .args(["--strict", "--quiet", "-k", &version])
        .args(&paths)
        .output()
        .expect("kubernetes-validate is installed (.ci/run installs it)");
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    // And it can fail.
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: x\nhandlr: y\n",
    )
    .expect("write");
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--quiet", "-k", &version])
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "a misspelt field was accepted");
}

fn specs_of(p: &Prepared) -> Vec<(String, hke::render::NodeSpec)> {
    let plan = hke::plan::plan(&p.cluster).expect("plan");
    hke::ops::generate::node_specs(&p.cluster, &p.pki, &plan).expect("renders")
}

#[test]
fn cni_configs_carry_the_computed_policies() {
    let mut checked = 0;
    for (name, p) in example_variants().into_iter().chain(corpus_variants()) {
        let c = &p.cluster;
        for (node, spec) in specs_of(&p) {
            if spec.os != hke::model::types::OsType::Windows {
                continue;
            }
            let cni: Vec<_> = spec
                .files
                .iter()
                .filter(|f| f.kind == hke::render::FileKind::Cni)
                .collect();
            assert_eq!(cni.len(), 1, "{name} {node}: one CNI file");
            let text = serde_json::from_str::<serde_json::Value>(&cni[0].content)
                .unwrap_or_else(|e| panic!("{name} {node}: {e}"))
                .to_string();
            let mut want: Vec<String> = vec![
                c.network.pod_cidr.to_string(),
                c.network.service_cidr.to_string(),
                c.network.node_cidr.to_string(),
            ];
            want.dedup();
            let list = serde_json::to_string(&want).expect("json");
            // HNS v2 (Settings.Exceptions) for win-bridge / win-overlay;
            // Azure CNI keeps its own ExceptionList spelling.
            assert!(
                text.contains(&format!("\"Exceptions\":{list}")) || text.contains(&format!("\"ExceptionList\":{list}")),
                "{name} {node}: OutBoundNAT exceptions {list} missing in {text}"
            );
            assert!(
                text.contains(&format!(
                    "\"DestinationPrefix\":\"{}\",\"NeedEncap\":true",
                    c.network.service_cidr
                )),
                "{name} {node}: no service route in {text}"
            );
            assert!(
                text.contains(&format!("\"Nameservers\":[\"{}\"]", c.network.dns_service_ip)),
                "{name}: {text}"
            );
            assert!(text.contains("\"svc.cluster.local\""), "{name}: {text}");
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked}");
}

#[test]
fn two_windows_versions_get_their_own_build_pause_and_runtime_class() {
    let model = r#"{
      "apiVersion": "vlabs", "location": "westus2",
      "properties": {
        "orchestratorProfile": {"orchestratorRelease": "1.36", "kubernetesConfig": {"networkPlugin": "flannel"}},
        "masterProfile": {"count": 1, "dnsPrefix": "two-windows"},
        "agentPoolProfiles": [
          {"name": "win2019", "count": 1, "osType": "Windows", "windowsVersion": "2019",
           "kubernetesConfig": {"kubeletConfig": {"--register-with-taints": "os=windows:NoSchedule"}}},
          {"name": "win2022", "count": 1, "osType": "Windows", "windowsVersion": "2022"}
        ]
      }
    }"#;
    let p = prepared(model, &[]);
    let files = files_of(&p);
    let script_of = |pool: &str| {
        let idx = p.cluster.pools.iter().position(|x| x.name == pool).expect("pool");
        let node = &p.cluster.pools[idx].node_names[0];
        files
            .get(&format!("bootstrap/{node}/bootstrap.ps1"))
            .cloned()
            .expect("script")
    };
    let s2019 = script_of("win2019");
    let s2022 = script_of("win2022");
    // The pause image is pulled for the pool's own build, in containerd's
    // platform syntax.
    assert_eq!(ps_literal(&s2019, "$PausePlatform"), "windows(10.0.17763)/amd64");
    assert_eq!(ps_literal(&s2022, "$PausePlatform"), "windows(10.0.20348)/amd64");
    let args_2019 = ps_array(&s2019, "$KubeletArgs");
    let args_2022 = ps_array(&s2022, "$KubeletArgs");
    // The build label is the kubelet's own, from the OS it runs on
    // (kubelet_node_status_windows.go): hke's --node-labels leave it alone,
    // so a wrong table entry cannot lie to the RuntimeClasses.
    let label = |args: &[String], want: &str| args.iter().any(|a| a.starts_with("--node-labels=") && a.contains(want));
    assert!(label(&args_2019, "hke.io/pool=win2019"), "{args_2019:?}");
    assert!(label(&args_2022, "hke.io/pool=win2022"), "{args_2022:?}");
    assert!(!label(&args_2019, "windows-build"), "{args_2019:?}");
    assert!(!label(&args_2022, "windows-build"), "{args_2022:?}");
    assert!(args_2019.contains(&"--register-with-taints=os=windows:NoSchedule".to_string()));
    assert!(!args_2022.iter().any(|a| a.starts_with("--register-with-taints")));
    let rc = files
        .get("bootstrap/manifests/10-runtimeclasses.yaml")
        .expect("runtime classes");
    let docs: Vec<&str> = rc
        .split("\n---\n")
        .filter(|d| d.contains("kind: RuntimeClass"))
        .collect();
    assert_eq!(docs.len(), 2, "{rc}");
    let doc = |name: &str| {
        docs.iter()
            .find(|d| d.contains(&format!("name: \"{name}\"")))
            .copied()
            .unwrap_or_else(|| panic!("{name} in {rc}"))
    };
    assert!(doc("windows-2019").contains("node.kubernetes.io/windows-build: \"10.0.17763\""));
    assert!(
        doc("windows-2019").contains("key: \"os\"") && doc("windows-2019").contains("effect: \"NoSchedule\""),
        "{rc}"
    );
    assert!(doc("windows-2022").contains("node.kubernetes.io/windows-build: \"10.0.20348\""));
    assert!(
        !doc("windows-2022").contains("tolerations"),
        "the untainted pool's class tolerates nothing"
    );
}

#[test]
fn a_hyperv_pool_gets_its_runtime_handler_and_class() {
    let p = prepared(
        &example("windows.json"),
        &[
            "properties.agentPoolProfiles[1].hypervIsolation=true",
            "properties.agentPoolProfiles[1].vmSize=Standard_D4s_v3",
        ],
    );
    let files = files_of(&p);
    let win = p
        .cluster
        .pools
        .iter()
        .find(|x| x.windows.is_some())
        .expect("windows pool");
    let script = &files[&format!("bootstrap/{}/bootstrap.ps1", win.node_names[0])];
    assert!(ps_array(script, "$KubeletArgs")
        .iter()
        .any(|a| a.starts_with("--node-labels=") && a.contains("hke.io/hyperv=true")));
    assert!(script.contains("Install-WindowsFeature -Name Hyper-V"));
    assert!(pwsh_errors(script).is_empty());
    let rc = &files["bootstrap/manifests/10-runtimeclasses.yaml"];
    assert!(
        rc.contains("name: \"windows-2022-hyperv\"") && rc.contains("handler: \"runhcs-wcow-hypervisor\""),
        "{rc}"
    );
    assert!(rc.contains("hke.io/hyperv: \"true\""), "{rc}");
    // Without it, nothing of the kind.
    let plain = files_of(&prepared(&example("windows.json"), &[]));
    assert!(!plain["bootstrap/manifests/10-runtimeclasses.yaml"].contains("hyperv"));
    // A Linux pool cannot ask for it.
    let sets: Vec<SetArg> = ["properties.agentPoolProfiles[0].hypervIsolation=true"]
        .iter()
        .map(|s| s.parse().expect("set"))
        .collect();
    let r = prepare(&example("windows.json"), &sets, &mut rng(1), now()).expect_err("linux pool");
    assert!(r
        .diagnostics
        .iter()
        .any(|d| d.path == "properties.agentPoolProfiles[0].hypervIsolation"));
}

#[test]
fn templates_interpolate_only_through_escaping_helpers() {
    let allowed = [
        "ps ", "sh ", "yaml ", "json ", "b64 ", "num ", "#each ", "/each", "#if ", "/if", "else",
    ];
    for (name, src) in hke::render::TEMPLATES {
        let mut rest = *src;
        while let Some(i) = rest.find("{{") {
            let after = &rest[i + 2..];
            assert!(
                allowed.iter().any(|a| after.starts_with(a)),
                "template {name}: a value is interpolated without escaping: {:?}",
                &after[..after.len().min(30)]
            );
            rest = after;
        }
    }
    let _ = Path::new(".");
}

mod escaping {
    use super::*;
    use proptest::prelude::*;

    fn hostile() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "'",
            "\"",
            "$",
            "$(whoami)",
            "`",
            "`n",
            "\n",
            "\r\n",
            "\t",
            "{{",
            "}}",
            "{{ x }}",
            "’",
            "‘",
            "‚",
            "\\",
            "#",
            ": ",
            "- ",
            "&a",
            "*b",
            "!tag",
            "%",
            "@",
            "é",
            "中文",
            "🦀",
            "\u{2028}",
            "\u{85}",
            "\u{feff}",
            "a",
            "Z",
            "0",
            " ",
            "--flag=x",
            ";",
            "|",
            "&&",
        ]);
        prop::collection::vec(pieces, 1..12).prop_map(|v| v.concat())
    }

    fn base_model() -> String {
        // A model with its PKI already issued, so each case only checks it.
        let p = prepared(&example("windows.json"), &[]);
        serde_json::to_string(&p.model).expect("json")
    }

    fn kubeadm_docs(cloud_init: &str) -> Vec<serde_yaml::Value> {
        use base64::Engine;
        let ci: serde_yaml::Value = serde_yaml::from_str(cloud_init).expect("cloud-init is YAML");
        let files = ci["write_files"].as_sequence().expect("write_files");
        let kubeadm = files
            .iter()
            .find(|f| f["path"].as_str() == Some("/etc/hke/kubeadm.yaml"))
            .expect("kubeadm.yaml");
        let body = base64::engine::general_purpose::STANDARD
            .decode(kubeadm["content"].as_str().expect("content"))
            .expect("base64");
        let body = String::from_utf8(body).expect("utf8");
        serde_yaml::Deserializer::from_str(&body)
            .map(|d| serde_yaml::Value::deserialize(d).expect("kubeadm YAML parses"))
            .collect()
    }

    fn arg(list: &serde_yaml::Value, name: &str) -> Option<String> {
        list.as_sequence()?
            .iter()
            .find(|a| a["name"].as_str() == Some(name))
            .and_then(|a| a["value"].as_str().map(String::from))
    }

    use serde::Deserialize;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

        #[test]
        fn hostile_values_arrive_intact(kubelet in hostile(), apiserver in hostile(), pause in hostile()) {
            prop_assume!(!(pause.starts_with('<') && pause.ends_with('>')));
            thread_local! { static BASE: String = base_model(); }
            let base = BASE.with(|b| b.clone());
            let sets: Vec<SetArg> = vec![
                SetArg { raw: "k".into(), path: vec![], value: String::new() },
            ].into_iter().take(0).chain([
                format!("properties.orchestratorProfile.kubernetesConfig.kubeletConfig.--system-reserved={kubelet}"),
                format!("properties.orchestratorProfile.kubernetesConfig.apiServerConfig.--audit-log-path={apiserver}"),
                format!("properties.windowsProfile.windowsPauseImageURL={pause}"),
            ].iter().map(|s| s.parse().expect("set"))).collect();
            let p = prepare(&base, &sets, &mut rng(8), now()).map_err(|r| TestCaseError::fail(format!("{:?}", r.diagnostics)))?;
            // Render only the two nodes checked.
            let plan = hke::plan::plan(&p.cluster).expect("plan");
            let r = hke::render::Renderer::new(&p.cluster, &p.pki, &plan.pod_cidrs).expect("renderer");
            let host = hke::cluster::endpoint_host(&p.cluster);
            let master = &p.cluster.masters.names[0];
            let docs = kubeadm_docs(&r.node(master, &host).expect("master renders").content);
            let init = docs.iter().find(|d| d["kind"].as_str() == Some("InitConfiguration")).expect("init");
            let cluster = docs.iter().find(|d| d["kind"].as_str() == Some("ClusterConfiguration")).expect("cluster");
            prop_assert_eq!(arg(&init["nodeRegistration"]["kubeletExtraArgs"], "system-reserved"), Some(kubelet.clone()));
            prop_assert_eq!(arg(&cluster["apiServer"]["extraArgs"], "audit-log-path"), Some(apiserver.clone()));
            let win = p.cluster.pools.iter().find(|x| x.windows.is_some()).expect("windows pool");
            let script = &r.node(&win.node_names[0], &host).expect("windows renders").content;
            let errors = pwsh_errors(script);
            prop_assert!(errors.is_empty(), "{:?}", errors);
            prop_assert_eq!(ps_literal(script, "$PauseImage"), pause);
            let args = ps_array(script, "$KubeletArgs");
            prop_assert!(args.contains(&format!("--system-reserved={kubelet}")), "{:?}", args);
        }
    }
}

#[test]
fn the_linux_diagnostics_script_parses_and_marks_its_sections() {
    use base64::Engine as _;
    let (_, p) = example_variants().into_iter().next().expect("a variant");
    let files = files_of(&p);
    let (path, cloud_init) = files
        .iter()
        .find(|(k, _)| k.ends_with("cloud-init.yaml"))
        .expect("a Linux node");
    let doc: serde_yaml::Value = serde_yaml::from_str(cloud_init).expect("yaml");
    let script = doc["write_files"]
        .as_sequence()
        .expect("write_files")
        .iter()
        .find(|f| f["path"].as_str() == Some("/etc/hke/bootstrap.sh"))
        .and_then(|f| f["content"].as_str())
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b).expect("b64"))
        .map(|b| String::from_utf8(b).expect("utf-8"))
        .expect("bootstrap.sh");
    let start = script.find("<<'DIAGNOSTICS'\n").expect("heredoc") + "<<'DIAGNOSTICS'\n".len();
    let end = start + script[start..].find("\nDIAGNOSTICS\n").expect("heredoc end");
    let diagnostics = &script[start..end];
    for section in [
        "hke-bootstrap.log",
        "cloud-init-output.log",
        "kubelet.log",
        "containerd.log",
    ] {
        assert!(
            diagnostics.contains(&format!("section {section} ")),
            "{path}: {section}"
        );
    }
    let out = Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().expect("stdin").write_all(diagnostics.as_bytes())?;
            c.wait_with_output()
        })
        .expect("bash");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Its output is what `hke logs` splits: run the section function on a
    // file and cut it back out.
    let tmp = tempfile::tempdir().expect("tmp");
    let probe = format!(
        "{}\nsection probe.log printf 'line one\\nline two\\n'\n",
        diagnostics
            .lines()
            .take_while(|l| !l.starts_with("section "))
            .collect::<Vec<_>>()
            .join("\n")
            .replace(
                "out=/dev/ttyS0",
                &format!("out={}", tmp.path().join("console").display())
            )
            .replace("[ -w \"$out\" ] || out=/dev/console", "")
    );
    let ran = Command::new("bash").arg("-c").arg(&probe).output().expect("bash");
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    let console = std::fs::read_to_string(tmp.path().join("console")).expect("console");
    let sections = hke::ops::logs::sections(&console);
    assert_eq!(sections["probe.log"], "line one\nline two\n");
}
