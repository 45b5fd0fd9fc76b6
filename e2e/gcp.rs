//! GCP end to end: `hke deploy` / `hke teardown` / `hke logs` against hke's
//! fake Compute Engine server (e2e/fake-gce), which follows GCE's REST
//! contract: operations that take time, 404/409, resources in use, 429/503.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use hke_fake_gce::{Config, FakeGce};
use serde_json::Value;

use crate::harness::{cidr_contains, deploy_args, kill_after, path, summary, text, Served};

const MODEL: &str = "examples/windows-gcp.json";
const PROJECT: &str = "my-gcp-project";
const REGION: &str = "us-central1";
const ZONE: &str = "us-central1-a";
const CLUSTER: &str = "hke-windows-gcp";
/// Several masters in the target pool, and kubenet routes.
const HA_KUBENET: [&str; 4] = [
    "--set",
    "properties.masterProfile.count=3",
    "--set",
    "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
];

/// The fake server, for synchronous tests.
struct Gce {
    fake: Served<FakeGce>,
}

impl Gce {
    fn start(config: Config) -> Gce {
        Gce {
            fake: Served::start(|| FakeGce::start(config)),
        }
    }

    fn fake(&self) -> &FakeGce {
        self.fake.get()
    }

    fn resources(&self) -> BTreeMap<String, Value> {
        self.fake().resources()
    }

    /// Resources of one collection (`instances`), by name.
    fn of(&self, collection: &str) -> BTreeMap<String, Value> {
        self.resources()
            .into_iter()
            .filter(|(p, _)| p.rsplit('/').nth(1) == Some(collection))
            .map(|(p, v)| (p.rsplit('/').next().unwrap_or_default().to_string(), v))
            .collect()
    }

    fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hke"));
        c.args(args)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", path())
            // No Application Default Credentials: with an endpoint override
            // hke talks to it unauthenticated, never to a metadata server.
            .env("HOME", cwd)
            .env("HKE_GCP_ENDPOINT_URL", self.fake().url())
            .env("HKE_GCP_POLL_MS", "40");
        c
    }

    fn hke(&self, cwd: &Path, args: &[&str]) -> Output {
        self.command(cwd, args).output().expect("hke runs")
    }
}

