//! What can go wrong reading an upstream's body, shared by the decoders.

use serde_json::Value;

use crate::counts::CountError;

/// Why a body could not be read as the expected document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    /// Not JSON at all.
    #[error("{api}: the body is not JSON: {reason}")]
    NotJson {
        /// The API.
        api: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// A field is missing or of an unexpected type.
    #[error("{api}: {field}: expected {expected}, found {found}")]
    Shape {
        /// The API.
        api: &'static str,
        /// The field path.
        field: String,
        /// What was expected.
        expected: &'static str,
        /// What was there, shortened.
        found: String,
    },
    /// A count could not be read.
    #[error("{api}: {source}")]
    Count {
        /// The API.
        api: &'static str,
        /// The count's error.
        #[source]
        source: CountError,
    },
}

/// Parses `body` as JSON for `api`.
pub fn json(api: &'static str, body: &[u8]) -> Result<Value, WireError> {
    serde_json::from_slice(body).map_err(|e| WireError::NotJson {
        api,
        reason: e.to_string(),
    })
}

/// A shortened rendering of `value` for messages.
pub fn found(value: Option<&Value>) -> String {
    match value {
        None => "nothing".into(),
        Some(v) => {
            let text = v.to_string();
            if text.chars().count() > 40 {
                format!("{}…", text.chars().take(40).collect::<String>())
            } else {
                text
            }
        }
    }
}

/// The string at `field` of `value`, or a shape error.
pub fn str_at<'a>(api: &'static str, value: &'a Value, field: &str) -> Result<&'a str, WireError> {
    let v = value.pointer(&format!("/{}", field.replace('.', "/")));
    v.and_then(Value::as_str).ok_or_else(|| WireError::Shape {
        api,
        field: field.to_owned(),
        expected: "a string",
        found: found(v),
    })
}
