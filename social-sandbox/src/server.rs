//! The one handler of the sandbox: counts, faults, rate-limit checks, then each upstream's
//! documented answer.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::world::{Fixtures, Persona};
use crate::{Faults, SocialSandboxConfig};

/// A fault forced on the next requests of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forced {
    RateLimit,
    Unavailable,
}

pub(crate) struct State {
    pub(crate) config: SocialSandboxConfig,
    pub(crate) personas: Vec<Persona>,
    fixtures: Fixtures,
    day: Mutex<u32>,
    faults: Mutex<Faults>,
    forced: Mutex<BTreeMap<String, (u32, Forced)>>,
    rng: Mutex<rand::rngs::StdRng>,
    calls: Mutex<BTreeMap<String, u64>>,
    violations: Mutex<BTreeMap<String, u64>>,
    musicbrainz_window: Mutex<VecDeque<Instant>>,
    deezer_window: Mutex<VecDeque<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    pub(crate) fn new(config: SocialSandboxConfig, fixtures: Fixtures) -> Self {
        let personas = config
            .artists
            .iter()
            .enumerate()
            .map(|(i, a)| Persona::new(i, a))
            .collect();
        Self {
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(config.seed)),
            faults: Mutex::new(config.faults.clone()),
            config,
            personas,
            fixtures,
            day: Mutex::new(0),
            forced: Mutex::new(BTreeMap::new()),
            calls: Mutex::new(BTreeMap::new()),
            violations: Mutex::new(BTreeMap::new()),
            musicbrainz_window: Mutex::new(VecDeque::new()),
            deezer_window: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.calls).clone()
    }

    pub(crate) fn violations(&self) -> BTreeMap<String, u64> {
        lock(&self.violations).clone()
    }

    pub(crate) fn reset(&self) {
        lock(&self.calls).clear();
        lock(&self.violations).clear();
    }

    pub(crate) fn set_day(&self, day: u32) {
        *lock(&self.day) = day;
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }

    pub(crate) fn force(&self, upstream: &str, n: u32, fault: Forced) {
        lock(&self.forced).insert(upstream.to_owned(), (n, fault));
    }

    fn day(&self) -> u32 {
        *lock(&self.day)
    }

    fn violated(&self, upstream: &str) {
        *lock(&self.violations)
            .entry(upstream.to_owned())
            .or_default() += 1;
    }

    /// Records the request against the published limits; `true` when it breaks one.
    fn over_limit(&self, upstream: &str) -> bool {
        let now = Instant::now();
        match upstream {
            "musicbrainz" => {
                // One a second, judged over a window of four intervals: a paced client fits at
                // most five arrivals in it, however its requests jitter on the way; two clients
                // that do not share the pace fit about eight.
                let window = self.config.musicbrainz_interval * 4;
                let mut q = lock(&self.musicbrainz_window);
                while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                    q.pop_front();
                }
                q.push_back(now);
                q.len() > 5
            }
            "deezer" => {
                let (max, window) = self.config.deezer_window;
                let mut q = lock(&self.deezer_window);
                while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                    q.pop_front();
                }
                q.push_back(now);
                q.len() > max
            }
            _ => false,
        }
    }

    fn persona(&self, pred: impl Fn(&Persona) -> bool) -> Option<&Persona> {
        self.personas.iter().find(|p| pred(p))
    }
}

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn rate_limited(upstream: &str, retry_after: u64) -> Response {
    let mut response = match upstream {
        // MusicBrainz sheds load and rate limits with 503.
        "musicbrainz" => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "Your requests are exceeding the allowable rate limit. Please see http://wiki.musicbrainz.org/XMLWebService for more information."}),
        ),
        // Deezer's quota error arrives with HTTP 200.
        "deezer" => json_response(
            StatusCode::OK,
            json!({"error": {"type": "Exception", "message": "Quota limit exceeded", "code": 4}}),
        ),
        // Last.fm error 29, with HTTP 200.
        "lastfm" => json_response(
            StatusCode::OK,
            json!({"error": 29, "message": "Rate Limit Exceeded", "links": []}),
        ),
        "youtube" => json_response(
            StatusCode::FORBIDDEN,
            json!({"error": {"code": 403, "message": "Rate limit exceeded", "errors": [{"message": "Rate limit exceeded", "domain": "youtube.quota", "reason": "rateLimitExceeded"}]}}),
        ),
        "instagram" => json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": "Application request limit reached", "type": "OAuthException", "code": 4}}),
        ),
        _ => json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"data": {}, "error": {"code": "rate_limit_exceeded", "message": "Too many requests", "log_id": "sandbox"}}),
        ),
    };
    if !matches!(upstream, "deezer" | "lastfm") {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(retry_after));
    }
    response
}

