//! `hke janitor`: find clusters whose time is up by their tags
//! (`hke.io/created` + `hke.io/ttl`, or `--older-than`) and tear each one
//! down by tag sweep. Resources without an `hke.io/cluster` tag are never
//! looked at, and a cluster without a TTL is kept unless `--older-than` says
//! otherwise.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hke_provider_api::{Found, ProviderError, TAG_CLUSTER, TAG_CREATED, TAG_TTL};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::engine::{EventSink, RetryPolicy};
use crate::ops::deploy::{self, DeployError, TeardownOptions};
use crate::ops::target::{provider_for, Target};

pub struct Options {
    /// The cloud and where on it (no cluster: the janitor finds them).
    pub target: Target,
    /// Expire clusters created longer ago than this, whatever their TTL.
    pub older_than: Option<Duration>,
    pub dry_run: bool,
    /// Only clusters with every one of these tags (`key`, `value`).
    pub include: Vec<(String, String)>,
    /// Never clusters with any of these tags.
    pub exclude: Vec<(String, String)>,
    pub now: OffsetDateTime,
    pub parallelism: usize,
    pub retry: RetryPolicy,
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

/// A cluster found by its tags.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub cluster: String,
    pub created: Option<String>,
    pub ttl: Option<String>,
    /// When its time is up (created + TTL or `--older-than`), if known.
    pub expires: Option<String>,
    pub resources: usize,
    pub expired: bool,
    /// Why it is kept or expired.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failed {
    pub cluster: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub cloud: String,
    pub now: String,
    pub dry_run: bool,
    /// Clusters whose time is up (deleted unless `dryRun`).
    pub expired: Vec<Candidate>,
    /// Clusters kept, with the reason.
    pub kept: Vec<Candidate>,
    pub deleted: Vec<String>,
    pub failed: Vec<Failed>,
}

/// `3h`, `90m`, `1h30m`, `45s`, `2d`, `1w`: the durations `--ttl` and
/// `--older-than` take.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration; use e.g. 90m, 3h, 1h30m, 2d");
    let mut total = 0u64;
    let mut num = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Group what the cloud holds by cluster and decide which have expired.
pub fn candidates(found: &[Found], opts: &Options) -> Vec<Candidate> {
    let mut by_cluster: BTreeMap<&str, Vec<&Found>> = BTreeMap::new();
    for f in found {
        if let Some(c) = f.tags.get(TAG_CLUSTER) {
            by_cluster.entry(c.as_str()).or_default().push(f);
        }
    }
    let mut out = Vec::new();
    for (cluster, items) in by_cluster {
        let has = |k: &str, v: &str| items.iter().any(|f| f.tags.get(k).is_some_and(|x| x == v));
        if !opts.include.iter().all(|(k, v)| has(k, v)) || opts.exclude.iter().any(|(k, v)| has(k, v)) {
            continue;
        }
        // The earliest creation time and the TTL any resource carries.
        let created = items.iter().filter_map(|f| f.tags.get(TAG_CREATED)).min().cloned();
        let ttl = items.iter().filter_map(|f| f.tags.get(TAG_TTL)).next().cloned();
        let created_at = created.as_deref().and_then(|c| OffsetDateTime::parse(c, &Rfc3339).ok());
        let lifetime = match (opts.older_than, ttl.as_deref().map(parse_duration)) {
            (Some(d), _) => Ok(Some(d)),
            (None, Some(Ok(d))) => Ok(Some(d)),
            (None, Some(Err(e))) => Err(format!("its {TAG_TTL} tag: {e}")),
            (None, None) => Ok(None),
        };
        let (expired, expires, reason) = match (created_at, lifetime) {
            (None, _) => (
                false,
                None,
                format!("no readable {TAG_CREATED} tag: kept (delete it with `hke teardown --cluster {cluster}`)"),
            ),
            (_, Err(e)) => (false, None, format!("{e}: kept")),
            (Some(_), Ok(None)) => (false, None, format!("no {TAG_TTL} tag and no --older-than: kept")),
            (Some(at), Ok(Some(d))) => {
                let end = at + d;
                let when = end.format(&Rfc3339).ok();
                if opts.now >= end {
                    (true, when, "its time is up".to_string())
                } else {
                    (false, when, "not yet expired".to_string())
                }
            }
        };
        out.push(Candidate {
            cluster: cluster.to_string(),
            created,
            ttl,
            expires,
            resources: items.len(),
            expired,
            reason,
        });
    }
    out
}

