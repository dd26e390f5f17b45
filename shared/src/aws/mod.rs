//! Production adapters of every port, on the official AWS SDK for Rust (feature `aws`).
//!
//! - [`dynamodb`]: [`Store`](crate::ports::Store), [`IdempotencyStore`](crate::ports::IdempotencyStore)
//!   and [`AuditStore`](crate::ports::AuditStore), one table each;
//! - [`sqs`]: [`Queues`](crate::ports::Queues) (fan-out, dead letters, visibility delays);
//! - [`eventbridge`]: [`EventPublisher`](crate::ports::EventPublisher) on a custom bus;
//! - [`bedrock`] (feature `bedrock`): [`TextGenerator`](crate::ports::TextGenerator) on the
//!   Bedrock Converse API;
//! - [`s3`]: [`ObjectSource`](crate::ports::ObjectSource) for `s3://` locations;
//! - [`secrets`]: [`Secrets`](crate::ports::Secrets) on Secrets Manager (wrap it in
//!   [`CachedSecrets`](crate::secrets_cache::CachedSecrets)).
//!
//! Every SDK type (`AttributeValue`, SQS attributes, `SdkError`) stays inside these modules;
//! the rest of the crate sees ports and [`PortError`]. The adapters behave like the SQLite ones
//! in [`crate::local`]: one contract suite (`shared/tests/contract`) runs against both, the AWS
//! side on the moto emulator.
//!
//! The SDK configuration comes from the standard chain ([`load_sdk_config`]): in Lambda the
//! execution role; in tests `AWS_ENDPOINT_URL` points every client at the emulator.

#[cfg(feature = "bedrock")]
pub mod bedrock;
mod cold_start;
pub mod dynamodb;
pub mod eventbridge;
#[cfg(feature = "local")]
pub mod poller;
#[cfg(feature = "local")]
pub mod provision;
pub mod s3;
pub mod secrets;
pub mod sqs;

use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::config::{ConfigError, EnvSource, optional, required};
use crate::error::PortError;
use crate::telemetry::Metrics;

pub use cold_start::ColdStart;
pub use dynamodb::{DynamoAuditStore, DynamoIdempotencyStore, DynamoStore};
pub use eventbridge::EventBridgePublisher;
pub use s3::{S3Objects, s3_client, s3_config};
pub use secrets::SecretsManagerSecrets;
pub use sqs::SqsQueues;

/// The names of the AWS resources a function uses, from the environment (set by the SAM
/// template). Each missing variable stops the cold start with a [`ConfigError`] naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// `STORE_TABLE`: the single-table task data store.
    pub store_table: String,
    /// `IDEMPOTENCY_TABLE`: idempotency records (Powertools layout).
    pub idempotency_table: String,
    /// `AUDIT_TABLE`: the hash-chained audit log.
    pub audit_table: String,
    /// `WORK_QUEUE_URL`: the function's own work queue (fan-out, visibility delays).
    pub work_queue_url: String,
    /// `DEAD_LETTER_QUEUE_URL`: where messages that will never succeed go, with the reason.
    pub dead_letter_queue_url: String,
    /// `EVENT_BUS_NAME`: the custom bus alerts and domain events are published on.
    pub event_bus_name: String,
    /// `SPOTIFY_SECRET_ID`: name or ARN of the Spotify credentials secret. Set only for the
    /// functions that call Spotify (their roles alone may read it); building a Spotify client
    /// without it is the cold-start error.
    pub spotify_secret_id: Option<String>,
}

impl AwsConfig {
    /// Reads every resource name; the first missing variable is the error.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            store_table: required(env, "STORE_TABLE")?,
            idempotency_table: required(env, "IDEMPOTENCY_TABLE")?,
            audit_table: required(env, "AUDIT_TABLE")?,
            work_queue_url: required(env, "WORK_QUEUE_URL")?,
            dead_letter_queue_url: required(env, "DEAD_LETTER_QUEUE_URL")?,
            event_bus_name: required(env, "EVENT_BUS_NAME")?,
            spotify_secret_id: optional(env, "SPOTIFY_SECRET_ID"),
        })
    }
}

