//! OpenStack end to end: the `hke` binary against a real OpenStack, the
//! test bed of e2e/openstack (Keystone, Glance, Placement, Neutron, Nova
//! with the fake virt driver, Octavia), every resource checked through the
//! OpenStack APIs (openstack_support/inventory.py, with the bed's
//! openstacksdk).
//!
//! The bed takes about a minute to start, so one test starts it once
//! (openstack_support/bed.rs) and runs the scenarios in order on it, each
//! cluster with a name of its own (`--set properties.masterProfile.dnsPrefix`):
//!
//! 1. deploy examples/windows-openstack.json and check every object:
//!    network, subnet, router, security group rules, a port and a server per
//!    machine (flavor, image, keypair, tags, metadata, the exact boot file),
//!    the Octavia load balancer with its listener, pool, members and health
//!    monitor, its floating IP, and the kubeconfig; a second deploy writes
//!    nothing; `hke logs` writes every node's console;
//! 2. the janitor: a cluster with `--ttl 1s` is deleted, one with an unexpired
//!    TTL and one without a TTL are kept (`--dry-run` first);
//! 3. `hke teardown -m` of the first cluster leaves nothing of it;
//! 4. teardown with the state lost (`--cluster NAME --cloud openstack`);
//! 5. a deploy SIGKILLed three times part-way, then resumed: exactly the
//!    plan, nothing twice, one creation time; torn down after;
//!
//! and at the end nothing of any cluster is left in the project.
//!
//! Run: `cargo test --no-default-features --features openstack -p hke
//! --test openstack -- --test-threads=1` (add `--nocapture` for progress).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

#[path = "openstack_support/bed.rs"]
mod bed;
#[allow(dead_code)]
#[path = "harness.rs"]
mod harness;
#[path = "openstack_support/inventory.rs"]
mod inventory;

use bed::Bed;
use harness::{path, root, summary, text};
use inventory::{cluster_tag, s, tags, Inventory};

const MODEL: &str = "examples/windows-openstack.json";
const CLOUD: &str = "hke-test";
const EXTERNAL_NETWORK: &str = "public";
/// What the fake virt driver answers for every console.
const FAKE_CONSOLE: &str = "FAKE CONSOLE OUTPUT";
/// One master and one Linux node.
const SMALL: [&str; 4] = [
    "--set",
    "properties.masterProfile.count=1",
    "--set",
    r#"properties.agentPoolProfiles=[{"name":"linuxpool1","count":1,"vmSize":"m1.medium","osType":"Linux"}]"#,
];

/// The process environment, read in one place (clippy keeps it out of
/// everything else).
#[allow(clippy::disallowed_methods)]
fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// Progress on stderr (cargo shows it with `--nocapture`).
#[allow(clippy::print_stderr)]
fn note(message: String) {
    eprintln!("[openstack e2e] {message}");
}

/// A suffix no earlier run used, for cluster names.
fn run_suffix() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{:x}", (t ^ (u128::from(std::process::id()) << 20)) % 0xff_ffff)
}

/// The longest any one command may take: a deploy of the example takes
/// 15-40 s on the bed (Octavia's load balancer up to 70 s); a cloud that
/// stops answering fails the test instead of hanging it.
const COMMAND_LIMIT: Duration = Duration::from_secs(600);

/// Run a command to its end, or kill it at `COMMAND_LIMIT` and fail with
/// what it printed.
fn bounded(mut cmd: Command, what: &str) -> Output {
    use std::io::{Read, Seek};
    let files = || tempfile::tempfile().expect("output file");
    let (out, err) = (files(), files());
    let mut child = cmd
        .stdout(out.try_clone().expect("file"))
        .stderr(err.try_clone().expect("file"))
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |mut f: std::fs::File| {
        let mut b = Vec::new();
        let _ = f.rewind().and_then(|()| f.read_to_end(&mut b));
        b
    };
    let (stdout, stderr) = (read(out), read(err));
    let Some(status) = status else {
        panic!(
            "{what}: still running after {COMMAND_LIMIT:?}, killed:\n{}\n{}",
            text(&stdout),
            text(&stderr)
        );
    };
    Output { status, stdout, stderr }
}

fn read_json(p: &Path) -> Value {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `hke` for one cluster: its own working directory (also `HOME`), the
/// output directory `out` in it, the bed's clouds.yaml, nothing else of
/// the environment.
struct Hke<'a> {
    bed: &'a Bed,
    cluster: String,
    work: tempfile::TempDir,
}

