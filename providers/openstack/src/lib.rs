//! hke's OpenStack provider: the `Provider` trait over Neutron, Octavia,
//! Nova and Glance through the `openstack_sdk` crate's typed endpoints
//! (each sent with its raw-response combinator, so that status, error body
//! and `Retry-After` are hke's to classify), authenticated against
//! Keystone v3 with a password or an application credential read as the
//! OpenStack CLI reads them (`config.rs`).
//!
//! | hke resource   | OpenStack                                                               |
//! |----------------|-------------------------------------------------------------------------|
//! | group          | nothing (the project is the scope); the cluster's Nova keypair          |
//! |                | `hke-<cluster>` when the spec carries an SSH key                        |
//! | network        | Neutron network + router (gateway on the external network), same name   |
//! | subnet         | subnet + its interface on the network's router                          |
//! | firewall       | security group, one ingress rule per hke rule and source                |
//! | publicAddress  | floating IP on the external network (its description is the name)      |
//! | loadBalancer   | Octavia load balancer on the subnet, created whole (TCP listener on the |
//! |                | API port, round-robin pool, TCP health monitor), the floating IP on its |
//! |                | VIP port; without Octavia in the catalog, the floating IP itself         |
//! | lbMember       | pool member (the machine's fixed IP); without Octavia, the floating IP  |
//! |                | associated with the single master's port                                |
//! | route          | router extra route to the node's pod range via its fixed IP, and the    |
//! |                | pod range in the node port's `allowed_address_pairs` (kubenet)          |
//! | machine        | port (fixed IP for masters, the firewall's security group) + server:    |
//! |                | flavor by name or nearest by vCPUs and RAM, Glance image by name or id, |
//! |                | keypair, user data (cloud-init; `#ps1_sysnative` for cloudbase-init),   |
//! |                | hke's tags as server tags and metadata                                  |
//! | machineGroup   | `count` ports + servers named `<prefix>NNNNNN`, tagged with the group   |
//!
//! Tags: every object carries hke's tags as `key=value` tag strings
//! (`hke.io:cluster=<name>`, see `tags.rs`); Neutron objects are tagged right
//! after they are made (their create calls take no tags), Nova servers and
//! Octavia load balancers in the create call. Multi-step objects (network,
//! subnet, security group, load balancer) get `hke.io:complete=true` when
//! every step is done, and `read` adopts only those.
//!
//! Idempotency: every create first looks its object up by name (servers,
//! networks, ports …; a floating IP by its description) among the project's
//! objects tagged with the cluster, or untagged (a create that stopped
//! before tagging), then creates what is missing. Servers are followed from
//! BUILD to ACTIVE (ERROR reports Nova's fault), load balancers from
//! PENDING_* to ACTIVE.
//!
//! Teardown: in hke's rank order; a network's delete removes its router
//! first, a subnet's its router interface, a machine's its server and then
//! its port, a load balancer goes with `cascade` (listener, pool, members,
//! monitor). Neutron's 409 "in use" and Octavia's "PENDING_*" are transient
//! (`error.rs`), so the engine retries until the user is gone. `list` finds
//! everything by the cluster tag, including routers and ports left behind.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hke_provider_api::resource::{OUT_ADDRESS, OUT_DNS_NAME, OUT_EGRESS_ADDRESS, OUT_ID, OUT_PRIVATE_IP};
use hke_provider_api::{
    outputs, Class, Found, Image, Kind, LeftBehind, MachineGroupSpec, MachineSpec, NotFoundExt, Os, Outputs, Provider,
    ProviderError, Request, Rule, Spec,
};
use openstack_sdk::api::compute::v2 as nova;
use openstack_sdk::api::image::v2 as glance;
use openstack_sdk::api::load_balancer::v2 as octavia;
use openstack_sdk::api::network::v2 as neutron;
use openstack_sdk::api::{raw, AsyncClient, QueryAsync, RestClient, RestEndpoint};
use openstack_sdk::types::ServiceType;
use openstack_sdk::AsyncOpenStack;
use serde_json::Value;

pub mod compute;
pub mod config;
pub mod error;
pub mod tags;

pub use compute::size_request;
pub use config::OpenStackConfig;

use error::bad_request;
use tags::{TAG_COMPLETE, TAG_GROUP, TAG_PARTS};

type R<T> = Result<T, ProviderError>;

/// The output with a network's router.
pub const OUT_ROUTER: &str = "router";
/// The output with a machine's port.
pub const OUT_PORT: &str = "port";
/// The Nova microversion of server creates, reads and lists: 2.52 takes
/// tags in the create call and 2.26 added the `tags` list filter (Compute
/// API reference, "Create Server" `tags`, "List Servers" `tags`).
const NOVA_VERSION: &str = "compute 2.52";
/// The microversion header of every Nova call (the SDK's endpoints would
/// otherwise send their own minimum, which needs the endpoint's version
/// discovery to be right).
fn nova_header() -> (http::HeaderName, http::HeaderValue) {
    (
        http::HeaderName::from_static("openstack-api-version"),
        http::HeaderValue::from_static(NOVA_VERSION),
    )
}

/// How much of a console log to fetch (lines; `os-getConsoleOutput`
/// `length`).
const CONSOLE_LINES: i32 = 2000;

/// The Neutron objects hke tags (their collection in the API path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    Network,
    Subnet,
    Router,
    SecurityGroup,
    Port,
    FloatingIp,
}

impl Net {
    fn noun(self) -> &'static str {
        match self {
            Net::Network => "network",
            Net::Subnet => "subnet",
            Net::Router => "router",
            Net::SecurityGroup => "security group",
            Net::Port => "port",
            Net::FloatingIp => "floating IP",
        }
    }
}

/// The tags an object should carry: hke's (`want`), one per key, its own
/// creation time kept (adopted by a deploy that lost its state, and so
/// stamps a new one, it is as old as it is), the marker of a finished
/// create and others' tags kept.
fn merged_tags(have: &[String], mut want: BTreeMap<String, String>) -> Vec<String> {
    let created = have
        .iter()
        .filter_map(|t| tags::decode(t))
        .find(|(k, _)| k == hke_provider_api::TAG_CREATED);
    if let Some((k, v)) = created {
        want.insert(k, v);
    }
    let mut out: Vec<String> = tags::encode_all(&want);
    let kept: Vec<String> = have
        .iter()
        .filter(|t| !out.contains(t))
        .filter(|t| tags::decode(t).is_none_or(|(k, _)| !want.contains_key(&k)))
        .cloned()
        .collect();
    out.extend(kept);
    out
}

