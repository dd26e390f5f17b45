//! One invocation, message by message: validate, run under idempotency, audit, route.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tracing::{Instrument, error, info, info_span, warn};

use super::context::Cx;
use super::event::{self, Incoming, MAX_BODY_BYTES, SqsRecord};
use super::{Harness, HarnessError, Invocation, Task};
use crate::audit::AuditEntry;
use crate::error::{Classify, ErrorClass, chain};
use crate::hash::{hash_json, sha256_hex};
use crate::idempotency::{Begin, Lock};
use crate::ports::{DeadLetter, IdempotencyRecord, OutgoingMessage};
use crate::telemetry::errors::MAX_FLUSH;
use crate::telemetry::{ErrorReporter, EventTags, MessageInput, TraceContext, otel};
use crate::validate::{ValidationError, parse_json, parse_value};
use sentry::SentryFutureExt;
use sentry::protocol::Level;
use serde::{Deserialize, Serialize};

/// SQS refuses visibility timeouts over 12 hours; a longer `Retry-After` is capped to it.
const MAX_VISIBILITY_DELAY: Duration = Duration::from_secs(12 * 60 * 60);

/// What happened to one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The task ran (or had run: `replayed`) and its effects are recorded.
    Completed {
        /// The result came from the idempotency record, not a new run.
        replayed: bool,
        /// The task's output.
        output: Value,
    },
    /// The input is invalid: dead-lettered with the reason, never retried.
    Rejected {
        /// The field and why.
        reason: String,
    },
    /// A permanent failure: dead-lettered with the reason, never retried.
    DeadLettered {
        /// The error chain.
        reason: String,
    },
    /// Handed back to the queue for another try.
    Retry {
        /// `transient` or `rate_limited`.
        class: &'static str,
        /// The error chain.
        reason: String,
        /// The visibility delay asked of SQS, for rate-limited messages.
        delay: Option<Duration>,
    },
    /// Not processed: an earlier message of the FIFO batch failed, so order forbids it.
    Skipped,
}

impl Outcome {
    /// Whether the message goes back to the queue (is a batch item failure).
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Retry { .. } | Outcome::Skipped)
    }
}

/// The result of one invocation: the response Lambda returns and what happened per message.
#[derive(Debug, Clone)]
pub struct Report {
    /// The response body (`batchItemFailures` for SQS, a status object otherwise).
    pub response: Value,
    /// Each message id with its outcome, in delivery order.
    pub messages: Vec<(String, Outcome)>,
}

/// What an idempotency record keeps: the output, and the work still to do after the task.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    output: Value,
    #[serde(default)]
    pending: Option<Pending>,
}

impl Stored {
    fn encode(&self) -> String {
        // A `Value` and plain structs always serialise.
        serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
    }
}

/// Fan-out messages and audit records of a completed run, not yet confirmed written.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    outbox: Vec<OutgoingMessage>,
    audit: Vec<AuditEntry>,
}

/// One unit of work, from any trigger.
struct Unit {
    message_id: String,
    payload: Payload,
    trace: TraceContext,
    receipt_handle: Option<String>,
    /// The key from an attribute (or the EventBridge event id), or why it is unusable.
    explicit_key: Result<Option<String>, ValidationError>,
    attributes: BTreeMap<String, String>,
    defect: Option<ValidationError>,
    /// The message's own X-Ray header (SQS `AWSTraceHeader`): its span's remote parent.
    remote_parent: Option<String>,
}

enum Payload {
    Text(String),
    Json(Value),
}

impl Payload {
    fn raw(&self) -> String {
        match self {
            Payload::Text(text) => text.clone(),
            Payload::Json(value) => value.to_string(),
        }
    }
}

