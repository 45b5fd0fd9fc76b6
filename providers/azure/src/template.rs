//! The ARM deployment template of a plan (`azuredeploy.json`) and its
//! parameters file, for `az deployment group create` — the way acs-engine
//! users deployed. The bodies are the ones `hke deploy` sends (`models`),
//! references become `resourceId(...)` expressions, and each resource's
//! `dependsOn` lists what the plan says it depends on.
//!
//! Secrets (the Windows admin password, each node's bootstrap, which holds
//! the bootstrap token and, on masters, CA keys) are `securestring`
//! parameters; their values are in the parameters file only.

use std::collections::BTreeMap;

use hke_provider_api::{Kind, Login, MachineGroupSpec, MachineSpec, Os, Spec, Val};
use serde_json::{json, Value};

use crate::bodies::{
    bootstrap_extension, lb_props, nic_props, nsg_props, public_ip_props, vm_props, vmss_props, ScaleSetNet, VmInput,
    BOOTSTRAP_EXTENSION, POOL_MASTERS, POOL_NODES,
};
use crate::models::*;

pub const SCHEMA: &str = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#";
pub const PARAMETERS_SCHEMA: &str = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#";

/// The `hke.io/created` tag's value in a template: the deployment's time.
pub const CREATED_AT: &str = "[parameters('createdAt')]";

/// A planned resource, as the template needs it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub logical_id: String,
    pub name: String,
    pub spec: Spec<Val>,
    pub depends_on: Vec<String>,
}

/// Everything the template is made of.
#[derive(Debug)]
pub struct Input<'a> {
    pub location: &'a str,
    pub tags: &'a BTreeMap<String, String>,
    pub resources: &'a [Planned],
    /// Each machine's (or machine group's) rendered bootstrap.
    pub bootstrap: &'a BTreeMap<String, String>,
    pub linux: Login,
    pub windows: Option<Login>,
}

/// The template and its parameters file.
#[derive(Debug)]
pub struct Template {
    pub template: Value,
    pub parameters: Value,
}

fn lit(s: &str) -> String {
    s.replace('\'', "''")
}

/// `[resourceId('T', 'a', 'b')]`.
fn rid(rtype: &str, names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("'{}'", lit(n))).collect();
    format!("[resourceId('{rtype}', {})]", names.join(", "))
}

/// A parameter name from a node name (letters and digits).
fn param(prefix: &str, name: &str) -> String {
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("{prefix}{clean}")
}

struct Builder<'a> {
    input: &'a Input<'a>,
    by_id: BTreeMap<&'a str, &'a Planned>,
    resources: Vec<Value>,
    parameters: serde_json::Map<String, Value>,
    values: serde_json::Map<String, Value>,
}

