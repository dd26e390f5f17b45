//! What the task tests share: the function under the harness on an in-memory store, SQS
//! batches, stored artist snapshots.
#![allow(dead_code)]

use std::sync::Arc;

use ai_content_generation::drafts::{self, Draft};
use ai_content_generation::{ContentGeneration, DEFAULT_ATTEMPTS};
use backbone::clock::SystemClock;
use backbone::config::HarnessConfig;
use backbone::harness::Outcome;
use backbone::local::{Invoke, LocalDb, LocalRuntime};
use backbone::ports::{ItemKey, PutCondition, Store, TextGenerator};
use backbone::telemetry::Capture;
use serde_json::{Value, json};

/// The artist of the tests.
pub const ARTIST: &str = "0TnOYISbd1XYRBk9myaseg";

pub struct App {
    /// The store.
    pub db: LocalDb,
    /// The function under the harness.
    pub function: Box<dyn Invoke>,
}

pub fn new_app(generator: Arc<dyn TextGenerator>) -> App {
    let db = LocalDb::in_memory().unwrap();
    let runtime = LocalRuntime::new(
        db.clone(),
        Arc::new(SystemClock),
        Arc::new(Capture::default()),
    );
    let task = ContentGeneration {
        store: Arc::new(db.clone()),
        events: Arc::new(runtime.bus()),
        generator,
        attempts: DEFAULT_ATTEMPTS,
    };
    let function =
        Box::new(runtime.harness(task, HarnessConfig::for_task("ai-content-generation")));
    App { db, function }
}

pub fn sqs(bodies: &[Value]) -> Value {
    json!({"Records": bodies.iter().enumerate().map(|(i, body)| json!({
        "messageId": format!("m{i}-{}", body.to_string().len()),
        "receiptHandle": format!("r{i}"),
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764061200000",
                        "SenderId": "A", "ApproximateFirstReceiveTimestamp": "1764061200010"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:ai-content-generation",
        "awsRegion": "eu-west-1"
    })).collect::<Vec<_>>()})
}

pub async fn snapshot(db: &LocalDb, date: &str, doc: Value) {
    db.put(
        &ItemKey::new(format!("artist#{ARTIST}"), format!("snapshot#{date}")),
        &doc,
        PutCondition::Always,
        None,
    )
    .await
    .unwrap();
}

pub async fn full_artist(db: &LocalDb) {
    let today = chrono::Utc::now().date_naive();
    let earlier = today - chrono::Duration::days(30);
    snapshot(db, &earlier.to_string(), json!({"artist": ARTIST, "date": earlier, "name": "Nova Lane",
        "followers": 1_100_000, "popularity": 55, "genres": ["indie pop"], "releases": [], "unavailable": []})).await;
    snapshot(
        db,
        &today.to_string(),
        json!({"artist": ARTIST, "date": today, "name": "Nova Lane",
        "followers": 1_234_567, "popularity": 57, "genres": ["indie pop", "dream pop"],
        "releases": [
            {"id": "album1", "name": "Blue Hour", "group": "album", "release_date": "2026-03-05"},
            {"id": "album0", "name": "Early Days", "group": "single", "release_date": "2024"}
        ], "unavailable": []}),
    )
    .await;
}

pub async fn invoke(app: &App, body: Value) -> Outcome {
    let report = app.function.invoke(sqs(&[body])).await.unwrap();
    report.messages.into_iter().next().unwrap().1
}

pub fn completed(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Completed { output, .. } => output,
        other => panic!("{other:?}"),
    }
}

pub async fn stored(db: &LocalDb, id: &str) -> Draft {
    drafts::load(db, id).await.unwrap().unwrap().0
}
