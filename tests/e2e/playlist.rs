//! playlist-update end to end: the real handler on the embedded adapters, the Spotify adapter
//! over real HTTP to the sandbox, over simulated days: the playlist evolves as releases
//! appear, an unchanged day writes nothing, a human edit on day 5 is detected, and the bad
//! inputs (a playlist the user does not own, a deleted one, unmet rules) are refused by name.

use std::collections::HashSet;
use std::sync::Arc;

use backbone::clock::{Clock, ManualClock};
use backbone::config::HarnessConfig;
use backbone::harness::metrics_for;
use backbone::local::{Invoke, LocalDb, LocalRuntime};
use backbone::ports::{ItemKey, PutCondition, Store};
use backbone::spotify::{SpotifyConnect, SpotifyPlaylists};
use backbone::telemetry::Capture;
use backbone::validate::{PlaylistId, TrackId};
use chrono::{TimeZone, Utc};
use music_tasks::Local;
use music_tasks::days;
use music_tasks::spotify::{LocalSpotify, sandbox_config};
use playlist_update::rules::RuleFile;
use playlist_update::state;
use serde_json::{Value, json};
use spotify_sandbox::Scenario;

/// The managed playlist: one of the sandbox user's own.
const MANAGED: &str = "O1oLYhHc76ZH3F9qm5thw7";
/// A playlist owned by `spotify`, not the user.
const NOT_OWNED: &str = "HITN1T2gk1jWjf44jNdXMQ";

const RULES: &str = "\
version: 1
playlist: O1oLYhHc76ZH3F9qm5thw7
name: e2e
sources:
  - watchlist_releases: demo
filters:
  exclude_titles: [remix, live]
constraints:
  length:
    tracks: 15
  max_per_artist: 3
  min_artist_gap: 1
objectives:
  transitions: 1.0
  rotation: {weight: 3.0, new: 0.4, power: 0.0, recurrent: 0.0, gold: 0.6}
seed: 5
";

struct Run {
    local: Local,
    clock: Arc<ManualClock>,
    function: Box<dyn Invoke>,
    _logs: tracing::subscriber::DefaultGuard,
}

const WRITE_ROUTES: [&str; 3] = [
    "POST /v1/playlists/{id}/items",
    "DELETE /v1/playlists/{id}/items",
    "PUT /v1/playlists/{id}/items",
];

impl Run {
    async fn start() -> Self {
        let db = LocalDb::in_memory().expect("in-memory database");
        let capture = Capture::new();
        let logs = backbone::telemetry::install_for_test(Arc::new(capture.clone()), "info");
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 7, 0, 0).unwrap(),
        ));
        let runtime = LocalRuntime::new(db, clock.clone(), Arc::new(capture.clone()));
        let metrics = metrics_for(
            &HarnessConfig::for_task("spotify"),
            "spotify",
            Arc::new(capture.clone()),
        );
        let mut config = sandbox_config(backbone::spotify::Tier::Development);
        // Releases of demo-watchlist artists on days 2 and 6, beside the demo scenario.
        config.scenarios.push(Scenario::Release {
            artist: 4,
            day: 2,
            tracks: 4,
        });
        config.scenarios.push(Scenario::Release {
            artist: 7,
            day: 6,
            tracks: 3,
        });
        let spotify = LocalSpotify::sandbox_with(config, metrics)
            .await
            .expect("sandbox starts");
        let local = Local {
            runtime,
            spotify,
            social: None,
        };
        assert!(days::seed_demo_watchlist(&local).await.unwrap());
        let function = music_tasks::functions(&local)
            .into_iter()
            .find(|f| f.name() == "playlist-update")
            .expect("playlist-update is registered");
        Self {
            local,
            clock,
            function,
            _logs: logs,
        }
    }

    fn sandbox(&self) -> &spotify_sandbox::SandboxHandle {
        self.local.spotify.sandbox.as_ref().expect("sandbox")
    }

    fn day(&self, day: u32) {
        let date = self.sandbox().catalog().date(day);
        self.clock
            .set(days::schedule_time(date) + chrono::Duration::hours(1));
        self.sandbox().set_day(day);
    }

    fn writes(&self) -> u64 {
        WRITE_ROUTES
            .iter()
            .map(|r| self.sandbox().calls_to(r))
            .sum()
    }

    async fn store_rules(&self, text: &str) {
        let rules = RuleFile::parse(text).expect("valid rules");
        state::save_rules(&self.local.runtime.db, text, &rules, self.clock.now())
            .await
            .unwrap();
    }

    async fn update(&self, playlist: &str, apply: bool, day: u32, rebase: bool) -> Value {
        let date = self.sandbox().catalog().date(day);
        let report = self
            .function
            .invoke(json!({
                "step": "update", "playlist": playlist, "apply": apply, "date": date,
                "rebase": rebase, "request": uuid::Uuid::new_v4().to_string(),
            }))
            .await
            .expect("the invocation completes");
        report.response
    }

    async fn live(&self) -> Vec<String> {
        let api = self
            .local
            .spotify
            .client
            .open(std::time::Duration::from_secs(30));
        let id = PlaylistId::parse("p", MANAGED).unwrap();
        playlist_update::sources::playlist_items(&api, &id, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, t)| t.unwrap().id.as_str().to_owned())
            .collect()
    }
}

