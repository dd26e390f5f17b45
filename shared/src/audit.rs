//! The append-only, hash-chained audit log, written once above [`AuditStore`].
//!
//! Each record carries the hash of its predecessor in the same stream, and its own hash over
//! every field; [`AuditLog::verify`] walks a stream and reports any gap, edit or broken link,
//! so a deleted, altered, reordered or inserted record is detected. The stream's head (the
//! position and hash of its last record) is also kept outside the chain, written atomically
//! with each append, so deleting the last records (a truncated tail, which leaves a chain
//! intact as far as it goes) is detected too. Concurrent writers race on the next sequence
//! number with a conditional write and retry on conflict: none is lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::error::PortError;
use crate::hash::{canonical_json, sha256_hex};
use crate::ports::{AppendOutcome, AuditRecord, AuditStore};

/// The `prev_hash` of the first record of a stream.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How many times an append re-reads the stream's head after losing a race.
const MAX_APPEND_ATTEMPTS: u32 = 64;

/// What a caller wants recorded; the log adds the position and hashes.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// The stream (one per task).
    pub stream: String,
    /// The task.
    pub task: String,
    /// Its version.
    pub version: String,
    /// The trace id.
    pub trace_id: Option<String>,
    /// The message's idempotency key: the log keeps one record per key and action.
    pub idempotency_key: Option<String>,
    /// What it is about.
    pub subject: String,
    /// What was done.
    pub action: String,
    /// SHA-256 of the canonical input.
    pub input_hash: String,
    /// How it ended.
    pub outcome: String,
    /// Details; never a secret.
    pub detail: serde_json::Value,
}

/// An audit write that failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// Too many concurrent writers kept winning the race.
    #[error("audit stream {stream}: gave up after {attempts} conflicting appends")]
    Contended {
        /// The stream.
        stream: String,
        /// Attempts made.
        attempts: u32,
    },
}

impl crate::error::Classify for AuditError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            AuditError::Port(err) => err.class(),
            AuditError::Contended { .. } => crate::error::ErrorClass::Transient,
        }
    }
}

/// A problem found by [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ChainProblem {
    /// A sequence number is missing (a record was deleted).
    Gap {
        /// The number expected.
        expected: u64,
        /// The number found.
        found: u64,
    },
    /// A record's content does not match its hash (it was edited).
    Altered {
        /// The record.
        seq: u64,
    },
    /// A record does not point at its predecessor's hash.
    BrokenLink {
        /// The record.
        seq: u64,
    },
    /// The head kept outside the chain names a later record than the last one read: the
    /// tail was deleted.
    Truncated {
        /// The head's position.
        head_seq: u64,
        /// The last position read (0 for none).
        last_seq: u64,
    },
    /// The head kept outside the chain does not match the last record read (records were
    /// appended around the log, or the last record was replaced).
    HeadMismatch {
        /// The head's position.
        head_seq: u64,
        /// The last position read.
        last_seq: u64,
    },
    /// The stream has records but no head.
    HeadMissing,
}

/// The result of walking one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The stream.
    pub stream: String,
    /// Records read.
    pub records: u64,
    /// Every problem found; empty means the chain is intact.
    pub problems: Vec<ChainProblem>,
}

impl VerifyReport {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The EMF metric a verify emits per stream: the number of problems found (0 when intact).
/// An alarm on `Maximum > 0` raises a scheduled verify's break.
pub const CHAIN_BREAKS_METRIC: &str = "AuditChainBreaks";

/// Counts one verify's figures into `metrics`: [`CHAIN_BREAKS_METRIC`] (the problems found,
/// 0 when intact) and `AuditRecordsVerified`. The one place both the harness's scheduled
/// verify and `tasks audit verify` count them, so the alarm reads the same metric from both.
pub fn count_verify_metrics(metrics: &crate::telemetry::Metrics, report: &VerifyReport) {
    metrics.count(CHAIN_BREAKS_METRIC, report.problems.len() as u64);
    metrics.count("AuditRecordsVerified", report.records);
}

/// Emits the verify metrics ([`count_verify_metrics`]) of each report as one EMF line per
/// stream into `sink`, with the dimensions a scheduled verify of that stream's function uses
/// (`service`, and `task` = the stream: see [`crate::harness::metrics_for`]), so the
/// template's `AuditChainAlarm` of that function watches the line.
pub fn emit_verify_metrics(
    reports: &[VerifyReport],
    config: &crate::config::HarnessConfig,
    sink: Arc<dyn crate::telemetry::LineSink>,
    now: DateTime<Utc>,
) {
    for report in reports {
        let metrics = crate::harness::metrics_for(config, &report.stream, sink.clone());
        count_verify_metrics(&metrics, report);
        metrics.flush(now);
    }
}

/// The hash of `record` over every field but `hash`.
pub fn record_hash(record: &AuditRecord) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(record)?;
    if let Some(object) = value.as_object_mut() {
        object.remove("hash");
    }
    Ok(sha256_hex(canonical_json(&value)?))
}

