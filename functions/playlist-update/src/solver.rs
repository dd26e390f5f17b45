//! The solver: a seeded simulated annealing over playlists that only ever returns one meeting
//! every hard constraint.
//!
//! The search runs on penalised cost (soft objectives plus a large penalty per violation) so
//! it can cross infeasible states, but the answer is the best *feasible* state it visited,
//! checked once more by [`violations`], the same checker the property tests use. When none was
//! found, [`solve`] says which constraint failed and why; with `allow_nearest` it proposes the
//! nearest feasible playlist (the longest one the other constraints allow).
//!
//! Deterministic for a given problem and seed: the random source is a SplitMix64 seeded from
//! the rules, and the iteration budget is fixed. The time budget is a safety net; a run cut
//! short by it reports `stopped_by_time` (and is then no longer reproducible).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::model::{Camelot, Candidate};
use crate::rules::{ArcShape, Objectives};

/// Iterations of the annealing per run.
pub const DEFAULT_ITERATIONS: u64 = 40_000;
/// Cost added per hard-constraint violation while searching.
const PENALTY: f64 = 10.0;

/// A small, fast, seeded random source (SplitMix64): reproducible on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How long the playlist must be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum LengthRule {
    /// Exactly this many tracks.
    Tracks {
        /// The count.
        count: usize,
    },
    /// A total duration between the bounds, milliseconds.
    Minutes {
        /// Shortest total.
        min_ms: u64,
        /// Longest total.
        max_ms: u64,
    },
}

/// Everything the solver needs, with tracks referred to by their index in `pool`.
#[derive(Debug, Clone)]
pub struct Problem<'a> {
    /// Every track that passed the filters (pinned ones included).
    pub pool: &'a [Candidate],
    /// The length.
    pub length: LengthRule,
    /// At most this many tracks per artist.
    pub max_per_artist: Option<u32>,
    /// At least this many tracks between two of one artist.
    pub min_artist_gap: Option<u32>,
    /// One version per recording.
    pub one_version: bool,
    /// Pinned slots: (0-based position, pool index).
    pub pins: Vec<(usize, usize)>,
    /// The live playlist's tracks still eligible, in live order (pool indices).
    pub live: Vec<usize>,
    /// The soft objectives.
    pub objectives: Objectives,
    /// Today, for rotation buckets.
    pub today: NaiveDate,
    /// The seed.
    pub seed: u64,
    /// Annealing iterations.
    pub iterations: u64,
    /// Wall-clock cap.
    pub time_budget: Duration,
    /// Propose the nearest feasible playlist when the constraints cannot all be met.
    pub allow_nearest: bool,
}

/// A hard constraint a playlist breaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "constraint")]
pub enum Violation {
    /// Wrong number of tracks or total duration.
    Length {
        /// What it is.
        actual: String,
        /// What the rules want.
        wanted: String,
    },
    /// Too many tracks of one artist.
    MaxPerArtist {
        /// The artist.
        artist: String,
        /// Tracks of theirs.
        count: u32,
    },
    /// Two tracks of one artist too close.
    MinArtistGap {
        /// The artist.
        artist: String,
        /// 0-based positions of the two tracks.
        positions: (usize, usize),
    },
    /// Two versions of one recording.
    OneVersionPerRecording {
        /// The recording key.
        recording: String,
    },
    /// A pinned track is not at its position.
    Pinned {
        /// The track.
        track: String,
        /// Its 0-based position.
        position: usize,
    },
    /// The same track twice.
    DuplicateTrack {
        /// The track.
        track: String,
    },
    /// A position names no track of the pool.
    UnknownTrack {
        /// The index.
        index: usize,
    },
}

impl Violation {
    /// The rule's field name.
    pub fn field(&self) -> &'static str {
        match self {
            Violation::Length { .. } => "constraints.length",
            Violation::MaxPerArtist { .. } => "constraints.max_per_artist",
            Violation::MinArtistGap { .. } => "constraints.min_artist_gap",
            Violation::OneVersionPerRecording { .. } => "constraints.one_version_per_recording",
            Violation::Pinned { .. } => "constraints.pinned",
            Violation::DuplicateTrack { .. } | Violation::UnknownTrack { .. } => "playlist",
        }
    }
}

