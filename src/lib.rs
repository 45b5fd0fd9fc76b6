//! hke: the hybrid Kubernetes engine. See ARCHITECTURE.md for the map.

pub mod bootstrap;
pub mod check;
pub mod ci;
pub mod cli;
pub mod cluster;
pub mod context;
pub mod defaults;
pub mod deploy;
pub mod diag;
pub mod engine;
pub mod generate;
pub mod janitor;
pub mod kubeconfig;
pub mod logs;
pub mod migrate;
pub mod model;
pub mod output;
pub mod pki;
pub mod plan;
pub mod render;
pub mod secrets;
pub mod state;
pub mod ui;
pub mod validate;
pub mod versions;
pub mod vmsizes;
