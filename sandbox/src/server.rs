//! Routes, handlers, tiers, tokens and fault injection of the sandbox.

#![allow(
    clippy::result_large_err,
    reason = "axum handlers answer refusals as a ready `Response`; boxing every early return buys nothing in a test server"
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Path, Query, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Form, Json};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalog::{Catalog, Playlist, USER_ID, make_id, page};
use crate::{Faults, SandboxConfig, SandboxError, Tier};

const API: &str = "https://api.spotify.com/v1";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    App,
    User,
}

pub(crate) struct State {
    config: SandboxConfig,
    pub(crate) catalog: Catalog,
    playlists: Mutex<Vec<Playlist>>,
    day: AtomicU32,
    calls: Mutex<BTreeMap<String, u64>>,
    faults: Mutex<Faults>,
    forced_429: Mutex<(u32, u64)>,
    rng: Mutex<StdRng>,
    tokens: Mutex<HashMap<String, (TokenKind, Instant)>>,
    refresh_valid: Mutex<Option<String>>,
    refresh_revoked: Mutex<HashSet<String>>,
    /// Authorization codes handed out by `/authorize`: code to (redirect URI, expiry).
    codes: Mutex<HashMap<String, (String, Instant)>>,
    counter: AtomicU64,
    /// 429s and 5xx answered by fault injection (not the forced ones).
    injected: AtomicU64,
}

impl State {
    pub(crate) fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let (mut catalog, generated) =
            Catalog::generate(config.seed, config.artists, config.start_date);
        catalog.apply(&config.scenarios);
        let playlists = match &config.playlists_file {
            Some(path) => load_playlists(path, &config)?.unwrap_or(generated),
            None => generated,
        };
        Ok(Self {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x5eed)),
            faults: Mutex::new(config.faults.clone()),
            refresh_valid: Mutex::new(Some(config.refresh_token.clone())),
            config,
            catalog,
            playlists: Mutex::new(playlists),
            day: AtomicU32::new(0),
            calls: Mutex::new(BTreeMap::new()),
            forced_429: Mutex::new((0, 1)),
            tokens: Mutex::new(HashMap::new()),
            refresh_revoked: Mutex::new(HashSet::new()),
            codes: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        })
    }

    /// Writes the playlists to the configured file, if any, so the next sandbox started on
    /// it finds them as this one left them.
    fn save(&self, list: &[Playlist]) -> Result<(), Response> {
        let Some(path) = &self.config.playlists_file else {
            return Ok(());
        };
        let kept = KeptPlaylists {
            seed: self.config.seed,
            artists: self.config.artists,
            playlists: list.to_vec(),
        };
        let written = serde_json::to_vec(&kept)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let temporary = path.with_extension("json.tmp");
                std::fs::write(&temporary, bytes)?;
                std::fs::rename(&temporary, path)
            });
        written.map_err(|err| {
            tracing::error!(path = %path.display(), error = %err, "sandbox playlists not saved");
            api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The sandbox could not save its playlists",
            )
        })
    }

    pub(crate) fn faults_injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }
    pub(crate) fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.calls).clone()
    }
    pub(crate) fn reset_calls(&self) {
        lock(&self.calls).clear();
    }
    pub(crate) fn advance_days(&self, days: u32) {
        self.day.fetch_add(days, Ordering::Relaxed);
    }
    pub(crate) fn set_day(&self, day: u32) {
        self.day.store(day, Ordering::Relaxed);
    }
    pub(crate) fn day(&self) -> u32 {
        self.day.load(Ordering::Relaxed)
    }
    pub(crate) fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }
    pub(crate) fn rate_limit_next(&self, n: u32, retry_after: u64) {
        *lock(&self.forced_429) = (n, retry_after);
    }
    pub(crate) fn current_refresh_token(&self) -> Option<String> {
        lock(&self.refresh_valid).clone()
    }
    pub(crate) fn revoke_refresh_tokens(&self) {
        if let Some(old) = lock(&self.refresh_valid).take() {
            lock(&self.refresh_revoked).insert(old);
        }
    }
    pub(crate) fn playlist_tracks(&self, id: &str) -> Option<Vec<String>> {
        lock(&self.playlists).iter().find(|p| p.id == id).map(|p| {
            p.items
                .iter()
                .filter_map(|(t, _, _)| self.catalog.tracks.get(*t).map(|t| t.id.clone()))
                .collect()
        })
    }
    pub(crate) fn playlist_ids(&self) -> Vec<(String, bool)> {
        lock(&self.playlists)
            .iter()
            .map(|p| (p.id.clone(), p.owner == USER_ID))
            .collect()
    }

    fn tier(&self) -> Tier {
        self.config.tier
    }

    fn issue(&self, kind: TokenKind) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let token = format!("sbx{}", make_id(&[&n.to_string(), "token"]));
        let expires = Instant::now() + Duration::from_secs(self.config.token_ttl_secs);
        lock(&self.tokens).insert(token.clone(), (kind, expires));
        token
    }

    fn bearer(&self, headers: &HeaderMap) -> Result<(String, TokenKind), Response> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| api_error(StatusCode::UNAUTHORIZED, "No token provided"))?;
        match lock(&self.tokens).get(token) {
            Some((kind, expires)) if Instant::now() < *expires => Ok((token.to_owned(), *kind)),
            _ => Err(api_error(
                StatusCode::UNAUTHORIZED,
                "The access token expired",
            )),
        }
    }

    fn user(&self, headers: &HeaderMap) -> Result<(), Response> {
        match self.bearer(headers)? {
            (_, TokenKind::User) => Ok(()),
            (_, TokenKind::App) => Err(api_error(
                StatusCode::FORBIDDEN,
                "Insufficient client scope: this endpoint needs a user token",
            )),
        }
    }
}