/// Octavia's `allowed_cidrs` for a listener: nothing when every address
/// is allowed, each bare address as a /32.
fn allowed_cidrs(sources: &[String]) -> Vec<String> {
    if sources.iter().any(|s| s == "0.0.0.0/0" || s == "*") {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for s in sources.iter().filter(|s| !s.is_empty()) {
        let cidr = if s.contains('/') { s.clone() } else { format!("{s}/32") };
        if !out.contains(&cidr) {
            out.push(cidr);
        }
    }
    out
}

/// A router's IPv4 address on the external network
/// (`external_gateway_info.external_fixed_ips[].ip_address`, Networking API
/// v2 routers): the source of the packets its SNAT sends out, and of a
/// node's packets to a floating IP behind the same router (the L3 agent
/// SNATs DNATed traffic from inside to it: `-m conntrack --ctstate DNAT -j
/// SNAT --to-source <gateway>` in neutron-l3-agent-snat).
fn gateway_address(router: &Value) -> String {
    router
        .pointer("/external_gateway_info/external_fixed_ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("ip_address").and_then(Value::as_str))
        .find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        .unwrap_or_default()
        .to_string()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(|x| x.as_str()).unwrap_or_default()
}

fn list_of(v: &Value, key: &str) -> Vec<Value> {
    v.get(key).and_then(|x| x.as_array()).cloned().unwrap_or_default()
}

fn tag_strings(v: &Value) -> Vec<String> {
    v.get("tags")
        .and_then(|t| t.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The first fixed IP of a port.
fn fixed_ip(port: &Value) -> String {
    port.get("fixed_ips")
        .and_then(|f| f.as_array())
        .and_then(|a| a.first())
        .map(|f| str_of(f, "ip_address").to_string())
        .unwrap_or_default()
}

/// The name of a machine group's server `i`: the prefix and six digits, as
/// a VM scale set names its instances.
pub fn group_server_name(prefix: &str, i: u32) -> String {
    format!("{prefix}{i:06}")
}

/// The cluster's Nova keypair.
pub fn keypair_name(cluster: &str) -> String {
    format!("hke-{cluster}")
}

/// hke's source range for "anywhere" as Neutron's.
fn source_prefix(s: &str) -> String {
    match s {
        "*" | "Internet" | "any" | "0.0.0.0/0" => "0.0.0.0/0".to_string(),
        // A bare address (the router's gateway): as the CIDR Neutron
        // stores, so that a redeploy finds the rule it made.
        other if !other.contains('/') => format!("{other}/32"),
        other => other.to_string(),
    }
}

/// A security group rule: protocol (None for every protocol) and port range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SgRule {
    pub protocol: Option<String>,
    pub ports: Option<(i32, i32)>,
    pub remote: String,
}

/// hke's rules as Neutron ingress rules, one per source.
pub fn sg_rules(rules: &[Rule]) -> Result<Vec<SgRule>, String> {
    let mut out = Vec::new();
    for r in rules {
        let protocol = match r.protocol.as_str() {
            "all" | "*" => None,
            "tcp" | "udp" | "icmp" => Some(r.protocol.clone()),
            p => return Err(format!("rule {}: protocol {p:?} is not tcp, udp, icmp or all", r.name)),
        };
        let ports = match (r.ports.as_str(), &protocol) {
            ("*", _) | (_, None) => None,
            (p, Some(_)) => {
                let (lo, hi) = p.split_once('-').unwrap_or((p, p));
                let lo: i32 = lo.trim().parse().map_err(|_| format!("rule {}: ports {p:?}", r.name))?;
                let hi: i32 = hi.trim().parse().map_err(|_| format!("rule {}: ports {p:?}", r.name))?;
                Some((lo, hi))
            }
        };
        for s in &r.sources {
            out.push(SgRule {
                protocol: protocol.clone(),
                ports,
                remote: source_prefix(s),
            });
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The OpenStack provider.
pub struct OpenStack {
    cfg: OpenStackConfig,
    client: AsyncOpenStack,
    /// The login's secrets, kept out of every message.
    secrets: Vec<String>,
    project: String,
    octavia: bool,
    external: tokio::sync::OnceCell<String>,
    flavors: tokio::sync::OnceCell<Vec<compute::Flavor>>,
    images: tokio::sync::Mutex<BTreeMap<String, String>>,
    keypair: tokio::sync::Mutex<Option<String>>,
    /// Network id → router id.
    routers: Mutex<BTreeMap<String, String>>,
    /// Subnet id → network id.
    subnet_networks: Mutex<BTreeMap<String, String>>,
    /// Serialises read-modify-write updates of a router's routes where the
    /// cloud lacks `extraroute-atomic`.
    route_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for OpenStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenStack")
            .field("cluster", &self.cfg.cluster)
            .field("project", &self.project)
            .field("region", &self.client.get_region_name())
            .field("octavia", &self.octavia)
            .finish()
    }
}

/// The SDK finds its Keystone methods through `inventory` registrations,
/// which exist only in plugin crates that are linked; its own anchors are
/// unused imports that do not guarantee it (openstack_sdk `build.rs`,
/// `plugin_anchors.rs`), and a binary without them fails with "AuthType
/// `v3applicationcredential` is not a supported type". Using the statics
/// links them.
fn link_auth_plugins() {
    std::hint::black_box((
        &openstack_sdk_auth_password::ANCHOR,
        &openstack_sdk_auth_applicationcredential::ANCHOR,
        &openstack_sdk_auth_token::ANCHOR,
    ));
}

impl OpenStack {
    /// Authenticate and read what the cluster needs from the catalog.
    pub async fn connect(cfg: OpenStackConfig) -> R<OpenStack> {
        link_auth_plugins();
        if !tags::cluster_fits(&cfg.cluster) {
            return Err(ProviderError::permanent(
                "ClusterName",
                format!(
                    "cluster name {:?} is too long for OpenStack tags (at most 45 characters)",
                    cfg.cluster
                ),
            ));
        }
        let cc = cfg.cloud_config().map_err(|m| ProviderError::permanent("Config", m))?;
        let mut secrets = cfg.secrets();
        secrets.extend(cc.get_sensitive_values().into_iter().map(str::to_string));
        let client = AsyncOpenStack::builder(&cc)
            .disable_auth_cache(true)
            .connect()
            .await
            .map_err(|e| {
                let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
                let message = error::redact(&e.to_string(), &refs);
                let transient = matches!(e, openstack_sdk::OpenStackError::Communication { .. });
                ProviderError {
                    class: if transient {
                        Class::Transient { retry_after: None }
                    } else {
                        Class::Permanent
                    },
                    left_behind: LeftBehind::Nothing,
                    code: Some("Authentication".into()),
                    message: format!(
                        "authenticate to OpenStack at {}: {message}",
                        cc.auth.as_ref().and_then(|a| a.auth_url.clone()).unwrap_or_default()
                    ),
                }
            })?;
        let project = client.get_current_project().and_then(|p| p.id).ok_or_else(|| {
            ProviderError::permanent(
                "NoProject",
                "the OpenStack token is not scoped to a project: set OS_PROJECT_NAME or OS_PROJECT_ID \
                     (or use a project's application credential)",
            )
        })?;
        // Octavia's catalog type is `load-balancer` (Load Balancer API reference).
        let octavia = match cfg.octavia {
            Some(o) => o,
            None => client
                .get_service_endpoint(&ServiceType::LoadBalancer, None)
                .await
                .is_ok(),
        };
        // Catalog endpoints of Neutron, Glance and Octavia usually end
        // before the version (`http://host:9696`); version discovery finds
        // the versioned root the SDK's endpoint paths are relative to
        // (openstack_sdk `AsyncOpenStack::discover_service_endpoint`).
        let mut services = vec![ServiceType::Network, ServiceType::Compute, ServiceType::Image];
        if octavia {
            services.push(ServiceType::LoadBalancer);
        }
        for st in services {
            client.discover_service_endpoint(&st).await.map_err(|e| {
                let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
                ProviderError::permanent(
                    "Discovery",
                    format!("find the {st} API's versions: {}", error::redact(&e.to_string(), &refs)),
                )
            })?;
        }
        Ok(OpenStack {
            cfg,
            client,
            secrets,
            project,
            octavia,
            external: tokio::sync::OnceCell::new(),
            flavors: tokio::sync::OnceCell::new(),
            images: tokio::sync::Mutex::new(BTreeMap::new()),
            keypair: tokio::sync::Mutex::new(None),
            routers: Mutex::new(BTreeMap::new()),
            subnet_networks: Mutex::new(BTreeMap::new()),
            route_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether the API endpoint goes through Octavia.
    pub fn uses_octavia(&self) -> bool {
        self.octavia
    }

    /// The project everything is made in.
    pub fn project(&self) -> &str {
        &self.project
    }

    fn cluster_tag(&self) -> String {
        tags::cluster_tag(&self.cfg.cluster)
    }

    // ---- calls ----

    /// Send an endpoint and answer its JSON body (`Null` for an empty one);
    /// an error answer is classified (`error.rs`), `secrets` (and the
    /// login's) are kept out of the message.
    async fn send_with<E>(&self, what: &str, ep: E, secrets: &[&str]) -> R<Value>
    where
        E: RestEndpoint + Sync + Send,
    {
        let mut all: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        all.extend_from_slice(secrets);
        let rsp: http::Response<bytes::Bytes> = raw(ep)
            .skip_error_check(true)
            .query_async(&self.client)
            .await
            .map_err(|e| error::from_api(what, e, &all))?;
        let status = rsp.status().as_u16();
        if !(200..300).contains(&status) {
            let ra = rsp.headers().get("retry-after").and_then(|v| v.to_str().ok());
            return Err(error::from_response(what, status, ra, rsp.body(), &all));
        }
        if rsp.body().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(rsp.body())
            .map_err(|e| ProviderError::transient("BadResponse", format!("{what}: the answer is not JSON ({e})"), None))
    }

    async fn send<E>(&self, what: &str, ep: E) -> R<Value>
    where
        E: RestEndpoint + Sync + Send,
    {
        self.send_with(what, ep, &[]).await
    }

    /// The longest pause between polls.
    fn max_pause(&self) -> Duration {
        (self.cfg.poll * 10).min(Duration::from_secs(5))
    }

    /// Poll `check` until it answers `Some`, riding out transient errors,
    /// for at most the configured wait.
    async fn wait_for<T, F, Fut>(&self, what: &str, mut check: F) -> R<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = R<Option<T>>>,
    {
        let started = Instant::now();
        let mut pause = self.cfg.poll;
        loop {
            match check().await {
                Ok(Some(t)) => return Ok(t),
                Ok(None) => {}
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
            if started.elapsed() > self.cfg.wait {
                return Err(ProviderError {
                    class: Class::Transient { retry_after: None },
                    left_behind: LeftBehind::Unknown,
                    code: Some("Timeout".into()),
                    message: format!("{what}: not done after {:?}", self.cfg.wait),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.max_pause());
        }
    }

    // ---- Neutron generic ----

    /// Every object of a Neutron collection, filtered by name and tag.
    async fn neutron_list(&self, r: Net, name: Option<&str>, tag: Option<&str>) -> R<Vec<Value>> {
        let what = format!("list {}s", r.noun());
        let tags = || tag.map(|t| Cow::from(t.to_string())).into_iter();
        macro_rules! list {
            ($m:ident, $key:literal, named) => {{
                let mut b = neutron::$m::list::Request::builder();
                if let Some(n) = name {
                    b.name(n);
                }
                // An empty `tags=` would match nothing: only a real filter.
                if tag.is_some() {
                    b.tags(tags());
                }
                let ep = b.build().map_err(|e| bad_request(&what, e))?;
                list_of(&self.send(&what, ep).await?, $key)
            }};
        }
        Ok(match r {
            Net::Network => list!(network, "networks", named),
            Net::Subnet => list!(subnet, "subnets", named),
            Net::Router => list!(router, "routers", named),
            Net::SecurityGroup => list!(security_group, "security_groups", named),
            Net::Port => list!(port, "ports", named),
            Net::FloatingIp => {
                let mut b = neutron::floatingip::list::Request::builder();
                if tag.is_some() {
                    b.tags(tags());
                }
                let ep = b.build().map_err(|e| bad_request(&what, e))?;
                let all = list_of(&self.send(&what, ep).await?, "floatingips");
                // Floating IPs have no name: hke keeps it in the description.
                all.into_iter()
                    .filter(|f| name.is_none_or(|n| str_of(f, "description") == n))
                    .collect()
            }
        })
    }

    /// The object of this name that is the cluster's (tagged with it) or
    /// nobody's yet (a create that stopped before tagging); objects of
    /// other clusters are never adopted.
    async fn neutron_find(&self, r: Net, name: &str) -> R<Option<Value>> {
        let found = self.neutron_list(r, Some(name), None).await?;
        let mine = self.cluster_tag();
        let (ours, untagged): (Vec<Value>, Vec<Value>) = found
            .into_iter()
            .filter(|v| {
                let t = tag_strings(v);
                t.contains(&mine) || !tags::decode_all(&t).contains_key(hke_provider_api::TAG_CLUSTER)
            })
            .partition(|v| tag_strings(v).contains(&mine));
        Ok(ours.into_iter().next().or_else(|| untagged.into_iter().next()))
    }

    /// Replace an object's tags.
    async fn neutron_tag(&self, r: Net, id: &str, tag_list: &[String]) -> R<()> {
        let what = format!("tag {} {id}", r.noun());
        let t: Vec<Cow<str>> = tag_list.iter().map(|s| Cow::from(s.as_str())).collect();
        macro_rules! replace {
            ($m:ident, $idf:ident) => {{
                let ep = neutron::$m::tag::replace::Request::builder()
                    .$idf(id)
                    .tags(t)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                self.send(&what, ep).await.map(|_| ())
            }};
        }
        match r {
            Net::Network => replace!(network, network_id),
            Net::Subnet => replace!(subnet, subnet_id),
            Net::Router => replace!(router, router_id),
            Net::SecurityGroup => replace!(security_group, security_group_id),
            Net::Port => replace!(port, port_id),
            Net::FloatingIp => replace!(floatingip, floatingip_id),
        }
    }

    /// Tag an object with the request's tags (and more) unless it has them.
    async fn ensure_tags(
        &self,
        r: Net,
        obj: &Value,
        req_tags: &BTreeMap<String, String>,
        extra: &[(&str, &str)],
    ) -> R<()> {
        let mut want_map = req_tags.clone();
        for (k, v) in extra {
            want_map.insert((*k).to_string(), (*v).to_string());
        }
        let have = tag_strings(obj);
        let want = merged_tags(&have, want_map);
        // Unchanged: no write (a redeploy makes none).
        if want.iter().collect::<BTreeSet<_>>() == have.iter().collect::<BTreeSet<_>>() {
            return Ok(());
        }
        self.neutron_tag(r, str_of(obj, "id"), &want).await
    }

    /// Mark a finished multi-step object.
    async fn mark_complete(&self, r: Net, obj: &Value, req_tags: &BTreeMap<String, String>) -> R<()> {
        self.ensure_tags(r, obj, req_tags, &[(TAG_COMPLETE, "true")]).await
    }

    fn is_complete(obj: &Value) -> bool {
        tag_strings(obj).contains(&tags::encode(TAG_COMPLETE, "true"))
    }

    async fn neutron_delete(&self, r: Net, id: &str) -> R<()> {
        let what = format!("delete {} {id}", r.noun());
        macro_rules! del {
            ($m:ident) => {{
                let ep = neutron::$m::delete::Request::builder()
                    .id(id)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                self.send(&what, ep).await.map(|_| ())
            }};
        }
        match r {
            Net::Network => del!(network),
            Net::Subnet => del!(subnet),
            Net::Router => del!(router),
            Net::SecurityGroup => del!(security_group),
            Net::Port => del!(port),
            Net::FloatingIp => del!(floatingip),
        }
    }

    async fn neutron_get(&self, r: Net, id: &str) -> R<Value> {
        let what = format!("read {} {id}", r.noun());
        macro_rules! get {
            ($m:ident, $key:literal) => {{
                let ep = neutron::$m::get::Request::builder()
                    .id(id)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                self.send(&what, ep)
                    .await?
                    .get($key)
                    .cloned()
                    .unwrap_or(Value::Null)
            }};
        }
        Ok(match r {
            Net::Network => get!(network, "network"),
            Net::Subnet => get!(subnet, "subnet"),
            Net::Router => get!(router, "router"),
            Net::SecurityGroup => get!(security_group, "security_group"),
            Net::Port => get!(port, "port"),
            Net::FloatingIp => get!(floatingip, "floatingip"),
        })
    }

    // ---- external network ----

    /// The external network (id): the configured one, else the only
    /// `router:external` network (Networking API reference, "External
    /// network": `router:external`).
    async fn external_network(&self) -> R<String> {
        self.external
            .get_or_try_init(|| async {
                let what = "list external networks";
                let ep = neutron::network::list::Request::builder()
                    .router_external(true)
                    .build()
                    .map_err(|e| bad_request(what, e))?;
                let nets = list_of(&self.send(what, ep).await?, "networks");
                match &self.cfg.external_network {
                    Some(want) => nets
                        .iter()
                        .find(|n| str_of(n, "id") == want || str_of(n, "name") == want)
                        .map(|n| str_of(n, "id").to_string())
                        .ok_or_else(|| {
                            ProviderError::permanent(
                                "NoExternalNetwork",
                                format!(
                                    "no external network {want:?} (external networks: {})",
                                    nets.iter().map(|n| str_of(n, "name")).collect::<Vec<_>>().join(", ")
                                ),
                            )
                        }),
                    None => match nets.as_slice() {
                        [one] => Ok(str_of(one, "id").to_string()),
                        [] => Err(ProviderError::permanent(
                            "NoExternalNetwork",
                            "the cloud has no external network (router:external) for the router's gateway \
                             and floating IPs",
                        )),
                        many => Err(ProviderError::permanent(
                            "NoExternalNetwork",
                            format!(
                                "several external networks ({}): choose one with HKE_OPENSTACK_EXTERNAL_NETWORK",
                                many.iter().map(|n| str_of(n, "name")).collect::<Vec<_>>().join(", ")
                            ),
                        )),
                    },
                }
            })
            .await
            .cloned()
    }

    // ---- group ----

    /// The cluster's keypair: made from `key` when it does not exist.
    /// Keypairs have no tags; the name carries the cluster.
    async fn ensure_keypair(&self, key: Option<&str>) -> R<Option<String>> {
        let mut cached = self.keypair.lock().await;
        if cached.is_some() {
            return Ok(cached.clone());
        }
        let name = keypair_name(&self.cfg.cluster);
        let what = format!("read keypair {name}");
        let ep = nova::keypair::get_20::Request::builder()
            .header(nova_header().0, nova_header().1)
            .id(name.as_str())
            .build()
            .map_err(|e| bad_request(&what, e))?;
        if self.send(&what, ep).await.none_if_not_found()?.is_some() {
            *cached = Some(name.clone());
            return Ok(Some(name));
        }
        let Some(key) = key.filter(|k| !k.trim().is_empty()) else {
            return Ok(None);
        };
        let what = format!("create keypair {name}");
        let kp = nova::keypair::create_22::KeypairBuilder::default()
            .name(name.as_str())
            .public_key(key.trim())
            .build()
            .map_err(|e| bad_request(&what, e))?;
        let ep = nova::keypair::create_22::Request::builder()
            .header(nova_header().0, nova_header().1)
            .keypair(kp)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        match self.send(&what, ep).await {
            Ok(_) => {}
            Err(e) if e.class == Class::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        *cached = Some(name.clone());
        Ok(Some(name))
    }

    async fn delete_keypair(&self) -> R<()> {
        let name = keypair_name(&self.cfg.cluster);
        let what = format!("delete keypair {name}");
        let ep = nova::keypair::delete_20::Request::builder()
            .header(nova_header().0, nova_header().1)
            .id(name.as_str())
            .build()
            .map_err(|e| bad_request(&what, e))?;
        self.send(&what, ep).await.map(|_| ())?;
        *self.keypair.lock().await = None;
        Ok(())
    }

    // ---- network and router ----

    async fn read_network(&self, name: &str) -> R<Option<Outputs>> {
        let Some(net) = self.neutron_find(Net::Network, name).await? else {
            return Ok(None);
        };
        if !Self::is_complete(&net) {
            return Ok(None);
        }
        let id = str_of(&net, "id").to_string();
        let router = self.router_of(&id).await?.unwrap_or_default();
        let egress = if router.is_empty() {
            String::new()
        } else {
            gateway_address(&self.neutron_get(Net::Router, &router).await?)
        };
        Ok(Some(outputs(
            &id,
            &[(OUT_ROUTER, &router), (OUT_EGRESS_ADDRESS, &egress)],
        )))
    }

    async fn create_network(&self, req: &Request) -> R<Outputs> {
        let net = match self.neutron_find(Net::Network, &req.name).await? {
            Some(n) => n,
            None => {
                let what = format!("create network {}", req.name);
                let body = neutron::network::create::NetworkBuilder::default()
                    .name(req.name.as_str())
                    .admin_state_up(true)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                let ep = neutron::network::create::Request::builder()
                    .network(body)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                self.send(&what, ep)
                    .await?
                    .get("network")
                    .cloned()
                    .unwrap_or(Value::Null)
            }
        };
        let id = str_of(&net, "id").to_string();
        self.ensure_tags(Net::Network, &net, &req.tags, &[]).await?;
        let (router, egress) = self.ensure_router(req, &id).await?;
        self.mark_complete(Net::Network, &net, &req.tags).await?;
        Ok(outputs(&id, &[(OUT_ROUTER, &router), (OUT_EGRESS_ADDRESS, &egress)]))
    }

    /// The network's router (same name), with its gateway on the external
    /// network: its id and its gateway address.
    async fn ensure_router(&self, req: &Request, network: &str) -> R<(String, String)> {
        let external = self.external_network().await?;
        let found = match self.neutron_find(Net::Router, &req.name).await? {
            Some(r) if r.get("external_gateway_info").is_some_and(|g| !g.is_null()) => Some(r),
            // Still being made (by a killed deploy's request, which Neutron
            // finishes): Neutron commits the router before it sets the
            // gateway, and deletes it again when setting the gateway fails
            // (`create_router` in neutron/db/l3_db.py). Adopt it once the
            // gateway is set; create a new one if it goes.
            Some(r) => self.router_settled(str_of(&r, "id")).await?,
            None => None,
        };
        let router = match found {
            Some(r) => r,
            None => {
                let what = format!("create router {}", req.name);
                let gw = neutron::router::create::ExternalGatewayInfoBuilder::default()
                    .network_id(external.as_str())
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                let body = neutron::router::create::RouterBuilder::default()
                    .name(req.name.as_str())
                    .admin_state_up(true)
                    .external_gateway_info(Some(gw))
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                let ep = neutron::router::create::Request::builder()
                    .router(body)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                self.send(&what, ep)
                    .await?
                    .get("router")
                    .cloned()
                    .unwrap_or(Value::Null)
            }
        };
        let id = str_of(&router, "id").to_string();
        let network_tag: [(&str, &str); 1] = [("hke.io/network", network)];
        self.ensure_tags(Net::Router, &router, &req.tags, &network_tag).await?;
        if let Ok(mut m) = self.routers.lock() {
            m.insert(network.to_string(), id.clone());
        }
        Ok((id, gateway_address(&router)))
    }

    /// A router being made, once Neutron has set its gateway (`Some`) or
    /// deleted it (`None`).
    async fn router_settled(&self, id: &str) -> R<Option<Value>> {
        self.wait_for(&format!("router {id}'s gateway"), || async {
            match self.neutron_get(Net::Router, id).await {
                Ok(r) if r.get("external_gateway_info").is_some_and(|g| !g.is_null()) => Ok(Some(Some(r))),
                Ok(_) => Ok(None),
                Err(e) if e.class == Class::NotFound => Ok(Some(None)),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// The router of a network hke made (tagged `hke.io/network=<id>`).
    async fn router_of(&self, network: &str) -> R<Option<String>> {
        if let Some(r) = self.routers.lock().ok().and_then(|m| m.get(network).cloned()) {
            return Ok(Some(r));
        }
        let tag = tags::encode("hke.io/network", network);
        let found = self.neutron_list(Net::Router, None, Some(&tag)).await?;
        let id = found.first().map(|r| str_of(r, "id").to_string());
        if let (Some(id), Ok(mut m)) = (&id, self.routers.lock()) {
            m.insert(network.to_string(), id.clone());
        }
        Ok(id)
    }

    async fn delete_router(&self, id: &str) -> R<()> {
        // Its extra routes go with it; interfaces must be gone (409 RouterInUse,
        // retried: the subnets' deletes remove them).
        self.neutron_delete(Net::Router, id).await.done_if_not_found()?;
        if let Ok(mut m) = self.routers.lock() {
            m.retain(|_, r| r != id);
        }
        Ok(())
    }

    async fn delete_network(&self, id: &str) -> R<()> {
        if let Some(router) = self.router_of(id).await? {
            self.delete_router(&router).await?;
        }
        self.neutron_delete(Net::Network, id).await
    }

    // ---- subnet ----

    async fn read_subnet(&self, name: &str) -> R<Option<Outputs>> {
        Ok(self
            .neutron_find(Net::Subnet, name)
            .await?
            .filter(Self::is_complete)
            .map(|s| outputs(str_of(&s, "id"), &[("network", str_of(&s, "network_id"))])))
    }

    async fn create_subnet(&self, req: &Request, network: &str, cidr: &str) -> R<Outputs> {
        let subnet = match self.neutron_find(Net::Subnet, &req.name).await? {
            Some(s) => s,
            None => {
                let what = format!("create subnet {}", req.name);
                let mut b = neutron::subnet::create::SubnetBuilder::default();
                b.name(req.name.as_str())
                    .network_id(network)
                    .cidr(Some(Cow::from(cidr)))
                    .ip_version(4)
                    .enable_dhcp(true);
                if !self.cfg.dns_nameservers.is_empty() {
                    b.dns_nameservers(
                        self.cfg
                            .dns_nameservers
                            .iter()
                            .map(|d| Cow::from(d.as_str()))
                            .collect::<Vec<_>>(),
                    );
                }
                let body = b.build().map_err(|e| bad_request(&what, e))?;
                let ep = neutron::subnet::create::Request::builder()
                    .subnet(body)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                self.send(&what, ep)
                    .await?
                    .get("subnet")
                    .cloned()
                    .unwrap_or(Value::Null)
            }
        };
        let id = str_of(&subnet, "id").to_string();
        self.ensure_tags(Net::Subnet, &subnet, &req.tags, &[]).await?;
        let router = self.router_of(network).await?.ok_or_else(|| {
            ProviderError::transient(
                "NoRouter",
                format!("the router of network {network} is not there (yet)"),
                None,
            )
        })?;
        self.add_interface(&router, &id).await?;
        self.mark_complete(Net::Subnet, &subnet, &req.tags).await?;
        if let Ok(mut m) = self.subnet_networks.lock() {
            m.insert(id.clone(), network.to_string());
        }
        Ok(outputs(&id, &[("network", network)]))
    }

    /// The router's interface on a subnet, unless it has one (an interface
    /// is a port of the router with the subnet's gateway IP:
    /// `device_owner` `network:router_interface`).
    async fn add_interface(&self, router: &str, subnet: &str) -> R<()> {
        let what = format!("list interfaces of router {router}");
        let ep = neutron::port::list::Request::builder()
            .device_id(router)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        let ports = list_of(&self.send(&what, ep).await?, "ports");
        let present = ports.iter().any(|p| {
            p.get("fixed_ips")
                .and_then(|f| f.as_array())
                .is_some_and(|a| a.iter().any(|f| str_of(f, "subnet_id") == subnet))
        });
        if present {
            return Ok(());
        }
        let what = format!("add subnet {subnet} to router {router}");
        let ep = neutron::router::add_router_interface::Request::builder()
            .id(router)
            .subnet_id(subnet)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        self.send(&what, ep).await.map(|_| ())
    }

    async fn network_of_subnet(&self, subnet: &str) -> R<String> {
        if let Some(n) = self.subnet_networks.lock().ok().and_then(|m| m.get(subnet).cloned()) {
            return Ok(n);
        }
        let s = self.neutron_get(Net::Subnet, subnet).await?;
        let n = str_of(&s, "network_id").to_string();
        if let Ok(mut m) = self.subnet_networks.lock() {
            m.insert(subnet.to_string(), n.clone());
        }
        Ok(n)
    }

    async fn delete_subnet(&self, id: &str) -> R<()> {
        let subnet = self.neutron_get(Net::Subnet, id).await?;
        let network = str_of(&subnet, "network_id").to_string();
        if let Some(router) = self.router_of(&network).await? {
            let what = format!("remove subnet {id} from router {router}");
            let ep = neutron::router::remove_router_interface::Request::builder()
                .id(router.as_str())
                .subnet_id(id)
                .build()
                .map_err(|e| bad_request(&what, e))?;
            // 404: the router or its interface is gone already.
            self.send(&what, ep).await.map(|_| ()).done_if_not_found()?;
        }
        self.neutron_delete(Net::Subnet, id).await
    }

    // ---- firewall ----

    async fn read_firewall(&self, name: &str) -> R<Option<Outputs>> {
        Ok(self
            .neutron_find(Net::SecurityGroup, name)
            .await?
            .filter(Self::is_complete)
            .map(|g| outputs(str_of(&g, "id"), &[])))
    }

    async fn create_firewall(&self, req: &Request, rules: &[Rule]) -> R<Outputs> {
        let wanted = sg_rules(rules).map_err(|m| ProviderError::permanent("BadRule", m))?;
        let sg = match self.neutron_find(Net::SecurityGroup, &req.name).await? {
            Some(g) => g,
            None => {
                let what = format!("create security group {}", req.name);
                let body = neutron::security_group::create::SecurityGroupBuilder::default()
                    .name(req.name.as_str())
                    .description("hke cluster nodes")
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                let ep = neutron::security_group::create::Request::builder()
                    .security_group(body)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                self.send(&what, ep)
                    .await?
                    .get("security_group")
                    .cloned()
                    .unwrap_or(Value::Null)
            }
        };
        let id = str_of(&sg, "id").to_string();
        self.ensure_tags(Net::SecurityGroup, &sg, &req.tags, &[]).await?;
        // A new group comes with egress rules (Networking API reference,
        // "Security groups": default egress IPv4 and IPv6 to anywhere); the
        // ingress rules it has already are not made again.
        let existing: BTreeSet<SgRule> = list_of(&sg, "security_group_rules")
            .iter()
            .filter(|r| str_of(r, "direction") == "ingress")
            .map(|r| SgRule {
                protocol: r.get("protocol").and_then(|p| p.as_str()).map(str::to_string),
                ports: match (
                    r.get("port_range_min").and_then(|p| p.as_i64()),
                    r.get("port_range_max").and_then(|p| p.as_i64()),
                ) {
                    (Some(lo), Some(hi)) => Some((lo as i32, hi as i32)),
                    _ => None,
                },
                remote: str_of(r, "remote_ip_prefix").to_string(),
            })
            .collect();
        for rule in wanted.iter().filter(|r| !existing.contains(r)) {
            let what = format!("add rule {rule:?} to security group {}", req.name);
            let mut b = neutron::security_group_rule::create::SecurityGroupRuleBuilder::default();
            b.security_group_id(id.as_str())
                .direction(neutron::security_group_rule::create::Direction::Ingress)
                .ethertype(neutron::security_group_rule::create::Ethertype::Ipv4)
                .remote_ip_prefix(rule.remote.as_str());
            if let Some(p) = &rule.protocol {
                b.protocol(p.as_str());
            }
            if let Some((lo, hi)) = rule.ports {
                b.port_range_min(Some(lo)).port_range_max(Some(hi));
            }
            let body = b.build().map_err(|e| bad_request(&what, e))?;
            let ep = neutron::security_group_rule::create::Request::builder()
                .security_group_rule(body)
                .build()
                .map_err(|e| bad_request(&what, e))?;
            match self.send(&what, ep).await {
                Ok(_) => {}
                // SecurityGroupRuleExists: made by an earlier try.
                Err(e) if e.class == Class::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        self.mark_complete(Net::SecurityGroup, &sg, &req.tags).await?;
        Ok(outputs(&id, &[]))
    }

    // ---- floating IPs ----

    fn address_outputs(fip: &Value) -> Outputs {
        let a = str_of(fip, "floating_ip_address");
        outputs(str_of(fip, "id"), &[(OUT_ADDRESS, a), (OUT_DNS_NAME, a)])
    }

    async fn read_address(&self, name: &str) -> R<Option<Outputs>> {
        let tag = self.cluster_tag();
        Ok(self
            .neutron_list(Net::FloatingIp, Some(name), Some(&tag))
            .await?
            .first()
            .map(Self::address_outputs))
    }

    async fn create_address(&self, req: &Request) -> R<Outputs> {
        let fip = match self.neutron_find(Net::FloatingIp, &req.name).await? {
            Some(f) => f,
            None => {
                let external = self.external_network().await?;
                let what = format!("create floating IP {}", req.name);
                let body = neutron::floatingip::create::FloatingipBuilder::default()
                    .floating_network_id(external.as_str())
                    .description(req.name.as_str())
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                let ep = neutron::floatingip::create::Request::builder()
                    .floatingip(body)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                self.send(&what, ep)
                    .await?
                    .get("floatingip")
                    .cloned()
                    .unwrap_or(Value::Null)
            }
        };
        self.ensure_tags(Net::FloatingIp, &fip, &req.tags, &[]).await?;
        Ok(Self::address_outputs(&fip))
    }

    /// Point a floating IP at a port (or at nothing).
    async fn associate(&self, fip: &str, port: Option<&str>) -> R<()> {
        let what = match port {
            Some(p) => format!("associate floating IP {fip} with port {p}"),
            None => format!("disassociate floating IP {fip}"),
        };
        let body = neutron::floatingip::set::FloatingipBuilder::default()
            .port_id(port.map(Cow::from))
            .build()
            .map_err(|e| bad_request(&what, e))?;
        let ep = neutron::floatingip::set::Request::builder()
            .id(fip)
            .floatingip(body)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        self.send(&what, ep).await.map(|_| ())
    }

    // ---- load balancer ----

    async fn get_lb(&self, id: &str) -> R<Value> {
        let what = format!("read load balancer {id}");
        let ep = octavia::loadbalancer::get::Request::builder()
            .id(id)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        Ok(self
            .send(&what, ep)
            .await?
            .get("loadbalancer")
            .cloned()
            .unwrap_or(Value::Null))
    }

    async fn find_lb(&self, name: &str) -> R<Option<Value>> {
        let what = format!("list load balancers named {name}");
        let ep = octavia::loadbalancer::list::Request::builder()
            .name(name)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        let mine = self.cluster_tag();
        Ok(list_of(&self.send(&what, ep).await?, "loadbalancers")
            .into_iter()
            .find(|l| tag_strings(l).contains(&mine)))
    }

    /// Wait until a load balancer is ACTIVE (Load Balancer API reference,
    /// "Provisioning Status Codes": PENDING_CREATE/UPDATE/DELETE, ACTIVE, ERROR).
    async fn wait_lb_active(&self, id: &str) -> R<Value> {
        self.wait_for(&format!("load balancer {id}"), || async {
            let lb = self.get_lb(id).await?;
            match str_of(&lb, "provisioning_status") {
                "ACTIVE" => Ok(Some(lb)),
                "ERROR" => Err(ProviderError {
                    class: Class::Permanent,
                    left_behind: LeftBehind::Something(id.to_string()),
                    code: Some("LoadBalancerError".into()),
                    message: format!(
                        "load balancer {id} went to ERROR (operating status {})",
                        str_of(&lb, "operating_status")
                    ),
                }),
                _ => Ok(None),
            }
        })
        .await
    }

    async fn lb_outputs(&self, lb: &Value, address: Option<&str>) -> R<Outputs> {
        let vip = str_of(lb, "vip_address").to_string();
        let public = match address {
            Some(fip) => str_of(&self.neutron_get(Net::FloatingIp, fip).await?, "floating_ip_address").to_string(),
            None => vip.clone(),
        };
        let pool = list_of(lb, "pools")
            .first()
            .map(|p| str_of(p, "id").to_string())
            .unwrap_or_default();
        Ok(outputs(
            str_of(lb, "id"),
            &[
                (OUT_ADDRESS, &public),
                (OUT_DNS_NAME, &public),
                (OUT_PRIVATE_IP, &vip),
                ("pool", &pool),
            ],
        ))
    }

    async fn read_load_balancer(&self, name: &str) -> R<Option<Outputs>> {
        if !self.octavia {
            // The floating IP stands in for it: nothing to adopt.
            return Ok(None);
        }
        let Some(lb) = self.find_lb(name).await? else {
            return Ok(None);
        };
        if !tag_strings(&lb).contains(&tags::encode(TAG_COMPLETE, "true"))
            || str_of(&lb, "provisioning_status") != "ACTIVE"
        {
            return Ok(None);
        }
        let fip = self
            .neutron_list(Net::FloatingIp, None, Some(&self.cluster_tag()))
            .await?
            .into_iter()
            .find(|f| str_of(f, "port_id") == str_of(&lb, "vip_port_id"))
            .map(|f| str_of(&f, "id").to_string());
        Ok(Some(self.lb_outputs(&lb, fip.as_deref()).await?))
    }

    async fn create_load_balancer(
        &self,
        req: &Request,
        address: Option<&str>,
        subnet: &str,
        port: u16,
        allowed: &[String],
    ) -> R<Outputs> {
        if !self.octavia {
            let fip = address.ok_or_else(|| {
                ProviderError::permanent(
                    "NoAddress",
                    "without Octavia the API endpoint is a floating IP: the load balancer needs its address",
                )
            })?;
            let f = self.neutron_get(Net::FloatingIp, fip).await?;
            let a = str_of(&f, "floating_ip_address");
            return Ok(outputs(&format!("fip:{fip}"), &[(OUT_ADDRESS, a), (OUT_DNS_NAME, a)]));
        }
        let lb = match self.find_lb(&req.name).await? {
            Some(lb) => lb,
            None => self.post_lb(req, subnet, port, allowed).await?,
        };
        let id = str_of(&lb, "id").to_string();
        let lb = self.wait_lb_active(&id).await?;
        if let Some(fip) = address {
            let f = self.neutron_get(Net::FloatingIp, fip).await?;
            let vip_port = str_of(&lb, "vip_port_id");
            if str_of(&f, "port_id") != vip_port {
                self.associate(fip, Some(vip_port)).await?;
            }
        }
        let complete = tags::encode(TAG_COMPLETE, "true");
        if !tag_strings(&lb).contains(&complete) {
            let mut t = tag_strings(&lb);
            t.push(complete);
            let what = format!("tag load balancer {}", req.name);
            let body = octavia::loadbalancer::set::LoadbalancerBuilder::default()
                .tags(t.into_iter().map(Cow::from).collect::<Vec<_>>())
                .build()
                .map_err(|e| bad_request(&what, e))?;
            let ep = octavia::loadbalancer::set::Request::builder()
                .id(id.as_str())
                .loadbalancer(body)
                .build()
                .map_err(|e| bad_request(&what, e))?;
            self.send(&what, ep).await?;
            self.wait_lb_active(&id).await?;
        }
        let lb = self.get_lb(&id).await?;
        self.lb_outputs(&lb, address).await
    }

    /// One call makes the load balancer with its listener, pool and health
    /// monitor (Load Balancer API reference, "Creating a Fully Populated
    /// Load Balancer").
    async fn post_lb(&self, req: &Request, subnet: &str, port: u16, allowed: &[String]) -> R<Value> {
        use octavia::loadbalancer::create as c;
        let what = format!("create load balancer {}", req.name);
        let bad = |e: &dyn std::fmt::Display| bad_request(&what, e);
        let monitor = c::HealthmonitorBuilder::default()
            ._type(c::HealthmonitorType::Tcp)
            .delay(5)
            .timeout(5)
            .max_retries(3)
            .build()
            .map_err(|e| bad(&e))?;
        let pool = c::DefaultPoolBuilder::default()
            .name(req.name.as_str())
            .protocol(c::DefaultPoolProtocol::Tcp)
            .lb_algorithm(c::LbAlgorithm::RoundRobin)
            .healthmonitor(monitor)
            .build()
            .map_err(|e| bad(&e))?;
        let mut listener = c::ListenersBuilder::default();
        listener
            .name(req.name.as_str())
            .protocol(c::ListenersProtocol::Tcp)
            .protocol_port(i32::from(port))
            .default_pool(pool);
        // The amphora proxies: the masters see its address, not the
        // client's, so the listener itself admits only the allowed ranges
        // (`allowed_cidrs`, Load Balancer API v2.12; CIDRs, so an address
        // becomes a /32).
        let cidrs = allowed_cidrs(allowed);
        if !cidrs.is_empty() {
            listener.allowed_cidrs(cidrs.into_iter().map(Cow::from).collect::<Vec<_>>());
        }
        let listener = listener.build().map_err(|e| bad(&e))?;
        let body = c::LoadbalancerBuilder::default()
            .name(req.name.as_str())
            .description("hke API server")
            .vip_subnet_id(subnet)
            .listeners(vec![listener])
            .tags(
                tags::encode_all(&req.tags)
                    .into_iter()
                    .map(Cow::from)
                    .collect::<Vec<_>>(),
            )
            .build()
            .map_err(|e| bad(&e))?;
        let ep = c::Request::builder().loadbalancer(body).build().map_err(|e| bad(&e))?;
        Ok(self
            .send(&what, ep)
            .await?
            .get("loadbalancer")
            .cloned()
            .unwrap_or(Value::Null))
    }

    async fn delete_load_balancer(&self, id: &str) -> R<()> {
        if id.starts_with("fip:") {
            // The floating IP is the publicAddress resource's to delete.
            return Ok(());
        }
        let what = format!("delete load balancer {id}");
        let ep = octavia::loadbalancer::delete::Request::builder()
            .id(id)
            .cascade(true)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        self.send(&what, ep).await?;
        // Gone when reading it answers 404 (it stays PENDING_DELETE meanwhile).
        self.wait_for(&what, || async {
            match self.get_lb(id).await {
                Err(e) if e.class == Class::NotFound => Ok(Some(())),
                Ok(lb) if str_of(&lb, "provisioning_status") == "DELETED" => Ok(Some(())),
                Ok(_) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    // ---- load balancer members ----

    async fn create_member(&self, req: &Request, lb: &str, machine: &str, port: u16) -> R<Outputs> {
        let node_port = self
            .port_of_server(machine)
            .await?
            .ok_or_else(|| ProviderError::transient("NoPort", format!("server {machine} has no port yet"), None))?;
        let port_id = str_of(&node_port, "id").to_string();
        if let Some(fip) = lb.strip_prefix("fip:") {
            let f = self.neutron_get(Net::FloatingIp, fip).await?;
            let current = str_of(&f, "port_id");
            if current.is_empty() {
                self.associate(fip, Some(&port_id)).await?;
            } else if current != port_id {
                return Err(ProviderError::permanent(
                    "SingleMaster",
                    format!(
                        "without Octavia the API endpoint is floating IP {} on one master, and it is on \
                         another port already ({current}); several masters need Octavia",
                        str_of(&f, "floating_ip_address")
                    ),
                ));
            }
            return Ok(outputs(&format!("fipassoc:{fip}"), &[]));
        }
        let lbv = self.wait_lb_active(lb).await?;
        let pool = list_of(&lbv, "pools")
            .first()
            .map(|p| str_of(p, "id").to_string())
            .ok_or_else(|| ProviderError::permanent("NoPool", format!("load balancer {lb} has no pool")))?;
        let address = fixed_ip(&node_port);
        let subnet = node_port
            .get("fixed_ips")
            .and_then(|f| f.as_array())
            .and_then(|a| a.first())
            .map(|f| str_of(f, "subnet_id").to_string())
            .unwrap_or_default();
        let what = format!("list members of pool {pool}");
        let ep = octavia::pool::member::list::Request::builder()
            .pool_id(pool.as_str())
            .build()
            .map_err(|e| bad_request(&what, e))?;
        let members = list_of(&self.send(&what, ep).await?, "members");
        let existing = members.iter().find(|m| {
            str_of(m, "address") == address && m.get("protocol_port").and_then(|p| p.as_i64()) == Some(i64::from(port))
        });
        let member_id = match existing {
            Some(m) => str_of(m, "id").to_string(),
            None => {
                let what = format!("add {} to pool {pool}", req.name);
                let body = octavia::pool::member::create::MemberBuilder::default()
                    .name(req.name.as_str())
                    .address(address.as_str())
                    .protocol_port(i32::from(port))
                    .subnet_id(subnet.as_str())
                    .tags(
                        tags::encode_all(&req.tags)
                            .into_iter()
                            .map(Cow::from)
                            .collect::<Vec<_>>(),
                    )
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                let ep = octavia::pool::member::create::Request::builder()
                    .pool_id(pool.as_str())
                    .member(body)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                let m = self.send(&what, ep).await?;
                self.wait_lb_active(lb).await?;
                str_of(m.get("member").unwrap_or(&Value::Null), "id").to_string()
            }
        };
        Ok(outputs(&format!("member:{lb}|{pool}|{member_id}"), &[]))
    }

    async fn delete_member(&self, id: &str) -> R<()> {
        if let Some(fip) = id.strip_prefix("fipassoc:") {
            return self.associate(fip, None).await.done_if_not_found();
        }
        let Some(rest) = id.strip_prefix("member:") else {
            return Err(ProviderError::not_found(format!("load balancer member {id}")));
        };
        let mut it = rest.split('|');
        let (Some(lb), Some(pool), Some(member)) = (it.next(), it.next(), it.next()) else {
            return Err(ProviderError::not_found(format!("load balancer member {id}")));
        };
        self.wait_lb_active(lb).await?;
        let what = format!("remove member {member} from pool {pool}");
        let ep = octavia::pool::member::delete::Request::builder()
            .pool_id(pool)
            .id(member)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        self.send(&what, ep).await?;
        self.wait_lb_active(lb).await.map(|_| ()).done_if_not_found()
    }

    // ---- routes ----

    async fn create_route(&self, network: &str, destination: &str, next_hop: &str) -> R<Outputs> {
        let router = self.router_of(network).await?.ok_or_else(|| {
            ProviderError::permanent("NoRouter", format!("network {network} has no router of this cluster"))
        })?;
        let port = self
            .port_of_server(next_hop)
            .await?
            .ok_or_else(|| ProviderError::transient("NoPort", format!("server {next_hop} has no port yet"), None))?;
        let port_id = str_of(&port, "id").to_string();
        let hop = fixed_ip(&port);
        // The node's pods send from their own addresses: the port lets them
        // through (port security drops what is not the port's).
        self.set_address_pair(&port, destination, true).await?;
        self.router_routes(&router, destination, &hop, true).await?;
        Ok(outputs(&format!("route:{router}|{destination}|{hop}|{port_id}"), &[]))
    }

    /// Add or remove a pod range in a port's allowed address pairs
    /// (Networking API reference, "Allowed address pairs"). Only the route
    /// of this node changes its port: no concurrent writer.
    async fn set_address_pair(&self, port: &Value, cidr: &str, present: bool) -> R<()> {
        let pairs: Vec<String> = list_of(port, "allowed_address_pairs")
            .iter()
            .map(|p| str_of(p, "ip_address").to_string())
            .collect();
        if pairs.iter().any(|p| p == cidr) == present {
            return Ok(());
        }
        let mut want: Vec<String> = pairs.into_iter().filter(|p| p != cidr).collect();
        if present {
            want.push(cidr.to_string());
        }
        let id = str_of(port, "id");
        let what = format!("set allowed address pairs of port {id}");
        let list = want
            .iter()
            .map(|ip| {
                neutron::port::set::AllowedAddressPairsBuilder::default()
                    .ip_address(ip.as_str())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_request(&what, e))?;
        let body = neutron::port::set::PortBuilder::default()
            .allowed_address_pairs(list)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        let ep = neutron::port::set::Request::builder()
            .id(id)
            .port(body)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        self.send(&what, ep).await.map(|_| ())
    }

    /// Add or remove a router's extra route with `add_extraroutes` /
    /// `remove_extraroutes` (Networking API reference, "Add extra routes to
    /// router", extension `extraroute-atomic`: concurrent callers do not
    /// overwrite each other); where the cloud lacks them (404), the whole
    /// `routes` list is rewritten under a lock.
    async fn router_routes(&self, router: &str, destination: &str, nexthop: &str, add: bool) -> R<()> {
        let verb = if add { "add" } else { "remove" };
        let what = format!("{verb} route {destination} via {nexthop} on router {router}");
        let r = if add {
            use neutron::router::add_extraroutes as m;
            let route = m::RoutesBuilder::default()
                .destination(destination)
                .nexthop(nexthop)
                .build()
                .map_err(|e| bad_request(&what, e))?;
            let body = m::RouterBuilder::default()
                .routes(vec![route])
                .build()
                .map_err(|e| bad_request(&what, e))?;
            let ep = m::Request::builder()
                .id(router)
                .router(body)
                .build()
                .map_err(|e| bad_request(&what, e))?;
            self.send(&what, ep).await
        } else {
            use neutron::router::remove_extraroutes as m;
            let route = m::RoutesBuilder::default()
                .destination(destination)
                .nexthop(nexthop)
                .build()
                .map_err(|e| bad_request(&what, e))?;
            let body = m::RouterBuilder::default()
                .routes(vec![route])
                .build()
                .map_err(|e| bad_request(&what, e))?;
            let ep = m::Request::builder()
                .id(router)
                .router(body)
                .build()
                .map_err(|e| bad_request(&what, e))?;
            self.send(&what, ep).await
        };
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.class == Class::NotFound => {
                // Either the router is gone or the extension is missing.
                let _guard = self.route_lock.lock().await;
                let current = match self.neutron_get(Net::Router, router).await {
                    Ok(r) => r,
                    Err(e) if e.class == Class::NotFound && !add => return Ok(()),
                    Err(e) => return Err(e),
                };
                let mut routes: Vec<(String, String)> = list_of(&current, "routes")
                    .iter()
                    .map(|r| (str_of(r, "destination").to_string(), str_of(r, "nexthop").to_string()))
                    .filter(|(d, n)| !(d == destination && n == nexthop))
                    .collect();
                if add {
                    routes.push((destination.to_string(), nexthop.to_string()));
                }
                use neutron::router::set as m;
                let list = routes
                    .iter()
                    .map(|(d, n)| {
                        m::RoutesBuilder::default()
                            .destination(d.as_str())
                            .nexthop(n.as_str())
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad_request(&what, e))?;
                let body = m::RouterBuilder::default()
                    .routes(list)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                let ep = m::Request::builder()
                    .id(router)
                    .router(body)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                self.send(&what, ep).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    async fn delete_route(&self, id: &str) -> R<()> {
        let Some(rest) = id.strip_prefix("route:") else {
            return Err(ProviderError::not_found(format!("route {id}")));
        };
        let parts: Vec<&str> = rest.split('|').collect();
        let [router, destination, hop, port] = parts.as_slice() else {
            return Err(ProviderError::not_found(format!("route {id}")));
        };
        self.router_routes(router, destination, hop, false)
            .await
            .done_if_not_found()?;
        match self.neutron_get(Net::Port, port).await {
            Ok(p) => self.set_address_pair(&p, destination, false).await.done_if_not_found(),
            Err(e) => Err(e).done_if_not_found(),
        }
    }

    // ---- machines ----

    /// The port hke made for a server (its device), or, before the server
    /// exists, none.
    async fn port_of_server(&self, server: &str) -> R<Option<Value>> {
        let what = format!("list ports of server {server}");
        let ep = neutron::port::list::Request::builder()
            .device_id(server)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        Ok(list_of(&self.send(&what, ep).await?, "ports").into_iter().next())
    }

    async fn flavors(&self) -> R<&Vec<compute::Flavor>> {
        self.flavors
            .get_or_try_init(|| async {
                let what = "list flavors";
                let ep = nova::flavor::list_detailed_20::Request::builder()
                    .header(nova_header().0, nova_header().1)
                    .build()
                    .map_err(|e| bad_request(what, e))?;
                Ok(list_of(&self.send(what, ep).await?, "flavors")
                    .iter()
                    .filter_map(compute::Flavor::from_json)
                    .collect())
            })
            .await
    }

    /// The Glance image of a machine: its lookup's `image` (a Glance name
    /// or id), else the configured image for its name, else a Glance image
    /// of exactly its name (`ubuntu-24.04`, `windows-2022`).
    async fn image(&self, image: &Image) -> R<String> {
        let wanted = image
            .lookup
            .get("image")
            .or_else(|| image.lookup.get("imageId"))
            .or_else(|| self.cfg.images.get(&image.name))
            .cloned()
            .unwrap_or_else(|| image.name.clone());
        let mut cache = self.images.lock().await;
        if let Some(id) = cache.get(&wanted) {
            return Ok(id.clone());
        }
        let missing = || {
            ProviderError::permanent(
                "ImageNotFound",
                format!(
                    "no active Glance image {wanted:?} for the {} machines: upload one with that name, or name \
                     an image (name or id) for {} with HKE_OPENSTACK_IMAGES={}=NAME_OR_ID or the pool's image",
                    image.name, image.name, image.name
                ),
            )
        };
        let id = if compute::is_uuid(&wanted) {
            let what = format!("read image {wanted}");
            let ep = glance::image::get::Request::builder()
                .id(wanted.as_str())
                .build()
                .map_err(|e| bad_request(&what, e))?;
            match self.send(&what, ep).await.none_if_not_found()? {
                Some(i) if str_of(&i, "status") == "active" => str_of(&i, "id").to_string(),
                _ => return Err(missing()),
            }
        } else {
            let what = format!("list images named {wanted}");
            let ep = glance::image::list::Request::builder()
                .name(wanted.as_str())
                .status("active")
                .build()
                .map_err(|e| bad_request(&what, e))?;
            let mut found = list_of(&self.send(&what, ep).await?, "images");
            // Several of one name: the newest (Image API reference, `created_at`).
            found.sort_by(|a, b| str_of(b, "created_at").cmp(str_of(a, "created_at")));
            found.first().map(|i| str_of(i, "id").to_string()).ok_or_else(missing)?
        };
        cache.insert(wanted, id.clone());
        Ok(id)
    }

    fn machine_outputs(server: &Value, port: &Value) -> Outputs {
        outputs(
            str_of(server, "id"),
            &[(OUT_PRIVATE_IP, &fixed_ip(port)), (OUT_PORT, str_of(port, "id"))],
        )
    }

    async fn get_server(&self, id: &str) -> R<Value> {
        let what = format!("read server {id}");
        let ep = nova::server::get_20::Request::builder()
            .id(id)
            .header(nova_header().0, nova_header().1)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        Ok(self
            .send(&what, ep)
            .await?
            .get("server")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Servers (detailed) of the project with a tag, or all of them.
    async fn servers(&self, tag: Option<&str>) -> R<Vec<Value>> {
        let what = "list servers";
        let mut b = nova::server::list_detailed_21::Request::builder();
        b.header(nova_header().0, nova_header().1);
        if let Some(t) = tag {
            b.tags(t);
        }
        let ep = b.build().map_err(|e| bad_request(what, e))?;
        Ok(list_of(&self.send(what, ep).await?, "servers"))
    }

    /// The cluster's server of this name.
    async fn find_server(&self, name: &str) -> R<Option<Value>> {
        Ok(self
            .servers(Some(&self.cluster_tag()))
            .await?
            .into_iter()
            .find(|s| str_of(s, "name") == name))
    }

    /// Follow a server from BUILD to ACTIVE (Compute API reference, "Server
    /// status": BUILD, ACTIVE, ERROR, …; an ERROR server's `fault` has the
    /// reason).
    async fn wait_server(&self, id: &str, name: &str) -> R<Value> {
        self.wait_for(&format!("server {name}"), || async {
            let s = self.get_server(id).await?;
            match str_of(&s, "status") {
                "ACTIVE" => Ok(Some(s)),
                "ERROR" => {
                    let fault = s.get("fault").cloned().unwrap_or(Value::Null);
                    Err(ProviderError {
                        class: Class::Permanent,
                        left_behind: LeftBehind::Something(id.to_string()),
                        code: Some("ServerError".into()),
                        message: format!(
                            "server {name} went to ERROR: {} (code {})",
                            error::redact(str_of(&fault, "message"), &[]),
                            fault.get("code").and_then(|c| c.as_i64()).unwrap_or(0)
                        ),
                    })
                }
                "DELETED" | "SOFT_DELETED" | "SHUTOFF" => Err(ProviderError {
                    class: Class::Permanent,
                    left_behind: LeftBehind::Something(id.to_string()),
                    code: Some("ServerStopped".into()),
                    message: format!("server {name} is {} instead of running", str_of(&s, "status")),
                }),
                _ => Ok(None),
            }
        })
        .await
    }

    /// The port of a machine: found by name (the cluster's or untagged),
    /// else made on the subnet's network with the firewall's security
    /// group and the fixed IP asked for.
    async fn ensure_port(
        &self,
        req: &Request,
        name: &str,
        subnet: &str,
        firewall: &str,
        private_ip: Option<&str>,
        extra: &[(&str, &str)],
    ) -> R<Value> {
        let port = match self.neutron_find(Net::Port, name).await? {
            Some(p) => p,
            None => {
                let network = self.network_of_subnet(subnet).await?;
                let what = format!("create port {name}");
                let mut ip = neutron::port::create::FixedIpsBuilder::default();
                ip.subnet_id(subnet);
                if let Some(a) = private_ip {
                    ip.ip_address(a);
                }
                let ip = ip.build().map_err(|e| bad_request(&what, e))?;
                let body = neutron::port::create::PortBuilder::default()
                    .name(name)
                    .network_id(network.as_str())
                    .fixed_ips(vec![ip])
                    .security_groups(vec![Cow::from(firewall)])
                    .admin_state_up(true)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                let ep = neutron::port::create::Request::builder()
                    .port(body)
                    .build()
                    .map_err(|e| bad_request(&what, e))?;
                self.send(&what, ep).await?.get("port").cloned().unwrap_or(Value::Null)
            }
        };
        self.ensure_tags(Net::Port, &port, &req.tags, extra).await?;
        Ok(port)
    }

    /// Make one server (and its port) unless it exists, and follow it to
    /// ACTIVE.
    #[allow(clippy::too_many_arguments)]
    async fn run_server(
        &self,
        req: &Request,
        name: &str,
        m: &ServerSpec<'_>,
        private_ip: Option<&str>,
        extra: &[(&str, &str)],
    ) -> R<Outputs> {
        let port = self
            .ensure_port(req, name, m.subnet, m.firewall, private_ip, extra)
            .await?;
        let server = match self.find_server(name).await? {
            Some(s) => s,
            None => self.post_server(req, name, m, str_of(&port, "id"), extra).await?,
        };
        let id = str_of(&server, "id").to_string();
        let server = self.wait_server(&id, name).await?;
        Ok(Self::machine_outputs(&server, &port))
    }

    async fn post_server(
        &self,
        req: &Request,
        name: &str,
        m: &ServerSpec<'_>,
        port: &str,
        extra: &[(&str, &str)],
    ) -> R<Value> {
        use nova::server::create_252 as c;
        let what = format!("create server {name}");
        let flavor = {
            let flavors = self.flavors().await?;
            compute::choose_flavor(flavors, m.size, m.disk_gb)
                .map_err(|msg| ProviderError::permanent("NoFlavor", format!("{what}: {msg}")))?
                .id
                .clone()
        };
        let image = self.image(m.image).await?;
        let ssh_key = req.login.as_ref().and_then(|l| l.ssh_public_keys.first().cloned());
        let key_name = self.ensure_keypair(ssh_key.as_deref()).await?;
        let user_data = match &req.user_data {
            Some(script) => Some(
                compute::user_data(name, m.os, script)
                    .map_err(|e| ProviderError::permanent("UserDataTooLarge", e.to_string()))?,
            ),
            None => None,
        };
        let mut all_tags = req.tags.clone();
        for (k, v) in extra {
            all_tags.insert((*k).to_string(), (*v).to_string());
        }
        let net = c::NetworksBuilder::default()
            .port(Some(Cow::from(port)))
            .build()
            .map_err(|e| bad_request(&what, e))?;
        let mut b = c::ServerBuilder::default();
        b.name(name)
            .flavor_ref(flavor.as_str())
            .networks(c::ServerNetworks::F1(vec![net]))
            .tags(
                tags::server_tags(&all_tags)
                    .into_iter()
                    .map(Cow::from)
                    .collect::<Vec<_>>(),
            )
            .metadata(tags::metadata(&all_tags).into_iter())
            .config_drive(self.cfg.config_drive);
        if self.cfg.boot_from_volume {
            let disk = c::BlockDeviceMappingV2Builder::default()
                .boot_index(Some(Cow::from("0")))
                .uuid(image.as_str())
                .source_type(c::SourceType::Image)
                .destination_type(c::DestinationType::Volume)
                .volume_size(i32::try_from(m.disk_gb).unwrap_or(i32::MAX))
                .delete_on_termination(true)
                .build()
                .map_err(|e| bad_request(&what, e))?;
            b.block_device_mapping_v2(vec![disk]);
        } else {
            b.image_ref(image.as_str());
        }
        if let Some(k) = &key_name {
            b.key_name(k.as_str());
        }
        if let Some(u) = &user_data {
            b.user_data(u.as_str());
        }
        let password = match m.os {
            Os::Windows => req.login.as_ref().and_then(|l| l.password.clone()),
            Os::Linux => None,
        };
        // cloudbase-init sets the admin's password from the metadata's
        // `admin_pass` (Nova's `adminPass`).
        if let Some(p) = &password {
            b.admin_pass(p.as_str());
        }
        let body = b.build().map_err(|e| bad_request(&what, e))?;
        let ep = c::Request::builder()
            .server(body)
            .header(nova_header().0, nova_header().1)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        let mut secrets: Vec<&str> = Vec::new();
        if let Some(p) = &password {
            secrets.push(p.as_str());
        }
        if let Some(u) = &user_data {
            secrets.push(u.as_str());
        }
        match self.send_with(&what, ep, &secrets).await {
            Ok(v) => Ok(v.get("server").cloned().unwrap_or(Value::Null)),
            Err(mut e) => {
                // A timeout may have made the server: it is looked up by name next time.
                if e.is_transient() {
                    e.left_behind = LeftBehind::Unknown;
                }
                Err(e)
            }
        }
    }

    async fn read_machine(&self, name: &str) -> R<Option<Outputs>> {
        let Some(server) = self.find_server(name).await? else {
            return Ok(None);
        };
        if str_of(&server, "status") != "ACTIVE" {
            return Ok(None);
        }
        let port = self.port_of_server(str_of(&server, "id")).await?.unwrap_or(Value::Null);
        Ok(Some(Self::machine_outputs(&server, &port)))
    }

    /// Delete a server, wait until Nova no longer has it, then its ports.
    async fn delete_server(&self, id: &str) -> R<()> {
        let ports = self.port_of_server(id).await?;
        let what = format!("delete server {id}");
        let ep = nova::server::delete::Request::builder()
            .header(nova_header().0, nova_header().1)
            .id(id)
            .build()
            .map_err(|e| bad_request(&what, e))?;
        let deleted = self.send(&what, ep).await;
        let gone = matches!(&deleted, Err(e) if e.class == Class::NotFound);
        deleted.or_else(|e| {
            if e.class == Class::NotFound {
                Ok(Value::Null)
            } else {
                Err(e)
            }
        })?;
        if !gone {
            self.wait_for(&what, || async {
                match self.get_server(id).await {
                    Err(e) if e.class == Class::NotFound => Ok(Some(())),
                    Ok(s) if str_of(&s, "status") == "DELETED" => Ok(Some(())),
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        }
        // Ports hke made stay after their server (Nova deletes only ports it
        // made itself: Compute API reference, "Delete Server").
        if let Some(p) = ports {
            self.neutron_delete(Net::Port, str_of(&p, "id"))
                .await
                .done_if_not_found()?;
        }
        if !gone {
            return Ok(());
        }
        Err(ProviderError::not_found(format!("server {id}")))
    }

    async fn delete_machine(&self, name: &str, id: &str) -> R<()> {
        if let Some(port) = id.strip_prefix("port:") {
            return self.neutron_delete(Net::Port, port).await;
        }
        let r = self.delete_server(id).await;
        // A port left by an earlier try whose server is gone.
        if let Some(p) = self.neutron_find(Net::Port, name).await? {
            if tag_strings(&p).contains(&self.cluster_tag()) && str_of(&p, "device_id").is_empty() {
                self.neutron_delete(Net::Port, str_of(&p, "id"))
                    .await
                    .done_if_not_found()?;
            }
        }
        r
    }

    // ---- machine groups ----

    async fn group_servers(&self, name: &str) -> R<Vec<Value>> {
        let tag = tags::encode(TAG_GROUP, name);
        let mine = self.cluster_tag();
        Ok(self
            .servers(Some(&tag))
            .await?
            .into_iter()
            .filter(|s| tag_strings(s).contains(&mine))
            .collect())
    }

    async fn create_machine_group(&self, req: &Request, m: &ServerSpec<'_>, count: u32, prefix: &str) -> R<Outputs> {
        use futures_util::stream::{self, StreamExt};
        let count_s = count.to_string();
        let extra: [(&str, &str); 2] = [(TAG_GROUP, req.name.as_str()), (TAG_PARTS, count_s.as_str())];
        let names: Vec<String> = (0..count).map(|i| group_server_name(prefix, i)).collect();
        let results: Vec<R<Outputs>> = stream::iter(
            names
                .into_iter()
                .map(|n| async move { self.run_server(req, &n, m, None, &extra).await }),
        )
        .buffer_unordered(self.cfg.group_concurrency.max(1))
        .collect()
        .await;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
        Ok(outputs(&format!("mg:{}", req.name), &[("count", &count_s)]))
    }

    async fn read_machine_group(&self, name: &str) -> R<Option<Outputs>> {
        let found = self.group_servers(name).await?;
        let parts: Option<usize> = found
            .first()
            .and_then(|s| tags::decode_all(&tag_strings(s)).get(TAG_PARTS).cloned())
            .and_then(|p| p.parse().ok());
        let active = found.iter().all(|s| str_of(s, "status") == "ACTIVE");
        Ok((parts == Some(found.len()) && active)
            .then(|| outputs(&format!("mg:{name}"), &[("count", &found.len().to_string())])))
    }

    async fn delete_machine_group(&self, name: &str) -> R<()> {
        use futures_util::stream::{self, StreamExt};
        let servers = self.group_servers(name).await?;
        let ids: Vec<String> = servers.iter().map(|s| str_of(s, "id").to_string()).collect();
        let results: Vec<R<()>> = stream::iter(
            ids.into_iter()
                .map(|id| async move { self.delete_server(&id).await.done_if_not_found() }),
        )
        .buffer_unordered(self.cfg.group_concurrency.max(1))
        .collect()
        .await;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
        // Ports whose server never came.
        let tag = tags::encode(TAG_GROUP, name);
        let mine = self.cluster_tag();
        let mut left = 0;
        for p in self.neutron_list(Net::Port, None, Some(&tag)).await? {
            if tag_strings(&p).contains(&mine) {
                left += 1;
                self.neutron_delete(Net::Port, str_of(&p, "id"))
                    .await
                    .done_if_not_found()?;
            }
        }
        if servers.is_empty() && left == 0 {
            return Err(ProviderError::not_found(format!("machine group {name}")));
        }
        Ok(())
    }

    // ---- sweep ----

    /// Every object of the cluster (`Some`) or of any cluster (`None`), by tag.
    async fn found(&self, cluster: Option<&str>) -> R<Vec<Found>> {
        let filter = cluster.map(tags::cluster_tag);
        let filter = filter.as_deref();
        let mut out = Vec::new();
        let keep = |out: &mut Vec<Found>, kind: Kind, name: &str, id: String, t: &[String]| {
            let decoded = tags::decode_all(t);
            let owner = decoded.get(hke_provider_api::TAG_CLUSTER);
            let ok = match (owner, cluster) {
                (Some(c), Some(want)) => c == want,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if ok {
                out.push(Found {
                    kind,
                    name: name.to_string(),
                    id,
                    tags: decoded,
                });
            }
        };
        for s in self.servers(filter).await? {
            let t = tag_strings(&s);
            let group = tags::decode_all(&t).get(TAG_GROUP).cloned();
            match group {
                // A group's servers are found as the group (once).
                Some(g) => keep(&mut out, Kind::MachineGroup, &g, format!("mg:{g}"), &t),
                None => keep(
                    &mut out,
                    Kind::Machine,
                    str_of(&s, "name"),
                    str_of(&s, "id").to_string(),
                    &t,
                ),
            }
        }
        let server_names: BTreeSet<String> = out.iter().map(|f| f.name.clone()).collect();
        for p in self.neutron_list(Net::Port, None, filter).await? {
            let t = tag_strings(&p);
            let group = tags::decode_all(&t).get(TAG_GROUP).cloned();
            // A port whose server is gone (or was never made).
            if group.is_none() && str_of(&p, "device_id").is_empty() && !server_names.contains(str_of(&p, "name")) {
                keep(
                    &mut out,
                    Kind::Machine,
                    str_of(&p, "name"),
                    format!("port:{}", str_of(&p, "id")),
                    &t,
                );
            } else if let Some(g) = group.filter(|g| !server_names.contains(g)) {
                keep(&mut out, Kind::MachineGroup, &g, format!("mg:{g}"), &t);
            }
        }
        if self.octavia {
            let what = "list load balancers";
            let mut b = octavia::loadbalancer::list::Request::builder();
            if let Some(f) = filter {
                b.tags(f);
            }
            let ep = b.build().map_err(|e| bad_request(what, e))?;
            for l in list_of(&self.send(what, ep).await?, "loadbalancers") {
                keep(
                    &mut out,
                    Kind::LoadBalancer,
                    str_of(&l, "name"),
                    str_of(&l, "id").to_string(),
                    &tag_strings(&l),
                );
            }
        }
        // The Neutron objects: collection, kind, the field naming the plan
        // resource, and the prefix of the id hke keeps (a router stands for
        // its network's second half).
        for (net, kind, name_field, id_prefix) in [
            (Net::FloatingIp, Kind::PublicAddress, "description", ""),
            (Net::SecurityGroup, Kind::Firewall, "name", ""),
            (Net::Subnet, Kind::Subnet, "name", ""),
            (Net::Router, Kind::Network, "name", "router:"),
            (Net::Network, Kind::Network, "name", ""),
        ] {
            for o in self.neutron_list(net, None, filter).await? {
                keep(
                    &mut out,
                    kind,
                    str_of(&o, name_field),
                    format!("{id_prefix}{}", str_of(&o, "id")),
                    &tag_strings(&o),
                );
            }
        }
        // Dedup machine groups found through several servers and ports.
        let mut seen = BTreeSet::new();
        out.retain(|f| seen.insert((f.kind, f.id.clone())));
        // The keypair has no tags: it is the cluster's by its name.
        if let Some(c) = cluster {
            let name = keypair_name(c);
            let what = format!("read keypair {name}");
            let ep = nova::keypair::get_20::Request::builder()
                .header(nova_header().0, nova_header().1)
                .id(name.as_str())
                .build()
                .map_err(|e| bad_request(&what, e))?;
            if self.send(&what, ep).await.none_if_not_found()?.is_some() {
                let mut t = BTreeMap::new();
                t.insert(hke_provider_api::TAG_CLUSTER.to_string(), c.to_string());
                out.push(Found {
                    kind: Kind::Group,
                    name: name.clone(),
                    id: format!("keypair:{name}"),
                    tags: t,
                });
            }
        }
        Ok(out)
    }
}

/// The parts of a Machine or MachineGroup spec a server needs.
struct ServerSpec<'a> {
    subnet: &'a str,
    firewall: &'a str,
    os: &'a Os,
    size: &'a str,
    image: &'a Image,
    disk_gb: u32,
}

impl<'a> From<&'a MachineSpec<String>> for ServerSpec<'a> {
    fn from(m: &'a MachineSpec<String>) -> Self {
        ServerSpec {
            subnet: &m.subnet,
            firewall: &m.firewall,
            os: &m.os,
            size: &m.size,
            image: &m.image,
            disk_gb: m.disk_gb,
        }
    }
}

impl<'a> From<&'a MachineGroupSpec<String>> for ServerSpec<'a> {
    fn from(g: &'a MachineGroupSpec<String>) -> Self {
        ServerSpec {
            subnet: &g.subnet,
            firewall: &g.firewall,
            os: &g.os,
            size: &g.size,
            image: &g.image,
            disk_gb: g.disk_gb,
        }
    }
}

#[async_trait]
impl Provider for OpenStack {
    fn cloud(&self) -> &str {
        "openstack"
    }

    async fn create(&self, req: &Request) -> R<Outputs> {
        match &req.spec {
            Spec::Group { ssh_public_key, .. } => {
                let key = self.ensure_keypair(ssh_public_key.as_deref()).await?;
                Ok(outputs(
                    &format!("project:{}", self.project),
                    &[("keypair", key.as_deref().unwrap_or_default())],
                ))
            }
            Spec::Network { .. } => self.create_network(req).await,
            Spec::Subnet { network, cidr } => self.create_subnet(req, network, cidr).await,
            Spec::Firewall { rules, .. } => self.create_firewall(req, rules).await,
            Spec::PublicAddress { .. } => self.create_address(req).await,
            Spec::LoadBalancer {
                address,
                subnet,
                port,
                allowed_sources,
            } => {
                self.create_load_balancer(req, address.as_deref(), subnet, *port, allowed_sources)
                    .await
            }
            Spec::LbMember {
                load_balancer,
                machine,
                port,
            } => self.create_member(req, load_balancer, machine, *port).await,
            Spec::Route {
                network,
                destination,
                next_hop,
            } => self.create_route(network, destination, next_hop).await,
            Spec::Machine(m) => {
                self.run_server(req, &req.name, &m.into(), m.private_ip.as_deref(), &[])
                    .await
            }
            Spec::MachineGroup(g) => self.create_machine_group(req, &g.into(), g.count, &g.name_prefix).await,
            Spec::PlacementGroup { .. } => Err(ProviderError::permanent(
                "Unsupported",
                "placement groups are planned on Azure only",
            )),
        }
    }

    async fn read(&self, kind: Kind, name: &str) -> R<Option<Outputs>> {
        match kind {
            Kind::Group => Ok(Some(outputs(&format!("project:{}", self.project), &[]))),
            Kind::Network => self.read_network(name).await,
            Kind::Subnet => self.read_subnet(name).await,
            Kind::Firewall => self.read_firewall(name).await,
            Kind::PublicAddress => self.read_address(name).await,
            Kind::LoadBalancer => self.read_load_balancer(name).await,
            // Adding a member, a route or an address pair again is a no-op:
            // a resumed run does it again.
            Kind::LbMember | Kind::Route | Kind::PlacementGroup => Ok(None),
            Kind::Machine => self.read_machine(name).await,
            Kind::MachineGroup => self.read_machine_group(name).await,
        }
    }

    async fn delete(&self, kind: Kind, name: &str, id: Option<&str>) -> R<()> {
        let id = match id {
            Some(id) => id.to_string(),
            None => match kind {
                Kind::MachineGroup => format!("mg:{name}"),
                Kind::Group => format!("keypair:{}", keypair_name(&self.cfg.cluster)),
                _ => match self.read(kind, name).await? {
                    Some(o) => o.get(OUT_ID).cloned().unwrap_or_default(),
                    None => return Err(ProviderError::not_found(format!("{kind} {name}"))),
                },
            },
        };
        match kind {
            // The project is not hke's; the keypair is.
            Kind::Group => self.delete_keypair().await,
            Kind::PlacementGroup => Err(ProviderError::not_found(format!("{name} (none on OpenStack)"))),
            Kind::Network => match id.strip_prefix("router:") {
                Some(router) => self.delete_router(router).await,
                None => self.delete_network(&id).await,
            },
            Kind::Subnet => self.delete_subnet(&id).await,
            Kind::Firewall => self.neutron_delete(Net::SecurityGroup, &id).await,
            Kind::PublicAddress => self.neutron_delete(Net::FloatingIp, &id).await,
            Kind::LoadBalancer => self.delete_load_balancer(&id).await,
            Kind::LbMember => self.delete_member(&id).await,
            Kind::Route => self.delete_route(&id).await,
            Kind::Machine => self.delete_machine(name, &id).await,
            Kind::MachineGroup => self.delete_machine_group(id.strip_prefix("mg:").unwrap_or(name)).await,
        }
    }

    async fn list(&self, cluster: &str) -> R<Vec<Found>> {
        self.found(Some(cluster)).await
    }

    async fn list_all(&self) -> R<Vec<Found>> {
        self.found(None).await
    }

    async fn console_output(&self, kind: Kind, name: &str, id: &str) -> R<Vec<(String, String)>> {
        let mut servers: Vec<(String, String)> = match kind {
            Kind::Machine if !id.starts_with("port:") => vec![(name.to_string(), id.to_string())],
            Kind::MachineGroup => self
                .group_servers(id.strip_prefix("mg:").unwrap_or(name))
                .await?
                .iter()
                .map(|s| (str_of(s, "name").to_string(), str_of(s, "id").to_string()))
                .collect(),
            _ => Vec::new(),
        };
        // By name: Nova lists servers newest first, and creations race.
        servers.sort();
        let mut out = Vec::new();
        for (n, sid) in servers {
            let what = format!("read the console of server {n}");
            let action = nova::server::os_get_console_output::OsGetConsoleOutputBuilder::default()
                .length(Some(CONSOLE_LINES))
                .build()
                .map_err(|e| bad_request(&what, e))?;
            let ep = nova::server::os_get_console_output::Request::builder()
                .header(nova_header().0, nova_header().1)
                .id(sid.as_str())
                .os_get_console_output(action)
                .build()
                .map_err(|e| bad_request(&what, e))?;
            // `{"output": "..."}` (Compute API reference, "Show Console Output").
            let v = self.send(&what, ep).await?;
            out.push((n, str_of(&v, "output").to_string()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_admits_cidrs_and_nothing_means_everyone() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            allowed_cidrs(&s(&["198.51.100.0/24", "203.0.113.9", "203.0.113.9/32"])),
            ["198.51.100.0/24", "203.0.113.9/32"]
        );
        assert!(allowed_cidrs(&s(&["0.0.0.0/0", "203.0.113.9"])).is_empty());
        assert!(allowed_cidrs(&[]).is_empty());
    }

    #[test]
    fn an_object_keeps_its_creation_time_and_one_tag_per_key() {
        let want = |created: &str| {
            BTreeMap::from([
                ("hke.io/cluster".to_string(), "c1".to_string()),
                ("hke.io/created".to_string(), created.to_string()),
            ])
        };
        let have: Vec<String> = vec![
            "hke.io:cluster=c1".into(),
            "hke.io:created=2026-11-01T00:00:00Z".into(),
            "hke.io:complete=true".into(),
            "team-owned".into(),
        ];
        // A deploy that lost its state stamps a new time: the object's stays.
        let t = merged_tags(&have, want("2026-11-29T05:00:00Z"));
        let created: Vec<&String> = t.iter().filter(|x| x.starts_with("hke.io:created=")).collect();
        assert_eq!(created, ["hke.io:created=2026-11-01T00:00:00Z"]);
        assert!(t.contains(&"hke.io:complete=true".to_string()) && t.contains(&"team-owned".to_string()));
        assert_eq!(t.len(), have.len(), "{t:?}");
        // A key hke sets has hke's value, once.
        let stale = vec!["hke.io:cluster=old".to_string()];
        let t = merged_tags(&stale, want("2026-11-29T05:00:00Z"));
        assert_eq!(t, ["hke.io:cluster=c1", "hke.io:created=2026-11-29T05:00:00Z"]);
    }

    #[test]
    fn rules_become_ingress_rules() {
        let rules = vec![
            Rule {
                name: "apiserver".into(),
                protocol: "tcp".into(),
                ports: "6443".into(),
                sources: vec!["*".into()],
            },
            Rule {
                name: "nodeports".into(),
                protocol: "tcp".into(),
                ports: "30000-32767".into(),
                sources: vec!["10.0.0.0/8".into(), "192.168.0.0/16".into()],
            },
            Rule {
                name: "nodes".into(),
                protocol: "all".into(),
                ports: "*".into(),
                sources: vec!["10.240.0.0/16".into()],
            },
        ];
        let r = sg_rules(&rules).expect("valid");
        assert_eq!(r.len(), 4);
        assert!(r.contains(&SgRule {
            protocol: Some("tcp".into()),
            ports: Some((6443, 6443)),
            remote: "0.0.0.0/0".into()
        }));
        assert!(r.contains(&SgRule {
            protocol: Some("tcp".into()),
            ports: Some((30000, 32767)),
            remote: "192.168.0.0/16".into()
        }));
        assert!(r.contains(&SgRule {
            protocol: None,
            ports: None,
            remote: "10.240.0.0/16".into()
        }));
        let bad = Rule {
            name: "x".into(),
            protocol: "gre".into(),
            ports: "*".into(),
            sources: vec![],
        };
        assert!(sg_rules(&[bad]).is_err());
    }

    #[test]
    fn names_and_outputs() {
        assert_eq!(group_server_name("abcdk8s01", 7), "abcdk8s01000007");
        assert_eq!(keypair_name("c1"), "hke-c1");
        let port = serde_json::json!({"id": "p1", "fixed_ips": [{"subnet_id": "s", "ip_address": "10.240.0.4"}]});
        let server = serde_json::json!({"id": "srv"});
        let o = OpenStack::machine_outputs(&server, &port);
        assert_eq!(o[OUT_ID], "srv");
        assert_eq!(o[OUT_PRIVATE_IP], "10.240.0.4");
        assert_eq!(o[OUT_PORT], "p1");
        let fip = serde_json::json!({"id": "f1", "floating_ip_address": "172.24.4.10"});
        let o = OpenStack::address_outputs(&fip);
        assert_eq!(
            (o[OUT_ADDRESS].as_str(), o[OUT_DNS_NAME].as_str()),
            ("172.24.4.10", "172.24.4.10")
        );
    }

    /// Every dependency of the plan is torn down after what uses it; the
    /// provider's own order inside one kind follows OpenStack's rules.
    #[test]
    fn teardown_order_matches_openstack_dependencies() {
        // (user, used): the user must be deleted first.
        let pairs = [
            (Kind::Route, Kind::Machine),    // extra route via the port's IP, address pair on the port
            (Kind::LbMember, Kind::Machine), // member address / floating IP on the port
            (Kind::Machine, Kind::Firewall), // port in the security group
            (Kind::Machine, Kind::Subnet),   // port with an IP of the subnet
            (Kind::LoadBalancer, Kind::Subnet), // VIP port on the subnet
            (Kind::LoadBalancer, Kind::PublicAddress), // floating IP on the VIP port
            (Kind::Subnet, Kind::Network),   // router interface, subnet of the network
            (Kind::PublicAddress, Kind::Network), // router gateway needed while the IP is associated
        ];
        for (user, used) in pairs {
            assert!(
                user.teardown_rank() < used.teardown_rank(),
                "{user} must go before {used}"
            );
        }
    }
}
