//! Recognises what invoked the function and parses it without trusting it.
//!
//! Three shapes arrive: an SQS batch (`Records` with `eventSource: aws:sqs`), an EventBridge
//! event (`detail-type` + `detail`, from a rule or schedule), and a direct invocation whose
//! payload is the task input (EventBridge Scheduler's universal Lambda target, the CLI).

use std::collections::BTreeMap;

use aws_lambda_events::sqs::SqsMessage;
use serde_json::Value;

use crate::validate::ValidationError;

/// Largest message body accepted: 256 KiB, the EventBridge entry limit and the SQS limit that
/// this project's queues are configured with. Larger bodies are refused before parsing.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Longest idempotency key accepted from a message attribute.
pub const MAX_KEY_LEN: usize = 256;

/// The message attribute that carries a caller's idempotency key.
pub const IDEMPOTENCY_KEY_ATTRIBUTE: &str = "idempotency-key";

/// The key of a harness control payload: `{"harness": "verify-audit"}` (a direct invocation,
/// from the template's audit-verify schedule) asks the harness, not the task, to verify the
/// function's audit stream. No task input has this key.
pub const CONTROL_KEY: &str = "harness";

/// The control command that verifies the function's audit chain.
pub const VERIFY_AUDIT: &str = "verify-audit";

/// One SQS record, as much of it as could be read.
#[derive(Debug, Clone)]
pub struct SqsRecord {
    /// `messageId`: the batch item identifier.
    pub message_id: String,
    /// `receiptHandle`, to change the visibility.
    pub receipt_handle: Option<String>,
    /// The body; empty if the record could not be read.
    pub body: String,
    /// The `AWSTraceHeader` system attribute.
    pub trace_header: Option<String>,
    /// `MessageGroupId`, on FIFO queues.
    pub group_id: Option<String>,
    /// String message attributes (binary ones that are UTF-8 included).
    pub attributes: BTreeMap<String, String>,
    /// The idempotency key attribute, or why it is unusable.
    pub idempotency_key: Result<Option<String>, ValidationError>,
    /// Why the record itself is unusable, if it is.
    pub defect: Option<ValidationError>,
}

/// The invocation, recognised.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// An SQS batch; `fifo` when it came from a FIFO queue.
    Sqs {
        /// The records, in delivery order.
        records: Vec<SqsRecord>,
        /// Whether order must be kept (stop at the first failure).
        fifo: bool,
    },
    /// An EventBridge event.
    EventBridge {
        /// The event id, stable across EventBridge's retries.
        id: String,
        /// The `detail-type`.
        detail_type: String,
        /// The `detail`: the task input.
        detail: Value,
    },
    /// A direct invocation: the payload is the task input.
    Direct(Value),
    /// A scheduled request to verify the function's audit chain (see [`CONTROL_KEY`]).
    VerifyAudit,
}

