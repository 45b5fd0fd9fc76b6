//! The scheduling the seeds promise (the Kubernetes Windows guide,
//! kubernetes.io/docs/concepts/windows/user-guide), asserted on a real
//! kube-scheduler: for every example × plugin with Windows pools, a control
//! plane started from the generated PKI (`kube.rs`), CoreDNS and kube-proxy
//! installed by kubeadm from the first master's rendered configuration,
//! every manifest hke renders applied server-side with strict field
//! validation, and one kwok node per planned machine registered with what
//! its boot file gives the kubelet. Then:
//!
//! - a win-webserver Deployment per Windows version, with only
//!   `runtimeClassName: windows-<version>`, lands only on nodes of that
//!   version (the machines' images decide the version, not hke's tables);
//! - a Linux Deployment without tolerations or selectors never lands on a
//!   node whose boot file taints it;
//! - every DaemonSet names its OS and has exactly one pod on each node of
//!   that OS (node-level daemons: kube-proxy, the CNI daemon);
//! - CoreDNS runs on Linux nodes only, and its Service address is the
//!   cluster DNS every kubelet is given.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use hke::model::types::OsType;
use hke::ops::generate::Prepared;

use crate::kube::{self, ControlPlane, SimNode};

const WAIT: Duration = Duration::from_secs(90);

fn prepared(model: &str, sets: &[&str]) -> Prepared {
    let sets: Vec<hke::model::load::SetArg> = sets.iter().map(|s| s.parse().expect("set")).collect();
    hke::ops::generate::prepare(model, &sets, &mut crate::support::rng(21), crate::support::now())
        .unwrap_or_else(|r| panic!("{:?}", r.diagnostics))
}

fn deployment(name: &str, replicas: usize, pod_spec: Value) -> String {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}
        }
    })
    .to_string()
}

/// The OS a pod template requires: `kubernetes.io/os` in its nodeSelector
/// or in every term of its required node affinity.
fn required_os(template_spec: &Value) -> Option<String> {
    if let Some(os) = template_spec["nodeSelector"]["kubernetes.io/os"].as_str() {
        return Some(os.to_string());
    }
    let terms = template_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"]
        .as_array()?;
    let per_term: Vec<Option<String>> = terms
        .iter()
        .map(|t| {
            t["matchExpressions"].as_array()?.iter().find_map(|e| {
                let values = e["values"].as_array()?;
                (e["key"] == "kubernetes.io/os" && e["operator"] == "In" && values.len() == 1)
                    .then(|| values[0].as_str().map(str::to_string))
                    .flatten()
            })
        })
        .collect();
    match per_term.first() {
        Some(Some(os)) if per_term.iter().all(|o| o.as_deref() == Some(os)) => Some(os.clone()),
        _ => None,
    }
}

fn items(v: &Value) -> &[Value] {
    v["items"].as_array().map(Vec::as_slice).unwrap_or_default()
}

