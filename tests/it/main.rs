//! Integration tests: one binary, one module per concern.

mod arm;
mod ci;
mod cli;
mod corpus;
mod engine;
mod golden;
mod janitor;
mod kube;
mod kubelet;
mod layout;
mod live;
mod nodes;
mod pki;
mod props;
mod render;
mod rules;
mod scheduling;
mod support;

mod upstream;