type Shared = Arc<State>;

/// The playlists file: the catalog it belongs to, and the playlists.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptPlaylists {
    seed: u64,
    artists: usize,
    playlists: Vec<Playlist>,
}

/// The playlists a previous sandbox left in `path`: none when there is no file yet, or when
/// it belongs to another catalog (another seed or size), whose track indexes mean other tracks.
fn load_playlists(
    path: &std::path::Path,
    config: &SandboxConfig,
) -> Result<Option<Vec<Playlist>>, SandboxError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SandboxError::Playlists {
                path: path.to_owned(),
                source: source.into(),
            });
        }
    };
    let kept: KeptPlaylists =
        serde_json::from_slice(&bytes).map_err(|source| SandboxError::Playlists {
            path: path.to_owned(),
            source: source.into(),
        })?;
    if kept.seed != config.seed || kept.artists != config.artists {
        tracing::warn!(
            path = %path.display(),
            "sandbox playlists file is of another catalog; starting from the generated playlists"
        );
        return Ok(None);
    }
    Ok(Some(kept.playlists))
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"status": status.as_u16(), "message": message}})),
    )
        .into_response()
}

fn removed(what: &str) -> Response {
    api_error(
        StatusCode::FORBIDDEN,
        &format!("{what} is not available to this app"),
    )
}

fn dev_removed(state: &State, what: &str) -> Result<(), Response> {
    if state.tier() == Tier::Development {
        return Err(removed(what));
    }
    Ok(())
}

type Handler = Result<Response, Response>;

pub(crate) fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/artists", get(several_artists))
        .route("/artists/{id}", get(artist))
        .route("/artists/{id}/albums", get(artist_albums))
        .route("/artists/{id}/top-tracks", get(top_tracks))
        .route("/artists/{id}/related-artists", get(gone))
        .route("/albums", get(several_albums))
        .route("/albums/{id}", get(album))
        .route("/albums/{id}/tracks", get(album_tracks))
        .route("/tracks", get(several_tracks))
        .route("/tracks/{id}", get(track))
        .route("/search", get(search))
        .route("/browse/new-releases", get(new_releases))
        .route("/browse/{*rest}", any(gone))
        .route("/audio-features", any(gone))
        .route("/audio-features/{id}", any(gone))
        .route("/audio-analysis/{id}", any(gone))
        .route("/recommendations", any(gone))
        .route("/playlists/{id}", get(playlist))
        .route(
            "/playlists/{id}/items",
            get(playlist_items)
                .post(add_items)
                .delete(remove_items)
                .put(update_items),
        )
        .route("/playlists/{id}/tracks", get(playlist_tracks_legacy))
        .route("/me", get(me))
        .route("/me/playlists", get(my_playlists))
        .route("/me/player/recently-played", get(recently_played))
        .layer(middleware::from_fn_with_state(state.clone(), faults));
    Router::new()
        .nest("/v1", api)
        .route("/authorize", get(authorize))
        .route("/api/token", post(token))
        .route("/_sandbox/advance", post(advance))
        .route("/_sandbox/calls", get(calls))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn count(AxState(state): AxState<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let label = format!("{} {route}", req.method());
    *lock(&state.calls).entry(label).or_default() += 1;
    next.run(req).await
}

