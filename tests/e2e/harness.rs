//! The harness end to end on the embedded adapters, driven by the test task.

use std::collections::HashMap;
use std::time::Duration;

use backbone::config::HarnessConfig;
use backbone::harness::Outcome;
use backbone::local::Invoke;
use backbone::ports::{OutgoingMessage, Queues};
use backbone::telemetry::install_for_test;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn lambda_fixture_batch_is_processed_with_ids_uris_and_urls() {
    let app = App::spawn();
    let report = app
        .function
        .invoke_bytes(&fixture("sqs-credit-batch.json"))
        .await
        .unwrap();
    assert_eq!(failures(&report.response), Vec::<String>::new());
    assert_eq!(app.plays(ARTIST).await, 3);
    assert_eq!(app.plays(OTHER_ARTIST).await, 5);
}

#[tokio::test]
async fn duplicate_delivery_has_one_effect() {
    let app = App::spawn();
    let event = batch(vec![sqs_record("m-1", &credit(ARTIST, 4))]);
    let first = app.function.invoke(event.clone()).await.unwrap();
    let second = app.function.invoke(event).await.unwrap();
    assert!(failures(&first.response).is_empty());
    assert!(failures(&second.response).is_empty());
    assert!(matches!(
        second.messages[0].1,
        Outcome::Completed { replayed: true, .. }
    ));
    assert_eq!(app.runs(), 1, "the second delivery must not run the task");
    assert_eq!(app.plays(ARTIST).await, 4);

    // The same business key under a new message id, in another field order, is a duplicate too.
    let reordered =
        json!({ "amount": 4, "artist": format!("spotify:artist:{ARTIST}") }).to_string();
    let third = app
        .function
        .invoke(batch(vec![sqs_record("m-2", &reordered)]))
        .await
        .unwrap();
    assert!(matches!(
        third.messages[0].1,
        Outcome::Completed { replayed: true, .. }
    ));
    assert_eq!(app.plays(ARTIST).await, 4);

    let audit = app
        .function
        .harness()
        .audit()
        .verify("credit-test")
        .await
        .unwrap();
    assert!(audit.is_intact());
    assert_eq!(
        audit.records, 2,
        "one effect record and one completion record"
    );
}

#[tokio::test]
async fn concurrent_duplicates_have_one_effect() {
    let app = App::spawn();
    let body = credit_mode(ARTIST, 9, "slow");
    let a = batch(vec![sqs_record("m-a", &body)]);
    let b = batch(vec![sqs_record("m-b", &body)]);
    let (ra, rb) = futures::join!(app.function.invoke(a), app.function.invoke(b));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let failed: Vec<String> = failures(&ra.response)
        .into_iter()
        .chain(failures(&rb.response))
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "the racing duplicate is handed back while the first runs: {failed:?}"
    );
    assert_eq!(app.runs(), 1);
    assert_eq!(app.plays(ARTIST).await, 9);

    // Its redelivery, after the first completed, replays the result.
    let retry = app
        .function
        .invoke(batch(vec![sqs_record(&failed[0], &body)]))
        .await
        .unwrap();
    assert!(failures(&retry.response).is_empty());
    assert!(matches!(
        retry.messages[0].1,
        Outcome::Completed { replayed: true, .. }
    ));
    assert_eq!(app.plays(ARTIST).await, 9);
    assert_eq!(app.runs(), 1);
}

