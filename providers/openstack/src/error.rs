//! OpenStack errors, classified for the engine by HTTP status and the
//! service's own error type, with messages that name the resource and never
//! carry a secret.
//!
//! Error bodies (each service has its own):
//! - Neutron: `{"NeutronError": {"type": "SubnetInUse", "message": "...", "detail": ""}}`
//!   (Networking API reference, "Faults": neutron-lib `neutron_lib/exceptions`);
//! - Nova: `{"itemNotFound": {"code": 404, "message": "..."}}`,
//!   `conflictingRequest`, `badRequest`, `forbidden`, `overLimit` (Compute API
//!   reference, "Faults");
//! - Octavia: `{"faultcode": "Client", "faultstring": "...", "debuginfo": null}`
//!   (Load Balancer API reference, "Response Codes");
//! - Keystone: `{"error": {"code": 401, "message": "...", "title": "Unauthorized"}}`
//!   (Identity API v3 reference, "Errors");
//! - Glance: plain text or HTML (`404 Not Found\n\nNo image found with ID ...`).

use std::time::Duration;

use hke_provider_api::{Class, LeftBehind, ProviderError};
use openstack_sdk::api::ApiError;
use openstack_sdk::RestError;

/// The longest service message kept in an error (a 400 may echo a whole
/// request field back).
const MAX_MESSAGE: usize = 400;

/// Neutron 409 types for a resource still used by another one, which goes
/// away once the other is deleted (neutron-lib `exceptions.InUse` and its
/// subclasses: NetworkInUse, SubnetInUse, PortInUse, RouterInUse,
/// SecurityGroupInUse; `l3.RouterInterfaceInUseByFloatingIP`,
/// `l3.FloatingIPPortAlreadyAssociated` is not one).
const IN_USE: [&str; 8] = [
    "InUse",
    "in use",
    "still in use",
    "RouterInterfaceInUseByFloatingIP",
    "is required by one or more floating IPs",
    "has associated floating IPs",
    "has one or more ports in use",
    "There are one or more ports still in use",
];

/// A 409 for a resource busy with another operation: Octavia's
/// `Invalid state PENDING_UPDATE of loadbalancer resource` (octavia
/// `exceptions.ImmutableObject`), Nova's `Cannot 'delete' instance ... while
/// it is in task_state ...` (nova `exception.InstanceInvalidState`).
const BUSY: [&str; 5] = [
    "PENDING_",
    "Invalid state",
    "task_state",
    "while it is in vm_state",
    "is locked",
];

/// A 409 that says the object exists already: Neutron
/// `SecurityGroupRuleExists`, Nova `Key pair '...' already exists`
/// (`exception.KeyPairExists`), Octavia `Duplicate member`.
const EXISTS: [&str; 4] = ["Exists", "already exists", "Duplicate", "DuplicateMember"];

/// A 409 or 403 that retrying will not fix: quota, no address left, an
/// address taken by somebody else.
const NEVER: [&str; 6] = [
    "OverQuota",
    "Quota exceeded",
    "quota exceeded",
    "IpAddressGenerationFailure",
    "IpAddressAlreadyAllocated",
    "No more IP addresses",
];

/// Classify a status and the service's error type and message.
pub fn classify(status: u16, code: &str, message: &str) -> Class {
    let text = format!("{code} {message}");
    let has = |list: &[&str]| list.iter().any(|m| text.contains(m));
    match status {
        404 => Class::NotFound,
        409 if has(&NEVER) => Class::Permanent,
        409 if has(&IN_USE) || has(&BUSY) => Class::Transient { retry_after: None },
        409 if has(&EXISTS) => Class::AlreadyExists,
        // Any other conflict (Neutron's concurrent-update conflicts, a
        // router being changed) is worth a retry; the engine caps them.
        409 => Class::Transient { retry_after: None },
        // 412: a revision_number precondition (Networking API reference,
        // "Revisions": "412 Precondition Failed").
        412 => Class::Transient { retry_after: None },
        // Nova's `overLimit` is 413 for rate limits (with retryAfter) and
        // 403/413 for quotas.
        403 | 413 if has(&NEVER) => Class::Permanent,
        413 | 429 => Class::Transient { retry_after: None },
        s if s >= 500 => Class::Transient { retry_after: None },
        _ => Class::Permanent,
    }
}

