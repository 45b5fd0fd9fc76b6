//! Azure end to end: `hke deploy` / `hke teardown` / `hke logs` against
//! hke's fake Azure Resource Manager (e2e/fake-arm), over TLS with a test
//! CA, with a real client-secret token from its identity endpoint:
//! long-running operations, 404/409/429, required properties.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use hke_fake_arm::{Config, FakeArm, PutMatch, RateLimits, Retryable};
use serde_json::Value;

use crate::harness::{cidr_contains, deploy_args, kill_after, path, root, summary, text, Served};

const MODEL: &str = "examples/windows.json";
const CLUSTER: &str = "kubernetes-windows";
const LOCATION: &str = "westus2";
const KUBENET: [&str; 2] = [
    "--set",
    "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
];

/// The fake server and the CA file that trusts it, for synchronous tests.
struct Arm {
    fake: Served<FakeArm>,
    subscription: String,
    ca: tempfile::NamedTempFile,
}

impl Arm {
    fn start(config: Config) -> Arm {
        let subscription = config.subscription.clone();
        let fake = Served::start(|| FakeArm::start(config));
        let ca = tempfile::NamedTempFile::new().expect("ca file");
        std::fs::write(ca.path(), fake.get().ca_pem()).expect("write ca");
        Arm { fake, subscription, ca }
    }

    fn fake(&self) -> &FakeArm {
        self.fake.get()
    }

    fn rg(&self) -> String {
        format!("/subscriptions/{}/resourcegroups/{CLUSTER}", self.subscription)
    }

    /// Resources of one type (`microsoft.compute/virtualmachines`), by name.
    fn of(&self, rtype: &str) -> BTreeMap<String, Value> {
        let marker = format!("/providers/{rtype}/");
        self.fake()
            .resources()
            .into_iter()
            .filter_map(|(id, v)| {
                let (_, rest) = id.split_once(&marker)?;
                (!rest.contains('/')).then(|| (rest.to_string(), v))
            })
            .collect()
    }

    fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let url = self.fake().url();
        let mut c = Command::new(env!("CARGO_BIN_EXE_hke"));
        c.args(args)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", path())
            .env("HOME", cwd)
            // A service principal; its token comes from the fake's
            // identity endpoint over TLS, as from Entra ID.
            .env("AZURE_TENANT_ID", "72f988bf-0000-0000-0000-000000000000")
            .env("AZURE_CLIENT_ID", "hke-e2e")
            .env("AZURE_CLIENT_SECRET", "e2e-client-secret-value")
            .env("AZURE_AUTHORITY_HOST", format!("{url}/"))
            .env("AZURE_SUBSCRIPTION_ID", &self.subscription)
            .env("HKE_AZURE_ENDPOINT_URL", &url)
            .env("HKE_AZURE_CA_FILE", self.ca.path())
            .env("HKE_AZURE_POLL_MS", "50");
        c
    }

    fn hke(&self, cwd: &Path, args: &[&str]) -> Output {
        self.command(cwd, args).output().expect("hke runs")
    }
}

