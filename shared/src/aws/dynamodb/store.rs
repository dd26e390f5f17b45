//! [`Store`] on one DynamoDB table (single-table design).
//!
//! Key schema: partition key `pk` (S), sort key `sk` (S), on-demand capacity, TTL on
//! `expires_at`. Attributes of an item:
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `pk`, `sk` | S | the [`ItemKey`] |
//! | `version` | N | optimistic-concurrency token, +1 per `put`; 0 for an item only `add` touched |
//! | `data` | S | the document as JSON text |
//! | `expires_at` | N | TTL, epoch seconds; absent keeps the item |
//! | `counter:<name>` | N | one attribute per counter, changed only by atomic `ADD` |
//!
//! `data` is JSON text rather than a DynamoDB map on purpose: any JSON value round-trips
//! exactly (floats beyond DynamoDB's number range, `null`s, empty strings, key order of nothing
//! but JSON), and the document is read and written whole anyway. Counters are top-level
//! attributes so `ADD` can create them without the parent map having to exist.
//!
//! Conditions are evaluated by DynamoDB (`ConditionExpression`), never by read-then-write, and
//! an item whose `expires_at` has passed counts as absent for conditions and reads, as in the
//! SQLite adapter. Query cursors are the `LastEvaluatedKey` of the last returned item, opaque
//! to callers (hex of `[pk, sk]`).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::{Attrs, RawItem, n, s};
use crate::aws::{adapter_error, sdk_error};
use crate::error::PortError;
use crate::ports::{Item, ItemKey, Page, PutCondition, Query, SkRange, Store};

/// Largest page a query returns, as in the SQLite adapter.
const MAX_PAGE: usize = 1000;
/// Prefix of counter attribute names.
const COUNTER_PREFIX: &str = "counter:";
/// Attempts of an unconditional put that keeps racing between "exists" and "absent".
const MAX_PUT_ATTEMPTS: u32 = 8;

/// The task data store on DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// The store in `table` (key schema in the module docs).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// A store item on the wire.
pub(crate) struct StoreItem(pub(crate) RawItem);

impl TryFrom<StoreItem> for Item {
    type Error = PortError;

    fn try_from(raw: StoreItem) -> Result<Self, Self::Error> {
        let attrs = Attrs::new(&raw.0, "store.decode");
        let data = match attrs.opt_string("data")? {
            Some(text) => serde_json::from_str(&text).map_err(|err| {
                adapter_error("store.decode", format!("data is not JSON: {err}")).permanent()
            })?,
            // An item only `add` created has no document yet: the SQLite adapter's `{}`.
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        let mut counters = BTreeMap::new();
        for name in raw.0.keys() {
            if let Some(counter) = name.strip_prefix(COUNTER_PREFIX) {
                counters.insert(counter.to_owned(), attrs.number::<i64>(name)?);
            }
        }
        Ok(Item {
            key: ItemKey::new(attrs.string("pk")?, attrs.string("sk")?),
            version: attrs.opt_number("version")?.unwrap_or(0),
            data,
            counters,
            expires_at: attrs
                .opt_number::<i64>("expires_at")?
                .and_then(|at| DateTime::<Utc>::from_timestamp(at, 0)),
        })
    }
}

fn key_attributes(key: &ItemKey) -> RawItem {
    HashMap::from([("pk".to_owned(), s(&key.pk)), ("sk".to_owned(), s(&key.sk))])
}

fn live(item: &RawItem, now: i64) -> bool {
    match item.get("expires_at") {
        Some(AttributeValue::N(at)) => at.parse::<i64>().map_or(true, |at| at > now),
        _ => true,
    }
}

/// The opaque query cursor: hex of the JSON `[pk, sk]` of the last item returned.
fn encode_cursor(key: &ItemKey) -> String {
    hex::encode(serde_json::json!([key.pk, key.sk]).to_string())
}

fn decode_cursor(cursor: &str, pk: &str) -> Result<RawItem, PortError> {
    let malformed = || adapter_error("store.query", "malformed cursor").permanent();
    let bytes = hex::decode(cursor).map_err(|_| malformed())?;
    let (cursor_pk, sk): (String, String) =
        serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    if cursor_pk != pk {
        return Err(
            adapter_error("store.query", "cursor belongs to another partition").permanent(),
        );
    }
    Ok(key_attributes(&ItemKey::new(cursor_pk, sk)))
}

fn is_condition_failure<E>(
    err: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

impl DynamoStore {
    /// One conditional `UpdateItem` writing the document with `version` (an update expression
    /// whose value is `written` when known in advance); returns the new version, or `Ok(None)`
    /// when the condition failed.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        key: &ItemKey,
        data: &str,
        expires_at: Option<i64>,
        condition: &str,
        version: &str,
        written: Option<u64>,
        mut values: HashMap<String, AttributeValue>,
        now: i64,
    ) -> Result<Option<u64>, PortError> {
        let mut update = format!("SET #data = :data, #version = {version}");
        values.insert(":data".into(), s(data));
        match expires_at {
            Some(at) => {
                update.push_str(", #exp = :exp");
                values.insert(":exp".into(), n(at));
            }
            None => update.push_str(" REMOVE #exp"),
        }
        values.insert(":now".into(), n(now));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#data", "data")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#exp", "expires_at")
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                // UPDATED_NEW may leave out a value that did not change (moto does, for a
                // version set to the value it had): fall back to the one we wrote.
                let attributes = output.attributes.unwrap_or_default();
                match Attrs::new(&attributes, "store.put").opt_number("version")? {
                    Some(version) => Ok(Some(version)),
                    None => written.map(Some).ok_or_else(|| {
                        adapter_error("store.put", "version missing from the response").permanent()
                    }),
                }
            }
            Err(err) if is_condition_failure(&err) => Ok(None),
            Err(err) => Err(sdk_error("store.put", err)),
        }
    }
}

