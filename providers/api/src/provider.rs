//! The Provider trait every cloud implements.

use async_trait::async_trait;

use crate::error::ProviderError;
use crate::resource::{Found, Kind, Outputs, Request};

/// A cloud. Implementations must make `create` safe to repeat: the same
/// request (same name and client token) never makes a second resource; it
/// either returns the existing one or fails with `AlreadyExists`.
#[async_trait]
pub trait Provider: Send + Sync {
    /// `azure`, `aws`, `gcp` or `fake`.
    fn cloud(&self) -> &str;

    /// Create a resource and wait until it is usable (machines running).
    async fn create(&self, req: &Request) -> Result<Outputs, ProviderError>;

    /// Find a resource of the cluster by kind and name.
    async fn read(&self, kind: Kind, name: &str) -> Result<Option<Outputs>, ProviderError>;

    /// Delete a resource and wait until it is gone. A missing resource is
    /// `NotFound`, which callers treat as done.
    async fn delete(&self, kind: Kind, name: &str, id: Option<&str>) -> Result<(), ProviderError>;

    /// Every resource tagged `hke.io/cluster=<cluster>`.
    async fn list(&self, cluster: &str) -> Result<Vec<Found>, ProviderError>;

    /// Every resource carrying an `hke.io/cluster` tag, whatever the cluster
    /// (the janitor groups them by that tag).
    async fn list_all(&self) -> Result<Vec<Found>, ProviderError>;

    /// Delete the whole cluster in one go where the cloud can (Azure: the
    /// resource groups hke made, with everything in them). Returns what it
    /// deleted; empty means the caller deletes resource by resource.
    async fn delete_cluster(&self, cluster: &str) -> Result<Vec<String>, ProviderError> {
        let _ = cluster;
        Ok(Vec::new())
    }

    /// What a machine (or each machine of a group) wrote to its serial
    /// console, as (node name, text) — the bootstrap's log reaches it even when
    /// the node never joined. Clouds without the API return nothing.
    async fn console_output(&self, kind: Kind, name: &str, id: &str) -> Result<Vec<(String, String)>, ProviderError> {
        let _ = (kind, name, id);
        Ok(Vec::new())
    }
}