async fn faults(AxState(state): AxState<Shared>, req: Request, next: Next) -> Response {
    let forced = {
        let mut forced = lock(&state.forced_429);
        if forced.0 > 0 {
            forced.0 -= 1;
            Some(forced.1)
        } else {
            None
        }
    };
    let faults = lock(&state.faults).clone();
    let (slow, roll, expire) = {
        let mut rng = lock(&state.rng);
        (
            rng.random_bool(faults.slow_rate.clamp(0.0, 1.0)),
            rng.random::<f64>(),
            rng.random_bool(faults.expired_token_rate.clamp(0.0, 1.0)),
        )
    };
    if slow {
        tokio::time::sleep(Duration::from_millis(faults.slow_ms)).await;
    }
    let retry_after =
        forced.or_else(|| (roll < faults.rate_limit_rate).then_some(faults.retry_after_secs));
    if forced.is_none() && roll < faults.rate_limit_rate + faults.server_error_rate {
        state.injected.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(secs) = retry_after {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}})),
        )
            .into_response();
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
        return response;
    }
    if roll < faults.rate_limit_rate + faults.server_error_rate {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable");
    }
    if expire
        && let Some(token) = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
    {
        lock(&state.tokens).remove(token);
        return api_error(StatusCode::UNAUTHORIZED, "The access token expired");
    }
    next.run(req).await
}

async fn gone(AxState(state): AxState<Shared>, headers: HeaderMap) -> Handler {
    state.bearer(&headers)?;
    Err(removed("This endpoint"))
}

#[derive(Debug, Deserialize)]
struct Ids {
    ids: Option<String>,
}

fn split_ids(ids: Option<String>, max: usize) -> Result<Vec<String>, Response> {
    let ids: Vec<String> = ids
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(api_error(StatusCode::BAD_REQUEST, "Missing ids"));
    }
    if ids.len() > max {
        return Err(api_error(StatusCode::BAD_REQUEST, "Too many ids requested"));
    }
    if ids.iter().any(|id| id.len() != 22) {
        return Err(api_error(StatusCode::BAD_REQUEST, "Invalid base62 id"));
    }
    Ok(ids)
}

fn one_id(id: &str) -> Result<(), Response> {
    if id.len() != 22 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(api_error(StatusCode::BAD_REQUEST, "Invalid base62 id"));
    }
    Ok(())
}

fn not_found() -> Response {
    api_error(StatusCode::NOT_FOUND, "Resource not found")
}

async fn several_artists(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<Ids>,
) -> Handler {
    s.bearer(&headers)?;
    dev_removed(&s, "Get Several Artists")?;
    let ids = split_ids(q.ids, 50)?;
    let day = s.day();
    let artists: Vec<Value> = ids
        .iter()
        .map(|id| {
            s.catalog
                .live_artist(id, day)
                .map_or(Value::Null, |a| s.catalog.artist_json(a, day, s.tier()))
        })
        .collect();
    Ok(Json(json!({ "artists": artists })).into_response())
}

async fn artist(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Handler {
    s.bearer(&headers)?;
    one_id(&id)?;
    let day = s.day();
    let a = s.catalog.live_artist(&id, day).ok_or_else(not_found)?;
    Ok(Json(s.catalog.artist_json(a, day, s.tier())).into_response())
}

#[derive(Debug, Deserialize)]
struct Paging {
    limit: Option<String>,
    offset: Option<String>,
}

impl Paging {
    fn parse(&self, default: usize, max: usize) -> Result<(usize, usize), Response> {
        let limit = match &self.limit {
            None => default,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=max).contains(l))
                .ok_or_else(|| api_error(StatusCode::BAD_REQUEST, "Invalid limit"))?,
        };
        let offset = match &self.offset {
            None => 0,
            Some(raw) => raw
                .parse::<usize>()
                .map_err(|_| api_error(StatusCode::BAD_REQUEST, "Invalid offset"))?,
        };
        Ok((limit, offset))
    }
}

/// Search and artist albums take at most 10 per page in Development Mode since February 2026.
fn list_max(s: &State) -> usize {
    match s.tier() {
        Tier::Development => 10,
        Tier::Extended => 50,
    }
}

fn slice<T: Clone>(all: &[T], offset: usize, limit: usize) -> Vec<T> {
    all.iter().skip(offset).take(limit).cloned().collect()
}

