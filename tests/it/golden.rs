//! Golden files: what each example renders under each network plugin,
//! secrets masked. Review changes as diffs; regenerate with
//! `HKE_UPDATE_GOLDEN=1 cargo test --test it golden`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;

use crate::support::{example, now, rng, root};

fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut l = line.to_string();
        // Bootstrap token, CA hash, SSH keys: random per generate.
        for (prefix, len, label) in [("sha256:", 71, "<ca-hash>")] {
            while let Some(i) = l.find(prefix) {
                let end = (i + len).min(l.len());
                l.replace_range(i..end, label);
            }
        }
        for key in ["ssh-ed25519 ", "ssh-rsa "] {
            if let Some(i) = l.find(key) {
                let end = l[i..].find(['\'', '"']).map(|e| i + e).unwrap_or(l.len());
                l.replace_range(i..end, "<ssh-public-key>");
            }
        }
        out.push_str(&mask_token(&l));
        out.push('\n');
    }
    out
}

/// `abcdef.0123456789abcdef` → `<token>`.
fn mask_token(line: &str) -> String {
    let b = line.as_bytes();
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    while i + 23 <= b.len() {
        if b[i..i + 6].iter().all(|c| ok(*c))
            && b[i + 6] == b'.'
            && b[i + 7..i + 23].iter().all(|c| ok(*c))
            && (i + 23 == b.len() || !ok(b[i + 23]))
            && (i == 0 || !ok(b[i - 1]))
        {
            return format!("{}<token>{}", &line[..i], mask_token(&line[i + 23..]));
        }
        i += 1;
    }
    line.to_string()
}

/// A cloud-init file split into its envelope and its decoded files (PKI
/// contents replaced by a marker).
fn unpack_cloud_init(text: &str) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut envelope = String::new();
    let mut path = String::new();
    for line in text.lines() {
        if let Some(p) = line.trim_start().strip_prefix("- path: ") {
            path = p.trim_matches('"').to_string();
        }
        if let Some(c) = line.trim_start().strip_prefix("content: ") {
            let body = base64::engine::general_purpose::STANDARD
                .decode(c.trim_matches('"'))
                .expect("base64");
            let body = String::from_utf8(body).expect("utf8");
            let shown = if path.starts_with("/etc/kubernetes/pki/") {
                "<pki material>\n".to_string()
            } else {
                body
            };
            files.insert(format!("files{path}"), mask(&shown));
            envelope.push_str(&format!("    content: <see files{path}>\n"));
            continue;
        }
        envelope.push_str(line);
        envelope.push('\n');
    }
    files.insert("cloud-init.yaml".into(), mask(&envelope));
    files
}

/// A Windows script split the same way: the files it writes (its
/// `$NodeFiles` literals) under `files/<path>`, kube-proxy's kubeconfig
/// (a client key) replaced by a marker.
fn unpack_windows(script: &str, spec: &hke::render::NodeSpec) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut envelope = script.to_string();
    for f in &spec.files {
        let rel = format!("files/{}", f.path.replace(':', "").replace('\\', "/"));
        let literal = hke::render::escape::ps(&f.content);
        assert!(envelope.contains(&literal), "{} is not in the script", f.path);
        envelope = envelope.replace(&literal, &format!("<see {rel}>"));
        let shown = if f.path.ends_with("kube-proxy.conf") {
            "<kubeconfig with a client key>\n".to_string()
        } else {
            f.content.clone()
        };
        files.insert(rel, mask(&shown));
    }
    files.insert("bootstrap.ps1".into(), mask(&envelope));
    files
}

#[allow(clippy::disallowed_methods)]
fn updating() -> bool {
    std::env::var_os("HKE_UPDATE_GOLDEN").is_some()
}

#[test]
fn rendered_files_match_the_golden_files() {
    let golden = root().join("tests/golden");
    let mut mismatches = Vec::new();
    let mut seen = 0;
    for (ex, plugins) in [
        ("windows.json", &["azure", "kubenet", "flannel"][..]),
        ("windows-aws.json", &["flannel"][..]),
        ("windows-gcp.json", &["kubenet"][..]),
    ] {
        for plugin in plugins {
            let set: hke::model::load::SetArg =
                format!("properties.orchestratorProfile.kubernetesConfig.networkPlugin={plugin}")
                    .parse()
                    .expect("set");
            let p = hke::ops::generate::prepare(&example(ex), &[set], &mut rng(12), now()).expect("valid");
            let plan = hke::plan::plan(&p.cluster).expect("plan");
            let all: BTreeMap<String, String> = hke::ops::generate::boot_files(&p.cluster, &p.pki, &plan)
                .expect("renders")
                .into_iter()
                .collect();
            let specs = hke::ops::generate::node_specs(&p.cluster, &p.pki, &plan).expect("renders");
            // One of each shape: first master, a joining master, a Linux and a Windows worker.
            let c = &p.cluster;
            let mut pick: Vec<String> = c.masters.names.iter().take(2).cloned().collect();
            for pool in &c.pools {
                if let Some(n) = pool.node_names.first() {
                    pick.push(n.clone());
                }
            }
            let variant = format!("{}-{plugin}", ex.trim_end_matches(".json"));
            let mut expected: BTreeMap<PathBuf, String> = BTreeMap::new();
            for (path, content) in &all {
                let node = path.trim_start_matches("bootstrap/").split('/').next().unwrap_or("");
                if node == "manifests" {
                    expected.insert(
                        PathBuf::from(&variant).join(path.trim_start_matches("bootstrap/")),
                        mask(content),
                    );
                } else if pick.iter().any(|n| n == node) {
                    let base = PathBuf::from(&variant).join(node);
                    if path.ends_with("cloud-init.yaml") {
                        for (name, body) in unpack_cloud_init(content) {
                            expected.insert(base.join(name), body);
                        }
                    } else {
                        let spec = specs.iter().find(|(d, _)| d == node).map(|(_, s)| s).expect("spec");
                        for (name, body) in unpack_windows(content, spec) {
                            expected.insert(base.join(name), body);
                        }
                    }
                }
            }
            for (rel, body) in expected {
                seen += 1;
                let path = golden.join(&rel);
                if updating() {
                    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&path, &body).expect("write golden");
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(want) if want == body => {}
                    Ok(_) => mismatches.push(format!("{} differs", rel.display())),
                    Err(_) => mismatches.push(format!("{} is missing", rel.display())),
                }
            }
        }
    }
    assert!(seen > 30, "{seen}");
    assert!(
        mismatches.is_empty(),
        "rendered files differ from tests/golden (review, then HKE_UPDATE_GOLDEN=1 to accept):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn masking_hides_secrets() {
    let m = mask("token: \"abcdef.0123456789abcdef\" hash sha256:0123456789012345678901234567890123456789012345678901234567890123 key 'ssh-ed25519 AAAAC3Nz hke'");
    assert!(
        !m.contains("abcdef.0123")
            && m.contains("<token>")
            && m.contains("<ca-hash>")
            && m.contains("<ssh-public-key>"),
        "{m}"
    );
}
