//! The alerts the template routes to PagerDuty, checked against a fake of the Events API v2:
//! the bodies are built from `template.yaml`'s own input transformers (read from the file,
//! never re-typed here), from events shaped by the tasks' own types, and the fake validates
//! them as PagerDuty documents the API and keeps incidents by dedup key.

use artist_monitoring::alerts::Alert;
use backbone::clock::{Clock, SystemClock};
use backbone::local::{LocalBus, LocalDb};
use backbone::ports::{BusEvent, EventPublisher};
use chrono::{TimeZone, Utc};
use music_tasks::pagerduty::fake::EventsApi;
use music_tasks::pagerduty::{Forwarder, Routes, envelope, template_json};
use serde_json::{Value, json};
use streaming_metrics::anomaly::MetricAnomaly;

const ROUTING_KEY: &str = "R0UT1NGKEY0123456789ABCDEFGHIJKL";

fn template_text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap()
}

fn routes() -> Routes {
    Routes::from_template(&template_text(), "dev").unwrap()
}

/// The fake on 127.0.0.1:0, and its `/v2/enqueue` URL.
async fn fake() -> (EventsApi, String) {
    let api = EventsApi::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v2/enqueue", listener.local_addr().unwrap());
    let router = api.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (api, url)
}

/// Posts `body` as the API destination would, returning the status and the answer.
async fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn artist_alert(date: &str) -> BusEvent {
    // Through the task's own type, so the fields are the ones it publishes.
    let alert: Alert = serde_json::from_value(json!({
        "kind": "follower_milestone",
        "artist": "4Z8W4fKeB5YxbusRsdQVPb",
        "artist_name": "Radiohead",
        "date": date,
        "dedupe_key": "follower_milestone#4Z8W4fKeB5YxbusRsdQVPb#1000000",
        "summary": "Radiohead passed 1,000,000 followers (\"a milestone\")",
        "evidence": { "followers": 1000123, "milestone": 1000000 },
    }))
    .unwrap();
    BusEvent {
        source: artist_monitoring::EVENT_SOURCE.into(),
        detail_type: artist_monitoring::ALERT_DETAIL_TYPE.into(),
        detail: json!({ "schemaVersion": artist_monitoring::ALERT_SCHEMA_VERSION, "alert": alert }),
        time: Utc.with_ymd_and_hms(2026, 12, 3, 6, 0, 0).unwrap(),
        trace_header: None,
    }
}

fn metric_anomaly() -> BusEvent {
    let anomaly: MetricAnomaly = serde_json::from_value(json!({
        "kind": "unexplained_spike",
        "subject": "isrc:GBAYE0601498",
        "artist": "4Z8W4fKeB5YxbusRsdQVPb",
        "source": "spotify",
        "metric": "streams",
        "territory": "GLOBAL",
        "date": "2026-12-02",
        "dedupe_key": "unexplained_spike#isrc:GBAYE0601498#spotify#streams#2026-12-02",
        "summary": "Streams of isrc:GBAYE0601498 rose to 48210, above the usual 9000-14000",
        "evidence": {
            "observed": 48210.0, "expected": 11500.0, "band": [9000.0, 14000.0],
            "score": 0.97, "threshold": 0.9,
            "window": { "from": "2026-11-04", "to": "2026-12-02", "points": 29 },
            "detector": "mstl", "version": "1", "ruled_out": ["release"], "details": {}
        },
    }))
    .unwrap();
    BusEvent {
        source: streaming_metrics::EVENT_SOURCE.into(),
        detail_type: streaming_metrics::ANOMALY_DETAIL_TYPE.into(),
        detail: json!({ "schemaVersion": streaming_metrics::anomaly::ANOMALY_SCHEMA_VERSION, "anomaly": anomaly }),
        time: Utc.with_ymd_and_hms(2026, 12, 3, 7, 0, 0).unwrap(),
        trace_header: None,
    }
}

