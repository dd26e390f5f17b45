//! playlist-update: curates the playlists a team manages from rules a person can read,
//! explains every pick, and changes the live playlist as little as possible.
//!
//! The schedule sends a `plan`; it fans out one `update` message per managed playlist (the
//! index of stored rule files). An `update`:
//!
//! 1. reads the playlist's header and items; if its `snapshot_id` differs from the one stored
//!    after our last write, a person edited it: the run stops (or, if the rules say so, keeps
//!    the person's additions pinned and does not re-add what they removed);
//! 2. gathers candidates from the rules' sources ([`sources`]), attaches the features
//!    track-analysis stored, applies the filters ([`curate`]);
//! 3. solves for the best playlist meeting every hard constraint ([`solver`]), or says which
//!    constraint cannot be met;
//! 4. plans the minimal diff ([`diff`]) and explains every track;
//! 5. in a dry run (the default), stores the plan and stops; with `apply`, writes it (the
//!    `snapshot_id` chained through the calls, the state journaled after each), re-reads and
//!    verifies the playlist, publishes `PlaylistUpdated` and audits the writes.
//!
//! A rerun with nothing changed makes no write call: the input's fingerprint equals the last
//! one and the live playlist is what we left.

pub mod curate;
pub mod diff;
pub mod model;
pub mod rules;
pub mod solver;
pub mod sources;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use backbone::error::{Classify, ErrorClass, PortError};
use backbone::harness::{Cx, Task};
use backbone::ports::{BusEvent, EventPublisher, Store};
use backbone::spotify::{SpotifyConnect, SpotifyError, SpotifyLibrary, SpotifyPlaylists};
use backbone::validate::{IsoDate, PlaylistId, TrackId, Validate};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use crate::curate::{Explanation, FilterContext};
use crate::diff::{Op, Plan};
use crate::rules::HumanEditPolicy;
use crate::solver::{Infeasible, Score};
use crate::sources::{Skip, SourceError};
use crate::state::{CurationState, RulesLoadError};

/// The event bus `source` of this function's events.
pub const EVENT_SOURCE: &str = "music.playlist-update";
/// The `detail-type` of applied updates.
pub const UPDATED_DETAIL_TYPE: &str = "PlaylistUpdated";
/// The version of the `PlaylistUpdated` schema (`schemas/playlist-updated.schema.json`).
pub const EVENT_SCHEMA_VERSION: &str = "1";

/// The input of both steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum UpdateInput {
    /// Fan out one update per managed playlist (the schedule's input).
    Plan {
        /// Write the updates (default: dry runs).
        #[serde(default)]
        apply: bool,
        /// The day (default: today by the clock).
        #[serde(default)]
        date: Option<IsoDate>,
        /// Set by EventBridge Scheduler; informational.
        #[serde(default, rename = "scheduledTime")]
        scheduled_time: Option<String>,
    },
    /// Curate one playlist.
    Update {
        /// The playlist.
        playlist: PlaylistId,
        /// Write the plan (default: a dry run, which stores the plan and its explanations).
        #[serde(default)]
        apply: bool,
        /// The day (default: today by the clock).
        #[serde(default)]
        date: Option<IsoDate>,
        /// Accept the live playlist, human edits included, as the new baseline.
        #[serde(default)]
        rebase: bool,
        /// The caller's id of this request (the CLI sends a fresh one): two messages with the
        /// same fields are one run (a redelivery replays its result), distinct ids are
        /// distinct runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
}

impl Validate for UpdateInput {}

