//! `IdempotencyStore` (through the `Idempotency` state machine): SQLite and DynamoDB; and the
//! killed-invocation scenario over idempotency, store and audit together.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use backbone::audit::{AuditEntry, AuditLog};
use backbone::aws::{DynamoAuditStore, DynamoIdempotencyStore, DynamoStore};
use backbone::clock::{Clock, ManualClock};
use backbone::error::PortError;
use backbone::idempotency::{Begin, Idempotency, IdempotencyError};
use backbone::ports::{
    AuditStore, IdempotencyRecord, IdempotencyStatus, IdempotencyStore, ItemKey,
    PutInProgressError, Store,
};
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::helpers::unique;

/// A whole second, so stored seconds and milliseconds compare exactly.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

async fn dynamo(sdk: &aws_config::SdkConfig) -> Arc<dyn IdempotencyStore> {
    Arc::new(DynamoIdempotencyStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        crate::helpers::idempotency_table(sdk).await,
    ))
}

macro_rules! idempotency_contract {
    ($($scenario:ident),* $(,)?) => { $(
        mod $scenario {
            #[tokio::test]
            async fn sqlite() {
                super::$scenario(std::sync::Arc::new(crate::helpers::local_db())).await;
            }

            #[tokio::test]
            async fn dynamodb() {
                let sdk = crate::require_moto!();
                super::$scenario(super::dynamo(&sdk).await).await;
            }
        }
    )* };
}

idempotency_contract!(
    completed_results_are_replayed,
    reused_key_with_other_payload_is_refused,
    expired_lock_is_taken_over,
    abandoned_lock_lets_a_retry_run,
    completed_record_expires,
    blocking_record_comes_back_intact,
    no_remaining_time_fails_closed,
    late_invocation_cannot_touch_the_owners_record,
);

fn machine(store: Arc<dyn IdempotencyStore>) -> (Idempotency, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let idempotency = Idempotency::new(store, clock.clone(), StdDuration::from_secs(3600));
    (idempotency, clock)
}

fn run(begin: Result<Begin, IdempotencyError>) -> backbone::idempotency::Lock {
    match begin {
        Ok(Begin::Run(lock)) => lock,
        other => panic!("expected to run, got {other:?}"),
    }
}

