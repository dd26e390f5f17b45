//! `tasks streaming-metrics ...`: ingest a report, read the rollups, and the benchmarks (NAB,
//! the synthetic music series) with the detector the function runs.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use backbone::local::{Invoke, LocalDb};
use backbone::validate::SpotifyId;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;
use serde_json::json;
use streaming_metrics::anomaly::Settings;
use streaming_metrics::detector::DetectorConfig;
use streaming_metrics::model::{Metric, Source, Subject};
use streaming_metrics::rollups;

/// The streaming-metrics commands.
#[derive(Debug, Subcommand)]
pub enum StreamingCommand {
    /// Ingest a report file (canonical CSV, Spotify for Artists, DistroKid, TuneCore) through
    /// the function, as a message naming it would.
    Ingest {
        /// The file.
        file: PathBuf,
        /// The artist it belongs to (needed by an audience timeline).
        #[arg(long)]
        artist: Option<String>,
        /// The day a songs table without a date column covers.
        #[arg(long)]
        date: Option<NaiveDate>,
        /// When the source produced it (RFC 3339; default now).
        #[arg(long)]
        as_of: Option<DateTime<Utc>>,
    },
    /// Daily totals, ISO week and rolling 28 days of a subject (ISRC, track) or an artist.
    Rollups {
        /// An ISRC or `spotify:track:<id>`.
        #[arg(long, conflicts_with = "artist")]
        subject: Option<String>,
        /// A Spotify artist id (the sum over its tracks).
        #[arg(long)]
        artist: Option<String>,
        /// The source (`spotify_for_artists`, `distrokid/spotify`, ...).
        #[arg(long, default_value = "spotify_for_artists")]
        source: String,
        /// The metric.
        #[arg(long, default_value = "streams")]
        metric: String,
        /// First day.
        #[arg(long)]
        from: NaiveDate,
        /// Last day.
        #[arg(long)]
        to: NaiveDate,
    },
    /// Score a `timestamp,value` CSV causally: writes `timestamp,value,anomaly_score`.
    NabScore {
        /// The input CSV.
        #[arg(long)]
        input: PathBuf,
        /// The output CSV.
        #[arg(long)]
        output: PathBuf,
    },
    /// Run the detector over a NAB folder and print its normalised score (standard profile by
    /// default), overall and per category.
    NabBenchmark {
        /// The NAB folder (`combined_windows.json`, `data/`).
        #[arg(long, default_value = "../shared/nab")]
        data: PathBuf,
        /// The cost profile of the folder's `profiles.json` (`standard`, `reward_low_FP_rate`,
        /// `reward_low_FN_rate`).
        #[arg(long, default_value = "standard")]
        profile: String,
        /// Print per-file results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The synthetic music benchmark: precision and recall of the whole pipeline.
    Synthetic {
        /// Series (tracks).
        #[arg(long, default_value_t = 40)]
        series: usize,
        /// Days per series.
        #[arg(long, default_value_t = 365)]
        days: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

impl StreamingCommand {
    /// Whether the command runs without the local database and functions.
    pub fn is_standalone(&self) -> bool {
        matches!(
            self,
            StreamingCommand::NabScore { .. }
                | StreamingCommand::NabBenchmark { .. }
                | StreamingCommand::Synthetic { .. }
        )
    }
}

fn out(text: &str) -> Result<()> {
    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
    Ok(())
}

/// Runs a command that needs no local database.
pub async fn run_standalone(command: StreamingCommand) -> Result<()> {
    match command {
        StreamingCommand::NabScore { input, output } => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&output)
                    .with_context(|| format!("creating {}", output.display()))?,
            );
            let n =
                streaming_metrics::nab::score_csv(&input, &mut file, &DetectorConfig::default())?;
            std::io::Write::flush(&mut file)?;
            out(&format!("{n} rows scored into {}\n", output.display()))
        }
        StreamingCommand::NabBenchmark {
            data,
            profile,
            json,
        } => {
            let config = DetectorConfig::default();
            let costs = streaming_metrics::nab::read_profile(&data, &profile)?;
            let started = std::time::Instant::now();
            let result = streaming_metrics::nab::run_corpus(&data, &config, costs)?;
            if json {
                out(&format!("{}\n", serde_json::to_string_pretty(&result)?))
            } else {
                let (tp, fn_, fp) = result.files.iter().fold((0, 0, 0), |a, f| {
                    (a.0 + f.score.tp, a.1 + f.score.fn_, a.2 + f.score.fp)
                });
                let mut text = format!(
                    "NAB {profile} profile, {} files, threshold {}: normalised score {:.1} \
                     (raw {:.2}; windows detected {tp}, missed {fn_}; false positives {fp})\n",
                    result.files.len(),
                    result.threshold,
                    result.normalised,
                    result.raw
                );
                let rows: usize = result.files.iter().map(|f| f.rows).sum();
                text.push_str(&format!(
                    "  {rows} rows read, scored and judged in {:.2} s ({:.1} us a row)\n",
                    started.elapsed().as_secs_f64(),
                    started.elapsed().as_secs_f64() * 1e6 / rows.max(1) as f64
                ));
                for c in &result.categories {
                    text.push_str(&format!(
                        "  {:<24} {:>2} files  {:>6.1}  (detected {}, missed {}, false positives {})\n",
                        c.category, c.files, c.normalised, c.tp, c.fn_, c.fp
                    ));
                }
                out(&text)
            }
        }
        StreamingCommand::Synthetic { series, days, seed } => {
            let db = LocalDb::in_memory()?;
            let data = streaming_metrics::synthetic::generate(series, days, seed);
            let eval =
                streaming_metrics::synthetic::evaluate(&db, &data, &Settings::daily()).await?;
            out(&format!("{}\n", serde_json::to_string_pretty(&eval)?))
        }
        _ => bail!("this command needs the local database"),
    }
}

