//! PagerDuty: the alerts the template routes to the Events API v2, the same routes applied
//! locally, and a fake of the Events API for tests and local runs.
//!
//! [`Routes::from_template`] reads `template.yaml`'s rules whose target is the PagerDuty API
//! destination: their event pattern and input transformer. [`Transformer::apply`] does what
//! EventBridge does with `InputPathsMap` and `InputTemplate`, and the connection's
//! `routing_key` body parameter is merged in as EventBridge merges it, so what a test sends to
//! the fake is what PagerDuty would receive from the deployed stack, never a re-typed mapping.
//!
//! The local runner forwards the alerts of its bus to `PAGERDUTY_EVENTS_URL` (with
//! `PAGERDUTY_ROUTING_KEY`) through the same routes: see [`Forwarder`].

pub mod fake;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::template::{TEMPLATE, to_json};

/// The logical id of the PagerDuty API destination in the template.
const DESTINATION: &str = "PagerDutyDestination";
/// The logical id of its connection (which adds the routing key to every body).
const CONNECTION: &str = "PagerDutyConnection";

/// Why the routes or a payload could not be built, or an alert not sent.
#[derive(Debug, thiserror::Error)]
pub enum PagerDutyError {
    /// The template is not YAML or lacks what the routes need.
    #[error("template: {0}")]
    Template(String),
    /// The transformed input is not JSON (a template whose placeholders break the JSON).
    #[error("rule {rule}: the transformed input is not JSON: {source}")]
    Transform {
        /// The rule.
        rule: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// `PAGERDUTY_EVENTS_URL` is set without `PAGERDUTY_ROUTING_KEY`, or is not a URL.
    #[error(transparent)]
    Config(#[from] backbone::config::ConfigError),
    /// The Events API could not be reached.
    #[error("sending to the Events API: {0}")]
    Http(#[source] reqwest::Error),
    /// The Events API refused the event.
    #[error("the Events API answered {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its body.
        body: String,
    },
}

/// YAML to JSON, with CloudFormation's short-form tags in their long form (`!Ref X` becomes
/// `{"Ref": "X"}`, `!GetAtt A.B` becomes `{"Fn::GetAtt": ["A", "B"]}`).
pub fn template_json(yaml: &str) -> Result<Value, PagerDutyError> {
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(yaml).map_err(|err| PagerDutyError::Template(err.to_string()))?;
    Ok(to_json(value))
}

/// EventBridge's input transformer: JSON paths into variables, variables into a template.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformer {
    /// Variable name to JSON path (`$.detail.alert.summary`).
    pub paths: BTreeMap<String, String>,
    /// The template with `<variable>` placeholders.
    pub template: String,
}

/// The value at a dot-notation JSON path (`$.detail.a.b`, with `[n]` indices), if any.
fn at_path<'a>(event: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('$')?;
    let mut value = event;
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        let (name, indices) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            value = value.get(name)?;
        }
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            let index: usize = index.trim_end_matches(']').parse().ok()?;
            value = value.get(index)?;
        }
    }
    Some(value)
}

impl Transformer {
    /// The text EventBridge would send for `event`. As EventBridge does for a JSON template: a
    /// placeholder inside a string gets the value's text, escaped for JSON; one outside a
    /// string gets the value as JSON; a path that matches nothing gives an empty string inside
    /// quotes and `null` outside.
    pub fn render(&self, event: &Value) -> String {
        let mut out = String::with_capacity(self.template.len() * 2);
        let mut in_string = false;
        let mut escaped = false;
        let mut chars = self.template.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c == '<'
                && let Some(len) = self.template[at + 1..].find('>')
            {
                let name = &self.template[at + 1..at + 1 + len];
                if let Some(path) = self.paths.get(name) {
                    let value = at_path(event, path);
                    out.push_str(&if in_string {
                        let text = match value {
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Null) | None => String::new(),
                            Some(other) => other.to_string(),
                        };
                        let quoted = Value::String(text).to_string();
                        quoted[1..quoted.len() - 1].to_owned()
                    } else {
                        value.map_or_else(|| "null".to_owned(), Value::to_string)
                    });
                    for _ in 0..=len {
                        chars.next();
                    }
                    continue;
                }
            }
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
        out
    }
}

/// One rule of the template that sends to PagerDuty.
#[derive(Debug, Clone)]
pub struct Route {
    /// The rule's logical id.
    pub rule: String,
    /// Its event pattern, with `!Ref`s of alarms resolved to their names.
    pub pattern: Value,
    /// The PagerDuty target's input transformer.
    pub transformer: Transformer,
}

/// Every PagerDuty route of the template, and the connection's body parameters.
#[derive(Debug, Clone)]
pub struct Routes {
    /// The routes, in template order.
    pub routes: Vec<Route>,
    /// The name of the body parameter the connection adds with the integration key
    /// (`routing_key`).
    pub routing_key_field: String,
}

/// A PagerDuty event for `event`: the route it took and the body as EventBridge sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The rule.
    pub rule: String,
    /// The body, routing key included.
    pub body: Value,
}

