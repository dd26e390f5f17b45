//! The real functions under the total-queue checker: the same duplicates, faults and racing
//! consumers as the test task of [`crate::reliability`], with effects read back from each
//! function's own rollups. A function joins by implementing [`Workload`] for its task.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use backbone::clock::{Clock, ManualClock};
use backbone::config::HarnessConfig;
use backbone::harness::Task;
use backbone::local::faults::{FaultPlan, Faulty};
use backbone::local::{LocalDb, LocalFunction, LocalRuntime};
use backbone::telemetry::Capture;
use backbone::validate::SpotifyId;
use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::json;
use streaming_metrics::StreamingMetrics;
use streaming_metrics::model::{Metric, Source, Subject};
use streaming_metrics::rollups;

use crate::checker::{self, Verdict, Workload, audit_records};

const DAY: (i32, u32, u32) = (2026, 11, 20);

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(DAY.0, DAY.1, DAY.2).expect("a real day")
}

/// Business key `i`'s recording: a distinct valid ISRC.
fn isrc(i: usize) -> String {
    format!("QZRLB26{i:05}")
}

/// Business key `i`'s artist: one track each, so the artist's day is the track's.
fn artist(i: usize) -> String {
    format!("sm{i:020}")
}

/// streaming-metrics: key `i` is one observation of `i + 100` streams, sent verbatim twice
/// and once with the ISRC hyphenated and the fields in another order; poison observations
/// name impossible ISRCs.
struct Observations;

#[async_trait]
impl Workload for Observations {
    type Task = StreamingMetrics;

    fn bodies(&self, i: usize) -> Vec<String> {
        let value = (i + 100) as i64;
        let plain = json!({ "observations": [{
            "subject": isrc(i), "territory": "SE", "date": day(), "metric": "streams",
            "value": value, "source": "api", "artist": artist(i)
        }]})
        .to_string();
        let i_ = isrc(i);
        let hyphenated = format!("{}-{}-{}-{}", &i_[..2], &i_[2..5], &i_[5..7], &i_[7..]);
        let respelled = json!({ "observations": [{
            "artist": artist(i), "source": "api", "value": value, "metric": "streams",
            "date": day(), "territory": "SE", "subject": hyphenated
        }]})
        .to_string();
        vec![plain.clone(), plain, respelled]
    }

    fn poison(&self) -> Vec<String> {
        (0..4)
            .map(|i| {
                json!({ "observations": [{
                    "subject": format!("not-an-isrc-{i}"), "territory": "SE", "date": day(),
                    "metric": "streams", "value": 1, "source": "api"
                }]})
                .to_string()
            })
            .collect()
    }

    fn subject(&self, i: usize) -> String {
        format!("isrc:{}", isrc(i))
    }

    fn owns(&self, i: usize, body: &str) -> bool {
        body.contains(&artist(i))
    }

    async fn effects(&self, db: &LocalDb, i: usize) -> u64 {
        let subject = Subject::parse(&isrc(i)).expect("a valid ISRC");
        let source = Source::parse("api").expect("a valid source");
        let artist = SpotifyId::new(&artist(i)).expect("a valid artist id");
        let track = rollups::track_days(db, &subject, &source, Metric::Streams, day(), day())
            .await
            .expect("track rollup");
        let artist = rollups::artist_days(db, &artist, &source, Metric::Streams, day(), day())
            .await
            .expect("artist rollup");
        let expected = (i + 100) as i64;
        let total = |days: &[rollups::DayTotal]| days.iter().map(|d| d.value).sum::<i64>();
        match (total(&track), total(&artist)) {
            (0, 0) => 0,
            (t, a) if t == expected && a == expected => 1,
            // A partial effect (the track without its artist rollup) or a double one.
            (t, a) => (t.max(a) / expected).max(2) as u64,
        }
    }
}

/// streaming-metrics on the embedded adapters with faults on a share of every port call
/// (harness ports, and the task's store), and a second consumer racing on its queue.
///
/// The task's store fails on `store_fault_rate` of its calls: a message makes about twenty
/// (track item, memberships, artist and week rollups, detector state, rules, cooldowns), so
/// at the harness's 25 % a run would almost never complete within its 25 receipts (measured:
/// 22 of 40 keys end in the DLQ with their effect whole); at 10 % all 40 complete, after
/// hundreds of injected faults.
async fn run_streaming(
    keys: usize,
    idempotency: bool,
    fault_rate: f64,
    store_fault_rate: f64,
) -> Verdict {
    let db = LocalDb::in_memory().expect("in-memory database");
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
    ));
    let mut runtime = LocalRuntime::new(db.clone(), clock.clone(), Arc::new(Capture::new()));
    runtime.max_receive_count = 25;
    let harness_faults = FaultPlan::new(fault_rate, 31);
    let store_faults = FaultPlan::new(store_fault_rate, 32);
    // A lost acknowledgement of an applied write is the store's own problem (and rollups are
    // idempotent per row key anyway); the faults here fail before the write.
    store_faults.set_lost_acks(false);
    runtime.faults = Some(harness_faults.clone());
    let mut config = HarnessConfig::for_task(StreamingMetrics::NAME);
    config.idempotency_disabled = !idempotency;
    let objects = Arc::new(backbone::local::local_objects().expect("local objects"));
    let consumer = |store_faults: &Arc<FaultPlan>| -> LocalFunction<StreamingMetrics> {
        let store = Arc::new(Faulty::new(Arc::new(db.clone()), store_faults.clone()));
        runtime.harness(
            StreamingMetrics::new(store, Arc::new(runtime.bus()), objects.clone()),
            config.clone(),
        )
    };
    let first = consumer(&store_faults);
    let second = consumer(&store_faults);
    let mut verdict = checker::run(
        &Observations,
        keys,
        &[&first, &second],
        &runtime.queues(StreamingMetrics::NAME),
        &clock,
        &db,
    )
    .await;
    verdict.faults_injected = harness_faults.total() + store_faults.total();
    verdict
}

#[tokio::test]
async fn streaming_metrics_has_one_effect_per_observation_under_duplicates_and_faults() {
    let verdict = run_streaming(40, true, 0.25, 0.10).await;
    eprintln!("reliability (streaming-metrics): {}", json!(verdict));
    assert!(verdict.faults_injected > 50, "{verdict:?}");
    assert!(verdict.duplicates_injected >= 80, "{verdict:?}");
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict:?}"
    );
    assert_eq!(
        verdict.effected + verdict.dead_lettered + verdict.effected_then_dead_lettered,
        40,
        "{verdict:?}"
    );
    assert!(verdict.effected >= 20, "most keys complete: {verdict:?}");
}

/// The control: with idempotency off the rollups stay right (they are keyed by row), but each
/// duplicate runs again and writes its own completion: the checker sees it.
#[tokio::test]
async fn streaming_metrics_without_idempotency_shows_duplicated_completions() {
    let verdict = run_streaming(20, false, 0.0, 0.0).await;
    assert_eq!(verdict.lost, 0, "{verdict:?}");
    assert_eq!(verdict.duplicated, 20, "{verdict:?}");
}

