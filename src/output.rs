//! Writing an output directory atomically.
//!
//! Files are staged in a hidden sibling directory and renamed into place in
//! one step, so a failed run never leaves a half-written directory, and an
//! existing directory is only replaced with `--force`. Files holding secrets
//! are created with mode 0600 and the directory itself is 0700.
//!
//! This module is hke's one writer of files: a [`Tree`] stages its files
//! (each created with its mode and fsynced, several at a time, lazily
//! rendered ones rendered on the way), and every file rewritten in place
//! later (the kubeconfig once the endpoint is known, the plan, the state
//! snapshot) goes through [`write_atomic`] with its mode.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{0} already exists; pass --force to replace it, or choose another --output-directory")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Is a file's content secret (mode 0600) or public (0644)?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Public,
    Secret,
}

impl Mode {
    /// The file's permission bits.
    pub fn bits(self) -> u32 {
        match self {
            Mode::Secret => 0o600,
            Mode::Public => 0o644,
        }
    }
}

/// Write `content` to `path` atomically with `mode`: a temporary file in the
/// same directory, created with the mode (never wider, whatever the umask),
/// written and fsynced, then renamed over `path`, and the directory fsynced.
/// A reader sees the old file or the new one, never a part; the mode is the
/// new file's own, so a file that existed with a wider mode is replaced by
/// one with `mode`; a failed write leaves no temporary file.
pub fn write_atomic(path: &Path, content: &[u8], mode: Mode) -> Result<(), OutputError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let prefix = format!(".{}.", path.file_name().and_then(|n| n.to_str()).unwrap_or("file"));
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(mode.bits()));
    }
    let mut tmp = b.tempfile_in(dir).map_err(io(path))?;
    // The umask may have narrowed the create mode: set it exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode.bits()))
            .map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.write_all(content).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A file of a [`Tree`] staged without a temporary name of its own: the
/// staging directory is the unit that is renamed into place, so nobody sees
/// it before it is complete. Created with the mode (set exactly, whatever
/// the umask), written and fsynced.
fn write_staged(path: &Path, content: &[u8], mode: Mode) -> Result<(), OutputError> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode.bits());
    }
    let mut f = o.open(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The umask may have narrowed the create mode: set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode.bits()))
            .map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    f.write_all(content).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    Ok(())
}

/// What a file of a [`Tree`] holds: its bytes, or how to make them.
enum Content<'a> {
    Bytes(Vec<u8>),
    /// Rendered when the tree is written (in parallel with the other files,
    /// and dropped once written), so a large tree is never all in memory.
    Lazy(Box<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync + 'a>),
}

/// Files to write, relative to the output directory.
#[derive(Default)]
pub struct Tree<'a> {
    files: Vec<(PathBuf, Content<'a>, Mode)>,
}

impl std::fmt::Debug for Tree<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.files.iter().map(|(p, _, m)| (p, m)))
            .finish()
    }
}

/// Threads writing a tree: rendering is CPU-bound and each file's fsync
/// waits on the disk, so a few more threads than cores keep both busy (and
/// let the device take several fsyncs at once).
const WRITERS_PER_CORE: usize = 4;
const MAX_WRITERS: usize = 16;

impl<'a> Tree<'a> {
    pub fn add(&mut self, rel: impl Into<PathBuf>, content: impl Into<Vec<u8>>, mode: Mode) {
        self.files.push((rel.into(), Content::Bytes(content.into()), mode));
    }

