//! The pipeline's direction, read off the source: every `crate::` path in
//! `src/` (code, tests and doc links alike) may only name a stage before the
//! file's own, and the modules of `ops` form no circle. A new import that
//! points backwards fails here with the file, the line and the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The stages in pipeline order. Leaves (rank 0) import no stage; two
/// stages of the same rank (render, engine) may not import each other.
const STAGES: &[(&str, u32)] = &[
    ("context", 0),
    ("output", 0),
    ("secrets", 0),
    ("model", 1),
    ("catalog", 2),
    ("cluster", 3),
    ("pki", 4),
    ("plan", 5),
    ("render", 6),
    ("engine", 6),
    ("ui", 7),
    ("ops", 8),
    ("cli", 9),
];

fn rank(stage: &str) -> Option<u32> {
    STAGES.iter().find(|(s, _)| *s == stage).map(|(_, r)| *r)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A file's stage and, inside `ops`, its module (`ops::ci` for
/// `ops/ci/mod.rs`, `ops::junit` for `ops/junit.rs`).
fn stage_of(rel: &Path) -> (String, Option<String>) {
    let parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    let first = parts[0].trim_end_matches(".rs").to_string();
    let sub = (first == "ops" && parts.len() > 1 && parts[1] != "mod.rs")
        .then(|| parts[1].trim_end_matches(".rs").to_string());
    (first, sub)
}

/// Every `crate::a::b` path in the text (a, b), skipping line comments.
fn crate_paths(text: &str) -> Vec<(usize, String, Option<String>)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let before = &rest[..i];
            rest = &rest[i + "crate::".len()..];
            // `hke_provider_api::...crate::` cannot occur; skip `$crate::` in macros.
            if before.ends_with('$') {
                continue;
            }
            let ident = |s: &str| -> String {
                s.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            };
            let a = ident(rest);
            let after = &rest[a.len()..];
            let b = after.strip_prefix("::").map(ident).filter(|b| !b.is_empty());
            out.push((n + 1, a, b));
        }
    }
    out
}

#[test]
fn no_stage_imports_a_later_one_and_ops_has_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut ops_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut seen_stages = BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        if rel == Path::new("lib.rs") || rel == Path::new("main.rs") {
            continue;
        }
        let (stage, sub) = stage_of(rel);
        let Some(own) = rank(&stage) else {
            wrong.push(format!(
                "{}: module {stage:?} is not a stage of STAGES; place it in the pipeline",
                rel.display()
            ));
            continue;
        };
        seen_stages.insert(stage.clone());
        let text = std::fs::read_to_string(f).expect("read");
        for (line, a, b) in crate_paths(&text) {
            let Some(theirs) = rank(&a) else {
                wrong.push(format!("{}:{line}: crate::{a} is not a stage", rel.display()));
                continue;
            };
            if a == stage {
                if let (Some(me), Some(them)) = (&sub, &b) {
                    if me != them {
                        ops_edges.entry(me.clone()).or_default().insert(them.clone());
                    }
                }
                continue;
            }
            if theirs >= own {
                wrong.push(format!(
                    "{}:{line}: {stage} (stage {own}) uses crate::{a} (stage {theirs}); move what it needs to an earlier stage",
                    rel.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the pipeline:\n{}", wrong.join("\n"));
    // Every stage of the list exists, so the list cannot silently rot.
    for (s, _) in STAGES {
        assert!(seen_stages.contains(*s), "stage {s} has no file in src/");
    }
    // ops: no circle among its modules (depth-first search for a back edge).
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in ops_edges.keys() {
        if let Some(c) = visit(n, &ops_edges, &mut Vec::new(), &mut done) {
            panic!("ops modules import in a circle: {}", c.join(" → "));
        }
    }
    assert!(!ops_edges.is_empty(), "the ops graph was read (ci uses deploy)");
}

#[test]
fn the_reader_sees_paths_and_skips_comments() {
    let found = crate_paths("use crate::plan::Plan;\n// crate::cli::x\nlet a = crate::ops::ci::now();");
    assert_eq!(
        found,
        vec![
            (1, "plan".into(), Some("Plan".into())),
            (3, "ops".into(), Some("ci".into()))
        ]
    );
}
