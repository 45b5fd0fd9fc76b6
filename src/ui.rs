//! The one place that prints. Human text goes to stderr; with
//! `--output json` stdout carries exactly one JSON document and nothing else.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

use crate::diag::{Diagnostic, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Print diagnostics for a person (stderr).
pub fn diagnostics(items: &[Diagnostic]) {
    let mut err = std::io::stderr().lock();
    for d in items.iter().filter(|d| d.severity == Severity::Error) {
        let _ = writeln!(err, "{d}");
    }
    for d in items.iter().filter(|d| d.severity == Severity::Warning) {
        let _ = writeln!(err, "{d}");
    }
}

/// A line for a person (stderr).
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The JSON result document (stdout). A closed pipe is not an error.
pub fn json(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = writeln!(out);
}

/// Raw output a command was asked for (stdout): a rendered file, a schema.
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = writeln!(out);
    }
}