#[tokio::test]
async fn poison_message_is_dead_lettered_and_the_other_nine_succeed() {
    let app = App::spawn();
    let mut records: Vec<Value> = (0..9)
        .map(|i| sqs_record(&format!("ok-{i}"), &credit(ARTIST, i + 1)))
        .collect();
    records.insert(
        4,
        sqs_record(
            "poison",
            r#"{"artist":"spotify:track:4Z8W4fKeB5YxbusRsdQVPb","amount":1}"#,
        ),
    );
    let report = app.function.invoke(batch(records)).await.unwrap();

    assert!(
        failures(&report.response).is_empty(),
        "a poison message is never handed back for retry"
    );
    assert_eq!(app.plays(ARTIST).await, (1..=9).sum::<i64>());
    let letters = app.queues().dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].message_id, "poison");
    assert_eq!(letters[0].class, "invalid");
    assert!(
        letters[0]
            .reason
            .starts_with("body.artist: expected a Spotify artist"),
        "{}",
        letters[0].reason
    );
    assert!(
        letters[0].body.contains("spotify:track:"),
        "the original body is kept"
    );

    // The rejection is audited, and the chain holds.
    let db_records = app
        .function
        .harness()
        .audit()
        .verify("credit-test")
        .await
        .unwrap();
    assert!(db_records.is_intact());
    assert_eq!(db_records.records, 9 * 2 + 1);
}

#[tokio::test]
async fn transient_failure_is_reported_and_retried_later() {
    let app = App::spawn();
    let report = app
        .function
        .invoke(batch(vec![
            sqs_record("good", &credit(ARTIST, 1)),
            sqs_record("flaky", &credit_mode(OTHER_ARTIST, 2, "transient")),
        ]))
        .await
        .unwrap();
    assert_eq!(failures(&report.response), vec!["flaky"]);
    assert!(app.queues().dead_letters().await.unwrap().is_empty());
    // The lock was released: a redelivery runs again instead of waiting for the deadline.
    let before = app.runs();
    let again = app
        .function
        .invoke(batch(vec![sqs_record(
            "flaky",
            &credit_mode(OTHER_ARTIST, 2, "transient"),
        )]))
        .await
        .unwrap();
    assert_eq!(failures(&again.response), vec!["flaky"]);
    assert_eq!(app.runs(), before + 1);
}

#[tokio::test]
async fn permanent_failure_is_dead_lettered_without_retry() {
    let app = App::spawn();
    let report = app
        .function
        .invoke(batch(vec![sqs_record(
            "gone",
            &credit_mode(ARTIST, 2, "permanent"),
        )]))
        .await
        .unwrap();
    assert!(failures(&report.response).is_empty());
    let letters = app.queues().dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].class, "permanent");
    assert!(letters[0].reason.contains("artist deleted"));
}

#[tokio::test]
async fn fifo_batch_stops_at_the_first_failure() {
    let app = App::spawn();
    let fifo = |id: &str, body: &str| {
        let mut record = sqs_record(id, body);
        record["attributes"]["MessageGroupId"] = json!("artist-group");
        record["eventSourceARN"] = json!("arn:aws:sqs:eu-west-1:123456789012:credit-test.fifo");
        record
    };
    let report = app
        .function
        .invoke(batch(vec![
            fifo("f-1", &credit(ARTIST, 1)),
            fifo("f-2", &credit_mode(ARTIST, 2, "transient")),
            fifo("f-3", &credit(ARTIST, 3)),
            fifo("f-4", &credit(ARTIST, 4)),
        ]))
        .await
        .unwrap();
    assert_eq!(failures(&report.response), vec!["f-2", "f-3", "f-4"]);
    assert_eq!(report.messages[2].1, Outcome::Skipped);
    assert_eq!(app.plays(ARTIST).await, 1, "nothing after the failure ran");
}