// ---------------------------------------------------------------------------------------------
// The Spotify functions: artist-monitoring and data-sync, over real HTTP to the Spotify
// sandbox, which answers a share of calls 429 or 503 (the Spotify edge's faults), beside the
// fault layer on the harness's ports and the task's store.

/// The watchlist the Spotify workloads' artists are on.
const RELIABILITY_WATCHLIST: &str = "reliability";
/// The day the sandbox and the clock start on (the sandbox's day 0).
const SPOTIFY_DAY: &str = "2026-01-01";

/// Faults at the Spotify edge: 429s (with a `Retry-After` of 0, retried by the adapter or
/// handed back to the queue), 503s and slow answers.
fn spotify_edge_faults(rate: f64) -> spotify_sandbox::Faults {
    spotify_sandbox::Faults {
        rate_limit_rate: rate * 0.6,
        retry_after_secs: 0,
        server_error_rate: rate * 0.4,
        slow_rate: rate * 0.2,
        slow_ms: 5,
        ..spotify_sandbox::Faults::default()
    }
}

/// What a Spotify workload runs on: an in-memory database, the sandbox (its truth read
/// directly, never through the adapter under test) and the fault plans.
struct SpotifyRig {
    db: LocalDb,
    clock: Arc<ManualClock>,
    runtime: LocalRuntime,
    spotify: music_tasks::spotify::LocalSpotify,
    harness_faults: Arc<FaultPlan>,
    store_faults: Arc<FaultPlan>,
}

impl SpotifyRig {
    async fn start(keys: usize, fault_rate: f64, store_fault_rate: f64, seed: u64) -> Self {
        let db = LocalDb::in_memory().expect("in-memory database");
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 6, 0, 0).unwrap(),
        ));
        let capture = Capture::new();
        let mut runtime = LocalRuntime::new(db.clone(), clock.clone(), Arc::new(capture.clone()));
        runtime.max_receive_count = 25;
        let harness_faults = FaultPlan::new(fault_rate, seed);
        let store_faults = FaultPlan::new(store_fault_rate, seed + 1);
        runtime.faults = Some(harness_faults.clone());
        let config = spotify_sandbox::SandboxConfig {
            artists: keys.max(12) + 8,
            seed,
            faults: spotify_edge_faults(fault_rate),
            ..spotify_sandbox::SandboxConfig::default()
        };
        let metrics = backbone::harness::metrics_for(
            &HarnessConfig::for_task("spotify"),
            "spotify",
            Arc::new(capture),
        );
        let spotify = music_tasks::spotify::LocalSpotify::sandbox_with(config, metrics)
            .await
            .expect("the sandbox starts");
        let rig = Self {
            db,
            clock,
            runtime,
            spotify,
            harness_faults,
            store_faults,
        };
        // The watchlist is set up before the run, on the database itself (no faults).
        let artists: Vec<backbone::validate::ArtistId> = (0..keys)
            .map(|i| backbone::validate::ArtistId::parse("artist", &rig.artist(i)).unwrap())
            .collect();
        backbone::watchlist::add(
            &rig.db,
            &backbone::watchlist::WatchlistName::new(RELIABILITY_WATCHLIST).unwrap(),
            &artists,
        )
        .await
        .expect("the watchlist is stored");
        rig
    }

    fn sandbox(&self) -> &spotify_sandbox::SandboxHandle {
        self.spotify.sandbox.as_ref().expect("in-process sandbox")
    }

    /// Business key `i`'s artist: the sandbox's `i`th.
    fn artist(&self, i: usize) -> String {
        self.sandbox().catalog().artists[i].id.clone()
    }

    /// The task's store, through the store's fault plan.
    fn store(&self) -> Arc<dyn backbone::ports::Store> {
        Arc::new(Faulty::new(
            Arc::new(self.db.clone()),
            self.store_faults.clone(),
        ))
    }

    /// Runs `workload` with two racing consumers of `build`'s task.
    async fn run<W: Workload>(
        &self,
        workload: &W,
        keys: usize,
        idempotency: bool,
        build: impl Fn(&Self) -> W::Task,
    ) -> Verdict {
        let mut config = HarnessConfig::for_task(<W::Task as Task>::NAME);
        config.idempotency_disabled = !idempotency;
        let first = self.runtime.harness(build(self), config.clone());
        let second = self.runtime.harness(build(self), config);
        let mut verdict = checker::run(
            workload,
            keys,
            &[&first, &second],
            &self.runtime.queues(<W::Task as Task>::NAME),
            &self.clock,
            &self.db,
        )
        .await;
        verdict.faults_injected = self.harness_faults.total()
            + self.store_faults.total()
            + self.sandbox().faults_injected();
        verdict
    }
}

/// The items of partition `pk` whose sort key starts with `prefix`, read on the database.
async fn items(db: &LocalDb, pk: &str, prefix: &str) -> Vec<backbone::ports::Item> {
    backbone::ports::store::query_all(
        db,
        backbone::ports::Query::partition(pk).prefix(prefix),
        10_000,
    )
    .await
    .expect("the database answers")
}

/// The three spellings of an artist-list message: verbatim twice (new message ids), and
/// with the fields reordered and the artist as a `spotify:` URI.
fn artist_bodies(plain: serde_json::Value, respelled: serde_json::Value) -> Vec<String> {
    vec![plain.to_string(), plain.to_string(), respelled.to_string()]
}

/// artist-monitoring: key `i` snapshots the sandbox's artist `i` for the day; the effect is
/// the stored snapshot of that artist and day, with the sandbox's name for it.
struct Snapshots {
    artists: Vec<(String, String)>,
}

#[async_trait]
impl Workload for Snapshots {
    type Task = artist_monitoring::ArtistMonitoring<backbone::spotify::SpotifyClient>;

    fn bodies(&self, i: usize) -> Vec<String> {
        let id = &self.artists[i].0;
        artist_bodies(
            json!({ "step": "snapshot", "watchlist": RELIABILITY_WATCHLIST, "date": SPOTIFY_DAY, "artists": [id] }),
            json!({ "artists": [format!("spotify:artist:{id}")], "date": SPOTIFY_DAY, "watchlist": RELIABILITY_WATCHLIST, "step": "snapshot" }),
        )
    }

    fn poison(&self) -> Vec<String> {
        (0..4)
            .map(|i| {
                json!({ "step": "snapshot", "watchlist": RELIABILITY_WATCHLIST, "date": SPOTIFY_DAY, "artists": [format!("bad-{i}")] })
                    .to_string()
            })
            .collect()
    }

    fn subject(&self, i: usize) -> String {
        format!("watchlist#{RELIABILITY_WATCHLIST}/{}+0", self.artists[i].0)
    }

    fn owns(&self, i: usize, body: &str) -> bool {
        body.contains(&self.artists[i].0)
    }

    async fn effects(&self, db: &LocalDb, i: usize) -> u64 {
        let (id, name) = &self.artists[i];
        let snapshots = items(db, &format!("artist#{id}"), "snapshot#").await;
        match snapshots.as_slice() {
            [] => 0,
            [one]
                if one.key.sk == format!("snapshot#{SPOTIFY_DAY}")
                    && one.data["name"].as_str() == Some(name.as_str()) =>
            {
                1
            }
            // Another day, another name, or more than one snapshot: not the one effect.
            _ => 2,
        }
    }
}

