//! What every contract test needs: the emulator's SDK configuration (or a clear skip / failure
//! without it), and fresh, uniquely named tables and queues per test.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

/// The emulator's SDK configuration, from `AWS_ENDPOINT_URL`.
///
/// Without it: under CI this panics (the AWS half of the contract must not pass by not
/// running); elsewhere it prints a notice and the test returns early.
pub async fn moto() -> Option<SdkConfig> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.trim().is_empty() => Some(
            aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                // Dummy credentials: moto accepts any; nothing here can reach AWS.
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "testing",
                    "testing",
                    None,
                    None,
                    "contract-tests",
                ))
                .endpoint_url(url.trim())
                .load()
                .await,
        ),
        _ if std::env::var_os("CI").is_some() => panic!(
            "AWS_ENDPOINT_URL is not set but CI is: the AWS contract tests need the emulator \
             (scripts/test.sh starts it; by hand: infra/moto.sh start && source .local/moto.env)"
        ),
        _ => {
            eprintln!(
                "skipping the AWS half of this test: AWS_ENDPOINT_URL is not set \
                 (run infra/moto.sh start && source .local/moto.env)"
            );
            None
        }
    }
}

/// Returns from the test early (after the notice) when the emulator is not configured.
#[macro_export]
macro_rules! require_moto {
    () => {
        match $crate::helpers::moto().await {
            Some(sdk) => sdk,
            None => return,
        }
    };
}

/// A name nobody else uses: `prefix-<uuid>`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn create_table(
    sdk: &SdkConfig,
    prefix: &str,
    keys: &[(&str, ScalarAttributeType, KeyType)],
) -> String {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let name = unique(prefix);
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attribute, kind, key_type) in keys {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*attribute)
                    .attribute_type(kind.clone())
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*attribute)
                    .key_type(key_type.clone())
                    .build()
                    .unwrap(),
            );
    }
    request.send().await.unwrap();
    name
}

/// A store table as the SAM template declares it: `pk` (S) / `sk` (S).
pub async fn store_table(sdk: &SdkConfig) -> String {
    create_table(
        sdk,
        "store",
        &[
            ("pk", ScalarAttributeType::S, KeyType::Hash),
            ("sk", ScalarAttributeType::S, KeyType::Range),
        ],
    )
    .await
}

/// An idempotency table as the SAM template declares it (Powertools' layout): `id` (S).
pub async fn idempotency_table(sdk: &SdkConfig) -> String {
    create_table(
        sdk,
        "idempotency",
        &[("id", ScalarAttributeType::S, KeyType::Hash)],
    )
    .await
}

/// An audit table as the SAM template declares it: `stream` (S) / `seq` (N).
pub async fn audit_table(sdk: &SdkConfig) -> String {
    create_table(
        sdk,
        "audit",
        &[
            ("stream", ScalarAttributeType::S, KeyType::Hash),
            ("seq", ScalarAttributeType::N, KeyType::Range),
        ],
    )
    .await
}

/// A new standard queue; returns its URL.
pub async fn queue(sdk: &SdkConfig, prefix: &str) -> String {
    aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(unique(prefix))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// A fresh in-memory SQLite database: the embedded adapters' backend.
pub fn local_db() -> backbone::local::LocalDb {
    backbone::local::LocalDb::in_memory().unwrap()
}