fn name_of(v: &Value) -> String {
    format!(
        "{}/{}",
        v["metadata"]["namespace"].as_str().unwrap_or(""),
        v["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// The DaemonSet or ReplicaSet-owning Deployment a pod belongs to
/// (`DaemonSet ns/name` or `ReplicaSet ns/name-hash`).
fn owner(pod: &Value) -> Option<(String, String)> {
    let o = pod["metadata"]["ownerReferences"].as_array()?.first()?;
    Some((
        o["kind"].as_str()?.to_string(),
        format!("{}/{}", pod["metadata"]["namespace"].as_str()?, o["name"].as_str()?),
    ))
}

/// Pods of a Deployment (through its ReplicaSets' names, `<deploy>-<hash>`).
fn deployment_pods<'a>(pods: &'a [Value], ns: &str, deploy: &str) -> Vec<&'a Value> {
    pods.iter()
        .filter(|p| {
            owner(p).is_some_and(|(kind, name)| {
                kind == "ReplicaSet"
                    && name
                        .strip_prefix(&format!("{ns}/{deploy}-"))
                        .is_some_and(|hash| !hash.contains('-'))
            })
        })
        .collect()
}

#[allow(clippy::print_stderr)]
fn schedules_as_promised(variant: &str, p: &Prepared) {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    hke::ops::generate::tree(p)
        .expect("tree")
        .commit(&out, false)
        .expect("write");
    let cp = ControlPlane::start(&out);

    // What the first master's `kubeadm init` installs (CoreDNS and
    // kube-proxy, from its rendered configuration), then hke's manifests
    // as the first master applies them.
    cp.kubeadm_addons(&kube::init_config(&out));
    let plan = hke::plan::plan(&p.cluster).expect("plan");
    let manifests = hke::render::Renderer::new(&p.cluster, &p.pki, &plan.pod_cidrs)
        .expect("renderer")
        .manifests()
        .expect("manifests");
    assert!(
        manifests.iter().any(|(f, _)| f == "10-runtimeclasses.yaml"),
        "{variant}: no RuntimeClasses rendered"
    );
    for (file, content) in &manifests {
        cp.apply(&format!("{variant} {file}"), content, "hke");
    }

    let nodes = kube::planned_nodes(p);
    let by_name: BTreeMap<&str, &SimNode> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    assert_eq!(by_name.len(), nodes.len(), "{variant}: node names are unique");
    for n in &nodes {
        cp.register_node(n);
    }
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    cp.wait_nodes_ready(&names, WAIT);
    let t_nodes = t0.elapsed();

    // Workloads.
    let windows: Vec<&SimNode> = nodes.iter().filter(|n| n.os == OsType::Windows).collect();
    assert!(!windows.is_empty(), "{variant} has no Windows nodes");
    for n in &windows {
        // hke's --node-labels sets the build label itself, overriding the
        // kubelet's (initialNode applies --node-labels last): it must say
        // what the machine's Windows reports.
        let v = n.windows_version.as_deref().expect("version");
        let reported = kube::WINDOWS_BUILDS.iter().find(|(r, _)| *r == v).map(|(_, b)| *b);
        assert_eq!(
            n.labels.get("node.kubernetes.io/windows-build").map(String::as_str),
            reported,
            "{variant}: {} boots Windows Server {v}",
            n.name
        );
    }
    let versions: BTreeSet<&str> = windows.iter().filter_map(|n| n.windows_version.as_deref()).collect();
    let win_replicas = 2 * windows.len();
    let mut expected_deployments: Vec<(String, usize)> = Vec::new();
    for v in &versions {
        let rc = format!("windows-{v}");
        cp.kubectl_ok(&["get", "runtimeclass", &rc]);
        let name = format!("win-webserver-{v}");
        let spec = json!({
            "runtimeClassName": rc,
            "containers": [{
                "name": "iis",
                "image": format!("mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc{v}"),
                "ports": [{"containerPort": 80}]
            }]
        });
        cp.apply(&name, &deployment(&name, win_replicas, spec), "test");
        expected_deployments.push((format!("default/{name}"), win_replicas));
    }
    let linux_replicas = 2 * nodes.len();
    let spec = json!({"containers": [{"name": "web", "image": "registry.k8s.io/nginx-slim:0.27", "ports": [{"containerPort": 80}]}]});
    cp.apply("linux-web", &deployment("linux-web", linux_replicas, spec), "test");
    expected_deployments.push(("default/linux-web".into(), linux_replicas));
    let coredns = cp.get_json(&["deployment", "-n", "kube-system", "coredns"]);
    let coredns_replicas = coredns["spec"]["replicas"].as_u64().expect("coredns replicas") as usize;
    expected_deployments.push(("kube-system/coredns".into(), coredns_replicas));

    // Every DaemonSet names its OS; it must have one pod on each node of it.
    let daemonsets = cp.get_json(&["daemonsets", "-A"]);
    let mut expected_ds: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for ds in items(&daemonsets) {
        let os = required_os(&ds["spec"]["template"]["spec"]).unwrap_or_else(|| {
            panic!(
                "{variant}: DaemonSet {} does not require an OS: its Linux image would be sent to Windows nodes (or the reverse)",
                name_of(ds)
            )
        });
        let mut on: Vec<&str> = nodes
            .iter()
            .filter(|n| n.os_name() == os)
            .map(|n| n.name.as_str())
            .collect();
        on.sort();
        expected_ds.insert(name_of(ds), on);
    }
    assert!(
        expected_ds.contains_key("kube-system/kube-proxy"),
        "{variant}: {expected_ds:?}"
    );

    let pods = cp.wait_for("every workload scheduled and running", WAIT, || {
        let deploys = cp.get_json(&["deployments", "-A"]);
        for (name, want) in &expected_deployments {
            let d = items(&deploys)
                .iter()
                .find(|d| &name_of(d) == name)
                .ok_or(format!("no deployment {name}"))?;
            let ready = d["status"]["readyReplicas"].as_u64().unwrap_or(0) as usize;
            if ready != *want {
                return Err(format!("{name}: {ready}/{want} ready"));
            }
        }
        let dss = cp.get_json(&["daemonsets", "-A"]);
        for ds in items(&dss) {
            let want = expected_ds.get(&name_of(ds)).map(Vec::len).unwrap_or(0) as u64;
            let s = &ds["status"];
            let (desired, ready) = (
                s["desiredNumberScheduled"].as_u64().unwrap_or(0),
                s["numberReady"].as_u64().unwrap_or(0),
            );
            if desired != want || ready != want {
                return Err(format!(
                    "DaemonSet {}: desired {desired}, ready {ready}, nodes of its OS {want}",
                    name_of(ds)
                ));
            }
        }
        let pods = cp.get_json(&["pods", "-A"]);
        if let Some(p) = items(&pods).iter().find(|p| p["status"]["phase"] != "Running") {
            return Err(format!("pod {} is {}", name_of(p), p["status"]["phase"]));
        }
        Ok(pods)
    });
    let pods = items(&pods);
    let node_of = |p: &Value| -> &SimNode {
        let n = p["spec"]["nodeName"]
            .as_str()
            .unwrap_or_else(|| panic!("{} unbound", name_of(p)));
        by_name
            .get(n)
            .unwrap_or_else(|| panic!("{} on unknown node {n}", name_of(p)))
    };

    // A RuntimeClass alone puts win-webserver on its version's nodes.
    for v in &versions {
        let name = format!("win-webserver-{v}");
        let ps = deployment_pods(pods, "default", &name);
        assert_eq!(ps.len(), win_replicas, "{variant} {name}");
        let mut spread = BTreeSet::new();
        for p in &ps {
            let n = node_of(p);
            assert_eq!(
                (n.os, n.windows_version.as_deref()),
                (OsType::Windows, Some(*v)),
                "{variant}: {} (RuntimeClass windows-{v}) landed on {} ({:?}, Windows {:?})",
                name_of(p),
                n.name,
                n.os,
                n.windows_version
            );
            spread.insert(n.name.as_str());
        }
        let of_version = windows
            .iter()
            .filter(|n| n.windows_version.as_deref() == Some(*v))
            .count();
        eprintln!(
            "{variant}: {name}: {win_replicas} pods on {} of the {of_version} Windows {v} nodes",
            spread.len()
        );
    }

    // A Linux Deployment without tolerations stays off tainted nodes.
    let ps = deployment_pods(pods, "default", "linux-web");
    assert_eq!(ps.len(), linux_replicas, "{variant}");
    let mut landed: BTreeMap<String, usize> = BTreeMap::new();
    for p in &ps {
        let n = node_of(p);
        let repelling: Vec<_> = n.taints.iter().filter(|t| t.repels()).collect();
        assert!(
            repelling.is_empty(),
            "{variant}: {} (no tolerations) landed on {} tainted {repelling:?}",
            name_of(p),
            n.name
        );
        let kind = match (n.os, n.taints.is_empty()) {
            (OsType::Windows, true) => "untainted Windows",
            (OsType::Windows, false) => "tainted Windows",
            (OsType::Linux, _) => "Linux",
        };
        *landed.entry(kind.to_string()).or_default() += 1;
    }
    let tainted_windows = windows.iter().filter(|n| n.taints.iter().any(|t| t.repels())).count();
    eprintln!(
        "{variant}: linux-web pods by node kind {landed:?} ({tainted_windows} of {} Windows nodes tainted)",
        windows.len()
    );
    if tainted_windows == windows.len() {
        // The taints from the boot files are live: a Windows pod that
        // tolerates nothing has nowhere to go.
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "windows-untolerated", "namespace": "default"},
            "spec": {
                "nodeSelector": {"kubernetes.io/os": "windows"},
                "containers": [{"name": "c", "image": "mcr.microsoft.com/windows/nanoserver:ltsc2022"}]
            }
        });
        cp.apply("windows-untolerated", &pod.to_string(), "test");
        cp.wait_for("windows-untolerated reported unschedulable", WAIT, || {
            let p = cp.get_json(&["pod", "windows-untolerated"]);
            let cond = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "PodScheduled")
                .cloned()
                .unwrap_or_default();
            match (
                cond["status"].as_str(),
                cond["reason"].as_str(),
                p["spec"]["nodeName"].as_str(),
            ) {
                (_, _, Some(n)) => panic!("{variant}: an untolerating Windows pod was bound to {n}"),
                (Some("False"), Some("Unschedulable"), _)
                    if cond["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("untolerated taint")) =>
                {
                    Ok(())
                }
                _ => Err(format!("{cond}")),
            }
        });
    }

    // DaemonSets: exactly one pod on each node of their OS.
    for (ds, want) in &expected_ds {
        let mut on: Vec<&str> = pods
            .iter()
            .filter(|p| owner(p).is_some_and(|(k, n)| k == "DaemonSet" && &n == ds))
            .map(|p| node_of(p).name.as_str())
            .collect();
        on.sort();
        assert_eq!(&on, want, "{variant}: DaemonSet {ds} pods by node");
    }
    let windows_ds: Vec<&String> = expected_ds
        .iter()
        .filter(|(_, on)| on.iter().any(|n| by_name[n].os == OsType::Windows))
        .map(|(ds, _)| ds)
        .collect();
    eprintln!(
        "{variant}: DaemonSets {:?}; on Windows: {windows_ds:?}",
        expected_ds.keys().collect::<Vec<_>>()
    );

    // CoreDNS on Linux, behind the address every kubelet is told.
    let ps = deployment_pods(pods, "kube-system", "coredns");
    assert_eq!(ps.len(), coredns_replicas, "{variant}");
    for p in &ps {
        assert_eq!(node_of(p).os, OsType::Linux, "{variant}: {} off Linux", name_of(p));
    }
    let dns_ip = cp.get_json(&["service", "-n", "kube-system", "kube-dns"])["spec"]["clusterIP"]
        .as_str()
        .expect("kube-dns clusterIP")
        .to_string();
    for n in &nodes {
        if let Some(dns) = n.kubelet_flags.get("cluster-dns") {
            assert_eq!(dns, &dns_ip, "{variant}: {}'s kubelet --cluster-dns", n.name);
        }
    }
    eprintln!(
        "{variant}: {} nodes registered and Ready at {:.1}s, scheduling checked at {:.1}s",
        nodes.len(),
        t_nodes.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

fn example_variants(example: &str) {
    let mut n = 0;
    for (variant, p) in crate::nodes::variants() {
        if variant.starts_with(&format!("{example}/")) {
            schedules_as_promised(&variant, &p);
            n += 1;
        }
    }
    assert!(n > 0, "no variants of {example}");
}

#[test]
fn windows_json_schedules_as_the_windows_guide_promises() {
    example_variants("windows.json");
}

#[test]
fn windows_aws_json_schedules_as_the_windows_guide_promises() {
    example_variants("windows-aws.json");
}

#[test]
fn windows_gcp_json_schedules_as_the_windows_guide_promises() {
    example_variants("windows-gcp.json");
}

/// Two Windows versions, both tainted as the guide recommends: a 2019 pool
/// large enough to be a machine group (its instances name themselves at
/// boot) beside the example's 2022 pool. Each RuntimeClass must select its
/// own version and tolerate its taint; Linux pods must stay off both.
#[test]
fn two_tainted_windows_versions_schedule_by_runtime_class() {
    let p = prepared(
        &crate::support::example("windows.json"),
        &[
            "properties.orchestratorProfile.kubernetesConfig.networkPlugin=flannel",
            "properties.agentPoolProfiles[1].kubernetesConfig.kubeletConfig.--register-with-taints=os=windows:NoSchedule",
            "properties.agentPoolProfiles[2].name=win2019",
            "properties.agentPoolProfiles[2].count=20",
            "properties.agentPoolProfiles[2].osType=Windows",
            "properties.agentPoolProfiles[2].windowsVersion=2019",
            "properties.agentPoolProfiles[2].vmSize=Standard_D2s_v3",
            "properties.agentPoolProfiles[2].kubernetesConfig.kubeletConfig.--register-with-taints=os=windows:NoSchedule",
        ],
    );
    let plan = hke::plan::plan(&p.cluster).expect("plan");
    assert!(
        plan.resources
            .values()
            .any(|r| matches!(r.spec, hke_provider_api::Spec::MachineGroup(_))),
        "the 2019 pool is a machine group"
    );
    schedules_as_promised("windows.json/flannel + tainted win2019 ×20", &p);
}
