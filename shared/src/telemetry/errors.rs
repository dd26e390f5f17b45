//! Errors and panics to Sentry, when `SENTRY_DSN` is set.
//!
//! The harness reports what an operator must look at: a record that fails for good
//! (dead-lettered as permanent, or rejected as invalid), a panic in a task, and an invocation
//! that fails as a whole. Each event carries the task, version, request id, trace id and
//! message id as tags. Transient failures that SQS retries are not reported: they are counted
//! in the metrics, and they page through the DLQ alarms if they never pass.
//!
//! No secret leaves in an event: every string of it (message, exception, tags, contexts,
//! breadcrumbs) is scrubbed of the values of secret-named configuration variables
//! (containing `secret`, `token`, `password`, ..., or ending in `_key`, in any case), of the values under secret-named fields
//! of the input being processed, and of `Bearer`/`Basic` credentials. The input body itself is
//! never attached.
//!
//! Events are queued to sentry's reqwest transport (its own thread) and flushed before the
//! invocation returns, since Lambda freezes the process between invocations.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sentry::protocol::{Event, Exception, Level};
use sentry::{Client, ClientOptions, Hub, Scope};
use serde_json::Value;

use crate::config::{ConfigError, EnvSource, optional};

/// What replaces a secret in an event.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not scrubbed: they would match everywhere (`1`, `yes`).
const MIN_SECRET_LEN: usize = 6;

/// The longest the harness waits for Sentry before it returns an invocation.
pub const MAX_FLUSH: Duration = Duration::from_secs(2);

/// The values an event must never contain.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redactions(Vec<String>);

impl fmt::Debug for Redactions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactions({} values)", self.0.len())
    }
}

impl Redactions {
    /// No values (the patterns still apply).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` (ignored when too short to be told apart from ordinary text).
    pub fn push(&mut self, value: impl Into<String>) {
        let value = value.into();
        if value.len() >= MIN_SECRET_LEN && !self.0.contains(&value) {
            self.0.push(value);
            // Longest first, so a secret that contains another is replaced whole.
            self.0.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// The values of the secret-named variables of `env`.
    pub fn from_env(env: &dyn EnvSource) -> Self {
        let mut out = Self::new();
        for (name, value) in env.vars() {
            if is_secret_name(&name) {
                out.push(value.trim());
            }
        }
        out
    }

    /// These values plus the string values under secret-named fields of `input`, at any depth.
    pub fn with_input(&self, input: &Value) -> Self {
        let mut out = self.clone();
        collect_input_secrets(input, false, &mut out);
        out
    }

    /// How many values are scrubbed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no value is scrubbed (the patterns still apply).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every secret value and every `Bearer`/`Basic` credential replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.0 {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        scrub_credentials(&out)
    }

    /// `event` with every string in it scrubbed; `None` (the event is dropped) if it cannot be
    /// rebuilt, since sending it unscrubbed is not an option.
    pub fn scrub_event(&self, event: Event<'static>) -> Option<Event<'static>> {
        let mut value = serde_json::to_value(&event).ok()?;
        self.scrub_value(&mut value);
        serde_json::from_value(value).ok()
    }

    fn scrub_value(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                let scrubbed = self.scrub(text);
                if scrubbed != *text {
                    *text = scrubbed;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.scrub_value(item)),
            Value::Object(map) => {
                // Keys too: a tag or extra could be named after a value.
                let entries = std::mem::take(map);
                for (key, mut item) in entries {
                    self.scrub_value(&mut item);
                    map.insert(self.scrub(&key), item);
                }
            }
            _ => {}
        }
    }
}

/// Whether a variable or field name says its value is a credential.
fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    [
        "secret",
        "token",
        "password",
        "passwd",
        "credential",
        "api_key",
        "apikey",
        "private_key",
        "access_key",
        "authorization",
        "routing_key",
    ]
    .iter()
    .any(|word| lower.contains(word))
        || lower.ends_with("_key")
}

fn collect_input_secrets(value: &Value, under_secret: bool, out: &mut Redactions) {
    match value {
        Value::String(text) if under_secret => out.push(text.as_str()),
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_input_secrets(item, under_secret, out)),
        Value::Object(map) => {
            for (key, item) in map {
                collect_input_secrets(item, under_secret || is_secret_name(key), out);
            }
        }
        _ => {}
    }
}

