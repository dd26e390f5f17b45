//! The task through the harness on the embedded adapters: every report format, SQS
//! observations with restatements, anomalies on the bus (checked against the schema), known
//! causes, the cooldown and bad input.

use std::path::PathBuf;
use std::sync::Arc;

use backbone::clock::ManualClock;
use backbone::config::HarnessConfig;
use backbone::local::{FileObjects, Invoke, LocalDb, LocalRuntime};
use backbone::objects::ObjectRouter;
use backbone::ports::{AuditStore, Store};
use backbone::telemetry::Capture;
use backbone::validate::SpotifyId;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};
use streaming_metrics::StreamingMetrics;
use streaming_metrics::model::{Metric, Source, Subject};
use streaming_metrics::rollups;

const ARTIST: &str = "G019KKcygUS3wlPi98QoBL";

struct Run {
    runtime: LocalRuntime,
    function: Box<dyn Invoke>,
}

impl Run {
    fn new() -> Self {
        let db = LocalDb::in_memory().expect("in-memory database");
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap(),
        ));
        let runtime = LocalRuntime::new(db, clock, Arc::new(Capture::new()));
        let task = StreamingMetrics::new(
            Arc::new(runtime.db.clone()),
            Arc::new(runtime.bus()),
            Arc::new(ObjectRouter::new().with_paths(Arc::new(FileObjects))),
        );
        let function =
            Box::new(runtime.harness(task, HarnessConfig::for_task("streaming-metrics")));
        Self { runtime, function }
    }

    async fn invoke(&self, payload: Value) -> Value {
        self.function
            .invoke(payload)
            .await
            .expect("the invocation is handled")
            .response
    }

    async fn anomalies(&self) -> Vec<Value> {
        self.runtime
            .bus()
            .events()
            .await
            .expect("bus")
            .into_iter()
            .filter(|e| e.event.detail_type == "MetricAnomaly")
            .map(|e| e.event.detail)
            .collect()
    }

    async fn audit_actions(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for stream in self.runtime.db.streams().await.expect("streams") {
            for r in self
                .runtime
                .db
                .read(&stream, 0, 10_000)
                .await
                .expect("read")
            {
                let v = serde_json::to_value(&r).expect("record");
                out.push((v["action"].as_str().unwrap_or_default().to_owned(), v));
            }
        }
        out
    }
}

fn report(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/streaming-metrics/reports")
        .join(name)
        .display()
        .to_string()
}

fn sqs(body: Value) -> Value {
    json!({ "Records": [{
        "messageId": format!("m-{}", uuid_like(&body)),
        "receiptHandle": "rh",
        "body": body.to_string(),
        "attributes": { "ApproximateReceiveCount": "1", "SentTimestamp": "1764061200000",
                        "SenderId": "S", "ApproximateFirstReceiveTimestamp": "1764061200010" },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:streaming-metrics",
        "awsRegion": "eu-west-1"
    }]})
}

fn uuid_like(body: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.to_string().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn src() -> Source {
    Source::parse("spotify_for_artists").expect("source")
}

#[tokio::test]
async fn every_sample_format_is_detected_and_ingested_and_a_second_delivery_does_nothing() {
    let run = Run::new();
    let cases = [
        ("canonical.csv", "canonical", 5, 0, json!({})),
        (
            "s4a-audience.csv",
            "s4a_audience",
            7,
            0,
            json!({ "artist": ARTIST }),
        ),
        ("s4a-songs.csv", "s4a_songs", 2, 0, json!({})),
        ("distrokid-statement.tsv", "distrokid", 4, 0, json!({})),
        ("tunecore-statement.csv", "tunecore", 3, 0, json!({})),
        ("bad-rows.csv", "canonical", 2, 7, json!({})),
    ];
    for (file, format, accepted, rejected, extra) in cases {
        let mut payload = json!({ "report": report(file) });
        for (k, v) in extra.as_object().expect("object") {
            payload[k] = v.clone();
        }
        let response = run.invoke(payload.clone()).await;
        let summary = &response["output"]["files"][0];
        assert_eq!(summary["format"], format, "{file}: {response}");
        assert_eq!(summary["accepted"], accepted, "{file}: {response}");
        assert_eq!(summary["rejected"], rejected, "{file}: {response}");
        // Same content under another message: the file's hash says it was read already.
        payload["as_of"] = json!("2026-11-30T00:00:00Z");
        let again = run.invoke(payload).await;
        assert_eq!(
            again["output"]["files"][0]["already_ingested"], true,
            "{file}: {again}"
        );
    }
    // Every refused row is named with its line.
    let actions = run.audit_actions().await;
    let bad = actions
        .iter()
        .find(|(a, r)| a == "report_ingested" && r.to_string().contains("bad-rows"))
        .expect("the bad file is audited");
    let lines: Vec<u64> = bad.1["detail"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9]);
    // The statements' qualifier lines add up: Spotify Premium + Free in SE.
    let isrc = Subject::parse("USRC17607839").expect("isrc");
    let dk = Source::parse("distrokid/spotify").expect("source");
    let month = run
        .runtime
        .db
        .get(&backbone::ports::ItemKey::new(
            rollups::subject_pk(&isrc),
            format!("month#{dk}#streams#2026-09-01"),
        ))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(month.data["total"], 31_204 + 8_120);
}

