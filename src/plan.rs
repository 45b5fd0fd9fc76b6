//! The plan: a deterministic DAG of cloud resources for a validated cluster.
//!
//! Pure: no IO, no randomness. Values known only once another resource exists
//! (a load balancer's address) are `Val::Ref`s that the engine resolves.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use hke_provider_api::{snat, Image, Kind, MachineGroupSpec, MachineSpec, Os, Rule, Spec, Val};
use serde::Serialize;

use crate::catalog::versions;
use crate::catalog::vmsizes;
use crate::cluster::Cluster;
use crate::model::types::{Cidr, NetworkPlugin, OsType};

/// A resource of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    /// Name in the cloud.
    pub name: String,
    pub spec: Spec<Val>,
    /// Logical ids this resource needs first (derived from the spec's refs).
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub cluster: String,
    pub cloud: String,
    /// Logical id → resource, in a stable order.
    pub resources: BTreeMap<String, Planned>,
    /// Node name → pod CIDR (kubenet routes; the bootstrap uses the same map).
    pub pod_cidrs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("resource {0} depends on {1}, which is not in the plan")]
    Dangling(String, String),
    #[error("the plan has a dependency cycle through {0}")]
    Cycle(String),
    #[error("the pod network {0} has room for {1} nodes but the cluster has {2}")]
    PodCidrExhausted(String, u64, u64),
}

pub const GROUP: &str = "group";
pub const NETWORK: &str = "network";
pub const SUBNET: &str = "subnet/nodes";
pub const FIREWALL: &str = "firewall/nodes";
pub const ADDRESS: &str = "publicAddress/apiserver";
pub const LB: &str = "loadBalancer/apiserver";
/// Logical id prefix of the load balancer's extra outbound addresses (Azure).
pub const OUTBOUND_ADDRESS: &str = "publicAddress/outbound-";

pub use crate::cluster::names::MACHINE_GROUP_MIN;

/// The bootstrap input naming the API server's address.
pub const INPUT_ENDPOINT: &str = "endpoint";

/// The cloud name of a pool's machine group.
pub fn group_name(c: &Cluster, pool: &str) -> String {
    format!("k8s-{pool}-{}-vmss", c.id)
}

/// Instance name prefix of a pool's machine group: Windows computer names
/// are at most 15 characters, and clouds add a 6-character suffix.
pub fn group_prefix(c: &Cluster, pool: &crate::cluster::Pool) -> String {
    match pool.os {
        OsType::Windows => format!(
            "{}k8s{:02}",
            crate::cluster::names::windows_stem(&c.id, c.provider.cloud),
            pool.index % 100
        ),
        OsType::Linux => format!("k8s-{}-{}-", pool.name, c.id),
    }
}

pub fn machine_id(node: &str) -> String {
    format!("machine/{node}")
}

/// Per-node pod CIDRs (/24 each), masters first, then pools in order.
pub fn allocate_pod_cidrs(c: &Cluster) -> Result<BTreeMap<String, String>, PlanError> {
    let pod: Cidr = c.network.pod_cidr;
    let nodes: Vec<&String> = c
        .masters
        .names
        .iter()
        .chain(c.pools.iter().flat_map(|p| p.node_names.iter()))
        .collect();
    let room = if pod.prefix() <= 24 {
        1u64 << (24 - pod.prefix())
    } else {
        0
    };
    if (nodes.len() as u64) > room {
        return Err(PlanError::PodCidrExhausted(pod.to_string(), room, nodes.len() as u64));
    }
    Ok(nodes
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let base = u32::from(pod.network()) + ((i as u32) << 8);
            (n.clone(), format!("{}/24", Ipv4Addr::from(base)))
        })
        .collect())
}

