//! Generic field checks the sections share: placeholders, labels and
//! taints, component flags, VM sizes, Go durations, ranges and enumerations.

use crate::catalog::vmsizes;
use crate::model::types::Cloud;
use crate::model::vlabs;
use crate::secrets::is_placeholder;

use super::V;

/// kubelet flags removed from Kubernetes (acs-engine models still carry them).
pub const REMOVED_KUBELET_FLAGS: &[(&str, &str)] = &[
    ("--network-plugin", "1.24"),
    ("--network-plugin-mtu", "1.24"),
    ("--cni-bin-dir", "1.24"),
    ("--cni-conf-dir", "1.24"),
    ("--cni-cache-dir", "1.24"),
    ("--non-masquerade-cidr", "1.24"),
    ("--image-pull-progress-deadline", "1.24"),
    ("--docker-endpoint", "1.24"),
    ("--experimental-dockershim-root-directory", "1.24"),
    ("--cadvisor-port", "1.12"),
    ("--allow-privileged", "1.15"),
    ("--keep-terminated-pod-volumes", "1.31"),
    ("--container-runtime", "1.27"),
    ("--azure-container-registry-config", "1.30"),
    ("--pod-infra-container-image", "1.35"),
    ("--hairpin-mode", "1.35"),
];

/// kubelet flags hke sets itself.
pub const OWNED_KUBELET_FLAGS: &[&str] = &[
    "--kubeconfig",
    "--bootstrap-kubeconfig",
    "--container-runtime-endpoint",
    "--node-ip",
    "--hostname-override",
    "--config",
];

/// Flags whose values are Go durations.
pub const DURATION_FLAGS: &[&str] = &[
    "--node-status-update-frequency",
    "--node-monitor-grace-period",
    "--pod-eviction-timeout",
    "--route-reconciliation-period",
    "--streaming-connection-idle-timeout",
    "--runtime-request-timeout",
    "--image-pull-progress-deadline",
];

/// Whether the value at a model path (`a.b.adminPassword`) is secret.
fn is_secret_path(path: &str) -> bool {
    crate::secrets::is_secret_key(path.rsplit('.').next().unwrap_or(path))
}

