//! A small ARM client on azure_core's pipeline: JSON PUT/GET/DELETE/POST,
//! errors classified for hke's engine, and long-running operations
//! followed to a terminal state through `Azure-AsyncOperation` or
//! `Location`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::policies::Policy;
use azure_core::http::{
    ClientOptions, Context, ExponentialRetryOptions, Method, Pipeline, PipelineSendOptions, Request, RetryOptions,
    Transport, Url,
};
use azure_core::time::Duration as SdkDuration;
use hke_provider_api::pace::arm as limits;
use hke_provider_api::{Class, LeftBehind, Limit, Pacer, ProviderError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::models::{ArmError, AsyncStatus, ErrorBody};

pub type R<T> = Result<T, ProviderError>;

/// How long an accepted operation is followed before hke gives up on it
/// (VM creation on a busy region can take a quarter of an hour).
const OPERATION_DEADLINE: Duration = Duration::from_secs(60 * 60);

const ASYNC_OPERATION: HeaderName = HeaderName::from_static("azure-asyncoperation");
const LOCATION: HeaderName = HeaderName::from_static("location");
const RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");
const RETRY_AFTER_MS: HeaderName = HeaderName::from_static("retry-after-ms");
const X_MS_RETRY_AFTER_MS: HeaderName = HeaderName::from_static("x-ms-retry-after-ms");

/// The client buckets of ARM's documented limits, `rate` times their sizes
/// and refills (a subscription with raised limits, or a test), refilled
/// `clock` times faster (benchmarks that scale time down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub reads: Limit,
    pub writes: Limit,
    pub deletes: Limit,
    pub put_vm: Limit,
    /// How much faster than ARM's one second the refill steps come.
    pub clock: f64,
}

impl Limits {
    pub fn scaled(rate: f64, clock: f64) -> Limits {
        let shape = |(capacity, per_second): (f64, f64)| {
            let mut l = Limit::token_bucket(capacity * rate, per_second * rate);
            l.per_second *= clock;
            l
        };
        Limits {
            reads: shape(limits::READS),
            writes: shape(limits::WRITES),
            deletes: shape(limits::DELETES),
            put_vm: shape(limits::PUT_VM),
            clock: clock.max(1e-6),
        }
    }

    /// The tokens ARM adds to a bucket at each (one-second) step.
    fn step(&self, limit: Limit) -> f64 {
        limit.per_second / self.clock
    }

    fn of(&self, key: &str) -> Limit {
        match key {
            "arm/reads" => self.reads,
            "arm/deletes" => self.deletes,
            _ => self.writes,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::scaled(1.0, 1.0)
    }
}

/// What a caller needs of a PUT once its operation succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The resource as ARM reports it after the operation (a GET).
    Body,
    /// Only that it succeeded: the PUT's own answer is returned.
    Done,
}

/// The bucket (per subscription, principal and operation type) a method's
/// calls take a token from, its shape, and the header in which ARM says how
/// many calls of it are left.
fn bucket_of(method: &Method) -> (&'static str, (f64, f64), &'static str) {
    match method {
        Method::Get | Method::Head => (
            "arm/reads",
            limits::READS,
            "x-ms-ratelimit-remaining-subscription-reads",
        ),
        Method::Delete => (
            "arm/deletes",
            limits::DELETES,
            "x-ms-ratelimit-remaining-subscription-deletes",
        ),
        _ => (
            "arm/writes",
            limits::WRITES,
            "x-ms-ratelimit-remaining-subscription-writes",
        ),
    }
}

/// Whether a request creates or updates a VM (Compute's PutVM bucket).
fn puts_vm(method: &Method, url: &Url) -> bool {
    *method == Method::Put
        && url
            .path()
            .to_ascii_lowercase()
            .contains("/providers/microsoft.compute/virtualmachines/")
}