fn image_for(
    c: &Cluster,
    windows: Option<crate::model::types::WindowsVersion>,
    pinned: Option<&str>,
    size: &str,
) -> Image {
    let t = versions::table();
    let (name, set) = match windows {
        Some(w) => (format!("windows-{w}"), &t.windows(w).images),
        None => ("ubuntu-24.04".to_string(), &t.linux),
    };
    let mut lookup = BTreeMap::new();
    match c.provider.cloud {
        crate::model::types::Cloud::Azure | crate::model::types::Cloud::Fake => {
            lookup.insert("publisher".into(), set.azure.publisher.clone());
            lookup.insert("offer".into(), set.azure.offer.clone());
            // Generation 2 where the size boots it, else generation 1: a
            // Gen1-only size (Dv3) cannot boot a Gen2 SKU and the v6 series
            // cannot boot a Gen1 one.
            let (_, gen2) = crate::catalog::vmsizes::azure_generations(size);
            let sku = if gen2 { &set.azure.sku_gen2 } else { &set.azure.sku };
            lookup.insert("sku".into(), sku.clone());
            let win = c.windows.as_ref().filter(|_| windows.is_some());
            let version = win
                .and_then(|w| w.azure_image_version.clone())
                .unwrap_or_else(|| set.azure.version.clone());
            lookup.insert("version".into(), version);
            if win.is_some_and(|w| w.azure_hybrid_benefit) {
                lookup.insert("licenseType".into(), "Windows_Server".into());
            }
        }
        crate::model::types::Cloud::Aws => match pinned {
            Some(ami) => {
                lookup.insert("imageId".into(), ami.to_string());
            }
            None => {
                lookup.insert("amiNamePattern".into(), set.aws.ami_name_pattern.clone());
                lookup.insert("owner".into(), set.aws.owner.clone());
            }
        },
        crate::model::types::Cloud::Gcp => {
            lookup.insert("project".into(), set.gcp.project.clone());
            lookup.insert("family".into(), set.gcp.family.clone());
        }
        // No public catalog: the Glance image the model names for the OS
        // (validation requires one for each OS and Windows version in use).
        crate::model::types::Cloud::OpenStack => {
            let key = match windows {
                Some(w) => format!("windows-{w}"),
                None => "linux".to_string(),
            };
            if let Some(image) = c.provider.openstack.as_ref().and_then(|o| o.images.get(&key)) {
                lookup.insert("image".into(), image.clone());
            }
        }
    }
    Image { name, lookup }
}

