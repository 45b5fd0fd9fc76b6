//! `cargo bench --bench generate`: how long `generate` takes on the shipped
//! example and on a 1,000-node model (10 pools × 100), end to end including
//! key generation and writing the output directory.
//!
//! Under `cargo test` (no `--bench` argument) each case runs once as a smoke
//! test.
#![allow(clippy::print_stdout)]

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

fn run(text: &str, out: &std::path::Path) -> Duration {
    let start = Instant::now();
    let prepared = hke::generate::prepare(text, &[], &mut OsRng, hke::generate::now()).expect("model generates");
    hke::generate::tree(&prepared)
        .expect("renders")
        .commit(out, true)
        .expect("writes");
    start.elapsed()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let iterations = if bench { 30 } else { 1 };
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/windows.json")).expect("example");
    let big = big_model();
    let tmp = tempfile::tempdir().expect("tmp");
    for (name, text) in [
        ("examples/windows.json (8 nodes)", &example),
        ("1,000-node model (5 + 10×100)", &big),
    ] {
        let mut times: Vec<Duration> = (0..iterations).map(|_| run(text, &tmp.path().join("out"))).collect();
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "generate {name}: median {:.1} ms, min {:.1} ms, max {:.1} ms over {iterations} run(s)",
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
        );
    }
    if bench {
        println!("target: under 500 ms for the example (acs-engine: ~15 s)");
    }
}
