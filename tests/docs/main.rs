//! Documentation tests: the user guide in English (the source), French and German stays in step,
//! no relative link in the guides, the README or `docs/` points nowhere, every environment
//! variable the code reads is documented, and every command the guide shows runs (or, where it
//! needs AWS, the network or a long time, still parses against the CLI).

mod commands;
mod markdown;
mod sync;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use commands::{Cli, Mode, Program};

const SOURCE: &str = "docs/guide.en.md";
const TRANSLATIONS: &[&str] = &["docs/guide.fr.md", "docs/guide.de.md"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

fn guide(relative: &str) -> markdown::Doc {
    markdown::parse(&read(relative))
}

fn fail_with(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_translations_have_the_sources_sections_code_blocks_and_variables() {
    let source = guide(SOURCE);
    assert!(
        source.headings.len() >= 30,
        "the source guide lost its sections"
    );
    assert!(
        source.blocks.len() >= 10,
        "the source guide lost its commands"
    );
    let mut problems = sync::anchors_present(SOURCE, &source);
    for name in TRANSLATIONS {
        let translation = guide(name);
        problems.extend(sync::anchors_present(name, &translation));
        problems.extend(sync::compare(&source, name, &translation));
    }
    fail_with(&problems);
}

#[test]
fn no_relative_link_points_nowhere() {
    let mut files = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    assert!(
        files.len() >= 5,
        "README.md, the three guides, reliability.md: {files:?}"
    );
    let mut library = sync::Library::default();
    let mut problems = Vec::new();
    for file in &files {
        let shown = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        problems.extend(library.dead_links(file, &shown));
    }
    fail_with(&problems);
}

#[test]
fn the_readme_links_the_three_guides() {
    let readme = markdown::parse(&read("README.md"));
    let dests: BTreeSet<&str> = readme.links.iter().map(|l| l.dest.as_str()).collect();
    for guide in [SOURCE].iter().chain(TRANSLATIONS) {
        assert!(dests.contains(guide), "README.md does not link {guide}");
    }
}

/// The names of environment variables in the production code: string literals shaped like one
/// in `src/`, `shared/src/`, each function's `src/` and `benches/`, and the sandboxes' `src/`,
/// before their `#[cfg(test)]` module.
fn code_variables() -> BTreeSet<String> {
    // String literals shaped like a variable that are not one.
    const NOT_VARIABLES: &[&str] = &[
        "SCREAMING_SNAKE_CASE", // a serde `rename_all` value
        "QUOTA_EXCEEDED",       // an API's error code
    ];
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for dir in ["src", "shared/src", "sandbox/src", "social-sandbox/src"] {
        walk(&root().join(dir), &mut files);
    }
    for entry in std::fs::read_dir(root().join("functions"))
        .unwrap()
        .flatten()
    {
        walk(&entry.path().join("src"), &mut files);
        walk(&entry.path().join("benches"), &mut files);
    }
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let production = text.split("#[cfg(test)]").next().unwrap_or("");
        let pieces: Vec<&str> = production.split('"').collect();
        for (i, piece) in pieces.iter().enumerate() {
            // Odd pieces are inside a literal (good enough for names: no escaped quotes).
            let compile_time = i > 0 && pieces[i - 1].ends_with("env!(");
            if i % 2 == 1
                && markdown::is_variable(piece)
                && !compile_time
                && !NOT_VARIABLES.contains(piece)
            {
                names.insert((*piece).to_owned());
            }
        }
    }
    names
}

#[test]
fn every_variable_the_code_reads_or_the_template_sets_is_in_the_guide() {
    let documented = guide(SOURCE).variables;
    let code = code_variables();
    assert!(
        code.len() >= 40,
        "the source scan found too little: {code:?}"
    );
    let template = read("template.yaml");
    let set: BTreeSet<String> = template
        .lines()
        .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.to_owned()))
        .filter(|k| markdown::is_variable(k))
        .collect();
    assert!(
        set.contains("STORE_TABLE"),
        "the template scan found too little: {set:?}"
    );
    // `tasks` reads secrets as `SECRET_<NAME>` (shared/src/local/secrets.rs): the names it
    // builds for the Spotify and social credentials.
    let built = ["SECRET_SPOTIFY_REFRESH_TOKEN", "SECRET_SOCIAL_CREDENTIALS"].map(String::from);
    let missing: Vec<&String> = code
        .iter()
        .chain(&set)
        .chain(&built)
        .filter(|name| !documented.contains(*name))
        .collect();
    assert!(missing.is_empty(), "{SOURCE} does not document {missing:?}");
}

