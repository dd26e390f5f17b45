//! The task: inputs, outputs and the run over the ports.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use tracing::info;

use backbone::error::{Classify, ErrorClass, PortError};
use backbone::harness::{Cx, Task};
use backbone::ports::{
    BusEvent, EventPublisher, ItemKey, ObjectLocation, ObjectSource, PutCondition, Store,
};
use backbone::validate::{BoundedVec, S3Notification, SpotifyId, Validate, ValidationError};

use crate::anomaly::{self, Settings, Verdict};
use crate::model::{Observation, Subject};
use crate::report::{self, FileContext, ReportReader, RowError};
use crate::rollups::{self, Applied, Pending, SeriesDay};
use crate::signals::{Cause, CauseKind};

/// The event bus `source` of this function's events.
pub const EVENT_SOURCE: &str = "music.streaming-metrics";
/// The `detail-type` of anomalies.
pub const ANOMALY_DETAIL_TYPE: &str = "MetricAnomaly";
/// The largest report accepted by default (the object port refuses anything larger).
pub const DEFAULT_MAX_REPORT_BYTES: u64 = 2 << 30;
/// Rows applied to the store at a time.
pub const BATCH_ROWS: usize = 2000;
/// Changed series-days judged at a time (bounds memory on huge files).
pub const DETECT_BATCH: usize = 50_000;
/// Rejected rows listed in a file's summary and audit record (all are counted).
pub const MAX_LISTED_ERRORS: usize = 1000;

/// A report to ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// Where the file is.
    pub report: ObjectLocation,
    /// The artist it belongs to (needed by the audience timeline; attributes tracks).
    #[serde(default)]
    pub artist: Option<SpotifyId>,
    /// The day a songs table without a date column covers.
    #[serde(default)]
    pub date: Option<NaiveDate>,
    /// When the source produced it (default: when it is read).
    #[serde(default)]
    pub as_of: Option<DateTime<Utc>>,
}

/// A known cause of a jump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CauseInput {
    /// Whose.
    pub subject: Subject,
    /// A release or a playlist add.
    pub kind: CauseKind,
    /// When.
    pub date: NaiveDate,
    /// Which release or playlist.
    #[serde(default)]
    pub detail: Option<String>,
    /// The subject's artist (a release explains the artist's rollup too).
    #[serde(default)]
    pub artist: Option<SpotifyId>,
}

/// The input of the function.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetricsInput {
    /// Observations pushed by a producer.
    Observations {
        /// 1 to 1000 of them.
        observations: BoundedVec<Observation, 1, 1000>,
    },
    /// A report file named directly.
    Report(ReportRequest),
    /// A report file that landed in S3.
    S3(S3Notification),
    /// A known cause.
    Cause {
        /// The cause.
        cause: CauseInput,
    },
}

impl<'de> Deserialize<'de> for MetricsInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        if S3Notification::looks_like(&value) {
            return S3Notification::from_value(value)
                .map(MetricsInput::S3)
                .map_err(D::Error::custom);
        }
        fn typed<T: for<'a> Deserialize<'a>>(
            value: serde_json::Value,
            root: &str,
        ) -> Result<T, String> {
            serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    root.to_owned()
                } else {
                    format!("{root}.{path}")
                };
                format!("{field}: {}", e.into_inner())
            })
        }
        let field = |name: &str| value.get(name).is_some();
        if field("observations") {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Batch {
                observations: BoundedVec<Observation, 1, 1000>,
            }
            let b: Batch = typed(value, "body").map_err(D::Error::custom)?;
            Ok(MetricsInput::Observations {
                observations: b.observations,
            })
        } else if field("report") {
            typed(value, "body")
                .map(MetricsInput::Report)
                .map_err(D::Error::custom)
        } else if field("cause") {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct C {
                cause: CauseInput,
            }
            let c: C = typed(value, "body").map_err(D::Error::custom)?;
            Ok(MetricsInput::Cause { cause: c.cause })
        } else {
            Err(D::Error::custom(
                "expected {\"observations\": [...]}, {\"report\": location}, {\"cause\": {...}} or an S3 event notification",
            ))
        }
    }
}

