//! CloudWatch Embedded Metric Format (EMF): metrics as one JSON line per flush on stdout.
//!
//! CloudWatch extracts the metrics from the log line, so emitting them costs no API call and
//! no latency. The format is small and stable, and the Rust EMF crates either bring a global
//! recorder (hard to test per invocation) or a much larger API, so it is written here.
//! Limits of the format respected: at most 100 metrics per directive and 100 values per metric.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::LineSink;

/// EMF units used by this project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Bytes.
    Bytes,
    /// Seconds.
    Seconds,
}

impl Unit {
    fn as_str(&self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
            Unit::Seconds => "Seconds",
        }
    }
}

/// EMF allows at most 100 metrics per directive and 100 values per metric.
const MAX_METRICS: usize = 100;
const MAX_VALUES: usize = 100;

#[derive(Debug, Default)]
struct State {
    /// Counters are summed; other units keep each value (for percentiles).
    values: BTreeMap<String, (Unit, Vec<f64>)>,
    properties: Map<String, Value>,
}

/// A metrics buffer for one function, flushed once per invocation. Cheap to clone: adapters
/// built at cold start hold a clone and count their calls into the current invocation.
#[derive(Clone)]
pub struct Metrics {
    namespace: String,
    dimensions: Vec<(String, String)>,
    sink: Arc<dyn LineSink>,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics in `namespace` with the dimension set `dimensions`, written to `sink`.
    pub fn new(
        namespace: impl Into<String>,
        dimensions: Vec<(String, String)>,
        sink: Arc<dyn LineSink>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            dimensions,
            sink,
            state: Arc::default(),
        }
    }

    /// Adds `n` to the counter `name`.
    pub fn count(&self, name: &str, n: u64) {
        self.add(name, Unit::Count, n as f64);
    }

    /// Records a duration in milliseconds.
    pub fn duration_ms(&self, name: &str, ms: f64) {
        self.add(name, Unit::Milliseconds, ms);
    }

    /// Records a value; counts are summed, other units kept per value.
    pub fn add(&self, name: &str, unit: Unit, value: f64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = state
            .values
            .entry(name.to_owned())
            .or_insert_with(|| (unit, Vec::new()));
        match (unit, entry.1.first_mut()) {
            (Unit::Count, Some(sum)) => *sum += value,
            _ => entry.1.push(value),
        }
    }

    /// Adds a searchable property (not a dimension) to the next flush, such as the trace id.
    pub fn property(&self, key: &str, value: impl Into<Value>) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .properties
            .insert(key.to_owned(), value.into());
    }

    /// Writes everything recorded since the last flush as EMF lines, and clears it.
    pub fn flush(&self, now: DateTime<Utc>) {
        let state = std::mem::take(&mut *self.state.lock().unwrap_or_else(|p| p.into_inner()));
        if state.values.is_empty() {
            return;
        }
        let metrics: Vec<(String, Unit, Vec<f64>)> = state
            .values
            .into_iter()
            .flat_map(|(name, (unit, values))| {
                // A metric with more values than one line may hold is split over several lines.
                let chunks: Vec<Vec<f64>> =
                    values.chunks(MAX_VALUES).map(<[f64]>::to_vec).collect();
                chunks
                    .into_iter()
                    .map(move |chunk| (name.clone(), unit, chunk))
            })
            .collect();
        let mut lines: Vec<Vec<(String, Unit, Vec<f64>)>> = Vec::new();
        for metric in metrics {
            let fits = lines.last().is_some_and(|line| {
                line.len() < MAX_METRICS && !line.iter().any(|(n, _, _)| *n == metric.0)
            });
            if fits {
                if let Some(line) = lines.last_mut() {
                    line.push(metric);
                }
            } else {
                lines.push(vec![metric]);
            }
        }
        for line in lines {
            self.sink
                .write_line(&self.render(&line, &state.properties, now));
        }
    }

    fn render(
        &self,
        metrics: &[(String, Unit, Vec<f64>)],
        properties: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> String {
        let mut root = properties.clone();
        for (key, value) in &self.dimensions {
            root.insert(key.clone(), Value::String(value.clone()));
        }
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        for (name, _, values) in metrics {
            let value = match values.as_slice() {
                [single] => json!(single),
                many => json!(many),
            };
            root.insert(name.clone(), value);
        }
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": now.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": definitions,
                }],
            }),
        );
        Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Capture;

    #[test]
    fn flush_writes_valid_emf_and_clears() {
        let capture = Capture::new();
        let metrics = Metrics::new(
            "MusicTasks",
            vec![
                ("service".into(), "svc".into()),
                ("task".into(), "t".into()),
            ],
            Arc::new(capture.clone()),
        );
        metrics.count("MessagesProcessed", 2);
        metrics.count("MessagesProcessed", 3);
        metrics.duration_ms("MessageDuration", 1.5);
        metrics.duration_ms("MessageDuration", 2.5);
        metrics.property("traceId", "1-abc");
        metrics.flush(Utc::now());
        metrics.flush(Utc::now());
        let lines = capture.json();
        assert_eq!(lines.len(), 1, "second flush has nothing to write");
        let line = &lines[0];
        assert_eq!(line["MessagesProcessed"], json!(5.0));
        assert_eq!(line["MessageDuration"], json!([1.5, 2.5]));
        assert_eq!(line["service"], "svc");
        assert_eq!(line["traceId"], "1-abc");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "MusicTasks");
        assert_eq!(directive["Dimensions"], json!([["service", "task"]]));
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn more_than_a_hundred_metrics_or_values_split_lines() {
        let capture = Capture::new();
        let metrics = Metrics::new("ns", vec![], Arc::new(capture.clone()));
        for i in 0..150 {
            metrics.count(&format!("m{i:03}"), 1);
        }
        for i in 0..250 {
            metrics.duration_ms("d", f64::from(i));
        }
        metrics.flush(Utc::now());
        let lines = capture.json();
        assert!(lines.iter().all(|l| {
            l["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len()
                <= 100
        }));
        let durations: usize = lines
            .iter()
            .filter_map(|l| l["d"].as_array())
            .map(Vec::len)
            .sum();
        assert_eq!(durations, 250);
        let counters = lines
            .iter()
            .map(|l| {
                l.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| k.starts_with('m'))
                    .count()
            })
            .sum::<usize>();
        assert_eq!(counters, 150);
    }
}
