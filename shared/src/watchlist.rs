//! Watchlists: named rosters of artists that artist-monitoring and data-sync work through.
//!
//! Stored in the task data store: `pk = watchlist#<name>`, `sk = meta` holds the list, and an
//! index partition `pk = watchlists` holds one item per name so they can be listed. Updates use
//! optimistic concurrency, so two CLI users adding artists at once lose nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::PortError;
use crate::ports::store::query_all;
use crate::ports::{ItemKey, PutCondition, Query, Store};
use crate::validate::{ArtistId, ValidationError};

/// Most artists one watchlist may hold (10,000 keeps a plan step's fan-out bounded).
pub const MAX_ARTISTS: usize = 10_000;

/// Attempts of a read-modify-write before giving up to a concurrent writer.
const MAX_UPDATE_ATTEMPTS: u32 = 16;

/// A watchlist name: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WatchlistName(String);

impl WatchlistName {
    /// Checks `s`; the error gives the reason.
    pub fn new(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 64 {
            return Err(format!(
                "a watchlist name is 1 to 64 characters, got {}",
                s.len()
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_')))
        {
            return Err(format!(
                "a watchlist name holds a-z, 0-9, '-' and '_', found {bad:?}"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WatchlistName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<WatchlistName> for String {
    fn from(name: WatchlistName) -> Self {
        name.0
    }
}

impl fmt::Display for WatchlistName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored watchlist. `settings` holds per-watchlist options of the functions that use it
/// (alert rules, ...), kept as JSON so each function owns its own schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watchlist {
    /// Its name.
    pub name: WatchlistName,
    /// The artists, in the order they were added, without duplicates.
    pub artists: Vec<ArtistId>,
    /// Per-function settings, by function name.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// A watchlist operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchlistError {
    /// No watchlist has this name.
    #[error("no watchlist is named {0:?}")]
    Unknown(String),
    /// The list would exceed [`MAX_ARTISTS`].
    #[error("watchlist {name} would hold {count} artists; the limit is {MAX_ARTISTS}")]
    TooLarge {
        /// The watchlist.
        name: String,
        /// The size it would have.
        count: usize,
    },
    /// A stored watchlist cannot be read back.
    #[error("watchlist {name} is stored in an unreadable form: {source}")]
    Corrupt {
        /// The watchlist.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Concurrent writers kept winning.
    #[error("watchlist {0}: too many concurrent updates, try again")]
    Contended(String),
    /// The store failed.
    #[error(transparent)]
    Port(#[from] PortError),
}

impl crate::error::Classify for WatchlistError {
    fn class(&self) -> crate::error::ErrorClass {
        use crate::error::ErrorClass;
        match self {
            WatchlistError::Unknown(_) | WatchlistError::TooLarge { .. } => ErrorClass::Invalid,
            WatchlistError::Corrupt { .. } => ErrorClass::Permanent,
            WatchlistError::Contended(_) => ErrorClass::Transient,
            WatchlistError::Port(err) => err.class(),
        }
    }
}

impl From<WatchlistError> for ValidationError {
    fn from(err: WatchlistError) -> Self {
        ValidationError::new("watchlist", err.to_string())
    }
}

fn key(name: &WatchlistName) -> ItemKey {
    ItemKey::new(format!("watchlist#{name}"), "meta")
}

fn index_key(name: &WatchlistName) -> ItemKey {
    ItemKey::new("watchlists", name.as_str())
}

/// The audit subject of a message over some of a watchlist's artists:
/// `watchlist#<name>/<first artist>+<how many more>`. The first artist names the message (one
/// subject per business key, as data-sync's `artists#<first>`), the count says how many.
pub fn batch_subject(watchlist: &impl fmt::Display, artists: &[ArtistId]) -> String {
    let first = artists
        .first()
        .map_or_else(String::new, ToString::to_string);
    format!(
        "watchlist#{watchlist}/{first}+{}",
        artists.len().saturating_sub(1)
    )
}

/// Loads the watchlist `name`.
pub async fn load(store: &dyn Store, name: &WatchlistName) -> Result<Watchlist, WatchlistError> {
    Ok(load_versioned(store, name).await?.0)
}

async fn load_versioned(
    store: &dyn Store,
    name: &WatchlistName,
) -> Result<(Watchlist, u64), WatchlistError> {
    let item = store
        .get(&key(name))
        .await?
        .ok_or_else(|| WatchlistError::Unknown(name.to_string()))?;
    let list = serde_json::from_value(item.data).map_err(|source| WatchlistError::Corrupt {
        name: name.to_string(),
        source,
    })?;
    Ok((list, item.version))
}

/// Applies `change` to the watchlist `name` (created empty if `create` and missing), retrying
/// on concurrent updates; returns the stored result.
pub async fn update(
    store: &dyn Store,
    name: &WatchlistName,
    create: bool,
    change: impl Fn(&mut Watchlist),
) -> Result<Watchlist, WatchlistError> {
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let (mut list, version) = match load_versioned(store, name).await {
            Ok(found) => found,
            Err(WatchlistError::Unknown(_)) if create => (
                Watchlist {
                    name: name.clone(),
                    artists: Vec::new(),
                    settings: Default::default(),
                },
                0,
            ),
            Err(err) => return Err(err),
        };
        change(&mut list);
        let mut seen = std::collections::HashSet::new();
        list.artists.retain(|a| seen.insert(a.clone()));
        if list.artists.len() > MAX_ARTISTS {
            return Err(WatchlistError::TooLarge {
                name: name.to_string(),
                count: list.artists.len(),
            });
        }
        let data = serde_json::to_value(&list).map_err(|source| WatchlistError::Corrupt {
            name: name.to_string(),
            source,
        })?;
        let condition = if version == 0 {
            PutCondition::NotExists
        } else {
            PutCondition::Version(version)
        };
        match store.put(&key(name), &data, condition, None).await {
            Ok(_) => {
                store
                    .put(
                        &index_key(name),
                        &serde_json::json!({}),
                        PutCondition::Always,
                        None,
                    )
                    .await?;
                return Ok(list);
            }
            Err(PortError::Conflict { .. }) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(WatchlistError::Contended(name.to_string()))
}

/// Adds `artists` (already in the list: kept once) to `name`, creating it if needed.
pub async fn add(
    store: &dyn Store,
    name: &WatchlistName,
    artists: &[ArtistId],
) -> Result<Watchlist, WatchlistError> {
    update(store, name, true, |list| {
        list.artists.extend_from_slice(artists)
    })
    .await
}

/// Removes `artists` from `name`.
pub async fn remove(
    store: &dyn Store,
    name: &WatchlistName,
    artists: &[ArtistId],
) -> Result<Watchlist, WatchlistError> {
    update(store, name, false, |list| {
        list.artists.retain(|a| !artists.contains(a))
    })
    .await
}

/// The names of every watchlist.
pub async fn names(store: &dyn Store) -> Result<Vec<WatchlistName>, WatchlistError> {
    let items = query_all(store, Query::partition("watchlists"), 100_000).await?;
    Ok(items
        .into_iter()
        .filter_map(|item| WatchlistName::new(&item.key.sk).ok())
        .collect())
}