impl<'a> Hke<'a> {
    fn new(bed: &'a Bed, cluster: String) -> Hke<'a> {
        Hke {
            bed,
            cluster,
            work: tempfile::tempdir().expect("tmp"),
        }
    }

    fn dir(&self) -> &Path {
        self.work.path()
    }

    fn out(&self) -> PathBuf {
        self.dir().join("out")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hke"));
        c.args(args)
            .current_dir(self.dir())
            .env_clear()
            .env("PATH", path())
            .env("HOME", self.dir())
            .env("OS_CLIENT_CONFIG_FILE", self.bed.clouds())
            .env("OS_CLOUD", CLOUD)
            .env("HKE_OPENSTACK_POLL_MS", "100")
            .stdin(Stdio::null());
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        bounded(self.command(args), &format!("hke {}", args_shown(args)))
    }

    /// Run and require success; the output.
    fn ok(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = self.output(args);
        assert!(
            out.status.success(),
            "hke {args:?} failed ({:?}):\n{}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        note(format!(
            "{}: hke {} took {:.1?}",
            self.cluster,
            args_shown(args),
            started.elapsed()
        ));
        out
    }

    fn deploy_args(&self, extra: &[&str]) -> Vec<String> {
        let model = root().join(MODEL);
        let mut a: Vec<String> = ["--output", "json", "deploy", "-m"].map(String::from).to_vec();
        a.push(model.to_string_lossy().into_owned());
        a.extend(["-o", "out", "--set"].map(String::from));
        a.push(format!("properties.masterProfile.dnsPrefix={}", self.cluster));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    /// Deploy; the summary of its events.
    fn deploy(&self, extra: &[&str]) -> Value {
        let args = self.deploy_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.ok(&args);
        let end = summary(&text(&out.stdout));
        assert_eq!(end["summary"]["failed"], 0, "{end}");
        end
    }

    fn teardown(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json", "teardown", "--yes"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        let end = summary(&text(&out.stdout));
        assert_eq!(end["summary"]["failed"], 0, "{end}");
        end
    }

    fn plan(&self) -> Value {
        read_json(&self.out().join("plan.json"))
    }

    /// The names of the cluster's resources, from its plan.
    fn names(&self) -> BTreeSet<String> {
        self.plan()["resources"]
            .as_object()
            .expect("resources")
            .values()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect()
    }
}

/// The arguments without the model's path, for progress lines.
fn args_shown(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.ends_with(".json") && a.contains('/') {
                "MODEL"
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The planned machines: (name, spec).
fn machines(plan: &Value) -> Vec<(String, Value)> {
    let res = plan["resources"].as_object().expect("resources");
    assert!(
        !res.values().any(|r| r["spec"]["kind"] == "machineGroup"),
        "no machine groups under 20 nodes"
    );
    res.values()
        .filter(|r| r["spec"]["kind"] == "machine")
        .map(|r| (s(r, "name").to_string(), r["spec"].clone()))
        .collect()
}

/// One object of a list, or a message saying what was there.
fn one<'v>(found: Vec<&'v Value>, what: &str) -> &'v Value {
    assert_eq!(
        found.len(),
        1,
        "{what}: {} found: {:?}",
        found.len(),
        found.iter().map(|o| s(o, "id")).collect::<Vec<_>>()
    );
    found[0]
}

/// hke's security group rule as Neutron holds it: protocol (None: all),
/// port range, source.
type SgRule = (Option<String>, Option<i64>, Option<i64>, String);

/// The cluster in the cloud is what its model, cluster.json and plan say.
/// Answers the API endpoint's address.
fn check_cluster(hke: &Hke, inv: &Inventory) -> String {
    let cluster = hke.cluster.as_str();
    let out = hke.out();
    let plan = hke.plan();
    let c = read_json(&out.join("cluster.json"));
    let state = read_json(&out.join("state.json"));
    let model = read_json(&out.join("apimodel.json"));
    let res = &plan["resources"];
    let name_of = |id: &str| s(&res[id], "name").to_string();
    let tag = cluster_tag(cluster);
    let complete = "hke.io:complete=true";
    let created = format!("hke.io:created={}", s(&state, "created"));
    let has_tags = |o: &Value, want: &[&str], what: &str| {
        let t = tags(o);
        for w in want {
            assert!(t.contains(w), "{what}: tag {w} missing in {t:?}");
        }
        // One creation time for the whole cluster, also across a resumed
        // deploy: the state's.
        let stamps: Vec<&str> = t.iter().copied().filter(|x| x.starts_with("hke.io:created=")).collect();
        assert_eq!(stamps, vec![created.as_str()], "{what}: hke.io:created in {t:?}");
    };
    let public = inv.external_network(EXTERNAL_NETWORK);

    // Network, router, subnet.
    let node_cidr = s(&c["network"], "nodeCidr");
    assert_eq!(res["subnet/nodes"]["spec"]["cidr"], node_cidr);
    let net = one(inv.tagged("networks", cluster), "network");
    assert_eq!(s(net, "name"), name_of("network"));
    has_tags(net, &[&tag, complete], "network");
    let subnet = one(inv.tagged("subnets", cluster), "subnet");
    assert_eq!(s(subnet, "name"), name_of("subnet/nodes"));
    assert_eq!(s(subnet, "cidr"), node_cidr, "the subnet has the model's node range");
    assert_eq!(s(subnet, "network_id"), s(net, "id"));
    assert_eq!(subnet["ip_version"], 4);
    has_tags(subnet, &[&tag, complete], "subnet");
    let router = one(inv.tagged("routers", cluster), "router");
    assert_eq!(s(router, "name"), name_of("network"));
    assert_eq!(
        s(&router["external_gateway_info"], "network_id"),
        s(public, "id"),
        "the router's gateway is on {EXTERNAL_NETWORK}"
    );
    has_tags(router, &[&tag, &format!("hke.io:network={}", s(net, "id"))], "router");
    // The router's gateway address is the network's egress address: a
    // restricted API rule admits it (nodes' packets to the floating IP are
    // SNATed to it by the router).
    let gateway = router["external_gateway_info"]["external_fixed_ips"]
        .as_array()
        .expect("the router's external fixed IPs")
        .iter()
        .filter_map(|f| f["ip_address"].as_str())
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        .expect("an IPv4 gateway address");
    assert_eq!(
        state["resources"]["network"]["outputs"]["egressAddress"], gateway,
        "the network's egress address"
    );
    let interfaces: Vec<&Value> = inv
        .all("ports")
        .iter()
        .filter(|p| s(p, "device_owner") == "network:router_interface" && s(p, "device_id") == s(router, "id"))
        .collect();
    let interface = one(interfaces, "router interface");
    assert_eq!(s(&interface["fixed_ips"][0], "subnet_id"), s(subnet, "id"));
    assert_eq!(
        s(&interface["fixed_ips"][0], "ip_address"),
        s(subnet, "gateway_ip"),
        "the interface is the subnet's gateway"
    );

    // Security group: the API port and SSH from apiServerSourceRanges,
    // everything from the node and pod ranges (the rules every cloud gets).
    let sg = one(inv.tagged("security_groups", cluster), "security group");
    assert_eq!(s(sg, "name"), name_of("firewall/nodes"));
    has_tags(sg, &[&tag, complete], "security group");
    let anywhere = |r: &str| match r {
        "*" | "Internet" | "any" => "0.0.0.0/0".to_string(),
        other => other.to_string(),
    };
    let port = c["endpoint"]["port"].as_i64().expect("port");
    let mut want: BTreeSet<SgRule> = BTreeSet::new();
    for src in c["network"]["apiSourceRanges"].as_array().expect("ranges") {
        let src = anywhere(src.as_str().expect("range"));
        want.insert((Some("tcp".into()), Some(port), Some(port), src.clone()));
        want.insert((Some("tcp".into()), Some(22), Some(22), src));
    }
    want.insert((None, None, None, node_cidr.to_string()));
    want.insert((None, None, None, s(&c["network"], "podCidr").to_string()));
    // Restricted: the nodes' packets to the floating IP come back through
    // the router, SNATed to its gateway address, which the rule admits.
    let ranges: Vec<String> = c["network"]["apiSourceRanges"]
        .as_array()
        .expect("ranges")
        .iter()
        .map(|r| anywhere(r.as_str().expect("range")))
        .collect();
    let restricted = !ranges.iter().any(|r| r == "0.0.0.0/0");
    if restricted {
        want.insert((Some("tcp".into()), Some(port), Some(port), format!("{gateway}/32")));
    }
    let ingress: Vec<SgRule> = sg["security_group_rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| s(r, "direction") == "ingress")
        .map(|r| {
            assert_eq!(s(r, "ethertype"), "IPv4");
            (
                r["protocol"].as_str().map(str::to_string),
                r["port_range_min"].as_i64(),
                r["port_range_max"].as_i64(),
                s(r, "remote_ip_prefix").to_string(),
            )
        })
        .collect();
    assert_eq!(ingress.len(), want.len(), "ingress rules {ingress:?}");
    assert_eq!(ingress.into_iter().collect::<BTreeSet<_>>(), want, "ingress rules");

    // The API endpoint: the Octavia load balancer, whole, and the floating
    // IP on its VIP.
    let lb = one(inv.tagged("loadbalancers", cluster), "load balancer");
    assert_eq!(s(lb, "name"), name_of("loadBalancer/apiserver"));
    assert_eq!(s(lb, "provisioning_status"), "ACTIVE");
    assert_eq!(s(lb, "vip_subnet_id"), s(subnet, "id"));
    has_tags(lb, &[&tag, complete], "load balancer");
    let listeners: Vec<&Value> = inv
        .all("listeners")
        .iter()
        .filter(|l| l["loadbalancers"][0]["id"] == lb["id"])
        .collect();
    let listener = one(listeners, "listener");
    assert_eq!(s(listener, "protocol"), "TCP");
    // The amphora proxies (the masters see it, not the client): the
    // listener admits the clients' ranges and the nodes itself.
    let allowed: BTreeSet<&str> = listener["allowed_cidrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if restricted {
        let mut want: BTreeSet<String> = ranges.iter().cloned().collect();
        want.insert(format!("{gateway}/32"));
        assert_eq!(
            allowed,
            want.iter().map(String::as_str).collect(),
            "the listener's allowed_cidrs"
        );
    } else {
        assert!(allowed.is_empty(), "open to all, yet allowed_cidrs {allowed:?}");
    }
    assert_eq!(listener["protocol_port"].as_i64(), Some(port));
    let pool = one(
        inv.all("pools")
            .iter()
            .filter(|p| p["loadbalancers"][0]["id"] == lb["id"])
            .collect(),
        "pool",
    );
    assert_eq!(s(listener, "default_pool_id"), s(pool, "id"));
    assert_eq!(s(pool, "protocol"), "TCP");
    assert_eq!(s(pool, "lb_algorithm"), "ROUND_ROBIN");
    let monitor = one(
        inv.all("healthmonitors")
            .iter()
            .filter(|m| m["pools"][0]["id"] == pool["id"])
            .collect(),
        "health monitor",
    );
    assert_eq!(s(pool, "healthmonitor_id"), s(monitor, "id"));
    assert_eq!(s(monitor, "type"), "TCP");
    let master_ips: BTreeSet<&str> = c["masters"]["ips"]
        .as_array()
        .expect("ips")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let members: Vec<(&str, i64, &str)> = pool["hke_members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            assert!(tags(m).contains(&tag.as_str()), "member {m}");
            (
                s(m, "address"),
                m["protocol_port"].as_i64().unwrap_or(0),
                s(m, "subnet_id"),
            )
        })
        .collect();
    let want_members: Vec<(&str, i64, &str)> = master_ips.iter().map(|ip| (*ip, port, s(subnet, "id"))).collect();
    assert_eq!(members, want_members, "one pool member per master");
    let fip = one(inv.tagged("floatingips", cluster), "floating IP");
    assert_eq!(s(fip, "description"), name_of("publicAddress/apiserver"));
    assert_eq!(s(fip, "floating_network_id"), s(public, "id"));
    assert_eq!(s(fip, "port_id"), s(lb, "vip_port_id"), "the floating IP is on the VIP");
    let address = s(fip, "floating_ip_address").to_string();
    let lb_state = &state["resources"]["loadBalancer/apiserver"];
    assert_eq!(s(lb_state, "id"), s(lb, "id"));
    assert_eq!(s(&lb_state["outputs"], "address"), address);
    let url = format!("https://{address}:{port}");
    let kubeconfigs: Vec<PathBuf> = std::fs::read_dir(out.join("kubeconfig"))
        .expect("kubeconfig dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(!kubeconfigs.is_empty());
    for k in &kubeconfigs {
        let kc = read_json(k);
        for cl in kc["clusters"].as_array().expect("clusters") {
            assert_eq!(s(&cl["cluster"], "server"), url, "{}", k.display());
        }
    }

    // The keypair: the model's SSH key.
    let keypair = one(inv.named("keypairs", &format!("hke-{cluster}")), "keypair");
    let key = s(&model["properties"]["linuxProfile"]["ssh"]["publicKeys"][0], "keyData");
    assert_eq!(s(keypair, "public_key").trim(), key.trim());

    // Machines: a port and a server each, as planned.
    let planned = machines(&plan);
    let servers = inv.tagged("servers", cluster);
    let ports: Vec<&Value> = inv.tagged("ports", cluster);
    assert_eq!(servers.len(), planned.len(), "servers");
    assert_eq!(ports.len(), planned.len(), "ports: one per machine and no other tagged");
    let mut masters_seen = BTreeSet::new();
    for (name, spec) in &planned {
        let server = one(servers.iter().copied().filter(|v| s(v, "name") == name).collect(), name);
        let port = one(ports.iter().copied().filter(|v| s(v, "name") == name).collect(), name);
        assert_eq!(s(server, "status"), "ACTIVE", "{name}");
        assert_eq!(s(port, "device_id"), s(server, "id"), "{name}: the server's port");
        assert!(s(port, "device_owner").starts_with("compute:"), "{name}");
        assert_eq!(port["security_groups"], serde_json::json!([s(sg, "id")]), "{name}");
        assert_eq!(s(&port["fixed_ips"][0], "subnet_id"), s(subnet, "id"), "{name}");
        let ip = s(&port["fixed_ips"][0], "ip_address");
        if let Some(planned_ip) = spec["private_ip"].as_str() {
            assert_eq!(ip, planned_ip, "{name}: fixed IP");
        }
        if name.starts_with("k8s-master-") {
            assert!(master_ips.contains(ip), "{name}: {ip} is a planned master address");
            masters_seen.insert(ip);
        }
        let image = spec["image"]["lookup"]["image"].as_str().expect("image");
        assert_eq!(s(server, "hke_image_name"), image, "{name}: Glance image");
        assert_eq!(s(server, "hke_flavor_name"), s(spec, "size"), "{name}: flavor");
        assert_eq!(s(server, "key_name"), format!("hke-{cluster}"), "{name}");
        has_tags(server, &[&tag], name);
        assert_eq!(s(&server["metadata"], "hke.io:cluster"), cluster, "{name}: metadata");
        assert_eq!(
            s(&server["metadata"], "hke.io:created"),
            s(&state, "created"),
            "{name}: metadata"
        );
        let machine_state = &state["resources"][format!("machine/{name}")];
        assert_eq!(s(machine_state, "id"), s(server, "id"), "{name}: state");
        // The boot file: exactly what `hke render` makes of this node with
        // the load balancer's address (behind `#ps1_sysnative` for
        // cloudbase-init on Windows).
        let b64 = server["OS-EXT-SRV-ATTR:user_data"].as_str().expect("user data");
        let sent = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
        let sent = String::from_utf8(sent).expect("plain text user data");
        let rendered = hke.output(&[
            "render",
            "-m",
            "out/apimodel.json",
            "--node",
            name,
            "--endpoint",
            &address,
        ]);
        assert!(rendered.status.success(), "{}", text(&rendered.stderr));
        let rendered = text(&rendered.stdout);
        let want = if spec["os"] == "windows" {
            format!("#ps1_sysnative\n{rendered}")
        } else {
            rendered
        };
        assert!(want.len() > 1000, "{name}: a real boot file");
        assert_eq!(sent.trim_end(), want.trim_end(), "{name}: user data");
    }
    assert_eq!(
        masters_seen, master_ips,
        "every planned master address is a master's port"
    );
    // Flavors and images straight from the model (the VM size is the
    // flavor's name; the image is the one providerProfile.images names for
    // the node's OS): so many servers of each.
    let props = &model["properties"];
    let images = &props["providerProfile"]["images"];
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut add = |size: &Value, image: &Value, count: &Value| {
        let key = (
            size.as_str().expect("vmSize").to_string(),
            image.as_str().expect("image").to_string(),
        );
        *want.entry(key).or_default() += count.as_u64().expect("count");
    };
    let m = &props["masterProfile"];
    add(&m["vmSize"], &images["linux"], &m["count"]);
    for p in props["agentPoolProfiles"].as_array().expect("pools") {
        let windows = s(p, "osType").eq_ignore_ascii_case("windows");
        let image = if windows {
            &images[format!("windows-{}", s(p, "windowsVersion"))]
        } else {
            &images["linux"]
        };
        add(&p["vmSize"], image, &p["count"]);
    }
    let mut have: BTreeMap<(String, String), u64> = BTreeMap::new();
    for v in &servers {
        let key = (s(v, "hke_flavor_name").to_string(), s(v, "hke_image_name").to_string());
        *have.entry(key).or_default() += 1;
    }
    assert_eq!(have, want, "servers by (flavor, image)");
    address
}

/// Every object of the cluster in the project, or none.
fn assert_gone(bed: &Bed, cluster: &str, names: &BTreeSet<String>) {
    let left = Inventory::read(bed).of_cluster(cluster, names);
    assert!(left.is_empty(), "{cluster}: left behind: {left:#?}");
}

/// No object of the cluster exists twice: by name, tagged or not.
fn assert_unique(inv: &Inventory, hke: &Hke) {
    let plan = hke.plan();
    let res = &plan["resources"];
    let name_of = |id: &str| s(&res[id], "name").to_string();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut count = |collection: &str, name: String| {
        counts.insert(format!("{collection} {name}"), inv.named(collection, &name).len());
    };
    count("networks", name_of("network"));
    count("routers", name_of("network"));
    count("subnets", name_of("subnet/nodes"));
    count("security_groups", name_of("firewall/nodes"));
    count("floatingips", name_of("publicAddress/apiserver"));
    count("loadbalancers", name_of("loadBalancer/apiserver"));
    count("listeners", name_of("loadBalancer/apiserver"));
    count("pools", name_of("loadBalancer/apiserver"));
    count("keypairs", format!("hke-{}", hke.cluster));
    for (name, _) in machines(&plan) {
        count("servers", name.clone());
        count("ports", name);
    }
    let wrong: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(wrong.is_empty(), "{}: not exactly one: {wrong:?}", hke.cluster);
}

/// Service logs where the bed's uWSGI servers log every request, and how
/// long each was.
fn log_sizes(bed: &Bed) -> BTreeMap<String, u64> {
    [
        "neutron-api",
        "nova-api",
        "octavia-api",
        "glance-api",
        "placement-api",
        "keystone",
    ]
    .iter()
    .map(|s| {
        let p = bed.dir().join(format!("log/{s}.log"));
        (s.to_string(), std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0))
    })
    .collect()
}

/// The POST/PUT/PATCH/DELETE requests the services logged since `before`
/// (a Keystone token is a POST too: left out).
fn writes_since(bed: &Bed, before: &BTreeMap<String, u64>) -> Vec<String> {
    let mut out = Vec::new();
    for (service, from) in before {
        let all = std::fs::read(bed.dir().join(format!("log/{service}.log"))).expect("log");
        let new = String::from_utf8_lossy(&all[(*from as usize).min(all.len())..]).into_owned();
        for line in new.lines() {
            let Some(req) = line.split("] ").nth(1) else { continue };
            let write = ["POST ", "PUT ", "PATCH ", "DELETE "]
                .iter()
                .any(|m| req.starts_with(m));
            if write && !req.starts_with("POST /v3/auth/tokens") {
                out.push(format!("{service}: {req}"));
            }
        }
    }
    out
}

/// Start a deploy, follow its JSON events, and SIGKILL it `delay` after
/// `when` holds for the events so far. Fails if the deploy ended first.
fn deploy_killed(hke: &Hke, when: impl Fn(&[Value]) -> bool, delay: Duration) -> Vec<Value> {
    let args = hke.deploy_args(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = tempfile::tempfile().expect("stderr file");
    let mut child = hke
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(stderr.try_clone().expect("stderr file"))
        .spawn()
        .expect("hke starts");
    // Events arrive on a channel, so a deploy that stops printing cannot
    // hang the test.
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    let deadline = Instant::now() + COMMAND_LIMIT;
    let mut events = Vec::new();
    // Until the deploy ends (or stops printing for too long).
    while let Ok(v) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        events.push(v);
        if when(&events) {
            break;
        }
    }
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    let _ = reader.join();
    // What it printed before it died.
    events.extend(rx.try_iter());
    if status.signal() != Some(9) {
        use std::io::{Read, Seek};
        let mut said = String::new();
        let mut f = stderr;
        let _ = f.rewind().and_then(|()| f.read_to_string(&mut said));
        let end = events.iter().find(|e| e["event"] == "end");
        panic!(
            "{}: the deploy ended before it was killed ({status:?}): {end:?}\n{said}",
            hke.cluster
        );
    }
    let done: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "done")
        .filter_map(|e| e["id"].as_str())
        .collect();
    note(format!("{}: killed ({status:?}) after {done:?}", hke.cluster));
    events
}

