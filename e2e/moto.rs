//! A moto EC2/ELBv2 server of the test's own, on a free loopback port, with
//! the test AMI list (moto ships no current Windows AMIs). Killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{path, root};

pub struct Moto {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let probe = Command::new("python3")
            .args(["-c", "import moto.server"])
            .output()
            .expect("python3 runs");
        assert!(
            probe.status.success(),
            "moto's server is not installed: pip install 'moto[server]' (as .ci/run does)"
        );
        let dir = tempfile::tempdir().expect("tmp");
        // Ask the OS for a free port; moto binds it right after.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("log");
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_AMIS_PATH", root().join("e2e/moto-amis.json"))
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("moto starts");
        let moto = Moto { child, port, dir };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "moto did not listen on {port}: {}",
                moto.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// A plain HTTP/1.1 request to moto's control API.
    fn request(&self, method: &str, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        assert!(out.starts_with("HTTP/1.1 200"), "{method} {path}: {out}");
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }

    /// Forget every resource (between cases).
    pub fn reset(&self) {
        self.request("POST", "/moto-api/reset");
    }

    pub fn start_recording(&self) {
        self.request("POST", "/moto-api/recorder/reset-recording");
        self.request("POST", "/moto-api/recorder/start-recording");
    }

    /// The EC2/ELB actions moto received since `start_recording`.
    pub fn recorded_actions(&self) -> Vec<String> {
        self.request("POST", "/moto-api/recorder/stop-recording");
        let body = self.request("GET", "/moto-api/recorder/download-recording");
        // moto appends one JSON line per request from its request threads; a
        // large body is written in several chunks, so concurrent requests can
        // tear a line. A torn recording would hide calls: refuse it.
        let records: Vec<serde_json::Value> = body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("moto's recording has a torn line ({e}); record with --parallelism 1"))
            })
            .collect();
        records
            .into_iter()
            .filter_map(|v| {
                let raw = v["body"].as_str().unwrap_or_default();
                let body = if v["body_encoded"].as_bool() == Some(true) {
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(raw)
                        .unwrap_or_default();
                    String::from_utf8_lossy(&bytes).into_owned()
                } else {
                    raw.to_string()
                };
                body.split('&')
                    .find_map(|kv| kv.strip_prefix("Action=").map(str::to_string))
            })
            .collect()
    }

    /// The hke binary, with only what it needs in its environment: dummy
    /// credentials, no shared AWS config, and moto as the endpoint.
    pub fn hke(&self, cwd: &Path, args: &[&str]) -> Output {
        self.hke_command(cwd, args).output().expect("hke runs")
    }

    pub fn hke_command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hke"));
        c.args(args)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", path())
            .env("HOME", cwd)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_CONFIG_FILE", cwd.join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", cwd.join("no-aws-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HKE_AWS_ENDPOINT_URL", self.url());
        c
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
