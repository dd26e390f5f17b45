//! artist-monitoring and data-sync end to end: the real handlers on the embedded adapters, the
//! Spotify adapter over real HTTP to the sandbox, the schedules of `events/` over simulated
//! days. The expected alerts come from the sandbox's own truth (its scenario and follower
//! curves), never from the code under test.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use artist_monitoring::alerts::{AlertKind, AlertRules};
use backbone::clock::ManualClock;
use backbone::config::HarnessConfig;
use backbone::harness::metrics_for;
use backbone::local::{Invoke, LocalDb, LocalRuntime};
use backbone::spotify::Tier;
use backbone::telemetry::Capture;
use chrono::{NaiveDate, TimeZone, Utc};
use music_tasks::Local;
use music_tasks::days::{self, DEMO_ARTISTS};
use music_tasks::report::{self, Report};
use music_tasks::spotify::{LocalSpotify, sandbox_config};
use spotify_sandbox::{Faults, SandboxConfig, Scenario};

const DAYS: u32 = 30;

struct Run {
    local: Local,
    clock: Arc<ManualClock>,
    functions: Vec<Box<dyn Invoke>>,
    capture: Capture,
    _logs: tracing::subscriber::DefaultGuard,
}

impl Run {
    async fn start(config: SandboxConfig) -> Self {
        let db = LocalDb::in_memory().expect("in-memory database");
        let capture = Capture::new();
        // The test body runs the handlers on this thread: their logs land in the capture.
        let logs = backbone::telemetry::install_for_test(Arc::new(capture.clone()), "debug");
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 6, 0, 0).unwrap(),
        ));
        let runtime = LocalRuntime::new(db, clock.clone(), Arc::new(capture.clone()));
        let metrics = metrics_for(
            &HarnessConfig::for_task("spotify"),
            "spotify",
            Arc::new(capture.clone()),
        );
        let spotify = LocalSpotify::sandbox_with(config, metrics)
            .await
            .expect("sandbox starts");
        let local = Local {
            runtime,
            spotify,
            social: None,
        };
        let functions = music_tasks::functions(&local);
        assert!(days::seed_demo_watchlist(&local).await.unwrap());
        Self {
            local,
            clock,
            functions,
            capture,
            _logs: logs,
        }
    }

    fn only(mut self, name: &str) -> Self {
        self.functions.retain(|f| f.name() == name);
        self
    }

    async fn days(&self, days: std::ops::Range<u32>) -> Vec<days::DayRun> {
        days::simulate(
            &self.local,
            &self.clock,
            &self.functions,
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("events")
                .as_path(),
            days,
            Duration::from_secs(5),
        )
        .await
        .expect("the days run")
    }

    async fn report(&self, last_day: u32) -> Report {
        let sandbox = self.sandbox();
        let names: Vec<&str> = self.functions.iter().map(|f| f.name()).collect();
        report::build(
            &self.local,
            &days::demo_name(),
            sandbox.catalog().date(0),
            sandbox.catalog().date(last_day),
            &names,
        )
        .await
        .expect("report")
    }

    fn sandbox(&self) -> &spotify_sandbox::SandboxHandle {
        self.local
            .spotify
            .sandbox
            .as_ref()
            .expect("in-process sandbox")
    }
}

/// (kind, artist index, day) of every alert the sandbox's truth calls for over `0..days`.
fn expected_alerts(
    catalog: &spotify_sandbox::Catalog,
    tier: Tier,
    scenarios: &[Scenario],
    days: u32,
) -> BTreeSet<(AlertKind, usize, u32)> {
    let mut expected = BTreeSet::new();
    let removed_on = |a: usize| {
        scenarios.iter().find_map(|s| match s {
            Scenario::Removed { artist, day } if *artist == a => Some(*day),
            _ => None,
        })
    };
    for s in scenarios {
        match s {
            Scenario::Release { artist, day, .. } if *day > 0 && *day < days => {
                expected.insert((AlertKind::NewRelease, *artist, *day));
            }
            Scenario::Removed { artist, day } if *day < days => {
                expected.insert((AlertKind::ArtistGone, *artist, *day));
            }
            Scenario::FollowerSurge { artist, day, .. }
                if tier == Tier::Extended && *day < days && *day >= 15 =>
            {
                expected.insert((AlertKind::UnusualGrowth, *artist, *day));
            }
            _ => {}
        }
    }
    if tier == Tier::Extended {
        let milestones = AlertRules::default().milestones;
        for a in 0..DEMO_ARTISTS {
            for day in 1..days {
                if removed_on(a).is_some_and(|r| day >= r) {
                    continue;
                }
                let (before, now) = (catalog.followers(a, day - 1), catalog.followers(a, day));
                if milestones.iter().any(|m| before < *m && now >= *m) {
                    expected.insert((AlertKind::FollowerMilestone, a, day));
                }
            }
        }
    }
    expected
}

