//! `Store`, `IdempotencyStore` and `AuditStore` on SQLite.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::db::LocalDb;
use crate::error::PortError;
use crate::ports::{
    AppendOutcome, AuditRecord, AuditStore, ChainHead, IdempotencyRecord, IdempotencyStatus,
    IdempotencyStore, Item, ItemKey, Page, PutCondition, PutInProgressError, Query, SkRange, Store,
};

const MAX_PAGE: usize = 1000;

fn corrupt(operation: &'static str, what: impl std::fmt::Display) -> PortError {
    PortError::permanent(operation, std::io::Error::other(what.to_string()))
}

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<(ItemKey, u64, String, String, Option<i64>)> {
    Ok((
        ItemKey::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
        row.get::<_, i64>(2)? as u64,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn build_item(raw: (ItemKey, u64, String, String, Option<i64>)) -> Result<Item, PortError> {
    let (key, version, data, counters, expires_at) = raw;
    Ok(Item {
        data: serde_json::from_str(&data).map_err(|e| corrupt("store.decode", e))?,
        counters: serde_json::from_str(&counters).map_err(|e| corrupt("store.decode", e))?,
        expires_at: expires_at.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)),
        key,
        version,
    })
}

fn live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|at| at > now)
}

impl LocalDb {
    /// The live items whose partition key starts with `pk_prefix` and whose sort key is `sk`,
    /// in partition-key order, at most `limit` (1 to 1000) of them, and whether more exist.
    ///
    /// A local-only read across partitions (what a DynamoDB scan with a filter would be): for
    /// the dashboard of `tasks serve`, which lists every analysis or draft without an index.
    pub async fn scan_partitions(
        &self,
        pk_prefix: &str,
        sk: &str,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), PortError> {
        let (low, high) = (pk_prefix.to_owned(), format!("{pk_prefix}\u{10FFFF}"));
        let sk = sk.to_owned();
        let limit = limit.clamp(1, MAX_PAGE);
        let now = Utc::now().timestamp();
        self.with("store.scan", move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT pk, sk, version, data, counters, expires_at FROM items
                     WHERE pk >= ?1 AND pk < ?2 AND sk = ?3
                       AND (expires_at IS NULL OR expires_at > ?4)
                     ORDER BY pk LIMIT ?5",
                )
                .map_err(LocalDb::err("store.scan"))?;
            let rows = stmt
                .query_map(
                    params![low, high, sk, now, (limit + 1) as i64],
                    item_from_row,
                )
                .map_err(LocalDb::err("store.scan"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(LocalDb::err("store.scan"))?;
            let mut items = rows
                .into_iter()
                .map(build_item)
                .collect::<Result<Vec<_>, _>>()?;
            let more = items.len() > limit;
            items.truncate(limit);
            Ok((items, more))
        })
        .await
    }
}

#[async_trait]
impl Store for LocalDb {
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, PortError> {
        let key = key.clone();
        let now = Utc::now().timestamp();
        self.with("store.get", move |conn| {
            let raw = conn
                .query_row(
                    "SELECT pk, sk, version, data, counters, expires_at FROM items WHERE pk = ?1 AND sk = ?2",
                    params![key.pk, key.sk],
                    item_from_row,
                )
                .optional()
                .map_err(LocalDb::err("store.get"))?;
            raw.filter(|r| live(r.4, now)).map(build_item).transpose()
        })
        .await
    }