/// Every hard-constraint violation of `seq` (pool indices, in order): empty when feasible.
pub fn violations(problem: &Problem<'_>, seq: &[usize]) -> Vec<Violation> {
    let pool = problem.pool;
    let mut out = Vec::new();
    if let Some(&index) = seq.iter().find(|&&i| i >= pool.len()) {
        out.push(Violation::UnknownTrack { index });
        return out;
    }
    match problem.length {
        LengthRule::Tracks { count } => {
            if seq.len() != count {
                out.push(Violation::Length {
                    actual: format!("{} tracks", seq.len()),
                    wanted: format!("{count} tracks"),
                });
            }
        }
        LengthRule::Minutes { min_ms, max_ms } => {
            let total: u64 = seq.iter().map(|&i| pool[i].duration_ms).sum();
            if total < min_ms || total > max_ms {
                out.push(Violation::Length {
                    actual: format!("{:.1} minutes", total as f64 / 60_000.0),
                    wanted: format!(
                        "{:.1} to {:.1} minutes",
                        min_ms as f64 / 60_000.0,
                        max_ms as f64 / 60_000.0
                    ),
                });
            }
        }
    }
    let mut seen_tracks: HashMap<&str, usize> = HashMap::new();
    let mut recordings: HashMap<String, usize> = HashMap::new();
    let mut per_artist: HashMap<&str, u32> = HashMap::new();
    let mut last_at: HashMap<&str, usize> = HashMap::new();
    for (pos, &i) in seq.iter().enumerate() {
        let c = &pool[i];
        if seen_tracks.insert(&c.id, pos).is_some() {
            out.push(Violation::DuplicateTrack {
                track: c.id.clone(),
            });
        }
        if problem.one_version {
            let key = c.recording_key();
            if recordings.insert(key.clone(), pos).is_some() {
                out.push(Violation::OneVersionPerRecording { recording: key });
            }
        }
        for a in dedup(&c.artists) {
            let n = per_artist.entry(a).or_insert(0);
            *n += 1;
            if let Some(max) = problem.max_per_artist
                && *n == max + 1
            {
                out.push(Violation::MaxPerArtist {
                    artist: a.to_owned(),
                    count: *n,
                });
            }
            if let Some(gap) = problem.min_artist_gap
                && let Some(&prev) = last_at.get(a)
                && pos - prev <= gap as usize
            {
                out.push(Violation::MinArtistGap {
                    artist: a.to_owned(),
                    positions: (prev, pos),
                });
            }
            last_at.insert(a, pos);
        }
    }
    for &(position, index) in &problem.pins {
        if seq.get(position) != Some(&index) {
            out.push(Violation::Pinned {
                track: pool[index].id.clone(),
                position,
            });
        }
    }
    out
}

fn dedup(artists: &[String]) -> impl Iterator<Item = &str> {
    artists
        .iter()
        .enumerate()
        .filter(move |(n, a)| !artists[..*n].contains(a))
        .map(|(_, a)| a.as_str())
}

/// The cost of one transition, 0 (seamless) to 1, from key and tempo.
pub fn transition_cost(a: &Candidate, b: &Candidate) -> f64 {
    let key = match (a.features.camelot, b.features.camelot) {
        (Some(x), Some(y)) => key_cost(x, y),
        _ => 0.5,
    };
    let tempo = match (a.features.bpm, b.features.bpm) {
        (Some(x), Some(y)) => tempo_cost(x, y),
        _ => 0.5,
    };
    0.5 * key + 0.5 * tempo
}

fn key_cost(a: Camelot, b: Camelot) -> f64 {
    match a.distance(b) {
        0 => 0.0,
        1 => 0.2,
        d => (f64::from(d) / 6.0).min(1.0),
    }
}

/// Tempo cost from the BPM ratio, folding double and half time: 8 % apart costs 1.
fn tempo_cost(a: f64, b: f64) -> f64 {
    if !(a > 0.0 && b > 0.0) {
        return 0.5;
    }
    let x = (b / a).ln().abs();
    let folded = x.min((x - std::f64::consts::LN_2).abs());
    (folded / 1.08f64.ln()).min(1.0)
}

/// The energy the arc wants at `t` (0 at the start, 1 at the end).
fn arc_target(shape: ArcShape, low: f64, high: f64, t: f64) -> f64 {
    let f = match shape {
        ArcShape::WarmUpPeakCoolDown => {
            if t <= 0.65 {
                t / 0.65
            } else {
                (1.0 - t) / 0.35
            }
        }
        ArcShape::Rising => t,
        ArcShape::Falling => 1.0 - t,
        ArcShape::Flat => 0.5,
    };
    low + (high - low) * f
}

/// The rotation bucket of a track released on `date` (0 new, 1 power, 2 recurrent, 3 gold).
pub fn bucket(today: NaiveDate, date: Option<NaiveDate>) -> usize {
    match date.map(|d| (today - d).num_days()) {
        Some(age) if age < 28 => 0,
        Some(age) if age < 120 => 1,
        Some(age) if age < 730 => 2,
        _ => 3,
    }
}

/// The rotation bucket names, by index.
pub const BUCKETS: [&str; 4] = ["new", "power", "recurrent", "gold"];

