//! The SDK mapping: AWS error responses, as the SDK parses them from the wire
//! format (EC2's and ELBv2's XML), become classified provider errors. Driven
//! through the provider with aws-smithy-mocks clients.

use aws_sdk_ec2::operation::describe_addresses::DescribeAddressesOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use hke_provider_api::{Class, Kind, LeftBehind, Provider};
use hke_provider_aws::{Aws, AwsConfig};

fn ec2_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>4f1c6d0e-test</RequestID></Response>"#
        )),
    )
}

fn elb_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(format!(
            r#"<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>9a1b-test</RequestId>
</ErrorResponse>"#
        )),
    )
}

fn provider(ec2: aws_sdk_ec2::Client, elb: aws_sdk_elasticloadbalancingv2::Client) -> Aws {
    Aws::with_clients(AwsConfig::new("c1", Some("us-west-2")), ec2, elb)
}

fn no_elb() -> aws_sdk_elasticloadbalancingv2::Client {
    let none: [&aws_smithy_mocks::Rule; 0] = [];
    mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, none)
}

#[tokio::test]
async fn dependency_violation_on_delete_is_transient_and_names_the_resource() {
    let rule = mock!(aws_sdk_ec2::Client::delete_security_group)
        .then_http_response(|| ec2_error(400, "DependencyViolation", "resource sg-0123 has a dependent object"));
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&rule]);
    let e = provider(ec2, no_elb())
        .delete(Kind::Firewall, "c1-nsg", Some("sg-0123"))
        .await
        .expect_err("dependency violation");
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(e.code.as_deref(), Some("DependencyViolation"));
    assert!(e.message.contains("delete security group c1-nsg"), "{}", e.message);
    assert_eq!(rule.num_calls(), 1, "the provider does not retry by itself");
}

#[tokio::test]
async fn a_missing_security_group_is_not_found() {
    let rule = mock!(aws_sdk_ec2::Client::delete_security_group).then_http_response(|| {
        ec2_error(
            400,
            "InvalidGroup.NotFound",
            "The security group 'sg-0123' does not exist",
        )
    });
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&rule]);
    let e = provider(ec2, no_elb())
        .delete(Kind::Firewall, "c1-nsg", Some("sg-0123"))
        .await
        .expect_err("not found");
    assert_eq!(e.class, Class::NotFound);
}

#[tokio::test]
async fn throttling_is_transient() {
    for code in ["RequestLimitExceeded", "Throttling"] {
        let rule = mock!(aws_sdk_ec2::Client::describe_vpcs)
            .then_http_response(move || ec2_error(503, code, "Request limit exceeded."));
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&rule]);
        let e = provider(ec2, no_elb())
            .read(Kind::Network, "c1-vnet")
            .await
            .expect_err("throttled");
        assert!(e.is_transient(), "{code}: {e:?}");
        assert_eq!(e.code.as_deref(), Some(code));
    }
}

#[tokio::test]
async fn missing_permissions_are_permanent_with_a_hint() {
    let rule = mock!(aws_sdk_ec2::Client::describe_instances).then_http_response(|| {
        ec2_error(
            403,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        )
    });
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&rule]);
    let e = provider(ec2, no_elb())
        .read(Kind::Machine, "k8s-master-0")
        .await
        .expect_err("denied");
    // A credentials problem (exit 3), not retried.
    assert_eq!(e.class, Class::Credentials);
    assert!(!e.is_transient());
    assert!(e.message.contains("lacks this permission"), "{}", e.message);
}

#[tokio::test]
async fn server_errors_without_a_modelled_body_are_transient() {
    let rule = mock!(aws_sdk_ec2::Client::describe_vpcs)
        .then_http_response(|| HttpResponse::new(StatusCode::try_from(502).expect("s"), SdkBody::from("bad gateway")));
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&rule]);
    let e = provider(ec2, no_elb())
        .read(Kind::Network, "c1-vnet")
        .await
        .expect_err("502");
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(e.left_behind, LeftBehind::Nothing, "a read leaves nothing behind");
}

