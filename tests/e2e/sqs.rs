//! The real queue path on the AWS emulator: SQS with a redrive policy, the harness on DynamoDB
//! idempotency and audit, two consumers racing, faults on a quarter of the port calls, and the
//! same checker as the embedded run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use backbone::SecretString;
use backbone::audit::AuditLog;
use backbone::aws::poller::SqsPoller;
use backbone::aws::{AwsAdapters, provision};
use backbone::clock::SystemClock;
use backbone::config::HarnessConfig;
use backbone::harness::{Harness, HarnessPorts, Invocation, metrics_for};
use backbone::local::faults::{FaultPlan, Faulty};
use backbone::ports::{AuditStore, OutgoingMessage, Queues, Store};
use backbone::telemetry::Capture;
use serde_json::json;

use crate::helpers::*;

/// The emulator's SDK configuration; without `AWS_ENDPOINT_URL` the test fails under CI and
/// is skipped with a notice elsewhere.
pub(crate) async fn emulator() -> Option<aws_config::SdkConfig> {
    if std::env::var("AWS_ENDPOINT_URL").is_ok_and(|u| !u.trim().is_empty()) {
        return Some(backbone::aws::load_sdk_config().await);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs need the AWS emulator: scripts/test.sh starts it"
    );
    eprintln!(
        "skipping: AWS_ENDPOINT_URL is not set (infra/moto.sh start && source .local/moto.env)"
    );
    None
}

fn artist(i: usize) -> String {
    format!("sqs{i:019}")
}

#[tokio::test]
async fn sqs_and_dynamodb_path_has_one_effect_per_key_under_faults() {
    let Some(sdk) = emulator().await else { return };
    let prefix = format!("rel-{}", uuid::Uuid::new_v4().simple());
    // Visibility 3 s and a 2 s invocation timeout: a redelivery never meets a live lock.
    let stack = provision::stack(&sdk, &prefix, 3, 30).await.unwrap();
    let adapters = AwsAdapters::new(&sdk, &stack);
    let plan = FaultPlan::new(0.2, 21);
    let store_plan = FaultPlan::new(0.2, 22);
    store_plan.set_lost_acks(false);
    let config = HarnessConfig::for_task("credit-test");
    let capture = Capture::new();
    let consumer = || {
        let ports = HarnessPorts {
            idempotency: Arc::new(Faulty::new(
                Arc::new(adapters.idempotency.clone()),
                plan.clone(),
            )),
            audit: Arc::new(Faulty::new(Arc::new(adapters.audit.clone()), plan.clone())),
            queues: Arc::new(Faulty::new(Arc::new(adapters.queues.clone()), plan.clone())),
            clock: Arc::new(SystemClock),
            metrics: metrics_for(&config, "credit-test", Arc::new(capture.clone())),
        };
        let task = CreditTask {
            store: Arc::new(Faulty::new(
                Arc::new(adapters.store.clone()),
                store_plan.clone(),
            )),
            runs: Arc::new(AtomicUsize::new(0)),
            credential: SecretString::from(SECRET_VALUE),
            secrets: Some(Arc::new(Faulty::new(
                Arc::new(MemorySecrets(SecretString::from(SECRET_VALUE))),
                store_plan.clone(),
            ))),
        };
        Harness::new(task, ports, config.clone())
    };
    let (first, second) = (consumer(), consumer());

    let keys = 20;
    let mut outgoing = Vec::new();
    for i in 0..keys {
        let body = |reordered: bool| {
            if reordered {
                json!({ "key": format!("key-{i}"), "amount": i + 1, "artist": format!("spotify:artist:{}", artist(i)) })
            } else {
                json!({ "artist": artist(i), "amount": i + 1, "key": format!("key-{i}") })
            }
            .to_string()
        };
        for reordered in [false, false, true] {
            outgoing.push(OutgoingMessage {
                body: body(reordered),
                attributes: Default::default(),
                group_id: None,
                dedup_id: None,
                trace_header: None,
            });
        }
    }
    for i in 0..3 {
        let body = json!({ "artist": format!("bad-{i}"), "amount": 1 }).to_string();
        outgoing.push(OutgoingMessage {
            body,
            attributes: Default::default(),
            group_id: None,
            dedup_id: None,
            trace_header: None,
        });
    }
    adapters.queues.send(&outgoing).await.unwrap();

    let poller = SqsPoller::new(&sdk, stack.work_queue_url.clone());
    let invocation = || Invocation::local(chrono::Utc::now(), Duration::from_secs(2));
    // The same message id delivered twice: one batch handled twice before it is acknowledged.
    if let Some((event, _)) = poller.receive(1).await.unwrap() {
        let _ = first.handle(event.clone(), invocation()).await;
        let _ = second.handle(event, invocation()).await;
    }
    for _ in 0..60 {
        futures::join!(consume(&poller, &first), consume(&poller, &second));
        if poller.depth().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(poller.depth().await.unwrap(), 0, "the queue drained");

    let dead = SqsPoller::new(&sdk, stack.dead_letter_queue_url.clone())
        .bodies()
        .await
        .unwrap();
    let records = adapters.audit.read("credit-test", 0, 1000).await.unwrap();
    let mut completions: BTreeMap<&str, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.action == "completed") {
        *completions.entry(r.subject.as_str()).or_default() += 1;
    }
    let (mut lost, mut duplicated, mut effected, mut dead_lettered) = (0, 0, 0, 0);
    for i in 0..keys {
        let plays = total_plays(&adapters.store as &dyn Store, &artist(i))
            .await
            .unwrap();
        let in_dlq = dead.iter().any(|(body, _)| body.contains(&artist(i)));
        match (
            plays,
            completions.get(artist(i).as_str()).copied().unwrap_or(0),
        ) {
            (0, _) if in_dlq => dead_lettered += 1,
            (0, _) => lost += 1,
            (p, 1) if p == (i + 1) as i64 => effected += 1,
            (_, _) if in_dlq => dead_lettered += 1,
            _ => duplicated += 1,
        }
    }
    let poison_in_dlq = dead
        .iter()
        .filter(|(body, attributes)| {
            body.contains("bad-")
                && attributes
                    .get("reason")
                    .is_some_and(|r| r.contains("body.artist"))
        })
        .count();
    eprintln!(
        "sqs path: effected {effected}, dead-lettered {dead_lettered}, lost {lost}, duplicated {duplicated}; faults {}",
        plan.total() + store_plan.total()
    );
    assert!(
        plan.total() + store_plan.total() > 20,
        "faults were injected"
    );
    assert_eq!((lost, duplicated), (0, 0));
    assert_eq!(effected + dead_lettered, keys);
    assert!(
        poison_in_dlq >= 3,
        "each poison message is dead-lettered with its reason: {dead:?}"
    );
    let log = AuditLog::new(Arc::new(adapters.audit.clone()), Arc::new(SystemClock));
    assert!(log.verify("credit-test").await.unwrap().is_intact());
}

/// One consumer: receives, handles and acknowledges until the queue gives nothing.
async fn consume(poller: &SqsPoller, harness: &Harness<CreditTask>) {
    while let Some((event, handles)) = poller.receive(1).await.unwrap() {
        let invocation = Invocation::local(chrono::Utc::now(), Duration::from_secs(2));
        let response = match harness.handle(event, invocation).await {
            Ok(report) => report.response,
            // A failed invocation hands every message back, as Lambda does.
            Err(_) => {
                json!({ "batchItemFailures": handles.keys().map(|id| json!({ "itemIdentifier": id })).collect::<Vec<_>>() })
            }
        };
        poller.acknowledge(&handles, &response).await.unwrap();
    }
}