fn deploy(arm: &Arm, dir: &Path, extra: &[&str]) -> Value {
    let args = deploy_args(MODEL, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = arm.hke(dir, &args);
    assert!(
        out.status.success(),
        "deploy failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The client secret and the admin password never reach the output.
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("e2e-client-secret-value"));
    summary(&text(&out.stdout))
}

fn teardown(arm: &Arm, dir: &Path) -> Value {
    let out = arm.hke(
        dir,
        &[
            "--output",
            "json",
            "teardown",
            "--yes",
            "-o",
            "out",
            "--cluster",
            CLUSTER,
        ],
    );
    assert!(
        out.status.success(),
        "teardown failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    summary(&text(&out.stdout))
}

fn plan(arm: &Arm, dir: &Path) -> Value {
    let out = arm.hke(dir, &["--output", "json", "plan", "-m", "out/apimodel.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("plan JSON")
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_ascii_lowercase()
}

/// The cluster in the fake is exactly what the plan says.
fn check_cluster(arm: &Arm, dir: &Path, masters: usize, kubenet: bool) {
    let plan = plan(arm, dir);
    let resources = plan["resources"].as_object().expect("resources");
    let machines: Vec<(&String, &Value)> = resources
        .iter()
        .filter(|(_, r)| r["spec"]["kind"] == "machine")
        .collect();
    assert_eq!(machines.len(), masters + 5);
    let all = arm.fake().resources();

    // The group hke made, tagged.
    let rg = &all[&arm.rg()];
    assert_eq!(rg["location"], LOCATION);
    assert_eq!(rg["tags"]["hke.io_cluster"], CLUSTER);

    // VNet and subnet ranges.
    let vnets = arm.of("microsoft.network/virtualnetworks");
    assert_eq!(vnets.len(), 1, "{:?}", vnets.keys());
    let vnet = &vnets[&format!("{CLUSTER}-vnet")];
    let node_cidr = plan["resources"]["subnet/nodes"]["spec"]["cidr"]
        .as_str()
        .expect("cidr");
    assert_eq!(vnet["properties"]["addressSpace"]["addressPrefixes"][0], node_cidr);
    assert_eq!(vnet["tags"]["hke.io_cluster"], CLUSTER);
    let subnet_id = format!("{}/subnets/{CLUSTER}-nodes", id_of(vnet));
    let subnet = &all[&subnet_id];
    assert_eq!(subnet["properties"]["addressPrefix"], node_cidr);

    // NSG rules.
    let nsgs = arm.of("microsoft.network/networksecuritygroups");
    let nsg = &nsgs[&format!("{CLUSTER}-nsg")];
    let rules: BTreeMap<&str, &Value> = nsg["properties"]["securityRules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| (r["name"].as_str().unwrap_or_default(), &r["properties"]))
        .collect();
    let names: BTreeSet<&str> = rules.keys().copied().collect();
    let mut want: BTreeSet<&str> = ["apiserver", "ssh", "nodes"].into_iter().collect();
    if kubenet {
        want.insert("pods");
    }
    assert_eq!(names, want);
    assert_eq!(rules["apiserver"]["destinationPortRange"], "6443");
    assert_eq!(rules["apiserver"]["protocol"], "Tcp");
    assert_eq!(rules["apiserver"]["direction"], "Inbound");
    assert_eq!(rules["apiserver"]["access"], "Allow");
    assert_eq!(rules["apiserver"]["sourceAddressPrefix"], "*");
    assert_eq!(rules["ssh"]["destinationPortRange"], "22");
    assert_eq!(rules["nodes"]["sourceAddressPrefix"], node_cidr);
    let priorities: BTreeSet<u64> = rules.values().filter_map(|r| r["priority"].as_u64()).collect();
    assert_eq!(priorities.len(), rules.len(), "distinct priorities");

    // Public IP with its DNS label, and the load balancer's parts.
    let pips = arm.of("microsoft.network/publicipaddresses");
    let pip = &pips[&format!("{CLUSTER}-apiserver-ip")];
    assert_eq!(pip["sku"]["name"], "Standard");
    assert_eq!(pip["properties"]["publicIPAllocationMethod"], "Static");
    let fqdn = format!("{CLUSTER}.{LOCATION}.cloudapp.azure.com");
    assert_eq!(pip["properties"]["dnsSettings"]["fqdn"], fqdn.as_str());
    let lbs = arm.of("microsoft.network/loadbalancers");
    let lb = &lbs[&format!("{CLUSTER}-apiserver")];
    let lbp = &lb["properties"];
    assert_eq!(lb["sku"]["name"], "Standard");
    assert_eq!(
        id_of(&lbp["frontendIPConfigurations"][0]["properties"]["publicIPAddress"]),
        id_of(pip)
    );
    let rule = &lbp["loadBalancingRules"][0]["properties"];
    assert_eq!(rule["frontendPort"], 6443);
    assert_eq!(rule["backendPort"], 6443);
    assert_eq!(rule["protocol"], "Tcp");
    let masters_pool = format!("{}/backendaddresspools/masters", id_of(lb));
    let nodes_pool = format!("{}/backendaddresspools/nodes", id_of(lb));
    assert_eq!(id_of(&rule["backendAddressPool"]), masters_pool);
    assert_eq!(id_of(&rule["probe"]), format!("{}/probes/apiserver", id_of(lb)));
    assert_eq!(lbp["probes"][0]["properties"]["port"], 6443);
    assert_eq!(
        id_of(&lbp["outboundRules"][0]["properties"]["backendAddressPool"]),
        nodes_pool
    );

    // Availability sets: the masters and each pool.
    let avsets = arm.of("microsoft.compute/availabilitysets");
    assert_eq!(avsets.len(), 3, "{:?}", avsets.keys());

    // One VM per node: image, size, disk, custom data, tags, NIC.
    let vms = arm.of("microsoft.compute/virtualmachines");
    assert_eq!(vms.len(), machines.len(), "{:?}", vms.keys());
    let disks = arm.of("microsoft.compute/disks");
    assert_eq!(disks.len(), machines.len());
    let nics = arm.of("microsoft.network/networkinterfaces");
    assert_eq!(nics.len(), machines.len());
    let endpoint = fqdn;
    for (id, m) in &machines {
        let name = id.trim_start_matches("machine/");
        let vm = &vms[&name.to_ascii_lowercase()];
        let p = &vm["properties"];
        let windows = m["spec"]["os"] == "windows";
        let img = &p["storageProfile"]["imageReference"];
        if windows {
            assert_eq!(img["publisher"], "MicrosoftWindowsServer", "{name}");
            assert_eq!(img["offer"], "WindowsServer");
            // Standard_D2s_v3 boots generation 2: the -g2 SKU.
            assert_eq!(img["sku"], "2022-datacenter-core-smalldisk-g2");
            assert!(p["osProfile"]["windowsConfiguration"].is_object());
            assert!(p["osProfile"]["adminPassword"].as_str().is_some_and(|s| s.len() >= 12));
            // The extension that runs the custom data.
            let ext = &all[&format!("{}/extensions/hke-bootstrap", id_of(vm))];
            assert_eq!(ext["properties"]["type"], "CustomScriptExtension");
            assert!(ext["properties"]["protectedSettings"]["commandToExecute"]
                .as_str()
                .is_some_and(|c| c.contains("CustomData.bin")));
        } else {
            assert_eq!(img["publisher"], "Canonical", "{name}");
            assert_eq!(img["offer"], "ubuntu-24_04-lts");
            assert_eq!(
                p["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"],
                true
            );
        }
        assert_eq!(img["version"], "latest");
        assert_eq!(p["hardwareProfile"]["vmSize"], m["spec"]["size"], "{name}");
        assert_eq!(
            p["storageProfile"]["osDisk"]["diskSizeGB"], m["spec"]["disk_gb"],
            "{name}"
        );
        assert_eq!(
            p["storageProfile"]["osDisk"]["managedDisk"]["storageAccountType"],
            "Premium_LRS"
        );
        assert_eq!(p["osProfile"]["computerName"], name);
        assert_eq!(p["osProfile"]["adminUsername"], "azureuser");
        assert!(p["availabilitySet"]["id"]
            .as_str()
            .is_some_and(|a| a.contains("-avset")));
        assert_eq!(vm["tags"]["hke.io_cluster"], CLUSTER, "{name}");
        assert!(vm["tags"]["hke.io_created"].as_str().is_some_and(|c| c.ends_with('Z')));
        // Custom data is the rendered bootstrap for this node.
        let rendered = arm.hke(
            dir,
            &[
                "render",
                "-m",
                "out/apimodel.json",
                "--node",
                name,
                "--endpoint",
                &endpoint,
            ],
        );
        assert!(rendered.status.success(), "{}", text(&rendered.stderr));
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD
            .decode(p["osProfile"]["customData"].as_str().expect("custom data"))
            .expect("base64");
        assert_eq!(
            text(&data).trim_end(),
            text(&rendered.stdout).trim_end(),
            "{name}: custom data"
        );
        // The NIC: subnet, NSG, static master IPs, pools.
        let nic = &nics[&format!("{}-nic", name.to_ascii_lowercase())];
        let cfg = &nic["properties"]["ipConfigurations"][0]["properties"];
        assert_eq!(id_of(&cfg["subnet"]), subnet_id);
        assert_eq!(id_of(&nic["properties"]["networkSecurityGroup"]), id_of(nsg));
        assert_eq!(nic["properties"]["enableIPForwarding"], kubenet, "{name}");
        if let Some(ip) = m["spec"]["private_ip"].as_str() {
            assert_eq!(cfg["privateIPAddress"], ip, "{name}: static address");
        }
        let pools: BTreeSet<String> = cfg["loadBalancerBackendAddressPools"]
            .as_array()
            .expect("pools")
            .iter()
            .map(id_of)
            .collect();
        let mut want = BTreeSet::from([nodes_pool.clone()]);
        if name.starts_with("k8s-master") {
            want.insert(masters_pool.clone());
        }
        assert_eq!(pools, want, "{name}: backend pools");
    }

    // kubenet: a route per node to its pod range, through its IP.
    let rts = arm.of("microsoft.network/routetables");
    if kubenet {
        assert_eq!(rts.len(), 1);
        let rt = rts.values().next().expect("route table");
        assert_eq!(id_of(&subnet["properties"]["routeTable"]), id_of(rt));
        let cidrs = plan["podCidrs"].as_object().expect("pod cidrs");
        for (node, cidr) in cidrs {
            let r = &all[&format!("{}/routes/{CLUSTER}-route-{node}", id_of(rt))];
            assert_eq!(r["properties"]["addressPrefix"], *cidr);
            assert_eq!(r["properties"]["nextHopType"], "VirtualAppliance");
            let nic = &nics[&format!("{}-nic", node.to_ascii_lowercase())];
            assert_eq!(
                r["properties"]["nextHopIpAddress"],
                nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
            );
        }
    } else {
        assert!(rts.is_empty());
    }
}

/// Accepted PUTs per resource path (lower case), in the order of the log.
fn puts(arm: &Arm) -> BTreeMap<String, usize> {
    let mut puts: BTreeMap<String, usize> = BTreeMap::new();
    for c in arm.fake().calls() {
        if c.method == "PUT" && matches!(c.status, 200 | 201) {
            *puts.entry(c.path).or_default() += 1;
        }
    }
    puts
}

/// Successful PUTs per resource path: one each, but a master's NIC, which
/// joins the API server's pool after the machine exists.
fn check_single_puts(arm: &Arm) {
    check_puts(arm, &BTreeMap::new());
}

/// As `check_single_puts`, with `again[path]` more PUTs allowed.
fn check_puts(arm: &Arm, again: &BTreeMap<String, usize>) {
    let puts = puts(arm);
    assert!(!puts.is_empty());
    for (path, n) in &puts {
        let master_nic = path.contains("/networkinterfaces/k8s-master");
        let subnet_bound = path.contains("/subnets/");
        let allowed = if master_nic || subnet_bound { 2 } else { 1 } + again.get(path).copied().unwrap_or_default();
        assert!(*n <= allowed, "{path} was PUT {n} times");
    }
}

#[test]
fn deploy_check_redeploy_collect_logs_and_tear_down() {
    let arm = Arm::start(Config::default());
    let dir = tempfile::tempdir().expect("tmp");
    let first = deploy(&arm, dir.path(), &[]);
    assert_eq!(first["summary"]["failed"], 0, "{first}");
    check_cluster(&arm, dir.path(), 3, false);
    check_single_puts(&arm);
    let kc = std::fs::read_to_string(dir.path().join(format!("out/kubeconfig/kubeconfig.{LOCATION}.json")))
        .expect("kubeconfig");
    assert!(
        kc.contains(&format!("https://{CLUSTER}.{LOCATION}.cloudapp.azure.com:6443")),
        "{kc}"
    );

    // Deploying again changes nothing: no PUT, no DELETE.
    let before = arm.fake().calls().len();
    let again = deploy(&arm, dir.path(), &[]);
    assert_eq!(again["summary"]["created"], 0, "{again}");
    let writes: Vec<String> = arm.fake().calls()[before..]
        .iter()
        .filter(|c| c.method == "PUT" || c.method == "DELETE")
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    // Serial logs from boot diagnostics.
    let logs = arm.hke(dir.path(), &["logs", "--cluster", CLUSTER, "-o", "out", "--to", "logs"]);
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    let log = std::fs::read_to_string(dir.path().join("logs/k8s-master-aa910c6f-0/bootstrap.log"))
        .unwrap_or_else(|e| panic!("bootstrap.log: {e}\n{}\n{}", text(&logs.stdout), text(&logs.stderr)));
    assert!(log.contains("bootstrap of k8s-master-aa910c6f-0 finished"), "{log}");

    // Teardown: one resource-group delete; nothing left.
    let before = arm.fake().calls().len();
    let t = teardown(&arm, dir.path());
    assert_eq!(t["summary"]["failed"], 0, "{t}");
    let deletes: Vec<String> = arm.fake().calls()[before..]
        .iter()
        .filter(|c| c.method == "DELETE")
        .map(|c| c.path.clone())
        .collect();
    assert_eq!(deletes, vec![arm.rg()], "one resource-group delete");
    assert!(arm.fake().resources().is_empty(), "{:?}", arm.fake().resources().keys());
}

/// Start a deploy and SIGKILL it once `after` resources are done.
fn deploy_and_kill(arm: &Arm, dir: &Path, after: usize, extra: &[&str]) {
    let mut args = vec!["--parallelism", "3"];
    args.extend_from_slice(extra);
    let args = deploy_args(MODEL, &args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kill_after(arm.command(dir, &args), after);
}

#[test]
fn a_deploy_killed_part_way_resumes_to_exactly_the_plan_and_tears_down() {
    for after in [2, 9, 17] {
        let arm = Arm::start(Config {
            operation_time: Duration::from_millis(150),
            ..Config::default()
        });
        let dir = tempfile::tempdir().expect("tmp");
        deploy_and_kill(&arm, dir.path(), after, &KUBENET);
        let mut resumed = vec!["--parallelism", "3"];
        resumed.extend_from_slice(&KUBENET);
        let r = deploy(&arm, dir.path(), &resumed);
        assert_eq!(r["summary"]["failed"], 0, "after {after}: {r}");
        check_cluster(&arm, dir.path(), 3, true);
        check_single_puts(&arm);
        teardown(&arm, dir.path());
        let left = arm.fake().resources();
        assert!(left.is_empty(), "after {after}: left behind: {:?}", left.keys());
    }
}

#[test]
fn teardown_after_a_kill_with_the_state_lost_leaves_nothing() {
    for after in [3, 12] {
        let arm = Arm::start(Config::default());
        let dir = tempfile::tempdir().expect("tmp");
        deploy_and_kill(&arm, dir.path(), after, &[]);
        let _ = std::fs::remove_file(dir.path().join("out/state.json"));
        let _ = std::fs::remove_file(dir.path().join("out/state.journal"));
        teardown(&arm, dir.path());
        let left = arm.fake().resources();
        assert!(left.is_empty(), "after {after}: left behind: {:?}", left.keys());
    }
}

/// The user's own resource group `team-rg`, untagged, with a resource of
/// theirs in it: (group id, their resource's id), lower case.
fn team_rg(arm: &Arm) -> (String, String) {
    let rg = format!("/subscriptions/{}/resourceGroups/team-rg", arm.subscription);
    arm.fake().seed(
        &rg,
        serde_json::json!({"name": "team-rg", "location": LOCATION, "tags": {"owner": "team"},
                           "type": "Microsoft.Resources/resourceGroups",
                           "properties": {"provisioningState": "Succeeded"}}),
    );
    let theirs = format!("{rg}/providers/Microsoft.Network/publicIPAddresses/team-ip");
    arm.fake().seed(
        &theirs,
        serde_json::json!({"name": "team-ip", "location": LOCATION, "type": "Microsoft.Network/publicIPAddresses",
                           "tags": {"owner": "team"}, "properties": {"provisioningState": "Succeeded"}}),
    );
    (rg.to_ascii_lowercase(), theirs.to_ascii_lowercase())
}

const IN_TEAM_RG: [&str; 4] = [
    "--set",
    "properties.providerProfile.resourceGroup=team-rg",
    "--set",
    "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
];

#[test]
fn in_a_users_resource_group_teardown_deletes_only_hkes_resources() {
    let arm = Arm::start(Config {
        operation_time: Duration::from_millis(50),
        ..Config::default()
    });
    let (rg, theirs) = team_rg(&arm);
    let dir = tempfile::tempdir().expect("tmp");
    let d = deploy(&arm, dir.path(), &IN_TEAM_RG);
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    let all = arm.fake().resources();
    let rg_lower = rg.clone();
    assert!(
        all[&rg_lower]["tags"].get("hke.io_cluster").is_none(),
        "the user's group is not tagged"
    );
    assert!(all.keys().filter(|k| k.starts_with(&format!("{rg_lower}/"))).count() > 20);
    // Teardown goes resource by resource (in dependency order: the fake
    // refuses to delete anything still in use) and keeps the group and
    // the user's own resource.
    let before = arm.fake().calls().len();
    let t = teardown(&arm, dir.path());
    assert_eq!(t["summary"]["failed"], 0, "{t}");
    let left: Vec<String> = arm.fake().resources().into_keys().collect();
    let deletes: Vec<String> = arm.fake().calls()[before..]
        .iter()
        .filter(|c| c.method == "DELETE")
        .map(|c| format!("{} {}", c.path, c.status))
        .collect();
    assert_eq!(left, vec![rg_lower.clone(), theirs.clone()], "{deletes:#?}");
    let group_deletes = arm.fake().calls()[before..]
        .iter()
        .filter(|c| c.method == "DELETE" && c.path == rg_lower)
        .count();
    assert_eq!(group_deletes, 0);
}

/// After a 429 or an operation status, the next request for the same path
/// waits at least what the answer asked.
fn check_waits(arm: &Arm) {
    let calls = arm.fake().calls();
    let mut checked = 0;
    for (i, c) in calls.iter().enumerate() {
        let Some(wait) = c.retry_after else { continue };
        let polled_op = c.path.contains("/providers/microsoft.fake/operations/");
        if c.status != 429 && !polled_op {
            continue;
        }
        if let Some(next) = calls[i + 1..].iter().find(|n| n.path == c.path && n.method == c.method) {
            let gap = next.at.duration_since(c.at);
            assert!(
                gap + Duration::from_millis(5) >= wait,
                "{} {} again after {gap:?}, asked to wait {wait:?}",
                c.method,
                c.path
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} waits to check");
}

#[test]
fn throttling_and_slow_operations_are_ridden_out_at_the_pace_arm_asks() {
    let arm = Arm::start(Config {
        operation_time: Duration::from_millis(600),
        poll_after: Duration::from_millis(250),
        throttle_every: Some(7),
        throttle_retry_after_secs: 1,
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let first = deploy(&arm, dir.path(), &[]);
    assert_eq!(first["summary"]["failed"], 0, "{first}");
    check_cluster(&arm, dir.path(), 3, false);
    assert!(arm.fake().calls().iter().any(|c| c.status == 429));
    check_waits(&arm);
    check_single_puts(&arm);
    teardown(&arm, dir.path());
    check_waits(&arm);
    assert!(arm.fake().resources().is_empty());
}

#[test]
fn a_failed_provisioning_names_the_resource_and_arms_code_and_a_rerun_recovers() {
    let arm = Arm::start(Config {
        fail_once: vec!["k8s-linuxpool1-aa910c6f-1".into()],
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let model = root().join(MODEL);
    let out = arm.hke(
        dir.path(),
        &["deploy", "-m", model.to_str().expect("utf-8"), "-o", "out"],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("k8s-linuxpool1-aa910c6f-1") && err.contains("AllocationFailed"),
        "{err}"
    );
    assert!(!err.contains("e2e-client-secret-value"));
    // The failed VM is PUT again on the next run; everything else stays.
    let d = deploy(&arm, dir.path(), &[]);
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    check_cluster(&arm, dir.path(), 3, false);
    teardown(&arm, dir.path());
    assert!(arm.fake().resources().is_empty());
}

#[test]
fn a_wrong_subscription_or_credential_fails_before_anything_is_made() {
    let arm = Arm::start(Config::default());
    let dir = tempfile::tempdir().expect("tmp");
    let model = root().join(MODEL);
    let out = arm
        .command(
            dir.path(),
            &["deploy", "-m", model.to_str().expect("utf-8"), "-o", "out"],
        )
        .env("AZURE_SUBSCRIPTION_ID", "11111111-2222-3333-4444-555555555555")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("11111111-2222-3333-4444-555555555555") && err.contains("subscription"),
        "{err}"
    );
    // Without a trusted CA the TLS handshake fails, and says so.
    let out = arm
        .command(
            dir.path(),
            &["deploy", "-m", model.to_str().expect("utf-8"), "-o", "out2"],
        )
        .env_remove("HKE_AZURE_CA_FILE")
        .output()
        .expect("runs");
    // Not a usage error: the cloud could not be reached (exit 4).
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot reach"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("e2e-client-secret-value"));
    // A refused credential is its own failure (exit 3), and the secret
    // given is not repeated.
    let out = arm
        .command(
            dir.path(),
            &["deploy", "-m", model.to_str().expect("utf-8"), "-o", "out3"],
        )
        .env("AZURE_CLIENT_SECRET", "a-wrong-secret-value")
        .output()
        .expect("runs");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("credential"), "{err}");
    assert!(!err.contains("a-wrong-secret-value"), "{err}");
    assert!(arm.fake().resources().is_empty());
}

#[test]
fn the_janitor_finds_azure_clusters_by_tag() {
    let arm = Arm::start(Config {
        operation_time: Duration::ZERO,
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    deploy(&arm, dir.path(), &["--ttl", "1h"]);
    let out = arm.hke(
        dir.path(),
        &["--output", "json", "janitor", "--cloud", "azure", "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["expired"].as_array().map(Vec::len), Some(0), "{report}");
    assert!(report["kept"].to_string().contains(CLUSTER), "{report}");
    let out = arm.hke(
        dir.path(),
        &["--output", "json", "janitor", "--cloud", "azure", "--older-than", "0s"],
    );
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["deleted"][0], CLUSTER, "{report}");
    assert!(arm.fake().resources().is_empty());
}

#[test]
fn a_large_pool_becomes_a_scale_set() {
    let arm = Arm::start(Config {
        operation_time: Duration::from_millis(50),
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let d = deploy(&arm, dir.path(), &["--set", "properties.agentPoolProfiles[1].count=20"]);
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    let sets = arm.of("microsoft.compute/virtualmachinescalesets");
    assert_eq!(sets.len(), 1, "{:?}", sets.keys());
    let (name, vmss) = sets.iter().next().expect("scale set");
    assert_eq!(vmss["sku"]["capacity"], 20);
    assert_eq!(vmss["sku"]["name"], "Standard_D2s_v3");
    let profile = &vmss["properties"]["virtualMachineProfile"];
    assert_eq!(
        profile["storageProfile"]["imageReference"]["sku"],
        "2022-datacenter-core-smalldisk-g2"
    );
    let prefix = profile["osProfile"]["computerNamePrefix"].as_str().expect("prefix");
    assert!(prefix.len() <= 9, "{prefix}");
    assert_eq!(
        profile["extensionProfile"]["extensions"][0]["properties"]["type"],
        "CustomScriptExtension"
    );
    let pools = profile["networkProfile"]["networkInterfaceConfigurations"][0]["properties"]["ipConfigurations"][0]
        ["properties"]["loadBalancerBackendAddressPools"]
        .to_string();
    assert!(pools.contains("/backendAddressPools/nodes"), "{pools}");
    // The custom data is the pool's rendered bootstrap.
    let rendered = arm.hke(
        dir.path(),
        &[
            "render",
            "-m",
            "out/apimodel.json",
            "--node",
            name,
            "--endpoint",
            &format!("{CLUSTER}.{LOCATION}.cloudapp.azure.com"),
        ],
    );
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode(profile["osProfile"]["customData"].as_str().expect("custom data"))
        .expect("base64");
    assert_eq!(text(&data).trim_end(), text(&rendered.stdout).trim_end());
    // No availability set for a scale-set pool.
    assert_eq!(arm.of("microsoft.compute/availabilitysets").len(), 2);
    teardown(&arm, dir.path());
    assert!(arm.fake().resources().is_empty());
}

#[test]
fn an_operation_that_ends_in_a_retryable_error_is_put_again_and_the_deploy_completes() {
    let nic = "k8s-linuxpool1-aa910c6f-0-nic".to_string();
    let arm = Arm::start(Config {
        operation_time: Duration::from_millis(50),
        retryable: vec![
            // A NIC whose subnet was still being updated (terraform-provider-
            // azurerm#30197), every NSG PUT's operation overtaken once, and
            // the tenth resource PUT of the deploy, whatever it is.
            Retryable::not_provisioned(PutMatch::Name(nic.clone())),
            Retryable::another_operation(PutMatch::Type("Microsoft.Network/networkSecurityGroups".into())),
            Retryable::not_provisioned(PutMatch::Nth(10)),
        ],
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let d = deploy(&arm, dir.path(), &[]);
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    check_cluster(&arm, dir.path(), 3, false);
    // The resources whose operation failed were PUT again: once more each.
    // (The tenth PUT, when it is the NIC's or the NSG's first, fails once.)
    let nic_path = format!("{}/providers/microsoft.network/networkinterfaces/{nic}", arm.rg());
    let nsg_path = format!(
        "{}/providers/microsoft.network/networksecuritygroups/{CLUSTER}-nsg",
        arm.rg()
    );
    let injected = arm.fake().injected();
    assert!(
        injected.contains(&nic_path) && injected.contains(&nsg_path) && injected.len() >= 2,
        "{injected:#?}"
    );
    let mut again: BTreeMap<String, usize> = BTreeMap::new();
    for p in injected.iter().cloned() {
        *again.entry(p).or_default() += 1;
    }
    let puts = puts(&arm);
    for (path, n) in &again {
        assert!(puts.get(path).is_some_and(|p| *p > *n), "{path}: {puts:#?}");
    }
    let retries = d["summary"]["retries"].as_u64().unwrap_or_default();
    assert!(retries >= injected.len() as u64, "{injected:?}: {d}");
    check_puts(&arm, &again);
    teardown(&arm, dir.path());
    assert!(arm.fake().resources().is_empty());
}

#[test]
fn in_a_users_resource_group_teardown_with_the_state_lost_still_deletes_hkes_resources() {
    let arm = Arm::start(Config {
        operation_time: Duration::from_millis(50),
        ..Config::default()
    });
    let (rg, theirs) = team_rg(&arm);
    let dir = tempfile::tempdir().expect("tmp");
    let d = deploy(&arm, dir.path(), &IN_TEAM_RG);
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    let made = arm.fake().resources().len() - 2;
    assert!(made > 20, "{made}");
    std::fs::remove_file(dir.path().join("out/state.json")).expect("state");
    let _ = std::fs::remove_file(dir.path().join("out/state.journal"));
    // Only the tag sweep knows the resources now, and ARM lists them by tag
    // name and value without their tags.
    let t = teardown(&arm, dir.path());
    assert_eq!(t["summary"]["failed"], 0, "{t}");
    let left: Vec<String> = arm.fake().resources().into_keys().collect();
    assert_eq!(left, vec![rg, theirs], "{made} made");
}

#[test]
fn the_janitor_finds_and_deletes_a_cluster_in_a_users_resource_group() {
    let arm = Arm::start(Config {
        operation_time: Duration::ZERO,
        // Tags missing from every tag-filtered list, even by name only.
        tags_in_tag_name_lists: false,
        ..Config::default()
    });
    let (rg, theirs) = team_rg(&arm);
    let dir = tempfile::tempdir().expect("tmp");
    let mut args = IN_TEAM_RG.to_vec();
    args.extend(["--ttl", "1h"]);
    deploy(&arm, dir.path(), &args);
    let out = arm.hke(
        dir.path(),
        &["--output", "json", "janitor", "--cloud", "azure", "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    let kept = &report["kept"][0];
    assert_eq!(kept["cluster"], CLUSTER, "{report}");
    // Its tags were read: the TTL and creation time, on every resource.
    assert_eq!(kept["ttl"], "1h", "{report}");
    assert_eq!(kept["reason"], "not yet expired", "{report}");
    assert!(kept["resources"].as_u64().is_some_and(|n| n > 20), "{report}");
    let out = arm.hke(
        dir.path(),
        &["--output", "json", "janitor", "--cloud", "azure", "--older-than", "0s"],
    );
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["deleted"][0], CLUSTER, "{report}");
    let left: Vec<String> = arm.fake().resources().into_keys().collect();
    assert_eq!(left, vec![rg, theirs]);
}

#[test]
fn a_pool_over_a_hundred_nodes_is_one_scale_set_over_several_placement_groups() {
    let arm = Arm::start(Config {
        operation_time: Duration::from_millis(20),
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let d = deploy(
        &arm,
        dir.path(),
        &["--set", "properties.agentPoolProfiles[0].count=150"],
    );
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    let sets = arm.of("microsoft.compute/virtualmachinescalesets");
    let vmss = sets
        .values()
        .find(|s| s["sku"]["capacity"] == 150)
        .unwrap_or_else(|| panic!("{sets:#?}"));
    assert_eq!(vmss["properties"]["singlePlacementGroup"], false);
    // The ARM template says the same.
    let t: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/azuredeploy.json")).expect("template"))
            .expect("json");
    let in_template = t["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Microsoft.Compute/virtualMachineScaleSets" && r["sku"]["capacity"] == 150)
        .expect("the scale set in the template");
    assert_eq!(in_template["properties"]["singlePlacementGroup"], false);
    teardown(&arm, dir.path());
    assert!(arm.fake().resources().is_empty());
}

/// `hke generate` with `sets` refuses the model (exit 2); its stderr.
fn refused(sets: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let model = root().join(MODEL);
    let mut args = vec!["generate", "-m", model.to_str().expect("utf-8"), "-o", "out"];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hke"))
        .args(&args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", path())
        .env("HOME", dir.path())
        .output()
        .expect("hke runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

#[test]
fn azures_limits_are_validation_errors_naming_the_field_the_value_and_the_fix() {
    // A public IP's DNS label is lower case.
    let err = refused(&["properties.masterProfile.dnsPrefix=Kubernetes-Windows"]);
    assert!(
        err.contains("properties.masterProfile.dnsPrefix")
            && err.contains("Kubernetes-Windows")
            && err.contains("kubernetes-windows"),
        "{err}"
    );
    // kubenet: one route per node in one route table of at most 400.
    let err = refused(&[
        "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
        "properties.orchestratorProfile.kubernetesConfig.clusterSubnet=10.128.0.0/14",
        "properties.agentPoolProfiles[0].count=199",
        "properties.agentPoolProfiles[1].count=199",
    ]);
    assert!(
        err.contains("properties.orchestratorProfile.kubernetesConfig.networkPlugin")
            && err.contains("401")
            && err.contains("400 routes"),
        "{err}"
    );
    assert!(!err.contains("availability set"), "{err}");
    // kubenet pools are VMs in an availability set of at most 200.
    let err = refused(&[
        "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
        "properties.orchestratorProfile.kubernetesConfig.clusterSubnet=10.128.0.0/14",
        "properties.agentPoolProfiles[0].count=201",
    ]);
    assert!(
        err.contains("properties.agentPoolProfiles[0].count")
            && err.contains("201")
            && err.contains("availability set")
            && err.contains("networkPlugin"),
        "{err}"
    );
    assert!(!err.contains("400 routes"), "{err}");
}

/// A size boots only its VM generation: the seed model's Standard_D2_v3
/// (generation 1 only) gets the generation 1 SKUs, a v6 size (generation 2
/// only) the -g2 SKU; Compute refuses a mismatch ("cannot boot Hypervisor
/// Generation"), so the deploy itself proves the choice.
#[test]
fn each_vm_size_gets_the_image_generation_it_boots() {
    let arm = Arm::start(Config {
        operation_time: Duration::from_millis(50),
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let d = deploy(
        &arm,
        dir.path(),
        &[
            "--set",
            "properties.masterProfile.vmSize=Standard_D2_v3",
            "--set",
            "properties.agentPoolProfiles[0].vmSize=Standard_D2_v3",
            "--set",
            "properties.agentPoolProfiles[1].vmSize=Standard_D2s_v6",
        ],
    );
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    let mut seen = BTreeMap::new();
    for (name, vm) in arm.of("microsoft.compute/virtualmachines") {
        let size = vm["properties"]["hardwareProfile"]["vmSize"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let sku = vm["properties"]["storageProfile"]["imageReference"]["sku"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        seen.insert(name, (size, sku));
    }
    let skus: std::collections::BTreeSet<(String, String)> = seen.values().cloned().collect();
    assert_eq!(
        skus,
        [
            ("Standard_D2_v3".to_string(), "server-gen1".to_string()),
            (
                "Standard_D2s_v6".to_string(),
                "2022-datacenter-core-smalldisk-g2".to_string()
            ),
        ]
        .into_iter()
        .collect(),
        "{seen:?}"
    );
    teardown(&arm, dir.path());
    assert!(arm.fake().resources().is_empty());
}

/// ARM requests of a deploy by class, as ARM's buckets count them: writes
/// (PUT, POST, DELETE), operation polls (GETs of `Azure-AsyncOperation`
/// and `Location` URLs), other reads (GETs and lists), and 429 answers.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Counts {
    mutating: usize,
    reads: usize,
    polls: usize,
    throttled: usize,
}

impl Counts {
    fn of(calls: &[hke_fake_arm::Call]) -> Counts {
        let mut c = Counts::default();
        for call in calls {
            if call.path.ends_with("/oauth2/v2.0/token") || call.path.starts_with("/blobs/") || call.status == 401 {
                continue;
            }
            if call.status == 429 {
                c.throttled += 1;
            }
            match call.method.as_str() {
                "GET" if call.path.contains("/providers/microsoft.fake/operations/") => c.polls += 1,
                "GET" | "HEAD" => c.reads += 1,
                _ => c.mutating += 1,
            }
        }
        c
    }

    fn per(&self, vms: usize) -> String {
        let f = |n: usize| n as f64 / vms as f64;
        format!(
            "{:.1} requests per VM: {:.1} mutating, {:.1} reads, {:.1} polls ({} / {} / {} for {vms} VMs; {} throttled)",
            f(self.mutating + self.reads + self.polls),
            f(self.mutating),
            f(self.reads),
            f(self.polls),
            self.mutating,
            self.reads,
            self.polls,
            self.throttled
        )
    }
}

/// The figures, for `--nocapture`.
#[allow(clippy::print_stderr)]
fn report(what: &str, per: &str) {
    eprintln!("azure deploy, {what}: {per}");
}

/// Deploy `extra` with operations of `operation` (ARM asking for a poll
/// every half of it) and count the requests per VM.
fn measure(extra: &[&str], vms: usize, operation: Duration) -> Counts {
    let arm = Arm::start(Config {
        operation_time: operation,
        poll_after: operation / 2,
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let d = deploy(&arm, dir.path(), extra);
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    assert_eq!(arm.of("microsoft.compute/virtualmachines").len(), vms);
    Counts::of(&arm.fake().calls())
}

/// Requests per VM of a 10-node deploy (3 masters, 4 Linux, 3 Windows VMs).
#[test]
fn a_ten_node_deploy_costs_few_requests_per_vm() {
    let c = measure(
        &["--set", "properties.agentPoolProfiles[0].count=4"],
        10,
        Duration::from_secs(2),
    );
    let per = c.per(10);
    report("10 nodes", &per);
    assert_eq!(c.throttled, 0, "{per}");
    // Measured before (every create read first, every operation read
    // again after it ended, a route table and next hop read per route):
    // 17.6 per VM (3.5 mutating, 7.3 reads, 6.8 polls); after, 10.4 (3.5,
    // 1.9, 5.0).
    assert!(c.reads <= 10 * 3, "{per}");
    assert!(c.mutating + c.reads + c.polls <= 10 * 13, "{per}");
}

/// The same for a 200-node kubenet deploy (a VM and a route per node),
/// with 200 ms operations to keep it short (the reads per VM do not depend
/// on the operations' length; the polls do: with 2 s operations they were
/// 7.0 per VM).
#[test]
fn two_hundred_node_kubenet_deploy_requests_per_vm() {
    let mut extra = KUBENET.to_vec();
    extra.extend([
        "--set",
        "properties.orchestratorProfile.kubernetesConfig.clusterSubnet=10.128.0.0/14",
        "--set",
        "properties.agentPoolProfiles[0].count=100",
        "--set",
        "properties.agentPoolProfiles[1].count=97",
    ]);
    let c = measure(&extra, 200, Duration::from_millis(200));
    let per = c.per(200);
    report("200 nodes, kubenet", &per);
    assert_eq!(c.throttled, 0, "{per}");
    // Before: 20.8 per VM (3.6 mutating, 10.1 reads, 7.1 polls); after,
    // 10.8 (3.6, 0.3, 7.0).
    assert!(c.reads <= 200, "{per}");
}

/// Run `args` with extra environment; the deploy's summary.
fn run_with(arm: &Arm, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut c = arm.command(dir, args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("hke runs");
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    summary(&text(&out.stdout))
}

/// ARM's per-principal buckets (reads 250 + 25/s, writes 200 + 10/s,
/// deletes 200 + 10/s; here a tenth of each): a paced deploy and teardown
/// meet no 429; the same deploy with `HKE_PACING=off` is throttled and
/// rides it out.
#[test]
fn a_deploy_paces_itself_under_arms_buckets_and_is_never_throttled() {
    const SCALE: f64 = 0.1;
    let limited = || {
        Arm::start(Config {
            rate_limits: Some(RateLimits::arm().scaled(SCALE)),
            ..Config::default()
        })
    };
    let scale = SCALE.to_string();
    let args = deploy_args(MODEL, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let arm = limited();
    let dir = tempfile::tempdir().expect("tmp");
    let d = run_with(&arm, dir.path(), &args, &[("HKE_AZURE_RATE_SCALE", &scale)]);
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    check_cluster(&arm, dir.path(), 3, false);
    let counts = Counts::of(&arm.fake().calls());
    assert_eq!(arm.fake().throttled(), 0, "{counts:?}");
    // The buckets set the pace: more calls than the scaled bursts.
    assert!(counts.reads + counts.polls > 25 && counts.mutating > 20, "{counts:?}");
    let t = run_with(
        &arm,
        dir.path(),
        &[
            "--output",
            "json",
            "teardown",
            "--yes",
            "-o",
            "out",
            "--cluster",
            CLUSTER,
        ],
        &[("HKE_AZURE_RATE_SCALE", &scale)],
    );
    assert_eq!(t["summary"]["failed"], 0, "{t}");
    assert!(arm.fake().resources().is_empty());
    let calls = arm.fake().calls();
    let refused: Vec<String> = calls
        .iter()
        .filter(|c| c.status == 429)
        .map(|c| format!("{:?} {} {}", c.at.duration_since(calls[0].at), c.method, c.path))
        .collect();
    assert_eq!(arm.fake().throttled(), 0, "{refused:#?}");

    // Unpaced, the same deploy meets ARM's 429s (and rides them out).
    let arm = limited();
    let dir = tempfile::tempdir().expect("tmp");
    let d = run_with(&arm, dir.path(), &args, &[("HKE_PACING", "off")]);
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    let unpaced = arm.fake().throttled();
    report("unpaced, ARM's buckets at a tenth", &format!("{unpaced} answers 429"));
    // (A client that ignores HKE_PACING but follows ARM's remaining-calls
    // headers meets one or two; an unpaced one dozens.)
    assert!(unpaced >= 10, "an unpaced deploy was throttled only {unpaced} times");
    let calls = arm.fake().calls();
    let refused: Vec<&hke_fake_arm::Call> = calls.iter().filter(|c| c.status == 429).collect();
    assert!(!refused.is_empty());
    assert!(
        refused
            .iter()
            .all(|c| c.retry_after.is_some_and(|w| w >= Duration::from_secs(1))),
        "a 429 without Retry-After"
    );
}

/// Every node leaves through the load balancer's outbound rule: a
/// 1,000-node cluster (a scale set of 995) gets 1,024 SNAT ports per node
/// from 16 frontend addresses, where ARM's default allocation would give
/// 32 from one; the fake refuses a rule whose ports exceed its frontends'.
#[test]
fn a_thousand_nodes_get_their_snat_ports_from_enough_outbound_addresses() {
    let arm = Arm::start(Config {
        operation_time: Duration::from_millis(20),
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let d = deploy(
        &arm,
        dir.path(),
        &["--set", "properties.agentPoolProfiles[1].count=995"],
    );
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    let lb = format!(
        "{}/providers/microsoft.network/loadbalancers/{CLUSTER}-apiserver",
        arm.rg()
    );
    let snat = arm.fake().snat(&lb);
    assert_eq!(snat.len(), 1, "{snat:?}");
    let rule = &snat[0];
    assert_eq!(rule.instances, 1_000, "{rule:?}");
    assert!(rule.per_instance >= 1_024, "{rule:?}");
    assert_eq!(rule.frontends, 16, "{rule:?}");
    // The extra addresses are the plan's, so teardown and state know them.
    let pips = arm.of("microsoft.network/publicipaddresses");
    let outbound: Vec<&String> = pips.keys().filter(|k| k.contains("-apiserver-outbound-")).collect();
    assert_eq!(outbound.len(), 15, "{:?}", pips.keys());
    let plan = plan(&arm, dir.path());
    let planned = plan["resources"]
        .as_object()
        .expect("resources")
        .keys()
        .filter(|k| k.starts_with("publicAddress/outbound-"))
        .count();
    assert_eq!(planned, 15);
    teardown(&arm, dir.path());
    assert!(arm.fake().resources().is_empty());
}

#[test]
fn restricted_api_source_ranges_still_let_every_node_reach_the_api_server() {
    // Clients from one range only. Nodes reach the API server at the load
    // balancer's public frontend; their packets leave through its outbound
    // rule and arrive SNATed to one of that rule's frontend addresses
    // (learn.microsoft.com/azure/load-balancer/outbound-rules), so the
    // NSG must admit every one of them. 101 nodes need two frontends.
    let arm = Arm::start(Config {
        operation_time: Duration::from_millis(20),
        ..Config::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let sets = [
        "--set",
        "properties.masterProfile.HTTPSourceAddressPrefix=198.51.100.0/24",
        "--set",
        "properties.agentPoolProfiles[0].count=95",
    ];
    let d = deploy(&arm, dir.path(), &sets);
    assert_eq!(d["summary"]["failed"], 0, "{d}");
    let all = arm.fake().resources();
    let lbs = arm.of("microsoft.network/loadbalancers");
    let lb = &lbs[&format!("{CLUSTER}-apiserver")]["properties"];
    let frontend_address = |fe_id: &str| -> String {
        let fe = lb["frontendIPConfigurations"]
            .as_array()
            .expect("frontends")
            .iter()
            .find(|f| f["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(fe_id)))
            .unwrap_or_else(|| panic!("no frontend {fe_id}"));
        let pip_id = fe["properties"]["publicIPAddress"]["id"]
            .as_str()
            .expect("public address")
            .to_ascii_lowercase();
        all[&pip_id]["properties"]["ipAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("{pip_id} has no address"))
            .to_string()
    };
    let egress: Vec<String> = lb["outboundRules"][0]["properties"]["frontendIPConfigurations"]
        .as_array()
        .expect("outbound frontends")
        .iter()
        .map(|f| frontend_address(f["id"].as_str().expect("id")))
        .collect();
    assert_eq!(egress.len(), 2, "{egress:?}");
    let nsgs = arm.of("microsoft.network/networksecuritygroups");
    let api = nsgs[&format!("{CLUSTER}-nsg")]["properties"]["securityRules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["name"] == "apiserver")
        .expect("apiserver rule")["properties"]
        .clone();
    let sources: Vec<String> = api["sourceAddressPrefixes"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(api.get("sourceAddressPrefix"))
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    let admits = |ip: &str| sources.iter().any(|s| cidr_contains(s, ip));
    assert!(!admits("203.0.113.7"), "open to all: {sources:?}");
    assert!(admits("198.51.100.9"), "{sources:?}");
    for ip in &egress {
        assert!(admits(ip), "a node's packet from {ip} is refused: {sources:?}");
    }
    // The nodes' endpoint is that public frontend.
    let fqdn = format!("{CLUSTER}.{LOCATION}.cloudapp.azure.com");
    let vms = arm.of("microsoft.compute/virtualmachines");
    let windows = vms
        .iter()
        .find(|(name, _)| !name.starts_with("k8s-master"))
        .map(|(_, v)| v)
        .expect("a Windows VM (the Linux pool is a scale set)");
    let data = windows["properties"]["osProfile"]["customData"]
        .as_str()
        .expect("custom data");
    use base64::Engine as _;
    let boot = base64::engine::general_purpose::STANDARD.decode(data).expect("base64");
    assert!(
        String::from_utf8_lossy(&boot).contains(&fqdn),
        "the node is not sent to {fqdn}"
    );
    // Redeploying writes nothing: the rule is stable.
    let again = deploy(&arm, dir.path(), &sets);
    assert_eq!(again["summary"]["created"], 0, "{again}");
    teardown(&arm, dir.path());
    assert!(arm.fake().resources().is_empty());
}
