//! The checker: a translation has the source's structure, code blocks and variables, and no
//! relative link points nowhere. Each function returns the problems found, one readable line
//! each, so a test can show all of them at once.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use crate::markdown::{self, Doc};

/// Every heading of a guide carries an explicit anchor (`<a id="…">` on the line before), the
/// anchors shared by the three languages.
pub fn anchors_present(name: &str, doc: &Doc) -> Vec<String> {
    doc.headings
        .iter()
        .filter(|h| h.id.is_none())
        .map(|h| {
            format!(
                "{name}:{}: heading `{}` has no <a id=\"…\"></a> on the line before",
                h.line, h.text
            )
        })
        .collect()
}

/// The problems that make `translation` (named `name`) differ from `source` in structure,
/// code blocks or variables.
pub fn compare(source: &Doc, name: &str, translation: &Doc) -> Vec<String> {
    let mut problems = Vec::new();
    for level in 1..=6u8 {
        let count = |d: &Doc| d.headings.iter().filter(|h| h.level == level).count();
        if count(source) != count(translation) {
            problems.push(format!(
                "{name}: {} headings of level {level}, the source has {}",
                count(translation),
                count(source)
            ));
        }
    }
    let outline = |d: &Doc| -> Vec<(u8, Option<String>)> {
        d.headings.iter().map(|h| (h.level, h.id.clone())).collect()
    };
    let (want, got) = (outline(source), outline(translation));
    if let Some(at) = (0..want.len().max(got.len())).find(|&i| want.get(i) != got.get(i)) {
        let show = |h: Option<&(u8, Option<String>)>| match h {
            Some((level, id)) => format!("level {level} #{}", id.as_deref().unwrap_or("?")),
            None => "nothing".to_owned(),
        };
        let line = translation.headings.get(at).map_or(0, |h| h.line);
        problems.push(format!(
            "{name}:{line}: heading {} is {}, the source's is {}",
            at + 1,
            show(got.get(at)),
            show(want.get(at))
        ));
    }
    if source.blocks.len() != translation.blocks.len() {
        problems.push(format!(
            "{name}: {} code blocks, the source has {}",
            translation.blocks.len(),
            source.blocks.len()
        ));
    }
    for (i, (want, got)) in source.blocks.iter().zip(&translation.blocks).enumerate() {
        if want.info != got.info || want.code != got.code {
            problems.push(format!(
                "{name}:{}: code block {} differs from the source's (line {}): {:?} vs {:?}",
                got.line,
                i + 1,
                want.line,
                got.code,
                want.code
            ));
        }
    }
    let missing: Vec<&String> = source
        .variables
        .difference(&translation.variables)
        .collect();
    let extra: Vec<&String> = translation
        .variables
        .difference(&source.variables)
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{name}: variables of the source missing: {missing:?}"
        ));
    }
    if !extra.is_empty() {
        problems.push(format!(
            "{name}: variables the source does not have: {extra:?}"
        ));
    }
    problems
}

/// Reads Markdown files for the link check, each parsed once.
#[derive(Debug, Default)]
pub struct Library {
    /// Texts given directly (tests), by path; else files are read from disk.
    pub texts: HashMap<PathBuf, String>,
    parsed: HashMap<PathBuf, Option<Doc>>,
}

impl Library {
    fn exists(&self, path: &Path) -> bool {
        self.texts.contains_key(path) || path.exists()
    }

    fn doc(&mut self, path: &Path) -> Option<&Doc> {
        if !self.parsed.contains_key(path) {
            let text = match self.texts.get(path) {
                Some(text) => Some(text.clone()),
                None => std::fs::read_to_string(path).ok(),
            };
            self.parsed
                .insert(path.to_owned(), text.as_deref().map(markdown::parse));
        }
        self.parsed.get(path).and_then(Option::as_ref)
    }

    /// The relative links of the Markdown file `path` that point at a missing file or at an
    /// anchor the target does not have. `shown` names the file in the messages.
    pub fn dead_links(&mut self, path: &Path, shown: &str) -> Vec<String> {
        let Some(doc) = self.doc(path).cloned() else {
            return vec![format!("{shown}: cannot be read")];
        };
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut problems = Vec::new();
        for link in &doc.links {
            if is_external(&link.dest) {
                continue;
            }
            let (file, fragment) = match link.dest.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (link.dest.as_str(), None),
            };
            let target = if file.is_empty() {
                path.to_owned()
            } else {
                normalise(&dir.join(percent_decode(file)))
            };
            if !self.exists(&target) {
                problems.push(format!(
                    "{shown}:{}: link `{}`: {} does not exist",
                    link.line,
                    link.dest,
                    target.display()
                ));
                continue;
            }
            let Some(fragment) = fragment else { continue };
            if target.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let anchors: BTreeSet<String> = match self.doc(&target) {
                Some(target_doc) => target_doc.anchors(),
                None => BTreeSet::new(),
            };
            if !anchors.contains(fragment) {
                problems.push(format!(
                    "{shown}:{}: link `{}`: no anchor #{fragment} in {}",
                    link.line,
                    link.dest,
                    target.display()
                ));
            }
        }
        problems
    }
}

