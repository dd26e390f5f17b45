//! Benchmark of the solver and the diff, on one core:
//!
//! 1. solve time for 100 and 500 slots from a 50,000-track pool (random keys, tempi, energy,
//!    artists), median of the runs, and the transition score of the answer against the greedy
//!    nearest-neighbour baseline (the construction with a full scan, without annealing) on the
//!    same instances;
//! 2. write calls of the minimal diff against the lower bound, over random diffs of 100-track
//!    playlists (removes, adds and moves drawn at random).
//!
//! `cargo bench -p playlist-update --bench solver` (add `-- --quick` for fewer runs).

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use playlist_update::diff::{self, Plan};
use playlist_update::model::{Camelot, Candidate, TrackFeatures};
use playlist_update::rules::Objectives;
use playlist_update::solver::{self, LengthRule, Problem, Rng};

fn pool(n: usize, artists: usize, seed: u64) -> Vec<Candidate> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| Candidate {
            id: format!("track{i:06}"),
            name: format!("Song {i}"),
            artists: vec![format!("artist{}", rng.below(artists))],
            artist_names: vec![],
            isrc: Some(format!("QZ{i:010}")),
            duration_ms: 150_000 + rng.below(150_000) as u64,
            explicit: false,
            release_date: None,
            added_at: None,
            sources: vec!["bench".into()],
            features: TrackFeatures {
                bpm: Some(80.0 + rng.below(100) as f64 + rng.unit()),
                camelot: Camelot::parse(&format!(
                    "{}{}",
                    1 + rng.below(12),
                    if rng.below(2) == 0 { 'A' } else { 'B' }
                )),
                energy: Some(rng.unit()),
            },
            availability: Default::default(),
        })
        .collect()
}

fn problem(pool: &[Candidate], slots: usize, seed: u64) -> Problem<'_> {
    Problem {
        pool,
        length: LengthRule::Tracks { count: slots },
        max_per_artist: Some(2),
        min_artist_gap: Some(3),
        one_version: true,
        pins: vec![],
        live: vec![],
        objectives: Objectives::default(),
        today: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default(),
        seed,
        iterations: solver::DEFAULT_ITERATIONS,
        time_budget: Duration::from_secs(120),
        allow_nearest: false,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 1 } else { 5 };
    println!(
        "solver: {} iterations, pool of 50,000 tracks, max 2 per artist, gap 3",
        solver::DEFAULT_ITERATIONS
    );
    println!(
        "slots  median solve s  annealed transitions  greedy transitions  greedy s  improvement"
    );
    for slots in [100usize, 500] {
        let mut times = Vec::new();
        let mut greedy_times = Vec::new();
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for run in 0..runs {
            let pool = pool(50_000, 50_000 / 8, 1000 + run as u64);
            let p = problem(&pool, slots, run as u64);
            let started = Instant::now();
            let solution = solver::solve(&p).expect("the benchmark instances are feasible");
            times.push(started.elapsed().as_secs_f64());
            assert!(solver::violations(&p, &solution.tracks).is_empty());
            let started = Instant::now();
            let (_, greedy, feasible) = solver::greedy(&p);
            greedy_times.push(started.elapsed().as_secs_f64());
            assert!(feasible, "the greedy baseline found no feasible playlist");
            ours.push(solution.score.transitions);
            theirs.push(greedy.transitions);
        }
        let (o, g) = (median(ours), median(theirs));
        println!(
            "{slots:>5}  {:>14.3}  {o:>20.4}  {g:>18.4}  {:>8.3}  {:>10.1} %",
            median(times),
            median(greedy_times),
            100.0 * (g - o) / g
        );
    }

    // Tight pools: what the filters leave is often a few hundred tracks, where a greedy
    // nearest neighbour runs out of good next tracks and the annealing has room to work.
    println!(
        "tight pools, 100 slots, a pool of N tracks by N/2 artists, max 2 per artist, gap 3 (median of {runs} seeds)"
    );
    println!(
        "pool  annealed transitions  greedy transitions  improvement  annealed total  greedy total"
    );
    for pool_size in [150usize, 300, 1_000, 5_000] {
        let (mut ours, mut theirs, mut ours_total, mut theirs_total) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            let pool = pool(pool_size, pool_size / 2, 2000 + run as u64);
            let p = problem(&pool, 100, run as u64);
            let solution = solver::solve(&p).expect("the benchmark instances are feasible");
            assert!(solver::violations(&p, &solution.tracks).is_empty());
            let (_, greedy, feasible) = solver::greedy(&p);
            assert!(feasible, "the greedy baseline found no feasible playlist");
            ours.push(solution.score.transitions);
            theirs.push(greedy.transitions);
            ours_total.push(solution.score.total);
            theirs_total.push(greedy.total);
        }
        let (o, g) = (median(ours), median(theirs));
        println!(
            "{pool_size:>4}  {o:>20.4}  {g:>18.4}  {:>9.1} %  {:>14.4}  {:>12.4}",
            100.0 * (g - o) / g,
            median(ours_total),
            median(theirs_total)
        );
    }

    // Write calls against the lower bound over random diffs.
    let mut rng = Rng::new(7);
    let diffs = if quick { 200 } else { 2_000 };
    let (mut calls, mut bound, mut worst) = (0usize, 0usize, 0f64);
    for n in 0..diffs {
        let live: Vec<String> = (0..100).map(|i| format!("t{n}-{i}")).collect();
        let mut target = live.clone();
        let removes = rng.below(15);
        for _ in 0..removes {
            if !target.is_empty() {
                let at = rng.below(target.len());
                target.remove(at);
            }
        }
        let moves = rng.below(6);
        for _ in 0..moves {
            if target.len() > 1 {
                let from = rng.below(target.len());
                let t = target.remove(from);
                let to = rng.below(target.len() + 1);
                target.insert(to, t);
            }
        }
        let adds = rng.below(15);
        for a in 0..adds {
            let at = rng.below(target.len() + 1);
            target.insert(at, format!("new{n}-{a}"));
        }
        let plan = diff::plan(&live, &target);
        assert_eq!(diff::simulate(&live, &plan.ops), target);
        let lb = Plan::lower_bound(&live, &target);
        calls += plan.ops.len();
        bound += lb;
        if lb > 0 {
            worst = worst.max(plan.ops.len() as f64 / lb as f64);
        }
    }
    println!(
        "diff: {diffs} random diffs of 100-track playlists (0-14 removes, 0-5 moves, 0-14 adds): \
         {calls} write calls, lower bound {bound} ({:+.1} % in all; worst single diff {:.2}x)",
        100.0 * (calls as f64 - bound as f64) / bound as f64,
        worst
    );
}