/// Report `<your-...>` placeholders anywhere in the model.
pub(super) fn check_placeholders(v: &mut V<'_>, value: &serde_json::Value, path: &str) {
    match value {
        serde_json::Value::String(s) if is_placeholder(s) => {
            let last = path.rsplit('.').next().unwrap_or(path);
            let hint = match last {
                "adminPassword" => {
                    "remove adminPassword and hke generates a strong one (kept in the output apimodel.json)".to_string()
                }
                "keyData" => {
                    "remove the publicKeys entry and hke generates a key pair, or paste your OpenSSH public key"
                        .to_string()
                }
                "adminUsername" => "write a user name such as azureuser".to_string(),
                "dnsPrefix" => "write a DNS prefix such as mycluster".to_string(),
                _ => "replace the placeholder with a real value, or remove the key".to_string(),
            };
            let shown = if is_secret_path(path) {
                "the value".to_string()
            } else {
                format!("{s:?}")
            };
            v.err(path, format!("{shown} is a placeholder"), hint);
        }
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                check_placeholders(v, x, &child);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                check_placeholders(v, x, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

fn label_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

pub(super) fn dns_subdomain_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Check a node label; `Err` says what is wrong.
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if !label_name_ok(name) {
        return Err(format!(
            "label key {key:?} is invalid: the name part must be 1–63 characters of letters, digits, '-', '_' and '.', beginning and ending with a letter or digit"
        ));
    }
    if let Some(p) = prefix {
        if !dns_subdomain_ok(p) {
            return Err(format!(
                "label key {key:?} is invalid: the prefix {p:?} must be a lowercase DNS subdomain"
            ));
        }
        let restricted = |d: &str| p == d || p.ends_with(&format!(".{d}"));
        let allowed = |d: &str| p == d || p.ends_with(&format!(".{d}"));
        if (restricted("kubernetes.io") || restricted("k8s.io"))
            && !allowed("node.kubernetes.io")
            && !allowed("kubelet.kubernetes.io")
        {
            return Err(format!(
                "label key {key:?} uses the reserved prefix {p:?}: kubelets may only set kubernetes.io labels under node.kubernetes.io/ and kubelet.kubernetes.io/; use a prefix of your own such as example.com/"
            ));
        }
    }
    if !value.is_empty() && !label_name_ok(value) {
        return Err(format!(
            "label value {value:?} of {key:?} is invalid: at most 63 characters of letters, digits, '-', '_' and '.', beginning and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Parse `--register-with-taints` (`k=v:Effect,k2:Effect`).
pub fn parse_taints(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (kv, effect) = t
            .rsplit_once(':')
            .ok_or_else(|| format!("taint {t:?} has no effect; write key=value:NoSchedule"))?;
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            return Err(format!(
                "taint {t:?} has effect {effect:?}; use NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let unprefixed_ok = |s: &str| check_label(s, "").is_ok();
        if !unprefixed_ok(k) || (!v.is_empty() && !label_name_ok(v)) {
            return Err(format!("taint {t:?} has an invalid key or value"));
        }
        out.push(t.to_string());
    }
    Ok(out)
}

pub(super) fn check_flags(v: &mut V<'_>, path: &str, flags: Option<&vlabs::FlagMap>, kubelet: bool) {
    let Some(flags) = flags else { return };
    for key in flags.keys() {
        let p = format!("{path}[{key:?}]");
        if !key.starts_with("--") || key.len() < 3 {
            v.err(
                &p,
                format!("flag {key:?} must be written with its dashes"),
                format!("write \"--{}\"", key.trim_start_matches('-')),
            );
            continue;
        }
        if kubelet {
            if let Some((_, since)) = REMOVED_KUBELET_FLAGS.iter().find(|(f, _)| f == key) {
                v.err(
                    &p,
                    format!("kubelet flag {key} was removed in Kubernetes {since}"),
                    "remove it (hke migrate removes it)".to_string(),
                );
            } else if OWNED_KUBELET_FLAGS.contains(&key.as_str()) {
                v.err(
                    &p,
                    format!("kubelet flag {key} is set by hke itself"),
                    "remove it".to_string(),
                );
            }
        }
    }
}

pub(super) fn check_vm_size(v: &mut V<'_>, cloud: Cloud, path: &str, size: &str) {
    let azure_shaped = size.starts_with("Standard_") || size.starts_with("Basic_");
    match cloud {
        Cloud::Azure | Cloud::Fake => {
            if !azure_shaped || size.contains(' ') {
                v.err(
                    path,
                    format!("{size:?} is not an Azure VM size"),
                    "use an Azure size such as Standard_D2s_v3".to_string(),
                );
            }
        }
        // A flavor name, or a mapped Azure size (the nearest flavor by vCPUs
        // and memory is picked at deploy).
        Cloud::OpenStack => {
            if size.trim().is_empty() {
                v.err(
                    path,
                    "the VM size is empty",
                    "name a flavor of the cloud, such as m1.large".to_string(),
                );
            } else if azure_shaped && vmsizes::lookup(size).is_none() {
                v.err(
                    path,
                    format!("Azure size {size:?} has no mapping to vCPUs and memory"),
                    format!(
                        "name a flavor of the cloud, or one of the mapped Azure sizes: {}",
                        vmsizes::names().join(", ")
                    ),
                );
            }
        }
        Cloud::Aws | Cloud::Gcp => {
            if azure_shaped {
                if vmsizes::lookup(size).is_none() {
                    let example = if cloud == Cloud::Aws {
                        "m5.large"
                    } else {
                        "n2-standard-2"
                    };
                    v.err(
                        path,
                        format!("Azure size {size:?} has no mapping to {cloud}"),
                        format!(
                            "use a native {cloud} type such as {example}, or one of the mapped Azure sizes: {}",
                            vmsizes::names().join(", ")
                        ),
                    );
                }
            } else if !vmsizes::is_native(cloud, size) {
                let example = if cloud == Cloud::Aws {
                    "m5.large"
                } else {
                    "n2-standard-2"
                };
                v.err(
                    path,
                    format!("{size:?} is not a machine type on {cloud}"),
                    format!("use a type such as {example}"),
                );
            }
        }
    }
}

/// Does `s` parse as a Go duration (`300ms`, `1h2m3.5s`, `0`)?
pub fn is_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    let mut any = false;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[num_len..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u) && !(**u == "m" && rest.starts_with("ms")));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
        any = true;
    }
    any
}

pub(super) fn check_durations(v: &mut V<'_>, path: &str, flags: Option<&vlabs::FlagMap>) {
    for (flag, value) in flags.into_iter().flatten() {
        if DURATION_FLAGS.contains(&flag.as_str()) && !is_go_duration(value) {
            v.err(
                &format!("{path}[{flag:?}]"),
                format!("{flag} {value:?} is not a duration"),
                "write a duration such as 10s, 5m0s or 1h".to_string(),
            );
        }
    }
}

pub(super) fn in_range(
    v: &mut V<'_>,
    path: &str,
    value: Option<i64>,
    range: std::ops::RangeInclusive<i64>,
    what: &str,
) {
    if let Some(n) = value {
        if !range.contains(&n) {
            v.err(
                path,
                format!("{n}{what} is out of range"),
                format!("use {} to {}", range.start(), range.end()),
            );
        }
    }
}

pub(super) fn one_of(v: &mut V<'_>, path: &str, value: Option<&str>, allowed: &[&str]) {
    if let Some(x) = value.filter(|x| !x.is_empty()) {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(x)) {
            v.err(
                path,
                format!("{x:?} is not allowed"),
                format!("use one of {}", allowed.join(", ")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for (k, val) in [
            ("app", "web"),
            ("example.com/tier", "gold"),
            ("node.kubernetes.io/windows-build", "10.0.20348"),
            ("x", ""),
        ] {
            assert!(check_label(k, val).is_ok(), "{k}={val}");
        }
        for (k, val) in [
            ("kubernetes.io/os", "windows"),
            ("-bad", "x"),
            ("a/b/c", "x"),
            ("app", "-x"),
            ("Example.com/a", "b"),
            (&"a".repeat(64), "x"),
        ] {
            assert!(check_label(k, val).is_err(), "{k}={val}");
        }
    }

    #[test]
    fn taints() {
        assert_eq!(
            parse_taints("os=windows:NoSchedule").expect("ok"),
            vec!["os=windows:NoSchedule"]
        );
        assert_eq!(parse_taints("a:NoExecute, b=c:PreferNoSchedule").expect("ok").len(), 2);
        for bad in ["os=windows", "os=windows:Never", "=x:NoSchedule"] {
            assert!(parse_taints(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_durations() {
        for ok in ["0", "10s", "5m0s", "1h2m3.5s", "300ms", "1.5h", "-2s"] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["", "10", "5 m", "1d", "s", "1.2.3s", "abc"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }

    #[test]
    fn placeholders_are_detected_without_echoing_secrets() {
        assert!(is_placeholder("<your-password>"));
        assert!(!is_placeholder("a<b>"));
        assert!(is_secret_path("properties.windowsProfile.adminPassword"));
        assert!(!is_secret_path("properties.masterProfile.dnsPrefix"));
    }
}