impl Validate for MetricsInput {
    fn validate(&self) -> Result<(), ValidationError> {
        if let MetricsInput::Observations { observations } = self {
            for (i, o) in observations.as_slice().iter().enumerate() {
                o.validate().map_err(|e| {
                    ValidationError::new(format!("observations[{i}].{}", e.field), e.reason)
                })?;
            }
        }
        Ok(())
    }
}

/// What one file's ingestion did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileSummary {
    /// Where it was read from.
    pub location: String,
    /// The SHA-256 of its content.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The detected format.
    pub format: Option<report::Format>,
    /// Data rows read.
    pub rows: u64,
    /// Rows kept.
    pub accepted: u64,
    /// Rows refused.
    pub rejected: u64,
    /// The first [`MAX_LISTED_ERRORS`] refusals, with their lines.
    pub errors: Vec<RowError>,
    /// The whole file was refused: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// This content was already ingested: nothing was done again.
    #[serde(default)]
    pub already_ingested: bool,
}

/// What an invocation did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsOutput {
    /// Files read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileSummary>,
    /// Observations of a message refused (index and reason).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_observations: Vec<RowError>,
    /// Store effects.
    pub applied: Applied,
    /// Anomalies published.
    pub published: usize,
    /// Jumps explained by a known cause.
    pub explained: usize,
    /// Anomalies silenced by the cooldown.
    pub suppressed: usize,
    /// Known causes stored.
    pub causes: usize,
    /// S3's test event (nothing to do).
    #[serde(default)]
    pub test_event: bool,
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The store, the bus or the object source failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// An event could not be encoded.
    #[error("event cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

impl Classify for MetricsError {
    fn class(&self) -> ErrorClass {
        match self {
            MetricsError::Port(err) => err.class(),
            MetricsError::Encode(_) => ErrorClass::Permanent,
        }
    }
}

/// The streaming-metrics task, over its ports.
pub struct StreamingMetrics {
    /// Observations, rollups, detector state, cooldowns, file summaries.
    pub store: Arc<dyn Store>,
    /// Where `MetricAnomaly` goes.
    pub events: Arc<dyn EventPublisher>,
    /// Where report files are fetched from.
    pub objects: Arc<dyn ObjectSource>,
    /// Detector and rule settings.
    pub settings: Settings,
    /// The largest report accepted.
    pub max_report_bytes: u64,
}

impl StreamingMetrics {
    /// The task with the daily settings and the default size cap.
    pub fn new(
        store: Arc<dyn Store>,
        events: Arc<dyn EventPublisher>,
        objects: Arc<dyn ObjectSource>,
    ) -> Self {
        Self {
            store,
            events,
            objects,
            settings: Settings::daily(),
            max_report_bytes: DEFAULT_MAX_REPORT_BYTES,
        }
    }

    async fn apply_batch(
        &self,
        batch: &mut Vec<Pending>,
        changed: &mut BTreeSet<SeriesDay>,
        out: &mut MetricsOutput,
        now: DateTime<Utc>,
        cx: &Cx,
    ) -> Result<(), MetricsError> {
        if batch.is_empty() {
            return Ok(());
        }
        let applied = rollups::apply(self.store.as_ref(), batch, now).await?;
        batch.clear();
        out.applied.new += applied.new;
        out.applied.restated += applied.restated;
        out.applied.unchanged += applied.unchanged;
        changed.extend(applied.changed);
        if changed.len() >= DETECT_BATCH {
            self.judge(changed, out, cx).await?;
        }
        Ok(())
    }

