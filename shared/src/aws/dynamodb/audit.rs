//! [`AuditStore`] on DynamoDB.
//!
//! Key schema (the SAM template's `AuditTable`): partition key `stream` (S), sort key `seq` (N),
//! no TTL. Three kinds of item share it:
//!
//! | item | `stream` | `seq` | other attributes |
//! |---|---|---|---|
//! | record | the stream | 1, 2, ... | every [`AuditRecord`] field (`at` RFC 3339, `detail` JSON text) |
//! | once-marker | `#once#<sha256(idempotency_key, action)>` | 0 | `idempotency_key`, `action`, `of_stream`, `of_seq` |
//! | stream index and head | `#streams` | first 8 bytes of sha256(stream) as u64 | `name`, `head_seq`, `head_hash` |
//!
//! An append is one `TransactWriteItems`: the record, conditional on `(stream, seq)` being free
//! (else [`PortError::Conflict`]: another writer took the number), the once-marker, conditional
//! on being absent (else [`AppendOutcome::Duplicate`]), and the stream's index item carrying
//! its [`ChainHead`], conditional on the head being at `seq - 1` (absent for `seq == 1`). All
//! or nothing, so no record exists without its marker and head, and a duplicate writes
//! nothing. The head lives outside the chain, so deleting the last records is detected.
//! `streams` queries the `#streams` partition instead of scanning the table. Stream names
//! starting with `#` are reserved for these items.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::{Attrs, RawItem, n, s};
use crate::aws::{adapter_error, sdk_error};
use crate::error::PortError;
use crate::hash::sha256_hex;
use crate::ports::{AppendOutcome, AuditRecord, AuditStore, ChainHead};

/// The partition of the stream index.
const STREAMS_PARTITION: &str = "#streams";
/// Largest page `read` returns, as in the SQLite adapter.
const MAX_PAGE: usize = 1000;

/// The audit log's storage on DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoAuditStore {
    client: Client,
    table: String,
}

impl DynamoAuditStore {
    /// Records in `table` (key schema in the module docs).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// An audit record on the wire.
pub(crate) struct AuditItem(pub(crate) RawItem);

impl From<&AuditRecord> for AuditItem {
    fn from(record: &AuditRecord) -> Self {
        let mut item = HashMap::from([
            ("stream".to_owned(), s(&record.stream)),
            ("seq".to_owned(), n(record.seq)),
            // AutoSi keeps every sub-second digit, so the hash recomputed on verify matches.
            (
                "at".to_owned(),
                s(record
                    .at
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            ),
            ("task".to_owned(), s(&record.task)),
            ("version".to_owned(), s(&record.version)),
            ("subject".to_owned(), s(&record.subject)),
            ("action".to_owned(), s(&record.action)),
            ("input_hash".to_owned(), s(&record.input_hash)),
            ("outcome".to_owned(), s(&record.outcome)),
            ("detail".to_owned(), s(record.detail.to_string())),
            ("prev_hash".to_owned(), s(&record.prev_hash)),
            ("hash".to_owned(), s(&record.hash)),
        ]);
        if let Some(trace_id) = &record.trace_id {
            item.insert("trace_id".into(), s(trace_id));
        }
        if let Some(key) = &record.idempotency_key {
            item.insert("idempotency_key".into(), s(key));
        }
        Self(item)
    }
}

impl TryFrom<AuditItem> for AuditRecord {
    type Error = PortError;

