//! Property-based fuzzing of what comes back from the model: the Bedrock Converse answer as
//! the adapter decodes it off the wire (the real SDK deserialiser and `BedrockGenerator`'s
//! reading of the structured tool answer, over loopback HTTP), and the placeholder parser and
//! renderer the answer text then goes through. No answer makes either panic; every refusal
//! says what is wrong.
//!
//! The loopback responder here answers each request with the case's body; it is the wire only
//! (the service-model fake of `tests/bedrock.rs` checks the exchanges' shapes).
//!
//! The case count is proptest's (`PROPTEST_CASES`, 256 unless set); the documented long run
//! (docs/reliability.md) sets `PROPTEST_CASES=100000`.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ai_content_generation::lang::Language;
use ai_content_generation::render::render;
use ai_content_generation::verify::Allowed;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use backbone::aws::bedrock::{BedrockConfig, BedrockGenerator, DRAFT_TOOL};
use backbone::fuzz::{arb_json, arb_text, near};
use backbone::ports::{TextGenerator, TextRequest};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the responder answers next: status, `x-amzn-ErrorType` (for error answers), body.
type Answer = (u16, Option<String>, Vec<u8>);

struct Wire {
    runtime: tokio::runtime::Runtime,
    answer: Arc<Mutex<Answer>>,
    generator: BedrockGenerator,
}

