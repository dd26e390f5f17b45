//! Limits shared by every invocation of the deployment, kept in the store.
//!
//! [`SharedPacer`] spaces requests to one upstream across all concurrent invocations: one item
//! holds the next free slot, taken by a conditional write, so two invocations never take the
//! same slot (MusicBrainz: one request a second for the whole deployment; Deezer: 50 per 5
//! seconds, spaced 100 ms apart). [`DailyQuota`] reserves YouTube quota units before each call
//! with an atomic counter per quota day, so the daily quota is never exceeded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backbone::clock::Clock;
use backbone::error::{Classify, ErrorClass, PortError};
use backbone::ports::{ItemKey, PutCondition, Store};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Waits. Production sleeps on tokio; tests move a manual clock.
#[async_trait]
pub trait Sleeper: Send + Sync {
    /// Returns after `duration`.
    async fn sleep(&self, duration: Duration);
}

/// Sleeps on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Why no slot was taken.
#[derive(Debug, thiserror::Error)]
pub enum PaceError {
    /// The next free slot is later than the caller can wait.
    #[error("{upstream}: the next request slot is {wait:?} away, beyond the time left")]
    TooLate {
        /// The upstream.
        upstream: String,
        /// How long until the slot.
        wait: Duration,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] PortError),
}

#[derive(Debug, Serialize, Deserialize)]
struct Slot {
    next_ms: i64,
}

/// Most attempts at taking a slot while other invocations race for it.
const MAX_RACES: usize = 20;

/// Spaces requests to one upstream across the deployment.
pub struct SharedPacer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    upstream: String,
    interval: Duration,
}