impl<T: Task> Harness<T> {
    /// Handles one invocation.
    pub async fn handle(
        &self,
        event: Value,
        invocation: Invocation,
    ) -> Result<Report, HarnessError> {
        let started = Instant::now();
        let mut trace = invocation
            .trace_header
            .as_deref()
            .and_then(TraceContext::parse)
            .unwrap_or_else(|| TraceContext::generate(self.ports.clock.now()));
        let span = info_span!(
            "invocation",
            requestId = %invocation.request_id,
            traceId = tracing::field::Empty,
            task = T::NAME,
            version = %self.config.version,
        );
        if self.otel.as_ref().is_some_and(|otel| otel.traces_on()) {
            let parented = invocation
                .trace_header
                .as_deref()
                .is_some_and(|header| otel::set_parent_from_header(&span, header));
            otel::set_attribute(&span, "faas.invocation_id", invocation.request_id.clone());
            // Without a parent the span starts a trace of its own (an X-Ray id): the logs,
            // metrics and messages carry that one.
            if !parented
                && let Some(derived) = otel::header_of(&span)
                    .as_deref()
                    .and_then(TraceContext::parse)
            {
                trace = derived;
            }
        }
        span.record("traceId", tracing::field::display(&trace.root));
        let metrics = self.ports.metrics.clone();
        let result = self
            .dispatch(event, &invocation, &trace)
            .instrument(span)
            .await;
        if let Some(reporter) = &self.reporter {
            if let Err(err) = &result {
                let hub = reporter.hub(
                    &EventTags {
                        request_id: &invocation.request_id,
                        trace_id: &trace.root,
                        message_id: None,
                    },
                    None,
                );
                ErrorReporter::report(&hub, Level::Error, "invocation", &chain(err));
            }
            // Lambda freezes the process once the invocation returns: send what is queued now,
            // within the time left.
            let left = (invocation.deadline - self.ports.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            if !reporter.flush(left.min(MAX_FLUSH)).await {
                metrics.count("ErrorReportsUnsent", 1);
            }
        }
        metrics.duration_ms(
            "InvocationDuration",
            started.elapsed().as_secs_f64() * 1000.0,
        );
        metrics.property("requestId", invocation.request_id.clone());
        metrics.property("traceId", trace.root.clone());
        metrics.property("version", self.config.version.clone());
        metrics.flush(self.ports.clock.now());
        if let Some(otel) = &self.otel {
            // The export blocks on HTTP: off the async workers, and before the invocation
            // returns (Lambda freezes the process afterwards).
            let otel = otel.clone();
            if tokio::task::spawn_blocking(move || otel.flush())
                .await
                .is_err()
            {
                warn!("the OpenTelemetry flush panicked");
            }
        }
        result
    }

    async fn dispatch(
        &self,
        event: Value,
        invocation: &Invocation,
        trace: &TraceContext,
    ) -> Result<Report, HarnessError> {
        let incoming = match event::recognise(event) {
            Ok(incoming) => incoming,
            Err(err) => {
                self.ports.metrics.count("InvalidEvents", 1);
                error!(field = %err.field, reason = %err.reason, "invalid event");
                return Err(err.into());
            }
        };
        if self.otel.as_ref().is_some_and(|otel| otel.traces_on()) {
            // EventBridge Scheduler invokes with the schedule's input as a direct payload.
            let trigger = match &incoming {
                Incoming::Sqs { .. } => "pubsub",
                Incoming::EventBridge { detail_type, .. } if detail_type != "Scheduled Event" => {
                    "pubsub"
                }
                _ => "timer",
            };
            otel::set_attribute(&tracing::Span::current(), "faas.trigger", trigger);
        }
        match incoming {
            Incoming::Sqs { records, fifo } => {
                let units: Vec<Unit> = records
                    .into_iter()
                    .map(|record| Self::sqs_unit(record, trace))
                    .collect();
                Ok(self.process_batch(units, fifo, invocation).await)
            }
            Incoming::EventBridge { id, detail, .. } => {
                let unit = Unit {
                    message_id: id.clone(),
                    payload: Payload::Json(detail),
                    trace: trace.clone(),
                    receipt_handle: None,
                    // EventBridge keeps the event id across its retries, and a scheduled
                    // rule's detail is the same every time: the id is the key.
                    explicit_key: Ok(Some(id)),
                    attributes: BTreeMap::new(),
                    defect: None,
                    remote_parent: None,
                };
                self.process_single(unit, invocation).await
            }
            Incoming::VerifyAudit => self.verify_audit().await,
            Incoming::Direct(payload) => {
                let unit = Unit {
                    message_id: invocation.request_id.clone(),
                    payload: Payload::Json(payload),
                    trace: trace.clone(),
                    receipt_handle: None,
                    explicit_key: Ok(None),
                    attributes: BTreeMap::new(),
                    defect: None,
                    remote_parent: None,
                };
                self.process_single(unit, invocation).await
            }
        }
    }

    /// Walks the function's audit stream; a break is logged and counted in
    /// [`crate::audit::CHAIN_BREAKS_METRIC`] (the template's alarm watches it), not failed: a retry cannot
    /// mend a chain. Only a store that cannot be read makes the invocation fail and retry.
    async fn verify_audit(&self) -> Result<Report, HarnessError> {
        let report = self
            .audit
            .verify(T::NAME)
            .await
            .map_err(|err| HarnessError::Retry {
                class: "transient",
                reason: chain(&err),
            })?;
        let metrics = &self.ports.metrics;
        crate::audit::count_verify_metrics(metrics, &report);
        if report.is_intact() {
            info!(stream = %report.stream, records = report.records, "audit chain intact");
        } else {
            error!(
                stream = %report.stream,
                records = report.records,
                problems = ?report.problems,
                "audit chain broken"
            );
        }
        Ok(Report {
            response: json!({
                "status": "verified",
                "stream": report.stream,
                "records": report.records,
                "intact": report.is_intact(),
                "problems": report.problems,
            }),
            messages: Vec::new(),
        })
    }

    fn sqs_unit(record: SqsRecord, invocation_trace: &TraceContext) -> Unit {
        // Each message carries the trace of the invocation that sent it.
        let own = record.trace_header.as_deref().and_then(TraceContext::parse);
        let remote_parent = own.as_ref().and(record.trace_header.clone());
        let trace = own.unwrap_or_else(|| invocation_trace.clone());
        Unit {
            message_id: record.message_id,
            payload: Payload::Text(record.body),
            trace,
            receipt_handle: record.receipt_handle,
            explicit_key: record.idempotency_key,
            attributes: record.attributes,
            defect: record.defect,
            remote_parent,
        }
    }

    async fn process_batch(&self, units: Vec<Unit>, fifo: bool, invocation: &Invocation) -> Report {
        self.ports
            .metrics
            .count("MessagesReceived", units.len() as u64);
        let mut outcomes: Vec<(String, Outcome)> = Vec::with_capacity(units.len());
        if fifo {
            // FIFO order: once a message fails, the rest of the batch must not overtake it.
            let mut failed = false;
            for unit in units {
                let id = unit.message_id.clone();
                let outcome = if failed {
                    Outcome::Skipped
                } else {
                    self.process(unit, invocation).await
                };
                failed |= outcome.is_failure();
                outcomes.push((id, outcome));
            }
        } else {
            let mut done: Vec<(usize, String, Outcome)> =
                futures::stream::iter(units.into_iter().enumerate())
                    .map(|(index, unit)| async move {
                        let id = unit.message_id.clone();
                        (index, id, self.process(unit, invocation).await)
                    })
                    .buffer_unordered(self.config.batch_concurrency)
                    .collect()
                    .await;
            done.sort_by_key(|(index, _, _)| *index);
            outcomes.extend(done.into_iter().map(|(_, id, outcome)| (id, outcome)));
        }
        let failures: Vec<Value> = outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_failure())
            .map(|(id, _)| json!({ "itemIdentifier": id }))
            .collect();
        self.ports
            .metrics
            .count("BatchItemFailures", failures.len() as u64);
        Report {
            response: json!({ "batchItemFailures": failures }),
            messages: outcomes,
        }
    }

