//! The binary: exit codes, output directory, JSON output, secrets.

use std::fs;

use crate::support::{example, hke, root, text};

#[test]
fn generate_writes_the_complete_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = root().join("examples/windows.json");
    let out = hke(tmp.path(), &["generate", "--api-model", model.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tmp.path().join("_output/kubernetes-windows");
    for f in [
        "apimodel.json",
        "cluster.json",
        "kubeconfig/kubeconfig.westus2.json",
        "pki/ca.crt",
        "pki/ca.key",
        "pki/apiserver.crt",
        "pki/front-proxy-ca.crt",
        "pki/front-proxy-client.crt",
        "pki/etcd/ca.crt",
        "pki/etcd/server.crt",
        "pki/etcd/peer-2.crt",
        "pki/apiserver-etcd-client.crt",
        "pki/sa.key",
        "pki/sa.pub",
        "pki/admin.crt",
        "ssh/azureuser_ed25519",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(
        !dir.join("pki/etcd/peer-3.crt").exists(),
        "one peer certificate per master"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for secret in [
            "apimodel.json",
            "pki/ca.key",
            "pki/sa.key",
            "kubeconfig/kubeconfig.westus2.json",
            "ssh/azureuser_ed25519",
        ] {
            let mode = fs::metadata(dir.join(secret)).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{secret} is {mode:o}");
        }
    }
    // The generated password and keys are in apimodel.json but never printed.
    let model: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("apimodel.json")).expect("read")).expect("json");
    let password = model
        .pointer("/properties/windowsProfile/adminPassword")
        .and_then(|p| p.as_str())
        .expect("password");
    assert!(password.len() >= 12);
    for stream in [text(&out.stdout), text(&out.stderr)] {
        assert!(!stream.contains(password), "password leaked");
        assert!(!stream.contains("PRIVATE KEY"), "a private key leaked");
    }
    // cluster.json is public: secrets are redacted there.
    let cluster = fs::read_to_string(dir.join("cluster.json")).expect("cluster.json");
    assert!(!cluster.contains(password) && !cluster.contains("PRIVATE KEY"));
    assert!(cluster.contains("<redacted>"));
}

