//! The resource vocabulary: what hke asks any cloud for.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Kinds of cloud resources. Each provider maps them to its own objects
/// (Azure resource group / AWS VPC container / GCP network labels, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// The isolation unit: Azure resource group; on AWS and GCP a logical
    /// container the provider may map to tags only.
    Group,
    Network,
    Subnet,
    Firewall,
    PublicAddress,
    LoadBalancer,
    /// A machine's membership in a load balancer's backend.
    LbMember,
    /// A route to a node's pod CIDR (kubenet).
    Route,
    Machine,
    /// A pool's machines as one scalable object (Azure VM scale set, AWS
    /// Auto Scaling group, GCP managed instance group).
    MachineGroup,
    /// Where a pool's machines are spread over fault and update domains
    /// (Azure availability set). Planned on Azure only.
    PlacementGroup,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Group,
        Kind::Network,
        Kind::Subnet,
        Kind::Firewall,
        Kind::PublicAddress,
        Kind::LoadBalancer,
        Kind::LbMember,
        Kind::Route,
        Kind::Machine,
        Kind::MachineGroup,
        Kind::PlacementGroup,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Kind::Group => "group",
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::Firewall => "firewall",
            Kind::PublicAddress => "publicAddress",
            Kind::LoadBalancer => "loadBalancer",
            Kind::LbMember => "lbMember",
            Kind::Route => "route",
            Kind::Machine => "machine",
            Kind::MachineGroup => "machineGroup",
            Kind::PlacementGroup => "placementGroup",
        }
    }

    /// Teardown layer: everything of a lower rank goes before anything of a
    /// higher one. Consistent with every dependency the planner creates
    /// (a resource's dependencies always have a higher rank).
    pub fn teardown_rank(&self) -> u8 {
        match self {
            Kind::LbMember | Kind::Route => 0,
            Kind::Machine | Kind::MachineGroup => 1,
            Kind::LoadBalancer | Kind::PlacementGroup => 2,
            Kind::PublicAddress | Kind::Firewall | Kind::Subnet => 3,
            Kind::Network => 4,
            Kind::Group => 5,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value known at plan time, or an output of another resource that is only
/// known once that resource exists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Val {
    Lit(String),
    Ref { resource: String, output: String },
}

impl Val {
    pub fn lit(s: impl Into<String>) -> Val {
        Val::Lit(s.into())
    }

    pub fn id_of(resource: &str) -> Val {
        Val::Ref {
            resource: resource.into(),
            output: OUT_ID.into(),
        }
    }

    pub fn output(resource: &str, output: &str) -> Val {
        Val::Ref {
            resource: resource.into(),
            output: output.into(),
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Lit(s) => f.write_str(s),
            Val::Ref { resource, output } => write!(f, "${{{resource}.{output}}}"),
        }
    }
}

/// Output names every provider fills where they apply.
pub const OUT_ID: &str = "id";
pub const OUT_ADDRESS: &str = "address";
pub const OUT_DNS_NAME: &str = "dnsName";
pub const OUT_PRIVATE_IP: &str = "privateIp";
/// The API server's name as machines inside the cluster's network reach it,
/// where it differs from the public one (AWS: a name that resolves to
/// private addresses inside the VPC).
pub const OUT_INTERNAL_DNS_NAME: &str = "internalDnsName";
/// The public address a network's machines reach public addresses from,
/// where the cloud NATs them to one (OpenStack: the router's external
/// gateway address; the API server's floating IP sees a node's packet
/// from it too, since the router SNATs hairpinned traffic to it).
pub const OUT_EGRESS_ADDRESS: &str = "egressAddress";

pub type Outputs = BTreeMap<String, String>;

/// A resource's outputs: its id and the other values it has. An empty value
/// is no value: its key is left out, so that a reference to it fails in the
/// engine ("X has no output Y") rather than handing "" on (to a bootstrap,
/// a route, a kubeconfig). The id is always there; callers make sure it is
/// not empty.
pub fn outputs(id: &str, more: &[(&str, &str)]) -> Outputs {
    let mut o = Outputs::new();
    o.insert(OUT_ID.into(), id.into());
    for (k, v) in more {
        if !v.is_empty() {
            o.insert((*k).into(), (*v).into());
        }
    }
    o
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Os {
    Linux,
    Windows,
}

/// A firewall rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub name: String,
    /// `tcp`, `udp` or `all`.
    pub protocol: String,
    /// `6443`, `30000-32767`, or `*`.
    pub ports: String,
    pub sources: Vec<String>,
}

/// Where a machine's OS image comes from, per cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// A readable name: `ubuntu-24.04`, `windows-2022`.
    pub name: String,
    /// Cloud-specific lookup fields (Azure publisher/offer/sku/version, AWS
    /// AMI name pattern and owner, GCP project and family).
    pub lookup: BTreeMap<String, String>,
}