async fn handle(
    AxState(s): AxState<Arc<State>>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = uri.path();
    let (upstream, rest) = match path.trim_start_matches('/').split_once('/') {
        Some((u, r)) => (u.to_owned(), format!("/{r}")),
        None => (path.trim_start_matches('/').to_owned(), "/".to_owned()),
    };
    if !crate::UPSTREAMS.contains(&upstream.as_str()) {
        return json_response(StatusCode::NOT_FOUND, json!({"error": "no such upstream"}));
    }
    *lock(&s.calls).entry(upstream.clone()).or_default() += 1;
    let faults = lock(&s.faults).clone();
    let forced = {
        let mut forced = lock(&s.forced);
        match forced.get_mut(&upstream) {
            Some((n, f)) if *n > 0 => {
                *n -= 1;
                Some(*f)
            }
            _ => None,
        }
    };
    let (slow, roll) = {
        let mut rng = lock(&s.rng);
        (
            rng.random_bool(faults.slow_rate.clamp(0.0, 1.0)),
            rng.random::<f64>(),
        )
    };
    if slow {
        tokio::time::sleep(Duration::from_millis(faults.slow_ms)).await;
    }
    if s.over_limit(&upstream) {
        s.violated(&upstream);
        return rate_limited(&upstream, faults.retry_after_secs);
    }
    match forced {
        Some(Forced::RateLimit) => return rate_limited(&upstream, faults.retry_after_secs),
        Some(Forced::Unavailable) => {
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "Service unavailable"}),
            );
        }
        None => {}
    }
    if roll < faults.rate_limit_rate {
        return rate_limited(&upstream, faults.retry_after_secs);
    }
    if roll < faults.rate_limit_rate + faults.server_error_rate {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "Service unavailable"}),
        );
    }
    let day = s.day();
    let f = &s.fixtures;
    match upstream.as_str() {
        "musicbrainz" => musicbrainz(&s, &rest, &q, &headers),
        "wikidata-query" => {
            let query = q.get("query").cloned().unwrap_or_default();
            let p = s.persona(|p| query.contains(&format!("\"{}\"", p.spotify)));
            json_response(StatusCode::OK, f.wd_query(p))
        }
        "wikidata" => {
            let Some(qid) = rest
                .strip_prefix("/wiki/Special:EntityData/")
                .and_then(|r| r.strip_suffix(".json"))
            else {
                return json_response(StatusCode::NOT_FOUND, json!({"error": "not found"}));
            };
            // A merged item redirects to its target, as Special:EntityData does.
            if let Some(p) = s.persona(|p| p.qid_alias.as_deref() == Some(qid)) {
                let target = p.qid.clone().unwrap_or_default();
                let mut r = StatusCode::SEE_OTHER.into_response();
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "/wikidata/wiki/Special:EntityData/{target}.json"
                )) {
                    r.headers_mut().insert("location", v);
                }
                return r;
            }
            match s.persona(|p| p.qid.as_deref() == Some(qid)) {
                Some(p) => json_response(StatusCode::OK, f.wd_entity(p)),
                None => json_response(
                    StatusCode::NOT_FOUND,
                    json!({"error": {"code": "no-such-entity", "info": format!("Could not find an entity with the ID \"{qid}\".")}}),
                ),
            }
        }
        "youtube" => youtube(&s, &rest, &q, day),
        "lastfm" => {
            if q.get("api_key") != Some(&s.config.lastfm_key) {
                return json_response(
                    StatusCode::FORBIDDEN,
                    json!({"error": 10, "message": "Invalid API key - You must be granted a valid key by last.fm", "links": []}),
                );
            }
            let name = q
                .get("artist")
                .map(|a| a.to_lowercase())
                .unwrap_or_default();
            match s.persona(|p| p.lastfm.as_deref() == Some(name.as_str())) {
                Some(p) => json_response(StatusCode::OK, f.lastfm(p, day)),
                // Error 6, with HTTP 200 as Last.fm sends it.
                None => json_response(StatusCode::OK, f.lastfm_not_found.clone()),
            }
        }
        "deezer" => {
            let id = rest.strip_prefix("/artist/").unwrap_or("");
            match s.persona(|p| p.deezer.as_deref() == Some(id)) {
                Some(p) if p.profile != 5 => json_response(StatusCode::OK, f.deezer(p, day)),
                // "no data", with HTTP 200.
                _ => json_response(StatusCode::OK, f.deezer_no_data.clone()),
            }
        }
        "instagram" => {
            let (token, user) = &s.config.instagram;
            if q.get("access_token") != Some(token) || rest != format!("/v21.0/{user}") {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}),
                );
            }
            let fields = q.get("fields").cloned().unwrap_or_default();
            let name = fields
                .split_once("business_discovery.username(")
                .and_then(|(_, r)| r.split_once(')'))
                .map(|(n, _)| n.to_owned())
                .unwrap_or_default();
            match s.persona(|p| {
                p.instagram.as_deref() == Some(name.as_str()) && !(p.profile == 6 && day >= 3)
            }) {
                Some(p) => json_response(StatusCode::OK, f.instagram(p, user, day)),
                None => json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"message": "Invalid user id", "type": "OAuthException", "code": 110, "error_subcode": 2207013}}),
                ),
            }
        }
        "tiktok" => {
            let token = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            let artist = token
                .strip_prefix(&s.config.tiktok_token_prefix)
                .unwrap_or("");
            match s.persona(|p| p.spotify == artist && p.tiktok.is_some()) {
                Some(p) => json_response(StatusCode::OK, f.tiktok(p, day)),
                None => json_response(
                    StatusCode::UNAUTHORIZED,
                    json!({"data": {}, "error": {"code": "access_token_invalid", "message": "The access token is invalid or not found in the request.", "log_id": "sandbox"}}),
                ),
            }
        }
        _ => json_response(StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}