/// The audit log.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
}

impl AuditLog {
    /// A log kept in `store`.
    pub fn new(store: Arc<dyn AuditStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Appends `entry` at the head of its stream; returns the record, or `None` when a record
    /// with the same idempotency key and action exists already.
    pub async fn append(&self, entry: AuditEntry) -> Result<Option<AuditRecord>, AuditError> {
        for attempt in 0..MAX_APPEND_ATTEMPTS {
            let head = self.store.last(&entry.stream).await?;
            let record = chain_record(&entry, head.as_ref(), self.now())?;
            match self.store.append(&record).await {
                Ok(AppendOutcome::Appended) => return Ok(Some(record)),
                Ok(AppendOutcome::Duplicate) => return Ok(None),
                Err(PortError::Conflict { .. }) => {
                    // Another writer took this sequence number: wait a little, re-read the head.
                    let jitter = rand::random_range(0..=(5 * (u64::from(attempt) + 1)).min(100));
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(AuditError::Contended {
            stream: entry.stream,
            attempts: MAX_APPEND_ATTEMPTS,
        })
    }

    /// Walks `stream` from its first record and reports every gap, edit and broken link.
    pub async fn verify(&self, stream: &str) -> Result<VerifyReport, PortError> {
        let mut report = VerifyReport {
            stream: stream.to_owned(),
            records: 0,
            problems: Vec::new(),
        };
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut after = 0;
        let mut last: Option<(u64, String)> = None;
        loop {
            let page = self.store.read(stream, after, 500).await?;
            let Some(tail) = page.last() else { break };
            after = tail.seq;
            for record in page {
                report.records += 1;
                if record.seq != expected_seq {
                    report.problems.push(ChainProblem::Gap {
                        expected: expected_seq,
                        found: record.seq,
                    });
                }
                let hash_ok = record_hash(&record).is_ok_and(|h| h == record.hash);
                if !hash_ok {
                    report
                        .problems
                        .push(ChainProblem::Altered { seq: record.seq });
                }
                if record.prev_hash != prev_hash {
                    report
                        .problems
                        .push(ChainProblem::BrokenLink { seq: record.seq });
                }
                expected_seq = record.seq + 1;
                prev_hash = record.hash;
                last = Some((record.seq, prev_hash.clone()));
            }
        }
        match (self.store.head(stream).await?, last) {
            (None, None) => {}
            (None, Some(_)) => report.problems.push(ChainProblem::HeadMissing),
            (Some(head), None) => report.problems.push(ChainProblem::Truncated {
                head_seq: head.seq,
                last_seq: 0,
            }),
            (Some(head), Some((last_seq, last_hash))) => {
                if head.seq > last_seq {
                    report.problems.push(ChainProblem::Truncated {
                        head_seq: head.seq,
                        last_seq,
                    });
                } else if head.seq != last_seq || head.hash != last_hash {
                    report.problems.push(ChainProblem::HeadMismatch {
                        head_seq: head.seq,
                        last_seq,
                    });
                }
            }
        }
        Ok(report)
    }

    /// Verifies every stream.
    pub async fn verify_all(&self) -> Result<Vec<VerifyReport>, PortError> {
        let mut reports = Vec::new();
        for stream in self.store.streams().await? {
            reports.push(self.verify(&stream).await?);
        }
        Ok(reports)
    }

    fn now(&self) -> DateTime<Utc> {
        // Millisecond precision survives every backend's timestamp round trip unchanged, so
        // the hash computed now matches the one recomputed on verify.
        self.clock.now().trunc_subsecs(3)
    }
}

fn chain_record(
    entry: &AuditEntry,
    head: Option<&AuditRecord>,
    at: DateTime<Utc>,
) -> Result<AuditRecord, PortError> {
    let mut record = AuditRecord {
        stream: entry.stream.clone(),
        seq: head.map_or(1, |h| h.seq + 1),
        at,
        task: entry.task.clone(),
        version: entry.version.clone(),
        trace_id: entry.trace_id.clone(),
        idempotency_key: entry.idempotency_key.clone(),
        subject: entry.subject.clone(),
        action: entry.action.clone(),
        input_hash: entry.input_hash.clone(),
        outcome: entry.outcome.clone(),
        detail: entry.detail.clone(),
        prev_hash: head.map_or_else(|| GENESIS_HASH.to_owned(), |h| h.hash.clone()),
        hash: String::new(),
    };
    record.hash = record_hash(&record).map_err(|err| PortError::permanent("audit.hash", err))?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::clock::SystemClock;
    use crate::ports::ChainHead;

    /// Records and head in memory, as the adapters keep them, and open to tampering.
    #[derive(Default)]
    struct Memory {
        records: Mutex<Vec<AuditRecord>>,
        head: Mutex<Option<ChainHead>>,
    }

    #[async_trait]
    impl AuditStore for Memory {
        async fn last(&self, _stream: &str) -> Result<Option<AuditRecord>, PortError> {
            Ok(self.records.lock().unwrap().last().cloned())
        }

        async fn append(&self, record: &AuditRecord) -> Result<AppendOutcome, PortError> {
            let mut records = self.records.lock().unwrap();
            let mut head = self.head.lock().unwrap();
            if records.iter().any(|r| r.seq == record.seq)
                || head.as_ref().map_or(0, |h| h.seq) + 1 != record.seq
            {
                return Err(PortError::Conflict {
                    operation: "audit.append",
                });
            }
            records.push(record.clone());
            *head = Some(ChainHead {
                seq: record.seq,
                hash: record.hash.clone(),
            });
            Ok(AppendOutcome::Appended)
        }

        async fn head(&self, _stream: &str) -> Result<Option<ChainHead>, PortError> {
            Ok(self.head.lock().unwrap().clone())
        }

        async fn read(
            &self,
            _stream: &str,
            after: u64,
            limit: usize,
        ) -> Result<Vec<AuditRecord>, PortError> {
            // Stored order, as a table scanned by position would return it.
            Ok(self
                .records
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.seq > after)
                .take(limit)
                .cloned()
                .collect())
        }

        async fn streams(&self) -> Result<Vec<String>, PortError> {
            Ok(vec!["s".into()])
        }
    }

    fn entry(i: usize) -> AuditEntry {
        AuditEntry {
            stream: "s".into(),
            task: "t".into(),
            version: "1".into(),
            trace_id: None,
            idempotency_key: Some(format!("k{i}")),
            subject: format!("artist-{i}"),
            action: "completed".into(),
            input_hash: "h".into(),
            outcome: "ok".into(),
            detail: serde_json::json!({ "i": i }),
        }
    }

    async fn chain(len: usize) -> (AuditLog, Arc<Memory>) {
        let store = Arc::new(Memory::default());
        let log = AuditLog::new(store.clone(), Arc::new(SystemClock));
        for i in 0..len {
            log.append(entry(i)).await.unwrap().unwrap();
        }
        (log, store)
    }

    /// A chained record a forger would write after `prev` (valid hash, valid link).
    fn forged(seq: u64, prev: &str) -> AuditRecord {
        let mut record = chain_record(&entry(1000 + seq as usize), None, Utc::now()).unwrap();
        record.seq = seq;
        record.prev_hash = prev.to_owned();
        record.hash = record_hash(&record).unwrap();
        record
    }

    fn rehash_from(records: &mut [AuditRecord], from: usize) {
        for i in from..records.len() {
            if i > 0 {
                records[i].prev_hash = records[i - 1].hash.clone();
            }
            records[i].hash = record_hash(&records[i]).unwrap();
        }
    }

    /// Every mutation of every position of chains of 1 to 8 records, including a forger who
    /// recomputes every hash after the change: each is detected.
    #[tokio::test]
    async fn verify_detects_every_edit_delete_reorder_insert_and_truncation() {
        type Mutation = fn(&mut Vec<AuditRecord>, usize) -> bool;
        let mutations: [(&str, Mutation); 9] = [
            ("edit", |r, k| {
                r[k].subject.push('!');
                true
            }),
            ("edit-and-rehash", |r, k| {
                r[k].detail = serde_json::json!({ "forged": true });
                rehash_from(r, k);
                true
            }),
            ("edit-one-rehash", |r, k| {
                r[k].outcome = "invalid".into();
                r[k].hash = record_hash(&r[k]).unwrap();
                true
            }),
            ("delete", |r, k| {
                r.remove(k);
                true
            }),
            ("delete-and-renumber", |r, k| {
                r.remove(k);
                for (i, record) in r.iter_mut().enumerate() {
                    record.seq = i as u64 + 1;
                }
                rehash_from(r, 0);
                true
            }),
            ("reorder", |r, k| {
                if k + 1 >= r.len() {
                    return false;
                }
                r.swap(k, k + 1);
                true
            }),
            ("reorder-renumber-rehash", |r, k| {
                if k + 1 >= r.len() {
                    return false;
                }
                r.swap(k, k + 1);
                r[k].seq = k as u64 + 1;
                r[k + 1].seq = k as u64 + 2;
                rehash_from(r, k);
                true
            }),
            ("insert-and-rehash", |r, k| {
                let prev = if k == 0 {
                    GENESIS_HASH.to_owned()
                } else {
                    r[k - 1].hash.clone()
                };
                r.insert(k, forged(k as u64 + 1, &prev));
                for (i, record) in r.iter_mut().enumerate() {
                    record.seq = i as u64 + 1;
                }
                rehash_from(r, k);
                true
            }),
            ("truncate", |r, k| {
                r.truncate(k);
                true
            }),
        ];
        let (mut cases, mut detected) = (0, 0);
        for len in 1..=8 {
            for (name, mutate) in &mutations {
                for k in 0..len {
                    let (log, store) = chain(len).await;
                    assert!(log.verify("s").await.unwrap().is_intact());
                    let applied = mutate(&mut store.records.lock().unwrap(), k);
                    if !applied {
                        continue;
                    }
                    cases += 1;
                    let report = log.verify("s").await.unwrap();
                    if report.is_intact() {
                        eprintln!("undetected: {name} at {k} of {len}");
                    } else {
                        detected += 1;
                    }
                }
            }
            // A forged record appended at the tail, chained perfectly.
            let (log, store) = chain(len).await;
            {
                let mut records = store.records.lock().unwrap();
                let last = records.last().unwrap().hash.clone();
                records.push(forged(len as u64 + 1, &last));
            }
            cases += 1;
            detected += usize::from(!log.verify("s").await.unwrap().is_intact());
        }
        eprintln!("audit tamper cases: {cases}, detected: {detected}");
        assert!(cases > 250, "{cases}");
        assert_eq!(detected, cases, "every tampering is detected");
    }

    #[tokio::test]
    async fn a_truncated_tail_is_named_as_such() {
        let (log, store) = chain(5).await;
        store.records.lock().unwrap().truncate(3);
        let report = log.verify("s").await.unwrap();
        assert_eq!(
            report.problems,
            vec![ChainProblem::Truncated {
                head_seq: 5,
                last_seq: 3
            }]
        );
        store.records.lock().unwrap().clear();
        assert_eq!(
            log.verify("s").await.unwrap().problems,
            vec![ChainProblem::Truncated {
                head_seq: 5,
                last_seq: 0
            }]
        );
    }

    #[test]
    fn verify_metrics_count_the_breaks_per_stream() {
        let capture = crate::telemetry::Capture::new();
        let reports = vec![
            VerifyReport {
                stream: "artist-monitoring".into(),
                records: 4,
                problems: vec![ChainProblem::Altered { seq: 2 }, ChainProblem::HeadMissing],
            },
            VerifyReport {
                stream: "data-sync".into(),
                records: 2,
                problems: vec![],
            },
        ];
        let mut config = crate::config::HarnessConfig::for_task("audit-verify");
        config.metrics_namespace = "ns".into();
        config.service = "svc".into();
        emit_verify_metrics(&reports, &config, Arc::new(capture.clone()), Utc::now());
        let lines = capture.json();
        let breaks: Vec<(String, f64)> = lines
            .iter()
            .map(|l| {
                (
                    l["task"].as_str().unwrap().to_owned(),
                    l[CHAIN_BREAKS_METRIC].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            breaks,
            vec![("artist-monitoring".into(), 2.0), ("data-sync".into(), 0.0)]
        );
        assert_eq!(lines[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"], "ns");
        assert_eq!(lines[0]["service"], "svc");
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["service", "task"]]),
            "the dimensions of the harness's scheduled verify, which the alarm watches"
        );
    }
}
