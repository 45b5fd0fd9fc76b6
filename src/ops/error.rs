//! How a verb fails, typed from the provider up: `cli` turns a
//! [`DeployError`] into its exit code through [`DeployError::failing`].

use std::path::PathBuf;

use hke_provider_api::ProviderError;

use crate::engine::state::StateError;
use crate::engine::EngineError;
use crate::model::diag::Rejected;
use crate::ops::target::ConnectError;
use crate::output::OutputError;
use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Rejected(Rejected),
    #[error("{0}")]
    Usage(String),
    /// Connecting to the cloud failed: a refused credential, an unreachable
    /// endpoint, or a target the cloud does not know (no project, region or
    /// subscription): typed, for the exit code.
    #[error("{0}")]
    Connect(ProviderError),
    /// The cloud refused a request outside the engine (the janitor's listing).
    #[error("{0}")]
    Cloud(ProviderError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}\nthe state in {1} records what exists: run the same command again to continue, or `hke teardown` to remove it")]
    Engine(EngineError, PathBuf),
    #[error("cannot write {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

impl From<ConnectError> for DeployError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Cloud(p) => DeployError::Connect(p),
            ConnectError::Usage(m) => DeployError::Usage(m),
        }
    }
}

/// How a command that talked to a cloud ended badly, for `main`'s exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failing {
    /// Bad input or usage: exit 2.
    Usage,
    /// The cloud refused the credentials or their permissions: exit 3.
    Credentials,
    /// No request reached the cloud: exit 4.
    Unreachable,
    /// Anything else the cloud or hke refused: exit 1.
    Failed,
}

impl DeployError {
    pub fn failing(&self) -> Failing {
        let of_cloud = |errors: &[&ProviderError]| {
            if errors.iter().any(|e| e.class == hke_provider_api::Class::Credentials) {
                Failing::Credentials
            } else if !errors.is_empty() && errors.iter().all(|e| e.is_unreachable()) {
                Failing::Unreachable
            } else {
                Failing::Failed
            }
        };
        match self {
            DeployError::Rejected(_) | DeployError::Usage(_) => Failing::Usage,
            DeployError::State(StateError::Locked(_)) => Failing::Usage,
            // What else stops a connection is the target's settings.
            DeployError::Connect(e) => match of_cloud(&[e]) {
                Failing::Failed => Failing::Usage,
                other => other,
            },
            DeployError::Cloud(e) => of_cloud(&[e]),
            DeployError::Engine(e, _) => of_cloud(&e.cloud_errors()),
            _ => Failing::Failed,
        }
    }
}
