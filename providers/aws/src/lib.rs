//! hke's AWS provider: the `Provider` trait over EC2 and Elastic Load
//! Balancing v2.
//!
//! How the plan's resources map to AWS:
//!
//! | plan kind      | AWS objects                                                              |
//! |----------------|--------------------------------------------------------------------------|
//! | group          | the cluster's EC2 key pair (nothing when the model has no SSH key)       |
//! | network        | VPC (DNS hostnames on), internet gateway, route table with 0.0.0.0/0     |
//! | subnet         | four public subnets (the node range in quarters), quarter q in the       |
//! |                | region's zone q mod 3 (validation puts several masters one per zone)     |
//! | firewall       | security group with one ingress permission per rule and source           |
//! | publicAddress  | Elastic IP (one-master clusters)                                         |
//! | loadBalancer   | two network load balancers (cross-zone on), each with a TCP target group |
//! |                | and listener: internet-facing (instance targets) for clients, internal   |
//! |                | (IP targets) for the machines; or the Elastic IP, by its public DNS name |
//! | lbMember       | target registrations in both groups; or the Elastic IP's association     |
//! | route          | route to a node's pod range in the cluster's route table (kubenet)       |
//! | machine        | an instance (RunInstances with a client token and tags)                  |
//! | machineGroup   | the pool's instances, one RunInstances per zone                          |
//!
//! Machines reach the API server privately (`OUT_INTERNAL_DNS_NAME`): a
//! packet to a public address of the cluster would come from the machine's
//! public address, which a restricted `apiServerSourceRanges` refuses.
//!
//! Pacing: every call waits for tokens of EC2's or ELBv2's documented token
//! buckets before it is sent (`pace.rs`), so a large deploy is not
//! throttled; throttling that still happens goes through hke's backoff.
//! Instances are described together (`batch.rs`): the lookups of a deploy
//! or resume share one listing of the cluster's instances, and waits share
//! one DescribeInstances per round.
//!
//! Idempotency: every create first looks for the object by its tags (`Name`
//! and `hke.io/cluster`; EC2 objects are tagged in the create call itself),
//! RunInstances carries a client token, and a multi-step create marks its
//! main object `hke.io/complete` when every step is done, so `read` after a
//! crash only adopts finished resources and a re-run finishes the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, BlockDeviceMapping, DomainType, EbsBlockDevice, Filter, HttpTokensState, Instance,
    InstanceMetadataOptionsRequest, InstanceStateName, InstanceType, IpPermission, IpRange, ResourceType, Tag,
    TagSpecification, VolumeType,
};
use aws_sdk_elasticloadbalancingv2 as elbv2;
use hke_provider_api::resource::{OUT_ADDRESS, OUT_DNS_NAME, OUT_ID, OUT_PRIVATE_IP};
use hke_provider_api::{
    outputs, Found, Image, Kind, MachineGroupSpec, MachineSpec, NotFoundExt, Os, Outputs, Provider, ProviderError,
    Request, Rule, Spec, TAG_CLUSTER,
};

pub mod batch;
pub mod error;
pub mod net;
pub mod pace;
pub mod userdata;

pub use aws_sdk_ec2;
pub use aws_sdk_elasticloadbalancingv2;

use error::{from_sdk, invalid};
use net::{elb_name, spread, Range};

/// Tag saying which plan kind an object belongs to (`network`, `subnet`…).
pub const TAG_KIND: &str = "hke.io/kind";
/// Tag grouping the several AWS objects of one plan resource (its name).
pub const TAG_NAME: &str = "hke.io/name";
/// Tag set on a multi-step resource's objects once every step is done.
pub const TAG_COMPLETE: &str = "hke.io/complete";
/// Tag naming the machine group an instance belongs to.
pub const TAG_GROUP: &str = "hke.io/group";
/// Tag naming the load balancer an Elastic IP serves as (one-master clusters).
pub const TAG_LB: &str = "hke.io/lb";
/// The load balancer attribute of cross-zone load balancing (ELBv2
/// `LoadBalancerAttribute` keys).
pub const CROSS_ZONE: &str = "load_balancing.cross_zone.enabled";
/// The load balancer output naming the API server as machines reach it: a
/// name that resolves to private addresses inside the VPC. A machine's
/// packet to a public address of the cluster leaves through the internet
/// gateway with the machine's public address as its source, which the
/// `apiserver` rule refuses when `apiServerSourceRanges` is restricted;
/// private traffic comes from the node range, which the `nodes` rule admits.
pub use hke_provider_api::resource::OUT_INTERNAL_DNS_NAME;
/// The description of the network interfaces a network load balancer keeps
/// in each of its subnets: `ELB net/<name>/<id>`, the end of its ARN. AWS
/// removes them some time after the load balancer is deleted; until then the
/// subnets cannot be deleted nor the internet gateway detached.
pub const NLB_INTERFACES: &str = "ELB net/*";

/// Where and for which cluster.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// The cluster's name: the `hke.io/cluster` tag value.
    pub cluster: String,
    /// The region; `None` takes it from the AWS configuration chain
    /// (`AWS_REGION`, the profile's `region`).
    pub region: Option<String>,
    /// An endpoint override (an emulator such as moto, or a VPC endpoint).
    pub endpoint: Option<String>,
    /// The first wait between polls of a resource's state; it doubles up to 5 s.
    pub poll: Duration,
    /// How long to wait for an instance to run or a load balancer to be
    /// active before reporting a (retryable) timeout.
    pub wait: Duration,
    /// Pace every call under EC2's and ELBv2's documented token buckets
    /// (`pace.rs`); off only to show what an unpaced client meets.
    pub pacing: bool,
    /// Times the documented buckets' sizes and refills (1.0: as documented;
    /// an account with raised limits, or a test, may scale them).
    pub rate_scale: f64,
    /// Describe instances together: one DescribeInstances (a filter of many
    /// ids or names, paginated) answers every create, read and wait that
    /// asked while the previous one was out (`batch.rs`); off only to show
    /// what one call per instance costs.
    pub batch: bool,
}

impl AwsConfig {
    pub fn new(cluster: &str, region: Option<&str>) -> AwsConfig {
        AwsConfig {
            cluster: cluster.to_string(),
            region: region.map(str::to_string),
            endpoint: None,
            poll: Duration::from_millis(500),
            wait: Duration::from_secs(600),
            pacing: true,
            rate_scale: 1.0,
            batch: true,
        }
    }
}

/// The HTTP client hke's AWS clients use: rustls on ring (HTTP for
/// emulators on loopback, HTTPS otherwise).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider as Tls};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Tls::Rustls(CryptoMode::Ring))
        .build_https()
}

/// A listed subnet: (part number, id, tags).
type SubnetOf = (u32, String, BTreeMap<String, String>);

/// One AWS subnet of a plan subnet: (id, range, availability zone).
type SubnetPart = (String, Range, String);

/// The AWS provider.
pub struct Aws {
    cfg: AwsConfig,
    ec2: aws_sdk_ec2::Client,
    elb: elbv2::Client,
    /// AMI lookups: pattern and owner → (image id, root device name).
    amis: tokio::sync::Mutex<HashMap<String, (String, String)>>,
    /// Subnet id lists → each subnet's (id, range, zone).
    subnets: Mutex<HashMap<String, Vec<SubnetPart>>>,
    /// VPC id → the cluster's route table in it.
    route_tables: Mutex<HashMap<String, String>>,
    /// The pacer every call waits on (off with mocked clients).
    pacer: std::sync::Arc<hke_provider_api::Pacer>,
    /// What went out through the paced client.
    stats: std::sync::Arc<Mutex<pace::CallStats>>,
    /// Lookups of instances by id (waits), at most one call per two polls.
    by_id: batch::Coalescer,
    /// Lookups of live instances by `Name` (creates, reads), one call as
    /// soon as the previous is back.
    by_name: batch::Coalescer,
    /// The cluster's live instances by `Name`, listed once (`listed`).
    listing: tokio::sync::OnceCell<HashMap<String, Vec<Instance>>>,
    /// Names whose instances this provider launched or terminated.
    touched: Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aws").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

type R<T> = Result<T, ProviderError>;

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

fn filter_of(name: &str, values: Vec<String>) -> Filter {
    Filter::builder().name(name).set_values(Some(values)).build()
}

/// Every instance a filtered DescribeInstances finds, page by page (a
/// filtered or paginated call draws on EC2's larger bucket of non-mutating
/// actions; see `hke_provider_api::pace::ec2`).
async fn describe_all(ec2: &aws_sdk_ec2::Client, filters: Vec<Filter>) -> R<Vec<Instance>> {
    let pages = ec2
        .describe_instances()
        .set_filters(Some(filters))
        // DescribeInstances: "MaxResults … You can specify a value between
        // 5 and 1000" (EC2 API reference).
        .max_results(1000)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| from_sdk("describe instances", false, e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.reservations())
        .flat_map(|r| r.instances())
        .cloned()
        .collect())
}

fn tag_of<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

impl Aws {
    /// Connect with the standard AWS credential chain (environment, shared
    /// config and SSO profiles, web identity, container and instance roles).
    /// Retries are left to hke's engine, which honours its own backoff.
    pub async fn connect(mut cfg: AwsConfig) -> Result<Aws, ProviderError> {
        let pacer = if cfg.pacing {
            hke_provider_api::Pacer::new()
        } else {
            hke_provider_api::Pacer::off()
        };
        let pacer = std::sync::Arc::new(pacer);
        let http = pace::Paced::new(http_client(), pacer.clone(), cfg.rate_scale);
        let stats = http.stats_handle();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = &cfg.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        let mut loader = loader
            .http_client(http)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(e) = &cfg.endpoint {
            loader = loader.endpoint_url(e);
        }
        let sdk = loader.load().await;
        match sdk.region() {
            Some(r) => cfg.region = Some(r.to_string()),
            None => {
                return Err(ProviderError::permanent(
                    "NoRegion",
                    "no AWS region: set providerProfile.region in the model, pass --region, or set AWS_REGION",
                ))
            }
        }
        let mut aws = Aws::with_clients(cfg, aws_sdk_ec2::Client::new(&sdk), elbv2::Client::new(&sdk));
        aws.pacer = pacer;
        aws.stats = stats;
        aws.preflight().await?;
        Ok(aws)
    }

