//! Ingest benchmark: rows per second for a report of `BENCH_ROWS` rows (default 1,000,000),
//! parse only and end to end (parse, store, rollups, detection) on one SQLite file, with the
//! peak resident memory (VmHWM). Run: `cargo bench -p streaming-metrics --bench ingest`.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use backbone::clock::SystemClock;
use backbone::config::HarnessConfig;
use backbone::local::{FileObjects, Invoke, LocalDb, LocalRuntime};
use backbone::objects::ObjectRouter;
use backbone::telemetry::Capture;
use chrono::{Duration, NaiveDate, Utc};
use streaming_metrics::StreamingMetrics;
use streaming_metrics::report::{FileContext, ReportReader};

fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

const TERRITORIES: [&str; 10] = ["SE", "NO", "DK", "FI", "DE", "FR", "GB", "US", "BR", "JP"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(file, "subject,territory,date,metric,value,source")?;
    let days = 100usize;
    let tracks = rows.div_ceil(days * TERRITORIES.len());
    let start = NaiveDate::from_ymd_opt(2026, 6, 1).ok_or("date")?;
    let mut written = 0;
    'outer: for t in 0..tracks {
        for d in 0..days {
            for (i, territory) in TERRITORIES.iter().enumerate() {
                if written == rows {
                    break 'outer;
                }
                let value = 100 + (t * 7 + d * 3 + i * 11) % 97;
                writeln!(
                    file,
                    "QZBEN26{t:05},{territory},{},streams,{value},bench",
                    start + Duration::days(d as i64)
                )?;
                written += 1;
            }
        }
    }
    file.flush()?;
    drop(file);
    let bytes = std::fs::metadata(&path)?.len();

    let today = Utc::now().date_naive();
    let t0 = Instant::now();
    let mut reader = ReportReader::open(&path, FileContext::default(), today)?;
    let mut parsed = 0usize;
    while let Some(row) = reader.next_row() {
        if row.is_ok() {
            parsed += 1;
        }
    }
    let parse_secs = t0.elapsed().as_secs_f64();
    println!(
        "parse: {parsed} rows ({:.1} MB) in {parse_secs:.2} s = {:.0} rows/s; peak memory {} MiB",
        bytes as f64 / 1e6,
        parsed as f64 / parse_secs,
        peak_memory_kib() / 1024
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = LocalDb::open(&dir.path().join("bench.sqlite3"))?;
        let local = LocalRuntime::new(db, Arc::new(SystemClock), Arc::new(Capture::new()));
        let task = StreamingMetrics::new(
            Arc::new(local.db.clone()),
            Arc::new(local.bus()),
            Arc::new(ObjectRouter::new().with_paths(Arc::new(FileObjects))),
        );
        let function = local.harness(task, HarnessConfig::for_task("streaming-metrics"));
        let t1 = Instant::now();
        let report = function
            .invoke(serde_json::json!({ "report": path.display().to_string() }))
            .await?;
        let secs = t1.elapsed().as_secs_f64();
        let accepted = report.response["output"]["files"][0]["accepted"].as_u64().unwrap_or(0);
        println!(
            "end to end (parse, store, rollups, detection; SQLite file): {accepted} rows in {secs:.1} s = {:.0} rows/s; peak memory {} MiB",
            accepted as f64 / secs,
            peak_memory_kib() / 1024
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
