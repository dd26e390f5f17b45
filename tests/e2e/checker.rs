//! A total-queue checker in the manner of Jepsen's: after a queue has drained, every business
//! key that was sent is classified as effected once, dead-lettered with its reason, lost, or
//! duplicated, and every message that should have been refused is checked to be in the DLQ.
//!
//! It is generic over the task: a [`Workload`] says what to send for business key `i`, which
//! audit subject its completion carries, and how many effects the key has in the task's own
//! data (read from the database, never through the code under test). A new function joins the
//! reliability suite by implementing [`Workload`] for its task.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use backbone::clock::ManualClock;
use backbone::harness::Task;
use backbone::local::{Invoke, LocalDb, LocalFunction, LocalQueues};
use backbone::ports::{AuditStore, OutgoingMessage, Queues};
use serde::Serialize;

/// What a reliability run sends and how it reads the effects back.
#[async_trait]
pub trait Workload: Send + Sync {
    /// The task under test.
    type Task: Task;

    /// The bodies sent for business key `i`: two or more spellings of one business input
    /// (new message ids each time; reordered fields, other id forms), all with one effect.
    fn bodies(&self, i: usize) -> Vec<String>;

    /// Messages that must be refused and dead-lettered with a reason.
    fn poison(&self) -> Vec<String>;

    /// The audit subject of business key `i`'s completion record.
    fn subject(&self, i: usize) -> String;

    /// Whether the dead-letter body `body` belongs to business key `i`.
    fn owns(&self, i: usize, body: &str) -> bool;

    /// How many times business key `i` took effect, from the task's own data: 1 is right,
    /// 0 is lost (unless dead-lettered), more is duplicated.
    async fn effects(&self, db: &LocalDb, i: usize) -> u64;
}

/// The checker's counts for one run.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Business keys sent.
    pub keys: usize,
    /// Messages sent (every duplicate and poison message included).
    pub messages: usize,
    /// Duplicates injected: messages beyond the first per key, plus verbatim redeliveries.
    pub duplicates_injected: usize,
    /// Keys with exactly one effect and one completion record.
    pub effected: usize,
    /// Keys with no effect, but in the DLQ with a reason.
    pub dead_lettered: usize,
    /// Keys with their one effect, but no completion: out of receipts, in the DLQ with the
    /// reason, for a redrive to complete (a partial effect counts as duplicated).
    pub effected_then_dead_lettered: usize,
    /// Keys with no effect and not in the DLQ.
    pub lost: usize,
    /// Keys with more than one effect or completion record.
    pub duplicated: usize,
    /// Poison messages not in the DLQ with a reason (or keys effected without being sent).
    pub unexpected: usize,
    /// Faults injected into the ports.
    pub faults_injected: u64,
}

