//! What a node needs to join and network, one fact per test, for every
//! shipped example under every network plugin it supports. Each test names
//! the upstream behaviour it encodes (issue 13's defects); the real parsers
//! judge the same files in `upstream.rs`.

use hke::model::types::OsType;
use hke::ops::generate::Prepared;
use hke::render::{FileKind, NodeSpec};

use crate::support::{example, now, rng};

fn prepared(model: &str, plugin: &str) -> Prepared {
    let set: hke::model::load::SetArg =
        format!("properties.orchestratorProfile.kubernetesConfig.networkPlugin={plugin}")
            .parse()
            .expect("set");
    hke::ops::generate::prepare(model, &[set], &mut rng(21), now()).unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
}

/// Every example × every plugin it supports, with a machine-group Windows
/// pool as well (the instances that learn their name at boot).
pub fn variants() -> Vec<(String, Prepared)> {
    let mut v = Vec::new();
    for (ex, plugins) in [
        ("windows.json", &["azure", "kubenet", "flannel"][..]),
        ("windows-aws.json", &["kubenet", "flannel"][..]),
        ("windows-gcp.json", &["kubenet", "flannel"][..]),
    ] {
        for plugin in plugins {
            v.push((format!("{ex}/{plugin}"), prepared(&example(ex), plugin)));
        }
    }
    v
}

pub fn specs(p: &Prepared) -> Vec<(String, NodeSpec)> {
    let plan = hke::plan::plan(&p.cluster).expect("plan");
    hke::ops::generate::node_specs(&p.cluster, &p.pki, &plan).expect("renders")
}

fn file<'a>(spec: &'a NodeSpec, path: &str) -> &'a str {
    &spec
        .files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{} has no {path}", spec.name))
        .content
}

/// containerd/platforms' grammar for a specifier:
/// `os[(osversion)]/arch[/variant]`, os `[A-Za-z0-9_-]+`, osversion
/// `[A-Za-z0-9_.-]*`, arch and variant `[A-Za-z0-9_.-]+` (platforms.go Parse).
fn is_platform(s: &str) -> bool {
    let part = |p: &str, dots: bool| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (dots && c == '.'))
    };
    let mut it = s.split('/');
    let (Some(os), Some(arch)) = (it.next(), it.next()) else {
        return false;
    };
    let variant_ok = it.next().is_none_or(|v| part(v, true));
    let os_ok = match os.split_once('(') {
        Some((name, rest)) => {
            part(name, false)
                && rest.ends_with(')')
                && rest[..rest.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        None => part(os, false),
    };
    os_ok && part(arch, true) && variant_ok && it.next().is_none()
}

#[test]
fn every_platform_specifier_parses_by_containerds_grammar() {
    assert!(is_platform("windows(10.0.20348)/amd64"));
    assert!(is_platform("linux/arm64/v8"));
    // What every Windows node rendered before: the step threw and the node
    // never reached kubelet.
    assert!(!is_platform("windows/amd64:10.0.20348"));
    let mut n = 0;
    for (name, p) in variants() {
        for (node, spec) in specs(&p) {
            for platform in &spec.platforms {
                assert!(is_platform(platform), "{name} {node}: {platform}");
                n += 1;
            }
            if spec.os == OsType::Windows {
                assert!(
                    !spec.platforms.is_empty(),
                    "{name} {node}: the pause pull names its platform"
                );
                assert!(
                    spec.boot.content.contains("'--platform', $PausePlatform"),
                    "{name} {node}"
                );
            }
        }
    }
    assert!(n >= 8, "{n}");
}

#[test]
fn c_k_is_on_path_before_kubeadm_runs() {
    for (name, p) in variants() {
        for (node, spec) in specs(&p).into_iter().filter(|(_, s)| s.os == OsType::Windows) {
            let script = &spec.boot.content;
            let machine = script
                .find("SetEnvironmentVariable('Path'")
                .unwrap_or_else(|| panic!("{name} {node}: C:\\k never reaches the machine Path"));
            let process = script.find("$env:Path = ").expect("process Path");
            let join = script.find("& $kubeadm join").expect("join");
            assert!(machine < join && process < join, "{name} {node}");
            // Every run sets it, not a step that a re-run skips.
            assert!(
                script[..machine].rfind("Invoke-Step").is_none(),
                "{name} {node}: PATH set inside a step"
            );
        }
    }
}

/// Table headers of a TOML file, `[a.b]` and `[[a]]`.
fn toml_tables(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim().to_string())
        .collect()
}

