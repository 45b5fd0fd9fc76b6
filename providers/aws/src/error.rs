//! AWS errors, classified for the engine: throttling and dependency
//! violations are transient, `*.NotFound` is not-found, duplicates are
//! already-exists, and the message names the resource and the AWS code.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use hke_provider_api::{Class, LeftBehind, ProviderError};

/// Error codes AWS uses for throttling (EC2 and ELBv2 spell it differently).
const THROTTLING: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "TooManyRequestsException",
];

/// Codes worth retrying: eventual consistency and resources still in use.
const TRANSIENT: &[&str] = &[
    "DependencyViolation",
    "ResourceInUse",
    "IncorrectState",
    "IncorrectInstanceState",
    "InvalidIPAddress.InUse",
    "InsufficientInstanceCapacity",
    "ServiceUnavailable",
    "Unavailable",
    "InternalError",
    "InternalFailure",
    "OperationNotPermitted.LoadBalancerNotActive",
];

const DUPLICATE: &[&str] = &[
    "InvalidGroup.Duplicate",
    "InvalidKeyPair.Duplicate",
    "DuplicateLoadBalancerName",
    "DuplicateTargetGroupName",
    "RouteAlreadyExists",
    "InvalidPermission.Duplicate",
];

/// Classify an AWS error code (and HTTP status, when there was a response).
pub fn classify(code: Option<&str>, status: Option<u16>) -> Class {
    match code {
        Some(c) if THROTTLING.contains(&c) => Class::Transient { retry_after: None },
        Some(c) if TRANSIENT.contains(&c) => Class::Transient { retry_after: None },
        Some(c) if DUPLICATE.contains(&c) => Class::AlreadyExists,
        Some(c) if c.ends_with(".NotFound") || c.ends_with("NotFound") || c.ends_with(".Malformed.NotFound") => {
            Class::NotFound
        }
        _ => match status {
            Some(429) => Class::Transient { retry_after: None },
            Some(s) if s >= 500 => Class::Transient { retry_after: None },
            // No response at all: a connection or timeout failure.
            None => Class::Transient { retry_after: None },
            _ => Class::Permanent,
        },
    }
}

/// What the operation was, for messages: `create security group hke-nsg`.
pub fn from_sdk<E, R>(what: &str, creates: bool, err: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let status = err.raw_response().map(|r| r.status_code());
    let (code, message) = match &err {
        SdkError::ServiceError(se) => (
            se.err().code().map(str::to_string),
            se.err().message().unwrap_or("no message").to_string(),
        ),
        SdkError::TimeoutError(_) => (None, "the request timed out".to_string()),
        SdkError::DispatchFailure(d) => (
            None,
            if d.is_io() || d.is_timeout() {
                "cannot reach the AWS endpoint (connection failed)".to_string()
            } else {
                // Most often no credentials: say what the SDK says.
                let why = describe(&err);
                let hint = if why.contains("credentials") {
                    "; no AWS credentials were found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
                } else {
                    ""
                };
                format!("the request could not be sent: {why}{hint}")
            },
        ),
        other => (other.code().map(str::to_string), describe(other)),
    };
    let mut class = classify(code.as_deref(), status);
    // EC2's common client errors for a refused identity or permission
    // (docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html),
    // and STS's for a bad or expired token.
    if matches!(
        code.as_deref(),
        Some(
            "AuthFailure"
                | "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "UnauthorizedOperation"
                | "AccessDenied"
                | "AccessDeniedException"
        )
    ) {
        class = Class::Credentials;
    }
    let unreachable = status.is_none() && matches!(&err, SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout())
        || matches!(&err, SdkError::TimeoutError(_));
    let code = if unreachable {
        Some(hke_provider_api::error::CODE_UNREACHABLE.to_string())
    } else {
        code
    };
    let left_behind = match (&class, creates, status) {
        // The request may have reached AWS before the connection broke.
        (Class::Transient { .. }, true, None) => LeftBehind::Unknown,
        _ => LeftBehind::Nothing,
    };
    let hint = match code.as_deref() {
        Some("AuthFailure" | "UnrecognizedClientException" | "InvalidClientTokenId" | "SignatureDoesNotMatch") => {
            "; check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, `aws sso login`)"
        }
        Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException") => {
            "; the AWS identity lacks this permission (README lists the EC2 and ELB actions hke uses)"
        }
        Some("InstanceLimitExceeded" | "VcpuLimitExceeded" | "AddressLimitExceeded" | "VpcLimitExceeded") => {
            "; raise the quota in the Service Quotas console or use another region"
        }
        _ => "",
    };
    ProviderError {
        class,
        left_behind,
        code: code.or_else(|| status.map(|s| format!("HTTP{s}"))),
        message: format!("{what}: {message}{hint}"),
    }
}

fn describe<E: std::error::Error + 'static, R: std::fmt::Debug>(err: &SdkError<E, R>) -> String {
    let mut s = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        s.push_str(": ");
        s.push_str(&e.to_string());
        source = e.source();
    }
    s
}

/// The HTTP status of a raw response, whatever its type.
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The error of a call that did not go through the SDK's error path.
pub fn invalid(what: &str, message: impl std::fmt::Display) -> ProviderError {
    ProviderError::permanent("InvalidResponse", format!("{what}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_classes() {
        let t = Class::Transient { retry_after: None };
        assert_eq!(classify(Some("RequestLimitExceeded"), Some(503)), t);
        assert_eq!(classify(Some("Throttling"), Some(400)), t);
        assert_eq!(classify(Some("DependencyViolation"), Some(400)), t);
        assert_eq!(classify(Some("InvalidVpcID.NotFound"), Some(400)), Class::NotFound);
        assert_eq!(classify(Some("LoadBalancerNotFound"), Some(400)), Class::NotFound);
        assert_eq!(
            classify(Some("InvalidGroup.Duplicate"), Some(400)),
            Class::AlreadyExists
        );
        assert_eq!(classify(Some("InvalidParameterValue"), Some(400)), Class::Permanent);
        assert_eq!(classify(None, Some(500)), t);
        assert_eq!(classify(None, None), t);
        assert_eq!(classify(Some("UnauthorizedOperation"), Some(403)), Class::Permanent);
    }
}