    /// One cheap call before any work, so that a wrong endpoint, region or
    /// credential fails at once with one clear message instead of after a
    /// minute of retries. Two quick retries cover a blip.
    pub async fn preflight(&self) -> R<()> {
        let mut last = None;
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
            }
            match self.ec2.describe_availability_zones().send().await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let e = from_sdk(&format!("connect to EC2 in {}", self.region()), false, e);
                    if !e.is_transient() {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ProviderError::unreachable("EC2 did not answer")))
    }

    /// The region in use.
    pub fn region(&self) -> &str {
        self.cfg.region.as_deref().unwrap_or("unknown")
    }

    /// A provider over given clients (tests use mocked ones).
    pub fn with_clients(cfg: AwsConfig, ec2: aws_sdk_ec2::Client, elb: elbv2::Client) -> Aws {
        Aws {
            by_id: batch::Coalescer::new(cfg.poll * 2),
            by_name: batch::Coalescer::new(Duration::ZERO),
            listing: tokio::sync::OnceCell::new(),
            touched: Mutex::default(),
            cfg,
            ec2,
            elb,
            amis: tokio::sync::Mutex::new(HashMap::new()),
            subnets: Mutex::new(HashMap::new()),
            route_tables: Mutex::new(HashMap::new()),
            pacer: std::sync::Arc::new(hke_provider_api::Pacer::off()),
            stats: std::sync::Arc::default(),
        }
    }

    /// Calls sent so far, by action and bucket (a connected provider's).
    pub fn call_stats(&self) -> pace::CallStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// (calls the pacer held back, total time held).
    pub fn paced(&self) -> (u64, Duration) {
        self.pacer.waited()
    }

    fn cluster_filter(&self) -> Filter {
        filter(&format!("tag:{TAG_CLUSTER}"), &[&self.cfg.cluster])
    }

    fn tags(&self, req: &Request, name: &str, extra: &[(&str, &str)]) -> Vec<Tag> {
        let mut t: BTreeMap<String, String> = req.tags.clone();
        t.insert("Name".into(), name.into());
        t.insert(TAG_KIND.into(), req.spec.kind().name().into());
        t.insert(TAG_NAME.into(), req.name.clone());
        for (k, v) in extra {
            t.insert((*k).into(), (*v).into());
        }
        t.into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }

    fn tag_spec(&self, rt: ResourceType, tags: &[Tag]) -> TagSpecification {
        TagSpecification::builder()
            .resource_type(rt)
            .set_tags(Some(tags.to_vec()))
            .build()
    }

    async fn mark_complete(&self, ids: &[String]) -> R<()> {
        self.ec2
            .create_tags()
            .set_resources(Some(ids.to_vec()))
            .tags(Tag::builder().key(TAG_COMPLETE).value("true").build())
            .send()
            .await
            .map_err(|e| from_sdk(&format!("tag {}", ids.join(",")), false, e))?;
        Ok(())
    }

    /// Poll `check` until it yields, with a doubling wait capped at 5 s.
    async fn wait_for<T, F, Fut>(&self, what: &str, mut check: F) -> R<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = R<Option<T>>>,
    {
        let deadline = tokio::time::Instant::now() + self.cfg.wait;
        let mut pause = self.cfg.poll;
        loop {
            match check().await {
                Ok(Some(t)) => return Ok(t),
                Ok(None) => {}
                // Eventual consistency: a new id may not be visible yet.
                Err(e) if e.class == hke_provider_api::Class::NotFound => {}
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProviderError::transient(
                    "WaitTimeout",
                    format!("{what}: not ready after {} s", self.cfg.wait.as_secs()),
                    None,
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    // ---- group: the key pair ------------------------------------------------

    async fn find_key_pair(&self, name: &str) -> R<Option<String>> {
        let out = match self.ec2.describe_key_pairs().key_names(name).send().await {
            Ok(o) => o,
            Err(e) => return Err(from_sdk(&format!("describe key pair {name}"), false, e)).none_if_not_found(),
        };
        let Some(kp) = out.key_pairs().first() else {
            return Ok(None);
        };
        if tag_of(kp.tags(), TAG_CLUSTER) != Some(self.cfg.cluster.as_str()) {
            return Err(ProviderError::permanent(
                "KeyPairNotOwned",
                format!(
                    "key pair {name} exists but is not tagged {TAG_CLUSTER}={}; delete or rename it, or choose another dnsPrefix",
                    self.cfg.cluster
                ),
            ));
        }
        Ok(kp.key_pair_id().map(str::to_string))
    }

    async fn create_group(&self, req: &Request, ssh_public_key: Option<&str>) -> R<Outputs> {
        let Some(key) = ssh_public_key else {
            return Ok(outputs(&format!("group:{}", req.name), &[]));
        };
        if let Some(id) = self.find_key_pair(&req.name).await? {
            return Ok(outputs(&id, &[]));
        }
        let tags = self.tags(req, &req.name, &[]);
        let out = self
            .ec2
            .import_key_pair()
            .key_name(&req.name)
            .public_key_material(aws_smithy_types::Blob::new(key.as_bytes()))
            .tag_specifications(self.tag_spec(ResourceType::KeyPair, &tags))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("import key pair {}", req.name), true, e))?;
        let id = out
            .key_pair_id()
            .ok_or_else(|| invalid("import key pair", "no key pair id"))?;
        Ok(outputs(id, &[]))
    }

    // ---- network: VPC, internet gateway, route table -------------------------

    async fn find_vpc(&self, name: &str, complete: bool) -> R<Option<String>> {
        let mut filters = vec![filter("tag:Name", &[name]), self.cluster_filter()];
        if complete {
            filters.push(filter(&format!("tag:{TAG_COMPLETE}"), &["true"]));
        }
        let out = self
            .ec2
            .describe_vpcs()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe VPC {name}"), false, e))?;
        Ok(out.vpcs().first().and_then(|v| v.vpc_id()).map(str::to_string))
    }

    async fn route_table_of(&self, vpc: &str) -> R<Option<String>> {
        if let Some(rt) = self.route_tables.lock().ok().and_then(|m| m.get(vpc).cloned()) {
            return Ok(Some(rt));
        }
        let out = self
            .ec2
            .describe_route_tables()
            .filters(filter("vpc-id", &[vpc]))
            .filters(filter(&format!("tag:{TAG_KIND}"), &["network"]))
            .filters(self.cluster_filter())
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe route tables of {vpc}"), false, e))?;
        let rt = out
            .route_tables()
            .first()
            .and_then(|r| r.route_table_id())
            .map(str::to_string);
        if let (Some(rt), Ok(mut m)) = (&rt, self.route_tables.lock()) {
            m.insert(vpc.to_string(), rt.clone());
        }
        Ok(rt)
    }

    async fn network_outputs(&self, vpc: &str) -> R<Outputs> {
        let rt = self
            .route_table_of(vpc)
            .await?
            .ok_or_else(|| ProviderError::not_found(format!("route table of {vpc}")))?;
        Ok(outputs(vpc, &[("routeTable", &rt)]))
    }

    async fn create_network(&self, req: &Request, cidr: &str) -> R<Outputs> {
        let name = &req.name;
        let vpc = match self.find_vpc(name, false).await? {
            Some(v) => v,
            None => {
                let tags = self.tags(req, name, &[]);
                let out = self
                    .ec2
                    .create_vpc()
                    .cidr_block(cidr)
                    .tag_specifications(self.tag_spec(ResourceType::Vpc, &tags))
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("create VPC {name} ({cidr})"), true, e))?;
                out.vpc()
                    .and_then(|v| v.vpc_id())
                    .ok_or_else(|| invalid("create VPC", "no VPC id"))?
                    .to_string()
            }
        };
        self.ec2
            .modify_vpc_attribute()
            .vpc_id(&vpc)
            .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .map_err(|e| from_sdk(&format!("enable DNS hostnames on {vpc}"), false, e))?;
        // Internet gateway, attached.
        let igw_name = format!("{name}-igw");
        let found = self
            .ec2
            .describe_internet_gateways()
            .filters(filter("tag:Name", &[&igw_name]))
            .filters(self.cluster_filter())
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe internet gateway {igw_name}"), false, e))?;
        let (igw, attached) = match found.internet_gateways().first() {
            Some(g) => (
                g.internet_gateway_id().unwrap_or_default().to_string(),
                g.attachments().iter().any(|a| a.vpc_id() == Some(vpc.as_str())),
            ),
            None => {
                let tags = self.tags(req, &igw_name, &[]);
                let out = self
                    .ec2
                    .create_internet_gateway()
                    .tag_specifications(self.tag_spec(ResourceType::InternetGateway, &tags))
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("create internet gateway {igw_name}"), true, e))?;
                let id = out
                    .internet_gateway()
                    .and_then(|g| g.internet_gateway_id())
                    .ok_or_else(|| invalid("create internet gateway", "no id"))?;
                (id.to_string(), false)
            }
        };
        if !attached {
            if let Err(e) = self
                .ec2
                .attach_internet_gateway()
                .internet_gateway_id(&igw)
                .vpc_id(&vpc)
                .send()
                .await
            {
                let e = from_sdk(&format!("attach {igw} to {vpc}"), false, e);
                if e.code.as_deref() != Some("Resource.AlreadyAssociated") {
                    return Err(e);
                }
            }
        }
        // Route table with the default route.
        let rt = match self.route_table_of(&vpc).await? {
            Some(rt) => rt,
            None => {
                let tags = self.tags(req, &format!("{name}-rt"), &[]);
                let out = self
                    .ec2
                    .create_route_table()
                    .vpc_id(&vpc)
                    .tag_specifications(self.tag_spec(ResourceType::RouteTable, &tags))
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("create route table of {vpc}"), true, e))?;
                let id = out
                    .route_table()
                    .and_then(|r| r.route_table_id())
                    .ok_or_else(|| invalid("create route table", "no id"))?
                    .to_string();
                if let Ok(mut m) = self.route_tables.lock() {
                    m.insert(vpc.clone(), id.clone());
                }
                id
            }
        };
        self.put_route(&rt, "0.0.0.0/0", RouteTarget::Gateway(&igw)).await?;
        self.mark_complete(std::slice::from_ref(&vpc)).await?;
        Ok(outputs(&vpc, &[("routeTable", &rt), ("internetGateway", &igw)]))
    }

    async fn delete_network(&self, vpc: &str) -> R<()> {
        // Route tables other than the main one.
        let rts = self
            .ec2
            .describe_route_tables()
            .filters(filter("vpc-id", &[vpc]))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe route tables of {vpc}"), false, e))?;
        for rt in rts.route_tables() {
            if rt.associations().iter().any(|a| a.main() == Some(true)) {
                continue;
            }
            for a in rt.associations() {
                if let Some(aid) = a.route_table_association_id() {
                    self.ec2
                        .disassociate_route_table()
                        .association_id(aid)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| from_sdk(&format!("disassociate {aid}"), false, e))
                        .done_if_not_found()?;
                }
            }
            if let Some(id) = rt.route_table_id() {
                self.ec2
                    .delete_route_table()
                    .route_table_id(id)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sdk(&format!("delete route table {id}"), false, e))
                    .done_if_not_found()?;
            }
        }
        // The load balancer's public addresses are mapped through the
        // gateway until its interfaces are gone.
        self.wait_for_nlb_interfaces(&format!("VPC {vpc}"), filter("vpc-id", &[vpc]))
            .await?;
        let igws = self
            .ec2
            .describe_internet_gateways()
            .filters(filter("attachment.vpc-id", &[vpc]))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe internet gateways of {vpc}"), false, e))?;
        for g in igws.internet_gateways() {
            if let Some(id) = g.internet_gateway_id() {
                self.delete_internet_gateway(id).await.done_if_not_found()?;
            }
        }
        if let Ok(mut m) = self.route_tables.lock() {
            m.remove(vpc);
        }
        self.ec2
            .delete_vpc()
            .vpc_id(vpc)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("delete VPC {vpc}"), false, e))?;
        Ok(())
    }

    /// The network load balancers' interfaces `scope` selects (a subnet-id or
    /// vpc-id filter).
    pub async fn nlb_interfaces(&self, scope: Filter) -> R<Vec<String>> {
        let out = self
            .ec2
            .describe_network_interfaces()
            .filters(scope)
            .filters(filter("description", &[NLB_INTERFACES]))
            .send()
            .await
            .map_err(|e| from_sdk("describe the load balancer's network interfaces", false, e))?;
        Ok(out
            .network_interfaces()
            .iter()
            .filter_map(|n| n.network_interface_id().map(str::to_string))
            .collect())
    }

    /// Wait (up to the configured wait, then a retryable timeout) until no
    /// network load balancer interface is left where `scope` says: deleting
    /// a subnet or detaching the gateway before that is a DependencyViolation
    /// for minutes after the load balancer itself is gone.
    async fn wait_for_nlb_interfaces(&self, what: &str, scope: Filter) -> R<()> {
        self.wait_for(
            &format!("the load balancer's network interfaces in {what} to go"),
            || {
                let scope = scope.clone();
                async move { Ok(self.nlb_interfaces(scope).await?.is_empty().then_some(())) }
            },
        )
        .await
    }

    async fn delete_internet_gateway(&self, id: &str) -> R<()> {
        let g = self
            .ec2
            .describe_internet_gateways()
            .internet_gateway_ids(id)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe internet gateway {id}"), false, e))?;
        for a in g.internet_gateways().iter().flat_map(|g| g.attachments()) {
            if let Some(vpc) = a.vpc_id() {
                self.ec2
                    .detach_internet_gateway()
                    .internet_gateway_id(id)
                    .vpc_id(vpc)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sdk(&format!("detach {id} from {vpc}"), false, e))
                    .done_if_not_found()?;
            }
        }
        self.ec2
            .delete_internet_gateway()
            .internet_gateway_id(id)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("delete internet gateway {id}"), false, e))?;
        Ok(())
    }

    // ---- routes ----------------------------------------------------------------

    async fn put_route(&self, rt: &str, dest: &str, target: RouteTarget<'_>) -> R<()> {
        let what = format!("route {dest} in {rt}");
        let created = match target {
            RouteTarget::Gateway(g) => self
                .ec2
                .create_route()
                .route_table_id(rt)
                .destination_cidr_block(dest)
                .gateway_id(g)
                .send()
                .await
                .map(|_| ()),
            RouteTarget::Instance(i) => self
                .ec2
                .create_route()
                .route_table_id(rt)
                .destination_cidr_block(dest)
                .instance_id(i)
                .send()
                .await
                .map(|_| ()),
        };
        match created.map_err(|e| from_sdk(&format!("create {what}"), false, e)) {
            Ok(()) => Ok(()),
            // Already there (a retry or a resumed run): make sure it points
            // where the plan says.
            Err(e) if e.class == hke_provider_api::Class::AlreadyExists => {
                let replaced = match target {
                    RouteTarget::Gateway(g) => self
                        .ec2
                        .replace_route()
                        .route_table_id(rt)
                        .destination_cidr_block(dest)
                        .gateway_id(g)
                        .send()
                        .await
                        .map(|_| ()),
                    RouteTarget::Instance(i) => self
                        .ec2
                        .replace_route()
                        .route_table_id(rt)
                        .destination_cidr_block(dest)
                        .instance_id(i)
                        .send()
                        .await
                        .map(|_| ()),
                };
                replaced.map_err(|e| from_sdk(&format!("replace {what}"), false, e))
            }
            Err(e) => Err(e),
        }
    }

    async fn create_route(&self, vpc: &str, dest: &str, instance: &str) -> R<Outputs> {
        let rt = self
            .route_table_of(vpc)
            .await?
            .ok_or_else(|| ProviderError::not_found(format!("the cluster's route table in {vpc}")))?;
        self.put_route(&rt, dest, RouteTarget::Instance(instance)).await?;
        Ok(outputs(&format!("route:{rt}|{dest}"), &[]))
    }

    // ---- subnets -------------------------------------------------------------

    async fn zones(&self) -> R<Vec<String>> {
        let out = self
            .ec2
            .describe_availability_zones()
            .send()
            .await
            .map_err(|e| from_sdk("describe availability zones", false, e))?;
        let mut z: Vec<String> = out
            .availability_zones()
            .iter()
            .filter(|z| z.state().map(|s| s.as_str()) == Some("available"))
            .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        z.sort();
        z.truncate(3);
        if z.is_empty() {
            return Err(ProviderError::permanent(
                "NoAvailabilityZone",
                format!("region {} reports no available zone", self.region()),
            ));
        }
        Ok(z)
    }

    async fn find_subnets(&self, name: &str, complete: bool) -> R<Vec<aws_sdk_ec2::types::Subnet>> {
        let mut filters = vec![filter(&format!("tag:{TAG_NAME}"), &[name]), self.cluster_filter()];
        if complete {
            filters.push(filter(&format!("tag:{TAG_COMPLETE}"), &["true"]));
        }
        let out = self
            .ec2
            .describe_subnets()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe subnets {name}"), false, e))?;
        let mut v = out.subnets().to_vec();
        v.sort_by_key(|s| tag_of(s.tags(), "hke.io/part").and_then(|p| p.parse::<u32>().ok()));
        Ok(v)
    }

    fn subnet_outputs(subnets: &[aws_sdk_ec2::types::Subnet]) -> Outputs {
        let join = |f: &dyn Fn(&aws_sdk_ec2::types::Subnet) -> Option<&str>| {
            subnets.iter().filter_map(f).collect::<Vec<_>>().join(",")
        };
        outputs(
            &join(&|s| s.subnet_id()),
            &[
                ("cidrs", &join(&|s| s.cidr_block())),
                ("zones", &join(&|s| s.availability_zone())),
            ],
        )
    }

    async fn create_subnets(&self, req: &Request, vpc: &str, cidr: &str) -> R<Outputs> {
        let range = Range::parse(cidr).ok_or_else(|| invalid("subnet", format!("bad range {cidr}")))?;
        let parts = range.quarters();
        let zones = self.zones().await?;
        let rt = self
            .route_table_of(vpc)
            .await?
            .ok_or_else(|| ProviderError::not_found(format!("the cluster's route table in {vpc}")))?;
        let existing = self.find_subnets(&req.name, false).await?;
        let mut ids = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let part_name = format!("{}-{i}", req.name);
            // Quarter i in zone i mod 3: hke's validation (aws_spread_masters)
            // gives several masters addresses in quarters of distinct zones.
            let zone = &zones[i % zones.len()];
            let id = match existing
                .iter()
                .find(|s| tag_of(s.tags(), "Name") == Some(part_name.as_str()))
            {
                Some(s) => s.subnet_id().unwrap_or_default().to_string(),
                None => {
                    let n = parts.len().to_string();
                    let p = i.to_string();
                    let tags = self.tags(req, &part_name, &[("hke.io/part", &p), ("hke.io/parts", &n)]);
                    let out = self
                        .ec2
                        .create_subnet()
                        .vpc_id(vpc)
                        .cidr_block(part.to_string())
                        .availability_zone(zone)
                        .tag_specifications(self.tag_spec(ResourceType::Subnet, &tags))
                        .send()
                        .await
                        .map_err(|e| from_sdk(&format!("create subnet {part_name} ({part}, {zone})"), true, e))?;
                    out.subnet()
                        .and_then(|s| s.subnet_id())
                        .ok_or_else(|| invalid("create subnet", "no id"))?
                        .to_string()
                }
            };
            self.ec2
                .modify_subnet_attribute()
                .subnet_id(&id)
                .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
                .send()
                .await
                .map_err(|e| from_sdk(&format!("enable public addresses in {id}"), false, e))?;
            if let Err(e) = self
                .ec2
                .associate_route_table()
                .route_table_id(&rt)
                .subnet_id(&id)
                .send()
                .await
            {
                let e = from_sdk(&format!("associate {id} with {rt}"), false, e);
                if e.code.as_deref() != Some("Resource.AlreadyAssociated") {
                    return Err(e);
                }
            }
            ids.push(id);
        }
        self.mark_complete(&ids).await?;
        let subnets = self.find_subnets(&req.name, true).await?;
        Ok(Self::subnet_outputs(&subnets))
    }

    /// The subnets behind a subnet resource's id list: (id, range, zone).
    async fn subnet_parts(&self, ids: &str) -> R<Vec<SubnetPart>> {
        if let Some(v) = self.subnets.lock().ok().and_then(|m| m.get(ids).cloned()) {
            return Ok(v);
        }
        let list: Vec<String> = ids.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
        let out = self
            .ec2
            .describe_subnets()
            .set_subnet_ids(Some(list.clone()))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe subnets {ids}"), false, e))?;
        let mut v = Vec::new();
        for id in &list {
            let s = out
                .subnets()
                .iter()
                .find(|s| s.subnet_id() == Some(id.as_str()))
                .ok_or_else(|| ProviderError::not_found(format!("subnet {id}")))?;
            let range = s
                .cidr_block()
                .and_then(Range::parse)
                .ok_or_else(|| invalid("describe subnets", format!("{id} has no range")))?;
            v.push((id.clone(), range, s.availability_zone().unwrap_or_default().to_string()));
        }
        if let Ok(mut m) = self.subnets.lock() {
            m.insert(ids.to_string(), v.clone());
        }
        Ok(v)
    }

    async fn vpc_of_subnet(&self, subnet: &str) -> R<String> {
        let out = self
            .ec2
            .describe_subnets()
            .subnet_ids(subnet)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe subnet {subnet}"), false, e))?;
        out.subnets()
            .first()
            .and_then(|s| s.vpc_id())
            .map(str::to_string)
            .ok_or_else(|| ProviderError::not_found(format!("subnet {subnet}")))
    }

    // ---- firewall: security group --------------------------------------------

    async fn find_security_group(&self, name: &str, complete: bool) -> R<Option<aws_sdk_ec2::types::SecurityGroup>> {
        let mut filters = vec![filter("tag:Name", &[name]), self.cluster_filter()];
        if complete {
            filters.push(filter(&format!("tag:{TAG_COMPLETE}"), &["true"]));
        }
        let out = self
            .ec2
            .describe_security_groups()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe security group {name}"), false, e))?;
        Ok(out.security_groups().first().cloned())
    }

    async fn create_firewall(&self, req: &Request, vpc: &str, rules: &[Rule]) -> R<Outputs> {
        let name = &req.name;
        let sg = match self.find_security_group(name, false).await? {
            Some(sg) => sg,
            None => {
                let tags = self.tags(req, name, &[]);
                self.ec2
                    .create_security_group()
                    .group_name(name)
                    .description(format!("hke cluster {}: nodes", self.cfg.cluster))
                    .vpc_id(vpc)
                    .tag_specifications(self.tag_spec(ResourceType::SecurityGroup, &tags))
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("create security group {name}"), true, e))?;
                self.find_security_group(name, false)
                    .await?
                    .ok_or_else(|| ProviderError::not_found(format!("security group {name} after creating it")))?
            }
        };
        let id = sg.group_id().unwrap_or_default().to_string();
        let have: BTreeSet<Permission> = sg
            .ip_permissions()
            .iter()
            .flat_map(|p| {
                p.ip_ranges().iter().filter_map(|r| {
                    Some(Permission {
                        protocol: p.ip_protocol()?.to_string(),
                        from: p.from_port(),
                        to: p.to_port(),
                        cidr: r.cidr_ip()?.to_string(),
                    })
                })
            })
            .collect();
        let mut missing: Vec<IpPermission> = Vec::new();
        for rule in rules {
            for p in permissions(rule).map_err(|m| invalid(&format!("security group {name}"), m))? {
                if !have.contains(&p) {
                    missing.push(
                        IpPermission::builder()
                            .ip_protocol(&p.protocol)
                            .set_from_port(p.from)
                            .set_to_port(p.to)
                            .ip_ranges(IpRange::builder().cidr_ip(&p.cidr).description(&rule.name).build())
                            .build(),
                    );
                }
            }
        }
        if !missing.is_empty() {
            if let Err(e) = self
                .ec2
                .authorize_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(missing))
                .send()
                .await
            {
                let e = from_sdk(&format!("add rules to security group {name}"), false, e);
                if e.class != hke_provider_api::Class::AlreadyExists {
                    return Err(e);
                }
            }
        }
        self.mark_complete(std::slice::from_ref(&id)).await?;
        Ok(outputs(&id, &[]))
    }

    // ---- public address: Elastic IP -------------------------------------------

    async fn find_address(&self, tag: &str, value: &str) -> R<Option<aws_sdk_ec2::types::Address>> {
        let out = self
            .ec2
            .describe_addresses()
            .filters(filter(&format!("tag:{tag}"), &[value]))
            .filters(self.cluster_filter())
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe Elastic IP {value}"), false, e))?;
        Ok(out.addresses().first().cloned())
    }

    fn address_outputs(a: &aws_sdk_ec2::types::Address) -> Outputs {
        let ip = a.public_ip().unwrap_or_default();
        outputs(a.allocation_id().unwrap_or_default(), &[(OUT_ADDRESS, ip)])
    }

    async fn create_address(&self, req: &Request) -> R<Outputs> {
        if let Some(a) = self.find_address("Name", &req.name).await? {
            return Ok(Self::address_outputs(&a));
        }
        let tags = self.tags(req, &req.name, &[]);
        let out = self
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(self.tag_spec(ResourceType::ElasticIp, &tags))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("allocate Elastic IP {}", req.name), true, e))?;
        let id = out
            .allocation_id()
            .ok_or_else(|| invalid("allocate address", "no allocation id"))?;
        Ok(outputs(id, &[(OUT_ADDRESS, out.public_ip().unwrap_or_default())]))
    }

    async fn release_address(&self, allocation: &str) -> R<()> {
        let out = self
            .ec2
            .describe_addresses()
            .allocation_ids(allocation)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe Elastic IP {allocation}"), false, e))?;
        for a in out.addresses() {
            if let Some(assoc) = a.association_id() {
                self.ec2
                    .disassociate_address()
                    .association_id(assoc)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| from_sdk(&format!("disassociate {assoc}"), false, e))
                    .done_if_not_found()?;
            }
        }
        self.ec2
            .release_address()
            .allocation_id(allocation)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("release Elastic IP {allocation}"), false, e))?;
        Ok(())
    }

    // ---- load balancer ---------------------------------------------------------

    async fn create_load_balancer(&self, req: &Request, address: Option<&str>, subnets: &str, port: u16) -> R<Outputs> {
        if let Some(allocation) = address {
            // One master: the Elastic IP is the endpoint; mark it so.
            self.ec2
                .create_tags()
                .resources(allocation)
                .tags(Tag::builder().key(TAG_LB).value(&req.name).build())
                .send()
                .await
                .map_err(|e| from_sdk(&format!("tag Elastic IP {allocation}"), false, e))?;
            return self
                .eip_endpoint(&req.name)
                .await?
                .ok_or_else(|| ProviderError::not_found(format!("Elastic IP {allocation}")));
        }
        let parts = self.subnet_parts(subnets).await?;
        // A network load balancer takes one subnet per zone.
        let mut zones = BTreeSet::new();
        let lb_subnets: Vec<String> = parts
            .iter()
            .filter(|(_, _, z)| zones.insert(z.clone()))
            .map(|(id, _, _)| id.clone())
            .collect();
        let first = lb_subnets
            .first()
            .ok_or_else(|| invalid("load balancer", "no subnet"))?;
        let vpc = self.vpc_of_subnet(first).await?;
        let elb_tags: Vec<elbv2::types::Tag> = self
            .tags(req, &req.name, &[])
            .into_iter()
            .map(|t| {
                elbv2::types::Tag::builder()
                    .key(t.key().unwrap_or_default())
                    .value(t.value().unwrap_or_default())
                    .build()
            })
            .collect();
        let mut made = Vec::new();
        for internal in [false, true] {
            let (lb_name, tg_name) = nlb_names(&req.name, internal);
            let nlb = Nlb {
                lb_name: &lb_name,
                tg_name: &tg_name,
                internal,
                subnets: &lb_subnets,
                vpc: &vpc,
                port,
                tags: &elb_tags,
            };
            made.push((lb_name.clone(), self.ensure_nlb(&nlb).await?));
        }
        let mut outs = Vec::new();
        for (lb_name, tg_arn) in &made {
            outs.push(
                self.wait_for(&format!("load balancer {lb_name}"), || async {
                    Ok(self
                        .describe_lb(lb_name)
                        .await?
                        .filter(|lb| lb.state().and_then(|s| s.code()).map(|c| c.as_str()) == Some("active"))
                        .map(|lb| lb_outputs(&lb, tg_arn)))
                })
                .await?,
            );
        }
        Ok(nlb_pair_outputs(&outs[0], &outs[1]))
    }

    /// One network load balancer with its TCP target group and listener,
    /// each adopted when it exists; the target group's ARN.
    async fn ensure_nlb(&self, n: &Nlb<'_>) -> R<String> {
        let Nlb {
            lb_name,
            tg_name,
            internal,
            subnets,
            vpc,
            port,
            tags,
        } = *n;
        let lb = match self.describe_lb(lb_name).await? {
            Some(lb) => lb,
            None => {
                // "The nodes of an internal load balancer have only private IP
                // addresses. The DNS name of an internal load balancer is
                // publicly resolvable to the private IP addresses of the nodes"
                // (ELBv2 API reference, CreateLoadBalancer `Scheme`).
                let scheme = if internal {
                    elbv2::types::LoadBalancerSchemeEnum::Internal
                } else {
                    elbv2::types::LoadBalancerSchemeEnum::InternetFacing
                };
                let out = self
                    .elb
                    .create_load_balancer()
                    .name(lb_name)
                    .r#type(elbv2::types::LoadBalancerTypeEnum::Network)
                    .scheme(scheme)
                    .set_subnets(Some(subnets.to_vec()))
                    .set_tags(Some(tags.to_vec()))
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("create load balancer {lb_name}"), true, e))?;
                out.load_balancers()
                    .first()
                    .cloned()
                    .ok_or_else(|| invalid("create load balancer", "no load balancer"))?
            }
        };
        let lb_arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        // "With Network Load Balancers, cross-zone load balancing is off by
        // default" (ELBv2 docs, network/target-group-cross-zone.html): a
        // zone's node would send only to that zone's master. Set before the
        // listener, so a listener means the attribute is on.
        self.elb
            .modify_load_balancer_attributes()
            .load_balancer_arn(&lb_arn)
            .attributes(
                elbv2::types::LoadBalancerAttribute::builder()
                    .key(CROSS_ZONE)
                    .value("true")
                    .build(),
            )
            .send()
            .await
            .map_err(|e| from_sdk(&format!("turn on cross-zone load balancing of {lb_name}"), false, e))?;
        let tg_arn = match self.describe_tg(tg_name).await? {
            Some(arn) => arn,
            None => {
                let out = self
                    .elb
                    .create_target_group()
                    .name(tg_name)
                    .protocol(elbv2::types::ProtocolEnum::Tcp)
                    .port(i32::from(port))
                    .vpc_id(vpc)
                    .target_type(if internal {
                        // The masters reach the API server through the
                        // internal load balancer too. "NAT loopback, also
                        // known as hairpinning, is not supported when
                        // client IP preservation is enabled": a target
                        // routed to itself sees its own address as the
                        // source and the connection times out. Client IP
                        // preservation is on by default for instance
                        // targets and off for IP targets of TCP groups,
                        // where "the source IP address is the private IP
                        // address of the Network Load Balancer" (ELBv2 docs,
                        // network/edit-target-group-attributes.html#client-ip-preservation,
                        // network/load-balancer-troubleshooting.html#loopback-timeout):
                        // an address of the node subnets, which the `nodes`
                        // rule admits.
                        elbv2::types::TargetTypeEnum::Ip
                    } else {
                        elbv2::types::TargetTypeEnum::Instance
                    })
                    .health_check_protocol(elbv2::types::ProtocolEnum::Tcp)
                    .set_tags(Some(tags.to_vec()))
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("create target group {tg_name}"), true, e))?;
                out.target_groups()
                    .first()
                    .and_then(|t| t.target_group_arn())
                    .ok_or_else(|| invalid("create target group", "no arn"))?
                    .to_string()
            }
        };
        let listeners = self
            .elb
            .describe_listeners()
            .load_balancer_arn(&lb_arn)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe listeners of {lb_name}"), false, e))?;
        if !listeners.listeners().iter().any(|l| l.port() == Some(i32::from(port))) {
            self.elb
                .create_listener()
                .load_balancer_arn(&lb_arn)
                .protocol(elbv2::types::ProtocolEnum::Tcp)
                .port(i32::from(port))
                .default_actions(
                    elbv2::types::Action::builder()
                        .r#type(elbv2::types::ActionTypeEnum::Forward)
                        .target_group_arn(&tg_arn)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| from_sdk(&format!("create listener {port} of {lb_name}"), true, e))?;
        }
        Ok(tg_arn)
    }

    async fn describe_lb(&self, lb_name: &str) -> R<Option<elbv2::types::LoadBalancer>> {
        match self.elb.describe_load_balancers().names(lb_name).send().await {
            Ok(o) => Ok(o.load_balancers().first().cloned()),
            Err(e) => Err(from_sdk(&format!("describe load balancer {lb_name}"), false, e)).none_if_not_found(),
        }
    }

    async fn describe_tg(&self, tg_name: &str) -> R<Option<String>> {
        match self.elb.describe_target_groups().names(tg_name).send().await {
            Ok(o) => Ok(o
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .map(str::to_string)),
            Err(e) => Err(from_sdk(&format!("describe target group {tg_name}"), false, e)).none_if_not_found(),
        }
    }

    async fn eip_endpoint(&self, lb: &str) -> R<Option<Outputs>> {
        Ok(self.find_address(TAG_LB, lb).await?.map(|a| {
            let ip = a.public_ip().unwrap_or_default();
            // The address's public DNS name, for clients and machines alike:
            // outside the VPC it resolves to the Elastic IP, inside it to the
            // master's private address, so machines reach the API server
            // privately (see `OUT_INTERNAL_DNS_NAME`). Without an address,
            // no name either (not `ec2-.…`): the outputs leave both out.
            let name = if ip.is_empty() {
                String::new()
            } else {
                public_dns_name(ip, self.region())
            };
            outputs(
                &format!("eip:{}", a.allocation_id().unwrap_or_default()),
                &[(OUT_ADDRESS, ip), (OUT_DNS_NAME, &name), (OUT_INTERNAL_DNS_NAME, &name)],
            )
        }))
    }

    async fn read_load_balancer(&self, name: &str) -> R<Option<Outputs>> {
        if let Some(o) = self.eip_endpoint(name).await? {
            return Ok(Some(o));
        }
        // Complete when both load balancers are active with a target group
        // and a listener (the listener is created last).
        let mut outs = Vec::new();
        for internal in [false, true] {
            let (lb_name, tg_name) = nlb_names(name, internal);
            let Some(lb) = self.describe_lb(&lb_name).await? else {
                return Ok(None);
            };
            if lb.state().and_then(|s| s.code()).map(|c| c.as_str()) != Some("active") {
                return Ok(None);
            }
            let Some(tg) = self.describe_tg(&tg_name).await? else {
                return Ok(None);
            };
            let lb_arn = lb.load_balancer_arn().unwrap_or_default();
            let listeners = self
                .elb
                .describe_listeners()
                .load_balancer_arn(lb_arn)
                .send()
                .await
                .map_err(|e| from_sdk(&format!("describe listeners of {lb_name}"), false, e))?;
            if listeners.listeners().is_empty() {
                return Ok(None);
            }
            outs.push(lb_outputs(&lb, &tg));
        }
        Ok(Some(nlb_pair_outputs(&outs[0], &outs[1])))
    }

    async fn delete_load_balancer(&self, name: &str, id: &str) -> R<()> {
        if id.starts_with("eip:") {
            // The Elastic IP itself goes with the public address resource.
            return Ok(());
        }
        if id.contains(":targetgroup/") {
            self.elb
                .delete_target_group()
                .target_group_arn(id)
                .send()
                .await
                .map_err(|e| from_sdk(&format!("delete target group {id}"), false, e))?;
            return Ok(());
        }
        // The id is one of the plan resource's two load balancers (the
        // state has the internet-facing one's, a tag sweep finds both):
        // delete it, then both by name with their target groups.
        let mut deleted = match self.elb.delete_load_balancer().load_balancer_arn(id).send().await {
            Ok(_) => true,
            Err(e) => {
                Err(from_sdk(&format!("delete load balancer {id}"), false, e)).done_if_not_found()?;
                false
            }
        };
        for internal in [false, true] {
            let (lb_name, tg_name) = nlb_names(name, internal);
            if let Some(arn) = self
                .describe_lb(&lb_name)
                .await?
                .and_then(|lb| lb.load_balancer_arn().map(str::to_string))
            {
                match self.elb.delete_load_balancer().load_balancer_arn(&arn).send().await {
                    Ok(_) => deleted = true,
                    Err(e) => {
                        Err(from_sdk(&format!("delete load balancer {lb_name}"), false, e)).done_if_not_found()?
                    }
                }
            }
            self.wait_for(&format!("deletion of load balancer {lb_name}"), || async {
                Ok(self.describe_lb(&lb_name).await?.is_none().then_some(()))
            })
            .await?;
            if let Some(tg) = self.describe_tg(&tg_name).await? {
                self.elb
                    .delete_target_group()
                    .target_group_arn(&tg)
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("delete target group {tg}"), false, e))?;
                deleted = true;
            }
        }
        if !deleted {
            return Err(ProviderError::not_found(format!("load balancer {}", elb_name(name))));
        }
        Ok(())
    }

    // ---- load balancer members --------------------------------------------------

    async fn create_member(&self, lb: &str, instance: &str, port: u16) -> R<Outputs> {
        if let Some(allocation) = lb.strip_prefix("eip:") {
            let out = self
                .ec2
                .associate_address()
                .allocation_id(allocation)
                .instance_id(instance)
                .allow_reassociation(true)
                .send()
                .await
                .map_err(|e| from_sdk(&format!("associate Elastic IP {allocation} with {instance}"), false, e))?;
            let assoc = out.association_id().unwrap_or_default();
            return Ok(outputs(&format!("eipassoc:{assoc}"), &[]));
        }
        let tgs = self
            .elb
            .describe_target_groups()
            .load_balancer_arn(lb)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe target groups of {lb}"), false, e))?;
        let tg = tgs
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .ok_or_else(|| ProviderError::not_found(format!("target group of {lb}")))?
            .to_string();
        // The internal load balancer's target group: by the plan name the
        // internet-facing one is tagged with.
        let tags = self
            .elb
            .describe_tags()
            .resource_arns(lb)
            .send()
            .await
            .map_err(|e| from_sdk(&format!("describe tags of {lb}"), false, e))?;
        let plan_name = tags
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .find(|t| t.key() == Some(TAG_NAME))
            .and_then(|t| t.value())
            .ok_or_else(|| ProviderError::not_found(format!("the {TAG_NAME} tag of {lb}")))?
            .to_string();
        let internal = self
            .describe_tg(&nlb_names(&plan_name, true).1)
            .await?
            .ok_or_else(|| ProviderError::not_found(format!("the internal target group of {plan_name}")))?;
        // The internal group's targets are addresses (see `ensure_nlb`).
        let ip = self
            .instances_by_id(&[instance.to_string()])
            .await?
            .first()
            .and_then(|i| i.private_ip_address().map(str::to_string))
            .ok_or_else(|| ProviderError::not_found(format!("the private address of {instance}")))?;
        for (group, target) in [(&tg, instance), (&internal, ip.as_str())] {
            self.elb
                .register_targets()
                .target_group_arn(group)
                .targets(
                    elbv2::types::TargetDescription::builder()
                        .id(target)
                        .port(i32::from(port))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| from_sdk(&format!("register {target} with {group}"), false, e))?;
        }
        Ok(outputs(&format!("target:{tg}|{instance}|{port}|{internal}|{ip}"), &[]))
    }

    async fn delete_member(&self, id: &str) -> R<()> {
        if let Some(assoc) = id.strip_prefix("eipassoc:") {
            self.ec2
                .disassociate_address()
                .association_id(assoc)
                .send()
                .await
                .map_err(|e| from_sdk(&format!("disassociate {assoc}"), false, e))?;
            return Ok(());
        }
        let Some(rest) = id.strip_prefix("target:") else {
            return Err(ProviderError::not_found(format!("load balancer member {id}")));
        };
        // `target:TG|INSTANCE|PORT`, then the internal group's `|TG|IP`.
        let mut it = rest.split('|');
        let (Some(tg), Some(instance), Some(port)) = (it.next(), it.next(), it.next()) else {
            return Err(ProviderError::not_found(format!("load balancer member {id}")));
        };
        let port: i32 = port.parse().unwrap_or(0);
        let mut targets = vec![(tg, instance)];
        if let (Some(tg), Some(ip)) = (it.next(), it.next()) {
            targets.push((tg, ip));
        }
        for (tg, target) in targets {
            self.elb
                .deregister_targets()
                .target_group_arn(tg)
                .targets(elbv2::types::TargetDescription::builder().id(target).port(port).build())
                .send()
                .await
                .map_err(|e| from_sdk(&format!("deregister {target} from {tg}"), false, e))?;
        }
        Ok(())
    }

    // ---- machines ----------------------------------------------------------------

    async fn instances(&self, filters: Vec<Filter>) -> R<Vec<Instance>> {
        let pages = self
            .ec2
            .describe_instances()
            .set_filters(Some(filters))
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| from_sdk("describe instances", false, e))?;
        let mut v: Vec<Instance> = pages
            .iter()
            .flat_map(|p| p.reservations())
            .flat_map(|r| r.instances())
            .cloned()
            .collect();
        v.sort_by_key(|i| i.launch_time().map(|t| t.secs()));
        Ok(v)
    }

    /// Instances by id, in any state (missing ids are simply absent): with
    /// `batch`, in one call with other callers' ids.
    async fn instances_by_id(&self, ids: &[String]) -> R<Vec<Instance>> {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        if !self.cfg.batch {
            return self.instances(vec![filter("instance-id", &refs)]).await;
        }
        let ec2 = aws_sdk_ec2::Client::clone(&self.ec2);
        let answer = self
            .by_id
            .get(ids, move |keys| {
                let ec2 = ec2.clone();
                async move { describe_all(&ec2, vec![filter_of("instance-id", keys)]).await }
            })
            .await?;
        match answer.as_ref() {
            Ok(all) => Ok(all
                .iter()
                .filter(|i| i.instance_id().is_some_and(|id| refs.contains(&id)))
                .cloned()
                .collect()),
            Err(e) => Err(e.clone()),
        }
    }

    /// The cluster's live instances named `name` from one listing of all of
    /// them, made at the first lookup (a page per 1,000 instances). Sound
    /// for names this provider has not launched nor terminated instances
    /// for (`touch`): nothing else changes a cluster's instances meanwhile,
    /// since the state lock keeps a second hke run off the cluster. So
    /// reading or adopting a whole cluster (a resumed deploy, a redeploy
    /// with the state lost) costs a call per 1,000 machines, not one each.
    async fn listed(&self, name: &str) -> R<Vec<Instance>> {
        let all = self
            .listing
            .get_or_try_init(|| async {
                let found = describe_all(
                    &self.ec2,
                    vec![self.cluster_filter(), filter("instance-state-name", &LIVE_STATES)],
                )
                .await?;
                let mut by_name: HashMap<String, Vec<Instance>> = HashMap::new();
                for i in found {
                    if let Some(n) = tag_of(i.tags(), "Name") {
                        by_name.entry(n.to_string()).or_default().push(i);
                    }
                }
                Ok::<_, ProviderError>(by_name)
            })
            .await?;
        let mut v = all.get(name).cloned().unwrap_or_default();
        v.sort_by_key(|i| i.launch_time().map(|t| t.secs()));
        Ok(v)
    }

    /// Lookups of `name` go to EC2 from now on: this provider is about to
    /// launch or terminate its instances.
    fn touch(&self, name: &str) {
        if let Ok(mut t) = self.touched.lock() {
            t.insert(name.to_string());
        }
    }

    /// The cluster's live instances named `name` (the `Name` tag), found in
    /// one call with other callers' names.
    async fn instances_by_name(&self, name: &str) -> R<Vec<Instance>> {
        let ec2 = aws_sdk_ec2::Client::clone(&self.ec2);
        let cluster = self.cluster_filter();
        let answer = self
            .by_name
            .get(&[name.to_string()], move |keys| {
                let (ec2, cluster) = (ec2.clone(), cluster.clone());
                async move {
                    describe_all(
                        &ec2,
                        vec![
                            filter_of("tag:Name", keys),
                            cluster,
                            filter("instance-state-name", &LIVE_STATES),
                        ],
                    )
                    .await
                }
            })
            .await?;
        match answer.as_ref() {
            Ok(all) => {
                let mut v: Vec<Instance> = all
                    .iter()
                    .filter(|i| tag_of(i.tags(), "Name") == Some(name))
                    .cloned()
                    .collect();
                v.sort_by_key(|i| i.launch_time().map(|t| t.secs()));
                Ok(v)
            }
            Err(e) => Err(e.clone()),
        }
    }

    async fn find_instances(&self, tag: &str, value: &str, complete: bool) -> R<Vec<Instance>> {
        if self.cfg.batch && tag == "Name" {
            let touched = self.touched.lock().map(|t| t.contains(value)).unwrap_or(true);
            let mut found = if touched {
                self.instances_by_name(value).await?
            } else {
                self.listed(value).await?
            };
            if complete {
                found.retain(|i| tag_of(i.tags(), TAG_COMPLETE) == Some("true"));
            }
            return Ok(found);
        }
        let mut filters = vec![
            filter(&format!("tag:{tag}"), &[value]),
            self.cluster_filter(),
            filter("instance-state-name", &LIVE_STATES),
        ];
        if complete {
            filters.push(filter(&format!("tag:{TAG_COMPLETE}"), &["true"]));
        }
        self.instances(filters).await
    }

    async fn image(&self, image: &Image) -> R<(String, String)> {
        let key = format!("{:?}", image.lookup);
        let mut cache = self.amis.lock().await;
        if let Some(v) = cache.get(&key) {
            return Ok(v.clone());
        }
        let req = match image.lookup.get("imageId") {
            Some(id) => self.ec2.describe_images().image_ids(id),
            None => {
                let pattern = image.lookup.get("amiNamePattern").cloned().unwrap_or_default();
                let owner = image.lookup.get("owner").cloned().unwrap_or_else(|| "amazon".into());
                self.ec2
                    .describe_images()
                    .owners(owner)
                    .filters(filter("name", &[&pattern]))
                    .filters(filter("state", &["available"]))
                    .filters(filter("architecture", &["x86_64"]))
            }
        };
        let out = req
            .send()
            .await
            .map_err(|e| from_sdk(&format!("find the {} image", image.name), false, e))?;
        let newest = out
            .images()
            .iter()
            .filter(|i| i.image_id().is_some())
            .max_by_key(|i| (i.creation_date(), i.name()))
            .ok_or_else(|| {
                ProviderError::permanent(
                    "ImageNotFound",
                    format!(
                        "no AMI for {} in {} (lookup {:?}); check the region, or pin one with the pool's image id",
                        image.name,
                        self.region(),
                        image.lookup
                    ),
                )
            })?;
        let v = (
            newest.image_id().unwrap_or_default().to_string(),
            newest.root_device_name().unwrap_or("/dev/sda1").to_string(),
        );
        cache.insert(key, v.clone());
        Ok(v)
    }

    fn instance_outputs(i: &Instance) -> Outputs {
        let mut o = outputs(i.instance_id().unwrap_or_default(), &[]);
        if let Some(ip) = i.private_ip_address() {
            o.insert(OUT_PRIVATE_IP.into(), ip.into());
        }
        if let Some(ip) = i.public_ip_address() {
            o.insert(OUT_ADDRESS.into(), ip.into());
        }
        if let Some(z) = i.placement().and_then(|p| p.availability_zone()) {
            o.insert("zone".into(), z.into());
        }
        o
    }

    /// Wait until every instance is running; returns them as described then.
    async fn wait_running(&self, ids: &[String]) -> R<Vec<Instance>> {
        if self.cfg.batch {
            // "When you launch an instance, it enters the pending state"
            // (EC2 User Guide, instance lifecycle): no point asking at once.
            tokio::time::sleep(self.cfg.poll).await;
        }
        self.wait_for(&format!("instance(s) {}", ids.join(",")), || async {
            let all: Vec<Instance> = if self.cfg.batch {
                self.instances_by_id(ids).await?
            } else {
                let out = self
                    .ec2
                    .describe_instances()
                    .set_instance_ids(Some(ids.to_vec()))
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("describe instances {}", ids.join(",")), false, e))?;
                out.reservations().iter().flat_map(|r| r.instances()).cloned().collect()
            };
            for i in &all {
                match i.state().and_then(|s| s.name()) {
                    Some(InstanceStateName::Running) => {}
                    Some(InstanceStateName::Pending) | None => return Ok(None),
                    Some(other) => {
                        return Err(ProviderError::permanent(
                            "InstanceNotRunning",
                            format!(
                                "instance {} is {} (reason: {}); see its console output",
                                i.instance_id().unwrap_or_default(),
                                other.as_str(),
                                i.state_reason().and_then(|r| r.message()).unwrap_or("none given")
                            ),
                        ))
                    }
                }
            }
            Ok((all.len() == ids.len()).then_some(all))
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        req: &Request,
        name: &str,
        subnet: &str,
        firewall: &str,
        os: &Os,
        size: &str,
        image: &Image,
        disk_gb: u32,
        private_ip: Option<&str>,
        count: u32,
        token: &str,
        extra_tags: &[(&str, &str)],
    ) -> R<Vec<String>> {
        let (ami, root) = self.image(image).await?;
        let script = req
            .user_data
            .as_deref()
            .ok_or_else(|| invalid(name, "no bootstrap was rendered"))?;
        let user_data = userdata::encode(name, os, script)
            .map_err(|e| ProviderError::permanent("UserDataTooLarge", e.to_string()))?;
        let tags = self.tags(req, name, extra_tags);
        let out = self
            .ec2
            .run_instances()
            .image_id(&ami)
            .instance_type(InstanceType::from(size))
            .min_count(count as i32)
            .max_count(count as i32)
            .subnet_id(subnet)
            .security_group_ids(firewall)
            .set_private_ip_address(private_ip.map(str::to_string))
            .user_data(user_data)
            .client_token(token)
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(root)
                    .ebs(
                        EbsBlockDevice::builder()
                            .volume_size(disk_gb as i32)
                            .volume_type(VolumeType::Gp3)
                            .delete_on_termination(true)
                            .encrypted(true)
                            .build(),
                    )
                    .build(),
            )
            .metadata_options(
                InstanceMetadataOptionsRequest::builder()
                    .http_tokens(HttpTokensState::Required)
                    // Containers on the node are one hop further away.
                    .http_put_response_hop_limit(2)
                    .build(),
            )
            .tag_specifications(self.tag_spec(ResourceType::Instance, &tags))
            .tag_specifications(self.tag_spec(ResourceType::Volume, &tags))
            .tag_specifications(self.tag_spec(ResourceType::NetworkInterface, &tags))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("run instance {name} ({size}, {ami}) in {subnet}"), true, e))?;
        Ok(out
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect())
    }

    async fn finish_instances(&self, ids: &[String], ip_forwarding: bool) -> R<Vec<Instance>> {
        let running = self.wait_running(ids).await?;
        self.finish_running(running, ip_forwarding).await
    }

    /// Source/destination checks off (kubenet), then the complete mark
    /// (unless every instance has it already).
    async fn finish_running(&self, running: Vec<Instance>, ip_forwarding: bool) -> R<Vec<Instance>> {
        let ids: Vec<String> = running
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        if ip_forwarding {
            for i in &running {
                if i.source_dest_check() != Some(false) {
                    let id = i.instance_id().unwrap_or_default();
                    self.ec2
                        .modify_instance_attribute()
                        .instance_id(id)
                        .source_dest_check(AttributeBooleanValue::builder().value(false).build())
                        .send()
                        .await
                        .map_err(|e| from_sdk(&format!("turn off source/destination check of {id}"), false, e))?;
                }
            }
        }
        if !running.iter().all(|i| tag_of(i.tags(), TAG_COMPLETE) == Some("true")) {
            self.mark_complete(&ids).await?;
        }
        Ok(running)
    }

    async fn create_machine(&self, req: &Request, m: &MachineSpec<String>) -> R<Outputs> {
        let MachineSpec {
            subnet,
            firewall,
            os,
            size,
            image,
            disk_gb,
            private_ip,
            ip_forwarding,
            ..
        } = m;
        let existing = self.find_instances("Name", &req.name, false).await?;
        if self.cfg.batch {
            // Found running: nothing to wait for.
            if let Some(i) = existing
                .first()
                .filter(|i| i.state().and_then(|s| s.name()) == Some(&InstanceStateName::Running))
            {
                let running = self.finish_running(vec![i.clone()], *ip_forwarding).await?;
                return Ok(running.first().map(Self::instance_outputs).unwrap_or_default());
            }
        }
        let ids: Vec<String> = match existing.first() {
            Some(i) => vec![i.instance_id().unwrap_or_default().to_string()],
            None => {
                // From now on this name's lookups ask EC2 (`listed`).
                self.touch(&req.name);
                let parts = self.subnet_parts(subnet).await?;
                let chosen = match private_ip.as_deref().and_then(|ip| ip.parse().ok()) {
                    Some(ip) => parts.iter().find(|(_, r, _)| r.contains(ip)).ok_or_else(|| {
                        ProviderError::permanent(
                            "InvalidParameterValue",
                            format!("machine {}: address {ip} is in none of the subnets", req.name),
                        )
                    })?,
                    None => &parts[spread(&req.name, parts.len())],
                };
                self.run(
                    req,
                    &req.name,
                    &chosen.0,
                    firewall,
                    os,
                    size,
                    image,
                    *disk_gb,
                    private_ip.as_deref(),
                    1,
                    &req.client_token,
                    &[],
                )
                .await?
            }
        };
        let running = self.finish_instances(&ids, *ip_forwarding).await?;
        Ok(running.first().map(Self::instance_outputs).unwrap_or_default())
    }

    async fn create_machine_group(&self, req: &Request, g: &MachineGroupSpec<String>) -> R<Outputs> {
        let MachineGroupSpec {
            subnet,
            firewall,
            os,
            size,
            image,
            disk_gb,
            count,
            ip_forwarding,
            ..
        } = g;
        let parts = self.subnet_parts(subnet).await?;
        let mut zones = BTreeSet::new();
        let spread_over: Vec<&SubnetPart> = parts.iter().filter(|(_, _, z)| zones.insert(z.clone())).collect();
        let n = spread_over.len() as u32;
        let existing = self.find_instances(TAG_GROUP, &req.name, false).await?;
        let mut ids: Vec<String> = Vec::new();
        for (i, (subnet_id, _, _)) in spread_over.iter().enumerate() {
            let want = count / n + u32::from((i as u32) < count % n);
            let part = i.to_string();
            let have: Vec<String> = existing
                .iter()
                .filter(|x| tag_of(x.tags(), "hke.io/part") == Some(part.as_str()))
                .filter_map(|x| x.instance_id().map(str::to_string))
                .collect();
            ids.extend(have.iter().cloned());
            let missing = want.saturating_sub(have.len() as u32);
            if missing > 0 {
                let token = format!(
                    "{}-{i}-{}",
                    &req.client_token[..req.client_token.len().min(56)],
                    have.len()
                );
                ids.extend(
                    self.run(
                        req,
                        &req.name,
                        subnet_id,
                        firewall,
                        os,
                        size,
                        image,
                        *disk_gb,
                        None,
                        missing,
                        &token,
                        &[(TAG_GROUP, &req.name), ("hke.io/part", &part)],
                    )
                    .await?,
                );
            }
        }
        self.finish_instances(&ids, *ip_forwarding).await?;
        Ok(outputs(
            &format!("mg:{}", req.name),
            &[("count", &ids.len().to_string())],
        ))
    }

    /// Terminate and wait; `false` when every instance was terminated
    /// already (TerminateInstances answers each one's previous state).
    async fn terminate(&self, ids: Vec<String>) -> R<bool> {
        if ids.is_empty() {
            return Err(ProviderError::not_found("no instances"));
        }
        let out = self
            .ec2
            .terminate_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .map_err(|e| from_sdk(&format!("terminate {}", ids.join(",")), false, e))?;
        let was_live = out
            .terminating_instances()
            .iter()
            .any(|c| c.previous_state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated));
        if !was_live && !out.terminating_instances().is_empty() {
            return Ok(false);
        }
        // Wait, so that security groups and subnets can go next.
        self.wait_for(&format!("termination of {}", ids.join(",")), || async {
            if self.cfg.batch {
                // An instance no longer listed is gone too.
                let found = self.instances_by_id(&ids).await?;
                let done = found
                    .iter()
                    .all(|i| i.state().and_then(|s| s.name()) == Some(&InstanceStateName::Terminated));
                return Ok(done.then_some(()));
            }
            let out = self
                .ec2
                .describe_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|e| from_sdk("describe instances", false, e));
            let out = match out {
                Ok(o) => o,
                Err(e) if e.class == hke_provider_api::Class::NotFound => return Ok(Some(())),
                Err(e) => return Err(e),
            };
            let done = out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .all(|i| i.state().and_then(|s| s.name()) == Some(&InstanceStateName::Terminated));
            Ok(done.then_some(()))
        })
        .await?;
        Ok(true)
    }

    async fn delete_machine(&self, name: &str, id: Option<&str>) -> R<()> {
        self.touch(name);
        match id {
            Some(eni) if eni.starts_with("eni-") => {
                self.ec2
                    .delete_network_interface()
                    .network_interface_id(eni)
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("delete network interface {eni}"), false, e))?;
                Ok(())
            }
            Some(i) if i.starts_with("i-") => {
                // Only a live instance needs terminating: TerminateInstances
                // says whether it was (no DescribeInstances first).
                if !self.cfg.batch {
                    let live = self
                        .instances(vec![
                            filter("instance-id", &[i]),
                            filter("instance-state-name", &LIVE_STATES),
                        ])
                        .await?;
                    if live.is_empty() {
                        return Err(ProviderError::not_found(format!("instance {i}")));
                    }
                }
                if self.terminate(vec![i.to_string()]).await? {
                    Ok(())
                } else {
                    Err(ProviderError::not_found(format!("instance {i} (terminated already)")))
                }
            }
            _ => {
                let ids = self
                    .find_instances("Name", name, false)
                    .await?
                    .iter()
                    .filter_map(|i| i.instance_id().map(str::to_string))
                    .collect();
                self.terminate(ids).await.map(|_| ())
            }
        }
    }

    // ---- the tag sweep ------------------------------------------------------------

    async fn list_elb(&self, cluster: Option<&str>) -> R<Vec<Found>> {
        let lbs = self
            .elb
            .describe_load_balancers()
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| from_sdk("describe load balancers", false, e))?;
        let tgs = self
            .elb
            .describe_target_groups()
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| from_sdk("describe target groups", false, e))?;
        let mut arns: Vec<String> = lbs
            .iter()
            .flat_map(|p| p.load_balancers())
            .filter_map(|l| l.load_balancer_arn().map(str::to_string))
            .collect();
        arns.extend(
            tgs.iter()
                .flat_map(|p| p.target_groups())
                .filter_map(|t| t.target_group_arn().map(str::to_string)),
        );
        let mut found = Vec::new();
        for chunk in arns.chunks(20) {
            let out = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| from_sdk("describe load balancer tags", false, e))?;
            for d in out.tag_descriptions() {
                let tags: BTreeMap<String, String> = d
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                    .collect();
                match (tags.get(TAG_CLUSTER), cluster) {
                    (None, _) => continue,
                    (Some(have), Some(want)) if have != want => continue,
                    _ => {}
                }
                let arn = d.resource_arn().unwrap_or_default().to_string();
                found.push(Found {
                    kind: Kind::LoadBalancer,
                    name: tags.get(TAG_NAME).cloned().unwrap_or_else(|| arn.clone()),
                    id: arn,
                    tags,
                });
            }
        }
        Ok(found)
    }
}

