//! OpenTelemetry over OTLP/HTTP (protobuf), off unless configured by the standard `OTEL_*`
//! variables: the EMF metrics again as OpenTelemetry instruments, and the harness's `tracing`
//! spans as OpenTelemetry spans with X-Ray ids.
//!
//! Honoured variables: `OTEL_SDK_DISABLED` (`true` turns everything off);
//! `OTEL_METRICS_EXPORTER` and `OTEL_TRACES_EXPORTER` (`otlp` or `none`); an endpoint
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the per-signal `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns its signals on unless their exporter is `none`;
//! `OTEL_EXPORTER_OTLP_PROTOCOL` must be `http/protobuf` if set; `OTEL_SERVICE_NAME`;
//! `OTEL_EXPORTER_OTLP_HEADERS` is read by the exporter itself. The default endpoint is
//! `http://localhost:4318`, the ADOT Lambda layer's collector.
//!
//! Metrics: an [`OtlpSink`] sits in front of the usual sink and records every EMF line through
//! [`super::prometheus::parse_emf_line`], the mapping `/metrics` uses, with cumulative
//! temporality: after the collector's Prometheus translation (unit suffix, `_total` on
//! monotonic sums) the names and labels are those of `tasks serve`'s `/metrics`.
//!
//! Traces: the X-Ray id generator and propagator, so trace ids are X-Ray ids and a span's
//! context travels as an `X-Amzn-Trace-Id` header (the SQS `AWSTraceHeader` attribute).
//!
//! Lambda freezes the process between invocations: [`Otel::flush`] sends everything before an
//! invocation returns. Unconfigured, nothing is built: no exporter, no thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _};
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TracerProvider as _};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::registry::LookupSpan;

use super::LineSink;
use super::prometheus::{EmfSample, Kind, parse_emf_line};
use crate::config::{ConfigError, EnvSource, optional};

/// Where the ADOT collector listens in Lambda (the layer's OTLP/HTTP receiver).
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