/// A `CloudWatch Alarm State Change` event, as CloudWatch puts it on the default bus.
fn alarm_event(name: &str, state: &str, previous: &str) -> Value {
    json!({
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-12-03T08:00:00Z",
        "region": "eu-west-1",
        "resources": [format!("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}")],
        "detail": {
            "alarmName": name,
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 1 datapoint [3.0 (03/12/26 07:55:00)] was greater than the threshold (0.0).",
                "timestamp": "2026-12-03T08:00:00.000+0000"
            },
            "previousState": { "value": previous, "timestamp": "2026-12-02T08:00:00.000+0000" },
            "configuration": { "description": "Messages are waiting in the dead-letter queue." }
        }
    })
}

/// The alarm names of the template for stage `dev` that end with `suffix`.
fn alarm_names(suffix: &str) -> Vec<String> {
    let doc = template_json(&template_text()).unwrap();
    doc["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .filter_map(|r| r["Properties"]["AlarmName"]["Fn::Sub"].as_str())
        .filter(|n| n.ends_with(suffix))
        .map(|n| n.replace("${Stage}", "dev"))
        .collect()
}

#[tokio::test]
async fn a_repeated_artist_alert_pages_once_and_another_day_pages_again() {
    let (api, url) = fake().await;
    let routes = routes();
    let event = envelope(
        &artist_alert("2026-12-03"),
        "e-1",
        "123456789012",
        "eu-west-1",
    );
    let deliveries = routes.deliveries(&event, ROUTING_KEY).unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].rule, "ArtistAlertRule");
    let body = &deliveries[0].body;
    assert_eq!(body["routing_key"], ROUTING_KEY);
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(
        body["dedup_key"],
        "music-tasks/artist-monitoring/follower_milestone#4Z8W4fKeB5YxbusRsdQVPb#1000000/2026-12-03"
    );
    let payload = &body["payload"];
    // The quotes in the summary survive the transformer as JSON.
    assert_eq!(
        payload["summary"],
        "Radiohead passed 1,000,000 followers (\"a milestone\")"
    );
    assert_eq!(payload["source"], "music.artist-monitoring");
    assert_eq!(payload["severity"], "info");
    assert_eq!(payload["timestamp"], "2026-12-03T06:00:00Z");
    assert_eq!(payload["custom_details"]["evidence"]["followers"], 1000123);

    let (status, answer) = post(&url, body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "success");
    assert_eq!(answer["dedup_key"], body["dedup_key"]);

    // The same alert re-published (events are at least once): the same key, no second page.
    let again = envelope(
        &artist_alert("2026-12-03"),
        "e-2",
        "123456789012",
        "eu-west-1",
    );
    let body_again = &routes.deliveries(&again, ROUTING_KEY).unwrap()[0].body;
    assert_eq!(body_again["dedup_key"], body["dedup_key"]);
    assert_eq!(post(&url, body_again).await.0, 202);
    let incidents = api.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].triggers, 2);

    // The next day is a new alert.
    let tomorrow = envelope(
        &artist_alert("2026-12-04"),
        "e-3",
        "123456789012",
        "eu-west-1",
    );
    let body_tomorrow = &routes.deliveries(&tomorrow, ROUTING_KEY).unwrap()[0].body;
    assert_ne!(body_tomorrow["dedup_key"], body["dedup_key"]);
    assert_eq!(post(&url, body_tomorrow).await.0, 202);
    assert_eq!(api.incidents().len(), 2);
    assert!(api.refused().is_empty());
}

