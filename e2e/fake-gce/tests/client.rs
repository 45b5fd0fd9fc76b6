//! The fake's contract, driven by the real google-cloud-compute-v1 client
//! (endpoint override, anonymous credentials): the operation poller, 404,
//! 409, resource-in-use and throttling, as a provider built on the client
//! will meet them.

use std::time::Duration;

use google_cloud_compute_v1::client::{GlobalOperations, Networks, Subnetworks};
use google_cloud_compute_v1::model::{Network, Subnetwork};
use google_cloud_lro::Poller;
use hke_fake_gce::{Config, FakeGce, RateQuota};

const PROJECT: &str = "hke-test";
const REGION: &str = "us-central1";

async fn clients(fake: &FakeGce) -> (Networks, Subnetworks) {
    let creds = || google_cloud_auth::credentials::anonymous::Builder::new().build();
    let n = Networks::builder()
        .with_endpoint(fake.url())
        .with_credentials(creds())
        .build()
        .await
        .expect("networks client");
    let s = Subnetworks::builder()
        .with_endpoint(fake.url())
        .with_credentials(creds())
        .build()
        .await
        .expect("subnetworks client");
    (n, s)
}

#[tokio::test]
async fn insert_polls_to_done_then_conflicts_and_in_use_deletes_are_refused() {
    let fake = FakeGce::start(Config {
        operation_time: Duration::from_millis(600),
        ..Config::default()
    })
    .await
    .expect("fake");
    let (networks, subnetworks) = clients(&fake).await;
    let net = Network::new().set_name("hke-vnet").set_auto_create_subnetworks(false);
    // The first answer is a PENDING operation; the resource is not there yet.
    let op = networks
        .insert()
        .set_project(PROJECT)
        .set_body(net.clone())
        .send()
        .await
        .expect("insert");
    assert!(format!("{:?}", op.status).to_lowercase().contains("pending"), "{op:?}");
    let missing = networks.get().set_project(PROJECT).set_network("hke-vnet").send().await;
    assert_eq!(missing.expect_err("not yet").http_status_code(), Some(404));
    // The client's poller follows the operation to DONE.
    let done = networks
        .insert()
        .set_project(PROJECT)
        .set_body(Network::new().set_name("hke-vnet-2").set_auto_create_subnetworks(false))
        .poller()
        .until_done()
        .await
        .expect("done");
    assert!(format!("{:?}", done.status).to_lowercase().contains("done"), "{done:?}");
    let got = networks
        .get()
        .set_project(PROJECT)
        .set_network("hke-vnet-2")
        .send()
        .await
        .expect("exists");
    assert_eq!(got.name.as_deref(), Some("hke-vnet-2"));
    // The same name again: 409.
    let again = networks.insert().set_project(PROJECT).set_body(net).send().await;
    assert_eq!(again.expect_err("conflict").http_status_code(), Some(409));
    // A subnetwork of a network that does not exist: 404.
    let orphan = subnetworks
        .insert()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_body(
            Subnetwork::new()
                .set_name("orphan")
                .set_ip_cidr_range("10.0.0.0/24")
                .set_network(format!("projects/{PROJECT}/global/networks/nowhere")),
        )
        .send()
        .await;
    assert_eq!(orphan.expect_err("no parent").http_status_code(), Some(404));
    subnetworks
        .insert()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_body(
            Subnetwork::new()
                .set_name("nodes")
                .set_ip_cidr_range("10.240.0.0/16")
                .set_network(format!(
                    "{}/compute/v1/projects/{PROJECT}/global/networks/hke-vnet-2",
                    fake.url()
                )),
        )
        .poller()
        .until_done()
        .await
        .expect("subnetwork");
    // The network is in use by the subnetwork.
    let in_use = networks
        .delete()
        .set_project(PROJECT)
        .set_network("hke-vnet-2")
        .send()
        .await
        .expect_err("in use");
    assert_eq!(in_use.http_status_code(), Some(400));
    assert!(
        format!("{in_use:?}").contains("resourceInUseByAnotherResource"),
        "{in_use:?}"
    );
    subnetworks
        .delete()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_subnetwork("nodes")
        .poller()
        .until_done()
        .await
        .expect("subnetwork deleted");
    networks
        .delete()
        .set_project(PROJECT)
        .set_network("hke-vnet-2")
        .poller()
        .until_done()
        .await
        .expect("network deleted");
    let gone = networks
        .get()
        .set_project(PROJECT)
        .set_network("hke-vnet-2")
        .send()
        .await;
    assert_eq!(gone.expect_err("gone").http_status_code(), Some(404));
    // Only the first network (its insert finished meanwhile) remains.
    let left: Vec<String> = fake.resources().into_keys().collect();
    assert_eq!(left, vec![format!("projects/{PROJECT}/global/networks/hke-vnet")]);
}

