//! The commands of the guide's shell blocks, and how each is proven current.
//!
//! The convention (stated at the top of `docs/guide.en.md`):
//! - a block tagged `sh` is run, line by line and in document order, against a temporary
//!   database; every line must be a `tasks` command (optionally after `VAR=value`
//!   assignments) or an `export`; each must exit 0;
//! - a block tagged `sh no-run` is not run: its `tasks` (or `cargo run -- …`) lines are checked
//!   against `tasks … --help` (each subcommand and each `--flag` must exist), its `make` lines
//!   against the Makefile's targets, its repository paths against the tree, and its other
//!   programs must be ones the guide is known to use;
//! - any other shell tag (`bash`, `shell`, `console`) is refused, so no command escapes both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::markdown::Doc;

/// Whether a block is run or only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    Check,
}

/// One command line of a shell block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub mode: Mode,
    /// Line number in the Markdown file.
    pub at: usize,
    /// `VAR=value` assignments before the program.
    pub env: Vec<(String, String)>,
    pub program: Program,
}

/// What a line runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// The CLI, with its arguments (from `tasks …` or `cargo run [options] -- …`).
    Tasks(Vec<String>),
    /// `export VAR=value …`.
    Export(Vec<(String, String)>),
    /// Anything else: the words.
    Other(Vec<String>),
}

/// Programs a `sh no-run` block may name besides `tasks` and `make`.
const KNOWN_PROGRAMS: &[&str] = &["sam", "aws", "pip", "rustup", "source", "bash", "cargo"];
/// Folders whose paths in a command must exist (generated ones such as `.local/` may not yet).
const TREE_FOLDERS: &[&str] = &[
    "events/",
    "scripts/",
    "infra/",
    "schemas/",
    "docs/",
    "functions/",
    "tests/",
    "shared/",
];

