//! What the documentation checks read from a Markdown file: headings with their anchors, fenced
//! code blocks, relative links and the names that look like environment variables.
//!
//! Parsed with pulldown-cmark (CommonMark), so a `#` or a link inside a code block is never
//! mistaken for a heading or a link.

use std::collections::BTreeSet;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// A heading: its level, its text, the explicit `<a id="…">` anchor on the line before it (the
/// guides' language-independent anchors) and the slug GitHub derives from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    pub level: u8,
    pub text: String,
    pub id: Option<String>,
    pub slug: String,
    pub line: usize,
}

/// A fenced code block: its info string (`sh`, `sh no-run`, …) and its content, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub info: String,
    pub code: String,
    pub line: usize,
}

/// A link or image destination as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub dest: String,
    pub line: usize,
}

/// One parsed Markdown document.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub headings: Vec<Heading>,
    /// Every explicit `<a id="…">` anchor, wherever it is.
    pub explicit_ids: Vec<String>,
    pub blocks: Vec<Block>,
    pub links: Vec<Link>,
    pub variables: BTreeSet<String>,
}

impl Doc {
    /// Every fragment a link may point at: explicit ids and heading slugs.
    pub fn anchors(&self) -> BTreeSet<String> {
        self.explicit_ids
            .iter()
            .cloned()
            .chain(self.headings.iter().map(|h| h.slug.clone()))
            .collect()
    }
}

/// Parses `text`.
pub fn parse(text: &str) -> Doc {
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut doc = Doc {
        variables: variables(text),
        ..Doc::default()
    };
    // (line, id) of explicit anchors, to attach to the heading on the next line.
    let mut anchors: Vec<(usize, String)> = Vec::new();
    let mut heading: Option<(u8, usize, String)> = None;
    let mut block: Option<(String, usize, String)> = None;
    let mut slugs = Slugger::default();
    for (event, range) in Parser::new_ext(text, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                heading = Some((level_number(level), line_of(range.start), String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, line, text)) = heading.take() {
                    let id = anchors
                        .iter()
                        .find(|(at, _)| *at + 1 == line)
                        .map(|(_, id)| id.clone());
                    let text = text.trim().to_owned();
                    doc.headings.push(Heading {
                        level,
                        slug: slugs.slug(&text),
                        text,
                        id,
                        line,
                    });
                }
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                block = Some((info, line_of(range.start), String::new()));
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((info, line, code)) = block.take() {
                    doc.blocks.push(Block { info, code, line });
                }
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                doc.links.push(Link {
                    dest: dest_url.to_string(),
                    line: line_of(range.start),
                });
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                for id in anchor_ids(&html) {
                    anchors.push((line_of(range.start), id.clone()));
                    doc.explicit_ids.push(id);
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, _, text)) = heading.as_mut() {
                    text.push_str(&t);
                } else if let Some((_, _, code)) = block.as_mut() {
                    code.push_str(&t);
                }
            }
            _ => {}
        }
    }
    doc
}

fn level_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// The `id`s of the `<a id="…">` tags in a piece of HTML.
fn anchor_ids(html: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<a ") {
        rest = &rest[at + 3..];
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        if let Some(start) = tag.find("id=\"") {
            let value = &tag[start + 4..];
            if let Some(end) = value.find('"') {
                ids.push(value[..end].to_owned());
            }
        }
    }
    ids
}

/// GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, and `-1`,
/// `-2`, … on repeats.
#[derive(Debug, Default)]
pub struct Slugger {
    seen: std::collections::HashMap<String, usize>,
}

impl Slugger {
    /// The slug of the next heading whose text is `text`.
    pub fn slug(&mut self, text: &str) -> String {
        let base: String = text
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                '-' | '_' => Some(c),
                c if c.is_alphanumeric() => Some(c),
                _ => None,
            })
            .collect();
        let count = self.seen.entry(base.clone()).or_insert(0);
        let slug = if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        };
        *count += 1;
        slug
    }
}

/// The words of `text` shaped like environment variables: upper-case letters, digits and
/// underscores, at least two parts (`TASKS_DB`, `_X_AMZN_TRACE_ID`), not part of a longer word.
pub fn variables(text: &str) -> BTreeSet<String> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = BTreeSet::new();
    let mut start = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        if is_word(c) {
            start.get_or_insert(at);
        }
        let ends = chars.get(i + 1).is_none_or(|&(_, next)| !is_word(next));
        if let (true, Some(from)) = (ends && is_word(c), start) {
            let word = &text[from..at + c.len_utf8()];
            if is_variable(word) {
                found.insert(word.to_owned());
            }
            start = None;
        }
    }
    found
}

/// Whether `word` is shaped like an environment variable name.
pub fn is_variable(word: &str) -> bool {
    let body = word.strip_prefix('_').unwrap_or(word);
    let parts: Vec<&str> = body.split('_').collect();
    parts.len() >= 2
        && body.starts_with(|c: char| c.is_ascii_uppercase())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_take_the_anchor_on_the_line_before_and_code_is_not_a_heading() {
        let doc = parse(
            "<a id=\"one\"></a>\n# First `code`\n\n```sh\n# not a heading\ntasks x\n```\n\n## Second\n",
        );
        assert_eq!(doc.headings.len(), 2);
        assert_eq!(doc.headings[0].id.as_deref(), Some("one"));
        assert_eq!(doc.headings[0].text, "First code");
        assert_eq!(doc.headings[1].id, None);
        assert_eq!(doc.blocks.len(), 1);
        assert_eq!(doc.blocks[0].info, "sh");
        assert_eq!(doc.blocks[0].code, "# not a heading\ntasks x\n");
    }

    #[test]
    fn slugs_follow_github() {
        let mut s = Slugger::default();
        assert_eq!(s.slug("The CLI"), "the-cli");
        assert_eq!(
            s.slug("1. Ce que font les fonctions"),
            "1-ce-que-font-les-fonctions"
        );
        assert_eq!(
            s.slug("Storing the Spotify credentials"),
            "storing-the-spotify-credentials"
        );
        assert_eq!(s.slug("The CLI"), "the-cli-1");
        assert_eq!(s.slug("Größe & Ärger"), "größe--ärger");
    }

    #[test]
    fn variables_are_whole_upper_case_words_with_an_underscore() {
        let found = variables(
            "`TASKS_DB`, _X_AMZN_TRACE_ID, SECRET_<NAME>, GLOBAL, x_TASKS_DB, RUST_LOG=debug",
        );
        let found: Vec<&str> = found.iter().map(String::as_str).collect();
        assert_eq!(found, ["RUST_LOG", "TASKS_DB", "_X_AMZN_TRACE_ID"]);
    }

    #[test]
    fn links_are_collected_outside_code_only() {
        let doc = parse("[a](b.md#c) `[x](y)`\n\n```\n[z](w)\n```\n![i](img.png)\n");
        let dests: Vec<&str> = doc.links.iter().map(|l| l.dest.as_str()).collect();
        assert_eq!(dests, ["b.md#c", "img.png"]);
    }
}