/// What to create. `V` is `Val` in a plan and `String` once resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Spec<V> {
    Group {
        location: String,
        /// The admin's SSH public key, where the cloud keeps one per group
        /// (the AWS key pair).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ssh_public_key: Option<String>,
    },
    Network {
        cidr: String,
        group: V,
    },
    Subnet {
        network: V,
        cidr: String,
    },
    Firewall {
        network: V,
        rules: Vec<Rule>,
        /// Sources a rule admits that only exist once other resources do
        /// (Azure: the load balancer's outbound addresses, which nodes'
        /// packets to the API server's public frontend come from), by rule
        /// name. The engine folds them into the rules' `sources`
        /// ([`Spec::fold_sources`]) before a provider sees the spec.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        more_sources: BTreeMap<String, Vec<V>>,
    },
    PublicAddress {
        group: V,
        dns_label: Option<String>,
    },
    LoadBalancer {
        /// The public address in front; `None` when the cloud assigns the
        /// load balancer's addresses itself (AWS network load balancers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<V>,
        subnet: V,
        port: u16,
        /// The client ranges a load balancer that proxies (so that the
        /// machines' firewall sees it, not the client) admits itself:
        /// OpenStack Octavia's listener `allowed_cidrs`. Empty: every
        /// client; clouds whose load balancers pass the client's address
        /// through leave it to the firewall.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        allowed_sources: Vec<V>,
    },
    LbMember {
        load_balancer: V,
        machine: V,
        port: u16,
    },
    Route {
        network: V,
        destination: String,
        next_hop: V,
    },
    PlacementGroup {
        group: V,
    },
    Machine(MachineSpec<V>),
    MachineGroup(MachineGroupSpec<V>),
}

/// A machine. In a plan's JSON its fields sit flat beside `"kind":
/// "machine"` (an internally tagged newtype variant), as they did when they
/// were the variant's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// The bound: serde would otherwise ask `V: Default` for `placement`'s
// `default` (an `Option` needs none).
// No `rename_all`: the variant's fields were snake_case in plan and state
// JSON (the enum's `rename_all` names variants only), and stay so.
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct MachineSpec<V> {
    pub subnet: V,
    pub firewall: V,
    pub os: Os,
    pub size: String,
    pub image: Image,
    pub disk_gb: u32,
    pub private_ip: Option<String>,
    /// The placement group (Azure availability set) of the machine's pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<V>,
    /// Route pod traffic (kubenet): AWS source/dest check off, GCP canIpForward.
    pub ip_forwarding: bool,
    /// Secondary private addresses for pods on the machine's NIC (Azure
    /// CNI hands them out; acs-engine made 1 + maxPods IP configurations).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pod_ips: u32,
    /// The values the node's bootstrap needs from other resources
    /// (`endpoint` → the load balancer's address).
    pub bootstrap_inputs: BTreeMap<String, V>,
}

