//! The rule file of one managed playlist: what a person writes (YAML), parsed strictly.
//!
//! Every struct denies unknown keys, so a typo is an error, not a silently ignored rule. Parse
//! errors name the field path and the line (serde_yaml_ng reports both); the checks that span
//! several fields (contradictory constraints) run after parsing and name the fields they
//! compare, with the line of the first one found in the text. The JSON Schema of this format
//! is `schemas/playlist-rules.schema.json`.

use std::collections::BTreeSet;
use std::fmt;

use backbone::validate::{ArtistId, PlaylistId, TrackId};
use backbone::watchlist::WatchlistName;
use serde::{Deserialize, Deserializer, Serialize};

/// The rule format's version.
pub const RULES_VERSION: u32 = 1;
/// Most slots a playlist may have (Spotify's limit is 10,000; curation beyond 1,000 is not
/// what the rules are for, and it bounds the solver's work).
pub const MAX_TRACKS: u32 = 1_000;
/// Most sources one rule file may name.
pub const MAX_SOURCES: usize = 50;
/// Most markets a `markets` filter may name (there are fewer than 250 country codes).
pub const MAX_MARKETS: usize = 250;
/// Longest time budget a run may ask for, milliseconds.
pub const MAX_TIME_BUDGET_MS: u64 = 60_000;

/// A rule file that could not be accepted, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {reason}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct RuleError {
    /// The line (1-based) of the offending key, when known.
    pub line: Option<usize>,
    /// The field path (`constraints.max_per_artist`).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// A span of time back from today, written `"6 months"`, `"30 days"`, `"2 weeks"`, `"1 year"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Span {
    /// The span in days (a month counts 30, a year 365).
    pub days: u32,
    text_unit: &'static str,
    count: u32,
}

impl Span {
    /// Parses `"<n> day(s)|week(s)|month(s)|year(s)"`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = s.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "{s:?} is not a span; write it as \"6 months\", \"30 days\", \"2 weeks\" or \"1 year\""
            ));
        };
        let count: u32 = n
            .parse()
            .map_err(|_| format!("{n:?} is not a whole number of units"))?;
        let (per, unit) = match unit.trim_end_matches('s') {
            "day" => (1, "days"),
            "week" => (7, "weeks"),
            "month" => (30, "months"),
            "year" => (365, "years"),
            other => {
                return Err(format!(
                    "unknown unit {other:?}; use days, weeks, months or years"
                ));
            }
        };
        let days = count
            .checked_mul(per)
            .filter(|d| (1..=36_500).contains(d))
            .ok_or_else(|| format!("{s:?} must be between 1 day and 100 years"))?;
        Ok(Self {
            days,
            text_unit: unit,
            count,
        })
    }
}