#[tokio::test]
async fn rate_limited_message_is_delayed_by_retry_after() {
    let app = App::spawn();
    let queues = app.queues();
    queues
        .send(&[OutgoingMessage {
            body: credit_mode(ARTIST, 1, "rate_limited"),
            attributes: Default::default(),
            group_id: None,
            dedup_id: None,
            trace_header: None,
        }])
        .await
        .unwrap();
    let received = queues.receive(10, Duration::from_secs(1)).await.unwrap();
    let report = app
        .function
        .invoke(queues.sqs_event(&received))
        .await
        .unwrap();
    assert_eq!(failures(&report.response), vec![received[0].id.clone()]);
    match &report.messages[0].1 {
        Outcome::Retry { class, delay, .. } => {
            assert_eq!(*class, "rate_limited");
            assert_eq!(*delay, Some(Duration::from_secs(120)));
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    // The message stays hidden for the Retry-After the task reported, not the 1 s default.
    let visible_at = queues.next_visible_at().await.unwrap().unwrap();
    let hidden_for = visible_at - backbone::clock::Clock::now(app.clock.as_ref());
    assert_eq!(hidden_for.num_seconds(), 120);
}

#[tokio::test]
async fn panicking_task_fails_only_its_message_and_releases_the_lock() {
    let app = App::spawn();
    let report = app
        .function
        .invoke(batch(vec![
            sqs_record("boom", &credit_mode(ARTIST, 1, "panic")),
            sqs_record("fine", &credit(OTHER_ARTIST, 2)),
        ]))
        .await
        .unwrap();
    assert_eq!(failures(&report.response), vec!["boom"]);
    assert_eq!(app.plays(OTHER_ARTIST).await, 2);
    let again = app
        .function
        .invoke(batch(vec![sqs_record(
            "boom",
            &credit_mode(ARTIST, 1, "panic"),
        )]))
        .await
        .unwrap();
    assert!(
        matches!(&again.messages[0].1, Outcome::Retry { reason, .. } if reason.contains("panicked"))
    );
}

#[tokio::test]
async fn killed_invocation_is_taken_over_after_its_deadline() {
    let app = App::spawn();
    let event = batch(vec![sqs_record("k-1", &credit_mode(ARTIST, 5, "slow"))]);
    // Drop the invocation while the task runs: the in-progress lock is written, nothing else.
    let killed = tokio::time::timeout(
        Duration::from_millis(100),
        app.function.invoke(event.clone()),
    )
    .await;
    assert!(killed.is_err(), "the invocation was cut off");
    let retry = app.function.invoke(event.clone()).await.unwrap();
    assert!(
        matches!(&retry.messages[0].1, Outcome::Retry { reason, .. } if reason.contains("already in progress"))
    );
    assert_eq!(app.plays(ARTIST).await, 0);

    // Past the killed invocation's deadline, a redelivery takes the lock over and completes.
    app.clock.advance(chrono::Duration::seconds(61));
    let taken_over = app.function.invoke(event).await.unwrap();
    assert!(failures(&taken_over.response).is_empty());
    assert_eq!(app.plays(ARTIST).await, 5);
    let audit = app
        .function
        .harness()
        .audit()
        .verify("credit-test")
        .await
        .unwrap();
    assert_eq!(audit.records, 2, "one effect and one completion: {audit:?}");
}

#[tokio::test]
async fn reused_key_with_another_payload_is_refused() {
    let app = App::spawn();
    let keyed =
        |amount: i64| json!({ "artist": ARTIST, "amount": amount, "key": "order-17" }).to_string();
    app.function
        .invoke(batch(vec![sqs_record("p-1", &keyed(3))]))
        .await
        .unwrap();
    let report = app
        .function
        .invoke(batch(vec![sqs_record("p-2", &keyed(4))]))
        .await
        .unwrap();
    assert!(
        matches!(&report.messages[0].1, Outcome::Rejected { reason } if reason.contains("different payload"))
    );
    assert_eq!(app.plays(ARTIST).await, 3);
}

#[tokio::test]
async fn scheduled_event_runs_once_per_event_id_and_fans_out() {
    let app = App::spawn();
    let report = app
        .function
        .invoke_bytes(&fixture("eventbridge-scheduled.json"))
        .await
        .unwrap();
    assert_eq!(report.response["status"], "completed");
    assert_eq!(report.response["output"]["total"], 7);
    let again = app
        .function
        .invoke_bytes(&fixture("eventbridge-scheduled.json"))
        .await
        .unwrap();
    assert_eq!(again.response["replayed"], true);
    assert_eq!(app.plays(ARTIST).await, 7);

    // A direct (Scheduler) payload that fans out: the follow-ups are drained like SQS would.
    let plan = app
        .function
        .invoke(json!({ "artist": OTHER_ARTIST, "amount": 10, "mode": "fan_out" }))
        .await
        .unwrap();
    assert_eq!(plan.response["status"], "completed");
    let summary = app.function.drain(Duration::from_secs(2)).await.unwrap();
    assert_eq!((summary.completed, summary.pending), (2, 0));
    assert_eq!(app.plays(OTHER_ARTIST).await, 13);
}

#[tokio::test]
async fn invalid_schedule_payload_is_rejected_not_retried() {
    let app = App::spawn();
    let report = app
        .function
        .invoke(json!({ "artist": ARTIST, "amount": 0 }))
        .await
        .unwrap();
    assert_eq!(report.response["status"], "rejected");
    assert!(
        report.response["reason"]
            .as_str()
            .unwrap()
            .contains("body.amount: must be 1 to 1000000, got 0")
    );
    assert_eq!(app.queues().dead_letters().await.unwrap().len(), 1);
}

#[tokio::test]
async fn local_queue_redrives_after_max_receives() {
    let app = App::spawn();
    app.queues()
        .send(&[OutgoingMessage {
            body: credit_mode(ARTIST, 1, "transient"),
            attributes: Default::default(),
            group_id: None,
            dedup_id: None,
            trace_header: None,
        }])
        .await
        .unwrap();
    // The queue runs on the app's manual clock: each pass receives what is visible, then
    // time moves past the visibility timeout and the failed message comes back.
    let mut retried = 0;
    for _ in 0..=backbone::local::MAX_RECEIVE_COUNT {
        let summary = app.function.drain(Duration::ZERO).await.unwrap();
        retried += summary.retried;
        app.clock.advance(chrono::Duration::seconds(361));
    }
    assert_eq!(retried, u64::from(backbone::local::MAX_RECEIVE_COUNT));
    assert_eq!(app.queues().depth().await.unwrap(), 0);
    let letters = app.queues().dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].reason.contains("maxReceiveCount"));
}