    fn try_from(item: AuditItem) -> Result<Self, Self::Error> {
        let a = Attrs::new(&item.0, "audit.decode");
        let corrupt = |what: String| adapter_error("audit.decode", what).permanent();
        Ok(AuditRecord {
            stream: a.string("stream")?,
            seq: a.number("seq")?,
            at: DateTime::parse_from_rfc3339(&a.string("at")?)
                .map_err(|err| corrupt(format!("at is not RFC 3339: {err}")))?
                .with_timezone(&Utc),
            task: a.string("task")?,
            version: a.string("version")?,
            trace_id: a.opt_string("trace_id")?,
            idempotency_key: a.opt_string("idempotency_key")?,
            subject: a.string("subject")?,
            action: a.string("action")?,
            input_hash: a.string("input_hash")?,
            outcome: a.string("outcome")?,
            detail: serde_json::from_str(&a.string("detail")?)
                .map_err(|err| corrupt(format!("detail is not JSON: {err}")))?,
            prev_hash: a.string("prev_hash")?,
            hash: a.string("hash")?,
        })
    }
}

/// The partition of the once-marker of `(idempotency_key, action)`: hashed, so any key fits
/// DynamoDB's key size and no separator can be ambiguous.
fn once_partition(idempotency_key: &str, action: &str) -> String {
    let digest = sha256_hex(
        serde_json::json!([idempotency_key, action])
            .to_string()
            .as_bytes(),
    );
    format!("#once#{digest}")
}

/// The sort key of `stream` in the stream index. Collisions of 64-bit hashes between stream
/// names (one per task) are not a practical concern.
fn index_seq(stream: &str) -> u64 {
    let digest = sha256_hex(stream.as_bytes());
    // Sixteen hex digits of a SHA-256 always parse; the default is unreachable.
    u64::from_str_radix(&digest[..16], 16).unwrap_or_default()
}

fn put(table: &str, item: RawItem, conditional: bool) -> Result<TransactWriteItem, PortError> {
    let mut builder = Put::builder().table_name(table).set_item(Some(item));
    if conditional {
        builder = builder
            .condition_expression("attribute_not_exists(#stream)")
            .expression_attribute_names("#stream", "stream");
    }
    let put = builder
        .build()
        .map_err(|err| PortError::permanent("audit.append", err))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The index item of `record`'s stream with the head moved to `record`, conditional on the
/// head being at `record.seq - 1` (or absent, for the first record).
fn head_put(table: &str, record: &AuditRecord) -> Result<TransactWriteItem, PortError> {
    let item = HashMap::from([
        ("stream".to_owned(), s(STREAMS_PARTITION)),
        ("seq".to_owned(), n(index_seq(&record.stream))),
        ("name".to_owned(), s(&record.stream)),
        ("head_seq".to_owned(), n(record.seq)),
        ("head_hash".to_owned(), s(&record.hash)),
    ]);
    let builder = Put::builder().table_name(table).set_item(Some(item));
    let builder = if record.seq <= 1 {
        builder
            .condition_expression("attribute_not_exists(#stream)")
            .expression_attribute_names("#stream", "stream")
    } else {
        builder
            .condition_expression("#head_seq = :prev")
            .expression_attribute_names("#head_seq", "head_seq")
            .expression_attribute_values(":prev", n(record.seq - 1))
    };
    let put = builder
        .build()
        .map_err(|err| PortError::permanent("audit.append", err))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// What cancelled a transaction, from its per-item reasons (in request order).
fn cancelled(
    reasons: &[Option<&str>],
    has_marker: bool,
) -> Option<Result<AppendOutcome, PortError>> {
    let failed = |i: usize| reasons.get(i).copied().flatten() == Some("ConditionalCheckFailed");
    // The duplicate check wins, as in the SQLite adapter: the effect was recorded already.
    if has_marker && failed(1) {
        return Some(Ok(AppendOutcome::Duplicate));
    }
    // The position is taken, or the head is elsewhere: another writer got there first.
    if reasons
        .iter()
        .flatten()
        .any(|code| *code == "ConditionalCheckFailed")
    {
        return Some(Err(PortError::Conflict {
            operation: "audit.append",
        }));
    }
    // A concurrent transaction on the same items: nothing was written; the log re-reads the
    // head and tries again, as after a lost race.
    if reasons
        .iter()
        .flatten()
        .any(|code| *code == "TransactionConflict")
    {
        return Some(Err(PortError::Conflict {
            operation: "audit.append",
        }));
    }
    // Throttled items: nothing was written, a later try may pass.
    if reasons.iter().flatten().any(|code| {
        matches!(
            *code,
            "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded"
        )
    }) {
        return Some(Err(adapter_error(
            "audit.append",
            format!("transaction throttled: {reasons:?}"),
        )
        .transient()));
    }
    None
}

#[async_trait]
impl AuditStore for DynamoAuditStore {
    async fn last(&self, stream: &str) -> Result<Option<AuditRecord>, PortError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#stream = :stream")
            .expression_attribute_names("#stream", "stream")
            .expression_attribute_values(":stream", s(stream))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("audit.last", err))?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(|item| AuditRecord::try_from(AuditItem(item)))
            .transpose()
    }

    async fn append(&self, record: &AuditRecord) -> Result<AppendOutcome, PortError> {
        if record.stream.starts_with('#') {
            return Err(
                adapter_error("audit.append", "stream names starting with # are reserved")
                    .permanent(),
            );
        }
        let mut items = vec![put(&self.table, AuditItem::from(record).0, true)?];
        let has_marker = record.idempotency_key.is_some();
        if let Some(key) = &record.idempotency_key {
            let marker = HashMap::from([
                ("stream".to_owned(), s(once_partition(key, &record.action))),
                ("seq".to_owned(), n(0)),
                ("idempotency_key".to_owned(), s(key)),
                ("action".to_owned(), s(&record.action)),
                ("of_stream".to_owned(), s(&record.stream)),
                ("of_seq".to_owned(), n(record.seq)),
            ]);
            items.push(put(&self.table, marker, true)?);
        }
        items.push(head_put(&self.table, record)?);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(AppendOutcome::Appended),
            Err(err) => err,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
            err.as_service_error()
        {
            let reasons: Vec<Option<&str>> = cancel
                .cancellation_reasons()
                .iter()
                .map(|reason| reason.code())
                .collect();
            if let Some(outcome) = cancelled(&reasons, has_marker) {
                return outcome;
            }
        }
        Err(sdk_error("audit.append", err))
    }

    async fn head(&self, stream: &str) -> Result<Option<ChainHead>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("stream", s(STREAMS_PARTITION))
            .key("seq", n(index_seq(stream)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("audit.head", err))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let a = Attrs::new(&item, "audit.head");
        match (a.opt_number::<u64>("head_seq")?, a.opt_string("head_hash")?) {
            (Some(seq), Some(hash)) => Ok(Some(ChainHead { seq, hash })),
            _ => Ok(None),
        }
    }

    async fn read(
        &self,
        stream: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, PortError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut records = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#stream = :stream AND #seq > :after")
                .expression_attribute_names("#stream", "stream")
                .expression_attribute_names("#seq", "seq")
                .expression_attribute_values(":stream", s(stream))
                .expression_attribute_values(":after", n(after))
                .consistent_read(true)
                .limit((limit - records.len()) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|err| sdk_error("audit.read", err))?;
            for item in output.items.unwrap_or_default() {
                records.push(AuditRecord::try_from(AuditItem(item))?);
            }
            // A response also stops at 1 MB: continue until the page is full or the stream ends.
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() && records.len() < limit => start = Some(key),
                _ => return Ok(records),
            }
        }
    }