#[tokio::test]
async fn a_metric_anomaly_reaches_pagerduty_with_its_evidence() {
    let (api, url) = fake().await;
    let routes = routes();
    let event = envelope(&metric_anomaly(), "e-9", "123456789012", "eu-west-1");
    let deliveries = routes.deliveries(&event, ROUTING_KEY).unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].rule, "MetricAnomalyRule");
    let body = &deliveries[0].body;
    assert_eq!(
        body["dedup_key"],
        "music-tasks/streaming-metrics/unexplained_spike#isrc:GBAYE0601498#spotify#streams#2026-12-02"
    );
    assert_eq!(body["payload"]["severity"], "warning");
    assert_eq!(body["payload"]["class"], "unexplained_spike");
    assert_eq!(
        body["payload"]["custom_details"]["evidence"]["band"],
        json!([9000.0, 14000.0])
    );
    for _ in 0..2 {
        let (status, answer) = post(&url, body).await;
        assert_eq!(status, 202, "{answer}");
    }
    assert_eq!(api.incidents().len(), 1);
}

#[tokio::test]
async fn every_dead_letter_and_audit_chain_alarm_pages_and_resolves() {
    let (api, url) = fake().await;
    let routes = routes();
    let dlq = alarm_names("-dlq-depth");
    let audit = alarm_names("-audit-chain");
    // One per function and the delivery queue; one chain per function.
    assert_eq!((dlq.len(), audit.len()), (8, 7), "{dlq:?} {audit:?}");
    for (names, rule, severity) in [
        (&dlq, "PagerDutyDeadLetterAlarmRule", "error"),
        (&audit, "PagerDutyAuditChainAlarmRule", "critical"),
    ] {
        for name in names {
            let deliveries = routes
                .deliveries(&alarm_event(name, "ALARM", "OK"), ROUTING_KEY)
                .unwrap();
            assert_eq!(deliveries.len(), 1, "{name}: {deliveries:?}");
            assert_eq!(deliveries[0].rule, rule, "{name}");
            let body = &deliveries[0].body;
            assert_eq!(body["dedup_key"], format!("music-tasks/cloudwatch/{name}"));
            assert_eq!(body["payload"]["severity"], severity);
            assert_eq!(
                body["payload"]["source"],
                "cloudwatch:eu-west-1:123456789012"
            );
            assert!(
                body["payload"]["summary"]
                    .as_str()
                    .unwrap()
                    .starts_with(name.as_str()),
                "{body}"
            );
            assert_eq!(post(&url, body).await.0, 202, "{name}");
        }
    }
    assert_eq!(api.incidents().len(), 15);

    // Back to OK: the incident is resolved by the same key; a new ALARM pages again.
    let name = &dlq[1];
    let ok = routes
        .deliveries(&alarm_event(name, "OK", "ALARM"), ROUTING_KEY)
        .unwrap();
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0].rule, "PagerDutyAlarmResolvedRule");
    assert_eq!(ok[0].body["event_action"], "resolve");
    assert_eq!(post(&url, &ok[0].body).await.0, 202);
    let resolved: Vec<_> = api.incidents().into_iter().filter(|i| i.resolved).collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        resolved[0].dedup_key,
        format!("music-tasks/cloudwatch/{name}")
    );

    // Alarms that are not for PagerDuty, and other stages, are not routed.
    let errors = alarm_names("-errors");
    assert!(!errors.is_empty());
    for other in [errors[0].clone(), dlq[1].replace("-dev-", "-prod-")] {
        let deliveries = routes
            .deliveries(&alarm_event(&other, "ALARM", "OK"), ROUTING_KEY)
            .unwrap();
        assert!(deliveries.is_empty(), "{other}: {deliveries:?}");
    }
}

#[tokio::test]
async fn the_fake_refuses_what_pagerduty_refuses() {
    let (api, url) = fake().await;
    let routes = routes();
    let event = envelope(
        &artist_alert("2026-12-03"),
        "e-1",
        "123456789012",
        "eu-west-1",
    );
    let mut body = routes.deliveries(&event, ROUTING_KEY).unwrap()[0]
        .body
        .clone();
    body["payload"]["severity"] = json!("urgent");
    body.as_object_mut().unwrap().remove("routing_key");
    let (status, answer) = post(&url, &body).await;
    assert_eq!(status, 400);
    assert_eq!(answer["status"], "invalid event");
    assert_eq!(answer["errors"].as_array().unwrap().len(), 2, "{answer}");
    let (status, _) = post(
        &url,
        &json!({"routing_key": ROUTING_KEY, "event_action": "resolve"}),
    )
    .await;
    assert_eq!(status, 400, "a resolve needs its dedup key");
    assert!(api.incidents().is_empty());
    assert_eq!(api.refused().len(), 2);
}