#[derive(Clone, Copy)]
enum RouteTarget<'a> {
    Gateway(&'a str),
    Instance(&'a str),
}

/// One ingress permission as EC2 stores it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Permission {
    protocol: String,
    from: Option<i32>,
    to: Option<i32>,
    cidr: String,
}

/// A plan rule as EC2 permissions (one per source range).
fn permissions(rule: &Rule) -> Result<Vec<Permission>, String> {
    let protocol = match rule.protocol.as_str() {
        "tcp" | "udp" => rule.protocol.clone(),
        "all" | "*" => "-1".to_string(),
        other => return Err(format!("rule {}: protocol {other} is not tcp, udp or all", rule.name)),
    };
    let (from, to) = if protocol == "-1" {
        (None, None)
    } else if rule.ports == "*" {
        (Some(0), Some(65535))
    } else {
        let (a, b) = rule.ports.split_once('-').unwrap_or((&rule.ports, &rule.ports));
        let a: i32 = a
            .parse()
            .map_err(|_| format!("rule {}: bad ports {}", rule.name, rule.ports))?;
        let b: i32 = b
            .parse()
            .map_err(|_| format!("rule {}: bad ports {}", rule.name, rule.ports))?;
        (Some(a), Some(b))
    };
    Ok(rule
        .sources
        .iter()
        .map(|s| Permission {
            protocol: protocol.clone(),
            from,
            to,
            cidr: match s.as_str() {
                "*" | "Internet" | "any" => "0.0.0.0/0".to_string(),
                other => other.to_string(),
            },
        })
        .collect())
}