fn day_obs(date: NaiveDate, streams: i64, listeners: i64, saves: i64, as_of_days: i64) -> Value {
    let as_of = (date + Duration::days(as_of_days))
        .and_hms_opt(6, 0, 0)
        .expect("time")
        .and_utc();
    let o = |territory: &str, metric: &str, value: i64| {
        json!({ "subject": "USRC17607839", "territory": territory, "date": date, "metric": metric,
                "value": value, "source": "spotify_for_artists", "as_of": as_of, "artist": ARTIST })
    };
    json!({ "observations": [
        o("SE", "streams", streams * 6 / 10),
        o("NO", "streams", streams - streams * 6 / 10),
        o("GLOBAL", "listeners", listeners),
        o("GLOBAL", "saves", saves),
    ]})
}

fn usual(day: i64) -> i64 {
    let weekly = [100, 95, 97, 104, 118, 130, 110];
    weekly[(day % 7) as usize] * 20 + (day * 7) % 13
}

#[tokio::test]
async fn restated_days_replace_and_never_double_count() {
    let run = Run::new();
    let d = NaiveDate::from_ymd_opt(2026, 11, 10).expect("date");
    run.invoke(sqs(day_obs(d, 2000, 1000, 60, 1))).await;
    // Offline plays arrive: the newer report restates the day.
    run.invoke(sqs(day_obs(d, 2200, 1100, 66, 4))).await;
    // The first report delivered again, late, changes nothing.
    run.invoke(sqs(day_obs(d, 2000, 1000, 60, 1))).await;
    let artist = SpotifyId::new(ARTIST).expect("artist");
    let days = rollups::artist_days(&run.runtime.db, &artist, &src(), Metric::Streams, d, d)
        .await
        .expect("query");
    assert_eq!(days[0].value, 2200);
    let isrc = Subject::parse("USRC17607839").expect("isrc");
    let doc = rollups::track_day(&run.runtime.db, &isrc, &src(), Metric::Streams, d)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(doc.territories["SE"].version, 2);
    assert_eq!(doc.territories["SE"].versions[0].value, 1200);
}