/// data-sync: key `i` syncs the catalog of the sandbox's artist `i`; the effect is the
/// artist's albums stored, each once, exactly the sandbox's albums of the artist (fewer is a
/// partial effect), each with its track list.
struct Catalogs {
    /// (artist id, its album ids in the sandbox).
    artists: Vec<(String, Vec<String>)>,
}

#[async_trait]
impl Workload for Catalogs {
    type Task = data_sync::DataSync<backbone::spotify::SpotifyClient>;

    fn bodies(&self, i: usize) -> Vec<String> {
        let id = &self.artists[i].0;
        artist_bodies(
            json!({ "step": "artists", "artists": [id] }),
            json!({ "continuation": 0, "artists": [format!("https://open.spotify.com/artist/{id}?si=x")], "step": "artists" }),
        )
    }

    fn poison(&self) -> Vec<String> {
        (0..4)
            .map(|i| json!({ "step": "artists", "artists": [format!("bad-{i}")] }).to_string())
            .collect()
    }

    fn subject(&self, i: usize) -> String {
        format!("artists#{}", self.artists[i].0)
    }

    fn owns(&self, i: usize, body: &str) -> bool {
        body.contains(&self.artists[i].0)
    }

    async fn effects(&self, db: &LocalDb, i: usize) -> u64 {
        let (id, albums) = &self.artists[i];
        let stored = items(db, &format!("artist#{id}"), "album#").await;
        if stored.is_empty() {
            return 0;
        }
        let mut ids: Vec<String> = stored
            .iter()
            .filter_map(|item| item.key.sk.strip_prefix("album#").map(str::to_owned))
            .collect();
        ids.sort();
        let mut expected = albums.clone();
        expected.sort();
        let mut whole = ids == expected;
        for album in albums {
            // Each album's track list is stored beside it (before it, in the task's order).
            whole &= !items(db, &format!("album#{album}"), "").await.is_empty();
        }
        if whole { 1 } else { 2 }
    }
}

impl SpotifyRig {
    /// The artist-monitoring workload over the first `keys` artists of the sandbox.
    fn snapshots(&self, keys: usize) -> Snapshots {
        let catalog = self.sandbox().catalog();
        Snapshots {
            artists: (0..keys)
                .map(|i| {
                    (
                        catalog.artists[i].id.clone(),
                        catalog.artists[i].name.clone(),
                    )
                })
                .collect(),
        }
    }

    /// The data-sync workload over the first `keys` artists, with their albums on day 0.
    fn catalogs(&self, keys: usize) -> Catalogs {
        let catalog = self.sandbox().catalog();
        Catalogs {
            artists: (0..keys)
                .map(|i| {
                    let albums = catalog
                        .albums_on(i, 0)
                        .into_iter()
                        .map(|b| catalog.albums[b].id.clone())
                        .collect();
                    (catalog.artists[i].id.clone(), albums)
                })
                .collect(),
        }
    }

    fn monitoring(&self) -> artist_monitoring::ArtistMonitoring<backbone::spotify::SpotifyClient> {
        artist_monitoring::ArtistMonitoring {
            spotify: self.spotify.client.clone(),
            store: self.store(),
            events: Arc::new(self.runtime.bus()),
        }
    }

    fn data_sync(&self) -> data_sync::DataSync<backbone::spotify::SpotifyClient> {
        data_sync::DataSync {
            spotify: self.spotify.client.clone(),
            store: self.store(),
            events: Arc::new(self.runtime.bus()),
        }
    }
}

/// The Spotify workloads' runs at `fault_rate` on the harness's ports and the Spotify edge,
/// and `store_fault_rate` on the task's store.
async fn run_monitoring(
    keys: usize,
    idempotency: bool,
    fault_rate: f64,
    store_fault_rate: f64,
) -> Verdict {
    let rig = SpotifyRig::start(keys, fault_rate, store_fault_rate, 41).await;
    rig.run(
        &rig.snapshots(keys),
        keys,
        idempotency,
        SpotifyRig::monitoring,
    )
    .await
}

async fn run_data_sync(
    keys: usize,
    idempotency: bool,
    fault_rate: f64,
    store_fault_rate: f64,
) -> Verdict {
    let rig = SpotifyRig::start(keys, fault_rate, store_fault_rate, 43).await;
    rig.run(
        &rig.catalogs(keys),
        keys,
        idempotency,
        SpotifyRig::data_sync,
    )
    .await
}

/// The verdict every faulty run must reach: faults and duplicates injected, nothing lost,
/// duplicated or unexpected, every key accounted for, most of them completed.
fn assert_exactly_once(name: &str, verdict: &Verdict, keys: usize) {
    eprintln!("reliability ({name}): {}", json!(verdict));
    assert!(verdict.faults_injected > 50, "{name}: {verdict:?}");
    assert!(
        verdict.duplicates_injected >= 2 * keys,
        "{name}: {verdict:?}"
    );
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{name}: {verdict:?}"
    );
    assert_eq!(
        verdict.effected + verdict.dead_lettered + verdict.effected_then_dead_lettered,
        keys,
        "{name}: {verdict:?}"
    );
    assert!(
        verdict.effected * 2 >= keys,
        "{name}: most keys complete: {verdict:?}"
    );
}

