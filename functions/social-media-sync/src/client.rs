//! Calls to the upstreams: pacing, retries of passing faults, and a count of every request.
//!
//! A 429 or 5xx (MusicBrainz sheds load with 503) is retried up to [`MAX_ATTEMPTS`] times,
//! waiting the `Retry-After` sent (or a short backoff) when that fits in the time left; past
//! that the call fails as rate limited or transient, and the caller reports it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
            if let Some(pacer) = self.pacers.get(upstream) {
                pacer
                    .acquire(time_left.min(Duration::from_secs(60)))
                    .await?;
            }
            *self
                .counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(upstream.to_owned())
                .or_default() += 1;
            let backoff = Duration::from_millis(200 * u64::from(attempt));
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
