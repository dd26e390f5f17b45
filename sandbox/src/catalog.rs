//! The seeded catalog: artists, albums, tracks and playlists, and their JSON in Spotify's shapes.
//!
//! Everything derives from the seed, so two sandboxes with the same seed serve the same
//! catalog. Artist and track statistics move day by day on the simulated clock: followers grow
//! (or shrink) at a per-artist rate with a little deterministic noise, popularity drifts.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Tier;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const API: &str = "https://api.spotify.com/v1";
const OPEN: &str = "https://open.spotify.com";

/// A valid 22-character base-62 Spotify id derived from `parts`.
pub fn make_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    digest
        .iter()
        .take(22)
        .map(|b| BASE62[usize::from(*b) % BASE62.len()] as char)
        .collect()
}

/// A deterministic number in [0, 1) from `parts`.
pub fn unit(parts: &[&str]) -> f64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ra", "ven", "sol", "tu", "ne", "ori", "bel", "dax", "ly", "mor", "quin",
    "sa", "tel", "vi", "zo", "an", "el", "ro", "fi", "gar", "hu",
];
const WORDS: &[&str] = &[
    "Midnight", "Echo", "Paper", "River", "Neon", "Golden", "Silent", "Wild", "Glass", "Summer",
    "Static", "Velvet", "Northern", "Electric", "Hollow", "Crystal", "Fading", "Ocean", "Signal",
    "Ember",
];
const NOUNS: &[&str] = &[
    "Lights", "Hearts", "Roads", "Dreams", "Waves", "Lines", "Rooms", "Stars", "Machines",
    "Gardens", "Songs", "Mirrors",
];
const GENRES: &[&str] = &[
    "indie pop",
    "indie folk",
    "synthwave",
    "alt rock",
    "neo soul",
    "house",
    "techno",
    "dream pop",
    "hip hop",
    "jazz fusion",
    "afrobeats",
    "k-pop",
    "latin pop",
    "ambient",
    "post-punk",
];
const LABELS: &[&str] = &[
    "Sandbox Records",
    "Seeded Sound",
    "Loopback Music",
    "Port 0 Audio",
];

fn name(rng: &mut StdRng, syllables: usize) -> String {
    let mut s: String = (0..syllables)
        .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
        .collect();
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s
}

fn title(rng: &mut StdRng) -> String {
    format!(
        "{} {}",
        WORDS[rng.random_range(0..WORDS.len())],
        NOUNS[rng.random_range(0..NOUNS.len())]
    )
}

/// An artist of the catalog.
#[derive(Debug, Clone)]
pub struct Artist {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    genres: Vec<String>,
    base_followers: f64,
    daily_growth: f64,
    base_popularity: f64,
    /// Indexes of its albums, newest first.
    pub albums: Vec<usize>,
    /// Follower surges: from the day on, followers are multiplied by the factor.
    surges: Vec<(u32, f64)>,
    /// The day from which the artist is gone (404, `null` in batches).
    removed_from: Option<u32>,
}

/// An album of the catalog.
#[derive(Debug, Clone)]
pub struct Album {
    /// Its id.
    pub id: String,
    name: String,
    album_type: &'static str,
    artist: usize,
    release_date: NaiveDate,
    /// Indexes of its tracks, in order.
    pub tracks: Vec<usize>,
    label: &'static str,
    upc: String,
    popularity: u32,
    /// The simulated day from which the album is listed (0 for the seeded back catalog).
    from_day: u32,
}

/// A track of the catalog.
#[derive(Debug, Clone)]
pub struct Track {
    /// Its id.
    pub id: String,
    name: String,
    album: usize,
    artists: Vec<usize>,
    duration_ms: u64,
    explicit: bool,
    track_number: u32,
    isrc: String,
    base_popularity: f64,
}

/// A playlist and its mutable content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playlist {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    description: String,
    /// The owner's user id.
    pub owner: String,
    public: bool,
    /// Whether others may edit it.
    pub collaborative: bool,
    /// Follower count.
    pub followers: u64,
    /// Entries: track index, when added (day offset), who added.
    pub items: Vec<(usize, i64, String)>,
    /// Edit counter, the source of the snapshot id.
    pub version: u64,
}

