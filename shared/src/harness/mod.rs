//! The harness: what every function needs around its task, written once.
//!
//! A function's `main.rs` builds its task and hands it to [`Harness::new`] and [`serve`]. For
//! each invocation the harness recognises the event (SQS batch, EventBridge event, direct
//! payload), validates every input, runs the task under idempotency, writes the audit record,
//! sends fan-out messages, routes failures by class (dead-letter, retry, delay), reports
//! partial batch failures and emits logs and EMF metrics with the trace id. With `SENTRY_DSN`
//! set it reports records that fail for good, panics and failed invocations to Sentry, and
//! flushes them before the invocation returns.
//!
//! Scheduled invocations: EventBridge rule events are keyed by their event id. Scheduler
//! invocations arrive as direct payloads and are keyed by their content, so a schedule whose
//! input should run every time includes `<aws.scheduler.scheduled-time>` in its input.

mod context;
pub mod event;
mod process;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use context::Cx;
pub use event::{Incoming, MAX_BODY_BYTES};
pub use process::{Outcome, Report};

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::HarnessConfig;
use crate::error::Classify;
use crate::idempotency::Idempotency;
use crate::ports::{AuditStore, IdempotencyStore, Queues};
use crate::telemetry::{ErrorReporter, LineSink, Metrics, Otel};
use crate::validate::{Validate, ValidationError};

/// A task: what one function does with one validated input.
///
/// It is pure over its ports: the task holds the ports it needs (store, bus, Spotify) and the
/// harness holds the rest. The same input type serves SQS bodies, EventBridge details, direct
/// payloads and the fan-out messages the task enqueues for itself.
#[async_trait]
pub trait Task: Send + Sync + 'static {
    /// The function's name (`artist-monitoring`): used in logs, metrics, audit and keys.
    const NAME: &'static str;
    /// The validated input.
    type Input: DeserializeOwned + Serialize + Validate + Send + Sync + 'static;
    /// The result, stored and replayed to duplicates.
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The task's error; its class decides retry, delay or dead-letter.
    type Error: std::error::Error + Classify + Send + Sync + 'static;

    /// The business key of an input, if it has one; messages with the same key have one
    /// effect. `None` keys by the SHA-256 of the canonical input. A message attribute
    /// `idempotency-key` takes precedence over both.
    fn idempotency_key(&self, _input: &Self::Input) -> Option<String> {
        None
    }

    /// What an input is about, for the audit record (an artist id, a playlist id).
    fn subject(&self, _input: &Self::Input) -> String {
        "message".to_owned()
    }

    /// Does the work. Side effects go through the task's ports and are recorded with
    /// [`Cx::record`]; follow-up work is fanned out with [`Cx::enqueue`].
    async fn run(&self, input: Self::Input, cx: &Cx) -> Result<Self::Output, Self::Error>;
}

/// What the harness itself needs, built once at cold start.
#[derive(Clone)]
pub struct HarnessPorts {
    /// Idempotency records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Audit records.
    pub audit: Arc<dyn AuditStore>,
    /// The work queue and the dead-letter queue.
    pub queues: Arc<dyn Queues>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The metrics buffer (adapters count into a clone of it).
    pub metrics: Metrics,
}

/// Facts about one invocation, from the Lambda context or made up by the local runner.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The request id.
    pub request_id: String,
    /// When the invocation will be killed.
    pub deadline: DateTime<Utc>,
    /// The X-Ray header of the invocation (`_X_AMZN_TRACE_ID` or the context's).
    pub trace_header: Option<String>,
}

impl Invocation {
    /// An invocation with `timeout` left, as the local runner and tests make them.
    pub fn local(now: DateTime<Utc>, timeout: Duration) -> Self {
        Self {
            request_id: uuid::Uuid::new_v4().to_string(),
            deadline: now
                + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::minutes(15)),
            trace_header: None,
        }
    }
}

/// Deadlines below this (2001-09-09 in epoch milliseconds) are durations, not times.
const EPOCH_MILLIS_FLOOR: u64 = 1_000_000_000_000;

