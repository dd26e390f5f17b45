//! `tasks playlist ...`: the rule files of managed playlists, runs of playlist-update, and the
//! explanations of the last run.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use backbone::local::{Invoke, LocalDb};
use backbone::validate::PlaylistId;
use chrono::NaiveDate;
use clap::Subcommand;
use playlist_update::rules::RuleFile;
use playlist_update::state;
use serde_json::{Value, json};

/// The playlist commands.
#[derive(Debug, Subcommand)]
pub enum PlaylistCommand {
    /// Rule files: check one, store one, show the stored one.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Curate a managed playlist: a dry run (plan and explanations stored and printed) unless
    /// `--apply`.
    Run {
        /// The playlist (id, URI or URL).
        playlist: String,
        /// Write the plan to Spotify.
        #[arg(long)]
        apply: bool,
        /// The day to curate for (default today).
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Accept the live playlist, human edits included, as the new baseline.
        #[arg(long)]
        rebase: bool,
    },
    /// Why each track of the last run was added, kept, moved or dropped.
    Explain {
        /// The playlist.
        playlist: String,
        /// Print the stored run record as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The rule-file commands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Check a rule file; errors name the line and the field.
    Validate {
        /// The YAML file.
        file: PathBuf,
    },
    /// Check and store a rule file (the playlist it names becomes managed).
    Apply {
        /// The YAML file.
        file: PathBuf,
    },
    /// Print the stored rule file of a playlist.
    Show {
        /// The playlist.
        playlist: String,
    },
}

fn read_rules(file: &PathBuf) -> Result<(String, RuleFile)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match RuleFile::parse(&text) {
        Ok(rules) => Ok((text, rules)),
        Err(err) => bail!("{}: {err}", file.display()),
    }
}

fn playlist_id(s: &str) -> Result<PlaylistId> {
    PlaylistId::parse("playlist", s).map_err(anyhow::Error::from)
}

fn out(text: &str) -> Result<()> {
    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
    Ok(())
}

/// Runs a playlist command; `Ok(false)` when the run did not succeed (non-zero exit).
pub async fn run(
    command: PlaylistCommand,
    db: &LocalDb,
    functions: &[Box<dyn Invoke>],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool> {
    match command {
        PlaylistCommand::Rules {
            command: RulesCommand::Validate { file },
        } => {
            let (_, rules) = read_rules(&file)?;
            out(&format!(
                "{}: valid rules for playlist {}\n",
                file.display(),
                rules.playlist
            ))?;
            Ok(true)
        }
        PlaylistCommand::Rules {
            command: RulesCommand::Apply { file },
        } => {
            let (text, rules) = read_rules(&file)?;
            state::save_rules(db, &text, &rules, now).await?;
            out(&format!(
                "stored the rules of playlist {} ({})\n",
                rules.playlist,
                rules.name.as_deref().unwrap_or("unnamed")
            ))?;
            Ok(true)
        }
        PlaylistCommand::Rules {
            command: RulesCommand::Show { playlist },
        } => {
            let (_, stored) = state::load_rules(db, &playlist_id(&playlist)?).await?;
            out(&stored.text)?;
            Ok(true)
        }
        PlaylistCommand::Run {
            playlist,
            apply,
            date,
            rebase,
        } => {
            let Some(function) = functions.iter().find(|f| f.name() == "playlist-update") else {
                bail!("playlist-update is not registered");
            };
            let playlist = playlist_id(&playlist)?;
            let mut event = json!({
                "step": "update", "playlist": playlist, "apply": apply, "rebase": rebase,
                "request": uuid::Uuid::new_v4().to_string(),
            });
            if let Some(date) = date {
                event["date"] = json!(date);
            }
            let report = function
                .invoke(event)
                .await
                .map_err(|err| anyhow::anyhow!("playlist-update: {err}"))?;
            let response = report.response;
            match response["status"].as_str() {
                Some("completed") => {
                    let output = &response["output"];
                    let stopped = output["status"] == "stopped_human_edit";
                    // The run record's rendering opens with the same message: print it once.
                    let record = if stopped {
                        None
                    } else {
                        state::latest_run(db, &playlist).await?
                    };
                    if record.is_none() {
                        out(&format!(
                            "{}\n",
                            output["message"].as_str().unwrap_or_default()
                        ))?;
                    }
                    for skip in output["skips"].as_array().into_iter().flatten() {
                        out(&format!(
                            "skipped: {}: {}\n",
                            skip["source"].as_str().unwrap_or_default(),
                            skip["reason"].as_str().unwrap_or_default()
                        ))?;
                    }
                    if let Some(record) = record {
                        out(&render(&record))?;
                    }
                    Ok(!stopped)
                }
                _ => {
                    out(&format!(
                        "playlist-update refused the run: {}\n",
                        response["reason"].as_str().unwrap_or("unknown reason")
                    ))?;
                    Ok(false)
                }
            }
        }
        PlaylistCommand::Explain { playlist, json } => {
            let playlist = playlist_id(&playlist)?;
            let Some(record) = state::latest_run(db, &playlist).await? else {
                bail!("playlist {playlist} has no stored run; run `tasks playlist run {playlist}`");
            };
            if json {
                out(&format!("{}\n", serde_json::to_string_pretty(&record)?))?;
            } else {
                out(&render(&record))?;
            }
            Ok(true)
        }
    }
}

/// The explanations of a run record, one block per track, for people.
pub fn render(record: &Value) -> String {
    let mut text = format!(
        "run of {} for {} ({}): {}\n",
        record["playlist"].as_str().unwrap_or_default(),
        record["date"].as_str().unwrap_or_default(),
        record["status"].as_str().unwrap_or_default(),
        record["message"].as_str().unwrap_or_default()
    );
    if let Some(score) = record["score"].as_object() {
        text.push_str(&format!(
            "score {:.3} (greedy start {:.3}); transitions {:.3}; {} candidates, {} eligible, {} with features\n",
            score.get("total").and_then(Value::as_f64).unwrap_or_default(),
            record["initialScore"]["total"].as_f64().unwrap_or_default(),
            score.get("transitions").and_then(Value::as_f64).unwrap_or_default(),
            record["candidates"],
            record["eligible"],
            record["withFeatures"],
        ));
    }
    for e in record["explanations"].as_array().into_iter().flatten() {
        let pos = |v: &Value| v.as_u64().map_or("-".to_owned(), |p| p.to_string());
        text.push_str(&format!(
            "{:>4} {:<7} {} (was {})\n",
            pos(&e["to"]),
            e["action"].as_str().unwrap_or_default(),
            e["title"].as_str().unwrap_or_default(),
            pos(&e["from"]),
        ));
        for reason in e["reasons"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "             {}\n",
                reason.as_str().unwrap_or_default()
            ));
        }
    }
    text
}