fn is_external(dest: &str) -> bool {
    let scheme = dest.split_once(':').map(|(s, _)| s);
    scheme.is_some_and(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

fn percent_decode(s: &str) -> String {
    s.replace("%20", " ")
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markdown::parse;

    const SOURCE: &str = "<a id=\"a\"></a>\n# Guide\n\n<a id=\"b\"></a>\n## Setup\n\nSet `TASKS_DB`.\n\n```sh\ntasks functions\n```\n\n<a id=\"c\"></a>\n## Limits\n";

    #[test]
    fn a_faithful_translation_passes() {
        let fr = SOURCE
            .replace("Guide", "Guide utilisateur")
            .replace("Setup", "Installation")
            .replace("Set ", "Définir ")
            .replace("Limits", "Limites");
        assert_eq!(
            compare(&parse(SOURCE), "fr", &parse(&fr)),
            Vec::<String>::new()
        );
        assert!(anchors_present("fr", &parse(&fr)).is_empty());
    }

    #[test]
    fn a_missing_section_is_reported() {
        let fr = SOURCE.replace("<a id=\"c\"></a>\n## Limits\n", "");
        let problems = compare(&parse(SOURCE), "fr", &parse(&fr));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("1 headings of level 2, the source has 2")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("heading 3 is nothing")),
            "{problems:?}"
        );
    }

    #[test]
    fn sections_in_another_order_are_reported() {
        let fr = SOURCE
            .replace("id=\"b\"", "id=\"x\"")
            .replace("id=\"c\"", "id=\"b\"")
            .replace("id=\"x\"", "id=\"c\"");
        let problems = compare(&parse(SOURCE), "fr", &parse(&fr));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("heading 2 is level 2 #c, the source's is level 2 #b"));
    }

    #[test]
    fn a_changed_or_retagged_code_block_is_reported() {
        for fr in [
            SOURCE.replace("tasks functions", "tasks function"),
            SOURCE.replace("```sh\n", "```sh no-run\n"),
            SOURCE.replace("tasks functions\n", "tasks functions \n"),
        ] {
            let problems = compare(&parse(SOURCE), "fr", &parse(&fr));
            assert!(
                problems.iter().any(|p| p.contains("code block 1 differs")),
                "{problems:?}"
            );
        }
        let dropped = SOURCE.replace("```sh\ntasks functions\n```\n", "");
        let problems = compare(&parse(SOURCE), "fr", &parse(&dropped));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("0 code blocks, the source has 1"))
        );
    }

    #[test]
    fn a_missing_or_extra_variable_is_reported() {
        let problems = compare(
            &parse(SOURCE),
            "de",
            &parse(&SOURCE.replace("TASKS_DB", "TASK_DB")),
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("missing: [\"TASKS_DB\"]")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("does not have: [\"TASK_DB\"]")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_heading_without_anchor_is_reported() {
        let bad = SOURCE.replace("<a id=\"b\"></a>\n", "");
        let problems = anchors_present("de", &parse(&bad));
        assert_eq!(
            problems,
            ["de:4: heading `Setup` has no <a id=\"…\"></a> on the line before"]
        );
    }

    #[test]
    fn dead_file_links_and_dead_anchors_are_reported() {
        let mut library = Library::default();
        library.texts.insert(
            PathBuf::from("/doc/other.md"),
            "# Other title\n<a id=\"x\"></a>\n".into(),
        );
        library.texts.insert(
            PathBuf::from("/doc/guide.md"),
            "# Here\n[ok](other.md#other-title) [ok2](other.md#x) [self](#here) [web](https://example.org/none)\n\
             [gone](missing.md) [bad](other.md#nope) [selfbad](#there) [up](../doc/other.md)\n"
                .into(),
        );
        let problems = library.dead_links(Path::new("/doc/guide.md"), "guide.md");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("`missing.md`: /doc/missing.md does not exist"));
        assert!(problems[1].contains("`other.md#nope`: no anchor #nope"));
        assert!(problems[2].contains("`#there`: no anchor #there"));
    }
}