fn started(events: &[Value], kind: &str) -> usize {
    events
        .iter()
        .filter(|e| e["event"] == "start" && e["kind"] == kind)
        .count()
}

/// Scenario 1: deploy, check, deploy again (no writes), logs. The cluster
/// is left up for the janitor's scenario.
fn deploy_check_redeploy_logs<'a>(bed: &'a Bed, suffix: &str) -> Hke<'a> {
    let hke = Hke::new(bed, format!("osa-{suffix}"));
    let first = hke.deploy(&[]);
    let machines_planned = machines(&hke.plan()).len();
    assert_eq!(machines_planned, 5, "1 master, 2 Linux and 2 Windows nodes");
    assert_eq!(
        first["summary"]["created"].as_u64(),
        Some(7 + machines_planned as u64),
        "{first}"
    );
    let inv = Inventory::read(bed);
    let address = check_cluster(&hke, &inv);
    note(format!("{}: every object checked; API at {address}", hke.cluster));

    // Deploying again writes nothing: the services log every request, and
    // no POST, PUT, PATCH or DELETE (but Keystone's token) comes from it;
    // every object keeps its id, revision and update time.
    let before = inv.fingerprint(&hke.cluster);
    let sizes = log_sizes(bed);
    let again = hke.deploy(&[]);
    assert_eq!(again["summary"]["created"], 0, "{again}");
    let writes = writes_since(bed, &sizes);
    assert!(writes.is_empty(), "a second deploy wrote: {writes:#?}");
    let after = Inventory::read(bed).fingerprint(&hke.cluster);
    assert_eq!(before, after, "a second deploy changed objects");
    assert!(before.len() >= 14, "{before:?}");

    // Every node's console, through Nova.
    hke.ok(&["logs", "--cluster", &hke.cluster, "-o", "out", "--to", "logs"]);
    for (name, _) in machines(&hke.plan()) {
        let log = hke.dir().join(format!("logs/{name}/console.log"));
        let log = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(log.contains(FAKE_CONSOLE), "{name}: {log}");
    }
    hke
}

