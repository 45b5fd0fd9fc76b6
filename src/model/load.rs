//! Loading an API model: text → positioned JSON → `--set` edits → a strict,
//! case-insensitive walk against the model's JSON Schema → `ApiModel`.
//!
//! The walk is driven by the schema that schemars derives from
//! `model::vlabs`, so the types are the single source of truth for which keys
//! exist. It reports every problem at once: unknown keys (with a "did you
//! mean"), keys given twice in different case, and wrong types. After a clean
//! walk serde deserialization cannot fail.

use std::sync::OnceLock;

use serde_json::{Map, Value as Json};

use super::json::{self, Key, Node, Origin, Value};
use super::vlabs::ApiModel;
use crate::model::diag::{did_you_mean, Diagnostics, Origins, Rejected};

/// How hke treats a field, from the `x-hke` schema extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldClass {
    /// Acted on by the Azure provider only.
    Azure,
    /// Kept but never acted on.
    Inert,
}

/// A successfully loaded model.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub model: ApiModel,
    pub origins: Origins,
    /// Warnings found while loading (inert or Azure-only keys, wrapper use).
    pub diagnostics: Diagnostics,
    /// Was the input the aks-engine e2e wrapper format?
    pub wrapped: bool,
}

/// The JSON Schema of `ApiModel`, as a JSON value.
pub fn schema() -> &'static Json {
    static SCHEMA: OnceLock<Json> = OnceLock::new();
    SCHEMA.get_or_init(|| schemars::schema_for!(ApiModel).as_value().clone())
}

/// One `--set path=value` edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetArg {
    pub raw: String,
    pub path: Vec<Segment>,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

impl std::str::FromStr for SetArg {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let (path, value) = raw.split_once('=').ok_or_else(|| {
            format!("--set {raw:?} has no '='; write it as path=value, e.g. properties.masterProfile.count=3")
        })?;
        let mut segments = Vec::new();
        for part in path.split('.') {
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() && (segments.is_empty() || rest.is_empty()) {
                return Err(format!("--set {raw:?}: empty key in path {path:?}"));
            }
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_string()));
            }
            while !rest.is_empty() {
                let close = rest
                    .find(']')
                    .ok_or_else(|| format!("--set {raw:?}: missing ']' in path {path:?}"))?;
                let index = rest[1..close]
                    .parse::<usize>()
                    .map_err(|_| format!("--set {raw:?}: {:?} is not an array index", &rest[1..close]))?;
                segments.push(Segment::Index(index));
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return Err(format!("--set {raw:?}: unexpected {rest:?} after ']'"));
                }
            }
        }
        Ok(SetArg {
            raw: raw.to_string(),
            path: segments,
            value: value.to_string(),
        })
    }
}

