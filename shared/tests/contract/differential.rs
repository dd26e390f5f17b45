//! Differential test of `Store`: the same seeded random sequence of operations on a small key
//! space, applied to SQLite and to DynamoDB, must give the same answers step by step: values,
//! versions, counters, conflicts and query pages. Catches the corner cases a hand-written
//! scenario forgets (expired items under `add`, `Version(0)` on an add-only item, ...).

use backbone::aws::DynamoStore;
use backbone::error::PortError;
use backbone::ports::{Item, ItemKey, PutCondition, Query, SkRange, Store};
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::helpers::unique;

/// What one operation answered, comparable across backends (cursors are opaque, so queries
/// are compared as the sequence of pages they return).
#[derive(Debug, PartialEq)]
enum Answer {
    Version(u64),
    Item(Option<Snapshot>),
    Counters(Vec<(String, i64)>),
    Pages(Vec<Vec<Snapshot>>),
    Done,
    Failed(&'static str),
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    key: ItemKey,
    version: u64,
    data: serde_json::Value,
    counters: Vec<(String, i64)>,
    expires_at: Option<i64>,
}

impl From<Item> for Snapshot {
    fn from(item: Item) -> Self {
        Self {
            key: item.key,
            version: item.version,
            data: item.data,
            counters: item.counters.into_iter().collect(),
            expires_at: item.expires_at.map(|at| at.timestamp()),
        }
    }
}

fn failed(err: PortError) -> Answer {
    Answer::Failed(match err {
        PortError::Conflict { .. } => "conflict",
        PortError::Transient { .. } => "transient",
        PortError::Permanent { .. } => "permanent",
    })
}

#[derive(Debug, Clone)]
enum Op {
    Put(ItemKey, i64, PutCondition, Option<DateTime<Utc>>),
    Add(ItemKey, &'static str, i64),
    Delete(ItemKey),
    Get(ItemKey),
    Query(String, SkRange, bool, usize),
}

fn script(seed: u64, steps: usize, pks: &[String]) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Whole seconds: both backends keep TTLs in epoch seconds.
    let now = DateTime::<Utc>::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default();
    let key = |rng: &mut StdRng| {
        ItemKey::new(
            pks[rng.random_range(0..pks.len())].clone(),
            format!("s{}", rng.random_range(0..5)),
        )
    };
    (0..steps)
        .map(|i| match rng.random_range(0..10) {
            0..=3 => {
                let condition = match rng.random_range(0..4) {
                    0 => PutCondition::Always,
                    1 => PutCondition::NotExists,
                    _ => PutCondition::Version(rng.random_range(0..4)),
                };
                let expires = match rng.random_range(0..6) {
                    0 => Some(now - Duration::hours(1)),
                    1 => Some(now + Duration::hours(1)),
                    _ => None,
                };
                Op::Put(key(&mut rng), i as i64, condition, expires)
            }
            4 | 5 => Op::Add(
                key(&mut rng),
                if rng.random_bool(0.5) {
                    "plays"
                } else {
                    "skips"
                },
                rng.random_range(-3..=5),
            ),
            6 => Op::Delete(key(&mut rng)),
            7 => Op::Get(key(&mut rng)),
            _ => {
                let range = match rng.random_range(0..3) {
                    0 => SkRange::All,
                    1 => SkRange::Prefix("s".into()),
                    _ => SkRange::Between("s1".into(), "s3".into()),
                };
                Op::Query(
                    pks[rng.random_range(0..pks.len())].clone(),
                    range,
                    rng.random_bool(0.5),
                    rng.random_range(1..=3),
                )
            }
        })
        .collect()
}

async fn apply(store: &dyn Store, op: &Op) -> Answer {
    match op {
        Op::Put(key, n, condition, expires) => {
            match store
                .put(key, &json!({ "n": n }), *condition, *expires)
                .await
            {
                Ok(version) => Answer::Version(version),
                Err(err) => failed(err),
            }
        }
        Op::Add(key, name, delta) => match store.add(key, &[(name, *delta)]).await {
            Ok(counters) => Answer::Counters(counters.into_iter().collect()),
            Err(err) => failed(err),
        },
        Op::Delete(key) => match store.delete(key).await {
            Ok(()) => Answer::Done,
            Err(err) => failed(err),
        },
        Op::Get(key) => match store.get(key).await {
            Ok(item) => Answer::Item(item.map(Snapshot::from)),
            Err(err) => failed(err),
        },
        Op::Query(pk, range, descending, limit) => {
            let mut query = Query {
                pk: pk.clone(),
                range: range.clone(),
                descending: *descending,
                limit: *limit,
                cursor: None,
            };
            let mut pages = Vec::new();
            loop {
                match store.query(&query).await {
                    Ok(page) => {
                        pages.push(page.items.into_iter().map(Snapshot::from).collect());
                        match page.next {
                            Some(next) => query.cursor = Some(next),
                            None => return Answer::Pages(pages),
                        }
                    }
                    Err(err) => return failed(err),
                }
            }
        }
    }
}

#[tokio::test]
async fn sqlite_and_dynamodb_answer_every_operation_alike() {
    let sdk = crate::require_moto!();
    let local = crate::helpers::local_db();
    let dynamo = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        crate::helpers::store_table(&sdk).await,
    );
    let pks = vec![unique("p"), unique("p")];
    let (mut conflicts, mut paged, mut bumped) = (0, 0, 0);
    for seed in [1, 2, 3] {
        for (step, op) in script(seed, 150, &pks).iter().enumerate() {
            let expected = apply(&local, op).await;
            let got = apply(&dynamo, op).await;
            assert_eq!(got, expected, "seed {seed}, step {step}: {op:?}");
            match got {
                Answer::Failed("conflict") => conflicts += 1,
                Answer::Pages(pages) if pages.len() > 1 => paged += 1,
                Answer::Version(v) if v > 1 => bumped += 1,
                _ => {}
            }
        }
    }
    // The script did reach the interesting cases.
    assert!(
        conflicts > 5 && paged > 5 && bumped > 5,
        "{conflicts} {paged} {bumped}"
    );
}
