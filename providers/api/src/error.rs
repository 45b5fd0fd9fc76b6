//! Provider errors: classified for retries, and honest about what they left
//! behind.

use std::fmt;
use std::time::Duration;

/// How the engine should treat an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Worth retrying: throttling, 5xx, a dependency still in use. The cloud
    /// may say how long to wait.
    Transient { retry_after: Option<Duration> },
    /// The resource does not exist (a delete counts it as done).
    NotFound,
    /// A resource with this name exists already (adopt it by reading it).
    AlreadyExists,
    /// Retrying will not help.
    Permanent,
    /// The cloud refused hke's identity (no, expired or wrong credentials) or
    /// its permissions: retrying will not help, and the fix is the user's
    /// credentials, not the model (`main` exits 3, not 2).
    Credentials,
}

/// The code of an error where no request reached the cloud (DNS,
/// connection refused, TLS, a timeout before any answer): retried as
/// transient; a command that ends on it exits 4.
pub const CODE_UNREACHABLE: &str = "Unreachable";

/// What a failed call left in the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftBehind {
    Nothing,
    /// A resource with this cloud id exists.
    Something(String),
    /// The call may or may not have created something (a timeout).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProviderError {
    pub class: Class,
    pub left_behind: LeftBehind,
    /// The cloud's error code (`RequestLimitExceeded`, `ResourceGroupBeingDeleted`).
    pub code: Option<String>,
    pub message: String,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = &self.code {
            write!(f, "{code}: ")?;
        }
        f.write_str(&self.message)?;
        match &self.left_behind {
            LeftBehind::Nothing => Ok(()),
            LeftBehind::Something(id) => write!(f, " (left behind: {id})"),
            LeftBehind::Unknown => write!(f, " (it may have created something)"),
        }
    }
}

impl ProviderError {
    pub fn transient(code: &str, message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        ProviderError {
            class: Class::Transient { retry_after },
            left_behind: LeftBehind::Nothing,
            code: Some(code.into()),
            message: message.into(),
        }
    }

    pub fn permanent(code: &str, message: impl Into<String>) -> Self {
        ProviderError {
            class: Class::Permanent,
            left_behind: LeftBehind::Nothing,
            code: Some(code.into()),
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ProviderError {
            class: Class::NotFound,
            left_behind: LeftBehind::Nothing,
            code: Some("NotFound".into()),
            message: message.into(),
        }
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        ProviderError {
            class: Class::AlreadyExists,
            left_behind: LeftBehind::Nothing,
            code: Some("AlreadyExists".into()),
            message: message.into(),
        }
    }

    /// The cloud refused the credentials or their permissions.
    pub fn credentials(code: &str, message: impl Into<String>) -> Self {
        ProviderError {
            class: Class::Credentials,
            left_behind: LeftBehind::Nothing,
            code: Some(code.into()),
            message: message.into(),
        }
    }

    /// No request reached the cloud (retried as transient).
    pub fn unreachable(message: impl Into<String>) -> Self {
        ProviderError::transient(CODE_UNREACHABLE, message, None)
    }

    /// Whether no request reached the cloud.
    pub fn is_unreachable(&self) -> bool {
        self.code.as_deref() == Some(CODE_UNREACHABLE)
    }

    pub fn is_transient(&self) -> bool {
        matches!(self.class, Class::Transient { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self.class {
            Class::Transient { retry_after } => retry_after,
            _ => None,
        }
    }
}

/// A "not found" that answers the call rather than failing it, on
/// `Result<T, ProviderError>`.
pub trait NotFoundExt<T>: Sized {
    /// A delete's (or any unit call's) "not found" is success:
    /// `Err(NotFound)` becomes `Ok(())`; other errors stay. Only for
    /// `Result<(), ProviderError>` (map a value away first), so that no value
    /// is dropped unseen:
    ///
    /// ```compile_fail
    /// use hke_provider_api::{NotFoundExt, ProviderError};
    /// let read: Result<String, ProviderError> = Ok("vpc-1".into());
    /// let _ = read.done_if_not_found();
    /// ```
    fn done_if_not_found(self) -> Result<(), ProviderError>
    where
        Self: Into<Result<(), ProviderError>>,
    {
        match self.into() {
            Err(e) if e.class == Class::NotFound => Ok(()),
            other => other,
        }
    }

    /// A read's "not found" is `None`: `Ok(t)` becomes `Ok(Some(t))`,
    /// `Err(NotFound)` `Ok(None)`; other errors stay.
    fn none_if_not_found(self) -> Result<Option<T>, ProviderError>;
}

impl<T> NotFoundExt<T> for Result<T, ProviderError> {
    fn none_if_not_found(self) -> Result<Option<T>, ProviderError> {
        match self {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.class == Class::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone() -> ProviderError {
        ProviderError::not_found("vpc-1")
    }

    fn busy() -> ProviderError {
        ProviderError::transient("Throttling", "slow down", None)
    }

    #[test]
    fn not_found_is_done_for_a_unit_call() {
        assert_eq!(Ok::<(), ProviderError>(()).done_if_not_found(), Ok(()));
        assert_eq!(Err(gone()).done_if_not_found(), Ok(()));
        assert_eq!(Err(busy()).done_if_not_found(), Err(busy()));
        let denied = ProviderError::credentials("AccessDenied", "no");
        assert_eq!(Err(denied.clone()).done_if_not_found(), Err(denied));
    }

    #[test]
    fn not_found_is_none_for_a_read() {
        assert_eq!(Ok::<_, ProviderError>("i-1").none_if_not_found(), Ok(Some("i-1")));
        assert_eq!(Err::<&str, _>(gone()).none_if_not_found(), Ok(None));
        assert_eq!(Err::<&str, _>(busy()).none_if_not_found(), Err(busy()));
        let exists = ProviderError::already_exists("vpc-1");
        assert_eq!(Err::<(), _>(exists.clone()).none_if_not_found(), Err(exists));
    }
}