#[tokio::test]
async fn a_bot_burst_publishes_an_anomaly_with_evidence_that_matches_the_schema_once() {
    let run = Run::new();
    let start = NaiveDate::from_ymd_opt(2026, 9, 1).expect("date");
    for day in 0..60 {
        let s = usual(day);
        run.invoke(sqs(day_obs(
            start + Duration::days(day),
            s,
            s / 2,
            s / 30,
            1,
        )))
        .await;
    }
    assert!(
        run.anomalies().await.is_empty(),
        "{:?}",
        run.anomalies().await
    );
    // Bought streams: five times the usual, ten per listener, no saves to speak of.
    let burst = start + Duration::days(60);
    let response = run
        .invoke(sqs(day_obs(burst, usual(60) * 5, usual(60) / 2, 10, 1)))
        .await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let anomalies = run.anomalies().await;
    let kinds: Vec<&str> = anomalies
        .iter()
        .map(|a| a["anomaly"]["kind"].as_str().unwrap_or(""))
        .collect();
    assert!(
        kinds.contains(&"save_rate_collapse") || kinds.contains(&"unexplained_spike"),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"artificial_streaming"), "{kinds:?}");
    let schema: Value =
        serde_json::from_str(include_str!("../../../schemas/metric-anomaly.schema.json"))
            .expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    for a in &anomalies {
        let errors: Vec<String> = validator.iter_errors(a).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?} in {a}");
        assert_eq!(a["anomaly"]["date"], json!(burst));
        assert!(a["anomaly"]["evidence"]["score"].as_f64().is_some());
    }
    let spike = anomalies
        .iter()
        .find(|a| a["anomaly"]["evidence"]["detector"] == "robust-seasonal")
        .expect("the detector's finding");
    let ev = &spike["anomaly"]["evidence"];
    assert!(ev["band"][1].as_f64().expect("band") < ev["observed"].as_f64().expect("observed"));
    assert!(ev["ruled_out"].as_array().is_some_and(|r| !r.is_empty()));
    // The next day is still high: the cooldown keeps it to one alert per kind.
    let before = anomalies.len();
    run.invoke(sqs(day_obs(
        burst + Duration::days(1),
        usual(61) * 5,
        usual(61) / 2,
        10,
        1,
    )))
    .await;
    let after = run.anomalies().await;
    let artificial = after
        .iter()
        .filter(|a| a["anomaly"]["kind"] == "artificial_streaming")
        .count();
    assert_eq!(artificial, 1, "{after:?}");
    assert!(after.len() <= before + 1);
    let actions = run.audit_actions().await;
    assert!(actions.iter().any(|(a, _)| a == "anomaly_published"));
    assert!(actions.iter().any(|(a, _)| a == "anomaly_suppressed"));
}

#[tokio::test]
async fn a_release_explains_its_jump_and_no_alert_is_raised() {
    let run = Run::new();
    let start = NaiveDate::from_ymd_opt(2026, 9, 1).expect("date");
    for day in 0..60 {
        let s = usual(day);
        run.invoke(sqs(day_obs(
            start + Duration::days(day),
            s,
            s / 2,
            s / 30,
            1,
        )))
        .await;
    }
    let release = start + Duration::days(60);
    run.invoke(sqs(
        json!({ "cause": { "subject": "USRC17607839", "kind": "release", "date": release,
                                     "detail": "album 'Northbound'", "artist": ARTIST } }),
    ))
    .await;
    // A real release: many more listeners, saves in proportion.
    let s = usual(60) * 5;
    run.invoke(sqs(day_obs(release, s, s / 2, s / 30, 1))).await;
    assert!(
        run.anomalies().await.is_empty(),
        "{:?}",
        run.anomalies().await
    );
    let actions = run.audit_actions().await;
    let explained = actions
        .iter()
        .find(|(a, _)| a == "anomaly_explained")
        .expect("explained");
    assert_eq!(
        explained.1["detail"]["cause"]["kind"], "release",
        "{}",
        explained.1
    );
}

#[tokio::test]
async fn bad_messages_are_refused_and_the_s3_test_event_is_a_no_op() {
    let run = Run::new();
    let negative = json!({ "observations": [{ "subject": "USRC17607839", "territory": "SE", "date": "2026-11-10",
        "metric": "streams", "value": -5, "source": "api" }] });
    let response = run.invoke(sqs(negative)).await;
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "invalid input is not retried: {response}"
    );
    let letters = run
        .runtime
        .queues("streaming-metrics")
        .dead_letters()
        .await
        .expect("dlq");
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].reason.contains("negative"),
        "{}",
        letters[0].reason
    );
    let unknown_territory = json!({ "observations": [{ "subject": "USRC17607839", "territory": "QQ", "date": "2026-11-10",
        "metric": "streams", "value": 5, "source": "api" }] });
    run.invoke(sqs(unknown_territory)).await;
    let letters = run
        .runtime
        .queues("streaming-metrics")
        .dead_letters()
        .await
        .expect("dlq");
    assert!(letters[1].reason.contains("QQ"), "{}", letters[1].reason);
    let test_event = json!({ "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-22T06:00:00.000Z",
        "Bucket": "reports", "RequestId": "R", "HostId": "H" });
    let response = run.invoke(sqs(test_event)).await;
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    // A file the port cannot find is a permanent failure, dead-lettered with the reason.
    run.invoke(sqs(json!({ "report": "/nonexistent/report.csv" })))
        .await;
    let letters = run
        .runtime
        .queues("streaming-metrics")
        .dead_letters()
        .await
        .expect("dlq");
    assert_eq!(letters.len(), 3, "{letters:?}");
}
