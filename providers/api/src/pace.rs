//! Client-side pacing: token buckets shaped like each cloud's documented
//! limits, so that hke waits before a call instead of being throttled after
//! it. A provider asks its [`Pacer`] for tokens of a bucket (by a key: a
//! class of calls such as `mutations`, or one API action) before each call.
//!
//! A bucket holds up to `capacity` tokens and gains `per_second` tokens a
//! second; a call takes its tokens at once and, when that leaves the bucket
//! short, waits until the refill has covered the debt. Calls therefore leave
//! in the order they asked, and at most `capacity + per_second × t` tokens
//! are spent in any interval of `t` seconds: the property that keeps a
//! client under a cloud's bucket or per-window quota.
//!
//! Clouds refill in steps (EC2: "a set number of tokens is added back to it
//! every second") or count fixed windows (Compute Engine: per minute,
//! synchronized), while this bucket refills continuously, so the
//! constructors shape a client bucket that never runs ahead of the cloud's:
//! [`Limit::token_bucket`] starts one refill short, [`Limit::per_window`]
//! spends at most 90% of the quota in any window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The shape of a client bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Tokens it holds when full (the burst).
    pub capacity: f64,
    /// Tokens it gains a second.
    pub per_second: f64,
}

impl Limit {
    /// A bucket of exactly this shape.
    pub const fn new(capacity: f64, per_second: f64) -> Limit {
        Limit { capacity, per_second }
    }

    /// The client side of a cloud's token bucket that holds `capacity` and
    /// gains `per_second` once a second (EC2, ARM): one refill short of it,
    /// so that by any time `t` the client has spent at most `capacity +
    /// per_second × ⌊t⌋`, what the cloud's stepped bucket allows.
    pub fn token_bucket(capacity: f64, per_second: f64) -> Limit {
        Limit {
            capacity: (capacity - per_second).max(1.0),
            per_second,
        }
    }

    /// The client side of a quota of `calls` per fixed `window` (Compute
    /// Engine's per-minute rate quotas, counted in synchronized minutes): a
    /// burst of 10% and a refill of 80% of the quota per window, so that any
    /// interval of the window's length, and so any of the cloud's windows,
    /// sees at most 90% of the quota; the rest is a margin for the clock
    /// skew between client and cloud and for other clients of the project.
    pub fn per_window(calls: u32, window: Duration) -> Limit {
        let calls = f64::from(calls.max(1));
        let secs = window.as_secs_f64().max(1e-3);
        Limit {
            capacity: (calls * 0.1).max(1.0),
            per_second: calls * 0.8 / secs,
        }
    }

    /// The same shape with `factor` times the tokens and refill (tests and
    /// benchmarks scale limits down to meet them sooner).
    pub fn scaled(self, factor: f64) -> Limit {
        Limit {
            capacity: (self.capacity * factor).max(1.0),
            per_second: self.per_second * factor,
        }
    }

    /// The most tokens any interval of `t` may spend.
    pub fn most_in(&self, t: Duration) -> f64 {
        self.capacity + self.per_second * t.as_secs_f64()
    }
}

#[derive(Debug)]
struct Bucket {
    limit: Limit,
    /// May go negative: the debt of calls still waiting for their refill.
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Take `n` tokens at `now`; how long the caller must wait before its call.
    fn take(&mut self, n: f64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.per_second).min(self.limit.capacity);
        self.at = now;
        // A call larger than the bucket waits for a full bucket, not forever.
        self.tokens -= n.min(self.limit.capacity);
        if self.tokens >= 0.0 || self.limit.per_second <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.limit.per_second)
        }
    }
}

/// A set of token buckets by key, created on first use. Cheap to share
/// behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Pacer {
    enabled: bool,
    buckets: Mutex<HashMap<String, Bucket>>,
    waits: AtomicU64,
    waited_us: AtomicU64,
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer::new()
    }
}

