//! `tasks serve`: the function set as a long-lived local service on the embedded default.
//!
//! Three parts run side by side until a shutdown signal:
//! - the schedules of `template.yaml` ([`crate::schedule`]) fire on the local clock and invoke
//!   their function with the input EventBridge Scheduler would send;
//! - one worker per function delivers its durable local queue in batches of 10, as Lambda's
//!   SQS event source mapping would;
//! - an HTTP server answers `GET /metrics` (Prometheus text exposition of the EMF metrics the
//!   functions write, see [`backbone::telemetry::prometheus`]) and `GET /healthz`.
//!
//! On shutdown nothing new starts: the scheduler stops firing, each worker finishes the batch
//! it holds (its messages are deleted or handed back as usual) and takes no other, and the
//! messages still queued stay in the database for the next start. Bound to loopback by
//! default; any other address needs a token, checked on every request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use backbone::clock::Clock;
use backbone::local::Invoke;
use backbone::telemetry::prometheus::Registry;
use backbone::telemetry::{LineSink, Metrics};
use backbone::{ExposeSecret, SecretString};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Local;
use crate::schedule::Schedule;

/// The address `tasks serve` listens on unless told otherwise (Prometheus exporters' range).
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// How often an idle worker looks at its queue, and the scheduler at its clock.
pub const POLL: Duration = Duration::from_millis(200);

/// Why the service could not start or went down.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without a token.
    #[error(
        "binding {0} (not loopback) needs a token: set SERVE_TOKEN or pass --token; clients then send `Authorization: Bearer <token>`"
    )]
    TokenRequired(SocketAddr),
    /// The listener could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("serving HTTP: {0}")]
    Http(#[source] std::io::Error),
}

/// The SHA-256 of the token: requests are compared digest to digest, in constant time, so
/// neither the token's bytes nor its length leak through timing.
#[derive(Clone)]
struct TokenDigest([u8; 32]);

impl TokenDigest {
    fn of(token: &[u8]) -> Self {
        Self(Sha256::digest(token).into())
    }

