//! Benchmark: speed as a multiple of real time on one core, and peak memory.
//!
//! Synthesises a 3-minute 44.1 kHz stereo signal (drum-like pulses at 124 BPM over a chord
//! bed), encodes it as 16-bit WAV in a temporary file, and analyses it end to end (decode,
//! loudness, resampling, every feature) on the calling thread. Then it streams three hours of
//! the same signal straight into the analyser to show that memory stays bounded.
//!
//! `cargo bench -p track-analysis --bench realtime` (add `-- --quick` for one run; the
//! three-hour stream runs unless `--no-long`). Peak memory is the process's VmHWM from
//! /proc/self/status, read after each stage.

use std::f64::consts::PI;
use std::io::Write;
use std::time::Instant;

use track_analysis::analysis::Analyzer;
use track_analysis::decode::{self, Limits};

const RATE: u32 = 44_100;

fn signal(seconds: f64) -> impl Iterator<Item = (f32, f32)> {
    let n = (seconds * f64::from(RATE)) as usize;
    let beat = 60.0 / 124.0;
    let mut seed = 12345u32;
    (0..n).map(move |i| {
        let t = i as f64 / f64::from(RATE);
        let since = t % beat;
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = f64::from(seed >> 8) / f64::from(1u32 << 23) - 1.0;
        let kick = (2.0 * PI * (50.0 + 70.0 * (-since * 30.0).exp()) * since).sin()
            * (-since * 18.0).exp();
        let hat = noise * (-((t % (beat / 2.0)) * 120.0)).exp() * 0.2;
        let chord: f64 = [220.0, 277.18, 329.63]
            .iter()
            .map(|f| (2.0 * PI * f * t).sin())
            .sum::<f64>()
            * 0.08;
        let left = 0.5 * kick + hat + chord;
        let right = 0.5 * kick + 0.8 * hat + chord;
        (left as f32, right as f32)
    })
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn write_wav(path: &std::path::Path, seconds: f64) -> std::io::Result<()> {
    let frames = (seconds * f64::from(RATE)) as u32;
    let data = frames * 4;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"RIFF")?;
    out.write_all(&(36 + data).to_le_bytes())?;
    out.write_all(b"WAVEfmt ")?;
    out.write_all(&16u32.to_le_bytes())?;
    out.write_all(&1u16.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&RATE.to_le_bytes())?;
    out.write_all(&(RATE * 4).to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&16u16.to_le_bytes())?;
    out.write_all(b"data")?;
    out.write_all(&data.to_le_bytes())?;
    for (l, r) in signal(seconds) {
        for s in [l, r] {
            let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            out.write_all(&v.to_le_bytes())?;
        }
    }
    out.flush()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let runs = if args.iter().any(|a| a == "--quick") {
        1
    } else {
        5
    };
    let long = !args.iter().any(|a| a == "--no-long");
    let seconds = 180.0;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.wav");
    write_wav(&path, seconds)?;
    let before = vm_hwm_kib().unwrap_or(0);
    let mut best = f64::MAX;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let (features, _) = decode::analyze_path(&path, &Limits::default())?;
        let elapsed = started.elapsed().as_secs_f64();
        best = best.min(elapsed);
        times.push(elapsed);
        last = Some(features);
    }
    let after = vm_hwm_kib().unwrap_or(0);
    let features = last.ok_or("no run")?;
    let median = {
        let mut t = times.clone();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    println!("3-minute 44.1 kHz stereo 16-bit WAV, one thread, {runs} runs:");
    println!(
        "  analysis time: median {median:.3} s, best {best:.3} s -> {:.0}x real time (median), {:.0}x (best)",
        seconds / median,
        seconds / best
    );
    println!(
        "  tempo {:?} BPM, key {:?}, {:?} LUFS",
        features
            .tempo
            .as_ref()
            .map(|t| (t.bpm * 10.0).round() / 10.0),
        features.key.as_ref().map(|k| k.camelot.clone()),
        features
            .loudness
            .integrated_lufs
            .map(|l| (l * 10.0).round() / 10.0)
    );
    println!(
        "  peak memory (VmHWM): {:.1} MiB before, {:.1} MiB after the analyses",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    if long {
        let hours = 3.0;
        let mut analyzer = Analyzer::new(RATE, 2)?;
        let mut left = Vec::with_capacity(4096);
        let mut right = Vec::with_capacity(4096);
        let started = Instant::now();
        for (l, r) in signal(hours * 3600.0) {
            left.push(l);
            right.push(r);
            if left.len() == 4096 {
                analyzer.push(&[&left, &right])?;
                left.clear();
                right.clear();
            }
        }
        analyzer.push(&[&left, &right])?;
        let (features, timeline) = analyzer.finish("synthetic", "pcm_f32")?;
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "3 hours streamed into the analyser: {:.1} s ({:.0}x real time incl. synthesis), {} frames, {} waveform points, peak memory {:.1} MiB",
            elapsed,
            hours * 3600.0 / elapsed,
            features.analysis.frames,
            timeline.waveform.len(),
            vm_hwm_kib().unwrap_or(0) as f64 / 1024.0
        );
    }
    Ok(())
}