async fn artist_albums(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<Paging>,
) -> Handler {
    s.bearer(&headers)?;
    one_id(&id)?;
    let (limit, offset) = p.parse(list_max(&s).min(20), list_max(&s))?;
    let a = s.catalog.live_artist(&id, s.day()).ok_or_else(not_found)?;
    let albums = &s.catalog.albums_on(a, s.day());
    let items = slice(albums, offset, limit)
        .into_iter()
        .map(|b| {
            let mut v = s.catalog.album_simple(b);
            v["album_group"] = v["album_type"].clone();
            v
        })
        .collect();
    Ok(Json(page(
        items,
        albums.len(),
        offset,
        limit,
        &format!("{API}/artists/{id}/albums"),
    ))
    .into_response())
}

async fn top_tracks(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Handler {
    s.bearer(&headers)?;
    dev_removed(&s, "Get Artist's Top Tracks")?;
    let day = s.day();
    let a = s.catalog.live_artist(&id, day).ok_or_else(not_found)?;
    let tracks: Vec<Value> = s
        .catalog
        .albums_on(a, day)
        .iter()
        .flat_map(|b| s.catalog.albums[*b].tracks.clone())
        .take(10)
        .map(|t| s.catalog.track_json(t, day, s.tier()))
        .collect();
    Ok(Json(json!({ "tracks": tracks })).into_response())
}

async fn new_releases(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(p): Query<Paging>,
) -> Handler {
    s.bearer(&headers)?;
    dev_removed(&s, "Get New Releases")?;
    let (limit, offset) = p.parse(20, 50)?;
    let all: Vec<usize> = (0..s.catalog.albums.len().min(100)).collect();
    let items = slice(&all, offset, limit)
        .into_iter()
        .map(|b| s.catalog.album_simple(b))
        .collect();
    Ok(Json(json!({"albums": page(items, all.len(), offset, limit, &format!("{API}/browse/new-releases"))})).into_response())
}

async fn several_albums(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<Ids>,
) -> Handler {
    s.bearer(&headers)?;
    dev_removed(&s, "Get Several Albums")?;
    let ids = split_ids(q.ids, 20)?;
    let albums: Vec<Value> = ids
        .iter()
        .map(|id| {
            s.catalog
                .live_album(id, s.day())
                .map_or(Value::Null, |b| s.catalog.album_json(b))
        })
        .collect();
    Ok(Json(json!({ "albums": albums })).into_response())
}

async fn album(AxState(s): AxState<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Handler {
    s.bearer(&headers)?;
    one_id(&id)?;
    let b = s.catalog.live_album(&id, s.day()).ok_or_else(not_found)?;
    Ok(Json(s.catalog.album_json(b)).into_response())
}

async fn album_tracks(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<Paging>,
) -> Handler {
    s.bearer(&headers)?;
    one_id(&id)?;
    let (limit, offset) = p.parse(20, 50)?;
    let b = s.catalog.live_album(&id, s.day()).ok_or_else(not_found)?;
    let tracks = &s.catalog.albums[b].tracks;
    let items = slice(tracks, offset, limit)
        .into_iter()
        .map(|t| s.catalog.track_simple(t))
        .collect();
    Ok(Json(page(
        items,
        tracks.len(),
        offset,
        limit,
        &format!("{API}/albums/{id}/tracks"),
    ))
    .into_response())
}

async fn several_tracks(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<Ids>,
) -> Handler {
    s.bearer(&headers)?;
    dev_removed(&s, "Get Several Tracks")?;
    let ids = split_ids(q.ids, 50)?;
    let day = s.day();
    let tracks: Vec<Value> = ids
        .iter()
        .map(|id| {
            s.catalog
                .track_idx(id)
                .map_or(Value::Null, |t| s.catalog.track_json(t, day, s.tier()))
        })
        .collect();
    Ok(Json(json!({ "tracks": tracks })).into_response())
}

async fn track(AxState(s): AxState<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Handler {
    s.bearer(&headers)?;
    one_id(&id)?;
    let t = s.catalog.track_idx(&id).ok_or_else(not_found)?;
    Ok(Json(s.catalog.track_json(t, s.day(), s.tier())).into_response())
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

async fn search(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<SearchQuery>,
) -> Handler {
    s.bearer(&headers)?;
    let (limit, offset) = Paging {
        limit: q.limit,
        offset: q.offset,
    }
    .parse(list_max(&s).min(20), list_max(&s))?;
    let text =
        q.q.filter(|t| !t.trim().is_empty())
            .ok_or_else(|| api_error(StatusCode::BAD_REQUEST, "No search query"))?;
    // Field filters (`artist:`, `track:`) are accepted and matched as plain words.
    let needle = text
        .split_whitespace()
        .map(|w| w.split_once(':').map_or(w, |(_, v)| v))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let kinds = q.kind.unwrap_or_default();
    let mut out = json!({});
    let day = s.day();
    let c = &s.catalog;
    for kind in kinds.split(',') {
        let (key, hits): (&str, Vec<Value>) = match kind {
            "artist" => (
                "artists",
                (0..c.artists.len())
                    .filter(|a| c.artists[*a].name.to_lowercase().contains(&needle))
                    .map(|a| c.artist_json(a, day, s.tier()))
                    .collect(),
            ),
            "track" => (
                "tracks",
                (0..c.tracks.len())
                    .filter(|t| {
                        c.track_simple(*t)["name"]
                            .as_str()
                            .is_some_and(|n| n.to_lowercase().contains(&needle))
                    })
                    .take(500)
                    .map(|t| c.track_json(t, day, s.tier()))
                    .collect(),
            ),
            "album" => (
                "albums",
                (0..c.albums.len())
                    .filter(|b| {
                        c.album_simple(*b)["name"]
                            .as_str()
                            .is_some_and(|n| n.to_lowercase().contains(&needle))
                    })
                    .take(500)
                    .map(|b| c.album_simple(b))
                    .collect(),
            ),
            _ => return Err(api_error(StatusCode::BAD_REQUEST, "Bad search type field")),
        };
        let total = hits.len();
        let items = slice(&hits, offset, limit);
        out[key] = page(items, total, offset, limit, &format!("{API}/search"));
    }
    Ok(Json(out).into_response())
}

fn find_playlist<'a>(list: &'a mut [Playlist], id: &str) -> Result<&'a mut Playlist, Response> {
    list.iter_mut().find(|p| p.id == id).ok_or_else(not_found)
}

/// Development Mode apps read items only of playlists the user owns or collaborates on.
fn may_read_items(s: &State, p: &Playlist) -> bool {
    s.tier() == Tier::Extended || p.owner == USER_ID || p.collaborative
}

async fn playlist(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Handler {
    s.bearer(&headers)?;
    one_id(&id)?;
    let mut list = lock(&s.playlists);
    let p = find_playlist(&mut list, &id)?;
    let mut v = s.catalog.playlist_simple(p);
    v["followers"] = json!({"href": null, "total": p.followers});
    if may_read_items(&s, p) {
        let day = s.day();
        let items = p
            .items
            .iter()
            .take(100)
            .map(|e| s.catalog.playlist_item(e, day, s.tier(), false))
            .collect();
        v["items"] = page(
            items,
            p.items.len(),
            0,
            100,
            &format!("{API}/playlists/{id}/items"),
        );
    } else {
        v.as_object_mut().map(|o| o.remove("items"));
    }
    v.as_object_mut().map(|o| o.remove("tracks"));
    Ok(Json(v).into_response())
}

async fn items_page(s: &State, headers: &HeaderMap, id: &str, p: &Paging, legacy: bool) -> Handler {
    s.user(headers)?;
    one_id(id)?;
    let (limit, offset) = p.parse(50, if legacy { 100 } else { 50 })?;
    let mut list = lock(&s.playlists);
    let pl = find_playlist(&mut list, id)?;
    if !may_read_items(s, pl) {
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "Playlist items are only available for playlists the user owns or collaborates on",
        ));
    }
    let day = s.day();
    let items = slice(&pl.items, offset, limit)
        .iter()
        .map(|e| s.catalog.playlist_item(e, day, s.tier(), legacy))
        .collect();
    let path = if legacy { "tracks" } else { "items" };
    Ok(Json(page(
        items,
        pl.items.len(),
        offset,
        limit,
        &format!("{API}/playlists/{id}/{path}"),
    ))
    .into_response())
}

async fn playlist_items(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<Paging>,
) -> Handler {
    items_page(&s, &headers, &id, &p, false).await
}

async fn playlist_tracks_legacy(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<Paging>,
) -> Handler {
    dev_removed(&s, "GET /playlists/{id}/tracks (use /items)")?;
    items_page(&s, &headers, &id, &p, true).await
}

fn editable<'a>(
    s: &State,
    list: &'a mut [Playlist],
    id: &str,
) -> Result<&'a mut Playlist, Response> {
    let p = find_playlist(list, id)?;
    if p.owner != USER_ID && !p.collaborative {
        return Err(api_error(
            StatusCode::FORBIDDEN,
            "You cannot edit a playlist you do not own",
        ));
    }
    let _ = s;
    Ok(p)
}