impl Pacer {
    /// A pacer that paces.
    pub fn new() -> Pacer {
        Pacer {
            enabled: true,
            buckets: Mutex::new(HashMap::new()),
            waits: AtomicU64::new(0),
            waited_us: AtomicU64::new(0),
        }
    }

    /// A pacer that never waits (tests show what a client without pacing
    /// meets).
    pub fn off() -> Pacer {
        Pacer {
            enabled: false,
            ..Pacer::new()
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// How long a call of `n` tokens from bucket `key` (of shape `limit`,
    /// used when the bucket is new) must wait from now; the tokens are
    /// taken.
    pub fn reserve(&self, key: &str, limit: Limit, n: u32) -> Duration {
        if !self.enabled {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Duration::ZERO;
        };
        let bucket = buckets.entry(key.to_string()).or_insert_with(|| Bucket {
            limit,
            tokens: limit.capacity,
            at: now,
        });
        bucket.take(f64::from(n), now)
    }

    /// Wait until a call of `n` tokens from bucket `key` may go.
    pub async fn acquire(&self, key: &str, limit: Limit, n: u32) {
        let wait = self.reserve(key, limit, n);
        if !wait.is_zero() {
            self.waits.fetch_add(1, Ordering::Relaxed);
            self.waited_us.fetch_add(wait.as_micros() as u64, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    /// The cloud said how many calls of a bucket are left (ARM's
    /// `x-ms-ratelimit-remaining-*` headers): the bucket holds no more.
    pub fn observe_remaining(&self, key: &str, limit: Limit, remaining: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if let Ok(mut buckets) = self.buckets.lock() {
            let bucket = buckets.entry(key.to_string()).or_insert_with(|| Bucket {
                limit,
                tokens: limit.capacity,
                at: now,
            });
            bucket.take(0.0, now);
            bucket.tokens = bucket.tokens.min(remaining as f64);
        }
    }

    /// As `observe_remaining`, for a cloud whose bucket refills in steps of
    /// `step` tokens (ARM: once a second): the client's bucket, which
    /// refills continuously, starts `step` below what is left (into debt
    /// if need be), so that it cannot spend a step the cloud has not yet
    /// added.
    pub fn observe_remaining_stepped(&self, key: &str, limit: Limit, remaining: u64, step: f64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if let Ok(mut buckets) = self.buckets.lock() {
            let bucket = buckets.entry(key.to_string()).or_insert_with(|| Bucket {
                limit,
                tokens: limit.capacity,
                at: now,
            });
            bucket.take(0.0, now);
            bucket.tokens = bucket.tokens.min(remaining as f64 - step.max(0.0));
        }
    }

    /// (calls that waited, total time waited).
    pub fn waited(&self) -> (u64, Duration) {
        (
            self.waits.load(Ordering::Relaxed),
            Duration::from_micros(self.waited_us.load(Ordering::Relaxed)),
        )
    }
}

/// Compute Engine's rate quotas (per project; regional and zonal methods
/// per region), counted in synchronized one-minute windows.
pub mod gce {
    use super::Limit;
    use std::time::Duration;

    // cloud.google.com/compute/docs/api-rate-limits: Queries (mutations), Read requests (*.get), List requests
    // (*.list), Operation read requests (*Operations.get): 1,500 requests/minute each, per synchronized minute.
    pub const PER_MINUTE: u32 = 1500;
    // Same page: zoneOperations.wait and regionOperations.wait count as "Heavy weight read requests" per region,
    // *.aggregatedList as heavy-weight reads per project; the copy read gives no default, hke assumes 1,500/minute.
    pub const HEAVY_PER_MINUTE: u32 = 1500;
    /// The window the quotas are counted in.
    pub const WINDOW: Duration = Duration::from_secs(60);

    /// The quota groups hke's calls fall in (bucket keys).
    pub const MUTATIONS: &str = "gce/mutations";
    pub const READS: &str = "gce/reads";
    pub const LISTS: &str = "gce/lists";
    pub const OPERATION_READS: &str = "gce/operation-reads";
    pub const HEAVY_READS: &str = "gce/heavy-reads";

    /// The client bucket of a group under `calls` per `window`.
    pub fn limit(calls: u32, window: Duration) -> Limit {
        Limit::per_window(calls, window)
    }
}

/// EC2's request and resource token buckets (per account and region).
pub mod ec2 {
    use super::Limit;

    // docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html: non-mutating actions bucket 100, refill 20/s.
    pub const NON_MUTATING: (f64, f64) = (100.0, 20.0);
    // Same page: unfiltered and unpaginated DescribeInstances/DescribeNetworkInterfaces/DescribeSecurityGroups: 50, 10/s.
    pub const UNFILTERED: (f64, f64) = (50.0, 10.0);
    // Same page: mutating actions 50, 5/s; resource-intensive (AuthorizeSecurityGroupIngress, CreateKeyPair) 50, 5/s.
    pub const MUTATING: (f64, f64) = (50.0, 5.0);
    // Same page, uncategorized: RunInstances 5, 2/s; CreateTags and DeleteTags 100, 10/s; TerminateInstances 100, 5/s.
    pub const RUN_INSTANCES: (f64, f64) = (5.0, 2.0);
    pub const TAGS: (f64, f64) = (100.0, 10.0);
    pub const TERMINATE_INSTANCES: (f64, f64) = (100.0, 5.0);
    // Same page, resource buckets: RunInstances 1,000 instances, 2/s; TerminateInstances 1,000, 20/s.
    pub const INSTANCES_LAUNCHED: (f64, f64) = (1000.0, 2.0);
    pub const INSTANCES_TERMINATED: (f64, f64) = (1000.0, 20.0);

    /// The request bucket of an EC2 action: (shape as documented). Buckets
    /// are per action ("each API is evaluated individually").
    pub fn request(action: &str, filtered: bool) -> (f64, f64) {
        match action {
            "RunInstances" | "StartInstances" => RUN_INSTANCES,
            "CreateTags" | "DeleteTags" => TAGS,
            "TerminateInstances" => TERMINATE_INSTANCES,
            "DescribeInstances" | "DescribeInstanceStatus" | "DescribeNetworkInterfaces" | "DescribeSecurityGroups"
                if !filtered =>
            {
                UNFILTERED
            }
            a if ["Describe", "List", "Search", "Get"].iter().any(|p| a.starts_with(p)) => NON_MUTATING,
            _ => MUTATING,
        }
    }

    /// The resource bucket an action also draws from, one token per instance.
    pub fn resource(action: &str) -> Option<(f64, f64)> {
        match action {
            "RunInstances" | "StartInstances" => Some(INSTANCES_LAUNCHED),
            "TerminateInstances" | "StopInstances" => Some(INSTANCES_TERMINATED),
            _ => None,
        }
    }

    /// A documented (capacity, refill per second) as a client bucket.
    pub fn limit((capacity, per_second): (f64, f64)) -> Limit {
        Limit::token_bucket(capacity, per_second)
    }
}

/// Elastic Load Balancing v2's request token buckets (per account and region).
pub mod elb {
    // docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html: an account-level bucket
    // shared by every ELB action, 40 and 10/s; CreateLoadBalancer/SetSubnets 10, 0.2/s; RegisterTargets and
    // DeregisterTargets 20, 4/s; Describe* 40, 10/s; other mutating actions 20, 3/s.
    pub const ACCOUNT: (f64, f64) = (40.0, 10.0);
    pub const RESOURCE_INTENSIVE: (f64, f64) = (10.0, 0.2);
    pub const REGISTRATION: (f64, f64) = (20.0, 4.0);
    pub const NON_MUTATING: (f64, f64) = (40.0, 10.0);
    pub const MUTATING: (f64, f64) = (20.0, 3.0);

    /// The category bucket of an ELBv2 action.
    pub fn request(action: &str) -> (&'static str, (f64, f64)) {
        match action {
            "CreateLoadBalancer" | "SetSubnets" => ("elb/resource-intensive", RESOURCE_INTENSIVE),
            "RegisterTargets" | "DeregisterTargets" => ("elb/registration", REGISTRATION),
            a if a.starts_with("Describe") => ("elb/non-mutating", NON_MUTATING),
            _ => ("elb/mutating", MUTATING),
        }
    }
}

/// Azure Resource Manager's per-principal buckets (per subscription and
/// region) and the Compute resource provider's.
pub mod arm {
    // learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling: per subscription,
    // principal and operation type: reads bucket 250, 25/s; writes 200, 10/s; deletes 200, 10/s.
    pub const READS: (f64, f64) = (250.0, 25.0);
    pub const WRITES: (f64, f64) = (200.0, 10.0);
    pub const DELETES: (f64, f64) = (200.0, 10.0);
    // learn.microsoft.com/azure/virtual-machines/compute-throttling-limits: Put VM, subscription level: bucket
    // 1,500, refill 500 per minute.
    pub const PUT_VM: (f64, f64) = (1500.0, 500.0 / 60.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instants (since start) at which `calls` calls of one token each,
    /// all asked for at once, may go, in the order they asked.
    async fn departures(pacer: &std::sync::Arc<Pacer>, limit: Limit, calls: usize) -> Vec<f64> {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..calls {
            let pacer = pacer.clone();
            tasks.push(tokio::spawn(async move {
                pacer.acquire("k", limit, 1).await;
                start.elapsed().as_secs_f64()
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or(f64::NAN));
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_bursts_its_capacity_then_refills_at_its_rate() {
        let pacer = std::sync::Arc::new(Pacer::new());
        let limit = Limit::new(5.0, 2.0);
        let at = departures(&pacer, limit, 9).await;
        // Five at once, then one every half second.
        assert!(at[..5].iter().all(|t| *t < 0.01), "{at:?}");
        for (i, t) in at[5..].iter().enumerate() {
            let want = 0.5 * (i + 1) as f64;
            assert!((t - want).abs() < 0.01, "call {}: {t} vs {want}", i + 5);
        }
        let (waits, waited) = pacer.waited();
        assert_eq!(waits, 4);
        // Each waited for its own turn: 0.5 + 1 + 1.5 + 2 s.
        assert!((waited.as_secs_f64() - 5.0).abs() < 0.01, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn switched_off_it_never_waits() {
        let pacer = std::sync::Arc::new(Pacer::off());
        let at = departures(&pacer, Limit::new(1.0, 0.1), 50).await;
        assert!(at.iter().all(|t| *t < 0.01), "{at:?}");
    }

    /// At most `capacity + per_second × t` calls in any interval `t`.
    fn most_in_any_window(at: &[f64], window: f64) -> usize {
        (0..at.len())
            .map(|i| at[i..].iter().take_while(|t| **t < at[i] + window).count())
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_per_window_quota_is_never_exceeded_in_any_window() {
        // 1,500 a minute scaled to 30 a second: 400 calls asked at once.
        let limit = Limit::per_window(30, Duration::from_secs(1));
        let at = departures(&std::sync::Arc::new(Pacer::new()), limit, 400).await;
        let most = most_in_any_window(&at, 1.0);
        assert!(most <= 27, "{most} calls in one window of 30 (90% kept)");
        // And it does not dawdle: 400 calls at 24/s after a burst of 3.
        let last = at.last().copied().unwrap_or_default();
        assert!(last < 17.0, "{last}");
        // A bucket of the quota's own shape would not do.
        let naive = departures(&std::sync::Arc::new(Pacer::new()), Limit::new(30.0, 30.0), 400).await;
        assert!(most_in_any_window(&naive, 1.0) > 30);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stepped_cloud_bucket_is_never_overdrawn() {
        // EC2's RunInstances: 5 tokens, 2 more each whole second.
        let limit = Limit::token_bucket(5.0, 2.0);
        let at = departures(&std::sync::Arc::new(Pacer::new()), limit, 30).await;
        // The cloud's bucket: by time t it has granted 5 + 2⌊t⌋ tokens.
        for (i, t) in at.iter().enumerate() {
            let granted = 5.0 + 2.0 * (t + 1e-9).floor();
            assert!((i + 1) as f64 <= granted, "call {i} at {t}s: {granted} granted");
        }
        // The bucket's own shape would overdraw it between steps.
        let naive = departures(&std::sync::Arc::new(Pacer::new()), Limit::new(5.0, 2.0), 30).await;
        assert!(naive
            .iter()
            .enumerate()
            .any(|(i, t)| (i + 1) as f64 > 5.0 + 2.0 * (t + 1e-9).floor()));
    }

    #[tokio::test(start_paused = true)]
    async fn large_calls_take_many_tokens_and_buckets_are_separate() {
        let pacer = Pacer::new();
        let instances = Limit::new(1000.0, 2.0);
        // 1,000 instances at once, then 10 more wait 5 s.
        assert_eq!(pacer.reserve("instances", instances, 1000), Duration::ZERO);
        let wait = pacer.reserve("instances", instances, 10);
        assert!((wait.as_secs_f64() - 5.0).abs() < 0.01, "{wait:?}");
        // Another bucket is untouched.
        assert_eq!(pacer.reserve("reads", Limit::new(1.0, 1.0), 1), Duration::ZERO);
        // More than the bucket holds waits for a full bucket, not forever.
        let small = Limit::new(2.0, 1.0);
        assert_eq!(pacer.reserve("small", small, 5), Duration::ZERO);
        assert!(pacer.reserve("small", small, 1) <= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_clouds_remaining_count_empties_the_bucket() {
        let pacer = Pacer::new();
        let limit = Limit::new(250.0, 25.0);
        pacer.observe_remaining("reads", limit, 0);
        let wait = pacer.reserve("reads", limit, 1);
        assert!((wait.as_secs_f64() - 0.04).abs() < 0.005, "{wait:?}");
        // A count above what the bucket holds changes nothing.
        pacer.observe_remaining("writes", limit, 10_000);
        assert_eq!(pacer.reserve("writes", limit, 250), Duration::ZERO);
    }

    #[test]
    fn documented_buckets_by_action() {
        assert_eq!(ec2::request("RunInstances", true), (5.0, 2.0));
        assert_eq!(ec2::request("CreateTags", true), (100.0, 10.0));
        assert_eq!(ec2::request("DescribeInstances", true), (100.0, 20.0));
        assert_eq!(ec2::request("DescribeInstances", false), (50.0, 10.0));
        assert_eq!(ec2::request("CreateVpc", true), (50.0, 5.0));
        assert_eq!(ec2::resource("RunInstances"), Some((1000.0, 2.0)));
        assert_eq!(ec2::resource("CreateVpc"), None);
        assert_eq!(elb::request("CreateLoadBalancer").1, (10.0, 0.2));
        assert_eq!(elb::request("DescribeTargetHealth").1, (40.0, 10.0));
    }

    #[test]
    fn shapes() {
        let gce = Limit::per_window(1500, Duration::from_secs(60));
        assert!((gce.most_in(Duration::from_secs(60)) - 1350.0).abs() < 1e-6);
        assert_eq!(Limit::token_bucket(5.0, 2.0), Limit::new(3.0, 2.0));
        assert_eq!(Limit::token_bucket(1.0, 2.0).capacity, 1.0);
        assert_eq!(Limit::new(100.0, 20.0).scaled(0.1), Limit::new(10.0, 2.0));
    }
}
