//! `/playlists`: the runs of playlist-update, newest first, each with what it added, kept,
//! moved and dropped and why (the explanations `tasks playlist explain` prints).
//!
//! Read from the store as the CLI reads them (the managed-playlist index, then each playlist's
//! `run#<time>` records, newest first). Bounded: the newest [`RUNS_PER_PLAYLIST`] runs of each
//! managed playlist (at most [`playlist_update::state::MAX_MANAGED`] playlists), the newest
//! [`MAX_RUNS`] of those shown, at most [`MAX_EXPLANATIONS`] explanation rows per run.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use backbone::ports::{Query, Store};
use playlist_update::RunRecord;
use playlist_update::curate::Action;
use playlist_update::state;

use super::{Dashboard, PageError, esc, page};

/// Runs read per playlist (its newest).
pub const RUNS_PER_PLAYLIST: usize = 5;

/// Runs shown on the page (the newest across playlists).
pub const MAX_RUNS: usize = 30;

/// Explanation rows shown per run.
pub const MAX_EXPLANATIONS: usize = 200;

/// A stored run: when, and its record (or why it does not decode).
pub(crate) struct Run {
    at: String,
    playlist: String,
    record: Result<RunRecord, String>,
}

/// The newest runs across the managed playlists, newest first, at most [`MAX_RUNS`].
pub(crate) async fn newest(d: &Dashboard) -> Result<Vec<Run>, PageError> {
    let mut runs = Vec::new();
    for playlist in state::managed(&d.db).await? {
        let page =
            d.db.query(
                &Query::partition(format!("playlist#{playlist}"))
                    .prefix("run#")
                    .descending()
                    .limit(RUNS_PER_PLAYLIST),
            )
            .await?;
        for item in page.items {
            runs.push(Run {
                at: item.key.sk.trim_start_matches("run#").to_owned(),
                playlist: playlist.to_string(),
                record: serde_json::from_value(item.data).map_err(|e| e.to_string()),
            });
        }
    }
    // The sort keys are fixed-width RFC 3339 times: text order is time order.
    runs.sort_by(|a, b| b.at.cmp(&a.at));
    runs.truncate(MAX_RUNS);
    Ok(runs)
}

fn action(a: Action) -> &'static str {
    match a {
        Action::Added => "added",
        Action::Kept => "kept",
        Action::Moved => "moved",
        Action::Dropped => "dropped",
    }
}

fn position(p: Option<usize>) -> String {
    // Positions are 0-based in the record; people count from 1.
    p.map_or("-".to_owned(), |p| (p + 1).to_string())
}

fn run_section(i: usize, run: &Run) -> String {
    let record = match &run.record {
        Ok(record) => record,
        Err(err) => {
            return format!(
                "<section class=\"run\" id=\"run-{i}\" data-playlist=\"{}\" data-at=\"{}\" data-status=\"undecodable\">\
<h2>{} at {}</h2><p class=\"broken\">This run record does not decode: {}</p></section>",
                esc(&run.playlist),
                esc(&run.at),
                esc(&run.playlist),
                esc(&run.at),
                esc(err)
            );
        }
    };
    let status = serde_json::to_value(record.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let count = |a: Action| record.explanations.iter().filter(|e| e.action == a).count();
    let mut out = format!(
        "<section class=\"run\" id=\"run-{i}\" data-playlist=\"{p}\" data-at=\"{at}\" data-status=\"{s}\" \
data-added=\"{added}\" data-dropped=\"{dropped}\"><h2>{p} for {date} ({s})</h2>\
<p class=\"message\">{msg}</p><p>run at {at}; {added} added, {dropped} dropped, {kept} kept, {moved} moved; \
{writes} write calls; {cand} candidates, {elig} eligible, {feat} with features{score}</p>",
        p = esc(&record.playlist),
        at = esc(&run.at),
        s = esc(&status),
        date = record.date,
        msg = esc(&record.message),
        added = count(Action::Added),
        dropped = count(Action::Dropped),
        kept = count(Action::Kept),
        moved = count(Action::Moved),
        writes = record.writes,
        cand = record.candidates,
        elig = record.eligible,
        feat = record.with_features,
        score = record
            .score
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v["total"].as_f64())
            .map_or(String::new(), |t| format!("; score {t:.3}")),
    );
    for skip in &record.skips {
        let _ = write!(
            out,
            "<p class=\"skip\">skipped {}: {}</p>",
            esc(&skip.source),
            esc(&skip.reason)
        );
    }
    out.push_str(
        "<table class=\"explanations\"><tr><th>position</th><th>was</th><th>action</th><th>track</th><th>why</th></tr>",
    );
    for e in record.explanations.iter().take(MAX_EXPLANATIONS) {
        let reasons: Vec<String> = e
            .reasons
            .iter()
            .map(|r| format!("<li>{}</li>", esc(r)))
            .collect();
        let _ = write!(
            out,
            "<tr data-track=\"{}\" data-action=\"{a}\"><td>{}</td><td>{}</td><td>{a}</td><td>{}</td><td><ul>{}</ul></td></tr>",
            esc(&e.track),
            position(e.to),
            position(e.from),
            esc(&e.title),
            reasons.concat(),
            a = action(e.action),
        );
    }
    out.push_str("</table>");
    if record.explanations.len() > MAX_EXPLANATIONS {
        let _ = write!(
            out,
            "<p>{} more tracks not shown (`tasks playlist explain {}` prints them all).</p>",
            record.explanations.len() - MAX_EXPLANATIONS,
            esc(&record.playlist)
        );
    }
    out.push_str("</section>");
    out
}