    fn matches(&self, presented: &[u8]) -> bool {
        let other = Self::of(presented);
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Checks that `addr` may be bound with `token` (loopback, or a non-empty token), and binds it.
pub async fn bind(
    addr: SocketAddr,
    token: Option<&SecretString>,
) -> Result<TcpListener, ServeError> {
    let has_token = token.is_some_and(|t| !t.expose_secret().is_empty());
    if !addr.ip().is_loopback() && !has_token {
        return Err(ServeError::TokenRequired(addr));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    token: Option<TokenDigest>,
    started: f64,
}

/// The HTTP side: `/metrics`, `/healthz`, the read-only dashboard's pages when `dashboard` is
/// given ([`crate::dashboard`]), 404 for any other path, 405 for other methods, 401 without the
/// token when one is set (on every path, the dashboard's included). Public for the tests that
/// drive it without a socket.
pub fn router(
    registry: Arc<Registry>,
    token: Option<&SecretString>,
    dashboard: Option<crate::dashboard::Dashboard>,
) -> Router {
    let state = AppState {
        registry,
        token: token
            .map(|t| t.expose_secret().as_bytes().to_vec())
            .filter(|t| !t.is_empty())
            .map(|t| TokenDigest::of(&t)),
        started: Utc::now().timestamp_millis() as f64 / 1000.0,
    };
    let mut app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz));
    if let Some(dashboard) = dashboard {
        app = app.merge(dashboard.routes());
    }
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !presented.is_some_and(|p| expected.matches(p)) {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                "401 unauthorized: send Authorization: Bearer <token>\n",
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

/// The resident set size of this process, from `/proc` (Linux only; `None` elsewhere).
fn resident_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.registry.set_gauge(
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch in seconds.",
        &[],
        state.started,
    );
    if let Some(rss) = resident_bytes() {
        state.registry.set_gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            &[],
            rss,
        );
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    (headers, state.registry.render()).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "404 not found: the paths are /, /alerts, /watchlists/NAME, /artists/ID, /analyses, /analyses/TRACK, /anomalies, /playlists, /drafts, /metrics and /healthz\n",
    )
}

async fn method_not_allowed() -> Response {
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        "405 method not allowed: GET only\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// A clock that starts at `start` and runs `speed` times faster than real time: a day of
/// schedules in minutes, for demos and tests. Speed 1 from now is the system clock.
#[derive(Debug)]
pub struct ScaledClock {
    start: DateTime<Utc>,
    real_start: std::time::Instant,
    speed: f64,
}

impl ScaledClock {
    /// Starts at `start`, running at `speed` (positive).
    pub fn new(start: DateTime<Utc>, speed: f64) -> Self {
        Self {
            start,
            real_start: std::time::Instant::now(),
            speed,
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.real_start.elapsed().as_secs_f64() * self.speed;
        self.start + chrono::Duration::microseconds((elapsed * 1e6) as i64)
    }
}

/// What a run of the service did, for the message it prints when it stops.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServeSummary {
    /// Schedule firings.
    pub firings: u64,
    /// Batches delivered from the local queues.
    pub batches: u64,
    /// Messages completed.
    pub completed: u64,
    /// Messages still queued when the service stopped, per function.
    pub queued: Vec<(String, u64)>,
}

/// Runs the service on `listener` until `shutdown` resolves, then stops as described in the
/// module's documentation.
pub async fn run(
    local: &Local,
    functions: Vec<Box<dyn Invoke>>,
    schedules: Vec<Schedule>,
    registry: Arc<Registry>,
    listener: TcpListener,
    token: Option<&SecretString>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<ServeSummary, ServeError> {
    let (stop_tx, stop) = watch::channel(false);
    let dashboard =
        crate::dashboard::Dashboard::new(local.runtime.db.clone(), local.runtime.clock.clone());
    let app = router(registry.clone(), token, Some(dashboard));
    let mut http_stop = stop.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await
    });
    let functions: Vec<Arc<dyn Invoke>> = functions.into_iter().map(Arc::from).collect();
    let mut workers = Vec::new();
    for function in &functions {
        let function = function.clone();
        let queues = local.runtime.queues(function.name());
        let registry = registry.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(work(function, queues, registry, stop)));
    }
    let scheduler = fire_schedules(local, &functions, &schedules, stop.clone());
    let signal = async {
        shutdown.await;
        tracing::info!("shutdown requested: finishing the work in flight");
        let _ = stop_tx.send(true);
    };
    let (firings, ()) = tokio::join!(scheduler, signal);
    let mut summary = ServeSummary {
        firings,
        ..ServeSummary::default()
    };
    for worker in workers {
        match worker.await {
            Ok((batches, completed)) => {
                summary.batches += batches;
                summary.completed += completed;
            }
            Err(err) => tracing::error!(error = %err, "a worker stopped abnormally"),
        }
    }
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(ServeError::Http(err)),
        Err(err) => tracing::error!(error = %err, "the HTTP server stopped abnormally"),
    }
    for function in &functions {
        let depth = local
            .runtime
            .queues(function.name())
            .depth()
            .await
            .unwrap_or(0);
        summary.queued.push((function.name().to_owned(), depth));
    }
    Ok(summary)
}

