//! The ARM client (azure_core's real pipeline) against the fake Resource
//! Manager: long-running operations, and how ARM's errors are classified.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::{Transport, Url};
use hke_fake_arm::{Config, FakeArm, PutMatch, Retryable, TOKEN};
use hke_provider_api::{Class, LeftBehind};
use hke_provider_azure::arm::Arm;
use hke_provider_azure::models::{API_COMPUTE, API_NETWORK, API_RESOURCES};
use serde_json::json;

/// The fake's token, without an identity endpoint (the e2e tests use the
/// real client-secret credential).
#[derive(Debug)]
struct FakeToken;

#[async_trait::async_trait]
impl TokenCredential for FakeToken {
    async fn get_token(&self, _: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            Secret::new(TOKEN),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

struct Env {
    fake: FakeArm,
    arm: Arm,
    rg: String,
    _ca: tempfile::NamedTempFile,
}

async fn start(config: Config) -> Env {
    let sub = config.subscription.clone();
    let fake = FakeArm::start(config).await.expect("fake");
    let ca = tempfile::NamedTempFile::new().expect("ca");
    std::fs::write(ca.path(), fake.ca_pem()).expect("ca");
    let http = hke_provider_azure::http_client(Some(&ca.path().to_path_buf())).expect("client");
    let arm = Arm::new(
        Url::parse(&format!("{}/", fake.url())).expect("url"),
        Arc::new(FakeToken),
        format!("{}/.default", fake.url()),
        Transport::new(Arc::new(http.clone())),
        http,
        Duration::from_millis(20),
    );
    let rg = format!("/subscriptions/{sub}/resourceGroups/rg1");
    Env { fake, arm, rg, _ca: ca }
}

#[tokio::test]
async fn puts_follow_their_operation_and_errors_are_classified() {
    let e = start(Config {
        operation_time: Duration::from_millis(200),
        fail_once: vec!["doomed".into()],
        ..Config::default()
    })
    .await;
    let arm = &e.arm;
    // A resource in a group that does not exist: 404 ResourceGroupNotFound.
    let vnet = format!("{}/providers/Microsoft.Network/virtualNetworks/v1", e.rg);
    let body = json!({"location": "westus2", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}});
    let err = arm.put(&vnet, API_NETWORK, &body).await.expect_err("no group");
    assert_eq!(err.class, Class::NotFound);
    assert_eq!(err.code.as_deref(), Some("ResourceGroupNotFound"));
    arm.put(&e.rg, API_RESOURCES, &json!({"location": "westus2"}))
        .await
        .expect("group");

    // The PUT answers 201 Creating; `put` returns once it succeeded.
    let v = arm.put(&vnet, API_NETWORK, &body).await.expect("vnet");
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    let polls = e
        .fake
        .calls()
        .iter()
        .filter(|c| c.path.contains("/operations/"))
        .count();
    assert!(polls >= 2, "followed the operation ({polls} polls)");

    // A child of a missing parent: 404 ParentResourceNotFound.
    let orphan = format!("{}/providers/Microsoft.Network/virtualNetworks/nope/subnets/s", e.rg);
    let err = arm
        .put(
            &orphan,
            API_NETWORK,
            &json!({"properties": {"addressPrefix": "10.0.0.0/24"}}),
        )
        .await
        .expect_err("no parent");
    assert_eq!(err.code.as_deref(), Some("ParentResourceNotFound"));

    // A body missing a required property: 400 InvalidParameter, permanent.
    let subnet = format!("{vnet}/subnets/s1");
    let err = arm
        .put(&subnet, API_NETWORK, &json!({"properties": {}}))
        .await
        .expect_err("no prefix");
    assert_eq!(err.class, Class::Permanent);
    assert_eq!(err.code.as_deref(), Some("InvalidParameter"));
    assert!(err.message.contains("addressPrefix"), "{err}");
    arm.put(
        &subnet,
        API_NETWORK,
        &json!({"properties": {"addressPrefix": "10.0.1.0/24"}}),
    )
    .await
    .expect("subnet");

    // A reference to something missing: 400 InvalidResourceReference.
    let nic = format!("{}/providers/Microsoft.Network/networkInterfaces/n1", e.rg);
    let nsg = format!("{}/providers/Microsoft.Network/networkSecurityGroups/g1", e.rg);
    let nic_body = json!({"location": "westus2", "properties": {
        "networkSecurityGroup": {"id": nsg},
        "ipConfigurations": [{"name": "ip", "properties": {"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic"}}]}});
    let err = arm.put(&nic, API_NETWORK, &nic_body).await.expect_err("no nsg");
    assert_eq!(err.code.as_deref(), Some("InvalidResourceReference"));
    arm.put(
        &nsg,
        API_NETWORK,
        &json!({"location": "westus2", "properties": {"securityRules": []}}),
    )
    .await
    .expect("nsg");
    let nic_v = arm.put(&nic, API_NETWORK, &nic_body).await.expect("nic");
    assert_eq!(
        nic_v["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"],
        "10.0.1.4"
    );

    // Deleting what a NIC still uses: 409, transient (it clears when the
    // NIC goes).
    let err = arm.delete(&nsg, API_NETWORK).await.expect_err("in use");
    assert_eq!(err.code.as_deref(), Some("InUseNetworkSecurityGroupCannotBeDeleted"));
    assert!(err.is_transient(), "{err}");
    arm.delete(&nic, API_NETWORK).await.expect("nic deleted");
    arm.delete(&nsg, API_NETWORK).await.expect("nsg deleted");
    // A missing resource in an existing group: 204, done.
    arm.delete(&nsg, API_NETWORK).await.expect("already gone");

    // An operation that fails: ARM's code, and what it left behind.
    let avset = format!("{}/providers/Microsoft.Compute/availabilitySets/doomed", e.rg);
    let err = arm
        .put(&avset, API_COMPUTE, &json!({"location": "westus2", "properties": {}}))
        .await
        .expect_err("fails");
    assert_eq!(err.code.as_deref(), Some("AllocationFailed"));
    assert_eq!(err.left_behind, LeftBehind::Something(avset.clone()));

    // Deleting the group takes everything in it.
    arm.delete(&e.rg, API_RESOURCES).await.expect("group deleted");
    assert!(e.fake.resources().is_empty());
    let err = arm.delete(&e.rg, API_RESOURCES).await.expect_err("gone");
    assert_eq!(err.class, Class::NotFound);
}

#[tokio::test]
async fn throttled_requests_wait_what_retry_after_says() {
    let e = start(Config {
        throttle_every: Some(2),
        throttle_retry_after_secs: 1,
        operation_time: Duration::ZERO,
        ..Config::default()
    })
    .await;
    let started = std::time::Instant::now();
    e.arm
        .put(&e.rg, API_RESOURCES, &json!({"location": "westus2"}))
        .await
        .expect("group through a 429");
    let calls = e.fake.calls();
    let throttled: Vec<_> = calls.iter().filter(|c| c.status == 429).collect();
    assert!(!throttled.is_empty());
    for t in throttled {
        if let Some(next) = calls
            .iter()
            .find(|c| c.at > t.at && c.path == t.path && c.method == t.method)
        {
            assert!(next.at.duration_since(t.at) >= Duration::from_secs(1));
        }
    }
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn requests_without_the_token_are_refused() {
    let e = start(Config::default()).await;
    let http = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(e.fake.ca_pem().as_bytes()).expect("pem"))
        .build()
        .expect("client");
    let r = http
        .get(format!("{}{}?api-version=2021-04-01", e.fake.url(), e.rg))
        .send()
        .await
        .expect("reply");
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn a_put_without_an_operation_waits_for_the_provisioning_state() {
    let e = start(Config {
        operation_time: Duration::from_millis(300),
        async_header: false,
        ..Config::default()
    })
    .await;
    e.arm
        .put(&e.rg, API_RESOURCES, &json!({"location": "westus2"}))
        .await
        .expect("group");
    let set = format!("{}/providers/Microsoft.Compute/availabilitySets/a1", e.rg);
    let started = std::time::Instant::now();
    let v = e
        .arm
        .put(&set, API_COMPUTE, &json!({"location": "westus2", "properties": {}}))
        .await
        .expect("set");
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// A group, VNet and subnet to put NICs in.
async fn network(e: &Env) -> String {
    e.arm
        .put(&e.rg, API_RESOURCES, &json!({"location": "westus2"}))
        .await
        .expect("group");
    let vnet = format!("{}/providers/Microsoft.Network/virtualNetworks/v1", e.rg);
    e.arm
        .put(
            &vnet,
            API_NETWORK,
            &json!({"location": "westus2", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}),
        )
        .await
        .expect("vnet");
    let subnet = format!("{vnet}/subnets/s1");
    e.arm
        .put(
            &subnet,
            API_NETWORK,
            &json!({"properties": {"addressPrefix": "10.0.1.0/24"}}),
        )
        .await
        .expect("subnet");
    subnet
}

#[tokio::test]
async fn an_operation_that_fails_with_a_retryable_error_is_transient_and_a_second_put_succeeds() {
    let e = start(Config {
        operation_time: Duration::from_millis(50),
        retryable: vec![
            Retryable::not_provisioned(PutMatch::Type("Microsoft.Network/networkInterfaces".into())),
            Retryable::another_operation(PutMatch::Name("a1".into())),
            Retryable {
                when: PutMatch::Name("a2".into()),
                code: "AllocationFailed".into(),
                detail: None,
            },
        ],
        ..Config::default()
    })
    .await;
    let subnet = network(&e).await;
    let nic = format!("{}/providers/Microsoft.Network/networkInterfaces/n1", e.rg);
    let body = json!({"location": "westus2", "properties": {
        "ipConfigurations": [{"name": "ip", "properties": {"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic"}}]}});
    // The operation ends Failed with RetryableError /
    // ReferencedResourceNotProvisioned: transient, like a 429, and the NIC
    // was left behind (in provisioningState Failed) for the next PUT.
    let err = e.arm.put(&nic, API_NETWORK, &body).await.expect_err("fails once");
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.code.as_deref(), Some("RetryableError"));
    assert!(err.message.contains("ReferencedResourceNotProvisioned"), "{err}");
    assert_eq!(err.left_behind, LeftBehind::Something(nic.clone()));
    let v = e
        .arm
        .put(&nic, API_NETWORK, &body)
        .await
        .expect("the second PUT succeeds");
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");

    // AnotherOperationInProgress as an operation's end: transient too.
    let set = |n: &str| format!("{}/providers/Microsoft.Compute/availabilitySets/{n}", e.rg);
    let avset = json!({"location": "westus2", "properties": {}});
    let err = e
        .arm
        .put(&set("a1"), API_COMPUTE, &avset)
        .await
        .expect_err("fails once");
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.code.as_deref(), Some("AnotherOperationInProgress"));
    e.arm.put(&set("a1"), API_COMPUTE, &avset).await.expect("second PUT");

    // Any other failed operation stays permanent.
    let err = e.arm.put(&set("a2"), API_COMPUTE, &avset).await.expect_err("fails");
    assert!(!err.is_transient(), "{err}");
    assert_eq!(err.code.as_deref(), Some("AllocationFailed"));
}

#[tokio::test]
async fn operation_not_allowed_is_transient_only_while_something_is_in_use() {
    let e = start(Config {
        operation_time: Duration::ZERO,
        ..Config::default()
    })
    .await;
    e.arm
        .put(&e.rg, API_RESOURCES, &json!({"location": "westus2"}))
        .await
        .expect("group");
    let avset = format!("{}/providers/Microsoft.Compute/availabilitySets/a1", e.rg);
    e.arm
        .put(&avset, API_COMPUTE, &json!({"location": "westus2", "properties": {}}))
        .await
        .expect("set");
    let vm = format!("{}/providers/Microsoft.Compute/virtualMachines/m1", e.rg);
    e.fake.seed(
        &vm,
        json!({"name": "m1", "location": "westus2", "type": "Microsoft.Compute/virtualMachines",
               "properties": {"availabilitySet": {"id": avset}, "provisioningState": "Succeeded"}}),
    );
    // Compute refuses to delete a set that holds a VM with 409
    // OperationNotAllowed; it clears when the VM goes.
    let err = e.arm.delete(&avset, API_COMPUTE).await.expect_err("in use");
    assert_eq!(err.code.as_deref(), Some("OperationNotAllowed"));
    assert!(err.message.contains("does not contain any VM"), "{err}");
    assert!(err.is_transient(), "{err}");
    e.arm.delete(&vm, API_COMPUTE).await.expect("vm deleted");
    e.arm.delete(&avset, API_COMPUTE).await.expect("set deleted");
}

#[tokio::test]
async fn scale_sets_and_availability_sets_are_held_to_computes_limits() {
    let e = start(Config {
        operation_time: Duration::ZERO,
        ..Config::default()
    })
    .await;
    e.arm
        .put(&e.rg, API_RESOURCES, &json!({"location": "westus2"}))
        .await
        .expect("group");
    let vmss = format!("{}/providers/Microsoft.Compute/virtualMachineScaleSets/s1", e.rg);
    let body = |capacity: u32, single: Option<bool>| {
        let mut b = json!({"location": "westus2", "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
                           "properties": {"orchestrationMode": "Uniform"}});
        if let Some(s) = single {
            b["properties"]["singlePlacementGroup"] = json!(s);
        }
        b
    };
    // One placement group (the default) holds 100 VMs.
    e.arm.put(&vmss, API_COMPUTE, &body(100, None)).await.expect("100 fit");
    for b in [body(101, None), body(101, Some(true))] {
        let err = e
            .arm
            .put(&vmss, API_COMPUTE, &b)
            .await
            .expect_err("101 in one placement group");
        assert_eq!(err.code.as_deref(), Some("InvalidParameter"));
        assert!(!err.is_transient());
        assert!(err.message.contains("sku.capacity"), "{err}");
    }
    e.arm
        .put(&vmss, API_COMPUTE, &body(1000, Some(false)))
        .await
        .expect("1,000 over several placement groups");
    let err = e
        .arm
        .put(&vmss, API_COMPUTE, &body(1001, Some(false)))
        .await
        .expect_err("over 1,000");
    assert_eq!(err.code.as_deref(), Some("InvalidParameter"));

    // An availability set holds 200 VMs: the 201st is refused.
    let avset = format!("{}/providers/Microsoft.Compute/availabilitySets/a1", e.rg);
    e.arm
        .put(&avset, API_COMPUTE, &json!({"location": "westus2", "properties": {}}))
        .await
        .expect("set");
    for i in 0..200 {
        let vm = format!("{}/providers/Microsoft.Compute/virtualMachines/m{i}", e.rg);
        e.fake.seed(
            &vm,
            json!({"name": format!("m{i}"), "type": "Microsoft.Compute/virtualMachines",
                   "properties": {"availabilitySet": {"id": avset}, "provisioningState": "Succeeded"}}),
        );
    }
    let vm = format!("{}/providers/Microsoft.Compute/virtualMachines/m200", e.rg);
    let vm_body = json!({"location": "westus2", "properties": {
        "hardwareProfile": {"vmSize": "Standard_D2s_v3"},
        "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}},
        "osProfile": {"computerName": "m200", "adminUsername": "azureuser",
                      "linuxConfiguration": {"ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": "ssh-ed25519 AAAA"}]}}},
        "networkProfile": {"networkInterfaces": [{"id": format!("{}/providers/Microsoft.Network/networkInterfaces/n200", e.rg)}]},
        "availabilitySet": {"id": avset}}});
    let err = e.arm.put(&vm, API_COMPUTE, &vm_body).await.expect_err("a full set");
    assert_eq!(err.code.as_deref(), Some("InvalidParameter"));
    assert!(err.message.contains("at most 200"), "{err}");
}