fn musicbrainz(
    s: &State,
    rest: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    // MusicBrainz blocks clients without a descriptive User-Agent.
    let ua = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ua.contains('(') {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"error": "a descriptive User-Agent with contact information is required"}),
        );
    }
    let f = &s.fixtures;
    if rest == "/ws/2/url" {
        let resource = q.get("resource").cloned().unwrap_or_default();
        let id = resource
            .strip_prefix("https://open.spotify.com/artist/")
            .unwrap_or("");
        return match s.persona(|p| p.spotify == id && p.mbid.is_some()) {
            Some(p) => json_response(StatusCode::OK, f.mb_url_lookup(p, &resource)),
            None => json_response(
                StatusCode::NOT_FOUND,
                json!({"error": "Not Found", "help": "For usage, please see: https://musicbrainz.org/development/mmd"}),
            ),
        };
    }
    if let Some(mbid) = rest.strip_prefix("/ws/2/artist/") {
        return match s.persona(|p| p.mbid.as_deref() == Some(mbid)) {
            Some(p) => json_response(StatusCode::OK, f.mb_artist(p)),
            None => json_response(
                StatusCode::NOT_FOUND,
                json!({"error": "Not Found", "help": "For usage, please see: https://musicbrainz.org/development/mmd"}),
            ),
        };
    }
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": "Invalid resource"}),
    )
}

fn youtube(s: &State, rest: &str, q: &HashMap<String, String>, day: u32) -> Response {
    let f = &s.fixtures;
    if rest != "/youtube/v3/channels" {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": 404, "message": "Not Found", "errors": [{"reason": "notFound"}]}}),
        );
    }
    if q.get("key") != Some(&s.config.youtube_key) {
        return json_response(StatusCode::BAD_REQUEST, f.yt_key_invalid.clone());
    }
    let with_stats = q
        .get("part")
        .is_some_and(|p| p.split(',').any(|x| x == "statistics"));
    if let Some(handle) = q.get("forHandle") {
        let h = handle.to_lowercase();
        let items: Vec<Value> = s
            .personas
            .iter()
            .filter(|p| p.handle_on(day).is_some_and(|cur| cur.to_lowercase() == h))
            .filter_map(|p| {
                p.yt_handle
                    .as_ref()
                    .map(|(_, id)| f.yt_channel(p, id, day, with_stats))
            })
            .collect();
        return json_response(StatusCode::OK, f.yt_list(items));
    }
    let ids: Vec<&str> = q
        .get("id")
        .map(|v| v.split(',').filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > 50 {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": 400, "message": "Invalid filter", "errors": [{"reason": "invalidFilters", "domain": "youtube.parameter"}]}}),
        );
    }
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| {
            let p = s.persona(|p| {
                p.yt_mb.as_deref() == Some(*id)
                    || p.yt_wd.as_deref() == Some(*id)
                    || p.yt_handle.as_ref().is_some_and(|(_, c)| c == id)
            })?;
            p.channel_exists(id)
                .then(|| f.yt_channel(p, id, day, with_stats))
        })
        .collect();
    json_response(StatusCode::OK, f.yt_list(items))
}