fn fired(run: &Run, report: &Report) -> BTreeSet<(AlertKind, usize, u32)> {
    let catalog = run.sandbox().catalog();
    report
        .alerts
        .iter()
        .map(|alert| {
            let a = catalog
                .artist_idx(alert.artist.as_str())
                .expect("alert about a catalog artist");
            let day = (alert.date - catalog.date(0)).num_days() as u32;
            (alert.kind, a, day)
        })
        .collect()
}

async fn exactly_the_expected_alerts(tier: Tier) {
    let run = Run::start(sandbox_config(tier)).await;
    let runs = run.days(0..DAYS).await;
    for day in &runs {
        assert!(day.errors.is_empty(), "{day:?}");
        assert_eq!(day.drain.pending, 0, "{day:?}");
    }
    let report = run.report(DAYS - 1).await;
    let expected = expected_alerts(run.sandbox().catalog(), tier, &Scenario::demo(), DAYS);
    assert!(
        expected.len() >= if tier == Tier::Extended { 4 } else { 2 },
        "the scenario must produce alerts: {expected:?}"
    );
    assert_eq!(fired(&run, &report), expected, "tier {tier:?}");
    // Every alert went out on the bus with its evidence, and is in the report.
    let published: Vec<_> = run
        .local
        .runtime
        .bus()
        .events()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.detail_type == "ArtistAlert")
        .collect();
    assert_eq!(published.len(), expected.len());
    assert!(
        published
            .iter()
            .all(|e| e.event.detail["alert"]["evidence"].is_object())
    );

    // Snapshots every day for every artist; the development tier says what it could not see.
    for line in &report.artists {
        assert_eq!(line.snapshots, DAYS as usize, "{line:?}");
        match tier {
            Tier::Development => {
                assert_eq!(line.followers, None);
                assert!(line.follower_trends.is_empty());
                if !line.gone {
                    assert!(
                        line.unavailable
                            .iter()
                            .any(|u| u.starts_with("followers: not returned to Development Mode")),
                        "{line:?}"
                    );
                }
            }
            Tier::Extended if !line.gone => {
                assert!(line.followers.is_some());
                assert_eq!(line.follower_trends.len(), 3, "1, 7 and 28 days: {line:?}");
            }
            Tier::Extended => {}
        }
    }
    // The catalog behind the watchlist is synced, the scenario's release included.
    assert!(report.catalog.new_albums > 0 && report.catalog.new_tracks > 0);
    assert!(
        report.dead_letters.values().all(Vec::is_empty),
        "{:?}",
        report.dead_letters
    );
    assert!(report.audit.iter().all(|r| r.is_intact()));

    // A rerun of any day adds nothing: same alerts, events, audit records.
    let events_before = run.local.runtime.bus().events().await.unwrap().len();
    let audit_before: u64 = report.audit.iter().map(|r| r.records).sum();
    for day in [0, 10, 16, 20, DAYS - 1] {
        let rerun = run.days(day..day + 1).await;
        assert!(rerun.iter().all(|r| r.errors.is_empty()), "{rerun:?}");
    }
    let again = run.report(DAYS - 1).await;
    assert_eq!(fired(&run, &again), expected);
    assert_eq!(
        run.local.runtime.bus().events().await.unwrap().len(),
        events_before
    );
    let audit_after: u64 = again.audit.iter().map(|r| r.records).sum();
    assert_eq!(
        audit_after, audit_before,
        "a replayed day writes no audit record"
    );
    // Logs and metrics were written, at debug level, and never hold a credential.
    let logs = run.capture.text();
    assert!(
        logs.contains("planned the day's snapshots"),
        "the capture sees the logs"
    );
    for secret in ["sandbox-client-secret", "sandbox-refresh-token"] {
        assert!(!logs.contains(secret), "{secret} reached the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_tier_raises_exactly_the_scenario_alerts_and_reruns_add_nothing() {
    exactly_the_expected_alerts(Tier::Development).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_tier_raises_exactly_the_expected_alerts_and_reruns_add_nothing() {
    exactly_the_expected_alerts(Tier::Extended).await;
}

/// Spotify calls of artist-monitoring alone over `days`, per route.
async fn monitoring_calls(tier: Tier, days: u32) -> (u64, u64, u64) {
    let run = Run::start(sandbox_config(tier))
        .await
        .only("artist-monitoring");
    run.days(0..days).await;
    let s = run.sandbox();
    (
        s.calls_to("GET /v1/artists"),
        s.calls_to("GET /v1/artists/{id}"),
        s.calls_to("GET /v1/artists/{id}/albums"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_calls_sit_at_the_floor_of_each_tier() {
    let days = 12;
    // Artist 8 is removed on day 20: all twelve are found every day of this run.
    let found = (DEMO_ARTISTS as u64) * u64::from(days);
    // Development: one single-artist call per artist and day, one page of releases each.
    assert_eq!(
        monitoring_calls(Tier::Development, days).await,
        (0, found, found)
    );
    // Extended: the twelve artists in one several-artists call a day.
    assert_eq!(
        monitoring_calls(Tier::Extended, days).await,
        (u64::from(days), 0, found)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_stays_correct_under_429_and_5xx() {
    let days = 12;
    let calm = Run::start(sandbox_config(Tier::Extended)).await;
    calm.days(0..days).await;
    let calm_report = calm.report(days - 1).await;

    let mut stormy = sandbox_config(Tier::Extended);
    stormy.faults = Faults {
        rate_limit_rate: 0.2,
        retry_after_secs: 0,
        server_error_rate: 0.1,
        ..Faults::default()
    };
    let run = Run::start(stormy).await;
    let runs = run.days(0..days).await;
    let report = run.report(days - 1).await;
    assert!(
        run.sandbox().api_calls() > calm.sandbox().api_calls(),
        "the faults were injected and cost extra calls"
    );
    assert!(runs.iter().all(|r| r.drain.pending == 0), "{runs:?}");
    assert_eq!(fired(&run, &report), fired(&calm, &calm_report));
    assert!(
        !fired(&run, &report).is_empty(),
        "the release on day 10 is seen"
    );
    for (a, b) in report.artists.iter().zip(&calm_report.artists) {
        assert_eq!(
            (a.snapshots, a.followers, a.releases),
            (b.snapshots, b.followers, b.releases)
        );
    }
    assert!(report.dead_letters.values().all(Vec::is_empty));
    assert_eq!(report.catalog.new_tracks, calm_report.catalog.new_tracks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_by_name_and_the_rest_of_the_batch_goes_on() {
    let run = Run::start(sandbox_config(Tier::Development)).await;
    let monitoring = run
        .functions
        .iter()
        .find(|f| f.name() == "artist-monitoring")
        .unwrap();
    let catalog = run.sandbox().catalog();
    let good = &catalog.artists[0].id;
    let unknown = "0000000000000000000000";
    let record = |id: &str, body: serde_json::Value| {
        serde_json::json!({
            "messageId": id, "receiptHandle": id, "body": body.to_string(),
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-west-1:1:q", "awsRegion": "eu-west-1",
        })
    };
    let event = serde_json::json!({ "Records": [
        record("ok", serde_json::json!({"step": "snapshot", "watchlist": "demo", "date": "2026-01-01", "artists": [good, unknown]})),
        record("unknown-list", serde_json::json!({"step": "plan", "watchlist": "nosuchlist", "date": "2026-01-01"})),
        record("bad-ref", serde_json::json!({"step": "snapshot", "watchlist": "demo", "date": "2026-01-01", "artists": ["spotify:album:4aawyAB9vmqN3uQ7FjRGTy"]})),
    ]});
    let report = monitoring.invoke(event).await.unwrap();
    let failures = report.response["batchItemFailures"].as_array().unwrap();
    assert!(
        failures.is_empty(),
        "refusals are dead-lettered, not retried: {failures:?}"
    );
    let letters = run
        .local
        .runtime
        .queues("artist-monitoring")
        .dead_letters()
        .await
        .unwrap();
    let reason = |id: &str| {
        letters
            .iter()
            .find(|l| l.message_id == id)
            .map(|l| l.reason.clone())
            .unwrap_or_default()
    };
    assert!(reason("unknown-list").contains("nosuchlist"), "{letters:?}");
    // serde cannot locate a field inside an internally tagged message: the reason names the
    // value and what it should have been instead.
    let bad_ref = reason("bad-ref");
    assert!(
        bad_ref.contains("expected a Spotify artist") && bad_ref.contains("names an album"),
        "{bad_ref}"
    );
    assert_eq!(letters.len(), 2, "{letters:?}");
    // The good message stored its snapshot; the id Spotify does not know is reported gone.
    let when = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let store = &run.local.runtime.db;
    let good_id = backbone::validate::ArtistId::parse("a", good).unwrap();
    let unknown_id = backbone::validate::ArtistId::parse("a", unknown).unwrap();
    let snaps = artist_monitoring::snapshots::history(store, &good_id, when, when)
        .await
        .unwrap();
    assert_eq!(snaps.len(), 1);
    let gone = artist_monitoring::snapshots::history(store, &unknown_id, when, when)
        .await
        .unwrap();
    assert!(gone[0].gone);
}

/// A clock that moves `step` forward every time it is read, so work runs into its deadline.
struct Ticking {
    now: std::sync::Mutex<chrono::DateTime<Utc>>,
    step: chrono::Duration,
}

impl backbone::clock::Clock for Ticking {
    fn now(&self) -> chrono::DateTime<Utc> {
        let mut now = self.now.lock().unwrap();
        *now += self.step;
        *now
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sync_checkpoints_near_the_deadline_and_resumes_without_skipping_or_repeating() {
    let db = LocalDb::in_memory().unwrap();
    let capture = Capture::new();
    let _logs = backbone::telemetry::install_for_test(Arc::new(capture.clone()), "info");
    // Every reading of the clock costs two simulated seconds: a 60-second local invocation
    // reaches the 30-second checkpoint margin after a few artists.
    let clock = Arc::new(Ticking {
        now: std::sync::Mutex::new(Utc.with_ymd_and_hms(2026, 1, 1, 6, 0, 0).unwrap()),
        step: chrono::Duration::seconds(2),
    });
    let runtime = LocalRuntime::new(db, clock.clone(), Arc::new(capture.clone()));
    let metrics = metrics_for(
        &HarnessConfig::for_task("spotify"),
        "spotify",
        Arc::new(capture.clone()),
    );
    let spotify = LocalSpotify::sandbox_with(sandbox_config(Tier::Development), metrics)
        .await
        .unwrap();
    let local = Local {
        runtime,
        spotify,
        social: None,
    };
    days::seed_demo_watchlist(&local).await.unwrap();
    let functions = music_tasks::functions(&local);
    let sync = functions.iter().find(|f| f.name() == "data-sync").unwrap();
    let plan = serde_json::json!({"step": "plan", "watchlist": "demo", "date": "2026-01-01"});
    sync.invoke(plan).await.unwrap();
    let drain = sync.drain(Duration::from_secs(5)).await.unwrap();
    assert_eq!(drain.pending, 0);
    assert!(
        drain.completed >= 2,
        "the artists message continued in at least one more message: {drain:?}"
    );

    // Every artist's albums were announced exactly once, and all of them.
    let catalog = local.spotify.sandbox.as_ref().unwrap().catalog();
    let mut announced = std::collections::BTreeMap::<String, usize>::new();
    for stored in local.runtime.bus().events().await.unwrap() {
        let detail = &stored.event.detail;
        if detail["scope"] == "artist" {
            *announced
                .entry(detail["id"].as_str().unwrap().to_owned())
                .or_default() += detail["newAlbums"].as_array().unwrap().len();
        }
    }
    let truth: std::collections::BTreeMap<String, usize> = (0..DEMO_ARTISTS)
        .map(|a| (catalog.artists[a].id.clone(), catalog.albums_on(a, 0).len()))
        .collect();
    assert_eq!(announced, truth);
    let continued = capture
        .json()
        .iter()
        .filter(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.contains("continuing in a new message"))
        })
        .count();
    assert!(continued >= 1, "a checkpoint was logged");
}
