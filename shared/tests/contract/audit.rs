//! `AuditStore` (directly and through `AuditLog`): SQLite and DynamoDB.

use std::sync::Arc;

use backbone::audit::{AuditEntry, AuditLog, GENESIS_HASH, record_hash};
use backbone::aws::DynamoAuditStore;
use backbone::clock::SystemClock;
use backbone::error::PortError;
use backbone::ports::{AppendOutcome, AuditRecord, AuditStore};
use futures::future::join_all;

use crate::helpers::unique;

async fn dynamo(sdk: &aws_config::SdkConfig) -> Arc<dyn AuditStore> {
    Arc::new(DynamoAuditStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        crate::helpers::audit_table(sdk).await,
    ))
}

macro_rules! audit_contract {
    ($($scenario:ident),* $(,)?) => { $(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(std::sync::Arc::new(crate::helpers::local_db())).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                let sdk = crate::require_moto!();
                super::$scenario(super::dynamo(&sdk).await).await;
            }
        }
    )* };
}

audit_contract!(
    chain_appends_reads_and_verifies,
    taken_sequence_number_is_a_conflict,
    reads_page_after_a_position,
    fifty_concurrent_writers_lose_nothing,
);

fn entry(stream: &str, key: Option<&str>, action: &str) -> AuditEntry {
    AuditEntry {
        stream: stream.to_owned(),
        task: "contract".into(),
        version: "1.2.3".into(),
        trace_id: Some("1-5759e988-bd862e3fe1be46a994272793".into()),
        idempotency_key: key.map(str::to_owned),
        subject: "artist:4Z8W4fKeB5YxbusRsdQVPb".into(),
        action: action.to_owned(),
        input_hash: "0".repeat(64),
        outcome: "ok".into(),
        // Figures as the analyses write them: every digit of an f64 must survive the round trip.
        detail: serde_json::json!({"count": 3, "ratio": 0.25, "bpm": 117.45383522727273,
            "lufs": -19.69121621558291, "danceability": 0.8852187742068022, "tiny": 5e-324,
            "names": ["a", "é"], "none": null}),
    }
}

fn log(store: Arc<dyn AuditStore>) -> AuditLog {
    AuditLog::new(store, Arc::new(SystemClock))
}