/// The soft cost of a playlist, term by term (each term is 0 to about 1 before its weight).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// Mean transition cost.
    pub transitions: f64,
    /// Mean distance from the energy arc.
    pub energy_arc: f64,
    /// Mean distance from the targets.
    pub targets: f64,
    /// Distance of the bucket shares from the rotation clock.
    pub rotation: f64,
    /// Share of the live tracks dropped.
    pub churn: f64,
    /// The weighted sum.
    pub total: f64,
}

/// Precomputed per-candidate data and the evaluation of sequences.
struct Eval<'p, 'a> {
    problem: &'p Problem<'a>,
    artists: Vec<Vec<u32>>,
    recording: Vec<u32>,
    bucket: Vec<usize>,
    in_live: Vec<bool>,
    pinned_at: Vec<Option<usize>>,
    n_artists: usize,
    n_recordings: usize,
    scratch_count: Vec<u32>,
    scratch_last: Vec<usize>,
    scratch_rec: Vec<u32>,
    scratch_used: Vec<u32>,
}

impl<'p, 'a> Eval<'p, 'a> {
    fn new(problem: &'p Problem<'a>) -> Self {
        let pool = problem.pool;
        let mut artist_ids: HashMap<&str, u32> = HashMap::new();
        let mut rec_ids: HashMap<String, u32> = HashMap::new();
        let mut artists = Vec::with_capacity(pool.len());
        let mut recording = Vec::with_capacity(pool.len());
        for (n, c) in pool.iter().enumerate() {
            let ids = dedup(&c.artists)
                .map(|a| {
                    let next = artist_ids.len() as u32;
                    *artist_ids.entry(a).or_insert(next)
                })
                .collect();
            artists.push(ids);
            let key = if problem.one_version {
                c.recording_key()
            } else {
                format!("track:{n}")
            };
            let next = rec_ids.len() as u32;
            recording.push(*rec_ids.entry(key).or_insert(next));
        }
        let mut in_live = vec![false; pool.len()];
        for &i in &problem.live {
            in_live[i] = true;
        }
        let mut pinned_at = vec![None; pool.len()];
        for &(pos, i) in &problem.pins {
            pinned_at[i] = Some(pos);
        }
        let n_artists = artist_ids.len();
        let n_recordings = rec_ids.len();
        Self {
            problem,
            artists,
            recording,
            bucket: pool
                .iter()
                .map(|c| bucket(problem.today, c.release_date))
                .collect(),
            in_live,
            pinned_at,
            n_artists,
            n_recordings,
            scratch_count: vec![0; n_artists],
            scratch_last: vec![usize::MAX; n_artists],
            scratch_rec: vec![0; n_recordings],
            scratch_used: vec![0; pool.len()],
        }
    }

    /// Number of violations (fast; agrees with [`violations`] on zero / non-zero).
    fn violation_count(&mut self, seq: &[usize]) -> u32 {
        let p = self.problem;
        let mut v = 0u32;
        match p.length {
            LengthRule::Tracks { count } => v += seq.len().abs_diff(count) as u32,
            LengthRule::Minutes { min_ms, max_ms } => {
                let total: u64 = seq.iter().map(|&i| p.pool[i].duration_ms).sum();
                if total < min_ms {
                    v += 1 + ((min_ms - total) / 180_000) as u32;
                } else if total > max_ms {
                    v += 1 + ((total - max_ms) / 180_000) as u32;
                }
            }
        }
        for (pos, &i) in seq.iter().enumerate() {
            self.scratch_used[i] += 1;
            if self.scratch_used[i] > 1 {
                v += 1;
            }
            let r = self.recording[i] as usize;
            self.scratch_rec[r] += 1;
            if self.scratch_rec[r] > 1 && self.scratch_used[i] == 1 {
                v += 1;
            }
            for &a in &self.artists[i] {
                let a = a as usize;
                self.scratch_count[a] += 1;
                if let Some(max) = p.max_per_artist
                    && self.scratch_count[a] > max
                {
                    v += 1;
                }
                if let Some(gap) = p.min_artist_gap {
                    let last = self.scratch_last[a];
                    if last != usize::MAX && pos - last <= gap as usize {
                        v += 1;
                    }
                }
                self.scratch_last[a] = pos;
            }
            if let Some(want) = self.pinned_at[i]
                && want != pos
            {
                v += 1;
            }
        }
        for &(pos, i) in &p.pins {
            if seq.get(pos) != Some(&i) && !seq.contains(&i) {
                v += 1;
            }
        }
        for &i in seq {
            self.scratch_used[i] = 0;
            self.scratch_rec[self.recording[i] as usize] = 0;
            for &a in &self.artists[i] {
                self.scratch_count[a as usize] = 0;
                self.scratch_last[a as usize] = usize::MAX;
            }
        }
        v
    }

