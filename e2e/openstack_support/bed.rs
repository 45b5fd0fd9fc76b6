//! The OpenStack test bed (e2e/openstack/stack.sh) of this test binary:
//! `stack.sh install`, then `stack.sh up` in a fresh temporary directory on
//! ports from 19000 (`HKE_OS_PORT_BASE`), away from the bed's default
//! 18700 and the provider crate's 18900. `stack.sh down` stops it when the
//! guard is dropped, which also happens while a failed test unwinds; should
//! the test process die without unwinding (SIGKILL, abort), a watchdog in a
//! session of its own notices that its pid is gone, runs `down` and removes
//! the directory.
//!
//! After a failure the services' logs are copied out of the temporary
//! directory (the path is printed) before it is removed.
//!
//! For debugging only, `HKE_OPENSTACK_E2E_DIR=DIR` uses a bed that is up
//! already and leaves it up; the test's own runs never set it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::{env, note};

/// The first of the bed's ten ports.
pub const PORT_BASE: &str = "19000";

pub fn stack_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/openstack/stack.sh")
}

/// The bed's venv python (openstacksdk), as stack.sh places it.
pub fn python() -> PathBuf {
    let cache = env("HKE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env("HOME").unwrap_or_else(|| "/root".into())).join(".cache/hke"));
    cache.join("openstack/venv/bin/python")
}

pub struct Bed {
    dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
    watchdog: Option<Child>,
}

fn stack(args: &[&str]) {
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(stack_sh())
        .args(args)
        .env("HKE_OS_PORT_BASE", PORT_BASE)
        .stdin(Stdio::null())
        .output()
        .expect("run stack.sh");
    assert!(
        out.status.success(),
        "stack.sh {args:?} failed ({:?}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    note(format!("stack.sh {} took {:.1?}", args[0], started.elapsed()));
}

impl Bed {
    pub fn start() -> Bed {
        if let Some(dir) = env("HKE_OPENSTACK_E2E_DIR") {
            note(format!("using the running bed in {dir} (HKE_OPENSTACK_E2E_DIR)"));
            return Bed {
                dir: PathBuf::from(dir),
                tmp: None,
                watchdog: None,
            };
        }
        stack(&["install"]);
        let tmp = tempfile::Builder::new()
            .prefix("hke-os-e2e-")
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().to_path_buf();
        // The watchdog and the guard exist before `up`, so a half-started
        // bed is stopped too.
        let watchdog = Command::new("setsid")
            .args(["bash", "-c"])
            .arg(r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; bash "$2" down "$3"; rm -rf "$3""#)
            .args(["hke-os-e2e-watchdog", &std::process::id().to_string()])
            .arg(stack_sh())
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the watchdog");
        let bed = Bed {
            dir: dir.clone(),
            tmp: Some(tmp),
            watchdog: Some(watchdog),
        };
        stack(&["up", &dir.to_string_lossy()]);
        bed
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn clouds(&self) -> PathBuf {
        self.dir.join("clouds.yaml")
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let Some(tmp) = self.tmp.take() else {
            return;
        };
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let down = Command::new("bash")
            .arg(stack_sh())
            .arg("down")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
        match down {
            Ok(o) if o.status.success() => note("bed stopped".into()),
            Ok(o) => note(format!("stack.sh down failed: {}", String::from_utf8_lossy(&o.stderr))),
            Err(e) => note(format!("stack.sh down: {e}")),
        }
        if std::thread::panicking() {
            let keep = std::env::temp_dir().join(format!("hke-os-e2e-logs-{}", std::process::id()));
            let copied = Command::new("cp")
                .arg("-r")
                .arg(self.dir.join("log"))
                .arg(&keep)
                .status()
                .is_ok_and(|s| s.success());
            if copied {
                note(format!("the bed's logs are in {}", keep.display()));
            }
        }
        drop(tmp);
    }
}