fn track_of_uri(s: &State, uri: &str) -> Result<usize, Response> {
    uri.strip_prefix("spotify:track:")
        .and_then(|id| s.catalog.track_idx(id))
        .ok_or_else(|| api_error(StatusCode::BAD_REQUEST, "Invalid track uri"))
}

fn snapshot(p: &Playlist, status: StatusCode) -> Response {
    (status, Json(json!({"snapshot_id": p.snapshot_id()}))).into_response()
}

async fn add_items(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Handler {
    s.user(&headers)?;
    let uris: Vec<String> = serde_json::from_value(body["uris"].clone())
        .map_err(|_| api_error(StatusCode::BAD_REQUEST, "Missing uris"))?;
    if uris.is_empty() || uris.len() > 100 {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "Between 1 and 100 uris per request",
        ));
    }
    let tracks = uris
        .iter()
        .map(|u| track_of_uri(&s, u))
        .collect::<Result<Vec<_>, _>>()?;
    let mut list = lock(&s.playlists);
    let p = editable(&s, &mut list, &id)?;
    let at = body["position"]
        .as_u64()
        .map_or(p.items.len(), |n| (n as usize).min(p.items.len()));
    let entries: Vec<_> = tracks
        .into_iter()
        .map(|t| (t, 0, USER_ID.to_owned()))
        .collect();
    p.items.splice(at..at, entries);
    p.version += 1;
    let response = snapshot(p, StatusCode::CREATED);
    s.save(&list)?;
    Ok(response)
}