    async fn process_single(
        &self,
        unit: Unit,
        invocation: &Invocation,
    ) -> Result<Report, HarnessError> {
        self.ports.metrics.count("MessagesReceived", 1);
        let id = unit.message_id.clone();
        let outcome = self.process(unit, invocation).await;
        let response = match &outcome {
            Outcome::Completed { replayed, output } => {
                json!({ "status": "completed", "replayed": replayed, "output": output })
            }
            Outcome::Rejected { reason } => json!({ "status": "rejected", "reason": reason }),
            Outcome::DeadLettered { reason } => json!({ "status": "failed", "reason": reason }),
            Outcome::Retry { class, reason, .. } => {
                return Err(HarnessError::Retry {
                    class,
                    reason: reason.clone(),
                });
            }
            Outcome::Skipped => json!({ "status": "skipped" }),
        };
        Ok(Report {
            response,
            messages: vec![(id, outcome)],
        })
    }

    async fn process(&self, unit: Unit, invocation: &Invocation) -> Outcome {
        let started = Instant::now();
        let span = info_span!("message", messageId = %unit.message_id, traceId = %unit.trace.root);
        if self.otel.as_ref().is_some_and(|otel| otel.traces_on()) {
            if let Some(header) = &unit.remote_parent {
                // The work step's message span continues the trace of the span that sent it.
                otel::set_parent_from_header(&span, header);
                otel::set_attribute(&span, "messaging.system", "aws_sqs");
            }
            otel::set_attribute(&span, "messaging.message.id", unit.message_id.clone());
        }
        let work = self.process_inner(&unit, invocation).instrument(span);
        let outcome = match &self.reporter {
            None => work.await,
            Some(reporter) => {
                let input = match &unit.payload {
                    Payload::Json(value) => MessageInput::Json(value.clone()),
                    Payload::Text(text) => MessageInput::Text(text.clone()),
                };
                let hub = reporter.hub(
                    &EventTags {
                        request_id: &invocation.request_id,
                        trace_id: &unit.trace.root,
                        message_id: Some(&unit.message_id),
                    },
                    Some(input),
                );
                // Bound while the task is polled, so sentry's panic hook reports a panic with
                // this message's tags.
                let outcome = work.bind_hub(hub.clone()).await;
                match &outcome {
                    Outcome::DeadLettered { reason } => {
                        ErrorReporter::report(&hub, Level::Error, "permanent", reason);
                    }
                    Outcome::Rejected { reason } => {
                        ErrorReporter::report(&hub, Level::Warning, "invalid", reason);
                    }
                    _ => {}
                }
                outcome
            }
        };
        let metrics = &self.ports.metrics;
        metrics.duration_ms("MessageDuration", started.elapsed().as_secs_f64() * 1000.0);
        match &outcome {
            Outcome::Completed { replayed: true, .. } => metrics.count("IdempotentReplays", 1),
            Outcome::Completed { .. } => metrics.count("MessagesCompleted", 1),
            Outcome::Rejected { .. } => metrics.count("MessagesRejected", 1),
            Outcome::DeadLettered { .. } => metrics.count("MessagesDeadLettered", 1),
            Outcome::Retry { delay: Some(_), .. } => metrics.count("MessagesRateLimited", 1),
            Outcome::Retry { .. } => metrics.count("MessagesRetried", 1),
            Outcome::Skipped => metrics.count("MessagesSkipped", 1),
        }
        outcome
    }

