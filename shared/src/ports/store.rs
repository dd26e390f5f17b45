//! `Store`: the task data (snapshots, cursors, playlists, rollups, alerts, drafts).
//!
//! A single-table model: every item has a partition key (`pk`, the entity, such as
//! `artist#<id>`) and a sort key (`sk`, the facet and date, such as `snapshot#2026-11-25`),
//! a JSON document, a version for optimistic concurrency, and named atomic counters.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PortError;

/// The key of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemKey {
    /// Partition key: the entity.
    pub pk: String,
    /// Sort key: the facet within the entity; ordered lexicographically.
    pub sk: String,
}

impl ItemKey {
    /// The key `pk` / `sk`.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// A stored item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Its key.
    pub key: ItemKey,
    /// Incremented by every `put`; the token for optimistic concurrency.
    pub version: u64,
    /// The document (a JSON object or value).
    pub data: serde_json::Value,
    /// Counters changed only by [`Store::add`], kept apart from the document.
    pub counters: BTreeMap<String, i64>,
    /// When the backend may drop the item (DynamoDB TTL); `None` keeps it.
    pub expires_at: Option<DateTime<Utc>>,
}

/// When a `put` may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCondition {
    /// Always (last writer wins).
    Always,
    /// Only if no item has this key.
    NotExists,
    /// Only if the stored item has this version (0 also accepts a missing item).
    Version(u64),
}

/// Which sort keys a query returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkRange {
    /// Every item of the partition.
    All,
    /// Sort keys starting with this prefix.
    Prefix(String),
    /// Sort keys from `.0` to `.1`, both included.
    Between(String, String),
}

/// A page-by-page read of one partition, in sort-key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The partition.
    pub pk: String,
    /// The sort keys wanted.
    pub range: SkRange,
    /// Newest (highest sort key) first.
    pub descending: bool,
    /// At most this many items per page (1 to 1000).
    pub limit: usize,
    /// Where the previous page stopped ([`Page::next`]).
    pub cursor: Option<String>,
}

impl Query {
    /// The first page of the whole partition `pk`, 100 items a page.
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            range: SkRange::All,
            descending: false,
            limit: 100,
            cursor: None,
        }
    }

    /// Restricts to sort keys starting with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.range = SkRange::Prefix(prefix.into());
        self
    }

    /// Restricts to sort keys between `from` and `to`, both included.
    pub fn between(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.range = SkRange::Between(from.into(), to.into());
        self
    }

    /// Newest first.
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    /// Page size.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The items, in the order asked for.
    pub items: Vec<Item>,
    /// Pass back as [`Query::cursor`] for the next page; `None` when this was the last.
    pub next: Option<String>,
}

/// The task data store.
#[async_trait]
pub trait Store: Send + Sync {
    /// The item at `key`, if any (an expired item counts as absent).
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, PortError>;

    /// Writes the document at `key` if `condition` holds, keeping its counters; returns the
    /// new version. A failed condition is [`PortError::Conflict`].
    async fn put(
        &self,
        key: &ItemKey,
        data: &serde_json::Value,
        condition: PutCondition,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<u64, PortError>;

    /// Removes the item at `key`; removing a missing item is not an error.
    async fn delete(&self, key: &ItemKey) -> Result<(), PortError>;

    /// One page of a partition.
    async fn query(&self, query: &Query) -> Result<Page, PortError>;

    /// Atomically adds each delta to its counter (creating the item and counters at 0),
    /// returning the counters' new values.
    async fn add(
        &self,
        key: &ItemKey,
        deltas: &[(&str, i64)],
    ) -> Result<BTreeMap<String, i64>, PortError>;
}

/// Reads every page of `query`; for bounded partitions only (the caller's limit applies).
pub async fn query_all(
    store: &dyn Store,
    mut query: Query,
    max_items: usize,
) -> Result<Vec<Item>, PortError> {
    let mut items = Vec::new();
    loop {
        let page = store.query(&query).await?;
        items.extend(page.items);
        if items.len() >= max_items {
            items.truncate(max_items);
            return Ok(items);
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(items),
        }
    }
}
