//! S3 event notifications as they arrive in an SQS body: the trigger of tasks that read a file
//! when it lands in a bucket (an upload of audio, a streaming report).
//!
//! The shape is AWS's (`aws_lambda_events::s3::S3Event`); keys arrive URL-encoded (`+` for a
//! space) and are decoded here. When a notification is first configured, S3 sends one
//! `s3:TestEvent` message, which is recognised so a task can complete it as a no-op instead of
//! dead-lettering it.

use aws_lambda_events::s3::S3Event;
use serde::{Deserialize, Deserializer, Serialize};

use super::ValidationError;
use crate::ports::ObjectLocation;

/// The most records one notification may carry (S3 sends one; a few is already unusual).
const MAX_RECORDS: usize = 100;

/// One object an S3 notification announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Object {
    /// Where it is (`s3://bucket/key`, the key decoded).
    pub location: ObjectLocation,
    /// Its size in bytes, when the event says.
    pub size: Option<u64>,
    /// Its ETag, when the event says.
    pub etag: Option<String>,
    /// The version id, on a versioned bucket.
    pub version_id: Option<String>,
    /// What happened (`ObjectCreated:Put`, ...).
    pub event_name: String,
}

/// A validated S3 event notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3Notification {
    /// The objects it announces (empty for a test event).
    pub objects: Vec<S3Object>,
    test_event: bool,
}

impl S3Notification {
    /// Whether this is S3's `s3:TestEvent`, sent once when a notification is configured.
    pub fn is_test_event(&self) -> bool {
        self.test_event
    }

    /// Whether a JSON value has the shape of an S3 notification (a `Records` array or S3's
    /// test event), so a task's input can tell it from its own message shape.
    pub fn looks_like(value: &serde_json::Value) -> bool {
        value.get("Records").is_some_and(|r| r.is_array())
            || value.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent")
    }

    /// Validates an already-parsed notification; the error names the field.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ValidationError> {
        if value.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
            return Ok(Self {
                objects: Vec::new(),
                test_event: true,
            });
        }
        let event: S3Event = serde_path_to_error::deserialize(value).map_err(|err| {
            ValidationError::new(err.path().to_string(), err.into_inner().to_string())
        })?;
        if event.records.is_empty() {
            return Err(ValidationError::new(
                "Records",
                "an S3 notification with no record",
            ));
        }
        if event.records.len() > MAX_RECORDS {
            return Err(ValidationError::new(
                "Records",
                format!("at most {MAX_RECORDS} records, got {}", event.records.len()),
            ));
        }
        let mut objects = Vec::with_capacity(event.records.len());
        for (i, record) in event.records.into_iter().enumerate() {
            let field = |name: &str| format!("Records[{i}].{name}");
            if let Some(source) = record.event_source.as_deref().filter(|s| *s != "aws:s3") {
                return Err(ValidationError::new(
                    field("eventSource"),
                    format!("expected aws:s3, got {source:?}"),
                ));
            }
            let bucket = record
                .s3
                .bucket
                .name
                .ok_or_else(|| ValidationError::new(field("s3.bucket.name"), "missing"))?;
            let raw_key = record
                .s3
                .object
                .key
                .ok_or_else(|| ValidationError::new(field("s3.object.key"), "missing"))?;
            let key = decode_key(&raw_key)
                .map_err(|reason| ValidationError::new(field("s3.object.key"), reason))?;
            let location = ObjectLocation::s3(bucket, key)
                .map_err(|err| ValidationError::new(field("s3"), err.reason))?;
            let size = match record.s3.object.size {
                Some(size) => Some(u64::try_from(size).map_err(|_| {
                    ValidationError::new(
                        field("s3.object.size"),
                        format!("a size cannot be negative, got {size}"),
                    )
                })?),
                None => None,
            };
            objects.push(S3Object {
                location,
                size,
                etag: record.s3.object.e_tag.filter(|e| !e.is_empty()),
                version_id: record.s3.object.version_id.filter(|v| !v.is_empty()),
                event_name: record.event_name.unwrap_or_default(),
            });
        }
        Ok(Self {
            objects,
            test_event: false,
        })
    }
}

impl super::Validate for S3Notification {}

impl<'de> Deserialize<'de> for S3Notification {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Self::from_value(value).map_err(<D::Error as serde::de::Error>::custom)
    }
}