impl<'a> Builder<'a> {
    fn planned(&self, id: &str) -> Option<&'a Planned> {
        self.by_id.get(id).copied()
    }

    /// The ARM id expression of a planned resource (its main object).
    fn arm_id(&self, logical: &str) -> Option<String> {
        let p = self.planned(logical)?;
        Some(match &p.spec {
            Spec::Group { .. } => "[resourceGroup().id]".to_string(),
            Spec::Network { .. } => rid("Microsoft.Network/virtualNetworks", &[&p.name]),
            Spec::Subnet { network, .. } => {
                let vnet = self.name_of(network)?;
                rid("Microsoft.Network/virtualNetworks/subnets", &[&vnet, &p.name])
            }
            Spec::Firewall { .. } => rid("Microsoft.Network/networkSecurityGroups", &[&p.name]),
            Spec::PublicAddress { .. } => rid("Microsoft.Network/publicIPAddresses", &[&p.name]),
            Spec::LoadBalancer { .. } => rid("Microsoft.Network/loadBalancers", &[&p.name]),
            Spec::PlacementGroup { .. } => rid("Microsoft.Compute/availabilitySets", &[&p.name]),
            Spec::Machine(_) => rid("Microsoft.Compute/virtualMachines", &[&p.name]),
            Spec::MachineGroup(_) => rid("Microsoft.Compute/virtualMachineScaleSets", &[&p.name]),
            Spec::Route { network, .. } => {
                let vnet = self.name_of(network)?;
                rid(
                    "Microsoft.Network/routeTables/routes",
                    &[&format!("{vnet}-routetable"), &p.name],
                )
            }
            // A membership is a property of the master's NIC.
            Spec::LbMember { machine, .. } => {
                let vm = self.name_of(machine)?;
                rid("Microsoft.Network/networkInterfaces", &[&format!("{vm}-nic")])
            }
        })
    }

    fn name_of(&self, v: &Val) -> Option<String> {
        match v {
            Val::Ref { resource, .. } => self.planned(resource).map(|p| p.name.clone()),
            Val::Lit(s) => Some(s.clone()),
        }
    }

    fn id_of(&self, v: &Val) -> String {
        match v {
            Val::Ref { resource, .. } => self.arm_id(resource).unwrap_or_default(),
            Val::Lit(s) => s.clone(),
        }
    }

    /// `dependsOn`: the plan's dependencies (the group is the deployment's
    /// scope, not a resource of the template).
    fn depends(&self, p: &Planned, extra: &[String]) -> Vec<String> {
        let mut d: Vec<String> = p
            .depends_on
            .iter()
            .filter(|id| self.planned(id).is_some_and(|q| q.spec.kind() != Kind::Group))
            .filter_map(|id| self.arm_id(id))
            .collect();
        d.extend(extra.iter().cloned());
        d.sort();
        d.dedup();
        d
    }

    fn push(&mut self, rtype: &str, api: &str, name: &str, body: Value, depends: Vec<String>) {
        let mut r = json!({ "type": rtype, "apiVersion": api, "name": name });
        if let Value::Object(b) = body {
            for (k, v) in b {
                if k != "id" && k != "name" {
                    r[k] = v;
                }
            }
        }
        r["dependsOn"] = json!(depends);
        self.resources.push(r);
    }

    fn secure(&mut self, name: &str, description: &str, value: &str) -> String {
        self.parameters.insert(
            name.into(),
            json!({"type": "securestring", "metadata": {"description": description}}),
        );
        self.values.insert(name.into(), json!({ "value": value }));
        format!("[parameters('{name}')]")
    }

    /// The load balancer whose pools a machine's NIC joins.
    fn lb(&self) -> Option<&'a Planned> {
        self.input
            .resources
            .iter()
            .find(|p| p.spec.kind() == Kind::LoadBalancer)
    }

    fn lb_pool(&self, pool: &str) -> Option<String> {
        self.lb()
            .map(|lb| rid("Microsoft.Network/loadBalancers/backendAddressPools", &[&lb.name, pool]))
    }

    fn login_for(&self, os: &Os) -> Login {
        match os {
            Os::Windows => self.input.windows.clone().unwrap_or_else(|| self.input.linux.clone()),
            Os::Linux => self.input.linux.clone(),
        }
    }

    fn add(&mut self, p: &'a Planned) -> Result<(), String> {
        let loc = "[parameters('location')]";
        let tags = crate::tags::to_azure(self.input.tags);
        let res = |props: Value| json!({ "location": loc, "tags": tags, "properties": props });
        match &p.spec {
            Spec::Group { .. } | Spec::LbMember { .. } => {}
            Spec::Network { cidr, .. } => {
                let body = res(to(&VnetProps {
                    address_space: AddressSpace {
                        address_prefixes: vec![cidr.clone()],
                    },
                }));
                self.push(
                    "Microsoft.Network/virtualNetworks",
                    API_NETWORK,
                    &p.name,
                    body,
                    self.depends(p, &[]),
                );
            }
            Spec::Subnet { network, cidr } => {
                let vnet = self.name_of(network).unwrap_or_default();
                let kubenet = self.input.resources.iter().any(|r| r.spec.kind() == Kind::Route);
                let rt = format!("{vnet}-routetable");
                let route_table = kubenet.then(|| SubRef::to(rid("Microsoft.Network/routeTables", &[&rt])));
                let extra: Vec<String> = route_table.iter().map(|r| r.id.clone()).collect();
                let body = json!({ "properties": to(&SubnetProps { address_prefix: cidr.clone(), route_table }) });
                self.push(
                    "Microsoft.Network/virtualNetworks/subnets",
                    API_NETWORK,
                    &format!("{vnet}/{}", p.name),
                    body,
                    self.depends(p, &extra),
                );
                if kubenet {
                    let body = res(to(&RouteTableProps {
                        disable_bgp_route_propagation: false,
                    }));
                    self.push("Microsoft.Network/routeTables", API_NETWORK, &rt, body, Vec::new());
                }
            }
            Spec::Firewall {
                rules, more_sources, ..
            } => {
                // Sources known once other resources exist (the outbound
                // addresses): ARM reads them when it deploys the group.
                let mut rules = rules.clone();
                for rule in &mut rules {
                    for v in more_sources.get(&rule.name).into_iter().flatten() {
                        let ip = match v {
                            Val::Ref { resource, .. } => self.arm_id(resource).map(|id| {
                                format!(
                                    "[reference({}).ipAddress]",
                                    id.trim_start_matches('[').trim_end_matches(']')
                                )
                            }),
                            Val::Lit(s) => Some(s.clone()),
                        };
                        rule.sources.extend(ip);
                    }
                }
                let body = res(to(&nsg_props(&rules)));
                self.push(
                    "Microsoft.Network/networkSecurityGroups",
                    API_NETWORK,
                    &p.name,
                    body,
                    self.depends(p, &[]),
                );
            }
            Spec::PublicAddress { dns_label, .. } => {
                let mut body = res(to(&public_ip_props(dns_label.as_deref())));
                body["sku"] = json!({"name": "Standard"});
                self.push(
                    "Microsoft.Network/publicIPAddresses",
                    API_NETWORK,
                    &p.name,
                    body,
                    self.depends(p, &[]),
                );
            }
            Spec::LoadBalancer { address, port, .. } => {
                let address = address.as_ref().map(|a| self.id_of(a)).unwrap_or_default();
                let lb = p.name.clone();
                // The outbound rule's other frontends: the plan's extra
                // public addresses the load balancer depends on.
                let api_address = address_ref(&p.spec).unwrap_or_default();
                let outbound: Vec<String> = p
                    .depends_on
                    .iter()
                    .filter(|id| **id != api_address)
                    .filter(|id| self.planned(id).is_some_and(|q| q.spec.kind() == Kind::PublicAddress))
                    .filter_map(|id| self.arm_id(id))
                    .collect();
                let props = lb_props(
                    |c, n| rid(&format!("Microsoft.Network/loadBalancers/{c}"), &[&lb, n]),
                    &address,
                    &outbound,
                    *port,
                );
                let mut body = res(to(&props));
                body["sku"] = json!({"name": "Standard"});
                self.push(
                    "Microsoft.Network/loadBalancers",
                    API_NETWORK,
                    &p.name,
                    body,
                    self.depends(p, &[]),
                );
            }
            Spec::PlacementGroup { .. } => {
                let mut body = res(to(&AvailabilitySetProps {
                    platform_fault_domain_count: 2,
                    platform_update_domain_count: 5,
                }));
                body["sku"] = json!({"name": "Aligned"});
                self.push(
                    "Microsoft.Compute/availabilitySets",
                    API_COMPUTE,
                    &p.name,
                    body,
                    self.depends(p, &[]),
                );
            }
            Spec::Route {
                network,
                destination,
                next_hop,
            } => {
                let vnet = self.name_of(network).unwrap_or_default();
                let vm = self.name_of(next_hop).unwrap_or_default();
                let nic = rid("Microsoft.Network/networkInterfaces", &[&format!("{vm}-nic")]);
                let ip = format!(
                    "[reference({}).ipConfigurations[0].properties.privateIPAddress]",
                    nic.trim_start_matches('[').trim_end_matches(']')
                );
                let body = json!({ "properties": {
                    "addressPrefix": destination, "nextHopType": "VirtualAppliance", "nextHopIpAddress": ip } });
                let rt = rid("Microsoft.Network/routeTables", &[&format!("{vnet}-routetable")]);
                self.push(
                    "Microsoft.Network/routeTables/routes",
                    API_NETWORK,
                    &format!("{vnet}-routetable/{}", p.name),
                    body,
                    self.depends(p, &[rt, nic]),
                );
            }
            Spec::Machine(MachineSpec {
                subnet,
                firewall,
                os,
                size,
                image,
                disk_gb,
                private_ip,
                placement,
                ip_forwarding,
                pod_ips,
                ..
            }) => {
                let nic_name = format!("{}-nic", p.name);
                let nic_id = rid("Microsoft.Network/networkInterfaces", &[&nic_name]);
                let mut pools: Vec<String> = self.lb_pool(POOL_NODES).into_iter().collect();
                let member = self.input.resources.iter().any(|r| {
                    matches!(&r.spec, Spec::LbMember { machine: Val::Ref { resource, .. }, .. } if *resource == p.logical_id)
                });
                if member {
                    pools.extend(self.lb_pool(POOL_MASTERS));
                }
                let nic = res(to(&nic_props(
                    &self.id_of(subnet),
                    &self.id_of(firewall),
                    private_ip.as_deref(),
                    *ip_forwarding,
                    &pools,
                    *pod_ips,
                )));
                let nic_deps: Vec<String> = [subnet, firewall]
                    .into_iter()
                    .map(|v| self.id_of(v))
                    .chain(self.lb().and_then(|lb| self.arm_id(&lb.logical_id)))
                    .collect();
                self.push(
                    "Microsoft.Network/networkInterfaces",
                    API_NETWORK,
                    &nic_name,
                    nic,
                    nic_deps,
                );
                let mut login = self.login_for(os);
                login.password = Some("placeholder".into());
                let placement_id = placement.as_ref().map(|v| self.id_of(v));
                let vm = vm_props(VmInput {
                    name: &p.name,
                    nic: &nic_id,
                    os,
                    size,
                    image: &image.lookup,
                    disk_gb: *disk_gb,
                    placement: placement_id.as_deref(),
                    login: Some(&login),
                    user_data: "",
                })
                .map_err(|e| e.to_string())?;
                let mut body = res(to(&vm));
                let data = self.input.bootstrap.get(&p.name).cloned().unwrap_or_default();
                let data_param = self.secure(
                    &param("customData", &p.name),
                    &format!("bootstrap of {}", p.name),
                    &data,
                );
                body["properties"]["osProfile"]["customData"] = json!(format!(
                    "[base64({})]",
                    data_param.trim_start_matches('[').trim_end_matches(']')
                ));
                if *os == Os::Windows {
                    let pw = self
                        .input
                        .windows
                        .as_ref()
                        .and_then(|w| w.password.clone())
                        .unwrap_or_default();
                    body["properties"]["osProfile"]["adminPassword"] =
                        json!(self.secure("adminPassword", "Windows admin password", &pw));
                }
                self.push(
                    "Microsoft.Compute/virtualMachines",
                    API_COMPUTE,
                    &p.name,
                    body,
                    self.depends(p, &[nic_id]),
                );
                if *os == Os::Windows {
                    let vm_id = rid("Microsoft.Compute/virtualMachines", &[&p.name]);
                    let body = json!({ "location": loc, "properties": to(&bootstrap_extension()) });
                    self.push(
                        "Microsoft.Compute/virtualMachines/extensions",
                        API_COMPUTE,
                        &format!("{}/{}", p.name, BOOTSTRAP_EXTENSION),
                        body,
                        vec![vm_id],
                    );
                }
            }
            Spec::MachineGroup(MachineGroupSpec {
                subnet,
                firewall,
                os,
                size,
                image,
                disk_gb,
                count,
                name_prefix,
                ip_forwarding,
                pod_ips,
                ..
            }) => {
                let mut login = self.login_for(os);
                login.password = Some("placeholder".into());
                let vm = vm_props(VmInput {
                    name: name_prefix,
                    nic: "",
                    os,
                    size,
                    image: &image.lookup,
                    disk_gb: *disk_gb,
                    placement: None,
                    login: Some(&login),
                    user_data: "",
                })
                .map_err(|e| e.to_string())?;
                let pools: Vec<String> = self.lb_pool(POOL_NODES).into_iter().collect();
                let (subnet_id, nsg_id) = (self.id_of(subnet), self.id_of(firewall));
                let props = vmss_props(
                    vm,
                    name_prefix,
                    ScaleSetNet {
                        subnet: &subnet_id,
                        nsg: &nsg_id,
                        forwarding: *ip_forwarding,
                        pools: &pools,
                        pod_ips: *pod_ips,
                    },
                    os,
                    *count,
                );
                let mut body = res(to(&props));
                body["sku"] = json!({"name": size, "tier": "Standard", "capacity": count});
                let data = self.input.bootstrap.get(&p.name).cloned().unwrap_or_default();
                let data_param = self.secure(
                    &param("customData", &p.name),
                    &format!("bootstrap of {}", p.name),
                    &data,
                );
                let profile = &mut body["properties"]["virtualMachineProfile"]["osProfile"];
                profile["customData"] = json!(format!(
                    "[base64({})]",
                    data_param.trim_start_matches('[').trim_end_matches(']')
                ));
                if *os == Os::Windows {
                    let pw = self
                        .input
                        .windows
                        .as_ref()
                        .and_then(|w| w.password.clone())
                        .unwrap_or_default();
                    let pw = self.secure("adminPassword", "Windows admin password", &pw);
                    body["properties"]["virtualMachineProfile"]["osProfile"]["adminPassword"] = json!(pw);
                }
                let lb: Vec<String> = self
                    .lb()
                    .and_then(|lb| self.arm_id(&lb.logical_id))
                    .into_iter()
                    .collect();
                self.push(
                    "Microsoft.Compute/virtualMachineScaleSets",
                    API_COMPUTE,
                    &p.name,
                    body,
                    self.depends(p, &lb),
                );
            }
        }
        Ok(())
    }
}