    fn score(&self, seq: &[usize]) -> Score {
        let p = self.problem;
        let pool = p.pool;
        let o = &p.objectives;
        let mut s = Score::default();
        if seq.len() > 1 {
            let sum: f64 = seq
                .windows(2)
                .map(|w| transition_cost(&pool[w[0]], &pool[w[1]]))
                .sum();
            s.transitions = sum / (seq.len() - 1) as f64;
        }
        if let Some(arc) = o.energy_arc {
            let (mut sum, mut n) = (0.0, 0usize);
            let last = (seq.len().max(2) - 1) as f64;
            for (pos, &i) in seq.iter().enumerate() {
                if let Some(e) = pool[i].features.energy {
                    sum += (e - arc_target(arc.shape, arc.low, arc.high, pos as f64 / last)).abs();
                    n += 1;
                }
            }
            s.energy_arc = if n == 0 { 0.0 } else { sum / n as f64 };
        }
        if let Some(t) = o.targets {
            let (mut sum, mut n) = (0.0, 0usize);
            for &i in seq {
                let f = pool[i].features;
                if let (Some(want), Some(bpm)) = (t.target_tempo, f.bpm) {
                    sum += tempo_cost(want, bpm);
                    n += 1;
                }
                if let (Some(want), Some(e)) = (t.target_energy, f.energy) {
                    sum += (e - want).abs();
                    n += 1;
                }
            }
            s.targets = if n == 0 { 0.0 } else { sum / n as f64 };
        }
        if let Some(r) = o.rotation
            && !seq.is_empty()
        {
            let mut counts = [0usize; 4];
            for &i in seq {
                counts[self.bucket[i]] += 1;
            }
            let want = [r.new, r.power, r.recurrent, r.gold];
            s.rotation = counts
                .iter()
                .zip(want)
                .map(|(&c, w)| (c as f64 / seq.len() as f64 - w).abs())
                .sum::<f64>()
                / 2.0;
        }
        if !p.live.is_empty() {
            let kept = seq.iter().filter(|&&i| self.in_live[i]).count();
            s.churn = 1.0 - kept as f64 / p.live.len() as f64;
        }
        s.total = o.transitions * s.transitions
            + o.energy_arc.map_or(0.0, |a| a.weight) * s.energy_arc
            + o.targets.map_or(0.0, |t| t.weight) * s.targets
            + o.rotation.map_or(0.0, |r| r.weight) * s.rotation
            + o.stability * s.churn;
        s
    }
}

/// What the solver found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Solution {
    /// The playlist (pool indices, in order); meets every hard constraint.
    pub tracks: Vec<usize>,
    /// Its score.
    pub score: Score,
    /// The score of the construction the annealing started from.
    pub initial_score: Score,
    /// Iterations run.
    pub iterations: u64,
    /// The time budget cut the run short.
    pub stopped_by_time: bool,
    /// Set when the rules could not all be met and the nearest feasible playlist is proposed.
    pub relaxed: Option<String>,
}