impl From<Span> for String {
    fn from(span: Span) -> Self {
        format!("{} {}", span.count, span.text_unit)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = String::deserialize(de)?;
        Span::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One source of candidate tracks: exactly one of the keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Releases of every artist of this watchlist, read from Spotify (so a release shows the
    /// day it appears, before the next catalog sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchlist_releases: Option<WatchlistName>,
    /// The synced catalog of this watchlist's artists, read from the store (data-sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<WatchlistName>,
    /// The items of another playlist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlist: Option<PlaylistId>,
    /// Every album of one artist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist_albums: Option<ArtistId>,
    /// A Spotify track search (`genre:techno year:2026`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// An explicit list of tracks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<Vec<TrackId>>,
    /// Most tracks taken from this source (default 500; search: 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// A name for explanations (default: the key and its value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What a source is, once checked.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// See [`SourceSpec::watchlist_releases`].
    WatchlistReleases(WatchlistName),
    /// See [`SourceSpec::catalog`].
    Catalog(WatchlistName),
    /// See [`SourceSpec::playlist`].
    Playlist(PlaylistId),
    /// See [`SourceSpec::artist_albums`].
    ArtistAlbums(ArtistId),
    /// See [`SourceSpec::search`].
    Search(String),
    /// See [`SourceSpec::tracks`].
    Tracks(Vec<TrackId>),
}

impl SourceSpec {
    /// The one kind this source names (checked by [`RuleFile::check`]).
    pub fn kind(&self) -> Option<SourceKind> {
        let mut kinds = self.kinds();
        if kinds.len() == 1 { kinds.pop() } else { None }
    }

    fn kinds(&self) -> Vec<SourceKind> {
        let mut out = Vec::new();
        if let Some(w) = &self.watchlist_releases {
            out.push(SourceKind::WatchlistReleases(w.clone()));
        }
        if let Some(w) = &self.catalog {
            out.push(SourceKind::Catalog(w.clone()));
        }
        if let Some(p) = &self.playlist {
            out.push(SourceKind::Playlist(p.clone()));
        }
        if let Some(a) = &self.artist_albums {
            out.push(SourceKind::ArtistAlbums(a.clone()));
        }
        if let Some(q) = &self.search {
            out.push(SourceKind::Search(q.clone()));
        }
        if let Some(t) = &self.tracks {
            out.push(SourceKind::Tracks(t.clone()));
        }
        out
    }

    /// The label explanations use.
    pub fn label(&self) -> String {
        if let Some(label) = &self.label {
            return label.clone();
        }
        match self.kind() {
            Some(SourceKind::WatchlistReleases(w)) => format!("releases of watchlist {w}"),
            Some(SourceKind::Catalog(w)) => format!("synced catalog of watchlist {w}"),
            Some(SourceKind::Playlist(p)) => format!("playlist {p}"),
            Some(SourceKind::ArtistAlbums(a)) => format!("albums of artist {a}"),
            Some(SourceKind::Search(q)) => format!("search {q:?}"),
            Some(SourceKind::Tracks(_)) => "explicit track list".to_owned(),
            None => "source".to_owned(),
        }
    }
}

/// Whether explicit tracks may be picked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExplicitPolicy {
    /// Explicit or not.
    #[default]
    Allow,
    /// Clean tracks only.
    Exclude,
    /// Explicit tracks only.
    Only,
}

/// Filters: a candidate failing one is dropped, with the filter named in its explanation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Keep tracks released within this span of today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_within: Option<Span>,
    /// Keep tracks added to their source playlist within this span (playlist sources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_within: Option<Span>,
    /// Drop tracks whose title holds one of these words or phrases, case-insensitively and on
    /// word boundaries: `remix` drops "Song (Remix)" and keeps "Remixed Life".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_titles: Vec<String>,
    /// Shortest track, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration_seconds: Option<u32>,
    /// Longest track, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_seconds: Option<u32>,
    /// Explicit tracks.
    #[serde(default)]
    pub explicit: ExplicitPolicy,
    /// Tracks never to pick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tracks: Vec<TrackId>,
    /// Artists never to pick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_artists: Vec<ArtistId>,
    /// Drop tracks already in one of these playlists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_in_playlists: Vec<PlaylistId>,
    /// Keep tracks playable in every one of these markets (ISO 3166-1 alpha-2 codes, such as
    /// `GB`): a track Spotify lists elsewhere only, or marks restricted, is dropped. Tracks of
    /// the synced catalog carry no market list and pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub markets: Vec<String>,
    /// Lowest tempo, BPM (tracks without a measured tempo pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tempo: Option<f64>,
    /// Highest tempo, BPM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tempo: Option<f64>,
    /// Lowest energy, 0 to 1 (tracks without a measured energy pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_energy: Option<f64>,
    /// Highest energy, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_energy: Option<f64>,
}

/// The playlist's length: a number of tracks, or minutes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Length {
    /// Exactly this many tracks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<u32>,
    /// At most this many minutes...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// ...and at least `minutes - tolerance_minutes` (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_minutes: Option<u32>,
}

/// A track held at a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// The track.
    pub track: TrackId,
    /// Its position, 1-based.
    pub position: u32,
}

/// Hard constraints: the solver never returns a playlist that breaks one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// The length.
    pub length: Length,
    /// At most this many tracks per artist (every credited artist counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_artist: Option<u32>,
    /// At least this many other tracks between two tracks sharing an artist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_artist_gap: Option<u32>,
    /// One version per recording (same ISRC, or same normalised title and artists).
    #[serde(default = "yes")]
    pub one_version_per_recording: bool,
    /// Tracks held at positions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned: Vec<Pin>,
    /// A track leaves after this many days in the playlist (pinned tracks stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness_days: Option<u32>,
}

