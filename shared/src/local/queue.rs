//! A local SQS stand-in (work queue with visibility timeouts and redrive, dead letters) and
//! a local event bus, on the same SQLite file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;
use serde_json::{Value, json};

use super::db::LocalDb;
use crate::clock::Clock;
use crate::error::PortError;
use crate::ports::{BusEvent, DeadLetter, EventPublisher, OutgoingMessage, Queues};

/// id, body, attributes, group id, trace header, receive count.
type QueuedRow = (String, String, String, Option<String>, Option<String>, i64);

/// A message received from a local queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMessage {
    /// The message id.
    pub id: String,
    /// The receipt handle of this receipt.
    pub receipt_handle: String,
    /// The body.
    pub body: String,
    /// String message attributes.
    pub attributes: BTreeMap<String, String>,
    /// The FIFO group, if any.
    pub group_id: Option<String>,
    /// The X-Ray header it was sent with.
    pub trace_header: Option<String>,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// One function's local work queue, with the dead-letter queue beside it.
#[derive(Clone)]
pub struct LocalQueues {
    db: LocalDb,
    queue: String,
    clock: Arc<dyn Clock>,
    max_receive_count: u32,
}

impl LocalQueues {
    /// The queue `queue` in `db`; a message received more than `max_receive_count` times is
    /// moved to the dead letters, as an SQS redrive policy would.
    pub fn new(
        db: LocalDb,
        queue: impl Into<String>,
        clock: Arc<dyn Clock>,
        max_receive_count: u32,
    ) -> Self {
        Self {
            db,
            queue: queue.into(),
            clock,
            max_receive_count,
        }
    }

    /// Receives up to `max` visible messages, hiding them for `visibility`.
    pub async fn receive(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<LocalMessage>, PortError> {
        let queue = self.queue.clone();
        let now = self.clock.now().timestamp_millis();
        let hidden_until = now + visibility.as_millis() as i64;
        let max_receive = i64::from(self.max_receive_count);
        self.db
            .with("queue.receive", move |conn| {
                let tx = conn.transaction().map_err(LocalDb::err("queue.receive"))?;
                let candidates: Vec<QueuedRow> = {
                    let mut stmt = tx
                        .prepare(
                            "SELECT id, body, attributes, group_id, trace_header, receive_count FROM messages
                             WHERE queue = ?1 AND visible_at <= ?2 ORDER BY sent_at, rowid LIMIT ?3",
                        )
                        .map_err(LocalDb::err("queue.receive"))?;
                    stmt.query_map(params![queue, now, max as i64], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
                    })
                    .map_err(LocalDb::err("queue.receive"))?
                    .collect::<Result<_, _>>()
                    .map_err(LocalDb::err("queue.receive"))?
                };
                let mut received = Vec::new();
                for (id, body, attributes, group_id, trace_header, count) in candidates {
                    if count >= max_receive {
                        // The redrive policy: too many failed receipts, off to the dead letters.
                        tx.execute(
                            "INSERT INTO dead_letters (task, message_id, body, class, reason, trace_id, attributes, at)
                             VALUES (?1, ?2, ?3, 'transient', ?4, ?5, ?6, ?7)",
                            params![queue, id, body, format!("maxReceiveCount ({max_receive}) exceeded"), trace_header, attributes, now],
                        )
                        .map_err(LocalDb::err("queue.redrive"))?;
                        tx.execute("DELETE FROM messages WHERE id = ?1", params![id])
                            .map_err(LocalDb::err("queue.redrive"))?;
                        continue;
                    }
                    let receipt_handle = uuid::Uuid::new_v4().to_string();
                    tx.execute(
                        "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?2, receipt_handle = ?3 WHERE id = ?1",
                        params![id, hidden_until, receipt_handle],
                    )
                    .map_err(LocalDb::err("queue.receive"))?;
                    received.push(LocalMessage {
                        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                        receive_count: (count + 1) as u32,
                        id,
                        receipt_handle,
                        body,
                        group_id,
                        trace_header,
                    });
                }
                tx.commit().map_err(LocalDb::err("queue.receive"))?;
                Ok(received)
            })
            .await
    }

    /// Deletes a received message (it was processed).
    pub async fn delete(&self, receipt_handle: &str) -> Result<(), PortError> {
        let handle = receipt_handle.to_owned();
        self.db
            .with("queue.delete", move |conn| {
                conn.execute(
                    "DELETE FROM messages WHERE receipt_handle = ?1",
                    params![handle],
                )
                .map_err(LocalDb::err("queue.delete"))?;
                Ok(())
            })
            .await
    }

