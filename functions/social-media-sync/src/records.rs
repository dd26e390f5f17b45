//! The identity graph and the manual links in the task data store.
//!
//! Keys (single-table, see `backbone::ports::store`):
//! - `pk = social#<artist>`, `sk = graph`: the resolved [`Graph`];
//! - `pk = social#<artist>`, `sk = manual#<platform>`: a [`ManualLink`] entered by a person.

use backbone::error::PortError;
use backbone::ports::store::query_all;
use backbone::ports::{ItemKey, PutCondition, Query, Store};
use backbone::validate::ArtistId;

use crate::identity::{Graph, ManualLink};
use crate::platform::Platform;

fn pk(artist: &ArtistId) -> String {
    format!("social#{artist}")
}

/// The stored graph of `artist`, if it was ever resolved.
pub async fn graph(store: &dyn Store, artist: &ArtistId) -> Result<Option<Graph>, PortError> {
    match store.get(&ItemKey::new(pk(artist), "graph")).await? {
        None => Ok(None),
        Some(item) => serde_json::from_value(item.data)
            .map(Some)
            .map_err(|e| PortError::permanent("graph.decode", e)),
    }
}

/// Stores the graph of `artist`.
pub async fn save_graph(
    store: &dyn Store,
    artist: &ArtistId,
    graph: &Graph,
) -> Result<(), PortError> {
    let data = serde_json::to_value(graph).map_err(|e| PortError::permanent("graph.encode", e))?;
    store
        .put(
            &ItemKey::new(pk(artist), "graph"),
            &data,
            PutCondition::Always,
            None,
        )
        .await?;
    Ok(())
}

/// The manual links of `artist`.
pub async fn manual_links(
    store: &dyn Store,
    artist: &ArtistId,
) -> Result<Vec<ManualLink>, PortError> {
    query_all(store, Query::partition(pk(artist)).prefix("manual#"), 100)
        .await?
        .into_iter()
        .map(|item| {
            serde_json::from_value(item.data)
                .map_err(|e| PortError::permanent("manual_link.decode", e))
        })
        .collect()
}

/// Sets (or replaces) the manual link of `artist` on `link.platform`. It takes effect at the
/// next sync, which re-resolves the graph of an artist whose manual links changed.
pub async fn set_manual_link(
    store: &dyn Store,
    artist: &ArtistId,
    link: &ManualLink,
) -> Result<(), PortError> {
    let data =
        serde_json::to_value(link).map_err(|e| PortError::permanent("manual_link.encode", e))?;
    store
        .put(
            &ItemKey::new(pk(artist), format!("manual#{}", link.platform)),
            &data,
            PutCondition::Always,
            None,
        )
        .await?;
    // The graph is resolved again at the next sync.
    store.delete(&ItemKey::new(pk(artist), "graph")).await
}

/// Removes the manual link of `artist` on `platform`.
pub async fn remove_manual_link(
    store: &dyn Store,
    artist: &ArtistId,
    platform: Platform,
) -> Result<(), PortError> {
    store
        .delete(&ItemKey::new(pk(artist), format!("manual#{platform}")))
        .await?;
    store.delete(&ItemKey::new(pk(artist), "graph")).await
}
