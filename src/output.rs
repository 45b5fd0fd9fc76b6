//! Writing an output directory atomically.
//!
//! Files are staged in a hidden sibling directory and renamed into place in
//! one step, so a failed run never leaves a half-written directory, and an
//! existing directory is only replaced with `--force`. Files holding secrets
//! are created with mode 0600 and the directory itself is 0700.

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
        for (rel, content, mode) in &self.files {
            let path = staging.path().join(rel);
            if let Some(d) = path.parent() {
                fs::create_dir_all(d).map_err(io(d))?;
            }
            write_file(&path, content, *mode)?;
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

fn write_file(path: &Path, content: &[u8], mode: Mode) -> Result<(), OutputError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(match mode {
            Mode::Secret => 0o600,
            Mode::Public => 0o644,
        });
    }
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(content).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    Ok(())
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

    #[test]
    fn a_failed_write_leaves_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("out");
        let mut t = Tree::default();
        t.add("a.txt", "x", Mode::Public);
        t.add("a.txt", "duplicate", Mode::Public); // create_new fails
        assert!(t.commit(&dir, false).is_err());
        assert!(!dir.exists());
        assert_eq!(fs::read_dir(tmp.path()).expect("ls").count(), 0, "staging removed");
    }
}