/// The names of a plan load balancer's network load balancer and target
/// group: the internet-facing pair, or the internal one.
pub fn nlb_names(name: &str, internal: bool) -> (String, String) {
    if internal {
        (elb_name(&format!("{name}-int")), elb_name(&format!("{name}-int-tg")))
    } else {
        (elb_name(name), elb_name(&format!("{name}-tg")))
    }
}

/// One network load balancer's description for `ensure_nlb`.
#[derive(Clone, Copy)]
struct Nlb<'a> {
    lb_name: &'a str,
    tg_name: &'a str,
    internal: bool,
    subnets: &'a [String],
    vpc: &'a str,
    port: u16,
    tags: &'a [elbv2::types::Tag],
}

/// The outputs of the internet-facing load balancer, with the internal
/// one's DNS name and target group.
fn nlb_pair_outputs(public: &Outputs, internal: &Outputs) -> Outputs {
    let mut o = public.clone();
    if let Some(dns) = internal.get(OUT_DNS_NAME) {
        o.insert(OUT_INTERNAL_DNS_NAME.into(), dns.clone());
    }
    if let Some(tg) = internal.get("targetGroup") {
        o.insert("internalTargetGroup".into(), tg.clone());
    }
    o
}

/// The public IPv4 DNS name EC2 gives a public address:
/// `ec2-203-0-113-25.compute-1.amazonaws.com` in us-east-1,
/// `ec2-203-0-113-25.REGION.compute.amazonaws.com` elsewhere (EC2 User
/// Guide, "EC2 instance hostnames, DNS names, and domains"; China regions
/// end in `amazonaws.com.cn`). With DNS hostnames on in the VPC, "requests
/// from within the VPC resolve to the private primary IPv4 address of the
/// network interface" (EC2 API reference, `PublicIpDnsNameOptions`).
pub fn public_dns_name(ip: &str, region: &str) -> String {
    let dashed = ip.replace('.', "-");
    match region {
        "us-east-1" => format!("ec2-{dashed}.compute-1.amazonaws.com"),
        r if r.starts_with("cn-") => format!("ec2-{dashed}.{r}.compute.amazonaws.com.cn"),
        r => format!("ec2-{dashed}.{r}.compute.amazonaws.com"),
    }
}

