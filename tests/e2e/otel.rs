//! OpenTelemetry for real: a scheduled plan step fans out through SQS on the AWS emulator, the
//! work step handles the received messages, and everything is exported over OTLP/HTTP to a
//! loopback receiver that decodes the protobuf requests. One trace covers plan -> send -> work,
//! and the OTLP metric names, after the collector's Prometheus translation, are the names and
//! labels `/metrics` exposes for the same EMF lines.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use backbone::SecretString;
use backbone::aws::poller::SqsPoller;
use backbone::aws::{AwsAdapters, provision};
use backbone::clock::SystemClock;
use backbone::config::HarnessConfig;
use backbone::error::{Classify, ErrorClass};
use backbone::harness::{Cx, Harness, HarnessPorts, Invocation, Task, metrics_for};
use backbone::telemetry::otel::{Otel, OtelConfig, lambda_resource};
use backbone::telemetry::prometheus::{RecordingSink, Registry};
use backbone::telemetry::{Capture, install_for_test_with_otel};
use backbone::validate::Validate;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

const SECRET_VALUE: &str = "otel-secret-4f1d9a7c";

/// The plan step (`{"plan": n}`, from a schedule) fans out `n` work messages (`{"work": i}`).
#[derive(Debug, Serialize, Deserialize)]
struct Step {
    plan: Option<u32>,
    work: Option<u32>,
}

impl Validate for Step {}

#[derive(Debug, thiserror::Error)]
#[error("never fails")]
struct Never;

impl Classify for Never {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

struct FanOut {
    credential: SecretString,
}

#[async_trait]
impl Task for FanOut {
    const NAME: &'static str = "otel-test";
    type Input = Step;
    type Output = serde_json::Value;
    type Error = Never;

    async fn run(&self, input: Step, cx: &Cx) -> Result<serde_json::Value, Never> {
        // The credential's Debug form is what a careless log line would carry.
        tracing::info!(credential = ?self.credential, "step");
        for i in 0..input.plan.unwrap_or(0) {
            cx.enqueue(&Step {
                plan: None,
                work: Some(i),
            })
            .map_err(|_| Never)?;
        }
        cx.metrics().count("StepsDone", 1);
        Ok(json!({ "work": input.work }))
    }
}

/// What the loopback OTLP receiver got: the raw bodies and the decoded requests.
#[derive(Default)]
struct Received {
    raw: Vec<Vec<u8>>,
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
}

type Shared = Arc<Mutex<Received>>;

async fn traces(State(shared): State<Shared>, body: Bytes) -> axum::http::StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    let mut received = shared.lock().unwrap();
    received.raw.push(body.to_vec());
    received.traces.push(request);
    axum::http::StatusCode::OK
}

async fn metrics(State(shared): State<Shared>, body: Bytes) -> axum::http::StatusCode {
    let Ok(request) = ExportMetricsServiceRequest::decode(body.as_ref()) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    let mut received = shared.lock().unwrap();
    received.raw.push(body.to_vec());
    received.metrics.push(request);
    axum::http::StatusCode::OK
}

async fn receiver() -> (String, Shared) {
    let shared = Shared::default();
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), shared)
}

fn string(value: &Option<AnyValue>) -> Option<String> {
    match value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|kv| Some((kv.key.clone(), string(&kv.value)?)))
        .collect()
}

/// The collector's Prometheus translation of an OTLP metric name (the prometheus and
/// prometheusremotewrite exporters with their default `add_metric_suffixes: true`): the name
/// sanitised to `[a-zA-Z0-9_:]`, the unit's Prometheus word appended unless the name already
/// has it (`s` -> `seconds`, `By` -> `bytes`, `%` -> `percent`; `1` and no unit add nothing
/// here), and `_total` appended to a monotonic sum.
fn translate(name: &str, unit: &str, monotonic_sum: bool) -> String {
    let sanitised: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut tokens: Vec<&str> = sanitised.split('_').filter(|t| !t.is_empty()).collect();
    let word = match unit {
        "s" => Some("seconds"),
        "ms" => Some("milliseconds"),
        "By" => Some("bytes"),
        "%" => Some("percent"),
        _ => None,
    };
    if let Some(word) = word
        && !tokens.contains(&word)
    {
        tokens.push(word);
    }
    if monotonic_sum {
        tokens.retain(|t| *t != "total");
        tokens.push("total");
    }
    tokens.join("_")
}

