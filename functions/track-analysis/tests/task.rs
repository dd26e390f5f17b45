//! The task under the harness on the local adapters: store, bus, audit, idempotency, and its
//! failures routed by class.

mod common;

use std::sync::Arc;

use backbone::clock::SystemClock;
use backbone::config::HarnessConfig;
use backbone::harness::Outcome;
use backbone::local::{Invoke, LocalBus, LocalDb, LocalRuntime};
use backbone::ports::Store;
use backbone::telemetry::Capture;
use serde_json::{Value, json};
use track_analysis::{StoredAnalysis, TrackAnalysis, analysis_key};

struct App {
    db: LocalDb,
    function: Box<dyn Invoke>,
}

fn app() -> App {
    let db = LocalDb::in_memory().unwrap();
    let runtime = LocalRuntime::new(
        db.clone(),
        Arc::new(SystemClock),
        Arc::new(Capture::default()),
    );
    let task = TrackAnalysis {
        objects: Arc::new(backbone::local::local_objects().unwrap()),
        store: Arc::new(db.clone()),
        events: Arc::new(runtime.bus()),
        limits: Default::default(),
    };
    let function = Box::new(runtime.harness(task, HarnessConfig::for_task("track-analysis")));
    App { db, function }
}

fn sqs(bodies: &[Value]) -> Value {
    json!({"Records": bodies.iter().enumerate().map(|(i, body)| json!({
        "messageId": format!("m{i}-{}", uuid_like(body)),
        "receiptHandle": format!("r{i}"),
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764061200000",
                        "SenderId": "A", "ApproximateFirstReceiveTimestamp": "1764061200010"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:track-analysis",
        "awsRegion": "eu-west-1"
    })).collect::<Vec<_>>()})
}

fn uuid_like(body: &Value) -> usize {
    body.to_string().len()
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/../../schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn click_file(dir: &std::path::Path) -> String {
    let path = dir.join("click.wav");
    common::write_wav(
        &path,
        22_050,
        1,
        &common::click_track(22_050, 120.0, 10.0, 0.5),
    );
    path.display().to_string()
}

#[tokio::test]
async fn an_analysis_is_stored_announced_and_audited_once_per_content() {
    let app = app();
    let dir = tempfile::tempdir().unwrap();
    let audio = click_file(dir.path());
    let request = json!({"track": {"isrc": "QZES82600001", "title": "Click"}, "audio": audio});
    let report = app.function.invoke(sqs(&[request])).await.unwrap();
    let (_, outcome) = &report.messages[0];
    let Outcome::Completed { output, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(output["tracks"][0]["status"], "analyzed");
    assert_eq!(output["tracks"][0]["track"], "isrc:QZES82600001");

    let item = app
        .db
        .get(&analysis_key("isrc:QZES82600001"))
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(item.key.pk, "track#isrc:QZES82600001");
    assert_eq!(item.key.sk, "analysis#v1");
    let stored: StoredAnalysis = serde_json::from_value(item.data.clone()).unwrap();
    assert_eq!(stored.source, "track-analysis");
    let bpm = stored.features.tempo.as_ref().unwrap().bpm;
    assert!((bpm - 120.0).abs() < 4.8, "{bpm}");
    let features_schema = schema("track-features.schema.json");
    let errors: Vec<String> = features_schema
        .iter_errors(&item.data["features"])
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    let events = LocalBus::new(app.db.clone()).events().await.unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0].event;
    assert_eq!(
        (event.source.as_str(), event.detail_type.as_str()),
        ("music.track-analysis", "TrackAnalyzed")
    );
    let event_schema = schema("track-analyzed.schema.json");
    let errors: Vec<String> = event_schema
        .iter_errors(&event.detail)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}: {}", event.detail);
    assert_eq!(
        event.detail["sha256"].as_str(),
        Some(stored.sha256.as_str())
    );

    // The same content again (a different message: new metadata): unchanged, no new event.
    let again =
        json!({"track": {"isrc": "QZES82600001", "title": "Click (remaster tag)"}, "audio": audio});
    let report = app.function.invoke(sqs(&[again])).await.unwrap();
    let Outcome::Completed { output, replayed } = &report.messages[0].1 else {
        panic!("{:?}", report.messages)
    };
    assert!(!replayed);
    assert_eq!(output["tracks"][0]["status"], "unchanged");
    assert_eq!(
        LocalBus::new(app.db.clone()).events().await.unwrap().len(),
        1
    );

    // Forced: analysed and announced again.
    let forced = json!({"track": {"isrc": "QZES82600001"}, "audio": audio, "force": true});
    let report = app.function.invoke(sqs(&[forced])).await.unwrap();
    let Outcome::Completed { output, .. } = &report.messages[0].1 else {
        panic!("{:?}", report.messages)
    };
    assert_eq!(output["tracks"][0]["status"], "analyzed");
    assert_eq!(
        LocalBus::new(app.db.clone()).events().await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn bad_audio_is_dead_lettered_with_a_reason_and_a_dead_url_is_retried() {
    let app = app();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("song.mp3");
    std::fs::write(&text, "not audio at all\n".repeat(100)).unwrap();
    let bodies = [
        json!({"track": {"isrc": "QZES82600002"}, "audio": text.display().to_string()}),
        // Nothing listens on port 9 of loopback: the connection is refused.
        json!({"track": {"isrc": "QZES82600003"}, "audio": "http://127.0.0.1:9/missing.mp3"}),
        json!({"track": {"title": "no id"}, "audio": text.display().to_string()}),
    ];
    let report = app.function.invoke(sqs(&bodies)).await.unwrap();
    match &report.messages[0].1 {
        Outcome::DeadLettered { reason } => {
            assert!(reason.contains("not a supported audio file"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    match &report.messages[1].1 {
        Outcome::Retry { class, reason, .. } => {
            assert_eq!(*class, "transient");
            assert!(reason.contains("127.0.0.1"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match &report.messages[2].1 {
        Outcome::Rejected { reason } => assert!(reason.contains("spotifyId or isrc"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(
        LocalBus::new(app.db.clone())
            .events()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_s3_test_event_is_a_no_op_and_a_local_runtime_serves_no_s3() {
    let app = app();
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-12-01T10:00:00.000Z", "Bucket": "audio", "RequestId": "1", "HostId": "2"});
    let upload: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../events/track-analysis/aws/sqs-s3-upload.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let upload: Value =
        serde_json::from_str(upload["Records"][0]["body"].as_str().unwrap()).unwrap();
    let report = app
        .function
        .invoke(sqs(&[test_event, upload]))
        .await
        .unwrap();
    match &report.messages[0].1 {
        Outcome::Completed { output, .. } => assert_eq!(output["testEvent"], true),
        other => panic!("{other:?}"),
    }
    match &report.messages[1].1 {
        Outcome::DeadLettered { reason } => assert!(
            reason.contains("s3://music-tasks-dev-123456789012-uploads/audio/QZES82600001.flac"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}
