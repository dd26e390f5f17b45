//! Property tests of the harness's promises over generated batches (proptest; the case count
//! is `PROPTEST_CASES`, 256 unless set):
//!
//! - for any batch and any set of failing messages, `batchItemFailures` is a list (never null)
//!   of non-empty ids, a subset of the batch's ids, exactly the messages that must come back;
//!   on a FIFO queue, the first failed message and every message after it;
//! - the same idempotency key with a different payload never replays the old result.

use backbone::local::Invoke;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::helpers::*;

/// What one generated message does.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Ok,
    Transient,
    RateLimited,
    Panic,
    Permanent,
    Invalid,
    NotJson,
}

impl Kind {
    /// Whether the message goes back to the queue (a batch item failure) when it is processed.
    fn retried(self) -> bool {
        matches!(self, Kind::Transient | Kind::RateLimited | Kind::Panic)
    }

    fn body(self, i: usize) -> String {
        let artist = format!("prop{i:018}");
        match self {
            Kind::Ok => credit(&artist, 1),
            Kind::Transient => credit_mode(&artist, 1, "transient"),
            Kind::RateLimited => credit_mode(&artist, 1, "rate_limited"),
            Kind::Panic => credit_mode(&artist, 1, "panic"),
            Kind::Permanent => credit_mode(&artist, 1, "permanent"),
            Kind::Invalid => credit("not-an-artist", 1),
            Kind::NotJson => "{\"artist\":".to_owned(),
        }
    }
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Ok),
        1 => Just(Kind::Transient),
        1 => Just(Kind::RateLimited),
        1 => Just(Kind::Panic),
        1 => Just(Kind::Permanent),
        1 => Just(Kind::Invalid),
        1 => Just(Kind::NotJson),
    ]
}

fn record(id: &str, body: &str, fifo: bool, key: Option<&str>) -> Value {
    let mut record = sqs_record(id, body);
    if fifo {
        record["attributes"]["MessageGroupId"] = json!("group-1");
        record["eventSourceARN"] = json!("arn:aws:sqs:eu-west-1:123456789012:credit-test.fifo");
    }
    if let Some(key) = key {
        record["messageAttributes"] =
            json!({ "idempotency-key": { "stringValue": key, "dataType": "String" } });
    }
    record
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

proptest! {
    #[test]
    fn batch_item_failures_are_exactly_the_retried_ids(
        kinds in prop::collection::vec(arb_kind(), 1..=10),
        fifo in any::<bool>(),
        id_seed in any::<u32>(),
    ) {
        let ids: Vec<String> = (0..kinds.len())
            .map(|i| format!("{id_seed:08x}-{i}"))
            .collect();
        let event = batch(
            kinds
                .iter()
                .enumerate()
                .map(|(i, kind)| record(&ids[i], &kind.body(i), fifo, None))
                .collect(),
        );
        let response = runtime().block_on(async {
            let app = App::spawn();
            app.function.invoke(event).await.expect("a batch always gets a response").response
        });
        let failures = response["batchItemFailures"].as_array().expect("a list, never null");
        let failed: Vec<String> = failures
            .iter()
            .map(|f| f["itemIdentifier"].as_str().expect("a string id").to_owned())
            .collect();
        prop_assert!(failed.iter().all(|id| !id.is_empty()));
        prop_assert!(failed.iter().all(|id| ids.contains(id)));
        let expected: Vec<String> = if fifo {
            match kinds.iter().position(|k| k.retried()) {
                Some(first) => ids[first..].to_vec(),
                None => Vec::new(),
            }
        } else {
            ids.iter()
                .zip(&kinds)
                .filter(|(_, k)| k.retried())
                .map(|(id, _)| id.clone())
                .collect()
        };
        let mut sorted = failed.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), failed.len(), "no id twice");
        prop_assert_eq!(failed, expected);
    }

    #[test]
    fn a_reused_key_with_another_payload_never_replays_the_old_result(
        first in 1i64..1000,
        second in 1i64..1000,
        key in "[a-zA-Z0-9_-]{1,40}",
    ) {
        prop_assume!(first != second);
        let outcomes = runtime().block_on(async {
            let app = App::spawn();
            let a = record("m-1", &credit(ARTIST, first), false, Some(&key));
            let b = record("m-2", &credit(ARTIST, second), false, Some(&key));
            let ra = app.function.invoke(batch(vec![a])).await.expect("response");
            let rb = app.function.invoke(batch(vec![b])).await.expect("response");
            (ra.messages, rb.messages, app.plays(ARTIST).await)
        });
        let (a, b, plays) = outcomes;
        let completed_first = matches!(
            &a[0].1,
            backbone::harness::Outcome::Completed { replayed: false, .. }
        );
        prop_assert!(completed_first, "{:?}", a);
        // Refused as invalid (dead-lettered with the reason), never answered from the record.
        let refused = matches!(&b[0].1, backbone::harness::Outcome::Rejected { reason } if reason.contains("different payload"));
        prop_assert!(refused, "{:?}", b);
        prop_assert_eq!(plays, first);
    }
}
