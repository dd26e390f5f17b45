//! Benchmark of the local model: load time, prompt and decode tokens per second, peak memory,
//! and one grounded bio end to end (fact sheet to verified text). Prints one JSON object.
//!
//!     cargo run --release -p ai-content-generation --features local-model --bin ai-content-bench

use std::time::{Duration, Instant};

use ai_content_generation::facts::{Fact, FactSheet, FactValue, PartialDate};
use ai_content_generation::lang::{Language, Unit};
use ai_content_generation::local_model::LocalModel;
use ai_content_generation::prompt::Brief;
use ai_content_generation::request::{Kind, Tone};
use backbone::ports::TextRequest;
use chrono::NaiveDate;

/// Peak resident set size of this process, bytes (Linux `VmHWM`).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn sheet() -> FactSheet {
    let as_of = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default();
    let f = |id: &str, label: &str, value, unit, priority| Fact {
        id: id.into(),
        label: label.into(),
        value,
        unit,
        source: "artist-monitoring snapshot".into(),
        as_of,
        priority,
    };
    let release = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap_or_default();
    FactSheet {
        facts: vec![
            f(
                "artist.name",
                "the artist's name",
                FactValue::Text {
                    text: "Nova Lane".into(),
                },
                Unit::None,
                0,
            ),
            f(
                "artist.genres",
                "genres",
                FactValue::Text {
                    text: "indie pop, dream pop".into(),
                },
                Unit::None,
                1,
            ),
            f(
                "artist.followers",
                "Spotify followers",
                FactValue::Count { value: 1_234_567 },
                Unit::Followers,
                2,
            ),
            f(
                "release.0.name",
                "release title",
                FactValue::Text {
                    text: "Blue Hour".into(),
                },
                Unit::None,
                1,
            ),
            f(
                "release.0.date",
                "release date",
                FactValue::Date {
                    date: PartialDate::Day { date: release },
                },
                Unit::None,
                1,
            ),
        ],
    }
}

fn rate(tokens: usize, d: Duration) -> f64 {
    tokens as f64 / d.as_secs_f64().max(1e-9)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = LocalModel::default_path().ok_or("no cache directory: set LOCAL_MODEL_PATH")?;
    let started = Instant::now();
    let model = LocalModel::load(&path, 4096, Duration::from_secs(600))?;
    let load = started.elapsed();
    let rss_after_load = peak_rss();

    let request = TextRequest {
        system: "You are a helpful assistant.".into(),
        user: "Describe an indie pop album in a few sentences.".into(),
        max_tokens: 128,
        temperature: 0.0,
    };
    let (_, timing) = model.generate_blocking(&request)?;

    let brief = Brief {
        kind: Kind::BioShort,
        language: Language::En,
        tone: Tone::Warm,
        words: 50,
    };
    let e2e_started = Instant::now();
    let outcome = ai_content_generation::generate(&model, brief, sheet(), 3)
        .await?
        .map_err(|reason| format!("refused: {reason}"))?;
    let e2e = e2e_started.elapsed();
    let report = serde_json::json!({
        "model": path.display().to_string(),
        "load_seconds": load.as_secs_f64(),
        "prompt_tokens": timing.prompt_tokens,
        "prompt_tokens_per_second": rate(timing.prompt_tokens, timing.prompt),
        "generated_tokens": timing.generated_tokens,
        "decode_tokens_per_second": rate(timing.generated_tokens, timing.decode),
        "peak_rss_bytes_after_load": rss_after_load,
        "peak_rss_bytes": peak_rss(),
        "grounded_bio": {
            "seconds": e2e.as_secs_f64(),
            "attempts": outcome.attempts,
            "verified": outcome.review.is_none(),
            "review": outcome.review,
            "discarded": outcome.discarded,
            "text": outcome.rendered.map(|r| r.text),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