impl Routes {
    /// The routes of the CLI's built-in template for `stage` (names of alarms depend on it).
    pub fn builtin(stage: &str) -> Result<Self, PagerDutyError> {
        Self::from_template(TEMPLATE, stage)
    }

    /// The routes of `yaml` for `stage`.
    pub fn from_template(yaml: &str, stage: &str) -> Result<Self, PagerDutyError> {
        let doc = template_json(yaml)?;
        let resources = doc["Resources"]
            .as_object()
            .ok_or_else(|| PagerDutyError::Template("no Resources".into()))?;
        let routing_key_field = resources
            .get(CONNECTION)
            .and_then(|c| {
                c["Properties"]["AuthParameters"]["InvocationHttpParameters"]["BodyParameters"]
                    .as_array()
            })
            .and_then(|params| params.iter().find_map(|p| p["Key"].as_str()))
            .ok_or_else(|| PagerDutyError::Template(format!("{CONNECTION} has no body parameter")))?
            .to_owned();
        let mut routes = Vec::new();
        for (name, resource) in resources {
            if resource["Type"] != "AWS::Events::Rule" {
                continue;
            }
            let targets = resource["Properties"]["Targets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for target in targets {
                // An optional target: `!If [HasPagerDuty, target, !Ref AWS::NoValue]`.
                let target = match target.get("Fn::If").and_then(Value::as_array) {
                    Some(branches) => branches.get(1).cloned().unwrap_or(Value::Null),
                    None => target,
                };
                if target["Arn"]["Fn::GetAtt"][0] != DESTINATION {
                    continue;
                }
                let transformer = &target["InputTransformer"];
                let template = transformer["InputTemplate"]
                    .as_str()
                    .ok_or_else(|| PagerDutyError::Template(format!("{name}: no InputTemplate")))?
                    .to_owned();
                let paths = transformer["InputPathsMap"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                routes.push(Route {
                    rule: name.clone(),
                    pattern: resolve_refs(
                        &resource["Properties"]["EventPattern"],
                        resources,
                        stage,
                    ),
                    transformer: Transformer { paths, template },
                });
            }
        }
        if routes.is_empty() {
            return Err(PagerDutyError::Template(format!(
                "no rule targets {DESTINATION}"
            )));
        }
        Ok(Self {
            routes,
            routing_key_field,
        })
    }

    /// The route of the rule `rule`.
    pub fn route(&self, rule: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.rule == rule)
    }

    /// What PagerDuty receives for `event` (an EventBridge event envelope): one body per rule
    /// whose pattern matches, with `routing_key` set as the connection sets it.
    pub fn deliveries(
        &self,
        event: &Value,
        routing_key: &str,
    ) -> Result<Vec<Delivery>, PagerDutyError> {
        self.routes
            .iter()
            .filter(|route| matches(&route.pattern, event))
            .map(|route| {
                Ok(Delivery {
                    rule: route.rule.clone(),
                    body: self.body(route, event, routing_key)?,
                })
            })
            .collect()
    }

    /// The body `route` sends for `event`.
    pub fn body(
        &self,
        route: &Route,
        event: &Value,
        routing_key: &str,
    ) -> Result<Value, PagerDutyError> {
        let text = route.transformer.render(event);
        let mut body: Value =
            serde_json::from_str(&text).map_err(|source| PagerDutyError::Transform {
                rule: route.rule.clone(),
                source,
            })?;
        if let Value::Object(map) = &mut body {
            map.insert(self.routing_key_field.clone(), Value::from(routing_key));
        }
        Ok(body)
    }
}

/// The pattern with `{"Ref": alarm}` replaced by the alarm's name for `stage`.
fn resolve_refs(pattern: &Value, resources: &Map<String, Value>, stage: &str) -> Value {
    match pattern {
        Value::Object(map) => {
            if let Some(Value::String(id)) = map.get("Ref")
                && let Some(name) = resources
                    .get(id)
                    .and_then(|r| r["Properties"]["AlarmName"]["Fn::Sub"].as_str())
            {
                return Value::String(name.replace("${Stage}", stage));
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), resolve_refs(v, resources, stage)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve_refs(v, resources, stage))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// EventBridge's matching for the patterns the template uses: every field of the pattern must
/// be present; a list matches when the event's value (or one of its values) equals an entry.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, sub)| {
            let value = event.get(key).unwrap_or(&Value::Null);
            match sub {
                Value::Object(_) => matches(sub, value),
                Value::Array(allowed) => match value {
                    Value::Array(values) => values.iter().any(|v| allowed.contains(v)),
                    value => allowed.contains(value),
                },
                literal => literal == value,
            }
        }),
        _ => false,
    }
}

/// The EventBridge envelope of a bus event, as a rule sees it.
pub fn envelope(event: &backbone::ports::BusEvent, id: &str, account: &str, region: &str) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": event.detail_type,
        "source": event.source,
        "account": account,
        "time": event.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [],
        "detail": event.detail,
    })
}

