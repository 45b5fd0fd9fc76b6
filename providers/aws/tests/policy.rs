//! examples/aws-iam-policy.json allows exactly the EC2 and ELBv2 actions the
//! provider calls (found in its source), so users can grant least privilege
//! and a new call cannot ship without its permission.

use std::collections::BTreeSet;

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `self.ec2` / `self.elb` followed by `.operation(` (rustfmt breaks such
/// chains over lines: whitespace is dropped first).
fn calls(src: &str) -> BTreeSet<String> {
    let compact: String = src.split_whitespace().collect();
    let src = compact.as_str();
    let mut out = BTreeSet::new();
    for (service, prefix) in [("self.ec2", "ec2"), ("self.elb", "elasticloadbalancing")] {
        let mut rest = src;
        while let Some(i) = rest.find(service) {
            rest = &rest[i + service.len()..];
            if let Some(op) = rest.strip_prefix('.') {
                let name: String = op.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if op[name.len()..].starts_with('(') && !name.is_empty() {
                    out.insert(format!("{prefix}:{}", pascal(&name)));
                }
            }
        }
    }
    out
}

#[test]
fn the_example_policy_allows_exactly_what_the_provider_calls() {
    let root = env!("CARGO_MANIFEST_DIR");
    let src = std::fs::read_to_string(format!("{root}/src/lib.rs")).expect("source");
    let mut used = calls(&src);
    assert!(used.contains("ec2:RunInstances") && used.contains("elasticloadbalancing:CreateLoadBalancer"));
    // Tags passed to CreateLoadBalancer/CreateTargetGroup need AddTags.
    used.insert("elasticloadbalancing:AddTags".into());
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/../../examples/aws-iam-policy.json")).expect("policy"),
    )
    .expect("json");
    let allowed: BTreeSet<String> = policy["Statement"][0]["Action"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let missing: Vec<_> = used.difference(&allowed).collect();
    let extra: Vec<_> = allowed.difference(&used).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, not used {extra:?}"
    );
}
