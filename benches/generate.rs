//! `cargo bench --bench generate`: how long `generate` takes on the shipped
//! example and on a 1,000-node model (10 pools × 100, scale sets: one boot
//! file per pool), end to end including key generation and writing the
//! output directory, split into its phases; then the `hke generate` command
//! itself on a 1,003-node kubenet model (1,004 boot files: one per machine
//! and the manifests), with its wall time, CPU time and peak memory.
//!
//! CI builds one profile (dev, with some packages optimised), so measure
//! what CI runs: `cargo bench --profile dev --bench generate` (a plain
//! `cargo bench` measures a release build, and says so). Outputs go to the
//! temporary directory (`TMPDIR`), each run to a new directory; with
//! `TMPDIR=/dev/shm` the figures leave out the disk.
//!
//! Under `cargo test` (no `--bench` argument) each case runs once as a smoke
//! test.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::OsRng;

fn big_model() -> String {
    let pools: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            let windows = i % 2 == 1;
            serde_json::json!({
                "name": format!("{}pool{i}", if windows { "win" } else { "lin" }),
                "count": 100,
                "vmSize": "Standard_D4s_v3",
                "osType": if windows { "Windows" } else { "Linux" },
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "vlabs",
        "location": "westus2",
        "properties": {
            "orchestratorProfile": {"orchestratorRelease": "1.36"},
            "masterProfile": {"count": 5, "dnsPrefix": "big-hybrid", "vmSize": "Standard_D8s_v3"},
            "agentPoolProfiles": pools,
        }
    })
    .to_string()
}

/// Times of one in-process run: model to `Prepared`, the tree, its commit.
struct Phases {
    prepare: Duration,
    tree: Duration,
    commit: Duration,
}

impl Phases {
    fn total(&self) -> Duration {
        self.prepare + self.tree + self.commit
    }
}

