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