#[tokio::test]
async fn a_missing_load_balancer_reads_as_absent() {
    let addresses =
        mock!(aws_sdk_ec2::Client::describe_addresses).then_output(|| DescribeAddressesOutput::builder().build());
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&addresses]);
    let lbs = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_load_balancers)
        .then_http_response(|| elb_error(400, "LoadBalancerNotFound", "One or more load balancers not found"));
    let elb = mock_client!(aws_sdk_elasticloadbalancingv2, RuleMode::MatchAny, [&lbs]);
    let got = provider(ec2, elb)
        .read(Kind::LoadBalancer, "c1-apiserver")
        .await
        .expect("absent is not an error");
    assert_eq!(got, None);
    assert_eq!(lbs.num_calls(), 1);
}

#[tokio::test]
async fn a_machine_found_by_its_tags_is_not_created_again() {
    // After a crash the instance exists but was never recorded: the create
    // finds it by its Name tag and only waits for it.
    let instance = || {
        aws_sdk_ec2::types::Instance::builder()
            .instance_id("i-0abc")
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("Name")
                    .value("k8s-master-0")
                    .build(),
            )
            .private_ip_address("10.240.0.4")
            .state(
                aws_sdk_ec2::types::InstanceState::builder()
                    .name(aws_sdk_ec2::types::InstanceStateName::Running)
                    .build(),
            )
            .build()
    };
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_output(move || {
        DescribeInstancesOutput::builder()
            .reservations(aws_sdk_ec2::types::Reservation::builder().instances(instance()).build())
            .build()
    });
    let run = mock!(aws_sdk_ec2::Client::run_instances)
        .then_http_response(|| ec2_error(500, "InternalError", "must not be called"));
    let tag = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&describe, &run, &tag]);
    let req = hke_provider_api::Request {
        logical_id: "machine/k8s-master-0".into(),
        name: "k8s-master-0".into(),
        spec: hke_provider_api::Spec::Machine(hke_provider_api::MachineSpec {
            subnet: "subnet-1".into(),
            firewall: "sg-1".into(),
            os: hke_provider_api::Os::Linux,
            size: "m5.large".into(),
            image: hke_provider_api::Image {
                name: "ubuntu-24.04".into(),
                lookup: Default::default(),
            },
            disk_gb: 30,
            private_ip: Some("10.240.0.4".into()),
            placement: None,
            ip_forwarding: false,
            pod_ips: 0,
            bootstrap_inputs: Default::default(),
        }),
        tags: Default::default(),
        references: vec![],
        client_token: "tok".into(),
        user_data: Some("#cloud-config\n".into()),
        login: None,
    };
    let out = provider(ec2, no_elb()).create(&req).await.expect("adopted");
    assert_eq!(out.get("id").map(String::as_str), Some("i-0abc"));
    assert_eq!(out.get("privateIp").map(String::as_str), Some("10.240.0.4"));
    assert_eq!(run.num_calls(), 0);
    assert_eq!(tag.num_calls(), 1, "marked complete");
}

/// A provider that polls every few milliseconds.
fn quick(ec2: aws_sdk_ec2::Client) -> Aws {
    let mut cfg = AwsConfig::new("c1", Some("us-west-2"));
    cfg.poll = std::time::Duration::from_millis(5);
    Aws::with_clients(cfg, ec2, no_elb())
}

