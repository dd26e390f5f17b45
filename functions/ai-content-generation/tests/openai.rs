//! The OpenAI-compatible adapter against a loopback fake of `POST /v1/chat/completions`.
//!
//! The fake checks every request against the published request shape of the chat completions
//! API (`model` and a non-empty `messages` of known roles with text content; `max_tokens`,
//! `temperature` and `n` in range; function tools with a valid name and an object schema;
//! a `tool_choice` naming a declared tool; a bearer key when one is configured) and answers
//! in the published response shape, or with the API's error bodies: 429 with `Retry-After`,
//! `insufficient_quota`, `context_length_exceeded`, `invalid_api_key`, 5xx, a slow answer and
//! an oversized one. The scenario is the model's name, as in the Bedrock fake.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ai_content_generation::drafts::Status;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use backbone::openai::{DRAFT_TOOL, OpenAiConfig, OpenAiGenerator};
use backbone::ports::{StopReason, TextError, TextGenerator, TextRequest};
use secrecy::SecretString;
use serde_json::{Value, json};

use support::{ARTIST, completed, full_artist, invoke, new_app, stored};

const KEY: &str = "sk-fixture-openai-key-000111";

/// One request body, with what was wrong with it (empty when it conforms).
type Exchange = (Value, Vec<String>);

#[derive(Clone, Default)]
struct Fake {
    /// Every request received.
    log: Arc<Mutex<Vec<Exchange>>>,
}

/// What is wrong with a chat completions request, per the published request shape.
fn violations(headers: &HeaderMap, body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        out.push("Authorization is not the bearer key".to_owned());
    }
    if body["model"].as_str().is_none_or(str::is_empty) {
        out.push("model: a non-empty string is required".into());
    }
    match body["messages"].as_array() {
        Some(messages) if !messages.is_empty() => {
            for (i, m) in messages.iter().enumerate() {
                let role = m["role"].as_str().unwrap_or("");
                if !["system", "developer", "user", "assistant", "tool"].contains(&role) {
                    out.push(format!("messages[{i}].role: {role:?} is not a role"));
                }
                if !m["content"].is_string() {
                    out.push(format!("messages[{i}].content: a string is required"));
                }
            }
        }
        _ => out.push("messages: a non-empty array is required".into()),
    }
    if body["max_tokens"].as_u64().is_none_or(|n| n == 0) {
        out.push("max_tokens: a positive integer".into());
    }
    if !body["temperature"]
        .as_f64()
        .is_some_and(|t| (0.0..=2.0).contains(&t))
    {
        out.push("temperature: 0 to 2".into());
    }
    if body["n"].as_u64() != Some(1) {
        out.push("n: exactly one choice is read".into());
    }
    let mut declared = Vec::new();
    if let Some(tools) = body.get("tools") {
        for (i, t) in tools.as_array().into_iter().flatten().enumerate() {
            let name = t["function"]["name"].as_str().unwrap_or("");
            let valid = (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if t["type"] != "function" || !valid {
                out.push(format!("tools[{i}]: a function with a valid name"));
            }
            if t["function"]["parameters"]["type"] != "object" {
                out.push(format!("tools[{i}].function.parameters: an object schema"));
            }
            declared.push(name.to_owned());
        }
    }
    if let Some(choice) = body.get("tool_choice") {
        let named = choice["function"]["name"].as_str().unwrap_or("");
        if choice["type"] != "function" || !declared.iter().any(|d| d == named) {
            out.push("tool_choice: must name a declared function".into());
        }
    }
    out
}

fn completion(message: Value, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-fixture",
        "object": "chat.completion",
        "created": 1_764_061_200,
        "model": "fake",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
    })
}

fn tool_answer(arguments: &str) -> Value {
    json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": DRAFT_TOOL, "arguments": arguments},
    }]})
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(
            json!({"error": {"message": message, "type": "invalid_request_error",
                              "param": null, "code": code}}),
        ),
    )
        .into_response()
}

