//! social-media-sync against the social sandbox over real HTTP on loopback, on the SQLite
//! store, through the harness: identity, figures, faults, quota, pacing and bad input.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backbone::SecretString;
use backbone::clock::SystemClock;
use backbone::config::HarnessConfig;
use backbone::error::PortError;
use backbone::local::{Invoke, LocalDb, LocalRuntime};
use backbone::ports::Secrets;
use backbone::series::Precision;
use backbone::telemetry::Capture;
use backbone::validate::ArtistId;
use backbone::web::HttpWeb;
use chrono::NaiveDate;
use serde_json::{Value, json};
use social_media_sync::identity::ManualLink;
use social_media_sync::pacing::TokioSleeper;
use social_media_sync::platform::Platform;
use social_media_sync::{Settings, SocialMediaSync, records};
use social_sandbox::{SocialSandbox, SocialSandboxConfig};

struct MemSecrets(Option<String>);

#[async_trait]
impl Secrets for MemSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, PortError> {
        self.0
            .clone()
            .map(SecretString::from)
            .ok_or_else(|| PortError::permanent("secrets.get", format!("no secret {name}")))
    }
    async fn put(&self, _: &str, _: &SecretString) -> Result<(), PortError> {
        Ok(())
    }
}

fn roster() -> Vec<String> {
    // Twelve valid Spotify ids (22 base-62 characters): every sandbox profile, 0 to 2 twice.
    (0..12)
        .map(|i| format!("{i:0>2}SandboxArtistAbcdefg"))
        .collect()
}

struct Env {
    sandbox: SocialSandbox,
    db: LocalDb,
    function: Box<dyn Invoke>,
}

/// Pacing short enough for tests, the sandbox enforcing the same spacing.
const MB_INTERVAL: Duration = Duration::from_millis(60);