/// The control every function must fail: with idempotency off, every key shows duplicates.
fn assert_control_sees_duplicates(name: &str, verdict: &Verdict, keys: usize) {
    eprintln!("reliability control ({name}): {}", json!(verdict));
    assert_eq!(verdict.lost, 0, "{name}: {verdict:?}");
    assert_eq!(verdict.duplicated, keys, "{name}: {verdict:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artist_monitoring_has_one_snapshot_per_artist_under_duplicates_and_faults() {
    let verdict = run_monitoring(20, true, 0.25, 0.10).await;
    assert_exactly_once("artist-monitoring", &verdict, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artist_monitoring_without_idempotency_shows_duplicates() {
    let verdict = run_monitoring(10, false, 0.0, 0.0).await;
    assert_control_sees_duplicates("artist-monitoring", &verdict, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sync_has_one_catalog_per_artist_under_duplicates_and_faults() {
    let verdict = run_data_sync(20, true, 0.25, 0.10).await;
    assert_exactly_once("data-sync", &verdict, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sync_without_idempotency_shows_duplicates() {
    let verdict = run_data_sync(10, false, 0.0, 0.0).await;
    assert_control_sees_duplicates("data-sync", &verdict, 10);
}

// ---------------------------------------------------------------------------------------------
// ai-content-generation: drafts from stored facts, written by the deterministic template
// writer (not the local model: the run stays fast) behind the fault layer's text port.

/// Business key `i`'s artist for the content workload.
fn content_artist(i: usize) -> String {
    format!("ct{i:020}")
}

/// ai-content-generation: key `i` asks for a short English bio of artist `i`; the effect is
/// the draft stored for the artist (its index row and the draft itself), once.
struct Drafts;

#[async_trait]
impl Workload for Drafts {
    type Task = ai_content_generation::ContentGeneration;

    fn bodies(&self, i: usize) -> Vec<String> {
        let id = content_artist(i);
        artist_bodies(
            json!({ "action": "draft", "artist": id, "kind": "bio_short", "language": "en" }),
            json!({ "language": "en", "kind": "bio_short", "artist": format!("spotify:artist:{id}"), "action": "draft" }),
        )
    }

    fn poison(&self) -> Vec<String> {
        (0..4)
            .map(|i| json!({ "action": "draft", "artist": format!("bad-{i}"), "kind": "bio_short", "language": "en" }).to_string())
            .collect()
    }

    fn subject(&self, i: usize) -> String {
        format!("artist#{}", content_artist(i))
    }

    fn owns(&self, i: usize, body: &str) -> bool {
        body.contains(&content_artist(i))
    }

    async fn effects(&self, db: &LocalDb, i: usize) -> u64 {
        let index = items(db, &format!("artist#{}", content_artist(i)), "draft#").await;
        let mut whole = 0;
        for row in &index {
            let id = row.key.sk.trim_start_matches("draft#");
            let draft = items(db, &format!("draft#{id}"), "draft").await;
            whole += u64::from(draft.len() == 1);
        }
        match (index.len(), whole) {
            (0, _) => 0,
            (1, 1) => 1,
            // Two drafts for one request, or an index row without its draft.
            (n, _) => n.max(2) as u64,
        }
    }
}

/// The facts a draft is grounded in: the day's snapshot of each artist, stored as
/// artist-monitoring stores it.
async fn seed_content_facts(db: &LocalDb, keys: usize, day: NaiveDate) {
    use backbone::ports::{ItemKey, PutCondition, Store};
    for i in 0..keys {
        let artist = content_artist(i);
        db.put(
            &ItemKey::new(format!("artist#{artist}"), format!("snapshot#{day}")),
            &json!({ "artist": artist, "date": day, "name": format!("Artist {i}"),
                     "followers": 10_000 + i as u64, "popularity": 40, "genres": ["indie pop"],
                     "releases": [], "unavailable": [] }),
            PutCondition::Always,
            None,
        )
        .await
        .expect("the facts are stored");
    }
}

/// ai-content-generation on the embedded adapters, faults on the harness's ports, the store
/// and the text port.
struct ContentRig {
    db: LocalDb,
    clock: Arc<ManualClock>,
    runtime: LocalRuntime,
    harness_faults: Arc<FaultPlan>,
    store_faults: Arc<FaultPlan>,
    text_faults: Arc<FaultPlan>,
}

impl ContentRig {
    async fn start(keys: usize, fault_rate: f64, store_fault_rate: f64) -> Self {
        let db = LocalDb::in_memory().expect("in-memory database");
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        seed_content_facts(&db, keys, start.date_naive()).await;
        let mut runtime = LocalRuntime::new(db.clone(), clock.clone(), Arc::new(Capture::new()));
        runtime.max_receive_count = 25;
        let harness_faults = FaultPlan::new(fault_rate, 51);
        runtime.faults = Some(harness_faults.clone());
        Self {
            db,
            clock,
            runtime,
            harness_faults,
            store_faults: FaultPlan::new(store_fault_rate, 52),
            text_faults: FaultPlan::new(fault_rate, 53),
        }
    }

    fn consumer(
        &self,
        idempotency: bool,
    ) -> LocalFunction<ai_content_generation::ContentGeneration> {
        let mut config = HarnessConfig::for_task(ai_content_generation::ContentGeneration::NAME);
        config.idempotency_disabled = !idempotency;
        self.runtime.harness(
            ai_content_generation::ContentGeneration {
                store: Arc::new(Faulty::new(
                    Arc::new(self.db.clone()),
                    self.store_faults.clone(),
                )),
                events: Arc::new(self.runtime.bus()),
                generator: Arc::new(Faulty::new(
                    Arc::new(ai_content_generation::writer::TemplateWriter),
                    self.text_faults.clone(),
                )),
                attempts: ai_content_generation::DEFAULT_ATTEMPTS,
            },
            config,
        )
    }

    fn queues(&self) -> backbone::local::LocalQueues {
        self.runtime
            .queues(ai_content_generation::ContentGeneration::NAME)
    }
}

async fn run_content(
    keys: usize,
    idempotency: bool,
    fault_rate: f64,
    store_fault_rate: f64,
) -> Verdict {
    let rig = ContentRig::start(keys, fault_rate, store_fault_rate).await;
    let (first, second) = (rig.consumer(idempotency), rig.consumer(idempotency));
    let mut verdict = checker::run(
        &Drafts,
        keys,
        &[&first, &second],
        &rig.queues(),
        &rig.clock,
        &rig.db,
    )
    .await;
    verdict.faults_injected =
        rig.harness_faults.total() + rig.store_faults.total() + rig.text_faults.total();
    verdict
}

/// The kill verdict every function must reach: one effect before the kill, still one after
/// the redelivery, one completion.
fn assert_killed_once(name: &str, verdict: checker::KillVerdict) {
    eprintln!("reliability kill ({name}): {}", json!(verdict));
    assert_eq!(
        (
            verdict.effects_after_kill,
            verdict.effects_after_redelivery,
            verdict.completions
        ),
        (1, 1, 1),
        "{name}: {verdict:?}"
    );
}

#[tokio::test]
async fn ai_content_generation_killed_between_draft_and_completion_drafts_once() {
    let rig = ContentRig::start(1, 0.0, 0.0).await;
    let consumer = rig.consumer(true);
    let verdict = checker::kill_between_effect_and_completion(
        &Drafts,
        &consumer,
        &rig.harness_faults,
        &rig.queues(),
        &rig.clock,
        &rig.db,
    )
    .await;
    assert_killed_once("ai-content-generation", verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artist_monitoring_killed_between_snapshot_and_completion_snapshots_once() {
    let rig = SpotifyRig::start(1, 0.0, 0.0, 41).await;
    let workload = rig.snapshots(1);
    let consumer = rig.runtime.harness(
        rig.monitoring(),
        HarnessConfig::for_task("artist-monitoring"),
    );
    let verdict = checker::kill_between_effect_and_completion(
        &workload,
        &consumer,
        &rig.harness_faults,
        &rig.runtime.queues("artist-monitoring"),
        &rig.clock,
        &rig.db,
    )
    .await;
    assert_killed_once("artist-monitoring", verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_sync_killed_between_catalog_and_completion_syncs_once() {
    let rig = SpotifyRig::start(1, 0.0, 0.0, 43).await;
    let workload = rig.catalogs(1);
    let consumer = rig
        .runtime
        .harness(rig.data_sync(), HarnessConfig::for_task("data-sync"));
    let verdict = checker::kill_between_effect_and_completion(
        &workload,
        &consumer,
        &rig.harness_faults,
        &rig.runtime.queues("data-sync"),
        &rig.clock,
        &rig.db,
    )
    .await;
    assert_killed_once("data-sync", verdict);
}

#[tokio::test]
async fn ai_content_generation_has_one_draft_per_request_under_duplicates_and_faults() {
    let verdict = run_content(30, true, 0.25, 0.10).await;
    assert_exactly_once("ai-content-generation", &verdict, 30);
}

#[tokio::test]
async fn ai_content_generation_without_idempotency_shows_duplicates() {
    let verdict = run_content(10, false, 0.0, 0.0).await;
    assert_control_sees_duplicates("ai-content-generation", &verdict, 10);
}

// ---------------------------------------------------------------------------------------------
// social-media-sync: the artists' open-data identity graph and platform figures, over real
// HTTP to the social sandbox, its upstream port behind the fault layer (transport errors,
// timeouts and 429s).

/// Business key `i`'s artist for the social workload (on the social sandbox's roster).
fn social_artist(i: usize) -> String {
    format!("so{i:020}")
}

/// The social workload's message for artist `i`: plain, and respelled (fields reordered, the
/// artist as a `spotify:` URI).
fn social_bodies(i: usize) -> Vec<String> {
    let id = social_artist(i);
    artist_bodies(
        json!({ "step": "sync", "watchlist": RELIABILITY_WATCHLIST, "date": SPOTIFY_DAY, "artists": [id] }),
        json!({ "artists": [format!("spotify:artist:{id}")], "date": SPOTIFY_DAY, "watchlist": RELIABILITY_WATCHLIST, "step": "sync" }),
    )
}

/// The day's points of artist `i` (`platform#metric` → value), read on the database.
async fn social_points(db: &LocalDb, i: usize) -> BTreeMap<String, u64> {
    items(
        db,
        &format!("series#{}", social_artist(i)),
        &format!("{SPOTIFY_DAY}#"),
    )
    .await
    .into_iter()
    .map(|p| {
        let key = p.key.sk[SPOTIFY_DAY.len() + 1..].to_owned();
        (key, p.data["value"].as_u64().unwrap_or(u64::MAX))
    })
    .collect()
}

/// The figure the social sandbox serves for `persona`'s `platform#metric` on day 0, as the
/// platform shows it (YouTube subscribers to three figures, hidden for profile 7, Last.fm
/// plays and TikTok likes scaled as the sandbox's answers scale them); `None` for a metric
/// the sandbox never serves.
fn sandbox_figure(persona: &social_sandbox::Persona, key: &str) -> Option<u64> {
    let f = |platform: &str, metric: &str| persona.figure(platform, metric, 0);
    Some(match key {
        "youtube#subscribers" if persona.profile == 7 => return None,
        "youtube#subscribers" => social_sandbox::world::three_figures(f("youtube", "subscribers")),
        "youtube#views" => f("youtube", "views"),
        "youtube#videos" => 20,
        "lastfm#listeners" => f("lastfm", "listeners"),
        "lastfm#plays" => f("lastfm", "plays") * 20,
        "deezer#fans" => f("deezer", "fans"),
        "deezer#albums" => 3,
        "instagram#followers" => f("instagram", "followers"),
        "instagram#media" => 100,
        "tiktok#followers" => f("tiktok", "followers"),
        "tiktok#likes" => f("tiktok", "likes") * 10,
        "tiktok#videos" => 40,
        _ => return None,
    })
}

/// social-media-sync: key `i` syncs artist `i`'s figures for the day. The effect is the
/// artist's identity graph and the expected point set of the day: which platform#metric
/// points exist comes from a fault-free reference run on its own database (the identity
/// rules decide it: quarantined or unlinked accounts give none), and each expected value is
/// the social sandbox's own figure (checked when the reference is taken).
///
/// With `exact`, the stored points must be the whole set. Without it (the faulty runs) they
/// must be a subset, each with the sandbox's value: the task reports a platform whose calls
/// failed in its output and completes the rest (one platform's outage must not hold the
/// others' figures back), so a platform can be missing for the day but never wrong or extra.
/// Points are keyed by day, platform and metric, so a second run writes the same items: a
/// second effect shows in the completions.
struct Figures {
    expected: Vec<BTreeMap<String, u64>>,
    exact: bool,
}

impl Figures {
    /// How many of the first `keys` artists have fewer than their expected points.
    async fn degraded(&self, db: &LocalDb, keys: usize) -> usize {
        let mut n = 0;
        for i in 0..keys {
            n += usize::from(social_points(db, i).await != self.expected[i]);
        }
        n
    }
}

#[async_trait]
impl Workload for Figures {
    type Task = social_media_sync::SocialMediaSync;

    fn bodies(&self, i: usize) -> Vec<String> {
        social_bodies(i)
    }

    fn poison(&self) -> Vec<String> {
        (0..4)
            .map(|i| json!({ "step": "sync", "watchlist": RELIABILITY_WATCHLIST, "date": SPOTIFY_DAY, "artists": [format!("bad-{i}")] }).to_string())
            .collect()
    }

    fn subject(&self, i: usize) -> String {
        format!("watchlist#{RELIABILITY_WATCHLIST}/{}+0", social_artist(i))
    }

    fn owns(&self, i: usize, body: &str) -> bool {
        body.contains(&social_artist(i))
    }

    async fn effects(&self, db: &LocalDb, i: usize) -> u64 {
        let graph = items(db, &format!("social#{}", social_artist(i)), "graph").await;
        let points = social_points(db, i).await;
        let expected = &self.expected[i];
        let right = if self.exact {
            points == *expected
        } else {
            points.iter().all(|(k, v)| expected.get(k) == Some(v))
        };
        match (graph.len(), right) {
            (0, _) if points.is_empty() => 0,
            (1, true) => 1,
            // Points without a graph, missing or extra points, or wrong values.
            (g, _) => {
                eprintln!(
                    "social artist {i}: {g} graphs, points {points:?}, expected {:?}",
                    self.expected[i]
                );
                2
            }
        }
    }
}

struct SocialRig {
    db: LocalDb,
    clock: Arc<ManualClock>,
    runtime: LocalRuntime,
    social: music_tasks::social::LocalSocial,
    harness_faults: Arc<FaultPlan>,
    store_faults: Arc<FaultPlan>,
    web_faults: Arc<FaultPlan>,
}

impl SocialRig {
    async fn start(keys: usize, fault_rate: f64, store_fault_rate: f64) -> Self {
        let db = LocalDb::in_memory().expect("in-memory database");
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 6, 0, 0).unwrap(),
        ));
        let mut runtime = LocalRuntime::new(db.clone(), clock.clone(), Arc::new(Capture::new()));
        runtime.max_receive_count = 25;
        let harness_faults = FaultPlan::new(fault_rate, 61);
        runtime.faults = Some(harness_faults.clone());
        let roster: Vec<String> = (0..keys).map(social_artist).collect();
        let social = music_tasks::social::LocalSocial::from_env(
            &std::collections::HashMap::<String, String>::new(),
            roster.clone(),
        )
        .await
        .expect("the social sandbox starts");
        assert!(
            social.sandbox.is_some(),
            "shared/social/fixtures beside the project"
        );
        let artists: Vec<backbone::validate::ArtistId> = roster
            .iter()
            .map(|a| backbone::validate::ArtistId::parse("artist", a).unwrap())
            .collect();
        backbone::watchlist::add(
            &db,
            &backbone::watchlist::WatchlistName::new(RELIABILITY_WATCHLIST).unwrap(),
            &artists,
        )
        .await
        .expect("the watchlist is stored");
        Self {
            db,
            clock,
            runtime,
            social,
            harness_faults,
            store_faults: FaultPlan::new(store_fault_rate, 62),
            web_faults: FaultPlan::new(fault_rate, 63),
        }
    }

    fn consumer(&self, idempotency: bool) -> LocalFunction<social_media_sync::SocialMediaSync> {
        let mut config = HarnessConfig::for_task(social_media_sync::SocialMediaSync::NAME);
        config.idempotency_disabled = !idempotency;
        self.runtime.harness(
            social_media_sync::SocialMediaSync {
                web: Arc::new(Faulty::new(
                    self.social.web.clone(),
                    self.web_faults.clone(),
                )),
                store: Arc::new(Faulty::new(
                    Arc::new(self.db.clone()),
                    self.store_faults.clone(),
                )),
                secrets: self.social.secrets.clone(),
                events: Arc::new(self.runtime.bus()),
                clock: Arc::new(backbone::clock::SystemClock),
                sleeper: Arc::new(social_media_sync::pacing::TokioSleeper),
                settings: self.social.settings.clone(),
            },
            config,
        )
    }

    fn queues(&self) -> backbone::local::LocalQueues {
        self.runtime
            .queues(social_media_sync::SocialMediaSync::NAME)
    }
}

/// The social workload's run, and how many artists ended with a platform missing (its calls
/// failed on every receipt that reached it; reported in the task's output).
async fn run_social(
    keys: usize,
    idempotency: bool,
    fault_rate: f64,
    store_fault_rate: f64,
) -> (Verdict, usize) {
    let figures = Figures {
        expected: social_reference(keys).await,
        exact: fault_rate == 0.0 && store_fault_rate == 0.0,
    };
    let rig = SocialRig::start(keys, fault_rate, store_fault_rate).await;
    let (first, second) = (rig.consumer(idempotency), rig.consumer(idempotency));
    let mut verdict = checker::run(
        &figures,
        keys,
        &[&first, &second],
        &rig.queues(),
        &rig.clock,
        &rig.db,
    )
    .await;
    verdict.faults_injected =
        rig.harness_faults.total() + rig.store_faults.total() + rig.web_faults.total();
    (verdict, figures.degraded(&rig.db, keys).await)
}

/// The expected point set of each of `keys` artists: one fault-free run, each message once, on
/// its own database and sandbox; every value is checked against the sandbox's figure.
async fn social_reference(keys: usize) -> Vec<BTreeMap<String, u64>> {
    use backbone::local::Invoke;
    use backbone::ports::Queues;
    let rig = SocialRig::start(keys, 0.0, 0.0).await;
    let consumer = rig.consumer(true);
    let queues = rig.queues();
    let messages: Vec<_> = (0..keys)
        .map(|i| backbone::ports::OutgoingMessage {
            body: social_bodies(i).remove(0),
            attributes: Default::default(),
            group_id: None,
            dedup_id: None,
            trace_header: None,
        })
        .collect();
    for chunk in messages.chunks(10) {
        queues.send(chunk).await.expect("send");
    }
    consumer
        .drain(std::time::Duration::ZERO)
        .await
        .expect("drain");
    assert_eq!(
        queues.depth().await.expect("depth"),
        0,
        "the reference drained"
    );
    let personas = rig.social.sandbox.as_ref().expect("the sandbox").personas();
    let mut expected = Vec::new();
    for (i, persona) in personas.iter().enumerate().take(keys) {
        let points = social_points(&rig.db, i).await;
        assert_eq!(persona.spotify, social_artist(i));
        for (key, value) in &points {
            assert_eq!(
                Some(*value),
                sandbox_figure(persona, key),
                "artist {i} (profile {}) {key}: the sandbox's figure",
                persona.profile
            );
        }
        expected.push(points);
    }
    // Profile 3 has no account anywhere; every other profile has at least one.
    for (i, points) in expected.iter().enumerate() {
        assert_eq!(
            points.is_empty(),
            personas[i].profile == 3,
            "artist {i}: {points:?}"
        );
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn social_media_sync_has_one_sync_per_artist_under_duplicates_and_faults() {
    let (verdict, degraded) = run_social(12, true, 0.25, 0.05).await;
    assert_exactly_once("social-media-sync", &verdict, 12);
    eprintln!("reliability (social-media-sync): {degraded} of 12 artists with a platform missing");
    assert!(
        degraded * 2 <= 12,
        "most artists have every platform: {degraded}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn social_media_sync_without_idempotency_shows_duplicates() {
    let (verdict, degraded) = run_social(6, false, 0.0, 0.0).await;
    assert_eq!(degraded, 0, "no faults: every point");
    assert_control_sees_duplicates("social-media-sync", &verdict, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn social_media_sync_killed_between_figures_and_completion_syncs_once() {
    let figures = Figures {
        expected: social_reference(1).await,
        exact: true,
    };
    let rig = SocialRig::start(1, 0.0, 0.0).await;
    let consumer = rig.consumer(true);
    let verdict = checker::kill_between_effect_and_completion(
        &figures,
        &consumer,
        &rig.harness_faults,
        &rig.queues(),
        &rig.clock,
        &rig.db,
    )
    .await;
    assert_killed_once("social-media-sync", verdict);
}

// ---------------------------------------------------------------------------------------------
// track-analysis: short synthetic recordings on disk (the local object source reads paths),
// decoded and analysed for real.

/// Business key `i`'s recording.
fn track_isrc(i: usize) -> String {
    format!("QZTAR26{i:05}")
}

/// A one-second mono 16-bit WAV of a tone whose pitch depends on `i`.
fn tone_wav(i: usize) -> Vec<u8> {
    let rate = 22_050u32;
    let freq = 220.0 + 10.0 * i as f64;
    let frames = rate as usize;
    let data_len = (frames * 2) as u32;
    let mut out = Vec::with_capacity(44 + frames * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for n in 0..frames {
        let s = (2.0 * std::f64::consts::PI * freq * n as f64 / f64::from(rate)).sin() * 0.5;
        out.extend_from_slice(&((s * 32767.0).round() as i16).to_le_bytes());
    }
    out
}

/// track-analysis: key `i` analyses recording `i` (its ISRC plain, and hyphenated with the
/// fields reordered); the effect is the stored analysis of the ISRC under the current schema,
/// of exactly that audio (its SHA-256).
struct Analyses {
    dir: tempfile::TempDir,
    sha256: Vec<String>,
}

impl Analyses {
    fn new(keys: usize) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let sha256 = (0..keys)
            .map(|i| {
                let bytes = tone_wav(i);
                std::fs::write(dir.path().join(format!("{i}.wav")), &bytes).expect("written");
                backbone::hash::sha256_hex(&bytes)
            })
            .collect();
        Self { dir, sha256 }
    }

    fn audio(&self, i: usize) -> String {
        self.dir
            .path()
            .join(format!("{i}.wav"))
            .display()
            .to_string()
    }
}

#[async_trait]
impl Workload for Analyses {
    type Task = track_analysis::TrackAnalysis;

    fn bodies(&self, i: usize) -> Vec<String> {
        let isrc = track_isrc(i);
        let hyphenated = format!(
            "{}-{}-{}-{}",
            &isrc[..2],
            &isrc[2..5],
            &isrc[5..7],
            &isrc[7..]
        );
        vec![
            json!({ "track": { "isrc": isrc }, "audio": self.audio(i) }).to_string(),
            json!({ "track": { "isrc": isrc }, "audio": self.audio(i) }).to_string(),
            json!({ "audio": self.audio(i), "force": false, "track": { "isrc": hyphenated } })
                .to_string(),
        ]
    }

    fn poison(&self) -> Vec<String> {
        (0..4)
            .map(|i| {
                json!({ "track": { "isrc": format!("not-an-isrc-{i}") }, "audio": self.audio(0) })
                    .to_string()
            })
            .collect()
    }

    fn subject(&self, i: usize) -> String {
        format!("track#isrc:{}", track_isrc(i))
    }

    fn owns(&self, i: usize, body: &str) -> bool {
        body.contains(&track_isrc(i))
    }

    async fn effects(&self, db: &LocalDb, i: usize) -> u64 {
        let stored = items(db, &format!("track#isrc:{}", track_isrc(i)), "analysis#").await;
        match stored.as_slice() {
            [] => 0,
            [one] if one.data["sha256"].as_str() == Some(self.sha256[i].as_str()) => 1,
            _ => 2,
        }
    }
}

struct TrackRig {
    db: LocalDb,
    clock: Arc<ManualClock>,
    runtime: LocalRuntime,
    harness_faults: Arc<FaultPlan>,
    store_faults: Arc<FaultPlan>,
}

impl TrackRig {
    fn start(fault_rate: f64, store_fault_rate: f64) -> Self {
        let db = LocalDb::in_memory().expect("in-memory database");
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0).unwrap(),
        ));
        let mut runtime = LocalRuntime::new(db.clone(), clock.clone(), Arc::new(Capture::new()));
        runtime.max_receive_count = 25;
        let harness_faults = FaultPlan::new(fault_rate, 71);
        runtime.faults = Some(harness_faults.clone());
        Self {
            db,
            clock,
            runtime,
            harness_faults,
            store_faults: FaultPlan::new(store_fault_rate, 72),
        }
    }

    fn consumer(&self, idempotency: bool) -> LocalFunction<track_analysis::TrackAnalysis> {
        let mut config = HarnessConfig::for_task(track_analysis::TrackAnalysis::NAME);
        config.idempotency_disabled = !idempotency;
        self.runtime.harness(
            track_analysis::TrackAnalysis {
                objects: Arc::new(music_tasks::local_objects()),
                store: Arc::new(Faulty::new(
                    Arc::new(self.db.clone()),
                    self.store_faults.clone(),
                )),
                events: Arc::new(self.runtime.bus()),
                limits: track_analysis::decode::Limits::default(),
            },
            config,
        )
    }

    fn queues(&self) -> backbone::local::LocalQueues {
        self.runtime.queues(track_analysis::TrackAnalysis::NAME)
    }
}

async fn run_tracks(
    keys: usize,
    idempotency: bool,
    fault_rate: f64,
    store_fault_rate: f64,
) -> Verdict {
    let workload = Analyses::new(keys);
    let rig = TrackRig::start(fault_rate, store_fault_rate);
    let (first, second) = (rig.consumer(idempotency), rig.consumer(idempotency));
    let mut verdict = checker::run(
        &workload,
        keys,
        &[&first, &second],
        &rig.queues(),
        &rig.clock,
        &rig.db,
    )
    .await;
    verdict.faults_injected = rig.harness_faults.total() + rig.store_faults.total();
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_analysis_has_one_analysis_per_recording_under_duplicates_and_faults() {
    let verdict = run_tracks(20, true, 0.25, 0.25).await;
    assert_exactly_once("track-analysis", &verdict, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_analysis_without_idempotency_shows_duplicates() {
    let verdict = run_tracks(6, false, 0.0, 0.0).await;
    assert_control_sees_duplicates("track-analysis", &verdict, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_analysis_killed_between_analysis_and_completion_analyses_once() {
    let workload = Analyses::new(1);
    let rig = TrackRig::start(0.0, 0.0);
    let consumer = rig.consumer(true);
    let verdict = checker::kill_between_effect_and_completion(
        &workload,
        &consumer,
        &rig.harness_faults,
        &rig.queues(),
        &rig.clock,
        &rig.db,
    )
    .await;
    assert_killed_once("track-analysis", verdict);
}

// ---------------------------------------------------------------------------------------------
// The soak of the real functions: the faulty runs above at `RELIABILITY_SOAK_KEYS` keys each
// (default 200), ignored in the test command (docs/reliability.md has the command).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the long soak: RELIABILITY_SOAK_KEYS keys per function, minutes"]
async fn functions_soak() {
    let keys: usize = std::env::var("RELIABILITY_SOAK_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let started = std::time::Instant::now();
    assert_exactly_once(
        "soak streaming-metrics",
        &run_streaming(keys, true, 0.25, 0.10).await,
        keys,
    );
    assert_exactly_once(
        "soak artist-monitoring",
        &run_monitoring(keys, true, 0.25, 0.10).await,
        keys,
    );
    assert_exactly_once(
        "soak data-sync",
        &run_data_sync(keys, true, 0.25, 0.10).await,
        keys,
    );
    assert_exactly_once(
        "soak ai-content-generation",
        &run_content(keys, true, 0.25, 0.10).await,
        keys,
    );
    let (social, degraded) = run_social(keys, true, 0.25, 0.05).await;
    assert_exactly_once("soak social-media-sync", &social, keys);
    eprintln!("soak social-media-sync: {degraded} of {keys} artists with a platform missing");
    assert_exactly_once(
        "soak track-analysis",
        &run_tracks(keys, true, 0.25, 0.25).await,
        keys,
    );
    eprintln!("soak: {keys} keys per function in {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// playlist-update: the sandbox user's own playlists, each with stored rules drawing on the
// reliability watchlist's releases (read from the Spotify sandbox over real HTTP), applied.

/// playlist-update: key `i` applies the rules of the sandbox user's playlist `i` for the
/// day. The effect is on Spotify: the sandbox's playlist (read on the sandbox, not through
/// the adapter) equals the target of the one `applied` run record, which wrote; any other run
/// record of the day wrote nothing (`unchanged`); at most one `playlist.updated` audit record
/// (exactly one once completed: [`audited_once`]).
struct Playlists<'a> {
    sandbox: &'a spotify_sandbox::SandboxHandle,
    /// (playlist id, its tracks before the run).
    playlists: Vec<(String, Vec<String>)>,
}

#[async_trait]
impl Workload for Playlists<'_> {
    type Task = playlist_update::PlaylistUpdate<backbone::spotify::SpotifyClient>;

    fn bodies(&self, i: usize) -> Vec<String> {
        let id = &self.playlists[i].0;
        let request = format!("reliability-{i}");
        vec![
            json!({ "step": "update", "playlist": id, "apply": true, "date": SPOTIFY_DAY, "request": request }).to_string(),
            json!({ "step": "update", "playlist": id, "apply": true, "date": SPOTIFY_DAY, "request": request }).to_string(),
            json!({ "request": request, "date": SPOTIFY_DAY, "apply": true, "playlist": format!("spotify:playlist:{id}"), "step": "update" }).to_string(),
        ]
    }

    fn poison(&self) -> Vec<String> {
        (0..4)
            .map(|i| json!({ "step": "update", "playlist": format!("bad-{i}"), "apply": true, "date": SPOTIFY_DAY }).to_string())
            .collect()
    }

    fn subject(&self, i: usize) -> String {
        format!("playlist#{}", self.playlists[i].0)
    }

    fn owns(&self, i: usize, body: &str) -> bool {
        body.contains(&self.playlists[i].0)
    }

    async fn effects(&self, db: &LocalDb, i: usize) -> u64 {
        let (id, before) = &self.playlists[i];
        let live = self
            .sandbox
            .playlist_tracks(id)
            .expect("the playlist exists");
        let runs = items(db, &format!("playlist#{id}"), "run#").await;
        let applied: Vec<_> = runs
            .iter()
            .filter(|r| r.data["status"] == "applied")
            .collect();
        let others_wrote = runs
            .iter()
            .filter(|r| r.data["status"] != "applied")
            .any(|r| r.data["writes"].as_u64() != Some(0));
        let updated = audit_records(
            db,
            playlist_update::PlaylistUpdate::<backbone::spotify::SpotifyClient>::NAME,
        )
        .await
        .into_iter()
        .filter(|r| r.action == "playlist.updated" && r.subject == format!("playlist#{id}"))
        .count();
        if runs.is_empty() && updated == 0 {
            // No run: the playlist must be untouched.
            return if live == *before { 0 } else { 2 };
        }
        let target: Option<Vec<String>> = applied
            .first()
            .and_then(|r| serde_json::from_value::<Vec<String>>(r.data["target"].clone()).ok());
        // The audit record comes with the completion, after the effect (so not yet there
        // after a kill); more than one is a duplicate. `run_playlists` checks there is one.
        let whole = applied.len() == 1
            && !others_wrote
            && updated <= 1
            && target.as_deref().is_some_and(|t| {
                t.len() == live.len() && t.iter().zip(&live).all(|(a, b)| a.ends_with(b.as_str()))
            });
        if whole {
            1
        } else {
            eprintln!(
                "playlist {i}: {} runs ({:?}), {updated} playlist.updated records, live {} tracks, target {:?}",
                runs.len(),
                runs.iter()
                    .map(|r| (r.data["status"].clone(), r.data["writes"].clone()))
                    .collect::<Vec<_>>(),
                live.len(),
                target.as_ref().map(Vec::len)
            );
            2
        }
    }
}

/// The rules of playlist `id`: ten tracks from the reliability watchlist's releases.
fn playlist_rules(id: &str, i: usize) -> String {
    format!(
        "version: 1\nplaylist: {id}\nname: reliability {i}\nsources:\n  - watchlist_releases: {RELIABILITY_WATCHLIST}\n\
         constraints:\n  length:\n    tracks: 10\n  max_per_artist: 3\n  min_artist_gap: 1\n\
         objectives:\n  transitions: 1.0\nseed: {i}\n"
    )
}

impl SpotifyRig {
    /// The playlist-update workload over the sandbox user's first `keys` playlists, their
    /// rules stored (on the database itself, no faults).
    async fn playlists(&self, keys: usize) -> Playlists<'_> {
        let owned: Vec<String> = self
            .sandbox()
            .playlists()
            .into_iter()
            .filter(|(_, owned)| *owned)
            .map(|(id, _)| id)
            .take(keys)
            .collect();
        assert_eq!(owned.len(), keys, "the sandbox user owns {keys} playlists");
        let mut playlists = Vec::new();
        for (i, id) in owned.into_iter().enumerate() {
            let text = playlist_rules(&id, i);
            let rules = playlist_update::rules::RuleFile::parse(&text).expect("valid rules");
            playlist_update::state::save_rules(&self.db, &text, &rules, self.clock.now())
                .await
                .expect("the rules are stored");
            let before = self
                .sandbox()
                .playlist_tracks(&id)
                .expect("the playlist exists");
            playlists.push((id, before));
        }
        Playlists {
            sandbox: self.sandbox(),
            playlists,
        }
    }

    fn playlist_update(&self) -> playlist_update::PlaylistUpdate<backbone::spotify::SpotifyClient> {
        playlist_update::PlaylistUpdate {
            spotify: self.spotify.client.clone(),
            store: self.store(),
            events: Arc::new(self.runtime.bus()),
        }
    }
}

/// The sandbox user's playlists under the checker: `PLAYLIST_KEYS` of them, over the releases
/// of the first `PLAYLIST_ARTISTS` artists.
const PLAYLIST_KEYS: usize = 4;
const PLAYLIST_ARTISTS: usize = 6;

/// How many of `workload`'s playlists have exactly one `playlist.updated` audit record.
async fn audited_once(workload: &Playlists<'_>, db: &LocalDb) -> usize {
    let records = audit_records(db, "playlist-update").await;
    workload
        .playlists
        .iter()
        .filter(|(id, _)| {
            records
                .iter()
                .filter(|r| r.action == "playlist.updated" && r.subject == format!("playlist#{id}"))
                .count()
                == 1
        })
        .count()
}

/// The playlist workload's run (harness and store faults at the given rates, the Spotify edge
/// at `edge_rate`: every message makes dozens of Spotify calls), and how many playlists have
/// exactly one `playlist.updated` audit record.
async fn run_playlists(
    idempotency: bool,
    fault_rate: f64,
    store_fault_rate: f64,
    edge_rate: f64,
) -> (Verdict, usize) {
    let rig = SpotifyRig::start(PLAYLIST_ARTISTS, fault_rate, store_fault_rate, 47).await;
    rig.sandbox().set_faults(spotify_edge_faults(edge_rate));
    let workload = rig.playlists(PLAYLIST_KEYS).await;
    let verdict = rig
        .run(
            &workload,
            PLAYLIST_KEYS,
            idempotency,
            SpotifyRig::playlist_update,
        )
        .await;
    let audited = audited_once(&workload, &rig.db).await;
    (verdict, audited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlist_update_applies_each_playlist_once_under_duplicates_and_faults() {
    let (verdict, audited) = run_playlists(true, 0.20, 0.01, 0.05).await;
    assert_exactly_once("playlist-update", &verdict, PLAYLIST_KEYS);
    assert_eq!(
        audited, verdict.effected,
        "one playlist.updated per applied playlist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlist_update_without_idempotency_shows_duplicates() {
    let (verdict, _) = run_playlists(false, 0.0, 0.0, 0.0).await;
    assert_control_sees_duplicates("playlist-update", &verdict, PLAYLIST_KEYS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlist_update_killed_between_writes_and_completion_applies_once() {
    let rig = SpotifyRig::start(PLAYLIST_ARTISTS, 0.0, 0.0, 47).await;
    let workload = rig.playlists(1).await;
    let consumer = rig.runtime.harness(
        rig.playlist_update(),
        HarnessConfig::for_task("playlist-update"),
    );
    let verdict = checker::kill_between_effect_and_completion(
        &workload,
        &consumer,
        &rig.harness_faults,
        &rig.runtime.queues("playlist-update"),
        &rig.clock,
        &rig.db,
    )
    .await;
    assert_killed_once("playlist-update", verdict);
    assert_eq!(
        audited_once(&workload, &rig.db).await,
        1,
        "the retry audits the killed run's writes"
    );
}
