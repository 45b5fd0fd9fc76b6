//! AWS end to end: `hke deploy` / `hke teardown` against moto's EC2 and ELBv2
//! server, checked through the AWS SDK.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use hke_provider_aws::aws_sdk_ec2 as ec2;
use hke_provider_aws::aws_sdk_elasticloadbalancingv2 as elbv2;
use serde_json::Value;

use crate::harness::{cidr_contains, deploy_args, kill_after, root, summary, text};
use crate::moto::Moto;

const MODEL: &str = "examples/windows-aws.json";
const REGION: &str = "us-west-2";
const CLUSTER: &str = "hke-windows-aws";
/// Several masters behind a network load balancer, and kubenet routes.
const HA_KUBENET: [&str; 4] = [
    "--set",
    "properties.masterProfile.count=3",
    "--set",
    "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
];

struct Sdk {
    rt: tokio::runtime::Runtime,
    ec2: ec2::Client,
    elb: elbv2::Client,
}

fn sdk(moto: &Moto) -> Sdk {
    sdk_at(&moto.url())
}

fn sdk_at(url: &str) -> Sdk {
    let creds = ec2::config::Credentials::new("testing", "testing", None, None, "e2e");
    let ec2 = ec2::Client::from_conf(
        ec2::Config::builder()
            .behavior_version(ec2::config::BehaviorVersion::latest())
            .region(ec2::config::Region::new(REGION))
            .endpoint_url(url)
            .credentials_provider(creds.clone())
            .http_client(hke_provider_aws::http_client())
            .build(),
    );
    let elb = elbv2::Client::from_conf(
        elbv2::Config::builder()
            .behavior_version(elbv2::config::BehaviorVersion::latest())
            .region(elbv2::config::Region::new(REGION))
            .endpoint_url(url)
            .credentials_provider(creds)
            .http_client(hke_provider_aws::http_client())
            .build(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    Sdk { rt, ec2, elb }
}

fn cluster_filter_of(cluster: &str) -> ec2::types::Filter {
    ec2::types::Filter::builder()
        .name("tag:hke.io/cluster")
        .values(cluster)
        .build()
}

/// Everything in the cloud tagged with the cluster.
#[derive(Debug, Default)]
struct Inventory {
    vpcs: Vec<ec2::types::Vpc>,
    subnets: Vec<ec2::types::Subnet>,
    security_groups: Vec<ec2::types::SecurityGroup>,
    gateways: Vec<ec2::types::InternetGateway>,
    route_tables: Vec<ec2::types::RouteTable>,
    addresses: Vec<ec2::types::Address>,
    key_pairs: Vec<ec2::types::KeyPairInfo>,
    interfaces: Vec<ec2::types::NetworkInterface>,
    volumes: Vec<ec2::types::Volume>,
    instances: Vec<ec2::types::Instance>,
    load_balancers: Vec<String>,
    target_groups: Vec<String>,
}

impl Inventory {
    fn summary(&self) -> String {
        format!(
            "vpcs {} subnets {} sgs {} igws {} rtbs {} eips {} keys {} enis {} volumes {} instances {} lbs {} tgs {}",
            self.vpcs.len(),
            self.subnets.len(),
            self.security_groups.len(),
            self.gateways.len(),
            self.route_tables.len(),
            self.addresses.len(),
            self.key_pairs.len(),
            self.interfaces.len(),
            self.volumes.len(),
            self.instances.len(),
            self.load_balancers.len(),
            self.target_groups.len()
        )
    }

    fn is_empty(&self) -> bool {
        self.summary()
            .split(' ')
            .filter_map(|w| w.parse::<usize>().ok())
            .all(|n| n == 0)
    }

    fn instance(&self, name: &str) -> Vec<&ec2::types::Instance> {
        self.instances
            .iter()
            .filter(|i| {
                i.tags()
                    .iter()
                    .any(|t| t.key() == Some("Name") && t.value() == Some(name))
            })
            .collect()
    }
}

fn inventory(s: &Sdk) -> Inventory {
    inventory_of(s, CLUSTER)
}

fn inventory_of(s: &Sdk, cluster: &str) -> Inventory {
    let cluster_filter = || cluster_filter_of(cluster);
    s.rt.block_on(async {
        let e = &s.ec2;
        let instances = e
            .describe_instances()
            .filters(cluster_filter())
            .filters(
                ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .values("stopping")
                    .values("stopped")
                    .build(),
            )
            .send()
            .await
            .expect("instances");
        let mut inv = Inventory {
            vpcs: e
                .describe_vpcs()
                .filters(cluster_filter())
                .send()
                .await
                .expect("vpcs")
                .vpcs()
                .to_vec(),
            subnets: e
                .describe_subnets()
                .filters(cluster_filter())
                .send()
                .await
                .expect("subnets")
                .subnets()
                .to_vec(),
            security_groups: e
                .describe_security_groups()
                .filters(cluster_filter())
                .send()
                .await
                .expect("sgs")
                .security_groups()
                .to_vec(),
            gateways: e
                .describe_internet_gateways()
                .filters(cluster_filter())
                .send()
                .await
                .expect("igws")
                .internet_gateways()
                .to_vec(),
            route_tables: e
                .describe_route_tables()
                .filters(cluster_filter())
                .send()
                .await
                .expect("rtbs")
                .route_tables()
                .to_vec(),
            addresses: e
                .describe_addresses()
                .filters(cluster_filter())
                .send()
                .await
                .expect("eips")
                .addresses()
                .to_vec(),
            key_pairs: e
                .describe_key_pairs()
                .filters(cluster_filter())
                .send()
                .await
                .expect("keys")
                .key_pairs()
                .to_vec(),
            interfaces: e
                .describe_network_interfaces()
                .filters(cluster_filter())
                .send()
                .await
                .expect("enis")
                .network_interfaces()
                .to_vec(),
            volumes: e
                .describe_volumes()
                .filters(cluster_filter())
                .send()
                .await
                .expect("volumes")
                .volumes()
                .to_vec(),
            instances: instances
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .cloned()
                .collect(),
            ..Default::default()
        };
        let lbs = s.elb.describe_load_balancers().send().await.expect("lbs");
        let tgs = s.elb.describe_target_groups().send().await.expect("tgs");
        let arns: Vec<String> = lbs
            .load_balancers()
            .iter()
            .filter_map(|l| l.load_balancer_arn().map(str::to_string))
            .chain(
                tgs.target_groups()
                    .iter()
                    .filter_map(|t| t.target_group_arn().map(str::to_string)),
            )
            .collect();
        if !arns.is_empty() {
            let tags = s
                .elb
                .describe_tags()
                .set_resource_arns(Some(arns))
                .send()
                .await
                .expect("tags");
            for d in tags.tag_descriptions() {
                let ours = d
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some("hke.io/cluster") && t.value() == Some(cluster));
                let arn = d.resource_arn().unwrap_or_default().to_string();
                match (ours, arn.contains(":targetgroup/")) {
                    (true, true) => inv.target_groups.push(arn),
                    (true, false) => inv.load_balancers.push(arn),
                    _ => {}
                }
            }
        }
        inv
    })
}

fn deploy(moto: &Moto, dir: &Path, extra: &[&str]) -> Value {
    let args = deploy_args(MODEL, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = moto.hke(dir, &args);
    assert!(
        out.status.success(),
        "deploy failed:\n{}\n{}\nmoto:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        moto.log()
    );
    summary(&text(&out.stdout))
}

fn teardown(moto: &Moto, dir: &Path, args: &[&str]) {
    let mut all = vec!["teardown", "--yes"];
    all.extend_from_slice(args);
    let out = moto.hke(dir, &all);
    assert!(
        out.status.success(),
        "teardown failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The plan of the deployed cluster (from its own apimodel.json).
fn plan(moto: &Moto, dir: &Path) -> Value {
    let out = moto.hke(dir, &["--output", "json", "plan", "-m", "out/apimodel.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("plan JSON")
}

fn resources_of<'a>(plan: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    plan["resources"]
        .as_object()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["spec"]["kind"] == kind)
        .collect()
}

/// The newest test AMI whose name matches `pattern` (a prefix and `*`).
fn expected_ami(pattern: &str) -> String {
    let list: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(root().join("e2e/moto-amis.json")).expect("amis")).expect("json");
    let prefix = pattern.trim_end_matches('*');
    list.iter()
        .filter(|a| a["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .max_by_key(|a| a["name"].as_str().map(str::to_string))
        .and_then(|a| a["ami_id"].as_str())
        .unwrap_or_else(|| panic!("no test AMI matches {pattern}"))
        .to_string()
}

fn state_outputs(dir: &Path, id: &str) -> Value {
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/state.json")).expect("state")).expect("json");
    s["resources"][id]["outputs"].clone()
}

/// Everything the plan says, checked in the cloud.
fn check_cluster(moto: &Moto, s: &Sdk, dir: &Path, nlb: bool, kubenet: bool) {
    let plan = plan(moto, dir);
    let inv = inventory(s);
    // Network: one VPC of the node range, DNS hostnames on.
    assert_eq!(inv.vpcs.len(), 1, "{}", inv.summary());
    let vpc = &inv.vpcs[0];
    let vpc_id = vpc.vpc_id().expect("vpc id");
    let node_cidr = plan["resources"]["network"]["spec"]["cidr"].as_str().expect("cidr");
    assert_eq!(vpc.cidr_block(), Some(node_cidr));
    let dns = s.rt.block_on(
        s.ec2
            .describe_vpc_attribute()
            .vpc_id(vpc_id)
            .attribute(ec2::types::VpcAttributeName::EnableDnsHostnames)
            .send(),
    );
    assert_eq!(
        dns.expect("attribute").enable_dns_hostnames().and_then(|v| v.value()),
        Some(true)
    );
    // Gateway attached, default route through it.
    assert_eq!(inv.gateways.len(), 1);
    let igw = inv.gateways[0].internet_gateway_id().expect("igw");
    assert!(inv.gateways[0].attachments().iter().any(|a| a.vpc_id() == Some(vpc_id)));
    assert_eq!(inv.route_tables.len(), 1);
    let rt = &inv.route_tables[0];
    assert!(rt
        .routes()
        .iter()
        .any(|r| r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id() == Some(igw)));
    // Subnets: the node range in quarters, over three zones, public, routed.
    let mut cidrs: Vec<&str> = inv.subnets.iter().filter_map(|s| s.cidr_block()).collect();
    cidrs.sort();
    let base = node_cidr.split('.').take(2).collect::<Vec<_>>().join(".");
    assert_eq!(
        cidrs,
        vec![
            format!("{base}.0.0/18"),
            format!("{base}.128.0/18"),
            format!("{base}.192.0/18"),
            format!("{base}.64.0/18")
        ]
    );
    let zones: BTreeSet<&str> = inv.subnets.iter().filter_map(|s| s.availability_zone()).collect();
    assert_eq!(zones.len(), 3, "{zones:?}");
    for sn in &inv.subnets {
        assert_eq!(sn.map_public_ip_on_launch(), Some(true));
        assert!(
            rt.associations().iter().any(|a| a.subnet_id() == sn.subnet_id()),
            "{:?} not associated with the route table",
            sn.subnet_id()
        );
    }
    // Security group: every rule of the plan, per source.
    assert_eq!(inv.security_groups.len(), 1);
    let sg = &inv.security_groups[0];
    let have: BTreeSet<(String, Option<i32>, Option<i32>, String)> = sg
        .ip_permissions()
        .iter()
        .flat_map(|p| {
            p.ip_ranges().iter().map(move |r| {
                (
                    p.ip_protocol().unwrap_or_default().to_string(),
                    p.from_port(),
                    p.to_port(),
                    r.cidr_ip().unwrap_or_default().to_string(),
                )
            })
        })
        .collect();
    for rule in plan["resources"]["firewall/nodes"]["spec"]["rules"]
        .as_array()
        .expect("rules")
    {
        for src in rule["sources"].as_array().expect("sources") {
            let src = src.as_str().expect("source").to_string();
            let want = match rule["protocol"].as_str() {
                Some("all") => ("-1".to_string(), None, None, src),
                Some(p) => {
                    let port: i32 = rule["ports"].as_str().expect("ports").parse().expect("one port");
                    (p.to_string(), Some(port), Some(port), src)
                }
                None => panic!("rule without protocol"),
            };
            assert!(have.contains(&want), "missing {want:?} in {have:?}");
        }
    }
    // Machines: exactly one instance per planned machine, as planned.
    let machines = resources_of(&plan, "machine");
    assert_eq!(inv.instances.len(), machines.len(), "{}", inv.summary());
    let lb_out = state_outputs(dir, "loadBalancer/apiserver");
    let endpoint = lb_out["dnsName"].as_str().expect("endpoint").to_string();
    // Machines get the name that resolves inside the VPC.
    let internal = lb_out["internalDnsName"]
        .as_str()
        .expect("internal endpoint")
        .to_string();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (_, m) in &machines {
        let name = m["name"].as_str().expect("name");
        let found = inv.instance(name);
        assert_eq!(found.len(), 1, "{name}: {} instances", found.len());
        let i = found[0];
        let id = i.instance_id().expect("id").to_string();
        let spec = &m["spec"];
        assert_eq!(i.instance_type().map(|t| t.as_str()), spec["size"].as_str(), "{name}");
        let pattern = spec["image"]["lookup"]["amiNamePattern"].as_str().expect("pattern");
        assert_eq!(i.image_id(), Some(expected_ami(pattern).as_str()), "{name}: {pattern}");
        if let Some(ip) = spec["private_ip"].as_str() {
            assert_eq!(i.private_ip_address(), Some(ip), "{name}");
        }
        assert_eq!(i.security_groups().first().and_then(|g| g.group_id()), sg.group_id());
        let tags: BTreeMap<&str, &str> = i.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))).collect();
        assert_eq!(tags.get("hke.io/cluster"), Some(&CLUSTER), "{name}");
        assert!(tags.get("hke.io/created").is_some_and(|c| c.ends_with('Z')), "{tags:?}");
        if kubenet {
            assert_eq!(i.source_dest_check(), Some(false), "{name}: kubenet routes need it off");
        }
        // The root volume has the model's size.
        let vols: Vec<i32> = inv
            .volumes
            .iter()
            .filter(|v| v.attachments().iter().any(|a| a.instance_id() == Some(id.as_str())))
            .filter_map(|v| v.size())
            .collect();
        assert_eq!(vols, vec![spec["disk_gb"].as_i64().expect("disk") as i32], "{name}");
        // User data: exactly the bootstrap `hke render` gives for this node.
        let ud =
            s.rt.block_on(
                s.ec2
                    .describe_instance_attribute()
                    .instance_id(&id)
                    .attribute(ec2::types::InstanceAttributeName::UserData)
                    .send(),
            )
            .expect("user data");
        let raw = ud.user_data().and_then(|v| v.value()).expect("user data value");
        let sent = hke_provider_aws::userdata::decode(raw).expect("decodable");
        let rendered = moto.hke(
            dir,
            &[
                "render",
                "-m",
                "out/apimodel.json",
                "--node",
                name,
                "--endpoint",
                &internal,
            ],
        );
        assert!(rendered.status.success(), "{}", text(&rendered.stderr));
        assert_eq!(sent.trim_end(), text(&rendered.stdout).trim_end(), "{name}: user data");
        if spec["os"] == "windows" {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD.decode(raw).expect("b64");
            assert!(
                bytes.starts_with(b"<powershell>"),
                "{name}: EC2Launch needs <powershell>"
            );
        }
        ids.insert(m["name"].as_str().expect("name").to_string(), id);
    }
    // The API endpoint.
    let masters: BTreeSet<String> = machines
        .iter()
        .filter(|(lid, _)| lid.contains("master"))
        .map(|(_, m)| ids[m["name"].as_str().expect("name")].clone())
        .collect();
    if nlb {
        // An internet-facing load balancer for clients, an internal one for
        // the machines.
        assert_eq!(inv.load_balancers.len(), 2, "{}", inv.summary());
        assert!(inv.addresses.is_empty(), "no Elastic IP with a load balancer");
        let master_ips: BTreeSet<String> = inv
            .instances
            .iter()
            .filter(|i| masters.contains(i.instance_id().unwrap_or_default()))
            .filter_map(|i| i.private_ip_address().map(str::to_string))
            .collect();
        let mut groups = Vec::new();
        for arn in &inv.load_balancers {
            let lb =
                s.rt.block_on(s.elb.describe_load_balancers().load_balancer_arns(arn).send())
                    .expect("lb");
            let lb = &lb.load_balancers()[0];
            assert_eq!(lb.r#type(), Some(&elbv2::types::LoadBalancerTypeEnum::Network));
            let internal_lb = lb.scheme() == Some(&elbv2::types::LoadBalancerSchemeEnum::Internal);
            let want_dns = if internal_lb { &internal } else { &endpoint };
            assert_eq!(lb.dns_name(), Some(want_dns.as_str()), "{lb:?}");
            let listeners =
                s.rt.block_on(s.elb.describe_listeners().load_balancer_arn(arn).send())
                    .expect("listeners");
            assert_eq!(listeners.listeners().len(), 1);
            let l = &listeners.listeners()[0];
            assert_eq!(l.port(), Some(6443));
            assert_eq!(l.protocol(), Some(&elbv2::types::ProtocolEnum::Tcp));
            let tg = l.default_actions()[0].target_group_arn().expect("forwards");
            groups.push(tg.to_string());
            let health =
                s.rt.block_on(s.elb.describe_target_health().target_group_arn(tg).send())
                    .expect("targets");
            let targets: BTreeSet<String> = health
                .target_health_descriptions()
                .iter()
                .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
                .collect();
            // The internal group's targets are the masters' addresses: IP
            // targets keep no client address, so a master routed to itself
            // does not hairpin (ELBv2 docs, load-balancer-troubleshooting.html#loopback-timeout).
            assert_eq!(&targets, if internal_lb { &master_ips } else { &masters }, "{tg}");
            // Cross-zone load balancing on: NLBs have it off by default
            // (ELBv2 docs, network/target-group-cross-zone.html), and each
            // zone's node would reach only that zone's master.
            let attrs =
                s.rt.block_on(s.elb.describe_load_balancer_attributes().load_balancer_arn(arn).send())
                    .expect("attributes");
            let cross = attrs
                .attributes()
                .iter()
                .find(|a| a.key() == Some("load_balancing.cross_zone.enabled"))
                .and_then(|a| a.value());
            assert_eq!(cross, Some("true"), "{attrs:?}");
        }
        groups.sort();
        let mut have = inv.target_groups.clone();
        have.sort();
        assert_eq!(have, groups);
        // One master per availability zone.
        let zones: BTreeSet<&str> = inv
            .instances
            .iter()
            .filter(|i| masters.contains(i.instance_id().unwrap_or_default()))
            .filter_map(|i| i.placement().and_then(|p| p.availability_zone()))
            .collect();
        assert_eq!(zones.len(), masters.len().min(3), "masters in zones {zones:?}");
    } else {
        assert!(inv.load_balancers.is_empty());
        assert_eq!(inv.addresses.len(), 1);
        let a = &inv.addresses[0];
        assert_eq!(lb_out["address"].as_str(), a.public_ip());
        // The Elastic IP's public DNS name: the address outside the VPC, the
        // master's private address inside (EC2 `PublicIpDnsNameOptions`).
        let ip = a.public_ip().expect("ip");
        assert_eq!(endpoint, hke_provider_aws::public_dns_name(ip, REGION));
        assert_eq!(internal, endpoint);
        assert_eq!(
            a.instance_id().map(str::to_string),
            masters.iter().next().cloned(),
            "the Elastic IP is on the master"
        );
    }
    // kubenet: one route per node to its pod range, through that node.
    let routes = resources_of(&plan, "route");
    assert_eq!(routes.is_empty(), !kubenet);
    for (_, r) in routes {
        let dest = r["spec"]["destination"].as_str().expect("destination");
        let hop = r["spec"]["next_hop"]["ref"]["resource"].as_str().expect("hop");
        let node = hop.trim_start_matches("machine/");
        let route = rt
            .routes()
            .iter()
            .find(|x| x.destination_cidr_block() == Some(dest))
            .unwrap_or_else(|| panic!("no route to {dest}"));
        assert_eq!(route.instance_id(), Some(ids[node].as_str()), "{dest}");
    }
    // The key pair carries the model's SSH key.
    assert_eq!(inv.key_pairs.len(), 1);
    assert_eq!(inv.key_pairs[0].key_name(), Some(CLUSTER));
}

#[test]
fn deploy_check_and_tear_down_one_master() {
    let moto = Moto::start();
    let s = sdk(&moto);
    let dir = tempfile::tempdir().expect("tmp");
    // One call at a time while recording: moto's recorder tears lines under
    // concurrent large requests (see `Moto::recorded_actions`).
    moto.start_recording();
    let first = deploy(&moto, dir.path(), &["--parallelism", "1"]);
    let actions = moto.recorded_actions();
    assert_eq!(first["summary"]["created"], 12, "{first}");
    // The recorder sees the calls (so an empty recording below means none).
    assert_eq!(
        actions.iter().filter(|a| *a == "RunInstances").count(),
        5,
        "{actions:?}"
    );
    check_cluster(&moto, &s, dir.path(), false, false);

    // Deploying again changes nothing and creates nothing.
    moto.start_recording();
    let again = deploy(&moto, dir.path(), &["--parallelism", "1"]);
    let actions = moto.recorded_actions();
    assert_eq!(again["summary"]["created"], 0, "{again}");
    let writes: Vec<&String> = actions.iter().filter(|a| !a.starts_with("Describe")).collect();
    assert!(writes.is_empty(), "a second deploy called {writes:?}");
    check_cluster(&moto, &s, dir.path(), false, false);

    teardown(&moto, dir.path(), &["-o", "out", "--cluster", CLUSTER]);
    let left = inventory(&s);
    assert!(left.is_empty(), "left behind: {}", left.summary());
}

#[test]
fn deploy_check_and_tear_down_three_masters_with_kubenet() {
    let moto = Moto::start();
    let s = sdk(&moto);
    let dir = tempfile::tempdir().expect("tmp");
    let first = deploy(&moto, dir.path(), &HA_KUBENET);
    assert!(first["summary"]["created"].as_u64().expect("created") > 20, "{first}");
    check_cluster(&moto, &s, dir.path(), true, true);
    teardown(&moto, dir.path(), &["-o", "out", "--cluster", CLUSTER]);
    let left = inventory(&s);
    assert!(left.is_empty(), "left behind: {}", left.summary());
}

/// Start a deploy and SIGKILL it once `after` resources are done.
fn deploy_and_kill(moto: &Moto, dir: &Path, extra: &[&str], after: usize) {
    let mut args = vec!["--parallelism", "3"];
    args.extend_from_slice(extra);
    let args = deploy_args(MODEL, &args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kill_after(moto.hke_command(dir, &args), after);
}

#[test]
fn a_deploy_killed_part_way_resumes_to_exactly_the_plan() {
    let moto = Moto::start();
    let s = sdk(&moto);
    for after in [2, 6, 9, 14, 19] {
        moto.reset();
        let dir = tempfile::tempdir().expect("tmp");
        deploy_and_kill(&moto, dir.path(), &HA_KUBENET, after);
        let resumed = deploy(&moto, dir.path(), &HA_KUBENET);
        assert_eq!(resumed["summary"]["failed"], 0, "after {after}: {resumed}");
        // Exactly the plan: one of everything, nothing twice.
        check_cluster(&moto, &s, dir.path(), true, true);
    }
}

#[test]
fn teardown_after_a_kill_mid_deploy_leaves_nothing() {
    let moto = Moto::start();
    let s = sdk(&moto);
    for after in [3, 8, 16] {
        moto.reset();
        let dir = tempfile::tempdir().expect("tmp");
        deploy_and_kill(&moto, dir.path(), &HA_KUBENET, after);
        teardown(&moto, dir.path(), &["-o", "out", "--cluster", CLUSTER]);
        let left = inventory(&s);
        assert!(left.is_empty(), "after {after}: left behind: {}", left.summary());
    }
}

#[test]
fn the_tag_sweep_finds_what_the_state_never_recorded() {
    let moto = Moto::start();
    let s = sdk(&moto);
    let dir = tempfile::tempdir().expect("tmp");
    deploy(&moto, dir.path(), &[]);
    // Things whose ids never reached the state: an extra instance and a
    // detached network interface, tagged as the cluster's.
    let inv = inventory(&s);
    let subnet = inv.subnets[0].subnet_id().expect("subnet").to_string();
    let tag = ec2::types::Tag::builder().key("hke.io/cluster").value(CLUSTER).build();
    s.rt.block_on(async {
        s.ec2
            .run_instances()
            .image_id(expected_ami(
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*",
            ))
            .min_count(1)
            .max_count(1)
            .subnet_id(&subnet)
            .tag_specifications(
                ec2::types::TagSpecification::builder()
                    .resource_type(ec2::types::ResourceType::Instance)
                    .tags(tag.clone())
                    .tags(ec2::types::Tag::builder().key("Name").value("stray").build())
                    .build(),
            )
            .send()
            .await
            .expect("stray instance");
        s.ec2
            .create_network_interface()
            .subnet_id(&subnet)
            .tag_specifications(
                ec2::types::TagSpecification::builder()
                    .resource_type(ec2::types::ResourceType::NetworkInterface)
                    .tags(tag)
                    .build(),
            )
            .send()
            .await
            .expect("stray interface");
    });
    let before = inventory(&s);
    assert_eq!(before.instances.len(), 6);
    assert_eq!(before.interfaces.len(), 1);
    // The whole output directory is gone: teardown by name, cloud and region.
    std::fs::remove_dir_all(dir.path().join("out")).expect("rm");
    teardown(
        &moto,
        dir.path(),
        &["--cluster", CLUSTER, "--cloud", "aws", "--region", REGION, "-o", "out"],
    );
    let left = inventory(&s);
    assert!(left.is_empty(), "left behind: {}", left.summary());
}

#[test]
fn a_wrong_endpoint_fails_clearly_without_touching_anything() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tmp");
    // Nothing listens on port 9 of loopback.
    let out = moto.hke(
        dir.path(),
        &[
            "deploy",
            "-m",
            root().join(MODEL).to_str().expect("utf-8"),
            "-o",
            "out",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("cannot reach the AWS endpoint"), "{err}");
    assert!(!err.contains("testing"), "credentials must not be printed: {err}");
}

#[test]
fn a_large_pool_runs_as_one_machine_group_spread_over_zones() {
    let moto = Moto::start();
    let s = sdk(&moto);
    let dir = tempfile::tempdir().expect("tmp");
    let sets = ["--set", "properties.agentPoolProfiles[0].count=20"];
    let first = deploy(&moto, dir.path(), &sets);
    assert_eq!(first["summary"]["failed"], 0, "{first}");
    let inv = inventory(&s);
    let group: Vec<&ec2::types::Instance> = inv
        .instances
        .iter()
        .filter(|i| i.tags().iter().any(|t| t.key() == Some("hke.io/group")))
        .collect();
    assert_eq!(group.len(), 20, "{}", inv.summary());
    let zones: BTreeSet<&str> = group
        .iter()
        .filter_map(|i| i.placement().and_then(|p| p.availability_zone()))
        .collect();
    assert_eq!(zones.len(), 3, "{zones:?}");
    // 1 master + 20 in the group + 2 Windows.
    assert_eq!(inv.instances.len(), 23);
    // With the state lost, a deploy finds every object by its tags and
    // makes none again.
    std::fs::remove_file(dir.path().join("out/state.json")).expect("forget the state");
    let _ = std::fs::remove_file(dir.path().join("out/state.journal"));
    moto.start_recording();
    let again = deploy(&moto, dir.path(), &[&sets[..], &["--parallelism", "1"]].concat());
    let actions = moto.recorded_actions();
    assert_eq!(again["summary"]["failed"], 0, "{again}");
    assert!(actions.iter().any(|a| a == "DescribeInstances"), "{actions:?}");
    let makers = [
        "RunInstances",
        "CreateVpc",
        "CreateSubnet",
        "CreateSecurityGroup",
        "CreateInternetGateway",
        "CreateRouteTable",
        "AllocateAddress",
        "ImportKeyPair",
        "CreateLoadBalancer",
        "CreateTargetGroup",
    ];
    let made: Vec<&String> = actions.iter().filter(|a| makers.contains(&a.as_str())).collect();
    assert!(made.is_empty(), "created again: {made:?}");
    assert_eq!(inventory(&s).instances.len(), 23);
    teardown(&moto, dir.path(), &["-o", "out", "--cluster", CLUSTER]);
    let left = inventory(&s);
    assert!(left.is_empty(), "left behind: {}", left.summary());
}

fn hours_ago(h: i64) -> String {
    (time::OffsetDateTime::now_utc() - time::Duration::hours(h))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

#[test]
fn the_janitor_deletes_exactly_the_expired_clusters_on_aws() {
    let moto = Moto::start();
    let s = sdk(&moto);
    let dir = tempfile::tempdir().expect("tmp");
    // A real deploy, back-dated: its time is up.
    deploy(&moto, dir.path(), &["--ttl", "3h"]);
    let inv = inventory(&s);
    let mut ids: Vec<String> = inv.vpcs.iter().filter_map(|v| v.vpc_id().map(str::to_string)).collect();
    ids.extend(inv.instances.iter().filter_map(|i| i.instance_id().map(str::to_string)));
    ids.extend(inv.subnets.iter().filter_map(|x| x.subnet_id().map(str::to_string)));
    ids.extend(
        inv.security_groups
            .iter()
            .filter_map(|x| x.group_id().map(str::to_string)),
    );
    let old = hours_ago(5);
    s.rt.block_on(
        s.ec2
            .create_tags()
            .set_resources(Some(ids))
            .tags(ec2::types::Tag::builder().key("hke.io/created").value(&old).build())
            .send(),
    )
    .expect("back-date");
    // A fresh cluster's VPC and someone else's VPC, which must stay.
    let tag = |k: &str, v: &str| ec2::types::Tag::builder().key(k).value(v).build();
    let fresh = hours_ago(1);
    let (fresh_vpc, foreign_vpc) = s.rt.block_on(async {
        let a = s
            .ec2
            .create_vpc()
            .cidr_block("10.50.0.0/16")
            .tag_specifications(
                ec2::types::TagSpecification::builder()
                    .resource_type(ec2::types::ResourceType::Vpc)
                    .tags(tag("hke.io/cluster", "fresh-ci"))
                    .tags(tag("hke.io/created", &fresh))
                    .tags(tag("hke.io/ttl", "3h"))
                    .build(),
            )
            .send()
            .await
            .expect("fresh vpc");
        let b = s
            .ec2
            .create_vpc()
            .cidr_block("10.60.0.0/16")
            .tag_specifications(
                ec2::types::TagSpecification::builder()
                    .resource_type(ec2::types::ResourceType::Vpc)
                    .tags(tag("team", "databases"))
                    .build(),
            )
            .send()
            .await
            .expect("foreign vpc");
        (
            a.vpc().and_then(|v| v.vpc_id()).expect("id").to_string(),
            b.vpc().and_then(|v| v.vpc_id()).expect("id").to_string(),
        )
    });
    let run = |args: &[&str]| {
        let mut all = vec!["janitor", "--cloud", "aws", "--region", REGION];
        all.extend_from_slice(args);
        let out = moto.hke(dir.path(), &all);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).expect("one JSON report on stdout")
    };
    let dry = run(&["--dry-run"]);
    let expired: Vec<&str> = dry["expired"]
        .as_array()
        .expect("expired")
        .iter()
        .filter_map(|c| c["cluster"].as_str())
        .collect();
    assert_eq!(expired, vec![CLUSTER], "{dry}");
    assert_eq!(inventory(&s).instances.len(), 5, "a dry run deletes nothing");
    let done = run(&[]);
    assert_eq!(done["deleted"], serde_json::json!([CLUSTER]), "{done}");
    let left = inventory(&s);
    assert!(left.is_empty(), "left behind: {}", left.summary());
    let vpcs: BTreeSet<String> =
        s.rt.block_on(s.ec2.describe_vpcs().send())
            .expect("vpcs")
            .vpcs()
            .iter()
            .filter_map(|v| v.vpc_id().map(str::to_string))
            .collect();
    assert!(vpcs.contains(&fresh_vpc) && vpcs.contains(&foreign_vpc), "{vpcs:?}");
}

fn ci_run(moto: &Moto, dir: &Path, extra_env: &[(&str, &str)], command: &[&str]) -> std::process::Command {
    let model = root().join(MODEL);
    let kubectl = root().join("tests/it/fixtures/kubectl");
    let mut args: Vec<&str> = vec![
        "ci",
        "run",
        "-m",
        model.to_str().expect("utf-8"),
        "--name-prefix",
        "ci-aws",
        "--kubectl",
        kubectl.to_str().expect("utf-8"),
        "--artifacts",
        "art",
        "--",
    ];
    args.extend_from_slice(command);
    let mut c = moto.hke_command(dir, &args);
    c.env("HKE_CI_POLL_MS", "50")
        .env("FAKE_KUBECTL_LINUX", "3")
        .env("FAKE_KUBECTL_WINDOWS", "2");
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c
}

fn ci_cluster(dir: &Path) -> String {
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("art/metadata.json")).expect("metadata")).expect("json");
    m["cluster"].as_str().expect("cluster").to_string()
}

#[test]
fn ci_run_on_aws_collects_console_logs_and_leaves_nothing() {
    let moto = Moto::start();
    let s = sdk(&moto);
    let dir = tempfile::tempdir().expect("tmp");
    let out = ci_run(&moto, dir.path(), &[], &["sh", "-c", "test -s \"$KUBECONFIG\""])
        .output()
        .expect("hke runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let cluster = ci_cluster(dir.path());
    assert!(cluster.starts_with("ci-aws-"), "{cluster}");
    // One console log per node, fetched with GetConsoleOutput.
    let logs: Vec<_> = std::fs::read_dir(dir.path().join("art/logs"))
        .expect("logs")
        .flatten()
        .collect();
    assert_eq!(logs.len(), 5);
    for l in logs {
        assert!(l.path().join("console.log").is_file());
    }
    let junit = std::fs::read_to_string(dir.path().join("art/junit_runner.xml")).expect("junit");
    assert!(junit.contains(r#"tests="5" failures="0""#), "{junit}");
    let left = inventory_of(&s, &cluster);
    assert!(left.is_empty(), "left behind: {}", left.summary());
}

#[test]
fn ci_run_on_aws_killed_by_sigterm_mid_deploy_leaves_nothing() {
    let moto = Moto::start();
    let s = sdk(&moto);
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = ci_run(&moto, dir.path(), &[], &["true"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("hke starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("created subnet") {
            let pid = child.id().to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill");
        }
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(143), "{seen}");
    let cluster = ci_cluster(dir.path());
    let left = inventory_of(&s, &cluster);
    assert!(left.is_empty(), "left behind: {}\n{seen}", left.summary());
    let junit = std::fs::read_to_string(dir.path().join("art/junit_runner.xml")).expect("junit");
    assert!(junit.contains("interrupted by SIGTERM"), "{junit}");
}

/// junit_runner.xml through junitparser (a real consumer): phase → result.
fn junit_results(dir: &Path) -> BTreeMap<String, String> {
    let script = r#"
import json, sys
from junitparser import JUnitXml, Failure, Skipped
out = {}
for suite in JUnitXml.fromfile(sys.argv[1]):
    for case in suite:
        kind = "passed"
        for r in case.result:
            kind = "failure" if isinstance(r, Failure) else "skipped" if isinstance(r, Skipped) else "other"
        out[case.name] = kind
print(json.dumps(out))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir.join("art/junit_runner.xml"))
        .output()
        .expect("python3");
    assert!(out.status.success(), "junitparser: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn ci_run_on_aws_tears_down_after_failure_timeout_and_sigterm_mid_test() {
    let moto = Moto::start();
    let s = sdk(&moto);
    // The command fails: its exit code is kept.
    let dir = tempfile::tempdir().expect("tmp");
    let out = ci_run(&moto, dir.path(), &[], &["sh", "-c", "exit 5"])
        .output()
        .expect("hke");
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(junit_results(dir.path())["test"], "failure");
    assert_eq!(junit_results(dir.path())["teardown"], "passed");
    let left = inventory_of(&s, &ci_cluster(dir.path()));
    assert!(left.is_empty(), "after a failure: {}", left.summary());

    // The run times out while the command runs.
    moto.reset();
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = ci_run(&moto, dir.path(), &[], &["sleep", "60"]);
    // The flag goes before `--`: rebuild the arguments with --timeout.
    let args: Vec<std::ffi::OsString> = c.get_args().map(|a| a.to_os_string()).collect();
    let sep = args.iter().position(|a| a == "--").expect("--");
    let mut timed = moto.hke_command(dir.path(), &[]);
    timed.args(&args[..sep]).args(["--timeout", "8s"]).args(&args[sep..]);
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    let out = timed.output().expect("hke");
    assert_eq!(out.status.code(), Some(12), "{}", text(&out.stderr));
    assert_eq!(junit_results(dir.path())["test"], "failure");
    let left = inventory_of(&s, &ci_cluster(dir.path()));
    assert!(left.is_empty(), "after a timeout: {}", left.summary());

    // SIGTERM while the command runs.
    moto.reset();
    let dir = tempfile::tempdir().expect("tmp");
    c = ci_run(&moto, dir.path(), &[], &["sh", "-c", "touch started; sleep 60"]);
    let mut child = c.stderr(Stdio::null()).spawn().expect("hke starts");
    let t0 = std::time::Instant::now();
    while !dir.path().join("started").exists() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(143));
    let j = junit_results(dir.path());
    assert_eq!((j["test"].as_str(), j["teardown"].as_str()), ("failure", "passed"));
    let left = inventory_of(&s, &ci_cluster(dir.path()));
    assert!(left.is_empty(), "after SIGTERM mid-test: {}", left.summary());
}

#[test]
fn teardown_waits_for_the_load_balancers_interfaces_before_subnets_and_gateway() {
    // AWS keeps a network load balancer's interfaces (description
    // `ELB net/<name>/<id>`) in its subnets for a while after the load
    // balancer is deleted; until they go, DeleteSubnet and
    // DetachInternetGateway fail with DependencyViolation. moto neither
    // creates those interfaces nor refuses the deletes, so the test makes
    // one and removes it later, as AWS would, and watches what hke deletes
    // meanwhile.
    let moto = Moto::start();
    let s = sdk(&moto);
    let dir = tempfile::tempdir().expect("tmp");
    deploy(&moto, dir.path(), &["--set", "properties.masterProfile.count=3"]);
    let inv = inventory(&s);
    // The internet-facing load balancer and the machines' internal one.
    assert_eq!(inv.load_balancers.len(), 2, "{}", inv.summary());
    let arn = inv.load_balancers[0].clone();
    // `…:loadbalancer/net/<name>/<id>` on AWS (moto writes `app/` for every
    // type): the interfaces' description is `ELB net/<name>/<id>`.
    let lb_path = arn
        .split_once(":loadbalancer/")
        .and_then(|(_, p)| p.split_once('/'))
        .map(|(_, name_id)| format!("net/{name_id}"))
        .expect("arn");
    let subnet = inv.subnets[0].subnet_id().expect("subnet").to_string();
    let eni =
        s.rt.block_on(
            s.ec2
                .create_network_interface()
                .subnet_id(&subnet)
                .description(format!("ELB {lb_path}"))
                .send(),
        )
        .expect("the load balancer's interface")
        .network_interface()
        .and_then(|n| n.network_interface_id())
        .expect("eni id")
        .to_string();
    let url = moto.url();
    let watcher = std::thread::spawn(move || {
        let s = sdk_at(&url);
        s.rt.block_on(async {
            let t0 = std::time::Instant::now();
            // Until hke has deleted the load balancer.
            loop {
                let lbs = s.elb.describe_load_balancers().send().await.expect("lbs");
                if lbs
                    .load_balancers()
                    .iter()
                    .all(|l| l.load_balancer_arn() != Some(arn.as_str()))
                {
                    break;
                }
                assert!(
                    t0.elapsed() < std::time::Duration::from_secs(300),
                    "the load balancer stays"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            // AWS takes a while to release the interfaces: watch the subnets
            // and the gateway meanwhile.
            let mut seen = Vec::new();
            let watch = std::time::Instant::now();
            while watch.elapsed() < std::time::Duration::from_secs(10) {
                let subnets = s
                    .ec2
                    .describe_subnets()
                    .filters(cluster_filter_of(CLUSTER))
                    .send()
                    .await
                    .expect("subnets")
                    .subnets()
                    .len();
                let attached = s
                    .ec2
                    .describe_internet_gateways()
                    .filters(cluster_filter_of(CLUSTER))
                    .send()
                    .await
                    .expect("igws")
                    .internet_gateways()
                    .iter()
                    .any(|g| !g.attachments().is_empty());
                seen.push((subnets, attached));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            s.ec2
                .delete_network_interface()
                .network_interface_id(&eni)
                .send()
                .await
                .expect("release the interface");
            seen
        })
    });
    teardown(&moto, dir.path(), &["-o", "out", "--cluster", CLUSTER]);
    let seen = watcher.join().expect("watcher");
    assert!(!seen.is_empty());
    let early: Vec<&(usize, bool)> = seen.iter().filter(|(n, attached)| *n < 4 || !attached).collect();
    assert!(
        early.is_empty(),
        "subnets deleted or the gateway detached while the load balancer's interface was there: \
         {} of {} looks (subnets, gateway attached): {:?}",
        early.len(),
        seen.len(),
        early.first()
    );
    let left = inventory(&s);
    assert!(left.is_empty(), "left behind: {}", left.summary());
}

#[test]
fn kubenet_over_the_route_table_quota_is_refused_before_any_call() {
    // 1 master + 48 + 2 nodes: 51 routes and the default one, over the 50
    // a route table holds by default (Amazon VPC quotas).
    let sets = [
        "--set",
        "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
        "--set",
        "properties.agentPoolProfiles[0].count=48",
    ];
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tmp");
    let model = root().join(MODEL);
    let model = model.to_str().expect("utf-8");
    let out = moto.hke(dir.path(), &[&["validate", "-m", model][..], &sets].concat());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}\n{err}", text(&out.stdout));
    for want in [
        "properties.orchestratorProfile.kubernetesConfig.networkPlugin",
        "\"kubenet\"",
        "52 routes",
        "50",
        "flannel or calico",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    // A deploy stops there too: no call reaches AWS, nothing is made.
    moto.start_recording();
    let out = moto.hke(dir.path(), &[&["deploy", "-m", model, "-o", "out"][..], &sets].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let actions = moto.recorded_actions();
    assert!(actions.is_empty(), "{actions:?}");
    // 49 nodes fit: 50 routes.
    let fits = ["--set", "properties.agentPoolProfiles[0].count=46"];
    let out = moto.hke(dir.path(), &[&["validate", "-m", model][..], &sets, &fits].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The source address a master's security group sees on a machine's
/// packet to `endpoint`, by what AWS documents of each path.
fn source_seen_by_master(s: &Sdk, inv: &Inventory, machine: &ec2::types::Instance, endpoint: &str) -> String {
    let private = machine.private_ip_address().expect("private address").to_string();
    let public = machine.public_ip_address().unwrap_or("0.0.0.0").to_string();
    // An EC2 public DNS name: "requests from within the VPC resolve to the
    // private primary IPv4 address" (EC2 `PublicIpDnsNameOptions`).
    if endpoint.starts_with("ec2-") && endpoint.contains(".compute") {
        return private;
    }
    // A public address of the cluster: the packet leaves through the internet
    // gateway, which gives it the machine's public address.
    if endpoint.parse::<std::net::Ipv4Addr>().is_ok() {
        return public;
    }
    let lbs = s.rt.block_on(s.elb.describe_load_balancers().send()).expect("lbs");
    let lb = lbs
        .load_balancers()
        .iter()
        .find(|l| l.dns_name() == Some(endpoint))
        .unwrap_or_else(|| panic!("no load balancer is {endpoint}"));
    let internal = lb.scheme() == Some(&elbv2::types::LoadBalancerSchemeEnum::Internal);
    let tgs =
        s.rt.block_on(
            s.elb
                .describe_target_groups()
                .load_balancer_arn(lb.load_balancer_arn().expect("arn"))
                .send(),
        )
        .expect("target groups");
    let ip_targets = tgs
        .target_groups()
        .iter()
        .all(|t| t.target_type() == Some(&elbv2::types::TargetTypeEnum::Ip));
    // "The DNS name of an internet-facing load balancer is publicly
    // resolvable to the public IP addresses of the nodes" (ELBv2
    // CreateLoadBalancer `Scheme`): reached through the internet gateway, from
    // the machine's public address. An internal one resolves to private
    // addresses: the machine's private address.
    let client = if internal { private } else { public };
    if ip_targets {
        // Client IP preservation is off for IP targets of TCP groups: "the
        // source IP address is the private IP address of the Network Load
        // Balancer", an address of its subnets (ELBv2 docs,
        // network/edit-target-group-attributes.html).
        let subnet = inv
            .subnets
            .iter()
            .find(|sn| lb.availability_zones().iter().any(|z| z.subnet_id() == sn.subnet_id()))
            .expect("a subnet of the load balancer");
        let net = subnet.cidr_block().expect("cidr").split('/').next().expect("net");
        let base: std::net::Ipv4Addr = net.parse().expect("ip");
        return std::net::Ipv4Addr::from(u32::from(base) + 10).to_string();
    }
    // Instance targets keep the client's address.
    client
}

#[test]
fn restricted_api_source_ranges_still_let_every_machine_reach_the_api_server() {
    // Clients from one range only; the machines' own public addresses are
    // not in it. The machines must reach the API server by an address the
    // security group admits: privately, from the node range.
    let moto = Moto::start();
    let s = sdk(&moto);
    for masters in ["3", "1"] {
        moto.reset();
        let dir = tempfile::tempdir().expect("tmp");
        let count = format!("properties.masterProfile.count={masters}");
        deploy(
            &moto,
            dir.path(),
            &[
                "--set",
                &count,
                "--set",
                "properties.masterProfile.HTTPSourceAddressPrefix=198.51.100.0/24",
            ],
        );
        let inv = inventory(&s);
        let sg = &inv.security_groups[0];
        let admits = |source: &str| {
            sg.ip_permissions().iter().any(|p| {
                let port = p.ip_protocol() == Some("-1")
                    || (p.ip_protocol() == Some("tcp")
                        && p.from_port().unwrap_or(0) <= 6443
                        && p.to_port().unwrap_or(0) >= 6443);
                port && p
                    .ip_ranges()
                    .iter()
                    .any(|r| cidr_contains(r.cidr_ip().unwrap_or_default(), source))
            })
        };
        // Outsiders are refused: the restriction holds.
        assert!(!admits("203.0.113.7"), "{masters} masters: the API port is open to all");
        let plan = plan(&moto, dir.path());
        let lb = state_outputs(dir.path(), "loadBalancer/apiserver");
        for (_, m) in resources_of(&plan, "machine") {
            let name = m["name"].as_str().expect("name");
            let found = inv.instance(name);
            let i = found[0];
            // The endpoint the machine was given is in its user data.
            let ud =
                s.rt.block_on(
                    s.ec2
                        .describe_instance_attribute()
                        .instance_id(i.instance_id().expect("id"))
                        .attribute(ec2::types::InstanceAttributeName::UserData)
                        .send(),
                )
                .expect("user data");
            let sent = hke_provider_aws::userdata::decode(ud.user_data().and_then(|v| v.value()).expect("value"))
                .expect("decodable");
            // The endpoint the machine was given: the one its user data is
            // the rendering of.
            let endpoint = ["internalDnsName", "dnsName", "address"]
                .iter()
                .filter_map(|k| lb[*k].as_str())
                .find(|e| {
                    let rendered = moto.hke(
                        dir.path(),
                        &["render", "-m", "out/apimodel.json", "--node", name, "--endpoint", e],
                    );
                    rendered.status.success() && text(&rendered.stdout).trim_end() == sent.trim_end()
                })
                .unwrap_or_else(|| panic!("{name}: its user data names no endpoint of {lb}"))
                .to_string();
            let source = source_seen_by_master(&s, &inv, i, &endpoint);
            assert!(
                admits(&source),
                "{masters} masters: {name} reaches the API server at {endpoint} from {source}, which the \
                 security group refuses"
            );
        }
        teardown(&moto, dir.path(), &["-o", "out", "--cluster", CLUSTER]);
    }
}