async fn setup(with_credentials: bool, settings: impl FnOnce(&mut Settings)) -> Env {
    let fixtures = social_sandbox::find_fixtures(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .expect("shared/social/fixtures beside the project");
    let mut config = SocialSandboxConfig::new(roster(), fixtures);
    config.musicbrainz_interval = MB_INTERVAL;
    let sandbox = SocialSandbox::spawn(config).await.unwrap();
    let db = LocalDb::in_memory().unwrap();
    let function = harness(&sandbox, &db, with_credentials, settings);
    Env {
        sandbox,
        db,
        function,
    }
}

fn harness(
    sandbox: &SocialSandbox,
    db: &LocalDb,
    with_credentials: bool,
    settings: impl FnOnce(&mut Settings),
) -> Box<dyn Invoke> {
    harness_with_timeout(
        sandbox,
        db,
        with_credentials,
        settings,
        Duration::from_secs(5),
    )
}

fn harness_with_timeout(
    sandbox: &SocialSandbox,
    db: &LocalDb,
    with_credentials: bool,
    settings: impl FnOnce(&mut Settings),
    timeout: Duration,
) -> Box<dyn Invoke> {
    let web = HttpWeb::new(
        "music-tasks-test/1 ( tests@example.org )",
        timeout,
        sandbox.base_urls(),
    )
    .unwrap();
    let mut s = Settings {
        credentials_secret: Some("social/credentials".into()),
        musicbrainz_interval: MB_INTERVAL,
        deezer_interval: Duration::from_millis(5),
        ..Settings::default()
    };
    settings(&mut s);
    let task = SocialMediaSync {
        web: Arc::new(web),
        store: Arc::new(db.clone()),
        secrets: Arc::new(MemSecrets(
            with_credentials.then(|| sandbox.credentials_json()),
        )),
        events: Arc::new(backbone::local::LocalBus::new(db.clone())),
        clock: Arc::new(SystemClock),
        sleeper: Arc::new(TokioSleeper),
        settings: s,
    };
    let runtime = LocalRuntime::new(db.clone(), Arc::new(SystemClock), Arc::new(Capture::new()));
    Box::new(runtime.harness(task, HarnessConfig::for_task("social-media-sync")))
}

async fn sync(env: &Env, date: &str, artists: &[String]) -> Value {
    let report = env
        .function
        .invoke(json!({"step": "sync", "watchlist": "demo", "date": date, "artists": artists}))
        .await
        .unwrap();
    assert_eq!(
        report.response["status"], "completed",
        "{}",
        report.response
    );
    report.response["output"].clone()
}

fn artist(out: &Value, i: usize) -> &Value {
    &out["artists"][i]
}

fn platforms(a: &Value) -> Vec<String> {
    a["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["platform"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_batch_of_twelve_covers_every_identity_and_figure_case() {
    let env = setup(true, |_| {}).await;
    let ids = roster();
    let out = sync(&env, "2026-12-01", &ids).await;

    // Profile 0: both sources agree; TikTok through the connected account.
    let a0 = artist(&out, 0);
    assert_eq!(
        platforms(a0),
        [
            "musicbrainz",
            "wikidata",
            "youtube",
            "lastfm",
            "deezer",
            "instagram",
            "tiktok"
        ]
    );
    let yt = a0["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["platform"] == "youtube")
        .unwrap();
    assert_eq!(yt["confidence"], 0.95);
    assert_eq!(yt["provenance"].as_array().unwrap().len(), 2);
    for p in ["youtube", "lastfm", "deezer", "instagram", "tiktok"] {
        assert_eq!(
            a0["platforms"][p]["outcome"], "stored",
            "{p}: {}",
            a0["platforms"][p]
        );
    }
    // Profile 3: no links anywhere: an empty graph, nothing pulled, nothing stored.
    let a3 = artist(&out, 3);
    assert!(
        a3["links"].as_array().unwrap().is_empty()
            && a3["quarantined"].as_array().unwrap().is_empty()
    );
    assert_eq!(
        (
            a3["points"].as_u64(),
            a3["platforms"].as_object().unwrap().len()
        ),
        (Some(0), 0)
    );
    // Profile 4: two YouTube channels: quarantined with both candidates, not pulled.
    let a4 = artist(&out, 4);
    assert_eq!(a4["quarantined"][0]["platform"], "youtube");
    assert_eq!(
        a4["quarantined"][0]["candidates"].as_array().unwrap().len(),
        2
    );
    assert!(a4["platforms"].get("youtube").is_none());
    // Profile 5: removed channel; Deezer's "no data" with HTTP 200 is an error, not figures.
    let a5 = artist(&out, 5);
    assert_eq!(a5["platforms"]["youtube"]["outcome"], "account_gone");
    assert_eq!(a5["platforms"]["deezer"]["outcome"], "account_gone");
    assert!(
        a5["platforms"]["deezer"]["detail"]
            .as_str()
            .unwrap()
            .contains("800")
    );
    assert_eq!(
        a5["platforms"]["lastfm"]["outcome"], "stored",
        "the rest of the artist is kept"
    );
    // Profile 6: a handle resolved to the stable channel id, kept in the graph.
    let a6 = artist(&out, 6);
    let yt6 = a6["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["platform"] == "youtube")
        .unwrap();
    assert!(yt6["account"].as_str().unwrap().starts_with('@'));
    assert!(yt6["stable_id"].as_str().unwrap().starts_with("UC"));
    assert_eq!(a6["platforms"]["youtube"]["outcome"], "stored");
    // Profile 7: redirect followed, wrong-type statement skipped, hidden count absent,
    // counts with separators read.
    let a7 = artist(&out, 7);
    let notes = a7["notes"].to_string();
    assert!(notes.contains("redirects to"), "{notes}");
    assert!(
        notes.contains("P2722[0]: expected a string value"),
        "{notes}"
    );
    assert_eq!(
        a7["platforms"]["youtube"]["absent"][0]["metric"],
        "subscribers"
    );
    assert_eq!(a7["platforms"]["lastfm"]["outcome"], "stored");
    // Profile 8: an MBID Wikidata does not list: quarantined, and what came only through it.
    let a8 = artist(&out, 8);
    let q8: Vec<&str> = a8["quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["platform"].as_str().unwrap())
        .collect();
    assert_eq!(q8, ["musicbrainz"]);
    assert!(
        platforms(a8).contains(&"youtube".to_owned()),
        "YouTube is confirmed by Wikidata too"
    );

    // The series: hidden counts absent (never 0), YouTube precision recorded.
    let a7id: ArtistId = ids[7].parse().unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let s7 = backbone::series::load(&env.db, &a7id, day, day)
        .await
        .unwrap();
    assert!(!s7.contains_key(&("youtube".into(), "subscribers".into())));
    let lastfm = &s7[&("lastfm".into(), "listeners".into())][0];
    assert!(lastfm.value > 1_000, "{lastfm:?}");
    let a0id: ArtistId = ids[0].parse().unwrap();
    let s0 = backbone::series::load(&env.db, &a0id, day, day)
        .await
        .unwrap();
    let subs = &s0[&("youtube".into(), "subscribers".into())][0];
    assert_eq!(subs.precision, Precision::SignificantFigures { figures: 3 });
    assert_eq!(
        s0[&("deezer".into(), "fans".into())][0].precision,
        Precision::Exact
    );

    // Requests: MusicBrainz 1 lookup + 1 artist per linked artist, Wikidata 2 per item, YouTube
    // one handle and one batch for all; the published limits were never broken.
    let calls = env.sandbox.calls();
    assert_eq!(calls["musicbrainz"], 11 * 2 + 1, "{calls:?}");
    assert_eq!(calls["youtube"], 2);
    assert_eq!(out["youtube_units_today"], 2);
    assert_eq!(out["requests"]["youtube"], 2);
    assert!(
        env.sandbox.violations().is_empty(),
        "{:?}",
        env.sandbox.violations()
    );

    // Each quarantine is reported on the bus once, when the graph is resolved.
    let events = backbone::local::LocalBus::new(env.db.clone())
        .events()
        .await
        .unwrap();
    let quarantined: Vec<&str> = events
        .iter()
        .filter(|e| e.event.detail_type == "SocialLinkQuarantined")
        .map(|e| e.event.detail["artist"].as_str().unwrap())
        .collect();
    assert_eq!(quarantined, [ids[4].as_str(), ids[8].as_str()]);
}

#[tokio::test]
async fn the_next_days_reuse_the_graph_and_report_a_renamed_handle() {
    let env = setup(true, |_| {}).await;
    let ids = roster();
    sync(&env, "2026-12-01", &ids).await;
    env.sandbox.reset_calls();
    env.sandbox.set_day(3);
    let out = sync(&env, "2026-12-04", &ids).await;
    let calls = env.sandbox.calls();
    assert!(
        !calls.contains_key("musicbrainz") && !calls.contains_key("wikidata"),
        "{calls:?}"
    );
    // One batch call: the handle's channel id was kept from day 1.
    assert_eq!(calls["youtube"], 1);
    let a6 = artist(&out, 6);
    assert!(
        a6["platforms"]["youtube"]["renamed_to"]
            .as_str()
            .unwrap()
            .ends_with("-official")
    );
    assert_eq!(a6["platforms"]["instagram"]["outcome"], "account_gone");
    assert!(
        a6["platforms"]["instagram"]["detail"]
            .as_str()
            .unwrap()
            .contains("Invalid user id")
    );
}

#[tokio::test]
async fn faults_are_retried_or_reported_and_the_batch_is_kept() {
    let env = setup(true, |_| {}).await;
    let ids = roster();
    // One load-shedding 503 from MusicBrainz: waited out and retried.
    env.sandbox.rate_limit_next("musicbrainz", 1);
    // Deezer down for longer than the retries.
    env.sandbox.fail_next("deezer", 3);
    // Last.fm's rate limit, in a 200 body: paused and tried again.
    env.sandbox.rate_limit_next("lastfm", 1);
    let out = sync(&env, "2026-12-01", &ids[..2]).await;
    assert_eq!(
        platforms(artist(&out, 0)).len(),
        7,
        "MusicBrainz answered after the retry"
    );
    assert_eq!(artist(&out, 0)["platforms"]["deezer"]["outcome"], "failed");
    assert_eq!(artist(&out, 1)["platforms"]["deezer"]["outcome"], "stored");
    assert_eq!(artist(&out, 0)["platforms"]["lastfm"]["outcome"], "stored");
    assert_eq!(
        env.sandbox.calls()["lastfm"],
        3,
        "one more call for the rate-limited one"
    );
    assert_eq!(artist(&out, 0)["platforms"]["youtube"]["outcome"], "stored");
}

#[tokio::test]
async fn platforms_without_credentials_are_skipped_and_reported() {
    let env = setup(false, |s| s.credentials_secret = None).await;
    let out = sync(&env, "2026-12-01", &roster()[..1]).await;
    let a = artist(&out, 0);
    for (p, missing) in [
        ("youtube", "youtube_api_key"),
        ("lastfm", "lastfm_api_key"),
        ("tiktok", "tiktok_tokens for this artist"),
    ] {
        assert_eq!(a["platforms"][p]["outcome"], "no_credentials");
        assert_eq!(a["platforms"][p]["missing"], missing);
    }
    // Deezer's public API needs none.
    assert_eq!(a["platforms"]["deezer"]["outcome"], "stored");
}

#[tokio::test]
async fn the_youtube_quota_is_never_exceeded() {
    let env = setup(true, |s| s.youtube_daily_quota = 1).await;
    let ids = roster();
    let out = sync(&env, "2026-12-01", &ids).await;
    // The handle resolution took the only unit; the batch was not sent.
    assert_eq!(
        artist(&out, 0)["platforms"]["youtube"]["outcome"],
        "quota_exhausted"
    );
    assert_eq!(out["youtube_units_today"], 1);
    assert_eq!(env.sandbox.calls()["youtube"], 1);
    let again = sync(&env, "2026-12-01", &ids[..1]).await;
    assert_eq!(
        artist(&again, 0)["platforms"]["youtube"]["outcome"],
        "quota_exhausted"
    );
    assert_eq!(env.sandbox.calls()["youtube"], 1);
}

#[tokio::test]
async fn a_manual_link_wins_over_disagreeing_sources() {
    let env = setup(true, |_| {}).await;
    let ids = roster();
    let a4: ArtistId = ids[4].parse().unwrap();
    let persona = env.sandbox.personas()[4].clone();
    let chosen = persona.yt_wd.clone().unwrap();
    records::set_manual_link(
        &env.db,
        &a4,
        &ManualLink {
            platform: Platform::YouTube,
            account: chosen.clone(),
            entered_at: chrono::Utc::now(),
            by: "test".into(),
        },
    )
    .await
    .unwrap();
    let out = sync(&env, "2026-12-01", &ids[4..5]).await;
    let a = artist(&out, 0);
    assert!(a["quarantined"].as_array().unwrap().is_empty(), "{a}");
    let yt = a["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["platform"] == "youtube")
        .unwrap();
    assert_eq!(
        (
            yt["account"].as_str(),
            yt["status"].as_str(),
            yt["confidence"].as_f64()
        ),
        (Some(chosen.as_str()), Some("manual"), Some(1.0))
    );
    assert_eq!(a["platforms"]["youtube"]["outcome"], "stored");
    assert!(a["notes"].to_string().contains("manual link"));
}

#[tokio::test]
async fn two_invocations_share_the_musicbrainz_pace() {
    let env = setup(true, |_| {}).await;
    let ids = roster();
    // A second function instance on the same store: another "process" of the deployment.
    let other = harness(&env.sandbox, &env.db, true, |_| {});
    let (a, b) = tokio::join!(
        env.function.invoke(
            json!({"step": "sync", "watchlist": "demo", "date": "2026-12-01", "artists": ids[..6]})
        ),
        other.invoke(
            json!({"step": "sync", "watchlist": "demo", "date": "2026-12-01", "artists": ids[6..]})
        ),
    );
    assert_eq!(a.unwrap().response["status"], "completed");
    assert_eq!(b.unwrap().response["status"], "completed");
    assert_eq!(env.sandbox.calls()["musicbrainz"], 23);
    assert!(
        env.sandbox.violations().is_empty(),
        "{:?}",
        env.sandbox.violations()
    );
}

#[tokio::test]
async fn invalid_input_is_rejected_with_the_reason() {
    let env = setup(true, |_| {}).await;
    for (input, needle) in [
        (
            json!({"step": "sync", "watchlist": "demo", "date": "2026-12-01", "artists": []}),
            "1 to 50 items",
        ),
        (
            json!({"step": "sync", "watchlist": "demo", "date": "2026-13-01", "artists": ["00SandboxArtistAbcdefg"]}),
            "date",
        ),
        (
            json!({"step": "sync", "watchlist": "demo", "date": "2026-12-01", "artists": ["not-an-id"]}),
            "22 base-62 characters",
        ),
        (json!({"step": "resync", "watchlist": "demo"}), "step"),
    ] {
        let report = env.function.invoke(input.clone()).await.unwrap();
        assert_eq!(report.response["status"], "rejected", "{input}");
        assert!(
            report.response["reason"].to_string().contains(needle),
            "{input}: {}",
            report.response
        );
    }
    // Rejected before any work: no platform was asked.
    assert!(env.sandbox.calls().is_empty(), "{:?}", env.sandbox.calls());
}

#[tokio::test]
async fn slow_answers_and_long_retry_afters_fail_the_platform_not_the_batch() {
    let env = setup(true, |_| {}).await;
    let ids = roster();
    // Identity first, on a healthy sandbox.
    sync(&env, "2026-12-01", &ids[..2]).await;
    // Then every answer slower than the client waits.
    env.sandbox.set_faults(social_sandbox::Faults {
        slow_rate: 1.0,
        slow_ms: 400,
        ..social_sandbox::Faults::default()
    });
    let impatient = harness_with_timeout(
        &env.sandbox,
        &env.db,
        true,
        |_| {},
        Duration::from_millis(100),
    );
    let report = impatient
        .invoke(
            json!({"step": "sync", "watchlist": "demo", "date": "2026-12-02", "artists": ids[..2]}),
        )
        .await
        .unwrap();
    assert_eq!(
        report.response["status"], "completed",
        "{}",
        report.response
    );
    let out = &report.response["output"];
    for p in ["youtube", "lastfm", "deezer", "instagram"] {
        assert_eq!(
            out["artists"][0]["platforms"][p]["outcome"], "failed",
            "{p}"
        );
        assert!(
            out["artists"][0]["platforms"][p]["error"]
                .as_str()
                .unwrap()
                .contains("unavailable")
        );
    }
    // A rate limit asking for more than the invocation may wait is not waited out.
    env.sandbox.set_faults(social_sandbox::Faults {
        rate_limit_rate: 1.0,
        retry_after_secs: 3600,
        ..social_sandbox::Faults::default()
    });
    let out = sync(&env, "2026-12-03", &ids[..1]).await;
    // TikTok answers 429 with Retry-After: not waited out, reported.
    let tt = &artist(&out, 0)["platforms"]["tiktok"];
    assert_eq!(tt["outcome"], "failed");
    assert!(
        tt["error"].as_str().unwrap().contains("retry after 3600s"),
        "{tt}"
    );
    // YouTube's rate limit is a 403 with its reason.
    let yt = &artist(&out, 0)["platforms"]["youtube"];
    assert!(
        yt["error"].as_str().unwrap().contains("rateLimitExceeded"),
        "{yt}"
    );
    // Deezer's quota error comes with HTTP 200: an error, not figures.
    let dz = &artist(&out, 0)["platforms"]["deezer"];
    assert_eq!(dz["outcome"], "failed");
    assert!(
        dz["error"]
            .as_str()
            .unwrap()
            .contains("Quota limit exceeded"),
        "{dz}"
    );
    let day = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
    let a0: ArtistId = ids[0].parse().unwrap();
    assert!(
        backbone::series::load(&env.db, &a0, day, day)
            .await
            .unwrap()
            .is_empty(),
        "nothing stored as 0"
    );
}

#[tokio::test]
async fn the_sandbox_catches_a_client_that_does_not_pace_musicbrainz() {
    // What the pacing tests rely on: unpaced requests are counted as violations.
    let env = setup(true, |_| {}).await;
    let web = HttpWeb::new(
        "music-tasks-test/1 ( tests@example.org )",
        Duration::from_secs(5),
        env.sandbox.base_urls(),
    )
    .unwrap();
    for _ in 0..8 {
        let request = backbone::ports::WebRequest::get("musicbrainz", "/ws/2/artist/unknown")
            .query("fmt", "json");
        backbone::ports::WebApi::get(&web, &request).await.unwrap();
    }
    assert!(
        env.sandbox.violations()["musicbrainz"] >= 3,
        "{:?}",
        env.sandbox.violations()
    );
}
