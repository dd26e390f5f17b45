//! [`IdempotencyStore`] on DynamoDB, in the table layout of Powertools for AWS Lambda, so the
//! table can be shared with (or inspected like) Powertools' own.
//!
//! Key schema: partition key `id` (S), no sort key, TTL on `expiration`. Attributes:
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `id` | S | `{task}#{key}` |
//! | `status` | S | `INPROGRESS` or `COMPLETED` |
//! | `expiration` | N | TTL, epoch seconds |
//! | `in_progress_expiration` | N | while in progress: the invocation's deadline, epoch milliseconds |
//! | `validation` | S | SHA-256 of the canonical payload |
//! | `data` | S | the serialised result, once completed |
//! | `lease_token` | S | the fencing token of the invocation that took the lock (not Powertools') |
//!
//! The lock is one conditional `PutItem`; its condition is the SQLite adapter's liveness test,
//! evaluated by DynamoDB so two deliveries cannot both win. Completing (`PutItem`) and
//! releasing (`DeleteItem`) are conditional on `lease_token`, so a late invocation whose lock
//! was taken over cannot touch the new owner's record.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use chrono::{DateTime, Utc};

use super::{Attrs, RawItem, n, s};
use crate::aws::{adapter_error, sdk_error};
use crate::error::PortError;
use crate::ports::{IdempotencyRecord, IdempotencyStatus, IdempotencyStore, PutInProgressError};

/// A record is live unless missing, expired, or in progress past its in-progress expiry.
const TAKEOVER_CONDITION: &str = "attribute_not_exists(#id) OR #expiration <= :now \
     OR (#status = :inprogress AND #in_progress_expiration <= :now_ms)";

/// Writes after the lock: only by the invocation holding its lease.
const LEASE_CONDITION: &str = "#lease = :lease";

/// Attempts of the lock when the blocking record vanishes before it can be read.
const MAX_LOCK_ATTEMPTS: u32 = 3;

/// Idempotency records on DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoIdempotencyStore {
    client: Client,
    table: String,
}

impl DynamoIdempotencyStore {
    /// Records in `table` (key schema in the module docs).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn key(key: &str) -> RawItem {
        HashMap::from([("id".to_owned(), s(key))])
    }
}

/// An idempotency record on the wire.
pub(crate) struct IdempotencyItem(pub(crate) RawItem);

impl From<&IdempotencyRecord> for IdempotencyItem {
    fn from(record: &IdempotencyRecord) -> Self {
        let mut item = HashMap::from([
            ("id".to_owned(), s(&record.key)),
            ("status".to_owned(), s(record.status.as_str())),
            ("expiration".to_owned(), n(record.expires_at.timestamp())),
            ("validation".to_owned(), s(&record.payload_hash)),
            ("lease_token".to_owned(), s(&record.lease)),
        ]);
        if let Some(at) = record.in_progress_expires_at {
            item.insert("in_progress_expiration".into(), n(at.timestamp_millis()));
        }
        if let Some(result) = &record.result {
            item.insert("data".into(), s(result));
        }
        Self(item)
    }
}

impl TryFrom<IdempotencyItem> for IdempotencyRecord {
    type Error = PortError;

    fn try_from(item: IdempotencyItem) -> Result<Self, Self::Error> {
        let attrs = Attrs::new(&item.0, "idempotency.decode");
        let status = attrs.string("status")?;
        let corrupt = |what: &str| adapter_error("idempotency.decode", what).permanent();
        Ok(IdempotencyRecord {
            key: attrs.string("id")?,
            status: IdempotencyStatus::parse(&status).ok_or_else(|| corrupt("unknown status"))?,
            expires_at: DateTime::<Utc>::from_timestamp(attrs.number("expiration")?, 0)
                .ok_or_else(|| corrupt("expiration out of range"))?,
            in_progress_expires_at: attrs
                .opt_number::<i64>("in_progress_expiration")?
                .and_then(DateTime::<Utc>::from_timestamp_millis),
            payload_hash: attrs.string("validation")?,
            result: attrs.opt_string("data")?,
            lease: attrs.opt_string("lease_token")?.unwrap_or_default(),
        })
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn put_in_progress(
        &self,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<(), PutInProgressError> {
        for _ in 0..MAX_LOCK_ATTEMPTS {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(IdempotencyItem::from(record).0))
                .condition_expression(TAKEOVER_CONDITION)
                .expression_attribute_names("#id", "id")
                .expression_attribute_names("#expiration", "expiration")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#in_progress_expiration", "in_progress_expiration")
                .expression_attribute_values(":now", n(now.timestamp()))
                .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
                .expression_attribute_values(
                    ":inprogress",
                    s(IdempotencyStatus::InProgress.as_str()),
                )
                // The blocking record comes back with the failure: no second read, no race.
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let Some(PutItemError::ConditionalCheckFailedException(failed)) =
                err.as_service_error()
            else {
                return Err(sdk_error("idempotency.put", err).into());
            };
            let existing = match failed.item().cloned() {
                Some(item) => Some(item),
                // Emulators (and old SDK paths) may omit the item: read it instead.
                None => self.read(&record.key).await?,
            };
            if let Some(item) = existing {
                let existing = IdempotencyRecord::try_from(IdempotencyItem(item))?;
                return Err(PutInProgressError::Exists(Box::new(existing)));
            }
            // It was deleted (abandoned) between our put and our read: try again.
        }
        Err(adapter_error(
            "idempotency.put",
            format!("record kept changing during {MAX_LOCK_ATTEMPTS} attempts"),
        )
        .transient()
        .into())
    }

    async fn update(&self, record: &IdempotencyRecord) -> Result<(), PortError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(IdempotencyItem::from(record).0))
            .condition_expression(LEASE_CONDITION)
            .expression_attribute_names("#lease", "lease_token")
            .expression_attribute_values(":lease", s(&record.lease))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(PortError::Conflict {
                    operation: "idempotency.update",
                })
            }
            Err(err) => Err(sdk_error("idempotency.update", err)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, PortError> {
        self.read(key)
            .await?
            .map(|item| IdempotencyRecord::try_from(IdempotencyItem(item)))
            .transpose()
    }

    async fn delete(&self, key: &str, lease: &str) -> Result<(), PortError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .condition_expression(LEASE_CONDITION)
            .expression_attribute_names("#lease", "lease_token")
            .expression_attribute_values(":lease", s(lease))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(PortError::Conflict {
                    operation: "idempotency.delete",
                })
            }
            Err(err) => Err(sdk_error("idempotency.delete", err)),
        }
    }
}

impl DynamoIdempotencyStore {
    async fn read(&self, key: &str) -> Result<Option<RawItem>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("idempotency.get", err))?;
        Ok(output.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_with_powertools_names() {
        let record = IdempotencyRecord {
            key: "task#k".into(),
            status: IdempotencyStatus::InProgress,
            expires_at: DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap(),
            in_progress_expires_at: DateTime::<Utc>::from_timestamp_millis(1_800_000_000_123),
            payload_hash: "abc".into(),
            result: None,
            lease: "lease-1".into(),
        };
        let item = IdempotencyItem::from(&record);
        for name in [
            "id",
            "status",
            "expiration",
            "in_progress_expiration",
            "validation",
            "lease_token",
        ] {
            assert!(item.0.contains_key(name), "{name}");
        }
        assert_eq!(item.0.get("status"), Some(&s("INPROGRESS")));
        assert_eq!(IdempotencyRecord::try_from(item).unwrap(), record);
    }
}