#[tokio::test]
async fn lists_filtered_by_tag_name_and_value_carry_no_tags() {
    let e = start(Config {
        operation_time: Duration::ZERO,
        ..Config::default()
    })
    .await;
    let tags = json!({"hke.io_cluster": "c1", "owner": "team"});
    e.arm
        .put(&e.rg, API_RESOURCES, &json!({"location": "westus2", "tags": tags}))
        .await
        .expect("group");
    let set = format!("{}/providers/Microsoft.Compute/availabilitySets/a1", e.rg);
    e.arm
        .put(
            &set,
            API_COMPUTE,
            &json!({"location": "westus2", "tags": tags, "properties": {}}),
        )
        .await
        .expect("set");
    let sub = e.rg.split("/resourceGroups/").next().expect("sub").to_string();
    let list = |path: String, filter: &'static str| {
        let arm = &e.arm;
        async move {
            arm.list::<serde_json::Value>(&path, API_RESOURCES, Some(filter))
                .await
                .expect("list")
        }
    };
    let both = "tagName eq 'hke.io_cluster' and tagValue eq 'c1'";
    // Resources - List: found by the filter, without their tags.
    let found = list(format!("{sub}/resources"), both).await;
    assert_eq!(found.len(), 1);
    assert!(found[0].get("tags").is_none(), "{}", found[0]);
    // By tag name only, and resource groups, the tags are there.
    let found = list(format!("{sub}/resources"), "tagName eq 'hke.io_cluster'").await;
    assert_eq!(found[0]["tags"]["hke.io_cluster"], "c1");
    let groups = list(format!("{sub}/resourcegroups"), both).await;
    assert_eq!(groups[0]["tags"]["hke.io_cluster"], "c1");
}

