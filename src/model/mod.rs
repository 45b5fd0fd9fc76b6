//! The API model: the vlabs serde mirror, the positioned JSON parser, the
//! strict loader, and the parsed newtypes used by later stages.

pub mod diag;
pub mod json;
pub mod load;
pub mod types;
pub mod vlabs;
