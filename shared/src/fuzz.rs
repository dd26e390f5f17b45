//! Strategies for the property-based fuzzing of every decoder of outside input (tests only).
//!
//! Two kinds of input: arbitrary JSON (any shape, any depth up to a bound, strings with
//! control characters, escapes and non-ASCII), and near-valid JSON: a real, valid message
//! with some of its subtrees replaced, removed or retyped, which reaches far deeper into a
//! decoder than random values do. The case count is proptest's (`PROPTEST_CASES`, 256 unless
//! set): the long run sets `PROPTEST_CASES=100000`.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON scalar, extremes included.
pub fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            ".{0,40}",
            "[a-zA-Z0-9:/+%._#-]{0,40}",
            Just(String::new()),
            Just("\u{0}\u{7}\u{1b}".to_owned()),
            Just("é🎵\u{202e}".to_owned()),
        ]
        .prop_map(Value::String),
    ]
}

/// Any JSON value up to a few levels deep.
pub fn arb_json() -> impl Strategy<Value = Value> {
    arb_scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One edit of a JSON tree: the path is chosen by the index, modulo the nodes present.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Replace the node with another value.
    Replace(usize, Value),
    /// Remove the node (from its object or array).
    Remove(usize),
    /// Turn a number into a string of it, or a string into a number, etc.
    Retype(usize),
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), arb_json()).prop_map(|(i, v)| Edit::Replace(i, v)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Retype),
    ]
}

/// `template` with one to four edits applied: near-valid input.
pub fn near(template: Value) -> impl Strategy<Value = Value> {
    prop::collection::vec(arb_edit(), 1..5).prop_map(move |edits| {
        let mut value = template.clone();
        for edit in edits {
            apply(&mut value, &edit);
        }
        value
    })
}

fn count(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count).sum(),
        Value::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

fn apply(root: &mut Value, edit: &Edit) {
    let index = match edit {
        Edit::Replace(i, _) | Edit::Remove(i) | Edit::Retype(i) => *i,
    };
    let target = index % count(root);
    let mut seen = 0;
    visit(root, target, &mut seen, edit);
}

/// Walks in pre-order to node `target` and edits it; removal edits the parent's child.
fn visit(node: &mut Value, target: usize, seen: &mut usize, edit: &Edit) -> bool {
    if *seen == target {
        match edit {
            Edit::Replace(_, v) => *node = v.clone(),
            Edit::Remove(_) => *node = Value::Null,
            Edit::Retype(_) => {
                *node = match node.take() {
                    Value::Number(n) => Value::String(n.to_string()),
                    Value::String(s) => s
                        .parse::<i64>()
                        .map(Value::from)
                        .unwrap_or(Value::Array(vec![Value::String(s)])),
                    Value::Bool(b) => Value::from(u8::from(b)),
                    Value::Null => Value::Object(Map::new()),
                    Value::Array(mut a) => a.pop().unwrap_or(Value::Null),
                    Value::Object(m) => Value::Array(m.into_iter().map(|(_, v)| v).collect()),
                }
            }
        }
        return true;
    }
    *seen += 1;
    match node {
        Value::Array(items) => {
            for i in 0..items.len() {
                if *seen == target && matches!(edit, Edit::Remove(_)) {
                    items.remove(i);
                    return true;
                }
                if visit(&mut items[i], target, seen, edit) {
                    return true;
                }
            }
        }
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if *seen == target && matches!(edit, Edit::Remove(_)) {
                    map.remove(&key);
                    return true;
                }
                if let Some(child) = map.get_mut(&key)
                    && visit(child, target, seen, edit)
                {
                    return true;
                }
            }
        }
        _ => {}
    }
    false
}

/// Arbitrary text: JSON-ish fragments, raw bytes as lossy UTF-8, deep nesting.
pub fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        arb_json().prop_map(|v| v.to_string()),
        prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        (1usize..2000).prop_map(|n| "[".repeat(n)),
        (1usize..200).prop_map(|n| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))),
    ]
}