async fn chat(State(fake): State<Fake>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let wrong = violations(&headers, &body);
    fake.log.lock().unwrap().push((body.clone(), wrong.clone()));
    let scenario = body["model"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches("fake.")
        .to_owned();
    if !wrong.is_empty() && scenario != "wrong-key" {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &wrong.join("; "),
        );
    }
    let grounded =
        r#"{"text": "Meet {{artist.name}}. On Spotify the artist has {{artist.followers}}."}"#;
    let answer = match scenario.as_str() {
        "tool-use" => completion(tool_answer(grounded), "tool_calls"),
        // Some servers end a forced call with `stop`.
        "tool-stop" => completion(tool_answer(grounded), "stop"),
        "content" => completion(
            json!({"role": "assistant", "content": "Meet {{artist.name}}.", "refusal": null}),
            "stop",
        ),
        "length" => completion(tool_answer(r#"{"text": "Meet {{artist"#), "length"),
        "filtered" => completion(
            json!({"role": "assistant", "content": null}),
            "content_filter",
        ),
        "refusal" => completion(
            json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
            "stop",
        ),
        "invented" => completion(
            tool_answer(r#"{"text": "{{artist.name}} won 3 awards in 2019."}"#),
            "tool_calls",
        ),
        "throttle" => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "7")],
                Json(
                    json!({"error": {"message": "Rate limit reached", "type": "requests",
                                      "param": null, "code": "rate_limit_exceeded"}}),
                ),
            )
                .into_response();
        }
        "quota" => {
            return api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "You exceeded your current quota",
            );
        }
        "too-long" => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "context_length_exceeded",
                "This model's maximum context length is 8192 tokens.",
            );
        }
        "wrong-key" => {
            return api_error(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "Incorrect API key provided.",
            );
        }
        "internal" => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "upstream failed").into_response();
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            completion(tool_answer(grounded), "tool_calls")
        }
        "huge" => {
            let text = "a".repeat(2 * 1024 * 1024);
            completion(json!({"role": "assistant", "content": text}), "stop")
        }
        other => return api_error(StatusCode::NOT_FOUND, "model_not_found", other),
    };
    Json(answer).into_response()
}

async fn start() -> (Fake, SocketAddr) {
    let fake = Fake::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(chat))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, addr)
}

fn generator(addr: SocketAddr, scenario: &str, key: &str, tools: bool) -> OpenAiGenerator {
    OpenAiGenerator::new(OpenAiConfig {
        base_url: format!("http://{addr}/v1"),
        model: format!("fake.{scenario}"),
        api_key: Some(SecretString::from(key.to_owned())),
        context_tokens: 8192,
        timeout: Duration::from_millis(800),
        tools,
    })
    .unwrap()
}

fn request() -> TextRequest {
    TextRequest {
        system: "You write a short artist biography.".into(),
        user: "Kind: bio_short\nLanguage: en\nFacts:\n- {{artist.name}} (name): Nova\n".into(),
        max_tokens: 214,
        temperature: 0.0,
    }
}

#[tokio::test]
async fn every_finish_reason_maps_and_every_request_conforms() {
    let (fake, addr) = start().await;
    let grounded = "Meet {{artist.name}}. On Spotify the artist has {{artist.followers}}.";
    for (scenario, tools, stop, text) in [
        ("tool-use", true, StopReason::ToolUse, grounded),
        ("tool-stop", true, StopReason::EndTurn, grounded),
        (
            "content",
            false,
            StopReason::EndTurn,
            "Meet {{artist.name}}.",
        ),
        // A cut call leaves unfinished arguments: no text, and the stop says why.
        ("length", true, StopReason::MaxTokens, ""),
        ("filtered", true, StopReason::ContentFiltered, ""),
        ("refusal", true, StopReason::ContentFiltered, ""),
    ] {
        let g = generator(addr, scenario, KEY, tools)
            .generate(&request())
            .await
            .unwrap_or_else(|e| panic!("{scenario}: {e}"));
        assert_eq!(g.stop, stop, "{scenario}");
        assert_eq!(g.text, text, "{scenario}");
        assert_eq!(g.model, format!("openai:fake.{scenario}"));
        assert_eq!((g.input_tokens, g.output_tokens), (Some(120), Some(30)));
    }
    let log = fake.log.lock().unwrap().clone();
    assert_eq!(log.len(), 6);
    for (body, wrong) in &log {
        assert!(wrong.is_empty(), "{wrong:?} in {body}");
    }
    let (first, _) = &log[0];
    assert_eq!(first["tool_choice"]["function"]["name"], DRAFT_TOOL);
    assert_eq!(first["max_tokens"], 214);
    assert_eq!(first["messages"][0]["role"], "system");
    assert_eq!(first["messages"][1]["role"], "user");
    // Without tools, no tool is declared or forced.
    let (plain, _) = &log[2];
    assert!(plain.get("tools").is_none() && plain.get("tool_choice").is_none());
}