pub(crate) async fn index(State(d): State<Dashboard>) -> Result<Response, PageError> {
    let runs = newest(&d).await?;
    let mut body = format!(
        "<p id=\"runs-count\" data-count=\"{n}\">{n} runs, newest first (the newest {RUNS_PER_PLAYLIST} \
of each managed playlist, at most {MAX_RUNS}).</p>",
        n = runs.len()
    );
    for (i, run) in runs.iter().enumerate() {
        body.push_str(&run_section(i, run));
    }
    Ok(page("Playlist runs", &body).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use backbone::validate::PlaylistId;
    use chrono::{DateTime, Utc};
    use playlist_update::Status;
    use playlist_update::curate::Explanation;
    use playlist_update::rules::RuleFile;

    use super::*;
    use crate::dashboard::testing::{self, text};

    fn explanation(
        track: &str,
        action: Action,
        from: Option<usize>,
        to: Option<usize>,
    ) -> Explanation {
        Explanation {
            track: track.to_owned(),
            title: format!("<{track}> & friends"),
            action,
            from,
            to,
            sources: vec!["artist".to_owned()],
            reasons: vec![format!("{track}: energy 0.71 fits the arc")],
        }
    }

    fn record(
        playlist: &PlaylistId,
        status: Status,
        message: &str,
        explanations: Vec<Explanation>,
    ) -> serde_json::Value {
        serde_json::to_value(RunRecord {
            playlist: playlist.to_string(),
            date: "2026-11-30".parse().unwrap(),
            apply: true,
            status,
            message: message.to_owned(),
            target: vec![],
            ops: vec![],
            writes: 2,
            lower_bound: 2,
            score: None,
            initial_score: None,
            iterations: 10,
            relaxed: None,
            explanations,
            skips: vec![],
            candidates: 12,
            eligible: 9,
            with_features: 7,
            snapshot_before: "s1".to_owned(),
            snapshot_after: Some("s2".to_owned()),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn runs_are_newest_first_with_their_explanations() {
        let runtime = testing::runtime();
        let db = &runtime.db;
        let rules_text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("events/playlist-update/rules/demo.yaml"),
        )
        .unwrap();
        let rules = RuleFile::parse(&rules_text).unwrap();
        let playlist = rules.playlist.clone();
        let now: DateTime<Utc> = testing::NOW.parse().unwrap();
        state::save_rules(db, &rules_text, &rules, now)
            .await
            .unwrap();
        let older = record(
            &playlist,
            Status::DryRun,
            "dry run",
            vec![explanation("a", Action::Added, None, Some(0))],
        );
        let newer = record(
            &playlist,
            Status::Applied,
            "applied <2> writes",
            vec![
                explanation("a", Action::Kept, Some(0), Some(0)),
                explanation("b", Action::Added, None, Some(1)),
                explanation("c", Action::Dropped, Some(1), None),
            ],
        );
        state::save_run(db, &playlist, now - chrono::Duration::hours(2), &older)
            .await
            .unwrap();
        state::save_run(db, &playlist, now, &newer).await.unwrap();
        // An undecodable record is a note on the page, not a 500.
        state::save_run(
            db,
            &playlist,
            now - chrono::Duration::hours(5),
            &serde_json::json!({"playlist": 3}),
        )
        .await
        .unwrap();

        let app = testing::app(&runtime);
        let (status, body) = text(&app, "/").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.contains("data-count=\"playlist-runs\" data-value=\"3\"><a href=\"/playlists\">"),
            "{body}"
        );
        let (status, body) = text(&app, "/playlists").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.contains("id=\"runs-count\" data-count=\"3\""),
            "{body}"
        );
        let first = body.find("id=\"run-0\"").unwrap();
        let second = body.find("id=\"run-1\"").unwrap();
        assert!(
            body[first..second]
                .contains("data-status=\"applied\" data-added=\"1\" data-dropped=\"1\""),
            "{body}"
        );
        assert!(body[second..].contains("data-status=\"dry_run\""), "{body}");
        assert!(
            body.contains("id=\"run-2\"") && body.contains("data-status=\"undecodable\""),
            "{body}"
        );
        assert!(
            body.contains("<tr data-track=\"c\" data-action=\"dropped\"><td>-</td><td>2</td>"),
            "{body}"
        );
        assert!(
            body.contains("&lt;b&gt; &amp; friends") && !body.contains("<b> & friends"),
            "{body}"
        );
        assert!(body.contains("applied &lt;2&gt; writes"), "{body}");
        assert!(
            body.contains("<li>b: energy 0.71 fits the arc</li>"),
            "{body}"
        );
    }
}