/// How an update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The plan's fan-out.
    Planned,
    /// A dry run: the plan is stored, nothing written.
    DryRun,
    /// The plan was written and verified.
    Applied,
    /// The live playlist already is the target: nothing to write.
    Unchanged,
    /// A person edited the playlist since the last run; nothing written.
    StoppedHumanEdit,
    /// A write call failed part-way (run records only: the record lists the writes made).
    Failed,
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateOutput {
    /// How it ended.
    pub status: Status,
    /// The playlist (none for the plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlist: Option<String>,
    /// Update messages sent (the plan).
    #[serde(default)]
    pub messages: usize,
    /// For people: what happened.
    pub message: String,
    /// Write calls made.
    #[serde(default)]
    pub writes: usize,
    /// The write calls the plan needs.
    #[serde(default)]
    pub planned_writes: usize,
    /// The lower bound on write calls for this diff.
    #[serde(default)]
    pub lower_bound: usize,
    /// Tracks added, removed, moved, kept.
    #[serde(default)]
    pub added: usize,
    /// Tracks removed.
    #[serde(default)]
    pub removed: usize,
    /// Tracks moved.
    #[serde(default)]
    pub moved: usize,
    /// Tracks kept in place.
    #[serde(default)]
    pub kept: usize,
    /// The playlist's `snapshot_id` after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// Sources or objects skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skips: Vec<Skip>,
    /// Where the run record is (`playlist explain` reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl UpdateOutput {
    fn new(status: Status, playlist: Option<&PlaylistId>, message: impl Into<String>) -> Self {
        Self {
            status,
            playlist: playlist.map(ToString::to_string),
            messages: 0,
            message: message.into(),
            writes: 0,
            planned_writes: 0,
            lower_bound: 0,
            added: 0,
            removed: 0,
            moved: 0,
            kept: 0,
            snapshot_id: None,
            skips: Vec::new(),
            run: None,
        }
    }
}

/// Why an update failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The rules are missing or invalid.
    #[error(transparent)]
    Rules(#[from] RulesLoadError),
    /// The rules cannot all be met (and do not allow the nearest feasible playlist).
    #[error("playlist {playlist}: {source}")]
    Infeasible {
        /// The playlist.
        playlist: String,
        /// Which constraint and why.
        #[source]
        source: Infeasible,
    },
    /// The managed playlist is gone.
    #[error("playlist {0} no longer exists (404): remove its rules or fix the id")]
    PlaylistGone(String),
    /// The app may not edit the playlist.
    #[error(
        "playlist {playlist} belongs to {owner}, not the authorised user {user}, and is not \
         collaborative: Spotify would refuse the edits (403)"
    )]
    NotOwned {
        /// The playlist.
        playlist: String,
        /// Its owner.
        owner: String,
        /// The authorised user.
        user: String,
    },
    /// The playlist holds items the function cannot manage.
    #[error(
        "playlist {playlist} holds {count} item(s) that are not catalog tracks (episodes, local \
         files, or tracks Spotify no longer serves); playlist-update manages track playlists only"
    )]
    Unmanageable {
        /// The playlist.
        playlist: String,
        /// How many.
        count: usize,
    },
    /// Gathering candidates failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Every source was empty or skipped.
    #[error("playlist {0}: every source is empty or unreadable, so nothing can be picked")]
    NoCandidates(String),
    /// A write call failed part-way; the writes made are journaled and audited.
    #[error("playlist {playlist}: write {failed_at} of {planned} failed after {done} succeeded")]
    Write {
        /// The playlist.
        playlist: String,
        /// The 1-based call that failed.
        failed_at: usize,
        /// Calls planned.
        planned: usize,
        /// Calls that succeeded.
        done: usize,
        /// Spotify's error.
        #[source]
        source: SpotifyError,
    },
    /// After the writes the playlist is not the target.
    #[error(
        "playlist {0}: after the writes the live items differ from the plan (edited \
         concurrently?); the next run will see it as a human edit"
    )]
    Verify(String),
    /// Spotify failed outside the sources.
    #[error("reading playlist {playlist}")]
    Spotify {
        /// The playlist.
        playlist: String,
        /// The error.
        #[source]
        source: SpotifyError,
    },
    /// The store or the bus failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A record could not be encoded.
    #[error("record cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