fn run(text: &str, sets: &[hke::model::load::SetArg], out: &Path) -> Phases {
    let start = Instant::now();
    let prepared =
        hke::ops::generate::prepare(text, sets, &mut OsRng, hke::ops::generate::now()).expect("model generates");
    let prepare = start.elapsed();
    let start = Instant::now();
    let tree = hke::ops::generate::tree(&prepared).expect("renders");
    let tree_time = start.elapsed();
    let start = Instant::now();
    tree.commit(out, true).expect("writes");
    Phases {
        prepare,
        tree: tree_time,
        commit: start.elapsed(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// The `--set` edits that turn examples/windows.json (3 masters, pools
/// linuxpool1 and windowspool1) into the 1,003-node kubenet model. The fake
/// cloud has no route-table or availability-set limits, so 1,003 kubenet
/// nodes are valid there (Azure caps kubenet at 400 routes and availability
/// sets at 200 VMs, AWS route tables at 50 routes).
const KUBENET_1003: &[&str] = &[
    "properties.providerProfile.name=fake",
    "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
    "properties.agentPoolProfiles[0].count=500",
    "properties.agentPoolProfiles[1].count=500",
];

/// What one `hke generate` process took.
struct CliRun {
    wall: Duration,
    /// Peak resident memory (VmHWM), KiB.
    peak_kib: u64,
    /// User + system CPU time of all its threads.
    cpu: Duration,
}

/// One `hke generate` process: its wall time, peak resident memory (VmHWM,
/// polled from /proc while it runs) and CPU time (read from /proc once it
/// has exited, before it is reaped). Memory and CPU are 0 without /proc.
fn run_cli(example: &Path, out: &Path) -> CliRun {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hke"));
    cmd.arg("generate").arg("-m").arg(example);
    for s in KUBENET_1003 {
        cmd.args(["--set", s]);
    }
    cmd.arg("-o").arg(out);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("hke runs");
    let proc_dir = Path::new("/proc").join(child.id().to_string());
    let mut peak_kib = 0u64;
    let mut cpu = Duration::ZERO;
    let mut wall = None;
    loop {
        let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        // pid (comm) state ... utime stime: fields 14 and 15, in USER_HZ (100/s).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        if fields.first() == Some(&"Z") {
            wall = Some(start.elapsed());
            let ticks: u64 = fields[11..13].iter().filter_map(|f| f.parse::<u64>().ok()).sum();
            cpu = Duration::from_millis(ticks * 10);
            break;
        }
        if let Some(kib) = std::fs::read_to_string(proc_dir.join("status")).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak_kib = peak_kib.max(kib);
        }
        if stat.is_empty() {
            // No /proc: wait for it.
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let status = child.wait().expect("wait");
    let wall = wall.unwrap_or_else(|| start.elapsed());
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!("hke generate failed: {status}\n{err}");
    }
    CliRun { wall, peak_kib, cpu }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (iterations, big_iterations) = if bench { (10, 5) } else { (1, 1) };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example_path = root.join("examples/windows.json");
    let example = std::fs::read_to_string(&example_path).expect("example");
    let big = big_model();
    let kubenet: Vec<hke::model::load::SetArg> =
        KUBENET_1003.iter().map(|s| s.parse().expect("a --set edit")).collect();
    let profile = if cfg!(debug_assertions) {
        "dev profile"
    } else {
        "release profile: CI builds dev; use --profile dev"
    };
    // Every run writes a new directory, all deleted at the end: a
    // filesystem that has just freed thousands of inodes can be slower to
    // allocate new ones (ext4 without a journal skips recently freed
    // inodes), which would time an earlier run's deletion, not this one.
    let tmp = tempfile::tempdir().expect("tmp");
    let out = |name: String| tmp.path().join(name);

    // The command as a user runs it: a fresh process each time.
    let runs: Vec<CliRun> = (0..big_iterations)
        .map(|i| run_cli(&example_path, &out(format!("cli-{i}"))))
        .collect();
    let files = count_files(&out("cli-0/bootstrap".into()));
    let walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    let peaks: Vec<u64> = runs.iter().map(|r| r.peak_kib).collect();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "hke generate, 1,003-node kubenet model ({files} boot files; {profile}), {big_iterations} run(s):\n  wall median {:.3} s (min {:.3} s, max {:.3} s); CPU median {:.2} s; peak RSS median {:.1} MiB (max {:.1} MiB)",
        median(walls.clone()).as_secs_f64(),
        walls.iter().min().expect("a run").as_secs_f64(),
        walls.iter().max().expect("a run").as_secs_f64(),
        median(runs.iter().map(|r| r.cpu).collect()).as_secs_f64(),
        mib(median(peaks.clone())),
        mib(peaks.iter().copied().max().unwrap_or(0)),
    );
    println!("in process ({profile}):");
    for (case, (name, text, sets, iterations)) in [
        ("examples/windows.json (8 nodes)", &example, &[][..], iterations),
        ("1,000-node model (5 + 10×100)", &big, &[][..], iterations),
        (
            "1,003-node kubenet model (examples/windows.json, fake cloud, 500 + 500)",
            &example,
            &kubenet[..],
            big_iterations,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let runs: Vec<Phases> = (0..iterations)
            .map(|i| run(text, sets, &out(format!("case{case}-{i}"))))
            .collect();
        let totals: Vec<Duration> = runs.iter().map(Phases::total).collect();
        let m = |f: fn(&Phases) -> Duration| ms(median(runs.iter().map(f).collect()));
        println!(
            "  generate {name}: median {}, min {}, max {} over {iterations} run(s); phases (medians): prepare {}, tree {}, commit {}",
            ms(median(totals.clone())),
            ms(*totals.iter().min().expect("a run")),
            ms(*totals.iter().max().expect("a run")),
            m(|p| p.prepare),
            m(|p| p.tree),
            m(|p| p.commit),
        );
    }

    if bench {
        println!("targets: example under 500 ms (acs-engine: ~15 s); 1,003 nodes at most 0.3 s and 64 MiB");
    }
}

/// Files under `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        count_files(&p)
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
