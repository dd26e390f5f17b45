//! Property-based fuzzing of the playlist rule-file (YAML) decoder: no file makes it panic or
//! allocate without bound (aliases, deep nesting, huge numbers), and every refusal names the
//! field it is about and why.
//!
//! Near-valid files start from the demo rule file (`events/playlist-update/rules/demo.yaml`),
//! its tree edited as JSON and written back as YAML (JSON is YAML), or edited line by line.
//! The case count is proptest's (`PROPTEST_CASES`, 256 unless set); the documented long run
//! (docs/reliability.md) sets `PROPTEST_CASES=100000`.

use backbone::fuzz::{arb_json, arb_text, near};
use playlist_update::rules::{RuleFile, normalise_line_ends};
use proptest::prelude::*;
use serde_json::Value;

const DEMO: &str = include_str!("../../../events/playlist-update/rules/demo.yaml");

fn demo_tree() -> Value {
    serde_yaml_ng::from_str(DEMO).expect("the demo rule file is YAML")
}

/// Parses `text`: accepted, or refused with a field and a reason; never a panic.
fn check(text: &str) -> Result<(), TestCaseError> {
    match RuleFile::parse(text) {
        Ok(rules) => {
            // An accepted file passes its own cross-field checks again.
            prop_assert!(rules.check().is_ok());
        }
        Err(err) => {
            prop_assert!(!err.field.trim().is_empty(), "no field named: {err:?}");
            prop_assert!(!err.reason.trim().is_empty(), "no reason given: {err:?}");
            if let Some(line) = err.line {
                // Lines as YAML (and an editor) count them: LF, CRLF and a lone CR.
                let lines = normalise_line_ends(text).lines().count();
                prop_assert!(line >= 1 && line <= lines.max(1) + 1, "{err:?}");
            }
        }
    }
    Ok(())
}

/// YAML-specific shapes: anchors and aliases (a small billion-laughs), tags, multi-documents,
/// flow and block mixed, tabs, odd scalars.
fn yaml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a: &a [1, 2, 3]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]\n".to_owned()),
        Just("version: !!str 1\n".to_owned()),
        Just("--- \nversion: 1\n---\nversion: 2\n".to_owned()),
        Just("version: 1\nplaylist: &p O1oLYhHc76ZH3F9qm5thw7\nname: *p\n".to_owned()),
        Just("? [complex, key]\n: value\n".to_owned()),
        Just("version: 1e400\n".to_owned()),
        Just("version: 0x1F\nseed: -0\n".to_owned()),
        Just("seed: 99999999999999999999999999\n".to_owned()),
        Just("\tversion: 1\n".to_owned()),
        Just("name: \"unterminated\n".to_owned()),
        Just("*undefined\n".to_owned()),
        Just("constraints: {length: {tracks: .inf}}\n".to_owned()),
        Just("on_human_edit: ~\n".to_owned()),
        (1usize..300).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n))),
        (1usize..100).prop_map(|n| (0..n).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect()),
    ]
}

/// The demo file with lines dropped, duplicated or replaced.
fn edited_lines() -> impl Strategy<Value = String> {
    let lines: Vec<String> = DEMO.lines().map(str::to_owned).collect();
    let count = lines.len();
    prop::collection::vec(
        (
            0..count,
            prop_oneof![
                Just(None),
                Just(Some(String::new())),
                yaml_fragment().prop_map(Some),
                ".{0,30}".prop_map(Some)
            ],
        ),
        1..6,
    )
    .prop_map(move |edits| {
        let mut out = lines.clone();
        for (i, edit) in edits {
            let i = i % out.len().max(1);
            match edit {
                None if !out.is_empty() => {
                    out.remove(i);
                }
                None => {}
                Some(text) => out.insert(i, text),
            }
        }
        out.join("\n")
    })
}

proptest! {
    /// The demo file's tree with subtrees replaced, removed or retyped.
    #[test]
    fn near_valid_rule_files_never_panic(tree in near(demo_tree())) {
        let text = serde_yaml_ng::to_string(&tree).expect("a JSON tree writes as YAML");
        check(&text)?;
    }

    /// The demo file edited line by line, YAML oddities spliced in.
    #[test]
    fn edited_rule_files_never_panic(text in edited_lines()) {
        check(&text)?;
    }

    /// Any JSON document (JSON is YAML) and any text.
    #[test]
    fn any_document_never_panics(text in prop_oneof![
        arb_json().prop_map(|v| v.to_string()),
        arb_text(),
        yaml_fragment(),
    ]) {
        check(&text)?;
    }
}

/// The template is a rule file the decoder accepts, so near-valid runs start inside its
/// language; and an alias bomb is refused, not expanded into memory.
#[test]
fn the_demo_file_parses_and_an_alias_bomb_is_refused() {
    let written = serde_yaml_ng::to_string(&demo_tree()).unwrap();
    RuleFile::parse(&written).expect("the demo file, written back, parses");
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    let err = RuleFile::parse(bomb).unwrap_err();
    assert!(!err.reason.is_empty(), "{err:?}");
}
