//! Deploy state: what hke asked each cloud for, and what it got.
//!
//! `state.json` is a snapshot written atomically (temp file, fsync, rename);
//! `state.journal` is an append-only log of changes since that snapshot, each
//! line made durable before the call it describes (intent before create, the
//! id after). Appends from concurrent tasks are group-committed: one write and
//! one fsync for every batch waiting. Loading replays the journal over the
//! snapshot, ignoring a torn last line. `state.lock` keeps two runs apart.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use hke_provider_api::{Kind, Outputs};
use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "state.json";
pub const JOURNAL_FILE: &str = "state.journal";
pub const LOCK_FILE: &str = "state.lock";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// About to be created: the create call may or may not have happened.
    Intent,
    Created,
    /// About to be deleted.
    Deleting,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub kind: Kind,
    pub name: String,
    pub status: Status,
    pub id: Option<String>,
    #[serde(default)]
    pub outputs: Outputs,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub cluster: String,
    pub cloud: String,
    /// When the first deploy started (RFC 3339): the `hke.io/created` tag.
    #[serde(default)]
    pub created: Option<String>,
    /// Logical id → entry.
    pub resources: BTreeMap<String, Entry>,
}

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    id: String,
    entry: Option<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{0}")]
    Locked(String),
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is corrupt: {message}; move it aside to start over (resources are still found by their tags)")]
    Corrupt { path: PathBuf, message: String },
    #[error("the state writer has stopped")]
    WriterGone,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Load snapshot + journal from `dir` (empty state when there is none).
pub fn load(dir: &Path) -> Result<State, StateError> {
    let snap = dir.join(STATE_FILE);
    let mut state = match fs::read_to_string(&snap) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| StateError::Corrupt {
            path: snap.clone(),
            message: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
        Err(e) => return Err(io(&snap)(e)),
    };
    let jpath = dir.join(JOURNAL_FILE);
    if let Ok(f) = fs::File::open(&jpath) {
        for line in std::io::BufReader::new(f).lines() {
            let line = line.map_err(io(&jpath))?;
            // A torn last line (crash mid-write) was never acknowledged.
            let Ok(rec) = serde_json::from_str::<Record>(&line) else {
                break;
            };
            match rec.entry {
                Some(e) => {
                    state.resources.insert(rec.id, e);
                }
                None => {
                    state.resources.remove(&rec.id);
                }
            }
        }
    }
    Ok(state)
}

/// Write `state` as the snapshot and empty the journal.
pub fn compact(dir: &Path, state: &State) -> Result<(), StateError> {
    let snap = dir.join(STATE_FILE);
    let text = serde_json::to_vec_pretty(state).map_err(|e| StateError::Corrupt {
        path: snap.clone(),
        message: e.to_string(),
    })?;
    // Ids, names and addresses: no secrets (those stay in apimodel.json).
    crate::output::write_atomic(&snap, &text, crate::output::Mode::Public).map_err(|e| match e {
        crate::output::OutputError::Io { path, source } => StateError::Io { path, source },
        other => StateError::Io {
            path: snap.clone(),
            source: std::io::Error::other(other.to_string()),
        },
    })?;
    let jpath = dir.join(JOURNAL_FILE);
    match fs::remove_file(&jpath) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&jpath)(e)),
    }
}

type Ack = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Cut a log back to its last complete line. A process killed mid-append
/// leaves a torn line without its newline; appending after it would glue the
/// next record onto it and lose that record too.
pub fn trim_torn_tail(path: &Path) -> std::io::Result<()> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if data.is_empty() || data.ends_with(b"\n") {
        return Ok(());
    }
    let keep = data.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
    let f = fs::OpenOptions::new().write(true).open(path)?;
    f.set_len(keep as u64)?;
    f.sync_all()
}

/// How journal appends reach the disk. Both are durable before `record`
/// returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A writer thread batches concurrent appends into one write and one
    /// fsync (fast with many parallel calls).
    #[default]
    GroupCommit,
    /// Each append is written and fsynced by the caller (no thread hand-off;
    /// used where the caller's clock must not move meanwhile, as in tests on
    /// a paused clock).
    Inline,
}

