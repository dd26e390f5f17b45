//! Runs tasks locally exactly as Lambda would call them: a harness on the embedded adapters,
//! invoked with real event JSON, and a drain loop that plays SQS's event source mapping
//! (batches of 10, delete on success, redelivery of `batchItemFailures`, redrive to the
//! dead letters after `max_receive_count` receipts).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::faults::{FaultPlan, Faulty};
use super::{LocalBus, LocalDb, LocalQueues};
use crate::clock::Clock;
use crate::config::HarnessConfig;
use crate::error::PortError;
use crate::harness::{
    Harness, HarnessError, HarnessPorts, Invocation, Outcome, Report, Task, metrics_for,
};
use crate::ports::{AuditStore, IdempotencyStore, Queues};
use crate::telemetry::LineSink;

/// Local stand-in for the function timeout: the in-progress lock's lifetime.
pub const LOCAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Receipts before a local message is moved to the dead letters (the template's redrive).
pub const MAX_RECEIVE_COUNT: u32 = 3;
/// How long a received local message stays hidden before it is redelivered: six times the
/// timeout, as the template sets every queue, so a redelivery never finds the lock of a
/// crashed receipt still held.
pub const VISIBILITY: Duration = Duration::from_secs(6 * 60);

/// What every local function shares: one database, one clock, one output sink.
#[derive(Clone)]
pub struct LocalRuntime {
    /// The database behind every adapter.
    pub db: LocalDb,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Where logs and metrics go.
    pub sink: Arc<dyn LineSink>,
    /// Faults to inject into the harness's ports (reliability tests and soak runs only).
    pub faults: Option<Arc<FaultPlan>>,
    /// Receipts before a local message is dead-lettered (default [`MAX_RECEIVE_COUNT`]).
    pub max_receive_count: u32,
    /// OpenTelemetry, when the `OTEL_*` variables switch it on: every harness exports its
    /// spans and flushes after each invocation.
    pub otel: Option<Arc<crate::telemetry::Otel>>,
}

impl LocalRuntime {
    /// The work queue (and dead letters) of `task`.
    pub fn queues(&self, task: &str) -> LocalQueues {
        LocalQueues::new(
            self.db.clone(),
            task,
            self.clock.clone(),
            self.max_receive_count,
        )
    }

    /// The local event bus.
    pub fn bus(&self) -> LocalBus {
        LocalBus::new(self.db.clone())
    }

    /// A local runtime on `db` with the system clock and no faults.
    pub fn new(db: LocalDb, clock: Arc<dyn Clock>, sink: Arc<dyn LineSink>) -> Self {
        Self {
            db,
            clock,
            sink,
            faults: None,
            max_receive_count: MAX_RECEIVE_COUNT,
            otel: None,
        }
    }

    /// Puts `task` under a harness whose ports are all local (and faulty, with a fault plan).
    pub fn harness<T: Task>(&self, task: T, config: HarnessConfig) -> LocalFunction<T> {
        let queues = self.queues(T::NAME);
        let db = Arc::new(self.db.clone());
        let (idempotency, audit, queue_port): (
            Arc<dyn IdempotencyStore>,
            Arc<dyn AuditStore>,
            Arc<dyn Queues>,
        ) = match &self.faults {
            None => (db.clone(), db, Arc::new(queues.clone())),
            Some(plan) => (
                Arc::new(Faulty::new(db.clone(), plan.clone())),
                Arc::new(Faulty::new(db, plan.clone())),
                Arc::new(Faulty::new(Arc::new(queues.clone()), plan.clone())),
            ),
        };
        let ports = HarnessPorts {
            idempotency,
            audit,
            queues: queue_port,
            clock: self.clock.clone(),
            metrics: metrics_for(&config, T::NAME, self.sink.clone()),
        };
        let harness = Harness::new(task, ports, config).with_otel(self.otel.clone());
        LocalFunction {
            harness,
            queues,
            clock: self.clock.clone(),
        }
    }
}

/// A function wired to local adapters.
pub struct LocalFunction<T: Task> {
    harness: Harness<T>,
    queues: LocalQueues,
    clock: Arc<dyn Clock>,
}

impl<T: Task> LocalFunction<T> {
    /// The harness, for tests that need its audit log or task.
    pub fn harness(&self) -> &Harness<T> {
        &self.harness
    }
}

/// What a drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainSummary {
    /// Invocations made.
    pub invocations: u64,
    /// Messages completed (replays included).
    pub completed: u64,
    /// Messages dead-lettered by the harness (invalid or permanent).
    pub dead_lettered: u64,
    /// Receipts that failed and were left for redelivery.
    pub retried: u64,
    /// Messages still in the queue when the drain stopped (waiting for a delay).
    pub pending: u64,
}

