//! From gathered candidates to a target playlist and its explanations: the filters, the
//! solver's problem, and why each track was added, kept, moved or dropped. Pure: no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Camelot, Candidate};
use crate::rules::{ExplicitPolicy, RuleFile, title_matches};
use crate::solver::{self, BUCKETS, Infeasible, LengthRule, Problem, Solution};

/// What happened to a track in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// New to the playlist.
    Added,
    /// Stays where it is (in the common subsequence).
    Kept,
    /// Stays, at another position.
    Moved,
    /// Leaves the playlist.
    Dropped,
}

/// Why one track was added, kept, moved or dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The track id.
    pub track: String,
    /// `Title — Artists`, where known.
    pub title: String,
    /// What happened.
    pub action: Action,
    /// Its 1-based position before the run.
    pub from: Option<usize>,
    /// Its 1-based position after the run.
    pub to: Option<usize>,
    /// The sources that offered it.
    pub sources: Vec<String>,
    /// Why: the filter, constraint or objective terms that decided.
    pub reasons: Vec<String>,
}

/// The outcome of filtering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filtered {
    /// Candidates that passed (pinned ones included).
    pub eligible: Vec<Candidate>,
    /// Track id to the filter that dropped it.
    pub rejected: HashMap<String, String>,
}

/// Context the filters need beyond the rules.
#[derive(Debug, Clone, Default)]
pub struct FilterContext {
    /// Today.
    pub today: Option<NaiveDate>,
    /// Tracks in the `not_in_playlists` playlists.
    pub in_other_playlists: HashSet<String>,
    /// When each live track entered the playlist.
    pub first_added: BTreeMap<String, NaiveDate>,
    /// Tracks a person removed from the playlist.
    pub human_removed: HashSet<String>,
    /// Tracks exempt from the filters (pinned).
    pub pinned: HashSet<String>,
}

/// The filter a candidate fails, if any.
pub fn rejection(rules: &RuleFile, cx: &FilterContext, c: &Candidate) -> Option<String> {
    let f = &rules.filters;
    let today = cx.today?;
    if f.exclude_tracks.iter().any(|t| t.as_str() == c.id) {
        return Some("filters.exclude_tracks".into());
    }
    if let Some(a) = f
        .exclude_artists
        .iter()
        .find(|a| c.artists.iter().any(|x| x == a.as_str()))
    {
        return Some(format!("filters.exclude_artists: artist {a}"));
    }
    match f.explicit {
        ExplicitPolicy::Exclude if c.explicit => return Some("filters.explicit: explicit".into()),
        ExplicitPolicy::Only if !c.explicit => {
            return Some("filters.explicit: not explicit".into());
        }
        _ => {}
    }
    let secs = c.duration_ms / 1000;
    if let Some(min) = f.min_duration_seconds
        && secs < u64::from(min)
    {
        return Some(format!("filters.min_duration_seconds: {secs} s"));
    }
    if let Some(max) = f.max_duration_seconds
        && secs > u64::from(max)
    {
        return Some(format!("filters.max_duration_seconds: {secs} s"));
    }
    if let Some(span) = f.released_within {
        match c.release_date {
            None => return Some("filters.released_within: release date unknown".into()),
            Some(d) if (today - d).num_days() > i64::from(span.days) => {
                return Some(format!(
                    "filters.released_within: released {d}, more than {} days ago",
                    span.days
                ));
            }
            _ => {}
        }
    }
    if let (Some(span), Some(added)) = (f.added_within, c.added_at)
        && (today - added.date_naive()).num_days() > i64::from(span.days)
    {
        return Some(format!(
            "filters.added_within: added to its source on {}",
            added.date_naive()
        ));
    }
    if let Some(word) = f.exclude_titles.iter().find(|w| title_matches(&c.name, w)) {
        return Some(format!("filters.exclude_titles: the title holds {word:?}"));
    }
    if let Some(why) = c.availability.unavailable_in(&f.markets) {
        return Some(format!("filters.markets: {why}"));
    }
    if cx.in_other_playlists.contains(&c.id) {
        return Some("filters.not_in_playlists: already in another playlist".into());
    }
    let ft = c.features;
    if let (Some(min), Some(bpm)) = (f.min_tempo, ft.bpm)
        && bpm < min
    {
        return Some(format!("filters.min_tempo: {bpm:.1} BPM"));
    }
    if let (Some(max), Some(bpm)) = (f.max_tempo, ft.bpm)
        && bpm > max
    {
        return Some(format!("filters.max_tempo: {bpm:.1} BPM"));
    }
    if let (Some(min), Some(e)) = (f.min_energy, ft.energy)
        && e < min
    {
        return Some(format!("filters.min_energy: energy {e:.2}"));
    }
    if let (Some(max), Some(e)) = (f.max_energy, ft.energy)
        && e > max
    {
        return Some(format!("filters.max_energy: energy {e:.2}"));
    }
    if let (Some(days), Some(first)) = (rules.constraints.freshness_days, cx.first_added.get(&c.id))
        && (today - *first).num_days() >= i64::from(days)
    {
        return Some(format!(
            "constraints.freshness_days: in the playlist since {first}, {days} days or more"
        ));
    }
    if cx.human_removed.contains(&c.id) {
        return Some("removed from the playlist by a person: not added back".into());
    }
    None
}

