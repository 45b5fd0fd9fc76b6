//! Property tests: generate is stable on its own output, and no input makes
//! any stage panic.

use std::panic::{catch_unwind, AssertUnwindSafe};

use hke::model::load::SetArg;
use hke::ops::generate::prepare;
use proptest::prelude::*;

use crate::support::{corpus_files, example, now, rng};

fn regenerate(text: &str, sets: &[SetArg], seed: u64) -> Option<(serde_json::Value, serde_json::Value)> {
    let first = prepare(text, sets, &mut rng(seed), now()).ok()?;
    let json = serde_json::to_string_pretty(&first.model).expect("serializes");
    let second = prepare(&json, &[], &mut rng(seed + 1), now()).expect("the output of generate generates");
    Some((
        serde_json::to_value(&first.model).expect("v"),
        serde_json::to_value(&second.model).expect("v"),
    ))
}

fn sets() -> impl Strategy<Value = Vec<SetArg>> {
    let one = prop_oneof![
        prop::sample::select(vec![1, 3, 5]).prop_map(|n| format!("properties.masterProfile.count={n}")),
        (1..40u32).prop_map(|n| format!("properties.agentPoolProfiles[0].count={n}")),
        (1..40u32).prop_map(|n| format!("properties.agentPoolProfiles[1].count={n}")),
        prop::sample::select(vec!["azure", "kubenet", "flannel", "calico"])
            .prop_map(|p| format!("properties.orchestratorProfile.kubernetesConfig.networkPlugin={p}")),
        prop::sample::select(vec!["2019", "2022", "2025"])
            .prop_map(|v| format!("properties.agentPoolProfiles[1].windowsVersion={v}")),
        prop::sample::select(vec!["1.35", "1.36", "1.37"])
            .prop_map(|r| format!("properties.orchestratorProfile.orchestratorRelease={r}")),
        "[a-z][a-z0-9-]{2,20}[a-z0-9]".prop_map(|d| format!("properties.masterProfile.dnsPrefix={d}")),
        prop::sample::select(vec!["westus2", "eastus", "northeurope"]).prop_map(|l| format!("location={l}")),
    ];
    prop::collection::vec(one, 0..5).prop_map(|v| v.iter().map(|s| s.parse().expect("valid --set")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn generate_is_stable_on_its_own_output(sets in sets(), seed in any::<u64>()) {
        if let Some((a, b)) = regenerate(&example("windows.json"), &sets, seed) {
            prop_assert_eq!(a, b);
        }
    }
}

/// Ways to damage a model.
#[derive(Debug, Clone)]
enum Mutation {
    FlipByte(usize, u8),
    Truncate(usize),
    DeleteKey(usize),
    WrongType(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipByte(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DeleteKey),
        (any::<usize>(), any::<u8>()).prop_map(|(i, t)| Mutation::WrongType(i, t)),
    ]
}

/// Paths of every object member, for key deletion and type swaps.
fn member_paths(v: &serde_json::Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let serde_json::Value::Object(m) = v {
        for (k, x) in m {
            prefix.push(k.clone());
            out.push(prefix.clone());
            member_paths(x, prefix, out);
            prefix.pop();
        }
    }
    if let serde_json::Value::Array(a) = v {
        for (i, x) in a.iter().enumerate() {
            prefix.push(format!("#{i}"));
            member_paths(x, prefix, out);
            prefix.pop();
        }
    }
}

fn edit(
    v: &mut serde_json::Value,
    path: &[String],
    f: &mut dyn FnMut(&mut serde_json::Map<String, serde_json::Value>, &str),
) {
    let (last, init) = path.split_last().expect("non-empty");
    let mut cur = v;
    for p in init {
        cur = match p.strip_prefix('#') {
            Some(i) => &mut cur[i.parse::<usize>().expect("index")],
            None => &mut cur[p.as_str()],
        };
    }
    if let serde_json::Value::Object(m) = cur {
        f(m, last);
    }
}

fn apply(text: &str, m: &Mutation) -> String {
    // Earlier truncations can leave nothing to damage.
    if text.is_empty() {
        return String::new();
    }
    match m {
        Mutation::FlipByte(i, b) => {
            let mut bytes = text.as_bytes().to_vec();
            let i = i % bytes.len();
            bytes[i] = *b;
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::Truncate(i) => text.chars().take(i % text.chars().count()).collect(),
        Mutation::DeleteKey(i) | Mutation::WrongType(i, _) => {
            let mut v: serde_json::Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(_) => return text.to_string(),
            };
            let mut paths = Vec::new();
            member_paths(&v, &mut Vec::new(), &mut paths);
            if paths.is_empty() {
                return text.to_string();
            }
            let path = paths[i % paths.len()].clone();
            let kind = if let Mutation::WrongType(_, t) = m {
                Some(*t)
            } else {
                None
            };
            edit(&mut v, &path, &mut |obj, key| match kind {
                None => {
                    obj.remove(key);
                }
                Some(t) => {
                    let new = match t % 6 {
                        0 => serde_json::json!(null),
                        1 => serde_json::json!(-1),
                        2 => serde_json::json!("x"),
                        3 => serde_json::json!(true),
                        4 => serde_json::json!([1, {"a": 2}]),
                        _ => serde_json::json!({"unexpected": 1.5}),
                    };
                    obj.insert(key.to_string(), new);
                }
            });
            v.to_string()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn mutated_corpus_models_never_panic(file in prop::sample::select(corpus_files()), muts in prop::collection::vec(mutation(), 1..4)) {
        let mut text = std::fs::read_to_string(&file).expect("readable");
        // Start from the migrated model half of the time, so that damage hits
        // deep stages (PKI, validation), not only the first error.
        if muts.len() % 2 == 0 {
            if let Ok((m, _)) = hke::ops::migrate::migrate(&text, &[]) {
                text = serde_json::to_string_pretty(&m).expect("json");
            }
        }
        for m in &muts {
            text = apply(&text, m);
        }
        let result = catch_unwind(AssertUnwindSafe(|| prepare(&text, &[], &mut rng(5), now())));
        prop_assert!(result.is_ok(), "panic on {}", file.display());
        if let Ok(Err(r)) = result {
            prop_assert!(r.diagnostics.iter().all(|d| !d.message.is_empty()));
        }
        let migrated = catch_unwind(AssertUnwindSafe(|| hke::ops::migrate::migrate(&text, &[])));
        prop_assert!(migrated.is_ok(), "migrate panicked on {}", file.display());
    }

    /// Regression: two truncations in a row emptied the text and the
    /// mutation helper divided by zero.
    #[test]
    fn mutations_of_an_empty_text_are_empty(m in mutation()) {
        prop_assert_eq!(apply("", &m), "");
    }

    #[test]
    fn the_parser_never_panics_and_agrees_with_serde_json(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let ours = hke::model::json::parse(&text);
        let theirs = serde_json::from_str::<serde_json::Value>(text.trim_start_matches('\u{feff}'));
        match (ours, theirs) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a.to_json(), b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "disagree on {:?}: ours {:?}, serde_json {:?}", text, a.is_ok(), b.is_ok()),
        }
    }
}
