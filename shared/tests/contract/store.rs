//! `Store`: SQLite and DynamoDB.

use backbone::aws::DynamoStore;
use backbone::error::PortError;
use backbone::ports::{ItemKey, PutCondition, Query, Store, store::query_all};
use chrono::{Duration, Utc};
use futures::future::join_all;
use serde_json::json;

use crate::helpers::unique;

async fn dynamo(sdk: &aws_config::SdkConfig) -> DynamoStore {
    DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        crate::helpers::store_table(sdk).await,
    )
}

macro_rules! store_contract {
    ($($scenario:ident),* $(,)?) => { $(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(&crate::helpers::local_db()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dynamodb() {
                let sdk = crate::require_moto!();
                super::$scenario(&super::dynamo(&sdk).await).await;
            }
        }
    )* };
}

store_contract!(
    documents_round_trip_with_versions,
    conditions_refuse_stale_writes,
    counters_are_atomic_and_survive_puts,
    expired_items_count_as_absent,
    queries_page_in_sort_key_order,
    series_points_round_trip_by_platform_and_day,
);

fn conflict<T: std::fmt::Debug>(result: Result<T, PortError>) -> bool {
    matches!(result, Err(PortError::Conflict { .. }))
}

async fn documents_round_trip_with_versions(store: &dyn Store) {
    let key = ItemKey::new(unique("artist"), "profile");
    assert_eq!(store.get(&key).await.unwrap(), None);

    // Values DynamoDB's own types would mangle: big and tiny floats, nulls, empty strings,
    // unicode, nested arrays.
    let doc = json!({
        "name": "Björk", "empty": "", "none": null, "ratio": 0.1, "huge": 1.5e300,
        "tiny": -2.5e-300, "list": [1, "two", [3.0], {"four": false}], "nested": {"a": {"b": []}}
    });
    assert_eq!(
        store
            .put(&key, &doc, PutCondition::NotExists, None)
            .await
            .unwrap(),
        1
    );
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!((item.key.clone(), item.version), (key.clone(), 1));
    assert_eq!(item.data, doc);
    assert!(item.counters.is_empty());
    assert_eq!(item.expires_at, None);

    assert_eq!(
        store
            .put(&key, &json!({"v": 2}), PutCondition::Always, None)
            .await
            .unwrap(),
        2
    );
    let later = Utc::now() + Duration::days(30);
    assert_eq!(
        store
            .put(
                &key,
                &json!({"v": 3}),
                PutCondition::Version(2),
                Some(later)
            )
            .await
            .unwrap(),
        3
    );
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!(item.data, json!({"v": 3}));
    assert_eq!(
        item.expires_at.map(|at| at.timestamp()),
        Some(later.timestamp())
    );

    store.delete(&key).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    // Deleting what is not there is fine.
    store.delete(&key).await.unwrap();
    // Version 0 accepts a missing item; `Always` on a missing item starts at 1.
    assert_eq!(
        store
            .put(&key, &json!(1), PutCondition::Version(0), None)
            .await
            .unwrap(),
        1
    );
    let other = ItemKey::new(key.pk.clone(), "other");
    assert_eq!(
        store
            .put(&other, &json!("x"), PutCondition::Always, None)
            .await
            .unwrap(),
        1
    );
}

async fn conditions_refuse_stale_writes(store: &dyn Store) {
    let key = ItemKey::new(unique("playlist"), "state");
    store
        .put(&key, &json!({"n": 1}), PutCondition::NotExists, None)
        .await
        .unwrap();
    assert!(conflict(
        store
            .put(&key, &json!({}), PutCondition::NotExists, None)
            .await
    ));
    assert!(conflict(
        store
            .put(&key, &json!({}), PutCondition::Version(0), None)
            .await
    ));
    assert!(conflict(
        store
            .put(&key, &json!({}), PutCondition::Version(7), None)
            .await
    ));
    assert!(conflict(
        store
            .put(
                &ItemKey::new(key.pk.clone(), "missing"),
                &json!({}),
                PutCondition::Version(1),
                None
            )
            .await
    ));
    // A refused write changed nothing.
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!((item.version, item.data), (1, json!({"n": 1})));

    // Ten writers race from the same version: exactly one wins.
    let results = join_all((0..10).map(|i| {
        let key = key.clone();
        async move {
            store
                .put(&key, &json!({"writer": i}), PutCondition::Version(1), None)
                .await
        }
    }))
    .await;
    let winners: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(PortError::Conflict { .. })))
    );
    assert_eq!(store.get(&key).await.unwrap().unwrap().version, 2);
}

