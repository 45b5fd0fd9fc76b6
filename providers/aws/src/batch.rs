//! One DescribeInstances for many instances.
//!
//! Machines are created, read and waited for one plan resource at a time,
//! many at once. Instead of a DescribeInstances each, a caller hands its keys
//! (instance ids, or `Name` tags) to a [`Coalescer`] and gets the answer of
//! the next call that starts after it asked: every key asked for while a
//! call is in flight (or while the coalescer keeps its minimum gap between
//! calls) goes into the same next call, as one filter of up to
//! [`KEYS_PER_CALL`] values, with pagination. A key is never answered by a
//! call that started before it was asked, so a caller sees at least what
//! existed when it asked (what a create needs before it runs anything).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ec2::types::Instance;
use hke_provider_api::ProviderError;
use tokio::sync::watch;
use tokio::time::Instant;

/// EC2 refuses more than 200 filter values in one call ("The maximum number
/// of filter values specified on a single call is 200", FilterLimitExceeded,
/// seen in gjbae1212/gossm#35 and apache/druid#1954); the keys' filter shares
/// the call with the cluster and state filters.
pub const KEYS_PER_CALL: usize = 150;

type Answer = Arc<Result<Vec<Instance>, ProviderError>>;

#[derive(Debug)]
struct Batch {
    keys: BTreeSet<String>,
    tx: watch::Sender<Option<Answer>>,
}

#[derive(Debug, Default)]
struct State {
    /// Keys for the next call.
    queued: Option<Batch>,
    /// A driver task is sending calls.
    running: bool,
    /// When the last call started.
    last: Option<Instant>,
}

/// Coalesces lookups of instances into shared calls.
#[derive(Debug, Clone)]
pub struct Coalescer {
    state: Arc<Mutex<State>>,
    /// The least time between the starts of two calls.
    gap: Duration,
}

impl Coalescer {
    pub fn new(gap: Duration) -> Coalescer {
        Coalescer {
            state: Arc::default(),
            gap,
        }
    }

    /// The instances the next call finds for `keys` (and for whatever else
    /// was asked with them: the caller picks its own). `call` describes a
    /// set of keys (at most [`KEYS_PER_CALL`] at a time, paginated); the
    /// first caller's is used for the calls its request starts.
    pub async fn get<F, Fut>(&self, keys: &[String], call: F) -> Result<Answer, ProviderError>
    where
        F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Instance>, ProviderError>> + Send + 'static,
    {
        let mut rx = {
            let mut s = self
                .state
                .lock()
                .map_err(|_| ProviderError::transient("Internal", "instance lookups: lock poisoned", None))?;
            let batch = s.queued.get_or_insert_with(|| Batch {
                keys: BTreeSet::new(),
                tx: watch::channel(None).0,
            });
            batch.keys.extend(keys.iter().cloned());
            let rx = batch.tx.subscribe();
            if !s.running {
                s.running = true;
                tokio::spawn(drive(self.state.clone(), self.gap, call));
            }
            rx
        };
        let answer = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ProviderError::transient("Internal", "instance lookups: the call was dropped", None))?
            .clone();
        answer.ok_or_else(|| ProviderError::transient("Internal", "instance lookups: no answer", None))
    }
}

/// Send calls while keys are queued, `gap` apart.
async fn drive<F, Fut>(state: Arc<Mutex<State>>, gap: Duration, call: F)
where
    F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Instance>, ProviderError>> + Send + 'static,
{
    loop {
        let wait = state
            .lock()
            .ok()
            .and_then(|s| s.last)
            .map(|t| (t + gap).saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let batch = {
            let Ok(mut s) = state.lock() else { return };
            match s.queued.take() {
                Some(b) => {
                    s.last = Some(Instant::now());
                    b
                }
                None => {
                    s.running = false;
                    return;
                }
            }
        };
        let keys: Vec<String> = batch.keys.into_iter().collect();
        let mut found = Vec::new();
        let mut failed = None;
        for chunk in keys.chunks(KEYS_PER_CALL) {
            match call(chunk.to_vec()).await {
                Ok(v) => found.extend(v),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let answer = match failed {
            Some(e) => Err(e),
            None => Ok(found),
        };
        let _ = batch.tx.send(Some(Arc::new(answer)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn instance(id: &str) -> Instance {
        Instance::builder().instance_id(id).build()
    }

    #[tokio::test]
    async fn lookups_asked_together_share_one_call() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Coalescer::new(Duration::from_millis(50));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (c, calls) = (c.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                let key = format!("i-{i}");
                let answer = c
                    .get(std::slice::from_ref(&key), move |keys| {
                        let calls = calls.clone();
                        async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok(keys.iter().map(|k| instance(k)).collect())
                        }
                    })
                    .await
                    .expect("answer");
                let answer = answer.as_ref().as_ref().expect("found");
                assert!(answer.iter().any(|x| x.instance_id() == Some(key.as_str())));
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        // The first call takes whoever asked first; the rest wait for the
        // second. Never one call each.
        let n = calls.load(Ordering::SeqCst);
        assert!((1..=3).contains(&n), "{n} calls for 20 lookups");
    }

    #[tokio::test]
    async fn many_keys_are_split_under_the_filter_limit() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let c = Coalescer::new(Duration::ZERO);
        let keys: Vec<String> = (0..400).map(|i| format!("i-{i}")).collect();
        let s = sizes.clone();
        let answer = c
            .get(&keys, move |keys| {
                let s = s.clone();
                async move {
                    s.lock().expect("sizes").push(keys.len());
                    Ok(keys.iter().map(|k| instance(k)).collect())
                }
            })
            .await
            .expect("answer");
        assert_eq!(answer.as_ref().as_ref().expect("found").len(), 400);
        assert_eq!(*sizes.lock().expect("sizes"), vec![150, 150, 100]);
    }

    #[tokio::test]
    async fn an_error_reaches_every_caller_of_the_call() {
        let c = Coalescer::new(Duration::ZERO);
        let got = c
            .get(&["i-1".to_string()], |_| async {
                Err(ProviderError::transient("RequestLimitExceeded", "slow down", None))
            })
            .await
            .expect("answer");
        assert!(got.as_ref().as_ref().is_err());
    }
}