/// The SDK configuration from the standard provider chain (region, credentials, and
/// `AWS_ENDPOINT_URL` for the emulator), with the latest behaviour version. Load it once per
/// cold start and build every client from it.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// Every production adapter, built from one SDK configuration at cold start (clients are cheap
/// to clone and share one connection pool).
#[derive(Clone, Debug)]
pub struct AwsAdapters {
    /// The task data store.
    pub store: DynamoStore,
    /// Idempotency records.
    pub idempotency: DynamoIdempotencyStore,
    /// The audit log.
    pub audit: DynamoAuditStore,
    /// Work queue and dead-letter queue.
    pub queues: SqsQueues,
    /// The event bus.
    pub events: EventBridgePublisher,
    /// Secrets Manager (uncached: wrap in [`CachedSecrets`](crate::secrets_cache::CachedSecrets)).
    pub secrets: SecretsManagerSecrets,
    /// S3 objects (audio, reports), read with the function's role.
    pub objects: S3Objects,
}

impl AwsAdapters {
    /// Builds the clients once and the adapters on them.
    pub fn new(sdk: &aws_config::SdkConfig, config: &AwsConfig) -> Self {
        Self::build(sdk, config, None)
    }

    /// As [`AwsAdapters::new`], with every SDK call and attempt counted into `metrics`
    /// ([`CountApiCalls`]).
    pub fn with_metrics(sdk: &aws_config::SdkConfig, config: &AwsConfig, metrics: Metrics) -> Self {
        Self::build(sdk, config, Some(CountApiCalls::new(metrics)))
    }

    fn build(
        sdk: &aws_config::SdkConfig,
        config: &AwsConfig,
        counter: Option<CountApiCalls>,
    ) -> Self {
        // One builder per service, from the shared configuration, with the interceptor if any.
        macro_rules! client {
            ($sdk_crate:ident) => {{
                let mut builder = $sdk_crate::config::Builder::from(sdk);
                if let Some(counter) = &counter {
                    builder = builder.interceptor(counter.clone());
                }
                $sdk_crate::Client::from_conf(builder.build())
            }};
        }
        let dynamodb = client!(aws_sdk_dynamodb);
        Self {
            store: DynamoStore::new(dynamodb.clone(), config.store_table.clone()),
            idempotency: DynamoIdempotencyStore::new(
                dynamodb.clone(),
                config.idempotency_table.clone(),
            ),
            audit: DynamoAuditStore::new(dynamodb, config.audit_table.clone()),
            queues: SqsQueues::new(
                client!(aws_sdk_sqs),
                config.work_queue_url.clone(),
                config.dead_letter_queue_url.clone(),
            ),
            events: EventBridgePublisher::new(
                client!(aws_sdk_eventbridge),
                config.event_bus_name.clone(),
            ),
            secrets: SecretsManagerSecrets::new(client!(aws_sdk_secretsmanager)),
            objects: S3Objects::new({
                let mut builder = s3_config(sdk);
                if let Some(counter) = &counter {
                    builder = builder.interceptor(counter.clone());
                }
                aws_sdk_s3::Client::from_conf(builder.build())
            }),
        }
    }
}

/// An SDK interceptor counting into the invocation's EMF metrics: `AwsApiCalls` per operation
/// and `AwsApiAttempts` per HTTP attempt, so attempts minus calls are the SDK's own retries
/// (throttling shows up there before it becomes an error).
#[derive(Clone, Debug)]
pub struct CountApiCalls {
    metrics: Metrics,
}

impl CountApiCalls {
    /// Counts into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl aws_sdk_dynamodb::config::Intercept for CountApiCalls {
    fn name(&self) -> &'static str {
        "CountApiCalls"
    }

    fn read_before_execution(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.metrics.count("AwsApiCalls", 1);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.metrics.count("AwsApiAttempts", 1);
        Ok(())
    }
}

/// Error codes that mean "slow down or try again": throttling and service-side faults.
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "KmsThrottled",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "InternalServiceError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
];