fn output(response: &Value) -> &Value {
    assert_eq!(response["status"], "completed", "{response}");
    &response["output"]
}

/// Synthetic analyses, stored as track-analysis stores them, for the demo artists' tracks:
/// the solver then works on real tempo/key/energy values.
async fn store_features(run: &Run) {
    let catalog = run.sandbox().catalog();
    for (n, track) in catalog.tracks.iter().enumerate().take(400) {
        let key = format!("{}{}", 1 + n % 12, if n % 3 == 0 { 'B' } else { 'A' });
        let doc = json!({"source": "track-analysis", "features": {
            "tempo": {"bpm": 90.0 + (n * 7 % 60) as f64},
            "key": {"camelot": key},
            "derived": {"energy": (n * 13 % 100) as f64 / 100.0}}});
        run.local
            .runtime
            .db
            .put(
                &ItemKey::new(format!("track#spotify:{}", track.id), "analysis#v1"),
                &doc,
                PutCondition::Always,
                None,
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_playlist_evolves_with_releases_an_unchanged_day_writes_nothing_and_a_human_edit_is_caught()
 {
    let run = Run::start().await;
    store_features(&run).await;
    run.store_rules(RULES).await;
    let before = run.live().await;

    // Day 0, dry run: a plan and its explanations, no write.
    run.day(0);
    let dry = run.update(MANAGED, false, 0, false).await;
    let out = output(&dry);
    assert_eq!(out["status"], "dry_run", "{out}");
    assert!(out["plannedWrites"].as_u64().unwrap() > 0);
    assert_eq!(run.writes(), 0);
    assert_eq!(run.live().await, before);
    let record = state::latest_run(
        &run.local.runtime.db,
        &PlaylistId::parse("p", MANAGED).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let explanations = record["explanations"].as_array().unwrap();
    // Every target track and every dropped live track is explained.
    let distinct_before: HashSet<&String> = before.iter().collect();
    let dropped = explanations
        .iter()
        .filter(|e| e["action"] == "dropped")
        .count();
    assert_eq!(explanations.len() - dropped, 15);
    assert!(dropped >= distinct_before.len().saturating_sub(15));
    assert!(
        explanations
            .iter()
            .all(|e| !e["reasons"].as_array().unwrap().is_empty())
    );

    // Day 0, applied: the playlist becomes the target, within the bound of write calls.
    let applied = run.update(MANAGED, true, 0, false).await;
    let out = output(&applied).clone();
    assert_eq!(out["status"], "applied", "{out}");
    let day0 = run.live().await;
    assert_eq!(day0.len(), 15);
    assert_eq!(run.writes(), out["writes"].as_u64().unwrap());
    assert!(
        out["writes"].as_u64().unwrap() <= out["lowerBound"].as_u64().unwrap() + 2,
        "{out}"
    );

    // Day 1: nothing changed, so not one write call.
    run.day(1);
    let writes = run.writes();
    let same = run.update(MANAGED, true, 1, false).await;
    assert_eq!(output(&same)["status"], "unchanged", "{same}");
    assert_eq!(run.writes(), writes, "an unchanged day wrote");
    assert_eq!(run.live().await, day0);

    // Day 2: artist 4 releases four tracks; the rotation wants new music: they come in.
    run.day(2);
    let new_tracks: HashSet<String> = run
        .sandbox()
        .catalog()
        .tracks
        .iter()
        .rev()
        .take(7)
        .map(|t| t.id.clone())
        .collect();
    let evolved = run.update(MANAGED, true, 2, false).await;
    assert_eq!(output(&evolved)["status"], "applied", "{evolved}");
    let day2 = run.live().await;
    assert_eq!(day2.len(), 15);
    assert!(
        day2.iter().any(|t| new_tracks.contains(t)),
        "no track of the day-2 release was added"
    );
    // The write calls were no more than the diff needs, and the snapshot chain held.
    let kept = day0.iter().filter(|t| day2.contains(t)).count();
    assert!(kept > 0, "the whole playlist was replaced");

    // Day 5: a person adds a track by hand; the run stops and writes nothing.
    run.day(5);
    let api = run
        .local
        .spotify
        .client
        .open(std::time::Duration::from_secs(30));
    let managed = PlaylistId::parse("p", MANAGED).unwrap();
    let extra = TrackId::parse("t", &run.sandbox().catalog().tracks[900].id).unwrap();
    api.add_items(&managed, std::slice::from_ref(&extra), Some(0))
        .await
        .unwrap();
    let writes = run.writes();
    let stopped = run.update(MANAGED, true, 5, false).await;
    let out = output(&stopped);
    assert_eq!(out["status"], "stopped_human_edit", "{out}");
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("edited since the last run")
    );
    assert_eq!(run.writes(), writes, "a human edit was overwritten");
    assert_eq!(run.live().await[0], extra.as_str());

    // Re-based, the run goes on; with keep_as_pinned the person's track would stay.
    run.store_rules(&RULES.replace("seed: 5", "seed: 5\non_human_edit: keep_as_pinned"))
        .await;
    api.add_items(
        &managed,
        &[TrackId::parse("t", &run.sandbox().catalog().tracks[901].id).unwrap()],
        Some(3),
    )
    .await
    .unwrap();
    let kept_edit = run.update(MANAGED, true, 5, false).await;
    assert_eq!(output(&kept_edit)["status"], "applied", "{kept_edit}");
    let day5 = run.live().await;
    assert_eq!(day5.len(), 15);
    assert_eq!(
        day5[3],
        run.sandbox().catalog().tracks[901].id,
        "the person's addition moved"
    );

    // Day 6: another release; the day after, nothing changes: zero writes again.
    run.day(6);
    let evolved = run.update(MANAGED, true, 6, false).await;
    assert!(matches!(
        output(&evolved)["status"].as_str(),
        Some("applied" | "unchanged")
    ));
    run.day(7);
    let writes = run.writes();
    let same = run.update(MANAGED, true, 7, false).await;
    assert_eq!(output(&same)["status"], "unchanged", "{same}");
    assert_eq!(run.writes(), writes);

    // Every applied run is audited and announced.
    let events = run.local.runtime.bus().events().await.unwrap();
    let updated: Vec<_> = events
        .iter()
        .map(|e| &e.event)
        .filter(|e| e.detail_type == "PlaylistUpdated")
        .collect();
    assert!(
        updated.len() >= 3,
        "{} PlaylistUpdated events",
        updated.len()
    );
    let schema: Value =
        serde_json::from_str(include_str!("../../schemas/playlist-updated.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for e in &updated {
        assert!(validator.is_valid(&e.detail), "{}", e.detail);
    }
    let audit = music_tasks::verify_audit(&run.local.runtime, Some("playlist-update"))
        .await
        .unwrap();
    assert!(audit.iter().all(|r| r.is_intact()));
}

#[tokio::test(flavor = "current_thread")]
async fn bad_playlists_and_unmet_rules_are_refused_by_name_without_a_write() {
    let run = Run::start().await;
    run.day(0);
    // Not the user's playlist: 403 before any write.
    run.store_rules(&RULES.replace(MANAGED, NOT_OWNED)).await;
    let refused = run.update(NOT_OWNED, true, 0, false).await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["reason"].as_str().unwrap().contains("403"),
        "{refused}"
    );
    // A deleted (unknown) playlist: 404.
    let gone = "0000000000000000000042";
    run.store_rules(&RULES.replace(MANAGED, gone)).await;
    let missing = run.update(gone, true, 0, false).await;
    assert_eq!(missing["status"], "failed", "{missing}");
    assert!(
        missing["reason"].as_str().unwrap().contains("404"),
        "{missing}"
    );
    // Rules that cannot be met: which constraint, and why.
    run.store_rules(
        &RULES
            .replace("max_per_artist: 3", "max_per_artist: 1")
            .replace("tracks: 15", "tracks: 40"),
    )
    .await;
    let unmet = run.update(MANAGED, true, 0, false).await;
    assert_eq!(unmet["status"], "rejected", "{unmet}");
    assert!(
        unmet["reason"]
            .as_str()
            .unwrap()
            .contains("constraints.max_per_artist"),
        "{unmet}"
    );
    // No rules at all.
    let none = run.update("x0NWYb8HgY37rgSq7PwLpm", true, 0, false).await;
    assert_eq!(none["status"], "rejected", "{none}");
    assert!(
        none["reason"]
            .as_str()
            .unwrap()
            .contains("no rules are stored"),
        "{none}"
    );
    assert_eq!(run.writes(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_markets_filter_drops_the_tracks_not_licensed_there_and_says_so() {
    let run = Run::start().await;
    store_features(&run).await;
    run.day(0);
    // The sandbox lists every seventh track (index 3 modulo 7) in DE, FR and SE only.
    let catalog = run.sandbox().catalog();
    let unlicensed: HashSet<String> = catalog
        .tracks
        .iter()
        .enumerate()
        .filter(|(i, _)| !spotify_sandbox::Catalog::track_markets(*i).contains(&"GB"))
        .map(|(_, t)| t.id.clone())
        .collect();
    assert!(!unlicensed.is_empty() && unlicensed.len() < catalog.tracks.len());
    let x = catalog.tracks[3].id.clone();
    assert!(unlicensed.contains(&x));
    // Also offered by an explicit list, so it is a candidate whatever the releases are.
    let offered = RULES.replace("sources:\n", &format!("sources:\n  - tracks: [{x}]\n"));

    // Without the filter, and with the track pinned, it is in the playlist.
    run.store_rules(&offered.replace(
        "constraints:\n",
        &format!("constraints:\n  pinned:\n    - track: {x}\n      position: 1\n"),
    ))
    .await;
    let open = output(&run.update(MANAGED, true, 0, false).await).clone();
    assert_eq!(open["status"], "applied", "{open}");
    assert_eq!(run.live().await[0], x);
    let managed = PlaylistId::parse("p", MANAGED).unwrap();
    let open = state::latest_run(&run.local.runtime.db, &managed)
        .await
        .unwrap()
        .unwrap();

    // With `markets: [GB, DE]` (and no pin), the filter drops it and every other track not
    // licensed in GB, and says why.
    run.store_rules(&offered.replace("filters:\n", "filters:\n  markets: [GB, DE]\n"))
        .await;
    let gb = output(&run.update(MANAGED, true, 0, false).await).clone();
    assert_eq!(gb["status"], "applied", "{gb}");
    let record = state::latest_run(&run.local.runtime.db, &managed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(open["candidates"], record["candidates"], "the same offer");
    assert!(
        record["eligible"].as_u64().unwrap() < open["eligible"].as_u64().unwrap(),
        "the filter dropped nothing: {record}"
    );
    let live = run.live().await;
    assert_eq!(live.len(), 15);
    assert!(
        live.iter().all(|t| !unlicensed.contains(t)),
        "a track not licensed in GB is in the playlist"
    );
    let why = record["explanations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["track"].as_str().is_some_and(|t| t.ends_with(x.as_str())))
        .unwrap_or_else(|| panic!("{x} is not explained: {record}"));
    assert_eq!(why["action"], "dropped", "{why}");
    assert!(
        why["reasons"]
            .to_string()
            .contains("filters.markets: not available in GB"),
        "{why}"
    );

    // A code that is not a market is refused by name and line.
    let err =
        RuleFile::parse(&RULES.replace("filters:\n", "filters:\n  markets: [GB, Deutschland]\n"))
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("filters.markets[1]") && err.starts_with("line 7:"),
        "{err}"
    );
}
