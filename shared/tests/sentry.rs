//! Errors and panics reach Sentry: a local endpoint takes the envelopes the harness's client
//! posts to `/api/<project>/envelope/`, parses them (envelope header, item headers, event JSON)
//! and the tests read the tags, the message and what must be absent (secrets).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use backbone::clock::SystemClock;
use backbone::config::HarnessConfig;
use backbone::error::{Classify, ErrorClass};
use backbone::harness::{Cx, Invocation, Outcome, Task};
use backbone::local::{LocalDb, LocalRuntime};
use backbone::telemetry::Capture;
use backbone::validate::{Validate, ValidationError};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A secret in the function's configuration (a secret-named variable).
const CONFIG_SECRET: &str = "cfg-secret-7f3a9c21d4";
/// A secret in the input (a secret-named field).
const INPUT_SECRET: &str = "tok-live-5be0c8a1e2";
/// A credential that only a pattern can recognise.
const BEARER: &str = "eyJhbGciOi.payload.sig";

/// One envelope as received: the request path's project, the envelope header and its items.
#[derive(Debug, Clone)]
struct Envelope {
    project: String,
    auth: Option<String>,
    raw: String,
    header: Value,
    items: Vec<(Value, Value)>,
}

impl Envelope {
    /// Splits an envelope: a header line, then per item a header line and its payload, whose
    /// size is the header's `length` when given and one line otherwise.
    fn parse(project: String, auth: Option<String>, body: &[u8]) -> Result<Self, String> {
        let raw = String::from_utf8(body.to_vec()).map_err(|e| e.to_string())?;
        let (header_line, mut rest) = body
            .split_at_checked(body.iter().position(|b| *b == b'\n').unwrap_or(body.len()))
            .ok_or("no header")?;
        let header: Value = serde_json::from_slice(header_line).map_err(|e| e.to_string())?;
        let mut items = Vec::new();
        loop {
            rest = rest.strip_prefix(b"\n").unwrap_or(rest);
            if rest.is_empty() {
                break;
            }
            let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
            let item_header: Value =
                serde_json::from_slice(&rest[..end]).map_err(|e| format!("item header: {e}"))?;
            rest = rest.get(end + 1..).unwrap_or_default();
            let len = match item_header["length"].as_u64() {
                Some(len) => usize::try_from(len).map_err(|e| e.to_string())?,
                None => rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len()),
            };
            let payload = rest.get(..len).ok_or("item shorter than its length")?;
            let payload = if item_header["type"] == "event" {
                serde_json::from_slice(payload).map_err(|e| format!("event: {e}"))?
            } else {
                Value::String(String::from_utf8_lossy(payload).into_owned())
            };
            items.push((item_header, payload));
            rest = &rest[len..];
        }
        Ok(Self {
            project,
            auth,
            raw,
            header,
            items,
        })
    }

    fn events(&self) -> Vec<&Value> {
        self.items
            .iter()
            .filter(|(header, _)| header["type"] == "event")
            .map(|(_, event)| event)
            .collect()
    }
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Result<Envelope, String>>>>);

impl Received {
    fn envelopes(&self) -> Vec<Envelope> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.clone().expect("a parseable envelope"))
            .collect()
    }

    fn events(&self) -> Vec<(Envelope, Value)> {
        self.envelopes()
            .into_iter()
            .flat_map(|envelope| {
                let events: Vec<Value> = envelope.events().into_iter().cloned().collect();
                events.into_iter().map(move |e| (envelope.clone(), e))
            })
            .collect()
    }
}

async fn envelope(
    State(received): State<Received>,
    Path(project): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> StatusCode {
    let auth = headers
        .get("x-sentry-auth")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    received
        .0
        .lock()
        .unwrap()
        .push(Envelope::parse(project, auth, &body));
    StatusCode::OK
}

/// A Sentry stand-in on 127.0.0.1:0, and the DSN that names it.
async fn sentry_endpoint() -> (String, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/api/{project}/envelope/", post(envelope))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://publickey@127.0.0.1:{port}/4242"), received)
}

#[derive(Debug, Serialize, Deserialize)]
struct Probe {
    artist: String,
    /// `ok`, `fail` (permanent), `retry` (transient) or `panic`.
    mode: String,
    #[serde(default)]
    api_token: Option<String>,
}

