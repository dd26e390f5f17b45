//! The EMF metrics again, as Prometheus text exposition (format 0.0.4), for `tasks serve`.
//!
//! A [`RecordingSink`] sits in front of the usual sink: every line still goes where it went,
//! and each EMF line is also read back into a [`Registry`], so `/metrics` shows exactly what
//! the functions wrote as EMF, whatever wrote it (harness, adapters, tasks). Names follow the
//! Prometheus conventions: snake_case, the base unit as a suffix (milliseconds become
//! `_seconds`), `_total` on counters; the EMF dimensions (service, task) become labels.
//!
//! The exposition is written here rather than with a client crate: the EMF side already
//! decides what a metric is, and the text format is small (one `# HELP`, one `# TYPE` and the
//! samples of each family).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::LineSink;

/// Upper bounds (seconds) of the histogram buckets of EMF time metrics: Prometheus' defaults,
/// stretched to the minutes a track analysis or a rate-limited plan can take.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

/// Upper bounds (bytes) of the histogram buckets of EMF byte metrics: 1 KiB to 1 GiB by 4.
pub const BYTES_BUCKETS: &[f64] = &[
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
];

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (EMF `Count`).
    Counter,
    /// Observations in buckets (EMF time and byte units).
    Histogram,
    /// A value that is set (other EMF units, and the service's own gauges).
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
            Kind::Gauge => "gauge",
        }
    }
}

/// Label pairs, sorted by name.
type Labels = Vec<(String, String)>;

#[derive(Debug, Clone)]
enum Series {
    Counter(f64),
    Histogram {
        bounds: &'static [f64],
        /// Non-cumulative counts per bucket; the last is `+Inf`.
        buckets: Vec<u64>,
        sum: f64,
        count: u64,
    },
    Gauge(f64),
}

#[derive(Debug)]
struct Family {
    kind: Kind,
    help: String,
    series: BTreeMap<Labels, Series>,
}

/// How an EMF unit maps to a Prometheus family: its kind, the suffix of its name, the factor
/// to the base unit, and the buckets of a histogram.
struct UnitMapping {
    kind: Kind,
    suffix: &'static str,
    factor: f64,
    buckets: &'static [f64],
}

fn unit_mapping(unit: &str) -> UnitMapping {
    let (kind, suffix, factor, buckets) = match unit {
        "Count" => (Kind::Counter, "", 1.0, &[][..]),
        "Milliseconds" => (Kind::Histogram, "seconds", 1e-3, SECONDS_BUCKETS),
        "Microseconds" => (Kind::Histogram, "seconds", 1e-6, SECONDS_BUCKETS),
        "Seconds" => (Kind::Histogram, "seconds", 1.0, SECONDS_BUCKETS),
        "Bytes" => (Kind::Histogram, "bytes", 1.0, BYTES_BUCKETS),
        "Percent" => (Kind::Gauge, "percent", 1.0, &[][..]),
        _ => (Kind::Gauge, "", 1.0, &[][..]),
    };
    UnitMapping {
        kind,
        suffix,
        factor,
        buckets,
    }
}

