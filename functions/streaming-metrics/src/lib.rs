//! streaming-metrics: takes streaming numbers in from where they really come from, rolls them
//! up, and tells people when something is off, with evidence.
//!
//! Inputs (one SQS queue; each body is one of):
//!
//! - `{"observations": [...]}`: 1 to 1000 [`model::Observation`]s (`subject`, `territory`,
//!   `date`, `metric`, `value`, `source`, optional `as_of`, `artist`);
//! - an S3 event notification (a report landed in the bucket), or `{"report": "s3://..." |
//!   "https://..." | "/path", "artist": .., "date": .., "as_of": ..}` (the CLI's `ingest`):
//!   the file is fetched through the object port, its format detected from its header
//!   ([`report`]) and streamed row by row;
//! - `{"cause": {"subject", "kind": "release" | "playlist_add", "date", "detail", "artist"}}`:
//!   a known cause, which explains the jump it brings.
//!
//! Each changed day updates the rollups ([`rollups`]) and is judged by the online detector
//! ([`detector`], [`anomaly`]) and the music rules ([`signals`]); anomalies are published as
//! `MetricAnomaly` events (`schemas/metric-anomaly.schema.json`) and every step is audited.
//! A file is ingested once per content hash; a row once per key (restatements are new
//! versions, never counted twice).

pub mod anomaly;
pub mod detector;
pub mod model;
pub mod nab;
pub mod report;
pub mod rollups;
pub mod signals;
pub mod synthetic;
mod task;

pub use task::*;