/// A pool's machines as one scalable object; flat in JSON like
/// [`MachineSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineGroupSpec<V> {
    pub subnet: V,
    pub firewall: V,
    pub os: Os,
    pub size: String,
    pub image: Image,
    pub disk_gb: u32,
    /// Instances to run.
    pub count: u32,
    /// Instance names are this prefix plus a cloud-chosen suffix
    /// (at most 9 characters for Windows' 15-character limit).
    pub name_prefix: String,
    pub ip_forwarding: bool,
    /// As for Machine: secondary addresses per instance for Azure CNI.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pod_ips: u32,
    pub bootstrap_inputs: BTreeMap<String, V>,
}

impl<V> MachineSpec<V> {
    /// Every value that may reference another resource.
    pub fn values(&self) -> Vec<&V> {
        let mut v = vec![&self.subnet, &self.firewall];
        v.extend(self.placement.iter());
        v.extend(self.bootstrap_inputs.values());
        v
    }

    /// The same machine with every value mapped.
    pub fn try_map<W, E>(&self, f: &mut impl FnMut(&V) -> Result<W, E>) -> Result<MachineSpec<W>, E> {
        // Inputs first, then the rest: the first reference the engine
        // cannot resolve is the one it reports.
        let bootstrap_inputs = map_inputs(&self.bootstrap_inputs, f)?;
        Ok(MachineSpec {
            subnet: f(&self.subnet)?,
            firewall: f(&self.firewall)?,
            os: self.os.clone(),
            size: self.size.clone(),
            image: self.image.clone(),
            disk_gb: self.disk_gb,
            private_ip: self.private_ip.clone(),
            placement: self.placement.as_ref().map(&mut *f).transpose()?,
            ip_forwarding: self.ip_forwarding,
            pod_ips: self.pod_ips,
            bootstrap_inputs,
        })
    }
}

impl<V> MachineGroupSpec<V> {
    /// Every value that may reference another resource.
    pub fn values(&self) -> Vec<&V> {
        let mut v = vec![&self.subnet, &self.firewall];
        v.extend(self.bootstrap_inputs.values());
        v
    }

    /// The same group with every value mapped.
    pub fn try_map<W, E>(&self, f: &mut impl FnMut(&V) -> Result<W, E>) -> Result<MachineGroupSpec<W>, E> {
        // Inputs first, then the rest: the first reference the engine
        // cannot resolve is the one it reports.
        let bootstrap_inputs = map_inputs(&self.bootstrap_inputs, f)?;
        Ok(MachineGroupSpec {
            subnet: f(&self.subnet)?,
            firewall: f(&self.firewall)?,
            os: self.os.clone(),
            size: self.size.clone(),
            image: self.image.clone(),
            disk_gb: self.disk_gb,
            count: self.count,
            name_prefix: self.name_prefix.clone(),
            ip_forwarding: self.ip_forwarding,
            pod_ips: self.pod_ips,
            bootstrap_inputs,
        })
    }
}

fn map_inputs<V, W, E>(
    inputs: &BTreeMap<String, V>,
    f: &mut impl FnMut(&V) -> Result<W, E>,
) -> Result<BTreeMap<String, W>, E> {
    inputs.iter().map(|(k, v)| Ok((k.clone(), f(v)?))).collect()
}

impl Spec<String> {
    /// The spec with a firewall's `more_sources` appended to the sources of
    /// the rules they name, and emptied: what a provider is given.
    pub fn fold_sources(self) -> Spec<String> {
        match self {
            Spec::Firewall {
                network,
                mut rules,
                more_sources,
            } => {
                for rule in &mut rules {
                    if let Some(more) = more_sources.get(&rule.name) {
                        for s in more {
                            if !rule.sources.contains(s) {
                                rule.sources.push(s.clone());
                            }
                        }
                    }
                }
                Spec::Firewall {
                    network,
                    rules,
                    more_sources: BTreeMap::new(),
                }
            }
            other => other,
        }
    }
}