/// One function's worker: a batch at a time while there is work, a look every [`POLL`]
/// otherwise; stops between batches once `stop` is set. Returns (batches, completed).
async fn work(
    function: Arc<dyn Invoke>,
    queues: backbone::local::LocalQueues,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) -> (u64, u64) {
    let (mut batches, mut completed) = (0, 0);
    loop {
        if *stop.borrow() {
            break;
        }
        match function.deliver_batch().await {
            Ok(Some(summary)) => {
                batches += 1;
                completed += summary.completed;
                continue;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(task = function.name(), error = %err, "delivering a batch failed")
            }
        }
        if let Ok(depth) = queues.depth().await {
            registry.set_gauge(
                "local_queue_messages",
                "Messages in the function's local work queue, visible or not.",
                &[("task", function.name())],
                depth as f64,
            );
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
    (batches, completed)
}

/// Fires every schedule whose time has come on the local clock, in time order, until `stop`.
/// Each firing invokes the function with the schedule's input, as EventBridge Scheduler would;
/// a firing in progress when `stop` is set runs to its end. Returns the number of firings.
async fn fire_schedules(
    local: &Local,
    functions: &[Arc<dyn Invoke>],
    schedules: &[Schedule],
    mut stop: watch::Receiver<bool>,
) -> u64 {
    let clock = local.runtime.clock.clone();
    let started = clock.now();
    let mut next: Vec<Option<DateTime<Utc>>> = schedules
        .iter()
        .map(|s| s.expression.next_after(started, started))
        .collect();
    let firing_metrics: Vec<Metrics> = schedules
        .iter()
        .map(|s| {
            Metrics::new(
                backbone::config::HarnessConfig::for_task(&s.function).metrics_namespace,
                vec![
                    ("service".to_owned(), "tasks-serve".to_owned()),
                    ("task".to_owned(), s.function.clone()),
                    ("schedule".to_owned(), s.resource.clone()),
                ],
                local.runtime.sink.clone() as Arc<dyn LineSink>,
            )
        })
        .collect();
    let mut firings = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        let now = clock.now();
        // The earliest due firing first, so a fast clock keeps the template's order of the day.
        while let Some((i, at)) = next
            .iter()
            .enumerate()
            .filter_map(|(i, at)| at.filter(|at| *at <= now).map(|at| (i, at)))
            .min_by_key(|(_, at)| *at)
        {
            if *stop.borrow() {
                break;
            }
            let schedule = &schedules[i];
            next[i] = schedule.expression.next_after(at, started);
            fire(local, functions, schedule, at).await;
            firings += 1;
            firing_metrics[i].count("ScheduleFirings", 1);
            firing_metrics[i].flush(clock.now());
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
    firings
}

async fn fire(
    local: &Local,
    functions: &[Arc<dyn Invoke>],
    schedule: &Schedule,
    at: DateTime<Utc>,
) {
    let Some(function) = functions.iter().find(|f| f.name() == schedule.function) else {
        tracing::warn!(schedule = %schedule, "the schedule's function is not in the local set");
        return;
    };
    // The sandboxes play their scenario by day: the day of the firing.
    if let Some(sandbox) = &local.spotify.sandbox {
        let day = (at.date_naive() - sandbox.catalog().date(0)).num_days();
        if let Ok(day) = u32::try_from(day) {
            sandbox.set_day(day);
            if let Some(social) = local.social.as_ref().and_then(|s| s.sandbox.as_ref()) {
                social.set_day(day);
            }
        }
    }
    let input = schedule.input_at(at);
    let event: serde_json::Value = match serde_json::from_str(&input) {
        Ok(event) => event,
        Err(err) => {
            tracing::error!(schedule = %schedule, error = %err, "the schedule's input is not JSON");
            return;
        }
    };
    match function.invoke(event).await {
        Ok(report) => tracing::info!(
            schedule = %schedule,
            scheduledTime = %at,
            response = %report.response,
            "schedule fired"
        ),
        Err(err) => {
            tracing::warn!(schedule = %schedule, scheduledTime = %at, error = %err, "schedule failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::dashboard::testing::call_text as call;

    #[tokio::test]
    async fn paths_methods_and_tokens() {
        let registry = Arc::new(Registry::new());
        let open = router(registry.clone(), None, None);
        assert_eq!(call(&open, "GET", "/healthz", None).await.0, StatusCode::OK);
        let (status, body) = call(&open, "GET", "/metrics", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("# TYPE process_start_time_seconds gauge"),
            "{body}"
        );
        assert_eq!(
            call(&open, "GET", "/nope", None).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&open, "POST", "/metrics", None).await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            call(&open, "DELETE", "/healthz", None).await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );

        let token = SecretString::from("s3cret-token".to_owned());
        let closed = router(registry, Some(&token), None);
        for path in ["/metrics", "/healthz", "/nope"] {
            assert_eq!(
                call(&closed, "GET", path, None).await.0,
                StatusCode::UNAUTHORIZED,
                "{path}"
            );
            assert_eq!(
                call(&closed, "GET", path, Some("Bearer wrong")).await.0,
                StatusCode::UNAUTHORIZED
            );
            assert_eq!(
                call(&closed, "GET", path, Some("s3cret-token")).await.0,
                StatusCode::UNAUTHORIZED,
                "the scheme is required"
            );
        }
        assert_eq!(
            call(&closed, "GET", "/metrics", Some("Bearer s3cret-token"))
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            call(&closed, "GET", "/nope", Some("Bearer s3cret-token"))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn non_loopback_needs_a_token() {
        let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let err = bind(any, None).await.unwrap_err().to_string();
        assert!(err.contains("SERVE_TOKEN"), "{err}");
        let empty = SecretString::from(String::new());
        assert!(bind(any, Some(&empty)).await.is_err());
        let token = SecretString::from("t".to_owned());
        assert!(bind(any, Some(&token)).await.is_ok());
        assert!(bind("127.0.0.1:0".parse().unwrap(), None).await.is_ok());
    }

    #[test]
    fn token_comparison_is_by_digest() {
        let digest = TokenDigest::of(b"abc");
        assert!(digest.matches(b"abc"));
        assert!(!digest.matches(b"abd"));
        assert!(!digest.matches(b"abcd"));
        assert!(!digest.matches(b""));
    }

    #[test]
    fn the_scaled_clock_runs_faster() {
        let start = Utc::now();
        let clock = ScaledClock::new(start, 3600.0);
        std::thread::sleep(Duration::from_millis(50));
        let moved = clock.now() - start;
        assert!(moved >= chrono::Duration::seconds(150), "{moved}");
    }
}
