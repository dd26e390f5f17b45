//! The production wiring: `AwsConfig::from_env` and `AwsAdapters` against the emulator, every
//! port reached through it, and the SDK calls counted into the EMF metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backbone::aws::{AwsAdapters, AwsConfig};
use backbone::clock::SystemClock;
use backbone::ports::{
    AuditStore, BusEvent, EventPublisher, IdempotencyStore, ItemKey, OutgoingMessage, PutCondition,
    Queues, Secrets, Store,
};
use backbone::secrets_cache::{CachedSecrets, SpotifyCredentials};
use backbone::telemetry::{Capture, Metrics};
use backbone::{ExposeSecret, SecretString};

use crate::helpers::unique;

#[tokio::test]
async fn adapters_built_from_the_environment_reach_every_port_and_count_calls() {
    let sdk = crate::require_moto!();
    let bus = unique("music");
    aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    let secret = unique("music/spotify");
    let env: HashMap<String, String> = [
        ("STORE_TABLE", crate::helpers::store_table(&sdk).await),
        (
            "IDEMPOTENCY_TABLE",
            crate::helpers::idempotency_table(&sdk).await,
        ),
        ("AUDIT_TABLE", crate::helpers::audit_table(&sdk).await),
        ("WORK_QUEUE_URL", crate::helpers::queue(&sdk, "work").await),
        (
            "DEAD_LETTER_QUEUE_URL",
            crate::helpers::queue(&sdk, "dlq").await,
        ),
        ("EVENT_BUS_NAME", bus),
        ("SPOTIFY_SECRET_ID", secret.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = AwsConfig::from_env(&env).unwrap();
    let capture = Capture::new();
    let metrics = Metrics::new("MusicTasks", vec![], Arc::new(capture.clone()));
    let aws = AwsAdapters::with_metrics(&sdk, &config, metrics.clone());
    let secrets = CachedSecrets::new(
        aws.secrets.clone(),
        Arc::new(SystemClock),
        Duration::from_secs(300),
    );

    let key = ItemKey::new(unique("artist"), "profile");
    aws.store
        .put(
            &key,
            &serde_json::json!({"a": 1}),
            PutCondition::NotExists,
            None,
        )
        .await
        .unwrap();
    assert!(aws.store.get(&key).await.unwrap().is_some());
    assert_eq!(aws.idempotency.get("nothing").await.unwrap(), None);
    assert_eq!(aws.audit.streams().await.unwrap(), Vec::<String>::new());
    aws.queues
        .send(&[OutgoingMessage {
            body: "{}".into(),
            attributes: Default::default(),
            group_id: None,
            dedup_id: None,
            trace_header: None,
        }])
        .await
        .unwrap();
    aws.events
        .publish(&[BusEvent {
            source: "music.test".into(),
            detail_type: "Test".into(),
            detail: serde_json::json!({}),
            time: chrono::Utc::now(),
            trace_header: None,
        }])
        .await
        .unwrap();
    let json = r#"{"client_id":"cid","client_secret":"s"}"#;
    let spotify_secret = config
        .spotify_secret_id
        .as_deref()
        .expect("the provisioned stack has a Spotify secret");
    secrets
        .put(spotify_secret, &SecretString::from(json))
        .await
        .unwrap();
    let credentials = SpotifyCredentials::load(&secrets, spotify_secret)
        .await
        .unwrap();
    assert_eq!(credentials.client_secret.expose_secret(), "s");
    // An uncached read goes to Secrets Manager.
    assert!(aws.secrets.get(spotify_secret).await.is_ok());

    metrics.flush(chrono::Utc::now());
    let line = capture
        .json()
        .into_iter()
        .find(|line| line.get("AwsApiCalls").is_some())
        .expect("an EMF line with the SDK call count");
    // UpdateItem, GetItem, GetItem, Query, SendMessageBatch, PutEvents, PutSecretValue
    // (+ CreateSecret on the first write), GetSecretValue; the cache served the load.
    let calls = line["AwsApiCalls"].as_f64().unwrap();
    assert!(calls >= 9.0, "{line}");
    assert!(line["AwsApiAttempts"].as_f64().unwrap() >= calls, "{line}");
}