fn deploy(gce: &Gce, dir: &Path, extra: &[&str]) -> Value {
    let args = deploy_args(MODEL, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = gce.hke(dir, &args);
    assert!(
        out.status.success(),
        "deploy failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    summary(&text(&out.stdout))
}

fn teardown(gce: &Gce, dir: &Path) {
    let out = gce.hke(dir, &["teardown", "--yes", "-o", "out", "--cluster", CLUSTER]);
    assert!(
        out.status.success(),
        "teardown failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The plan of the deployed cluster (from its own apimodel.json).
fn plan(gce: &Gce, dir: &Path) -> Value {
    let out = gce.hke(dir, &["--output", "json", "plan", "-m", "out/apimodel.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("plan JSON")
}

fn ends_with(v: &Value, suffix: &str) -> bool {
    v.as_str().is_some_and(|s| s.ends_with(suffix))
}

/// The API endpoint: the address, a forwarding rule to a regional backend
/// service over an instance group of the masters, with an HTTPS health check
/// of the API server's `/readyz` on the API port, and a firewall rule that
/// lets the probes in.
fn check_health_checked_endpoint(gce: &Gce, machines: &[(&String, &Value)]) {
    let name = format!("{CLUSTER}-apiserver");
    let addresses = gce.of("addresses");
    let address = addresses[&format!("{CLUSTER}-apiserver-ip")]["address"]
        .as_str()
        .expect("ip")
        .to_string();
    let rules = gce.of("forwardingRules");
    let fr = &rules[&name];
    assert_eq!(fr["IPAddress"], address.as_str());
    assert_eq!(fr["portRange"], "6443");
    assert_eq!(fr["IPProtocol"], "TCP");
    assert_eq!(fr["labels"]["hke-io-cluster"], CLUSTER);
    assert!(fr["target"].is_null(), "no target pool: {fr}");
    let services = gce.of("backendServices");
    let bs = services
        .get(&name)
        .unwrap_or_else(|| panic!("no backend service {name}: the rule is {fr}"));
    assert_eq!(fr["backendService"], bs["selfLink"]);
    assert_eq!(bs["loadBalancingScheme"], "EXTERNAL");
    assert_eq!(bs["protocol"], "TCP");
    assert!(ends_with(&bs["region"], &format!("regions/{REGION}")));
    let checks = gce.of("healthChecks");
    let hc = &checks[&name];
    assert_eq!(bs["healthChecks"], serde_json::json!([hc["selfLink"]]), "{bs}");
    assert!(
        ends_with(&hc["region"], &format!("regions/{REGION}")),
        "a regional check: {hc}"
    );
    assert_eq!(hc["type"], "HTTPS");
    assert_eq!(hc["httpsHealthCheck"]["port"], 6443);
    assert_eq!(hc["httpsHealthCheck"]["requestPath"], "/readyz");
    let groups = gce.of("instanceGroups");
    let ig = &groups[&name];
    assert_eq!(bs["backends"][0]["group"], ig["selfLink"]);
    assert!(ends_with(&ig["zone"], &format!("zones/{ZONE}")));
    let group_path = format!("projects/{PROJECT}/zones/{ZONE}/instanceGroups/{name}");
    let members: BTreeSet<String> = gce
        .fake()
        .group_members(&group_path)
        .iter()
        .map(|m| m.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    let master_names: BTreeSet<String> = machines
        .iter()
        .filter(|(id, _)| id.starts_with("machine/k8s-master"))
        .map(|(id, _)| id.trim_start_matches("machine/").to_string())
        .collect();
    assert_eq!(members, master_names, "instance group members");
    // The probes come from Google's documented ranges.
    let fw = &gce.of("firewalls")[&format!("{CLUSTER}-nsg-lb-health-checks")];
    assert_eq!(fw["allowed"][0]["ports"][0], "6443");
    assert_eq!(
        fw["sourceRanges"],
        serde_json::json!(["35.191.0.0/16", "209.85.152.0/22", "209.85.204.0/22"])
    );
}

/// The cluster in the fake is exactly what the plan says.
fn check_cluster(gce: &Gce, dir: &Path, masters: usize, kubenet: bool) {
    let plan = plan(gce, dir);
    let machines: Vec<(&String, &Value)> = plan["resources"]
        .as_object()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["spec"]["kind"] == "machine")
        .collect();
    let instances = gce.of("instances");
    assert_eq!(instances.len(), machines.len(), "{:?}", instances.keys());
    assert_eq!(machines.len(), masters + 4);

    // Network, subnetwork, firewall rules.
    let networks = gce.of("networks");
    assert_eq!(networks.len(), 1, "{networks:?}");
    let net = &networks[&format!("{CLUSTER}-vnet")];
    assert_eq!(net["autoCreateSubnetworks"], false);
    let subnets = gce.of("subnetworks");
    assert_eq!(subnets.len(), 1);
    let subnet = &subnets[&format!("{CLUSTER}-nodes")];
    let node_cidr = plan["resources"]["subnet/nodes"]["spec"]["cidr"]
        .as_str()
        .expect("cidr");
    assert_eq!(subnet["ipCidrRange"], node_cidr);
    assert!(ends_with(&subnet["region"], &format!("regions/{REGION}")));
    let rules = gce.of("firewalls");
    let tag = format!("{CLUSTER}-nsg");
    let names: BTreeSet<&str> = rules.keys().map(String::as_str).collect();
    let mut want: BTreeSet<String> = ["apiserver", "ssh", "nodes", "lb-health-checks"]
        .iter()
        .map(|r| format!("{tag}-{r}"))
        .collect();
    // Overlay and kubenet pod traffic.
    want.insert(format!("{tag}-pods"));
    assert_eq!(names, want.iter().map(String::as_str).collect(), "firewall rules");
    let api = &rules[&format!("{tag}-apiserver")];
    assert_eq!(api["allowed"][0]["IPProtocol"], "tcp");
    assert_eq!(api["allowed"][0]["ports"][0], "6443");
    assert_eq!(api["direction"], "INGRESS");
    for r in rules.values() {
        assert_eq!(r["targetTags"][0], tag.as_str());
        assert!(r["network"]
            .as_str()
            .is_some_and(|n| n.ends_with(&format!("networks/{CLUSTER}-vnet"))));
    }
    assert_eq!(rules[&format!("{tag}-nodes")]["sourceRanges"][0], node_cidr);
    check_health_checked_endpoint(gce, &machines);
    let address = gce.of("addresses")[&format!("{CLUSTER}-apiserver-ip")]["address"]
        .as_str()
        .expect("ip")
        .to_string();

    // Instances: image family, machine type, disk, boot file, labels, tag.
    for (id, m) in &machines {
        let name = id.trim_start_matches("machine/");
        let i = &instances[name];
        let windows = m["spec"]["os"] == "windows";
        let (key, image, size) = if windows {
            (
                "windows-startup-script-ps1",
                "windows-cloud/global/images/windows-2022-core-v20261101",
                "n2-standard-4",
            )
        } else {
            (
                "user-data",
                "ubuntu-os-cloud/global/images/ubuntu-2404-lts-amd64-v20261101",
                "n2-standard-2",
            )
        };
        // The newest image of the family that is not deprecated.
        assert!(
            ends_with(&i["disks"][0]["initializeParams"]["sourceImage"], image),
            "{name}: {}",
            i["disks"][0]
        );
        assert_eq!(i["disks"][0]["boot"], true);
        assert_eq!(i["disks"][0]["autoDelete"], true);
        assert_eq!(
            i["disks"][0]["initializeParams"]["diskSizeGb"]
                .to_string()
                .trim_matches('"'),
            m["spec"]["disk_gb"].to_string(),
            "{name}: disk"
        );
        assert!(
            ends_with(&i["machineType"], &format!("zones/{ZONE}/machineTypes/{size}")),
            "{name}"
        );
        assert!(ends_with(&i["zone"], &format!("zones/{ZONE}")), "{name}");
        assert_eq!(i["labels"]["hke-io-cluster"], CLUSTER);
        assert!(
            i["labels"]["hke-io-created"].as_str().is_some_and(|c| c.ends_with('z')),
            "{name}"
        );
        assert_eq!(i["tags"]["items"][0], tag.as_str());
        assert_eq!(i["canIpForward"], kubenet, "{name}");
        // Masters (static addresses) have an external address; the other
        // machines leave through the network's NAT.
        let access = &i["networkInterfaces"][0]["accessConfigs"];
        if let Some(ip) = m["spec"]["private_ip"].as_str() {
            assert_eq!(i["networkInterfaces"][0]["networkIP"], ip, "{name}: static address");
            assert_eq!(access[0]["type"], "ONE_TO_ONE_NAT", "{name}");
        } else {
            assert!(access.as_array().is_none_or(Vec::is_empty), "{name}: {access}");
        }
        let items = i["metadata"]["items"].as_array().expect("metadata");
        assert_eq!(items.len(), 1, "{name}: {items:?}");
        assert_eq!(items[0]["key"], key);
        let rendered = gce.hke(
            dir,
            &[
                "render",
                "-m",
                "out/apimodel.json",
                "--node",
                name,
                "--endpoint",
                &address,
            ],
        );
        assert!(rendered.status.success(), "{}", text(&rendered.stderr));
        assert_eq!(
            items[0]["value"].as_str().expect("boot file").trim_end(),
            text(&rendered.stdout).trim_end(),
            "{name}: boot file"
        );
    }

    // kubenet: a route per node to its pod range, through the instance.
    let routes = gce.of("routes");
    if kubenet {
        let cidrs = plan["podCidrs"].as_object().expect("pod cidrs");
        assert_eq!(routes.len(), cidrs.len());
        for (node, cidr) in cidrs {
            let r = &routes[&format!("{CLUSTER}-route-{node}")];
            assert_eq!(r["destRange"], *cidr);
            assert_eq!(r["nextHopInstance"], instances[node]["selfLink"], "{node}");
        }
    } else {
        assert!(routes.is_empty());
    }
}

#[test]
fn deploy_check_redeploy_collect_logs_and_tear_down() {
    let gce = Gce::start(Config::default());
    let dir = tempfile::tempdir().expect("tmp");
    let first = deploy(&gce, dir.path(), &[]);
    assert_eq!(first["summary"]["failed"], 0, "{first}");
    check_cluster(&gce, dir.path(), 1, false);
    // The kubeconfig points at the forwarding rule's address.
    let address = gce.of("addresses")[&format!("{CLUSTER}-apiserver-ip")]["address"]
        .as_str()
        .expect("ip")
        .to_string();
    let kc = std::fs::read_to_string(dir.path().join(format!("out/kubeconfig/kubeconfig.{REGION}.json"))).expect("kc");
    assert!(kc.contains(&format!("https://{address}:6443")), "{kc}");

    // Deploying again changes nothing and inserts nothing.
    let before = gce.fake().calls().len();
    let again = deploy(&gce, dir.path(), &[]);
    assert_eq!(again["summary"]["created"], 0, "{again}");
    let writes: Vec<String> = gce.fake().calls()[before..]
        .iter()
        .filter(|c| !c.starts_with("GET"))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "a second deploy called {writes:?}");

    // Serial console output, split into files per node.
    let out = gce.hke(dir.path(), &["logs", "--cluster", CLUSTER, "-o", "out", "--to", "logs"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let master = gce
        .of("instances")
        .into_keys()
        .find(|n| n.starts_with("k8s-master"))
        .expect("master");
    let log = std::fs::read_to_string(dir.path().join(format!("logs/{master}/bootstrap.log"))).expect("bootstrap.log");
    assert!(log.contains("bootstrap started"), "{log}");

    teardown(&gce, dir.path());
    let left = gce.resources();
    assert!(left.is_empty(), "left behind: {:?}", left.keys());
}

/// Start a deploy and SIGKILL it once `after` resources are done.
fn deploy_and_kill(gce: &Gce, dir: &Path, after: usize) {
    let mut args = vec!["--parallelism", "3"];
    args.extend_from_slice(&HA_KUBENET);
    let args = deploy_args(MODEL, &args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kill_after(gce.command(dir, &args), after);
}

#[test]
fn a_deploy_killed_part_way_resumes_to_exactly_the_plan_and_tears_down() {
    for after in [2, 7, 13] {
        let gce = Gce::start(Config {
            operation_time: Duration::from_millis(150),
            ..Config::default()
        });
        let dir = tempfile::tempdir().expect("tmp");
        deploy_and_kill(&gce, dir.path(), after);
        let mut resumed = vec!["--parallelism", "3"];
        resumed.extend_from_slice(&HA_KUBENET);
        let r = deploy(&gce, dir.path(), &resumed);
        assert_eq!(r["summary"]["failed"], 0, "after {after}: {r}");
        check_cluster(&gce, dir.path(), 3, true);
        // No resource was inserted twice.
        let mut inserts: BTreeMap<String, usize> = BTreeMap::new();
        for c in gce.fake().calls().iter().filter(|c| c.starts_with("POST ")) {
            if let Some(name) = c.split(' ').nth(2) {
                *inserts
                    .entry(
                        c.split(' ')
                            .nth(1)
                            .unwrap_or_default()
                            .rsplit('/')
                            .next()
                            .unwrap_or_default()
                            .to_string()
                            + "/"
                            + name,
                    )
                    .or_default() += 1;
            }
        }
        let twice: Vec<_> = inserts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "after {after}: inserted twice: {twice:?}");
        teardown(&gce, dir.path());
        let left = gce.resources();
        assert!(left.is_empty(), "after {after}: left behind: {:?}", left.keys());
    }
}

#[test]
fn teardown_after_a_kill_mid_deploy_leaves_nothing() {
    for after in [4, 11] {
        let gce = Gce::start(Config::default());
        let dir = tempfile::tempdir().expect("tmp");
        deploy_and_kill(&gce, dir.path(), after);
        // The state file is gone too: only the label and description sweep
        // can find what was made.
        let _ = std::fs::remove_file(dir.path().join("out/state.json"));
        let _ = std::fs::remove_file(dir.path().join("out/state.journal"));
        teardown(&gce, dir.path());
        let left = gce.resources();
        assert!(left.is_empty(), "after {after}: left behind: {:?}", left.keys());
    }
}

#[test]
fn throttling_unavailability_and_slow_operations_are_ridden_out() {
    let gce = Gce::start(Config {
        operation_time: Duration::from_millis(400),
        throttle_every: Some(7),
        unavailable_every: Some(11),
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let first = deploy(&gce, dir.path(), &HA_KUBENET);
    assert_eq!(first["summary"]["failed"], 0, "{first}");
    check_cluster(&gce, dir.path(), 3, true);
    teardown(&gce, dir.path());
    assert!(gce.resources().is_empty(), "left behind: {:?}", gce.resources().keys());
}

#[test]
fn the_janitor_finds_gcp_clusters_by_label_and_description() {
    let gce = Gce::start(Config {
        operation_time: Duration::ZERO,
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    deploy(&gce, dir.path(), &["--ttl", "1h"]);
    // Not expired yet: a dry run lists nothing, a real run deletes nothing.
    let out = gce.hke(
        dir.path(),
        &[
            "--output",
            "json",
            "janitor",
            "--cloud",
            "gcp",
            "--project",
            PROJECT,
            "--dry-run",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["expired"].as_array().map(Vec::len), Some(0), "{report}");
    // Found through its labels and descriptions, with its TTL read back.
    assert!(report["kept"].to_string().contains(CLUSTER), "{report}");
    // Everything counts as expired with --older-than 0s.
    let out = gce.hke(
        dir.path(),
        &[
            "--output",
            "json",
            "janitor",
            "--cloud",
            "gcp",
            "--project",
            PROJECT,
            "--older-than",
            "0s",
        ],
    );
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["deleted"][0], CLUSTER, "{report}");
    let left = gce.resources();
    assert!(left.is_empty(), "left behind: {:?}", left.keys());
}

#[test]
fn rate_quota_403s_are_throttling_even_while_polling_operations() {
    // Compute Engine answers an exceeded rate quota with 403 and reason
    // rateLimitExceeded (cloud.google.com/compute/api-quota); operation
    // waits have a quota of their own, so they are refused too.
    let gce = Gce::start(Config {
        operation_time: Duration::from_millis(300),
        rate_quota_every: Some(9),
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let first = deploy(&gce, dir.path(), &HA_KUBENET);
    assert_eq!(first["summary"]["failed"], 0, "{first}");
    check_cluster(&gce, dir.path(), 3, true);
    let refused = gce.fake().refused();
    // Operations are followed with operations.wait (a POST), which has a
    // quota of its own.
    let polls = refused
        .iter()
        .filter(|r| r.starts_with("403 ") && r.contains("/operations/"))
        .count();
    let inserts = refused
        .iter()
        .filter(|r| r.starts_with("403 ") && r.contains(" POST ") && !r.contains("/operations/"))
        .count();
    assert!(
        polls > 0 && inserts > 0,
        "polls {polls}, inserts {inserts}: {refused:?}"
    );
    for reason in ["403 rateLimitExceeded ", "403 userRateLimitExceeded "] {
        assert!(refused.iter().any(|r| r.starts_with(reason)), "{reason}: {refused:?}");
    }
    let during_deploy = refused.len();
    teardown(&gce, dir.path());
    assert!(gce.fake().refused().len() > during_deploy, "teardown was throttled too");
    let left = gce.resources();
    assert!(left.is_empty(), "left behind: {:?}", left.keys());
}

#[test]
fn a_permission_403_fails_at_once_and_names_the_credentials() {
    let network_insert = format!("POST projects/{PROJECT}/global/networks");
    let gce = Gce::start(Config {
        operation_time: Duration::ZERO,
        forbidden: vec![network_insert.clone()],
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let args = deploy_args(MODEL, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = gce.hke(dir.path(), &args);
    // A refused permission is the credentials' failure (exit 3), not a usage
    // error (2) nor a failed request of the model's (1).
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let all = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("Required 'compute.networks.create' permission"), "{all}");
    assert!(all.contains("roles/compute.admin"), "the credentials hint: {all}");
    // Not retried: a missing permission does not come back by waiting.
    let tries = gce
        .fake()
        .calls()
        .iter()
        .filter(|c| c.starts_with(&network_insert))
        .count();
    assert_eq!(tries, 1, "{:?}", gce.fake().calls());
}

/// Files whose content is secret: private keys, the kubeconfig's client
/// key, the Windows admin password (apimodel.json, boot files).
fn secret_files(out: &Path) -> Vec<std::path::PathBuf> {
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("apimodel.json")).expect("apimodel")).expect("json");
    let password = model["properties"]["windowsProfile"]["adminPassword"]
        .as_str()
        .expect("a generated admin password")
        .to_string();
    let mut found = Vec::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("ls").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let text = String::from_utf8_lossy(&std::fs::read(&p).expect("read")).into_owned();
            if text.contains("PRIVATE KEY") || text.contains("client-key-data") || text.contains(&password) {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
}

#[test]
fn every_secret_file_stays_private_through_a_deploy_and_a_rewrite() {
    let gce = Gce::start(Config {
        operation_time: Duration::ZERO,
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let kubeconfig = out.join(format!("kubeconfig/kubeconfig.{REGION}.json"));
    deploy(&gce, dir.path(), &[]);
    let secrets = secret_files(&out);
    for must in [kubeconfig.clone(), out.join("apimodel.json"), out.join("pki/ca.key")] {
        assert!(secrets.contains(&must), "{must:?} holds a secret: {secrets:?}");
    }
    let check = |when: &str| {
        let wide: Vec<String> = secret_files(&out)
            .iter()
            .filter(|p| mode_of(p) != 0o600)
            .map(|p| format!("{} {:o}", p.display(), mode_of(p)))
            .collect();
        assert!(wide.is_empty(), "{when}: secret files readable by others: {wide:?}");
        assert_eq!(mode_of(&out) & 0o077, 0, "{when}: the directory is private");
    };
    // The deploy rewrote the kubeconfig with the forwarding rule's address.
    assert!(std::fs::read_to_string(&kubeconfig).expect("kc").contains(":6443"));
    check("after the deploy");
    // A kubeconfig that someone opened up is private again after the next
    // rewrite, and no temporary file is left beside it.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    }
    deploy(&gce, dir.path(), &[]);
    check("after a second deploy");
    let strays: Vec<_> = std::fs::read_dir(kubeconfig.parent().expect("dir"))
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy() != format!("kubeconfig.{REGION}.json"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
    teardown(&gce, dir.path());
}

/// Requests per VM of a deploy whose operations take 2 s (as the issue
/// measured them): (all, mutations, reads, operation reads/waits).
fn requests_per_vm(calls: &[String], vms: usize) -> (f64, f64, f64, f64) {
    let per = |n: usize| n as f64 / vms as f64;
    let ops = calls.iter().filter(|c| c.contains("/operations/")).count();
    let mutations = calls
        .iter()
        .filter(|c| !c.starts_with("GET ") && !c.contains("/operations/"))
        .count();
    let reads = calls.len() - ops - mutations;
    (per(calls.len()), per(mutations), per(reads), per(ops))
}

#[test]
fn a_deploy_waits_on_operations_instead_of_polling_them() {
    let gce = Gce::start(Config {
        operation_time: Duration::from_secs(2),
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let first = deploy(&gce, dir.path(), &["--set", "properties.masterProfile.count=3"]);
    assert_eq!(first["summary"]["failed"], 0, "{first}");
    let vms = gce.of("instances").len();
    assert_eq!(vms, 7);
    let calls = gce.fake().calls();
    let (all, mutations, reads, ops) = requests_per_vm(&calls, vms);
    // Every insert is followed with operations.wait, which answers when the
    // operation is DONE (or near its 2-minute deadline), not with polls every
    // 40 ms (HKE_GCP_POLL_MS); a machine costs its insert, one wait, and a
    // read of its addresses.
    let polls = calls
        .iter()
        .filter(|c| c.starts_with("GET ") && c.contains("/operations/"))
        .count();
    assert_eq!(polls, 0, "operations polled: {calls:#?}");
    // Polling operations every 40 ms cost 30.4 requests per VM here. The
    // cluster's fixed parts are most of the rest: each part of the network
    // (its NAT router and addresses) and of the load balancer (health
    // check, instance group, backend service, rule) is looked up, inserted
    // and waited for, 3 calls each (some 2.5 per VM at 7 VMs).
    assert!(
        all <= 10.5,
        "{all:.1} requests per VM (mutations {mutations:.1}, reads {reads:.1}, operations {ops:.1}): {calls:#?}"
    );
    teardown(&gce, dir.path());
}

/// A fake enforcing Compute Engine's rate quotas, scaled down: `calls` per
/// second in each quota group (GCE: 1,500 a minute).
fn quota_enforcing(calls: u32) -> Gce {
    Gce::start(Config {
        operation_time: Duration::from_millis(300),
        rate_quota: Some(hke_fake_gce::RateQuota {
            calls,
            window: Duration::from_secs(1),
        }),
        ..Config::default()
    })
}

#[test]
fn a_deploy_paces_itself_under_the_rate_quotas_and_is_never_throttled() {
    const QUOTA: u32 = 6;
    let quota = format!("{QUOTA}/1s");
    // Paced (hke told the scaled quota): not one throttled answer, deploy
    // and teardown alike.
    let gce = quota_enforcing(QUOTA);
    let dir = tempfile::tempdir().expect("tmp");
    let args = deploy_args(MODEL, &HA_KUBENET);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = gce
        .command(dir.path(), &args)
        .env("HKE_GCP_RATE_QUOTA", &quota)
        .output()
        .expect("hke runs");
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    check_cluster(&gce, dir.path(), 3, true);
    let busiest = gce.fake().busiest_windows();
    assert_eq!(gce.fake().throttled(), 0, "{:?}\n{busiest:?}", gce.fake().refused());
    assert!(busiest.values().all(|n| *n <= QUOTA), "{busiest:?}");
    // The quota was what set the pace: mutations filled most of a window.
    assert!(busiest.get("mutations").is_some_and(|n| *n >= QUOTA - 2), "{busiest:?}");
    let out = gce
        .command(dir.path(), &["teardown", "--yes", "-o", "out", "--cluster", CLUSTER])
        .env("HKE_GCP_RATE_QUOTA", &quota)
        .output()
        .expect("hke runs");
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(gce.resources().is_empty(), "left behind: {:?}", gce.resources().keys());
    assert_eq!(gce.fake().throttled(), 0, "{:?}", gce.fake().refused());

    // The same deploy without pacing meets the quota (and rides it out).
    let gce = quota_enforcing(QUOTA);
    let dir = tempfile::tempdir().expect("tmp");
    let out = gce
        .command(dir.path(), &args)
        .env("HKE_PACING", "off")
        .output()
        .expect("hke runs");
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let refused = gce.fake().refused();
    assert!(gce.fake().throttled() > 0, "an unpaced deploy was never throttled");
    assert!(
        refused.iter().all(|r| r.starts_with("403 rateLimitExceeded ")),
        "{refused:?}"
    );
}

#[test]
fn the_api_servers_load_balancer_health_checks_each_master_and_goes_in_order() {
    // A target pool without a health check counts every master healthy, so
    // a master whose API server is down still gets a share of the
    // connections. The load balancer must check `/readyz` over HTTPS.
    let gce = Gce::start(Config::default());
    let dir = tempfile::tempdir().expect("tmp");
    deploy(&gce, dir.path(), &["--set", "properties.masterProfile.count=3"]);
    let plan = plan(&gce, dir.path());
    let machines: Vec<(&String, &Value)> = plan["resources"]
        .as_object()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["spec"]["kind"] == "machine")
        .collect();
    check_health_checked_endpoint(&gce, &machines);
    // Teardown takes the rule, the backend service, then the group and the
    // check (the fake refuses a delete of what is still in use), with the
    // state and with the tag sweep alone.
    teardown(&gce, dir.path());
    assert!(gce.resources().is_empty(), "left behind: {:?}", gce.resources().keys());
    let dir = tempfile::tempdir().expect("tmp");
    deploy(&gce, dir.path(), &["--set", "properties.masterProfile.count=3"]);
    for f in ["state.json", "state.journal"] {
        let _ = std::fs::remove_file(dir.path().join("out").join(f));
    }
    teardown(&gce, dir.path());
    assert!(gce.resources().is_empty(), "left behind: {:?}", gce.resources().keys());
}

#[test]
fn restricted_api_source_ranges_still_let_every_machine_reach_the_api_server() {
    // Clients from one range only (not the fake's instance or NAT
    // addresses). Every machine must reach the API server's public address
    // from an address the `apiserver` rule admits.
    let gce = Gce::start(Config::default());
    for masters in ["3", "1"] {
        let dir = tempfile::tempdir().expect("tmp");
        let count = format!("properties.masterProfile.count={masters}");
        deploy(
            &gce,
            dir.path(),
            &[
                "--set",
                &count,
                "--set",
                "properties.masterProfile.HTTPSourceAddressPrefix=192.0.2.0/24",
            ],
        );
        let fw = gce.of("firewalls");
        let api = &fw[&format!("{CLUSTER}-nsg-apiserver")];
        let admits = |ip: &str| {
            api["sourceRanges"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str())
                .any(|r| cidr_contains(r, ip))
        };
        assert!(
            !admits("203.0.113.250") || admits("192.0.2.1"),
            "restriction lost: {api}"
        );
        assert!(
            !admits("8.8.8.8"),
            "{masters} masters: the API port is open to all: {api}"
        );
        let name = format!("{CLUSTER}-apiserver");
        let group = format!("projects/{PROJECT}/zones/{ZONE}/instanceGroups/{name}");
        let members: BTreeSet<String> = gce
            .fake()
            .group_members(&group)
            .iter()
            .map(|m| m.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        // The NAT of the network: which addresses nodes without an external
        // address leave from.
        let routers = gce.of("routers");
        let nat_ips: Vec<String> = routers
            .values()
            .flat_map(|r| r["nats"].as_array().cloned().unwrap_or_default())
            .filter(|n| n["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES")
            .flat_map(|n| n["natIps"].as_array().cloned().unwrap_or_default())
            .filter_map(|link| {
                let name = link.as_str()?.rsplit('/').next()?.to_string();
                gce.of("addresses")[&name]["address"].as_str().map(str::to_string)
            })
            .collect();
        for (name, i) in gce.of("instances") {
            // Where the machine's packet to the forwarding rule's address
            // comes from: a backend of the load balancer delivers it to
            // itself (the guest environment routes a forwarding rule's
            // address locally on its backends); a VM with an external address
            // sends from it ("Google Cloud VMs with external IPs"); one
            // without, from its NAT's addresses ("VMs that have internet
            // access through Cloud NAT", load-balancing/docs/network/networklb-backend-service).
            if members.contains(&name) {
                continue;
            }
            let external = i["networkInterfaces"][0]["accessConfigs"][0]["natIP"].as_str();
            let sources: Vec<String> = match external {
                Some(ip) => vec![ip.to_string()],
                None => nat_ips.clone(),
            };
            assert!(!sources.is_empty(), "{masters} masters: {name} has no way out");
            for ip in sources {
                assert!(
                    admits(&ip),
                    "{masters} masters: {name} reaches the API server from {ip}, which the apiserver rule refuses: {}",
                    api["sourceRanges"]
                );
            }
        }
        teardown(&gce, dir.path());
        assert!(gce.resources().is_empty(), "left behind: {:?}", gce.resources().keys());
    }
}
