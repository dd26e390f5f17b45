//! JSON logs, one object per line, in the shape of Lambda's JSON log format
//! (`timestamp`, `level`, `message`, `requestId`, ...).
//!
//! Fields of the enclosing spans are lifted to the top level, so a log line written deep in a
//! task still carries `requestId`, `traceId`, `task`, `version` and `messageId` without the
//! task passing them around.

use std::fmt;
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::{LineSink, Stdout};
use crate::config::{ConfigError, EnvSource, optional};

/// The fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(
            field.name().to_owned(),
            Value::from(crate::error::chain(value)),
        );
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// The `tracing` layer that writes JSON lines to a [`LineSink`].
pub struct JsonLogLayer {
    sink: Arc<dyn LineSink>,
}

impl JsonLogLayer {
    /// A layer writing to `sink`.
    pub fn new(sink: Arc<dyn LineSink>) -> Self {
        Self { sink }
    }
}

impl<S> Layer<S> for JsonLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::from(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        line.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.clone());
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        line.insert("logger".into(), Value::from(event.metadata().target()));
        self.sink.write_line(&Value::Object(line).to_string());
    }
}

/// The log filter: `RUST_LOG` if set (full directive syntax), else the level in
/// `POWERTOOLS_LOG_LEVEL` or `AWS_LAMBDA_LOG_LEVEL` (`DEBUG`, `INFO`, `WARN`/`WARNING`, `ERROR`),
/// else `INFO`.
pub fn filter_from_env(env: &dyn EnvSource) -> Result<EnvFilter, ConfigError> {
    if let Some(directives) = optional(env, "RUST_LOG") {
        return EnvFilter::try_new(&directives).map_err(|err| ConfigError::Malformed {
            name: "RUST_LOG",
            reason: err.to_string(),
        });
    }
    for name in ["POWERTOOLS_LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"] {
        if let Some(level) = optional(env, name) {
            let level = match level.to_ascii_uppercase().as_str() {
                "TRACE" => "trace",
                "DEBUG" => "debug",
                "INFO" => "info",
                "WARN" | "WARNING" => "warn",
                "ERROR" | "CRITICAL" | "FATAL" => "error",
                _ => {
                    return Err(ConfigError::Malformed {
                        name,
                        reason: "expected DEBUG, INFO, WARN or ERROR".into(),
                    });
                }
            };
            return Ok(EnvFilter::new(level));
        }
    }
    Ok(EnvFilter::new("info"))
}

/// Installs the JSON logger on stdout as the global subscriber (once, at cold start).
pub fn init(env: &dyn EnvSource) -> Result<(), ConfigError> {
    init_with_sink(env, Arc::new(Stdout))
}

/// Installs the JSON logger on `sink` as the global subscriber.
pub fn init_with_sink(env: &dyn EnvSource, sink: Arc<dyn LineSink>) -> Result<(), ConfigError> {
    init_with_otel(env, sink, None)
}

/// Installs the JSON logger on `sink` as the global subscriber, and the span export of `otel`
/// when its traces are on.
pub fn init_with_otel(
    env: &dyn EnvSource,
    sink: Arc<dyn LineSink>,
    otel: Option<&super::Otel>,
) -> Result<(), ConfigError> {
    let filter = filter_from_env(env)?;
    // A second call (tests, the CLI running several functions) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(JsonLogLayer::new(sink))
        .with(otel.and_then(super::Otel::layer))
        .try_init();
    Ok(())
}

/// Routes this thread's logs to `sink` at `level` until the guard drops: for tests that read
/// the log output.
pub fn install_for_test(sink: Arc<dyn LineSink>, level: &str) -> tracing::subscriber::DefaultGuard {
    install_for_test_with_otel(sink, level, None)
}

/// As [`install_for_test`], with the span export of `otel` when its traces are on: for tests
/// that read the exported spans.
pub fn install_for_test_with_otel(
    sink: Arc<dyn LineSink>,
    level: &str,
    otel: Option<&super::Otel>,
) -> tracing::subscriber::DefaultGuard {
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new(level))
        .with(JsonLogLayer::new(sink))
        .with(otel.and_then(super::Otel::layer));
    tracing::subscriber::set_default(subscriber)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Capture;
    use std::collections::HashMap;

    #[test]
    fn span_fields_are_lifted_and_levels_filtered() {
        let capture = Capture::new();
        let _guard = install_for_test(Arc::new(capture.clone()), "info");
        let span = tracing::info_span!("invocation", requestId = "req-1", task = "t");
        let _entered = span.enter();
        let message = tracing::info_span!("message", messageId = "m-1");
        let _in_message = message.enter();
        tracing::info!(count = 3, "processed");
        tracing::debug!("hidden");
        let lines = capture.json();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["message"], "processed");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["requestId"], "req-1");
        assert_eq!(line["messageId"], "m-1");
        assert_eq!(line["count"], 3);
    }

    #[test]
    fn log_level_variables() {
        let env: HashMap<&str, &str> = [("POWERTOOLS_LOG_LEVEL", "WARNING")].into();
        assert_eq!(filter_from_env(&env).unwrap().to_string(), "warn");
        let env: HashMap<&str, &str> = [("POWERTOOLS_LOG_LEVEL", "LOUD")].into();
        assert!(matches!(
            filter_from_env(&env),
            Err(ConfigError::Malformed {
                name: "POWERTOOLS_LOG_LEVEL",
                ..
            })
        ));
    }
}