/// What the `OTEL_*` variables switch on, and where to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelConfig {
    /// The full URL metrics are posted to (`.../v1/metrics`), when metrics are on.
    pub metrics_endpoint: Option<String>,
    /// The full URL spans are posted to (`.../v1/traces`), when traces are on.
    pub traces_endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME`, if set.
    pub service_name: Option<String>,
}

/// Why the OpenTelemetry pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// An OTLP exporter refused its configuration.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

impl OtelConfig {
    /// Reads the `OTEL_*` variables; `None` when neither metrics nor traces are switched on.
    pub fn from_env(env: &dyn EnvSource) -> Result<Option<Self>, ConfigError> {
        if optional(env, "OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some(protocol) = optional(env, "OTEL_EXPORTER_OTLP_PROTOCOL")
            && protocol != "http/protobuf"
        {
            return Err(ConfigError::Malformed {
                name: "OTEL_EXPORTER_OTLP_PROTOCOL",
                reason: "only http/protobuf is supported".into(),
            });
        }
        let base = optional(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
        let metrics_endpoint = signal(
            (
                "OTEL_METRICS_EXPORTER",
                optional(env, "OTEL_METRICS_EXPORTER"),
            ),
            optional(env, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
            base.as_deref(),
            "v1/metrics",
        )?;
        let traces_endpoint = signal(
            (
                "OTEL_TRACES_EXPORTER",
                optional(env, "OTEL_TRACES_EXPORTER"),
            ),
            optional(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            base.as_deref(),
            "v1/traces",
        )?;
        if metrics_endpoint.is_none() && traces_endpoint.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            metrics_endpoint,
            traces_endpoint,
            service_name: optional(env, "OTEL_SERVICE_NAME"),
        }))
    }
}

/// The endpoint of one signal, if it is on: from its exporter variable (name, value), its
/// own endpoint, or the base endpoint with the signal's path.
fn signal(
    (exporter_var, exporter): (&'static str, Option<String>),
    endpoint: Option<String>,
    base: Option<&str>,
    path: &str,
) -> Result<Option<String>, ConfigError> {
    let on = match exporter.as_deref() {
        Some("otlp") => true,
        Some("none") => false,
        Some(_) => {
            return Err(ConfigError::Malformed {
                name: exporter_var,
                reason: "expected otlp or none".into(),
            });
        }
        None => base.is_some() || endpoint.is_some(),
    };
    if !on {
        return Ok(None);
    }
    Ok(Some(endpoint.unwrap_or_else(|| {
        format!(
            "{}/{path}",
            base.unwrap_or(DEFAULT_ENDPOINT).trim_end_matches('/')
        )
    })))
}

/// The resource of a function (OTel FaaS semantic conventions), from the Lambda environment:
/// `service.name`, `service.version`, `faas.name`, `faas.version`, `faas.instance`,
/// `faas.max_memory` (bytes), `cloud.provider`, `cloud.region`, `cloud.platform`.
pub fn lambda_resource(
    env: &dyn EnvSource,
    config: &OtelConfig,
    task: &str,
    version: &str,
) -> Resource {
    let function = optional(env, "AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| task.to_owned());
    let mut attributes = vec![
        KeyValue::new(
            "service.name",
            config
                .service_name
                .clone()
                .unwrap_or_else(|| task.to_owned()),
        ),
        KeyValue::new("service.version", version.to_owned()),
        KeyValue::new("faas.name", function),
        KeyValue::new(
            "faas.version",
            optional(env, "AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_else(|| "$LATEST".into()),
        ),
        KeyValue::new("cloud.provider", "aws"),
        KeyValue::new("cloud.platform", "aws_lambda"),
    ];
    if let Some(instance) = optional(env, "AWS_LAMBDA_LOG_STREAM_NAME") {
        attributes.push(KeyValue::new("faas.instance", instance));
    }
    if let Some(mb) =
        optional(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|v| v.parse::<i64>().ok())
    {
        attributes.push(KeyValue::new("faas.max_memory", mb * 1024 * 1024));
    }
    if let Some(region) = optional(env, "AWS_REGION") {
        attributes.push(KeyValue::new("cloud.region", region));
    }
    Resource::builder_empty()
        .with_attributes(attributes)
        .build()
}

/// The running OpenTelemetry pipeline: a meter provider, a tracer provider, or both.
pub struct Otel {
    meters: Option<SdkMeterProvider>,
    tracers: Option<SdkTracerProvider>,
    instruments: Option<Arc<Instruments>>,
}

impl std::fmt::Debug for Otel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Otel")
            .field("metrics", &self.meters.is_some())
            .field("traces", &self.tracers.is_some())
            .finish()
    }
}

impl Otel {
    /// The exporters the `OTEL_*` variables of `env` switch on for the function `task` at
    /// `version`, with its Lambda resource; `None` when they switch nothing on.
    pub fn from_env(
        env: &dyn EnvSource,
        task: &str,
        version: &str,
    ) -> Result<Option<Arc<Self>>, ConfigError> {
        let Some(config) = OtelConfig::from_env(env)? else {
            return Ok(None);
        };
        let resource = lambda_resource(env, &config, task, version);
        let otel = Self::start(&config, resource).map_err(|err| ConfigError::Malformed {
            name: "OTEL_EXPORTER_OTLP_ENDPOINT",
            reason: err.to_string(),
        })?;
        Ok(Some(Arc::new(otel)))
    }

    /// Builds the exporters `config` switches on, with `resource` on everything they send.
    pub fn start(config: &OtelConfig, resource: Resource) -> Result<Self, OtelError> {
        let meters = match &config.metrics_endpoint {
            None => None,
            Some(endpoint) => {
                let exporter = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(endpoint.clone())
                    // Prometheus (remote write) needs cumulative sums and histograms.
                    .with_temporality(Temporality::Cumulative)
                    .build()
                    .map_err(|err| OtelError::Exporter(err.to_string()))?;
                Some(
                    SdkMeterProvider::builder()
                        .with_resource(resource.clone())
                        .with_reader(PeriodicReader::builder(exporter).build())
                        .build(),
                )
            }
        };
        let tracers = match &config.traces_endpoint {
            None => None,
            Some(endpoint) => {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(endpoint.clone())
                    .build()
                    .map_err(|err| OtelError::Exporter(err.to_string()))?;
                Some(
                    SdkTracerProvider::builder()
                        .with_resource(resource)
                        .with_id_generator(XrayIdGenerator::default())
                        .with_batch_exporter(exporter)
                        .build(),
                )
            }
        };
        let instruments = meters.as_ref().map(|provider| {
            Arc::new(Instruments {
                meter: provider.meter("backbone"),
                known: Mutex::default(),
            })
        });
        Ok(Self {
            meters,
            tracers,
            instruments,
        })
    }

    /// Whether spans are exported.
    pub fn traces_on(&self) -> bool {
        self.tracers.is_some()
    }

    /// `inner`, and every EMF line also recorded as OpenTelemetry metrics when metrics are on.
    pub fn metrics_sink(&self, inner: Arc<dyn LineSink>) -> Arc<dyn LineSink> {
        match &self.instruments {
            None => inner,
            Some(instruments) => Arc::new(OtlpSink {
                inner,
                instruments: instruments.clone(),
            }),
        }
    }

    /// The `tracing` layer exporting spans, when traces are on.
    pub fn layer<S>(
        &self,
    ) -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        self.tracers
            .as_ref()
            .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("backbone")))
    }

    /// Exports everything recorded so far (blocking: call it off the async workers). Failures
    /// are logged, never returned: telemetry must not fail the work.
    pub fn flush(&self) {
        if let Some(provider) = &self.tracers
            && let Err(err) = provider.force_flush()
        {
            tracing::warn!(error = %err, "OTLP spans not sent");
        }
        if let Some(provider) = &self.meters
            && let Err(err) = provider.force_flush()
        {
            tracing::warn!(error = %err, "OTLP metrics not sent");
        }
    }
}

/// The instruments made so far, by Prometheus name.
struct Instruments {
    meter: Meter,
    known: Mutex<HashMap<String, Instrument>>,
}

#[derive(Clone)]
enum Instrument {
    Counter(Counter<f64>),
    Histogram(Histogram<f64>),
    Gauge(Gauge<f64>),
}

impl Instruments {
    fn record(&self, sample: &EmfSample) {
        let instrument = {
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            known
                .entry(sample.name.clone())
                .or_insert_with(|| self.make(sample))
                .clone()
        };
        let attributes: Vec<KeyValue> = sample
            .labels
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        for &value in &sample.values {
            match (&instrument, sample.kind) {
                // A negative count would make a counter go back: never recorded (as /metrics).
                (Instrument::Counter(counter), Kind::Counter) if value >= 0.0 => {
                    counter.add(value, &attributes);
                }
                (Instrument::Histogram(histogram), Kind::Histogram) => {
                    histogram.record(value, &attributes);
                }
                (Instrument::Gauge(gauge), Kind::Gauge) => gauge.record(value, &attributes),
                // The metric changed its kind (its unit): skipped, as /metrics does.
                _ => {}
            }
        }
    }

    fn make(&self, sample: &EmfSample) -> Instrument {
        let (name, unit) = sample.otel_name_and_unit();
        let description = format!("{} ({}), as written in EMF", sample.emf_name, sample.unit);
        match sample.kind {
            Kind::Counter => Instrument::Counter(
                self.meter
                    .f64_counter(name)
                    .with_unit(unit)
                    .with_description(description)
                    .build(),
            ),
            Kind::Histogram => Instrument::Histogram(
                self.meter
                    .f64_histogram(name)
                    .with_unit(unit)
                    .with_description(description)
                    .with_boundaries(sample.buckets.to_vec())
                    .build(),
            ),
            Kind::Gauge => Instrument::Gauge(
                self.meter
                    .f64_gauge(name)
                    .with_unit(unit)
                    .with_description(description)
                    .build(),
            ),
        }
    }
}

/// A sink that passes every line on and records EMF lines as OpenTelemetry metrics.
struct OtlpSink {
    inner: Arc<dyn LineSink>,
    instruments: Arc<Instruments>,
}

impl LineSink for OtlpSink {
    fn write_line(&self, line: &str) {
        self.inner.write_line(line);
        if let Some(samples) = parse_emf_line(line) {
            for sample in &samples {
                self.instruments.record(sample);
            }
        }
    }
}

/// The span context an X-Ray header names, if it has a valid root and parent.
pub fn context_from_header(header: &str) -> Option<SpanContext> {
    opentelemetry_aws::trace::xray_propagator::span_context_from_str(header)
        .filter(SpanContext::is_valid)
}

/// Makes `span` a child of the span the X-Ray `header` names (a remote parent); `false` if the
/// header names no span or `span` is not exported.
pub fn set_parent_from_header(span: &tracing::Span, header: &str) -> bool {
    let Some(parent) = context_from_header(header) else {
        return false;
    };
    let cx = opentelemetry::Context::new().with_remote_span_context(parent);
    span.set_parent(cx).is_ok()
}

/// The X-Ray header of `span`'s OpenTelemetry context (`Root=...;Parent=<span>;Sampled=...`),
/// to carry it on; `None` when the span is not exported.
pub fn header_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let context = cx.span().span_context().clone();
    if !context.is_valid() {
        return None;
    }
    opentelemetry_aws::trace::xray_propagator::span_context_to_string(&context)
}

/// Sets an OpenTelemetry-only attribute on `span` (not a log field).
pub fn set_attribute(span: &tracing::Span, key: &'static str, value: impl Into<String>) {
    span.set_attribute(key, value.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Threads of this process whose name starts with `prefix`.
    fn threads(prefix: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .filter_map(Result::ok)
                    .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                    .filter(|name| name.starts_with(prefix))
                    .count()
            })
            .unwrap_or(0)
    }

    #[test]
    fn off_unless_configured_and_standard_variables_switch_signals() {
        assert_eq!(OtelConfig::from_env(&env(&[])).unwrap(), None);
        assert_eq!(
            OtelConfig::from_env(&env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                ("OTEL_SDK_DISABLED", "true"),
            ]))
            .unwrap(),
            None
        );
        let both = OtelConfig::from_env(&env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318/",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(
            both.metrics_endpoint.as_deref(),
            Some("http://127.0.0.1:4318/v1/metrics")
        );
        assert_eq!(
            both.traces_endpoint.as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        let metrics_only = OtelConfig::from_env(&env(&[("OTEL_METRICS_EXPORTER", "otlp")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            metrics_only.metrics_endpoint.as_deref(),
            Some("http://localhost:4318/v1/metrics"),
            "the ADOT layer's collector by default"
        );
        assert_eq!(metrics_only.traces_endpoint, None);
        let traces_only = OtelConfig::from_env(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:4318/t"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(traces_only.metrics_endpoint, None);
        assert_eq!(
            traces_only.traces_endpoint.as_deref(),
            Some("http://other:4318/t")
        );
        assert!(matches!(
            OtelConfig::from_env(&env(&[("OTEL_TRACES_EXPORTER", "jaeger")])),
            Err(ConfigError::Malformed {
                name: "OTEL_TRACES_EXPORTER",
                ..
            })
        ));
        assert!(matches!(
            OtelConfig::from_env(&env(&[
                ("OTEL_METRICS_EXPORTER", "otlp"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            ])),
            Err(ConfigError::Malformed {
                name: "OTEL_EXPORTER_OTLP_PROTOCOL",
                ..
            })
        ));
    }

    #[test]
    fn no_background_thread_until_configured() {
        // Unconfigured, nothing is built; the harness and cold start hold `None`.
        assert!(OtelConfig::from_env(&env(&[])).unwrap().is_none());
        assert_eq!(threads("OpenTelemetry"), 0);
        // Configured, the exporters run their own threads: the check above can fail.
        let config = OtelConfig::from_env(&env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:9",
        )]))
        .unwrap()
        .unwrap();
        let otel = Otel::start(&config, Resource::builder_empty().build()).unwrap();
        // A thread names itself once it runs: wait for it.
        let mut named = 0;
        for _ in 0..100 {
            named = threads("OpenTelemetry");
            if named >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(named >= 2, "span and metric export threads: {named}");
        drop(otel);
    }
}