/// `MessagesCompleted` as `messages_completed`, `AwsApiCalls` as `aws_api_calls`,
/// `HTTPErrors` as `http_errors`: snake_case from an EMF (CamelCase) name; anything outside
/// `[a-zA-Z0-9_]` becomes `_`, and a leading digit gets a `_` before it.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// The Prometheus name of the EMF metric `name` in `unit`: snake_case, the unit's base-unit
/// suffix (`_seconds`, `_bytes`), and `_total` for a counter.
pub fn metric_name(name: &str, unit: &str) -> String {
    let mapping = unit_mapping(unit);
    let mut out = snake_case(name);
    if !mapping.suffix.is_empty() && !out.ends_with(&format!("_{}", mapping.suffix)) {
        out.push('_');
        out.push_str(mapping.suffix);
    }
    if mapping.kind == Kind::Counter && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

fn label_name(name: &str) -> String {
    let mut out = snake_case(name);
    // `le` belongs to histogram buckets and `__` names are reserved.
    if out == "le" || out.starts_with("__") {
        out.insert_str(0, "dimension_");
    }
    out
}

/// The values of one EMF metric on one line, mapped to its Prometheus family: what both
/// `/metrics` ([`Registry`]) and the OTLP export ([`super::otel`]) record, so the two cannot
/// name or label a metric differently.
#[derive(Debug, Clone, PartialEq)]
pub struct EmfSample {
    /// The Prometheus name (`messages_completed_total`, `message_duration_seconds`).
    pub name: String,
    /// The name as written in EMF (`MessagesCompleted`).
    pub emf_name: String,
    /// The EMF unit (`Count`, `Milliseconds`).
    pub unit: String,
    /// Counter, histogram or gauge.
    pub kind: Kind,
    /// The EMF dimensions as labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// The values in the base unit (seconds, bytes).
    pub values: Vec<f64>,
    /// The histogram's bucket bounds (empty for other kinds).
    pub buckets: &'static [f64],
}

impl EmfSample {
    /// The OpenTelemetry instrument name and unit (UCUM) that the collector's Prometheus
    /// translation (unit suffix, `_total` on monotonic sums) turns back into [`Self::name`]:
    /// the name without `_total`, and `s`, `By` or `%` for the seconds, bytes and percent
    /// suffixes.
    pub fn otel_name_and_unit(&self) -> (String, &'static str) {
        let unit = match unit_mapping(&self.unit).suffix {
            "seconds" => "s",
            "bytes" => "By",
            "percent" => "%",
            _ => "",
        };
        let name = match self.kind {
            Kind::Counter => self
                .name
                .strip_suffix("_total")
                .unwrap_or(&self.name)
                .to_owned(),
            _ => self.name.clone(),
        };
        (name, unit)
    }
}

/// Reads one output line as EMF; `None` if it is not an EMF line (a log line, broken JSON).
pub fn parse_emf_line(line: &str) -> Option<Vec<EmfSample>> {
    // Most lines are logs: skip them before parsing.
    if !line.contains("\"_aws\"") {
        return None;
    }
    let root = serde_json::from_str::<Value>(line).ok()?;
    let directives = root
        .pointer("/_aws/CloudWatchMetrics")
        .and_then(Value::as_array)?;
    let mut samples = Vec::new();
    for directive in directives {
        let mut labels: Labels = Vec::new();
        for set in directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
        {
            for key in set.iter().filter_map(Value::as_str) {
                let value = match root.get(key) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let name = label_name(key);
                if !labels.iter().any(|(n, _)| *n == name) {
                    labels.push((name, value));
                }
            }
        }
        labels.sort();
        for definition in directive
            .get("Metrics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(emf_name) = definition.get("Name").and_then(Value::as_str) else {
                continue;
            };
            let unit = definition
                .get("Unit")
                .and_then(Value::as_str)
                .unwrap_or("None");
            let mapping = unit_mapping(unit);
            let values: Vec<f64> = match root.get(emf_name) {
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_f64).collect(),
                Some(v) => v.as_f64().into_iter().collect(),
                None => Vec::new(),
            };
            if values.is_empty() {
                continue;
            }
            samples.push(EmfSample {
                name: metric_name(emf_name, unit),
                emf_name: emf_name.to_owned(),
                unit: unit.to_owned(),
                kind: mapping.kind,
                labels: labels.clone(),
                values: values.into_iter().map(|v| v * mapping.factor).collect(),
                buckets: mapping.buckets,
            });
        }
    }
    Some(samples)
}

