//! hke: the hybrid Kubernetes engine. See ARCHITECTURE.md for the map.

pub mod diag;
pub mod model;