fn lb_outputs(lb: &elbv2::types::LoadBalancer, tg: &str) -> Outputs {
    let dns = lb.dns_name().unwrap_or_default();
    outputs(
        lb.load_balancer_arn().unwrap_or_default(),
        &[(OUT_DNS_NAME, dns), (OUT_ADDRESS, dns), ("targetGroup", tg)],
    )
}

#[async_trait]
impl Provider for Aws {
    fn cloud(&self) -> &str {
        "aws"
    }

    async fn create(&self, req: &Request) -> R<Outputs> {
        match &req.spec {
            Spec::Group { ssh_public_key, .. } => self.create_group(req, ssh_public_key.as_deref()).await,
            Spec::Network { cidr, .. } => self.create_network(req, cidr).await,
            Spec::Subnet { network, cidr } => self.create_subnets(req, network, cidr).await,
            Spec::Firewall { network, rules, .. } => self.create_firewall(req, network, rules).await,
            Spec::PublicAddress { .. } => self.create_address(req).await,
            Spec::LoadBalancer {
                address, subnet, port, ..
            } => self.create_load_balancer(req, address.as_deref(), subnet, *port).await,
            Spec::LbMember {
                load_balancer,
                machine,
                port,
            } => self.create_member(load_balancer, machine, *port).await,
            Spec::Route {
                network,
                destination,
                next_hop,
            } => self.create_route(network, destination, next_hop).await,
            Spec::Machine(m) => self.create_machine(req, m).await,
            Spec::MachineGroup(g) => self.create_machine_group(req, g).await,
            Spec::PlacementGroup { .. } => Err(ProviderError::permanent(
                "Unsupported",
                "placement groups are planned on Azure only",
            )),
        }
    }