/// The invocation deadline from `Lambda-Runtime-Deadline-Ms`. Lambda sends epoch milliseconds;
/// cargo-lambda's emulator (1.9) sends the timeout itself (`600000`), which read as a time would
/// lie in 1970 and leave no time for anything: a value that small counts from `now`.
///
/// No usable deadline (0, or out of range) means no remaining time known: the epoch makes every
/// lock fail closed (the message is reported failed) instead of taking a lock without a lease.
fn deadline_from_context(deadline_ms: u64, now: DateTime<Utc>) -> DateTime<Utc> {
    let fallback = || DateTime::<Utc>::UNIX_EPOCH;
    if deadline_ms == 0 {
        return fallback();
    }
    if deadline_ms < EPOCH_MILLIS_FLOOR {
        return i64::try_from(deadline_ms)
            .ok()
            .and_then(chrono::Duration::try_milliseconds)
            .map_or_else(fallback, |left| now + left);
    }
    i64::try_from(deadline_ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or_else(fallback)
}

impl From<&lambda_runtime::Context> for Invocation {
    fn from(ctx: &lambda_runtime::Context) -> Self {
        let deadline = deadline_from_context(ctx.deadline, Utc::now());
        Self {
            request_id: ctx.request_id.clone(),
            deadline,
            // In concurrent mode `_X_AMZN_TRACE_ID` is unset: the context carries the header.
            trace_header: ctx
                .xray_trace_id
                .clone()
                .or_else(|| std::env::var("_X_AMZN_TRACE_ID").ok()),
        }
    }
}

/// Why an invocation as a whole failed (individual messages fail inside the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The event itself is malformed: not JSON, an unknown shape, an empty batch.
    #[error("invalid event: {0}")]
    InvalidEvent(#[from] ValidationError),
    /// A direct or EventBridge invocation failed in a way that may pass: let Lambda retry it.
    #[error("{class} failure, retry: {reason}")]
    Retry {
        /// `transient` or `rate_limited`.
        class: &'static str,
        /// The error chain.
        reason: String,
    },
}

/// A task with everything it runs under.
pub struct Harness<T: Task> {
    pub(crate) task: Arc<T>,
    pub(crate) ports: HarnessPorts,
    pub(crate) idempotency: Option<Idempotency>,
    pub(crate) audit: AuditLog,
    pub(crate) config: HarnessConfig,
    /// Sentry, when `SENTRY_DSN` is set.
    pub(crate) reporter: Option<ErrorReporter>,
    /// OpenTelemetry, when the `OTEL_*` variables switch it on: flushed before each
    /// invocation returns.
    pub(crate) otel: Option<Arc<Otel>>,
}

impl<T: Task> Harness<T> {
    /// Puts `task` under the harness.
    pub fn new(task: T, ports: HarnessPorts, config: HarnessConfig) -> Self {
        let idempotency = (!config.idempotency_disabled).then(|| {
            Idempotency::new(
                ports.idempotency.clone(),
                ports.clock.clone(),
                config.idempotency_ttl,
            )
        });
        let audit = AuditLog::new(ports.audit.clone(), ports.clock.clone());
        let reporter = config
            .sentry
            .as_ref()
            .map(|sentry| ErrorReporter::new(sentry, T::NAME, &config.version));
        Self {
            task: Arc::new(task),
            ports,
            idempotency,
            audit,
            config,
            reporter,
            otel: None,
        }
    }

    /// Exports over OpenTelemetry too: the invocation and message spans carry X-Ray contexts
    /// (a fan-out message's `AWSTraceHeader` names its send span), and `otel` is flushed before
    /// each invocation returns (Lambda freezes the process afterwards).
    /// `None` leaves it off.
    pub fn with_otel(mut self, otel: Option<Arc<Otel>>) -> Self {
        self.otel = otel;
        self
    }

    /// The task.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// The audit log the harness writes to.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Handles one invocation's raw bytes (the CLI reads events from files).
    pub async fn handle_bytes(
        &self,
        bytes: &[u8],
        invocation: Invocation,
    ) -> Result<Report, HarnessError> {
        let event = event::parse_bytes(bytes)?;
        self.handle(event, invocation).await
    }
}

/// The metrics buffer for `config`'s function, with the `service` and `task` dimensions.
pub fn metrics_for(config: &HarnessConfig, task: &str, sink: Arc<dyn LineSink>) -> Metrics {
    Metrics::new(
        config.metrics_namespace.clone(),
        vec![
            ("service".to_owned(), config.service.clone()),
            ("task".to_owned(), task.to_owned()),
        ],
        sink,
    )
}

/// Runs `harness` as a Lambda function until the runtime stops it.
pub async fn serve<T: Task>(harness: Harness<T>) -> Result<(), lambda_runtime::Error> {
    let harness = Arc::new(harness);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| {
            let harness = harness.clone();
            async move {
                let invocation = Invocation::from(&event.context);
                harness
                    .handle(event.payload, invocation)
                    .await
                    .map(|report| report.response)
            }
        },
    ))
    .await
}

impl From<HarnessError> for lambda_runtime::Diagnostic {
    fn from(err: HarnessError) -> Self {
        let error_type = match &err {
            HarnessError::InvalidEvent(_) => "InvalidEvent",
            HarnessError::Retry {
                class: "rate_limited",
                ..
            } => "RateLimited",
            HarnessError::Retry { .. } => "TransientFailure",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod deadline_tests {
    use super::*;

    #[test]
    fn epoch_deadlines_are_times_and_small_ones_are_durations() {
        let now = DateTime::<Utc>::from_timestamp_millis(1_796_193_826_972).unwrap();
        // Lambda: epoch milliseconds, 30 s ahead.
        assert_eq!(
            deadline_from_context(1_796_193_856_972, now),
            now + chrono::Duration::seconds(30)
        );
        // cargo-lambda's emulator: the timeout itself.
        assert_eq!(
            deadline_from_context(600_000, now),
            now + chrono::Duration::minutes(10)
        );
        // Out of range or zero: no remaining time known, so the epoch (locks fail closed),
        // never a panic.
        assert_eq!(
            deadline_from_context(u64::MAX, now),
            DateTime::<Utc>::UNIX_EPOCH
        );
        assert_eq!(deadline_from_context(0, now), DateTime::<Utc>::UNIX_EPOCH);
    }
}