    async fn judge(
        &self,
        changed: &mut BTreeSet<SeriesDay>,
        out: &mut MetricsOutput,
        cx: &Cx,
    ) -> Result<(), MetricsError> {
        let verdicts = anomaly::detect(self.store.as_ref(), changed, &self.settings).await?;
        changed.clear();
        for verdict in verdicts {
            match verdict {
                Verdict::Publish { anomaly, cooldown } => {
                    let detail = json!({ "schemaVersion": anomaly::ANOMALY_SCHEMA_VERSION, "anomaly": anomaly });
                    let event = BusEvent {
                        source: EVENT_SOURCE.to_owned(),
                        detail_type: ANOMALY_DETAIL_TYPE.to_owned(),
                        detail,
                        time: cx.now(),
                        trace_header: Some(cx.trace_header()),
                    };
                    self.events.publish(&[event]).await?;
                    anomaly::mark_published(self.store.as_ref(), &cooldown, anomaly.date).await?;
                    info!(kind = anomaly.kind.as_str(), subject = %anomaly.subject, date = %anomaly.date, "anomaly published");
                    cx.record(
                        anomaly.subject.clone(),
                        "anomaly_published",
                        json!({ "anomaly": anomaly }),
                    );
                    out.published += 1;
                }
                Verdict::Explained { anomaly, cause } => {
                    cx.record(
                        anomaly.subject.clone(),
                        "anomaly_explained",
                        json!({ "kind": anomaly.kind, "date": anomaly.date, "cause": cause, "evidence": anomaly.evidence }),
                    );
                    out.explained += 1;
                }
                Verdict::Suppressed {
                    anomaly,
                    last_alert,
                } => {
                    cx.record(
                        anomaly.subject.clone(),
                        "anomaly_suppressed",
                        json!({ "kind": anomaly.kind, "date": anomaly.date, "last_alert": last_alert }),
                    );
                    out.suppressed += 1;
                }
            }
        }
        Ok(())
    }

    async fn ingest_file(
        &self,
        location: &ObjectLocation,
        context: FileContext,
        out: &mut MetricsOutput,
        cx: &Cx,
    ) -> Result<(), MetricsError> {
        let fetched = self.objects.fetch(location, self.max_report_bytes).await?;
        let sha = fetched.sha256().to_owned();
        let mut summary = FileSummary {
            location: location.to_string(),
            sha256: sha.clone(),
            bytes: fetched.size(),
            ..FileSummary::default()
        };
        let key = ItemKey::new(format!("streams-file#{sha}"), "summary");
        if let Some(item) = self.store.get(&key).await? {
            let mut previous: FileSummary = serde_json::from_value(item.data).unwrap_or_default();
            previous.already_ingested = true;
            previous.errors.clear();
            cx.record(
                format!("file#{sha}"),
                "report_already_ingested",
                json!({ "location": summary.location }),
            );
            out.files.push(previous);
            return Ok(());
        }
        let now = cx.now();
        let today = now.date_naive();
        let context = FileContext {
            as_of: context.as_of.or(Some(now)),
            ..context
        };
        let path = fetched.path().to_owned();
        // The reader does blocking file I/O on a local file, in batches of rows between the
        // store writes: short enough not to starve the runtime.
        let mut reader = match ReportReader::open(&path, context, today) {
            Ok(r) => r,
            Err(err) => {
                summary.refused = Some(err.to_string());
                cx.record(
                    format!("file#{sha}"),
                    "report_refused",
                    json!({ "location": summary.location, "reason": summary.refused }),
                );
                self.store_summary(&key, &summary).await?;
                out.files.push(summary);
                return Ok(());
            }
        };
        summary.format = Some(reader.format());
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut changed = BTreeSet::new();
        loop {
            let rows: Vec<Result<report::Row, RowError>> =
                (0..BATCH_ROWS).map_while(|_| reader.next_row()).collect();
            let done = rows.len() < BATCH_ROWS;
            for row in rows {
                summary.rows += 1;
                match row {
                    Ok(row) => {
                        summary.accepted += 1;
                        for o in row.observations {
                            batch.push(Pending {
                                observation: o,
                                file: Some(sha.clone()),
                                line: Some(row.line),
                                summing: row.summing,
                            });
                        }
                    }
                    Err(err) => {
                        summary.rejected += 1;
                        if summary.errors.len() < MAX_LISTED_ERRORS {
                            summary.errors.push(err);
                        }
                    }
                }
            }
            self.apply_batch(&mut batch, &mut changed, out, now, cx)
                .await?;
            if done {
                break;
            }
        }
        self.judge(&mut changed, out, cx).await?;
        cx.record(
            format!("file#{sha}"),
            "report_ingested",
            json!({
                "location": summary.location, "format": summary.format, "bytes": summary.bytes,
                "rows": summary.rows, "accepted": summary.accepted, "rejected": summary.rejected,
                "errors": summary.errors,
            }),
        );
        self.store_summary(&key, &summary).await?;
        out.files.push(summary);
        Ok(())
    }