/// Whether an AWS error code is worth retrying.
pub(crate) fn is_transient_code(code: &str) -> bool {
    TRANSIENT_CODES.contains(&code)
        // SQS's JSON protocol may prefix the legacy query-protocol names.
        || code.ends_with(".RequestThrottled")
        || code.ends_with(".InternalError")
}

/// Maps an SDK error into the port taxonomy: timeouts, connection failures, throttling and
/// 5xx are transient; everything else (missing table, access denied, validation) is permanent.
/// Conditional-check failures are matched by each adapter before it calls this.
pub(crate) fn sdk_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            ctx.err().code().is_some_and(is_transient_code) || ctx.raw().status().is_server_error()
        }
        _ => false,
    };
    // The SDK's error Display is terse ("service error"); keep the code and message.
    let source = AwsError {
        code: err.code().map(str::to_owned),
        message: err.message().map(str::to_owned),
        source: Box::new(err),
    };
    if transient {
        PortError::transient(operation, source)
    } else {
        PortError::permanent(operation, source)
    }
}

/// An SDK error with its AWS error code and message surfaced in `Display`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", code.as_deref().unwrap_or("error"), message.as_deref().unwrap_or("no message"))]
pub(crate) struct AwsError {
    code: Option<String>,
    message: Option<String>,
    #[source]
    source: crate::error::BoxError,
}

/// A failure the adapter found itself (bad stored data, items refused after retries).
pub(crate) fn adapter_error(operation: &'static str, what: impl Into<String>) -> AdapterError {
    AdapterError {
        operation,
        what: what.into(),
    }
}

/// A failure found by an adapter rather than reported by AWS.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {what}")]
pub(crate) struct AdapterError {
    operation: &'static str,
    what: String,
}

impl AdapterError {
    /// As a permanent port error.
    pub(crate) fn permanent(self) -> PortError {
        PortError::permanent(self.operation, self)
    }

    /// As a transient port error.
    pub(crate) fn transient(self) -> PortError {
        PortError::transient(self.operation, self)
    }
}

/// How many times batch calls resubmit the entries AWS reported as failed.
pub(crate) const MAX_BATCH_ATTEMPTS: u32 = 5;

/// Exponential backoff with full jitter for the `attempt`-th resubmission (from 1): 25 ms base,
/// capped at 1 s, so a bounded retry loop stays well inside a Lambda deadline.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap = 25u64.saturating_mul(1 << attempt.min(6)).min(1000);
    Duration::from_millis(rand::random_range(cap / 2..=cap))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn missing_variables_are_named() {
        let mut env: HashMap<&str, &str> = [
            ("STORE_TABLE", "store"),
            ("IDEMPOTENCY_TABLE", "idem"),
            ("AUDIT_TABLE", "audit"),
            ("WORK_QUEUE_URL", "http://q/work"),
            ("DEAD_LETTER_QUEUE_URL", "http://q/dlq"),
            ("EVENT_BUS_NAME", "music"),
        ]
        .into();
        // Only the functions that call Spotify are given its secret.
        assert_eq!(AwsConfig::from_env(&env).unwrap().spotify_secret_id, None);
        env.insert("SPOTIFY_SECRET_ID", "spotify/credentials");
        assert_eq!(
            AwsConfig::from_env(&env)
                .unwrap()
                .spotify_secret_id
                .as_deref(),
            Some("spotify/credentials")
        );
        env.insert("AUDIT_TABLE", " ");
        let err = AwsConfig::from_env(&env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable AUDIT_TABLE is required but not set"
        );
        env.insert("AUDIT_TABLE", "audit");
        let config = AwsConfig::from_env(&env).unwrap();
        assert_eq!(config.event_bus_name, "music");
    }

    #[test]
    fn throttling_codes_are_transient() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
            "AWS.SimpleQueueService.RequestThrottled",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        assert!(!is_transient_code("ResourceNotFoundException"));
        assert!(!is_transient_code("ValidationException"));
    }

    #[test]
    fn backoff_is_bounded() {
        for attempt in 0..40 {
            assert!(backoff(attempt) <= Duration::from_secs(1));
        }
    }
}