pub struct Arm {
    pipeline: Pipeline,
    /// Client-side buckets of ARM's per-principal limits and Compute's
    /// PutVM limit: every call waits for its token before it is sent, and
    /// ARM's `x-ms-ratelimit-remaining-subscription-*` headers lower them.
    pub pacer: Pacer,
    /// The buckets' shapes.
    pub limits: Limits,
    base: Url,
    /// Poll interval when the service does not say (Retry-After wins).
    pub poll: Duration,
    /// Plain client for SAS URLs (boot diagnostics blobs).
    pub http: reqwest::Client,
}

/// A response: status, headers, parsed JSON body (`Null` when empty).
pub struct Reply {
    pub status: u16,
    pub headers: Headers,
    pub body: Value,
}

impl Arm {
    pub fn new(
        base: Url,
        credential: Arc<dyn TokenCredential>,
        scope: String,
        transport: Transport,
        http: reqwest::Client,
        poll: Duration,
    ) -> Arm {
        let options = ClientOptions {
            // Throttling, 5xx and dropped connections are retried by the
            // pipeline, which waits at least what Retry-After says.
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: SdkDuration::milliseconds(500),
                max_retries: 6,
                max_total_elapsed: SdkDuration::seconds(300),
                max_delay: SdkDuration::seconds(60),
            }),
            transport: Some(transport),
            ..Default::default()
        };
        let auth: Arc<dyn Policy> = Arc::new(BearerTokenAuthorizationPolicy::new(credential, vec![scope]));
        let pipeline = Pipeline::new(
            Some("hke"),
            Some(env!("CARGO_PKG_VERSION")),
            options,
            Vec::new(),
            vec![auth],
            None,
        );
        Arm {
            pipeline,
            pacer: Pacer::new(),
            limits: Limits::default(),
            base,
            poll,
            http,
        }
    }

    /// The URL of an ARM path (`/subscriptions/...`) with its api-version.
    pub fn url(&self, path: &str, api: &str) -> R<Url> {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ProviderError::permanent("InvalidUrl", format!("{path}: {e}")))?;
        url.query_pairs_mut().append_pair("api-version", api);
        Ok(url)
    }

    /// Send one request through the pipeline (with its retries).
    pub async fn send(&self, method: Method, url: Url, body: Option<Vec<u8>>) -> R<Reply> {
        let what = format!("{} {}", method, url.path());
        let (key, _, remaining_header) = bucket_of(&method);
        let limit = self.limits.of(key);
        if puts_vm(&method, &url) {
            self.pacer.acquire("arm/compute-put-vm", self.limits.put_vm, 1).await;
        }
        self.pacer.acquire(key, limit, 1).await;
        let mut req = Request::new(url, method);
        req.insert_header("accept", "application/json");
        if let Some(b) = body {
            req.insert_header("content-type", "application/json");
            req.set_body(b);
        }
        let ctx = Context::new();
        let raw = self
            .pipeline
            .send(
                &ctx,
                &mut req,
                Some(PipelineSendOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| transport_error(&what, &e))?;
        let (status, headers, body) = raw.deconstruct();
        let status = u16::from(status);
        if let Some(left) = headers
            .get_optional_str(&HeaderName::from_static(remaining_header))
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            self.pacer
                .observe_remaining_stepped(key, limit, left, self.limits.step(limit));
        }
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        Ok(Reply { status, headers, body })
    }

    /// GET a resource; `None` when it does not exist.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, api: &str) -> R<Option<T>> {
        let r = self.send(Method::Get, self.url(path, api)?, None).await?;
        match r.status {
            200 => serde_json::from_value(r.body)
                .map(Some)
                .map_err(|e| ProviderError::permanent("InvalidResponse", format!("GET {path}: {e}"))),
            404 => Ok(None),
            _ => Err(classify(&format!("GET {path}"), &r)),
        }
    }

    /// PUT a resource and follow the operation to its end; returns the
    /// resource as ARM then reports it.
    pub async fn put<B: Serialize>(&self, path: &str, api: &str, body: &B) -> R<Value> {
        self.put_for(path, api, body, Need::Body).await
    }

    /// PUT a resource and follow the operation to its end. With
    /// `Need::Done`, an operation followed through `Azure-AsyncOperation`
    /// to `Succeeded` is the answer ("the resource ... is in a Succeeded
    /// state": learn.microsoft.com/azure/azure-resource-manager/management/
    /// async-operations), so the PUT's own body is returned without reading
    /// the resource again.
    pub async fn put_for<B: Serialize>(&self, path: &str, api: &str, body: &B, need: Need) -> R<Value> {
        self.put_watched(path, api, body, need, None).await
    }

    /// `put_for`, following the operation through `watch` (the list of the
    /// resource's collection) while enough operations wait on it.
    pub async fn put_watched<B: Serialize>(
        &self,
        path: &str,
        api: &str,
        body: &B,
        need: Need,
        watch: Option<&Watch>,
    ) -> R<Value> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ProviderError::permanent("InvalidRequest", format!("PUT {path}: {e}")))?;
        let sent = Instant::now();
        let r = self.send(Method::Put, self.url(path, api)?, Some(bytes)).await?;
        if !(200..=202).contains(&r.status) {
            return Err(classify(&format!("PUT {path}"), &r));
        }
        // Accepted: from here on the resource exists (or is being made);
        // never report an error the engine would answer with a second PUT.
        let outcome = self.follow(path, &r, watch.map(|w| (w, sent))).await;
        let failed = |e: ProviderError| ProviderError {
            left_behind: LeftBehind::Something(path.to_string()),
            ..e
        };
        outcome.map_err(failed)?;
        let state = r.body.pointer("/properties/provisioningState").and_then(|s| s.as_str());
        let followed = r.headers.get_optional_str(&ASYNC_OPERATION).is_some();
        if need == Need::Done && (followed || matches!(state, None | Some("Succeeded"))) && r.body.is_object() {
            let mut v = r.body;
            if v.pointer("/properties/provisioningState").is_some() {
                v["properties"]["provisioningState"] = Value::from("Succeeded");
            }
            return Ok(v);
        }
        // The operation is over; a resource still says so itself where a
        // service answered without an operation to follow.
        let started = Instant::now();
        loop {
            let Some(v) = self.get_following(path, api).await.map_err(failed)? else {
                return Err(failed(ProviderError::permanent(
                    "ResourceNotFound",
                    format!("{path} was accepted but cannot be read"),
                )));
            };
            match v.pointer("/properties/provisioningState").and_then(|s| s.as_str()) {
                None | Some("Succeeded") => return Ok(v),
                Some("Failed") | Some("Canceled") => {
                    return Err(failed(ProviderError::permanent(
                        "ProvisioningFailed",
                        format!("{path} ended in provisioningState Failed"),
                    )))
                }
                Some(state) if started.elapsed() > OPERATION_DEADLINE => {
                    return Err(failed(ProviderError::permanent(
                        "OperationTimeout",
                        format!("{path} still {state}"),
                    )))
                }
                Some(_) => tokio::time::sleep(self.poll).await,
            }
        }
    }

    /// DELETE a resource and follow the operation until it is gone.
    /// A missing resource is `NotFound`.
    pub async fn delete(&self, path: &str, api: &str) -> R<()> {
        let r = self.send(Method::Delete, self.url(path, api)?, None).await?;
        match r.status {
            200 | 202 | 204 => self.follow(path, &r, None).await,
            404 => Err(ProviderError::not_found(path.to_string())),
            _ => Err(classify(&format!("DELETE {path}"), &r)),
        }
    }

    /// POST an action (no body) and return its JSON reply.
    pub async fn post(&self, path: &str, api: &str) -> R<Value> {
        let r = self
            .send(Method::Post, self.url(path, api)?, Some(b"{}".to_vec()))
            .await?;
        match r.status {
            200 => Ok(r.body),
            404 => Err(ProviderError::not_found(path.to_string())),
            _ => Err(classify(&format!("POST {path}"), &r)),
        }
    }

    /// Every page of a list (`value` + `nextLink`).
    pub async fn list<T: DeserializeOwned>(&self, path: &str, api: &str, filter: Option<&str>) -> R<Vec<T>> {
        self.list_pages(path, api, filter).await.map(|(items, _)| items)
    }

    /// A list and the pages it took.
    pub async fn list_pages<T: DeserializeOwned>(
        &self,
        path: &str,
        api: &str,
        filter: Option<&str>,
    ) -> R<(Vec<T>, usize)> {
        let mut pages = 0;
        let mut url = self.url(path, api)?;
        if let Some(f) = filter {
            url.query_pairs_mut().append_pair("$filter", f);
        }
        let mut out = Vec::new();
        let mut next = Some(url);
        while let Some(u) = next.take() {
            let r = self.read_reply(Method::Get, u.clone()).await?;
            pages += 1;
            if r.status != 200 {
                return Err(classify(&format!("GET {path}"), &r));
            }
            if let Some(items) = r.body.get("value").and_then(|v| v.as_array()) {
                for item in items {
                    if let Ok(t) = serde_json::from_value(item.clone()) {
                        out.push(t);
                    }
                }
            }
            next = r
                .body
                .get("nextLink")
                .and_then(|v| v.as_str())
                .and_then(|s| Url::parse(s).ok());
        }
        Ok((out, pages))
    }

    /// GET that keeps trying through throttling and outages past the
    /// pipeline's own retries, honouring Retry-After (for reads that follow
    /// an accepted write, which must not be abandoned).
    async fn read_reply(&self, method: Method, url: Url) -> R<Reply> {
        let started = Instant::now();
        loop {
            match self.send(method, url.clone(), None).await {
                Ok(r) if !is_transient_status(r.status) => return Ok(r),
                Ok(r) if started.elapsed() > OPERATION_DEADLINE => {
                    return Err(classify(&format!("GET {}", url.path()), &r))
                }
                Ok(r) => tokio::time::sleep(wait_of(&r.headers).unwrap_or(self.poll)).await,
                Err(e) if e.is_transient() && started.elapsed() < OPERATION_DEADLINE => {
                    tokio::time::sleep(e.retry_after().unwrap_or(self.poll).max(self.poll)).await
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn get_following(&self, path: &str, api: &str) -> R<Option<Value>> {
        let r = self.read_reply(Method::Get, self.url(path, api)?).await?;
        match r.status {
            200 => Ok(Some(r.body)),
            404 => Ok(None),
            _ => Err(classify(&format!("GET {path}"), &r)),
        }
    }

    /// Follow an accepted PUT/DELETE to its terminal state; with `watch`,
    /// from its collection's list while enough operations wait on it.
    async fn follow(&self, path: &str, first: &Reply, watch: Option<(&Watch, Instant)>) -> R<()> {
        let started = Instant::now();
        if let Some(op) = first.headers.get_optional_string(&ASYNC_OPERATION) {
            let url = Url::parse(&op).map_err(|e| ProviderError::permanent("InvalidResponse", format!("{op}: {e}")))?;
            let mut wait = wait_of(&first.headers).unwrap_or(self.poll);
            let _waiting = watch.map(|(w, _)| w.enter());
            loop {
                tokio::time::sleep(wait).await;
                if let Some((w, sent)) = watch {
                    if w.shared() {
                        // A list at most half an interval old: a VM is
                        // seen done at most 1.5 intervals after it is.
                        match w.state_of(self, path, sent, wait / 2).await?.as_deref() {
                            Some("Succeeded") => return Ok(()),
                            // The operation says why.
                            Some("Failed") | Some("Canceled") => {}
                            _ if started.elapsed() > OPERATION_DEADLINE => {}
                            _ => continue,
                        }
                    }
                }
                let r = self.read_reply(Method::Get, url.clone()).await?;
                if r.status != 200 {
                    return Err(classify(&format!("operation of {path}"), &r));
                }
                let st: AsyncStatus = serde_json::from_value(r.body.clone()).unwrap_or_default();
                match st.status.as_str() {
                    "Succeeded" => return Ok(()),
                    "Failed" | "Canceled" => {
                        let e = st.error.clone().unwrap_or_else(|| ArmError {
                            code: st.status.clone(),
                            ..ArmError::default()
                        });
                        return Err(operation_error(path, &st.status, &e, wait_of(&r.headers)));
                    }
                    _ => {}
                }
                if started.elapsed() > OPERATION_DEADLINE {
                    return Err(ProviderError {
                        class: Class::Permanent,
                        left_behind: LeftBehind::Unknown,
                        code: Some("OperationTimeout".into()),
                        message: format!(
                            "{path}: still in progress after {} minutes",
                            OPERATION_DEADLINE.as_secs() / 60
                        ),
                    });
                }
                wait = wait_of(&r.headers).unwrap_or(self.poll);
            }
        }
        if first.status == 202 {
            if let Some(loc) = first.headers.get_optional_string(&LOCATION) {
                let url =
                    Url::parse(&loc).map_err(|e| ProviderError::permanent("InvalidResponse", format!("{loc}: {e}")))?;
                let mut wait = wait_of(&first.headers).unwrap_or(self.poll);
                loop {
                    tokio::time::sleep(wait).await;
                    let r = self.read_reply(Method::Get, url.clone()).await?;
                    match r.status {
                        202 => wait = wait_of(&r.headers).unwrap_or(self.poll),
                        200 | 201 | 204 => return Ok(()),
                        _ => return Err(classify(&format!("operation of {path}"), &r)),
                    }
                    if started.elapsed() > OPERATION_DEADLINE {
                        return Err(ProviderError::permanent(
                            "OperationTimeout",
                            format!("{path}: still in progress"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The provisioning states of one collection (a group's
/// `virtualMachines`), read by one list for all the operations waiting on
/// its resources: with hundreds of VMs being made, a list of a few pages
/// each poll interval replaces hundreds of operation polls, which ARM
/// counts against the same read bucket. A resource's `provisioningState`
/// is that of its last operation ("Succeeded", "Failed", or in progress:
/// learn.microsoft.com/azure/azure-resource-manager/management/
/// async-operations); a failed one's operation is still read for its error.
pub struct Watch {
    collection: String,
    api: &'static str,
    waiting: std::sync::atomic::AtomicUsize,
    seen: tokio::sync::Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    at: Option<Instant>,
    pages: usize,
    states: std::collections::HashMap<String, String>,
}

/// One operation waiting on a `Watch`, while it lives.
pub struct Waiting<'a>(&'a Watch);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Watch {
    pub fn new(collection: String, api: &'static str) -> Watch {
        Watch {
            collection,
            api,
            waiting: std::sync::atomic::AtomicUsize::new(0),
            seen: tokio::sync::Mutex::new(Seen::default()),
        }
    }

    fn enter(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Waiting(self)
    }

    /// Enough operations wait for one list to cost fewer reads than their
    /// polls: at least twice the pages the last list took.
    fn shared(&self) -> bool {
        let pages = self.seen.try_lock().map(|s| s.pages).unwrap_or(1).max(1);
        self.waiting.load(std::sync::atomic::Ordering::SeqCst) >= 2 * pages
    }

    /// The state of `path` in a list made after `after` and at most `fresh`
    /// old (listed again when there is none).
    async fn state_of(&self, arm: &Arm, path: &str, after: Instant, fresh: Duration) -> R<Option<String>> {
        let mut seen = self.seen.lock().await;
        let stale = match seen.at {
            Some(at) => at <= after || at.elapsed() >= fresh,
            None => true,
        };
        if stale {
            let at = Instant::now();
            let (items, pages) = arm.list_pages::<Value>(&self.collection, self.api, None).await?;
            seen.states = items
                .iter()
                .filter_map(|v| {
                    let id = v["id"].as_str()?.to_ascii_lowercase();
                    let state = v.pointer("/properties/provisioningState")?.as_str()?.to_string();
                    Some((id, state))
                })
                .collect();
            seen.pages = pages;
            seen.at = Some(at);
        }
        Ok(seen.states.get(&path.to_ascii_lowercase()).cloned())
    }
}

/// How long the service asked to wait: `retry-after-ms`,
/// `x-ms-retry-after-ms`, or `Retry-After` in seconds.
pub fn wait_of(h: &Headers) -> Option<Duration> {
    for name in [&RETRY_AFTER_MS, &X_MS_RETRY_AFTER_MS] {
        if let Some(ms) = h.get_optional_str(name).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    h.get_optional_str(&RETRY_AFTER)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Codes that clear up by themselves: a dependency still being deleted or
/// not yet provisioned, an operation in progress on the same resource.
const TRANSIENT_CODES: [&str; 8] = [
    "AnotherOperationInProgress",
    // An operation ends `Failed` with `RetryableError` and the inner
    // `ReferencedResourceNotProvisioned` while a resource it references is
    // still updating (hashicorp/terraform-provider-azurerm#30197).
    "RetryableError",
    "ReferencedResourceNotProvisioned",
    "InUseSubnetCannotBeDeleted",
    "InUseRouteTableCannotBeDeleted",
    "InUseNetworkSecurityGroupCannotBeDeleted",
    "PublicIPAddressCannotBeDeleted",
    "NicInUse",
];

/// Whether ARM's error, or one of its inner errors, clears up by itself.
/// `OperationNotAllowed` is also how Compute refuses a request over a quota
/// ("Operation results in exceeding quota limits of Core", Azure docs
/// "Resolve errors for resource quotas"): permanent, unless the message
/// says something is in use or busy, as in "Availability Set {0} cannot be
/// deleted. Before deleting an Availability Set please ensure that it does
/// not contain any VM." or "... since another operation is in progress"
/// (Azure docs "Understand common error messages when you manage virtual
/// machines in Azure").
pub fn is_transient_error(e: &ArmError) -> bool {
    let own = TRANSIENT_CODES.contains(&e.code.as_str())
        || e.code.ends_with("BeingDeleted")
        || (e.code == "OperationNotAllowed" && !is_quota(e) && in_use(&e.message));
    own || e.details.iter().any(is_transient_error)
}

/// The message says a resource is still used, or busy with another
/// operation. (A quota message says "Current in use: 4": not this.)
fn in_use(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "is in use",
        "are in use",
        "still in use",
        "in use by",
        "does not contain any vm",
        "in progress",
        "marked for deletion",
        "currently using",
        "being provisioned",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// A quota refused the request.
pub fn is_quota(e: &ArmError) -> bool {
    let m = e.message.to_ascii_lowercase();
    (e.code == "OperationNotAllowed" && m.contains("quota"))
        || e.code.ends_with("QuotaExceeded")
        || e.details.iter().any(is_quota)
}

const QUOTA_HINT: &str = " — a subscription quota is exceeded: see `az vm list-usage --location LOCATION`, \
    request an increase (Azure portal, Usage + quotas), or use fewer or smaller VMs";

/// ARM's message with its inner errors: `message (Code: message; ...)`.
fn describe(e: &ArmError) -> String {
    let mut m = e.message.clone();
    let inner: Vec<String> = e
        .details
        .iter()
        .map(|d| {
            let text = describe(d);
            if text.is_empty() {
                d.code.clone()
            } else {
                format!("{}: {text}", d.code)
            }
        })
        .collect();
    if !inner.is_empty() {
        m = format!("{m} ({})", inner.join("; "));
    }
    m
}

/// A long-running operation that ended `Failed` or `Canceled`, classified
/// as an HTTP error with the same ARM error would be: a retryable one is
/// transient, so the engine PUTs the resource again (bounded by its retry
/// policy; `existing` does not adopt a `Failed` resource).
pub fn operation_error(path: &str, status: &str, e: &ArmError, retry_after: Option<Duration>) -> ProviderError {
    let code = if e.code.is_empty() {
        "OperationFailed".to_string()
    } else {
        e.code.clone()
    };
    let mut message = format!("{path}: operation {}: {}", status.to_ascii_lowercase(), describe(e));
    let class = if is_transient_error(e) {
        Class::Transient { retry_after }
    } else {
        if is_quota(e) {
            message.push_str(QUOTA_HINT);
        }
        Class::Permanent
    };
    ProviderError {
        class,
        left_behind: LeftBehind::Nothing,
        code: Some(code),
        message,
    }
}

/// Turn an error reply into a classified error naming what failed, ARM's
/// code and message, and the fix where hke knows it.
pub fn classify(what: &str, r: &Reply) -> ProviderError {
    let body: ErrorBody = serde_json::from_value(r.body.clone()).unwrap_or_default();
    let err = body.error.unwrap_or_else(|| ArmError {
        code: format!("Http{}", r.status),
        ..ArmError::default()
    });
    let mut msg = format!("{what}: HTTP {}", r.status);
    let text = describe(&err);
    if !text.is_empty() {
        msg.push_str(": ");
        msg.push_str(&text);
    }
    let class = match r.status {
        404 => Class::NotFound,
        s if is_transient_status(s) => Class::Transient {
            retry_after: wait_of(&r.headers),
        },
        400 | 409 if is_transient_error(&err) => Class::Transient {
            retry_after: wait_of(&r.headers),
        },
        401 => {
            msg.push_str(" — the credential was refused: check AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, or run `az login`");
            Class::Credentials
        }
        403 => {
            msg.push_str(
                " — the identity lacks permission: grant it Contributor on the subscription or resource group",
            );
            Class::Credentials
        }
        _ => {
            if is_quota(&err) {
                msg.push_str(QUOTA_HINT);
            }
            Class::Permanent
        }
    };
    ProviderError {
        class,
        left_behind: LeftBehind::Nothing,
        code: Some(err.code),
        message: msg,
    }
}

fn transport_error(what: &str, e: &azure_core::Error) -> ProviderError {
    use azure_core::error::ErrorKind;
    let text = e.to_string();
    match e.kind() {
        ErrorKind::Credential => ProviderError::credentials(
            "CredentialUnavailable",
            format!(
                "{what}: no Azure credential: {text}. Set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET \
                 (or AZURE_FEDERATED_TOKEN_FILE for workload identity), or run `az login`"
            ),
        ),
        ErrorKind::HttpResponse { status, .. } if u16::from(*status) == 429 || u16::from(*status) >= 500 => {
            ProviderError::transient("Throttled", format!("{what}: {text}"), None)
        }
        _ => ProviderError {
            class: Class::Transient { retry_after: None },
            left_behind: LeftBehind::Unknown,
            // No answer: the request may or may not have reached ARM.
            code: Some(
                if matches!(e.kind(), ErrorKind::Io) {
                    hke_provider_api::error::CODE_UNREACHABLE
                } else {
                    "RequestFailed"
                }
                .into(),
            ),
            message: format!("{what}: {text}"),
        },
    }
}

#[cfg(test)]
mod pace_tests {
    use super::*;

    #[test]
    fn each_method_draws_from_its_arm_bucket_and_vm_puts_from_computes() {
        assert_eq!(bucket_of(&Method::Get).0, "arm/reads");
        assert_eq!(bucket_of(&Method::Get).1, (250.0, 25.0));
        assert_eq!(bucket_of(&Method::Put).1, (200.0, 10.0));
        assert_eq!(
            bucket_of(&Method::Delete).2,
            "x-ms-ratelimit-remaining-subscription-deletes"
        );
        let vm = Url::parse("https://management.azure.com/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/m")
            .expect("url");
        assert!(puts_vm(&Method::Put, &vm));
        assert!(!puts_vm(&Method::Get, &vm));
        let nic = Url::parse("https://management.azure.com/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkInterfaces/n")
            .expect("url");
        assert!(!puts_vm(&Method::Put, &nic));
    }
}