async fn remove_items(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Handler {
    s.user(&headers)?;
    let items = body["items"]
        .as_array()
        .filter(|i| !i.is_empty() && i.len() <= 100)
        .ok_or_else(|| {
            api_error(
                StatusCode::BAD_REQUEST,
                "Between 1 and 100 items per request",
            )
        })?;
    let tracks = items
        .iter()
        .map(|i| track_of_uri(&s, i["uri"].as_str().unwrap_or_default()))
        .collect::<Result<HashSet<_>, _>>()?;
    let mut list = lock(&s.playlists);
    let p = editable(&s, &mut list, &id)?;
    p.items.retain(|(t, _, _)| !tracks.contains(t));
    p.version += 1;
    let response = snapshot(p, StatusCode::OK);
    s.save(&list)?;
    Ok(response)
}

async fn update_items(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Handler {
    s.user(&headers)?;
    let mut list = lock(&s.playlists);
    let p = editable(&s, &mut list, &id)?;
    if let Some(uris) = body["uris"].as_array() {
        if uris.len() > 100 {
            return Err(api_error(
                StatusCode::BAD_REQUEST,
                "At most 100 uris per request",
            ));
        }
        let tracks = uris
            .iter()
            .map(|u| track_of_uri(&s, u.as_str().unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()?;
        p.items = tracks
            .into_iter()
            .map(|t| (t, 0, USER_ID.to_owned()))
            .collect();
        p.version += 1;
        let response = snapshot(p, StatusCode::OK);
        s.save(&list)?;
        return Ok(response);
    }
    let len = p.items.len();
    let start = body["range_start"].as_u64().map(|n| n as usize);
    let before = body["insert_before"].as_u64().map(|n| n as usize);
    let length = body["range_length"].as_u64().unwrap_or(1) as usize;
    let (Some(start), Some(before)) = (start, before) else {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "Missing range_start or insert_before",
        ));
    };
    if start + length > len || before > len {
        return Err(api_error(StatusCode::BAD_REQUEST, "Index out of bounds"));
    }
    let moved: Vec<_> = p.items.drain(start..start + length).collect();
    let at = if before > start {
        before - length
    } else {
        before
    };
    p.items.splice(at..at, moved);
    p.version += 1;
    let response = snapshot(p, StatusCode::OK);
    s.save(&list)?;
    Ok(response)
}

async fn me(AxState(s): AxState<Shared>, headers: HeaderMap) -> Handler {
    s.user(&headers)?;
    let mut v = Catalog::user_ref(USER_ID);
    v["country"] = json!("SE");
    v["product"] = json!("premium");
    v["followers"] = json!({"href": null, "total": 12});
    v["images"] = json!([]);
    Ok(Json(v).into_response())
}

async fn my_playlists(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(p): Query<Paging>,
) -> Handler {
    s.user(&headers)?;
    let (limit, offset) = p.parse(20, 50)?;
    let list = lock(&s.playlists);
    let mine: Vec<Value> = list
        .iter()
        .filter(|p| p.owner == USER_ID || p.collaborative)
        .map(|p| s.catalog.playlist_simple(p))
        .collect();
    let total = mine.len();
    Ok(Json(page(
        slice(&mine, offset, limit),
        total,
        offset,
        limit,
        &format!("{API}/me/playlists"),
    ))
    .into_response())
}

#[derive(Debug, Deserialize)]
struct Recent {
    limit: Option<u32>,
    after: Option<i64>,
    before: Option<i64>,
}

async fn recently_played(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<Recent>,
) -> Handler {
    s.user(&headers)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(api_error(StatusCode::BAD_REQUEST, "Invalid limit"));
    }
    if q.after.is_some() && q.before.is_some() {
        return Err(api_error(
            StatusCode::BAD_REQUEST,
            "Only one of after and before",
        ));
    }
    // 40 plays a day, one every 30 minutes from 04:00, over the last three simulated days.
    let day = s.day();
    let c = &s.catalog;
    let today = c.date(day);
    let mut plays: Vec<(i64, usize)> = Vec::new();
    for d in 0..3u32 {
        let date = today - chrono::Duration::days(i64::from(d));
        let base = date
            .and_hms_opt(4, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or_default();
        for n in 0..40 {
            let pick = crate::catalog::unit(&[&date.to_string(), &n.to_string(), "play"]);
            let t = (pick * c.tracks.len() as f64) as usize % c.tracks.len().max(1);
            plays.push((base + i64::from(n) * 1_800_000, t));
        }
    }
    plays.sort_by_key(|(ms, _)| std::cmp::Reverse(*ms));
    let filtered: Vec<&(i64, usize)> = plays
        .iter()
        .filter(|(ms, _)| q.after.is_none_or(|a| *ms > a) && q.before.is_none_or(|b| *ms < b))
        .collect();
    let chosen: Vec<&(i64, usize)> = if q.after.is_some() {
        // `after` returns the oldest items after the cursor, still newest first.
        let n = filtered.len();
        filtered[n.saturating_sub(limit as usize)..].to_vec()
    } else {
        filtered.iter().take(limit as usize).copied().collect()
    };
    let items: Vec<Value> = chosen
        .iter()
        .map(|(ms, t)| {
            let at = chrono::DateTime::from_timestamp_millis(*ms).unwrap_or_default();
            json!({
                "track": c.track_json(*t, day, s.tier()),
                "played_at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })
        })
        .collect();
    let newest = chosen.first().map(|(ms, _)| *ms);
    let oldest = chosen.last().map(|(ms, _)| *ms);
    let more_older = oldest.is_some_and(|o| plays.iter().any(|(ms, _)| *ms < o));
    let href = format!("{API}/me/player/recently-played");
    let mut body = json!({
        "href": format!("{href}?limit={limit}"),
        "items": items,
        "limit": limit,
        "next": null,
        "cursors": {},
    });
    if let (Some(newest), Some(oldest)) = (newest, oldest) {
        body["cursors"] = json!({"after": newest.to_string(), "before": oldest.to_string()});
        if more_older {
            body["next"] = json!(format!("{href}?before={oldest}&limit={limit}"));
        }
    }
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn oauth_error(code: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let raw = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

async fn token(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let creds = basic_credentials(&headers)
        .or_else(|| Some((form.client_id.clone()?, form.client_secret.clone()?)));
    let valid = creds
        .is_some_and(|(id, secret)| id == s.config.client_id && secret == s.config.client_secret);
    if !valid {
        return oauth_error("invalid_client", "Invalid client");
    }
    match form.grant_type.as_deref() {
        Some("client_credentials") => Json(json!({
            "access_token": s.issue(TokenKind::App),
            "token_type": "Bearer",
            "expires_in": s.config.token_ttl_secs,
        }))
        .into_response(),
        Some("refresh_token") => {
            let presented = form.refresh_token.unwrap_or_default();
            let mut valid = lock(&s.refresh_valid);
            if valid.as_deref() != Some(presented.as_str()) {
                let why = if lock(&s.refresh_revoked).contains(&presented) {
                    "Refresh token revoked"
                } else {
                    "Invalid refresh token"
                };
                return oauth_error("invalid_grant", why);
            }
            let mut body = json!({
                "access_token": s.issue(TokenKind::User),
                "token_type": "Bearer",
                "scope": "playlist-read-private playlist-modify-private playlist-modify-public user-read-recently-played",
                "expires_in": s.config.token_ttl_secs,
            });
            if s.config.rotate_refresh_tokens {
                let n = s.counter.fetch_add(1, Ordering::Relaxed);
                let rotated = format!("sbxrefresh{}", make_id(&[&n.to_string(), "refresh"]));
                lock(&s.refresh_revoked).insert(presented);
                *valid = Some(rotated.clone());
                body["refresh_token"] = json!(rotated);
            }
            Json(body).into_response()
        }
        Some("authorization_code") => {
            let code = form.code.unwrap_or_default();
            let Some((redirect_uri, expires)) = lock(&s.codes).remove(&code) else {
                return oauth_error("invalid_grant", "Invalid authorization code");
            };
            if Instant::now() >= expires {
                return oauth_error("invalid_grant", "Authorization code expired");
            }
            if form.redirect_uri.as_deref() != Some(redirect_uri.as_str()) {
                return oauth_error("invalid_grant", "Invalid redirect URI");
            }
            // A new grant: its refresh token becomes the valid one (the sandbox keeps one).
            let n = s.counter.fetch_add(1, Ordering::Relaxed);
            let refresh = format!("sbxrefresh{}", make_id(&[&n.to_string(), "grant"]));
            if let Some(old) = lock(&s.refresh_valid).replace(refresh.clone()) {
                lock(&s.refresh_revoked).insert(old);
            }
            Json(json!({
                "access_token": s.issue(TokenKind::User),
                "token_type": "Bearer",
                "scope": "playlist-read-private playlist-read-collaborative user-read-recently-played",
                "expires_in": s.config.token_ttl_secs,
                "refresh_token": refresh,
            }))
            .into_response()
        }
        _ => oauth_error(
            "unsupported_grant_type",
            "grant_type must be authorization_code, client_credentials or refresh_token",
        ),
    }
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// How long an authorization code may wait for its exchange (Spotify: 10 minutes).
const CODE_TTL: Duration = Duration::from_secs(600);

/// The authorization step of the authorization-code flow, approved at once (the sandbox's user
/// always consents): redirects to `redirect_uri` with `code` and `state`. Only loopback
/// redirects are accepted, so the sandbox never sends a browser anywhere else.
async fn authorize(AxState(s): AxState<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.client_id.as_deref() != Some(s.config.client_id.as_str()) {
        return oauth_error("invalid_client", "Invalid client");
    }
    if q.response_type.as_deref() != Some("code") {
        return oauth_error("unsupported_response_type", "response_type must be code");
    }
    let Some(redirect_uri) = q
        .redirect_uri
        .filter(|u| u.starts_with("http://127.0.0.1:") || u.starts_with("http://[::1]:"))
    else {
        return oauth_error(
            "invalid_request",
            "redirect_uri must be a loopback http://127.0.0.1:<port>/ address",
        );
    };
    let n = s.counter.fetch_add(1, Ordering::Relaxed);
    let code = format!("sbxcode{}", make_id(&[&n.to_string(), "code"]));
    lock(&s.codes).insert(
        code.clone(),
        (redirect_uri.clone(), Instant::now() + CODE_TTL),
    );
    let mut location = format!(
        "{redirect_uri}{}code={code}",
        if redirect_uri.contains('?') { '&' } else { '?' }
    );
    if let Some(state) = q.state {
        location.push_str("&state=");
        location.push_str(&form_urlencoded_component(&state));
    }
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::FOUND, [(axum::http::header::LOCATION, value)]).into_response(),
        Err(_) => oauth_error(
            "invalid_request",
            "redirect_uri is not a valid header value",
        ),
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query value.
fn form_urlencoded_component(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct Advance {
    days: Option<u32>,
}

async fn advance(AxState(s): AxState<Shared>, Query(q): Query<Advance>) -> Response {
    s.advance_days(q.days.unwrap_or(1));
    Json(json!({"day": s.day(), "date": s.catalog.date(s.day()).to_string()})).into_response()
}

async fn calls(AxState(s): AxState<Shared>) -> Response {
    Json(json!(s.calls())).into_response()
}
