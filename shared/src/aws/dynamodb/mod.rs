//! The DynamoDB adapters: one table per port, each with its key schema documented in its
//! module ([`store`], [`idempotency`], [`audit`]).
//!
//! Every read is strongly consistent, as the SQLite adapter's are (a task reads its own
//! writes). TTL attributes are epoch seconds, as DynamoDB's TTL wants; since DynamoDB deletes
//! expired items lazily (within days), every read also filters them out, so an expired item
//! counts as absent exactly as in the SQLite adapter.
//!
//! No port operation writes in batches, so `BatchWriteItem` and its `UnprocessedItems` do not
//! arise; throttling of single-item calls is retried by the SDK (standard mode) and then
//! surfaces as [`PortError::Transient`].

pub mod audit;
pub mod idempotency;
pub mod store;

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;

use super::adapter_error;
use crate::error::PortError;

pub use audit::DynamoAuditStore;
pub use idempotency::DynamoIdempotencyStore;
pub use store::DynamoStore;

/// A DynamoDB item as the SDK returns it.
pub(crate) type RawItem = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Typed reads of an item's attributes; a missing or mistyped attribute is corrupt data
/// (permanent), named with the operation and the attribute.
pub(crate) struct Attrs<'a> {
    pub(crate) item: &'a RawItem,
    pub(crate) operation: &'static str,
}

impl<'a> Attrs<'a> {
    /// Reads `item` on behalf of `operation`.
    pub(crate) fn new(item: &'a RawItem, operation: &'static str) -> Self {
        Self { item, operation }
    }

    fn corrupt(&self, what: String) -> PortError {
        adapter_error(self.operation, what).permanent()
    }

    /// A required string attribute.
    pub(crate) fn string(&self, name: &str) -> Result<String, PortError> {
        self.opt_string(name)?
            .ok_or_else(|| self.corrupt(format!("attribute {name} is missing")))
    }

    /// An optional string attribute (absent or NULL is `None`).
    pub(crate) fn opt_string(&self, name: &str) -> Result<Option<String>, PortError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
            Some(_) => Err(self.corrupt(format!("attribute {name} is not a string"))),
        }
    }

    /// A required number attribute.
    pub(crate) fn number<T: FromStr>(&self, name: &str) -> Result<T, PortError> {
        self.opt_number(name)?
            .ok_or_else(|| self.corrupt(format!("attribute {name} is missing")))
    }

    /// An optional number attribute.
    pub(crate) fn opt_number<T: FromStr>(&self, name: &str) -> Result<Option<T>, PortError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(value)) => value
                .parse()
                .map(Some)
                .map_err(|_| self.corrupt(format!("attribute {name} is out of range"))),
            Some(_) => Err(self.corrupt(format!("attribute {name} is not a number"))),
        }
    }
}