/// Runs a command against the local database and functions.
pub async fn run_local(
    command: StreamingCommand,
    db: &LocalDb,
    functions: &[Box<dyn Invoke>],
) -> Result<bool> {
    match command {
        StreamingCommand::Ingest {
            file,
            artist,
            date,
            as_of,
        } => {
            let function = functions
                .iter()
                .find(|f| f.name() == "streaming-metrics")
                .context("the streaming-metrics function is not registered")?;
            let path = std::fs::canonicalize(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let mut payload = json!({ "report": path.display().to_string() });
            if let Some(a) = artist {
                payload["artist"] = json!(a);
            }
            if let Some(d) = date {
                payload["date"] = json!(d);
            }
            if let Some(t) = as_of {
                payload["as_of"] = json!(t);
            }
            let report = function
                .invoke_bytes(serde_json::to_string(&payload)?.as_bytes())
                .await
                .map_err(|e| anyhow::anyhow!("streaming-metrics failed: {e}"))?;
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&report.response)?
            ))?;
            Ok(!matches!(
                report.response.get("status").and_then(|s| s.as_str()),
                Some("rejected" | "failed")
            ))
        }
        StreamingCommand::Rollups {
            subject,
            artist,
            source,
            metric,
            from,
            to,
        } => {
            let source = Source::parse(&source).map_err(|e| anyhow::anyhow!("--source: {e}"))?;
            let metric = Metric::parse(&metric).map_err(|e| anyhow::anyhow!("--metric: {e}"))?;
            let (pk, days) = match (subject, artist) {
                (Some(s), None) => {
                    let s = Subject::parse(&s).map_err(|e| anyhow::anyhow!("--subject: {e}"))?;
                    (
                        rollups::subject_pk(&s),
                        rollups::track_days(db, &s, &source, metric, from, to).await?,
                    )
                }
                (None, Some(a)) => {
                    let a = SpotifyId::new(&a).map_err(|e| anyhow::anyhow!("--artist: {e}"))?;
                    (
                        rollups::artist_pk(&a),
                        rollups::artist_days(db, &a, &source, metric, from, to).await?,
                    )
                }
                _ => bail!("give --subject or --artist"),
            };
            let week = rollups::week_total(db, pk.clone(), &source, metric, to).await?;
            let rolling = rollups::rolling_28(db, pk, &source, metric, to).await?;
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&json!({
                    "source": source, "metric": metric, "days": days,
                    "iso_week": { "week": rollups::iso_week(to), "total": week },
                    "rolling_28_days": { "to": to, "total": rolling },
                }))?
            ))?;
            Ok(true)
        }
        other => {
            run_standalone(other).await?;
            Ok(true)
        }
    }
}