/// Recognises `event`; an error names what is wrong with its shape.
pub fn recognise(event: Value) -> Result<Incoming, ValidationError> {
    let Value::Object(mut object) = event else {
        return Err(ValidationError::new(
            "event",
            format!("expected a JSON object, got {}", kind_of(&event)),
        ));
    };
    if let Some(records) = object.remove("Records") {
        let Value::Array(records) = records else {
            return Err(ValidationError::new(
                "event.Records",
                "expected a list of SQS records",
            ));
        };
        if records.is_empty() {
            return Err(ValidationError::new(
                "event.Records",
                "an SQS batch must hold at least one record",
            ));
        }
        let records = records
            .into_iter()
            .enumerate()
            .map(|(i, record)| sqs_record(i, record))
            .collect::<Result<Vec<_>, _>>()?;
        let fifo = records.iter().any(|r| r.group_id.is_some());
        return Ok(Incoming::Sqs { records, fifo });
    }
    if object.contains_key("detail-type") && object.contains_key("source") {
        let id = match object.get("id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => {
                return Err(ValidationError::new(
                    "event.id",
                    "an EventBridge event needs an id",
                ));
            }
        };
        let detail_type = object
            .get("detail-type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let detail = object
            .remove("detail")
            .unwrap_or(Value::Object(Default::default()));
        return Ok(Incoming::EventBridge {
            id,
            detail_type,
            detail,
        });
    }
    if let Some(command) = object.get(CONTROL_KEY) {
        return match command.as_str() {
            Some(VERIFY_AUDIT) => Ok(Incoming::VerifyAudit),
            _ => Err(ValidationError::new(
                format!("event.{CONTROL_KEY}"),
                format!("unknown harness command {command}: the one known is \"{VERIFY_AUDIT}\""),
            )),
        };
    }
    Ok(Incoming::Direct(Value::Object(object)))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn sqs_record(index: usize, raw: Value) -> Result<SqsRecord, ValidationError> {
    let field = format!("event.Records[{index}]");
    let message_id = raw
        .get("messageId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        // Without a message id a failure cannot be reported for this record alone, so the
        // whole event is refused: this only happens with hand-made events.
        .ok_or_else(|| ValidationError::new(format!("{field}.messageId"), "missing"))?;
    if raw.get("eventSource").and_then(Value::as_str) != Some("aws:sqs") {
        return Err(ValidationError::new(
            format!("{field}.eventSource"),
            "expected \"aws:sqs\"",
        ));
    }
    let message: SqsMessage = match serde_json::from_value(raw) {
        Ok(message) => message,
        Err(err) => {
            return Ok(SqsRecord {
                message_id,
                receipt_handle: None,
                body: String::new(),
                trace_header: None,
                group_id: None,
                attributes: BTreeMap::new(),
                idempotency_key: Ok(None),
                defect: Some(ValidationError::new(
                    field,
                    format!("not an SQS record: {err}"),
                )),
            });
        }
    };
    let mut attributes = BTreeMap::new();
    let mut idempotency_key = Ok(None);
    for (name, attribute) in &message.message_attributes {
        let text = match (&attribute.string_value, &attribute.binary_value) {
            (Some(text), _) => Ok(text.clone()),
            (None, Some(bytes)) => String::from_utf8(bytes.0.clone()).map_err(|err| {
                ValidationError::new(
                    format!("messageAttributes.{name}"),
                    format!(
                        "binary value is not valid UTF-8 (at byte {})",
                        err.utf8_error().valid_up_to()
                    ),
                )
            }),
            (None, None) => Err(ValidationError::new(
                format!("messageAttributes.{name}"),
                "has neither a string nor a binary value",
            )),
        };
        if name == IDEMPOTENCY_KEY_ATTRIBUTE {
            idempotency_key = text
                .clone()
                .and_then(|key| validate_key(name, key))
                .map(Some);
        }
        if let Ok(text) = text {
            attributes.insert(name.clone(), text);
        }
    }
    Ok(SqsRecord {
        message_id,
        receipt_handle: message.receipt_handle,
        body: message.body.unwrap_or_default(),
        trace_header: message.attributes.get("AWSTraceHeader").cloned(),
        group_id: message.attributes.get("MessageGroupId").cloned(),
        attributes,
        idempotency_key,
        defect: None,
    })
}

fn validate_key(name: &str, key: String) -> Result<String, ValidationError> {
    let field = format!("messageAttributes.{name}");
    if key.trim().is_empty() {
        return Err(ValidationError::new(field, "is empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ValidationError::new(
            field,
            format!("is {} bytes, the limit is {MAX_KEY_LEN}", key.len()),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(ValidationError::new(field, "holds control characters"));
    }
    Ok(key)
}

/// Parses raw invocation bytes as JSON, with an error that says where it went wrong.
pub fn parse_bytes(bytes: &[u8]) -> Result<Value, ValidationError> {
    if let Err(err) = std::str::from_utf8(bytes) {
        return Err(ValidationError::new(
            "event",
            format!(
                "is not valid UTF-8 (invalid byte at offset {})",
                err.valid_up_to()
            ),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|err| ValidationError::new("event", format!("is not JSON: {err}")))
}

/// Property-based fuzzing: no SQS batch, schedule event or invocation payload makes the
/// decoder panic; whatever it accepts, every record has a non-empty message id.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::{Incoming, parse_bytes, recognise};
    use crate::fuzz::{arb_json, arb_text, near};

    fn sqs_batch() -> Value {
        json!({ "Records": [{
            "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
            "body": "{\"artist\":\"4Z8W4fKeB5YxbusRsdQVPb\",\"amount\":3}",
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1545082649183",
                "MessageGroupId": "g1",
                "AWSTraceHeader": "Root=1-6925f5a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
            },
            "messageAttributes": {
                "idempotency-key": { "stringValue": "k-1", "dataType": "String" }
            },
            "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue.fifo",
            "awsRegion": "us-east-2"
        }]})
    }

    fn schedule_event() -> Value {
        json!({
            "version": "0",
            "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-11-25T06:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/daily"],
            "detail": { "watchlist": "demo" }
        })
    }

    fn check(value: Value) {
        if let Ok(Incoming::Sqs { records, .. }) = recognise(value) {
            assert!(records.iter().all(|r| !r.message_id.is_empty()));
        }
    }

    proptest! {
        #[test]
        fn sqs_batches_never_panic(value in near(sqs_batch())) {
            check(value);
        }

        #[test]
        fn schedule_events_never_panic(value in near(schedule_event())) {
            check(value);
        }

        #[test]
        fn any_json_never_panics(value in arb_json()) {
            check(value);
        }

        #[test]
        fn any_bytes_never_panic(text in arb_text(), raw in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(value) = parse_bytes(text.as_bytes()) {
                check(value);
            }
            let _ = parse_bytes(&raw);
        }
    }
}
