//! From the model's answer to the final text: placeholders (`{{fact-id}}`) replaced by the
//! facts' written forms, sentence by sentence, each sentence verified and given its provenance
//! (the facts it uses).
//!
//! The answer is split into sentences before rendering, where no written value (such as
//! German `Mio.`) can be mistaken for a sentence's end.

use serde::{Deserialize, Serialize};

use crate::lang::Language;
use crate::verify::{Allowed, Verdict, Violation, verify};

/// Longest fact id a placeholder may name.
const MAX_ID: usize = 64;

/// One sentence of a draft and the facts it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentence {
    /// The rendered sentence.
    pub text: String,
    /// The ids of the facts (and derivations) whose values it states.
    pub facts: Vec<String>,
}

/// Why an answer cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RenderError {
    /// A placeholder names no fact of the sheet.
    #[error("placeholder {{{{{0}}}}} names no fact of the sheet")]
    UnknownFact(String),
    /// Braces that do not form a placeholder.
    #[error("malformed placeholder at byte {0}")]
    Malformed(usize),
    /// Nothing but whitespace.
    #[error("the answer is empty")]
    Empty,
}

/// The rendered and verified text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// The final text.
    pub text: String,
    /// Its sentences with their provenance.
    pub sentences: Vec<Sentence>,
    /// Numeric mentions that are not facts (empty when grounded).
    pub violations: Vec<Violation>,
}

/// A fact id as a placeholder may write it.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Splits after `.`, `!` or `?` followed by whitespace; keeps the separators with the
/// sentence before them so that joining the parts gives the text back.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, '.' | '!' | '?' | '\n')
            && chars.peek().is_none_or(|(_, n)| n.is_whitespace())
        {
            let mut end = i + c.len_utf8();
            while let Some((j, n)) = chars.peek().copied() {
                if n.is_whitespace() {
                    end = j + n.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Replaces the placeholders of `part` with the forms `lookup` gives.
fn fill(
    part: &str,
    offset: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(part.len());
    let mut rest = part;
    let mut at = offset;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or(RenderError::Malformed(at + open))?;
        let id = after[..close].trim();
        if !valid_id(id) {
            return Err(RenderError::Malformed(at + open));
        }
        let value = lookup(id).ok_or_else(|| RenderError::UnknownFact(id.to_owned()))?;
        out.push_str(&value);
        at += open + 2 + close + 2;
        rest = &after[close + 2..];
    }
    if let Some(stray) = rest.find(['{', '}']) {
        return Err(RenderError::Malformed(at + stray));
    }
    out.push_str(rest);
    Ok(out)
}

/// Renders `answer` in `lang`: each placeholder becomes the first form of its fact in
/// `allowed`, each sentence is verified against every allowed form.
pub fn render(answer: &str, allowed: &[Allowed], _lang: Language) -> Result<Rendered, RenderError> {
    let answer = answer.trim();
    if answer.is_empty() {
        return Err(RenderError::Empty);
    }
    let lookup = |id: &str| {
        allowed
            .iter()
            .find(|a| a.fact == id)
            .map(|a| a.form.clone())
    };
    let mut text = String::with_capacity(answer.len());
    let mut rendered = Vec::new();
    let mut violations = Vec::new();
    let mut offset = 0;
    for part in sentences(answer) {
        let filled = fill(part, offset, &lookup)?;
        offset += part.len();
        let Verdict {
            violations: found,
            facts,
        } = verify(&filled, allowed);
        violations.extend(found.into_iter().map(|mut v| {
            v.offset += text.len();
            v
        }));
        text.push_str(&filled);
        let trimmed = filled.trim();
        if !trimmed.is_empty() {
            rendered.push(Sentence {
                text: trimmed.to_owned(),
                facts,
            });
        }
    }
    Ok(Rendered {
        text: text.trim_end().to_owned(),
        sentences: rendered,
        violations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<Allowed> {
        vec![
            Allowed {
                form: "1,2\u{202f}Mio.\u{a0}Follower".into(),
                fact: "artist.followers".into(),
            },
            Allowed {
                form: "Nova".into(),
                fact: "artist.name".into(),
            },
        ]
    }

    #[test]
    fn placeholders_render_and_sentences_carry_their_facts() {
        let r = render(
            "{{artist.name}} hat {{artist.followers}}. Ein neues Album kommt.",
            &allowed(),
            Language::De,
        )
        .unwrap();
        assert_eq!(
            r.text,
            "Nova hat 1,2\u{202f}Mio.\u{a0}Follower. Ein neues Album kommt."
        );
        assert_eq!(r.sentences.len(), 2);
        assert_eq!(r.sentences[0].facts, ["artist.name", "artist.followers"]);
        assert!(r.sentences[1].facts.is_empty());
        assert!(r.violations.is_empty());
    }

    #[test]
    fn unknown_and_malformed_placeholders_are_errors() {
        assert_eq!(
            render("{{artist.awards}}", &allowed(), Language::De),
            Err(RenderError::UnknownFact("artist.awards".into()))
        );
        assert!(matches!(
            render("{{artist.name", &allowed(), Language::De),
            Err(RenderError::Malformed(_))
        ));
        assert!(matches!(
            render("{artist.name}", &allowed(), Language::De),
            Err(RenderError::Malformed(_))
        ));
        assert_eq!(
            render("  ", &allowed(), Language::De),
            Err(RenderError::Empty)
        );
    }
}