/// The logical id of a load balancer's own (API server) address.
fn address_ref(spec: &Spec<Val>) -> Option<String> {
    match spec {
        Spec::LoadBalancer {
            address: Some(Val::Ref { resource, .. }),
            ..
        } => Some(resource.clone()),
        _ => None,
    }
}

/// The API server's address and DNS name.
fn outputs(input: &Input<'_>) -> Value {
    let Some(pip) = input
        .resources
        .iter()
        .find(|p| matches!(&p.spec, Spec::PublicAddress { dns_label: Some(_), .. }))
    else {
        return json!({});
    };
    let r = rid("Microsoft.Network/publicIPAddresses", &[&pip.name]);
    let r = r.trim_start_matches('[').trim_end_matches(']');
    json!({
        "apiServerAddress": {"type": "string", "value": format!("[reference({r}).ipAddress]")},
        "apiServerFqdn": {"type": "string", "value": format!("[reference({r}).dnsSettings.fqdn]")},
    })
}

fn to<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Build the template of a plan.
pub fn build(input: &Input<'_>) -> Result<Template, String> {
    let mut b = Builder {
        input,
        by_id: input.resources.iter().map(|p| (p.logical_id.as_str(), p)).collect(),
        resources: Vec::new(),
        parameters: serde_json::Map::new(),
        values: serde_json::Map::new(),
    };
    b.parameters.insert(
        "location".into(),
        json!({"type": "string", "defaultValue": input.location,
               "metadata": {"description": "where the resources go (the resource group must exist)"}}),
    );
    b.parameters.insert(
        "createdAt".into(),
        json!({"type": "string", "defaultValue": "[utcNow('yyyy-MM-ddTHH:mm:ssZ')]",
               "metadata": {"description": "the hke.io/created tag (the janitor reads it)"}}),
    );
    for p in input.resources {
        b.add(p)?;
    }
    let template = json!({
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {"generator": {"name": "hke", "version": env!("CARGO_PKG_VERSION")}},
        "parameters": Value::Object(b.parameters),
        "resources": b.resources,
        "outputs": outputs(input),
    });
    let parameters = json!({
        "$schema": PARAMETERS_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": Value::Object(b.values),
    });
    Ok(Template { template, parameters })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(password: Option<&str>) -> Login {
        Login {
            username: "azureuser".into(),
            ssh_public_keys: vec!["ssh-ed25519 AAAA test".into()],
            password: password.map(String::from),
        }
    }

    #[test]
    fn the_template_gives_the_outbound_rule_every_planned_outbound_address() {
        let group = Planned {
            logical_id: "group".into(),
            name: "c".into(),
            spec: Spec::Group {
                location: "westus2".into(),
                ssh_public_key: None,
            },
            depends_on: Vec::new(),
        };
        let pip = |id: &str, name: &str, label: Option<&str>| Planned {
            logical_id: id.into(),
            name: name.into(),
            spec: Spec::PublicAddress {
                group: Val::id_of("group"),
                dns_label: label.map(String::from),
            },
            depends_on: vec!["group".into()],
        };
        let lb = Planned {
            logical_id: "loadBalancer/apiserver".into(),
            name: "c-apiserver".into(),
            spec: Spec::LoadBalancer {
                address: Some(Val::id_of("publicAddress/apiserver")),
                subnet: Val::lit("/s"),
                port: 6443,
                allowed_sources: Vec::new(),
            },
            depends_on: vec![
                "publicAddress/apiserver".into(),
                "publicAddress/outbound-1".into(),
                "publicAddress/outbound-2".into(),
            ],
        };
        let resources = vec![
            group,
            pip("publicAddress/apiserver", "c-apiserver-ip", Some("c")),
            pip("publicAddress/outbound-1", "c-apiserver-outbound-1", None),
            pip("publicAddress/outbound-2", "c-apiserver-outbound-2", None),
            lb,
        ];
        let tags = BTreeMap::new();
        let t = build(&Input {
            location: "westus2",
            tags: &tags,
            resources: &resources,
            bootstrap: &BTreeMap::new(),
            linux: login(None),
            windows: None,
        })
        .expect("template");
        let lb = t.template["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["type"] == "Microsoft.Network/loadBalancers")
            .expect("lb");
        let p = &lb["properties"];
        assert_eq!(p["frontendIPConfigurations"].as_array().map(Vec::len), Some(3));
        assert!(p["frontendIPConfigurations"][2]["properties"]["publicIPAddress"]["id"]
            .as_str()
            .is_some_and(|s| s.contains("c-apiserver-outbound-2")));
        let rule = &p["outboundRules"][0]["properties"];
        assert_eq!(rule["frontendIPConfigurations"].as_array().map(Vec::len), Some(3));
        assert_eq!(rule["allocatedOutboundPorts"], hke_provider_api::snat::PORTS_PER_NODE);
        let deps = lb["dependsOn"].to_string();
        assert!(
            deps.contains("c-apiserver-outbound-1") && deps.contains("c-apiserver-outbound-2"),
            "{deps}"
        );
        // The API server's address is the one with a DNS label.
        assert!(t.template["outputs"]["apiServerFqdn"]["value"]
            .as_str()
            .is_some_and(|v| v.contains("'c-apiserver-ip'")));
    }
}
