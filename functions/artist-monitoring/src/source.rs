//! What artist-monitoring reads from Spotify, in the task's terms: artist lookups (found or
//! gone) and release lists. Written over the [`SpotifyCatalog`] port, so batching per tier,
//! rate limits, retries and tokens stay the adapter's business.

use backbone::spotify::model::{Album, PageRequest};
use backbone::spotify::{SpotifyCatalog, SpotifyError, Tier};
use backbone::validate::ArtistId;

use crate::alerts::Release;

/// Albums read per page of an artist's releases: the most Development Mode accepts.
pub const RELEASES_PAGE: u32 = 10;
/// Pages of releases read per artist at most (500 releases), so one artist cannot use the
/// whole call budget.
const MAX_RELEASE_PAGES: u32 = 50;

/// What the API said of one artist.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The artist exists; absent fields were not returned (the development tier).
    Found(ArtistFacts),
    /// The API knows no such artist (404, or `null` in a batch): the artist is gone.
    NotFound,
}

/// The artist fields the task uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArtistFacts {
    /// The name.
    pub name: String,
    /// Followers, if returned.
    pub followers: Option<u64>,
    /// Popularity, if returned.
    pub popularity: Option<u8>,
    /// Genres, if returned.
    pub genres: Option<Vec<String>>,
}

/// How many artists one work message should hold in `tier`: one batched call's worth.
pub fn batch_limit(tier: Tier) -> usize {
    match tier {
        Tier::Extended => 50,
        // One call per artist either way; ten keeps a message's work well inside its deadline.
        Tier::Development => 10,
    }
}

/// Why a field is missing in `tier`, for the report.
pub fn missing_reason(tier: Tier) -> &'static str {
    match tier {
        Tier::Development => {
            "not returned to Development Mode apps since February 2026 (extended quota only)"
        }
        Tier::Extended => "not returned by the API for this artist",
    }
}

/// Looks up `ids`, one answer per id in the same order.
pub async fn artists<A: SpotifyCatalog + ?Sized>(
    api: &A,
    ids: &[ArtistId],
) -> Result<Vec<Lookup>, SpotifyError> {
    let found = api.artists(ids).await?;
    Ok(found
        .into_iter()
        .map(|artist| match artist {
            Some(a) => Lookup::Found(ArtistFacts {
                name: a.name,
                followers: a.followers,
                popularity: a.popularity,
                genres: a.genres,
            }),
            None => Lookup::NotFound,
        })
        .collect())
}

/// Every release of `artist`, newest first as Spotify lists them.
///
/// `known` is the list of the last snapshot: when the first page holds only known releases
/// and the total is unchanged, nothing can have been added (new releases list first), so the
/// other pages are not read. That keeps the daily cost at one call per artist.
pub async fn releases<A: SpotifyCatalog + ?Sized>(
    api: &A,
    artist: &ArtistId,
    known: Option<&[Release]>,
) -> Result<Vec<Release>, SpotifyError> {
    let first = api
        .artist_albums(artist, PageRequest::first(RELEASES_PAGE))
        .await?;
    if let (Some(known), Some(total)) = (known, first.total)
        && total as usize == known.len()
        && first
            .items
            .iter()
            .all(|album| known.iter().any(|k| k.id == album.id.as_str()))
    {
        return Ok(known.to_vec());
    }
    let mut out: Vec<Release> = first.items.iter().map(release).collect();
    let mut next = first.next_request();
    let mut pages = 1;
    while let Some(request) = next {
        if pages >= MAX_RELEASE_PAGES {
            tracing::warn!(%artist, pages, "release list truncated at the page cap");
            break;
        }
        let page = api.artist_albums(artist, request).await?;
        out.extend(page.items.iter().map(release));
        next = page.next_request();
        pages += 1;
    }
    Ok(out)
}

fn release(album: &Album) -> Release {
    Release {
        id: album.id.to_string(),
        name: album.name.clone(),
        group: album
            .album_group
            .clone()
            .or_else(|| album.album_type.clone())
            .unwrap_or_else(|| "album".into()),
        release_date: album.release_date.clone().unwrap_or_default(),
    }
}