impl Playlist {
    /// The opaque snapshot id of the current version.
    pub fn snapshot_id(&self) -> String {
        let raw = make_id(&[&self.id, &self.version.to_string(), "snapshot"]);
        format!("AAAA{}{}", self.version, raw)
    }
}

/// The whole seeded catalog (playlists are kept by the server, which edits them).
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Every artist.
    pub artists: Vec<Artist>,
    /// Every album.
    pub albums: Vec<Album>,
    /// Every track.
    pub tracks: Vec<Track>,
    artist_index: HashMap<String, usize>,
    album_index: HashMap<String, usize>,
    track_index: HashMap<String, usize>,
    start: NaiveDate,
}

/// Something that happens in the catalog on a simulated day, so tests and the local run know
/// exactly what a monitor must notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scenario {
    /// Artist `artist` (an index into the catalog) releases a new album of `tracks` tracks,
    /// listed from `day` on (a single when it has at most three).
    Release {
        /// The artist's index.
        artist: usize,
        /// The simulated day.
        day: u32,
        /// Its number of tracks.
        tracks: u32,
    },
    /// The artist's followers are multiplied by `factor` from `day` on.
    FollowerSurge {
        /// The artist's index.
        artist: usize,
        /// The simulated day.
        day: u32,
        /// The multiplier (1.3 is a 30 % surge).
        factor: f64,
    },
    /// The artist is removed from `day` on: 404 alone, `null` in batches.
    Removed {
        /// The artist's index.
        artist: usize,
        /// The simulated day.
        day: u32,
    },
}

impl Scenario {
    /// The artist it happens to.
    pub fn artist(&self) -> usize {
        match self {
            Scenario::Release { artist, .. }
            | Scenario::FollowerSurge { artist, .. }
            | Scenario::Removed { artist, .. } => *artist,
        }
    }

    /// The simulated day it happens.
    pub fn day(&self) -> u32 {
        match self {
            Scenario::Release { day, .. }
            | Scenario::FollowerSurge { day, .. }
            | Scenario::Removed { day, .. } => *day,
        }
    }

    /// The scenario of the local run and the end-to-end tests, over the first twelve artists
    /// (the demo watchlist): a release on day 10, a 30 % follower surge on day 16 and a removal
    /// on day 20.
    pub fn demo() -> Vec<Scenario> {
        vec![
            Scenario::Release {
                artist: 2,
                day: 10,
                tracks: 9,
            },
            Scenario::FollowerSurge {
                artist: 5,
                day: 16,
                factor: 1.3,
            },
            Scenario::Removed { artist: 8, day: 20 },
        ]
    }
}

/// The id of the sandbox's authorised user.
pub const USER_ID: &str = "sandboxuser";