/// Decodes an S3 notification key: `+` is a space, `%XX` a byte; the result must be UTF-8.
fn decode_key(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-escape at byte {i} of {raw:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{raw:?} does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::parse_json;

    fn notification(key: &str, size: serde_json::Value) -> String {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
            "eventTime": "2026-11-30T10:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "203.0.113.5"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "uploads",
                   "bucket": {"name": "label-audio", "arn": "arn:aws:s3:::label-audio"},
                   "object": {"key": key, "size": size, "eTag": "0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}}
        }]})
        .to_string()
    }

    #[test]
    fn a_notification_yields_its_decoded_object() {
        let n: S3Notification = parse_json(
            "body",
            &notification("masters/My+Song+%28Live%29.flac", 1024.into()),
        )
        .unwrap();
        assert!(!n.is_test_event());
        assert_eq!(n.objects.len(), 1);
        let object = &n.objects[0];
        assert_eq!(
            object.location,
            ObjectLocation::S3 {
                bucket: "label-audio".into(),
                key: "masters/My Song (Live).flac".into()
            }
        );
        assert_eq!(object.size, Some(1024));
        assert_eq!(object.etag.as_deref(), Some("0123456789abcdef"));
        assert_eq!(object.event_name, "ObjectCreated:Put");
        assert!(S3Notification::looks_like(
            &serde_json::from_str(&notification("k", 1.into())).unwrap()
        ));
    }

    #[test]
    fn the_test_event_is_recognised() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-30T10:00:00.000Z","Bucket":"label-audio","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw"}"#;
        let n: S3Notification = parse_json("body", body).unwrap();
        assert!(n.is_test_event());
        assert!(n.objects.is_empty());
        assert!(S3Notification::looks_like(
            &serde_json::from_str(body).unwrap()
        ));
        assert!(!S3Notification::looks_like(
            &serde_json::json!({"track": "x"})
        ));
    }

    #[test]
    fn bad_notifications_name_the_field() {
        let err = parse_json::<S3Notification>("body", &notification("a%2", 1.into())).unwrap_err();
        assert!(
            err.to_string().contains("Records[0].s3.object.key"),
            "{err}"
        );
        assert!(err.to_string().contains("percent-escape"), "{err}");
        let err =
            parse_json::<S3Notification>("body", &notification("a%FF", 1.into())).unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
        let err =
            parse_json::<S3Notification>("body", &notification("k", (-5).into())).unwrap_err();
        assert!(err.to_string().contains("cannot be negative"), "{err}");
        let err = parse_json::<S3Notification>("body", r#"{"Records": []}"#).unwrap_err();
        assert!(err.to_string().contains("no record"), "{err}");
        let err =
            parse_json::<S3Notification>("body", r#"{"Records": [{"eventSource": "aws:s3"}]}"#)
                .unwrap_err();
        assert!(err.to_string().contains("Records[0]"), "{err}");
        let other = notification("k", 1.into()).replace("\"aws:s3\"", "\"aws:sqs\"");
        let err = parse_json::<S3Notification>("body", &other).unwrap_err();
        assert!(err.to_string().contains("eventSource"), "{err}");
    }
}

/// Property-based fuzzing: no notification, however malformed, makes the decoder panic; what
/// it accepts always names an S3 location.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::S3Notification;
    use crate::fuzz::{arb_json, arb_text, near};
    use crate::ports::ObjectLocation;

    fn notification() -> Value {
        json!({ "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "eu-west-1",
            "eventTime": "2026-11-25T06:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": { "name": "reports", "arn": "arn:aws:s3:::reports" },
                "object": { "key": "label/2026-11+report%281%29.csv", "size": 1024,
                            "eTag": "0123456789abcdef", "versionId": "v1" }
            }
        }]})
    }

    fn check(value: Value) {
        if let Ok(notification) = S3Notification::from_value(value) {
            for object in &notification.objects {
                assert!(matches!(object.location, ObjectLocation::S3 { .. }));
            }
        }
    }

    proptest! {
        #[test]
        fn near_valid_notifications_never_panic(value in near(notification())) {
            check(value);
        }

        #[test]
        fn any_json_never_panics(value in arb_json()) {
            check(value);
        }

        #[test]
        fn any_text_never_panics(text in arb_text()) {
            let _ = serde_json::from_str::<S3Notification>(&text);
        }

        #[test]
        fn any_key_never_panics(key in ".{0,300}") {
            let mut value = notification();
            value["Records"][0]["s3"]["object"]["key"] = Value::String(key);
            check(value);
        }
    }
}