#[derive(Debug)]
enum Writer {
    Thread {
        tx: mpsc::Sender<(Record, Ack)>,
        worker: Option<std::thread::JoinHandle<()>>,
    },
    Inline {
        file: std::sync::Mutex<fs::File>,
        path: PathBuf,
    },
}

/// A durable, shareable writer of state changes.
#[derive(Debug)]
pub struct Journal {
    writer: Writer,
}

impl Journal {
    /// Start appending to `dir/state.journal` with group commit.
    pub fn open(dir: &Path) -> Result<Journal, StateError> {
        Journal::open_with(dir, Durability::GroupCommit)
    }

    pub fn open_with(dir: &Path, durability: Durability) -> Result<Journal, StateError> {
        let path = dir.join(JOURNAL_FILE);
        trim_torn_tail(&path).map_err(io(&path))?;
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if durability == Durability::Inline {
            return Ok(Journal {
                writer: Writer::Inline {
                    file: std::sync::Mutex::new(file),
                    path,
                },
            });
        }
        let (tx, rx) = mpsc::channel::<(Record, Ack)>();
        let worker = std::thread::Builder::new()
            .name("hke-state".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Group commit: everything already waiting goes in one write.
                    let mut batch = vec![first];
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                    }
                    let mut buf = Vec::new();
                    for (rec, _) in &batch {
                        if let Ok(line) = serde_json::to_string(rec) {
                            buf.extend_from_slice(line.as_bytes());
                            buf.push(b'\n');
                        }
                    }
                    let result = file
                        .write_all(&buf)
                        .and_then(|()| file.sync_data())
                        .map_err(|e| format!("{}: {e}", path.display()));
                    for (_, ack) in batch {
                        let _ = ack.send(result.clone());
                    }
                }
            })
            .map_err(io(dir))?;
        Ok(Journal {
            writer: Writer::Thread {
                tx,
                worker: Some(worker),
            },
        })
    }

    /// Record `entry` for logical id `id` (or its removal) and wait until it
    /// is on disk.
    pub async fn record(&self, id: &str, entry: Option<Entry>) -> Result<(), StateError> {
        let rec = Record { id: id.into(), entry };
        match &self.writer {
            Writer::Inline { file, path } => {
                let mut line = serde_json::to_vec(&rec).map_err(|e| StateError::Corrupt {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                line.push(b'\n');
                let mut f = file.lock().map_err(|_| StateError::WriterGone)?;
                f.write_all(&line).and_then(|()| f.sync_data()).map_err(io(path))
            }
            Writer::Thread { tx, .. } => {
                let (ack, done) = tokio::sync::oneshot::channel();
                tx.send((rec, ack)).map_err(|_| StateError::WriterGone)?;
                match done.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(msg)) => Err(StateError::Io {
                        path: PathBuf::from(JOURNAL_FILE),
                        source: std::io::Error::other(msg),
                    }),
                    Err(_) => Err(StateError::WriterGone),
                }
            }
        }
    }

    /// Queue `entry` without waiting for the disk. For records whose loss
    /// a crash may cause safely: the id after a create (the intent, already
    /// durable, makes the next run look the resource up) and the removal after
    /// a delete ("not found" is done). Inline journals write synchronously.
    pub async fn record_soon(&self, id: &str, entry: Option<Entry>) -> Result<(), StateError> {
        match &self.writer {
            Writer::Inline { .. } => self.record(id, entry).await,
            Writer::Thread { tx, .. } => {
                let (ack, _) = tokio::sync::oneshot::channel();
                tx.send((Record { id: id.into(), entry }, ack))
                    .map_err(|_| StateError::WriterGone)
            }
        }
    }

    /// Stop the writer after everything queued is written.
    pub fn close(self) {
        if let Writer::Thread { tx, worker } = self.writer {
            drop(tx);
            if let Some(w) = worker {
                let _ = w.join();
            }
        }
    }
}

