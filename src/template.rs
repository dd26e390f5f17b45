//! `template.yaml`, built into the CLI, and its reading as JSON: the local service fires its
//! schedules and the local runner follows its PagerDuty routes, so neither is retyped.

use serde_json::{Value, json};

/// The template, as built into the CLI.
pub const TEMPLATE: &str = include_str!("../template.yaml");

/// YAML to JSON, with CloudFormation's short-form tags in their long form (`!Ref X` becomes
/// `{"Ref": "X"}`, `!GetAtt A.B` becomes `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` becomes
/// `{"Fn::Sub": s}`).
pub fn to_json(value: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_yaml_ng::to_string(&other)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let name = tagged.tag.to_string().trim_start_matches('!').to_owned();
            let inner = to_json(tagged.value);
            let (key, inner) = match (name.as_str(), inner) {
                ("Ref" | "Condition", inner) => (name.clone(), inner),
                ("GetAtt", Value::String(s)) => match s.split_once('.') {
                    Some((resource, attribute)) => {
                        ("Fn::GetAtt".to_owned(), json!([resource, attribute]))
                    }
                    None => ("Fn::GetAtt".to_owned(), Value::String(s)),
                },
                (_, inner) => (format!("Fn::{name}"), inner),
            };
            json!({ key: inner })
        }
    }
}
