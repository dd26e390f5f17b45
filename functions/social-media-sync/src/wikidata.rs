//! Wikidata: the item whose P1902 (Spotify artist ID) is the artist, and its external ids.
//!
//! The item is found with a Wikidata Query Service SELECT (`?item wdt:P1902 "<id>"`); its
//! statements come from `Special:EntityData/<QID>.json`. A redirected item (merged into
//! another) answers under the target's id: the redirect is followed and recorded. Deprecated
//! statements are ignored; where a property has preferred statements, only those count.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::platform::Platform;
use crate::wire::{self, WireError};

const API: &str = "wikidata";

/// The properties read, and the platform each identifies an account on.
pub const PROPERTIES: [(&str, Platform); 6] = [
    ("P434", Platform::MusicBrainz),
    ("P2397", Platform::YouTube),
    ("P2003", Platform::Instagram),
    ("P7085", Platform::TikTok),
    ("P2722", Platform::Deezer),
    ("P3192", Platform::LastFm),
];

/// The SPARQL query finding the items of a Spotify artist id (validated by the caller: 22
/// base-62 characters, nothing to escape).
pub fn sparql_for(artist: &str) -> String {
    format!("SELECT ?item WHERE {{ ?item wdt:P1902 \"{artist}\" . }}")
}

/// The QIDs in a query service result (`results.bindings[].item.value`, entity URIs).
pub fn items_of(body: &[u8]) -> Result<Vec<String>, WireError> {
    let doc = wire::json(API, body)?;
    let bindings = doc
        .pointer("/results/bindings")
        .and_then(Value::as_array)
        .ok_or_else(|| WireError::Shape {
            api: API,
            field: "results.bindings".into(),
            expected: "an array",
            found: wire::found(doc.pointer("/results/bindings")),
        })?;
    let mut out = Vec::new();
    for (i, b) in bindings.iter().enumerate() {
        let uri = wire::str_at(API, b, "item.value").map_err(|_| WireError::Shape {
            api: API,
            field: format!("results.bindings[{i}].item.value"),
            expected: "an entity URI",
            found: wire::found(b.pointer("/item/value")),
        })?;
        let qid = uri.rsplit('/').next().unwrap_or(uri);
        if let Ok(q) = Platform::Wikidata.normalise(qid)
            && !out.contains(&q)
        {
            out.push(q);
        }
    }
    Ok(out)
}

/// An item's external ids.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entity {
    /// The item's id (the redirect target when redirected).
    pub id: String,
    /// The id asked for, when it redirected to `id`.
    pub redirected_from: Option<String>,
    /// The P1902 values (Spotify artist ids) the item holds.
    pub spotify_ids: Vec<String>,
    /// The accounts per platform, in statement order (preferred ones only where any).
    pub accounts: BTreeMap<Platform, Vec<String>>,
    /// Statements that were skipped, and why (an unexpected value type).
    pub skipped: Vec<String>,
}

/// Why an item could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntityError {
    /// The item does not exist (deleted).
    #[error("wikidata: item {0} does not exist")]
    Missing(String),
    /// The body is not an entity document.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Reads the entity document of `requested` (`{"entities": {QID: {...}}}`).
pub fn entity(requested: &str, body: &[u8]) -> Result<Entity, EntityError> {
    let doc = wire::json(API, body)?;
    let Some(entities) = doc.get("entities").and_then(Value::as_object) else {
        return Err(WireError::Shape {
            api: API,
            field: "entities".into(),
            expected: "an object",
            found: wire::found(doc.get("entities")),
        }
        .into());
    };
    // One entity: the requested one, or its redirect target under the target's id.
    let Some((key, item)) = entities.iter().next() else {
        return Err(EntityError::Missing(requested.to_owned()));
    };
    if item.get("missing").is_some() {
        return Err(EntityError::Missing(requested.to_owned()));
    }
    let id = item
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or(key)
        .to_owned();
    let mut out = Entity {
        redirected_from: (id != requested).then(|| requested.to_owned()),
        id,
        ..Entity::default()
    };
    let claims = item.get("claims").and_then(Value::as_object);
    let spotify_ids = values(claims, "P1902", &mut out.skipped);
    let mut accounts = BTreeMap::new();
    for (pid, platform) in PROPERTIES {
        let mut found = Vec::new();
        for raw in values(claims, pid, &mut out.skipped) {
            match platform.normalise(&raw) {
                Ok(v) if !found.contains(&v) => found.push(v),
                Ok(_) => {}
                Err(reason) => out.skipped.push(format!("{pid}: {reason}")),
            }
        }
        if !found.is_empty() {
            accounts.insert(platform, found);
        }
    }
    out.spotify_ids = spotify_ids;
    out.accounts = accounts;
    Ok(out)
}

