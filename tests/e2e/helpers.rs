//! Shared helpers: a small test task that drives every harness path, and a local app around it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backbone::SecretString;
use backbone::clock::ManualClock;
use backbone::config::HarnessConfig;
use backbone::error::{Classify, ErrorClass};
use backbone::harness::{Cx, Task};
use backbone::local::faults::{FaultPlan, Faulty};
use backbone::local::{LocalDb, LocalFunction, LocalQueues, LocalRuntime};
use backbone::ports::{ItemKey, PutCondition, Query, Secrets, Store};
use backbone::telemetry::Capture;
use backbone::validate::{ArtistId, Validate, ValidationError};
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const ARTIST: &str = "4Z8W4fKeB5YxbusRsdQVPb";
pub const OTHER_ARTIST: &str = "0OdUWJ0sBjDrqHygGUXeCF";
pub const SECRET_VALUE: &str = "sk-live-very-secret-value-123";

/// How the test task should behave for one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Ok,
    Transient,
    RateLimited,
    Permanent,
    Panic,
    /// Holds the idempotency lock for a while before succeeding.
    Slow,
    /// Fans out two follow-up messages.
    FanOut,
}

/// The test task's input: credit `amount` plays to an artist.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credit {
    pub artist: ArtistId,
    pub amount: i64,
    #[serde(default)]
    pub mode: Mode,
    /// The business key, when the producer has one.
    #[serde(default)]
    pub key: Option<String>,
}