#[tokio::test]
async fn the_local_runner_forwards_its_bus_alerts_to_the_events_api() {
    let (api, url) = fake().await;
    let bus = LocalBus::new(LocalDb::in_memory().unwrap());
    let now = SystemClock.now();
    let unrelated = BusEvent {
        source: "music.track-analysis".into(),
        detail_type: "TrackAnalyzed".into(),
        detail: json!({ "track": "t" }),
        time: now,
        trace_header: None,
    };
    bus.publish(&[
        artist_alert("2026-12-03"),
        unrelated,
        metric_anomaly(),
        artist_alert("2026-12-03"),
    ])
    .await
    .unwrap();
    let env: std::collections::HashMap<&str, &str> = [
        ("PAGERDUTY_EVENTS_URL", url.as_str()),
        ("PAGERDUTY_ROUTING_KEY", ROUTING_KEY),
    ]
    .into();
    let forwarder = Forwarder::from_env(&env).unwrap().unwrap();
    let sent = forwarder
        .forward(&bus.events().await.unwrap())
        .await
        .unwrap();
    let rules: Vec<&str> = sent.iter().map(|s| s.rule.as_str()).collect();
    assert_eq!(
        rules,
        ["ArtistAlertRule", "MetricAnomalyRule", "ArtistAlertRule"]
    );
    assert!(sent.iter().all(|s| s.status == "success"));
    assert_eq!(sent[0].dedup_key, sent[2].dedup_key);
    assert_eq!(api.accepted().len(), 3);
    assert_eq!(
        api.incidents().len(),
        2,
        "the repeated alert did not page again"
    );
    assert!(
        api.accepted()
            .iter()
            .all(|e| e["routing_key"] == ROUTING_KEY)
    );

    // Without the URL nothing is forwarded; with it but no key the runner says which is missing.
    let none: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    assert!(Forwarder::from_env(&none).unwrap().is_none());
    let no_key: std::collections::HashMap<&str, &str> =
        [("PAGERDUTY_EVENTS_URL", url.as_str())].into();
    let err = Forwarder::from_env(&no_key).err().unwrap();
    assert!(err.to_string().contains("PAGERDUTY_ROUTING_KEY"), "{err}");
}

#[tokio::test]
async fn tasks_local_sends_the_alerts_of_its_run_to_the_events_api_url() {
    let (api, url) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.sqlite3");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tasks"))
            .args(["local", "--days", "3", "--json"])
            .env("TASKS_DB", &db)
            .env("TEXT_GENERATOR", "template")
            .env("PAGERDUTY_EVENTS_URL", &url)
            .env("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent = summary["pagerduty"].as_array().unwrap_or_else(|| {
        panic!(
            "{}",
            String::from_utf8_lossy(&out.stdout)
                .chars()
                .take(600)
                .collect::<String>()
        )
    });
    // The demo watchlist raises at least one artist alert over three days.
    assert!(!sent.is_empty(), "{}", summary["pagerduty"]);
    assert!(sent.iter().all(|s| s["status"] == "success"), "{sent:?}");
    let accepted = api.accepted();
    assert_eq!(accepted.len(), sent.len());
    assert!(api.refused().is_empty(), "{:?}", api.refused());
    for (event, sent) in accepted.iter().zip(sent) {
        assert_eq!(event["routing_key"], ROUTING_KEY);
        assert_eq!(event["dedup_key"], sent["dedup_key"]);
    }
}