/// The command lines of every shell block of `doc`.
pub fn lines(doc: &Doc) -> Result<Vec<Line>, Vec<String>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for block in &doc.blocks {
        let mode = match block.info.trim() {
            "sh" => Mode::Run,
            "sh no-run" => Mode::Check,
            "bash" | "shell" | "console" | "zsh" | "sh-session" => {
                problems.push(format!(
                    "line {}: a `{}` block: tag shell blocks `sh` (run) or `sh no-run` (checked)",
                    block.line, block.info
                ));
                continue;
            }
            _ => continue,
        };
        for (i, raw) in block.code.lines().enumerate() {
            let at = block.line + 1 + i;
            let words = match split_words(raw) {
                Ok(words) => words,
                Err(why) => {
                    problems.push(format!("line {at}: {why}"));
                    continue;
                }
            };
            if words.is_empty() {
                continue;
            }
            match line(mode, at, words) {
                Ok(line) => out.push(line),
                Err(why) => problems.push(format!("line {at}: {why}")),
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn assignment(word: &str) -> Option<(String, String)> {
    let (name, value) = word.split_once('=')?;
    crate::markdown::is_variable(name).then(|| (name.to_owned(), value.to_owned()))
}

fn line(mode: Mode, at: usize, mut words: Vec<String>) -> Result<Line, String> {
    if words.last().is_some_and(|w| w == "&") {
        if mode == Mode::Run {
            return Err(
                "a background command (`&`) cannot be run: mark the block `sh no-run`".into(),
            );
        }
        words.pop();
    }
    let mut env = Vec::new();
    while let Some(pair) = words.first().and_then(|w| assignment(w)) {
        env.push(pair);
        words.remove(0);
    }
    let program = match words.first().map(String::as_str) {
        None => return Err("assignments without a command".into()),
        Some("tasks") => Program::Tasks(words[1..].to_vec()),
        Some("cargo") if words.get(1).is_some_and(|w| w == "run") => {
            match words.iter().position(|w| w == "--") {
                Some(dash) => Program::Tasks(words[dash + 1..].to_vec()),
                None => return Err("`cargo run` without `--`: write `tasks …`".into()),
            }
        }
        Some("export") => Program::Export(
            words[1..]
                .iter()
                .map(|w| assignment(w).ok_or_else(|| format!("`export {w}` is not VAR=value")))
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => Program::Other(words),
    };
    if mode == Mode::Run && matches!(program, Program::Other(_)) {
        return Err(format!(
            "`{}` in a runnable `sh` block: only `tasks` lines run; mark the block `sh no-run`",
            match &program {
                Program::Other(w) => w.join(" "),
                _ => String::new(),
            }
        ));
    }
    Ok(Line {
        mode,
        at,
        env,
        program,
    })
}

/// Splits a shell line into words: single and double quotes, `\` escapes, a `#` comment at the
/// start of a word. No expansion: the guide's commands must not rely on one.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                words.extend(word.take());
            }
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("unclosed ' in `{line}`")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => w.extend(chars.next()),
                        Some('$' | '`') => {
                            return Err(format!("no expansion in a documented command: `{line}`"));
                        }
                        Some(c) => w.push(c),
                        None => return Err(format!("unclosed \" in `{line}`")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => {
                    return Err(format!(
                        "a line continuation in `{line}`: keep one command a line"
                    ));
                }
            },
            '$' | '`' | '|' | ';' => {
                return Err(format!("`{c}` in `{line}`: keep documented commands plain"));
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// The subcommands listed in a clap help text (`Commands:` section), `help` left out.
pub fn subcommands(help: &str) -> Vec<String> {
    let Some(at) = help.find("Commands:\n") else {
        return Vec::new();
    };
    help[at + "Commands:\n".len()..]
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The `--flags` of `args` that `help` does not document.
pub fn unknown_flags(args: &[String], help: &str) -> Vec<String> {
    args.iter()
        .filter(|a| a.starts_with("--") && a.len() > 2)
        .map(|a| a.split('=').next().unwrap_or(a).to_owned())
        .filter(|flag| {
            !help.match_indices(flag.as_str()).any(|(at, _)| {
                let after = help[at + flag.len()..].chars().next();
                after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            })
        })
        .collect()
}

/// The CLI binary, its help texts cached.
pub struct Cli {
    pub exe: PathBuf,
    pub root: PathBuf,
    help: HashMap<Vec<String>, String>,
}

impl Cli {
    pub fn new(exe: &Path, root: &Path) -> Self {
        Self {
            exe: exe.to_owned(),
            root: root.to_owned(),
            help: HashMap::new(),
        }
    }

    /// `tasks <path> --help`.
    pub fn help(&mut self, path: &[String]) -> Result<String, String> {
        if let Some(text) = self.help.get(path) {
            return Ok(text.clone());
        }
        let out = Command::new(&self.exe)
            .args(path)
            .arg("--help")
            .current_dir(&self.root)
            .output()
            .map_err(|e| format!("running {}: {e}", self.exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`tasks {} --help` failed: {}",
                path.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        self.help.insert(path.to_vec(), text.clone());
        Ok(text)
    }

    /// The subcommand path `args` names, and the help text at its end.
    pub fn resolve(&mut self, args: &[String]) -> Result<(Vec<String>, String), String> {
        let mut path: Vec<String> = Vec::new();
        let mut help = self.help(&path)?;
        for word in args {
            if word.starts_with('-') {
                break;
            }
            let known = subcommands(&help);
            if known.is_empty() {
                break;
            }
            if !known.contains(word) {
                return Err(format!(
                    "`tasks {}`: no subcommand `{word}` (known: {})",
                    path.join(" "),
                    known.join(", ")
                ));
            }
            path.push(word.clone());
            help = self.help(&path)?;
        }
        if !subcommands(&help).is_empty() {
            return Err(format!("`tasks {}` needs a subcommand", path.join(" ")));
        }
        Ok((path, help))
    }

    /// The problems of a `tasks` line that is only checked.
    pub fn check(&mut self, args: &[String]) -> Vec<String> {
        match self.resolve(args) {
            Err(why) => vec![why],
            Ok((path, help)) => unknown_flags(args, &help)
                .into_iter()
                .map(|flag| format!("`tasks {}` has no flag {flag}", path.join(" ")))
                .collect(),
        }
    }

    /// Every leaf subcommand path of the CLI (`watchlist add`, `functions`, …).
    pub fn leaves(&mut self, path: Vec<String>) -> Result<Vec<Vec<String>>, String> {
        let help = self.help(&path)?;
        let children = subcommands(&help);
        if children.is_empty() {
            return Ok(vec![path]);
        }
        let mut out = Vec::new();
        for child in children {
            let mut next = path.clone();
            next.push(child);
            out.extend(self.leaves(next)?);
        }
        Ok(out)
    }

    /// Runs `tasks args` in the repository root with `env`, within `limit`; `Err` carries the
    /// exit status and the end of stderr.
    pub fn run(
        &self,
        args: &[String],
        env: &[(String, String)],
        limit: Duration,
    ) -> Result<String, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let (stdout, stderr) = (dir.path().join("out"), dir.path().join("err"));
        let file = |p: &Path| std::fs::File::create(p).map_err(|e| e.to_string());
        let mut child = Command::new(&self.exe)
            .args(args)
            .current_dir(&self.root)
            // What the caller's environment could otherwise switch on.
            .env_remove("SPOTIFY_API_BASE_URL")
            .env_remove("SPOTIFY_AUTH_BASE_URL")
            .env_remove("SPOTIFY_API_TIER")
            .env_remove("SOCIAL_CONTACT")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("RUST_LOG")
            // The drafts of `tasks local` come from the template writer here: with the embedded
            // model, one run takes 100 s to over 300 s in a test build on two shared cores, and
            // the model's own path is tested by ai-content-generation's `local_model` tests.
            // What this test proves is that each command of the guide runs.
            .env("TEXT_GENERATOR", "template")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file(&stdout)?)
            .stderr(file(&stderr)?)
            .spawn()
            .map_err(|e| format!("running {}: {e}", self.exe.display()))?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "still running after {limit:?}: mark it `sh no-run`"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = std::fs::read_to_string(&stdout).unwrap_or_default();
        if status.success() {
            return Ok(out);
        }
        let err = std::fs::read_to_string(&stderr).unwrap_or_default();
        let tail: String = err
            .chars()
            .rev()
            .take(1500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(format!("exited with {status}: {}", tail.trim()))
    }
}

/// The problems of a line of another program in a `sh no-run` block.
pub fn check_other(words: &[String], root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let program = words[0].as_str();
    if program == "make" {
        let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap_or_default();
        for target in &words[1..] {
            if !makefile
                .lines()
                .any(|l| l.starts_with(&format!("{target}:")))
            {
                problems.push(format!("`make {target}`: no such target in the Makefile"));
            }
        }
        return problems;
    }
    let is_path = |w: &str| TREE_FOLDERS.iter().any(|f| w.starts_with(f));
    if !KNOWN_PROGRAMS.contains(&program) && !is_path(program) {
        problems.push(format!(
            "`{program}`: not a program the guide is known to use ({}, tasks, make, or a script of the tree)",
            KNOWN_PROGRAMS.join(", ")
        ));
    }
    for word in words {
        if is_path(word) && !root.join(word).exists() {
            problems.push(format!("`{word}` does not exist in the repository"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markdown::parse;

    fn words(s: &str) -> Vec<String> {
        split_words(s).unwrap()
    }

    #[test]
    fn words_follow_shell_quoting_and_comments() {
        assert_eq!(
            words("tasks a 'b c' \"d e\" f\\ g # note"),
            ["tasks", "a", "b c", "d e", "f g"]
        );
        assert!(words("# only a comment").is_empty());
        assert!(split_words("tasks $HOME").is_err());
        assert!(split_words("tasks a | less").is_err());
        assert!(split_words("tasks 'open").is_err());
    }

    #[test]
    fn lines_are_classified_by_their_block() {
        let doc = parse(
            "```sh\nTASKS_DB=x tasks functions\ncargo run --release -- local --days 2\n```\n\n\
             ```sh no-run\nmake run\ntasks sandbox serve &\n```\n\n```json\n{}\n```\n",
        );
        let lines = lines(&doc).unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].mode, Mode::Run);
        assert_eq!(lines[0].env, [("TASKS_DB".to_owned(), "x".to_owned())]);
        assert_eq!(lines[0].program, Program::Tasks(vec!["functions".into()]));
        assert_eq!(lines[1].program, Program::Tasks(words("local --days 2")));
        assert_eq!(lines[2].mode, Mode::Check);
        assert_eq!(lines[2].program, Program::Other(words("make run")));
        assert_eq!(lines[3].program, Program::Tasks(words("sandbox serve")));
        assert_eq!(lines[3].at, 8);
    }

    #[test]
    fn a_runnable_block_refuses_what_it_cannot_run() {
        for (block, expect) in [
            ("```sh\nmake run\n```\n", "only `tasks` lines run"),
            ("```sh\ntasks sandbox serve &\n```\n", "background"),
            ("```bash\ntasks functions\n```\n", "tag shell blocks"),
            ("```sh\ncargo run --release\n```\n", "without `--`"),
        ] {
            let problems = lines(&parse(block)).unwrap_err();
            assert!(problems[0].contains(expect), "{block}: {problems:?}");
        }
    }

    #[test]
    fn unknown_flags_are_found_in_help_text() {
        let help =
            "Options:\n      --json         Print JSON\n      --days <DAYS>  Days\n  -h, --help\n";
        assert!(unknown_flags(&words("local --days 3 --json"), help).is_empty());
        assert_eq!(
            unknown_flags(&words("local --day 3 --js --days=2"), help),
            ["--day", "--js"]
        );
    }

    #[test]
    fn subcommands_are_read_from_help_text() {
        let help = "Usage: tasks <COMMAND>\n\nCommands:\n  invoke  Invoke one\n          handler\n  local   Run\n  help    Print\n\nOptions:\n";
        assert_eq!(subcommands(help), ["invoke", "local"]);
    }

    #[test]
    fn other_programs_are_checked_against_the_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(check_other(&words("make run"), root).is_empty());
        assert!(check_other(&words("bash infra/moto.sh start"), root).is_empty());
        assert!(check_other(&words("make deploy"), root)[0].contains("no such target"));
        assert!(check_other(&words("bash infra/nope.sh"), root)[0].contains("does not exist"));
        assert!(check_other(&words("curl https://example.org"), root)[0].contains("not a program"));
    }
}