/// One runtime, one loopback responder and one generator for every case of the binary.
fn wire() -> &'static Wire {
    static WIRE: OnceLock<Wire> = OnceLock::new();
    WIRE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let answer: Arc<Mutex<Answer>> = Arc::new(Mutex::new((200, None, b"{}".to_vec())));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let served = answer.clone();
        runtime.spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    // One request per connection: read the head and the body, answer, close.
                    let mut request = Vec::new();
                    let mut buf = [0u8; 8192];
                    loop {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        if let Some(end) = find(&request, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if request.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    let (status, error_type, body) =
                        served.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    if let Some(kind) = error_type {
                        head.push_str(&format!("x-amzn-errortype: {kind}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        let config = aws_sdk_bedrockruntime::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .endpoint_url(&url)
            .retry_config(aws_sdk_bedrockruntime::config::retry::RetryConfig::disabled())
            .build();
        let generator = BedrockGenerator::with_client(
            aws_sdk_bedrockruntime::Client::from_conf(config),
            BedrockConfig {
                model_id: "fake.fuzz".into(),
                context_tokens: 200_000,
                timeout: Duration::from_secs(5),
                guardrail: None,
            },
        );
        Wire {
            runtime,
            answer,
            generator,
        }
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A Converse answer through the forced draft tool, as the service model shapes it.
fn tool_answer() -> Value {
    json!({
        "output": { "message": { "role": "assistant", "content": [
            { "toolUse": { "toolUseId": "tooluse_1", "name": DRAFT_TOOL,
                           "input": { "text": "Meet {{artist.name}}, with {{artist.followers}}." } } }
        ]}},
        "stopReason": "tool_use",
        "usage": { "inputTokens": 120, "outputTokens": 30, "totalTokens": 150 },
        "metrics": { "latencyMs": 412 }
    })
}

/// A Converse answer in plain text, stopped by a guardrail with its trace.
fn text_answer() -> Value {
    json!({
        "output": { "message": { "role": "assistant", "content": [
            { "text": "Meet {{artist.name}}." }, { "text": "Second {{artist" }
        ]}},
        "stopReason": "guardrail_intervened",
        "usage": { "inputTokens": 1, "outputTokens": 2, "totalTokens": 3 },
        "metrics": { "latencyMs": 1 },
        "trace": { "guardrail": { "modelOutput": ["x"] } }
    })
}

fn allowed() -> Vec<Allowed> {
    vec![
        Allowed {
            form: "Nova".into(),
            fact: "artist.name".into(),
        },
        Allowed {
            form: "1.2 million followers".into(),
            fact: "artist.followers".into(),
        },
        Allowed {
            form: "1,2\u{202f}Mio.\u{a0}Follower".into(),
            fact: "artist.followers.de".into(),
        },
    ]
}

fn request() -> TextRequest {
    TextRequest {
        system: "You write a short artist biography.".into(),
        user: "Kind: bio_short\nLanguage: en\nFacts:\n- {{artist.name}} (name): Nova\n".into(),
        max_tokens: 214,
        temperature: 0.0,
    }
}

/// Serialises the cases of the parallel test threads on the one responder.
static TURN: Mutex<()> = Mutex::new(());

/// Answers `answer`, decodes it through the adapter, and renders any text it carries.
fn converse(answer: Answer) -> Result<(), TestCaseError> {
    let wire = wire();
    // One responder for every test thread: a case holds it from its answer to its decoding.
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    *wire.answer.lock().unwrap_or_else(|p| p.into_inner()) = answer;
    let result = wire.runtime.block_on(wire.generator.generate(&request()));
    match result {
        Ok(generation) => {
            prop_assert_eq!(&generation.model, "bedrock:fake.fuzz");
            rendered(&generation.text)?;
        }
        Err(err) => prop_assert!(
            !err.to_string().trim().is_empty(),
            "a refusal without a reason"
        ),
    }
    Ok(())
}

/// Renders `text` for every language: never a panic; a refusal names its cause, and an
/// accepted text has no placeholder left.
fn rendered(text: &str) -> Result<(), TestCaseError> {
    for lang in [Language::En, Language::Fr, Language::De] {
        match render(text, &allowed(), lang) {
            Ok(r) => {
                prop_assert!(
                    !r.text.contains("{{"),
                    "a placeholder survived: {:?}",
                    r.text
                );
                // The sentences (trimmed) are the text, whitespace aside.
                let bare = |t: &str| t.chars().filter(|c| !c.is_whitespace()).collect::<String>();
                prop_assert_eq!(
                    bare(
                        &r.sentences
                            .iter()
                            .map(|s| s.text.as_str())
                            .collect::<String>()
                    ),
                    bare(&r.text),
                    "the sentences are the text"
                );
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }
    Ok(())
}

/// Text with placeholders, near-placeholders and sentence ends mixed in.
fn answer_text() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        Just("{{artist.name}}".to_owned()),
        Just("{{ artist.followers }}".to_owned()),
        Just("{{artist.followers.de}}".to_owned()),
        Just("{{artist.awards}}".to_owned()),
        Just("{{".to_owned()),
        Just("}}".to_owned()),
        Just("{".to_owned()),
        Just("{{}}".to_owned()),
        Just("{{{{artist.name}}}}".to_owned()),
        Just(". ".to_owned()),
        Just("! ".to_owned()),
        Just(" Mio. ".to_owned()),
        Just("12 345".to_owned()),
        Just("\u{a0}".to_owned()),
        "[a-z ]{0,12}",
        ".{0,8}",
    ];
    prop::collection::vec(part, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    /// Near-valid structured (tool) answers.
    #[test]
    fn near_valid_tool_answers_never_panic(value in near(tool_answer())) {
        converse((200, None, serde_json::to_vec(&value).expect("serialises")))?;
    }

    /// Near-valid text answers, with a guardrail trace.
    #[test]
    fn near_valid_text_answers_never_panic(value in near(text_answer())) {
        converse((200, None, serde_json::to_vec(&value).expect("serialises")))?;
    }

    /// The tool's text is any placeholder soup.
    #[test]
    fn any_tool_text_never_panics(text in answer_text()) {
        let mut value = tool_answer();
        value["output"]["message"]["content"][0]["toolUse"]["input"]["text"] = Value::String(text);
        converse((200, None, serde_json::to_vec(&value).expect("serialises")))?;
    }

    /// Any body, answered 200 or as a service error of any kind.
    #[test]
    fn any_body_and_status_never_panic(
        body in prop_oneof![arb_json().prop_map(|v| v.to_string()), arb_text()],
        status in prop_oneof![Just(200u16), Just(400u16), Just(403u16), Just(424u16), Just(429u16), Just(500u16), Just(503u16), 100u16..600],
        kind in prop_oneof![
            Just(None),
            Just(Some("ThrottlingException".to_owned())),
            Just(Some("ValidationException".to_owned())),
            Just(Some("ModelTimeoutException".to_owned())),
            Just(Some("AccessDeniedException".to_owned())),
            "[A-Za-z:#]{0,30}".prop_map(Some),
        ],
    ) {
        converse((status, kind, body.into_bytes()))?;
    }

    /// The placeholder parser and renderer on their own, over any answer text.
    #[test]
    fn any_answer_text_renders_or_is_refused(text in prop_oneof![answer_text(), arb_text()]) {
        rendered(&text)?;
    }
}

/// The templates are answers the adapter accepts, so the near-valid runs start inside the
/// decoder's language.
#[test]
fn the_fuzz_templates_decode() {
    let wire = wire();
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    for (template, text) in [
        (
            tool_answer(),
            "Meet {{artist.name}}, with {{artist.followers}}.",
        ),
        (text_answer(), "Meet {{artist.name}}.\nSecond {{artist"),
    ] {
        *wire.answer.lock().unwrap() = (200, None, template.to_string().into_bytes());
        let g = wire
            .runtime
            .block_on(wire.generator.generate(&request()))
            .unwrap();
        assert_eq!(g.text, text);
    }
    assert_eq!(
        render(
            "Meet {{artist.name}}, with {{artist.followers}}.",
            &allowed(),
            Language::En
        )
        .unwrap()
        .text,
        "Meet Nova, with 1.2 million followers."
    );
}