type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// DescribeNetworkInterfaces for the NLB's interfaces (description
/// `ELB net/*` and `scope`): two answers with one, then none.
fn nlb_interfaces(log: &Log, scope: &'static str, values: &'static [&'static str]) -> aws_smithy_mocks::Rule {
    use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
    let (l1, l2) = (log.clone(), log.clone());
    mock!(aws_sdk_ec2::Client::describe_network_interfaces)
        .match_requests(move |r| {
            let has = |name: &str, want: &[&str]| {
                r.filters()
                    .iter()
                    .any(|f| f.name() == Some(name) && f.values().iter().map(String::as_str).eq(want.iter().copied()))
            };
            has("description", &["ELB net/*"]) && has(scope, values)
        })
        .sequence()
        .output(move || {
            l1.lock().expect("log").push("interface there".into());
            DescribeNetworkInterfacesOutput::builder()
                .network_interfaces(
                    aws_sdk_ec2::types::NetworkInterface::builder()
                        .network_interface_id("eni-0nlb")
                        .description("ELB net/c1-apiserver/50dc6c495c0c9188")
                        .build(),
                )
                .build()
        })
        .times(2)
        .output(move || {
            l2.lock().expect("log").push("interface gone".into());
            DescribeNetworkInterfacesOutput::builder().build()
        })
        .repeatedly()
        .build()
}

#[tokio::test]
async fn subnets_go_only_after_the_load_balancers_interfaces() {
    // AWS releases an NLB's interfaces minutes after the NLB; moto has no
    // such interfaces, so the waiting is checked here against mocks.
    let log: Log = Default::default();
    let enis = nlb_interfaces(&log, "subnet-id", &["subnet-a", "subnet-b"]);
    let l = log.clone();
    let delete = mock!(aws_sdk_ec2::Client::delete_subnet).then_compute_output(move |r| {
        l.lock()
            .expect("log")
            .push(format!("delete {}", r.subnet_id().unwrap_or_default()));
        aws_sdk_ec2::operation::delete_subnet::DeleteSubnetOutput::builder().build()
    });
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&enis, &delete]);
    quick(ec2)
        .delete(Kind::Subnet, "c1-nodes", Some("subnet-a,subnet-b"))
        .await
        .expect("deleted");
    assert_eq!(
        *log.lock().expect("log"),
        vec![
            "interface there",
            "interface there",
            "interface gone",
            "delete subnet-a",
            "delete subnet-b"
        ]
    );
}