    async fn streams(&self) -> Result<Vec<String>, PortError> {
        let mut names = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#stream = :index")
                .expression_attribute_names("#stream", "stream")
                .expression_attribute_values(":index", s(STREAMS_PARTITION))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|err| sdk_error("audit.streams", err))?;
            for item in output.items.unwrap_or_default() {
                names.push(Attrs::new(&item, "audit.streams").string("name")?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_reasons_map_to_outcomes() {
        let dup = cancelled(&[None, Some("ConditionalCheckFailed")], true);
        assert!(matches!(dup, Some(Ok(AppendOutcome::Duplicate))));
        let both = cancelled(
            &[
                Some("ConditionalCheckFailed"),
                Some("ConditionalCheckFailed"),
            ],
            true,
        );
        assert!(matches!(both, Some(Ok(AppendOutcome::Duplicate))));
        let taken = cancelled(&[Some("ConditionalCheckFailed"), Some("None")], true);
        assert!(matches!(taken, Some(Err(PortError::Conflict { .. }))));
        let head_moved = cancelled(
            &[Some("None"), Some("None"), Some("ConditionalCheckFailed")],
            true,
        );
        assert!(matches!(head_moved, Some(Err(PortError::Conflict { .. }))));
        let racing = cancelled(&[Some("TransactionConflict")], false);
        assert!(matches!(racing, Some(Err(PortError::Conflict { .. }))));
        let throttled = cancelled(&[Some("ThrottlingError")], false);
        assert!(matches!(throttled, Some(Err(PortError::Transient { .. }))));
        assert!(cancelled(&[Some("ValidationError")], false).is_none());
    }

    #[test]
    fn once_partition_is_unambiguous() {
        assert_ne!(once_partition("a#b", "c"), once_partition("a", "b#c"));
        assert!(once_partition("k", "a").starts_with("#once#"));
    }
}
