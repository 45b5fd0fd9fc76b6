//! Client-side pacing of EC2 and ELBv2 calls under their documented token
//! buckets (`hke_provider_api::pace::ec2`, `::elb`), at one place: the HTTP
//! client every SDK call goes through. EC2 and ELBv2 speak the query
//! protocol, so the action (and RunInstances' `MaxCount`, TerminateInstances'
//! instance ids) is in the form body: the connector reads it, waits for the
//! buckets' tokens, then sends. Retries go through it too, so a retried call
//! is paced like the first.
//!
//! EC2 keeps a bucket per action ("each API is evaluated individually") and,
//! for RunInstances and TerminateInstances, one of instances; ELBv2 one per
//! category under an account-level bucket shared by every action.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use hke_provider_api::pace::{ec2, elb};
use hke_provider_api::{Limit, Pacer};

/// ELBv2's API version, in every one of its query requests.
const ELBV2_VERSION: &str = "2015-12-01";

/// The buckets a call takes tokens from: (key, shape, tokens).
pub fn buckets(form: &str, scale: f64) -> Vec<(String, Limit, u32)> {
    let param = |k: &str| {
        form.split('&')
            .find_map(|kv| kv.split_once('=').filter(|(key, _)| *key == k).map(|(_, v)| v))
    };
    let Some(action) = param("Action") else {
        return Vec::new();
    };
    let shape = |(capacity, per_second): (f64, f64)| Limit::token_bucket(capacity, per_second).scaled(scale);
    if param("Version") == Some(ELBV2_VERSION) {
        let (key, category) = elb::request(action);
        return vec![
            ("elb/account".to_string(), shape(elb::ACCOUNT), 1),
            (key.to_string(), shape(category), 1),
        ];
    }
    let filtered = ["Filter.", "MaxResults=", "NextToken="]
        .iter()
        .any(|p| form.split('&').any(|kv| kv.starts_with(p)));
    let mut out = vec![(format!("ec2/{action}"), shape(ec2::request(action, filtered)), 1)];
    if let Some(resources) = ec2::resource(action) {
        let n = match action {
            "RunInstances" => param("MaxCount").and_then(|c| c.parse().ok()).unwrap_or(1),
            _ => form.split('&').filter(|kv| kv.starts_with("InstanceId.")).count() as u32,
        };
        out.push((format!("ec2/{action}/instances"), shape(resources), n.max(1)));
    }
    out
}

/// What went out through a [`Paced`] client: calls per action, and tokens
/// taken from each bucket (for benchmarks' lower bounds and call counts).
#[derive(Debug, Clone, Default)]
pub struct CallStats {
    /// Action → calls (`DescribeInstances`, `RunInstances`…).
    pub actions: std::collections::BTreeMap<String, u64>,
    /// Bucket key → (its client shape, tokens taken).
    pub buckets: std::collections::BTreeMap<String, (Limit, u64)>,
}

