//! hke: the hybrid Kubernetes engine. See ARCHITECTURE.md for the map.

pub mod cluster;
pub mod defaults;
pub mod diag;
pub mod model;
pub mod secrets;
pub mod validate;
pub mod versions;
pub mod vmsizes;