async fn counters_are_atomic_and_survive_puts(store: &dyn Store) {
    let key = ItemKey::new(unique("track"), "plays#2026-11-25");
    let counters = store
        .add(&key, &[("plays", 2), ("skips", 1)])
        .await
        .unwrap();
    assert_eq!(
        counters,
        [("plays".to_owned(), 2), ("skips".to_owned(), 1)].into()
    );
    let counters = store.add(&key, &[("plays", -5)]).await.unwrap();
    assert_eq!(
        counters,
        [("plays".to_owned(), -3), ("skips".to_owned(), 1)].into()
    );

    // An item only `add` touched exists, at version 0, with an empty document.
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!((item.version, item.data.clone()), (0, json!({})));
    assert!(conflict(
        store
            .put(&key, &json!({}), PutCondition::NotExists, None)
            .await
    ));
    assert_eq!(
        store
            .put(&key, &json!({"a": 1}), PutCondition::Version(0), None)
            .await
            .unwrap(),
        1
    );
    // A put keeps the counters; counters keep the document.
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!(item.counters.get("plays"), Some(&-3));
    store.add(&key, &[("plays", 3)]).await.unwrap();
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!((item.version, item.data), (1, json!({"a": 1})));

    // Concurrent increments are none of them lost.
    join_all((0..25).map(|_| {
        let key = key.clone();
        async move {
            store
                .add(&key, &[("plays", 1), ("skips", 2)])
                .await
                .unwrap()
        }
    }))
    .await;
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        item.counters,
        [("plays".to_owned(), 25), ("skips".to_owned(), 51)].into()
    );
}

