//! Creates the stack's tables, queues and bus on an AWS endpoint, with the key schemas and
//! redrive policy of `template.yaml`: for the emulator in tests, soak runs and local stacks.
//! Deployments use the SAM template, never this.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::AwsConfig;
use crate::error::PortError;

fn failed(operation: &'static str) -> impl Fn(String) -> PortError {
    move |message| PortError::permanent(operation, std::io::Error::other(message))
}

async fn table(
    sdk: &aws_config::SdkConfig,
    name: &str,
    keys: &[(&str, ScalarAttributeType, KeyType)],
) -> Result<(), PortError> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attribute, kind, key_type) in keys {
        let definition = AttributeDefinition::builder()
            .attribute_name(*attribute)
            .attribute_type(kind.clone())
            .build()
            .map_err(|e| failed("provision.table")(e.to_string()))?;
        let key = KeySchemaElement::builder()
            .attribute_name(*attribute)
            .key_type(key_type.clone())
            .build()
            .map_err(|e| failed("provision.table")(e.to_string()))?;
        request = request.attribute_definitions(definition).key_schema(key);
    }
    request.send().await.map_err(|e| {
        failed("provision.table")(format!(
            "{name}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        ))
    })?;
    Ok(())
}

/// A work queue with its dead-letter queue; a message received `max_receive_count` times goes
/// to the dead-letter queue. Returns `(work queue URL, dead-letter queue URL)`.
pub async fn queues(
    sdk: &aws_config::SdkConfig,
    name: &str,
    visibility_timeout_seconds: u32,
    max_receive_count: u32,
) -> Result<(String, String), PortError> {
    let client = aws_sdk_sqs::Client::new(sdk);
    let error = |e: aws_sdk_sqs::error::SdkError<_>| {
        failed("provision.queue")(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
    };
    let dlq = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .map_err(error)?;
    let dlq_url = dlq.queue_url().unwrap_or_default().to_owned();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| {
            failed("provision.queue")(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
        })?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let redrive =
        serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count })
            .to_string();
    let work = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout_seconds.to_string(),
        )
        .send()
        .await
        .map_err(|e| {
            failed("provision.queue")(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
        })?;
    Ok((work.queue_url().unwrap_or_default().to_owned(), dlq_url))
}

/// Creates every resource of one function's stack under `prefix` and returns their names, as
/// the template would set them in the environment.
pub async fn stack(
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    visibility_timeout_seconds: u32,
    max_receive_count: u32,
) -> Result<AwsConfig, PortError> {
    let config = AwsConfig {
        store_table: format!("{prefix}-store"),
        idempotency_table: format!("{prefix}-idempotency"),
        audit_table: format!("{prefix}-audit"),
        work_queue_url: String::new(),
        dead_letter_queue_url: String::new(),
        event_bus_name: format!("{prefix}-bus"),
        spotify_secret_id: Some(format!("{prefix}/spotify")),
    };
    use KeyType::{Hash, Range};
    use ScalarAttributeType::{N, S};
    table(
        sdk,
        &config.store_table,
        &[("pk", S, Hash), ("sk", S, Range)],
    )
    .await?;
    table(sdk, &config.idempotency_table, &[("id", S, Hash)]).await?;
    table(
        sdk,
        &config.audit_table,
        &[("stream", S, Hash), ("seq", N, Range)],
    )
    .await?;
    aws_sdk_eventbridge::Client::new(sdk)
        .create_event_bus()
        .name(&config.event_bus_name)
        .send()
        .await
        .map_err(|e| {
            failed("provision.bus")(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
        })?;
    let (work, dlq) = queues(
        sdk,
        &format!("{prefix}-work"),
        visibility_timeout_seconds,
        max_receive_count,
    )
    .await?;
    Ok(AwsConfig {
        work_queue_url: work,
        dead_letter_queue_url: dlq,
        ..config
    })
}
