//! The provider against a real OpenStack (e2e/openstack/stack.sh: Keystone,
//! Glance, Placement, Neutron, Nova with the fake virt driver, Octavia with
//! no-op drivers), driven with Requests as hke's engine makes them.
//!
//! One test starts the bed once in a temporary directory (`stack.sh up`,
//! about 3 minutes on a fresh directory) and stops it at the end, also on
//! failure (a Drop guard). `HKE_OPENSTACK_TEST_DIR=DIR` uses a bed that is
//! up already (and leaves it up); `HKE_OPENSTACK_E2E=skip` skips the test;
//! `HKE_OS_PORT_BASE` moves its ports (default here 18900, away from the
//! bed's own default).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hke_provider_api::resource::{OUT_ADDRESS, OUT_ID, OUT_PRIVATE_IP};
use hke_provider_api::{
    standard_tags, Class, Found, Image, Kind, Login, MachineGroupSpec, MachineSpec, Os, Outputs, Provider,
    ProviderError, Request, Rule, Spec,
};
use hke_provider_openstack::{size_request, OpenStack, OpenStackConfig};

/// The process environment, read in one place (clippy keeps it out of
/// everything else).
#[allow(clippy::disallowed_methods)]
fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// Progress on stderr (cargo shows it with `--nocapture`).
#[allow(clippy::print_stderr)]
fn note(message: String) {
    eprintln!("{message}");
}

fn stack_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/openstack/stack.sh")
}

/// A running bed; stopped when dropped unless it was up before.
struct Bed {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    owned: bool,
}