/// Applies the filters (pinned tracks are exempt).
pub fn filter(rules: &RuleFile, cx: &FilterContext, candidates: Vec<Candidate>) -> Filtered {
    let mut out = Filtered::default();
    for c in candidates {
        if cx.pinned.contains(&c.id) {
            out.eligible.push(c);
            continue;
        }
        match rejection(rules, cx, &c) {
            Some(reason) => {
                out.rejected.insert(c.id.clone(), reason);
            }
            None => out.eligible.push(c),
        }
    }
    out
}

/// The solver's problem for `pool`, pins (id, 0-based position) and the live order.
pub fn problem<'a>(
    rules: &RuleFile,
    pool: &'a [Candidate],
    pins: &[(String, usize)],
    live: &[String],
    today: NaiveDate,
) -> Problem<'a> {
    let index: HashMap<&str, usize> = pool
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let c = &rules.constraints;
    let length = match (c.length.tracks, c.length.minutes) {
        (Some(n), _) => LengthRule::Tracks { count: n as usize },
        (None, Some(m)) => {
            let tol = c
                .length
                .tolerance_minutes
                .unwrap_or(5.min(m.saturating_sub(1)));
            LengthRule::Minutes {
                min_ms: u64::from(m - tol) * 60_000,
                max_ms: u64::from(m) * 60_000,
            }
        }
        // `RuleFile::check` requires exactly one of the two.
        (None, None) => LengthRule::Tracks { count: 0 },
    };
    Problem {
        pool,
        length,
        max_per_artist: c.max_per_artist,
        min_artist_gap: c.min_artist_gap,
        one_version: c.one_version_per_recording,
        pins: pins
            .iter()
            .filter_map(|(id, pos)| index.get(id.as_str()).map(|&i| (*pos, i)))
            .collect(),
        live: live
            .iter()
            .filter_map(|id| index.get(id.as_str()).copied())
            .collect(),
        objectives: rules.objectives.clone(),
        today,
        seed: rules.seed,
        iterations: solver::DEFAULT_ITERATIONS,
        time_budget: Duration::from_millis(rules.time_budget_ms),
        allow_nearest: rules.allow_nearest_feasible,
    }
}

/// A fingerprint of everything the answer depends on: equal fingerprints, equal answers.
pub fn fingerprint(rules: &RuleFile, problem: &Problem<'_>, live: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(rules).unwrap_or_default());
    for c in problem.pool {
        h.update(c.id.as_bytes());
        h.update(serde_json::to_vec(&c.features).unwrap_or_default());
        h.update([solver::bucket(problem.today, c.release_date) as u8]);
    }
    h.update(b"|pins");
    for (pos, i) in &problem.pins {
        h.update(format!("{pos}:{i};").as_bytes());
    }
    h.update(b"|live");
    for t in live {
        h.update(t.as_bytes());
    }
    hex::encode(h.finalize())
}

fn key_name(k: Option<Camelot>) -> String {
    k.map_or("?".to_owned(), String::from)
}

fn bpm_name(b: Option<f64>) -> String {
    b.map_or("? BPM".to_owned(), |b| format!("{b:.0} BPM"))
}