    async fn process_inner(&self, unit: &Unit, invocation: &Invocation) -> Outcome {
        let input = match self.parse(unit) {
            Ok(input) => input,
            Err(err) => return self.reject(unit, &err).await,
        };
        let payload_hash = match hash_json(&input) {
            Ok(hash) => hash,
            Err(err) => {
                return self
                    .route(
                        unit,
                        ErrorClass::Permanent,
                        format!("input cannot be hashed: {err}"),
                        None,
                    )
                    .await;
            }
        };
        let business_key = match &unit.explicit_key {
            Ok(Some(key)) => key.clone(),
            _ => self
                .task
                .idempotency_key(&input)
                .unwrap_or_else(|| payload_hash.clone()),
        };
        let key = format!("{}#{}", T::NAME, business_key);
        let subject = self.task.subject(&input);
        let cx = Cx {
            request_id: invocation.request_id.clone(),
            message_id: unit.message_id.clone(),
            idempotency_key: key.clone(),
            trace: unit.trace.clone(),
            deadline: invocation.deadline,
            clock: self.ports.clock.clone(),
            metrics: self.ports.metrics.clone(),
            outbox: Mutex::new(Vec::new()),
            effects: Mutex::new(Vec::new()),
        };
        let lock = match &self.idempotency {
            None => None,
            Some(idempotency) => match idempotency
                .begin(&key, &payload_hash, invocation.deadline)
                .await
            {
                Ok(Begin::Run(lock)) => Some(lock),
                Ok(Begin::Replay(record)) => {
                    info!(idempotencyKey = %key, "duplicate message: replaying the stored result");
                    return self.replay(unit, *record, &subject).await;
                }
                Err(err) => {
                    let class = err.class();
                    return self.route(unit, class, chain(&err), Some(&subject)).await;
                }
            },
        };
        let run = AssertUnwindSafe(self.task.run(input, &cx))
            .catch_unwind()
            .await;
        let output = match run {
            Ok(Ok(output)) => output,
            Ok(Err(err)) => {
                self.release(lock).await;
                return self
                    .route(unit, err.class(), chain(&err), Some(&subject))
                    .await;
            }
            Err(panic) => {
                self.release(lock).await;
                self.ports.metrics.count("TaskPanics", 1);
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                // A panic is a bug, not a verdict on the message: let SQS redrive decide.
                return self
                    .route(
                        unit,
                        ErrorClass::Transient,
                        format!("task panicked: {message}"),
                        Some(&subject),
                    )
                    .await;
            }
        };
        let output = match serde_json::to_value(&output) {
            Ok(output) => output,
            Err(err) => {
                self.release(lock).await;
                let reason = format!("task output cannot be serialised: {err}");
                return self
                    .route(unit, ErrorClass::Permanent, reason, Some(&subject))
                    .await;
            }
        };
        let stored = Stored {
            pending: Some(Pending {
                outbox: cx.take_outbox(),
                audit: self.audit_entries(&cx, &key, &payload_hash, &subject, &output),
            }),
            output,
        };
        // The task's work is recorded as done before anything else can fail, so a later
        // failure (fan-out, audit) retries only that pending work, never the task itself.
        let record = match (&self.idempotency, lock) {
            (Some(idempotency), Some(lock)) => {
                match idempotency.complete(lock, stored.encode()).await {
                    Ok(record) => Some(record),
                    Err(err) => {
                        // The lock is kept: if the write landed, a redelivery replays and finishes
                        // the pending work; if not, the lock expires at the deadline.
                        let reason = format!("could not record the completion: {}", chain(&err));
                        return self
                            .route(unit, ErrorClass::Transient, reason, Some(&subject))
                            .await;
                    }
                }
            }
            _ => None,
        };
        match self.settle(record, stored).await {
            Ok(output) => {
                info!(subject = %subject, "message completed");
                Outcome::Completed {
                    replayed: false,
                    output,
                }
            }
            Err((class, reason)) => self.route(unit, class, reason, Some(&subject)).await,
        }
    }

