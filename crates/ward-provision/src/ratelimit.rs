//! Rate limiting and aggregation of unauthenticated failures (refused or timed-out
//! handshakes), per client IP address.
//!
//! Each address has a token bucket of `failures_burst` tokens refilled at
//! `failures_per_minute`. A failure that finds a token is logged as its own audit record; one
//! that finds none is only counted, and the counts are written as one `failures_aggregated`
//! record per address (when the address next gets a token, or every `failures_report_ms`).
//! While an address has no token, its new connections are closed before the TLS handshake, so
//! a flood costs neither evidence verification nor a disk sync per attempt; they are counted as
//! `rate_limited`. Every failure is accounted for, individually or in an aggregate.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// The most addresses tracked at once; beyond it, the fullest buckets are forgotten first.
const MAX_TRACKED: usize = 16_384;

/// Failures from one address that were counted instead of logged one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Aggregate {
    pub ip: IpAddr,
    /// By event: `handshake_refused`, `handshake_timeout`, `rate_limited`.
    pub events: BTreeMap<&'static str, u64>,
    pub first: std::time::SystemTime,
    pub last: std::time::SystemTime,
    /// The last reason seen (for a counted handshake failure).
    pub last_reason: Option<String>,
    started: Instant,
}

impl Aggregate {
    pub(crate) fn count(&self) -> u64 {
        self.events.values().sum()
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
    pending: Option<Aggregate>,
}

/// The per-address limiter (see the module doc).
pub(crate) struct FailureLimiter {
    burst: f64,
    per_second: f64,
    report_after: std::time::Duration,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl FailureLimiter {
    pub(crate) fn new(burst: u32, per_minute: u32, report_ms: u64) -> FailureLimiter {
        FailureLimiter {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            report_after: std::time::Duration::from_millis(report_ms),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Bucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * self.per_second).min(self.burst);
        b.at = now;
    }

    /// Whether a new connection from `ip` may proceed to its handshake. A refused one is
    /// counted as `rate_limited`.
    pub(crate) fn admit(&self, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.lock();
        let Some(b) = map.get_mut(&ip) else {
            return true;
        };
        self.refill(b, now);
        if b.tokens >= 1.0 {
            return true;
        }
        count(b, ip, "rate_limited", None, now);
        false
    }

    /// Records an unauthenticated failure from `ip`. Returns whether to log it individually,
    /// and the aggregate to write first (the counts since `ip` last had a token).
    pub(crate) fn failure(
        &self,
        ip: IpAddr,
        event: &'static str,
        reason: Option<&str>,
        now: Instant,
    ) -> (bool, Option<Aggregate>) {
        let mut map = self.lock();
        if !map.contains_key(&ip) && map.len() >= MAX_TRACKED {
            evict(&mut map, self, now);
        }
        let b = map.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at: now,
            pending: None,
        });
        self.refill(b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            (true, b.pending.take())
        } else {
            count(b, ip, event, reason, now);
            (false, None)
        }
    }

    /// Aggregates older than `failures_report_ms`, taken to be written; forgets addresses whose
    /// bucket is full again with nothing pending.
    pub(crate) fn due(&self, now: Instant) -> Vec<Aggregate> {
        let mut map = self.lock();
        let mut out = Vec::new();
        map.retain(|_, b| {
            self.refill(b, now);
            if b.pending
                .as_ref()
                .is_some_and(|a| now.saturating_duration_since(a.started) >= self.report_after)
            {
                out.extend(b.pending.take());
            }
            b.pending.is_some() || b.tokens < self.burst
        });
        out
    }

    /// Everything pending (at shutdown).
    pub(crate) fn drain(&self) -> Vec<Aggregate> {
        self.lock()
            .values_mut()
            .filter_map(|b| b.pending.take())
            .collect()
    }
}