    async fn read(&self, kind: Kind, name: &str) -> R<Option<Outputs>> {
        match kind {
            Kind::Group => Ok(self.find_key_pair(name).await?.map(|id| outputs(&id, &[]))),
            Kind::Network => match self.find_vpc(name, true).await? {
                Some(vpc) => self.network_outputs(&vpc).await.map(Some),
                None => Ok(None),
            },
            Kind::Subnet => {
                let s = self.find_subnets(name, true).await?;
                let parts: Option<usize> = s
                    .first()
                    .and_then(|s| tag_of(s.tags(), "hke.io/parts"))
                    .and_then(|p| p.parse().ok());
                Ok((parts == Some(s.len()) && !s.is_empty()).then(|| Self::subnet_outputs(&s)))
            }
            Kind::Firewall => Ok(self
                .find_security_group(name, true)
                .await?
                .and_then(|sg| sg.group_id().map(|id| outputs(id, &[])))),
            Kind::PublicAddress => Ok(self
                .find_address("Name", name)
                .await?
                .map(|a| Self::address_outputs(&a))),
            Kind::LoadBalancer => self.read_load_balancer(name).await,
            // Registering a target, associating an address and putting a
            // route are idempotent: a resumed run simply does them again.
            Kind::LbMember | Kind::Route | Kind::PlacementGroup => Ok(None),
            Kind::Machine => {
                let found = self.find_instances("Name", name, true).await?;
                Ok(found
                    .iter()
                    .find(|i| i.state().and_then(|s| s.name()) == Some(&InstanceStateName::Running))
                    .map(Self::instance_outputs))
            }
            Kind::MachineGroup => {
                let all = self.find_instances(TAG_GROUP, name, false).await?;
                let found: Vec<&Instance> = all
                    .iter()
                    .filter(|i| tag_of(i.tags(), TAG_COMPLETE) == Some("true"))
                    .collect();
                let all_running = found
                    .iter()
                    .all(|i| i.state().and_then(|s| s.name()) == Some(&InstanceStateName::Running));
                // Complete only when every instance was marked (the group's
                // create marks them all at once, after they run).
                let incomplete = all.len() != found.len();
                Ok((!found.is_empty() && all_running && !incomplete)
                    .then(|| outputs(&format!("mg:{name}"), &[("count", &found.len().to_string())])))
            }
        }
    }