fn yes() -> bool {
    true
}

/// The energy arc's shape over the playlist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArcShape {
    /// Warm-up, peak at about two thirds, cool-down.
    #[default]
    WarmUpPeakCoolDown,
    /// Rising throughout.
    Rising,
    /// Falling throughout.
    Falling,
    /// Level.
    Flat,
}

/// The energy arc objective.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyArc {
    /// Its weight.
    #[serde(default = "one")]
    pub weight: f64,
    /// The shape.
    #[serde(default)]
    pub shape: ArcShape,
    /// Energy at the ends (0 to 1, default 0.35).
    #[serde(default = "low")]
    pub low: f64,
    /// Energy at the peak (0 to 1, default 0.85).
    #[serde(default = "high")]
    pub high: f64,
}

fn one() -> f64 {
    1.0
}
fn low() -> f64 {
    0.35
}
fn high() -> f64 {
    0.85
}

/// Targets in the vocabulary of Spotify's removed recommendations, over our own features.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Its weight.
    #[serde(default = "one")]
    pub weight: f64,
    /// Wanted tempo, BPM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_tempo: Option<f64>,
    /// Wanted energy, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_energy: Option<f64>,
}

/// Rotation clocks: the wanted share of each bucket (by release age).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Its weight.
    #[serde(default = "one")]
    pub weight: f64,
    /// Released within the last 4 weeks.
    #[serde(default)]
    pub new: f64,
    /// Released 4 weeks to 4 months ago.
    #[serde(default)]
    pub power: f64,
    /// Released 4 months to 2 years ago.
    #[serde(default)]
    pub recurrent: f64,
    /// Released over 2 years ago (or undated).
    #[serde(default)]
    pub gold: f64,
}

/// Soft objectives, weighted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    /// Weight of smooth key (Camelot wheel) and tempo (BPM ratio) transitions.
    #[serde(default = "one")]
    pub transitions: f64,
    /// The energy arc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_arc: Option<EnergyArc>,
    /// Targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Targets>,
    /// Rotation clocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    /// Weight of keeping what is live (fewer changes to the playlist).
    #[serde(default = "half")]
    pub stability: f64,
}

fn half() -> f64 {
    0.5
}

impl Default for Objectives {
    fn default() -> Self {
        Self {
            transitions: 1.0,
            energy_arc: None,
            targets: None,
            rotation: None,
            stability: 0.5,
        }
    }
}

/// What a run does when the live playlist changed since the last run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HumanEditPolicy {
    /// Stop and say so (default): nothing is written until someone re-bases.
    #[default]
    Stop,
    /// Keep the tracks the person added, pinned where they put them, and do not re-add the
    /// tracks they removed.
    KeepAsPinned,
}

/// One managed playlist's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The format version (1).
    pub version: u32,
    /// The managed playlist.
    pub playlist: PlaylistId,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where candidates come from.
    pub sources: Vec<SourceSpec>,
    /// What candidates must pass.
    #[serde(default)]
    pub filters: Filters,
    /// What the playlist must be.
    pub constraints: Constraints,
    /// What makes one playlist better than another.
    #[serde(default)]
    pub objectives: Objectives,
    /// A human edit since the last run.
    #[serde(default)]
    pub on_human_edit: HumanEditPolicy,
    /// When the constraints cannot all be met: propose the nearest feasible playlist (fewer
    /// tracks) instead of stopping.
    #[serde(default)]
    pub allow_nearest_feasible: bool,
    /// The solver's seed (runs are deterministic for a given input and seed).
    #[serde(default)]
    pub seed: u64,
    /// The solver's time budget, milliseconds (default 2000).
    #[serde(default = "budget")]
    pub time_budget_ms: u64,
}

fn budget() -> u64 {
    2_000
}

impl fmt::Display for RuleFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_yaml_ng::to_string(self) {
            Ok(text) => f.write_str(&text),
            Err(_) => f.write_str("(rules cannot be printed)"),
        }
    }
}

/// The 1-based line where `key:` first appears in `text`, for errors found after parsing.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let needle = format!("{key}:");
    text.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with(&needle)
        })
        .map(|n| n + 1)
}