impl Bed {
    fn start() -> Bed {
        if let Some(dir) = env("HKE_OPENSTACK_TEST_DIR") {
            return Bed {
                dir: PathBuf::from(dir),
                _tmp: None,
                owned: false,
            };
        }
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let port_base = env("HKE_OS_PORT_BASE").unwrap_or_else(|| "18900".into());
        let run = |args: &[&str]| {
            let out = Command::new("bash")
                .arg(stack_sh())
                .args(args)
                .env("HKE_OS_PORT_BASE", &port_base)
                .output()
                .expect("run stack.sh");
            assert!(
                out.status.success(),
                "stack.sh {args:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // The guard exists before `up`, so a half-started bed is stopped too.
        let bed = Bed {
            dir: dir.clone(),
            _tmp: Some(tmp),
            owned: true,
        };
        run(&["install"]);
        run(&["up", &dir.to_string_lossy()]);
        bed
    }

    fn clouds(&self) -> PathBuf {
        self.dir.join("clouds.yaml")
    }

    /// Settings as hke's deploy would make them from `OS_CLOUD` and the
    /// variables, for `cloud` of the bed's clouds.yaml.
    fn config(&self, cluster: &str, cloud: &str, extra: &[(&str, &str)]) -> OpenStackConfig {
        let clouds = self.clouds().to_string_lossy().to_string();
        let mut vars: BTreeMap<String, String> = [
            ("OS_CLOUD", cloud),
            ("OS_CLIENT_CONFIG_FILE", clouds.as_str()),
            ("HKE_OPENSTACK_IMAGES", "ubuntu-24.04=ubuntu-22.04"),
            ("HKE_OPENSTACK_POLL_MS", "200"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        let mut cfg = OpenStackConfig::from_lookup(cluster, |k| vars.get(k).cloned()).expect("config");
        cfg.search_dirs = vec![self.dir.clone()];
        cfg.wait = Duration::from_secs(180);
        cfg
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new("bash").arg(stack_sh()).arg("down").arg(&self.dir).output();
        }
    }
}

/// What the engine would hand the provider for one resource.
fn request(cluster: &str, logical: &str, name: &str, spec: Spec<String>) -> Request {
    let tags = standard_tags(cluster, "2026-11-22T12:00:00Z", Some("1h"), &BTreeMap::new());
    Request {
        logical_id: logical.into(),
        name: name.into(),
        spec,
        tags,
        references: Vec::new(),
        client_token: format!("token-{logical}"),
        user_data: None,
        login: None,
    }
}

/// Retry what the engine retries (transient errors), a bounded number of times.
async fn retrying<T, F, Fut>(what: &str, mut f: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.is_transient() && attempt < 30 => {
                attempt += 1;
                note(format!("{what}: retry {attempt}: {e}"));
                tokio::time::sleep(e.retry_after().unwrap_or(Duration::from_millis(500))).await;
            }
            other => return other,
        }
    }
}

async fn create(p: &OpenStack, req: &Request) -> Outputs {
    let started = Instant::now();
    let o = retrying(&req.name, || p.create(req))
        .await
        .unwrap_or_else(|e| panic!("create {} {}: {e}", req.spec.kind(), req.name));
    note(format!(
        "created {} {} in {:?}: {o:?}",
        req.spec.kind(),
        req.name,
        started.elapsed()
    ));
    o
}

/// Teardown as the engine does it: what the state records and what the
/// cloud lists under the cluster's tag, by teardown rank.
async fn teardown(p: &OpenStack, cluster: &str, state: &[(Kind, String, String)]) {
    let mut targets: Vec<(Kind, String, String)> = state.to_vec();
    for f in retrying("list", || p.list(cluster)).await.expect("list") {
        if !targets.iter().any(|(k, _, id)| *k == f.kind && *id == f.id) {
            targets.push((f.kind, f.name, f.id));
        }
    }
    for rank in 0..=5u8 {
        for (kind, name, id) in targets.iter().filter(|(k, _, _)| k.teardown_rank() == rank) {
            let r = retrying(name, || p.delete(*kind, name, Some(id))).await;
            match r {
                Ok(()) => {}
                Err(e) if e.class == Class::NotFound => {}
                Err(e) => panic!("delete {kind} {name} ({id}): {e}"),
            }
        }
    }
}

fn kinds(found: &[Found]) -> BTreeMap<Kind, usize> {
    let mut m = BTreeMap::new();
    for f in found {
        *m.entry(f.kind).or_insert(0) += 1;
    }
    m
}

const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGEo6FDjyUJLFIXfqQ5DI6O0fxVGvLFa1hZ7oi2qLbS+ hke-test";

fn linux_login() -> Login {
    Login {
        username: "azureuser".into(),
        ssh_public_keys: vec![SSH_KEY.into()],
        password: None,
    }
}

fn machine(subnet: &str, firewall: &str, os: Os, image: &str, ip: Option<&str>, endpoint: &str) -> Spec<String> {
    Spec::Machine(MachineSpec {
        subnet: subnet.into(),
        firewall: firewall.into(),
        os,
        size: size_request(2, 4096),
        image: Image {
            name: image.into(),
            lookup: BTreeMap::new(),
        },
        disk_gb: 30,
        private_ip: ip.map(str::to_string),
        placement: None,
        ip_forwarding: true,
        pod_ips: 0,
        bootstrap_inputs: [("endpoint".to_string(), endpoint.to_string())].into_iter().collect(),
    })
}

/// A cluster name no earlier run used (the bed may be reused).
fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000)
        .unwrap_or(0);
    format!("{prefix}-{t:06}")
}

/// The whole cluster through Octavia (when the bed has it), then a
/// one-master cluster with a floating IP, then authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_on_a_real_openstack() {
    if env("HKE_OPENSTACK_E2E").as_deref() == Some("skip") {
        note("HKE_OPENSTACK_E2E=skip: not starting the OpenStack bed".to_string());
        return;
    }
    let started = Instant::now();
    let bed = Bed::start();
    note(format!("bed up in {:?}", started.elapsed()));

    authentication(&bed).await;
    full_cluster(&bed).await;
    floating_ip_cluster(&bed).await;
    note(format!("all done in {:?}", started.elapsed()));
}