impl CallStats {
    /// Calls of actions that only read (`Describe*`).
    pub fn describes(&self) -> u64 {
        self.actions
            .iter()
            .filter(|(a, _)| a.starts_with("Describe"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every call.
    pub fn total(&self) -> u64 {
        self.actions.values().sum()
    }

    /// The shortest time the calls could have taken under the clouds'
    /// buckets (each as documented: one refill more than the client's), the
    /// slowest bucket's: tokens beyond a full bucket at its refill rate.
    pub fn lower_bound(&self) -> std::time::Duration {
        let secs = self
            .buckets
            .values()
            .map(|(limit, tokens)| {
                let capacity = limit.capacity + limit.per_second;
                let over = (*tokens as f64 - capacity).max(0.0);
                if limit.per_second > 0.0 {
                    over / limit.per_second
                } else {
                    0.0
                }
            })
            .fold(0.0, f64::max);
        std::time::Duration::from_secs_f64(secs)
    }
}

/// An HTTP client that paces every call before sending it.
#[derive(Debug, Clone)]
pub struct Paced {
    inner: SharedHttpClient,
    pacer: Arc<Pacer>,
    scale: f64,
    stats: Arc<std::sync::Mutex<CallStats>>,
}

impl Paced {
    /// `scale` multiplies every documented bucket (1.0: as documented).
    pub fn new(inner: SharedHttpClient, pacer: Arc<Pacer>, scale: f64) -> Paced {
        Paced {
            inner,
            pacer,
            scale,
            stats: Arc::default(),
        }
    }

    /// What went out so far.
    pub fn stats(&self) -> CallStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The shared record of calls (it outlives clones of the client).
    pub fn stats_handle(&self) -> Arc<std::sync::Mutex<CallStats>> {
        self.stats.clone()
    }
}

impl HttpClient for Paced {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            pacer: self.pacer.clone(),
            scale: self.scale,
            stats: self.stats.clone(),
        })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    pacer: Arc<Pacer>,
    scale: f64,
    stats: Arc<std::sync::Mutex<CallStats>>,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let form = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let wanted = buckets(&form, self.scale);
        if let Ok(mut stats) = self.stats.lock() {
            let action = form
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or("(none)");
            *stats.actions.entry(action.to_string()).or_default() += 1;
            for (key, limit, n) in &wanted {
                stats.buckets.entry(key.clone()).or_insert((*limit, 0)).1 += u64::from(*n);
            }
        }
        let (inner, pacer) = (self.inner.clone(), self.pacer.clone());
        HttpConnectorFuture::new(async move {
            for (key, limit, n) in wanted {
                pacer.acquire(&key, limit, n).await;
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Instant;

    #[test]
    fn the_action_picks_its_buckets() {
        let run = buckets("Action=RunInstances&Version=2016-11-15&MaxCount=40&MinCount=40", 1.0);
        assert_eq!(run.len(), 2);
        assert_eq!(run[0].0, "ec2/RunInstances");
        // RunInstances: 5, 2/s, one refill short of the cloud's stepped bucket.
        assert_eq!(run[0].1, Limit::new(3.0, 2.0));
        assert_eq!((run[1].0.as_str(), run[1].2), ("ec2/RunInstances/instances", 40));
        assert_eq!(run[1].1, Limit::new(998.0, 2.0));
        let tags = buckets("Action=CreateTags&Version=2016-11-15&ResourceId.1=i-1", 1.0);
        assert_eq!(tags, vec![("ec2/CreateTags".to_string(), Limit::new(90.0, 10.0), 1)]);
        let unfiltered = buckets("Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1", 1.0);
        assert_eq!(unfiltered[0].1, Limit::new(40.0, 10.0));
        let filtered = buckets(
            "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AName",
            1.0,
        );
        assert_eq!(filtered[0].1, Limit::new(80.0, 20.0));
        let terminate = buckets(
            "Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2",
            1.0,
        );
        assert_eq!(
            (terminate[1].0.as_str(), terminate[1].2),
            ("ec2/TerminateInstances/instances", 2)
        );
        let vpc = buckets("Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16", 1.0);
        assert_eq!(vpc[0].1, Limit::new(45.0, 5.0));
        let lb = buckets("Action=CreateLoadBalancer&Version=2015-12-01&Name=x", 1.0);
        assert_eq!(
            lb.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
            ["elb/account", "elb/resource-intensive"]
        );
        assert_eq!(
            buckets("Action=RunInstances&Version=2016-11-15", 0.5)[0].1,
            Limit::new(1.5, 1.0)
        );
        assert!(buckets("", 1.0).is_empty());
    }

    /// An HTTP connector that answers every RunInstances at once and
    /// records when each call reached it.
    #[derive(Debug, Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Instant>>>);

    impl HttpConnector for Recorder {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            if let Ok(mut at) = self.0.lock() {
                at.push(Instant::now());
            }
            let body = r#"<RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationId>r-1</reservationId><instancesSet/></RunInstancesResponse>"#;
            let response = aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(200u16).expect("status"),
                aws_smithy_types::body::SdkBody::from(body),
            );
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    impl HttpClient for Recorder {
        fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    /// Send `calls` RunInstances at once through a client paced by `pacer`;
    /// the seconds after the first at which each reached the network.
    async fn run_instances(pacer: Pacer, calls: usize) -> Vec<f64> {
        let recorder = Recorder::default();
        let http = Paced::new(SharedHttpClient::new(recorder.clone()), Arc::new(pacer), 1.0);
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new("us-west-2"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKID", "secret", None, None, "test",
            ))
            .endpoint_url("http://127.0.0.1:1")
            .http_client(http)
            .build();
        let ec2 = aws_sdk_ec2::Client::from_conf(config);
        let mut tasks = Vec::new();
        for _ in 0..calls {
            let ec2 = ec2.clone();
            tasks.push(tokio::spawn(async move {
                ec2.run_instances()
                    .image_id("ami-1")
                    .min_count(1)
                    .max_count(1)
                    .send()
                    .await
            }));
        }
        for t in tasks {
            assert!(t.await.expect("task").is_ok());
        }
        let at = recorder.0.lock().expect("times").clone();
        let first = at.first().copied().expect("calls");
        at.iter().map(|t| t.duration_since(first).as_secs_f64()).collect()
    }

    #[tokio::test]
    async fn run_instances_calls_leave_at_the_documented_request_rate() {
        // RunInstances: a bucket of 5 refilled by 2 a second, so 7 calls
        // asked at once take 2 s: 3 at once (one refill short), then one
        // every half second.
        let at = run_instances(Pacer::new(), 7).await;
        let last = at.iter().copied().fold(0.0, f64::max);
        assert!((1.9..2.6).contains(&last), "{at:?}");
        assert!(at.iter().filter(|t| **t < 0.2).count() <= 3, "{at:?}");
        // Without pacing they all go at once (and EC2 would refuse two).
        let unpaced = run_instances(Pacer::off(), 7).await;
        assert!(unpaced.iter().all(|t| *t < 0.5), "{unpaced:?}");
    }
}