impl Classify for UpdateError {
    fn class(&self) -> ErrorClass {
        match self {
            UpdateError::Rules(RulesLoadError::Port(err)) => err.class(),
            UpdateError::Rules(_) | UpdateError::Infeasible { .. } => ErrorClass::Invalid,
            UpdateError::PlaylistGone(_)
            | UpdateError::NotOwned { .. }
            | UpdateError::Unmanageable { .. }
            | UpdateError::NoCandidates(_)
            | UpdateError::Verify(_)
            | UpdateError::Encode(_) => ErrorClass::Permanent,
            UpdateError::Source(SourceError::Spotify { source, .. }) => source.class(),
            UpdateError::Source(SourceError::Watchlist(err)) => err.class(),
            UpdateError::Source(SourceError::Port(err)) => err.class(),
            // Nothing written yet: the call's own class (a retry starts afresh). Part-way: no
            // retry, so the harness audits the failure with the writes made (the state journal
            // keeps the snapshot we produced, so the next run continues from it).
            UpdateError::Write {
                done: 0, source, ..
            } => source.class(),
            UpdateError::Write { .. } => ErrorClass::Permanent,
            UpdateError::Spotify { source, .. } => source.class(),
            UpdateError::Port(err) => err.class(),
        }
    }
}

/// The playlist-update task, over its ports.
pub struct PlaylistUpdate<C> {
    /// Spotify: one session per message.
    pub spotify: C,
    /// Rules, state, run records, the synced catalog and the analysed features.
    pub store: Arc<dyn Store>,
    /// Where `PlaylistUpdated` goes.
    pub events: Arc<dyn EventPublisher>,
}

#[async_trait]
impl<C: SpotifyConnect + 'static> Task for PlaylistUpdate<C> {
    const NAME: &'static str = "playlist-update";
    type Input = UpdateInput;
    type Output = UpdateOutput;
    type Error = UpdateError;

    fn idempotency_key(&self, input: &UpdateInput) -> Option<String> {
        match input {
            UpdateInput::Plan {
                apply,
                date: Some(date),
                ..
            } => Some(format!("plan#{date}#{apply}")),
            _ => None,
        }
    }

    fn subject(&self, input: &UpdateInput) -> String {
        match input {
            UpdateInput::Plan { .. } => "playlists".to_owned(),
            UpdateInput::Update { playlist, .. } => format!("playlist#{playlist}"),
        }
    }

    async fn run(&self, input: UpdateInput, cx: &Cx) -> Result<UpdateOutput, UpdateError> {
        match input {
            UpdateInput::Plan { apply, date, .. } => {
                let date = date.unwrap_or_else(|| cx.now().date_naive().into());
                let playlists = state::managed(self.store.as_ref()).await?;
                for playlist in &playlists {
                    cx.enqueue(&UpdateInput::Update {
                        playlist: playlist.clone(),
                        apply,
                        date: Some(date),
                        rebase: false,
                        request: None,
                    })
                    .map_err(UpdateError::Encode)?;
                }
                info!(playlists = playlists.len(), "planned the updates");
                let mut out = UpdateOutput::new(
                    Status::Planned,
                    None,
                    format!("{} managed playlist(s) to update", playlists.len()),
                );
                out.messages = playlists.len();
                Ok(out)
            }
            UpdateInput::Update {
                playlist,
                apply,
                date,
                rebase,
                ..
            } => {
                let today = date.map_or_else(|| cx.now().date_naive(), |d| d.date());
                self.update(&playlist, apply, today, rebase, cx).await
            }
        }
    }
}

/// The run record stored for `playlist explain`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The playlist.
    pub playlist: String,
    /// The day.
    pub date: NaiveDate,
    /// Whether the plan was to be written.
    pub apply: bool,
    /// How it ended.
    pub status: Status,
    /// For people.
    pub message: String,
    /// The target, in order.
    pub target: Vec<String>,
    /// The write calls.
    pub ops: Vec<Op>,
    /// Write calls made.
    pub writes: usize,
    /// The lower bound on write calls.
    pub lower_bound: usize,
    /// The score of the target.
    pub score: Option<Score>,
    /// The score of the greedy construction the solver started from.
    pub initial_score: Option<Score>,
    /// Solver iterations.
    pub iterations: u64,
    /// Set when the nearest feasible playlist was proposed.
    pub relaxed: Option<String>,
    /// Why each track is where it is.
    pub explanations: Vec<Explanation>,
    /// What was skipped.
    pub skips: Vec<Skip>,
    /// Candidates offered, and how many passed the filters.
    pub candidates: usize,
    /// Candidates that passed the filters.
    pub eligible: usize,
    /// Candidates with measured features.
    pub with_features: usize,
    /// The `snapshot_id` before and after.
    pub snapshot_before: String,
    /// After the writes.
    pub snapshot_after: Option<String>,
}