    /// Messages in the queue, visible or not.
    pub async fn depth(&self) -> Result<u64, PortError> {
        let queue = self.queue.clone();
        self.db
            .with("queue.depth", move |conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM messages WHERE queue = ?1",
                    params![queue],
                    |row| row.get::<_, i64>(0),
                )
                .map(|n| n as u64)
                .map_err(LocalDb::err("queue.depth"))
            })
            .await
    }

    /// The earliest time a hidden message becomes visible again, if any is waiting.
    pub async fn next_visible_at(&self) -> Result<Option<DateTime<Utc>>, PortError> {
        let queue = self.queue.clone();
        self.db
            .with("queue.next", move |conn| {
                conn.query_row(
                    "SELECT MIN(visible_at) FROM messages WHERE queue = ?1",
                    params![queue],
                    |row| row.get::<_, Option<i64>>(0),
                )
                .map(|ms| ms.and_then(DateTime::<Utc>::from_timestamp_millis))
                .map_err(LocalDb::err("queue.next"))
            })
            .await
    }

    /// The dead letters of this queue's task, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, PortError> {
        let queue = self.queue.clone();
        self.db
            .with("queue.dead_letters", move |conn| {
                let mut stmt = conn
                    .prepare("SELECT task, message_id, body, class, reason, trace_id, attributes FROM dead_letters WHERE task = ?1 ORDER BY id")
                    .map_err(LocalDb::err("queue.dead_letters"))?;
                let rows = stmt
                    .query_map(params![queue], |row| {
                        Ok(DeadLetter {
                            task: row.get(0)?,
                            message_id: row.get(1)?,
                            body: row.get(2)?,
                            class: row.get(3)?,
                            reason: row.get(4)?,
                            trace_id: row.get(5)?,
                            attributes: serde_json::from_str(&row.get::<_, String>(6)?).unwrap_or_default(),
                        })
                    })
                    .map_err(LocalDb::err("queue.dead_letters"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(LocalDb::err("queue.dead_letters"))?;
                Ok(rows)
            })
            .await
    }

    /// The SQS event Lambda would deliver for `messages` (the shape of `aws:sqs` records).
    pub fn sqs_event(&self, messages: &[LocalMessage]) -> Value {
        let fifo = self.queue.ends_with(".fifo");
        let arn = format!("arn:aws:sqs:local:000000000000:{}", self.queue);
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut attributes = json!({
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": self.clock.now().timestamp_millis().to_string(),
                });
                if let Some(trace) = &m.trace_header {
                    attributes["AWSTraceHeader"] = json!(trace);
                }
                if let Some(group) = m.group_id.as_ref().filter(|_| fifo) {
                    attributes["MessageGroupId"] = json!(group);
                }
                let message_attributes: serde_json::Map<String, Value> = m
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), json!({"stringValue": v, "dataType": "String"})))
                    .collect();
                json!({
                    "messageId": m.id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": "local",
                })
            })
            .collect();
        json!({ "Records": records })
    }
}

#[async_trait]
impl Queues for LocalQueues {
    async fn send(&self, messages: &[OutgoingMessage]) -> Result<(), PortError> {
        let queue = self.queue.clone();
        let now = self.clock.now().timestamp_millis();
        let messages = messages.to_vec();
        self.db
            .with("queue.send", move |conn| {
                let tx = conn.transaction().map_err(LocalDb::err("queue.send"))?;
                for m in messages {
                    let attributes = serde_json::to_string(&m.attributes).unwrap_or_else(|_| "{}".into());
                    tx.execute(
                        "INSERT INTO messages (id, queue, body, attributes, group_id, trace_header, sent_at, visible_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                        params![uuid::Uuid::new_v4().to_string(), queue, m.body, attributes, m.group_id, m.trace_header, now],
                    )
                    .map_err(LocalDb::err("queue.send"))?;
                }
                tx.commit().map_err(LocalDb::err("queue.send"))
            })
            .await
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), PortError> {
        let letter = letter.clone();
        let now = self.clock.now().timestamp_millis();
        self.db
            .with("queue.dead_letter", move |conn| {
                let attributes = serde_json::to_string(&letter.attributes).unwrap_or_else(|_| "{}".into());
                conn.execute(
                    "INSERT INTO dead_letters (task, message_id, body, class, reason, trace_id, attributes, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![letter.task, letter.message_id, letter.body, letter.class, letter.reason, letter.trace_id, attributes, now],
                )
                .map_err(LocalDb::err("queue.dead_letter"))?;
                Ok(())
            })
            .await
    }

    async fn delay(&self, receipt_handle: &str, delay: Duration) -> Result<(), PortError> {
        let handle = receipt_handle.to_owned();
        let visible_at = self.clock.now().timestamp_millis() + delay.as_millis() as i64;
        self.db
            .with("queue.delay", move |conn| {
                conn.execute(
                    "UPDATE messages SET visible_at = ?2 WHERE receipt_handle = ?1",
                    params![handle, visible_at],
                )
                .map_err(LocalDb::err("queue.delay"))?;
                Ok(())
            })
            .await
    }
}