impl Catalog {
    /// Generates `artists` artists (with albums and tracks) from `seed`.
    pub fn generate(seed: u64, artists: usize, start: NaiveDate) -> (Self, Vec<Playlist>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let seed_s = seed.to_string();
        let mut catalog = Catalog {
            artists: Vec::with_capacity(artists),
            albums: Vec::new(),
            tracks: Vec::new(),
            artist_index: HashMap::new(),
            album_index: HashMap::new(),
            track_index: HashMap::new(),
            start,
        };
        for a in 0..artists {
            let id = make_id(&[&seed_s, "artist", &a.to_string()]);
            let syllables = rng.random_range(2..4);
            let genre_count = rng.random_range(0..3);
            let genres = (0..genre_count)
                .map(|_| GENRES[rng.random_range(0..GENRES.len())].to_owned())
                .collect();
            // Log-uniform followers: a few stars, many small artists.
            let base_followers = 10f64.powf(rng.random_range(2.0..6.7));
            let artist = Artist {
                id: id.clone(),
                name: name(&mut rng, syllables),
                genres,
                base_followers,
                daily_growth: rng.random_range(-0.004..0.02),
                base_popularity: (base_followers.log10() * 13.0).min(95.0),
                albums: Vec::new(),
                surges: Vec::new(),
                removed_from: None,
            };
            catalog.artist_index.insert(id, a);
            catalog.artists.push(artist);
            let album_count = rng.random_range(1..5);
            for _ in 0..album_count {
                let album_idx = catalog.albums.len();
                let album_id = make_id(&[&seed_s, "album", &album_idx.to_string()]);
                let kind = rng.random_range(0..3);
                let (album_type, track_count) = match kind {
                    0 => ("single", rng.random_range(1..3)),
                    1 => ("album", rng.random_range(8..13)),
                    _ => ("album", rng.random_range(4..9)),
                };
                let release_date = start - Duration::days(rng.random_range(1..4000));
                let mut album = Album {
                    id: album_id.clone(),
                    name: title(&mut rng),
                    album_type,
                    artist: a,
                    release_date,
                    tracks: Vec::new(),
                    label: LABELS[rng.random_range(0..LABELS.len())],
                    upc: format!("{:012}", rng.random_range(0..999_999_999_999u64)),
                    popularity: rng.random_range(0..80),
                    from_day: 0,
                };
                for n in 0..track_count {
                    let track_idx = catalog.tracks.len();
                    let track_id = make_id(&[&seed_s, "track", &track_idx.to_string()]);
                    let mut artists = vec![a];
                    if a > 0 && rng.random_bool(0.15) {
                        artists.push(rng.random_range(0..a));
                    }
                    let track = Track {
                        id: track_id.clone(),
                        name: title(&mut rng),
                        album: album_idx,
                        artists,
                        duration_ms: rng.random_range(95_000..420_000),
                        explicit: rng.random_bool(0.2),
                        track_number: n + 1,
                        isrc: format!("QZSBX{:07}", track_idx),
                        base_popularity: rng.random_range(0.0..90.0),
                    };
                    catalog.track_index.insert(track_id, track_idx);
                    catalog.tracks.push(track);
                    album.tracks.push(track_idx);
                }
                catalog.album_index.insert(album_id, album_idx);
                catalog.albums.push(album);
                catalog.artists[a].albums.push(album_idx);
            }
            let albums = &catalog.albums;
            catalog.artists[a]
                .albums
                .sort_by_key(|i| std::cmp::Reverse(albums[*i].release_date));
        }
        let playlists = catalog.seed_playlists(&mut rng, &seed_s);
        (catalog, playlists)
    }

    fn seed_playlists(&self, rng: &mut StdRng, seed: &str) -> Vec<Playlist> {
        let mut out = Vec::new();
        for p in 0..8 {
            let owned = p < 5;
            let size = if self.tracks.is_empty() {
                0
            } else {
                rng.random_range(5..140)
            };
            let items = (0..size)
                .map(|_| {
                    let t = rng.random_range(0..self.tracks.len());
                    let owner = if owned { USER_ID } else { "spotify" };
                    (t, -rng.random_range(1..700), owner.to_owned())
                })
                .collect();
            out.push(Playlist {
                id: make_id(&[seed, "playlist", &p.to_string()]),
                name: title(rng),
                description: if p % 3 == 0 {
                    String::new()
                } else {
                    "Seeded by the Spotify sandbox".into()
                },
                owner: if owned { USER_ID } else { "spotify" }.into(),
                public: p % 2 == 0,
                collaborative: p == 4,
                followers: rng.random_range(0..100_000),
                items,
                version: 1,
            });
        }
        out
    }

    /// The index of the artist `id`.
    pub fn artist_idx(&self, id: &str) -> Option<usize> {
        self.artist_index.get(id).copied()
    }

    /// The index of the artist `id` if it still exists on `day`.
    pub fn live_artist(&self, id: &str, day: u32) -> Option<usize> {
        self.artist_idx(id)
            .filter(|a| self.artists[*a].removed_from.is_none_or(|from| day < from))
    }

    /// The index of the album `id`.
    pub fn album_idx(&self, id: &str) -> Option<usize> {
        self.album_index.get(id).copied()
    }

    /// The index of the album `id` if it is released by `day`.
    pub fn live_album(&self, id: &str, day: u32) -> Option<usize> {
        self.album_idx(id)
            .filter(|b| self.albums[*b].from_day <= day)
    }