/// Managed disks answer to the Disk RP's api-versions, not Compute's: the
/// sweep's GET and DELETE of a disk use `api_of`, which picks the right one.
#[tokio::test]
async fn disks_are_read_and_deleted_with_the_disk_rps_api_version() {
    let e = start(Config::default()).await;
    let arm = &e.arm;
    arm.put(&e.rg, API_RESOURCES, &json!({"location": "westus2"}))
        .await
        .expect("group");
    let disk = format!("{}/providers/Microsoft.Compute/disks/d1", e.rg);
    let api = hke_provider_azure::api_of(&disk);
    let body = json!({"location": "westus2", "sku": {"name": "Premium_LRS"},
                      "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 32}});
    arm.put(&disk, api, &body).await.expect("disk");
    let err = arm
        .get::<serde_json::Value>(&disk, API_COMPUTE)
        .await
        .expect_err("Compute's api-version is not the Disk RP's");
    assert_eq!(err.code.as_deref(), Some("NoRegisteredProviderFound"), "{err}");
    assert!(arm.get::<serde_json::Value>(&disk, api).await.expect("get").is_some());
    arm.delete(&disk, api).await.expect("delete");
    assert!(arm.get::<serde_json::Value>(&disk, api).await.expect("get").is_none());
}

/// ARM checks an outbound rule's ports against its frontends on the load
/// balancer's PUT and whenever a NIC joins its pool: ports a multiple of 8,
/// at most 64,000 per instance, instances × ports ≤ frontends × 64,000.
/// hke's own body (`lb_props`) allocates `snat::PORTS_PER_NODE` each.
#[tokio::test]
async fn outbound_rules_are_held_to_their_frontends_snat_ports() {
    use hke_provider_api::snat;
    use hke_provider_azure::lb_props;
    let e = start(Config {
        operation_time: Duration::from_millis(10),
        ..Config::default()
    })
    .await;
    let subnet = network(&e).await;
    let pip = |n: &str| format!("{}/providers/Microsoft.Network/publicIPAddresses/{n}", e.rg);
    for n in ["api", "out-1"] {
        e.arm
            .put(
                &pip(n),
                API_NETWORK,
                &json!({"location": "westus2", "sku": {"name": "Standard"},
                        "properties": {"publicIPAllocationMethod": "Static"}}),
            )
            .await
            .expect("public IP");
    }
    let lb = format!("{}/providers/Microsoft.Network/loadBalancers/lb", e.rg);
    let body = |outbound: &[String], ports: Option<u32>| {
        let mut props =
            serde_json::to_value(lb_props(|c, n| format!("{lb}/{c}/{n}"), &pip("api"), outbound, 6443)).expect("json");
        if let Some(p) = ports {
            props["outboundRules"][0]["properties"]["allocatedOutboundPorts"] = json!(p);
        }
        json!({"location": "westus2", "sku": {"name": "Standard"}, "properties": props})
    };
    // Not a multiple of 8; more than one address's ports per instance.
    let err = e
        .arm
        .put(&lb, API_NETWORK, &body(&[], Some(1020)))
        .await
        .expect_err("1020 ports");
    assert_eq!(err.class, Class::Permanent);
    assert_eq!(
        err.code.as_deref(),
        Some("SpecifiedAllocatedOutboundPortsForOutboundRuleIsNotAMultipleOfEight")
    );
    let err = e
        .arm
        .put(&lb, API_NETWORK, &body(&[], Some(64_008)))
        .await
        .expect_err("64,008 ports");
    assert_eq!(
        err.code.as_deref(),
        Some("SpecifiedAllocatedOutboundPortsForOutboundRuleExceedsTotalNumberOfAllowedPortsPerRule")
    );
    // hke's body: 1,024 ports per instance from one address, so 62 NICs
    // fit and the 63rd is refused, naming the ports still available.
    let v = e.arm.put(&lb, API_NETWORK, &body(&[], None)).await.expect("lb");
    assert_eq!(
        v["properties"]["outboundRules"][0]["properties"]["allocatedOutboundPorts"],
        snat::PORTS_PER_NODE
    );
    let nodes = format!("{lb}/backendAddressPools/nodes");
    let nic = |i: usize| {
        (
            format!("{}/providers/Microsoft.Network/networkInterfaces/n{i}", e.rg),
            json!({"location": "westus2", "properties": {"ipConfigurations": [{"name": "ipconfig1",
                "properties": {"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic",
                               "loadBalancerBackendAddressPools": [{"id": nodes}]}}]}}),
        )
    };
    for i in 0..62 {
        let (path, b) = nic(i);
        e.arm.put(&path, API_NETWORK, &b).await.expect("nic");
    }
    let (path, b) = nic(62);
    let err = e.arm.put(&path, API_NETWORK, &b).await.expect_err("63rd nic");
    assert_eq!(err.class, Class::Permanent);
    assert_eq!(
        err.code.as_deref(),
        Some("SpecifiedAllocatedOutboundPortsForOutboundRuleExceedsTotalNumberOfAvailablePorts")
    );
    assert!(err.message.contains("available ports 1008"), "{err}");
    // A second frontend address doubles the room (the plan's sizing).
    assert_eq!(snat::frontend_ips(63), 2);
    e.arm
        .put(&lb, API_NETWORK, &body(&[pip("out-1")], None))
        .await
        .expect("lb with two frontends");
    e.arm.put(&path, API_NETWORK, &b).await.expect("63rd nic");
    let snat = e.fake.snat(&lb);
    assert_eq!(snat.len(), 1);
    assert_eq!(
        (snat[0].frontends, snat[0].instances, snat[0].per_instance),
        (2, 63, 1024)
    );
    // A smaller load balancer again is refused: the pool is too big for it.
    let err = e
        .arm
        .put(&lb, API_NETWORK, &body(&[], None))
        .await
        .expect_err("one frontend for 63");
    assert_eq!(
        err.code.as_deref(),
        Some("SpecifiedAllocatedOutboundPortsForOutboundRuleExceedsTotalNumberOfAvailablePorts")
    );
}