impl<C: SpotifyConnect> PlaylistUpdate<C> {
    async fn update(
        &self,
        playlist: &PlaylistId,
        apply: bool,
        today: NaiveDate,
        rebase: bool,
        cx: &Cx,
    ) -> Result<UpdateOutput, UpdateError> {
        let store = self.store.as_ref();
        let (rules, _) = state::load_rules(store, playlist).await?;
        let api = self.spotify.open(cx.remaining());
        let spotify_err = |source: SpotifyError| match source {
            SpotifyError::NotFound { .. } => UpdateError::PlaylistGone(playlist.to_string()),
            source => UpdateError::Spotify {
                playlist: playlist.to_string(),
                source,
            },
        };
        let meta = api.playlist(playlist).await.map_err(spotify_err)?;
        let user = api.current_user().await.map_err(spotify_err)?;
        if meta.owner.id != user.id && !meta.collaborative {
            return Err(UpdateError::NotOwned {
                playlist: playlist.to_string(),
                owner: meta.owner.id.to_string(),
                user: user.id.to_string(),
            });
        }
        let items = sources::playlist_items(&api, playlist, sources::MAX_PLAYLIST_ITEMS as usize)
            .await
            .map_err(|err| match err {
                SourceError::Spotify { source, .. } => spotify_err(source),
                other => UpdateError::Source(other),
            })?;
        let unmanageable = items.iter().filter(|(_, t)| t.is_none()).count();
        if unmanageable > 0 {
            return Err(UpdateError::Unmanageable {
                playlist: playlist.to_string(),
                count: unmanageable,
            });
        }
        let live_tracks: Vec<(
            Option<chrono::DateTime<chrono::Utc>>,
            backbone::spotify::model::Track,
        )> = items
            .into_iter()
            .filter_map(|(at, t)| t.map(|t| (at, t)))
            .collect();
        let live: Vec<String> = live_tracks
            .iter()
            .map(|(_, t)| t.id.as_str().to_owned())
            .collect();
        let live_titles: HashMap<String, String> = live_tracks
            .iter()
            .map(|(_, t)| {
                (
                    t.id.as_str().to_owned(),
                    sources::candidate(t, None, "live").display(),
                )
            })
            .collect();
        let (stored_state, mut version) = state::load_state(store, playlist).await?;
        let mut st = match stored_state {
            Some(st) => st,
            None => CurationState {
                snapshot_id: meta.snapshot_id.0.clone(),
                tracks: live.clone(),
                ..CurationState::default()
            },
        };
        // A human edit: the live snapshot is not the one we left.
        if st.snapshot_id != meta.snapshot_id.0 {
            let added: Vec<&String> = live.iter().filter(|t| !st.tracks.contains(t)).collect();
            let removed: Vec<&String> = st.tracks.iter().filter(|t| !live.contains(t)).collect();
            let summary = format!(
                "playlist {playlist} was edited since the last run (snapshot {} expected, {} \
                 live): {} track(s) added, {} removed by someone else",
                st.snapshot_id,
                meta.snapshot_id.0,
                added.len(),
                removed.len()
            );
            cx.metrics().count("HumanEditsDetected", 1);
            if rebase {
                info!(%playlist, "re-basing on the live playlist");
                st.human_pinned.clear();
                st.human_removed.clear();
            } else {
                match rules.on_human_edit {
                    HumanEditPolicy::Stop => {
                        warn!(%playlist, "human edit detected: stopping");
                        cx.record(
                            format!("playlist#{playlist}"),
                            "playlist.human-edit-detected",
                            json!({"expected": st.snapshot_id, "live": meta.snapshot_id.0, "added": added, "removed": removed}),
                        );
                        let message = format!(
                            "{summary}. Nothing was written. Re-run with `rebase` to accept the \
                             live playlist, or set `on_human_edit: keep_as_pinned` in the rules."
                        );
                        let record = json!({"playlist": playlist, "date": today, "apply": apply, "status": Status::StoppedHumanEdit, "message": message, "target": [], "ops": [], "writes": 0, "lowerBound": 0, "iterations": 0, "explanations": [], "skips": [], "candidates": 0, "eligible": 0, "withFeatures": 0, "snapshotBefore": meta.snapshot_id.0});
                        let key = state::save_run(store, playlist, cx.now(), &record).await?;
                        let mut out =
                            UpdateOutput::new(Status::StoppedHumanEdit, Some(playlist), message);
                        out.snapshot_id = Some(meta.snapshot_id.0.clone());
                        out.run = Some(key.sk);
                        return Ok(out);
                    }
                    HumanEditPolicy::KeepAsPinned => {
                        for (pos, t) in live.iter().enumerate() {
                            if !st.tracks.contains(t) {
                                st.human_pinned.insert(t.clone(), pos);
                            }
                        }
                        for t in removed {
                            st.human_pinned.remove(t);
                            st.human_removed.insert(t.clone());
                        }
                    }
                }
            }
            // The live playlist is the new baseline for the diff.
            st.snapshot_id = meta.snapshot_id.0.clone();
            st.tracks = live.clone();
            st.fingerprint = None;
        }
        for (at, t) in &live_tracks {
            st.first_added
                .entry(t.id.as_str().to_owned())
                .or_insert_with(|| at.map_or(today, |a| a.date_naive()));
        }
        // Candidates.
        let mut gathered = sources::gather(&api, store, &rules.sources).await?;
        let mut pins: Vec<(String, usize)> = rules
            .constraints
            .pinned
            .iter()
            .map(|p| (p.track.as_str().to_owned(), (p.position - 1) as usize))
            .collect();
        let rule_pinned: HashSet<String> = pins.iter().map(|(t, _)| t.clone()).collect();
        let human_pinned: HashSet<String> = st
            .human_pinned
            .keys()
            .filter(|t| !rule_pinned.contains(*t) && live.contains(t))
            .cloned()
            .collect();
        let taken: HashSet<usize> = pins.iter().map(|(_, p)| *p).collect();
        for (t, pos) in &st.human_pinned {
            if human_pinned.contains(t) && !taken.contains(pos) {
                pins.push((t.clone(), *pos));
            }
        }
        if let Some(n) = rules.constraints.length.tracks {
            pins.retain(|(_, p)| *p < n as usize);
        }
        let have: HashSet<String> = gathered.candidates.iter().map(|c| c.id.clone()).collect();
        let missing_pins: Vec<TrackId> = pins
            .iter()
            .filter(|(t, _)| !have.contains(t))
            .filter_map(|(t, _)| TrackId::parse("pinned", t).ok())
            .collect();
        if !missing_pins.is_empty() {
            let (found, missing) = sources::tracks_by_id(&api, &missing_pins, "pinned").await?;
            for mut c in found {
                if let Some((_, t)) = live_tracks.iter().find(|(_, t)| t.id.as_str() == c.id) {
                    c = sources::candidate(t, None, "pinned");
                }
                gathered.candidates.push(c);
            }
            for id in missing {
                gathered.skips.push(Skip {
                    source: "pinned".into(),
                    reason: format!("pinned track {id} is not available: its pin is dropped"),
                });
                pins.retain(|(t, _)| t != id.as_str());
            }
        }
        if gathered.candidates.is_empty() {
            return Err(UpdateError::NoCandidates(playlist.to_string()));
        }
        let with_features = sources::attach_features(store, &mut gathered.candidates).await?;
        let mut in_other = HashSet::new();
        for other in &rules.filters.not_in_playlists {
            match sources::playlist_tracks(
                &api,
                other,
                "other",
                sources::MAX_PLAYLIST_ITEMS as usize,
            )
            .await
            {
                Ok((tracks, _)) => in_other.extend(tracks.into_iter().map(|c| c.id)),
                Err(SourceError::Spotify { source, .. })
                    if matches!(
                        source,
                        SpotifyError::NotFound { .. } | SpotifyError::Forbidden { .. }
                    ) =>
                {
                    gathered.skips.push(Skip {
                        source: "filters.not_in_playlists".into(),
                        reason: format!("playlist {other}: {source}; not used as a filter"),
                    });
                }
                Err(err) => return Err(err.into()),
            }
        }
        let fcx = FilterContext {
            today: Some(today),
            in_other_playlists: in_other,
            first_added: st.first_added.clone(),
            human_removed: st.human_removed.iter().cloned().collect(),
            pinned: pins.iter().map(|(t, _)| t.clone()).collect(),
        };
        let offered = gathered.candidates.len();
        let filtered = curate::filter(&rules, &fcx, gathered.candidates);
        let pool = filtered.eligible;
        let problem = curate::problem(&rules, &pool, &pins, &live, today);
        let fingerprint = curate::fingerprint(&rules, &problem, &live);
        let unchanged_input = st.fingerprint.as_deref() == Some(fingerprint.as_str())
            && st.tracks == live
            && st.pending_event.is_none();
        let (target, solution) = if unchanged_input {
            (live.clone(), None)
        } else {
            let solution = curate::solve(&problem).map_err(|source| UpdateError::Infeasible {
                playlist: playlist.to_string(),
                source,
            })?;
            let target: Vec<String> = solution
                .tracks
                .iter()
                .map(|&i| pool[i].id.clone())
                .collect();
            (target, Some(solution))
        };
        let plan = diff::plan(&live, &target);
        // The plan is checked against Spotify's semantics before anything is sent.
        if diff::simulate(&live, &plan.ops) != target {
            return Err(UpdateError::Verify(playlist.to_string()));
        }
        let lower_bound = Plan::lower_bound(&live, &target);
        let kept_in_place: HashSet<String> = {
            let moved: HashSet<&String> = plan.moved.iter().collect();
            target
                .iter()
                .filter(|t| live.contains(t) && !moved.contains(t))
                .cloned()
                .collect()
        };
        let explanations = match &solution {
            Some(s) => curate::explain(
                &rules,
                &pool,
                s,
                &live,
                &live_titles,
                &filtered.rejected,
                &pins,
                &human_pinned,
                &kept_in_place,
                today,
            ),
            None => Vec::new(),
        };
        let mut record = RunRecord {
            playlist: playlist.to_string(),
            date: today,
            apply,
            status: Status::DryRun,
            message: String::new(),
            target: target.clone(),
            ops: plan.ops.clone(),
            writes: 0,
            lower_bound,
            score: solution.as_ref().map(|s| s.score),
            initial_score: solution.as_ref().map(|s| s.initial_score),
            iterations: solution.as_ref().map_or(0, |s| s.iterations),
            relaxed: solution.as_ref().and_then(|s| s.relaxed.clone()),
            explanations,
            skips: gathered.skips.clone(),
            candidates: offered,
            eligible: pool.len(),
            with_features,
            snapshot_before: meta.snapshot_id.0.clone(),
            snapshot_after: None,
        };
        let mut out = UpdateOutput::new(Status::DryRun, Some(playlist), "");
        out.planned_writes = plan.ops.len();
        out.lower_bound = lower_bound;
        out.added = plan.added.len();
        out.removed = plan.removed.len();
        out.moved = plan.moved.len();
        out.kept = plan.kept;
        out.skips = gathered.skips.clone();
        out.snapshot_id = Some(meta.snapshot_id.0.clone());
        let summary = format!(
            "{} added, {} removed, {} moved, {} kept in {} write call(s) (lower bound {lower_bound}){}",
            plan.added.len(),
            plan.removed.len(),
            plan.moved.len(),
            plan.kept,
            plan.ops.len(),
            record
                .relaxed
                .as_ref()
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        );
        if !apply {
            record.message = format!("dry run: {summary}; nothing written (use --apply)");
            out.message = record.message.clone();
            let key = state::save_run(
                store,
                playlist,
                cx.now(),
                &serde_json::to_value(&record).map_err(UpdateError::Encode)?,
            )
            .await?;
            cx.record(
                format!("playlist#{playlist}"),
                "playlist.planned",
                json!({"run": key.sk, "ops": plan.ops.len(), "added": plan.added, "removed": plan.removed, "moved": plan.moved}),
            );
            out.run = Some(key.sk);
            return Ok(out);
        }
        // Apply: journal the state after each call so a failure part-way leaves the next run
        // knowing the snapshot we produced (never mistaking our own writes for a person's).
        st.fingerprint = None;
        version = state::save_state(store, playlist, &st, version).await?;
        let mut snapshot = meta.snapshot_id.clone();
        let mut done_ops: Vec<Op> = Vec::new();
        for (n, op) in plan.ops.iter().enumerate() {
            let result = match op {
                Op::Remove { tracks } => {
                    let ids = to_ids(tracks);
                    api.remove_items(playlist, &ids, Some(&snapshot)).await
                }
                Op::Reorder {
                    start,
                    length,
                    insert_before,
                } => {
                    api.reorder_items(
                        playlist,
                        *start as u32,
                        *insert_before as u32,
                        *length as u32,
                        Some(&snapshot),
                    )
                    .await
                }
                Op::Add { tracks, position } => {
                    let ids = to_ids(tracks);
                    api.add_items(playlist, &ids, Some(*position as u32)).await
                }
            };
            match result {
                Ok(next) => {
                    snapshot = next;
                    done_ops.push(op.clone());
                    let journal = st.journal.get_or_insert_with(Default::default);
                    if journal.key != cx.idempotency_key() {
                        *journal = state::WriteJournal {
                            key: cx.idempotency_key().to_owned(),
                            previous_snapshot_id: meta.snapshot_id.0.clone(),
                            ops: Vec::new(),
                            started_at: Some(cx.now()),
                        };
                    }
                    journal.ops.push(op.clone());
                    cx.metrics().count("PlaylistWrites", 1);
                    st.snapshot_id = snapshot.0.clone();
                    st.tracks = diff::simulate(&live, &done_ops);
                    version = state::save_state(store, playlist, &st, version).await?;
                }
                Err(source) => {
                    record.status = Status::Failed;
                    record.writes = done_ops.len();
                    record.message = format!(
                        "write {} of {} failed after {} succeeded: {source}",
                        n + 1,
                        plan.ops.len(),
                        done_ops.len()
                    );
                    state::save_run(
                        store,
                        playlist,
                        cx.now(),
                        &serde_json::to_value(&record).map_err(UpdateError::Encode)?,
                    )
                    .await?;
                    return Err(UpdateError::Write {
                        playlist: playlist.to_string(),
                        failed_at: n + 1,
                        planned: plan.ops.len(),
                        done: done_ops.len(),
                        source,
                    });
                }
            }
        }
        // Verify: re-read what Spotify holds now.
        let after = if done_ops.is_empty() {
            live.clone()
        } else {
            let items =
                sources::playlist_items(&api, playlist, sources::MAX_PLAYLIST_ITEMS as usize)
                    .await
                    .map_err(|err| match err {
                        SourceError::Spotify { source, .. } => spotify_err(source),
                        other => UpdateError::Source(other),
                    })?;
            items
                .into_iter()
                .map(|(_, t)| t.map_or_else(String::new, |t| t.id.as_str().to_owned()))
                .collect()
        };
        if after != target {
            return Err(UpdateError::Verify(playlist.to_string()));
        }
        let event = if done_ops.is_empty() {
            st.pending_event.take()
        } else {
            let position: HashMap<&String, usize> =
                target.iter().enumerate().map(|(i, t)| (t, i + 1)).collect();
            Some(json!({
                "schemaVersion": EVENT_SCHEMA_VERSION,
                "playlist": playlist,
                "date": today,
                "previousSnapshotId": meta.snapshot_id.0,
                "snapshotId": snapshot.0,
                "added": plan.added.iter().map(|t| json!({"track": t, "position": position[t]})).collect::<Vec<_>>(),
                "removed": plan.removed,
                "moved": plan.moved.iter().map(|t| json!({"track": t, "position": position[t]})).collect::<Vec<_>>(),
                "writes": done_ops.len(),
                "lowerBound": lower_bound,
            }))
        };
        if let Some(detail) = &event {
            st.pending_event = Some(detail.clone());
            version = state::save_state(store, playlist, &st, version).await?;
            // Publish after the writes: a crash before it re-publishes from the journal.
            self.events
                .publish(&[BusEvent {
                    source: EVENT_SOURCE.into(),
                    detail_type: UPDATED_DETAIL_TYPE.into(),
                    detail: detail.clone(),
                    time: cx.now(),
                    trace_header: Some(cx.trace_header()),
                }])
                .await?;
            cx.metrics().count("PlaylistUpdatedEvents", 1);
            st.pending_event = None;
        }
        for t in &target {
            st.first_added.entry(t.clone()).or_insert(today);
        }
        st.first_added.retain(|t, _| target.contains(t));
        st.snapshot_id = snapshot.0.clone();
        st.tracks = target.clone();
        // The fingerprint the next run will compute if nothing changes: the same pool, with
        // the target as the live playlist.
        let _ = fingerprint;
        st.fingerprint = Some(curate::fingerprint(
            &rules,
            &curate::problem(&rules, &pool, &pins, &target, today),
            &target,
        ));
        st.updated_at = Some(cx.now());
        state::save_state(store, playlist, &st, version).await?;
        // The writes of this request: this run's, and those of a run of it that died before
        // its completion (journaled as each was made). A retry that finds nothing left to
        // write still reports the request as applied, in the same run record.
        let journal = st
            .journal
            .as_ref()
            .filter(|j| j.key == cx.idempotency_key());
        let writes = done_ops.len().max(journal.map_or(0, |j| j.ops.len()));
        let at = journal
            .and_then(|j| j.started_at)
            .unwrap_or_else(|| cx.now());
        record.writes = writes;
        record.snapshot_after = Some(snapshot.0.clone());
        record.status = if writes == 0 {
            Status::Unchanged
        } else {
            Status::Applied
        };
        record.message = if writes == 0 {
            "the live playlist already is the target: no write".to_owned()
        } else if done_ops.is_empty() {
            format!("applied by an earlier attempt of this request ({writes} writes); verified")
        } else {
            format!("applied: {summary}; verified")
        };
        let key = state::save_run(
            store,
            playlist,
            at,
            &serde_json::to_value(&record).map_err(UpdateError::Encode)?,
        )
        .await?;
        // Every write of this request, this run's and those of a run of it that died before
        // its completion (a retry then finds nothing left to write, but the writes happened).
        if let Some(journal) = st
            .journal
            .as_ref()
            .filter(|j| j.key == cx.idempotency_key() && !j.ops.is_empty())
        {
            cx.record(
                format!("playlist#{playlist}"),
                "playlist.updated",
                json!({"run": key.sk, "ops": journal.ops, "previousSnapshotId": journal.previous_snapshot_id, "snapshotId": snapshot.0}),
            );
        }
        out.status = record.status;
        out.message = record.message.clone();
        out.writes = writes;
        out.snapshot_id = Some(snapshot.0);
        out.run = Some(key.sk);
        Ok(out)
    }
}

fn to_ids(tracks: &[String]) -> Vec<TrackId> {
    // Every id in a plan came from a parsed Spotify track, so it parses again.
    tracks
        .iter()
        .filter_map(|t| TrackId::parse("track", t).ok())
        .collect()
}