/// Parse, apply `--set` edits, walk and deserialize.
pub fn load(text: &str, sets: &[SetArg]) -> Result<Loaded, Rejected> {
    let mut diags = Diagnostics::default();
    let mut root = match json::parse(text) {
        Ok(node) => node,
        Err(e) => {
            diags.error(
                "",
                Origin::File {
                    line: e.line,
                    col: e.col,
                },
                format!("the file is not valid JSON: {}", e.message),
                None,
            );
            return Err(Rejected {
                diagnostics: diags.items,
            });
        }
    };

    // The aks-engine e2e wrapper: {"env": {...}, "options": {...}, "apiModel": {...}}.
    let mut wrapped = false;
    if let Value::Object(members) = &root.value {
        if members.iter().any(|(k, _)| k.name.eq_ignore_ascii_case("apiModel")) {
            wrapped = true;
            let mut inner = None;
            for (k, v) in members {
                match k.name.to_ascii_lowercase().as_str() {
                    "apimodel" => inner = Some(v.clone()),
                    // Test-runner settings of aks-engine's e2e suite; not part of the model.
                    "env" | "options" | "addnodepool" => {}
                    _ => diags.error(
                        "",
                        k.origin.clone(),
                        format!("unknown key {:?} in the aks-engine e2e wrapper", k.name),
                        Some("the wrapper holds only \"env\", \"options\", \"addNodePool\" and \"apiModel\"".into()),
                    ),
                }
            }
            if let Some(inner) = inner {
                root = inner;
            }
        }
    }

    for set in sets {
        if let Err(msg) = apply_set(&mut root, set) {
            diags.error("", Origin::Set(set.shown()), msg, None);
        }
    }

    let mut walker = Walker {
        defs: schema().get("$defs").unwrap_or(&Json::Null),
        diags,
        origins: Origins::default(),
        classes: Vec::new(),
    };
    let json = walker.walk(&root, schema(), "");
    let Walker {
        mut diags,
        origins,
        classes,
        ..
    } = walker;
    if diags.has_errors() {
        return Err(Rejected {
            diagnostics: diags.items,
        });
    }
    let model: ApiModel = match serde_json::from_value(json) {
        Ok(m) => m,
        Err(e) => {
            // Unreachable after a clean walk; reported rather than panicking.
            diags.error("", Origin::Default, format!("the model could not be read: {e}"), None);
            return Err(Rejected {
                diagnostics: diags.items,
            });
        }
    };

    let provider = model
        .properties
        .as_ref()
        .and_then(|p| p.provider_profile.as_ref())
        .and_then(|p| p.name.as_deref())
        .unwrap_or("azure")
        .to_ascii_lowercase();
    for (path, class) in classes {
        let origin = origins.lookup(&path);
        match class {
            FieldClass::Inert => diags.warning(
                path,
                origin,
                "an acs-engine setting that hke does not act on; it is kept in apimodel.json but has no effect",
                None,
            ),
            // The fake cloud stands in for Azure.
            FieldClass::Azure if provider != "azure" && provider != "fake" => diags.warning(
                path,
                origin,
                format!("an Azure-only setting; it has no effect on {provider}"),
                None,
            ),
            FieldClass::Azure => {}
        }
    }
    Ok(Loaded {
        model,
        origins,
        diagnostics: diags,
        wrapped,
    })
}

pub use crate::secrets::is_secret_key;

impl SetArg {
    /// The argument as it may be shown: secret values are redacted.
    pub fn shown(&self) -> String {
        match self.path.iter().rev().find_map(|s| match s {
            Segment::Key(k) => Some(k),
            Segment::Index(_) => None,
        }) {
            Some(k) if is_secret_key(k) => {
                let path = self.raw.split_once('=').map(|(p, _)| p).unwrap_or(&self.raw);
                format!("{path}=<redacted>")
            }
            _ => self.raw.clone(),
        }
    }
}

fn apply_set(root: &mut Node, set: &SetArg) -> Result<(), String> {
    let origin = Origin::Set(set.shown());
    let mut cur = root;
    for (i, seg) in set.path.iter().enumerate() {
        let last = i + 1 == set.path.len();
        let next_is_index = matches!(set.path.get(i + 1), Some(Segment::Index(_)));
        let fresh = || Node {
            value: if last {
                Value::Null
            } else if next_is_index {
                Value::Array(Vec::new())
            } else {
                Value::Object(Vec::new())
            },
            origin: origin.clone(),
        };
        match seg {
            Segment::Key(k) => {
                if matches!(cur.value, Value::Null) {
                    cur.value = Value::Object(Vec::new());
                }
                let kind = cur.value.kind();
                let Value::Object(members) = &mut cur.value else {
                    return Err(format!("cannot set {k:?}: the parent is {kind}, not an object"));
                };
                let pos = match members.iter().position(|(key, _)| key.name.eq_ignore_ascii_case(k)) {
                    Some(p) => p,
                    None => {
                        members.push((
                            Key {
                                name: k.clone(),
                                origin: origin.clone(),
                            },
                            fresh(),
                        ));
                        members.len() - 1
                    }
                };
                cur = &mut members[pos].1;
            }
            Segment::Index(idx) => {
                if matches!(cur.value, Value::Null) {
                    cur.value = Value::Array(Vec::new());
                }
                let kind = cur.value.kind();
                let Value::Array(items) = &mut cur.value else {
                    return Err(format!("cannot index [{idx}]: the parent is {kind}, not an array"));
                };
                if *idx == items.len() {
                    items.push(fresh());
                } else if *idx > items.len() {
                    return Err(format!(
                        "index [{idx}] is past the end of an array of {} element(s); the next element is [{}]",
                        items.len(),
                        items.len()
                    ));
                }
                cur = &mut items[*idx];
            }
        }
    }
    *cur = Node {
        value: Value::Raw(set.value.clone()),
        origin,
    };
    Ok(())
}

