//! Writing an output directory atomically.
//!
//! Files are staged in a hidden sibling directory and renamed into place in
//! one step, so a failed run never leaves a half-written directory, and an
//! existing directory is only replaced with `--force`. Files holding secrets
//! are created with mode 0600 and the directory itself is 0700.
//!
//! [`write_atomic`] is hke's one writer of a file: every file it writes,
//! staged or rewritten in place later (the kubeconfig once the endpoint is
//! known, the plan, the state snapshot), goes through it with its mode.

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
    write_file(path, content, mode, true)
}

/// [`write_atomic`]; `sync_dir` false leaves the directory's fsync to the
/// caller (a staged tree is made durable by its own rename).
fn write_file(path: &Path, content: &[u8], mode: Mode, sync_dir: bool) -> Result<(), OutputError> {
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
    if sync_dir {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Files to write, relative to the output directory.
#[derive(Debug, Default)]
pub struct Tree {
    files: Vec<(PathBuf, Vec<u8>, Mode)>,
}

impl Tree {
    pub fn add(&mut self, rel: impl Into<PathBuf>, content: impl Into<Vec<u8>>, mode: Mode) {
        self.files.push((rel.into(), content.into(), mode));
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _, _)| p.as_path())
    }

    /// Write the tree to `dir` atomically.
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
        let mut seen = std::collections::BTreeSet::new();
        for (rel, content, mode) in &self.files {
            let path = staging.path().join(rel);
            if !seen.insert(rel) {
                return Err(io(&path)(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the tree names this file twice",
                )));
            }
            if let Some(d) = path.parent() {
                fs::create_dir_all(d).map_err(io(d))?;
            }
            write_file(&path, content, *mode, false)?;
        }
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