/// Why each track of `live` and `target` is where it ends up.
#[allow(clippy::too_many_arguments)]
pub fn explain(
    rules: &RuleFile,
    pool: &[Candidate],
    solution: &Solution,
    live: &[String],
    live_titles: &HashMap<String, String>,
    rejected: &HashMap<String, String>,
    pins: &[(String, usize)],
    human_pinned: &HashSet<String>,
    kept_in_place: &HashSet<String>,
    today: NaiveDate,
) -> Vec<Explanation> {
    let mut out = Vec::new();
    let live_pos: HashMap<&str, usize> = live
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let pinned: HashMap<&str, usize> = pins.iter().map(|(t, p)| (t.as_str(), *p)).collect();
    let target: Vec<&Candidate> = solution.tracks.iter().map(|&i| &pool[i]).collect();
    let mut per_artist: HashMap<&str, usize> = HashMap::new();
    let mut recordings: HashMap<String, &str> = HashMap::new();
    for c in &target {
        for a in &c.artists {
            *per_artist.entry(a.as_str()).or_insert(0) += 1;
        }
        recordings.insert(c.recording_key(), c.id.as_str());
    }
    for (pos, c) in target.iter().enumerate() {
        let from = live_pos.get(c.id.as_str()).copied();
        let action = match from {
            None => Action::Added,
            Some(_) if kept_in_place.contains(&c.id) => Action::Kept,
            Some(_) => Action::Moved,
        };
        let mut reasons = Vec::new();
        if human_pinned.contains(&c.id) {
            reasons.push(format!(
                "added by a person since the last run: kept, pinned at position {}",
                pos + 1
            ));
        } else if pinned.contains_key(c.id.as_str()) {
            reasons.push(format!("constraints.pinned: position {}", pos + 1));
        } else {
            reasons.push(format!(
                "offered by {}; passes every filter",
                c.sources.join(", ")
            ));
        }
        if action == Action::Kept || action == Action::Moved {
            reasons.push("objectives.stability: already in the playlist".into());
        }
        let f = c.features;
        if pos > 0 {
            let p = target[pos - 1];
            let cost = solver::transition_cost(p, c);
            reasons.push(format!(
                "objectives.transitions: from {} {} to {} {} (cost {cost:.2})",
                key_name(p.features.camelot),
                bpm_name(p.features.bpm),
                key_name(f.camelot),
                bpm_name(f.bpm)
            ));
        }
        if rules.objectives.energy_arc.is_some()
            && let Some(e) = f.energy
        {
            reasons.push(format!(
                "objectives.energy_arc: energy {e:.2} at {:.0} % of the playlist",
                100.0 * pos as f64 / (target.len().max(2) - 1) as f64
            ));
        }
        if rules.objectives.rotation.is_some() {
            reasons.push(format!(
                "objectives.rotation: bucket {}",
                BUCKETS[solver::bucket(today, c.release_date)]
            ));
        }
        out.push(Explanation {
            track: c.id.clone(),
            title: c.display(),
            action,
            from: from.map(|p| p + 1),
            to: Some(pos + 1),
            sources: c.sources.clone(),
            reasons,
        });
    }
    let chosen: HashSet<&str> = target.iter().map(|c| c.id.as_str()).collect();
    let by_id: HashMap<&str, &Candidate> = pool.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut seen = HashSet::new();
    for (i, id) in live.iter().enumerate() {
        if chosen.contains(id.as_str()) || !seen.insert(id.as_str()) {
            continue;
        }
        let mut reasons = Vec::new();
        let mut sources = Vec::new();
        if let Some(reason) = rejected.get(id) {
            reasons.push(reason.clone());
        } else if let Some(c) = by_id.get(id.as_str()) {
            sources = c.sources.clone();
            if let Some(other) = recordings.get(&c.recording_key()) {
                reasons.push(format!(
                    "constraints.one_version_per_recording: version {other} is in the playlist"
                ));
            } else if let (Some(max), Some(a)) = (
                rules.constraints.max_per_artist,
                c.artists.iter().find(|a| {
                    per_artist.get(a.as_str()).copied().unwrap_or(0)
                        >= rules.constraints.max_per_artist.unwrap_or(u32::MAX) as usize
                }),
            ) {
                reasons.push(format!(
                    "constraints.max_per_artist: artist {a} already has {max} track(s)"
                ));
            } else {
                reasons.push(
                    "objectives: the chosen tracks score better (transitions, arc, targets, \
                     rotation) than a playlist keeping this one"
                        .into(),
                );
            }
        } else {
            reasons.push("no source offers it any more".into());
        }
        out.push(Explanation {
            track: id.clone(),
            title: by_id
                .get(id.as_str())
                .map(|c| c.display())
                .or_else(|| live_titles.get(id).cloned())
                .unwrap_or_else(|| id.clone()),
            action: Action::Dropped,
            from: Some(i + 1),
            to: None,
            sources,
            reasons,
        });
    }
    out
}

/// Solves, turning an infeasible rule set into a readable error.
pub fn solve(problem: &Problem<'_>) -> Result<Solution, Infeasible> {
    solver::solve(problem)
}
