//! What every cloud's e2e tests share: the project root, the test's PATH,
//! output as text, the summary of a JSON event stream, the arguments of a
//! deploy, and a deploy killed part-way.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test's own PATH, passed on to the hke it starts.
#[allow(clippy::disallowed_methods)]
pub fn path() -> std::ffi::OsString {
    std::env::var_os("PATH").unwrap_or_default()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The last `end` event of a JSON event stream.
pub fn summary(stdout: &str) -> Value {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v["event"] == "end")
        .unwrap_or_else(|| panic!("no end event in:\n{stdout}"))
}

/// `--output json deploy -m <model> -o out` and `extra`.
pub fn deploy_args(model: &str, extra: &[&str]) -> Vec<String> {
    let model = root().join(model);
    let mut args: Vec<String> = ["--output", "json", "deploy", "-m"].map(String::from).to_vec();
    args.push(model.to_string_lossy().into_owned());
    args.extend(["-o", "out"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Run a deploy (`--output json`) and SIGKILL it once `after` resources
/// are done.
pub fn kill_after(mut deploy: Command, after: usize) {
    let mut child = deploy
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hke starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut done = 0;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.contains(r#""event":"done""#) {
            done += 1;
            if done >= after {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

/// An in-process fake server on a runtime of its own, for synchronous
/// tests; stopped inside that runtime when dropped.
pub struct Served<T> {
    inner: Option<T>,
    rt: tokio::runtime::Runtime,
}

impl<T> Served<T> {
    pub fn start<F>(start: impl FnOnce() -> F) -> Served<T>
    where
        F: std::future::Future<Output = std::io::Result<T>>,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let inner = rt.block_on(start()).expect("fake server starts");
        Served { inner: Some(inner), rt }
    }

    pub fn get(&self) -> &T {
        self.inner.as_ref().expect("running")
    }
}

impl<T> Drop for Served<T> {
    fn drop(&mut self) {
        let inner = self.inner.take();
        let _guard = self.rt.enter();
        drop(inner);
    }
}

/// An IPv4 CIDR (or a bare address, as `/32`) contains an address; `*`
/// contains every address, as in an Azure NSG rule.
pub fn cidr_contains(cidr: &str, ip: &str) -> bool {
    let Ok(ip) = ip.parse::<std::net::Ipv4Addr>() else {
        return false;
    };
    if cidr == "*" {
        return true;
    }
    let (net, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let (Ok(net), Ok(prefix)) = (net.parse::<std::net::Ipv4Addr>(), prefix.parse::<u32>()) else {
        return false;
    };
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    u32::from(ip) & mask == u32::from(net) & mask
}