/// Who holds the lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockInfo {
    pub pid: u32,
    pub host: String,
    pub started: String,
    pub command: String,
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Take the cluster's lock. A lock left by a dead process on this host is
/// broken (and reported through `on_stale`); any other is an error that says
/// who holds it and how to break it.
pub fn lock(dir: &Path, command: &str, now: &str, on_stale: impl FnOnce(&LockInfo)) -> Result<Lock, StateError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(LOCK_FILE);
    let me = LockInfo {
        pid: std::process::id(),
        host: hostname(),
        started: now.into(),
        command: command.into(),
    };
    let mut on_stale = Some(on_stale);
    for _ in 0..2 {
        match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let text = serde_json::to_vec_pretty(&me).unwrap_or_default();
                f.write_all(&text).and_then(|()| f.sync_all()).map_err(io(&path))?;
                return Ok(Lock { path });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let held: Option<LockInfo> = fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok());
                match held {
                    Some(h) if h.host == me.host && !pid_alive(h.pid) => {
                        if let Some(f) = on_stale.take() {
                            f(&h);
                        }
                        let _ = fs::remove_file(&path);
                    }
                    Some(h) => {
                        return Err(StateError::Locked(format!(
                            "the cluster is locked by `{}` (pid {} on {}, since {}); wait for it to finish, or if that run is gone, delete {}",
                            h.command,
                            h.pid,
                            h.host,
                            h.started,
                            path.display()
                        )))
                    }
                    None => {
                        return Err(StateError::Locked(format!(
                            "the cluster is locked ({} exists but cannot be read); if no other hke is running, delete it",
                            path.display()
                        )))
                    }
                }
            }
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Err(StateError::Locked(format!("cannot take the lock {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, status: Status) -> Entry {
        Entry {
            kind: Kind::Machine,
            name: name.into(),
            status,
            id: (status == Status::Created).then(|| format!("id-{name}")),
            outputs: Outputs::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn journal_replays_over_the_snapshot_and_ignores_a_torn_line() {
        let tmp = tempfile::tempdir().expect("tmp");
        let j = Journal::open(tmp.path()).expect("journal");
        let j = std::sync::Arc::new(j);
        let mut tasks = Vec::new();
        for i in 0..50 {
            let j = j.clone();
            tasks.push(tokio::spawn(async move {
                j.record(&format!("m{i}"), Some(entry(&format!("m{i}"), Status::Intent)))
                    .await
                    .expect("intent");
                j.record(&format!("m{i}"), Some(entry(&format!("m{i}"), Status::Created)))
                    .await
                    .expect("created");
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        j.record("m0", None).await.expect("removal");
        let s = load(tmp.path()).expect("load");
        assert_eq!(s.resources.len(), 49);
        assert!(s.resources.values().all(|e| e.status == Status::Created));
        // A torn final line is ignored.
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(tmp.path().join(JOURNAL_FILE))
            .expect("open");
        f.write_all(b"{\"id\":\"m9\",\"entr").expect("write");
        assert_eq!(load(tmp.path()).expect("load").resources.len(), 49);
        // Regression: a run after the crash must not glue its records onto
        // the torn line (they were lost on the next load).
        let j2 = Journal::open(tmp.path()).expect("reopen");
        j2.record("after-crash", Some(entry("after-crash", Status::Created)))
            .await
            .expect("record");
        j2.close();
        let s = load(tmp.path()).expect("load");
        assert_eq!(s.resources.len(), 50, "the record after a torn line is kept");
        assert!(s.resources.contains_key("after-crash"));
        compact(tmp.path(), &s).expect("compact");
        assert!(!tmp.path().join(JOURNAL_FILE).exists());
        assert_eq!(load(tmp.path()).expect("load"), s);
    }

    #[test]
    fn the_lock_names_its_holder_and_breaks_when_stale() {
        let tmp = tempfile::tempdir().expect("tmp");
        let held = lock(tmp.path(), "hke deploy", "t0", |_| {}).expect("first");
        let err = lock(tmp.path(), "hke deploy", "t1", |_| {}).expect_err("second");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())) && msg.contains("delete"),
            "{msg}"
        );
        drop(held);
        assert!(!tmp.path().join(LOCK_FILE).exists(), "released on drop");
        // A lock of a process that no longer exists is broken.
        let dead = LockInfo {
            pid: u32::MAX - 1,
            host: hostname(),
            started: "t".into(),
            command: "hke deploy".into(),
        };
        fs::write(tmp.path().join(LOCK_FILE), serde_json::to_string(&dead).expect("json")).expect("write");
        let mut broken = false;
        let _l = lock(tmp.path(), "hke deploy", "t2", |_| broken = true).expect("stale lock broken");
        assert!(broken);
    }
}
