//! Detection benchmark: the online detector over `BENCH_SERIES` series (default 10,000) of
//! two years of days, one core, with the peak resident memory (VmHWM) and the size of a
//! stored state. Run: `cargo bench -p streaming-metrics --bench detect`.

use std::time::Instant;

use streaming_metrics::detector::{DetectorConfig, SeriesState};
use streaming_metrics::synthetic::Rng;

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let series: usize = std::env::var("BENCH_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let days = 730usize;
    let config = DetectorConfig::daily();
    let weekly = [0.9, 0.85, 0.88, 0.95, 1.1, 1.25, 1.07];
    let mut rng = Rng::new(42);
    let mut detections = 0usize;
    let mut state_bytes = 0usize;
    let t0 = Instant::now();
    for _ in 0..series {
        let base = rng.range(100.0, 10_000.0);
        let mut state = SeriesState::default();
        for d in 0..days {
            let v = base * weekly[d % 7] * (1.0 + 0.05 * rng.normal());
            let s = state.observe(&config, d as i64 * 86_400, v);
            if s.score >= config.threshold {
                detections += 1;
            }
        }
        state_bytes += serde_json::to_vec(&state)?.len();
    }
    let secs = t0.elapsed().as_secs_f64();
    let points = series * days;
    println!(
        "detect: {series} series x {days} days = {points} points in {secs:.2} s = {:.0} points/s ({:.1} us/point); \
         {detections} detections on noise ({:.3} % of points); stored state {} bytes per series; peak memory {} MiB",
        points as f64 / secs,
        secs * 1e6 / points as f64,
        100.0 * detections as f64 / points as f64,
        state_bytes / series.max(1),
        peak_memory_kib() / 1024
    );
    Ok(())
}