impl Validate for Probe {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.artist.is_empty() {
            return Err(ValidationError::new("artist", "is empty"));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
struct ProbeError {
    reason: String,
    class: ErrorClass,
}

impl Classify for ProbeError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// Fails as told, with every secret it can see in its error (as a careless client library
/// would), so the test shows the report scrubs them.
struct ProbeTask;

#[async_trait]
impl Task for ProbeTask {
    const NAME: &'static str = "sentry-probe";
    type Input = Probe;
    type Output = Value;
    type Error = ProbeError;

    fn subject(&self, input: &Probe) -> String {
        input.artist.clone()
    }

    async fn run(&self, input: Probe, _cx: &Cx) -> Result<Value, ProbeError> {
        let leak = format!(
            "upstream refused client secret {CONFIG_SECRET}, token {} (Authorization: Bearer {BEARER})",
            input.api_token.as_deref().unwrap_or("-"),
        );
        match input.mode.as_str() {
            "fail" => Err(ProbeError {
                reason: format!("artist {} is gone: {leak}", input.artist),
                class: ErrorClass::Permanent,
            }),
            "retry" => Err(ProbeError {
                reason: format!("timeout: {leak}"),
                class: ErrorClass::Transient,
            }),
            "panic" => panic!("probe panicked on {}: {leak}", input.artist),
            _ => Ok(json!({ "artist": input.artist })),
        }
    }
}

fn config(dsn: Option<&str>) -> HarnessConfig {
    let mut env: HashMap<&str, &str> = [
        ("SPOTIFY_CLIENT_SECRET", CONFIG_SECRET),
        ("AWS_LAMBDA_FUNCTION_VERSION", "17"),
        ("SENTRY_ENVIRONMENT", "test"),
    ]
    .into();
    if let Some(dsn) = dsn {
        env.insert("SENTRY_DSN", dsn);
    }
    HarnessConfig::from_env(&env, ProbeTask::NAME, "0.1.0").unwrap()
}

fn runtime() -> LocalRuntime {
    LocalRuntime::new(
        LocalDb::in_memory().unwrap(),
        Arc::new(SystemClock),
        Arc::new(Capture::new()),
    )
}

const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

fn sqs(records: &[(&str, Value)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("rh-{id}"),
                "body": body.to_string(),
                "attributes": { "AWSTraceHeader": TRACE, "ApproximateReceiveCount": "1" },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:000000000000:probe",
                "awsRegion": "eu-west-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

fn invocation(request_id: &str) -> Invocation {
    let mut invocation = Invocation::local(Utc::now(), Duration::from_secs(60));
    invocation.request_id = request_id.to_owned();
    invocation
}

/// An event's level; the protocol leaves out `error`, its default.
fn level(event: &Value) -> &str {
    event["level"].as_str().unwrap_or("error")
}

fn assert_clean(raw: &str) {
    for secret in [CONFIG_SECRET, INPUT_SECRET, BEARER] {
        assert!(!raw.contains(secret), "{secret} reached Sentry: {raw}");
    }
}

#[tokio::test]
async fn a_permanent_failure_is_reported_with_its_tags_and_without_secrets() {
    let (dsn, received) = sentry_endpoint().await;
    let function = runtime().harness(ProbeTask, config(Some(&dsn)));
    let event = sqs(&[
        ("m-ok", json!({ "artist": "a1", "mode": "ok" })),
        (
            "m-fail",
            json!({ "artist": "a2", "mode": "fail", "api_token": INPUT_SECRET }),
        ),
        ("m-retry", json!({ "artist": "a3", "mode": "retry" })),
    ]);
    let report = function
        .harness()
        .handle(event, invocation("req-perm"))
        .await
        .unwrap();
    assert!(matches!(report.messages[1].1, Outcome::DeadLettered { .. }));
    assert!(matches!(report.messages[2].1, Outcome::Retry { .. }));

    // The invocation flushed before returning: the envelope is already here.
    let events = received.events();
    assert_eq!(
        events.len(),
        1,
        "only the permanent failure is reported: {events:?}"
    );
    let (envelope, event) = &events[0];
    assert_eq!(envelope.project, "4242");
    assert!(
        envelope
            .auth
            .as_deref()
            .is_some_and(|a| a.contains("sentry_key=publickey"))
    );
    // The envelope header names the event it carries (the event spells its id without dashes).
    assert_eq!(
        envelope.header["event_id"]
            .as_str()
            .unwrap()
            .replace('-', ""),
        event["event_id"].as_str().unwrap()
    );
    let tags = &event["tags"];
    assert_eq!(tags["task"], "sentry-probe");
    assert_eq!(tags["version"], "17");
    assert_eq!(tags["message_id"], "m-fail");
    assert_eq!(tags["request_id"], "req-perm");
    assert_eq!(tags["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
    assert_eq!(level(event), "error");
    assert_eq!(event["release"], "sentry-probe@17");
    assert_eq!(event["environment"], "test");
    let message = event["message"].as_str().unwrap();
    assert!(
        message.starts_with("permanent failure: artist a2 is gone: upstream refused"),
        "{message}"
    );
    assert!(
        message.contains("client secret [redacted], token [redacted]"),
        "{message}"
    );
    assert!(message.contains("Bearer [redacted]"), "{message}");
    assert_eq!(event["exception"]["values"][0]["type"], "permanent_failure");
    assert_clean(&envelope.raw);
}

#[tokio::test]
async fn a_panic_is_reported_with_the_message_it_happened_in() {
    let (dsn, received) = sentry_endpoint().await;
    let function = runtime().harness(ProbeTask, config(Some(&dsn)));
    let event = sqs(&[(
        "m-panic",
        json!({ "artist": "a9", "mode": "panic", "api_token": INPUT_SECRET }),
    )]);
    let report = function
        .harness()
        .handle(event, invocation("req-panic"))
        .await
        .unwrap();
    // A panic is retried by SQS, and reported once.
    assert!(matches!(report.messages[0].1, Outcome::Retry { .. }));
    let events = received.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let (envelope, event) = &events[0];
    assert_eq!(level(event), "fatal");
    assert_eq!(event["tags"]["message_id"], "m-panic");
    assert_eq!(event["tags"]["request_id"], "req-panic");
    assert_eq!(event["tags"]["task"], "sentry-probe");
    let exception = &event["exception"]["values"][0];
    assert_eq!(exception["type"], "panic");
    let value = exception["value"].as_str().unwrap();
    assert!(value.starts_with("probe panicked on a9"), "{value}");
    assert!(value.contains("token [redacted]"), "{value}");
    // The stack trace of the panic comes along.
    assert!(
        exception["stacktrace"]["frames"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{exception}"
    );
    assert_clean(&envelope.raw);
}

#[tokio::test]
async fn a_failed_invocation_and_a_rejected_record_are_reported() {
    let (dsn, received) = sentry_endpoint().await;
    let function = runtime().harness(ProbeTask, config(Some(&dsn)));
    let err = function
        .harness()
        .handle(json!({ "Records": [] }), invocation("req-empty"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid event"), "{err}");
    let report = function
        .harness()
        .handle(
            sqs(&[("m-bad", json!({ "artist": "", "mode": "ok" }))]),
            invocation("req-bad"),
        )
        .await
        .unwrap();
    assert!(matches!(report.messages[0].1, Outcome::Rejected { .. }));

    let events = received.events();
    assert_eq!(events.len(), 2, "{events:?}");
    let by_request = |id: &str| {
        events
            .iter()
            .map(|(_, e)| e)
            .find(|e| e["tags"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no event for {id}: {events:?}"))
    };
    let failed = by_request("req-empty");
    assert_eq!(level(failed), "error");
    assert_eq!(failed["tags"]["task"], "sentry-probe");
    assert!(failed["tags"].get("message_id").is_none());
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .starts_with("invocation failure: invalid event"),
        "{failed}"
    );
    let rejected = by_request("req-bad");
    assert_eq!(level(rejected), "warning");
    assert_eq!(rejected["tags"]["message_id"], "m-bad");
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("artist: is empty"),
        "{rejected}"
    );
}

#[tokio::test]
async fn without_a_dsn_nothing_is_sent() {
    let (_dsn, received) = sentry_endpoint().await;
    let config = config(None);
    assert!(config.sentry.is_none());
    let function = runtime().harness(ProbeTask, config);
    let report = function
        .harness()
        .handle(
            sqs(&[("m-fail", json!({ "artist": "a2", "mode": "fail" }))]),
            invocation("req-off"),
        )
        .await
        .unwrap();
    assert!(matches!(report.messages[0].1, Outcome::DeadLettered { .. }));
    assert!(received.envelopes().is_empty());
}