/// Find and (unless a dry run) tear down every expired cluster.
pub async fn run(opts: Options, events: EventSink) -> Result<Report, DeployError> {
    let provider = provider_for(&opts.target).await?;
    // A cloud that refuses the listing is not a usage error: keep its class.
    let found = provider.list_all().await.map_err(|e| {
        DeployError::Cloud(ProviderError {
            message: format!("cannot list the clusters on {}: {}", opts.target.cloud, e.message),
            ..e
        })
    })?;
    drop(provider);
    let all = candidates(&found, &opts);
    let (expired, kept): (Vec<Candidate>, Vec<Candidate>) = all.into_iter().partition(|c| c.expired);
    let mut report = Report {
        cloud: opts.target.cloud.to_string(),
        now: opts.now.format(&Rfc3339).unwrap_or_default(),
        dry_run: opts.dry_run,
        expired,
        kept,
        deleted: Vec::new(),
        failed: Vec::new(),
    };
    if opts.dry_run {
        return Ok(report);
    }
    // Teardown needs a directory for its lock and journal; the janitor has
    // no state, so each cluster gets a scratch one and the tag sweep does
    // the rest.
    let scratch = tempfile::tempdir().map_err(|e| DeployError::Io(std::env::temp_dir(), e))?;
    for c in &report.expired {
        if opts.cancel.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let target = Target {
            cluster: c.cluster.clone(),
            ..opts.target.clone()
        };
        let result = deploy::teardown(
            &target,
            TeardownOptions {
                dir: scratch.path().join(&c.cluster),
                retry: opts.retry.clone(),
                parallelism: opts.parallelism,
                cancel: opts.cancel.clone(),
            },
            events.clone(),
            None,
        )
        .await;
        match result {
            Ok(_) => report.deleted.push(c.cluster.clone()),
            Err(e) => report.failed.push(Failed {
                cluster: c.cluster.clone(),
                error: e.to_string(),
            }),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3h"), Ok(Duration::from_secs(3 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "3", "h", "3x", "1.5h", "-3h", "99999999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    fn found(cluster: &str, created: Option<&str>, ttl: Option<&str>, extra: &[(&str, &str)]) -> Found {
        let mut tags = BTreeMap::new();
        tags.insert(TAG_CLUSTER.to_string(), cluster.to_string());
        if let Some(c) = created {
            tags.insert(TAG_CREATED.to_string(), c.to_string());
        }
        if let Some(t) = ttl {
            tags.insert(TAG_TTL.to_string(), t.to_string());
        }
        for (k, v) in extra {
            tags.insert(k.to_string(), v.to_string());
        }
        Found {
            kind: hke_provider_api::Kind::Network,
            name: format!("{cluster}-vnet"),
            id: format!("id-{cluster}"),
            tags,
        }
    }

    fn opts(older_than: Option<Duration>) -> Options {
        Options {
            target: Target::resolve(
                crate::model::types::Cloud::Fake,
                "",
                None,
                &Default::default(),
                &Default::default(),
            )
            .expect("target"),
            older_than,
            dry_run: true,
            include: vec![],
            exclude: vec![],
            now: time::macros::datetime!(2026-11-22 12:00 UTC),
            parallelism: 1,
            retry: RetryPolicy::default(),
            cancel: Default::default(),
        }
    }

    #[test]
    fn expiry_follows_created_plus_ttl_or_older_than() {
        let found = vec![
            found("old", Some("2026-11-22T08:00:00Z"), Some("3h"), &[]),
            found("old", Some("2026-11-22T08:00:05Z"), Some("3h"), &[]),
            found("fresh", Some("2026-11-22T11:00:00Z"), Some("3h"), &[]),
            found("forever", Some("2026-11-01T00:00:00Z"), None, &[]),
            found("undated", None, Some("1h"), &[]),
            found("garbled", Some("2026-11-01T00:00:00Z"), Some("soon"), &[]),
        ];
        let c = candidates(&found, &opts(None));
        let expired: Vec<&str> = c.iter().filter(|c| c.expired).map(|c| c.cluster.as_str()).collect();
        assert_eq!(expired, vec!["old"]);
        let old = c.iter().find(|c| c.cluster == "old").expect("old");
        assert_eq!(old.resources, 2);
        assert_eq!(
            old.expires.as_deref(),
            Some("2026-11-22T11:00:00Z"),
            "from the earliest creation"
        );
        assert!(c
            .iter()
            .any(|c| c.cluster == "garbled" && c.reason.contains("not a duration")));
        // --older-than overrides TTLs (and applies to clusters without one).
        let c = candidates(&found, &opts(Some(Duration::from_secs(7 * 86_400))));
        let expired: Vec<&str> = c.iter().filter(|c| c.expired).map(|c| c.cluster.as_str()).collect();
        assert_eq!(expired, vec!["forever", "garbled"]);
    }

    #[test]
    fn include_and_exclude_tags_select_clusters() {
        let found = vec![
            found("a", Some("2026-11-01T00:00:00Z"), Some("1h"), &[("team", "win")]),
            found(
                "b",
                Some("2026-11-01T00:00:00Z"),
                Some("1h"),
                &[("team", "win"), ("keep", "true")],
            ),
            found("c", Some("2026-11-01T00:00:00Z"), Some("1h"), &[]),
        ];
        let mut o = opts(None);
        o.include = vec![("team".into(), "win".into())];
        o.exclude = vec![("keep".into(), "true".into())];
        let names: Vec<String> = candidates(&found, &o).into_iter().map(|c| c.cluster).collect();
        assert_eq!(names, vec!["a"]);
    }
}
