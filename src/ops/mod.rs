//! One library function per verb; `cli` parses flags and calls one of these.

pub mod boot;
pub mod check;
pub mod ci;
pub mod deploy;
pub mod error;
pub mod generate;
pub mod janitor;
pub mod junit;
pub mod logs;
pub mod migrate;
pub mod target;
pub mod workspace;