    /// Answers a duplicate from its completed record, first finishing any work the original
    /// run left pending.
    async fn replay(&self, unit: &Unit, record: IdempotencyRecord, subject: &str) -> Outcome {
        let stored = match record.result.as_deref().map(serde_json::from_str::<Stored>) {
            Some(Ok(stored)) => stored,
            _ => {
                let reason = format!(
                    "idempotency record {} holds an unreadable result",
                    record.key
                );
                return self
                    .route(unit, ErrorClass::Permanent, reason, Some(subject))
                    .await;
            }
        };
        if stored.pending.is_some() {
            self.ports.metrics.count("PendingWorkResumed", 1);
        }
        match self.settle(Some(record), stored).await {
            Ok(output) => Outcome::Completed {
                replayed: true,
                output,
            },
            Err((class, reason)) => self.route(unit, class, reason, Some(subject)).await,
        }
    }

    /// Does the pending work of `stored` (fan-out, then audit; both idempotent) and marks the
    /// record finished.
    async fn settle(
        &self,
        record: Option<IdempotencyRecord>,
        stored: Stored,
    ) -> Result<Value, (ErrorClass, String)> {
        let Some(pending) = stored.pending else {
            return Ok(stored.output);
        };
        if !pending.outbox.is_empty() {
            let span = info_span!("send", messages = pending.outbox.len());
            let mut outbox = pending.outbox;
            if self.otel.as_ref().is_some_and(|otel| otel.traces_on()) {
                otel::set_attribute(&span, "messaging.system", "aws_sqs");
                // Each message names the send span as its parent (`AWSTraceHeader`).
                if let Some(header) = otel::header_of(&span) {
                    for message in &mut outbox {
                        message.trace_header = Some(header.clone());
                    }
                }
            }
            self.ports
                .queues
                .send(&outbox)
                .instrument(span)
                .await
                .map_err(|err| (err.class(), chain(&err)))?;
            self.ports
                .metrics
                .count("FanOutMessages", outbox.len() as u64);
        }
        for entry in pending.audit {
            self.audit
                .append(entry)
                .await
                .map_err(|err| (err.class(), chain(&err)))?;
        }
        let finished = Stored {
            output: stored.output,
            pending: None,
        };
        if let (Some(idempotency), Some(record)) = (&self.idempotency, record) {
            let key = record.key.clone();
            if let Err(err) = idempotency.finalize(record, finished.encode()).await {
                // Harmless: a later duplicate redoes the pending work, which is idempotent.
                self.ports.metrics.count("IdempotencyFinalizeErrors", 1);
                warn!(idempotencyKey = %key, error = %chain(&err), "could not mark the pending work done");
            }
        }
        Ok(finished.output)
    }