/// `text` with CRLF and lone CR line ends written as LF, the line breaks of YAML 1.2 (§5.4).
pub fn normalise_line_ends(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') {
        std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

impl RuleFile {
    /// Parses and checks a rule file.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        if text.len() > 1_000_000 {
            return Err(RuleError {
                line: None,
                field: "(file)".into(),
                reason: "a rule file is at most 1 MB".into(),
            });
        }
        // YAML breaks lines at LF, CRLF and a lone CR; `str::lines` (used for the lines of the
        // cross-field errors) breaks only at LF. One line end for both, so every reported
        // line is the one an editor shows.
        let text = &normalise_line_ends(text);
        let rules: RuleFile = serde_yaml_ng::from_str(text).map_err(|err| {
            let line = err.location().map(|l| l.line());
            let message = err.to_string();
            // serde_yaml_ng writes "path: reason at line L column C"; keep the path as the
            // field and the reason without the position (we print the line ourselves).
            let without_pos = match message.rfind(" at line ") {
                Some(i) => message[..i].to_owned(),
                None => message.clone(),
            };
            let (field, reason) = match without_pos.split_once(": ") {
                Some((path, reason)) if !path.contains(' ') => (path.to_owned(), reason.to_owned()),
                _ => ("(file)".to_owned(), without_pos),
            };
            RuleError {
                line,
                field,
                reason,
            }
        })?;
        rules.check().map_err(|mut err| {
            let key = err.field.rsplit('.').next().unwrap_or(&err.field);
            let key = key.split('[').next().unwrap_or(key).to_owned();
            err.line = line_of(text, &key);
            err
        })?;
        Ok(rules)
    }

    /// The checks that span fields: one source kind per entry, ranges, contradictions.
    pub fn check(&self) -> Result<(), RuleError> {
        let bad = |field: &str, reason: String| RuleError {
            line: None,
            field: field.to_owned(),
            reason,
        };
        if self.version != RULES_VERSION {
            return Err(bad(
                "version",
                format!("this function reads version {RULES_VERSION}"),
            ));
        }
        if self.sources.is_empty() {
            return Err(bad("sources", "name at least one source".into()));
        }
        if self.sources.len() > MAX_SOURCES {
            return Err(bad(
                "sources",
                format!(
                    "at most {MAX_SOURCES} sources, found {}",
                    self.sources.len()
                ),
            ));
        }
        for (i, source) in self.sources.iter().enumerate() {
            let n = source.kinds().len();
            if n != 1 {
                return Err(bad(
                    &format!("sources[{i}]"),
                    format!(
                        "name exactly one of watchlist_releases, catalog, playlist, \
                         artist_albums, search, tracks (found {n})"
                    ),
                ));
            }
            if let Some(SourceKind::Playlist(p)) = source.kind()
                && p == self.playlist
            {
                return Err(bad(
                    &format!("sources[{i}].playlist"),
                    "a playlist cannot be its own source".into(),
                ));
            }
            if let Some(limit) = source.limit
                && !(1..=10_000).contains(&limit)
            {
                return Err(bad(
                    &format!("sources[{i}].limit"),
                    "between 1 and 10000".into(),
                ));
            }
            if let Some(q) = &source.search
                && (q.trim().is_empty() || q.len() > 250)
            {
                return Err(bad(
                    &format!("sources[{i}].search"),
                    "a query of 1 to 250 characters".into(),
                ));
            }
            if let Some(t) = &source.tracks
                && (t.is_empty() || t.len() > 10_000)
            {
                return Err(bad(
                    &format!("sources[{i}].tracks"),
                    "1 to 10000 tracks".into(),
                ));
            }
        }
        let f = &self.filters;
        if let (Some(lo), Some(hi)) = (f.min_duration_seconds, f.max_duration_seconds)
            && lo > hi
        {
            return Err(bad(
                "filters.min_duration_seconds",
                format!("{lo} is above max_duration_seconds {hi}"),
            ));
        }
        for (name, value, range) in [
            ("filters.min_tempo", f.min_tempo, 1.0..=400.0),
            ("filters.max_tempo", f.max_tempo, 1.0..=400.0),
            ("filters.min_energy", f.min_energy, 0.0..=1.0),
            ("filters.max_energy", f.max_energy, 0.0..=1.0),
        ] {
            if let Some(v) = value
                && !range.contains(&v)
            {
                return Err(bad(
                    name,
                    format!("{v} is outside {}..={}", range.start(), range.end()),
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (f.min_tempo, f.max_tempo)
            && lo > hi
        {
            return Err(bad(
                "filters.min_tempo",
                format!("{lo} is above max_tempo {hi}"),
            ));
        }
        if let (Some(lo), Some(hi)) = (f.min_energy, f.max_energy)
            && lo > hi
        {
            return Err(bad(
                "filters.min_energy",
                format!("{lo} is above max_energy {hi}"),
            ));
        }
        if f.markets.len() > MAX_MARKETS {
            return Err(bad(
                "filters.markets",
                format!("at most {MAX_MARKETS} markets, found {}", f.markets.len()),
            ));
        }
        for (i, market) in f.markets.iter().enumerate() {
            if market.len() != 2 || !market.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad(
                    &format!("filters.markets[{i}]"),
                    format!("{market:?} is not an ISO 3166-1 alpha-2 code such as GB"),
                ));
            }
        }
        for (i, word) in f.exclude_titles.iter().enumerate() {
            if normalise(word).is_empty() {
                return Err(bad(
                    &format!("filters.exclude_titles[{i}]"),
                    "a word or phrase with at least one letter or digit".into(),
                ));
            }
        }
        let c = &self.constraints;
        let slots = match (c.length.tracks, c.length.minutes) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(bad(
                    "constraints.length",
                    "give exactly one of tracks and minutes".into(),
                ));
            }
            (Some(n), None) => {
                if !(1..=MAX_TRACKS).contains(&n) {
                    return Err(bad(
                        "constraints.length.tracks",
                        format!("between 1 and {MAX_TRACKS}"),
                    ));
                }
                if c.length.tolerance_minutes.is_some() {
                    return Err(bad(
                        "constraints.length.tolerance_minutes",
                        "only with minutes".into(),
                    ));
                }
                Some(n)
            }
            (None, Some(m)) => {
                if !(1..=MAX_TRACKS * 4).contains(&m) {
                    return Err(bad(
                        "constraints.length.minutes",
                        format!("between 1 and {}", MAX_TRACKS * 4),
                    ));
                }
                if c.length.tolerance_minutes.is_some_and(|t| t >= m) {
                    return Err(bad(
                        "constraints.length.tolerance_minutes",
                        format!("must be below minutes ({m})"),
                    ));
                }
                None
            }
        };
        if c.max_per_artist == Some(0) {
            return Err(bad(
                "constraints.max_per_artist",
                "at least 1 (0 would forbid every track)".into(),
            ));
        }
        if c.freshness_days == Some(0) {
            return Err(bad("constraints.freshness_days", "at least 1 day".into()));
        }
        let mut positions = BTreeSet::new();
        let mut pinned_tracks = BTreeSet::new();
        for (i, pin) in c.pinned.iter().enumerate() {
            if pin.position == 0 {
                return Err(bad(
                    &format!("constraints.pinned[{i}].position"),
                    "positions start at 1".into(),
                ));
            }
            if let Some(n) = slots
                && pin.position > n
            {
                return Err(bad(
                    &format!("constraints.pinned[{i}].position"),
                    format!(
                        "position {} is beyond the length of {n} tracks",
                        pin.position
                    ),
                ));
            }
            if !positions.insert(pin.position) {
                return Err(bad(
                    &format!("constraints.pinned[{i}].position"),
                    format!("position {} is pinned twice", pin.position),
                ));
            }
            if !pinned_tracks.insert(pin.track.as_str().to_owned()) {
                return Err(bad(
                    &format!("constraints.pinned[{i}].track"),
                    format!("track {} is pinned twice", pin.track),
                ));
            }
            if f.exclude_tracks.contains(&pin.track) {
                return Err(bad(
                    &format!("constraints.pinned[{i}].track"),
                    format!(
                        "track {} is both pinned and in filters.exclude_tracks",
                        pin.track
                    ),
                ));
            }
        }
        if let (Some(gap), Some(n)) = (c.min_artist_gap, slots)
            && gap >= n
            && c.max_per_artist.is_some_and(|m| m > 1)
        {
            return Err(bad(
                "constraints.min_artist_gap",
                format!(
                    "a gap of {gap} in {n} slots allows one track per artist, contradicting \
                     max_per_artist {}",
                    c.max_per_artist.unwrap_or(1)
                ),
            ));
        }
        if let (Some(gap), Some(n), Some(max)) = (c.min_artist_gap, slots, c.max_per_artist)
            && max > 1
            && u64::from(max - 1) * u64::from(gap + 1) + 1 > u64::from(n)
        {
            return Err(bad(
                "constraints.max_per_artist",
                format!(
                    "{max} tracks of one artist need {} slots with min_artist_gap {gap}, the \
                     playlist has {n}: lower max_per_artist or the gap",
                    u64::from(max - 1) * u64::from(gap + 1) + 1
                ),
            ));
        }
        let o = &self.objectives;
        for (name, w) in [
            ("objectives.transitions", Some(o.transitions)),
            ("objectives.stability", Some(o.stability)),
            (
                "objectives.energy_arc.weight",
                o.energy_arc.map(|a| a.weight),
            ),
            ("objectives.targets.weight", o.targets.map(|t| t.weight)),
            ("objectives.rotation.weight", o.rotation.map(|r| r.weight)),
        ] {
            if let Some(w) = w
                && !(w.is_finite() && (0.0..=100.0).contains(&w))
            {
                return Err(bad(name, format!("a weight from 0 to 100, got {w}")));
            }
        }
        if let Some(arc) = o.energy_arc {
            for (name, v) in [
                ("objectives.energy_arc.low", arc.low),
                ("objectives.energy_arc.high", arc.high),
            ] {
                if !(0.0..=1.0).contains(&v) {
                    return Err(bad(name, format!("{v} is outside 0..=1")));
                }
            }
        }
        if let Some(t) = o.targets {
            if let Some(v) = t.target_tempo
                && !(1.0..=400.0).contains(&v)
            {
                return Err(bad(
                    "objectives.targets.target_tempo",
                    format!("{v} BPM is outside 1..=400"),
                ));
            }
            if let Some(v) = t.target_energy
                && !(0.0..=1.0).contains(&v)
            {
                return Err(bad(
                    "objectives.targets.target_energy",
                    format!("{v} is outside 0..=1"),
                ));
            }
        }
        if let Some(r) = o.rotation {
            let shares = [r.new, r.power, r.recurrent, r.gold];
            if shares.iter().any(|s| !(0.0..=1.0).contains(s)) {
                return Err(bad(
                    "objectives.rotation",
                    "each share is from 0 to 1".into(),
                ));
            }
            let sum: f64 = shares.iter().sum();
            if (sum - 1.0).abs() > 0.01 {
                return Err(bad(
                    "objectives.rotation",
                    format!(
                        "the shares new + power + recurrent + gold must add up to 1, got {sum:.2}"
                    ),
                ));
            }
        }
        if !(1..=MAX_TIME_BUDGET_MS).contains(&self.time_budget_ms) {
            return Err(bad(
                "time_budget_ms",
                format!("between 1 and {MAX_TIME_BUDGET_MS}"),
            ));
        }
        if let Some(name) = &self.name
            && name.chars().count() > 200
        {
            return Err(bad("name", "at most 200 characters".into()));
        }
        Ok(())
    }
}