/// The string values of property `pid`: preferred statements where any, else normal ones;
/// deprecated ones never. A value of another type is recorded in `skipped`.
fn values(
    claims: Option<&serde_json::Map<String, Value>>,
    pid: &str,
    skipped: &mut Vec<String>,
) -> Vec<String> {
    let Some(statements) = claims.and_then(|c| c.get(pid)).and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut preferred = Vec::new();
    let mut normal = Vec::new();
    for (i, st) in statements.iter().enumerate() {
        let rank = st.get("rank").and_then(Value::as_str).unwrap_or("normal");
        if rank == "deprecated" {
            continue;
        }
        // "novalue"/"somevalue" snaks carry no datavalue: nothing to take, nothing wrong.
        let Some(value) = st.pointer("/mainsnak/datavalue/value") else {
            continue;
        };
        let Some(text) = value.as_str() else {
            skipped.push(format!(
                "{pid}[{i}]: expected a string value, found {}",
                wire::found(Some(value))
            ));
            continue;
        };
        if rank == "preferred" {
            preferred.push(text.to_owned());
        } else {
            normal.push(text.to_owned());
        }
    }
    if preferred.is_empty() {
        normal
    } else {
        preferred
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::fixture;

    #[test]
    fn beatles_item_gives_the_preferred_mbid_and_the_accounts() {
        let e = entity("Q1299", &fixture("wikidata_entitydata_Q1299_beatles.json")).unwrap();
        assert_eq!(e.id, "Q1299");
        assert_eq!(e.redirected_from, None);
        assert_eq!(e.spotify_ids, vec!["3WrFJ7ztbogyGnTHbHJFl2".to_owned()]);
        // Two P434 statements, one preferred: only the preferred one counts.
        assert_eq!(
            e.accounts[&Platform::MusicBrainz],
            vec!["b10bbbfc-cf9e-42e0-be17-e2c3e1d2600d".to_owned()]
        );
        assert_eq!(
            e.accounts[&Platform::Instagram],
            vec!["thebeatles".to_owned()]
        );
        assert_eq!(
            e.accounts[&Platform::LastFm],
            vec!["the beatles".to_owned()]
        );
        // The 2017 recording predates P2397.
        assert!(!e.accounts.contains_key(&Platform::YouTube));
        assert!(e.skipped.is_empty());
    }

    #[test]
    fn an_item_without_spotify_id_and_a_redirect_are_told_apart() {
        let e = entity("Q20145", &fixture("wikidata_entitydata_Q20145_iu.json")).unwrap();
        assert!(e.spotify_ids.is_empty());
        assert_eq!(e.accounts[&Platform::Instagram], vec!["dlwlrma".to_owned()]);
        // Asked for Q999 and answered with Q1299: a redirect, followed and recorded.
        let e = entity("Q999", &fixture("wikidata_entitydata_Q1299_beatles.json")).unwrap();
        assert_eq!(
            (e.id.as_str(), e.redirected_from.as_deref()),
            ("Q1299", Some("Q999"))
        );
    }

    #[test]
    fn unexpected_value_types_are_skipped_with_a_reason() {
        let body = serde_json::json!({"entities": {"Q1": {"id": "Q1", "claims": {
            "P2397": [{"rank": "normal", "mainsnak": {"datavalue": {"value": {"amount": "+5"}}}}],
            "P2722": [{"rank": "normal", "mainsnak": {"datavalue": {"value": "27"}}},
                      {"rank": "deprecated", "mainsnak": {"datavalue": {"value": "28"}}}],
            "P2003": [{"rank": "normal", "mainsnak": {"datavalue": {"value": "not a user name!"}}}],
        }}}});
        let e = entity("Q1", body.to_string().as_bytes()).unwrap();
        assert_eq!(e.accounts[&Platform::Deezer], vec!["27".to_owned()]);
        assert!(!e.accounts.contains_key(&Platform::YouTube));
        assert_eq!(e.skipped.len(), 2, "{:?}", e.skipped);
        assert!(e.skipped[0].starts_with("P2397[0]: expected a string value"));
        let missing = serde_json::json!({"entities": {"Q5": {"id": "Q5", "missing": ""}}});
        assert_eq!(
            entity("Q5", missing.to_string().as_bytes()),
            Err(EntityError::Missing("Q5".into()))
        );
    }

    #[test]
    fn query_results_give_qids() {
        let body = serde_json::json!({"head": {"vars": ["item"]}, "results": {"bindings": [
            {"item": {"type": "uri", "value": "http://www.wikidata.org/entity/Q1299"}}]}});
        assert_eq!(
            items_of(body.to_string().as_bytes()).unwrap(),
            vec!["Q1299".to_owned()]
        );
        // The recorded SELECT has no ?item: a named shape error, not a panic.
        let err = items_of(&fixture("wikidata_sparql_results.json")).unwrap_err();
        assert!(
            err.to_string().contains("results.bindings[0].item.value"),
            "{err}"
        );
    }
}