fn count(b: &mut Bucket, ip: IpAddr, event: &'static str, reason: Option<&str>, now: Instant) {
    let wall = std::time::SystemTime::now();
    let a = b.pending.get_or_insert_with(|| Aggregate {
        ip,
        events: BTreeMap::new(),
        first: wall,
        last: wall,
        last_reason: None,
        started: now,
    });
    *a.events.entry(event).or_insert(0) += 1;
    a.last = wall;
    if let Some(r) = reason {
        // Bounded: a reason is the server's own text, but keep the record small.
        a.last_reason = Some(r.chars().take(512).collect());
    }
}

/// Drops the tracked addresses with the most tokens and nothing pending (a full table under a
/// spoofed-source flood must not grow without bound, nor lose counts it still has to report).
fn evict(map: &mut HashMap<IpAddr, Bucket>, limiter: &FailureLimiter, now: Instant) {
    for b in map.values_mut() {
        limiter.refill(b, now);
    }
    let mut idle: Vec<(IpAddr, f64)> = map
        .iter()
        .filter(|(_, b)| b.pending.is_none())
        .map(|(ip, b)| (*ip, b.tokens))
        .collect();
    idle.sort_by(|a, b| b.1.total_cmp(&a.1));
    let drop = (map.len() / 4).max(1);
    for (ip, _) in idle.into_iter().take(drop) {
        map.remove(&ip);
    }
    if map.len() >= MAX_TRACKED {
        // All pending: forget the one with the fewest counted (its counts are lost to the log,
        // which the next aggregate from it will show restarting).
        if let Some(ip) = map
            .iter()
            .min_by_key(|(_, b)| b.pending.as_ref().map_or(0, Aggregate::count))
            .map(|(ip, _)| *ip)
        {
            map.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn a_burst_is_logged_then_counted_and_every_failure_accounted_for() {
        let l = FailureLimiter::new(3, 60, 1000);
        let t0 = Instant::now();
        let mut logged = 0;
        for _ in 0..10 {
            let (log, flush) = l.failure(ip(1), "handshake_refused", Some("no cert"), t0);
            assert!(flush.is_none());
            logged += u64::from(log);
        }
        assert_eq!(logged, 3);
        // Out of tokens: new connections are closed before the handshake, and counted.
        assert!(!l.admit(ip(1), t0));
        // Another address is unaffected.
        assert!(l.admit(ip(2), t0));
        assert_eq!(
            l.failure(ip(2), "handshake_timeout", None, t0),
            (true, None)
        );
        // Not yet due.
        assert!(l.due(t0 + Duration::from_millis(500)).is_empty());
        let due = l.due(t0 + Duration::from_millis(1000));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].ip, ip(1));
        assert_eq!(due[0].events["handshake_refused"], 7);
        assert_eq!(due[0].events["rate_limited"], 1);
        assert_eq!(due[0].last_reason.as_deref(), Some("no cert"));
        assert_eq!(logged + due[0].count() - 1, 10);
    }

    #[test]
    fn tokens_come_back_and_the_next_logged_failure_carries_the_counts() {
        let l = FailureLimiter::new(1, 60, 60_000);
        let t0 = Instant::now();
        assert!(l.failure(ip(1), "handshake_refused", None, t0).0);
        assert!(!l.failure(ip(1), "handshake_refused", None, t0).0);
        assert!(!l.admit(ip(1), t0 + Duration::from_millis(500)));
        // One per second: a token is back after a second.
        let t1 = t0 + Duration::from_millis(1001);
        assert!(l.admit(ip(1), t1));
        let (log, flush) = l.failure(ip(1), "handshake_timeout", None, t1);
        assert!(log);
        let flush = flush.expect("the counts since the last logged failure");
        assert_eq!(flush.count(), 2);
        // A full bucket with nothing pending is forgotten.
        assert!(l.due(t1 + Duration::from_secs(5)).is_empty());
        assert!(l.lock().is_empty());
    }

    #[test]
    fn the_table_stays_bounded_under_many_addresses() {
        let l = FailureLimiter::new(1, 1, 60_000);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            let a = IpAddr::from(i.to_be_bytes());
            l.failure(a, "handshake_refused", None, t0);
        }
        assert!(l.lock().len() <= MAX_TRACKED);
    }
}