/// (family name, kind, labels) -> value of every series `/metrics` renders (histograms by
/// their count), read back from the text exposition.
fn exposition(text: &str) -> SeriesMap {
    let mut kinds: HashMap<String, String> = HashMap::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            kinds.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels: BTreeSet<(String, String)> = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .filter(|(k, _)| k != "le")
            .collect();
        let (family, keep) = match kinds.get(name).map(String::as_str) {
            Some(kind) => ((name.to_owned(), kind.to_owned()), true),
            None => {
                let base = name
                    .strip_suffix("_count")
                    .or_else(|| name.strip_suffix("_sum"))
                    .or_else(|| name.strip_suffix("_bucket"))
                    .unwrap();
                (
                    (base.to_owned(), "histogram".to_owned()),
                    name.ends_with("_count"),
                )
            }
        };
        if keep {
            out.insert((family.0, family.1, labels), value.parse::<f64>().unwrap());
        }
    }
    out
}

/// (family name, kind, labels) of one series.
type SeriesKey = (String, String, BTreeSet<(String, String)>);
/// Every series with its value.
type SeriesMap = BTreeMap<SeriesKey, f64>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn one_trace_covers_plan_send_and_work_through_sqs_and_metrics_match_prometheus() {
    let Some(sdk) = crate::sqs::emulator().await else {
        return;
    };
    let prefix = format!("otel-{}", uuid::Uuid::new_v4().simple());
    let stack = provision::stack(&sdk, &prefix, 30, 3).await.unwrap();
    let adapters = AwsAdapters::new(&sdk, &stack);
    let (endpoint, received) = receiver().await;

    let env: HashMap<String, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
        ("OTEL_SERVICE_NAME", "music-tasks".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "music-otel-test".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "7".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".to_owned()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/12/03/[7]0123456789abcdef".to_owned(),
        ),
        ("AWS_REGION", "us-east-1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let otel_config = OtelConfig::from_env(&env).unwrap().expect("configured");
    assert_eq!(
        otel_config.traces_endpoint.as_deref(),
        Some(format!("{endpoint}/v1/traces").as_str())
    );
    let config = HarnessConfig::for_task(FanOut::NAME);
    let resource = lambda_resource(&env, &otel_config, FanOut::NAME, &config.version);
    let otel = Arc::new(Otel::start(&otel_config, resource).unwrap());
    let logs = Capture::new();
    let _guard = install_for_test_with_otel(Arc::new(logs.clone()), "info", Some(&otel));

    let emf = Capture::new();
    let registry = Arc::new(Registry::new());
    let sink = otel.metrics_sink(Arc::new(RecordingSink::new(
        Arc::new(emf.clone()),
        registry.clone(),
    )));
    let ports = HarnessPorts {
        idempotency: Arc::new(adapters.idempotency.clone()),
        audit: Arc::new(adapters.audit.clone()),
        queues: Arc::new(adapters.queues.clone()),
        clock: Arc::new(SystemClock),
        metrics: metrics_for(&config, FanOut::NAME, sink),
    };
    let harness = Harness::new(
        FanOut {
            credential: SecretString::from(SECRET_VALUE),
        },
        ports,
        config,
    )
    .with_otel(Some(otel.clone()));
    let invocation = || Invocation::local(chrono::Utc::now(), Duration::from_secs(20));

    // The scheduled plan step (EventBridge Scheduler invokes with the schedule's input).
    let plan = harness
        .handle(json!({ "plan": 3 }), invocation())
        .await
        .unwrap();
    assert!(!plan.messages.is_empty());

    // The work step on what SQS delivers.
    let poller = SqsPoller::new(&sdk, stack.work_queue_url.clone());
    let mut delivered: Vec<(String, String)> = Vec::new();
    for _ in 0..20 {
        if let Some((event, handles)) = poller.receive(1).await.unwrap() {
            for record in event["Records"].as_array().unwrap() {
                delivered.push((
                    record["messageId"].as_str().unwrap().to_owned(),
                    record["attributes"]["AWSTraceHeader"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
            }
            let report = harness.handle(event, invocation()).await.unwrap();
            poller
                .acknowledge(&handles, &report.response)
                .await
                .unwrap();
        }
        if delivered.len() >= 3 {
            break;
        }
    }
    assert_eq!(delivered.len(), 3, "the three work messages arrived");
    assert!(
        delivered
            .iter()
            .all(|(_, header)| header.starts_with("Root=1-")),
        "moto carries the AWSTraceHeader system attribute: {delivered:?}"
    );

    let received = received.lock().unwrap();
    let spans: Vec<(BTreeMap<String, String>, Span)> = received
        .traces
        .iter()
        .flat_map(|request| &request.resource_spans)
        .flat_map(|rs| {
            let resource = attributes(&rs.resource.as_ref().unwrap().attributes);
            rs.scope_spans
                .iter()
                .flat_map(|ss| ss.spans.clone())
                .map(move |span| (resource.clone(), span))
        })
        .collect();
    let named = |name: &str| -> Vec<&Span> {
        spans
            .iter()
            .filter(|(_, s)| s.name == name)
            .map(|(_, s)| s)
            .collect()
    };
    let invocations = named("invocation");
    let messages = named("message");
    let sends = named("send");
    assert!(
        invocations.len() >= 2,
        "plan and the work batches: {spans:#?}"
    );
    assert_eq!(sends.len(), 1);
    assert_eq!(
        messages.len(),
        4,
        "the plan's message and three work messages"
    );

    let plan_invocation = invocations
        .iter()
        .find(|s| {
            attributes(&s.attributes)
                .get("faas.trigger")
                .map(String::as_str)
                == Some("timer")
        })
        .expect("the plan invocation is a timer");
    let trace_id = plan_invocation.trace_id.clone();
    assert!(
        plan_invocation.parent_span_id.is_empty(),
        "the plan starts the trace"
    );
    let plan_message = messages
        .iter()
        .find(|s| s.parent_span_id == plan_invocation.span_id)
        .expect("the plan's message span is a child of its invocation");
    let send = sends[0];
    assert_eq!(send.trace_id, trace_id);
    assert_eq!(
        send.parent_span_id, plan_message.span_id,
        "send under the plan's message"
    );
    let work: Vec<&&Span> = messages
        .iter()
        .filter(|s| s.parent_span_id == send.span_id)
        .collect();
    assert_eq!(work.len(), 3, "every work span's parent is the send span");
    for span in &work {
        assert_eq!(
            span.trace_id, trace_id,
            "one trace across plan, send and work"
        );
        let attrs = attributes(&span.attributes);
        assert_eq!(
            attrs.get("messaging.system").map(String::as_str),
            Some("aws_sqs")
        );
        let id = attrs.get("messaging.message.id").expect("message id");
        assert!(
            delivered.iter().any(|(d, _)| d == id),
            "{id} is an SQS message id"
        );
    }
    let work_invocation = invocations
        .iter()
        .find(|s| s.span_id != plan_invocation.span_id)
        .unwrap();
    let work_attrs = attributes(&work_invocation.attributes);
    assert_eq!(
        work_attrs.get("faas.trigger").map(String::as_str),
        Some("pubsub")
    );
    assert!(work_attrs.contains_key("faas.invocation_id"));

    // X-Ray-form ids: the first four bytes of the trace id are its start in epoch seconds,
    // and the header carried on the messages names the send span.
    let epoch = u32::from_be_bytes(trace_id[..4].try_into().unwrap()) as i64;
    assert!(
        (chrono::Utc::now().timestamp() - epoch).abs() < 600,
        "{epoch}"
    );
    let xray = format!("1-{}-{}", hex(&trace_id[..4]), hex(&trace_id[4..]));
    for (_, header) in &delivered {
        assert!(
            header.starts_with(&format!("Root={xray};Parent={};", hex(&send.span_id))),
            "{header} names the send span of trace {xray}"
        );
    }
    let plan_logs: Vec<_> = logs
        .json()
        .into_iter()
        .filter(|l| l["message"] == "step")
        .collect();
    assert_eq!(plan_logs.len(), 4);
    assert!(
        plan_logs.iter().all(|l| l["traceId"] == xray.as_str()),
        "{plan_logs:?}"
    );

    // The FaaS resource.
    let (resource, _) = &spans[0];
    for (key, value) in [
        ("service.name", "music-tasks"),
        ("faas.name", "music-otel-test"),
        ("faas.version", "7"),
        ("faas.instance", "2026/12/03/[7]0123456789abcdef"),
        ("faas.max_memory", "536870912"),
        ("cloud.provider", "aws"),
        ("cloud.platform", "aws_lambda"),
        ("cloud.region", "us-east-1"),
    ] {
        assert_eq!(resource.get(key).map(String::as_str), Some(value), "{key}");
    }

    // No secret anywhere in what was exported (or logged).
    assert!(!received.raw.is_empty());
    for body in &received.raw {
        assert!(!String::from_utf8_lossy(body).contains(SECRET_VALUE));
    }
    assert!(!logs.text().contains(SECRET_VALUE));

    // Metrics: the last export holds the cumulative state; translated, it is /metrics.
    let last = received.metrics.last().expect("metrics were exported");
    let mut otlp = BTreeMap::new();
    for metric in last
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
    {
        let labels = |list: &[KeyValue]| -> BTreeSet<(String, String)> {
            attributes(list).into_iter().collect()
        };
        match metric.data.as_ref().unwrap() {
            Data::Sum(sum) => {
                assert_eq!(
                    sum.aggregation_temporality, 2,
                    "cumulative: {}",
                    metric.name
                );
                let name = translate(&metric.name, &metric.unit, sum.is_monotonic);
                for point in &sum.data_points {
                    let value = match point.value {
                        Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(v)) => v,
                        Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(v)) => v as f64,
                        None => f64::NAN,
                    };
                    otlp.insert(
                        (
                            name.clone(),
                            "counter".to_owned(),
                            labels(&point.attributes),
                        ),
                        value,
                    );
                }
            }
            Data::Histogram(histogram) => {
                assert_eq!(
                    histogram.aggregation_temporality, 2,
                    "cumulative: {}",
                    metric.name
                );
                let name = translate(&metric.name, &metric.unit, false);
                for point in &histogram.data_points {
                    otlp.insert(
                        (
                            name.clone(),
                            "histogram".to_owned(),
                            labels(&point.attributes),
                        ),
                        point.count as f64,
                    );
                }
            }
            Data::Gauge(gauge) => {
                let name = translate(&metric.name, &metric.unit, false);
                for point in &gauge.data_points {
                    otlp.insert(
                        (name.clone(), "gauge".to_owned(), labels(&point.attributes)),
                        f64::NAN,
                    );
                }
            }
            other => panic!("unexpected metric kind {other:?}"),
        }
    }
    let prometheus = exposition(&registry.render());
    assert!(
        prometheus
            .keys()
            .any(|(name, _, _)| name == "messages_completed_total"),
        "{prometheus:?}"
    );
    assert!(
        prometheus
            .keys()
            .any(|(name, _, _)| name == "message_duration_seconds")
    );
    let names = |m: &SeriesMap| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(
        names(&otlp),
        names(&prometheus),
        "the same families and labels"
    );
    for (key, value) in &prometheus {
        if key.1 != "gauge" {
            assert_eq!(otlp[key], *value, "{key:?}: the same counts");
        }
    }
    eprintln!(
        "otel: {} spans in one trace {xray}, {} metric series",
        spans.len(),
        otlp.len()
    );
}