#[test]
fn generate_without_a_model_uses_the_built_in_example() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = hke(tmp.path(), &["generate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("built-in example"));
    assert!(tmp.path().join("_output/kubernetes-windows/apimodel.json").is_file());
}

#[test]
fn existing_directories_need_force_and_failures_write_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = root().join("examples/windows.json");
    let m = model.to_str().expect("utf8");
    assert!(hke(tmp.path(), &["generate", "-m", m, "-o", "out"]).status.success());
    let again = hke(tmp.path(), &["generate", "-m", m, "-o", "out"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("--force"), "{}", text(&again.stderr));
    assert!(hke(tmp.path(), &["generate", "-m", m, "-o", "out", "--force"])
        .status
        .success());

    let bad = hke(
        tmp.path(),
        &[
            "generate",
            "-m",
            m,
            "-o",
            "bad",
            "--set",
            "properties.masterProfile.count=2",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(!tmp.path().join("bad").exists(), "a rejected model writes nothing");
    let leftovers: Vec<String> = fs::read_dir(tmp.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".hke"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_input_exits_2_with_every_error_and_its_position() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text_in = example("windows.json")
        .replace(
            "\"count\": 3,\n      \"dnsPrefix\"",
            "\"count\": 4,\n      \"dnsPrefix\"",
        )
        .replace("\"name\": \"linuxpool1\"", "\"name\": \"Linux_Pool\"")
        .replace(
            "\"containerRuntime\": \"containerd\"",
            "\"containerRuntime\": \"docker\", \"serviceCidr\": \"10.240.0.0/16\"",
        );
    fs::write(tmp.path().join("m.json"), &text_in).expect("write");
    let out = hke(tmp.path(), &["validate", "-m", "m.json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for needle in [
        "properties.masterProfile.count (14:16): masterProfile count 4 is not allowed",
        "properties.agentPoolProfiles[0].name (20:17): pool name \"Linux_Pool\" is invalid",
        "containerRuntime docker is not available",
        "serviceCidr 10.240.0.0/16 overlaps vnetCidr",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(err.contains("fix: "), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn json_output_is_one_document_on_stdout() {
    let tmp = tempfile::tempdir().expect("tmp");
    let m = root().join("examples/windows-aws.json");
    let ok = hke(
        tmp.path(),
        &[
            "--output",
            "json",
            "generate",
            "-m",
            m.to_str().expect("utf8"),
            "-o",
            "o",
        ],
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("stdout is exactly one JSON document");
    assert_eq!(v["ok"], true);
    assert!(v["files"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "apimodel.json")));

    let bad = hke(
        tmp.path(),
        &[
            "--output",
            "json",
            "validate",
            "-m",
            m.to_str().expect("utf8"),
            "--set",
            "properties.masterProfile.vmSise=x",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).expect("JSON on failure too");
    assert_eq!(v["ok"], false);
    let e = &v["errors"][0];
    assert_eq!(e["path"], "properties.masterProfile.vmSise");
    assert_eq!(e["origin"], "--set properties.masterProfile.vmSise=x");
    assert!(e["hint"].as_str().is_some_and(|h| h.contains("vmSize")));
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    assert_eq!(
        hke(tmp.path(), &["migrate"]).status.code(),
        Some(2),
        "migrate needs --api-model"
    );
    assert_eq!(hke(tmp.path(), &["frobnicate"]).status.code(), Some(2));
    let missing = hke(tmp.path(), &["validate", "-m", "nope.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read nope.json"));
    assert_eq!(
        hke(tmp.path(), &["validate", "-m", "x", "--set", "novalue"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(hke(tmp.path(), &["--version"]).status.code(), Some(0));
    fs::write(
        tmp.path().join("broken.json"),
        "{\"apiVersion\": \"vlabs\",\n  \"properties\": {,}}",
    )
    .expect("write");
    let broken = hke(tmp.path(), &["validate", "-m", "broken.json"]);
    assert_eq!(broken.status.code(), Some(2));
    assert!(
        text(&broken.stderr).contains("2:18: the file is not valid JSON"),
        "{}",
        text(&broken.stderr)
    );
}

#[test]
fn a_hostile_password_arrives_intact_and_is_never_printed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let m = root().join("examples/windows.json");
    let pw = "a'b\"$(c)`x{{y}}Zé9";
    let set = format!("properties.windowsProfile.adminPassword={pw}");
    let out = hke(
        tmp.path(),
        &["generate", "-m", m.to_str().expect("utf8"), "-o", "o", "--set", &set],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let model: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(tmp.path().join("o/apimodel.json")).expect("read")).expect("json");
    assert_eq!(model["properties"]["windowsProfile"]["adminPassword"], pw);
    assert!(!text(&out.stderr).contains(pw) && !text(&out.stdout).contains(pw));
    // A weak one is rejected without being echoed.
    let weak = hke(
        tmp.path(),
        &[
            "validate",
            "-m",
            m.to_str().expect("utf8"),
            "--set",
            "properties.windowsProfile.adminPassword=short1",
        ],
    );
    assert_eq!(weak.status.code(), Some(2));
    assert!(!text(&weak.stderr).contains("short1"), "{}", text(&weak.stderr));
}

#[test]
fn migrate_then_generate_the_seed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let seed = crate::support::corpus_dir().join("seed/windows.json");
    let out = hke(
        tmp.path(),
        &["migrate", "-m", seed.to_str().expect("utf8"), "-o", "new.json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = text(&out.stderr);
    assert!(
        log.contains("changed: properties.orchestratorProfile.orchestratorRelease: Kubernetes 1.11.1 →"),
        "{log}"
    );
    assert!(
        log.contains("changed: properties.windowsProfile.adminUsername: placeholder → azureuser"),
        "{log}"
    );
    let gen = hke(tmp.path(), &["generate", "-m", "new.json", "-o", "o"]);
    assert!(gen.status.success(), "{}", text(&gen.stderr));
}

#[test]
fn every_shipped_example_generates_without_warnings() {
    let tmp = tempfile::tempdir().expect("tmp");
    for ex in ["windows.json", "windows-aws.json", "windows-gcp.json"] {
        let m = root().join("examples").join(ex);
        let out = hke(tmp.path(), &["generate", "-m", m.to_str().expect("utf8"), "-o", ex]);
        assert!(out.status.success(), "{ex}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).contains("warning:"), "{ex}: {}", text(&out.stderr));
    }
}

#[test]
fn schema_is_valid_json_with_field_docs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = hke(tmp.path(), &["schema"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let s = v.to_string();
    assert!(
        s.contains("providerProfile") && s.contains("3–45 characters"),
        "doc comments are in the schema"
    );
}