// Conditions over an item's liveness; `:now` is the current epoch second.
const ABSENT_OR_EXPIRED: &str = "attribute_not_exists(#pk) OR #exp <= :now";
const PRESENT_AND_LIVE: &str =
    "attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now)";

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("store.get", err))?;
        let now = Utc::now().timestamp();
        output
            .item
            .filter(|item| live(item, now))
            .map(|item| Item::try_from(StoreItem(item)))
            .transpose()
    }

    async fn put(
        &self,
        key: &ItemKey,
        data: &serde_json::Value,
        condition: PutCondition,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<u64, PortError> {
        let data = data.to_string();
        let expires_at = expires_at.map(|at| at.timestamp());
        let conflict = || PortError::Conflict {
            operation: "store.put",
        };
        let one = || HashMap::from([(":one".to_owned(), n(1))]);
        match condition {
            PutCondition::NotExists => self
                .write(
                    key,
                    &data,
                    expires_at,
                    ABSENT_OR_EXPIRED,
                    ":one",
                    Some(1),
                    one(),
                    Utc::now().timestamp(),
                )
                .await?
                .ok_or_else(conflict),
            PutCondition::Version(0) => {
                let mut values = one();
                values.insert(":zero".into(), n(0));
                let condition = format!("{ABSENT_OR_EXPIRED} OR #version = :zero");
                self.write(
                    key,
                    &data,
                    expires_at,
                    &condition,
                    ":one",
                    Some(1),
                    values,
                    Utc::now().timestamp(),
                )
                .await?
                .ok_or_else(conflict)
            }
            PutCondition::Version(expected) => {
                let next = expected.checked_add(1).ok_or_else(|| {
                    adapter_error("store.put", "version would overflow").permanent()
                })?;
                let values = HashMap::from([
                    (":expected".to_owned(), n(expected)),
                    (":next".to_owned(), n(next)),
                ]);
                let condition = format!("#version = :expected AND ({PRESENT_AND_LIVE})");
                self.write(
                    key,
                    &data,
                    expires_at,
                    &condition,
                    ":next",
                    Some(next),
                    values,
                    Utc::now().timestamp(),
                )
                .await?
                .ok_or_else(conflict)
            }
            PutCondition::Always => {
                // The new version depends on whether a live item is there; each branch is
                // conditional on that, so a concurrent create or expiry makes us try the
                // other. Two concurrent writers both succeed, one after the other.
                for _ in 0..MAX_PUT_ATTEMPTS {
                    let now = Utc::now().timestamp();
                    let mut values = one();
                    values.insert(":zero".into(), n(0));
                    let bumped = self
                        .write(
                            key,
                            &data,
                            expires_at,
                            PRESENT_AND_LIVE,
                            "if_not_exists(#version, :zero) + :one",
                            None,
                            values,
                            now,
                        )
                        .await?;
                    if let Some(version) = bumped {
                        return Ok(version);
                    }
                    let created = self
                        .write(
                            key,
                            &data,
                            expires_at,
                            ABSENT_OR_EXPIRED,
                            ":one",
                            Some(1),
                            one(),
                            now,
                        )
                        .await?;
                    if let Some(version) = created {
                        return Ok(version);
                    }
                }
                Err(adapter_error(
                    "store.put",
                    format!("item kept changing between {MAX_PUT_ATTEMPTS} attempts"),
                )
                .transient())
            }
        }
    }

    async fn delete(&self, key: &ItemKey) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .send()
            .await
            .map_err(|err| sdk_error("store.delete", err))?;
        Ok(())
    }

    async fn query(&self, query: &Query) -> Result<Page, PortError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let mut names = HashMap::from([("#pk".to_owned(), "pk".to_owned())]);
        let mut values = HashMap::from([(":pk".to_owned(), s(&query.pk))]);
        let mut key_condition = "#pk = :pk".to_owned();
        match &query.range {
            SkRange::All => {}
            // DynamoDB refuses empty key values; an empty prefix is the whole partition.
            SkRange::Prefix(prefix) if prefix.is_empty() => {}
            SkRange::Prefix(prefix) => {
                key_condition.push_str(" AND begins_with(#sk, :prefix)");
                names.insert("#sk".into(), "sk".into());
                values.insert(":prefix".into(), s(prefix));
            }
            // DynamoDB refuses a reversed range; SQL just finds nothing. Sort keys are never
            // empty in DynamoDB, so `to == ""` finds nothing as well.
            SkRange::Between(from, to) if from > to || to.is_empty() => {
                return Ok(Page {
                    items: Vec::new(),
                    next: None,
                });
            }
            SkRange::Between(from, to) if from.is_empty() => {
                key_condition.push_str(" AND #sk <= :to");
                names.insert("#sk".into(), "sk".into());
                values.insert(":to".into(), s(to));
            }
            SkRange::Between(from, to) => {
                key_condition.push_str(" AND #sk BETWEEN :from AND :to");
                names.insert("#sk".into(), "sk".into());
                values.insert(":from".into(), s(from));
                values.insert(":to".into(), s(to));
            }
        }
        names.insert("#exp".into(), "expires_at".into());
        values.insert(":now".into(), n(Utc::now().timestamp()));
        let mut start = query
            .cursor
            .as_deref()
            .map(|cursor| decode_cursor(cursor, &query.pk))
            .transpose()?;

        // `Limit` counts items before the expiry filter and a response stops at 1 MB, so read
        // until one item more than the page is found (to know whether there is a next page) or
        // the partition ends.
        let mut items: Vec<Item> = Vec::new();
        loop {
            let wanted = (limit + 1 - items.len()) as i32;
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&key_condition)
                .filter_expression("attribute_not_exists(#exp) OR #exp > :now")
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!query.descending)
                .consistent_read(true)
                .limit(wanted)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|err| sdk_error("store.query", err))?;
            for raw in output.items.unwrap_or_default() {
                items.push(Item::try_from(StoreItem(raw))?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() && items.len() <= limit => start = Some(key),
                _ => break,
            }
        }
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|item| encode_cursor(&item.key))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn add(
        &self,
        key: &ItemKey,
        deltas: &[(&str, i64)],
    ) -> Result<BTreeMap<String, i64>, PortError> {
        // `version` is set to 0 on an item `add` creates, as the SQLite adapter does, so a later
        // `put` with `NotExists` sees it exists.
        let mut update = String::new();
        let mut names = HashMap::from([("#version".to_owned(), "version".to_owned())]);
        let mut values = HashMap::from([(":zero".to_owned(), n(0))]);
        for (i, (name, delta)) in deltas.iter().enumerate() {
            update.push_str(if i == 0 { "ADD " } else { ", " });
            update.push_str(&format!("#c{i} :d{i}"));
            names.insert(format!("#c{i}"), format!("{COUNTER_PREFIX}{name}"));
            values.insert(format!(":d{i}"), n(delta));
        }
        update.push_str(" SET #version = if_not_exists(#version, :zero)");
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .update_expression(update)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|err| sdk_error("store.add", err))?;
        let attributes = output.attributes.unwrap_or_default();
        let attrs = Attrs::new(&attributes, "store.add");
        let mut counters = BTreeMap::new();
        for name in attributes.keys() {
            if let Some(counter) = name.strip_prefix(COUNTER_PREFIX) {
                counters.insert(counter.to_owned(), attrs.number::<i64>(name)?);
            }
        }
        Ok(counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_partition() {
        let key = ItemKey::new("artist#1", "snapshot#2026-11-25");
        let cursor = encode_cursor(&key);
        let start = decode_cursor(&cursor, "artist#1").unwrap();
        assert_eq!(start.get("sk"), Some(&s("snapshot#2026-11-25")));
        assert!(decode_cursor(&cursor, "artist#2").is_err());
        assert!(decode_cursor("zz", "artist#1").is_err());
    }

    #[test]
    fn item_decodes_counters_and_defaults() {
        let raw: RawItem = HashMap::from([
            ("pk".to_owned(), s("a")),
            ("sk".to_owned(), s("b")),
            ("counter:plays".to_owned(), n(3)),
        ]);
        let item = Item::try_from(StoreItem(raw)).unwrap();
        assert_eq!(item.version, 0);
        assert_eq!(item.data, serde_json::json!({}));
        assert_eq!(item.counters.get("plays"), Some(&3));
    }
}
