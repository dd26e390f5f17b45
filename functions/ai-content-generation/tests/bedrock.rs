//! The Bedrock Converse adapter against a loopback fake whose every request and response is
//! validated against botocore's bedrock-runtime service model (`infra/bedrock_fake.py`, its
//! botocore pinned in `infra/requirements-botocore.txt`; `bash infra/pytools.sh install
//! botocore` makes the venv). Every stop reason, throttling, 5xx, a too-long input and a
//! timeout.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use backbone::aws::bedrock::{BedrockConfig, BedrockGenerator, DRAFT_TOOL};
use backbone::ports::{StopReason, TextError, TextGenerator, TextRequest};
use serde_json::Value;

struct Fake {
    child: Child,
    url: String,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fake() -> Fake {
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let python = format!("{root}/.venv/botocore/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run `bash infra/pytools.sh install botocore` (scripts/test.sh does)"
    );
    let mut child = Command::new(python)
        .arg(format!("{root}/infra/bedrock_fake.py"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.split_whitespace().nth(1).expect("PORT <n>").to_owned();
    Fake {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn generator(fake: &Fake, scenario: &str, guardrail: bool) -> BedrockGenerator {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .endpoint_url(&fake.url)
        .retry_config(
            aws_sdk_bedrockruntime::config::retry::RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build();
    BedrockGenerator::with_client(
        aws_sdk_bedrockruntime::Client::from_conf(config),
        BedrockConfig {
            model_id: format!("fake.{scenario}"),
            context_tokens: 200_000,
            timeout: Duration::from_millis(800),
            guardrail: guardrail.then(|| ("gr-1".to_owned(), "1".to_owned())),
        },
    )
}

fn request() -> TextRequest {
    TextRequest {
        system: "You write a short artist biography.".into(),
        user: "Kind: bio_short\nLanguage: en\nFacts:\n- {{artist.name}} (name): Nova\n".into(),
        max_tokens: 214,
        temperature: 0.0,
    }
}

async fn log(fake: &Fake) -> Vec<Value> {
    reqwest::get(format!("{}/_log", fake.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_stop_reason_maps_and_every_exchange_conforms_to_the_service_model() {
    let fake = fake();
    for (scenario, stop, text) in [
        ("tool-use", StopReason::ToolUse, "Meet {{artist.name}}."),
        ("end-turn", StopReason::EndTurn, "Meet {{artist.name}}."),
        (
            "stop-sequence",
            StopReason::StopSequence,
            "Meet {{artist.name}}.",
        ),
        ("max-tokens", StopReason::MaxTokens, "Meet {{artist"),
        ("content-filtered", StopReason::ContentFiltered, ""),
        ("context-window", StopReason::ModelContextWindowExceeded, ""),
    ] {
        let g = generator(&fake, scenario, false)
            .generate(&request())
            .await
            .unwrap();
        assert_eq!(g.stop, stop, "{scenario}");
        assert_eq!(g.text, text, "{scenario}");
        assert_eq!(g.model, format!("bedrock:fake.{scenario}"));
        assert_eq!((g.input_tokens, g.output_tokens), (Some(120), Some(30)));
        assert!(g.guardrail_trace.is_none());
    }
    let g = generator(&fake, "guardrail", true)
        .generate(&request())
        .await
        .unwrap();
    assert_eq!(g.stop, StopReason::GuardrailIntervened);
    let trace = g.guardrail_trace.expect("trace kept").to_string();
    assert!(
        trace.contains("Misconduct") && trace.contains("Blocked"),
        "{trace}"
    );

    let exchanges = log(&fake).await;
    assert_eq!(exchanges.len(), 7);
    for e in &exchanges {
        assert!(e["requestError"].is_null(), "{e}");
        assert!(e["responseError"].is_null(), "{e}");
        assert_eq!(e["status"], 200);
    }
    // The forced tool call, the budget, greedy decoding and, where configured, the guardrail.
    let first = &exchanges[0]["request"];
    assert_eq!(
        first["toolConfig"]["toolChoice"]["tool"]["name"],
        DRAFT_TOOL
    );
    assert_eq!(first["inferenceConfig"]["maxTokens"], 214);
    assert_eq!(
        first["system"][0]["text"],
        "You write a short artist biography."
    );
    assert!(first.get("guardrailConfig").is_none());
    let guarded = &exchanges[6]["request"]["guardrailConfig"];
    assert_eq!(guarded["guardrailIdentifier"], "gr-1");
    assert_eq!(guarded["trace"], "enabled");
}

#[tokio::test]
async fn errors_are_classified_for_retry_review_or_refusal() {
    let fake = fake();
    // Throttled once: the SDK's retry gets the answer.
    let g = generator(&fake, "throttle-once", false)
        .generate(&request())
        .await
        .unwrap();
    assert_eq!(g.stop, StopReason::ToolUse);
    match generator(&fake, "throttle-always", false)
        .generate(&request())
        .await
    {
        Err(TextError::Throttled { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        generator(&fake, "too-long", false)
            .generate(&request())
            .await,
        Err(TextError::ContextWindowExceeded { .. })
    ));
    match generator(&fake, "denied", false).generate(&request()).await {
        Err(TextError::Refused { reason, .. }) => {
            assert!(reason.contains("AccessDenied"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        generator(&fake, "internal", false)
            .generate(&request())
            .await,
        Err(TextError::Unavailable { .. })
    ));
    assert!(matches!(
        generator(&fake, "slow", false).generate(&request()).await,
        Err(TextError::Timeout { .. })
    ));
    for e in log(&fake).await {
        assert!(e["requestError"].is_null(), "{e}");
    }
}

#[test]
fn configuration_names_the_missing_variable() {
    use std::collections::HashMap;
    let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let err = BedrockConfig::from_env(&env(&[])).unwrap_err();
    assert!(err.to_string().contains("BEDROCK_MODEL_ID"), "{err}");
    let err = BedrockConfig::from_env(&env(&[
        ("BEDROCK_MODEL_ID", "m"),
        ("BEDROCK_GUARDRAIL_ID", "g"),
    ]))
    .unwrap_err();
    assert!(
        err.to_string().contains("BEDROCK_GUARDRAIL_VERSION"),
        "{err}"
    );
    let ok = BedrockConfig::from_env(&env(&[
        ("BEDROCK_MODEL_ID", "anthropic.claude"),
        ("BEDROCK_TIMEOUT_SECONDS", "5"),
    ]))
    .unwrap();
    assert_eq!(ok.timeout, Duration::from_secs(5));
    assert!(ok.guardrail.is_none());
}