/// How many times this process planned a cluster: one command plans once,
/// which a test holds.
pub static PLANNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Build the plan of a cluster.
pub fn plan(c: &Cluster) -> Result<Plan, PlanError> {
    PLANNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = c.name.as_str();
    let mut r: BTreeMap<String, (String, Spec<Val>)> = BTreeMap::new();
    let rg_name = c
        .provider
        .azure_resource_group
        .clone()
        .unwrap_or_else(|| name.to_string());
    r.insert(
        GROUP.into(),
        (
            rg_name,
            Spec::Group {
                location: c.provider.location.clone(),
                // AWS keeps it as the cluster's key pair.
                ssh_public_key: (c.provider.cloud == crate::model::types::Cloud::Aws)
                    .then(|| c.linux.ssh_public_keys.first().cloned())
                    .flatten(),
            },
        ),
    );
    r.insert(
        NETWORK.into(),
        (
            format!("{name}-vnet"),
            Spec::Network {
                cidr: c.network.node_cidr.to_string(),
                group: Val::id_of(GROUP),
            },
        ),
    );
    r.insert(
        SUBNET.into(),
        (
            format!("{name}-nodes"),
            Spec::Subnet {
                network: Val::id_of(NETWORK),
                cidr: c.network.node_cidr.to_string(),
            },
        ),
    );
    let mut rules = vec![
        Rule {
            name: "apiserver".into(),
            protocol: "tcp".into(),
            ports: c.endpoint.port.to_string(),
            sources: c.network.api_source_ranges.clone(),
        },
        Rule {
            name: "ssh".into(),
            protocol: "tcp".into(),
            ports: "22".into(),
            sources: c.network.api_source_ranges.clone(),
        },
        // Node to node: kubelet 10250, VXLAN 4789/udp, NodePorts, etcd.
        Rule {
            name: "nodes".into(),
            protocol: "all".into(),
            ports: "*".into(),
            sources: vec![c.network.node_cidr.to_string()],
        },
    ];
    if c.network.plugin != NetworkPlugin::Azure {
        rules.push(Rule {
            name: "pods".into(),
            protocol: "all".into(),
            ports: "*".into(),
            sources: vec![c.network.pod_cidr.to_string()],
        });
    }
    // Azure: a node's packet to the API server's public frontend leaves
    // through the load balancer's outbound rule and arrives from one of its
    // frontend addresses (SNAT; learn.microsoft.com/azure/load-balancer/
    // outbound-rules), so a restricted rule must admit those addresses too.
    // OpenStack: a node's packet to the API server's floating IP is
    // hairpinned by the router, which SNATs it to its gateway address
    // (`OUT_EGRESS_ADDRESS`). AWS and GCP give nodes an endpoint they reach
    // privately.
    let restricted = !c.network.api_source_ranges.iter().any(|s| s == "0.0.0.0/0");
    let mut more_sources = BTreeMap::new();
    if restricted && c.provider.cloud == crate::model::types::Cloud::OpenStack {
        more_sources.insert(
            "apiserver".to_string(),
            vec![Val::output(NETWORK, hke_provider_api::resource::OUT_EGRESS_ADDRESS)],
        );
    }
    if restricted && c.provider.cloud == crate::model::types::Cloud::Azure {
        let egress = std::iter::once(Val::output(ADDRESS, hke_provider_api::resource::OUT_ADDRESS))
            .chain((1..snat::frontend_ips(c.node_count())).map(|k| {
                Val::output(
                    &format!("{OUTBOUND_ADDRESS}{k}"),
                    hke_provider_api::resource::OUT_ADDRESS,
                )
            }))
            .collect();
        more_sources.insert("apiserver".to_string(), egress);
    }
    r.insert(
        FIREWALL.into(),
        (
            format!("{name}-nsg"),
            Spec::Firewall {
                network: Val::id_of(NETWORK),
                rules,
                more_sources,
            },
        ),
    );
    // AWS: several masters sit behind a network load balancer, whose
    // addresses AWS assigns; one master gets an Elastic IP instead.
    let nlb = c.provider.cloud == crate::model::types::Cloud::Aws && c.masters.count > 1;
    if !nlb {
        r.insert(
            ADDRESS.into(),
            (
                format!("{name}-apiserver-ip"),
                Spec::PublicAddress {
                    group: Val::id_of(GROUP),
                    dns_label: Some(name.to_string()),
                },
            ),
        );
    }
    // Azure: every node leaves through the load balancer's outbound rule,
    // which hke gives `snat::PORTS_PER_NODE` ports per node; the API
    // server's address is its first frontend, and these are the others
    // (the load balancer depends on them, below).
    let lb_name = format!("{name}-apiserver");
    let mut outbound: Vec<String> = Vec::new();
    if c.provider.cloud == crate::model::types::Cloud::Azure {
        let backend = c.node_count();
        for k in 1..snat::frontend_ips(backend) {
            let id = format!("{OUTBOUND_ADDRESS}{k}");
            r.insert(
                id.clone(),
                (
                    snat::outbound_address_name(&lb_name, k),
                    Spec::PublicAddress {
                        group: Val::id_of(GROUP),
                        dns_label: None,
                    },
                ),
            );
            outbound.push(id);
        }
    }
    // OpenStack: Octavia's amphora proxies, so the masters' security group
    // sees the amphora, not the client; its listener admits the clients'
    // ranges itself, and the nodes' hairpinned packets (from the router's
    // gateway address).
    let allowed_sources = if restricted && c.provider.cloud == crate::model::types::Cloud::OpenStack {
        c.network
            .api_source_ranges
            .iter()
            .map(Val::lit)
            .chain([Val::output(NETWORK, hke_provider_api::resource::OUT_EGRESS_ADDRESS)])
            .collect()
    } else {
        Vec::new()
    };
    r.insert(
        LB.into(),
        (
            lb_name,
            Spec::LoadBalancer {
                address: (!nlb).then(|| Val::id_of(ADDRESS)),
                subnet: Val::id_of(SUBNET),
                port: c.endpoint.port,
                allowed_sources,
            },
        ),
    );
    let kubenet = c.network.plugin == NetworkPlugin::Kubenet;
    let pod_cidrs = allocate_pod_cidrs(c)?;
    let bootstrap_inputs = || {
        let mut m = BTreeMap::new();
        // The API server as nodes reach it: the load balancer's DNS name
        // (Azure), or its address (GCP forwarding rules have none). AWS:
        // a name that resolves inside the VPC (the AWS provider's
        // `OUT_INTERNAL_DNS_NAME`), since a node's packet to the public
        // one leaves through the internet gateway with the node's public
        // address, which `apiServerSourceRanges` may refuse.
        let output = match c.provider.cloud {
            crate::model::types::Cloud::Gcp | crate::model::types::Cloud::OpenStack => {
                hke_provider_api::resource::OUT_ADDRESS
            }
            crate::model::types::Cloud::Aws => hke_provider_api::resource::OUT_INTERNAL_DNS_NAME,
            _ => hke_provider_api::resource::OUT_DNS_NAME,
        };
        m.insert(INPUT_ENDPOINT.to_string(), Val::output(LB, output));
        m
    };
    let native_size = |size: &str| vmsizes::native(c.provider.cloud, size).unwrap_or_else(|| size.to_string());
    // Azure spreads each pool's machines (and the masters) over fault and
    // update domains with an availability set, as acs-engine did.
    let azure = c.provider.cloud == crate::model::types::Cloud::Azure;
    let mut placement_for = |pool: &str| {
        if !azure {
            return None;
        }
        let id = format!("placementGroup/{pool}");
        r.insert(
            id.clone(),
            (
                format!("k8s-{pool}-{}-avset", c.id),
                Spec::PlacementGroup {
                    group: Val::id_of(GROUP),
                },
            ),
        );
        Some(Val::id_of(&id))
    };
    let master_placement = placement_for("master");
    let pool_placements: Vec<Option<Val>> = c
        .pools
        .iter()
        .map(|p| {
            if !kubenet && p.count >= MACHINE_GROUP_MIN {
                None
            } else {
                placement_for(&p.name)
            }
        })
        .collect();
    // Azure CNI gives pods addresses of the node's NIC: one secondary IP
    // configuration per pod the node may run (acs-engine: 1 + maxPods).
    let pod_ips = if c.network.plugin == crate::model::types::NetworkPlugin::Azure {
        c.network.max_pods
    } else {
        0
    };
    let machine =
        |size: &str, os: Os, windows, pinned: Option<&str>, disk: u32, ip: Option<Ipv4Addr>, placement: Option<Val>| {
            Spec::Machine(MachineSpec {
                subnet: Val::id_of(SUBNET),
                firewall: Val::id_of(FIREWALL),
                os,
                size: native_size(size),
                image: image_for(c, windows, pinned, size),
                disk_gb: disk,
                private_ip: ip.map(|i| i.to_string()),
                placement,
                ip_forwarding: kubenet,
                pod_ips,
                bootstrap_inputs: bootstrap_inputs(),
            })
        };
    let mut nodes: Vec<String> = Vec::new();
    for (i, node) in c.masters.names.iter().enumerate() {
        let id = machine_id(node);
        r.insert(
            id.clone(),
            (
                node.clone(),
                machine(
                    &c.masters.vm_size,
                    Os::Linux,
                    None,
                    None,
                    c.masters.os_disk_gb,
                    c.masters.ips.get(i).copied(),
                    master_placement.clone(),
                ),
            ),
        );
        r.insert(
            format!("lbMember/{node}"),
            (
                format!("{name}-apiserver-{node}"),
                Spec::LbMember {
                    load_balancer: Val::id_of(LB),
                    machine: Val::id_of(&id),
                    port: c.endpoint.port,
                },
            ),
        );
        nodes.push(node.clone());
    }
    for (pool, placement) in c.pools.iter().zip(pool_placements) {
        let os = match pool.os {
            OsType::Linux => Os::Linux,
            OsType::Windows => Os::Windows,
        };
        if !kubenet && pool.count >= MACHINE_GROUP_MIN {
            r.insert(
                format!("machineGroup/{}", pool.name),
                (
                    group_name(c, &pool.name),
                    Spec::MachineGroup(MachineGroupSpec {
                        subnet: Val::id_of(SUBNET),
                        firewall: Val::id_of(FIREWALL),
                        os: os.clone(),
                        size: native_size(&pool.vm_size),
                        image: image_for(c, pool.windows, pool.image_id.as_deref(), &pool.vm_size),
                        disk_gb: pool.os_disk_gb,
                        count: pool.count,
                        name_prefix: group_prefix(c, pool),
                        ip_forwarding: kubenet,
                        pod_ips,
                        bootstrap_inputs: bootstrap_inputs(),
                    }),
                ),
            );
            continue;
        }
        for node in &pool.node_names {
            r.insert(
                machine_id(node),
                (
                    node.clone(),
                    machine(
                        &pool.vm_size,
                        os.clone(),
                        pool.windows,
                        pool.image_id.as_deref(),
                        pool.os_disk_gb,
                        None,
                        placement.clone(),
                    ),
                ),
            );
            nodes.push(node.clone());
        }
    }
    if kubenet {
        for node in &nodes {
            let dest = pod_cidrs.get(node).cloned().unwrap_or_default();
            r.insert(
                format!("route/{node}"),
                (
                    format!("{name}-route-{node}"),
                    Spec::Route {
                        network: Val::id_of(NETWORK),
                        destination: dest,
                        next_hop: Val::id_of(&machine_id(node)),
                    },
                ),
            );
        }
    }
    let resources: BTreeMap<String, Planned> = r
        .into_iter()
        .map(|(id, (name, spec))| {
            let mut depends_on = spec.dependencies();
            if id == LB {
                // The outbound rule's extra frontends: the provider finds
                // them by name (`snat::outbound_address_prefix`).
                depends_on.extend(outbound.iter().cloned());
                depends_on.sort();
                depends_on.dedup();
            }
            (id, Planned { name, spec, depends_on })
        })
        .collect();
    let p = Plan {
        cluster: name.to_string(),
        cloud: c.provider.cloud.to_string(),
        resources,
        pod_cidrs,
    };
    p.check()?;
    Ok(p)
}