#[tokio::test]
async fn bad_events_get_clear_errors_and_never_panic() {
    let app = App::spawn();
    let cases: Vec<(&[u8], &str)> = vec![
        (b"not json", "event: is not JSON"),
        (
            b"{\"artist\": \"\xff\xfe\"}",
            "event: is not valid UTF-8 (invalid byte at offset 12)",
        ),
        (b"42", "event: expected a JSON object, got a number"),
        (
            b"{\"Records\": []}",
            "event.Records: an SQS batch must hold at least one record",
        ),
        (
            b"{\"Records\": {}}",
            "event.Records: expected a list of SQS records",
        ),
        (
            b"{\"Records\": [{\"body\": \"{}\"}]}",
            "event.Records[0].messageId: missing",
        ),
        (
            b"{\"Records\": [{\"messageId\": \"x\", \"eventSource\": \"aws:kinesis\"}]}",
            "event.Records[0].eventSource",
        ),
    ];
    for (bytes, expected) in cases {
        let err = app.function.invoke_bytes(bytes).await.unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{:?}: {err}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[tokio::test]
async fn bad_messages_are_dead_lettered_with_the_reason() {
    let app = App::spawn();
    let big = format!(
        r#"{{"artist":"{ARTIST}","amount":1,"pad":"{}"}}"#,
        "x".repeat(256 * 1024)
    );
    let mut binary_key = sqs_record("bad-attr", &credit(ARTIST, 1));
    // 0xff 0xfe is not UTF-8.
    binary_key["messageAttributes"] =
        json!({ "idempotency-key": { "binaryValue": "//4=", "dataType": "Binary" } });
    let mut bad_record = sqs_record("bad-record", &credit(ARTIST, 1));
    bad_record["messageAttributes"] =
        json!({ "k": { "binaryValue": "%%%not-base64", "dataType": "Binary" } });
    let report = app
        .function
        .invoke(batch(vec![
            sqs_record("big", &big),
            sqs_record("empty", ""),
            sqs_record(
                "unknown-field",
                &json!({"artist": ARTIST, "amount": 1, "extra": true}).to_string(),
            ),
            binary_key,
            bad_record,
            sqs_record("fine", &credit(ARTIST, 2)),
        ]))
        .await
        .unwrap();
    assert!(failures(&report.response).is_empty());
    assert_eq!(app.plays(ARTIST).await, 2);
    let reasons: HashMap<String, String> = app
        .queues()
        .dead_letters()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.message_id, l.reason))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:#?}");
    assert!(
        reasons["big"].contains("body: is 262") && reasons["big"].contains("the limit is 262144"),
        "{}",
        reasons["big"]
    );
    assert_eq!(reasons["empty"], "body: is empty");
    assert!(
        reasons["unknown-field"].contains("unknown field `extra`"),
        "{}",
        reasons["unknown-field"]
    );
    assert!(
        reasons["bad-attr"]
            .contains("messageAttributes.idempotency-key: binary value is not valid UTF-8"),
        "{}",
        reasons["bad-attr"]
    );
    assert!(
        reasons["bad-record"].starts_with("event.Records[4]: not an SQS record"),
        "{}",
        reasons["bad-record"]
    );
}