/// Lower-case words of `s` (letters and digits), joined by single spaces: the form titles and
/// artist names are compared in.
pub fn normalise(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the normalised `title` holds the normalised `phrase` on word boundaries.
pub fn title_matches(title: &str, phrase: &str) -> bool {
    let title = format!(" {} ", normalise(title));
    let phrase = format!(" {} ", normalise(phrase));
    phrase.trim() != "" && title.contains(&phrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
version: 1
playlist: 37i9dQZF1DXcBWIGoYBM5M
sources:
  - watchlist_releases: demo
  - search: techno
    limit: 20
filters:
  released_within: 6 months
  exclude_titles: [remix, live, edit]
constraints:
  length:
    tracks: 30
  max_per_artist: 2
  min_artist_gap: 3
";

    #[test]
    fn a_good_file_parses() {
        let rules = RuleFile::parse(GOOD).unwrap();
        assert_eq!(rules.constraints.length.tracks, Some(30));
        assert_eq!(rules.filters.released_within.unwrap().days, 180);
        assert_eq!(rules.sources[1].limit, Some(20));
        assert!(rules.constraints.one_version_per_recording);
        let again = RuleFile::parse(&rules.to_string()).unwrap();
        assert_eq!(again, rules);
    }

    #[test]
    fn an_unknown_key_names_its_line_and_field() {
        let text = GOOD.replace("  max_per_artist: 2", "  max_per_artsit: 2");
        let err = RuleFile::parse(&text).unwrap_err();
        assert_eq!(err.line, Some(13), "{err}");
        assert!(err.field.contains("constraints"), "{err}");
        assert!(err.reason.contains("max_per_artsit"), "{err}");
    }

    #[test]
    fn lone_cr_and_crlf_line_ends_give_the_editor_line() {
        // A type error (the YAML decoder's line) and a contradiction (found after parsing,
        // located by key): both on line 12/13 whatever the line ends.
        for end in ["\r", "\r\n"] {
            let typed = GOOD
                .replace("tracks: 30", "tracks: thirty")
                .replace('\n', end);
            let err = RuleFile::parse(&typed).unwrap_err();
            assert_eq!(err.line, Some(12), "{end:?}: {err}");
            assert_eq!(err.field, "constraints.length.tracks", "{end:?}: {err}");
            let crossed = GOOD
                .replace("max_per_artist: 2", "max_per_artist: 12")
                .replace('\n', end);
            let err = RuleFile::parse(&crossed).unwrap_err();
            assert_eq!(err.field, "constraints.max_per_artist", "{end:?}: {err}");
            assert_eq!(err.line, Some(13), "{end:?}: {err}");
        }
        // Mixed: a lone CR inside the file moves every later line down by one, as in an editor.
        let mixed = GOOD
            .replacen('\n', "\r", 1)
            .replace("max_per_artist: 2", "max_per_artist: 12");
        let err = RuleFile::parse(&mixed).unwrap_err();
        assert_eq!(err.line, Some(13), "{err}");
        let lone = "version: 1\r\rplaylist: 37i9dQZF1DXcBWIGoYBM5M\rname: x\rbogus: 1\r";
        let err = RuleFile::parse(lone).unwrap_err();
        assert_eq!(err.line, Some(5), "{err}");
        assert!(err.reason.contains("bogus"), "{err}");
    }

    #[test]
    fn a_type_error_names_its_line_and_field() {
        let text = GOOD.replace("tracks: 30", "tracks: thirty");
        let err = RuleFile::parse(&text).unwrap_err();
        assert_eq!(err.line, Some(12), "{err}");
        assert_eq!(err.field, "constraints.length.tracks", "{err}");
    }

    #[test]
    fn a_bad_span_is_explained() {
        let text = GOOD.replace("6 months", "6 moons");
        let err = RuleFile::parse(&text).unwrap_err();
        assert_eq!(err.line, Some(8), "{err}");
        assert!(err.reason.contains("unknown unit"), "{err}");
    }

    #[test]
    fn contradictory_constraints_are_refused_with_the_field() {
        let text = GOOD.replace("max_per_artist: 2", "max_per_artist: 12");
        let err = RuleFile::parse(&text).unwrap_err();
        assert_eq!(err.field, "constraints.max_per_artist");
        assert_eq!(err.line, Some(13), "{err}");
        assert!(err.reason.contains("min_artist_gap"), "{err}");
    }

    #[test]
    fn a_source_must_name_one_kind() {
        let text = GOOD.replace(
            "  - search: techno\n",
            "  - search: techno\n    catalog: demo\n",
        );
        let err = RuleFile::parse(&text).unwrap_err();
        assert_eq!(err.field, "sources[1]", "{err}");
    }

    #[test]
    fn titles_match_on_word_boundaries() {
        assert!(title_matches("Song (Radio Edit)", "edit"));
        assert!(title_matches("Song - Live at Wembley", "live at"));
        assert!(!title_matches("Remixed Life", "remix"));
        assert!(!title_matches("Alive", "live"));
    }
}
