//! Finding an artist's accounts in open data: MusicBrainz, then Wikidata.
//!
//! Requests per artist: MusicBrainz 1 (URL lookup) + 1 per artist found (usually 1);
//! Wikidata 1 (query) + 1 per item found (usually 1). MusicBrainz requests are paced to one a
//! second for the whole deployment by the caller's shared pacer.

use std::time::Duration;

use backbone::ports::WebRequest;
use backbone::validate::ArtistId;
use chrono::{DateTime, Utc};

use crate::client::{CallError, Caller};
use crate::identity::{Candidate, ManualLink, Provenance, Source};
use crate::platform::Platform;
use crate::wikidata::EntityError;
use crate::wire::WireError;
use crate::{musicbrainz, wikidata};

/// Most MusicBrainz artists or Wikidata items followed for one Spotify id (more is a data
/// problem the quarantine reports anyway).
const MAX_RECORDS: usize = 3;

/// What the open-data sources said about one artist.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Every account proposed.
    pub candidates: Vec<Candidate>,
    /// The MBIDs the Wikidata item(s) list; `None` when no item was found.
    pub wikidata_mbids: Option<Vec<String>>,
    /// Facts for the graph's notes (a redirect followed, a statement skipped).
    pub notes: Vec<String>,
}

/// Why the sources could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// An answer did not have the documented shape.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// An unexpected status.
    #[error("{upstream}: HTTP {status} for {what}")]
    Status {
        /// The upstream.
        upstream: &'static str,
        /// The status.
        status: u16,
        /// What was asked.
        what: String,
    },
}

fn candidate(
    platform: Platform,
    account: String,
    source: Source,
    relationship: &str,
    via: &str,
    at: DateTime<Utc>,
) -> Candidate {
    Candidate {
        platform,
        account,
        provenance: Provenance {
            source,
            fetched_at: at,
            relationship: relationship.to_owned(),
            via: via.to_owned(),
        },
    }
}

/// Reads MusicBrainz and Wikidata for `artist`. A manual Wikidata link is read instead of
/// querying for the item.
pub async fn discover(
    caller: &Caller,
    artist: &ArtistId,
    manual: &[ManualLink],
    now: DateTime<Utc>,
    time_left: Duration,
) -> Result<Found, DiscoverError> {
    let mut found = Found::default();
    // MusicBrainz: the Spotify URL's entity, then each linked artist's URL relationships.
    let url = musicbrainz::spotify_url(artist.as_str());
    let request = WebRequest::get("musicbrainz", "/ws/2/url")
        .query("resource", &url)
        .query("inc", "artist-rels")
        .query("fmt", "json");
    let response = caller.get(&request, time_left).await?;
    let mbids = match response.status {
        200 => musicbrainz::artists_of_url(&response.body)?,
        // MusicBrainz does not know the URL.
        404 => Vec::new(),
        status => {
            return Err(DiscoverError::Status {
                upstream: "musicbrainz",
                status,
                what: "url lookup".into(),
            });
        }
    };
    for mbid in mbids.iter().take(MAX_RECORDS) {
        found.candidates.push(candidate(
            Platform::MusicBrainz,
            mbid.clone(),
            Source::MusicBrainz,
            musicbrainz::FREE_STREAMING,
            &url,
            now,
        ));
        let request = WebRequest::get("musicbrainz", format!("/ws/2/artist/{mbid}"))
            .query("inc", "url-rels")
            .query("fmt", "json");
        let response = caller.get(&request, time_left).await?;
        match response.status {
            200 => {
                for u in musicbrainz::artist_urls(&response.body)? {
                    found.candidates.push(candidate(
                        u.platform,
                        u.account,
                        Source::MusicBrainz,
                        &u.type_id,
                        mbid,
                        now,
                    ));
                }
            }
            404 => found.notes.push(format!(
                "musicbrainz: artist {mbid} linked from the Spotify URL does not exist"
            )),
            status => {
                return Err(DiscoverError::Status {
                    upstream: "musicbrainz",
                    status,
                    what: format!("artist {mbid}"),
                });
            }
        }
    }
    // Wikidata: the item(s) whose P1902 is the artist, unless a person linked one.
    let qids = match manual.iter().find(|m| m.platform == Platform::Wikidata) {
        Some(m) => vec![m.account.clone()],
        None => {
            let request = WebRequest::get("wikidata-query", "/sparql")
                .query("query", wikidata::sparql_for(artist.as_str()))
                .query("format", "json");
            let response = caller.get(&request, time_left).await?;
            if response.status != 200 {
                return Err(DiscoverError::Status {
                    upstream: "wikidata-query",
                    status: response.status,
                    what: "P1902 query".into(),
                });
            }
            wikidata::items_of(&response.body)?
        }
    };
    let mut mbids_known: Option<Vec<String>> = None;
    for qid in qids.iter().take(MAX_RECORDS) {
        let request = WebRequest::get("wikidata", format!("/wiki/Special:EntityData/{qid}.json"));
        let response = caller.get(&request, time_left).await?;
        let entity = match response.status {
            200 => match wikidata::entity(qid, &response.body) {
                Ok(e) => e,
                Err(EntityError::Missing(q)) => {
                    found
                        .notes
                        .push(format!("wikidata: item {q} does not exist"));
                    continue;
                }
                Err(EntityError::Wire(w)) => return Err(w.into()),
            },
            404 => {
                found
                    .notes
                    .push(format!("wikidata: item {qid} does not exist"));
                continue;
            }
            status => {
                return Err(DiscoverError::Status {
                    upstream: "wikidata",
                    status,
                    what: format!("item {qid}"),
                });
            }
        };
        if let Some(from) = &entity.redirected_from {
            found.notes.push(format!(
                "wikidata: {from} redirects to {}; followed",
                entity.id
            ));
        }
        if !entity.spotify_ids.iter().any(|s| s == artist.as_str()) {
            found.notes.push(format!(
                "wikidata: {} does not list Spotify artist {artist} (P1902)",
                entity.id
            ));
        }
        for skipped in &entity.skipped {
            found
                .notes
                .push(format!("wikidata {}: skipped {skipped}", entity.id));
        }
        found.candidates.push(candidate(
            Platform::Wikidata,
            entity.id.clone(),
            Source::Wikidata,
            "P1902",
            &entity.id,
            now,
        ));
        let known = mbids_known.get_or_insert_with(Vec::new);
        for (pid, platform) in wikidata::PROPERTIES {
            for account in entity.accounts.get(&platform).into_iter().flatten() {
                if platform == Platform::MusicBrainz {
                    known.push(account.clone());
                }
                found.candidates.push(candidate(
                    platform,
                    account.clone(),
                    Source::Wikidata,
                    pid,
                    &entity.id,
                    now,
                ));
            }
        }
    }
    found.wikidata_mbids = mbids_known;
    Ok(found)
}
