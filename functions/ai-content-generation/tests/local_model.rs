//! The embedded SmolLM2-135M model, end to end (feature `local-model`). The model file comes
//! from `scripts/fetch-model.sh` (scripts/test.sh runs it first); without it these tests fail
//! and say so. Greedy decoding repeats exactly on one build, so the tests check properties of
//! the text, never exact strings.

#![cfg(feature = "local-model")]

use std::sync::Arc;
use std::time::Duration;

use ai_content_generation::facts::{Fact, FactSheet, FactValue, PartialDate};
use ai_content_generation::lang::{Language, Unit};
use ai_content_generation::local_model::LocalModel;
use ai_content_generation::prompt::Brief;
use ai_content_generation::request::{Kind, Tone};
use ai_content_generation::verify::verify;
use ai_content_generation::{allowed_forms, generate};
use backbone::ports::{StopReason, TextError, TextGenerator, TextRequest};
use chrono::NaiveDate;

fn model(context: usize, timeout: Duration) -> LocalModel {
    let path = LocalModel::default_path().expect("a cache directory");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-model.sh (scripts/test.sh does)",
        path.display()
    );
    LocalModel::load(&path, context, timeout).unwrap()
}

fn sheet() -> FactSheet {
    let f = |id: &str, label: &str, value, unit| Fact {
        id: id.into(),
        label: label.into(),
        value,
        unit,
        source: "artist-monitoring snapshot".into(),
        as_of: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        priority: if id == "artist.name" { 0 } else { 2 },
    };
    FactSheet {
        facts: vec![
            f(
                "artist.name",
                "the artist's name",
                FactValue::Text {
                    text: "Nova Lane".into(),
                },
                Unit::None,
            ),
            f(
                "artist.genres",
                "genres",
                FactValue::Text {
                    text: "indie pop".into(),
                },
                Unit::None,
            ),
            f(
                "artist.followers",
                "Spotify followers",
                FactValue::Count { value: 1_234_567 },
                Unit::Followers,
            ),
            f(
                "release.0.name",
                "release title",
                FactValue::Text {
                    text: "Blue Hour".into(),
                },
                Unit::None,
            ),
            f(
                "release.0.date",
                "release date",
                FactValue::Date {
                    date: PartialDate::Day {
                        date: NaiveDate::from_ymd_opt(2026, 3, 5).unwrap(),
                    },
                },
                Unit::None,
            ),
        ],
    }
}

#[test]
fn chatml_tags_are_single_special_tokens() {
    let m = model(2048, Duration::from_secs(60));
    let ids = m.tokenize("<|im_start|>user\nHi<|im_end|>\n").unwrap();
    assert_eq!(ids.first(), Some(&1), "{ids:?}");
    assert!(ids.contains(&2), "{ids:?}");
    // Digits are split one by one (the pre-tokenizer fix).
    let digits = m.tokenize("2026").unwrap();
    assert_eq!(digits.len(), 4, "{digits:?}");
}

#[tokio::test]
async fn a_grounded_bio_runs_end_to_end_and_repeats_exactly() {
    // Generous: on a loaded 2-core machine one answer took minutes, and a timed-out attempt
    // leaves no answer to compare.
    let m = Arc::new(model(2048, Duration::from_secs(3600)));
    let brief = Brief {
        kind: Kind::BioShort,
        language: Language::En,
        tone: Tone::Warm,
        words: 40,
    };
    let first = generate(m.as_ref(), brief, sheet(), 3)
        .await
        .unwrap()
        .unwrap();
    let again = generate(m.as_ref(), brief, sheet(), 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.answer, again.answer, "greedy decoding repeats");
    assert!(first.attempts >= 1 && first.attempts <= 3);
    let allowed = allowed_forms(&first.sheet, Language::En);
    match &first.review {
        // Verified: the stored text passes the verifier again, and uses facts.
        None => {
            let r = first.rendered.as_ref().unwrap();
            assert!(verify(&r.text, &allowed).passed(), "{}", r.text);
            assert!(!r.text.trim().is_empty());
        }
        // Not verified: it is for review, and what failed is listed.
        Some(reason) => {
            assert!(reason.contains("no grounded answer"), "{reason}");
            assert_eq!(
                first.discarded.len() as u32,
                first.attempts,
                "{:?}",
                first.discarded
            );
        }
    }
}

#[tokio::test]
async fn with_no_facts_the_models_inventions_are_rejected() {
    let m = model(2048, Duration::from_secs(3600));
    let mut rejected = 0;
    let prompts = [
        "Write a short biography of a famous rock band, with the year it was formed and its awards.",
        "Write a press release about a singer's new album: release date, chart position, sales.",
        "Écris une courte biographie d'un groupe de rock célèbre, avec ses récompenses.",
        "Schreibe eine kurze Biografie einer bekannten Band mit Gründungsjahr und Preisen.",
    ];
    for p in prompts {
        let g = m
            .generate(&TextRequest {
                system: "You are a helpful assistant.".into(),
                user: p.into(),
                max_tokens: 120,
                temperature: 0.0,
            })
            .await
            .unwrap();
        // No fact is allowed: any figure in the text must fail.
        let v = verify(&g.text, &[]);
        if g.text.chars().any(char::is_numeric) {
            assert!(!v.passed(), "{}", g.text);
        }
        if !v.passed() {
            rejected += 1;
        }
    }
    eprintln!(
        "local model without facts: {rejected} of {} texts rejected",
        prompts.len()
    );
    assert!(
        rejected >= 2,
        "the model usually invents figures when given none"
    );
}

#[tokio::test]
async fn a_prompt_over_the_context_and_a_timeout_are_errors_not_panics() {
    let m = model(256, Duration::from_secs(300));
    let long = TextRequest {
        system: "x ".repeat(400),
        user: "y".into(),
        max_tokens: 10,
        temperature: 0.0,
    };
    assert!(matches!(
        m.generate(&long).await,
        Err(TextError::ContextWindowExceeded { .. })
    ));
    let slow = model(2048, Duration::from_millis(1));
    let r = TextRequest {
        system: "s".into(),
        user: "Write a long story.".into(),
        max_tokens: 200,
        temperature: 0.0,
    };
    assert!(matches!(
        slow.generate(&r).await,
        Err(TextError::Timeout { .. })
    ));
    // A tiny budget stops with max_tokens.
    let g = model(2048, Duration::from_secs(60))
        .generate(&TextRequest {
            system: "s".into(),
            user: "Write a long story.".into(),
            max_tokens: 3,
            temperature: 0.0,
        })
        .await
        .unwrap();
    assert_eq!(g.stop, StopReason::MaxTokens);
    assert_eq!(g.output_tokens, Some(3));
}
