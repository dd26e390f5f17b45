//! The real functions under the total-queue checker: the same duplicates, faults and racing
//! consumers as the test task of [`crate::reliability`], with effects read back from each
//! function's own rollups. A function joins by implementing [`Workload`] for its task.

use std::sync::Arc;

use async_trait::async_trait;
use backbone::clock::ManualClock;
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

use crate::checker::{self, Verdict, Workload};

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