/// The error type and message of an error body, per service (see the
/// module docs).
pub fn parse_body(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        // Glance and proxies answer in text or HTML.
        let plain: String = strip_html(&text).split_whitespace().collect::<Vec<_>>().join(" ");
        return (String::new(), plain);
    };
    let s = |v: Option<&serde_json::Value>| v.and_then(|x| x.as_str()).unwrap_or_default().to_string();
    if let Some(n) = v.get("NeutronError") {
        return (s(n.get("type")), s(n.get("message")));
    }
    if v.get("faultstring").is_some() {
        return (s(v.get("faultcode")), s(v.get("faultstring")));
    }
    if let Some(e) = v.get("error").filter(|e| e.is_object()) {
        return (s(e.get("title")), s(e.get("message")));
    }
    if let Some(e) = v.get("error").filter(|e| e.is_string()) {
        return (String::new(), s(Some(e)));
    }
    // Nova: one key naming the fault.
    if let Some((name, inner)) = v.as_object().and_then(|o| o.iter().next()) {
        if let Some(m) = inner.get("message") {
            return (name.clone(), s(Some(m)));
        }
    }
    if let Some(m) = v.get("message") {
        return (String::new(), s(Some(m)));
    }
    (String::new(), v.to_string())
}

fn strip_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Replace every secret in `message` and cut it to a readable length.
pub fn redact(message: &str, secrets: &[&str]) -> String {
    let mut m = message.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        m = m.replace(s, "<redacted>");
    }
    if m.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push_str(" …");
    }
    m
}

/// `Retry-After` in seconds (Nova's `overLimit` sends it; so do proxies).
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// An error answer of a service as a provider error about `what`.
pub fn from_response(
    what: &str,
    status: u16,
    retry_after_header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
) -> ProviderError {
    let (code, message) = parse_body(body);
    let mut class = classify(status, &code, &message);
    if let Class::Transient { retry_after: r } = &mut class {
        *r = retry_after(retry_after_header);
    }
    let mut text = format!("{what}: {}", redact(&message, secrets));
    if message.is_empty() {
        text = format!("{what}: HTTP {status}");
    }
    if matches!(status, 401 | 403) && class == Class::Permanent {
        text.push_str(
            "; check the credentials (clouds.yaml / OS_CLOUD or the OS_* variables) and that the \
             project may use this service",
        );
    }
    ProviderError {
        class,
        left_behind: LeftBehind::Nothing,
        code: Some(if code.is_empty() {
            format!("HTTP {status}")
        } else {
            code
        }),
        message: text,
    }
}

/// A client-side error (no answer, no token, no endpoint) as a provider
/// error about `what`.
pub fn from_api(what: &str, e: ApiError<RestError>, secrets: &[&str]) -> ProviderError {
    let message = redact(&e.to_string(), secrets);
    let (class, code) = match &e {
        ApiError::Client {
            source: RestError::Communication { .. },
        } => (Class::Transient { retry_after: None }, "Unreachable"),
        ApiError::Client {
            source: RestError::AuthError { .. },
        } => (Class::Permanent, "Authentication"),
        ApiError::Catalog { .. } => (Class::Permanent, "NoEndpoint"),
        ApiError::MicroversionIncompatible { .. } => (Class::Permanent, "Microversion"),
        _ if e.is_not_found() => (Class::NotFound, "NotFound"),
        _ if e.is_transient() => (Class::Transient { retry_after: None }, "ServerError"),
        _ => (Class::Permanent, "Client"),
    };
    let hint = match code {
        "Unreachable" => " (cannot reach the OpenStack API)",
        "NoEndpoint" => " (the service is not in the catalog of this region and interface)",
        _ => "",
    };
    ProviderError {
        class,
        left_behind: LeftBehind::Nothing,
        code: Some(code.to_string()),
        message: format!("{what}: {message}{hint}"),
    }
}

