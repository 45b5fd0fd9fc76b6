//! Diagnostics: every problem with an API model, with its JSON path, the
//! position in the input and, where possible, the fix.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::model::json::Origin;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// JSON path such as `properties.agentPoolProfiles[1].name`; empty for the document.
    pub path: String,
    /// `line:col`, `--set …`, or `default`.
    #[serde(serialize_with = "ser_origin")]
    pub origin: Origin,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn ser_origin<S: serde::Serializer>(o: &Origin, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(o)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: ")?;
        if !self.path.is_empty() {
            write!(f, "{}", self.path)?;
            if self.origin != Origin::Default {
                write!(f, " ({})", self.origin)?;
            }
            write!(f, ": ")?;
        } else if self.origin != Origin::Default {
            write!(f, "{}: ", self.origin)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  fix: {hint}")?;
        }
        Ok(())
    }
}

/// Where each path of the input came from. Built by the loader; validation
/// looks positions up here so that typed stages need not carry them.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    map: BTreeMap<String, Origin>,
}

impl Origins {
    pub fn insert(&mut self, path: String, origin: Origin) {
        self.map.insert(path, origin);
    }

    /// The origin of `path`, or of its nearest ancestor present in the input.
    pub fn lookup(&self, path: &str) -> Origin {
        let mut p = path;
        loop {
            if let Some(o) = self.map.get(p) {
                return o.clone();
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.map.get("").cloned().unwrap_or(Origin::Default),
            }
        }
    }

    /// Was `path` (exactly) given by the user?
    pub fn contains(&self, path: &str) -> bool {
        self.map.contains_key(path)
    }
}

/// A collector of diagnostics.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, path: impl Into<String>, origin: Origin, message: impl Into<String>, hint: Option<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Error,
            path: path.into(),
            origin,
            message: message.into(),
            hint,
        });
    }

    pub fn warning(
        &mut self,
        path: impl Into<String>,
        origin: Origin,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.items.push(Diagnostic {
            severity: Severity::Warning,
            path: path.into(),
            origin,
            message: message.into(),
            hint,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Warning)
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
}

/// The error returned when a model is rejected: all its errors (and the
/// warnings found on the way).
#[derive(Debug, Clone, thiserror::Error)]
pub struct Rejected {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        write!(f, "the API model has {n} error{}", if n == 1 { "" } else { "s" })
    }
}

/// Suggest the closest of `candidates` to `word`, if one is close enough.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.82)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_falls_back_to_the_nearest_ancestor() {
        let mut o = Origins::default();
        o.insert("properties".into(), Origin::File { line: 2, col: 3 });
        o.insert(
            "properties.agentPoolProfiles[1]".into(),
            Origin::File { line: 9, col: 5 },
        );
        assert_eq!(
            o.lookup("properties.agentPoolProfiles[1].name"),
            Origin::File { line: 9, col: 5 }
        );
        assert_eq!(
            o.lookup("properties.masterProfile.count"),
            Origin::File { line: 2, col: 3 }
        );
        assert_eq!(o.lookup("location"), Origin::Default);
    }

    #[test]
    fn suggestions_are_close_words_only() {
        let keys = ["vmSize", "count", "dnsPrefix", "osDiskSizeGB"];
        assert_eq!(did_you_mean("vmsise", keys), Some("vmSize"));
        assert_eq!(did_you_mean("dnsprefx", keys), Some("dnsPrefix"));
        assert_eq!(did_you_mean("banana", keys), None);
    }

    #[test]
    fn display_names_path_position_and_fix() {
        let d = Diagnostic {
            severity: Severity::Error,
            path: "properties.masterProfile.count".into(),
            origin: Origin::File { line: 4, col: 16 },
            message: "2 is not a valid master count".into(),
            hint: Some("use 1, 3 or 5".into()),
        };
        assert_eq!(
            d.to_string(),
            "error: properties.masterProfile.count (4:16): 2 is not a valid master count\n  fix: use 1, 3 or 5"
        );
    }
}
