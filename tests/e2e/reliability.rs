//! Reliability on the embedded path: every kind of duplicate, faults on a quarter of the port
//! calls, two consumers racing on one queue; then a checker in the manner of Jepsen's
//! total-queue checker counts lost, unexpected and duplicated effects. The same run with
//! idempotency off must show duplicates: the control that proves the checker can see them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use backbone::config::HarnessConfig;
use backbone::local::Invoke;
use backbone::local::faults::FaultPlan;
use backbone::ports::{OutgoingMessage, Queues};
use serde_json::json;

use crate::helpers::*;

/// A distinct, valid artist id per business key.
fn artist(i: usize) -> String {
    format!("rel{i:019}")
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

#[derive(Debug, Default, PartialEq, Eq)]
struct Verdict {
    effected: usize,
    lost: usize,
    duplicated: usize,
    unexpected: usize,
    dead_lettered: usize,
}

/// Sends `keys` business keys three ways each (twice under new message ids, once with the
/// fields reordered and the artist as a URI) plus poison messages, redelivers one batch
/// verbatim, drains with two racing consumers, and checks the outcome.
async fn run(keys: usize, idempotency: bool, fault_rate: f64) -> (Verdict, App, Arc<FaultPlan>) {
    let mut config = HarnessConfig::for_task("credit-test");
    config.idempotency_disabled = !idempotency;
    let harness_faults = FaultPlan::new(fault_rate, 11);
    let store_faults = FaultPlan::new(fault_rate, 12);
    // Generous redrive: at a 25 % fault rate per port call a message needs several receipts.
    let faults = Some((harness_faults.clone(), store_faults.clone()));
    let app = App::build(config.clone(), faults, 25);
    let second_consumer = App::second_consumer(&app, config);

    let mut outgoing = Vec::new();
    for i in 0..keys {
        let amount = (i % 7 + 1) as i64;
        let key = format!("key-{i}");
        outgoing.push(message(
            json!({ "artist": artist(i), "amount": amount, "key": key }).to_string(),
        ));
        outgoing.push(message(
            json!({ "artist": artist(i), "amount": amount, "key": key }).to_string(),
        ));
        outgoing.push(message(json!({ "key": key, "amount": amount, "artist": format!("spotify:artist:{}", artist(i)) }).to_string()));
    }
    let poison: Vec<String> = (0..5)
        .map(|i| json!({ "artist": format!("bad-{i}"), "amount": 1 }).to_string())
        .collect();
    outgoing.extend(poison.iter().cloned().map(message));
    let queues = app.queues();
    queues.send(&outgoing).await.unwrap();

    // The same message id redelivered: one batch is invoked twice before it is deleted.
    let batch = queues.receive(10, Duration::from_secs(1)).await.unwrap();
    let _ = app.function.invoke(queues.sqs_event(&batch)).await;
    let _ = app.function.invoke(queues.sqs_event(&batch)).await;

    for _ in 0..400 {
        let (a, b) = futures::join!(
            app.function.drain(Duration::ZERO),
            second_consumer.drain(Duration::ZERO)
        );
        a.unwrap();
        b.unwrap();
        if queues.depth().await.unwrap() == 0 {
            break;
        }
        // Past the visibility timeout: failed receipts come back.
        app.clock.advance(chrono::Duration::seconds(361));
    }
    assert_eq!(queues.depth().await.unwrap(), 0, "the queue drained");

    let dead: BTreeSet<String> = queues
        .dead_letters()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.body)
        .collect();
    let mut verdict = Verdict::default();
    for i in 0..keys {
        let expected = (i % 7 + 1) as i64;
        let plays = app.plays(&artist(i)).await;
        let in_dlq = dead.iter().any(|body| body.contains(&artist(i)));
        let completions = app.completions(&artist(i)).await;
        match (plays, completions) {
            (0, _) if in_dlq => verdict.dead_lettered += 1,
            (0, _) => verdict.lost += 1,
            (p, 1) if p == expected => verdict.effected += 1,
            // More effect than sent, or the task completed more than once for one key.
            _ => verdict.duplicated += 1,
        }
    }
    verdict.unexpected = poison.iter().filter(|p| !dead.contains(*p)).count();
    (verdict, app, harness_faults)
}

#[tokio::test]
async fn duplicates_and_faults_leave_exactly_one_effect_per_key() {
    let (verdict, app, faults) = run(60, true, 0.25).await;
    eprintln!("{verdict:?}; faults injected: {}", faults.total());
    assert!(
        faults.total() > 100,
        "faults were injected: {:?}",
        faults.injected()
    );
    assert_eq!(verdict.lost, 0, "{verdict:?}");
    assert_eq!(verdict.duplicated, 0, "{verdict:?}");
    assert_eq!(verdict.unexpected, 0, "{verdict:?}");
    assert_eq!(verdict.effected + verdict.dead_lettered, 60, "{verdict:?}");

    // Verified on the database itself, not through the faulty port.
    let log = backbone::audit::AuditLog::new(
        Arc::new(app.db.clone()),
        Arc::new(backbone::clock::SystemClock),
    );
    let report = log.verify("credit-test").await.unwrap();
    assert!(report.is_intact(), "{report:?}");
}

#[tokio::test]
async fn without_idempotency_the_checker_sees_duplicates() {
    let (verdict, _, _) = run(30, false, 0.0).await;
    assert_eq!(verdict.lost, 0, "{verdict:?}");
    assert_eq!(
        verdict.duplicated, 30,
        "every key was sent three times: {verdict:?}"
    );
}