    /// The albums of artist `a` listed on `day`, newest first.
    pub fn albums_on(&self, a: usize, day: u32) -> Vec<usize> {
        self.artists[a]
            .albums
            .iter()
            .copied()
            .filter(|b| self.albums[*b].from_day <= day)
            .collect()
    }

    /// Applies `scenarios` to the generated catalog. Releases become albums (with tracks)
    /// listed from their day; unknown artist indexes are ignored with a warning.
    pub fn apply(&mut self, scenarios: &[Scenario]) {
        for (n, scenario) in scenarios.iter().enumerate() {
            let artist = scenario.artist();
            if artist >= self.artists.len() {
                tracing::warn!(artist, "scenario names an artist the catalog does not have");
                continue;
            }
            match *scenario {
                Scenario::Release { day, tracks, .. } => {
                    let album_idx = self.albums.len();
                    let album_id = make_id(&["scenario", &n.to_string(), "album"]);
                    let mut album = Album {
                        id: album_id.clone(),
                        name: format!("Scenario Release {n}"),
                        album_type: if tracks <= 3 { "single" } else { "album" },
                        artist,
                        release_date: self.date(day),
                        tracks: Vec::new(),
                        label: LABELS[0],
                        upc: format!("{:012}", 900_000_000_000u64 + n as u64),
                        popularity: 50,
                        from_day: day,
                    };
                    for t in 0..tracks.max(1) {
                        let track_idx = self.tracks.len();
                        let track_id =
                            make_id(&["scenario", &n.to_string(), "track", &t.to_string()]);
                        self.tracks.push(Track {
                            id: track_id.clone(),
                            name: format!("Scenario Track {n}.{t}"),
                            album: album_idx,
                            artists: vec![artist],
                            duration_ms: 180_000 + u64::from(t) * 7_000,
                            explicit: false,
                            track_number: t + 1,
                            isrc: format!("QZSCN{:07}", track_idx),
                            base_popularity: 40.0,
                        });
                        self.track_index.insert(track_id, track_idx);
                        album.tracks.push(track_idx);
                    }
                    self.album_index.insert(album_id, album_idx);
                    self.albums.push(album);
                    self.artists[artist].albums.insert(0, album_idx);
                }
                Scenario::FollowerSurge { day, factor, .. } => {
                    self.artists[artist].surges.push((day, factor));
                }
                Scenario::Removed { day, .. } => {
                    let from = &mut self.artists[artist].removed_from;
                    *from = Some(from.map_or(day, |d| d.min(day)));
                }
            }
        }
    }

    /// The index of the track `id`.
    pub fn track_idx(&self, id: &str) -> Option<usize> {
        self.track_index.get(id).copied()
    }

    /// The calendar date of simulated day `day`.
    pub fn date(&self, day: u32) -> NaiveDate {
        self.start + Duration::days(i64::from(day))
    }

    /// Followers of artist `a` on `day`: compound growth plus deterministic noise, times the
    /// surges that happened by then.
    pub fn followers(&self, a: usize, day: u32) -> u64 {
        let artist = &self.artists[a];
        let noise = unit(&[&artist.id, &day.to_string(), "followers"]) - 0.5;
        let surge: f64 = artist
            .surges
            .iter()
            .filter(|(from, _)| *from <= day)
            .map(|(_, factor)| factor)
            .product();
        let value = artist.base_followers
            * (1.0 + artist.daily_growth).powi(day as i32)
            * (1.0 + noise * 0.004)
            * surge;
        value.max(0.0).round() as u64
    }

    /// Popularity of artist `a` on `day`, 0 to 100.
    pub fn artist_popularity(&self, a: usize, day: u32) -> u32 {
        let artist = &self.artists[a];
        let drift = artist.daily_growth * f64::from(day) * 40.0;
        let noise = unit(&[&artist.id, &day.to_string(), "popularity"]) * 4.0 - 2.0;
        (artist.base_popularity + drift + noise)
            .clamp(0.0, 100.0)
            .round() as u32
    }