/// The metrics `/metrics` exposes: the EMF lines read back, and gauges the service sets.
/// Counters only go up; every method takes the lock once, so a scrape sees one consistent
/// state.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<String, Family>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one output line; if it is an EMF line, records its metrics and returns `true`.
    /// Any other line (a log line, malformed JSON) is ignored.
    pub fn record_line(&self, line: &str) -> bool {
        let Some(samples) = parse_emf_line(line) else {
            return false;
        };
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        for sample in samples {
            let family = families
                .entry(sample.name.clone())
                .or_insert_with(|| Family {
                    kind: sample.kind,
                    help: format!("{} ({}), as written in EMF", sample.emf_name, sample.unit),
                    series: BTreeMap::new(),
                });
            if family.kind != sample.kind {
                tracing::warn!(
                    metric = %sample.name,
                    unit = %sample.unit,
                    "an EMF metric changed its unit; its new values are not exposed"
                );
                continue;
            }
            let series = family
                .series
                .entry(sample.labels.clone())
                .or_insert_with(|| match sample.kind {
                    Kind::Counter => Series::Counter(0.0),
                    Kind::Gauge => Series::Gauge(0.0),
                    Kind::Histogram => Series::Histogram {
                        bounds: sample.buckets,
                        buckets: vec![0; sample.buckets.len() + 1],
                        sum: 0.0,
                        count: 0,
                    },
                });
            for value in sample.values {
                match series {
                    // A negative count would make a counter go back: never recorded.
                    Series::Counter(total) if value >= 0.0 => *total += value,
                    Series::Counter(_) => {}
                    Series::Gauge(current) => *current = value,
                    Series::Histogram {
                        bounds,
                        buckets,
                        sum,
                        count,
                    } => {
                        let slot = bounds
                            .iter()
                            .position(|bound| value <= *bound)
                            .unwrap_or(bounds.len());
                        buckets[slot] += 1;
                        *sum += value;
                        *count += 1;
                    }
                }
            }
        }
        true
    }

    /// Sets the gauge `name` with `labels` to `value` (the family is created with `help`).
    pub fn set_gauge(&self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let mut labels: Labels = labels
            .iter()
            .map(|(k, v)| (label_name(k), (*v).to_owned()))
            .collect();
        labels.sort();
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name.to_owned()).or_insert_with(|| Family {
            kind: Kind::Gauge,
            help: help.to_owned(),
            series: BTreeMap::new(),
        });
        if family.kind == Kind::Gauge {
            family.series.insert(labels, Series::Gauge(value));
        }
    }

    /// Every family in the text exposition format 0.0.4 (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            if family.series.is_empty() {
                continue;
            }
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            for (labels, series) in &family.series {
                match series {
                    Series::Counter(v) | Series::Gauge(v) => {
                        let _ =
                            writeln!(out, "{name}{} {}", render_labels(labels, None), float(*v));
                    }
                    Series::Histogram {
                        bounds,
                        buckets,
                        sum,
                        count,
                    } => {
                        let mut cumulative = 0;
                        for (i, n) in buckets.iter().enumerate() {
                            cumulative += n;
                            let le = bounds
                                .get(i)
                                .map_or_else(|| "+Inf".to_owned(), |b| float(*b));
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {cumulative}",
                                render_labels(labels, Some(&le))
                            );
                        }
                        let plain = render_labels(labels, None);
                        let _ = writeln!(out, "{name}_sum{plain} {}", float(*sum));
                        let _ = writeln!(out, "{name}_count{plain} {count}");
                    }
                }
            }
        }
        out
    }
}

/// A sink that passes every line on to `inner` and records the EMF lines in a [`Registry`].
pub struct RecordingSink {
    inner: Arc<dyn LineSink>,
    registry: Arc<Registry>,
}

impl RecordingSink {
    /// Lines go to `inner`; EMF lines are also recorded in `registry`.
    pub fn new(inner: Arc<dyn LineSink>, registry: Arc<Registry>) -> Self {
        Self { inner, registry }
    }
}

