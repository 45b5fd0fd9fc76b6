//! The fake's contract, driven by the real google-cloud-compute-v1 client
//! (endpoint override, anonymous credentials): the operation poller, 404,
//! 409, resource-in-use and throttling, as a provider built on the client
//! will meet them.

use std::time::Duration;

use google_cloud_compute_v1::client::{Networks, Subnetworks};
use google_cloud_compute_v1::model::{Network, Subnetwork};
use google_cloud_lro::Poller;
use hke_fake_gce::{Config, FakeGce};

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