#[tokio::test]
async fn logs_carry_ids_and_metrics_are_emf() {
    let app = App::spawn();
    let _guard = install_for_test(std::sync::Arc::new(app.capture.clone()), "info");
    app.function
        .invoke_bytes(&fixture("sqs-credit-batch.json"))
        .await
        .unwrap();
    let lines = app.capture.json();
    let crediting = lines
        .iter()
        .find(|l| {
            l["message"] == "crediting" && l["messageId"] == "059f36b4-87a3-44ab-83d2-661975830a7d"
        })
        .expect("the task's log line");
    assert_eq!(
        crediting["traceId"], "1-5759e988-bd862e3fe1be46a994272793",
        "trace id from AWSTraceHeader"
    );
    assert_eq!(
        crediting["messageId"],
        "059f36b4-87a3-44ab-83d2-661975830a7d"
    );
    assert_eq!(crediting["task"], "credit-test");
    assert_eq!(crediting["version"], "0.0.0-local");
    assert!(
        crediting["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(crediting["level"], "INFO");

    let emf = lines
        .iter()
        .find(|l| l.get("_aws").is_some())
        .expect("an EMF line");
    assert_eq!(emf["MessagesCompleted"], 2.0);
    assert_eq!(emf["MessagesReceived"], 2.0);
    assert_eq!(
        emf["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "MusicTasks"
    );
    assert_eq!(emf["service"], "credit-test");
}

#[tokio::test]
async fn secret_values_never_reach_logs_metrics_dead_letters_or_audit() {
    let app = App::spawn();
    let _guard = install_for_test(std::sync::Arc::new(app.capture.clone()), "trace");
    app.function
        .invoke(batch(vec![
            sqs_record("s-1", &credit(ARTIST, 1)),
            sqs_record("s-2", &credit_mode(OTHER_ARTIST, 1, "permanent")),
        ]))
        .await
        .unwrap();
    let output = app.capture.text();
    assert!(
        output.contains("crediting"),
        "the task logged its credential field"
    );
    assert!(
        output.contains("REDACTED"),
        "the credential shows as redacted"
    );
    assert!(
        !output.contains(SECRET_VALUE),
        "a secret value reached the output"
    );
    let letters = serde_json::to_string(&app.queues().dead_letters().await.unwrap()).unwrap();
    assert!(letters.contains("artist deleted"));
    assert!(!letters.contains(SECRET_VALUE));
    let audit = app
        .db
        .execute("UPDATE audit SET record = record WHERE record LIKE '%sk-live%'")
        .await
        .unwrap();
    assert_eq!(audit, 0, "no audit record holds the secret");
}

#[tokio::test]
async fn tampering_with_the_audit_log_is_detected() {
    let app = App::spawn();
    for i in 0..4 {
        app.function
            .invoke(batch(vec![sqs_record(
                &format!("t-{i}"),
                &credit(ARTIST, i + 1),
            )]))
            .await
            .unwrap();
    }
    let log = app.function.harness().audit();
    assert!(log.verify("credit-test").await.unwrap().is_intact());

    app.db
        .execute("UPDATE audit SET record = replace(record, '\"amount\":2', '\"amount\":200') WHERE seq = 3")
        .await
        .unwrap();
    let edited = log.verify("credit-test").await.unwrap();
    assert_eq!(
        edited.problems,
        vec![backbone::audit::ChainProblem::Altered { seq: 3 }]
    );

    app.db
        .execute("DELETE FROM audit WHERE seq = 5")
        .await
        .unwrap();
    let deleted = log.verify("credit-test").await.unwrap();
    assert!(
        deleted
            .problems
            .contains(&backbone::audit::ChainProblem::Gap {
                expected: 5,
                found: 6
            }),
        "{deleted:?}"
    );
    assert!(
        deleted
            .problems
            .contains(&backbone::audit::ChainProblem::BrokenLink { seq: 6 }),
        "{deleted:?}"
    );
}

/// The template's audit-verify schedule: the harness walks the function's own stream and
/// counts the breaks in the metric the alarm watches; a break is reported, not retried.
#[tokio::test]
async fn the_scheduled_verify_counts_chain_breaks_in_the_alarmed_metric() {
    let app = App::spawn();
    let _guard = install_for_test(std::sync::Arc::new(app.capture.clone()), "info");
    for i in 0..3 {
        app.function
            .invoke(batch(vec![sqs_record(
                &format!("v-{i}"),
                &credit(ARTIST, i + 1),
            )]))
            .await
            .unwrap();
    }
    let breaks = |capture: &backbone::telemetry::Capture| -> Vec<f64> {
        capture
            .json()
            .iter()
            .filter_map(|l| l[backbone::audit::CHAIN_BREAKS_METRIC].as_f64())
            .collect()
    };
    let verify = json!({ "harness": "verify-audit", "scheduledTime": "2026-11-26T03:00:00Z" });
    let intact = app.function.invoke(verify.clone()).await.unwrap();
    assert_eq!(intact.response["status"], "verified");
    assert_eq!(intact.response["stream"], "credit-test");
    assert_eq!(intact.response["intact"], true);
    assert_eq!(
        intact.response["records"], 6,
        "three effects, three completions"
    );
    assert_eq!(breaks(&app.capture), vec![0.0]);
    assert_eq!(app.runs(), 3, "the verify never reaches the task");

    app.db
        .execute("UPDATE audit SET record = replace(record, '\"amount\":2', '\"amount\":20') WHERE seq = 3")
        .await
        .unwrap();
    let broken = app.function.invoke(verify).await.unwrap();
    assert_eq!(broken.response["intact"], false);
    assert_eq!(broken.response["problems"][0]["problem"], "altered");
    assert_eq!(breaks(&app.capture), vec![0.0, 1.0]);
    let logged = app.capture.json();
    assert!(
        logged
            .iter()
            .any(|l| l["message"] == "audit chain broken" && l["level"] == "ERROR"),
        "the break is logged as an error"
    );

    // An unknown command is an invalid event, named, never handed to the task.
    let err = app
        .function
        .invoke(json!({ "harness": "truncate-audit" }))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("event.harness"), "{err}");
    assert_eq!(app.runs(), 3);
}

#[tokio::test]
async fn idempotency_off_lets_duplicates_through() {
    // The control for the reliability checks: without idempotency the duplicate has an effect.
    let mut config = HarnessConfig::for_task("credit-test");
    config.idempotency_disabled = true;
    let app = App::with_config(config);
    let event = batch(vec![sqs_record("d-1", &credit(ARTIST, 4))]);
    app.function.invoke(event.clone()).await.unwrap();
    app.function.invoke(event).await.unwrap();
    assert_eq!(app.runs(), 2, "the duplicate ran the task again");
    assert_eq!(
        app.completions(ARTIST).await,
        2,
        "and shows twice in the audit log"
    );
}