impl LineSink for RecordingSink {
    fn write_line(&self, line: &str) {
        self.inner.write_line(line);
        self.registry.record_line(line);
    }
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Capture, Metrics};
    use chrono::Utc;

    fn recorded() -> (Arc<Registry>, Metrics, Capture) {
        let registry = Arc::new(Registry::new());
        let capture = Capture::new();
        let sink = Arc::new(RecordingSink::new(
            Arc::new(capture.clone()),
            registry.clone(),
        ));
        let metrics = Metrics::new(
            "MusicTasks",
            vec![
                ("service".into(), "svc".into()),
                ("task".into(), "data-sync".into()),
            ],
            sink,
        );
        (registry, metrics, capture)
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        assert_eq!(
            metric_name("MessagesCompleted", "Count"),
            "messages_completed_total"
        );
        assert_eq!(metric_name("AwsApiCalls", "Count"), "aws_api_calls_total");
        assert_eq!(metric_name("HTTPErrors", "Count"), "http_errors_total");
        assert_eq!(
            metric_name("MessageDuration", "Milliseconds"),
            "message_duration_seconds"
        );
        assert_eq!(metric_name("FetchedBytes", "Bytes"), "fetched_bytes");
        assert_eq!(metric_name("Requests_total", "Count"), "requests_total");
        assert_eq!(metric_name("2xx.Rate", "None"), "_2xx_rate");
        assert_eq!(
            snake_case("SpotifyRefreshTokenRotated"),
            "spotify_refresh_token_rotated"
        );
    }

    #[test]
    fn emf_counts_and_durations_become_counters_and_histograms() {
        let (registry, metrics, capture) = recorded();
        metrics.count("MessagesCompleted", 2);
        metrics.duration_ms("MessageDuration", 3.0);
        metrics.duration_ms("MessageDuration", 2000.0);
        metrics.flush(Utc::now());
        metrics.count("MessagesCompleted", 3);
        metrics.flush(Utc::now());
        assert_eq!(
            capture.lines().len(),
            2,
            "the EMF lines still reach the sink"
        );
        let text = registry.render();
        assert!(
            text.contains("# TYPE messages_completed_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("messages_completed_total{service=\"svc\",task=\"data-sync\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE message_duration_seconds histogram\n"),
            "{text}"
        );
        let bucket = |le: &str| {
            format!(
                "message_duration_seconds_bucket{{service=\"svc\",task=\"data-sync\",le=\"{le}\"}} "
            )
        };
        assert!(text.contains(&format!("{}1\n", bucket("0.005"))), "{text}");
        assert!(text.contains(&format!("{}1\n", bucket("1"))), "{text}");
        assert!(text.contains(&format!("{}2\n", bucket("2.5"))), "{text}");
        assert!(text.contains(&format!("{}2\n", bucket("+Inf"))), "{text}");
        assert!(
            text.contains(
                "message_duration_seconds_sum{service=\"svc\",task=\"data-sync\"} 2.003\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("message_duration_seconds_count{service=\"svc\",task=\"data-sync\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn log_lines_and_broken_json_are_ignored() {
        let registry = Registry::new();
        assert!(!registry.record_line(r#"{"level":"INFO","message":"hello"}"#));
        assert!(!registry.record_line(r#"{"_aws": not json"#));
        assert!(!registry.record_line(r#"{"_aws": {"Timestamp": 1}}"#));
        assert_eq!(registry.render(), "");
    }

    #[test]
    fn label_values_are_escaped_and_negative_counts_never_lower_a_counter() {
        let registry = Registry::new();
        let line = serde_json::json!({
            "task": "a\"b\\c\nd",
            "N": 4,
            "_aws": {"Timestamp": 0, "CloudWatchMetrics": [{
                "Namespace": "x", "Dimensions": [["task"]], "Metrics": [{"Name": "N", "Unit": "Count"}]
            }]}
        });
        assert!(registry.record_line(&line.to_string()));
        let mut lower = line.clone();
        lower["N"] = serde_json::json!(-10);
        registry.record_line(&lower.to_string());
        let text = registry.render();
        assert!(text.contains(r#"n_total{task="a\"b\\c\nd"} 4"#), "{text}");
    }

    #[test]
    fn gauges_are_set_not_summed() {
        let registry = Registry::new();
        registry.set_gauge("queue_messages", "Queued", &[("task", "t")], 3.0);
        registry.set_gauge("queue_messages", "Queued", &[("task", "t")], 1.0);
        let text = registry.render();
        assert_eq!(
            text,
            "# HELP queue_messages Queued\n# TYPE queue_messages gauge\nqueue_messages{task=\"t\"} 1\n"
        );
    }
}