    /// A file whose content `render` makes when the tree is written. An
    /// error fails the commit (naming the file) and leaves nothing behind.
    pub fn add_lazy(
        &mut self,
        rel: impl Into<PathBuf>,
        mode: Mode,
        render: impl Fn() -> Result<Vec<u8>, String> + Send + Sync + 'a,
    ) {
        self.files.push((rel.into(), Content::Lazy(Box::new(render)), mode));
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _, _)| p.as_path())
    }

    /// Write the tree to `dir` atomically: every file is staged (created
    /// with its mode, written and fsynced, several at a time) in a hidden
    /// sibling directory, which is then renamed into place.
    pub fn commit(&self, dir: &Path, force: bool) -> Result<(), OutputError> {
        if dir.exists() && !force {
            return Err(OutputError::Exists(dir.to_path_buf()));
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io(&parent))?;
        let staging = tempfile::Builder::new()
            .prefix(".hke-staging-")
            .tempdir_in(&parent)
            .map_err(io(&parent))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o700)).map_err(io(staging.path()))?;
        }
        let mut seen = std::collections::HashSet::with_capacity(self.files.len());
        for (rel, _, _) in &self.files {
            if !seen.insert(rel) {
                let path = staging.path().join(rel);
                return Err(io(&path)(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the tree names this file twice",
                )));
            }
        }
        self.stage(staging.path())?;
        // Replace: move the old directory aside, move the new one in, then
        // delete the old one. A crash in between leaves either directory
        // complete.
        let old = if dir.exists() {
            let aside = parent.join(format!(
                ".hke-old-{}-{}",
                dir.file_name().and_then(|n| n.to_str()).unwrap_or("output"),
                std::process::id()
            ));
            fs::rename(dir, &aside).map_err(io(dir))?;
            Some(aside)
        } else {
            None
        };
        let staged = staging.keep();
        if let Err(e) = fs::rename(&staged, dir) {
            if let Some(o) = &old {
                let _ = fs::rename(o, dir);
            }
            let _ = fs::remove_dir_all(&staged);
            return Err(io(dir)(e));
        }
        if let Some(o) = old {
            fs::remove_dir_all(&o).map_err(io(&o))?;
        }
        Ok(())
    }

    /// Write every file under `root`, rendering lazy ones on the way, on a
    /// few threads; the first error stops them all.
    fn stage(&self, root: &Path) -> Result<(), OutputError> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let write_one = |(rel, content, mode): &(PathBuf, Content<'a>, Mode)| -> Result<(), OutputError> {
            let path = root.join(rel);
            if let Some(d) = path.parent() {
                fs::create_dir_all(d).map_err(io(d))?;
            }
            match content {
                Content::Bytes(b) => write_staged(&path, b, *mode),
                Content::Lazy(render) => {
                    let bytes = render().map_err(|e| io(&path)(std::io::Error::other(e)))?;
                    write_staged(&path, &bytes, *mode)
                }
            }
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let writers = (cores * WRITERS_PER_CORE).min(MAX_WRITERS).min(self.files.len());
        if writers <= 1 {
            return self.files.iter().try_for_each(write_one);
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let first_error: std::sync::Mutex<Option<OutputError>> = std::sync::Mutex::new(None);
        let work = || {
            while !failed.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(file) = self.files.get(i) else { break };
                if let Err(e) = write_one(file) {
                    failed.store(true, Ordering::Relaxed);
                    if let Ok(mut slot) = first_error.lock() {
                        slot.get_or_insert(e);
                    }
                }
            }
        };
        std::thread::scope(|s| {
            // This thread is one of the writers; a thread the system will
            // not start leaves its share to the others.
            for _ in 1..writers {
                if std::thread::Builder::new().spawn_scoped(s, work).is_err() {
                    break;
                }
            }
            work();
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_existing_without_force_and_replaces_with_force() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("out");
        let mut t = Tree::default();
        t.add("a.txt", "one", Mode::Public);
        t.add("sub/secret.key", "two", Mode::Secret);
        t.commit(&dir, false).expect("first write");
        assert!(matches!(t.commit(&dir, false), Err(OutputError::Exists(_))));
        let mut t2 = Tree::default();
        t2.add("b.txt", "three", Mode::Public);
        t2.commit(&dir, true).expect("forced write");
        assert!(!dir.join("a.txt").exists(), "old content is gone");
        assert_eq!(fs::read_to_string(dir.join("b.txt")).expect("b"), "three");
        let leftovers: Vec<_> = fs::read_dir(tmp.path())
            .expect("ls")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "no staging or old directories remain: {leftovers:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("out");
        let mut t = Tree::default();
        t.add("pub.txt", "x", Mode::Public);
        t.add("k/secret.key", "y", Mode::Secret);
        t.commit(&dir, false).expect("write");
        let mode = |p: &str| fs::metadata(dir.join(p)).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode("k/secret.key"), 0o600);
        assert_eq!(mode("pub.txt") & 0o077, 0o044 & mode("pub.txt"));
        assert_eq!(
            fs::metadata(&dir).expect("meta").permissions().mode() & 0o077,
            0,
            "directory is private"
        );
    }

    #[cfg(unix)]
    #[test]
    fn rewrites_take_the_given_mode_whatever_the_old_file_had() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("kubeconfig.json");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        // An existing file with a wider mode.
        fs::write(&path, "old").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).expect("chmod");
        write_atomic(&path, b"new", Mode::Secret).expect("rewrite");
        assert_eq!(fs::read_to_string(&path).expect("read"), "new");
        assert_eq!(mode(&path), 0o600);
        // Rewritten again: still private.
        write_atomic(&path, b"newer", Mode::Secret).expect("rewrite");
        assert_eq!(mode(&path), 0o600);
        // A public file is 0644 even where a secret one was.
        write_atomic(&path, b"public", Mode::Public).expect("rewrite");
        assert_eq!(mode(&path), 0o644);
        let names: Vec<_> = fs::read_dir(tmp.path())
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
        // A directory that cannot be written: an error naming the file, and
        // the old file untouched.
        let missing = tmp.path().join("no/such/dir/file");
        let e = write_atomic(&missing, b"x", Mode::Secret).expect_err("no directory");
        assert!(e.to_string().contains("no/such/dir/file"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn lazy_files_are_rendered_as_the_tree_is_written_with_their_modes() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("out");
        let rendered = std::sync::atomic::AtomicUsize::new(0);
        let mut t = Tree::default();
        t.add("plain.txt", "plain", Mode::Public);
        for i in 0..300 {
            let rendered = &rendered;
            let mode = if i % 2 == 0 { Mode::Secret } else { Mode::Public };
            t.add_lazy(format!("nodes/n{i}/boot.txt"), mode, move || {
                rendered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(format!("node {i}\n").into_bytes())
            });
        }
        assert_eq!(
            rendered.load(std::sync::atomic::Ordering::Relaxed),
            0,
            "nothing is rendered before commit"
        );
        assert_eq!(t.paths().count(), 301);
        t.commit(&dir, false).expect("write");
        assert_eq!(
            rendered.load(std::sync::atomic::Ordering::Relaxed),
            300,
            "each lazy file rendered once"
        );
        assert_eq!(fs::read_to_string(dir.join("plain.txt")).expect("plain"), "plain");
        for i in 0..300 {
            let path = dir.join(format!("nodes/n{i}/boot.txt"));
            assert_eq!(fs::read_to_string(&path).expect("boot"), format!("node {i}\n"));
            let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, if i % 2 == 0 { 0o600 } else { 0o644 }, "{}", path.display());
        }
    }

    #[test]
    fn a_file_that_cannot_be_rendered_fails_the_commit_and_leaves_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("out");
        let mut t = Tree::default();
        for i in 0..100 {
            t.add_lazy(format!("n{i}/boot.txt"), Mode::Secret, move || {
                if i == 57 {
                    Err("template windows/node: no such key".to_string())
                } else {
                    Ok(b"ok".to_vec())
                }
            });
        }
        let e = t.commit(&dir, false).expect_err("a file fails");
        assert!(e.to_string().contains("n57/boot.txt"), "{e}");
        assert!(e.to_string().contains("no such key"), "{e}");
        assert!(!dir.exists());
        assert_eq!(fs::read_dir(tmp.path()).expect("ls").count(), 0, "staging removed");
        // An existing directory survives a failed replacement.
        let mut ok = Tree::default();
        ok.add("a.txt", "old", Mode::Public);
        ok.commit(&dir, false).expect("write");
        assert!(t.commit(&dir, true).is_err());
        assert_eq!(fs::read_to_string(dir.join("a.txt")).expect("old"), "old");
        assert_eq!(
            fs::read_dir(tmp.path()).expect("ls").count(),
            1,
            "only the old directory"
        );
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("out");
        let mut t = Tree::default();
        t.add("a.txt", "x", Mode::Public);
        t.add("a.txt", "duplicate", Mode::Public); // named twice
        assert!(t.commit(&dir, false).is_err());
        assert!(!dir.exists());
        assert_eq!(fs::read_dir(tmp.path()).expect("ls").count(), 0, "staging removed");
    }
}