/// Sends the workload for `keys` business keys, redelivers one batch verbatim (the same
/// message ids, twice), then drains the queue with every consumer racing, advancing the clock
/// past the visibility timeout between rounds, and checks the outcome.
pub async fn run<W: Workload>(
    workload: &W,
    keys: usize,
    consumers: &[&LocalFunction<W::Task>],
    queues: &LocalQueues,
    clock: &ManualClock,
    db: &LocalDb,
) -> Verdict {
    let mut verdict = Verdict {
        keys,
        ..Verdict::default()
    };
    let mut outgoing = Vec::new();
    for i in 0..keys {
        let bodies = workload.bodies(i);
        verdict.duplicates_injected += bodies.len().saturating_sub(1);
        outgoing.extend(bodies.into_iter().map(message));
    }
    let poison = workload.poison();
    outgoing.extend(poison.iter().cloned().map(message));
    verdict.messages = outgoing.len();
    for chunk in outgoing.chunks(10) {
        queues.send(chunk).await.expect("send");
    }

    // The same message ids redelivered: one batch handled twice, racing, before any delete.
    let batch = queues
        .receive(10, Duration::from_secs(1))
        .await
        .expect("receive");
    verdict.duplicates_injected += batch.len();
    let event = queues.sqs_event(&batch);
    let (a, b) = futures::join!(
        consumers[0].invoke(event.clone()),
        consumers[consumers.len() - 1].invoke(event)
    );
    drop((a, b));

    for _ in 0..1000 {
        let drains = futures::future::join_all(consumers.iter().map(|c| c.drain(Duration::ZERO)));
        for drained in drains.await {
            drained.expect("drain");
        }
        if queues.depth().await.expect("depth") == 0 {
            break;
        }
        // Past the visibility timeout: failed receipts come back.
        clock.advance(chrono::Duration::seconds(361));
    }
    assert_eq!(queues.depth().await.expect("depth"), 0, "the queue drained");

    let dead = queues.dead_letters().await.expect("dead letters");
    for letter in &dead {
        eprintln!("dead letter ({}): {}", W::Task::NAME, letter.reason);
    }
    let records = audit_records(db, <W::Task as Task>::NAME).await;
    let mut completions: BTreeMap<&str, usize> = BTreeMap::new();
    for record in records.iter().filter(|r| r.action == "completed") {
        *completions.entry(record.subject.as_str()).or_default() += 1;
    }
    for i in 0..keys {
        let effects = workload.effects(db, i).await;
        let completed = completions
            .get(workload.subject(i).as_str())
            .copied()
            .unwrap_or(0);
        let in_dlq = dead
            .iter()
            .any(|l| workload.owns(i, &l.body) && !l.reason.is_empty());
        match (effects, completed) {
            (0, _) if in_dlq => verdict.dead_lettered += 1,
            (0, _) => {
                eprintln!(
                    "checker: key {i} ({}) lost: no effect, {completed} completions, not in the DLQ",
                    workload.subject(i)
                );
                for r in records.iter().filter(|r| r.subject == workload.subject(i)) {
                    eprintln!("  {} {} {}", r.action, r.outcome, r.detail);
                }
                verdict.lost += 1
            }
            (1, 1) => verdict.effected += 1,
            // Its effect is whole and once, but every receipt failed before the completion:
            // the message is in the DLQ with its reason, and a redrive completes it.
            (1, 0) if in_dlq => verdict.effected_then_dead_lettered += 1,
            _ => {
                eprintln!(
                    "checker: key {i} ({}) duplicated: {effects} effects, {completed} completions",
                    workload.subject(i)
                );
                verdict.duplicated += 1
            }
        }
    }
    let refused: BTreeSet<&str> = dead
        .iter()
        .filter(|l| !l.reason.is_empty())
        .map(|l| l.body.as_str())
        .collect();
    verdict.unexpected = poison
        .iter()
        .filter(|p| !refused.contains(p.as_str()))
        .count();
    verdict
}

fn message(body: String) -> OutgoingMessage {
    OutgoingMessage {
        body,
        attributes: Default::default(),
        group_id: None,
        dedup_id: None,
        trace_header: None,
    }
}

/// What the kill test saw: the effects of key 0 after the kill and after the redelivery, and
/// its completion records at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KillVerdict {
    /// Effects once the invocation was killed (the effect happened before the kill: 1).
    pub effects_after_kill: u64,
    /// Effects once the redelivery has run (still 1).
    pub effects_after_redelivery: u64,
    /// Completion records of the key (1).
    pub completions: usize,
}

/// Kills an invocation between its effect and its completion: business key 0 is sent once,
/// the invocation hangs while it writes its completion (`idempotency.update`) and is dropped;
/// past the visibility timeout the redelivery takes the expired lock over and runs again.
/// `plan` must be the fault plan of `consumer`'s harness ports.
pub async fn kill_between_effect_and_completion<W: Workload>(
    workload: &W,
    consumer: &LocalFunction<W::Task>,
    plan: &backbone::local::faults::FaultPlan,
    queues: &LocalQueues,
    clock: &ManualClock,
    db: &LocalDb,
) -> KillVerdict {
    let body = workload.bodies(0).remove(0);
    queues.send(&[message(body)]).await.expect("send");
    plan.hang_next("idempotency.update");
    let killed = tokio::time::timeout(Duration::from_secs(2), consumer.drain(Duration::ZERO)).await;
    assert!(
        killed.is_err(),
        "the invocation hung at its completion and was killed"
    );
    let effects_after_kill = workload.effects(db, 0).await;
    for _ in 0..30 {
        // Past the visibility timeout (and the dead invocation's deadline).
        clock.advance(chrono::Duration::seconds(361));
        consumer.drain(Duration::ZERO).await.expect("drain");
        if queues.depth().await.expect("depth") == 0 {
            break;
        }
    }
    let records = audit_records(db, <W::Task as Task>::NAME).await;
    let completions = records
        .iter()
        .filter(|r| r.action == "completed" && r.subject == workload.subject(0))
        .count();
    KillVerdict {
        effects_after_kill,
        effects_after_redelivery: workload.effects(db, 0).await,
        completions,
    }
}

/// The audit records of `stream`, every page.
pub async fn audit_records(db: &LocalDb, stream: &str) -> Vec<backbone::ports::AuditRecord> {
    let mut records = AuditStore::read(db, stream, 0, 1000).await.expect("audit");
    while let Some(last) = records.last().map(|r| r.seq) {
        let more = AuditStore::read(db, stream, last, 1000)
            .await
            .expect("audit");
        if more.is_empty() {
            break;
        }
        records.extend(more);
    }
    records
}