    async fn put(
        &self,
        key: &ItemKey,
        data: &serde_json::Value,
        condition: PutCondition,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<u64, PortError> {
        let key = key.clone();
        let data = data.to_string();
        let expires_at = expires_at.map(|at| at.timestamp());
        let now = Utc::now().timestamp();
        self.with("store.put", move |conn| {
            let tx = conn.transaction().map_err(LocalDb::err("store.put"))?;
            let current: Option<(u64, Option<i64>)> = tx
                .query_row(
                    "SELECT version, expires_at FROM items WHERE pk = ?1 AND sk = ?2",
                    params![key.pk, key.sk],
                    |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)),
                )
                .optional()
                .map_err(LocalDb::err("store.put"))?;
            let current = current.filter(|(_, exp)| live(*exp, now)).map(|(v, _)| v);
            let allowed = match condition {
                PutCondition::Always => true,
                PutCondition::NotExists => current.is_none(),
                PutCondition::Version(expected) => current.unwrap_or(0) == expected,
            };
            if !allowed {
                return Err(PortError::Conflict { operation: "store.put" });
            }
            let version = current.unwrap_or(0) + 1;
            tx.execute(
                "INSERT INTO items (pk, sk, version, data, counters, expires_at) VALUES (?1, ?2, ?3, ?4, '{}', ?5)
                 ON CONFLICT (pk, sk) DO UPDATE SET version = ?3, data = ?4, expires_at = ?5",
                params![key.pk, key.sk, version as i64, data, expires_at],
            )
            .map_err(LocalDb::err("store.put"))?;
            tx.commit().map_err(LocalDb::err("store.put"))?;
            Ok(version)
        })
        .await
    }

    async fn delete(&self, key: &ItemKey) -> Result<(), PortError> {
        let key = key.clone();
        self.with("store.delete", move |conn| {
            conn.execute(
                "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
                params![key.pk, key.sk],
            )
            .map_err(LocalDb::err("store.delete"))?;
            Ok(())
        })
        .await
    }

    async fn query(&self, query: &Query) -> Result<Page, PortError> {
        let query = query.clone();
        let now = Utc::now().timestamp();
        self.with("store.query", move |conn| {
            let limit = query.limit.clamp(1, MAX_PAGE);
            let (low, high) = match &query.range {
                SkRange::All => (String::new(), None),
                // Every sort key with the prefix sorts between the prefix and prefix + U+10FFFF.
                SkRange::Prefix(prefix) => (prefix.clone(), Some(format!("{prefix}\u{10FFFF}"))),
                SkRange::Between(from, to) => (from.clone(), Some(to.clone())),
            };
            let (order, cursor_op) = if query.descending {
                ("DESC", "<")
            } else {
                ("ASC", ">")
            };
            let sql = format!(
                "SELECT pk, sk, version, data, counters, expires_at FROM items
                 WHERE pk = ?1 AND sk >= ?2 AND (?3 IS NULL OR sk <= ?3)
                   AND (?4 IS NULL OR sk {cursor_op} ?4)
                   AND (expires_at IS NULL OR expires_at > ?5)
                 ORDER BY sk {order} LIMIT ?6"
            );
            let mut stmt = conn.prepare(&sql).map_err(LocalDb::err("store.query"))?;
            let rows = stmt
                .query_map(
                    params![query.pk, low, high, query.cursor, now, (limit + 1) as i64],
                    item_from_row,
                )
                .map_err(LocalDb::err("store.query"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(LocalDb::err("store.query"))?;
            let mut items = rows
                .into_iter()
                .map(build_item)
                .collect::<Result<Vec<_>, _>>()?;
            let next = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|item| item.key.sk.clone())
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await
    }

    async fn add(
        &self,
        key: &ItemKey,
        deltas: &[(&str, i64)],
    ) -> Result<BTreeMap<String, i64>, PortError> {
        let key = key.clone();
        let deltas: Vec<(String, i64)> =
            deltas.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        self.with("store.add", move |conn| {
            let tx = conn.transaction().map_err(LocalDb::err("store.add"))?;
            let current: Option<String> = tx
                .query_row(
                    "SELECT counters FROM items WHERE pk = ?1 AND sk = ?2",
                    params![key.pk, key.sk],
                    |row| row.get(0),
                )
                .optional()
                .map_err(LocalDb::err("store.add"))?;
            let mut counters: BTreeMap<String, i64> = match &current {
                Some(text) => serde_json::from_str(text).map_err(|e| corrupt("store.add", e))?,
                None => BTreeMap::new(),
            };
            for (name, delta) in deltas {
                let value = counters.entry(name.clone()).or_insert(0);
                *value = value.checked_add(delta).ok_or_else(|| {
                    corrupt("store.add", format!("counter {name} would overflow"))
                })?;
            }
            let text = serde_json::to_string(&counters).map_err(|e| corrupt("store.add", e))?;
            tx.execute(
                "INSERT INTO items (pk, sk, version, data, counters) VALUES (?1, ?2, 0, '{}', ?3)
                 ON CONFLICT (pk, sk) DO UPDATE SET counters = ?3",
                params![key.pk, key.sk, text],
            )
            .map_err(LocalDb::err("store.add"))?;
            tx.commit().map_err(LocalDb::err("store.add"))?;
            Ok(counters)
        })
        .await
    }
}

/// key, status, expiry (s), in-progress expiry (ms), payload hash, result, lease.
type IdempotencyRow = (
    String,
    String,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
);

fn idempotency_from_row(row: &Row<'_>) -> rusqlite::Result<IdempotencyRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn build_idempotency(raw: IdempotencyRow) -> Result<IdempotencyRecord, PortError> {
    let (key, status, expires_at, in_progress, payload_hash, result, lease) = raw;
    Ok(IdempotencyRecord {
        status: IdempotencyStatus::parse(&status)
            .ok_or_else(|| corrupt("idempotency.decode", format!("unknown status {status:?}")))?,
        expires_at: DateTime::<Utc>::from_timestamp(expires_at, 0)
            .ok_or_else(|| corrupt("idempotency.decode", "expiry out of range"))?,
        in_progress_expires_at: in_progress.and_then(DateTime::<Utc>::from_timestamp_millis),
        key,
        payload_hash,
        result,
        lease: lease.unwrap_or_default(),
    })
}

const IDEMPOTENCY_COLUMNS: &str =
    "key, status, expires_at, in_progress_expires_at, payload_hash, result, lease";

fn write_idempotency(
    conn: &rusqlite::Connection,
    record: &IdempotencyRecord,
) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT OR REPLACE INTO idempotency (key, status, expires_at, in_progress_expires_at, payload_hash, result, lease)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            record.key,
            record.status.as_str(),
            record.expires_at.timestamp(),
            record.in_progress_expires_at.map(|at| at.timestamp_millis()),
            record.payload_hash,
            record.result,
            record.lease,
        ],
    )
}