/// A published event, as stored by the local bus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Publication order.
    pub id: i64,
    /// The event.
    pub event: BusEvent,
}

/// The local event bus: events are kept in the database for the CLI and tests to read.
#[derive(Clone, Debug)]
pub struct LocalBus {
    db: LocalDb,
}

impl LocalBus {
    /// A bus on `db`.
    pub fn new(db: LocalDb) -> Self {
        Self { db }
    }

    /// Every event published so far, oldest first.
    pub async fn events(&self) -> Result<Vec<StoredEvent>, PortError> {
        self.events_after(0).await
    }

    /// The id of the newest event (0 when there is none): where the events of a run about to
    /// start will begin.
    pub async fn last_id(&self) -> Result<i64, PortError> {
        self.db
            .with("bus.last_id", |conn| {
                conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |row| {
                    row.get(0)
                })
                .map_err(LocalDb::err("bus.last_id"))
            })
            .await
    }

    /// The newest `limit` events of `source` and `detail_type`, newest first: a bounded read
    /// for pages that show the latest of one kind.
    pub async fn recent(
        &self,
        source: &str,
        detail_type: &str,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, PortError> {
        let (source, detail_type) = (source.to_owned(), detail_type.to_owned());
        self.db
            .with("bus.recent", move |conn| {
                select_events(
                    conn,
                    "WHERE source = ?1 AND detail_type = ?2 ORDER BY id DESC LIMIT ?3",
                    params![source, detail_type, limit as i64],
                )
            })
            .await
    }

    /// The events published after event `after`, oldest first.
    pub async fn events_after(&self, after: i64) -> Result<Vec<StoredEvent>, PortError> {
        self.db
            .with("bus.events", move |conn| {
                select_events(conn, "WHERE id > ?1 ORDER BY id", params![after])
            })
            .await
    }
}

/// The events `filter` (a WHERE and ORDER clause over `params`) selects, decoded.
fn select_events(
    conn: &rusqlite::Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<StoredEvent>, PortError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT id, source, detail_type, detail, time, trace_header FROM events {filter}"
        ))
        .map_err(LocalDb::err("bus.events"))?;
    let rows = stmt
        .query_map(params, |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })
        .map_err(LocalDb::err("bus.events"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(LocalDb::err("bus.events"))?;
    rows.into_iter()
        .map(|(id, source, detail_type, detail, time, trace_header)| {
            let decode = |e: &dyn std::fmt::Display| {
                PortError::permanent("bus.decode", std::io::Error::other(e.to_string()))
            };
            Ok(StoredEvent {
                id,
                event: BusEvent {
                    source,
                    detail_type,
                    detail: serde_json::from_str(&detail).map_err(|e| decode(&e))?,
                    time: time.parse().map_err(|e| decode(&e))?,
                    trace_header,
                },
            })
        })
        .collect()
}

#[async_trait]
impl EventPublisher for LocalBus {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), PortError> {
        let events = events.to_vec();
        self.db
            .with("bus.publish", move |conn| {
                let tx = conn.transaction().map_err(LocalDb::err("bus.publish"))?;
                for event in events {
                    tx.execute(
                        "INSERT INTO events (source, detail_type, detail, time, trace_header) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![event.source, event.detail_type, event.detail.to_string(), event.time.to_rfc3339(), event.trace_header],
                    )
                    .map_err(LocalDb::err("bus.publish"))?;
                }
                tx.commit().map_err(LocalDb::err("bus.publish"))
            })
            .await
    }
}

#[cfg(test)]
mod bus_tests {
    use super::*;

    #[tokio::test]
    async fn recent_events_are_the_newest_of_their_kind_first() {
        let bus = LocalBus::new(LocalDb::in_memory().unwrap());
        let event = |source: &str, kind: &str, n: i64| BusEvent {
            source: source.into(),
            detail_type: kind.into(),
            detail: json!({ "n": n }),
            time: Utc::now(),
            trace_header: None,
        };
        for n in 0..5 {
            bus.publish(&[event("a", "K", n), event("a", "L", n), event("b", "K", n)])
                .await
                .unwrap();
        }
        let recent = bus.recent("a", "K", 3).await.unwrap();
        let ns: Vec<i64> = recent
            .iter()
            .map(|e| e.event.detail["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, [4, 3, 2]);
        assert!(
            recent
                .iter()
                .all(|e| e.event.source == "a" && e.event.detail_type == "K")
        );
        assert!(bus.recent("c", "K", 3).await.unwrap().is_empty());
        assert_eq!(bus.events().await.unwrap().len(), 15);
    }
}