impl<V> Spec<V> {
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Group { .. } => Kind::Group,
            Spec::Network { .. } => Kind::Network,
            Spec::Subnet { .. } => Kind::Subnet,
            Spec::Firewall { .. } => Kind::Firewall,
            Spec::PublicAddress { .. } => Kind::PublicAddress,
            Spec::LoadBalancer { .. } => Kind::LoadBalancer,
            Spec::LbMember { .. } => Kind::LbMember,
            Spec::Route { .. } => Kind::Route,
            Spec::PlacementGroup { .. } => Kind::PlacementGroup,
            Spec::Machine(_) => Kind::Machine,
            Spec::MachineGroup(_) => Kind::MachineGroup,
        }
    }

    /// Every value of the spec that may reference another resource.
    pub fn values(&self) -> Vec<&V> {
        match self {
            Spec::Group { .. } => vec![],
            Spec::Network { group, .. } => vec![group],
            Spec::Subnet { network, .. } => vec![network],
            Spec::Firewall {
                network, more_sources, ..
            } => std::iter::once(network)
                .chain(more_sources.values().flatten())
                .collect(),
            Spec::PublicAddress { group, .. } | Spec::PlacementGroup { group } => vec![group],
            Spec::LoadBalancer {
                address,
                subnet,
                allowed_sources,
                ..
            } => address.iter().chain([subnet]).chain(allowed_sources).collect(),
            Spec::LbMember {
                load_balancer, machine, ..
            } => vec![load_balancer, machine],
            Spec::Route { network, next_hop, .. } => vec![network, next_hop],
            Spec::Machine(m) => m.values(),
            Spec::MachineGroup(g) => g.values(),
        }
    }

    /// The same spec with every value mapped.
    pub fn try_map<W, E>(&self, f: &mut impl FnMut(&V) -> Result<W, E>) -> Result<Spec<W>, E> {
        Ok(match self {
            Spec::Group {
                location,
                ssh_public_key,
            } => Spec::Group {
                location: location.clone(),
                ssh_public_key: ssh_public_key.clone(),
            },
            Spec::Network { cidr, group } => Spec::Network {
                cidr: cidr.clone(),
                group: f(group)?,
            },
            Spec::Subnet { network, cidr } => Spec::Subnet {
                network: f(network)?,
                cidr: cidr.clone(),
            },
            Spec::Firewall {
                network,
                rules,
                more_sources,
            } => Spec::Firewall {
                network: f(network)?,
                rules: rules.clone(),
                more_sources: {
                    let mut m = BTreeMap::new();
                    for (rule, sources) in more_sources {
                        let mut v = Vec::with_capacity(sources.len());
                        for s in sources {
                            v.push(f(s)?);
                        }
                        m.insert(rule.clone(), v);
                    }
                    m
                },
            },
            Spec::PublicAddress { group, dns_label } => Spec::PublicAddress {
                group: f(group)?,
                dns_label: dns_label.clone(),
            },
            Spec::LoadBalancer {
                address,
                subnet,
                port,
                allowed_sources,
            } => Spec::LoadBalancer {
                address: match address {
                    Some(a) => Some(f(a)?),
                    None => None,
                },
                subnet: f(subnet)?,
                port: *port,
                allowed_sources: allowed_sources.iter().map(&mut *f).collect::<Result<_, _>>()?,
            },
            Spec::LbMember {
                load_balancer,
                machine,
                port,
            } => Spec::LbMember {
                load_balancer: f(load_balancer)?,
                machine: f(machine)?,
                port: *port,
            },
            Spec::Route {
                network,
                destination,
                next_hop,
            } => Spec::Route {
                network: f(network)?,
                destination: destination.clone(),
                next_hop: f(next_hop)?,
            },
            Spec::PlacementGroup { group } => Spec::PlacementGroup { group: f(group)? },
            Spec::Machine(m) => Spec::Machine(m.try_map(f)?),
            Spec::MachineGroup(g) => Spec::MachineGroup(g.try_map(f)?),
        })
    }
}