/// A request that could not be built (a bug, or a value the API cannot take).
pub fn bad_request(what: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::permanent("BadRequest", format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neutron(t: &str, m: &str) -> Vec<u8> {
        serde_json::json!({"NeutronError": {"type": t, "message": m, "detail": ""}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn statuses_and_types_classify() {
        let transient = Class::Transient { retry_after: None };
        let rows: &[(u16, &str, &str, Class)] = &[
            (404, "NetworkNotFound", "Network x could not be found.", Class::NotFound),
            (409, "SubnetInUse", "Unable to complete operation on subnet x: One or more ports have an IP allocation from this subnet.", transient.clone()),
            (409, "NetworkInUse", "There are one or more ports still in use on the network", transient.clone()),
            (409, "RouterInUse", "Router x still has ports", transient.clone()),
            (409, "RouterInterfaceInUseByFloatingIP", "Router interface for subnet s on router r cannot be deleted, as it is required by one or more floating IPs.", transient.clone()),
            (409, "SecurityGroupInUse", "Security Group x in use.", transient.clone()),
            (409, "Client", "Invalid state PENDING_UPDATE of loadbalancer resource x", transient.clone()),
            (409, "conflictingRequest", "Cannot 'delete' instance x while it is in task_state spawning", transient.clone()),
            (409, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is x.", Class::AlreadyExists),
            (409, "conflictingRequest", "Key pair 'k' already exists.", Class::AlreadyExists),
            (409, "Client", "Duplicate member", Class::AlreadyExists),
            (409, "OverQuota", "Quota exceeded for resources: ['port'].", Class::Permanent),
            (409, "IpAddressAlreadyAllocated", "IP address 10.0.0.4 already allocated in subnet s", Class::Permanent),
            (409, "IpAddressGenerationFailure", "No more IP addresses available on network n.", Class::Permanent),
            (412, "PreconditionFailed", "revision_number mismatch", transient.clone()),
            (403, "forbidden", "Quota exceeded for cores: Requested 4, but already used 20 of 20 cores", Class::Permanent),
            (403, "forbidden", "Policy doesn't allow os_compute_api:servers:create to be performed.", Class::Permanent),
            (413, "overLimit", "This request was rate-limited.", transient.clone()),
            (429, "", "Too Many Requests", transient.clone()),
            (503, "", "Service Unavailable", transient.clone()),
            (400, "badRequest", "Invalid flavorRef provided.", Class::Permanent),
            (401, "Unauthorized", "The request you have made requires authentication.", Class::Permanent),
        ];
        for (status, code, message, want) in rows {
            assert_eq!(&classify(*status, code, message), want, "{status} {code} {message}");
        }
    }

    #[test]
    fn bodies_of_every_service_parse() {
        assert_eq!(
            parse_body(&neutron("SubnetInUse", "in use")),
            ("SubnetInUse".into(), "in use".into())
        );
        let nova = br#"{"itemNotFound": {"code": 404, "message": "Instance x could not be found."}}"#;
        assert_eq!(
            parse_body(nova),
            ("itemNotFound".into(), "Instance x could not be found.".into())
        );
        let octavia = br#"{"faultcode": "Client", "faultstring": "Invalid state PENDING_UPDATE", "debuginfo": null}"#;
        assert_eq!(
            parse_body(octavia),
            ("Client".into(), "Invalid state PENDING_UPDATE".into())
        );
        let keystone = br#"{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}"#;
        assert_eq!(parse_body(keystone).0, "Unauthorized");
        let glance = b"<html><body><h1>404 Not Found</h1>No image found with ID x<br /><br /></body></html>";
        assert_eq!(parse_body(glance).1, "404 Not Found No image found with ID x");
    }

    #[test]
    fn messages_never_carry_secrets() {
        let body = br#"{"badRequest": {"code": 400, "message": "Invalid input for field/attribute adminPass. Value: S3cret-Pa55. 'S3cret-Pa55' is too long"}}"#;
        let e = from_response("create server n", 400, None, body, &["S3cret-Pa55", "aGVsbG8="]);
        assert!(!e.message.contains("S3cret"), "{}", e.message);
        assert!(e.message.contains("<redacted>"), "{}", e.message);
        assert_eq!(e.class, Class::Permanent);
        let long = redact(&"x".repeat(1000), &[]);
        assert!(long.len() < 410);
        let e = from_response("delete subnet s", 409, Some("7"), &neutron("SubnetInUse", "busy"), &[]);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.code.as_deref(), Some("SubnetInUse"));
        let e = from_response("list servers", 401, None, b"", &[]);
        assert!(e.message.contains("credentials"), "{}", e.message);
    }
}