async fn chain_appends_reads_and_verifies(store: Arc<dyn AuditStore>) {
    let log = log(store.clone());
    let stream = unique("artist-monitoring");
    let key = unique("key");
    assert_eq!(store.last(&stream).await.unwrap(), None);

    let first = log
        .append(entry(&stream, Some(&key), "completed"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.seq, first.prev_hash.as_str()), (1, GENESIS_HASH));
    // The same key and action again: nothing is written.
    assert_eq!(
        log.append(entry(&stream, Some(&key), "completed"))
            .await
            .unwrap(),
        None
    );
    // The same key with another action, and records without a key, are appended.
    let second = log
        .append(entry(&stream, Some(&key), "playlist.items.replaced"))
        .await
        .unwrap()
        .unwrap();
    let third = log
        .append(entry(&stream, None, "rejected"))
        .await
        .unwrap()
        .unwrap();
    log.append(entry(&stream, None, "rejected"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((second.seq, third.seq), (2, 3));
    assert_eq!(second.prev_hash, first.hash);

    // Records come back exactly as written: their hashes still match.
    let records = store.read(&stream, 0, 100).await.unwrap();
    assert_eq!(records.len(), 4);
    assert_eq!(records[0], first);
    assert_eq!(records[2], third);
    assert!(records.iter().all(|r| record_hash(r).unwrap() == r.hash));
    assert_eq!(store.last(&stream).await.unwrap().unwrap().seq, 4);

    let report = log.verify(&stream).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 4);

    let other = unique("data-sync");
    log.append(entry(&other, None, "completed"))
        .await
        .unwrap()
        .unwrap();
    let streams = store.streams().await.unwrap();
    assert!(
        streams.contains(&stream) && streams.contains(&other),
        "{streams:?}"
    );
    assert!(streams.windows(2).all(|w| w[0] < w[1]));
}

fn record(stream: &str, seq: u64, key: Option<&str>, prev: &str) -> AuditRecord {
    let mut record = AuditRecord {
        stream: stream.to_owned(),
        seq,
        at: chrono::Utc::now(),
        task: "contract".into(),
        version: "1".into(),
        trace_id: None,
        idempotency_key: key.map(str::to_owned),
        subject: "s".into(),
        action: "completed".into(),
        input_hash: "h".into(),
        outcome: "ok".into(),
        detail: serde_json::json!({}),
        prev_hash: prev.to_owned(),
        hash: String::new(),
    };
    record.hash = record_hash(&record).unwrap();
    record
}

async fn taken_sequence_number_is_a_conflict(store: Arc<dyn AuditStore>) {
    let stream = unique("stream");
    let key = unique("key");
    let first = record(&stream, 1, Some(&key), GENESIS_HASH);
    assert_eq!(store.append(&first).await.unwrap(), AppendOutcome::Appended);
    // Another writer's record for the same position: refused, nothing written.
    let rival = record(&stream, 1, Some(&unique("key")), GENESIS_HASH);
    assert!(matches!(
        store.append(&rival).await,
        Err(PortError::Conflict { .. })
    ));
    // The same message again, at the same or the next position: a duplicate, not a conflict.
    assert_eq!(
        store.append(&first).await.unwrap(),
        AppendOutcome::Duplicate
    );
    let retry = record(&stream, 2, Some(&key), &first.hash);
    assert_eq!(
        store.append(&retry).await.unwrap(),
        AppendOutcome::Duplicate
    );
    let records = store.read(&stream, 0, 10).await.unwrap();
    assert_eq!(records, vec![first.clone()]);
    // A rejected rival left no marker behind: its key is still free.
    let rival_next = record(&stream, 2, rival.idempotency_key.as_deref(), &first.hash);
    assert_eq!(
        store.append(&rival_next).await.unwrap(),
        AppendOutcome::Appended
    );
}

async fn reads_page_after_a_position(store: Arc<dyn AuditStore>) {
    let log = log(store.clone());
    let stream = unique("stream");
    for _ in 0..7 {
        log.append(entry(&stream, None, "completed"))
            .await
            .unwrap()
            .unwrap();
    }
    let seqs = |records: Vec<AuditRecord>| records.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.read(&stream, 0, 3).await.unwrap()),
        vec![1, 2, 3]
    );
    assert_eq!(
        seqs(store.read(&stream, 3, 3).await.unwrap()),
        vec![4, 5, 6]
    );
    assert_eq!(seqs(store.read(&stream, 6, 3).await.unwrap()), vec![7]);
    assert!(store.read(&stream, 7, 3).await.unwrap().is_empty());
    assert!(store.read(&unique("empty"), 0, 3).await.unwrap().is_empty());
}

async fn fifty_concurrent_writers_lose_nothing(store: Arc<dyn AuditStore>) {
    let log = log(store.clone());
    let stream = unique("contended");
    let keys: Vec<String> = (0..50)
        .map(|i| format!("{}-{i}", unique("writer")))
        .collect();
    let results = join_all(keys.iter().map(|key| {
        let log = log.clone();
        let entry = entry(&stream, Some(key), "completed");
        // Each writer on its own task, so they really race.
        async move {
            tokio::spawn(async move { log.append(entry).await })
                .await
                .unwrap()
        }
    }))
    .await;
    for result in &results {
        assert!(matches!(result, Ok(Some(_))), "{result:?}");
    }
    let report = log.verify(&stream).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 50);
    let records = store.read(&stream, 0, 1000).await.unwrap();
    let mut written: Vec<_> = records
        .iter()
        .filter_map(|r| r.idempotency_key.clone())
        .collect();
    written.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(written, expected);
}

// --- tampering with the stored records ------------------------------------------------------

/// Raw access to the records behind an adapter, as someone with write access to the table.
enum Raw {
    Sqlite(backbone::local::LocalDb),
    Dynamo(aws_sdk_dynamodb::Client, String),
}

