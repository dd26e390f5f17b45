//! What playlist-update keeps in the store, next to data-sync's copy of each playlist:
//!
//! - `playlist#<id>` / `rules`: the rule file (its YAML text and parsed form);
//! - `playlist-rules` / `<id>`: the index of managed playlists, which the schedule's plan reads;
//! - `playlist#<id>` / `curation`: the state between runs: the `snapshot_id` of our last
//!   write, the tracks we left, when each entered, what a person removed;
//! - `playlist#<id>` / `run#<time>`: one record per run: the plan, its explanations, the
//!   writes made (`playlist explain` reads the newest).

use std::collections::{BTreeMap, BTreeSet};

use backbone::error::PortError;
use backbone::ports::store::query_all;
use backbone::ports::{ItemKey, PutCondition, Query, Store};
use backbone::validate::PlaylistId;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::rules::{RuleError, RuleFile};

/// The partition of the managed-playlist index.
pub const INDEX_PK: &str = "playlist-rules";
/// Managed playlists one plan handles at most.
pub const MAX_MANAGED: usize = 1_000;

fn encode<T: Serialize>(value: &T) -> Result<serde_json::Value, PortError> {
    serde_json::to_value(value).map_err(|e| PortError::permanent("playlist.encode", e))
}

fn decode<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, PortError> {
    serde_json::from_value(value).map_err(|e| PortError::permanent("playlist.decode", e))
}

/// A stored rule file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRules {
    /// The YAML as the person wrote it.
    pub text: String,
    /// When it was stored.
    pub stored_at: DateTime<Utc>,
}

/// Why stored rules cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesLoadError {
    /// None are stored for the playlist.
    #[error(
        "no rules are stored for playlist {0}; store them with `tasks playlist rules apply FILE`"
    )]
    Missing(String),
    /// The stored file no longer parses (an older format).
    #[error("the stored rules of playlist {playlist} are invalid: {source}")]
    Invalid {
        /// The playlist.
        playlist: String,
        /// Why.
        #[source]
        source: RuleError,
    },
    /// The store failed.
    #[error(transparent)]
    Port(#[from] PortError),
}

fn rules_key(playlist: &PlaylistId) -> ItemKey {
    ItemKey::new(format!("playlist#{playlist}"), "rules")
}

/// Stores a checked rule file and indexes its playlist.
pub async fn save_rules(
    store: &dyn Store,
    text: &str,
    rules: &RuleFile,
    now: DateTime<Utc>,
) -> Result<(), PortError> {
    let doc = StoredRules {
        text: text.to_owned(),
        stored_at: now,
    };
    store
        .put(
            &rules_key(&rules.playlist),
            &encode(&doc)?,
            PutCondition::Always,
            None,
        )
        .await?;
    store
        .put(
            &ItemKey::new(INDEX_PK, rules.playlist.as_str()),
            &serde_json::json!({"playlist": rules.playlist, "name": rules.name}),
            PutCondition::Always,
            None,
        )
        .await?;
    Ok(())
}

/// The stored rules of `playlist`, parsed.
pub async fn load_rules(
    store: &dyn Store,
    playlist: &PlaylistId,
) -> Result<(RuleFile, StoredRules), RulesLoadError> {
    let Some(item) = store.get(&rules_key(playlist)).await? else {
        return Err(RulesLoadError::Missing(playlist.to_string()));
    };
    let stored: StoredRules = decode(item.data)?;
    let rules = RuleFile::parse(&stored.text).map_err(|source| RulesLoadError::Invalid {
        playlist: playlist.to_string(),
        source,
    })?;
    Ok((rules, stored))
}

/// The managed playlists, in id order.
pub async fn managed(store: &dyn Store) -> Result<Vec<PlaylistId>, PortError> {
    let items = query_all(store, Query::partition(INDEX_PK), MAX_MANAGED).await?;
    Ok(items
        .into_iter()
        .filter_map(|i| PlaylistId::parse("playlist", &i.key.sk).ok())
        .collect())
}

/// The state between two runs of one playlist.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurationState {
    /// The `snapshot_id` the playlist had after our last write (or when first seen).
    pub snapshot_id: String,
    /// The tracks as we left them, in order.
    pub tracks: Vec<String>,
    /// When each track entered the playlist (for freshness).
    pub first_added: BTreeMap<String, NaiveDate>,
    /// Tracks a person removed: not added back.
    pub human_removed: BTreeSet<String>,
    /// Tracks a person added, kept pinned where they put them (0-based).
    pub human_pinned: BTreeMap<String, usize>,
    /// The fingerprint of the last solved input: equal input, equal answer, no work.
    pub fingerprint: Option<String>,
    /// A `PlaylistUpdated` whose writes were made but whose publication is not confirmed.
    pub pending_event: Option<serde_json::Value>,
    /// The write calls made for the latest request that wrote, journaled as each one
    /// succeeds: the request's completion audits them all, even when the run that made them
    /// died before its completion and a retry finds nothing left to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<WriteJournal>,
    /// When this state was written.
    pub updated_at: Option<DateTime<Utc>>,
}

/// The write calls of one request (its idempotency key), for its audit record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteJournal {
    /// The request's idempotency key (the same for each retry and duplicate of it).
    pub key: String,
    /// The playlist's snapshot before the request's first write.
    pub previous_snapshot_id: String,
    /// The write calls made, in order.
    pub ops: Vec<crate::diff::Op>,
    /// When the request's first write was made: the time of its run record, so that a retry
    /// rewrites that one record instead of adding a second.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
}

fn state_key(playlist: &PlaylistId) -> ItemKey {
    ItemKey::new(format!("playlist#{playlist}"), "curation")
}

/// The state of `playlist` and its version (0 when none is stored).
pub async fn load_state(
    store: &dyn Store,
    playlist: &PlaylistId,
) -> Result<(Option<CurationState>, u64), PortError> {
    match store.get(&state_key(playlist)).await? {
        Some(item) => Ok((Some(decode(item.data)?), item.version)),
        None => Ok((None, 0)),
    }
}

/// Writes the state if it is still at `version` (two runs of one playlist cannot interleave
/// their journals); returns the new version.
pub async fn save_state(
    store: &dyn Store,
    playlist: &PlaylistId,
    state: &CurationState,
    version: u64,
) -> Result<u64, PortError> {
    store
        .put(
            &state_key(playlist),
            &encode(state)?,
            PutCondition::Version(version),
            None,
        )
        .await
}

/// Stores one run's record under `run#<time>`; returns its key.
pub async fn save_run(
    store: &dyn Store,
    playlist: &PlaylistId,
    at: DateTime<Utc>,
    record: &serde_json::Value,
) -> Result<ItemKey, PortError> {
    let key = ItemKey::new(
        format!("playlist#{playlist}"),
        format!("run#{}", at.format("%Y-%m-%dT%H:%M:%S%.6fZ")),
    );
    store.put(&key, record, PutCondition::Always, None).await?;
    Ok(key)
}

/// The newest run record of `playlist`.
pub async fn latest_run(
    store: &dyn Store,
    playlist: &PlaylistId,
) -> Result<Option<serde_json::Value>, PortError> {
    let page = store
        .query(
            &Query::partition(format!("playlist#{playlist}"))
                .prefix("run#")
                .descending()
                .limit(1),
        )
        .await?;
    Ok(page.items.into_iter().next().map(|i| i.data))
}