/// Replaces the credential after `Bearer ` or `Basic ` (any case), up to a space or quote.
fn scrub_credentials(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let next = ["bearer ", "basic "]
            .iter()
            .filter_map(|scheme| lower[at..].find(scheme).map(|i| (at + i, scheme.len())))
            .min();
        let Some((start, len)) = next else {
            break;
        };
        let value_start = start + len;
        let value_end = text[value_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '}'))
            .map_or(text.len(), |i| value_start + i);
        out.push_str(&text[at..value_start]);
        if value_end > value_start {
            out.push_str(REDACTED);
        }
        at = value_end;
    }
    out.push_str(&text[at..]);
    out
}

/// Where errors go: `SENTRY_DSN`, with `SENTRY_ENVIRONMENT`, and what to scrub.
#[derive(Clone, PartialEq)]
pub struct SentryConfig {
    /// The project's DSN.
    pub dsn: sentry::types::Dsn,
    /// `SENTRY_ENVIRONMENT` (the template sets the stage), if set.
    pub environment: Option<String>,
    /// The values of the secret-named variables of the environment.
    pub redactions: Redactions,
}

impl fmt::Debug for SentryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentryConfig")
            .field("host", &self.dsn.host())
            .field("project", &self.dsn.project_id().to_string())
            .field("environment", &self.environment)
            .field("redactions", &self.redactions)
            .finish()
    }
}

impl SentryConfig {
    /// The Sentry settings of `env`: `None` without `SENTRY_DSN`, an error if it is not a DSN.
    pub fn from_env(env: &dyn EnvSource) -> Result<Option<Self>, ConfigError> {
        let Some(raw) = optional(env, "SENTRY_DSN") else {
            return Ok(None);
        };
        let dsn = raw
            .parse::<sentry::types::Dsn>()
            .map_err(|err| ConfigError::Malformed {
                name: "SENTRY_DSN",
                reason: format!("not a Sentry DSN ({err})"),
            })?;
        Ok(Some(Self {
            dsn,
            environment: optional(env, "SENTRY_ENVIRONMENT"),
            redactions: Redactions::from_env(env),
        }))
    }
}

/// Tags every event of one message (or invocation) carries.
#[derive(Debug, Clone, Default)]
pub struct EventTags<'a> {
    /// The Lambda request id.
    pub request_id: &'a str,
    /// The X-Ray trace id.
    pub trace_id: &'a str,
    /// The message id, for a message's events.
    pub message_id: Option<&'a str>,
}

/// The Sentry client of one function, built once at cold start.
#[derive(Clone)]
pub struct ErrorReporter {
    client: Arc<Client>,
    redactions: Redactions,
    task: String,
    version: String,
}

impl fmt::Debug for ErrorReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorReporter")
            .field("task", &self.task)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The body of the message a hub reports for, searched for secret-named fields.
#[derive(Debug, Clone)]
pub enum MessageInput {
    /// A body that arrived as JSON.
    Json(Value),
    /// A body that arrived as text (JSON or not).
    Text(String),
}

impl ErrorReporter {
    /// A client for `task` at `version` sending to `config`'s DSN. Building it installs
    /// sentry's panic hook (once per process), which reports a panic to the hub bound to the
    /// panicking future (see [`ErrorReporter::hub`]).
    pub fn new(config: &SentryConfig, task: &str, version: &str) -> Self {
        let redactions = config.redactions.clone();
        let scrub = redactions.clone();
        let mut options = ClientOptions::default();
        options.dsn = Some(config.dsn.clone());
        options.release = Some(Cow::Owned(format!("{task}@{version}")));
        // Explicit, so sentry's defaults do not read `SENTRY_ENVIRONMENT` behind the config.
        options.environment = Some(Cow::Owned(
            config
                .environment
                .clone()
                .unwrap_or_else(|| "production".to_owned()),
        ));
        options.send_default_pii = false;
        options.before_send = Some(Arc::new(move |event| scrub.scrub_event(event)));
        options.shutdown_timeout = MAX_FLUSH;
        let client = Client::with_options(sentry::apply_defaults(options));
        Self {
            client: Arc::new(client),
            redactions,
            task: task.to_owned(),
            version: version.to_owned(),
        }
    }