#[tokio::test]
async fn the_gateway_is_detached_only_after_the_load_balancers_interfaces() {
    use aws_sdk_ec2::operation::{
        delete_internet_gateway::DeleteInternetGatewayOutput, delete_vpc::DeleteVpcOutput,
        describe_internet_gateways::DescribeInternetGatewaysOutput, describe_route_tables::DescribeRouteTablesOutput,
        detach_internet_gateway::DetachInternetGatewayOutput,
    };
    let log: Log = Default::default();
    let enis = nlb_interfaces(&log, "vpc-id", &["vpc-1"]);
    let rts =
        mock!(aws_sdk_ec2::Client::describe_route_tables).then_output(|| DescribeRouteTablesOutput::builder().build());
    let igws = mock!(aws_sdk_ec2::Client::describe_internet_gateways).then_output(|| {
        DescribeInternetGatewaysOutput::builder()
            .internet_gateways(
                aws_sdk_ec2::types::InternetGateway::builder()
                    .internet_gateway_id("igw-1")
                    .attachments(
                        aws_sdk_ec2::types::InternetGatewayAttachment::builder()
                            .vpc_id("vpc-1")
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let l = log.clone();
    let detach = mock!(aws_sdk_ec2::Client::detach_internet_gateway).then_output(move || {
        l.lock().expect("log").push("detach".into());
        DetachInternetGatewayOutput::builder().build()
    });
    let delete_igw = mock!(aws_sdk_ec2::Client::delete_internet_gateway)
        .then_output(|| DeleteInternetGatewayOutput::builder().build());
    let delete_vpc = mock!(aws_sdk_ec2::Client::delete_vpc).then_output(|| DeleteVpcOutput::builder().build());
    let ec2 = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&enis, &rts, &igws, &detach, &delete_igw, &delete_vpc]
    );
    quick(ec2)
        .delete(Kind::Network, "c1-vnet", Some("vpc-1"))
        .await
        .expect("deleted");
    assert_eq!(
        *log.lock().expect("log"),
        vec!["interface there", "interface there", "interface gone", "detach"]
    );
    assert_eq!(delete_vpc.num_calls(), 1);
}

/// Twenty machines created at once: their lookups, waits and reads go out
/// as a few DescribeInstances, not one (or more) each.
#[tokio::test]
async fn machines_created_together_share_their_describe_calls() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    const N: usize = 20;
    let running = |k: usize| {
        aws_sdk_ec2::types::Instance::builder()
            .instance_id(format!("i-{k:04}"))
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("Name")
                    .value(format!("m{k}"))
                    .build(),
            )
            .private_ip_address(format!("10.240.0.{}", 10 + k))
            .state(
                aws_sdk_ec2::types::InstanceState::builder()
                    .name(aws_sdk_ec2::types::InstanceStateName::Running)
                    .build(),
            )
            .build()
    };
    let by_id = mock!(aws_sdk_ec2::Client::describe_instances)
        .match_requests(|r| r.filters().iter().any(|f| f.name() == Some("instance-id")))
        .then_output(move || {
            DescribeInstancesOutput::builder()
                .reservations(
                    aws_sdk_ec2::types::Reservation::builder()
                        .set_instances(Some((0..N).map(running).collect()))
                        .build(),
                )
                .build()
        });
    // Before any create: the cluster has no instances.
    let listing =
        mock!(aws_sdk_ec2::Client::describe_instances).then_output(|| DescribeInstancesOutput::builder().build());
    let next = Arc::new(AtomicUsize::new(0));
    let run = mock!(aws_sdk_ec2::Client::run_instances).then_output(move || {
        let k = next.fetch_add(1, Ordering::SeqCst);
        aws_sdk_ec2::operation::run_instances::RunInstancesOutput::builder()
            .instances(
                aws_sdk_ec2::types::Instance::builder()
                    .instance_id(format!("i-{k:04}"))
                    .build(),
            )
            .build()
    });
    let subnets = mock!(aws_sdk_ec2::Client::describe_subnets).then_output(|| {
        aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput::builder()
            .subnets(
                aws_sdk_ec2::types::Subnet::builder()
                    .subnet_id("subnet-1")
                    .cidr_block("10.240.0.0/18")
                    .availability_zone("us-west-2a")
                    .build(),
            )
            .build()
    });
    let images = mock!(aws_sdk_ec2::Client::describe_images).then_output(|| {
        aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder()
            .images(
                aws_sdk_ec2::types::Image::builder()
                    .image_id("ami-1")
                    .root_device_name("/dev/sda1")
                    .build(),
            )
            .build()
    });
    let tag = mock!(aws_sdk_ec2::Client::create_tags)
        .then_output(|| aws_sdk_ec2::operation::create_tags::CreateTagsOutput::builder().build());
    let ec2 = mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&by_id, &listing, &run, &subnets, &images, &tag]
    );
    let aws = Arc::new(quick(ec2));
    let mut tasks = Vec::new();
    for k in 0..N {
        let aws = aws.clone();
        tasks.push(tokio::spawn(async move {
            let req = hke_provider_api::Request {
                logical_id: format!("machine/m{k}"),
                name: format!("m{k}"),
                spec: hke_provider_api::Spec::Machine(hke_provider_api::MachineSpec {
                    subnet: "subnet-1".into(),
                    firewall: "sg-1".into(),
                    os: hke_provider_api::Os::Linux,
                    size: "m5.large".into(),
                    image: hke_provider_api::Image {
                        name: "ubuntu-24.04".into(),
                        lookup: Default::default(),
                    },
                    disk_gb: 30,
                    private_ip: None,
                    placement: None,
                    ip_forwarding: false,
                    pod_ips: 0,
                    bootstrap_inputs: Default::default(),
                }),
                tags: Default::default(),
                references: vec![],
                client_token: format!("tok-{k}"),
                user_data: Some("#cloud-config\n".into()),
                login: None,
            };
            aws.create(&req).await.expect("created")
        }));
    }
    for (k, t) in tasks.into_iter().enumerate() {
        let out = t.await.expect("task");
        assert!(out.get("id").is_some_and(|id| id.starts_with("i-")), "m{k}: {out:?}");
    }
    assert_eq!(run.num_calls(), N);
    // One listing for the lookups, and a few rounds of waits (two polls
    // apart), where one call per instance would be 2 × 20.
    let describes = by_id.num_calls() + listing.num_calls();
    assert_eq!(listing.num_calls(), 1, "the lookups share one listing");
    assert!(describes <= 6, "{describes} DescribeInstances for {N} machines");
}
