//! Compute Engine errors, classified by HTTP status (and GCE's reason where
//! the status alone is ambiguous) for the engine, with messages that name the
//! resource.

use std::time::Duration;

use google_cloud_gax::error::rpc::{Status, StatusDetails};
use google_cloud_gax::error::Error;
use hke_provider_api::{Class, LeftBehind, ProviderError};

/// The reasons of an exceeded rate quota. "If your project exceeds a rate
/// quota, you receive a 403 error with the reason rateLimitExceeded"
/// (Compute Engine rate quotas, cloud.google.com/compute/api-quota);
/// `userRateLimitExceeded` is the per-user form Google APIs send ("Error 403:
/// User Rate Limit Exceeded, userRateLimitExceeded", googleapis/
/// google-cloud-go#269); `RATE_LIMIT_EXCEEDED` the ErrorInfo form ("If the
/// quota is a rate quota, then 403 RATE_LIMIT_EXCEEDED is returned",
/// cloud.google.com/docs/quotas/troubleshoot).
pub const RATE_LIMIT_REASONS: [&str; 3] = ["rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"];

/// The reasons of a status: GCE's legacy `error.errors[].reason` (which
/// the client turns into `ErrorInfo` details) and `ErrorInfo` details.
fn reasons(status: &Status) -> impl Iterator<Item = &str> {
    status.details.iter().filter_map(|d| match d {
        StatusDetails::ErrorInfo(info) => Some(info.reason.as_str()),
        _ => None,
    })
}

/// Whether a status says a rate quota was exceeded (the message of such a
/// 403 is "Quota exceeded for quota metric 'Queries' and limit ..." and
/// does not name the reason, so the reason must be read).
pub fn status_rate_limited(status: &Status) -> bool {
    reasons(status).any(|r| RATE_LIMIT_REASONS.contains(&r))
}

/// Whether an error is throttling: 429, or a 403 whose reason is a rate
/// quota (not a permission).
pub fn rate_limited(e: &Error) -> bool {
    e.http_status_code() == Some(429) || e.status().is_some_and(status_rate_limited)
}

/// Classify a status code and message.
pub fn classify(status: Option<u16>, message: &str) -> Class {
    let in_use = message.contains("resourceInUseByAnotherResource")
        || message.contains("RESOURCE_IN_USE_BY_ANOTHER_RESOURCE")
        || message.contains("is already being used by")
        || message.contains("resourceNotReady")
        || message.contains("RESOURCE_NOT_READY");
    match status {
        _ if in_use => Class::Transient { retry_after: None },
        Some(404) => Class::NotFound,
        Some(409) => Class::AlreadyExists,
        // 412: a fingerprint race; 429: quota per second.
        Some(412 | 429) => Class::Transient { retry_after: None },
        Some(s) if s >= 500 => Class::Transient { retry_after: None },
        // GCE also refuses with 403 rateLimitExceeded.
        Some(403)
            if RATE_LIMIT_REASONS.iter().any(|r| message.contains(r)) || message.contains("Rate Limit Exceeded") =>
        {
            Class::Transient { retry_after: None }
        }
        Some(_) => Class::Permanent,
        // No answer at all: connection or timeout failure.
        None => Class::Transient { retry_after: None },
    }
}

/// The standard name of the status (`NOT_FOUND`), or the HTTP code.
fn code_of(e: &Error) -> Option<String> {
    if let Some(s) = e.status() {
        return Some(s.code.name().to_string());
    }
    e.http_status_code().map(|c| format!("HTTP {c}"))
}

