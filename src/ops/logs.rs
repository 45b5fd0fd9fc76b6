//! `hke logs`: every node's serial console, fetched through the cloud's API
//! (no SSH, so it works when a node never joined), at most 10 at once. The
//! node scripts write their logs to the console between
//! `### hke-log-begin NAME` and `### hke-log-end NAME` lines; each such
//! section is also saved as its own file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hke_provider_api::{Kind, Provider};
use serde::Serialize;

use crate::engine::state::State;

/// Connections open at once.
pub const CONCURRENCY: usize = 10;

const BEGIN: &str = "### hke-log-begin ";
const END: &str = "### hke-log-end ";

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Collected {
    /// Node → files written under its directory.
    pub nodes: BTreeMap<String, Vec<String>>,
    /// Machine → why its console could not be read.
    pub failed: BTreeMap<String, String>,
}

/// The marked sections of a console text: file name → content.
pub fn sections(console: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in console.lines() {
        // Consoles prefix lines (timestamps, `[hke]`): find the marker anywhere.
        if let Some(i) = line.find(BEGIN) {
            current = Some(safe_name(&line[i + BEGIN.len()..]));
            continue;
        }
        if line.contains(END) {
            current = None;
            continue;
        }
        if let Some(name) = &current {
            let s = out.entry(name.clone()).or_default();
            s.push_str(line);
            s.push('\n');
        }
    }
    out
}

/// A section name as a file name: no directories, no surprises.
fn safe_name(s: &str) -> String {
    let n: String = s
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let n = n.trim_start_matches('.').to_string();
    if n.is_empty() {
        "section.log".to_string()
    } else {
        n
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), text)
}

/// Fetch the console of every machine the state records into `to/<node>/`.
pub async fn collect(provider: Arc<dyn Provider>, state: &State, to: &Path) -> Collected {
    let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for e in state.resources.values() {
        if !matches!(e.kind, Kind::Machine | Kind::MachineGroup) {
            continue;
        }
        let Some(id) = e.id.clone() else { continue };
        let (provider, sem, kind, name) = (provider.clone(), sem.clone(), e.kind, e.name.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let r = provider.console_output(kind, &name, &id).await;
            (name, r)
        });
    }
    let mut out = Collected::default();
    while let Some(joined) = tasks.join_next().await {
        let Ok((machine, result)) = joined else { continue };
        match result {
            Ok(consoles) => {
                for (node, text) in consoles {
                    let dir: PathBuf = to.join(safe_name(&node));
                    let mut files = vec!["console.log".to_string()];
                    let mut ok = write(&dir, "console.log", &text);
                    for (name, body) in sections(&text) {
                        ok = ok.and_then(|_| write(&dir, &name, &body));
                        files.push(name);
                    }
                    match ok {
                        Ok(()) => {
                            out.nodes.insert(node, files);
                        }
                        Err(e) => {
                            out.failed.insert(node, format!("cannot write {}: {e}", dir.display()));
                        }
                    }
                }
            }
            Err(e) => {
                out.failed.insert(machine, e.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hke_provider_api::ProviderError;

    #[test]
    fn sections_are_cut_out_of_a_noisy_console() {
        let console = "\
[    1.2] boot noise
[   12.0] cloud-init[842]: ### hke-log-begin bootstrap.log
[   12.0] cloud-init[842]: step 1
step 2
### hke-log-end bootstrap.log
more noise
### hke-log-begin ../../etc/kubelet.log
I0101 kubelet started
";
        let s = sections(console);
        assert_eq!(s["bootstrap.log"], "[   12.0] cloud-init[842]: step 1\nstep 2\n");
        // An unterminated section runs to the end; names cannot escape.
        assert_eq!(s["_.._etc_kubelet.log"], "I0101 kubelet started\n");
        assert_eq!(s.len(), 2);
    }

    /// A cloud that counts how many console reads run at once.
    struct Counting {
        now: std::sync::atomic::AtomicUsize,
        max: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Provider for Counting {
        fn cloud(&self) -> &str {
            "counting"
        }
        async fn create(&self, _: &hke_provider_api::Request) -> Result<hke_provider_api::Outputs, ProviderError> {
            Err(ProviderError::permanent("No", "not here"))
        }
        async fn read(&self, _: Kind, _: &str) -> Result<Option<hke_provider_api::Outputs>, ProviderError> {
            Ok(None)
        }
        async fn delete(&self, _: Kind, _: &str, _: Option<&str>) -> Result<(), ProviderError> {
            Ok(())
        }
        async fn list(&self, _: &str) -> Result<Vec<hke_provider_api::Found>, ProviderError> {
            Ok(vec![])
        }
        async fn list_all(&self) -> Result<Vec<hke_provider_api::Found>, ProviderError> {
            Ok(vec![])
        }
        async fn console_output(&self, _: Kind, name: &str, _: &str) -> Result<Vec<(String, String)>, ProviderError> {
            use std::sync::atomic::Ordering::SeqCst;
            let n = self.now.fetch_add(1, SeqCst) + 1;
            self.max.fetch_max(n, SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.now.fetch_sub(1, SeqCst);
            if name == "broken" {
                return Err(ProviderError::transient("Throttling", "slow down", None));
            }
            Ok(vec![(name.to_string(), format!("### hke-log-begin a.log\n{name}\n"))])
        }
    }

    #[tokio::test]
    async fn at_most_ten_consoles_are_read_at_once_and_failures_are_named() {
        use crate::engine::state::{Entry, Status};
        let mut state = State::default();
        for i in 0..35 {
            let name = if i == 7 {
                "broken".to_string()
            } else {
                format!("node-{i}")
            };
            state.resources.insert(
                format!("machine/{name}"),
                Entry {
                    kind: Kind::Machine,
                    name,
                    status: Status::Created,
                    id: Some(format!("i-{i}")),
                    outputs: Default::default(),
                },
            );
        }
        let cloud = Arc::new(Counting {
            now: Default::default(),
            max: Default::default(),
        });
        let tmp = tempfile::tempdir().expect("tmp");
        let got = collect(cloud.clone(), &state, tmp.path()).await;
        let max = cloud.max.load(std::sync::atomic::Ordering::SeqCst);
        assert!((2..=CONCURRENCY).contains(&max), "{max} at once");
        assert_eq!(got.nodes.len(), 34);
        assert!(got.failed["broken"].contains("Throttling"));
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("node-3/a.log")).expect("section"),
            "node-3\n"
        );
    }
}