/// The rules cannot all be met.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("the rules cannot all be met: {field}: {reason}")]
pub struct Infeasible {
    /// The constraint that failed.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// Finds the best playlist meeting every hard constraint, or says which cannot be met.
pub fn solve(problem: &Problem<'_>) -> Result<Solution, Infeasible> {
    match solve_once(problem) {
        Ok(solution) => Ok(solution),
        Err(err) if problem.allow_nearest => nearest(problem, err),
        Err(err) => Err(err),
    }
}

/// The nearest feasible playlist: the longest the other constraints allow.
fn nearest(problem: &Problem<'_>, err: Infeasible) -> Result<Solution, Infeasible> {
    let floor = problem.pins.iter().map(|(p, _)| p + 1).max().unwrap_or(1);
    match problem.length {
        LengthRule::Tracks { count } => {
            // The longest feasible length, by bisection over [floor, count).
            let (mut lo, mut hi) = (floor, count);
            let mut best = None;
            while lo < hi {
                let mid = (lo + hi) / 2;
                let mut p = problem.clone();
                p.length = LengthRule::Tracks { count: mid };
                p.iterations = problem.iterations / 4 + 1;
                match solve_once(&p) {
                    Ok(s) => {
                        best = Some(s);
                        lo = mid + 1;
                    }
                    Err(_) => hi = mid,
                }
            }
            let mut found = best.ok_or_else(|| err.clone())?;
            found.relaxed = Some(format!(
                "{}: {}; proposing the nearest feasible playlist, {} tracks instead of {count}",
                err.field,
                err.reason,
                found.tracks.len()
            ));
            Ok(found)
        }
        LengthRule::Minutes { max_ms, .. } => {
            let mut p = problem.clone();
            p.length = LengthRule::Minutes { min_ms: 0, max_ms };
            let mut found = solve_once(&p).map_err(|_| err.clone())?;
            found.relaxed = Some(format!(
                "{}: {}; proposing the nearest feasible playlist, {:.1} minutes",
                err.field,
                err.reason,
                found
                    .tracks
                    .iter()
                    .map(|&i| problem.pool[i].duration_ms)
                    .sum::<u64>() as f64
                    / 60_000.0
            ));
            Ok(found)
        }
    }
}

/// Checks that need no search: too few recordings, too few artists.
fn precheck(problem: &Problem<'_>, eval: &Eval<'_, '_>) -> Result<(), Infeasible> {
    let LengthRule::Tracks { count } = problem.length else {
        if let LengthRule::Minutes { min_ms, .. } = problem.length {
            let total: u64 = problem.pool.iter().map(|c| c.duration_ms).sum();
            if total < min_ms {
                return Err(Infeasible {
                    field: "constraints.length.minutes".into(),
                    reason: format!(
                        "the tracks that pass the filters last {:.1} minutes in all, fewer than \
                         the {:.1} asked",
                        total as f64 / 60_000.0,
                        min_ms as f64 / 60_000.0
                    ),
                });
            }
        }
        return Ok(());
    };
    if eval.n_recordings < count {
        return Err(Infeasible {
            field: "constraints.length.tracks".into(),
            reason: format!(
                "{count} tracks asked, but only {} distinct recordings pass the filters",
                eval.n_recordings
            ),
        });
    }
    if let Some(max) = problem.max_per_artist {
        let artists_total = eval.n_artists;
        if (artists_total as u64) * u64::from(max) < count as u64 {
            return Err(Infeasible {
                field: "constraints.max_per_artist".into(),
                reason: format!(
                    "{count} tracks with at most {max} per artist need at least {} artists; \
                     the tracks that pass the filters have {artists_total}",
                    (count as u64).div_ceil(u64::from(max))
                ),
            });
        }
    }
    Ok(())
}

fn solve_once(problem: &Problem<'_>) -> Result<Solution, Infeasible> {
    let started = Instant::now();
    let mut eval = Eval::new(problem);
    precheck(problem, &eval)?;
    let mut rng = Rng::new(problem.seed);
    let init = construct(problem, &mut eval, &mut rng, false);
    let initial_score = eval.score(&init);
    let mut current = init.clone();
    let mut current_v = eval.violation_count(&current);
    let mut current_cost = initial_score.total + PENALTY * f64::from(current_v);
    let mut best: Option<(Vec<usize>, f64)> = None;
    if current_v == 0 {
        best = Some((current.clone(), initial_score.total));
    }
    let n = problem.pool.len();
    let mut used = vec![false; n];
    for &i in &current {
        used[i] = true;
    }
    // Candidates by key, for replacements that fit their neighbours.
    let mut by_key: Vec<Vec<usize>> = vec![Vec::new(); 25];
    for (i, c) in problem.pool.iter().enumerate() {
        by_key[c.features.camelot.map_or(24, Camelot::index)].push(i);
    }
    let pinned_pos: Vec<bool> = {
        let len = current
            .len()
            .max(problem.pins.iter().map(|p| p.0 + 1).max().unwrap_or(0));
        let mut v = vec![false; len + 1];
        for &(p, _) in &problem.pins {
            v[p] = true;
        }
        v
    };
    let is_pinned = |pos: usize| pinned_pos.get(pos).copied().unwrap_or(false);
    let last_pin = problem.pins.iter().map(|p| p.0 + 1).max().unwrap_or(0);
    // The score is a mean over the transitions, so one move changes it by about 1/(len - 1)
    // of a transition's cost: the temperatures are per transition. (Unscaled, the walk climbed
    // far above the greedy start and never came back below it.)
    let steps = current.len().saturating_sub(1).max(1) as f64;
    let (t0, t1) = (0.05 / steps, 0.0005 / steps);
    let mut iterations = 0u64;
    let mut stopped_by_time = false;
    let minutes = matches!(problem.length, LengthRule::Minutes { .. });
    let mut candidate = current.clone();
    while iterations < problem.iterations {
        if iterations.is_multiple_of(256) && started.elapsed() > problem.time_budget {
            stopped_by_time = true;
            break;
        }
        let progress = iterations as f64 / problem.iterations.max(1) as f64;
        let temp = t0 * (t1 / t0).powf(progress);
        iterations += 1;
        candidate.clear();
        candidate.extend_from_slice(&current);
        let len = candidate.len();
        let movable: usize = len;
        let kind = rng.below(if minutes { 6 } else { 4 });
        let mut added = None;
        let mut removed = None;
        match kind {
            0 if movable >= 2 => {
                let (a, b) = (rng.below(len), rng.below(len));
                if a == b || is_pinned(a) || is_pinned(b) {
                    continue;
                }
                candidate.swap(a, b);
            }
            1 | 2 if len > 0 && n > len => {
                let pos = rng.below(len);
                if is_pinned(pos) {
                    continue;
                }
                let pick = if kind == 2 && pos > 0 {
                    let near = problem.pool[candidate[pos - 1]].features.camelot;
                    match near {
                        Some(k) => {
                            let mut key = k;
                            match rng.below(3) {
                                0 => {}
                                1 => key.major = !key.major,
                                _ => key.number = key.number % 12 + 1,
                            }
                            let bucket = &by_key[key.index()];
                            if bucket.is_empty() {
                                continue;
                            }
                            bucket[rng.below(bucket.len())]
                        }
                        None => rng.below(n),
                    }
                } else {
                    rng.below(n)
                };
                if used[pick] {
                    continue;
                }
                removed = Some(candidate[pos]);
                added = Some(pick);
                candidate[pos] = pick;
            }
            3 if len >= 3 => {
                // Reverse a segment (2-opt): mends a run of poor transitions at once.
                let (a, b) = (rng.below(len), rng.below(len));
                let (a, b) = (a.min(b), a.max(b));
                if b - a < 1 || (a..=b).any(is_pinned) {
                    continue;
                }
                candidate[a..=b].reverse();
            }
            4 => {
                let pick = rng.below(n);
                if used[pick] {
                    continue;
                }
                let pos = last_pin + rng.below(len.saturating_sub(last_pin) + 1);
                candidate.insert(pos.min(len), pick);
                added = Some(pick);
            }
            5 if len > last_pin => {
                let pos = last_pin + rng.below(len - last_pin);
                removed = Some(candidate.remove(pos));
            }
            _ => continue,
        }
        let v = eval.violation_count(&candidate);
        let score = eval.score(&candidate);
        let cost = score.total + PENALTY * f64::from(v);
        let accept = cost <= current_cost || rng.unit() < ((current_cost - cost) / temp).exp();
        if accept {
            if let Some(r) = removed {
                used[r] = false;
            }
            if let Some(a) = added {
                used[a] = true;
            }
            std::mem::swap(&mut current, &mut candidate);
            current_v = v;
            current_cost = cost;
            if current_v == 0 && best.as_ref().is_none_or(|(_, b)| score.total < *b) {
                best = Some((current.clone(), score.total));
            }
        }
    }
    let Some((tracks, _)) = best else {
        return Err(diagnose(problem, &current));
    };
    // The answer is checked by the same checker the tests use: never a violating playlist.
    let found = violations(problem, &tracks);
    if let Some(v) = found.first() {
        return Err(Infeasible {
            field: v.field().into(),
            reason: format!("the search ended on a playlist that breaks it ({v:?})"),
        });
    }
    Ok(Solution {
        score: eval.score(&tracks),
        tracks,
        initial_score,
        iterations,
        stopped_by_time,
        relaxed: None,
    })
}

/// Names the constraint the best infeasible state kept breaking.
fn diagnose(problem: &Problem<'_>, state: &[usize]) -> Infeasible {
    let found = violations(problem, state);
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    for v in &found {
        *counts.entry(v.field()).or_insert(0) += 1;
    }
    let worst = counts
        .iter()
        .max_by_key(|(field, n)| (**n, std::cmp::Reverse(**field)))
        .map_or("constraints", |(f, _)| *f);
    let example = found.iter().find(|v| v.field() == worst);
    Infeasible {
        field: worst.to_owned(),
        reason: format!(
            "no playlist meeting every constraint was found among {} candidate tracks; the \
             closest one breaks this constraint {} time(s){}",
            problem.pool.len(),
            counts.get(worst).copied().unwrap_or(0),
            example.map(|v| format!(", e.g. {v:?}")).unwrap_or_default()
        ),
    }
}

/// A constraint-aware greedy construction: pins first, then slot by slot the candidate whose
/// transition from the previous track is cheapest among those breaking nothing so far (live
/// tracks preferred, for stability). With `full_scan` every candidate is looked at for every
/// slot (the greedy baseline); otherwise a bounded sample.
fn construct(
    problem: &Problem<'_>,
    eval: &mut Eval<'_, '_>,
    rng: &mut Rng,
    full_scan: bool,
) -> Vec<usize> {
    let pool = problem.pool;
    let n = pool.len();
    let target_len = match problem.length {
        LengthRule::Tracks { count } => count,
        LengthRule::Minutes { min_ms, max_ms } => {
            let mean = if n == 0 {
                180_000
            } else {
                (pool.iter().map(|c| c.duration_ms).sum::<u64>() / n as u64).max(1)
            };
            (((min_ms + max_ms) / 2) / mean) as usize
        }
    };
    let target_len = target_len.max(problem.pins.iter().map(|p| p.0 + 1).max().unwrap_or(0));
    let mut slots: Vec<Option<usize>> = vec![None; target_len];
    let mut used = vec![false; n];
    let mut rec_used = vec![false; eval.n_recordings];
    let mut artist_count = vec![0u32; eval.n_artists];
    let mut artist_last = vec![usize::MAX; eval.n_artists];
    for &(pos, i) in &problem.pins {
        if pos < slots.len() {
            slots[pos] = Some(i);
            used[i] = true;
            rec_used[eval.recording[i] as usize] = true;
            for &a in &eval.artists[i] {
                artist_count[a as usize] += 1;
            }
        }
    }
    let live_order: Vec<usize> = problem.live.clone();
    // A full scan per slot when affordable (the greedy nearest neighbour), else a sample.
    let full_scan = full_scan || (target_len as u64) * (n as u64) <= 30_000_000;
    let sample = if full_scan { n } else { n.min(400) };
    let mut seq_total_ms: u64 = 0;
    for pos in 0..slots.len() {
        if let Some(i) = slots[pos] {
            for &a in &eval.artists[i] {
                artist_last[a as usize] = pos;
            }
            seq_total_ms += pool[i].duration_ms;
            continue;
        }
        let ok = |i: usize, artist_count: &[u32], artist_last: &[usize]| {
            !used[i]
                && !rec_used[eval.recording[i] as usize]
                && eval.artists[i].iter().all(|&a| {
                    let a = a as usize;
                    problem.max_per_artist.is_none_or(|m| artist_count[a] < m)
                        && problem.min_artist_gap.is_none_or(|g| {
                            artist_last[a] == usize::MAX || pos - artist_last[a] > g as usize
                        })
                        // A later pin of the same artist must also stay far enough away.
                        && problem.min_artist_gap.is_none_or(|g| {
                            problem.pins.iter().all(|&(pp, pi)| {
                                pp <= pos
                                    || pp - pos > g as usize
                                    || !eval.artists[pi].contains(&(a as u32))
                            })
                        })
                })
        };
        let prev = pos.checked_sub(1).and_then(|p| slots[p]);
        let mut best: Option<(f64, usize)> = None;
        let mut consider = |i: usize, bonus: f64| {
            if !ok(i, &artist_count, &artist_last) {
                return;
            }
            let cost = prev.map_or(0.0, |p| transition_cost(&pool[p], &pool[i])) - bonus;
            if best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, i));
            }
        };
        for &i in &live_order {
            consider(i, problem.objectives.stability);
        }
        if full_scan {
            for i in 0..n {
                consider(i, 0.0);
            }
        } else {
            let mut any = false;
            for _ in 0..sample {
                let i = rng.below(n.max(1));
                any |= ok(i, &artist_count, &artist_last);
                consider(i, 0.0);
            }
            if !any {
                for i in 0..n {
                    consider(i, 0.0);
                }
            }
        }
        if let Some((_, i)) = best {
            slots[pos] = Some(i);
            used[i] = true;
            rec_used[eval.recording[i] as usize] = true;
            for &a in &eval.artists[i] {
                artist_count[a as usize] += 1;
                artist_last[a as usize] = pos;
            }
            seq_total_ms += pool[i].duration_ms;
        }
        if let LengthRule::Minutes { max_ms, .. } = problem.length
            && seq_total_ms > max_ms
            && pos + 1 >= problem.pins.iter().map(|p| p.0 + 1).max().unwrap_or(0)
        {
            slots.truncate(pos + 1);
            break;
        }
    }
    // Unfilled slots take any unused track (the annealing repairs what that breaks).
    let mut spare = (0..n).filter(|&i| !used[i]);
    let mut seq = Vec::with_capacity(slots.len());
    for slot in slots {
        match slot {
            Some(i) => seq.push(i),
            None => {
                if let Some(i) = spare.next() {
                    seq.push(i);
                }
            }
        }
    }
    seq
}