/// Sends the local bus's alerts to an Events API v2 endpoint through the template's routes.
pub struct Forwarder {
    routes: Routes,
    url: String,
    routing_key: backbone::SecretString,
    client: reqwest::Client,
}

/// One event sent: the rule, the dedup key and the status PagerDuty answered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sent {
    /// The rule the event took.
    pub rule: String,
    /// The dedup key sent.
    pub dedup_key: Option<String>,
    /// PagerDuty's `status`.
    pub status: String,
}

impl Forwarder {
    /// `PAGERDUTY_EVENTS_URL` (the Events API's `/v2/enqueue`, or the fake's) and
    /// `PAGERDUTY_ROUTING_KEY`; `None` without the URL.
    pub fn from_env(env: &dyn backbone::config::EnvSource) -> Result<Option<Self>, PagerDutyError> {
        use backbone::config::{ConfigError, optional, required};
        let Some(url) = optional(env, "PAGERDUTY_EVENTS_URL") else {
            return Ok(None);
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Malformed {
                name: "PAGERDUTY_EVENTS_URL",
                reason: "expected an http(s) URL".into(),
            }
            .into());
        }
        let routing_key = required(env, "PAGERDUTY_ROUTING_KEY")?;
        Ok(Some(Self::new(
            Routes::builtin("local")?,
            url,
            routing_key.into(),
        )))
    }

    /// A forwarder on `routes` to `url` with `routing_key`.
    pub fn new(routes: Routes, url: String, routing_key: backbone::SecretString) -> Self {
        Self {
            routes,
            url,
            routing_key,
            client: reqwest::Client::new(),
        }
    }

    /// Sends what the template routes to PagerDuty for each of `events`; events no rule
    /// routes are skipped.
    pub async fn forward(
        &self,
        events: &[backbone::local::StoredEvent],
    ) -> Result<Vec<Sent>, PagerDutyError> {
        use backbone::ExposeSecret;
        let mut sent = Vec::new();
        for stored in events {
            let event = envelope(
                &stored.event,
                &format!("local-{}", stored.id),
                "000000000000",
                "local",
            );
            for delivery in self
                .routes
                .deliveries(&event, self.routing_key.expose_secret())?
            {
                let response = self
                    .client
                    .post(&self.url)
                    .json(&delivery.body)
                    .send()
                    .await
                    .map_err(PagerDutyError::Http)?;
                let status = response.status().as_u16();
                let body = response.text().await.map_err(PagerDutyError::Http)?;
                if status != 202 {
                    return Err(PagerDutyError::Refused { status, body });
                }
                let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                sent.push(Sent {
                    rule: delivery.rule,
                    dedup_key: answer["dedup_key"].as_str().map(str::to_owned),
                    status: answer["status"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        Ok(sent)
    }
}

/// What `tasks local` did with its alerts: `None` without `PAGERDUTY_EVENTS_URL`, else the
/// events sent for what the bus received after event `after`.
pub async fn forward_local(
    bus: &backbone::local::LocalBus,
    after: i64,
) -> Result<Option<Vec<Sent>>, anyhow::Error> {
    let Some(forwarder) = Forwarder::from_env(&backbone::config::ProcessEnv)? else {
        return Ok(None);
    };
    let events = bus.events_after(after).await?;
    Ok(Some(forwarder.forward(&events).await?))
}

/// Serves the fake Events API on `addr` until stopped.
pub async fn serve_fake(addr: std::net::SocketAddr) -> Result<(), anyhow::Error> {
    let api = fake::EventsApi::new();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, api.router()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_escaped_inside_strings_and_json_outside() {
        let transformer = Transformer {
            paths: [
                ("s".to_owned(), "$.detail.s".to_owned()),
                ("o".to_owned(), "$.detail.o".to_owned()),
                ("n".to_owned(), "$.detail.none".to_owned()),
                ("i".to_owned(), "$.detail.list[1]".to_owned()),
            ]
            .into(),
            template: r#"{"a": "say <s>!", "b": <o>, "c": "<n>", "d": <n>, "e": "<i>"}"#.into(),
        };
        let event =
            json!({"detail": {"s": "a \"quoted\" word", "o": {"x": [1, 2]}, "list": [5, 6]}});
        let out: Value = serde_json::from_str(&transformer.render(&event)).unwrap();
        assert_eq!(
            out,
            json!({"a": "say a \"quoted\" word!", "b": {"x": [1, 2]}, "c": "", "d": null, "e": "6"})
        );
    }

    #[test]
    fn patterns_match_lists_and_nested_fields() {
        let pattern =
            json!({"source": ["aws.cloudwatch"], "detail": {"state": {"value": ["ALARM"]}}});
        let event = json!({"source": "aws.cloudwatch", "detail": {"state": {"value": "ALARM"}}});
        assert!(matches(&pattern, &event));
        let ok = json!({"source": "aws.cloudwatch", "detail": {"state": {"value": "OK"}}});
        assert!(!matches(&pattern, &ok));
        assert!(!matches(&pattern, &json!({"source": "aws.cloudwatch"})));
    }
}
