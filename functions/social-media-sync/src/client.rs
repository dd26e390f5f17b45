//! Calls to the upstreams: pacing, retries of passing faults, and a count of every request.
//!
//! A 429 or 5xx (MusicBrainz sheds load with 503), a transport failure, or a passing fault of
//! the store holding a paced upstream's slot is retried up to [`MAX_ATTEMPTS`] times, waiting the `Retry-After` sent (or a short backoff) when that fits in the time left; past
//! that the call fails as rate limited or transient, and the caller reports it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backbone::error::{Classify, ErrorClass};
use backbone::ports::{WebApi, WebRequest, WebResponse};

use crate::pacing::{PaceError, SharedPacer, Sleeper};

/// Attempts per request (the first included).
pub const MAX_ATTEMPTS: u32 = 3;
/// The longest `Retry-After` waited in an invocation; longer ones fail the call.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// Why a call gave no usable response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The upstream kept answering 429 (or asked to wait longer than we can).
    #[error("{upstream}: rate limited (HTTP {status}){}", after(.retry_after))]
    RateLimited {
        /// The upstream.
        upstream: &'static str,
        /// The last status.
        status: u16,
        /// The wait it asked for.
        retry_after: Option<Duration>,
    },
    /// 5xx or a transport failure, every attempt.
    #[error("{upstream}: unavailable: {reason}")]
    Unavailable {
        /// The upstream.
        upstream: &'static str,
        /// The last failure.
        reason: String,
    },
    /// No request slot within the time left.
    #[error(transparent)]
    Pace(#[from] PaceError),
}

fn after(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", retry after {}s", d.as_secs()))
        .unwrap_or_default()
}

/// Sends requests, paced where the upstream has a deployment-wide limit, and counts them.
pub struct Caller {
    web: Arc<dyn WebApi>,
    sleeper: Arc<dyn Sleeper>,
    pacers: BTreeMap<&'static str, SharedPacer>,
    counts: Mutex<BTreeMap<String, u64>>,
}

impl Caller {
    /// A caller on `web` that paces the upstreams in `pacers`.
    pub fn new(
        web: Arc<dyn WebApi>,
        sleeper: Arc<dyn Sleeper>,
        pacers: BTreeMap<&'static str, SharedPacer>,
    ) -> Self {
        Self {
            web,
            sleeper,
            pacers,
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Requests sent per upstream (retries included).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits `duration` (on the caller's sleeper: tests move a clock instead).
    pub async fn pause(&self, duration: Duration) {
        self.sleeper.sleep(duration).await;
    }

    /// Sends `request`, retrying passing faults; any other status is returned as it came.
    /// `time_left` bounds every wait.
    pub async fn get(
        &self,
        request: &WebRequest,
        time_left: Duration,
    ) -> Result<WebResponse, CallError> {
        let upstream = request.upstream;
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let backoff = Duration::from_millis(200 * u64::from(attempt));
            if let Some(pacer) = self.pacers.get(upstream) {
                match pacer.acquire(time_left.min(Duration::from_secs(60))).await {
                    Ok(()) => {}
                    // A passing fault of the store that holds the slot is retried like one of
                    // the upstream: a blip there must not cost the artist this platform.
                    Err(PaceError::Store(err))
                        if err.class() == ErrorClass::Transient && attempt < MAX_ATTEMPTS =>
                    {
                        tracing::info!(upstream, error = %backbone::error::chain(&err), "pacer store fault; retrying");
                        if backoff < time_left {
                            self.sleeper.sleep(backoff).await;
                        }
                        continue;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            *self
                .counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(upstream.to_owned())
                .or_default() += 1;
            match self.web.get(request).await {
                Ok(r) if r.status == 429 || (upstream == "musicbrainz" && r.status == 503) => {
                    let wait = r.retry_after.unwrap_or(backoff);
                    if attempt == MAX_ATTEMPTS || wait > MAX_RETRY_WAIT || wait >= time_left {
                        return Err(CallError::RateLimited {
                            upstream,
                            status: r.status,
                            retry_after: r.retry_after,
                        });
                    }
                    tracing::info!(
                        upstream,
                        status = r.status,
                        wait_ms = wait.as_millis() as u64,
                        "rate limited; waiting"
                    );
                    self.sleeper.sleep(wait).await;
                }
                Ok(r) if r.status >= 500 => {
                    last = format!("HTTP {}", r.status);
                    if attempt < MAX_ATTEMPTS && backoff < time_left {
                        self.sleeper.sleep(backoff).await;
                    }
                }
                Ok(r) => return Ok(r),
                Err(err) => {
                    last = backbone::error::chain(&err);
                    if attempt < MAX_ATTEMPTS && backoff < time_left {
                        self.sleeper.sleep(backoff).await;
                    }
                }
            }
        }
        Err(CallError::Unavailable {
            upstream,
            reason: last,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use backbone::clock::ManualClock;
    use backbone::error::PortError;
    use backbone::local::LocalDb;
    use chrono::Utc;

    use super::*;
    use crate::pacing::tests::Blips;

    /// Answers every request 200, counting them.
    #[derive(Default)]
    struct Ok200(AtomicUsize);

    #[async_trait]
    impl WebApi for Ok200 {
        async fn get(&self, _request: &WebRequest) -> Result<WebResponse, PortError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(WebResponse {
                status: 200,
                body: b"{}".to_vec(),
                retry_after: None,
            })
        }
    }

    struct NoSleep;

    #[async_trait]
    impl Sleeper for NoSleep {
        async fn sleep(&self, _duration: Duration) {}
    }

    fn caller(fail: usize, web: Arc<Ok200>) -> Caller {
        let store = Arc::new(Blips::new(LocalDb::in_memory().unwrap(), fail, 0));
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let pacer = SharedPacer::new(
            store,
            clock,
            Arc::new(NoSleep),
            "musicbrainz",
            Duration::from_secs(1),
        );
        Caller::new(
            web,
            Arc::new(NoSleep),
            [("musicbrainz", pacer)].into_iter().collect(),
        )
    }

    fn request() -> WebRequest {
        WebRequest {
            upstream: "musicbrainz",
            path: "/ws/2/artist".into(),
            query: Vec::new(),
            secret_query: None,
            bearer: None,
        }
    }

    #[tokio::test]
    async fn a_passing_store_fault_while_pacing_is_retried() {
        let web = Arc::new(Ok200::default());
        let response = caller(MAX_ATTEMPTS as usize - 1, web.clone())
            .get(&request(), Duration::from_secs(30))
            .await
            .expect("the slot is taken on the last attempt");
        assert_eq!(response.status, 200);
        assert_eq!(web.0.load(Ordering::SeqCst), 1, "one request sent");
    }

    #[tokio::test]
    async fn a_store_fault_on_every_attempt_fails_the_call_unsent() {
        let web = Arc::new(Ok200::default());
        let err = caller(MAX_ATTEMPTS as usize, web.clone())
            .get(&request(), Duration::from_secs(30))
            .await
            .expect_err("no slot on any attempt");
        assert!(matches!(err, CallError::Pace(PaceError::Store(_))), "{err}");
        assert_eq!(web.0.load(Ordering::SeqCst), 0, "nothing sent unpaced");
    }
}
