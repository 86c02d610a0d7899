//! Request-rate limits per account and operation, as ECR applies its API quotas: one token
//! bucket per (account, operation) that refills at `rate` tokens a second up to `burst`. Both
//! front doors ask once per request, after the caller is known, under the ECR operation name
//! the request maps to (a `/v2` manifest GET is `BatchGetImage`, a PATCH `UploadLayerPart`).
//!
//! Node-local state: each node of a cluster limits on its own, so a client spread over N nodes
//! may get up to N times the rate (there is no cluster answer; ECR's quotas are not exact
//! either). Memory stays bounded whatever calls: a bucket that has refilled to its burst is the
//! same as a missing one, so idle accounts are dropped in a sweep that runs whenever the table
//! has doubled since the last one, and at most [`MAX_ACCOUNTS`] accounts are tracked at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::authz::Caller;

/// Most accounts tracked at once. Beyond it (only reachable with that many accounts active
/// within one refill time), an arbitrary account is forgotten, which grants it a fresh burst.
pub const MAX_ACCOUNTS: usize = 100_000;
/// The table is not swept before it holds this many accounts.
const FIRST_SWEEP: usize = 1024;

/// One operation's limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second (more than 0).
    pub per_second: f64,
    /// Requests allowed at once after an idle period (at least 1).
    pub burst: u32,
}

/// The limits, by ECR operation name. Operations not named are not limited.
pub type Limits = BTreeMap<String, Rate>;

/// A request refused because its account exceeded the operation's rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub operation: String,
    /// When one more request would be admitted.
    pub retry_after: Duration,
}

impl Throttled {
    /// `retry_after` in whole seconds, rounded up and at least 1 (HTTP's `Retry-After`).
    #[must_use]
    pub fn retry_after_secs(&self) -> u64 {
        let whole = self.retry_after.as_secs();
        let secs = if self.retry_after.subsec_nanos() > 0 { whole + 1 } else { whole };
        secs.max(1)
    }
}

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rate exceeded for {}; retry in {} s", self.operation, self.retry_after_secs())
    }
}

impl std::error::Error for Throttled {}

/// Checks that every rate is above 0 and every burst at least 1.
///
/// # Errors
/// The first limit that is not, named.
pub fn check(limits: &Limits) -> Result<(), String> {
    for (op, r) in limits {
        if !(r.per_second.is_finite() && r.per_second > 0.0) {
            return Err(format!("throttle.{op}: rate must be a number above 0"));
        }
        if r.burst == 0 {
            return Err(format!("throttle.{op}: burst must be at least 1"));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn level(&self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst))
    }
}

struct Table {
    /// Per account, one bucket per configured operation (`None`: full).
    accounts: HashMap<String, Vec<Option<Bucket>>>,
    sweep_at: usize,
}

pub(crate) struct Throttle {
    /// The configured operations, in a fixed order that indexes each account's buckets.
    ops: Vec<(String, Rate)>,
    table: Mutex<Table>,
}

impl Throttle {
    pub(crate) fn new(limits: &Limits) -> Self {
        Throttle {
            ops: limits.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            table: Mutex::new(Table { accounts: HashMap::new(), sweep_at: FIRST_SWEEP }),
        }
    }

    /// Takes one token of `operation` for `caller`'s account. Anonymous callers share one
    /// bucket per operation.
    pub(crate) fn admit(&self, caller: &Caller, operation: &str, now: Instant) -> Result<(), Throttled> {
        let Some(index) = self.ops.iter().position(|(op, _)| op == operation) else { return Ok(()) };
        let rate = self.ops[index].1;
        let account = match caller {
            Caller::Anonymous => "",
            Caller::Principal(p) => p.account.as_str(),
        };
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !table.accounts.contains_key(account) {
            self.make_room(&mut table, now);
            table.accounts.insert(account.to_owned(), vec![None; self.ops.len()]);
        }
        let slot = &mut table.accounts.get_mut(account).expect("inserted above")[index];
        let level = slot.map_or(f64::from(rate.burst), |b| b.level(rate, now));
        if level >= 1.0 {
            *slot = Some(Bucket { tokens: level - 1.0, at: now });
            return Ok(());
        }
        *slot = Some(Bucket { tokens: level, at: now });
        Err(Throttled {
            operation: operation.to_owned(),
            retry_after: Duration::from_secs_f64((1.0 - level) / rate.per_second),
        })
    }