/// The schema that accepts anything.
static ANY: Json = Json::Bool(true);

struct Walker {
    defs: &'static Json,
    diags: Diagnostics,
    origins: Origins,
    classes: Vec<(String, FieldClass)>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::String(s) | Value::Raw(s) => {
            let mut t: String = s.chars().take(40).collect();
            if s.chars().count() > 40 {
                t.push('…');
            }
            format!("{} ({t:?})", node.value.kind())
        }
        Value::Number(n) => format!("a number ({n})"),
        Value::Bool(b) => format!("a boolean ({b})"),
        other => other.kind().to_string(),
    }
}

impl Walker {
    fn resolve(&self, schema: &'static Json) -> &'static Json {
        let mut s = schema;
        for _ in 0..16 {
            match s.get("$ref").and_then(Json::as_str) {
                Some(r) => {
                    let name = r.rsplit('/').next().unwrap_or_default();
                    match self.defs.get(name) {
                        Some(d) => s = d,
                        None => return s,
                    }
                }
                None => return s,
            }
        }
        s
    }

    fn walk(&mut self, node: &Node, schema: &'static Json, path: &str) -> Json {
        self.origins.insert(path.to_string(), node.origin.clone());
        let schema = self.resolve(schema);
        if *schema == Json::Bool(true) || schema.as_object().is_some_and(|o| o.is_empty()) {
            return match &node.value {
                Value::Raw(s) => serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone())),
                _ => node.to_json(),
            };
        }
        if let Some(alts) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array)
        {
            if matches!(node.value, Value::Null) {
                return Json::Null;
            }
            let alt = alts
                .iter()
                .find(|a| a.get("type").and_then(Json::as_str) != Some("null"))
                .unwrap_or(&ANY);
            return self.walk(node, alt, path);
        }
        let types: Vec<String> = match schema.get("type") {
            Some(Json::String(t)) => vec![t.clone()],
            Some(Json::Array(ts)) => ts.iter().filter_map(|t| t.as_str().map(String::from)).collect(),
            _ => Vec::new(),
        };
        let nullable = types.iter().any(|t| t == "null");
        let ty = types.iter().find(|t| *t != "null").cloned().unwrap_or_default();
        if matches!(node.value, Value::Null) {
            // null means "not given" for every optional field.
            let _ = nullable;
            return Json::Null;
        }
        match ty.as_str() {
            "object" => self.walk_object(node, schema, path),
            "array" => {
                let items_schema: &'static Json = schema.get("items").unwrap_or(&ANY);
                match &node.value {
                    Value::Array(items) => Json::Array(
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| self.walk(item, items_schema, &format!("{path}[{i}]")))
                            .collect(),
                    ),
                    Value::Raw(s) => match json::parse(s) {
                        Ok(
                            parsed @ Node {
                                value: Value::Array(_), ..
                            },
                        ) => {
                            let parsed = Node {
                                origin: node.origin.clone(),
                                ..parsed
                            };
                            self.walk(&parsed, schema, path)
                        }
                        _ => self.type_error(node, path, "an array", Some("write a JSON array, e.g. [\"a\",\"b\"]")),
                    },
                    _ => self.type_error(node, path, "an array", None),
                }
            }
            "string" => match &node.value {
                Value::String(s) | Value::Raw(s) => Json::String(s.clone()),
                Value::Number(n) => self.type_error(node, path, "a string", Some(&format!("quote it: \"{n}\""))),
                Value::Bool(b) => self.type_error(node, path, "a string", Some(&format!("quote it: \"{b}\""))),
                _ => self.type_error(node, path, "a string", None),
            },
            "integer" => match &node.value {
                Value::Number(n) if n.is_i64() => Json::Number(n.clone()),
                Value::Raw(s) => match s.trim().parse::<i64>() {
                    Ok(i) => Json::from(i),
                    Err(_) => self.type_error(node, path, "an integer", None),
                },
                Value::String(s) if s.trim().parse::<i64>().is_ok() => self.type_error(
                    node,
                    path,
                    "an integer",
                    Some(&format!("remove the quotes: {}", s.trim())),
                ),
                _ => self.type_error(node, path, "an integer", None),
            },
            "number" => match &node.value {
                Value::Number(n) => Json::Number(n.clone()),
                Value::Raw(s) => match s.trim().parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                    Some(n) => Json::Number(n),
                    None => self.type_error(node, path, "a number", None),
                },
                _ => self.type_error(node, path, "a number", None),
            },
            "boolean" => match &node.value {
                Value::Bool(b) => Json::Bool(*b),
                Value::Raw(s) if s.eq_ignore_ascii_case("true") => Json::Bool(true),
                Value::Raw(s) if s.eq_ignore_ascii_case("false") => Json::Bool(false),
                Value::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => self
                    .type_error(
                        node,
                        path,
                        "a boolean",
                        Some(&format!("remove the quotes: {}", s.to_ascii_lowercase())),
                    ),
                _ => self.type_error(node, path, "a boolean (true or false)", None),
            },
            _ => node.to_json(),
        }
    }

    fn type_error(&mut self, node: &Node, path: &str, expected: &str, hint: Option<&str>) -> Json {
        let secret = path.rsplit('.').next().is_some_and(is_secret_key);
        let found = if secret {
            node.value.kind().to_string()
        } else {
            describe(node)
        };
        let hint = if secret { None } else { hint.map(String::from) };
        self.diags.error(
            path,
            node.origin.clone(),
            format!("expected {expected}, found {found}"),
            hint,
        );
        Json::Null
    }

    fn walk_object(&mut self, node: &Node, schema: &'static Json, path: &str) -> Json {
        let members = match &node.value {
            Value::Object(m) => m.clone(),
            Value::Raw(s) => match json::parse(s) {
                Ok(Node {
                    value: Value::Object(m),
                    ..
                }) => m,
                _ => {
                    return self.type_error(
                        node,
                        path,
                        "an object",
                        Some("write a JSON object, e.g. {\"key\":\"value\"}"),
                    );
                }
            },
            _ => return self.type_error(node, path, "an object", None),
        };
        let mut out = Map::new();
        if let Some(props) = schema.get("properties").and_then(Json::as_object) {
            let mut seen: Vec<(&str, &Key)> = Vec::new();
            for (key, value) in &members {
                let found = props.iter().find(|(name, _)| name.eq_ignore_ascii_case(&key.name));
                let Some((canonical, prop_schema)) = found else {
                    let parent = if path.is_empty() {
                        "the top level".to_string()
                    } else {
                        path.to_string()
                    };
                    let hint = match did_you_mean(&key.name, props.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean {s:?}?"),
                        None => format!(
                            "the keys of {parent} are: {}",
                            props.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    };
                    self.diags.error(
                        join(path, &key.name),
                        key.origin.clone(),
                        format!("unknown key {:?} in {parent}", key.name),
                        Some(hint),
                    );
                    continue;
                };
                if let Some((_, first)) = seen.iter().find(|(c, _)| *c == canonical.as_str()) {
                    self.diags.error(
                        join(path, canonical),
                        key.origin.clone(),
                        format!(
                            "{:?} is given twice (also as {:?} at {}); keys match regardless of case",
                            key.name, first.name, first.origin
                        ),
                        Some("keep one of them".into()),
                    );
                    continue;
                }
                seen.push((canonical.as_str(), key));
                let child = join(path, canonical);
                if !matches!(value.value, Value::Null) {
                    match prop_schema.get("x-hke").and_then(Json::as_str) {
                        Some("inert") => self.classes.push((child.clone(), FieldClass::Inert)),
                        Some("azure") => self.classes.push((child.clone(), FieldClass::Azure)),
                        _ => {}
                    }
                }
                let v = self.walk(value, prop_schema, &child);
                out.insert(canonical.clone(), v);
            }
        } else {
            // A map: keys are free, values follow additionalProperties.
            let value_schema: &'static Json = schema.get("additionalProperties").unwrap_or(&ANY);
            for (key, value) in &members {
                let child = format!("{path}[{:?}]", key.name);
                let v = self.walk(value, value_schema, &child);
                out.insert(key.name.clone(), v);
            }
        }
        Json::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match load(text, &[]) {
            Ok(_) => Vec::new(),
            Err(r) => r.diagnostics.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn keys_match_regardless_of_case() {
        let text =
            r#"{"APIVERSION":"vlabs","Properties":{"MasterProfile":{"Count":3,"dnsprefix":"abc","VMSize":"x"}}}"#;
        let loaded = load(text, &[]).expect("loads");
        let master = loaded.model.properties.and_then(|p| p.master_profile).expect("master");
        assert_eq!(master.count, Some(3));
        assert_eq!(master.dns_prefix.as_deref(), Some("abc"));
        assert_eq!(master.vm_size.as_deref(), Some("x"));
    }

    #[test]
    fn unknown_keys_are_errors_with_a_suggestion_and_position() {
        let errs = errors("{\"apiVersion\":\"vlabs\",\n\"properties\":{\"masterProfile\":{\"vmSise\":\"x\"}}}");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("properties.masterProfile.vmSise (2:32)"),
            "{}",
            errs[0]
        );
        assert!(errs[0].contains("did you mean \"vmSize\""), "{}", errs[0]);
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let errs = errors(
            r#"{"apiVersion":"vlabs","properties":{"masterProfile":{"count":"3","bogus":1},"agentPoolProfiles":[{"count":true}]}}"#,
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs
            .iter()
            .any(|e| e.contains("masterProfile.count") && e.contains("remove the quotes: 3")));
        assert!(errs
            .iter()
            .any(|e| e.contains("agentPoolProfiles[0].count") && e.contains("expected an integer")));
    }

    #[test]
    fn same_key_twice_in_different_case_is_an_error() {
        let errs = errors(r#"{"apiVersion":"vlabs","properties":{"masterProfile":{"count":1,"Count":3}}}"#);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("given twice"));
    }

    #[test]
    fn the_e2e_wrapper_is_accepted() {
        let text = r#"{"env":{"X":1},"options":{},"apiModel":{"apiVersion":"vlabs","properties":{"masterProfile":{"count":1}}}}"#;
        let loaded = load(text, &[]).expect("loads");
        assert!(loaded.wrapped);
        assert_eq!(loaded.model.api_version.as_deref(), Some("vlabs"));
    }

    #[test]
    fn inert_keys_warn_and_azure_keys_warn_only_off_azure() {
        let text = r#"{"apiVersion":"vlabs","properties":{"masterProfile":{"distro":"ubuntu","storageProfile":"ManagedDisks"}}}"#;
        let loaded = load(text, &[]).expect("loads");
        let w: Vec<_> = loaded.diagnostics.warnings().map(|d| d.path.clone()).collect();
        assert_eq!(w, vec!["properties.masterProfile.distro"]);
        let set: SetArg = "properties.providerProfile.name=aws".parse().expect("set");
        let loaded = load(text, &[set]).expect("loads");
        let w: Vec<_> = loaded.diagnostics.warnings().map(|d| d.path.clone()).collect();
        assert_eq!(
            w,
            vec![
                "properties.masterProfile.distro",
                "properties.masterProfile.storageProfile"
            ]
        );
    }

    #[test]
    fn set_edits_before_typing_and_creates_what_is_missing() {
        let text =
            r#"{"apiVersion":"vlabs","properties":{"masterProfile":{"count":1},"agentPoolProfiles":[{"name":"a"}]}}"#;
        let sets: Vec<SetArg> = [
            "properties.masterProfile.count=3",
            "PROPERTIES.agentPoolProfiles[0].count=7",
            "properties.agentPoolProfiles[1].name=win",
            "properties.masterProfile.dnsPrefix=1234",
            "properties.orchestratorProfile.kubernetesConfig.enableRbac=true",
            "properties.masterProfile.subjectAltNames=[\"a.example\"]",
        ]
        .iter()
        .map(|s| s.parse().expect("set"))
        .collect();
        let m = load(text, &sets).expect("loads").model;
        let p = m.properties.expect("properties");
        let master = p.master_profile.expect("master");
        assert_eq!(master.count, Some(3));
        assert_eq!(
            master.dns_prefix.as_deref(),
            Some("1234"),
            "a string field keeps digits as text"
        );
        assert_eq!(master.subject_alt_names, Some(vec!["a.example".to_string()]));
        let pools = p.agent_pool_profiles.expect("pools");
        assert_eq!(pools[0].count, Some(7));
        assert_eq!(pools[1].name.as_deref(), Some("win"));
        assert_eq!(
            p.orchestrator_profile
                .and_then(|o| o.kubernetes_config)
                .and_then(|k| k.enable_rbac),
            Some(true)
        );
    }

    #[test]
    fn bad_set_values_name_the_flag() {
        let text = r#"{"apiVersion":"vlabs","properties":{"agentPoolProfiles":[]}}"#;
        let sets: Vec<SetArg> = [
            "properties.masterProfile.count=three",
            "properties.agentPoolProfiles[4].count=1",
        ]
        .iter()
        .map(|s| s.parse().expect("set"))
        .collect();
        let errs: Vec<String> = load(text, &sets)
            .expect_err("rejected")
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].contains("--set properties.agentPoolProfiles[4].count=1"),
            "{errs:?}"
        );
        assert!(
            errs[1].contains("--set properties.masterProfile.count=three"),
            "{errs:?}"
        );
    }

    #[test]
    fn secret_set_values_are_redacted_in_origins() {
        let s: SetArg = "properties.windowsProfile.adminPassword=hunter2".parse().expect("set");
        assert_eq!(s.shown(), "properties.windowsProfile.adminPassword=<redacted>");
        let s: SetArg = "properties.masterProfile.count=3".parse().expect("set");
        assert_eq!(s.shown(), "properties.masterProfile.count=3");
        // A secret of the wrong type is reported without its value.
        let r = load(r#"{"properties":{"windowsProfile":{"adminPassword":87654321}}}"#, &[]).expect_err("wrong type");
        let shown: String = r.diagnostics.iter().map(|d| d.to_string()).collect();
        assert!(shown.contains("expected a string, found a number"), "{shown}");
        assert!(!shown.contains("87654321"), "{shown}");
    }

    #[test]
    fn set_syntax_errors() {
        for bad in ["novalue", "a..b=1", "a[x]=1", "a[1=2", "a[1]b=2"] {
            assert!(bad.parse::<SetArg>().is_err(), "{bad}");
        }
        let s: SetArg = "a.b[2][3].c=x=y".parse().expect("valid");
        assert_eq!(s.value, "x=y");
        assert_eq!(s.path.len(), 5);
    }
}