/// Scenario 2: the janitor deletes the cluster whose TTL is up and keeps
/// the others: `kept_ttl` (a TTL not yet up) and `kept_none` (no TTL).
fn janitor(bed: &Bed, suffix: &str, kept_ttl: &Hke, kept_none: &Hke) {
    let doomed = Hke::new(bed, format!("osj-{suffix}"));
    doomed.deploy(&[&SMALL[..], &["--ttl", "1s"]].concat());
    check_cluster(&doomed, &Inventory::read(bed));
    std::thread::sleep(Duration::from_secs(2));
    let names = doomed.names();
    let keep = |h: &Hke| (h.cluster.clone(), Inventory::read(bed).fingerprint(&h.cluster));
    let kept_before = [keep(kept_ttl), keep(kept_none)];

    let report = |args: &[&str]| -> Value {
        let mut all = vec!["--output", "json", "janitor", "--cloud", "openstack"];
        all.extend_from_slice(args);
        let out = doomed.ok(&all);
        serde_json::from_slice(&out.stdout).expect("janitor report")
    };
    let clusters = |r: &Value, key: &str| -> BTreeMap<String, String> {
        r[key]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| (s(c, "cluster").to_string(), s(c, "reason").to_string()))
            .collect()
    };
    let dry = report(&["--dry-run"]);
    assert_eq!(
        clusters(&dry, "expired").into_keys().collect::<Vec<_>>(),
        vec![doomed.cluster.clone()],
        "{dry}"
    );
    let kept = clusters(&dry, "kept");
    assert_eq!(
        kept.get(&kept_ttl.cluster).map(String::as_str),
        Some("not yet expired"),
        "{dry}"
    );
    assert!(
        kept.get(&kept_none.cluster)
            .is_some_and(|r| r.contains("no hke.io/ttl")),
        "{dry}"
    );
    // A dry run deletes nothing.
    assert!(!Inventory::read(bed).of_cluster(&doomed.cluster, &names).is_empty());

    let real = report(&[]);
    assert_eq!(real["deleted"], serde_json::json!([doomed.cluster]), "{real}");
    assert_eq!(real["failed"], serde_json::json!([]), "{real}");
    assert_gone(bed, &doomed.cluster, &names);
    let kept_after = [keep(kept_ttl), keep(kept_none)];
    assert_eq!(kept_before, kept_after, "the janitor touched a cluster it kept");
}