    fn track_popularity(&self, t: usize, day: u32) -> u32 {
        let track = &self.tracks[t];
        let noise = unit(&[&track.id, &day.to_string(), "popularity"]) * 6.0 - 3.0;
        (track.base_popularity + noise).clamp(0.0, 100.0).round() as u32
    }

    fn image(kind: &str, id: &str) -> Value {
        json!([
            {"url": format!("https://i.scdn.co/image/{kind}640{id}"), "height": 640, "width": 640},
            {"url": format!("https://i.scdn.co/image/{kind}300{id}"), "height": 300, "width": 300},
            {"url": format!("https://i.scdn.co/image/{kind}64{id}"), "height": 64, "width": 64},
        ])
    }

    /// A simplified artist object.
    pub fn artist_ref(&self, a: usize) -> Value {
        let artist = &self.artists[a];
        json!({
            "external_urls": {"spotify": format!("{OPEN}/artist/{}", artist.id)},
            "href": format!("{API}/artists/{}", artist.id),
            "id": artist.id,
            "name": artist.name,
            "type": "artist",
            "uri": format!("spotify:artist:{}", artist.id),
        })
    }

    /// A full artist object; Development Mode loses `followers`, `genres`, `popularity`.
    pub fn artist_json(&self, a: usize, day: u32, tier: Tier) -> Value {
        let mut v = self.artist_ref(a);
        v["images"] = Self::image("ab6761610000", &self.artists[a].id);
        if tier == Tier::Extended {
            v["followers"] = json!({"href": null, "total": self.followers(a, day)});
            v["genres"] = json!(self.artists[a].genres);
            v["popularity"] = json!(self.artist_popularity(a, day));
        }
        v
    }

    /// A simplified album object (as in pages and inside tracks).
    pub fn album_simple(&self, b: usize) -> Value {
        let album = &self.albums[b];
        json!({
            "album_type": album.album_type,
            "total_tracks": album.tracks.len(),
            "available_markets": ["DE", "FR", "GB", "SE", "US"],
            "external_urls": {"spotify": format!("{OPEN}/album/{}", album.id)},
            "href": format!("{API}/albums/{}", album.id),
            "id": album.id,
            "images": Self::image("ab67616d0000", &album.id),
            "name": album.name,
            "release_date": album.release_date.format("%Y-%m-%d").to_string(),
            "release_date_precision": "day",
            "type": "album",
            "uri": format!("spotify:album:{}", album.id),
            "artists": [self.artist_ref(album.artist)],
        })
    }

    /// A full album object with its first page of tracks.
    pub fn album_json(&self, b: usize) -> Value {
        let album = &self.albums[b];
        let mut v = self.album_simple(b);
        let items: Vec<Value> = album
            .tracks
            .iter()
            .take(50)
            .map(|t| self.track_simple(*t))
            .collect();
        v["tracks"] = page(
            items,
            album.tracks.len(),
            0,
            50,
            &format!("{API}/albums/{}/tracks", album.id),
        );
        v["copyrights"] = json!([{"text": format!("(P) {}", album.label), "type": "P"}]);
        v["genres"] = json!([]);
        v["label"] = json!(album.label);
        // The description still requires these on albums in both tiers.
        v["popularity"] = json!(album.popularity);
        v["external_ids"] = json!({"upc": album.upc});
        v
    }