/// The greedy baseline alone (full scan, no annealing), for comparison in the benchmark.
pub fn greedy(problem: &Problem<'_>) -> (Vec<usize>, Score, bool) {
    let mut eval = Eval::new(problem);
    let mut rng = Rng::new(problem.seed);
    let seq = construct(problem, &mut eval, &mut rng, true);
    let feasible = eval.violation_count(&seq) == 0;
    (seq.clone(), eval.score(&seq), feasible)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TrackFeatures;

    fn track(n: usize, artist: usize, bpm: f64, key: &str) -> Candidate {
        Candidate {
            id: format!("t{n}"),
            name: format!("Song {n}"),
            artists: vec![format!("a{artist}")],
            artist_names: vec![],
            isrc: Some(format!("QZ{n:010}")),
            duration_ms: 200_000,
            explicit: false,
            release_date: None,
            added_at: None,
            sources: vec!["test".into()],
            features: TrackFeatures {
                bpm: Some(bpm),
                camelot: Camelot::parse(key),
                energy: Some(0.5),
            },
            availability: Default::default(),
        }
    }

    fn problem(pool: &[Candidate], count: usize) -> Problem<'_> {
        Problem {
            pool,
            length: LengthRule::Tracks { count },
            max_per_artist: Some(2),
            min_artist_gap: Some(1),
            one_version: true,
            pins: vec![],
            live: vec![],
            objectives: Objectives::default(),
            today: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            seed: 7,
            iterations: 5_000,
            time_budget: Duration::from_secs(30),
            allow_nearest: false,
        }
    }

    fn pool(n: usize) -> Vec<Candidate> {
        let keys = ["8A", "9A", "3B", "11B", "5A"];
        (0..n)
            .map(|i| track(i, i % 7, 100.0 + (i * 13 % 40) as f64, keys[i % 5]))
            .collect()
    }

    #[test]
    fn a_solution_meets_every_constraint_and_is_reproducible() {
        let pool = pool(60);
        let p = problem(&pool, 10);
        let a = solve(&p).unwrap();
        assert!(violations(&p, &a.tracks).is_empty());
        assert_eq!(a.tracks.len(), 10);
        let b = solve(&p).unwrap();
        assert_eq!(a.tracks, b.tracks);
        assert!(a.score.total <= a.initial_score.total + 1e-9);
    }

    #[test]
    fn too_few_artists_is_reported_by_constraint() {
        let pool = pool(60);
        let mut p = problem(&pool, 20);
        p.max_per_artist = Some(2);
        let err = solve(&p).unwrap_err();
        assert_eq!(err.field, "constraints.max_per_artist", "{err}");
        p.allow_nearest = true;
        let near = solve(&p).unwrap();
        assert_eq!(near.tracks.len(), 14);
        assert!(near.relaxed.is_some());
        assert!(
            violations(&p, &near.tracks)
                .iter()
                .all(|v| v.field() == "constraints.length")
        );
    }

    #[test]
    fn pins_hold_their_positions() {
        let pool = pool(60);
        let mut p = problem(&pool, 10);
        p.pins = vec![(0, 42), (9, 5)];
        let s = solve(&p).unwrap();
        assert_eq!(s.tracks[0], 42);
        assert_eq!(s.tracks[9], 5);
    }

    #[test]
    fn the_checker_sees_each_kind_of_violation() {
        let mut pool = pool(10);
        pool[3].isrc = pool[2].isrc.clone();
        let p = problem(&pool, 4);
        let v = violations(&p, &[0, 7, 2, 3]);
        let fields: Vec<&str> = v.iter().map(Violation::field).collect();
        assert!(fields.contains(&"constraints.min_artist_gap"), "{fields:?}");
        assert!(
            fields.contains(&"constraints.one_version_per_recording"),
            "{fields:?}"
        );
        assert!(
            violations(&p, &[0, 1, 2])
                .iter()
                .any(|v| v.field() == "constraints.length")
        );
    }

    #[test]
    fn transitions_prefer_neighbouring_keys_and_tempi() {
        let a = track(0, 0, 124.0, "8A");
        let near = track(1, 1, 125.0, "9A");
        let far = track(2, 2, 90.0, "2B");
        let double = track(3, 3, 248.0, "8A");
        assert!(transition_cost(&a, &near) < transition_cost(&a, &far));
        assert!(transition_cost(&a, &double) < 0.05);
    }

    #[test]
    fn on_a_tight_pool_the_annealing_beats_its_greedy_start() {
        // 100 slots from 150 tracks by 75 artists: greedy runs out of good next tracks.
        let mut rng = Rng::new(5);
        let pool: Vec<Candidate> = (0..150)
            .map(|i| {
                let bpm = 80.0 + rng.below(100) as f64;
                let key = format!("{}{}", 1 + rng.below(12), ['A', 'B'][rng.below(2)]);
                track(i, i / 2, bpm, &key)
            })
            .collect();
        let mut p = problem(&pool, 100);
        p.min_artist_gap = Some(3);
        p.iterations = DEFAULT_ITERATIONS;
        let solved = solve(&p).unwrap();
        let (_, greedy, feasible) = greedy(&p);
        assert!(feasible);
        assert!(violations(&p, &solved.tracks).is_empty());
        assert!(
            solved.score.transitions < greedy.transitions * 0.99,
            "annealed {} against greedy {}",
            solved.score.transitions,
            greedy.transitions
        );
    }
}