#[test]
fn containerd_configs_are_whole_files_without_duplicate_tables() {
    let mut n = 0;
    for (name, mut p) in variants() {
        // Hyper-V pools too: containerd 2.2's Windows defaults already have
        // runhcs-wcow-hypervisor; writing the table again is a TOML error.
        if let Some(pool) = p.cluster.pools.iter_mut().find(|x| x.os == OsType::Windows) {
            pool.hyperv = true;
        }
        for (node, spec) in specs(&p) {
            let cfg: Vec<_> = spec
                .files
                .iter()
                .filter(|f| f.kind == FileKind::ContainerdConfig)
                .collect();
            assert_eq!(cfg.len(), 1, "{name} {node}");
            let t = toml_tables(&cfg[0].content);
            let mut d = t.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), t.len(), "{name} {node}: {t:?}");
            assert!(cfg[0].content.contains("version = 3"), "{name} {node}");
            // No script edits it at boot any more.
            assert!(!spec.boot.content.contains("config default"), "{name} {node}");
            n += 1;
        }
    }
    assert!(n > 20, "{n}");
}

#[test]
fn every_cni_file_name_matches_its_content() {
    let mut n = 0;
    for (name, p) in variants() {
        for (node, spec) in specs(&p) {
            for f in spec.files.iter().filter(|f| f.kind == FileKind::Cni) {
                let v: serde_json::Value = serde_json::from_str(&f.content).expect("json");
                let list = v.get("plugins").is_some_and(|p| p.is_array());
                if f.path.ends_with(".conflist") {
                    assert!(list && v.get("type").is_none(), "{name} {node} {}", f.path);
                } else {
                    assert!(
                        f.path.ends_with(".conf") && !list && v.get("type").is_some(),
                        "{name} {node} {}: go-cni refuses a list in a .conf",
                        f.path
                    );
                }
                n += 1;
            }
        }
    }
    assert!(n >= 8, "{n}");
}