    /// A hub whose scope tags every event with the task, version and `tags`, and scrubs the
    /// configured secrets and those found in `input`. Bind it to the future that processes the
    /// message (`sentry::SentryFutureExt::bind_hub`) so a panic there is reported with them.
    pub fn hub(&self, tags: &EventTags<'_>, input: Option<MessageInput>) -> Arc<Hub> {
        // The input is searched for secrets only when an event is reported: most messages
        // report nothing, and a text body would otherwise be parsed a second time.
        let base = self.redactions.clone();
        let redactions = std::sync::OnceLock::new();
        let scrub = move |event| {
            redactions
                .get_or_init(|| match &input {
                    Some(MessageInput::Json(value)) => base.with_input(value),
                    Some(MessageInput::Text(text)) => serde_json::from_str::<Value>(text)
                        .map_or_else(|_| base.clone(), |value| base.with_input(&value)),
                    None => base.clone(),
                })
                .scrub_event(event)
        };
        let mut scope = Scope::default();
        scope.set_tag("task", &self.task);
        scope.set_tag("version", &self.version);
        scope.set_tag("request_id", tags.request_id);
        scope.set_tag("trace_id", tags.trace_id);
        if let Some(message_id) = tags.message_id {
            scope.set_tag("message_id", message_id);
        }
        scope.set_context(
            "invocation",
            sentry::protocol::Context::Other(
                [
                    ("task".to_owned(), Value::from(self.task.as_str())),
                    ("version".to_owned(), Value::from(self.version.as_str())),
                    ("requestId".to_owned(), Value::from(tags.request_id)),
                    ("traceId".to_owned(), Value::from(tags.trace_id)),
                    (
                        "messageId".to_owned(),
                        tags.message_id.map_or(Value::Null, Value::from),
                    ),
                ]
                .into_iter()
                .collect(),
            ),
        );
        scope.add_event_processor(scrub);
        Arc::new(Hub::new(Some(self.client.clone()), Arc::new(scope)))
    }

    /// Reports a failure of class `kind` (`permanent`, `invalid`, `invocation`) with its error
    /// chain on `hub`.
    pub fn report(hub: &Hub, level: Level, kind: &str, reason: &str) {
        let event = Event {
            level,
            message: Some(format!("{kind} failure: {reason}")),
            exception: vec![Exception {
                ty: format!("{kind}_failure"),
                value: Some(reason.to_owned()),
                ..Exception::default()
            }]
            .into(),
            // One issue per task and kind, not one per message id in the reason.
            fingerprint: Cow::Owned(vec![
                Cow::Borrowed("{{ default }}"),
                Cow::Owned(kind.to_owned()),
            ]),
            ..Event::default()
        };
        hub.capture_event(event);
    }

    /// Sends what is queued, waiting at most `timeout` (off the async worker threads).
    pub async fn flush(&self, timeout: Duration) -> bool {
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || client.flush(Some(timeout)))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn secrets_and_credentials_are_scrubbed() {
        let env: HashMap<&str, &str> = [
            ("SPOTIFY_CLIENT_SECRET", "cs-0123456789"),
            ("OPENAI_API_KEY", "sk-abcdefgh"),
            ("STORE_TABLE", "music-store"),
            ("FLAG_TOKEN", "yes"),
        ]
        .into();
        let redactions = Redactions::from_env(&env).with_input(
            &serde_json::json!({"artist": "a", "auth": {"refresh_token": "rt-999999"}}),
        );
        assert_eq!(redactions.len(), 3, "{redactions:?}");
        let text =
            "failed with cs-0123456789 and rt-999999, Authorization: Bearer abc.def; music-store";
        assert_eq!(
            redactions.scrub(text),
            "failed with [redacted] and [redacted], Authorization: Bearer [redacted]; music-store"
        );
    }

    #[test]
    fn a_malformed_dsn_names_the_variable_and_no_dsn_is_off() {
        let env: HashMap<&str, &str> = [("SENTRY_DSN", "not a dsn")].into();
        assert!(matches!(
            SentryConfig::from_env(&env),
            Err(ConfigError::Malformed {
                name: "SENTRY_DSN",
                ..
            })
        ));
        let env: HashMap<&str, &str> = HashMap::new();
        assert_eq!(SentryConfig::from_env(&env), Ok(None));
        let env: HashMap<&str, &str> = [("SENTRY_DSN", "http://public@127.0.0.1:9/42")].into();
        let config = SentryConfig::from_env(&env).unwrap().unwrap();
        assert_eq!(config.dsn.project_id().to_string(), "42");
        assert!(!format!("{config:?}").contains("public"));
    }
}