impl Validate for Credit {
    fn validate(&self) -> Result<(), ValidationError> {
        if !(1..=1_000_000).contains(&self.amount) {
            return Err(ValidationError::new(
                "body.amount",
                format!("must be 1 to 1000000, got {}", self.amount),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error("store unavailable")]
    Transient,
    #[error("quota exceeded")]
    RateLimited,
    #[error("artist deleted (credentials {0:?})")]
    Permanent(SecretString),
    #[error(transparent)]
    Port(#[from] backbone::error::PortError),
}

impl Classify for CreditError {
    fn class(&self) -> ErrorClass {
        match self {
            CreditError::Transient => ErrorClass::Transient,
            CreditError::RateLimited => ErrorClass::RateLimited(Duration::from_secs(120)),
            CreditError::Permanent(_) => ErrorClass::Permanent,
            CreditError::Port(err) => err.class(),
        }
    }
}

/// Counts plays per artist in the store: each effective run adds `amount` once.
pub struct CreditTask {
    pub store: Arc<dyn Store>,
    pub runs: Arc<AtomicUsize>,
    pub credential: SecretString,
    /// Where the task reads its credential on each run, when set (so Secrets faults reach it).
    pub secrets: Option<Arc<dyn Secrets>>,
}

/// The secret name the test task reads.
pub const CREDIT_SECRET: &str = "credit/api-key";

/// Secrets held in memory: the test task's credential.
pub struct MemorySecrets(pub SecretString);

#[async_trait]
impl Secrets for MemorySecrets {
    async fn get(&self, name: &str) -> Result<SecretString, backbone::error::PortError> {
        if name == CREDIT_SECRET {
            Ok(self.0.clone())
        } else {
            Err(backbone::error::PortError::permanent(
                "secrets.get",
                std::io::Error::other(format!("no secret {name}")),
            ))
        }
    }

    async fn put(
        &self,
        _name: &str,
        value: &SecretString,
    ) -> Result<(), backbone::error::PortError> {
        let _ = value;
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreditOutput {
    pub total: i64,
}

#[async_trait]
impl Task for CreditTask {
    const NAME: &'static str = "credit-test";
    type Input = Credit;
    type Output = CreditOutput;
    type Error = CreditError;

    fn idempotency_key(&self, input: &Credit) -> Option<String> {
        input.key.clone()
    }

    fn subject(&self, input: &Credit) -> String {
        input.artist.to_string()
    }

    async fn run(&self, input: Credit, cx: &Cx) -> Result<CreditOutput, CreditError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if let Some(secrets) = &self.secrets {
            secrets.get(CREDIT_SECRET).await?;
        }
        tracing::info!(artist = %input.artist, credential = ?self.credential, "crediting");
        match input.mode {
            Mode::Transient => return Err(CreditError::Transient),
            Mode::RateLimited => return Err(CreditError::RateLimited),
            Mode::Permanent => return Err(CreditError::Permanent(self.credential.clone())),
            Mode::Panic => panic!("test task panicked on purpose"),
            Mode::Slow => tokio::time::sleep(Duration::from_millis(300)).await,
            Mode::FanOut => {
                for amount in [1, 2] {
                    let follow_up = Credit {
                        artist: input.artist.clone(),
                        amount,
                        mode: Mode::Ok,
                        key: None,
                    };
                    cx.enqueue(&follow_up).map_err(|_| CreditError::Transient)?;
                }
            }
            Mode::Ok => {}
        }
        // The effect is keyed by the business key and written conditionally: a re-run after a
        // crash between the effect and the harness's completion record changes nothing.
        let business_key = match &input.key {
            Some(key) => key.clone(),
            None => backbone::hash::hash_json(&input).map_err(|_| CreditError::Transient)?,
        };
        let key = ItemKey::new(
            format!("artist#{}", input.artist),
            format!("credit#{business_key}"),
        );
        match self
            .store
            .put(
                &key,
                &json!({ "amount": input.amount }),
                PutCondition::NotExists,
                None,
            )
            .await
        {
            Ok(_) | Err(backbone::error::PortError::Conflict { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        cx.record(
            input.artist.to_string(),
            "plays.credited",
            json!({ "amount": input.amount }),
        );
        let total = total_plays(self.store.as_ref(), input.artist.as_str()).await?;
        Ok(CreditOutput { total })
    }
}

/// The plays credited to `artist`: the sum of its credit items.
pub async fn total_plays(
    store: &dyn Store,
    artist: &str,
) -> Result<i64, backbone::error::PortError> {
    let query = Query::partition(format!("artist#{artist}")).prefix("credit#");
    let items = backbone::ports::store::query_all(store, query, 10_000).await?;
    Ok(items.iter().filter_map(|i| i.data["amount"].as_i64()).sum())
}

/// A local app: the test task on the embedded adapters, with captured logs and metrics.
pub struct App {
    pub runtime: LocalRuntime,
    pub function: LocalFunction<CreditTask>,
    pub runs: Arc<AtomicUsize>,
    pub capture: Capture,
    pub clock: Arc<ManualClock>,
    pub db: LocalDb,
}

impl App {
    pub fn spawn() -> Self {
        Self::with_config(HarnessConfig::for_task(CreditTask::NAME))
    }

    pub fn with_config(config: HarnessConfig) -> Self {
        Self::build(config, None, backbone::local::MAX_RECEIVE_COUNT)
    }

    /// An app whose harness ports fail on a share of calls (`harness_faults`), and whose task
    /// store fails too, before the write only (a lost `ADD` acknowledgement double-counts by
    /// nature, whatever the harness does).
    pub fn build(
        config: HarnessConfig,
        faults: Option<(Arc<FaultPlan>, Arc<FaultPlan>)>,
        max_receive_count: u32,
    ) -> Self {
        let db = LocalDb::in_memory().expect("in-memory database");
        let capture = Capture::new();
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
        ));
        let mut runtime = LocalRuntime::new(db.clone(), clock.clone(), Arc::new(capture.clone()));
        runtime.max_receive_count = max_receive_count;
        let (store, secrets): (Arc<dyn Store>, Option<Arc<dyn Secrets>>) = match &faults {
            None => (Arc::new(db.clone()), None),
            Some((harness_faults, store_faults)) => {
                runtime.faults = Some(harness_faults.clone());
                store_faults.set_lost_acks(false);
                let secrets = MemorySecrets(SecretString::from(SECRET_VALUE));
                (
                    Arc::new(Faulty::new(Arc::new(db.clone()), store_faults.clone())),
                    Some(Arc::new(Faulty::new(
                        Arc::new(secrets),
                        store_faults.clone(),
                    ))),
                )
            }
        };
        let runs = Arc::new(AtomicUsize::new(0));
        let task = CreditTask {
            store,
            runs: runs.clone(),
            credential: SecretString::from(SECRET_VALUE),
            secrets,
        };
        let function = runtime.harness(task, config);
        Self {
            runtime,
            function,
            runs,
            capture,
            clock,
            db,
        }
    }

    /// A second function instance on the same database and queue: a concurrent consumer.
    pub fn second_consumer(app: &App, config: HarnessConfig) -> LocalFunction<CreditTask> {
        let task = CreditTask {
            store: Arc::new(app.db.clone()),
            runs: app.runs.clone(),
            credential: SecretString::from(SECRET_VALUE),
            secrets: None,
        };
        app.runtime.harness(task, config)
    }

    pub fn queues(&self) -> LocalQueues {
        self.runtime.queues(CreditTask::NAME)
    }

    pub async fn plays(&self, artist: &str) -> i64 {
        total_plays(&self.db, artist).await.unwrap()
    }

    /// How many times the task completed for `subject`, by the audit log's completion records.
    pub async fn completions(&self, subject: &str) -> usize {
        backbone::ports::AuditStore::read(&self.db, "credit-test", 0, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.action == "completed" && r.subject == subject)
            .count()
    }

    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

/// One SQS record as Lambda delivers it.
pub fn sqs_record(id: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("rh-{id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764061200000",
            "AWSTraceHeader": "Root=1-6925f5a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:credit-test",
        "awsRegion": "eu-west-1"
    })
}

pub fn batch(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

pub fn credit(artist: &str, amount: i64) -> String {
    json!({ "artist": artist, "amount": amount }).to_string()
}

pub fn credit_mode(artist: &str, amount: i64, mode: &str) -> String {
    json!({ "artist": artist, "amount": amount, "mode": mode }).to_string()
}

pub fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .expect("an SQS batch response")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// A fixture file under `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