    async fn delete(&self, kind: Kind, name: &str, id: Option<&str>) -> R<()> {
        let id = match id {
            Some(id) => id.to_string(),
            None => match self.read(kind, name).await? {
                Some(o) => o.get(OUT_ID).cloned().unwrap_or_default(),
                None if matches!(kind, Kind::Machine | Kind::MachineGroup) => String::new(),
                None => return Err(ProviderError::not_found(format!("{kind} {name}"))),
            },
        };
        match kind {
            Kind::Group => {
                if id.starts_with("group:") {
                    return Err(ProviderError::not_found(format!("{name} (nothing to delete)")));
                }
                // By name: AWS takes either, and emulators know only names.
                self.ec2
                    .delete_key_pair()
                    .key_name(name)
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("delete key pair {name}"), false, e))?;
                Ok(())
            }
            Kind::Network if id.starts_with("igw-") => self.delete_internet_gateway(&id).await,
            Kind::Network => self.delete_network(&id).await,
            Kind::Subnet => {
                let ids: Vec<&str> = id.split(',').filter(|s| !s.is_empty()).collect();
                if !ids.is_empty() {
                    self.wait_for_nlb_interfaces(&format!("subnets {id}"), filter("subnet-id", &ids))
                        .await?;
                }
                let mut deleted = false;
                for s in ids {
                    match self.ec2.delete_subnet().subnet_id(s).send().await {
                        Ok(_) => deleted = true,
                        Err(e) => Err(from_sdk(&format!("delete subnet {s}"), false, e)).done_if_not_found()?,
                    }
                }
                if let Ok(mut m) = self.subnets.lock() {
                    m.remove(&id);
                }
                if deleted {
                    Ok(())
                } else {
                    Err(ProviderError::not_found(format!("subnets {id}")))
                }
            }
            Kind::Firewall => {
                self.ec2
                    .delete_security_group()
                    .group_id(&id)
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("delete security group {name}"), false, e))?;
                Ok(())
            }
            Kind::PublicAddress => self.release_address(&id).await,
            Kind::LoadBalancer => self.delete_load_balancer(name, &id).await,
            Kind::LbMember => self.delete_member(&id).await,
            Kind::PlacementGroup => Err(ProviderError::not_found(format!("{name} (none on AWS)"))),
            Kind::Route => {
                let Some((rt, dest)) = id.strip_prefix("route:").and_then(|r| r.split_once('|')) else {
                    return Err(ProviderError::not_found(format!("route {id}")));
                };
                self.ec2
                    .delete_route()
                    .route_table_id(rt)
                    .destination_cidr_block(dest)
                    .send()
                    .await
                    .map_err(|e| from_sdk(&format!("delete route {dest} from {rt}"), false, e))?;
                Ok(())
            }
            Kind::Machine => self.delete_machine(name, (!id.is_empty()).then_some(id.as_str())).await,
            Kind::MachineGroup => {
                let group = id.strip_prefix("mg:").unwrap_or(name);
                let ids = self
                    .find_instances(TAG_GROUP, group, false)
                    .await?
                    .iter()
                    .filter_map(|i| i.instance_id().map(str::to_string))
                    .collect();
                self.terminate(ids).await.map(|_| ())
            }
        }
    }

    async fn list(&self, cluster: &str) -> R<Vec<Found>> {
        self.list_tagged(Some(cluster)).await
    }

    async fn list_all(&self) -> R<Vec<Found>> {
        self.list_tagged(None).await
    }

    async fn console_output(&self, kind: Kind, name: &str, id: &str) -> R<Vec<(String, String)>> {
        let instances: Vec<(String, String)> = match kind {
            Kind::MachineGroup => self
                .find_instances(TAG_GROUP, id.strip_prefix("mg:").unwrap_or(name), false)
                .await?
                .iter()
                .filter_map(|i| {
                    let id = i.instance_id()?.to_string();
                    // Group instances name themselves: use the EC2 host name.
                    let host = i.private_dns_name().filter(|d| !d.is_empty()).unwrap_or(&id);
                    let host = host.split('.').next().unwrap_or(host).to_string();
                    Some((host, id))
                })
                .collect(),
            _ if id.starts_with("i-") => vec![(name.to_string(), id.to_string())],
            _ => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        for (node, instance) in instances {
            let got = self
                .ec2
                .get_console_output()
                .instance_id(&instance)
                .latest(true)
                .send()
                .await
                .map_err(|e| from_sdk(&format!("console output of {node} ({instance})"), false, e))?;
            let text = got
                .output()
                .and_then(|b| {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()
                })
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            out.push((node, text));
        }
        Ok(out)
    }
}