/// Scenario 5: a deploy killed while it makes the network, again while
/// Octavia builds the load balancer, and again while servers build, resumes
/// to exactly the plan.
fn killed_and_resumed(bed: &Bed, suffix: &str) {
    let hke = Hke::new(bed, format!("osk-{suffix}"));
    // The network is being made (its router next).
    deploy_killed(&hke, |e| started(e, "network") == 1, Duration::from_millis(300));
    // The load balancer is posted and still PENDING_CREATE.
    deploy_killed(&hke, |e| started(e, "loadBalancer") == 1, Duration::from_millis(1500));
    let journal = hke.out().join("state.journal");
    assert!(journal.exists(), "the killed deploy journaled its intents");
    let inv = Inventory::read(bed);
    assert!(
        !inv.tagged("loadbalancers", &hke.cluster).is_empty() && !inv.tagged("networks", &hke.cluster).is_empty(),
        "the network and the load balancer exist after the first kill"
    );
    // Ports are made and servers posted.
    deploy_killed(&hke, |e| started(e, "machine") >= 2, Duration::from_millis(1200));
    let inv = Inventory::read(bed);
    let (ports, servers) = (
        inv.tagged("ports", &hke.cluster).len(),
        inv.tagged("servers", &hke.cluster).len(),
    );
    note(format!(
        "{}: after the last kill: {ports} port(s), {servers} server(s)",
        hke.cluster
    ));
    assert!(ports > 0, "machines were being made when the deploy was killed");
    let resumed = hke.deploy(&[]);
    note(format!("{}: resumed: {}", hke.cluster, resumed["summary"]));
    let inv = Inventory::read(bed);
    check_cluster(&hke, &inv);
    assert_unique(&inv, &hke);
    let names = hke.names();
    hke.teardown(&["-m", &root().join(MODEL).to_string_lossy(), "-o", "out"]);
    assert_gone(bed, &hke.cluster, &names);
}