async fn authentication(bed: &Bed) {
    // Application credentials from clouds.yaml.
    let app = OpenStack::connect(bed.config("hke-auth", "hke-test-appcred", &[]))
        .await
        .expect("application credential login");
    assert!(!app.project().is_empty());
    app.list("hke-auth").await.expect("list with an application credential");
    // Password from the variables alone (no OS_CLOUD), as in DIR/env.
    let vars: BTreeMap<&str, &str> = [
        ("OS_AUTH_URL", ""),
        ("OS_USERNAME", "hke"),
        ("OS_PASSWORD", "hke-secret"),
        ("OS_PROJECT_NAME", "hke"),
        ("OS_USER_DOMAIN_NAME", "Default"),
        ("OS_PROJECT_DOMAIN_NAME", "Default"),
        ("OS_REGION_NAME", "RegionOne"),
    ]
    .into_iter()
    .collect();
    let base = bed.config("hke-auth", "hke-test", &[]);
    let cc = base.cloud_config().expect("cloud");
    let auth_url = cc.auth.and_then(|a| a.auth_url).expect("auth_url");
    let mut cfg = OpenStackConfig::from_lookup("hke-auth", |k| {
        if k == "OS_AUTH_URL" {
            return Some(auth_url.clone());
        }
        vars.get(k).map(|v| v.to_string())
    })
    .expect("config");
    cfg.search_dirs = Vec::new();
    OpenStack::connect(cfg)
        .await
        .expect("password login from OS_* variables");
    // A wrong password: permanent, and never in the message.
    let bad = bed.config("hke-auth", "hke-test", &[("OS_PASSWORD", "wrong-Pa55word")]);
    let e = OpenStack::connect(bad).await.expect_err("a wrong password fails");
    assert_eq!(e.class, Class::Permanent, "{e}");
    assert!(!e.to_string().contains("wrong-Pa55word"), "{e}");
    assert!(!format!("{e:?}").contains("wrong-Pa55word"), "{e:?}");
    note(format!("wrong password: {e}"));
}