impl Aws {
    /// Everything tagged with `cluster`, or with any cluster.
    async fn list_tagged(&self, cluster: Option<&str>) -> R<Vec<Found>> {
        let by_cluster = || match cluster {
            Some(c) => filter(&format!("tag:{TAG_CLUSTER}"), &[c]),
            None => filter("tag-key", &[TAG_CLUSTER]),
        };
        let tags_of = |tags: &[Tag]| -> BTreeMap<String, String> {
            tags.iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                .collect()
        };
        let name_of = |tags: &BTreeMap<String, String>, id: &str| {
            tags.get(TAG_NAME)
                .or_else(|| tags.get("Name"))
                .cloned()
                .unwrap_or_else(|| id.to_string())
        };
        let mut found = Vec::new();
        let push = |found: &mut Vec<Found>, kind: Kind, id: &str, tags: BTreeMap<String, String>| {
            found.push(Found {
                kind,
                name: name_of(&tags, id),
                id: id.to_string(),
                tags,
            })
        };
        // Instances (machine groups once per group) and orphaned interfaces.
        let mut groups = BTreeSet::new();
        for i in self
            .instances(vec![by_cluster(), filter("instance-state-name", &LIVE_STATES)])
            .await?
        {
            let tags = tags_of(i.tags());
            match tags.get(TAG_GROUP).cloned() {
                Some(g) => {
                    if groups.insert(g.clone()) {
                        found.push(Found {
                            kind: Kind::MachineGroup,
                            name: g.clone(),
                            id: format!("mg:{g}"),
                            tags,
                        });
                    }
                }
                None => push(&mut found, Kind::Machine, i.instance_id().unwrap_or_default(), tags),
            }
        }
        let enis = self
            .ec2
            .describe_network_interfaces()
            .filters(by_cluster())
            .filters(filter("status", &["available"]))
            .send()
            .await
            .map_err(|e| from_sdk("describe network interfaces", false, e))?;
        for n in enis.network_interfaces() {
            let id = n.network_interface_id().unwrap_or_default();
            found.push(Found {
                kind: Kind::Machine,
                name: id.to_string(),
                id: id.to_string(),
                tags: tags_of(n.tag_set()),
            });
        }
        found.extend(self.list_elb(cluster).await?);
        let eips = self
            .ec2
            .describe_addresses()
            .filters(by_cluster())
            .send()
            .await
            .map_err(|e| from_sdk("describe addresses", false, e))?;
        for a in eips.addresses() {
            push(
                &mut found,
                Kind::PublicAddress,
                a.allocation_id().unwrap_or_default(),
                tags_of(a.tags()),
            );
        }
        let sgs = self
            .ec2
            .describe_security_groups()
            .filters(by_cluster())
            .send()
            .await
            .map_err(|e| from_sdk("describe security groups", false, e))?;
        for g in sgs.security_groups() {
            push(
                &mut found,
                Kind::Firewall,
                g.group_id().unwrap_or_default(),
                tags_of(g.tags()),
            );
        }
        // Subnets: the parts of one plan subnet as one resource.
        let subnets = self
            .ec2
            .describe_subnets()
            .filters(by_cluster())
            .send()
            .await
            .map_err(|e| from_sdk("describe subnets", false, e))?;
        let mut by_name: BTreeMap<(String, String), Vec<SubnetOf>> = BTreeMap::new();
        for s in subnets.subnets() {
            let tags = tags_of(s.tags());
            let id = s.subnet_id().unwrap_or_default().to_string();
            let part = tags.get("hke.io/part").and_then(|p| p.parse().ok()).unwrap_or(0);
            let owner = tags.get(TAG_CLUSTER).cloned().unwrap_or_default();
            by_name
                .entry((owner, name_of(&tags, &id)))
                .or_default()
                .push((part, id, tags));
        }
        for ((_, name), mut parts) in by_name {
            parts.sort();
            let id = parts.iter().map(|(_, id, _)| id.as_str()).collect::<Vec<_>>().join(",");
            let tags = parts.into_iter().next().map(|(_, _, t)| t).unwrap_or_default();
            found.push(Found {
                kind: Kind::Subnet,
                name,
                id,
                tags,
            });
        }
        let vpcs = self
            .ec2
            .describe_vpcs()
            .filters(by_cluster())
            .send()
            .await
            .map_err(|e| from_sdk("describe VPCs", false, e))?;
        let mut vpc_ids = BTreeSet::new();
        for v in vpcs.vpcs() {
            let id = v.vpc_id().unwrap_or_default();
            vpc_ids.insert(id.to_string());
            push(&mut found, Kind::Network, id, tags_of(v.tags()));
        }
        // Gateways whose VPC is gone or not the cluster's.
        let igws = self
            .ec2
            .describe_internet_gateways()
            .filters(by_cluster())
            .send()
            .await
            .map_err(|e| from_sdk("describe internet gateways", false, e))?;
        for g in igws.internet_gateways() {
            let attached_to_ours = g
                .attachments()
                .iter()
                .any(|a| a.vpc_id().is_some_and(|v| vpc_ids.contains(v)));
            if !attached_to_ours {
                let id = g.internet_gateway_id().unwrap_or_default();
                let tags = tags_of(g.tags());
                found.push(Found {
                    kind: Kind::Network,
                    name: tags.get("Name").cloned().unwrap_or_else(|| id.to_string()),
                    id: id.to_string(),
                    tags,
                });
            }
        }
        let kps = self
            .ec2
            .describe_key_pairs()
            .filters(by_cluster())
            .send()
            .await
            .map_err(|e| from_sdk("describe key pairs", false, e))?;
        for k in kps.key_pairs() {
            push(
                &mut found,
                Kind::Group,
                k.key_pair_id().unwrap_or_default(),
                tags_of(k.tags()),
            );
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_become_permissions() {
        let r = Rule {
            name: "apiserver".into(),
            protocol: "tcp".into(),
            ports: "6443".into(),
            sources: vec!["0.0.0.0/0".into(), "10.0.0.0/8".into()],
        };
        let p = permissions(&r).expect("valid");
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].from, p[0].to), (Some(6443), Some(6443)));
        let all = Rule {
            name: "nodes".into(),
            protocol: "all".into(),
            ports: "*".into(),
            sources: vec!["*".into()],
        };
        let p = permissions(&all).expect("valid");
        assert_eq!(p[0].protocol, "-1");
        assert_eq!(p[0].cidr, "0.0.0.0/0");
        assert_eq!(p[0].from, None);
        let range = Rule {
            ports: "30000-32767".into(),
            ..r.clone()
        };
        assert_eq!(permissions(&range).expect("valid")[0].to, Some(32767));
        let bad = Rule {
            protocol: "icmp".into(),
            ..r
        };
        assert!(permissions(&bad).expect_err("icmp").contains("icmp"));
    }
}