impl Plan {
    /// Every dependency exists and there is no cycle.
    pub fn check(&self) -> Result<(), PlanError> {
        for (id, p) in &self.resources {
            for d in &p.depends_on {
                if !self.resources.contains_key(d) {
                    return Err(PlanError::Dangling(id.clone(), d.clone()));
                }
            }
        }
        self.topological_order().map(|_| ())
    }

    /// Logical ids, each after its dependencies (Kahn; ties in id order).
    pub fn topological_order(&self) -> Result<Vec<String>, PlanError> {
        let mut indegree: BTreeMap<&str, usize> = self.resources.keys().map(|k| (k.as_str(), 0)).collect();
        let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, p) in &self.resources {
            for d in &p.depends_on {
                *indegree.entry(id.as_str()).or_default() += 1;
                dependents.entry(d.as_str()).or_default().push(id.as_str());
            }
        }
        let mut ready: BTreeSet<&str> = indegree.iter().filter(|(_, n)| **n == 0).map(|(k, _)| *k).collect();
        let mut order = Vec::new();
        while let Some(next) = ready.pop_first() {
            order.push(next.to_string());
            for dep in dependents.get(next).into_iter().flatten() {
                let n = indegree.entry(dep).or_default();
                *n -= 1;
                if *n == 0 {
                    ready.insert(dep);
                }
            }
        }
        if order.len() != self.resources.len() {
            let stuck = indegree
                .iter()
                .find(|(_, n)| **n > 0)
                .map(|(k, _)| k.to_string())
                .unwrap_or_default();
            return Err(PlanError::Cycle(stuck));
        }
        Ok(order)
    }

    /// The longest chain of latencies: no executor can finish sooner.
    pub fn critical_path(&self, latency: impl Fn(Kind) -> Duration) -> Duration {
        let mut finish: BTreeMap<String, Duration> = BTreeMap::new();
        for id in self.topological_order().unwrap_or_default() {
            let p = &self.resources[&id];
            let start = p
                .depends_on
                .iter()
                .filter_map(|d| finish.get(d))
                .max()
                .copied()
                .unwrap_or_default();
            finish.insert(id, start + latency(p.spec.kind()));
        }
        finish.values().max().copied().unwrap_or_default()
    }

    /// Each resource's bottom level: its own latency plus the longest chain
    /// of latencies that must follow it. Scheduling the highest first keeps
    /// the critical path busy when parallelism is the limit.
    pub fn bottom_levels(&self, latency: impl Fn(Kind) -> Duration) -> BTreeMap<String, Duration> {
        let mut level: BTreeMap<String, Duration> = BTreeMap::new();
        let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, p) in &self.resources {
            for d in &p.depends_on {
                dependents.entry(d.as_str()).or_default().push(id.as_str());
            }
        }
        for id in self.topological_order().unwrap_or_default().into_iter().rev() {
            let after = dependents
                .get(id.as_str())
                .into_iter()
                .flatten()
                .filter_map(|d| level.get(*d))
                .max()
                .copied()
                .unwrap_or_default();
            let own = latency(self.resources[&id].spec.kind());
            level.insert(id, own + after);
        }
        level
    }

    /// Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "digraph \"{}\" {{", self.cluster);
        let _ = writeln!(s, "  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];");
        for (id, p) in &self.resources {
            let _ = writeln!(s, "  \"{id}\" [label=\"{}\\n{}\"];", p.spec.kind(), p.name);
        }
        for (id, p) in &self.resources {
            for d in &p.depends_on {
                let _ = writeln!(s, "  \"{d}\" -> \"{id}\";");
            }
        }
        s.push_str("}\n");
        s
    }

    /// A short human summary: counts per kind.
    pub fn summary(&self) -> BTreeMap<Kind, usize> {
        let mut m = BTreeMap::new();
        for p in self.resources.values() {
            *m.entry(p.spec.kind()).or_insert(0) += 1;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn cluster(sets: &[&str]) -> Cluster {
        crate::cluster::example(sets)
    }

    #[test]
    fn the_example_plan_is_complete_and_acyclic() {
        let c = cluster(&[]);
        let p = plan(&c).expect("plan");
        let s = p.summary();
        assert_eq!(s[&Kind::Machine], 8, "3 masters + 2 linux + 3 windows");
        assert_eq!(s[&Kind::LbMember], 3);
        assert!(!s.contains_key(&Kind::Route), "no routes without kubenet");
        let order = p.topological_order().expect("acyclic");
        let pos = |id: &str| order.iter().position(|x| x == id).expect("present");
        assert!(
            pos(GROUP) < pos(NETWORK) && pos(NETWORK) < pos(SUBNET) && pos(LB) < pos(&machine_id(&c.masters.names[0]))
        );
        // Deterministic: planning twice gives the same plan.
        assert_eq!(plan(&c).expect("again"), p);
        // Every dependency has a higher teardown rank (teardown order is safe).
        for r in p.resources.values() {
            for d in &r.depends_on {
                assert!(
                    p.resources[d].spec.kind().teardown_rank() > r.spec.kind().teardown_rank(),
                    "{d} -> {}",
                    r.name
                );
            }
        }
        assert!(p.to_dot().contains("\"loadBalancer/apiserver\" -> \"machine/"));
    }

    #[test]
    fn aws_endpoints_and_images() {
        let cluster = |more: &[&str]| {
            let mut sets = vec![
                "properties.providerProfile.name=aws",
                "location=us-east-1",
                "properties.orchestratorProfile.kubernetesConfig.networkPlugin=flannel",
            ];
            sets.extend_from_slice(more);
            cluster(&sets)
        };
        // Three masters: a network load balancer, whose addresses AWS picks.
        let p = plan(&cluster(&[])).expect("plan");
        assert!(!p.resources.contains_key(ADDRESS));
        assert!(matches!(p.resources[LB].spec, Spec::LoadBalancer { address: None, .. }));
        assert!(matches!(
            &p.resources[GROUP].spec,
            Spec::Group { ssh_public_key: Some(k), .. } if k.starts_with("ssh-")
        ));
        // Machines reach the API server by a name that resolves inside the
        // VPC, not by the public one (apiServerSourceRanges may refuse it).
        for r in p.resources.values() {
            if let Spec::Machine(MachineSpec { bootstrap_inputs, .. }) = &r.spec {
                assert_eq!(
                    bootstrap_inputs[INPUT_ENDPOINT],
                    Val::output(LB, hke_provider_api::resource::OUT_INTERNAL_DNS_NAME),
                    "{}",
                    r.name
                );
            }
        }
        // One master: an Elastic IP serves as the endpoint.
        let p = plan(&cluster(&["properties.masterProfile.count=1"])).expect("plan");
        assert!(matches!(
            p.resources[LB].spec,
            Spec::LoadBalancer { address: Some(_), .. }
        ));
        assert!(p.resources.contains_key(ADDRESS));
        // A pool's pinned AMI replaces the name lookup for that pool only.
        let c = cluster(&["properties.agentPoolProfiles[1].imageId=ami-0123456789abcdef0"]);
        let p = plan(&c).expect("plan");
        for r in p.resources.values() {
            if let Spec::Machine(MachineSpec { image, .. }) = &r.spec {
                let pinned = c.pools[1].node_names.contains(&r.name);
                assert_eq!(image.lookup.contains_key("imageId"), pinned, "{}", r.name);
                assert_eq!(image.lookup.contains_key("amiNamePattern"), !pinned, "{}", r.name);
            }
        }
        // Elsewhere, nothing of this.
        let p = plan(&super::tests::cluster(&[])).expect("plan");
        assert!(matches!(
            p.resources[GROUP].spec,
            Spec::Group {
                ssh_public_key: None,
                ..
            }
        ));
        assert!(matches!(
            p.resources[LB].spec,
            Spec::LoadBalancer { address: Some(_), .. }
        ));
    }

    #[test]
    fn kubenet_adds_one_route_per_node_with_distinct_pod_cidrs() {
        let c = cluster(&["properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet"]);
        let p = plan(&c).expect("plan");
        assert_eq!(p.summary()[&Kind::Route], 8);
        let cidrs: BTreeSet<&String> = p.pod_cidrs.values().collect();
        assert_eq!(cidrs.len(), 8);
        assert_eq!(p.pod_cidrs[&c.masters.names[0]], "10.244.0.0/24");
        assert!(p.resources.values().all(|r| match &r.spec {
            Spec::Machine(MachineSpec { ip_forwarding, .. }) => *ip_forwarding,
            _ => true,
        }));
    }

    #[test]
    fn large_pools_become_machine_groups_except_with_kubenet() {
        let c = cluster(&["properties.agentPoolProfiles[1].count=25"]);
        let p = plan(&c).expect("plan");
        assert_eq!(p.summary()[&Kind::MachineGroup], 1);
        assert_eq!(
            p.summary()[&Kind::Machine],
            5,
            "masters and the small Linux pool stay machines"
        );
        let Some(Spec::MachineGroup(MachineGroupSpec { count, name_prefix, .. })) =
            p.resources.get("machineGroup/windowspool1").map(|r| &r.spec)
        else {
            panic!("group planned")
        };
        assert_eq!(*count, 25);
        assert!(
            name_prefix.len() + 6 <= 15,
            "{name_prefix}: Windows names fit in 15 characters"
        );
        let k = cluster(&[
            "properties.agentPoolProfiles[1].count=25",
            "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
        ]);
        let pk = plan(&k).expect("plan");
        assert!(
            !pk.summary().contains_key(&Kind::MachineGroup),
            "kubenet routes need individual machines"
        );
        assert_eq!(pk.summary()[&Kind::Machine], 30);
    }

    #[test]
    fn azure_outbound_frontends_give_every_node_its_snat_ports() {
        let outbound = |p: &Plan| -> Vec<String> {
            p.resources
                .keys()
                .filter(|k| k.starts_with(OUTBOUND_ADDRESS))
                .cloned()
                .collect()
        };
        // 8 nodes: the API server's address is enough.
        let p = plan(&cluster(&[])).expect("plan");
        assert!(outbound(&p).is_empty());
        // 3 masters + 2 + 995 = 1,000 nodes × 1,024 ports: 16 addresses.
        let c = cluster(&["properties.agentPoolProfiles[1].count=995"]);
        assert_eq!(c.node_count(), 1_000);
        let p = plan(&c).expect("plan");
        let extra = outbound(&p);
        assert_eq!(extra.len(), 15);
        for id in &extra {
            assert!(p.resources[LB].depends_on.contains(id), "{id}");
            let r = &p.resources[id];
            assert!(
                r.name.starts_with(&format!("{}-apiserver-outbound-", p.cluster)),
                "{}",
                r.name
            );
            assert!(matches!(r.spec, Spec::PublicAddress { dns_label: None, .. }));
        }
        // Every machine comes after the load balancer, hence after its frontends.
        let order = p.topological_order().expect("acyclic");
        let pos = |id: &str| order.iter().position(|x| x == id).expect("present");
        assert!(extra.iter().all(|id| pos(id) < pos(LB)));
        // Other clouds have no outbound rule to size.
        let g = cluster(&[
            "properties.providerProfile.name=aws",
            "location=us-east-1",
            "properties.orchestratorProfile.kubernetesConfig.networkPlugin=flannel",
            "properties.agentPoolProfiles[1].count=995",
        ]);
        assert!(outbound(&plan(&g).expect("plan")).is_empty());
    }

    #[test]
    fn a_restricted_api_server_rule_admits_where_nodes_packets_come_from() {
        let restricted = "properties.masterProfile.HTTPSourceAddressPrefix=198.51.100.0/24";
        let more = |p: &Plan| -> BTreeMap<String, Vec<Val>> {
            match &p.resources[FIREWALL].spec {
                Spec::Firewall { more_sources, .. } => more_sources.clone(),
                other => panic!("{other:?}"),
            }
        };
        let out = |id: &str| Val::output(id, hke_provider_api::resource::OUT_ADDRESS);
        // Open to all: nothing to add.
        assert!(more(&plan(&cluster(&[])).expect("plan")).is_empty());
        // Azure: every frontend of the outbound rule (101 nodes: two).
        let p = plan(&cluster(&[restricted, "properties.agentPoolProfiles[0].count=95"])).expect("plan");
        let m = more(&p);
        assert_eq!(
            m["apiserver"],
            [out(ADDRESS), out(&format!("{OUTBOUND_ADDRESS}1"))],
            "{m:?}"
        );
        assert_eq!(m.len(), 1, "SSH is not widened");
        // The firewall comes after the addresses it names.
        assert!(p.resources[FIREWALL].depends_on.contains(&ADDRESS.to_string()));
        assert!(p.resources[FIREWALL]
            .depends_on
            .contains(&format!("{OUTBOUND_ADDRESS}1")));
        p.topological_order().expect("acyclic");
        // OpenStack: the router's gateway address (hairpinned floating IP).
        let text = include_str!("../examples/windows-openstack.json");
        let sets = [restricted.parse().expect("set")];
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let os = crate::cluster::build(text, &sets, &mut rng).expect("valid").cluster;
        let p = plan(&os).expect("plan");
        let egress = Val::output(NETWORK, hke_provider_api::resource::OUT_EGRESS_ADDRESS);
        assert_eq!(more(&p)["apiserver"], std::slice::from_ref(&egress));
        // Octavia's listener admits the clients and the nodes itself.
        assert!(
            matches!(&p.resources[LB].spec, Spec::LoadBalancer { allowed_sources, .. }
                if *allowed_sources == [Val::lit("198.51.100.0/24"), egress.clone()]),
            "{:?}",
            p.resources[LB].spec
        );
        // AWS: nodes reach the API server privately.
        let aws = cluster(&[
            restricted,
            "properties.providerProfile.name=aws",
            "location=us-east-1",
            "properties.orchestratorProfile.kubernetesConfig.networkPlugin=flannel",
        ]);
        assert!(more(&plan(&aws).expect("plan")).is_empty());
    }

    #[test]
    fn cycles_and_dangling_references_are_caught() {
        let c = cluster(&[]);
        let mut p = plan(&c).expect("plan");
        p.resources.get_mut(GROUP).expect("group").depends_on.push(LB.into());
        assert!(matches!(p.check(), Err(PlanError::Cycle(_))));
        let mut p = plan(&c).expect("plan");
        p.resources
            .get_mut(GROUP)
            .expect("group")
            .depends_on
            .push("nothing".into());
        assert!(matches!(p.check(), Err(PlanError::Dangling(_, _))));
    }

    #[test]
    fn critical_path_follows_the_longest_chain() {
        let p = plan(&cluster(&[])).expect("plan");
        let cp = p.critical_path(|k| {
            if k == Kind::Machine {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(1)
            }
        });
        // group → network → subnet → lb → machine → lbMember = 1+1+1+1+10+1
        assert_eq!(cp, Duration::from_secs(15));
    }
}
