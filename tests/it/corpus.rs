//! Every model acs-engine and aks-engine wrote either generates or is
//! rejected with messages that name the field, the value and the fix; after
//! `hke migrate` every Kubernetes model generates.

use std::panic::{catch_unwind, AssertUnwindSafe};

use hke::model::diag::{Diagnostic, Severity};
use hke::model::json::Origin;
use hke::ops::generate::prepare;

use crate::support::{corpus_files, now, rng};

fn orchestrator(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let model = v.get("apiModel").unwrap_or(&v);
    model
        .pointer("/properties/orchestratorProfile/orchestratorType")
        .and_then(|t| t.as_str())
        .map(String::from)
}

fn check_error_quality(file: &str, d: &Diagnostic) {
    assert!(!d.message.is_empty(), "{file}: empty message");
    assert!(
        !d.path.is_empty() || d.origin != Origin::Default,
        "{file}: error without a path or position: {d}"
    );
    assert!(
        d.hint.is_some() || d.message.contains("not supported"),
        "{file}: error without a fix: {d}"
    );
    for serde_words in ["invalid type:", "missing field", "unknown variant"] {
        assert!(!d.message.contains(serde_words), "{file}: bare serde error: {d}");
    }
}

#[test]
fn every_corpus_model_generates_or_is_rejected_clearly() {
    let mut generated = 0;
    let mut rejected = 0;
    for path in corpus_files() {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).expect("readable");
        let result = catch_unwind(AssertUnwindSafe(|| prepare(&text, &[], &mut rng(1), now())));
        let result = result.unwrap_or_else(|_| panic!("{file}: generate panicked"));
        match (result, orchestrator(&text)) {
            (Ok(_), Some(t)) if !t.eq_ignore_ascii_case("kubernetes") => panic!("{file}: a {t} model generated"),
            (Ok(_), _) => generated += 1,
            (Err(r), orch) => {
                rejected += 1;
                let errors: Vec<&Diagnostic> = r.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
                assert!(!errors.is_empty(), "{file}: rejected without an error");
                for d in &errors {
                    check_error_quality(&file, d);
                }
                if let Some(t) = orch.filter(|t| !t.eq_ignore_ascii_case("kubernetes")) {
                    let want = format!("hke builds Kubernetes clusters; {t} is not supported");
                    assert!(
                        errors.iter().any(|d| d.message == want),
                        "{file}: expected {want:?}, got {errors:?}"
                    );
                }
            }
        }
    }
    // The corpus as copied has empty dnsPrefix/keyData almost everywhere.
    assert!(
        rejected > 0 && generated + rejected >= 90,
        "generated {generated}, rejected {rejected}"
    );
}

#[test]
fn after_migrate_every_kubernetes_model_generates() {
    let mut migrated = 0;
    for path in corpus_files() {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).expect("readable");
        let is_k8s = orchestrator(&text).is_none_or(|t| t.eq_ignore_ascii_case("kubernetes"));
        match hke::ops::migrate::migrate(&text, &[]) {
            Ok((model, changes)) => {
                assert!(is_k8s, "{file}: a non-Kubernetes model migrated");
                for c in &changes {
                    assert!(
                        !c.path.is_empty() && !c.change.is_empty(),
                        "{file}: empty change record"
                    );
                }
                let out = serde_json::to_string_pretty(&model).expect("serializes");
                if let Err(r) = prepare(&out, &[], &mut rng(2), now()) {
                    let errs: Vec<String> = r.diagnostics.iter().map(|d| d.to_string()).collect();
                    panic!("{file}: migrated model does not generate:\n{}", errs.join("\n"));
                }
                migrated += 1;
            }
            Err(e) => {
                assert!(!is_k8s, "{file}: migrate failed: {e}");
                assert!(e.to_string().contains("hke builds Kubernetes clusters"), "{file}: {e}");
            }
        }
    }
    assert!(migrated >= 85, "only {migrated} models migrated");
}

#[test]
fn the_seed_model_names_its_placeholders() {
    let text = std::fs::read_to_string(crate::support::corpus_dir().join("seed/windows.json")).expect("seed");
    let r = prepare(&text, &[], &mut rng(3), now()).expect_err("placeholders are rejected");
    let errs: Vec<String> = r
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    let all = errs.join("\n");
    assert!(
        all.contains("properties.windowsProfile.adminPassword (29:30): the value is a placeholder"),
        "{all}"
    );
    assert!(
        !all.contains("<your-password>"),
        "the password field's value is not echoed: {all}"
    );
    assert!(all.contains("\"<your-username>\" is a placeholder"), "{all}");
    assert!(
        all.contains("keyData (36:36)") && all.contains("hke generates a key pair"),
        "{all}"
    );
    assert!(
        all.contains("Kubernetes 1.11.1 is not supported") && all.contains("hke migrate"),
        "{all}"
    );
    assert!(
        !all.contains("does not match"),
        "no cascading error after an unsupported version: {all}"
    );
    assert_eq!(errs.len(), 4, "{all}");
}