async fn expired_items_count_as_absent(store: &dyn Store) {
    let pk = unique("cache");
    let key = ItemKey::new(pk.clone(), "token");
    let past = Utc::now() - Duration::seconds(10);
    assert_eq!(
        store
            .put(&key, &json!("old"), PutCondition::Always, Some(past))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert!(
        store
            .query(&Query::partition(&pk))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // An expired item does not block a create, and its version starts again.
    assert_eq!(
        store
            .put(&key, &json!("new"), PutCondition::NotExists, None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get(&key).await.unwrap().unwrap().data, json!("new"));
    store
        .put(&key, &json!("gone"), PutCondition::Always, Some(past))
        .await
        .unwrap();
    assert_eq!(
        store
            .put(&key, &json!("again"), PutCondition::Always, None)
            .await
            .unwrap(),
        1
    );
}

async fn queries_page_in_sort_key_order(store: &dyn Store) {
    let pk = unique("artist");
    for day in 1..=25 {
        let key = ItemKey::new(pk.clone(), format!("snapshot#2026-11-{day:02}"));
        store
            .put(&key, &json!({"day": day}), PutCondition::Always, None)
            .await
            .unwrap();
    }
    for alert in ["a", "b"] {
        store
            .put(
                &ItemKey::new(pk.clone(), format!("alert#{alert}")),
                &json!({}),
                PutCondition::Always,
                None,
            )
            .await
            .unwrap();
    }
    // Another partition's items never leak in.
    store
        .put(
            &ItemKey::new(unique("artist"), "snapshot#2026-11-01"),
            &json!({}),
            PutCondition::Always,
            None,
        )
        .await
        .unwrap();
    // An expired item inside the range is skipped without shortening the page.
    store
        .put(
            &ItemKey::new(pk.clone(), "snapshot#2026-11-05x"),
            &json!({}),
            PutCondition::Always,
            Some(Utc::now() - Duration::seconds(5)),
        )
        .await
        .unwrap();

    let mut query = Query::partition(&pk).prefix("snapshot#").limit(10);
    let mut days = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = store.query(&query).await.unwrap();
        sizes.push(page.items.len());
        days.extend(page.items.iter().map(|i| i.data["day"].as_i64().unwrap()));
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(days, (1..=25).collect::<Vec<_>>());

    let newest = store
        .query(
            &Query::partition(&pk)
                .prefix("snapshot#")
                .descending()
                .limit(3),
        )
        .await
        .unwrap();
    let newest_days: Vec<_> = newest
        .items
        .iter()
        .map(|i| i.data["day"].as_i64().unwrap())
        .collect();
    assert_eq!(newest_days, vec![25, 24, 23]);
    let mut second = Query::partition(&pk)
        .prefix("snapshot#")
        .descending()
        .limit(3);
    second.cursor = newest.next;
    let second = store.query(&second).await.unwrap();
    assert_eq!(second.items[0].data["day"], 22);

    let week = store
        .query(&Query::partition(&pk).between("snapshot#2026-11-03", "snapshot#2026-11-09"))
        .await
        .unwrap();
    assert_eq!(week.items.len(), 7);
    assert_eq!(week.next, None);
    assert!(
        store
            .query(&Query::partition(&pk).between("z", "a"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // An exact page: no next page.
    let exact = store
        .query(&Query::partition(&pk).prefix("alert#").limit(2))
        .await
        .unwrap();
    assert_eq!((exact.items.len(), exact.next), (2, None));

    let all = query_all(store, Query::partition(&pk).limit(4), 1000)
        .await
        .unwrap();
    assert_eq!(all.len(), 27);
    assert!(all.windows(2).all(|w| w[0].key.sk < w[1].key.sk));
}

/// The audience series (`backbone::series`) on each backend: points grouped by platform and
/// metric, ordered by day, precision kept, a rerun of a day replacing its point, the range
/// respected.
async fn series_points_round_trip_by_platform_and_day(store: &dyn Store) {
    use backbone::series::{self, Precision, SeriesPoint};
    let id = uuid::Uuid::new_v4().simple().to_string();
    let artist: backbone::validate::ArtistId = id[..22].parse().unwrap();
    let day = |n: i64| chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + Duration::days(n);
    let point = |platform: &str, metric: &str, n: i64, value: u64, precision| SeriesPoint {
        artist: artist.clone(),
        platform: platform.into(),
        metric: metric.into(),
        value,
        as_of: day(n),
        source: format!("{platform} contract"),
        precision,
        fetched_at: Utc::now(),
    };
    let three = Precision::SignificantFigures { figures: 3 };
    for n in (0..5).rev() {
        series::save(
            store,
            &point(
                "youtube",
                "subscribers",
                n,
                1_230_000 + n as u64 * 10_000,
                three,
            ),
        )
        .await
        .unwrap();
        series::save(
            store,
            &point("deezer", "fans", n, 5_000 + n as u64, Precision::Exact),
        )
        .await
        .unwrap();
    }
    // A rerun of day 2 replaces its point.
    series::save(store, &point("deezer", "fans", 2, 7_777, Precision::Exact))
        .await
        .unwrap();
    let all = series::load(store, &artist, day(1), day(3)).await.unwrap();
    assert_eq!(all.len(), 2);
    let yt = &all[&("youtube".to_owned(), "subscribers".to_owned())];
    assert_eq!(
        yt.iter().map(|p| p.as_of).collect::<Vec<_>>(),
        vec![day(1), day(2), day(3)]
    );
    assert_eq!(yt[0].precision, three);
    let fans: Vec<u64> = all[&("deezer".to_owned(), "fans".to_owned())]
        .iter()
        .map(|p| p.value)
        .collect();
    assert_eq!(fans, vec![5_001, 7_777, 5_003]);
}
