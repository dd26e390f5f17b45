//! A local fake of PagerDuty's Events API v2 (`POST /v2/enqueue`), for tests and local runs.
//!
//! It checks an event as PagerDuty documents it: `routing_key` (a non-empty string),
//! `event_action` (`trigger`, `acknowledge` or `resolve`), `dedup_key` (at most 255
//! characters; required to acknowledge or resolve), and for a trigger a `payload` with
//! `summary` (at most 1024 characters), `source` and `severity` (`critical`, `error`,
//! `warning` or `info`), and an ISO 8601 `timestamp` if given. A valid event is answered
//! `202` with `status`, `message` and `dedup_key`; an invalid one `400` with the errors.
//!
//! It keeps incidents as PagerDuty does: a trigger whose dedup key names an open incident
//! adds to it, any other opens one (a page); a resolve closes it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

/// The longest dedup key PagerDuty accepts.
pub const MAX_DEDUP_KEY: usize = 255;
/// The longest summary PagerDuty accepts.
pub const MAX_SUMMARY: usize = 1024;

/// One incident of the fake.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Its dedup key.
    pub dedup_key: String,
    /// The first trigger's summary.
    pub summary: String,
    /// The first trigger's severity.
    pub severity: String,
    /// Triggers received while open (the first included).
    pub triggers: u32,
    /// Whether a resolve closed it.
    pub resolved: bool,
}

#[derive(Debug, Default)]
struct Inner {
    accepted: Vec<Value>,
    refused: Vec<(Value, Vec<String>)>,
    incidents: Vec<Incident>,
}

/// The fake's state: what it accepted, refused and which incidents it opened.
#[derive(Debug, Clone, Default)]
pub struct EventsApi(Arc<Mutex<Inner>>);