#[async_trait]
impl IdempotencyStore for LocalDb {
    async fn put_in_progress(
        &self,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<(), PutInProgressError> {
        let record = record.clone();
        let outcome = self
            .with("idempotency.put", move |conn| {
                let tx = conn
                    .transaction()
                    .map_err(LocalDb::err("idempotency.put"))?;
                let existing = tx
                    .query_row(
                        &format!("SELECT {IDEMPOTENCY_COLUMNS} FROM idempotency WHERE key = ?1"),
                        params![record.key],
                        idempotency_from_row,
                    )
                    .optional()
                    .map_err(LocalDb::err("idempotency.put"))?
                    .map(build_idempotency)
                    .transpose()?;
                // The same condition as the DynamoDB adapter's conditional put.
                let live = existing.as_ref().filter(|e| {
                    e.expires_at > now
                        && !(e.status == IdempotencyStatus::InProgress
                            && e.in_progress_expires_at.is_some_and(|at| at <= now))
                });
                if let Some(existing) = live {
                    return Ok(Some(existing.clone()));
                }
                write_idempotency(&tx, &record).map_err(LocalDb::err("idempotency.put"))?;
                tx.commit().map_err(LocalDb::err("idempotency.put"))?;
                Ok(None)
            })
            .await?;
        match outcome {
            None => Ok(()),
            Some(existing) => Err(PutInProgressError::Exists(Box::new(existing))),
        }
    }

    async fn update(&self, record: &IdempotencyRecord) -> Result<(), PortError> {
        let record = record.clone();
        self.with("idempotency.update", move |conn| {
            // One statement: the lease check and the write cannot be split by another writer.
            let written = conn
                .execute(
                    "UPDATE idempotency SET status = ?2, expires_at = ?3, in_progress_expires_at = ?4,
                         payload_hash = ?5, result = ?6
                     WHERE key = ?1 AND COALESCE(lease, '') = ?7",
                    params![
                        record.key,
                        record.status.as_str(),
                        record.expires_at.timestamp(),
                        record.in_progress_expires_at.map(|at| at.timestamp_millis()),
                        record.payload_hash,
                        record.result,
                        record.lease,
                    ],
                )
                .map_err(LocalDb::err("idempotency.update"))?;
            if written == 0 {
                return Err(PortError::Conflict {
                    operation: "idempotency.update",
                });
            }
            Ok(())
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, PortError> {
        let key = key.to_owned();
        self.with("idempotency.get", move |conn| {
            conn.query_row(
                &format!("SELECT {IDEMPOTENCY_COLUMNS} FROM idempotency WHERE key = ?1"),
                params![key],
                idempotency_from_row,
            )
            .optional()
            .map_err(LocalDb::err("idempotency.get"))?
            .map(build_idempotency)
            .transpose()
        })
        .await
    }

    async fn delete(&self, key: &str, lease: &str) -> Result<(), PortError> {
        let (key, lease) = (key.to_owned(), lease.to_owned());
        self.with("idempotency.delete", move |conn| {
            let deleted = conn
                .execute(
                    "DELETE FROM idempotency WHERE key = ?1 AND COALESCE(lease, '') = ?2",
                    params![key, lease],
                )
                .map_err(LocalDb::err("idempotency.delete"))?;
            if deleted == 0 {
                return Err(PortError::Conflict {
                    operation: "idempotency.delete",
                });
            }
            Ok(())
        })
        .await
    }
}

fn decode_audit(text: String) -> Result<AuditRecord, PortError> {
    serde_json::from_str(&text).map_err(|e| corrupt("audit.decode", e))
}

#[async_trait]
impl AuditStore for LocalDb {
    async fn last(&self, stream: &str) -> Result<Option<AuditRecord>, PortError> {
        let stream = stream.to_owned();
        self.with("audit.last", move |conn| {
            conn.query_row(
                "SELECT record FROM audit WHERE stream = ?1 ORDER BY seq DESC LIMIT 1",
                params![stream],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .map_err(LocalDb::err("audit.last"))?
            .map(decode_audit)
            .transpose()
        })
        .await
    }

    async fn append(&self, record: &AuditRecord) -> Result<AppendOutcome, PortError> {
        let record = record.clone();
        let text = serde_json::to_string(&record).map_err(|e| corrupt("audit.append", e))?;
        self.with("audit.append", move |conn| {
            let tx = conn.transaction().map_err(LocalDb::err("audit.append"))?;
            if let Some(key) = &record.idempotency_key {
                let seen: Option<i64> = tx
                    .query_row(
                        "SELECT seq FROM audit WHERE idempotency_key = ?1 AND action = ?2",
                        params![key, record.action],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(LocalDb::err("audit.append"))?;
                if seen.is_some() {
                    return Ok(AppendOutcome::Duplicate);
                }
            }
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO audit (stream, seq, idempotency_key, action, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![record.stream, record.seq as i64, record.idempotency_key, record.action, text],
                )
                .map_err(LocalDb::err("audit.append"))?;
            if inserted == 0 {
                return Err(PortError::Conflict { operation: "audit.append" });
            }
            // The head moves from seq - 1 to this record, or nothing is written (the
            // transaction rolls back when dropped).
            let moved = if record.seq == 1 {
                tx.execute(
                    "INSERT OR IGNORE INTO audit_heads (stream, seq, hash) VALUES (?1, ?2, ?3)",
                    params![record.stream, record.seq as i64, record.hash],
                )
            } else {
                tx.execute(
                    "UPDATE audit_heads SET seq = ?2, hash = ?3 WHERE stream = ?1 AND seq = ?2 - 1",
                    params![record.stream, record.seq as i64, record.hash],
                )
            }
            .map_err(LocalDb::err("audit.append"))?;
            if moved == 0 {
                return Err(PortError::Conflict { operation: "audit.append" });
            }
            tx.commit().map_err(LocalDb::err("audit.append"))?;
            Ok(AppendOutcome::Appended)
        })
        .await
    }

    async fn head(&self, stream: &str) -> Result<Option<ChainHead>, PortError> {
        let stream = stream.to_owned();
        self.with("audit.head", move |conn| {
            conn.query_row(
                "SELECT seq, hash FROM audit_heads WHERE stream = ?1",
                params![stream],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(LocalDb::err("audit.head"))?
            .map(|(seq, hash)| {
                Ok(ChainHead {
                    seq: u64::try_from(seq)
                        .map_err(|_| corrupt("audit.head", format!("negative seq {seq}")))?,
                    hash,
                })
            })
            .transpose()
        })
        .await
    }

    async fn read(
        &self,
        stream: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, PortError> {
        let stream = stream.to_owned();
        self.with("audit.read", move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT record FROM audit WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )
                .map_err(LocalDb::err("audit.read"))?;
            let rows = stmt
                .query_map(
                    params![stream, after as i64, limit.clamp(1, MAX_PAGE) as i64],
                    |row| row.get::<_, String>(0),
                )
                .map_err(LocalDb::err("audit.read"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(LocalDb::err("audit.read"))?;
            rows.into_iter().map(decode_audit).collect()
        })
        .await
    }

    async fn streams(&self) -> Result<Vec<String>, PortError> {
        self.with("audit.streams", move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT stream FROM audit UNION SELECT stream FROM audit_heads ORDER BY stream",
                )
                .map_err(LocalDb::err("audit.streams"))?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(LocalDb::err("audit.streams"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(LocalDb::err("audit.streams"))?;
            Ok(rows)
        })
        .await
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[tokio::test]
    async fn scans_are_bounded_and_keep_to_their_prefix_and_sort_key() {
        let db = LocalDb::in_memory().unwrap();
        let doc = serde_json::json!({"n": 1});
        for pk in ["track#a", "track#b", "track#c", "tracks", "album#x"] {
            db.put(
                &ItemKey::new(pk, "analysis#v1"),
                &doc,
                PutCondition::Always,
                None,
            )
            .await
            .unwrap();
        }
        db.put(
            &ItemKey::new("track#d", "other"),
            &doc,
            PutCondition::Always,
            None,
        )
        .await
        .unwrap();
        let expired = Utc::now() - chrono::Duration::hours(1);
        db.put(
            &ItemKey::new("track#e", "analysis#v1"),
            &doc,
            PutCondition::Always,
            Some(expired),
        )
        .await
        .unwrap();
        let (items, more) = db
            .scan_partitions("track#", "analysis#v1", 10)
            .await
            .unwrap();
        let pks: Vec<&str> = items.iter().map(|i| i.key.pk.as_str()).collect();
        assert_eq!(pks, ["track#a", "track#b", "track#c"]);
        assert!(!more);
        let (items, more) = db
            .scan_partitions("track#", "analysis#v1", 2)
            .await
            .unwrap();
        assert_eq!(items.len(), 2);
        assert!(more);
    }
}
