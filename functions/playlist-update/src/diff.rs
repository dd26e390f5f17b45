//! The minimal diff from the live playlist to the target, as Spotify write calls.
//!
//! The longest common subsequence of the live and target orders stays where it is. Then, in
//! this order: tracks leaving are removed (Spotify removes every occurrence of a URI, 100 URIs
//! a call); tracks staying but out of order are moved, a contiguous run per call; tracks new to
//! the playlist are added, a contiguous run of at most 100 per call, at their final position.
//! Removes and moves carry the `snapshot_id` of the previous call, so Spotify applies each to
//! the version it was planned against. [`simulate`] applies a plan to a list exactly as
//! Spotify does, so a plan is verified before it is sent and the tests can check it.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Most URIs Spotify takes in one add or remove call.
pub const MAX_PER_CALL: usize = 100;

/// One write call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "op")]
pub enum Op {
    /// Remove every occurrence of these tracks.
    Remove {
        /// Track ids (at most 100).
        tracks: Vec<String>,
    },
    /// Move `length` items from `start` to before `insert_before` (positions before the move).
    Reorder {
        /// First item moved.
        start: usize,
        /// Items moved.
        length: usize,
        /// Where they go.
        insert_before: usize,
    },
    /// Insert these tracks at `position`.
    Add {
        /// Track ids (at most 100).
        tracks: Vec<String>,
        /// Where the first goes.
        position: usize,
    },
}

/// The write calls that turn `live` into `target`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The calls, in order.
    pub ops: Vec<Op>,
    /// Tracks kept in place (the common subsequence).
    pub kept: usize,
    /// Tracks removed.
    pub removed: Vec<String>,
    /// Tracks added.
    pub added: Vec<String>,
    /// Tracks moved.
    pub moved: Vec<String>,
}

impl Plan {
    /// A lower bound on the write calls of any plan from `live` to `target`: the removes and
    /// adds at 100 a call, each maximal run of new tracks its own add, and at least one move
    /// per three order breakpoints (a block move mends at most three).
    pub fn lower_bound(live: &[String], target: &[String]) -> usize {
        let target_set: HashSet<&String> = target.iter().collect();
        let live_counts = counts(live);
        let leaving = live_counts
            .iter()
            .filter(|(t, n)| !target_set.contains(*t) || **n > 1)
            .count();
        let staying: Vec<&String> = {
            let mut seen = HashSet::new();
            live.iter()
                .filter(|t| target_set.contains(t) && live_counts[t] == 1 && seen.insert(*t))
                .collect()
        };
        let staying_set: HashSet<&String> = staying.iter().copied().collect();
        let mut add_calls = 0;
        let mut run: usize = 0;
        for t in target {
            if staying_set.contains(t) {
                if run > 0 {
                    add_calls += run.div_ceil(MAX_PER_CALL);
                }
                run = 0;
            } else {
                run += 1;
            }
        }
        if run > 0 {
            add_calls += run.div_ceil(MAX_PER_CALL);
        }
        let order: HashMap<&String, usize> = target
            .iter()
            .filter(|t| staying_set.contains(t))
            .enumerate()
            .map(|(n, t)| (t, n))
            .collect();
        let ranks: Vec<usize> = staying.iter().map(|t| order[t]).collect();
        // Breakpoints of the permutation framed by 0 and n+1.
        let mut framed = vec![0usize];
        framed.extend(ranks.iter().map(|r| r + 1));
        framed.push(ranks.len() + 1);
        let breakpoints = framed.windows(2).filter(|w| w[1] != w[0] + 1).count();
        leaving.div_ceil(MAX_PER_CALL) + add_calls + breakpoints.div_ceil(3)
    }
}

fn counts(list: &[String]) -> HashMap<&String, usize> {
    let mut out = HashMap::new();
    for t in list {
        *out.entry(t).or_insert(0) += 1;
    }
    out
}

/// The longest increasing subsequence of `xs` (values distinct), as a membership mask.
fn lis_mask(xs: &[usize]) -> Vec<bool> {
    let mut tails: Vec<usize> = Vec::new(); // indexes into xs
    let mut prev = vec![usize::MAX; xs.len()];
    for i in 0..xs.len() {
        let at = tails.partition_point(|&t| xs[t] < xs[i]);
        if at > 0 {
            prev[i] = tails[at - 1];
        }
        if at == tails.len() {
            tails.push(i);
        } else {
            tails[at] = i;
        }
    }
    let mut mask = vec![false; xs.len()];
    let mut cur = tails.last().copied().unwrap_or(usize::MAX);
    while cur != usize::MAX {
        mask[cur] = true;
        cur = prev[cur];
    }
    mask
}