async fn full_cluster(bed: &Bed) {
    let cluster = unique("hke-it");
    let p = OpenStack::connect(bed.config(&cluster, "hke-test", &[]))
        .await
        .expect("connect");
    note(format!("octavia: {}", p.uses_octavia()));
    let mut state: Vec<(Kind, String, String)> = Vec::new();
    let mut record = |req: &Request, o: &Outputs| {
        state.push((req.spec.kind(), req.name.clone(), o[OUT_ID].clone()));
    };

    let group = request(
        &cluster,
        "group",
        &cluster,
        Spec::Group {
            location: "RegionOne".into(),
            ssh_public_key: Some(SSH_KEY.into()),
        },
    );
    let g = create(&p, &group).await;
    record(&group, &g);
    let net_req = request(
        &cluster,
        "network",
        &format!("{cluster}-vnet"),
        Spec::Network {
            cidr: "10.240.0.0/16".into(),
            group: g[OUT_ID].clone(),
        },
    );
    let net = create(&p, &net_req).await;
    record(&net_req, &net);
    let subnet_req = request(
        &cluster,
        "subnet/nodes",
        &format!("{cluster}-nodes"),
        Spec::Subnet {
            network: net[OUT_ID].clone(),
            cidr: "10.240.0.0/16".into(),
        },
    );
    let subnet = create(&p, &subnet_req).await;
    record(&subnet_req, &subnet);
    let rules = vec![
        Rule {
            name: "apiserver".into(),
            protocol: "tcp".into(),
            ports: "6443".into(),
            sources: vec!["*".into()],
        },
        Rule {
            name: "ssh".into(),
            protocol: "tcp".into(),
            ports: "22".into(),
            sources: vec!["*".into()],
        },
        Rule {
            name: "nodes".into(),
            protocol: "all".into(),
            ports: "*".into(),
            sources: vec!["10.240.0.0/16".into()],
        },
        Rule {
            name: "pods".into(),
            protocol: "all".into(),
            ports: "*".into(),
            sources: vec!["10.244.0.0/16".into()],
        },
    ];
    let fw_req = request(
        &cluster,
        "firewall/nodes",
        &format!("{cluster}-nsg"),
        Spec::Firewall {
            network: net[OUT_ID].clone(),
            rules,
            more_sources: Default::default(),
        },
    );
    let fw = create(&p, &fw_req).await;
    record(&fw_req, &fw);
    let ip_req = request(
        &cluster,
        "publicAddress/apiserver",
        &format!("{cluster}-apiserver-ip"),
        Spec::PublicAddress {
            group: g[OUT_ID].clone(),
            dns_label: Some(cluster.clone()),
        },
    );
    let ip = create(&p, &ip_req).await;
    record(&ip_req, &ip);
    assert!(ip[OUT_ADDRESS].starts_with("203.0.113."), "{ip:?}");
    let lb_req = request(
        &cluster,
        "loadBalancer/apiserver",
        &format!("{cluster}-apiserver"),
        Spec::LoadBalancer {
            address: Some(ip[OUT_ID].clone()),
            subnet: subnet[OUT_ID].clone(),
            port: 6443,
            allowed_sources: Vec::new(),
        },
    );
    let lb = create(&p, &lb_req).await;
    record(&lb_req, &lb);
    // The endpoint nodes are given is the public address either way.
    assert_eq!(lb[OUT_ADDRESS], ip[OUT_ADDRESS], "{lb:?}");
    let endpoint = lb[OUT_ADDRESS].clone();

    // Masters with fixed IPs, a Linux node and a Windows node.
    let mut machines = Vec::new();
    for (name, os, image, fixed) in [
        ("k8s-master-it-0", Os::Linux, "ubuntu-24.04", Some("10.240.255.5")),
        ("k8s-master-it-1", Os::Linux, "ubuntu-24.04", Some("10.240.255.6")),
        ("k8s-linuxpool-it-0", Os::Linux, "ubuntu-24.04", None),
        ("it00k8s01000", Os::Windows, "windows-2022", None),
    ] {
        let mut r = request(
            &cluster,
            &format!("machine/{name}"),
            name,
            machine(&subnet[OUT_ID], &fw[OUT_ID], os.clone(), image, fixed, &endpoint),
        );
        r.user_data = Some(match os {
            Os::Linux => format!("#cloud-config\n# hke: first boot of {name:?}\n"),
            Os::Windows => "Write-Output 'hke bootstrap'\n".to_string(),
        });
        r.login = Some(match os {
            Os::Linux => linux_login(),
            Os::Windows => Login {
                username: "azureuser".into(),
                ssh_public_keys: vec![SSH_KEY.into()],
                password: Some("Win-Pa55word!".into()),
            },
        });
        machines.push((r, fixed));
    }
    // Machines are created at once, as the engine does.
    let outs = futures_util::future::join_all(machines.iter().map(|(r, _)| create(&p, r))).await;
    let mut by_name = BTreeMap::new();
    for ((r, fixed), o) in machines.iter().zip(outs) {
        if let Some(ip) = fixed {
            assert_eq!(o[OUT_PRIVATE_IP], *ip, "{o:?}");
        }
        record(r, &o);
        by_name.insert(r.name.clone(), o);
    }
    // A pool as one machine group (what the plan makes of large pools).
    let mut group_req = request(
        &cluster,
        "machineGroup/pool2",
        "k8s-pool2-it-vmss",
        Spec::MachineGroup(MachineGroupSpec {
            subnet: subnet[OUT_ID].clone(),
            firewall: fw[OUT_ID].clone(),
            os: Os::Linux,
            size: "m1.small".into(),
            image: Image {
                name: "ubuntu-24.04".into(),
                lookup: BTreeMap::new(),
            },
            disk_gb: 30,
            count: 2,
            name_prefix: "k8s-pool2-it-".into(),
            ip_forwarding: false,
            pod_ips: 0,
            bootstrap_inputs: BTreeMap::new(),
        }),
    );
    group_req.user_data = Some("#cloud-config\n".into());
    group_req.login = Some(linux_login());
    let mg = create(&p, &group_req).await;
    record(&group_req, &mg);
    let got = p.read(Kind::MachineGroup, &group_req.name).await.expect("read");
    assert_eq!(got.map(|o| o[OUT_ID].clone()), Some(mg[OUT_ID].clone()));
    let logs = p
        .console_output(Kind::MachineGroup, &group_req.name, &mg[OUT_ID])
        .await
        .expect("console");
    assert_eq!(
        logs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["k8s-pool2-it-000000", "k8s-pool2-it-000001"]
    );

    // Load balancer members (the masters) and kubenet routes (every node).
    let mut extra = Vec::new();
    for m in ["k8s-master-it-0", "k8s-master-it-1"] {
        let r = request(
            &cluster,
            &format!("lbMember/{m}"),
            &format!("{cluster}-apiserver-{m}"),
            Spec::LbMember {
                load_balancer: lb[OUT_ID].clone(),
                machine: by_name[m][OUT_ID].clone(),
                port: 6443,
            },
        );
        let o = create(&p, &r).await;
        record(&r, &o);
        extra.push(r);
    }
    for (i, m) in by_name.keys().enumerate() {
        let r = request(
            &cluster,
            &format!("route/{m}"),
            &format!("{cluster}-route-{m}"),
            Spec::Route {
                network: net[OUT_ID].clone(),
                destination: format!("10.244.{i}.0/24"),
                next_hop: by_name[m][OUT_ID].clone(),
            },
        );
        extra.push(r);
    }
    let route_outs = futures_util::future::join_all(
        extra
            .iter()
            .filter(|r| r.spec.kind() == Kind::Route)
            .map(|r| create(&p, r)),
    )
    .await;
    for (r, o) in extra.iter().filter(|r| r.spec.kind() == Kind::Route).zip(route_outs) {
        record(r, &o);
    }

    // Read back: what create answered.
    for (req, want) in [(&net_req, &net), (&subnet_req, &subnet), (&fw_req, &fw), (&ip_req, &ip)] {
        let got = p
            .read(req.spec.kind(), &req.name)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("read {}", req.name));
        assert_eq!(got[OUT_ID], want[OUT_ID], "{}", req.name);
    }
    for (r, _) in &machines {
        let got = p.read(Kind::Machine, &r.name).await.expect("read").expect("found");
        assert_eq!(got[OUT_ID], by_name[&r.name][OUT_ID]);
    }
    if p.uses_octavia() {
        let got = p
            .read(Kind::LoadBalancer, &lb_req.name)
            .await
            .expect("read")
            .expect("found");
        assert_eq!(got[OUT_ID], lb[OUT_ID]);
    }

    // The console log of a machine.
    let console = p
        .console_output(Kind::Machine, "k8s-master-it-0", &by_name["k8s-master-it-0"][OUT_ID])
        .await
        .expect("console");
    assert_eq!(console.len(), 1);
    assert!(console[0].1.contains("FAKE CONSOLE OUTPUT"), "{console:?}");

    // Create everything again: the same objects, nothing new.
    let before = p.list(&cluster).await.expect("list");
    note(format!("listed: {:?}", kinds(&before)));
    for req in [&group, &net_req, &subnet_req, &fw_req, &ip_req, &lb_req] {
        let again = create(&p, req).await;
        if req.spec.kind() != Kind::Group {
            let first = state.iter().find(|(_, n, _)| *n == req.name).expect("recorded");
            assert_eq!(again[OUT_ID], first.2, "{} created twice", req.name);
        }
    }
    for (r, _) in &machines {
        assert_eq!(create(&p, r).await[OUT_ID], by_name[&r.name][OUT_ID], "{}", r.name);
    }
    create(&p, &group_req).await;
    for r in &extra {
        create(&p, r).await;
    }
    let after = p.list(&cluster).await.expect("list");
    assert_eq!(kinds(&before), kinds(&after), "a repeated create made something new");
    let k = kinds(&after);
    assert_eq!(k.get(&Kind::Machine), Some(&4), "{k:?}");
    assert_eq!(k.get(&Kind::MachineGroup), Some(&1), "{k:?}");
    assert_eq!(k.get(&Kind::Network), Some(&2), "network and router: {k:?}");
    assert_eq!(k.get(&Kind::Subnet), Some(&1), "{k:?}");
    assert_eq!(k.get(&Kind::Firewall), Some(&1), "{k:?}");
    assert_eq!(k.get(&Kind::PublicAddress), Some(&1), "{k:?}");
    assert_eq!(k.get(&Kind::Group), Some(&1), "keypair: {k:?}");
    if p.uses_octavia() {
        assert_eq!(k.get(&Kind::LoadBalancer), Some(&1), "{k:?}");
    }
    // The janitor's view has the cluster too.
    let all = p.list_all().await.expect("list_all");
    assert!(all.iter().any(|f| f.tags.get("hke.io/cluster") == Some(&cluster)));
    assert!(after
        .iter()
        .all(|f| f.tags.get("hke.io/ttl").map(String::as_str) == Some("1h") || f.kind == Kind::Group));

    // Teardown from the state, then again from the tags alone (state lost).
    let (first, rest) = state.split_at(state.len() / 2);
    teardown(&p, &cluster, rest).await;
    teardown(&p, &cluster, first).await;
    let left = p.list(&cluster).await.expect("list");
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Without Octavia: the load balancer is the floating IP on the one master.
async fn floating_ip_cluster(bed: &Bed) {
    let cluster = unique("hke-fip");
    let p = OpenStack::connect(bed.config(&cluster, "hke-test", &[("HKE_OPENSTACK_OCTAVIA", "off")]))
        .await
        .expect("connect");
    assert!(!p.uses_octavia());
    let mut state = Vec::new();
    let net_req = request(
        &cluster,
        "network",
        &format!("{cluster}-vnet"),
        Spec::Network {
            cidr: "10.240.0.0/16".into(),
            group: "g".into(),
        },
    );
    let net = create(&p, &net_req).await;
    state.push((Kind::Network, net_req.name.clone(), net[OUT_ID].clone()));
    let subnet_req = request(
        &cluster,
        "subnet/nodes",
        &format!("{cluster}-nodes"),
        Spec::Subnet {
            network: net[OUT_ID].clone(),
            cidr: "10.240.0.0/16".into(),
        },
    );
    let subnet = create(&p, &subnet_req).await;
    state.push((Kind::Subnet, subnet_req.name.clone(), subnet[OUT_ID].clone()));
    let fw_req = request(
        &cluster,
        "firewall/nodes",
        &format!("{cluster}-nsg"),
        Spec::Firewall {
            network: net[OUT_ID].clone(),
            rules: vec![Rule {
                name: "apiserver".into(),
                protocol: "tcp".into(),
                ports: "6443".into(),
                sources: vec!["*".into()],
            }],
            more_sources: Default::default(),
        },
    );
    let fw = create(&p, &fw_req).await;
    state.push((Kind::Firewall, fw_req.name.clone(), fw[OUT_ID].clone()));
    let ip_req = request(
        &cluster,
        "publicAddress/apiserver",
        &format!("{cluster}-apiserver-ip"),
        Spec::PublicAddress {
            group: "g".into(),
            dns_label: None,
        },
    );
    let ip = create(&p, &ip_req).await;
    state.push((Kind::PublicAddress, ip_req.name.clone(), ip[OUT_ID].clone()));
    let lb_req = request(
        &cluster,
        "loadBalancer/apiserver",
        &format!("{cluster}-apiserver"),
        Spec::LoadBalancer {
            address: Some(ip[OUT_ID].clone()),
            subnet: subnet[OUT_ID].clone(),
            port: 6443,
            allowed_sources: Vec::new(),
        },
    );
    let lb = create(&p, &lb_req).await;
    assert_eq!(lb[OUT_ADDRESS], ip[OUT_ADDRESS]);
    state.push((Kind::LoadBalancer, lb_req.name.clone(), lb[OUT_ID].clone()));
    let mut masters = Vec::new();
    for name in ["k8s-master-fip-0", "k8s-master-fip-1"] {
        let mut r = request(
            &cluster,
            &format!("machine/{name}"),
            name,
            machine(
                &subnet[OUT_ID],
                &fw[OUT_ID],
                Os::Linux,
                "ubuntu-24.04",
                None,
                &lb[OUT_ADDRESS],
            ),
        );
        r.user_data = Some("#cloud-config\n".into());
        r.login = Some(linux_login());
        let o = create(&p, &r).await;
        state.push((Kind::Machine, r.name.clone(), o[OUT_ID].clone()));
        masters.push(o);
    }
    let member = |i: usize| {
        request(
            &cluster,
            &format!("lbMember/{i}"),
            &format!("{cluster}-apiserver-{i}"),
            Spec::LbMember {
                load_balancer: lb[OUT_ID].clone(),
                machine: masters[i][OUT_ID].clone(),
                port: 6443,
            },
        )
    };
    let m0 = create(&p, &member(0)).await;
    state.push((Kind::LbMember, "m0".into(), m0[OUT_ID].clone()));
    // Again: the same association.
    assert_eq!(create(&p, &member(0)).await[OUT_ID], m0[OUT_ID]);
    // A second master cannot share the floating IP.
    let e = p.create(&member(1)).await.expect_err("one floating IP, one master");
    assert_eq!(e.class, Class::Permanent, "{e}");
    assert!(e.message.contains("Octavia"), "{e}");
    teardown(&p, &cluster, &state).await;
    let left = p.list(&cluster).await.expect("list");
    assert!(left.is_empty(), "left behind: {left:?}");
}