    fn parse(&self, unit: &Unit) -> Result<T::Input, ValidationError> {
        if let Some(defect) = &unit.defect {
            return Err(defect.clone());
        }
        if let Err(err) = &unit.explicit_key {
            return Err(err.clone());
        }
        match &unit.payload {
            Payload::Text(body) => {
                if body.len() > MAX_BODY_BYTES {
                    return Err(ValidationError::new(
                        "body",
                        format!("is {} bytes, the limit is {MAX_BODY_BYTES}", body.len()),
                    ));
                }
                if body.trim().is_empty() {
                    return Err(ValidationError::new("body", "is empty"));
                }
                parse_json("body", body)
            }
            Payload::Json(value) => {
                let size = value.to_string().len();
                if size > MAX_BODY_BYTES {
                    return Err(ValidationError::new(
                        "detail",
                        format!("is {size} bytes, the limit is {MAX_BODY_BYTES}"),
                    ));
                }
                parse_value("detail", value.clone())
            }
        }
    }

    /// The audit records of a successful run: one per side effect, then the completion.
    fn audit_entries(
        &self,
        cx: &Cx,
        key: &str,
        payload_hash: &str,
        subject: &str,
        output: &Value,
    ) -> Vec<AuditEntry> {
        // With idempotency off (control runs), duplicates must show in the audit log too.
        let audit_key = self.idempotency.as_ref().map(|_| key.to_owned());
        let mut entries: Vec<AuditEntry> = cx
            .take_effects()
            .into_iter()
            .map(|effect| {
                self.entry(
                    cx,
                    audit_key.clone(),
                    effect.subject,
                    effect.action,
                    payload_hash,
                    "ok",
                    effect.detail,
                )
            })
            .collect();
        let output_hash = hash_json(output).unwrap_or_default();
        let fan_out = cx.outbox.lock().unwrap_or_else(|p| p.into_inner()).len();
        entries.push(self.entry(
            cx,
            audit_key,
            subject.to_owned(),
            "completed".to_owned(),
            payload_hash,
            "ok",
            json!({ "messageId": cx.message_id, "outputHash": output_hash, "fanOut": fan_out }),
        ));
        entries
    }

    #[allow(clippy::too_many_arguments)]
    fn entry(
        &self,
        cx: &Cx,
        idempotency_key: Option<String>,
        subject: String,
        action: String,
        input_hash: &str,
        outcome: &str,
        detail: Value,
    ) -> AuditEntry {
        AuditEntry {
            stream: T::NAME.to_owned(),
            task: T::NAME.to_owned(),
            version: self.config.version.clone(),
            trace_id: Some(cx.trace.root.clone()),
            idempotency_key,
            subject,
            action,
            input_hash: input_hash.to_owned(),
            outcome: outcome.to_owned(),
            detail,
        }
    }