#[tokio::test]
async fn throttled_and_unavailable_answers_carry_their_status() {
    let fake = FakeGce::start(Config {
        operation_time: Duration::ZERO,
        throttle_every: Some(2),
        unavailable_every: Some(3),
        ..Config::default()
    })
    .await
    .expect("fake");
    let (networks, _) = clients(&fake).await;
    let mut seen = Vec::new();
    for i in 0..6 {
        let r = networks
            .get()
            .set_project(PROJECT)
            .set_network(format!("n{i}"))
            .send()
            .await;
        seen.push(r.expect_err("nothing exists").http_status_code());
    }
    // Requests 2, 4 → 429; 3 → 503; 6 → 429 (throttling is checked first);
    // the client may retry by itself, so count at least one of each.
    assert!(seen.contains(&Some(429)), "{seen:?}");
    assert!(seen.contains(&Some(404)), "{seen:?}");
    assert!(fake.requests() >= 6);
}

async fn global_operations(fake: &FakeGce) -> GlobalOperations {
    GlobalOperations::builder()
        .with_endpoint(fake.url())
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .expect("operations client")
}

#[tokio::test]
async fn an_operations_wait_answers_when_the_operation_is_done_or_at_its_deadline() {
    let fake = FakeGce::start(Config {
        operation_time: Duration::from_millis(600),
        wait_deadline: Duration::from_millis(400),
        ..Config::default()
    })
    .await
    .expect("fake");
    let (networks, _) = clients(&fake).await;
    let ops = global_operations(&fake).await;
    let op = networks
        .insert()
        .set_project(PROJECT)
        .set_body(Network::new().set_name("hke-vnet").set_auto_create_subnetworks(false))
        .send()
        .await
        .expect("insert");
    let name = op.name.clone().expect("operation name");
    let started = std::time::Instant::now();
    // The deadline comes first: the operation is still running.
    let first = ops
        .wait()
        .set_project(PROJECT)
        .set_operation(&name)
        .send()
        .await
        .expect("wait");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(390), "{waited:?}");
    assert!(
        !format!("{:?}", first.status).to_lowercase().contains("done"),
        "{first:?}"
    );
    // The second wait returns when it is DONE, not a deadline later.
    let second = ops
        .wait()
        .set_project(PROJECT)
        .set_operation(&name)
        .send()
        .await
        .expect("wait");
    assert!(
        format!("{:?}", second.status).to_lowercase().contains("done"),
        "{second:?}"
    );
    let total = started.elapsed();
    assert!(
        total >= Duration::from_millis(550) && total < Duration::from_millis(750),
        "{total:?}"
    );
    let waits = fake.calls().iter().filter(|c| c.ends_with("/wait")).count();
    assert_eq!(waits, 2, "{:?}", fake.calls());
    // A wait for an operation that does not exist: 404.
    let missing = ops.wait().set_project(PROJECT).set_operation("nope").send().await;
    assert_eq!(missing.expect_err("404").http_status_code(), Some(404));
}

#[tokio::test]
async fn calls_over_a_groups_rate_quota_get_403_rate_limit_exceeded_until_the_next_window() {
    let window = Duration::from_millis(800);
    let fake = FakeGce::start(Config {
        operation_time: Duration::ZERO,
        rate_quota: Some(RateQuota { calls: 4, window }),
        ..Config::default()
    })
    .await
    .expect("fake");
    let (networks, _) = clients(&fake).await;
    // Start just after a window began, so the calls below share one.
    let into = fake.started().elapsed().as_nanos() % window.as_nanos();
    tokio::time::sleep(window - Duration::from_nanos(into as u64) + Duration::from_millis(20)).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = networks
            .get()
            .set_project(PROJECT)
            .set_network(format!("n{i}"))
            .send()
            .await;
        statuses.push(r.expect_err("nothing exists").http_status_code());
    }
    assert_eq!(
        statuses,
        [Some(404); 4].into_iter().chain([Some(403); 2]).collect::<Vec<_>>()
    );
    assert_eq!(fake.throttled(), 2);
    let refused = fake.refused();
    assert!(
        refused.iter().all(|r| r.starts_with("403 rateLimitExceeded GET ")),
        "{refused:?}"
    );
    // Mutations are a group of their own: an insert still goes through.
    let op = networks
        .insert()
        .set_project(PROJECT)
        .set_body(Network::new().set_name("hke-vnet").set_auto_create_subnetworks(false))
        .send()
        .await;
    assert!(op.is_ok(), "{op:?}");
    // The next window has the group's quota again.
    tokio::time::sleep(window).await;
    let r = networks.get().set_project(PROJECT).set_network("hke-vnet").send().await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(fake.busiest_windows().get("reads"), Some(&4));
    assert_eq!(fake.throttled(), 2);
}