async fn completed_results_are_replayed(store: Arc<dyn IdempotencyStore>) {
    let (idempotency, clock) = machine(store.clone());
    let key = unique("task#msg");
    let deadline = clock.now() + Duration::seconds(60);
    let lock = run(idempotency.begin(&key, "hash-a", deadline).await);
    assert!(matches!(
        idempotency.begin(&key, "hash-a", deadline).await,
        Err(IdempotencyError::InProgress { .. })
    ));
    idempotency
        .complete(lock, r#"{"ok":true}"#.into())
        .await
        .unwrap();
    match idempotency.begin(&key, "hash-a", deadline).await {
        Ok(Begin::Replay(record)) => assert_eq!(record.result.as_deref(), Some(r#"{"ok":true}"#)),
        other => panic!("expected a replay, got {other:?}"),
    }
    let record = store.get(&key).await.unwrap().unwrap();
    assert_eq!(record.status, IdempotencyStatus::Completed);
    assert_eq!(record.in_progress_expires_at, None);
    assert_eq!(record.payload_hash, "hash-a");
    assert_eq!(record.expires_at, t0() + Duration::hours(1));
}

async fn reused_key_with_other_payload_is_refused(store: Arc<dyn IdempotencyStore>) {
    let (idempotency, clock) = machine(store);
    let key = unique("task#msg");
    let deadline = clock.now() + Duration::seconds(60);
    let lock = run(idempotency.begin(&key, "hash-a", deadline).await);
    assert!(matches!(
        idempotency.begin(&key, "hash-b", deadline).await,
        Err(IdempotencyError::PayloadMismatch { .. })
    ));
    idempotency.complete(lock, "1".into()).await.unwrap();
    assert!(matches!(
        idempotency.begin(&key, "hash-b", deadline).await,
        Err(IdempotencyError::PayloadMismatch { .. })
    ));
}

async fn expired_lock_is_taken_over(store: Arc<dyn IdempotencyStore>) {
    let (idempotency, clock) = machine(store.clone());
    let key = unique("task#msg");
    let _crashed = run(idempotency
        .begin(&key, "h", clock.now() + Duration::seconds(30))
        .await);
    clock.advance(Duration::seconds(29));
    assert!(matches!(
        idempotency
            .begin(&key, "h", clock.now() + Duration::seconds(30))
            .await,
        Err(IdempotencyError::InProgress { .. })
    ));
    // At the deadline exactly, the lock is free (the condition is `<=`).
    clock.advance(Duration::seconds(1));
    let deadline = clock.now() + Duration::milliseconds(30_250);
    let lock = run(idempotency.begin(&key, "h", deadline).await);
    let record = store.get(&key).await.unwrap().unwrap();
    assert_eq!(record.status, IdempotencyStatus::InProgress);
    assert_eq!(record.in_progress_expires_at, Some(deadline));
    idempotency.complete(lock, "done".into()).await.unwrap();
}

async fn abandoned_lock_lets_a_retry_run(store: Arc<dyn IdempotencyStore>) {
    let (idempotency, clock) = machine(store.clone());
    let key = unique("task#msg");
    let deadline = clock.now() + Duration::seconds(60);
    let lock = run(idempotency.begin(&key, "h", deadline).await);
    idempotency.abandon(lock).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    let lock = run(idempotency.begin(&key, "h", deadline).await);
    idempotency.complete(lock, "x".into()).await.unwrap();
}

async fn completed_record_expires(store: Arc<dyn IdempotencyStore>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let idempotency = Idempotency::new(store, clock.clone(), StdDuration::from_secs(10));
    let key = unique("task#msg");
    let lock = run(idempotency
        .begin(&key, "h", clock.now() + Duration::seconds(5))
        .await);
    idempotency.complete(lock, "first".into()).await.unwrap();
    clock.advance(Duration::seconds(9));
    assert!(matches!(
        idempotency
            .begin(&key, "h", clock.now() + Duration::seconds(5))
            .await,
        Ok(Begin::Replay(_))
    ));
    clock.advance(Duration::seconds(1));
    let lock = run(idempotency
        .begin(
            &key,
            "other-payload-now-fine",
            clock.now() + Duration::seconds(5),
        )
        .await);
    idempotency.complete(lock, "second".into()).await.unwrap();
}

async fn blocking_record_comes_back_intact(store: Arc<dyn IdempotencyStore>) {
    let record = IdempotencyRecord {
        key: unique("task#msg"),
        status: IdempotencyStatus::InProgress,
        expires_at: t0() + Duration::hours(1),
        in_progress_expires_at: Some(t0() + Duration::milliseconds(59_999)),
        payload_hash: "abc".into(),
        result: None,
        lease: "lease-of-the-owner".into(),
    };
    store.put_in_progress(&record, t0()).await.unwrap();
    let mut second = record.clone();
    second.payload_hash = "def".into();
    match store
        .put_in_progress(&second, t0() + Duration::seconds(1))
        .await
    {
        Err(PutInProgressError::Exists(existing)) => assert_eq!(*existing, record),
        other => panic!("expected the existing record, got {other:?}"),
    }
    assert_eq!(store.get(&record.key).await.unwrap(), Some(record.clone()));
    // Completed records come back with their result.
    let mut done = record.clone();
    done.status = IdempotencyStatus::Completed;
    done.in_progress_expires_at = None;
    done.result = Some("[1,2]".into());
    store.update(&done).await.unwrap();
    match store
        .put_in_progress(&second, t0() + Duration::seconds(2))
        .await
    {
        Err(PutInProgressError::Exists(existing)) => assert_eq!(*existing, done),
        other => panic!("expected the completed record, got {other:?}"),
    }
    // Another lease can neither overwrite nor delete it.
    let mut rival = done.clone();
    rival.lease = "lease-of-a-late-invocation".into();
    rival.result = Some("[9]".into());
    assert!(matches!(
        store.update(&rival).await,
        Err(PortError::Conflict { .. })
    ));
    assert!(matches!(
        store.delete(&record.key, &rival.lease).await,
        Err(PortError::Conflict { .. })
    ));
    assert_eq!(store.get(&record.key).await.unwrap(), Some(done.clone()));
    store.delete(&record.key, &record.lease).await.unwrap();
    assert!(matches!(
        store.update(&done).await,
        Err(PortError::Conflict { .. })
    ));
    assert_eq!(store.get(&record.key).await.unwrap(), None);
    store.put_in_progress(&second, t0()).await.unwrap();
}

async fn no_remaining_time_fails_closed(store: Arc<dyn IdempotencyStore>) {
    let (idempotency, clock) = machine(store.clone());
    let key = unique("task#msg");
    for deadline in [
        clock.now(),
        clock.now() - Duration::seconds(1),
        DateTime::<Utc>::UNIX_EPOCH,
    ] {
        assert!(matches!(
            idempotency.begin(&key, "h", deadline).await,
            Err(IdempotencyError::NoLease { .. })
        ));
    }
    // Nothing was written: no lock without a lease.
    assert_eq!(store.get(&key).await.unwrap(), None);
    let lock = run(idempotency
        .begin(&key, "h", clock.now() + Duration::milliseconds(1))
        .await);
    let record = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        record.in_progress_expires_at,
        Some(clock.now() + Duration::milliseconds(1))
    );
    assert_eq!(record.lease, lock.lease());
    idempotency.complete(lock, "1".into()).await.unwrap();
}

async fn late_invocation_cannot_touch_the_owners_record(store: Arc<dyn IdempotencyStore>) {
    let (idempotency, clock) = machine(store.clone());
    let key = unique("task#msg");
    let late = run(idempotency
        .begin(&key, "h", clock.now() + Duration::seconds(30))
        .await);
    // The late invocation outlives its deadline; a redelivery takes the lock over.
    clock.advance(Duration::seconds(31));
    let owner = run(idempotency
        .begin(&key, "h", clock.now() + Duration::seconds(30))
        .await);
    assert_ne!(late.lease(), owner.lease());
    let late_lease = late.lease().to_owned();
    assert!(matches!(
        idempotency.complete(late, "\"late\"".into()).await,
        Err(PortError::Conflict { .. })
    ));
    let record = store.get(&key).await.unwrap().unwrap();
    assert_eq!(record.status, IdempotencyStatus::InProgress);
    assert_eq!(record.lease, owner.lease());
    // Nor can a late release delete the owner's lock.
    assert!(matches!(
        store.delete(&key, &late_lease).await,
        Err(PortError::Conflict { .. })
    ));
    idempotency
        .complete(owner, "\"owner\"".into())
        .await
        .unwrap();
    match idempotency
        .begin(&key, "h", clock.now() + Duration::seconds(30))
        .await
    {
        Ok(Begin::Replay(record)) => assert_eq!(record.result.as_deref(), Some("\"owner\"")),
        other => panic!("expected the owner's result, got {other:?}"),
    }
}

// --- a killed invocation -------------------------------------------------------------------

/// One delivery of a message whose effect is a counter increment plus its audit record.
async fn deliver(
    idempotency: &Idempotency,
    clock: &ManualClock,
    store: &dyn Store,
    log: &AuditLog,
    key: &str,
    effect: &ItemKey,
    stream: &str,
) -> Result<&'static str, IdempotencyError> {
    match idempotency
        .begin(key, "payload-hash", clock.now() + Duration::seconds(30))
        .await?
    {
        Begin::Replay(_) => Ok("replayed"),
        Begin::Run(lock) => {
            store.add(effect, &[("effects", 1)]).await?;
            log.append(AuditEntry {
                stream: stream.to_owned(),
                task: "contract".into(),
                version: "1".into(),
                trace_id: None,
                idempotency_key: Some(key.to_owned()),
                subject: "artist".into(),
                action: "effect.applied".into(),
                input_hash: "payload-hash".into(),
                outcome: "ok".into(),
                detail: serde_json::json!({}),
            })
            .await
            .map_err(|err| match err {
                backbone::audit::AuditError::Port(err) => IdempotencyError::Port(err),
                other => panic!("{other}"),
            })?;
            idempotency.complete(lock, "\"done\"".into()).await?;
            Ok("ran")
        }
    }
}

async fn killed_work_runs_once_after_the_lock_expires(
    idempotency_store: Arc<dyn IdempotencyStore>,
    store: &dyn Store,
    audit: Arc<dyn AuditStore>,
) {
    let clock = Arc::new(ManualClock::new(t0()));
    let idempotency = Idempotency::new(
        idempotency_store.clone(),
        clock.clone(),
        StdDuration::from_secs(3600),
    );
    let log = AuditLog::new(audit.clone(), clock.clone());
    let key = unique("contract#msg");
    let stream = unique("contract");
    let effect = ItemKey::new(unique("artist"), "effects");

    // The first invocation takes the lock, then is killed mid-work: its future is dropped
    // right after the IN_PROGRESS write, before any effect.
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let first = async {
        let begin = idempotency
            .begin(&key, "payload-hash", clock.now() + Duration::seconds(30))
            .await
            .unwrap();
        assert!(matches!(begin, Begin::Run(_)));
        locked_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = first => unreachable!("the work never finishes"),
        _ = locked_rx => {}
    }
    assert_eq!(
        idempotency_store.get(&key).await.unwrap().map(|r| r.status),
        Some(IdempotencyStatus::InProgress)
    );

    // A redelivery before the dead invocation's deadline must not run: SQS brings it back.
    let early = deliver(&idempotency, &clock, store, &log, &key, &effect, &stream).await;
    assert!(
        matches!(early, Err(IdempotencyError::InProgress { .. })),
        "{early:?}"
    );
    assert_eq!(store.get(&effect).await.unwrap(), None);

    // Once the deadline has passed, the retry takes the lock over and completes.
    clock.advance(Duration::seconds(31));
    assert_eq!(
        deliver(&idempotency, &clock, store, &log, &key, &effect, &stream)
            .await
            .unwrap(),
        "ran"
    );
    // Later duplicates replay the result.
    assert_eq!(
        deliver(&idempotency, &clock, store, &log, &key, &effect, &stream)
            .await
            .unwrap(),
        "replayed"
    );

    let counters = store.get(&effect).await.unwrap().unwrap().counters;
    assert_eq!(counters.get("effects"), Some(&1));
    let records = audit.read(&stream, 0, 100).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].idempotency_key.as_deref(), Some(key.as_str()));
    assert!(log.verify(&stream).await.unwrap().is_intact());
    assert_eq!(
        idempotency_store.get(&key).await.unwrap().map(|r| r.status),
        Some(IdempotencyStatus::Completed)
    );
}

mod killed_work_runs_once_after_the_lock_expires {
    use std::sync::Arc;

    #[tokio::test]
    async fn sqlite() {
        let db = crate::helpers::local_db();
        super::killed_work_runs_once_after_the_lock_expires(
            Arc::new(db.clone()),
            &db,
            Arc::new(db.clone()),
        )
        .await;
    }

    #[tokio::test]
    async fn dynamodb() {
        let sdk = crate::require_moto!();
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let idempotency = backbone::aws::DynamoIdempotencyStore::new(
            client.clone(),
            crate::helpers::idempotency_table(&sdk).await,
        );
        let store =
            super::DynamoStore::new(client.clone(), crate::helpers::store_table(&sdk).await);
        let audit = super::DynamoAuditStore::new(client, crate::helpers::audit_table(&sdk).await);
        super::killed_work_runs_once_after_the_lock_expires(
            Arc::new(idempotency),
            &store,
            Arc::new(audit),
        )
        .await;
    }
}