    /// The markets track `t` is listed in: every seventh track (index 3 modulo 7) is not
    /// licensed in GB and US, so a market filter has something to drop.
    pub fn track_markets(t: usize) -> &'static [&'static str] {
        if t % 7 == 3 {
            &["DE", "FR", "SE"]
        } else {
            &["DE", "FR", "GB", "SE", "US"]
        }
    }

    /// A simplified track object (as in an album's track list).
    pub fn track_simple(&self, t: usize) -> Value {
        let track = &self.tracks[t];
        json!({
            "artists": track.artists.iter().map(|a| self.artist_ref(*a)).collect::<Vec<_>>(),
            "available_markets": Self::track_markets(t),
            "disc_number": 1,
            "duration_ms": track.duration_ms,
            "explicit": track.explicit,
            "external_urls": {"spotify": format!("{OPEN}/track/{}", track.id)},
            "href": format!("{API}/tracks/{}", track.id),
            "id": track.id,
            "is_local": false,
            "name": track.name,
            "preview_url": null,
            "track_number": track.track_number,
            "type": "track",
            "uri": format!("spotify:track:{}", track.id),
        })
    }

    /// A full track object; Development Mode loses `popularity`.
    pub fn track_json(&self, t: usize, day: u32, tier: Tier) -> Value {
        let track = &self.tracks[t];
        let mut v = self.track_simple(t);
        v["album"] = self.album_simple(track.album);
        v["external_ids"] = json!({"isrc": track.isrc});
        if tier == Tier::Extended {
            v["popularity"] = json!(self.track_popularity(t, day));
        }
        v
    }

    /// The user object of `id` as playlist owner or item author.
    pub fn user_ref(id: &str) -> Value {
        json!({
            "external_urls": {"spotify": format!("{OPEN}/user/{id}")},
            "href": format!("{API}/users/{id}"),
            "id": id,
            "type": "user",
            "uri": format!("spotify:user:{id}"),
            "display_name": if id == USER_ID { "Sandbox User" } else { "Spotify" },
        })
    }

    /// A playlist item in the 2026 shape (`item`) or the older one (`track`).
    pub fn playlist_item(
        &self,
        entry: &(usize, i64, String),
        day: u32,
        tier: Tier,
        legacy: bool,
    ) -> Value {
        let (t, added_day, by) = entry;
        let added = self.date(day) + Duration::days(*added_day);
        let mut v = json!({
            "added_at": format!("{}T12:00:00Z", added.format("%Y-%m-%d")),
            "added_by": Self::user_ref(by),
            "is_local": false,
        });
        v[if legacy { "track" } else { "item" }] = self.track_json(*t, day, tier);
        v
    }

    /// A playlist in the listing shape (simplified, items as `{href, total}`).
    pub fn playlist_simple(&self, p: &Playlist) -> Value {
        let items_ref = json!({
            "href": format!("{API}/playlists/{}/items", p.id),
            "total": p.items.len(),
        });
        json!({
            "collaborative": p.collaborative,
            "description": p.description,
            "external_urls": {"spotify": format!("{OPEN}/playlist/{}", p.id)},
            "href": format!("{API}/playlists/{}", p.id),
            "id": p.id,
            "images": Self::image("ab67706c0000", &p.id),
            "name": p.name,
            "owner": Self::user_ref(&p.owner),
            "public": p.public,
            "snapshot_id": p.snapshot_id(),
            "items": items_ref,
            "tracks": {"href": format!("{API}/playlists/{}/tracks", p.id), "total": p.items.len()},
            "type": "playlist",
            "uri": format!("spotify:playlist:{}", p.id),
        })
    }
}

/// A paging object in Spotify's shape.
pub fn page(items: Vec<Value>, total: usize, offset: usize, limit: usize, href: &str) -> Value {
    let next = (offset + items.len() < total)
        .then(|| format!("{href}?offset={}&limit={limit}", offset + limit));
    let previous = (offset > 0).then(|| {
        format!(
            "{href}?offset={}&limit={limit}",
            offset.saturating_sub(limit)
        )
    });
    json!({
        "href": format!("{href}?offset={offset}&limit={limit}"),
        "items": items,
        "limit": limit,
        "next": next,
        "offset": offset,
        "previous": previous,
        "total": total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_catalog_is_deterministic() {
        let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let (a, pa) = Catalog::generate(7, 50, start);
        let (b, _) = Catalog::generate(7, 50, start);
        assert_eq!(a.artists[10].id, b.artists[10].id);
        assert_eq!(a.tracks.len(), b.tracks.len());
        for id in a
            .artists
            .iter()
            .map(|x| &x.id)
            .chain(a.tracks.iter().map(|t| &t.id))
        {
            assert_eq!(id.len(), 22);
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        }
        assert_eq!(pa.len(), 8);
        assert_ne!(a.followers(3, 0), a.followers(3, 30), "stats evolve by day");
    }
}
