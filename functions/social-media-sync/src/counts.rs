//! Counts as platforms send them: JSON integers, or strings (YouTube, Last.fm), sometimes with
//! thousands separators (`"1,234,567"`, `"1 234 567"`, `"1.234.567"`).
//!
//! Anything else is an error that names the field and what was there: a fraction, a sign, a
//! float, an object, a number too large. A count is never guessed and never defaults to 0.

use serde_json::Value;

/// Why a count could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountError {
    /// The field is missing or null.
    #[error("{field}: missing")]
    Missing {
        /// The field.
        field: String,
    },
    /// The field holds something that is not a count.
    #[error("{field}: expected a count (integer or digits), found {found}")]
    NotACount {
        /// The field.
        field: String,
        /// What was there, shortened.
        found: String,
    },
}

/// Longest string accepted as a count (u64 has 20 digits; separators add at most 6).
const MAX_COUNT_CHARS: usize = 32;

fn shorten(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

/// Parses a count of `field` from `value` (a non-negative JSON integer or a string of digits
/// with optional, consistent thousands separators).
pub fn parse(field: &str, value: Option<&Value>) -> Result<u64, CountError> {
    let not = |v: &Value| CountError::NotACount {
        field: field.to_owned(),
        found: shorten(v),
    };
    match value {
        None | Some(Value::Null) => Err(CountError::Missing {
            field: field.to_owned(),
        }),
        Some(v @ Value::Number(n)) => n.as_u64().ok_or_else(|| not(v)),
        Some(v @ Value::String(s)) => parse_digits(s).ok_or_else(|| not(v)),
        Some(v) => Err(not(v)),
    }
}

/// Digits, with one separator kind (`,` `.` `'` `_`, space or no-break space) between groups
/// of three after a first group of one to three digits.
fn parse_digits(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > MAX_COUNT_CHARS {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let sep = s.chars().find(|c| !c.is_ascii_digit())?;
    if !matches!(sep, ',' | '.' | '\'' | '_' | ' ' | '\u{a0}' | '\u{202f}') {
        return None;
    }
    let groups: Vec<&str> = s.split(sep).collect();
    let first_ok = (1..=3).contains(&groups[0].len());
    let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
    let all_digits = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
    if !(first_ok && rest_ok && all_digits) {
        return None;
    }
    groups.concat().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_and_strings_with_separators() {
        assert_eq!(parse("n", Some(&json!(3677952))), Ok(3_677_952));
        assert_eq!(parse("n", Some(&json!("1927873"))), Ok(1_927_873));
        assert_eq!(parse("n", Some(&json!("1,234,567"))), Ok(1_234_567));
        assert_eq!(parse("n", Some(&json!("1.234.567"))), Ok(1_234_567));
        assert_eq!(parse("n", Some(&json!("12 345"))), Ok(12_345));
        assert_eq!(parse("n", Some(&json!("1\u{a0}000"))), Ok(1_000));
        assert_eq!(parse("n", Some(&json!(" 42 "))), Ok(42));
    }

    #[test]
    fn anything_else_is_a_named_error() {
        for bad in [
            json!("1,23,456"),
            json!("1.5"),
            json!("1,234.5"),
            json!("-5"),
            json!("12K"),
            json!(""),
            json!(-3),
            json!(1.5),
            json!(true),
            json!({"count": 3}),
            json!("99999999999999999999999"),
            json!("1,234 567"),
        ] {
            let err = parse("statistics.subscriberCount", Some(&bad)).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("statistics.subscriberCount: expected a count"),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            parse("stats.listeners", None).unwrap_err().to_string(),
            "stats.listeners: missing"
        );
        assert!(matches!(
            parse("x", Some(&Value::Null)),
            Err(CountError::Missing { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_u64_round_trips_with_commas(n: u64) {
            let plain = n.to_string();
            let mut grouped = String::new();
            for (i, c) in plain.chars().enumerate() {
                if i > 0 && (plain.len() - i).is_multiple_of(3) { grouped.push(','); }
                grouped.push(c);
            }
            proptest::prop_assert_eq!(parse("n", Some(&json!(grouped))), Ok(n));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,40}") {
            let _ = parse("n", Some(&json!(s)));
        }
    }
}
