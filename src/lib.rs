//! hke: the hybrid Kubernetes engine. See ARCHITECTURE.md for the map.
//!
//! The modules follow the pipeline, each stage importing only from the ones
//! before it (a test in `tests/it/layout.rs` holds the order):
//!
//! ```text
//! model ← catalog ← cluster ← pki ← plan ← render | engine ← ui ← ops ← cli
//! ```
//! `context`, `output` and `secrets` are leaves any stage may use.

// Leaves: no imports from any stage.
pub mod context;
pub mod output;
pub mod secrets;

// The pipeline, in order.
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod model;
pub mod ops;
pub mod pki;
pub mod plan;
pub mod render;
pub mod ui;