/// Plans the write calls from `live` to `target` (`target` holds each track once).
pub fn plan(live: &[String], target: &[String]) -> Plan {
    let target_set: HashSet<&String> = target.iter().collect();
    let live_counts = counts(live);
    // Removing a URI removes all its occurrences: a duplicated track is removed and re-added.
    let mut removed: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for t in live {
        if (!target_set.contains(t) || live_counts[t] > 1) && seen.insert(t.clone()) {
            removed.push(t.clone());
        }
    }
    let removed_set: HashSet<&String> = removed.iter().collect();
    let mut ops: Vec<Op> = removed
        .chunks(MAX_PER_CALL)
        .map(|c| Op::Remove { tracks: c.to_vec() })
        .collect();
    let mut work: Vec<String> = live
        .iter()
        .filter(|t| !removed_set.contains(t))
        .cloned()
        .collect();
    // Order of the staying tracks in the target.
    let staying: HashSet<String> = work.iter().cloned().collect();
    let rank: HashMap<&String, usize> = target
        .iter()
        .filter(|t| staying.contains(*t))
        .enumerate()
        .map(|(n, t)| (t, n))
        .collect();
    let ranks: Vec<usize> = work.iter().map(|t| rank[t]).collect();
    let keep = lis_mask(&ranks);
    let kept = keep.iter().filter(|k| **k).count();
    let mut moved = Vec::new();
    // Place staying tracks in target order: the j-th staying track of the target must end at
    // index j. A run of tracks already consecutive in `work` and in the target moves as one.
    let wanted: Vec<String> = target
        .iter()
        .filter(|t| rank.contains_key(t))
        .cloned()
        .collect();
    let mut j = 0;
    while j < wanted.len() {
        if work[j] == wanted[j] {
            j += 1;
            continue;
        }
        let Some(from) = work[j..]
            .iter()
            .position(|t| *t == wanted[j])
            .map(|p| p + j)
        else {
            break;
        };
        let mut len = 1;
        while j + len < wanted.len()
            && from + len < work.len()
            && work[from + len] == wanted[j + len]
        {
            len += 1;
        }
        ops.push(Op::Reorder {
            start: from,
            length: len,
            insert_before: j,
        });
        let block: Vec<String> = work.drain(from..from + len).collect();
        moved.extend(block.iter().cloned());
        work.splice(j..j, block);
        j += len;
    }
    // Adds, left to right: everything before a run's position is final by then.
    let mut added = Vec::new();
    let mut i = 0;
    while i < target.len() {
        if rank.contains_key(&target[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < target.len() && !rank.contains_key(&target[i]) && i - start < MAX_PER_CALL {
            i += 1;
        }
        let run = target[start..i].to_vec();
        added.extend(run.iter().cloned());
        ops.push(Op::Add {
            tracks: run,
            position: start,
        });
    }
    Plan {
        ops,
        kept,
        removed,
        added,
        moved,
    }
}

/// Applies `ops` to `list` exactly as Spotify does.
pub fn simulate(list: &[String], ops: &[Op]) -> Vec<String> {
    let mut out = list.to_vec();
    for op in ops {
        match op {
            Op::Remove { tracks } => {
                let gone: HashSet<&String> = tracks.iter().collect();
                out.retain(|t| !gone.contains(t));
            }
            Op::Reorder {
                start,
                length,
                insert_before,
            } => {
                if start + length > out.len() || *insert_before > out.len() {
                    continue;
                }
                let block: Vec<String> = out.drain(*start..start + length).collect();
                let at = if insert_before > start {
                    insert_before - length
                } else {
                    *insert_before
                };
                out.splice(at..at, block);
            }
            Op::Add { tracks, position } => {
                let at = (*position).min(out.len());
                out.splice(at..at, tracks.iter().cloned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn nothing_changed_is_no_call() {
        let live = ids("a b c d");
        let p = plan(&live, &live);
        assert!(p.ops.is_empty());
        assert_eq!(p.kept, 4);
    }

    #[test]
    fn a_typical_diff() {
        let live = ids("a b c d e");
        let target = ids("a c x b e y");
        let p = plan(&live, &target);
        assert_eq!(simulate(&live, &p.ops), target);
        assert_eq!(p.removed, ids("d"));
        assert_eq!(p.added, ids("x y"));
        assert_eq!(p.ops.len(), 4, "{:?}", p.ops);
    }

    #[test]
    fn duplicates_are_removed_and_readded_once() {
        let live = ids("a b a c");
        let target = ids("a b c");
        let p = plan(&live, &target);
        assert_eq!(simulate(&live, &p.ops), target);
    }

    #[test]
    fn calls_hold_at_most_100_tracks() {
        let live: Vec<String> = (0..250).map(|i| format!("old{i}")).collect();
        let target: Vec<String> = (0..250).map(|i| format!("new{i}")).collect();
        let p = plan(&live, &target);
        assert_eq!(simulate(&live, &p.ops), target);
        for op in &p.ops {
            match op {
                Op::Remove { tracks } | Op::Add { tracks, .. } => assert!(tracks.len() <= 100),
                Op::Reorder { .. } => {}
            }
        }
        assert_eq!(p.ops.len(), 6);
        assert_eq!(Plan::lower_bound(&live, &target), 6);
    }

    proptest! {
        #[test]
        fn every_plan_reaches_its_target(
            live in proptest::collection::vec(0u8..40, 0..60),
            target in proptest::collection::vec(0u8..60, 0..60),
        ) {
            let live: Vec<String> = live.iter().map(|n| format!("t{n}")).collect();
            // The target holds each track once: keep the first occurrence of each.
            let mut seen = HashSet::new();
            let target: Vec<String> = target
                .iter()
                .filter(|n| seen.insert(**n))
                .map(|n| format!("t{n}"))
                .collect();
            let p = plan(&live, &target);
            prop_assert_eq!(simulate(&live, &p.ops), target.clone());
            prop_assert!(p.ops.len() >= Plan::lower_bound(&live, &target));
        }
    }
}