impl SharedPacer {
    /// One request to `upstream` per `interval`, deployment-wide.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sleeper: Arc<dyn Sleeper>,
        upstream: &str,
        interval: Duration,
    ) -> Self {
        Self {
            store,
            clock,
            sleeper,
            upstream: upstream.to_owned(),
            interval,
        }
    }

    /// Takes the next slot and waits for it; refuses when it is more than `max_wait` away.
    pub async fn acquire(&self, max_wait: Duration) -> Result<(), PaceError> {
        let key = ItemKey::new(format!("ratelimit#{}", self.upstream), "slot");
        let interval_ms = i64::try_from(self.interval.as_millis()).unwrap_or(i64::MAX);
        for _ in 0..MAX_RACES {
            let now_ms = self.clock.now().timestamp_millis();
            let (version, next_ms) = match self.store.get(&key).await? {
                None => (0, now_ms),
                Some(item) => {
                    let slot: Slot = serde_json::from_value(item.data)
                        .map_err(|e| PortError::permanent("pacer.decode", e))?;
                    (item.version, slot.next_ms)
                }
            };
            let mine = next_ms.max(now_ms);
            let wait = Duration::from_millis(u64::try_from(mine - now_ms).unwrap_or(0));
            if wait > max_wait {
                return Err(PaceError::TooLate {
                    upstream: self.upstream.clone(),
                    wait,
                });
            }
            let data = serde_json::json!({ "next_ms": mine.saturating_add(interval_ms) });
            // The slot item lives a minute past its slot; an idle upstream leaves nothing.
            let expires = DateTime::from_timestamp_millis(mine + 60_000);
            match self
                .store
                .put(&key, &data, PutCondition::Version(version), expires)
                .await
            {
                Ok(_) => {
                    if !wait.is_zero() {
                        self.sleeper.sleep(wait).await;
                    }
                    return Ok(());
                }
                // Another invocation took it first: read again.
                Err(PortError::Conflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(PortError::transient(
            "pacer.acquire",
            format!(
                "{}: lost the race for a slot {MAX_RACES} times",
                self.upstream
            ),
        )
        .into())
    }
}

/// The day YouTube's quota is counted in: it resets at midnight Pacific Time.
pub fn pacific_date(at: DateTime<Utc>) -> NaiveDate {
    // US daylight time: from the second Sunday of March, 02:00 PST (10:00 UTC), to the first
    // Sunday of November, 02:00 PDT (09:00 UTC).
    let year = at.year();
    let nth_sunday = |month: u32, n: u32| -> Option<NaiveDate> {
        let first = NaiveDate::from_ymd_opt(year, month, 1)?;
        let offset = (7 - first.weekday().num_days_from_sunday()) % 7;
        first.checked_add_days(chrono::Days::new(u64::from(offset + 7 * (n - 1))))
    };
    let dst = match (nth_sunday(3, 2), nth_sunday(11, 1)) {
        (Some(start), Some(end)) => {
            let start = start.and_hms_opt(10, 0, 0).map(|t| t.and_utc());
            let end = end.and_hms_opt(9, 0, 0).map(|t| t.and_utc());
            matches!((start, end), (Some(s), Some(e)) if at >= s && at < e)
        }
        _ => false,
    };
    let offset = if dst { 7 } else { 8 };
    (at - chrono::Duration::hours(offset)).date_naive()
}

/// Attempts at a quota counter update (the first included).
const QUOTA_ATTEMPTS: u32 = 3;

/// A daily quota in units, reserved before each call.
pub struct DailyQuota {
    store: Arc<dyn Store>,
    name: String,
    limit: i64,
}

impl DailyQuota {
    /// `limit` units a day for `name`.
    pub fn new(store: Arc<dyn Store>, name: &str, limit: i64) -> Self {
        Self {
            store,
            name: name.to_owned(),
            limit,
        }
    }

    fn key(&self, day: NaiveDate) -> ItemKey {
        ItemKey::new(format!("quota#{}", self.name), day.to_string())
    }

    /// Reserves `units` on `day`; `false` (and nothing reserved) when that would pass the limit.
    ///
    /// A passing store fault is retried: an add that failed may still have applied, so a retry
    /// can count units twice, which errs on the side the quota needs (fewer calls, never more).
    pub async fn reserve(&self, day: NaiveDate, units: i64) -> Result<bool, PortError> {
        let key = self.key(day);
        let after = self.add(&key, units).await?;
        if after.get("units").copied().unwrap_or(0) > self.limit {
            // Give them back: a concurrent reservation may have been the one to pass the limit,
            // but neither call is made, so the limit holds.
            self.add(&key, -units).await?;
            return Ok(false);
        }
        Ok(true)
    }

    async fn add(&self, key: &ItemKey, units: i64) -> Result<BTreeMap<String, i64>, PortError> {
        let mut attempt = 1;
        loop {
            match self.store.add(key, &[("units", units)]).await {
                Err(err) if err.class() == ErrorClass::Transient && attempt < QUOTA_ATTEMPTS => {
                    tracing::info!(quota = %self.name, error = %backbone::error::chain(&err), "quota store fault; retrying");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Units used on `day`.
    pub async fn used(&self, day: NaiveDate) -> Result<i64, PortError> {
        Ok(self
            .store
            .get(&self.key(day))
            .await?
            .and_then(|i| i.counters.get("units").copied())
            .unwrap_or(0))
    }

    /// The daily limit.
    pub fn limit(&self) -> i64 {
        self.limit
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use backbone::clock::ManualClock;
    use backbone::local::LocalDb;
    use backbone::ports::{Item, Page, Query};

    /// A store whose first reads and counter updates fail as a throttled DynamoDB would.
    pub(crate) struct Blips {
        inner: LocalDb,
        gets: AtomicUsize,
        adds: AtomicUsize,
    }

    impl Blips {
        /// Fails the first `gets` reads and the first `adds` counter updates.
        pub(crate) fn new(inner: LocalDb, gets: usize, adds: usize) -> Self {
            Self {
                inner,
                gets: AtomicUsize::new(gets),
                adds: AtomicUsize::new(adds),
            }
        }
    }

    /// Takes one from `left` if it is not zero.
    fn blip(left: &AtomicUsize) -> bool {
        left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    #[async_trait]
    impl Store for Blips {
        async fn get(&self, key: &ItemKey) -> Result<Option<Item>, PortError> {
            if blip(&self.gets) {
                return Err(PortError::transient("store.get", "throttled"));
            }
            self.inner.get(key).await
        }
        async fn put(
            &self,
            key: &ItemKey,
            data: &serde_json::Value,
            condition: PutCondition,
            expires_at: Option<DateTime<Utc>>,
        ) -> Result<u64, PortError> {
            self.inner.put(key, data, condition, expires_at).await
        }
        async fn delete(&self, key: &ItemKey) -> Result<(), PortError> {
            self.inner.delete(key).await
        }
        async fn query(&self, query: &Query) -> Result<Page, PortError> {
            self.inner.query(query).await
        }
        async fn add(
            &self,
            key: &ItemKey,
            deltas: &[(&str, i64)],
        ) -> Result<BTreeMap<String, i64>, PortError> {
            if blip(&self.adds) {
                return Err(PortError::transient("store.add", "throttled"));
            }
            self.inner.add(key, deltas).await
        }
    }

    #[tokio::test]
    async fn a_passing_store_fault_while_reserving_quota_is_retried() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let store = Arc::new(Blips::new(LocalDb::in_memory().unwrap(), 0, 2));
        let quota = DailyQuota::new(store.clone(), "youtube", 10);
        assert!(
            quota
                .reserve(day, 4)
                .await
                .expect("reserved on the third attempt")
        );
        assert_eq!(quota.used(day).await.unwrap(), 4);
        let store = Arc::new(Blips::new(LocalDb::in_memory().unwrap(), 0, 3));
        let quota = DailyQuota::new(store, "youtube", 10);
        assert!(
            quota.reserve(day, 4).await.is_err(),
            "a fault on every attempt is reported"
        );
    }

    /// Moves the manual clock instead of sleeping, and records the waits.
    struct ClockSleeper(Arc<ManualClock>, std::sync::Mutex<Vec<Duration>>);

    #[async_trait]
    impl Sleeper for ClockSleeper {
        async fn sleep(&self, d: Duration) {
            self.1.lock().unwrap().push(d);
            self.0.advance(chrono::Duration::from_std(d).unwrap());
        }
    }

    #[tokio::test]
    async fn two_pacers_on_one_store_share_one_request_a_second() {
        let db: Arc<dyn Store> = Arc::new(LocalDb::in_memory().unwrap());
        // Now: slot items expire a minute after their slot by the store's own clock.
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let sleeper = Arc::new(ClockSleeper(clock.clone(), Default::default()));
        // Two "invocations": separate pacers, one store.
        let a = SharedPacer::new(
            db.clone(),
            clock.clone(),
            sleeper.clone(),
            "musicbrainz",
            Duration::from_secs(1),
        );
        let b = SharedPacer::new(
            db.clone(),
            clock.clone(),
            sleeper.clone(),
            "musicbrainz",
            Duration::from_secs(1),
        );
        let start = clock.now();
        let mut times = Vec::new();
        for i in 0..6 {
            if i % 2 == 0 {
                a.acquire(Duration::from_secs(10)).await.unwrap()
            } else {
                b.acquire(Duration::from_secs(10)).await.unwrap()
            }
            times.push((clock.now() - start).num_milliseconds());
        }
        assert_eq!(times, vec![0, 1000, 2000, 3000, 4000, 5000]);
        // A slot further away than the caller can wait is refused, and not taken.
        let err = a.acquire(Duration::from_millis(500)).await.unwrap_err();
        assert!(matches!(err, PaceError::TooLate { .. }), "{err}");
        a.acquire(Duration::from_secs(2)).await.unwrap();
        assert_eq!((clock.now() - start).num_milliseconds(), 6000);
    }

    #[tokio::test]
    async fn quota_is_never_exceeded() {
        let db: Arc<dyn Store> = Arc::new(LocalDb::in_memory().unwrap());
        let q = DailyQuota::new(db, "youtube", 3);
        let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let mut granted = 0;
        for _ in 0..5 {
            if q.reserve(day, 1).await.unwrap() {
                granted += 1;
            }
        }
        assert_eq!((granted, q.used(day).await.unwrap()), (3, 3));
        assert!(
            q.reserve(day.succ_opt().unwrap(), 1).await.unwrap(),
            "a new quota day"
        );
    }

    #[test]
    fn quota_day_follows_pacific_time() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Winter: midnight PST is 08:00 UTC.
        assert_eq!(
            pacific_date(t("2026-12-02T07:59:00Z")).to_string(),
            "2026-12-01"
        );
        assert_eq!(
            pacific_date(t("2026-12-02T08:00:00Z")).to_string(),
            "2026-12-02"
        );
        // Summer: midnight PDT is 07:00 UTC.
        assert_eq!(
            pacific_date(t("2026-07-02T07:00:00Z")).to_string(),
            "2026-07-02"
        );
        assert_eq!(
            pacific_date(t("2026-07-02T06:59:00Z")).to_string(),
            "2026-07-01"
        );
        // 2026: DST from March 8 to November 1.
        assert_eq!(
            pacific_date(t("2026-03-08T09:30:00Z")).to_string(),
            "2026-03-08"
        );
        assert_eq!(
            pacific_date(t("2026-03-08T07:30:00Z")).to_string(),
            "2026-03-07"
        );
    }
}