impl Spec<Val> {
    /// Logical ids this spec references.
    pub fn dependencies(&self) -> Vec<String> {
        let mut deps: Vec<String> = self
            .values()
            .into_iter()
            .filter_map(|v| match v {
                Val::Ref { resource, .. } => Some(resource.clone()),
                Val::Lit(_) => None,
            })
            .collect();
        deps.sort();
        deps.dedup();
        deps
    }
}

/// A create call, with every reference resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The plan's logical id (`machine/k8s-master-aa910c6f-0`).
    pub logical_id: String,
    /// The name in the cloud.
    pub name: String,
    pub spec: Spec<String>,
    pub tags: BTreeMap<String, String>,
    /// Cloud ids of the resources this one uses (for dependency checks).
    pub references: Vec<String>,
    /// A deterministic idempotency key: the same logical resource of the same
    /// cluster always has the same token (EC2 ClientToken and the like).
    pub client_token: String,
    /// Machines: the rendered bootstrap (cloud-init or PowerShell).
    pub user_data: Option<String>,
    /// Machines: the administrator account, for clouds that create it
    /// (Azure's osProfile). Never serialized with its password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
}

/// A machine's administrator account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    pub username: String,
    pub ssh_public_keys: Vec<String>,
    /// Windows: the admin password. Skipped by serde and `Debug`.
    #[serde(skip)]
    pub password: Option<String>,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("ssh_public_keys", &self.ssh_public_keys.len())
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A resource found in the cloud by its tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    pub kind: Kind,
    pub name: String,
    pub id: String,
    pub tags: BTreeMap<String, String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_firewall_s_later_sources_fold_into_the_rules_they_name() {
        let rule = |name: &str, sources: &[&str]| Rule {
            name: name.into(),
            protocol: "tcp".into(),
            ports: "6443".into(),
            sources: sources.iter().map(|s| s.to_string()).collect(),
        };
        let planned: Spec<Val> = Spec::Firewall {
            network: Val::id_of("network/vnet"),
            rules: vec![
                rule("apiserver", &["198.51.100.0/24"]),
                rule("ssh", &["198.51.100.0/24"]),
            ],
            more_sources: BTreeMap::from([(
                "apiserver".to_string(),
                vec![
                    Val::output("publicAddress/apiserver", OUT_ADDRESS),
                    Val::output("publicAddress/outbound-1", OUT_ADDRESS),
                ],
            )]),
        };
        // The outbound addresses are dependencies of the firewall.
        let deps: Vec<&Val> = planned.values();
        assert_eq!(deps.len(), 3, "{deps:?}");
        let resolved = planned
            .try_map(&mut |v: &Val| -> Result<String, ()> {
                Ok(match v {
                    Val::Lit(s) => s.clone(),
                    Val::Ref { resource, .. } if resource.ends_with("apiserver") => "20.1.1.1".into(),
                    Val::Ref { resource, .. } if resource.ends_with("outbound-1") => "20.1.1.2".into(),
                    Val::Ref { .. } => "/subscriptions/s/vnet".into(),
                })
            })
            .expect("resolved")
            .fold_sources();
        let Spec::Firewall {
            rules, more_sources, ..
        } = resolved
        else {
            panic!("a firewall")
        };
        assert!(more_sources.is_empty());
        assert_eq!(rules[0].sources, ["198.51.100.0/24", "20.1.1.1", "20.1.1.2"]);
        assert_eq!(rules[1].sources, ["198.51.100.0/24"], "ssh is not widened");
        // Nothing to fold: the plan's JSON has no `more_sources`.
        let plain: Spec<Val> = Spec::Firewall {
            network: Val::id_of("network/vnet"),
            rules: vec![rule("apiserver", &["*"])],
            more_sources: BTreeMap::new(),
        };
        assert!(!serde_json::to_string(&plain).expect("json").contains("more_sources"));
    }

    #[test]
    fn an_empty_output_is_no_output() {
        let o = outputs(
            "vpc-1",
            &[
                ("routeTable", "rtb-1"),
                (OUT_DNS_NAME, ""),
                (OUT_ADDRESS, "203.0.113.7"),
            ],
        );
        assert_eq!(o[OUT_ID], "vpc-1");
        assert_eq!(o["routeTable"], "rtb-1");
        assert_eq!(o[OUT_ADDRESS], "203.0.113.7");
        assert!(!o.contains_key(OUT_DNS_NAME), "{o:?}");
        assert_eq!(o.len(), 3);
        assert_eq!(
            outputs("i-1", &[]),
            Outputs::from([(OUT_ID.to_string(), "i-1".to_string())])
        );
    }

    fn image() -> Image {
        Image {
            name: "ubuntu-24.04".into(),
            lookup: BTreeMap::from([("family".to_string(), "ubuntu-2404-lts".to_string())]),
        }
    }

    /// The struct variants serialise flat beside the tag, with the field
    /// names and omissions the plan's JSON always had.
    #[test]
    fn machine_specs_are_flat_in_json() {
        let machine: Spec<Val> = Spec::Machine(MachineSpec {
            subnet: Val::id_of("subnet/s"),
            firewall: Val::id_of("firewall/f"),
            os: Os::Linux,
            size: "m5.large".into(),
            image: image(),
            disk_gb: 30,
            private_ip: None,
            placement: None,
            ip_forwarding: true,
            pod_ips: 0,
            bootstrap_inputs: BTreeMap::from([("endpoint".to_string(), Val::output("lb", OUT_DNS_NAME))]),
        });
        let json = serde_json::to_value(&machine).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "machine",
                "subnet": {"ref": {"resource": "subnet/s", "output": "id"}},
                "firewall": {"ref": {"resource": "firewall/f", "output": "id"}},
                "os": "linux",
                "size": "m5.large",
                "image": {"name": "ubuntu-24.04", "lookup": {"family": "ubuntu-2404-lts"}},
                "disk_gb": 30,
                "private_ip": null,
                "ip_forwarding": true,
                "bootstrap_inputs": {"endpoint": {"ref": {"resource": "lb", "output": "dnsName"}}},
            })
        );
        assert_eq!(machine.kind(), Kind::Machine);
        assert_eq!(machine.values().len(), 3);
        let resolved = machine
            .try_map(&mut |v: &Val| -> Result<String, ()> { Ok(v.to_string()) })
            .expect("resolved");
        let json = serde_json::to_value(&resolved).expect("json");
        assert_eq!(json["subnet"], "${subnet/s.id}");
        assert_eq!(serde_json::from_value::<Spec<String>>(json).expect("back"), resolved);

        let group: Spec<String> = Spec::MachineGroup(MachineGroupSpec {
            subnet: "s".into(),
            firewall: "f".into(),
            os: Os::Windows,
            size: "Standard_D2s_v3".into(),
            image: image(),
            disk_gb: 128,
            count: 2,
            name_prefix: "2674k8s".into(),
            ip_forwarding: false,
            pod_ips: 31,
            bootstrap_inputs: BTreeMap::new(),
        });
        let json = serde_json::to_value(&group).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "machineGroup",
                "subnet": "s",
                "firewall": "f",
                "os": "windows",
                "size": "Standard_D2s_v3",
                "image": {"name": "ubuntu-24.04", "lookup": {"family": "ubuntu-2404-lts"}},
                "disk_gb": 128,
                "count": 2,
                "name_prefix": "2674k8s",
                "ip_forwarding": false,
                "pod_ips": 31,
                "bootstrap_inputs": {},
            })
        );
        assert_eq!(serde_json::from_value::<Spec<String>>(json).expect("back"), group);
    }
}
