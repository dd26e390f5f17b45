//! Telemetry in one place: JSON logs in the shape of Lambda's JSON log format, CloudWatch
//! Embedded Metric Format metrics, X-Ray trace ids, errors to Sentry, and (when configured)
//! the metrics and spans over OTLP to an OpenTelemetry collector.
//!
//! Output goes through a [`LineSink`], stdout in production and a capture buffer in tests,
//! so tests can read exactly what an operator would see.

pub mod errors;
pub mod logs;
pub mod metrics;
pub mod otel;
pub mod prometheus;
pub mod trace;

use std::io::Write;
use std::sync::{Arc, Mutex};

pub use errors::{ErrorReporter, EventTags, MessageInput, Redactions, SentryConfig};
pub use logs::{
    JsonLogLayer, init, init_with_otel, init_with_sink, install_for_test,
    install_for_test_with_otel,
};
pub use metrics::{Metrics, Unit};
pub use otel::{Otel, OtelConfig};
pub use trace::TraceContext;

/// Where complete output lines go.
pub trait LineSink: Send + Sync {
    /// Writes one line (without its newline).
    fn write_line(&self, line: &str);
}

/// Standard output, where Lambda collects logs and EMF metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl LineSink for Stdout {
    fn write_line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        // A closed stdout cannot be reported anywhere else; dropping the line is all we can do.
        let _ = writeln!(out, "{line}");
    }
}

/// Appends lines to a file (the local runner's telemetry log).
#[derive(Debug)]
pub struct FileSink(Mutex<std::fs::File>);

impl FileSink {
    /// Appends to the file at `path`, creating it.
    pub fn append(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self(Mutex::new(file)))
    }
}

impl LineSink for FileSink {
    fn write_line(&self, line: &str) {
        let mut file = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Telemetry must never fail the work; a full disk loses log lines, not messages.
        let _ = writeln!(file, "{line}");
    }
}

/// Keeps every line in memory: for tests and for the CLI's summaries.
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every line written so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every line parsed as JSON (lines that are not JSON are skipped).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Everything written, as one text.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }
}

impl LineSink for Capture {
    fn write_line(&self, line: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line.to_owned());
    }
}
