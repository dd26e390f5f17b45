//! social-media-sync and artist-monitoring together over simulated days, on the Spotify and
//! social sandboxes: the series are stored, trended and alerted on with the platform named.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backbone::clock::ManualClock;
use backbone::config::HarnessConfig;
use backbone::harness::metrics_for;
use backbone::local::{LocalDb, LocalRuntime};
use backbone::spotify::Tier;
use backbone::telemetry::Capture;
use chrono::{TimeZone, Utc};
use music_tasks::Local;
use music_tasks::days::{self, DEMO_ARTISTS};
use music_tasks::social::LocalSocial;
use music_tasks::spotify::{LocalSpotify, sandbox_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn social_series_are_trended_and_alerted_with_the_platform_named() {
    let db = LocalDb::in_memory().unwrap();
    let capture = Capture::new();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 6, 0, 0).unwrap(),
    ));
    let runtime = LocalRuntime::new(db, clock.clone(), Arc::new(capture.clone()));
    let metrics = metrics_for(
        &HarnessConfig::for_task("spotify"),
        "spotify",
        Arc::new(capture),
    );
    let spotify = LocalSpotify::sandbox_with(sandbox_config(Tier::Development), metrics)
        .await
        .unwrap();
    let roster: Vec<String> = spotify
        .sandbox
        .as_ref()
        .unwrap()
        .catalog()
        .artists
        .iter()
        .take(DEMO_ARTISTS)
        .map(|a| a.id.clone())
        .collect();
    // No SOCIAL_CONTACT: the social sandbox, from the recordings beside the project.
    let social = LocalSocial::from_env(&HashMap::<String, String>::new(), roster.clone())
        .await
        .unwrap();
    assert!(
        social.sandbox.is_some(),
        "shared/social/fixtures beside the project"
    );
    let local = Local {
        runtime,
        spotify,
        social: Some(social),
    };
    let mut functions = music_tasks::functions(&local);
    functions.retain(|f| matches!(f.name(), "social-media-sync" | "artist-monitoring"));
    assert_eq!(
        functions[0].name(),
        "social-media-sync",
        "the figures are stored before they are trended"
    );
    assert!(days::seed_demo_watchlist(&local).await.unwrap());
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let runs = days::simulate(
        &local,
        &clock,
        &functions,
        &events,
        0..23,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(
        runs.iter()
            .all(|r| r.errors.is_empty() && r.drain.dead_lettered == 0),
        "{runs:?}"
    );

    // The sandbox's second artist: Deezer fans surge on day 21.
    let start = local.spotify.sandbox.as_ref().unwrap().catalog().date(0);
    let day21 = start + chrono::Duration::days(21);
    let alerts = artist_monitoring::snapshots::alerts_on(&local.runtime.db, day21)
        .await
        .unwrap();
    let surge = alerts
        .iter()
        .find(|a| {
            a.artist.as_str() == roster[1]
                && a.kind == artist_monitoring::alerts::AlertKind::UnusualGrowth
        })
        .unwrap_or_else(|| panic!("{alerts:?}"));
    assert_eq!(surge.evidence["platform"], "deezer");
    assert_eq!(surge.evidence["metric"], "fans");

    // The report shows the graph and the series.
    let report = music_tasks::report::build(
        &local,
        &days::demo_name(),
        start,
        start + chrono::Duration::days(22),
        &["social-media-sync", "artist-monitoring"],
    )
    .await
    .unwrap();
    let line = |i: usize| {
        report
            .social
            .iter()
            .find(|l| l.artist == roster[i])
            .unwrap()
    };
    assert!(line(3).links.is_empty(), "no links anywhere");
    assert!(line(4).quarantined[0].starts_with("youtube: the sources disagree"));
    let subs = &line(0).series["youtube.subscribers"];
    assert_eq!(
        (subs.days, subs.precision),
        (
            23,
            backbone::series::Precision::SignificantFigures { figures: 3 }
        )
    );
    assert!(
        report.social_violations.is_empty(),
        "{:?}",
        report.social_violations
    );
    assert_eq!(
        report.social_calls["musicbrainz"],
        23 * 4,
        "graphs re-read on days 0, 7, 14 and 21"
    );
    let text = report.to_string();
    assert!(
        text.contains("identity graph and series (social-media-sync):"),
        "{text}"
    );
}