/// A client error as a provider error about `what` (`create instance x`).
pub fn from_gax(what: &str, e: Error) -> ProviderError {
    let status = e.http_status_code().or_else(|| {
        e.status().map(|s| match s.code.name() {
            "NOT_FOUND" => 404,
            "ALREADY_EXISTS" => 409,
            "RESOURCE_EXHAUSTED" => 429,
            "PERMISSION_DENIED" => 403,
            "UNAUTHENTICATED" => 401,
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => 400,
            "UNAVAILABLE" => 503,
            "INTERNAL" => 500,
            "DEADLINE_EXCEEDED" => 504,
            _ => 400,
        })
    });
    let detail = match e.status() {
        Some(s) if !s.message.is_empty() => s.message.clone(),
        _ => e.to_string(),
    };
    let retry_after = e
        .http_headers()
        .and_then(|h| h.get("retry-after"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let throttled = rate_limited(&e);
    let mut class = if throttled {
        Class::Transient { retry_after: None }
    } else {
        classify(status, &format!("{detail} {e}"))
    };
    if let Class::Transient { retry_after: r } = &mut class {
        *r = retry_after;
    }
    let mut message = format!("{what}: {detail}");
    if throttled {
        message.push_str(" (a Compute Engine rate quota: retried with backoff)");
    }
    let unreachable = status.is_none() && (e.is_io() || e.is_connect() || e.is_transport() || e.is_timeout());
    if unreachable {
        message = format!("{what}: cannot reach the Compute Engine API ({e})");
    }
    if matches!(status, Some(401 | 403)) && class == Class::Permanent {
        class = Class::Credentials;
        message.push_str(
            "; check the credentials (Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, \
             `gcloud auth application-default login`, or the attached service account) and that they \
             may use Compute Engine in the project (roles/compute.admin)",
        );
    }
    if e.is_authentication() {
        class = Class::Credentials;
        message = format!(
            "{what}: no usable Google credentials ({e}); set GOOGLE_APPLICATION_CREDENTIALS or run \
             `gcloud auth application-default login`"
        );
    }
    ProviderError {
        class,
        left_behind: LeftBehind::Nothing,
        code: if throttled {
            Some("rateLimitExceeded".into())
        } else if unreachable {
            Some(hke_provider_api::error::CODE_UNREACHABLE.into())
        } else {
            code_of(&e)
        },
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_reasons_classify() {
        let rows: &[(Option<u16>, &str, Class)] = &[
            (Some(404), "The resource 'x' was not found", Class::NotFound),
            (Some(409), "already exists", Class::AlreadyExists),
            (Some(429), "Rate Limit Exceeded", Class::Transient { retry_after: None }),
            (Some(503), "backendError", Class::Transient { retry_after: None }),
            (Some(500), "internal", Class::Transient { retry_after: None }),
            (Some(403), "rateLimitExceeded", Class::Transient { retry_after: None }),
            (
                Some(403),
                "userRateLimitExceeded",
                Class::Transient { retry_after: None },
            ),
            (
                Some(403),
                "Required 'compute.instances.create' permission",
                Class::Permanent,
            ),
            (
                Some(400),
                "The network resource 'n' is already being used by 'sub'",
                Class::Transient { retry_after: None },
            ),
            (
                Some(400),
                "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE",
                Class::Transient { retry_after: None },
            ),
            (Some(400), "Invalid value for field 'resource.name'", Class::Permanent),
            (None, "connection refused", Class::Transient { retry_after: None }),
        ];
        for (status, message, want) in rows {
            assert_eq!(&classify(*status, message), want, "{status:?} {message}");
        }
    }

    /// A 403 as Compute Engine sends it, through the client's own parsing.
    fn gce_403(reason: &str, message: &str) -> Error {
        let status: Status = serde_json::from_value(serde_json::json!({
            "code": 7,
            "message": message,
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "usageLimits"}],
        }))
        .expect("status");
        Error::service(status)
    }

    #[test]
    fn a_rate_quota_403_is_throttling_and_a_permission_403_is_not() {
        // The message of a real rate-quota 403 does not name the reason.
        let quota = "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service \
                     'compute.googleapis.com' for consumer 'project_number:1'.";
        for reason in ["rateLimitExceeded", "userRateLimitExceeded"] {
            let e = from_gax("create network n", gce_403(reason, quota));
            assert!(e.is_transient(), "{reason}: {e:?}");
            assert_eq!(e.code.as_deref(), Some("rateLimitExceeded"));
            assert!(!e.message.contains("credentials"), "{}", e.message);
        }
        let e = from_gax(
            "create network n",
            gce_403(
                "forbidden",
                "Required 'compute.networks.create' permission for 'projects/p/global/networks/n'",
            ),
        );
        assert_eq!(e.class, Class::Credentials);
        assert!(
            e.message.contains("credentials") && e.message.contains("roles/compute.admin"),
            "{}",
            e.message
        );
        assert!(!rate_limited(&gce_403("forbidden", "Required permission")));
        assert!(rate_limited(&gce_403("rateLimitExceeded", quota)));
    }
}