    async fn store_summary(
        &self,
        key: &ItemKey,
        summary: &FileSummary,
    ) -> Result<(), MetricsError> {
        let data = serde_json::to_value(summary).map_err(MetricsError::Encode)?;
        self.store
            .put(key, &data, PutCondition::Always, None)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Task for StreamingMetrics {
    const NAME: &'static str = "streaming-metrics";
    type Input = MetricsInput;
    type Output = MetricsOutput;
    type Error = MetricsError;

    fn idempotency_key(&self, input: &MetricsInput) -> Option<String> {
        match input {
            MetricsInput::S3(n) => n
                .objects
                .first()
                .map(|o| format!("s3#{}#{}", o.location, o.etag.as_deref().unwrap_or("-"))),
            _ => None,
        }
    }

    fn subject(&self, input: &MetricsInput) -> String {
        match input {
            MetricsInput::Observations { observations } => {
                observations.as_slice()[0].subject.to_string()
            }
            MetricsInput::Report(r) => r.report.to_string(),
            MetricsInput::S3(n) => n
                .objects
                .first()
                .map_or_else(|| "s3:test-event".to_owned(), |o| o.location.to_string()),
            MetricsInput::Cause { cause } => cause.subject.to_string(),
        }
    }

    async fn run(&self, input: MetricsInput, cx: &Cx) -> Result<MetricsOutput, MetricsError> {
        let mut out = MetricsOutput::default();
        let now = cx.now();
        match input {
            MetricsInput::Observations { observations } => {
                let today = now.date_naive();
                let mut batch = Vec::new();
                for (i, o) in observations.into_inner().into_iter().enumerate() {
                    if let Err(reason) = o.check(today) {
                        out.refused_observations.push(RowError {
                            line: i as u64,
                            reason,
                        });
                        continue;
                    }
                    batch.push(Pending {
                        observation: o,
                        file: None,
                        line: None,
                        summing: false,
                    });
                }
                let mut changed = BTreeSet::new();
                self.apply_batch(&mut batch, &mut changed, &mut out, now, cx)
                    .await?;
                self.judge(&mut changed, &mut out, cx).await?;
                cx.record(
                    "observations",
                    "observations_ingested",
                    json!({ "applied": out.applied, "refused": out.refused_observations }),
                );
            }
            MetricsInput::Report(r) => {
                let context = FileContext {
                    artist: r.artist,
                    date: r.date,
                    as_of: r.as_of,
                };
                self.ingest_file(&r.report, context, &mut out, cx).await?;
            }
            MetricsInput::S3(n) => {
                if n.is_test_event() {
                    out.test_event = true;
                    return Ok(out);
                }
                for object in &n.objects {
                    self.ingest_file(&object.location, FileContext::default(), &mut out, cx)
                        .await?;
                }
            }
            MetricsInput::Cause { cause } => {
                let c = Cause {
                    kind: cause.kind,
                    date: cause.date,
                    detail: cause.detail.clone(),
                };
                anomaly::record_cause(
                    self.store.as_ref(),
                    &cause.subject,
                    cause.artist.as_ref(),
                    &c,
                )
                .await?;
                cx.record(
                    cause.subject.to_string(),
                    "cause_recorded",
                    json!({ "cause": c }),
                );
                out.causes = 1;
            }
        }
        Ok(out)
    }
}