#[test]
fn a_cluster_on_a_real_openstack() {
    let started_at = Instant::now();
    let bed = Bed::start();
    let suffix = run_suffix();
    let step = |what: &str, t: Instant| note(format!("== {what}: {:.1?}", t.elapsed()));

    let t = Instant::now();
    let a = deploy_check_redeploy_logs(&bed, &suffix);
    step("1. deploy, check, redeploy, logs", t);

    // The state-lost cluster is up during the janitor's run, with a TTL
    // that is not up.
    let t = Instant::now();
    let lost = Hke::new(&bed, format!("oss-{suffix}"));
    // Its API server is open to one range only.
    lost.deploy(
        &[
            &SMALL[..],
            &[
                "--ttl",
                "1h",
                "--set",
                "properties.masterProfile.HTTPSourceAddressPrefix=198.51.100.0/24",
            ],
        ]
        .concat(),
    );
    check_cluster(&lost, &Inventory::read(&bed));
    janitor(&bed, &suffix, &lost, &a);
    step("2. janitor", t);

    let t = Instant::now();
    let names = a.names();
    a.teardown(&["-m", &root().join(MODEL).to_string_lossy(), "-o", "out"]);
    assert_gone(&bed, &a.cluster, &names);
    step("3. teardown -m", t);

    let t = Instant::now();
    let names = lost.names();
    std::fs::remove_dir_all(lost.out()).expect("rm -rf out");
    let empty = lost.dir().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    lost.teardown(&[
        "--cluster",
        &lost.cluster,
        "--cloud",
        "openstack",
        "-o",
        &empty.to_string_lossy(),
    ]);
    assert_gone(&bed, &lost.cluster, &names);
    step("4. teardown with the state lost", t);

    let t = Instant::now();
    killed_and_resumed(&bed, &suffix);
    step("5. killed three times, resumed, torn down", t);

    // Nothing of any cluster is left in the project.
    let inv = Inventory::read(&bed);
    let mut left = Vec::new();
    for c in inventory::TAGGED.iter().chain(&["servers"]) {
        for o in inv.all(c) {
            if tags(o).iter().any(|t| t.starts_with("hke.io:")) {
                left.push(format!("{c} {} {}", s(o, "name"), s(o, "id")));
            }
        }
    }
    for c in ["servers", "keypairs", "loadbalancers", "floatingips"] {
        for o in inv.all(c) {
            left.push(format!("{c} {} {}", s(o, "name"), s(o, "id")));
        }
    }
    left.sort();
    left.dedup();
    assert!(left.is_empty(), "left in the project: {left:#?}");
    note(format!("all scenarios passed in {:.1?}", started_at.elapsed()));
}