#[test]
fn flannel_is_vni_4096_on_port_4789_on_both_sides() {
    for (name, p) in variants().into_iter().filter(|(n, _)| n.ends_with("/flannel")) {
        let files = crate::render::files_of(&p);
        let manifest = files
            .iter()
            .find(|(k, _)| k.ends_with("-flannel.yaml"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name}: no flannel manifest"));
        // The ConfigMap's net-conf.json, as the Linux DaemonSet reads it.
        let docs: Vec<serde_json::Value> = manifest
            .split("\n---\n")
            .skip(1)
            .map(|d| serde_json::from_str(d).expect("json document"))
            .collect();
        let cm = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap")
            .expect("kube-flannel-cfg");
        let linux: serde_json::Value =
            serde_json::from_str(cm["data"]["net-conf.json"].as_str().expect("net-conf")).expect("json");
        for (node, spec) in specs(&p).into_iter().filter(|(_, s)| s.os == OsType::Windows) {
            let windows: serde_json::Value =
                serde_json::from_str(file(&spec, hke::render::WINDOWS_FLANNEL_NET_CONF)).expect("json");
            for (side, conf) in [("linux", &linux), ("windows", &windows)] {
                assert_eq!(conf["Backend"]["Type"], "vxlan", "{name} {node} {side}");
                assert_eq!(conf["Backend"]["VNI"], 4096, "{name} {node} {side}");
                assert_eq!(conf["Backend"]["Port"], 4789, "{name} {node} {side}");
                assert_eq!(
                    conf["Network"],
                    p.cluster.network.pod_cidr.to_string(),
                    "{name} {node} {side}"
                );
            }
            // The Windows CNI names the network flanneld makes (flannel.<VNI>).
            let cni = spec.files.iter().find(|f| f.kind == FileKind::Cni).expect("cni");
            let v: serde_json::Value = serde_json::from_str(&cni.content).expect("json");
            assert_eq!(v["name"], "flannel.4096", "{name} {node}");
            assert_eq!(v["plugins"][0]["delegate"]["type"], "win-overlay", "{name} {node}");
            assert_eq!(v["plugins"][0]["delegate"]["apiVersion"], 2, "{name} {node}");
        }
    }
}

#[test]
fn a_kube_proxy_runs_on_windows_for_every_plugin() {
    let mut n = 0;
    for (name, p) in variants() {
        let plugin = p.cluster.network.plugin;
        for (node, spec) in specs(&p).into_iter().filter(|(_, s)| s.os == OsType::Windows) {
            let a = &spec.kube_proxy_args;
            assert!(
                a.contains(&"--proxy-mode=kernelspace".to_string()),
                "{name} {node}: {a:?}"
            );
            let network = format!("--network-name={}", hke::render::cni::hns_network_name(plugin));
            assert!(a.contains(&network), "{name} {node}: {a:?}");
            assert_eq!(
                a.iter().any(|x| x.starts_with("--source-vip=")),
                plugin.is_overlay(),
                "{name} {node}: overlay networks need a source VIP: {a:?}"
            );
            // Its identity: a kubeconfig with the system:kube-proxy client
            // certificate, readable by SYSTEM and Administrators only.
            let conf = spec
                .files
                .iter()
                .find(|f| f.path == hke::render::WINDOWS_KUBE_PROXY_KUBECONFIG)
                .expect("kube-proxy kubeconfig");
            assert!(conf.secret, "{name} {node}");
            let script = &spec.boot.content;
            assert!(
                script.contains("New-Service -Name 'kube-proxy'") && script.contains("Start-Service kube-proxy"),
                "{name} {node}: kube-proxy is installed and started"
            );
            // Both services keep their logs through kube-log-runner.
            assert!(script.contains("'kube-log-runner.exe'"), "{name} {node}");
            n += 1;
        }
    }
    assert!(n >= 8, "{n}");
    // The certificate is the identity Kubernetes' default RBAC binds.
    let (_, p) = &variants()[0];
    assert!(p.pki.kube_proxy.cert.contains("BEGIN CERTIFICATE"));
}

#[test]
fn kubenet_on_windows_uses_hns_v2_and_leaves_the_gateway_and_host_endpoint_free() {
    for (name, p) in variants().into_iter().filter(|(n, _)| n.ends_with("/kubenet")) {
        for (node, spec) in specs(&p).into_iter().filter(|(_, s)| s.os == OsType::Windows) {
            let cni = spec.files.iter().find(|f| f.kind == FileKind::Cni).expect("cni");
            let v: serde_json::Value = serde_json::from_str(&cni.content).expect("json");
            let plugin = &v["plugins"][0];
            assert_eq!(plugin["type"], "win-bridge", "{name} {node}");
            assert_eq!(plugin["apiVersion"], 2, "{name} {node}: HNS v1 fails under containerd");
            assert_eq!(
                plugin["ipam"]["ranges"][0][0]["rangeStart"],
                hke::render::cni::POD_RANGE_START_PLACEHOLDER,
                "{name} {node}"
            );
            let script = &spec.boot.content;
            // Filled in from .1 / .2 / .3 of the node's range.
            for offset in ["-Offset 1", "-Offset 2", "-Offset 3"] {
                assert!(script.contains(offset), "{name} {node}: {offset}");
            }
            for placeholder in [
                hke::render::cni::POD_CIDR_PLACEHOLDER,
                hke::render::cni::POD_RANGE_START_PLACEHOLDER,
                hke::render::cni::NODE_IP_PLACEHOLDER,
            ] {
                assert!(
                    script.contains(&format!("-replace '{placeholder}'")),
                    "{name} {node}: {placeholder} is never filled in"
                );
            }
            // Not an inbox cmdlet: hke calls HNS itself.
            assert!(!script.contains("New-HnsNetwork "), "{name} {node}");
            assert!(
                script.contains("New-HkeHnsNetwork") && script.contains("'/attach'"),
                "{name} {node}"
            );
            assert!(script.contains("SystemType = 'Host'"), "{name} {node}: host endpoint");
        }
    }
}

#[test]
fn joins_retry_after_a_reset_and_succeed_only_on_kubeadms_word() {
    for (name, p) in variants() {
        for (node, spec) in specs(&p) {
            if spec.os == OsType::Windows {
                let s = &spec.boot.content;
                let join = s.find("& $kubeadm join").expect("join");
                let reset = s.find("& $kubeadm reset -f").expect("reset");
                assert!(reset > join, "{name} {node}");
                continue;
            }
            let script = file(&spec, "/etc/hke/bootstrap.sh");
            if script.contains("kubeadm join --config") {
                let after = &script[script.find("kubeadm join --config").expect("join")..];
                let loop_end = after.find("\ndone").expect("loop");
                assert!(
                    after[..loop_end].contains("kubeadm reset -f"),
                    "{name} {node}: a retry after a partial join needs a reset"
                );
                assert!(
                    !after[..loop_end].contains("kubelet.conf ]"),
                    "{name} {node}: kubelet.conf is not proof of a join"
                );
            }
            // First-boot apt waits for the dpkg lock.
            assert!(script.contains("DPkg::Lock::Timeout"), "{name} {node}");
        }
    }
}

#[test]
fn no_manifest_is_fetched_from_a_url_at_boot() {
    for (name, p) in variants() {
        let first_master = &p.cluster.masters.names[0];
        for (node, spec) in specs(&p).into_iter().filter(|(_, s)| s.os == OsType::Linux) {
            let script = file(&spec, "/etc/hke/bootstrap.sh");
            assert!(!script.contains("kubectl apply -f 'http"), "{name} {node}");
            let manifests: Vec<_> = spec.files.iter().filter(|f| f.kind == FileKind::Manifest).collect();
            if &node == first_master {
                assert!(!manifests.is_empty(), "{name}: the first master applies the add-ons");
                if name.ends_with("/flannel") {
                    let m = manifests
                        .iter()
                        .find(|f| f.path.ends_with("-flannel.yaml"))
                        .expect("flannel manifest");
                    assert!(m.content.contains(hke::render::addons::images::FLANNEL));
                }
            } else {
                assert!(manifests.is_empty(), "{name} {node}");
            }
        }
    }
}

#[test]
fn kubenet_machine_groups_configure_their_own_host_name() {
    let mut p = prepared(&example("windows-gcp.json"), "kubenet");
    // A pool large enough to become a machine group.
    let set: hke::model::load::SetArg = "properties.agentPoolProfiles[0].count=30".parse().expect("set");
    p = hke::ops::generate::prepare(
        &example("windows-gcp.json"),
        &[
            "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet"
                .parse()
                .expect("set"),
            set,
        ],
        &mut rng(3),
        now(),
    )
    .unwrap_or(p);
    for (node, spec) in specs(&p).into_iter().filter(|(_, s)| s.os == OsType::Linux) {
        let script = file(&spec, "/etc/hke/bootstrap.sh");
        assert!(!script.contains("hke-kubenet ''"), "{node}: empty node name");
        if spec.name.is_empty() {
            assert!(script.contains("$(hostname"), "{node}");
        }
    }
}

#[test]
fn azure_cni_runs_on_every_node_and_each_nic_has_an_address_per_pod() {
    let p = prepared(&example("windows.json"), "azure");
    let max_pods = p.cluster.network.max_pods;
    for (node, spec) in specs(&p) {
        let cni: Vec<_> = spec.files.iter().filter(|f| f.kind == FileKind::Cni).collect();
        assert_eq!(cni.len(), 1, "{node}: Azure CNI's configuration");
        assert!(cni[0].path.ends_with("10-azure.conflist"), "{node}: {}", cni[0].path);
        let v: serde_json::Value = serde_json::from_str(&cni[0].content).expect("json");
        assert_eq!(v["plugins"][0]["type"], "azure-vnet", "{node}");
        assert_eq!(v["plugins"][0]["ipam"]["type"], "azure-vnet-ipam", "{node}");
        if spec.os == OsType::Linux {
            let script = file(&spec, "/etc/hke/bootstrap.sh");
            assert!(
                script.contains("azure-vnet-ipam /opt/cni/bin/"),
                "{node}: binaries installed"
            );
            assert!(script.contains("ebtables"), "{node}");
        }
    }
    // azure-vnet-ipam hands out the NIC's secondary addresses: one per pod.
    let plan = hke::plan::plan(&p.cluster).expect("plan");
    let mut machines = 0;
    for r in plan.resources.values() {
        let pod_ips = match &r.spec {
            hke_provider_api::Spec::Machine(m) => m.pod_ips,
            hke_provider_api::Spec::MachineGroup(g) => g.pod_ips,
            _ => continue,
        };
        assert_eq!(pod_ips, max_pods, "{}", r.name);
        machines += 1;
    }
    assert!(machines > 3);
    let nic = hke_provider_azure::nic_props("subnet", "nsg", None, false, &[], max_pods);
    let v = serde_json::to_value(&nic).expect("json");
    let configs = v["ipConfigurations"].as_array().expect("list");
    assert_eq!(configs.len() as u32, 1 + max_pods);
    assert_eq!(configs.iter().filter(|c| c["properties"]["primary"] == true).count(), 1);
    // Other plugins: no secondary addresses.
    let plan = hke::plan::plan(&prepared(&example("windows.json"), "flannel").cluster).expect("plan");
    assert!(plan.resources.values().all(|r| !matches!(
        &r.spec,
        hke_provider_api::Spec::Machine(m) if m.pod_ips > 0
    )));
}
