//! The process environment, read once and passed down, so that library code
//! and tests never read ambient variables (or credentials) by accident.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The variables hke reads (`HKE_*`, `ARTIFACTS`, `AZURE_SUBSCRIPTION_ID`).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The variables of this process hke reads: `HKE_*`, `ARTIFACTS`,
    /// `AZURE_SUBSCRIPTION_ID`, and OpenStack's `OS_*` with `HOME` and
    /// `XDG_CONFIG_HOME` (where `clouds.yaml` is searched, as the OpenStack
    /// CLI searches it). The cloud SDKs read their own credential variables.
    #[allow(clippy::disallowed_methods)]
    pub fn from_process() -> Env {
        Env {
            // ARTIFACTS: where CI systems (Prow and others) collect a job's files.
            vars: std::env::vars()
                .filter(|(k, _)| {
                    k.starts_with("HKE_")
                        || k.starts_with("OS_")
                        || matches!(
                            k.as_str(),
                            "ARTIFACTS" | "AZURE_SUBSCRIPTION_ID" | "HOME" | "XDG_CONFIG_HOME"
                        )
                })
                .collect(),
        }
    }

    /// The variables whose names start with `prefix`, or are in `names`.
    pub fn matching(&self, prefix: &str, names: &[&str]) -> std::collections::BTreeMap<String, String> {
        self.vars
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) || names.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Env {
        Env {
            vars: pairs.into_iter().collect(),
        }
    }

    /// The same variables with `key` set (when `value` is given).
    pub fn with(&self, key: &str, value: Option<&str>) -> Env {
        let mut e = self.clone();
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            e.vars.insert(key.to_string(), v.to_string());
        }
        e
    }

    /// The same variables with `key` set unless it already is.
    pub fn with_default(&self, key: &str, value: Option<&str>) -> Env {
        if self.get(key).is_some() {
            return self.clone();
        }
        self.with(key, value)
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.vars.get(key).cloned()
    }

    /// Where the fake cloud lives: `HKE_FAKE_CLOUD`, else `_output/.fake-cloud`.
    pub fn fake_cloud_dir(&self) -> PathBuf {
        self.get("HKE_FAKE_CLOUD")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("_output/.fake-cloud"))
    }
}

/// The current time as RFC 3339 in UTC (`2026-11-29T05:00:00Z`): the
/// stamps hke writes into state, tags and reports.
pub fn now_rfc3339() -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}
