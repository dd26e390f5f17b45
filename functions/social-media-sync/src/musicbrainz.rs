//! MusicBrainz: the artist behind a Spotify artist URL, and that artist's URL relationships.
//!
//! Two lookups: `GET /ws/2/url?resource=<spotify url>&inc=artist-rels` answers with the URL
//! entity and its relations to artists; `GET /ws/2/artist/<mbid>?inc=url-rels` with the
//! artist's links. Relations are matched by their `type-id` (stable), never by their `type`
//! name (translated, renamed); an `ended` relation is an account no longer used.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::platform::{self, Platform};
use crate::wire::{self, WireError};

const API: &str = "musicbrainz";

/// artist-url "free streaming" (Spotify, Deezer).
pub const FREE_STREAMING: &str = "769085a1-c2f7-4c24-a532-2375a77693bd";
/// artist-url "streaming".
pub const STREAMING: &str = "63cc5d1f-f096-4c94-a43f-ecb32ea94161";
/// artist-url "social network" (Instagram, TikTok).
pub const SOCIAL_NETWORK: &str = "99429741-f3f6-484b-84f8-23af51991770";
/// artist-url "youtube".
pub const YOUTUBE: &str = "6a540e5b-58c6-4192-b6ba-dbc71ec8fcf0";
/// artist-url "last.fm".
pub const LASTFM: &str = "08db8098-c0df-4b78-82c3-c8697b4bba7f";

/// The relationship types that may link an artist to an account on `platform`.
fn types_for(platform: Platform) -> &'static [&'static str] {
    match platform {
        Platform::YouTube => &[YOUTUBE],
        Platform::Instagram | Platform::TikTok => &[SOCIAL_NETWORK],
        Platform::Deezer => &[FREE_STREAMING, STREAMING],
        Platform::LastFm => &[LASTFM],
        Platform::MusicBrainz | Platform::Wikidata => &[],
    }
}

/// The lookup path of a Spotify artist's URL entity.
pub fn spotify_url(artist: &str) -> String {
    format!("https://open.spotify.com/artist/{artist}")
}

/// The MBIDs of the artists the URL entity is linked to by a streaming relationship, from the
/// body of `url?resource=...&inc=artist-rels`.
pub fn artists_of_url(body: &[u8]) -> Result<Vec<String>, WireError> {
    let doc = wire::json(API, body)?;
    let relations = relations(&doc)?;
    let mut out = BTreeSet::new();
    for (i, rel) in relations.iter().enumerate() {
        let type_id = rel.get("type-id").and_then(Value::as_str).unwrap_or("");
        if rel.get("target-type").and_then(Value::as_str) != Some("artist")
            || ![FREE_STREAMING, STREAMING].contains(&type_id)
            || rel.get("ended").and_then(Value::as_bool) == Some(true)
        {
            continue;
        }
        let id = wire::str_at(API, rel, "artist.id").map_err(|_| WireError::Shape {
            api: API,
            field: format!("relations[{i}].artist.id"),
            expected: "an MBID string",
            found: wire::found(rel.pointer("/artist/id")),
        })?;
        if let Ok(id) = Platform::MusicBrainz.normalise(id) {
            out.insert(id);
        }
    }
    Ok(out.into_iter().collect())
}

/// An account found in an artist's URL relationships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundUrl {
    /// The platform.
    pub platform: Platform,
    /// The account, normalised.
    pub account: String,
    /// The relationship's type id.
    pub type_id: String,
    /// The URL as MusicBrainz has it.
    pub url: String,
}