    /// Before a new account is added: drops accounts whose buckets are all full once the table
    /// has doubled, and one arbitrary account at the hard cap.
    fn make_room(&self, table: &mut Table, now: Instant) {
        if table.accounts.len() >= table.sweep_at {
            let ops = &self.ops;
            table.accounts.retain(|_, buckets| {
                buckets
                    .iter()
                    .zip(ops)
                    .any(|(b, (_, rate))| b.is_some_and(|b| b.level(*rate, now) < f64::from(rate.burst)))
            });
            table.sweep_at = (table.accounts.len() * 2).max(FIRST_SWEEP);
        }
        if table.accounts.len() >= MAX_ACCOUNTS
            && let Some(victim) = table.accounts.keys().next().cloned()
        {
            table.accounts.remove(&victim);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).accounts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{Origin, Principal};

    fn principal(account: &str) -> Caller {
        Caller::Principal(Principal {
            account: berth_types::AccountId::parse(account).unwrap(),
            arn: format!("arn:aws:iam::{account}:user/u"),
            origin: Origin { ip: None, secure: false },
            issued_at_ms: None,
        })
    }

    fn limits(op: &str, per_second: f64, burst: u32) -> Limits {
        Limits::from([(op.to_owned(), Rate { per_second, burst })])
    }

    #[test]
    fn a_burst_is_admitted_then_the_rate_holds() {
        let t = Throttle::new(&limits("PutImage", 10.0, 3));
        let (a, t0) = (principal("111111111111"), Instant::now());
        for _ in 0..3 {
            assert_eq!(t.admit(&a, "PutImage", t0), Ok(()));
        }
        let refused = t.admit(&a, "PutImage", t0).unwrap_err();
        assert_eq!(refused.operation, "PutImage");
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(refused.retry_after_secs(), 1);
        assert!(refused.to_string().starts_with("Rate exceeded"), "{refused}");
        // One token comes back every 100 ms, not sooner.
        assert!(t.admit(&a, "PutImage", t0 + Duration::from_millis(50)).is_err());
        assert_eq!(t.admit(&a, "PutImage", t0 + Duration::from_millis(100)), Ok(()));
        assert!(t.admit(&a, "PutImage", t0 + Duration::from_millis(101)).is_err());
        // After a long idle period the bucket holds its burst, no more.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(t.admit(&a, "PutImage", later), Ok(()));
        }
        assert!(t.admit(&a, "PutImage", later).is_err());
    }

    #[test]
    fn accounts_and_operations_have_their_own_buckets() {
        let mut l = limits("PutImage", 1.0, 1);
        l.insert("BatchGetImage".into(), Rate { per_second: 1.0, burst: 1 });
        let t = Throttle::new(&l);
        let now = Instant::now();
        let (a, b) = (principal("111111111111"), principal("222222222222"));
        assert_eq!(t.admit(&a, "PutImage", now), Ok(()));
        assert!(t.admit(&a, "PutImage", now).is_err());
        assert_eq!(t.admit(&a, "BatchGetImage", now), Ok(()), "another operation");
        assert_eq!(t.admit(&b, "PutImage", now), Ok(()), "another account");
        assert_eq!(t.admit(&Caller::Anonymous, "PutImage", now), Ok(()));
        assert!(t.admit(&Caller::Anonymous, "PutImage", now).is_err(), "anonymous callers share a bucket");
        for _ in 0..100 {
            assert_eq!(t.admit(&a, "ListImages", now), Ok(()), "operations without a limit are not limited");
        }
        let refused = t.admit(&a, "PutImage", now).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
    }

    #[test]
    fn slow_rates_give_long_retry_times() {
        let t = Throttle::new(&limits("CreateRepository", 0.1, 1));
        let (a, now) = (principal("111111111111"), Instant::now());
        assert_eq!(t.admit(&a, "CreateRepository", now), Ok(()));
        assert_eq!(t.admit(&a, "CreateRepository", now).unwrap_err().retry_after_secs(), 10);
        let refused = t.admit(&a, "CreateRepository", now + Duration::from_millis(2500)).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 8, "{refused:?}");
    }

    #[test]
    fn idle_accounts_are_forgotten_and_memory_is_bounded() {
        let t = Throttle::new(&limits("BatchGetImage", 100.0, 2));
        let t0 = Instant::now();
        // A busy account (bucket below its burst) must survive every sweep.
        let busy = principal("000000000000");
        assert_eq!(t.admit(&busy, "BatchGetImage", t0), Ok(()));
        for i in 0..10 * FIRST_SWEEP {
            // Each account calls once and then stays idle; 20 ms later its bucket is full again.
            let at = t0 + Duration::from_millis(u64::try_from(i).unwrap());
            assert_eq!(t.admit(&principal(&format!("{i:012}")), "BatchGetImage", at), Ok(()));
            assert!(t.tracked() <= FIRST_SWEEP, "{} accounts tracked after {i}", t.tracked());
            if i % 5 == 0 {
                let _ = t.admit(&busy, "BatchGetImage", at);
                let _ = t.admit(&busy, "BatchGetImage", at);
            }
        }
        let end = t0 + Duration::from_millis(u64::try_from(10 * FIRST_SWEEP).unwrap());
        // Forgotten, it would have a fresh burst of 2; kept, it holds at most one token.
        let (first, second) = (t.admit(&busy, "BatchGetImage", end), t.admit(&busy, "BatchGetImage", end));
        assert!(first.is_err() || second.is_err(), "the busy account kept its bucket");
    }

    #[test]
    fn limits_are_checked() {
        assert!(check(&limits("PutImage", 10.0, 10)).is_ok());
        assert!(check(&limits("PutImage", 0.0, 10)).is_err());
        assert!(check(&limits("PutImage", f64::NAN, 10)).is_err());
        assert!(check(&limits("PutImage", 1.0, 0)).is_err());
    }
}