#[tokio::test]
async fn errors_are_classified_and_never_carry_the_key() {
    let (_fake, addr) = start().await;
    match generator(addr, "throttle", KEY, true)
        .generate(&request())
        .await
    {
        Err(TextError::Throttled { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("{other:?}"),
    }
    let mut errors = Vec::new();
    for (scenario, key) in [
        ("quota", KEY),
        ("too-long", KEY),
        ("wrong-key", "sk-another-fixture-key-999"),
        ("internal", KEY),
        ("slow", KEY),
        ("huge", KEY),
        ("no-such-model", KEY),
    ] {
        let err = generator(addr, scenario, key, true)
            .generate(&request())
            .await
            .expect_err(scenario);
        errors.push((scenario, err));
    }
    let kind = |s: &str| {
        errors
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, e)| e)
            .unwrap()
    };
    assert!(matches!(kind("quota"), TextError::Refused { .. }));
    assert!(matches!(
        kind("too-long"),
        TextError::ContextWindowExceeded { .. }
    ));
    assert!(
        matches!(kind("wrong-key"), TextError::Refused { reason, .. } if reason.contains("invalid_api_key"))
    );
    assert!(matches!(kind("internal"), TextError::Unavailable { .. }));
    assert!(matches!(kind("slow"), TextError::Timeout { .. }));
    assert!(matches!(kind("huge"), TextError::Unavailable { .. }));
    assert!(matches!(kind("no-such-model"), TextError::Refused { .. }));
    for (scenario, err) in &errors {
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("sk-") && !shown.contains("127.0.0.1"),
            "{scenario}: {shown}"
        );
    }
}

#[tokio::test]
async fn a_grounded_draft_is_written_through_the_endpoint_and_an_invented_figure_is_not_kept() {
    let (fake, addr) = start().await;
    let app = new_app(Arc::new(generator(addr, "tool-use", KEY, true)));
    full_artist(&app.db).await;
    let out = completed(
        invoke(
            &app,
            json!({"action": "draft", "artist": ARTIST, "kind": "bio_short", "language": "en"}),
        )
        .await,
    );
    assert_eq!(out["verified"], true, "{out}");
    assert_eq!(
        out["text"],
        "Meet Nova Lane. On Spotify the artist has 1.2M\u{a0}followers."
    );
    let draft = stored(&app.db, out["draft"].as_str().unwrap()).await;
    assert_eq!(draft.model, "openai:fake.tool-use");
    // The prompt the endpoint got carries the fact sheet as placeholders, not the figures.
    let log = fake.log.lock().unwrap().clone();
    let user = log[0].0["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(user.contains("{{artist.followers}}"), "{user}");

    let app = new_app(Arc::new(generator(addr, "invented", KEY, true)));
    full_artist(&app.db).await;
    let out = completed(
        invoke(
            &app,
            json!({"action": "draft", "artist": ARTIST, "kind": "bio_short", "language": "en"}),
        )
        .await,
    );
    assert_eq!(out["verified"], false, "{out}");
    let draft = stored(&app.db, out["draft"].as_str().unwrap()).await;
    assert_eq!(draft.status, Status::Draft);
    assert!(!draft.verification.passed);
    assert!(draft.review.is_some(), "left for a person to review");
}