/// The accounts in the body of `artist/<mbid>?inc=url-rels`: relations whose type id may link
/// to the platform of their URL, and which have not ended.
pub fn artist_urls(body: &[u8]) -> Result<Vec<FoundUrl>, WireError> {
    let doc = wire::json(API, body)?;
    let mut out = Vec::new();
    for rel in relations(&doc)? {
        if rel.get("target-type").and_then(Value::as_str) != Some("url")
            || rel.get("ended").and_then(Value::as_bool) == Some(true)
        {
            continue;
        }
        let (Some(type_id), Some(url)) = (
            rel.get("type-id").and_then(Value::as_str),
            rel.pointer("/url/resource").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some((platform, account)) = platform::from_url(url) else {
            continue;
        };
        if types_for(platform).contains(&type_id) {
            out.push(FoundUrl {
                platform,
                account,
                type_id: type_id.to_owned(),
                url: url.to_owned(),
            });
        }
    }
    out.dedup();
    Ok(out)
}

fn relations(doc: &Value) -> Result<&Vec<Value>, WireError> {
    match doc.get("relations") {
        Some(Value::Array(items)) => Ok(items),
        None => Ok(EMPTY.get_or_init(Vec::new)),
        other => Err(WireError::Shape {
            api: API,
            field: "relations".into(),
            expected: "an array",
            found: wire::found(other),
        }),
    }
}

static EMPTY: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::fixture;

    #[test]
    fn release_recordings_have_no_artist_accounts() {
        // The recorded release url-rels: Spotify/Deezer albums under release-url type ids,
        // which are not artist-url ids: nothing is taken from them.
        assert!(
            artist_urls(&fixture("musicbrainz_release_url_rels.json"))
                .unwrap()
                .is_empty()
        );
        // A URL linked to a release, not an artist: no MBID.
        assert!(
            artists_of_url(&fixture("musicbrainz_url_lookup_release_rels.json"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn artist_relations_are_matched_by_type_id() {
        // The recorded envelope with the artist-url type ids of SOURCES.md.
        let body = serde_json::json!({"id": "b10bbbfc-cf9e-42e0-be17-e2c3e1d2600d", "relations": [
            {"type": "youtube", "type-id": YOUTUBE, "target-type": "url", "ended": false,
             "url": {"resource": "https://www.youtube.com/channel/UCc4K7bAqpdBP8jh1j9XZAww", "id": "x"}},
            {"type": "social network", "type-id": SOCIAL_NETWORK, "target-type": "url", "ended": false,
             "url": {"resource": "https://www.instagram.com/thebeatles/", "id": "y"}},
            // Same URL shape, wrong type id (a "purchase for download" relation): ignored.
            {"type": "youtube", "type-id": "98e08c20-8402-4163-8970-53504bb6a1e4", "target-type": "url",
             "url": {"resource": "https://www.youtube.com/channel/UCaaaaaaaaaaaaaaaaaaaaaa"}},
            // An ended account: ignored.
            {"type-id": SOCIAL_NETWORK, "target-type": "url", "ended": true,
             "url": {"resource": "https://www.tiktok.com/@oldname"}},
            {"type-id": FREE_STREAMING, "target-type": "url", "ended": false,
             "url": {"resource": "https://www.deezer.com/artist/1"}},
        ]});
        let found = artist_urls(body.to_string().as_bytes()).unwrap();
        let got: Vec<(Platform, &str)> = found
            .iter()
            .map(|f| (f.platform, f.account.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Platform::YouTube, "UCc4K7bAqpdBP8jh1j9XZAww"),
                (Platform::Instagram, "thebeatles"),
                (Platform::Deezer, "1"),
            ]
        );
    }

    #[test]
    fn url_lookup_yields_artist_mbids_and_bad_shapes_are_named() {
        let body = serde_json::json!({"id": "u", "resource": spotify_url("3WrFJ7ztbogyGnTHbHJFl2"), "relations": [
            {"type-id": FREE_STREAMING, "target-type": "artist", "direction": "backward",
             "artist": {"id": "B10BBBFC-CF9E-42E0-BE17-E2C3E1D2600D", "name": "The Beatles"}}]});
        assert_eq!(
            artists_of_url(body.to_string().as_bytes()).unwrap(),
            vec!["b10bbbfc-cf9e-42e0-be17-e2c3e1d2600d".to_owned()]
        );
        let bad = serde_json::json!({"relations": [
            {"type-id": FREE_STREAMING, "target-type": "artist", "artist": {"id": 7}}]});
        let err = artists_of_url(bad.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "musicbrainz: relations[0].artist.id: expected an MBID string, found 7"
        );
        let err = artist_urls(br#"{"relations": {}}"#).unwrap_err();
        assert!(err.to_string().contains("relations: expected an array"));
        assert!(matches!(
            artists_of_url(b"<html>"),
            Err(WireError::NotJson { .. })
        ));
    }
}