impl Raw {
    async fn delete(&self, stream: &str, seq: u64) {
        match self {
            Raw::Sqlite(db) => {
                db.execute(&format!(
                    "DELETE FROM audit WHERE stream = '{stream}' AND seq = {seq}"
                ))
                .await
                .unwrap();
            }
            Raw::Dynamo(client, table) => {
                client
                    .delete_item()
                    .table_name(table)
                    .key(
                        "stream",
                        aws_sdk_dynamodb::types::AttributeValue::S(stream.into()),
                    )
                    .key(
                        "seq",
                        aws_sdk_dynamodb::types::AttributeValue::N(seq.to_string()),
                    )
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    async fn edit_subject(&self, stream: &str, seq: u64) {
        match self {
            Raw::Sqlite(db) => {
                db.execute(&format!(
                    "UPDATE audit SET record = json_set(record, '$.subject', 'forged') \
                     WHERE stream = '{stream}' AND seq = {seq}"
                ))
                .await
                .unwrap();
            }
            Raw::Dynamo(client, table) => {
                client
                    .update_item()
                    .table_name(table)
                    .key(
                        "stream",
                        aws_sdk_dynamodb::types::AttributeValue::S(stream.into()),
                    )
                    .key(
                        "seq",
                        aws_sdk_dynamodb::types::AttributeValue::N(seq.to_string()),
                    )
                    .update_expression("SET subject = :s")
                    .expression_attribute_values(
                        ":s",
                        aws_sdk_dynamodb::types::AttributeValue::S("forged".into()),
                    )
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

async fn tampering_is_detected(store: Arc<dyn AuditStore>, raw: Raw) {
    use backbone::audit::ChainProblem;
    let log = log(store.clone());
    let fill = |stream: String| {
        let log = log.clone();
        async move {
            for _ in 0..5 {
                log.append(entry(&stream, None, "completed"))
                    .await
                    .unwrap()
                    .unwrap();
            }
            stream
        }
    };
    let head = store.head(&unique("none")).await.unwrap();
    assert_eq!(head, None);

    let edited = fill(unique("edited")).await;
    let intact = log.verify(&edited).await.unwrap();
    assert!(intact.is_intact(), "{intact:?}");
    assert_eq!(store.head(&edited).await.unwrap().unwrap().seq, 5);
    raw.edit_subject(&edited, 3).await;
    assert_eq!(
        log.verify(&edited).await.unwrap().problems,
        vec![ChainProblem::Altered { seq: 3 }]
    );

    let gapped = fill(unique("gapped")).await;
    raw.delete(&gapped, 2).await;
    let problems = log.verify(&gapped).await.unwrap().problems;
    assert!(
        problems.contains(&ChainProblem::Gap {
            expected: 2,
            found: 3
        }),
        "{problems:?}"
    );

    // The last two records deleted: the chain that is left is intact, the head is not.
    let truncated = fill(unique("truncated")).await;
    raw.delete(&truncated, 5).await;
    raw.delete(&truncated, 4).await;
    assert_eq!(
        log.verify(&truncated).await.unwrap().problems,
        vec![ChainProblem::Truncated {
            head_seq: 5,
            last_seq: 3
        }]
    );
    // Every record deleted: the stream is still listed and reported.
    for seq in 1..=3 {
        raw.delete(&truncated, seq).await;
    }
    let all = log.verify_all().await.unwrap();
    let report = all.iter().find(|r| r.stream == truncated).unwrap();
    assert_eq!(
        report.problems,
        vec![ChainProblem::Truncated {
            head_seq: 5,
            last_seq: 0
        }]
    );
    // And a truncated stream takes no new records on top of the hole.
    assert!(
        log.append(entry(&truncated, None, "completed"))
            .await
            .is_err()
    );
}

mod tampering_is_detected {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let db = crate::helpers::local_db();
        super::tampering_is_detected(std::sync::Arc::new(db.clone()), super::Raw::Sqlite(db)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamodb() {
        let sdk = crate::require_moto!();
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let table = crate::helpers::audit_table(&sdk).await;
        let store = backbone::aws::DynamoAuditStore::new(client.clone(), table.clone());
        super::tampering_is_detected(
            std::sync::Arc::new(store),
            super::Raw::Dynamo(client, table),
        )
        .await;
    }
}