#[test]
fn every_cli_command_is_shown_in_the_guide() {
    let mut cli = Cli::new(Path::new(env!("CARGO_BIN_EXE_tasks")), &root());
    let leaves = cli.leaves(Vec::new()).unwrap();
    assert!(
        leaves.len() >= 20,
        "the CLI has more commands than {leaves:?}"
    );
    let shown: Vec<Vec<String>> = commands::lines(&guide(SOURCE))
        .unwrap()
        .into_iter()
        .filter_map(|l| match l.program {
            Program::Tasks(args) => Some(args),
            _ => None,
        })
        .collect();
    let missing: Vec<String> = leaves
        .iter()
        .filter(|leaf| !shown.iter().any(|args| args.starts_with(leaf)))
        .map(|leaf| format!("tasks {}", leaf.join(" ")))
        .collect();
    assert!(
        missing.is_empty(),
        "{SOURCE} shows no example of {missing:?}"
    );
}

#[test]
fn every_command_in_the_guide_runs_or_parses() {
    let exe = Path::new(env!("CARGO_BIN_EXE_tasks"));
    let mut cli = Cli::new(exe, &root());
    let lines = commands::lines(&guide(SOURCE)).unwrap_or_else(|p| panic!("{}", p.join("\n")));
    let work = tempfile::tempdir().unwrap();
    let mut env = vec![(
        "TASKS_DB".to_owned(),
        work.path().join("tasks.sqlite3").display().to_string(),
    )];
    let (mut ran, mut checked) = (0, 0);
    let mut problems = Vec::new();
    for line in &lines {
        match (&line.program, line.mode) {
            (Program::Export(pairs), Mode::Run) => env.extend(pairs.iter().cloned()),
            (Program::Export(_), Mode::Check) => {}
            (Program::Tasks(args), Mode::Run) => {
                let mut with = env.clone();
                with.extend(line.env.iter().cloned());
                let started = Instant::now();
                match cli.run(args, &with, Duration::from_secs(300)) {
                    Ok(_) => ran += 1,
                    Err(why) => problems.push(format!(
                        "{SOURCE}:{}: `tasks {}` {why}",
                        line.at,
                        args.join(" ")
                    )),
                }
                eprintln!(
                    "ran `tasks {}` in {:.1?}",
                    args.join(" "),
                    started.elapsed()
                );
            }
            (Program::Tasks(args), Mode::Check) => {
                checked += 1;
                for why in cli.check(args) {
                    problems.push(format!("{SOURCE}:{}: {why}", line.at));
                }
            }
            (Program::Other(words), _) => {
                checked += 1;
                for why in commands::check_other(words, &root()) {
                    problems.push(format!("{SOURCE}:{}: {why}", line.at));
                }
            }
        }
    }
    fail_with(&problems);
    assert!(
        ran >= 15 && checked >= 25,
        "ran {ran}, checked {checked}: the guide lost commands"
    );
}

#[test]
fn a_documented_command_that_fails_or_drifts_is_caught() {
    let mut cli = Cli::new(Path::new(env!("CARGO_BIN_EXE_tasks")), &root());
    let work = tempfile::tempdir().unwrap();
    let env = [(
        "TASKS_DB".to_owned(),
        work.path().join("t.sqlite3").display().to_string(),
    )];
    let args = |s: &str| commands::split_words(s).unwrap();
    let failed = cli
        .run(
            &args("invoke no-such-function --event events/audit-verify.json"),
            &env,
            Duration::from_secs(30),
        )
        .unwrap_err();
    assert!(failed.contains("unknown function"), "{failed}");
    assert!(
        cli.run(&args("functions"), &env, Duration::from_secs(30))
            .is_ok()
    );
    assert_eq!(
        cli.check(&args("watchlist add demo x --by me")),
        ["`tasks watchlist add` has no flag --by"]
    );
    assert!(cli.check(&args("watchlist purge demo"))[0].contains("no subcommand `purge`"));
    assert!(cli.check(&args("playlist rules"))[0].contains("needs a subcommand"));
    assert!(
        cli.check(&args("sandbox serve --addr 127.0.0.1:0 --tier extended"))
            .is_empty()
    );
}