impl EventsApi {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }

    /// The router serving `POST /v2/enqueue`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v2/enqueue", post(enqueue))
            .with_state(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every accepted event, in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.lock().accepted.clone()
    }

    /// Every refused event with its errors.
    pub fn refused(&self) -> Vec<(Value, Vec<String>)> {
        self.lock().refused.clone()
    }

    /// Every incident, in the order they were opened (each one a page).
    pub fn incidents(&self) -> Vec<Incident> {
        self.lock().incidents.clone()
    }

    /// Checks `event` and applies it; `Err` holds why PagerDuty would refuse it.
    pub fn receive(&self, event: Value) -> Result<String, Vec<String>> {
        let errors = validate(&event);
        let mut inner = self.lock();
        if !errors.is_empty() {
            inner.refused.push((event, errors.clone()));
            return Err(errors);
        }
        let action = event["event_action"].as_str().unwrap_or_default();
        let dedup_key = event["dedup_key"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let open = inner
            .incidents
            .iter_mut()
            .find(|i| i.dedup_key == dedup_key && !i.resolved);
        match (action, open) {
            ("trigger", Some(incident)) => incident.triggers += 1,
            ("trigger", None) => inner.incidents.push(Incident {
                dedup_key: dedup_key.clone(),
                summary: event["payload"]["summary"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                severity: event["payload"]["severity"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                triggers: 1,
                resolved: false,
            }),
            ("resolve", Some(incident)) => incident.resolved = true,
            // Acknowledging, or resolving what is not open, changes nothing (PagerDuty
            // accepts it all the same).
            _ => {}
        }
        inner.accepted.push(event);
        Ok(dedup_key)
    }
}

/// Why PagerDuty would refuse `event` (empty: it is valid).
pub fn validate(event: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(object) = event.as_object() else {
        return vec!["the event must be a JSON object".into()];
    };
    match object.get("routing_key") {
        Some(Value::String(key)) if !key.trim().is_empty() => {}
        _ => errors.push("'routing_key' is missing or blank".into()),
    }
    let action = object.get("event_action").and_then(Value::as_str);
    if !matches!(action, Some("trigger" | "acknowledge" | "resolve")) {
        errors.push("'event_action' must be trigger, acknowledge or resolve".into());
    }
    match object.get("dedup_key") {
        None if matches!(action, Some("acknowledge" | "resolve")) => {
            errors.push("'dedup_key' is required to acknowledge or resolve".into())
        }
        None => {}
        Some(Value::String(key)) if key.is_empty() => errors.push("'dedup_key' is empty".into()),
        Some(Value::String(key)) if key.chars().count() > MAX_DEDUP_KEY => errors.push(format!(
            "'dedup_key' is longer than {MAX_DEDUP_KEY} characters"
        )),
        Some(Value::String(_)) => {}
        Some(_) => errors.push("'dedup_key' must be a string".into()),
    }
    if action == Some("trigger") {
        let payload = &event["payload"];
        if !payload.is_object() {
            errors.push("'payload' is required to trigger".into());
            return errors;
        }
        match payload["summary"].as_str() {
            Some(s) if s.trim().is_empty() => errors.push("'payload.summary' is blank".into()),
            Some(s) if s.chars().count() > MAX_SUMMARY => errors.push(format!(
                "'payload.summary' is longer than {MAX_SUMMARY} characters"
            )),
            Some(_) => {}
            None => errors.push("'payload.summary' is missing".into()),
        }
        match payload["source"].as_str() {
            Some(s) if !s.trim().is_empty() => {}
            _ => errors.push("'payload.source' is missing or blank".into()),
        }
        if !matches!(
            payload["severity"].as_str(),
            Some("critical" | "error" | "warning" | "info")
        ) {
            errors.push("'payload.severity' must be critical, error, warning or info".into());
        }
        match &payload["timestamp"] {
            Value::Null => {}
            Value::String(t) if chrono::DateTime::parse_from_rfc3339(t).is_ok() => {}
            _ => errors.push("'payload.timestamp' is not an ISO 8601 time".into()),
        }
        for field in ["custom_details"] {
            if !matches!(&payload[field], Value::Null | Value::Object(_)) {
                errors.push(format!("'payload.{field}' must be an object"));
            }
        }
    }
    errors
}

async fn enqueue(
    State(api): State<EventsApi>,
    body: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    let event: Value = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(err) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": [format!("not JSON: {err}")],
                })),
            );
        }
    };
    match api.receive(event) {
        Ok(dedup_key) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "success",
                "message": "Event processed",
                "dedup_key": dedup_key,
            })),
        ),
        Err(errors) => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            })),
        ),
    }
}

/// Counts of the fake's incidents by dedup key (for summaries).
pub fn pages_by_key(incidents: &[Incident]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for incident in incidents {
        *out.entry(incident.dedup_key.clone()).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(key: &str) -> Value {
        json!({
            "routing_key": "R0UT1NGKEY",
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {"summary": "s", "source": "x", "severity": "error",
                        "timestamp": "2026-12-03T10:00:00Z"},
        })
    }

    #[test]
    fn a_repeated_trigger_adds_to_its_incident_and_a_resolve_closes_it() {
        let api = EventsApi::new();
        assert_eq!(api.receive(trigger("k")).unwrap(), "k");
        api.receive(trigger("k")).unwrap();
        assert_eq!(api.incidents().len(), 1);
        assert_eq!(api.incidents()[0].triggers, 2);
        api.receive(json!({"routing_key": "R", "event_action": "resolve", "dedup_key": "k"}))
            .unwrap();
        api.receive(trigger("k")).unwrap();
        assert_eq!(pages_by_key(&api.incidents())["k"], 2);
    }

    #[test]
    fn invalid_events_name_their_faults() {
        let mut event = trigger("k");
        event["payload"]["severity"] = json!("loud");
        event.as_object_mut().unwrap().remove("routing_key");
        event["payload"]["timestamp"] = json!("yesterday");
        let errors = validate(&event);
        assert_eq!(errors.len(), 3, "{errors:?}");
        let resolve = json!({"routing_key": "R", "event_action": "resolve"});
        assert_eq!(validate(&resolve).len(), 1);
        let long = trigger(&"k".repeat(256));
        assert_eq!(validate(&long).len(), 1);
    }
}