/// A local function as the CLI sees it, whatever its task type.
#[async_trait]
pub trait Invoke: Send + Sync {
    /// The function's name.
    fn name(&self) -> &'static str;

    /// Calls the handler with `event`, as Lambda would.
    async fn invoke(&self, event: Value) -> Result<Report, HarnessError>;

    /// Calls the handler with raw event bytes.
    async fn invoke_bytes(&self, bytes: &[u8]) -> Result<Report, HarnessError>;

    /// Delivers the work queue's messages in batches until it is empty or only delayed
    /// messages remain (waiting up to `max_wait` for those to come back).
    async fn drain(&self, max_wait: Duration) -> Result<DrainSummary, PortError>;

    /// Delivers one batch (up to 10) of the work queue's visible messages, as one invocation
    /// of SQS's event source mapping would: completed and dead-lettered messages are deleted,
    /// the others stay queued for redelivery. `None` when no message was visible. A
    /// long-lived runner calls this in a loop so that it can stop between batches.
    async fn deliver_batch(&self) -> Result<Option<DrainSummary>, PortError>;
}

#[async_trait]
impl<T: Task> Invoke for LocalFunction<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    async fn invoke(&self, event: Value) -> Result<Report, HarnessError> {
        let invocation = Invocation::local(self.clock.now(), LOCAL_TIMEOUT);
        self.harness.handle(event, invocation).await
    }

    async fn invoke_bytes(&self, bytes: &[u8]) -> Result<Report, HarnessError> {
        let invocation = Invocation::local(self.clock.now(), LOCAL_TIMEOUT);
        self.harness.handle_bytes(bytes, invocation).await
    }

    async fn drain(&self, max_wait: Duration) -> Result<DrainSummary, PortError> {
        let mut summary = DrainSummary::default();
        let give_up_at = std::time::Instant::now() + max_wait;
        loop {
            let Some(batch) = self.deliver_batch().await? else {
                let next = self.queues.next_visible_at().await?;
                let Some(next) = next else { break };
                let wait = (next - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
                if std::time::Instant::now() + wait > give_up_at {
                    break;
                }
                tokio::time::sleep(wait.max(Duration::from_millis(20))).await;
                continue;
            };
            summary.invocations += batch.invocations;
            summary.completed += batch.completed;
            summary.dead_lettered += batch.dead_lettered;
            summary.retried += batch.retried;
        }
        summary.pending = self.queues.depth().await?;
        Ok(summary)
    }

    async fn deliver_batch(&self) -> Result<Option<DrainSummary>, PortError> {
        let batch = self.queues.receive(10, VISIBILITY).await?;
        if batch.is_empty() {
            return Ok(None);
        }
        let mut summary = DrainSummary {
            invocations: 1,
            ..DrainSummary::default()
        };
        let event = self.queues.sqs_event(&batch);
        match self.invoke(event).await {
            Ok(report) => {
                for (message, (_, outcome)) in batch.iter().zip(&report.messages) {
                    match outcome {
                        Outcome::Completed { .. } => summary.completed += 1,
                        Outcome::Rejected { .. } | Outcome::DeadLettered { .. } => {
                            summary.dead_lettered += 1
                        }
                        Outcome::Retry { .. } | Outcome::Skipped => {
                            summary.retried += 1;
                            continue;
                        }
                    }
                    self.queues.delete(&message.receipt_handle).await?;
                }
            }
            // A whole-invocation failure leaves every message for redelivery, as SQS does.
            Err(_) => summary.retried += batch.len() as u64,
        }
        Ok(Some(summary))
    }
}
