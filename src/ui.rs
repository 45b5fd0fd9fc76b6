//! The one place that prints. Human text goes to stderr; with
//! `--output json` stdout carries exactly one JSON document and nothing else.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

use crate::model::diag::{Diagnostic, Severity};

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

/// Render engine events: JSON lines on stdout with `--output json`; a
/// progress display on stderr when it is a terminal; plain timestamped lines
/// otherwise.
pub fn event_sink(format: Format) -> crate::engine::EventSink {
    use std::io::IsTerminal;
    match format {
        Format::Json => std::sync::Arc::new(|e: &crate::engine::Event| {
            let mut out = std::io::stdout().lock();
            if let Ok(line) = serde_json::to_string(e) {
                let _ = writeln!(out, "{line}");
            }
        }),
        Format::Text if std::io::stderr().is_terminal() => {
            let p = progress::Progress::new();
            std::sync::Arc::new(move |e: &crate::engine::Event| p.handle(e))
        }
        Format::Text => {
            let start = std::time::Instant::now();
            std::sync::Arc::new(move |e: &crate::engine::Event| {
                if let Some(line) = plain(e) {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "[{:>7.1}s] {line}",
                        start.elapsed().as_secs_f64()
                    );
                }
            })
        }
    }
}

/// A one-line description of an event for people, or None for noise.
pub fn plain(e: &crate::engine::Event) -> Option<String> {
    use crate::engine::{Event, Outcome};
    Some(match e {
        Event::Begin { op, cluster, total, .. } => format!("{op:?} {cluster}: {total} resource(s)").to_lowercase(),
        Event::Start { .. } => return None,
        Event::Done {
            outcome: Outcome::Unchanged,
            ..
        } => return None,
        Event::Done {
            kind,
            name,
            outcome,
            elapsed_ms,
            ..
        } => {
            let verb = match outcome {
                Outcome::Created => "created",
                Outcome::Adopted => "adopted",
                Outcome::Unchanged => "unchanged",
                Outcome::Deleted => "deleted",
                Outcome::AlreadyGone => "already gone:",
            };
            format!("{verb} {kind} {name} ({:.1}s)", *elapsed_ms as f64 / 1000.0)
        }
        Event::Retry {
            kind,
            name,
            attempt,
            wait_ms,
            reason,
            ..
        } => {
            format!(
                "retrying {kind} {name} in {:.1}s (attempt {attempt}): {reason}",
                *wait_ms as f64 / 1000.0
            )
        }
        Event::Failed { kind, name, error, .. } => format!("FAILED {kind} {name}: {error}"),
        Event::Note { message } => message.clone(),
        Event::End { op, summary } => summary_line(*op, summary),
    })
}

pub fn summary_line(op: crate::engine::Op, s: &crate::engine::Summary) -> String {
    let secs = s.elapsed_ms as f64 / 1000.0;
    match op {
        crate::engine::Op::Deploy if s.created + s.adopted == 0 && s.failed == 0 => {
            format!("up to date: {} resource(s) unchanged ({secs:.1}s)", s.unchanged)
        }
        crate::engine::Op::Deploy => format!(
            "deploy: {} created, {} adopted, {} unchanged, {} failed, {} retries in {secs:.1}s",
            s.created, s.adopted, s.unchanged, s.failed, s.retries
        ),
        crate::engine::Op::Teardown => format!(
            "teardown: {} deleted, {} already gone, {} failed, {} retries in {secs:.1}s",
            s.deleted, s.already_gone, s.failed, s.retries
        ),
    }
}

mod progress {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use hke_provider_api::Kind;
    use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

    use crate::engine::{Event, Outcome};

    /// One bar per resource kind, with a spinner and elapsed time.
    pub struct Progress {
        mp: MultiProgress,
        bars: Mutex<BTreeMap<Kind, ProgressBar>>,
    }

    impl Progress {
        pub fn new() -> Progress {
            Progress {
                mp: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::new(BTreeMap::new()),
            }
        }

        fn bar(&self, kind: Kind, len: u64) -> ProgressBar {
            let style = ProgressStyle::with_template(
                "{spinner} {prefix:>13} [{bar:30}] {pos:>4}/{len:<4} {elapsed:>4} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let b = self
                .mp
                .add(ProgressBar::new(len).with_style(style).with_prefix(kind.name()));
            b.enable_steady_tick(Duration::from_millis(120));
            b
        }
    }

    impl Progress {
        pub fn handle(&self, e: &Event) {
            let Ok(mut bars) = self.bars.lock() else { return };
            match e {
                Event::Begin { by_kind, .. } => {
                    for (kind, n) in by_kind {
                        let b = self.bar(*kind, *n as u64);
                        bars.insert(*kind, b);
                    }
                }
                Event::Done {
                    kind, outcome, name, ..
                } => {
                    if let Some(b) = bars.get(kind) {
                        b.inc(1);
                        if *outcome != Outcome::Unchanged {
                            b.set_message(name.clone());
                        }
                        if b.position() >= b.length().unwrap_or(0) {
                            b.finish_with_message("done");
                        }
                    }
                }
                Event::Retry {
                    kind,
                    name,
                    wait_ms,
                    reason,
                    ..
                } => {
                    if let Some(b) = bars.get(kind) {
                        b.set_message(format!(
                            "{name}: retrying in {:.1}s ({reason})",
                            *wait_ms as f64 / 1000.0
                        ));
                    }
                }
                Event::Failed { .. } | Event::Note { .. } => {
                    if let Some(line) = super::plain(e) {
                        let _ = self.mp.println(line);
                    }
                }
                Event::End { .. } => {
                    for b in bars.values().filter(|b| !b.is_finished()) {
                        b.abandon();
                    }
                    if let Some(line) = super::plain(e) {
                        let _ = self.mp.println(line);
                    }
                }
                Event::Start { .. } => {}
            }
        }
    }
}