    async fn release(&self, lock: Option<Lock>) {
        let (Some(idempotency), Some(lock)) = (&self.idempotency, lock) else {
            return;
        };
        let key = lock.key().to_owned();
        if let Err(err) = idempotency.abandon(lock).await {
            // The lock then holds until the invocation deadline, after which a retry takes it.
            warn!(idempotencyKey = %key, error = %chain(&err), "could not release the idempotency lock");
        }
    }

    async fn reject(&self, unit: &Unit, err: &ValidationError) -> Outcome {
        warn!(field = %err.field, reason = %err.reason, "invalid message: dead-lettering it");
        self.route(unit, ErrorClass::Invalid, err.to_string(), None)
            .await
    }

    /// Sends a failure where its class says: dead-letter queue, a delay, or plain retry.
    async fn route(
        &self,
        unit: &Unit,
        class: ErrorClass,
        reason: String,
        subject: Option<&str>,
    ) -> Outcome {
        match class {
            ErrorClass::Invalid | ErrorClass::Permanent => {
                if class == ErrorClass::Permanent {
                    error!(reason = %reason, "permanent failure: dead-lettering the message");
                }
                if let Err(retry) = self.dead_letter(unit, class, &reason, subject).await {
                    return retry;
                }
                if class == ErrorClass::Invalid {
                    Outcome::Rejected { reason }
                } else {
                    Outcome::DeadLettered { reason }
                }
            }
            ErrorClass::Transient => {
                warn!(reason = %reason, "transient failure: the message will be retried");
                Outcome::Retry {
                    class: "transient",
                    reason,
                    delay: None,
                }
            }
            ErrorClass::RateLimited(wait) => {
                let delay = wait.min(MAX_VISIBILITY_DELAY);
                warn!(retryAfterSeconds = delay.as_secs(), reason = %reason, "rate limited: delaying the message");
                if let Some(handle) = &unit.receipt_handle
                    && let Err(err) = self.ports.queues.delay(handle, delay).await
                {
                    warn!(error = %chain(&err), "could not delay the message; it returns after the queue's visibility timeout");
                }
                Outcome::Retry {
                    class: "rate_limited",
                    reason,
                    delay: Some(delay),
                }
            }
        }
    }

    /// Audits the refusal, then dead-letters the message; if either fails the message is
    /// retried (the audit record is deduplicated by message id), so nothing is lost.
    async fn dead_letter(
        &self,
        unit: &Unit,
        class: ErrorClass,
        reason: &str,
        subject: Option<&str>,
    ) -> Result<(), Outcome> {
        let raw = unit.payload.raw();
        let entry = AuditEntry {
            stream: T::NAME.to_owned(),
            task: T::NAME.to_owned(),
            version: self.config.version.clone(),
            trace_id: Some(unit.trace.root.clone()),
            idempotency_key: Some(format!("{}#message#{}", T::NAME, unit.message_id)),
            subject: subject.unwrap_or("message").to_owned(),
            action: if class == ErrorClass::Invalid {
                "rejected"
            } else {
                "failed"
            }
            .to_owned(),
            input_hash: sha256_hex(&raw),
            outcome: class.label().to_owned(),
            detail: json!({ "messageId": unit.message_id, "reason": reason }),
        };
        let letter = DeadLetter {
            task: T::NAME.to_owned(),
            message_id: unit.message_id.clone(),
            body: raw,
            class: class.label().to_owned(),
            reason: reason.to_owned(),
            trace_id: Some(unit.trace.root.clone()),
            attributes: unit.attributes.clone(),
        };
        let result = match self.audit.append(entry).await {
            Ok(_) => self
                .ports
                .queues
                .dead_letter(&letter)
                .await
                .map_err(|err| chain(&err)),
            Err(err) => Err(chain(&err)),
        };
        result.map_err(|err| {
            error!(error = %err, "could not dead-letter the message; it will be retried");
            Outcome::Retry {
                class: "transient",
                reason: format!("dead-lettering failed: {err}"),
                delay: None,
            }
        })
    }
}