#[tokio::test]
async fn backend_services_and_target_pools_need_health_checks_that_exist() {
    use google_cloud_compute_v1::client::{RegionBackendServices, RegionHealthChecks, TargetPools};
    use google_cloud_compute_v1::model::{self as gce, BackendService, HTTPSHealthCheck, HealthCheck, TargetPool};
    let fake = FakeGce::start(Config {
        operation_time: Duration::from_millis(50),
        ..Config::default()
    })
    .await
    .expect("fake");
    let creds = || google_cloud_auth::credentials::anonymous::Builder::new().build();
    let checks = RegionHealthChecks::builder()
        .with_endpoint(fake.url())
        .with_credentials(creds())
        .build()
        .await
        .expect("client");
    let services = RegionBackendServices::builder()
        .with_endpoint(fake.url())
        .with_credentials(creds())
        .build()
        .await
        .expect("client");
    let pools = TargetPools::builder()
        .with_endpoint(fake.url())
        .with_credentials(creds())
        .build()
        .await
        .expect("client");
    let check_link = format!(
        "{}/compute/v1/projects/{PROJECT}/regions/{REGION}/healthChecks/api",
        fake.url()
    );
    let service = BackendService::new()
        .set_name("api")
        .set_load_balancing_scheme(gce::backend_service::LoadBalancingScheme::External)
        .set_protocol(gce::backend_service::Protocol::Tcp)
        .set_health_checks([check_link.clone()]);
    // The health check does not exist yet: 404 notFound, naming it.
    let missing = services
        .insert()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_body(service.clone())
        .send()
        .await
        .expect_err("no health check");
    assert_eq!(missing.http_status_code(), Some(404));
    assert!(
        format!("{missing:?}").contains(&format!(
            "The resource 'projects/{PROJECT}/regions/{REGION}/healthChecks/api' was not found"
        )),
        "{missing:?}"
    );
    // Without any health check: required.
    let none = services
        .insert()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_body(service.clone().set_health_checks(Vec::<String>::new()))
        .send()
        .await
        .expect_err("required");
    assert_eq!(none.http_status_code(), Some(400));
    // An HTTPS check without its settings is invalid.
    let bare = checks
        .insert()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_body(
            HealthCheck::new()
                .set_name("api")
                .set_type(gce::health_check::Type::Https),
        )
        .send()
        .await
        .expect_err("no https settings");
    assert_eq!(bare.http_status_code(), Some(400));
    checks
        .insert()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_body(
            HealthCheck::new()
                .set_name("api")
                .set_type(gce::health_check::Type::Https)
                .set_https_health_check(HTTPSHealthCheck::new().set_port(6443).set_request_path("/readyz")),
        )
        .poller()
        .until_done()
        .await
        .expect("health check");
    services
        .insert()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_body(service)
        .poller()
        .until_done()
        .await
        .expect("backend service");
    // In use by the backend service: the check stays.
    let in_use = checks
        .delete()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_health_check("api")
        .send()
        .await
        .expect_err("in use");
    assert_eq!(in_use.http_status_code(), Some(400));
    assert!(
        format!("{in_use:?}").contains("resourceInUseByAnotherResource"),
        "{in_use:?}"
    );
    // A target pool takes legacy HTTP health checks only.
    let pool = pools
        .insert()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_body(TargetPool::new().set_name("api").set_health_checks([check_link]))
        .send()
        .await
        .expect_err("not a legacy check");
    assert_eq!(pool.http_status_code(), Some(400));
    assert!(format!("{pool:?}").contains("Only legacy HttpHealthChecks"), "{pool:?}");
    // Backend service first, then the check: nothing left.
    services
        .delete()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_backend_service("api")
        .poller()
        .until_done()
        .await
        .expect("service deleted");
    checks
        .delete()
        .set_project(PROJECT)
        .set_region(REGION)
        .set_health_check("api")
        .poller()
        .until_done()
        .await
        .expect("check deleted");
    assert!(fake.resources().is_empty(), "{:?}", fake.resources().keys());
}
