//! `tasks local --days N`: every function's schedule, once per simulated day.
//!
//! The runner moves one clock and the Spotify sandbox's simulated day together, invokes each
//! function's schedule events (`events/<function>/*schedule*.json`) as EventBridge Scheduler
//! would, and drains the queues as Lambda's SQS event source would, before moving to the next
//! day. Running the same days again adds nothing: every step is idempotent.

use std::path::Path;
use std::time::Duration;

use backbone::clock::{Clock, ManualClock};
use backbone::local::{DrainSummary, Invoke};
use backbone::validate::ArtistId;
use backbone::watchlist::{self, WatchlistName};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::{Local, RunError, sample_events};

/// The watchlist of the local run and the sample events.
pub const DEMO_WATCHLIST: &str = "demo";
/// Artists on the demo watchlist: the sandbox's first twelve, which the demo scenario uses.
pub const DEMO_ARTISTS: usize = 12;
/// The hour of day the schedules fire.
const SCHEDULE_HOUR: u32 = 6;

/// What one function did on one day.
#[derive(Debug, Clone, Serialize)]
pub struct DayRun {
    /// The day.
    pub date: NaiveDate,
    /// The function.
    pub function: String,
    /// Schedule events invoked.
    pub schedules: usize,
    /// Schedule events refused or failed, with the error.
    pub errors: Vec<String>,
    /// The queue drain that followed.
    pub drain: DrainSummary,
}

/// Puts the sandbox's first [`DEMO_ARTISTS`] artists on the `demo` watchlist, unless it exists.
/// Returns whether it was created. Needs the in-process sandbox (its catalog names the ids).
pub async fn seed_demo_watchlist(local: &Local) -> Result<bool, RunError> {
    let Some(sandbox) = &local.spotify.sandbox else {
        return Ok(false);
    };
    let name = demo_name();
    let store = &local.runtime.db;
    if watchlist::names(store)
        .await
        .map_err(RunError::Watchlist)?
        .contains(&name)
    {
        return Ok(false);
    }
    let artists: Vec<ArtistId> = sandbox
        .catalog()
        .artists
        .iter()
        .take(DEMO_ARTISTS)
        .filter_map(|a| ArtistId::parse("artist", &a.id).ok())
        .collect();
    watchlist::add(store, &name, &artists)
        .await
        .map_err(RunError::Watchlist)?;
    Ok(true)
}

/// The rule file of the demo playlist (a playlist of the sandbox user's), stored by
/// [`seed_demo_rules`].
pub const DEMO_RULES: &str = include_str!("../events/playlist-update/rules/demo.yaml");

/// Stores the demo playlist's rules unless rules for it exist. Returns whether they were
/// stored. Needs the in-process sandbox (the rules name one of its playlists).
pub async fn seed_demo_rules(local: &Local) -> Result<bool, RunError> {
    if local.spotify.sandbox.is_none() {
        return Ok(false);
    }
    let rules =
        playlist_update::rules::RuleFile::parse(DEMO_RULES).map_err(|err| RunError::Read {
            path: "events/playlist-update/rules/demo.yaml".into(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, err.to_string()),
        })?;
    let store = &local.runtime.db;
    match playlist_update::state::load_rules(store, &rules.playlist).await {
        Err(playlist_update::state::RulesLoadError::Missing(_)) => {}
        _ => return Ok(false),
    }
    playlist_update::state::save_rules(store, DEMO_RULES, &rules, local.runtime.clock.now())
        .await?;
    Ok(true)
}

/// The demo watchlist's name.
pub fn demo_name() -> WatchlistName {
    // A constant of lower-case letters: a valid name by construction.
    WatchlistName::new(DEMO_WATCHLIST).expect("`demo` is a valid watchlist name")
}

/// When the schedules fire on `date`.
pub fn schedule_time(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(SCHEDULE_HOUR, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(|| date.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// Runs every function's schedule events on the simulated days `days` (day 0 is the sandbox's
/// first), moving `clock` and the sandbox together. Returns one entry per function and day.
pub async fn simulate(
    local: &Local,
    clock: &ManualClock,
    functions: &[Box<dyn Invoke>],
    events_dir: &Path,
    days: std::ops::Range<u32>,
    max_wait: Duration,
) -> Result<Vec<DayRun>, RunError> {
    let start = local
        .spotify
        .sandbox
        .as_ref()
        .map(|s| s.catalog().date(0))
        .unwrap_or_else(|| clock.now().date_naive());
    let mut schedules = Vec::new();
    for function in functions {
        let files: Vec<_> = sample_events(events_dir, function.name())?
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains("schedule"))
            })
            .collect();
        let mut bodies = Vec::new();
        for path in files {
            bodies.push(std::fs::read(&path).map_err(|source| RunError::Read {
                path: path.clone(),
                source,
            })?);
        }
        schedules.push(bodies);
    }
    let mut runs = Vec::new();
    for day in days {
        let date = start + chrono::Duration::days(i64::from(day));
        clock.set(schedule_time(date));
        if let Some(sandbox) = &local.spotify.sandbox {
            sandbox.set_day(day);
        }
        if let Some(sandbox) = local.social.as_ref().and_then(|s| s.sandbox.as_ref()) {
            sandbox.set_day(day);
        }
        for (function, bodies) in functions.iter().zip(&schedules) {
            let mut errors = Vec::new();
            for body in bodies {
                match function.invoke_bytes(body).await {
                    Ok(report) => {
                        if let Some(status) = report.response.get("status").and_then(|s| s.as_str())
                            && matches!(status, "rejected" | "failed")
                        {
                            errors.push(report.response.to_string());
                        }
                    }
                    Err(err) => errors.push(err.to_string()),
                }
            }
            let drain = drain_day(local, clock, function.as_ref(), max_wait).await?;
            runs.push(DayRun {
                date,
                function: function.name().to_owned(),
                schedules: bodies.len(),
                errors,
                drain,
            });
        }
    }
    Ok(runs)
}

/// Rounds of redelivery waited out within one simulated day.
const MAX_REDELIVERY_ROUNDS: u32 = 12;

/// Drains `function`'s queue; messages handed back (a failure, a rate limit) become visible
/// again when their visibility timeout passes, so the simulated clock is moved to that moment
/// and the queue drained again, as SQS would redeliver them.
async fn drain_day(
    local: &Local,
    clock: &ManualClock,
    function: &dyn Invoke,
    max_wait: Duration,
) -> Result<DrainSummary, RunError> {
    let queues = local.runtime.queues(function.name());
    let mut total = DrainSummary::default();
    for _ in 0..MAX_REDELIVERY_ROUNDS {
        let drain = function.drain(max_wait).await?;
        total.invocations += drain.invocations;
        total.completed += drain.completed;
        total.dead_lettered += drain.dead_lettered;
        total.retried += drain.retried;
        total.pending = drain.pending;
        match queues.next_visible_at().await? {
            Some(next) if drain.pending > 0 => {
                let now = clock.now();
                if next > now {
                    clock.set(next);
                }
            }
            _ => break,
        }
    }
    Ok(total)
}
