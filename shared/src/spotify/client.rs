//! The `SpotifyApi` adapter on rspotify's HTTP client (reqwest on rustls, no OpenSSL).
//!
//! rspotify 0.16 neither retries nor persists rotated refresh tokens, and has no 2026 shapes
//! (`/playlists/{id}/items`), so this adapter uses rspotify's HTTP client (one HTTP stack) and
//! keeps the rest here:
//!
//! - [`SpotifyClient`] is built once per cold start (configuration, credentials, tokens);
//! - [`SpotifySession`] is one invocation's view of it: its deadline, call budget, request cache
//!   and tier fallback. It implements the ports.
//!
//! Rate limits: a 429 waits its `Retry-After` when the deadline allows, else surfaces as
//! [`SpotifyError::RateLimited`] for the harness to hand the message back with that delay.
//! 5xx and connection failures are retried with jittered exponential backoff (backon), bounded
//! in count and total delay. Every call, retry and 429 is counted in the EMF metrics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use base64::Engine as _;
use rspotify::http::{BaseHttpClient, Headers, HttpClient, HttpError};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::model::{
    Album, Artist, Cursor, CursorPage, Page, PageRequest, PlayHistory, Playlist, PlaylistItem,
    PlaylistSummary, SearchKind, SearchResults, SnapshotId, Tier, Track, User,
};
use super::port::{SpotifyCatalog, SpotifyConnect, SpotifyError, SpotifyLibrary, SpotifyPlaylists};
use super::wire::{self, WireError};
use crate::config::{ConfigError, EnvSource, optional, parse_or};
use crate::ports::Secrets;
use crate::telemetry::Metrics;
use crate::validate::{AlbumId, ArtistId, PlaylistId, TrackId};

/// The real Web API host.
pub const DEFAULT_API_BASE_URL: &str = "https://api.spotify.com/v1";
/// The real accounts host (token endpoint).
pub const DEFAULT_AUTH_BASE_URL: &str = "https://accounts.spotify.com";

/// Several-ids endpoints take at most 50 artists or tracks per call.
const BATCH_ARTISTS_TRACKS: usize = 50;
/// The several-albums endpoint takes at most 20 ids per call.
const BATCH_ALBUMS: usize = 20;
/// Playlist edits take at most 100 items per request.
const PLAYLIST_EDIT_CHUNK: usize = 100;
/// Renew an access token this long before it expires, so it does not die mid-request.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// A call is not started with less than this left before the deadline.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);
/// 429s waited out within one call before the rest is handed back to the queue.
const MAX_RATE_LIMIT_WAITS: u32 = 8;

/// Settings of the Spotify adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotifyConfig {
    /// `SPOTIFY_API_BASE_URL`: the Web API root, ending in `/v1` (default the real host).
    pub api_base_url: String,
    /// `SPOTIFY_AUTH_BASE_URL`: the accounts service root (default the real host).
    pub auth_base_url: String,
    /// `SPOTIFY_API_TIER`: `development` or `extended` (default `development`, the safe choice).
    pub tier: Tier,
    /// `SPOTIFY_CALL_BUDGET`: most Spotify calls one invocation may make (default 1000).
    pub call_budget: u32,
    /// `SPOTIFY_MAX_RETRIES`: retries of a 5xx or connection failure per call (default 3).
    pub max_retries: usize,
    /// Secret holding the app's client id.
    pub client_id_secret: String,
    /// Secret holding the app's client secret.
    pub client_secret_secret: String,
    /// Secret holding the user's refresh token (rewritten when Spotify rotates it).
    pub refresh_token_secret: String,
}

fn base_url(env: &dyn EnvSource, name: &'static str, default: &str) -> Result<String, ConfigError> {
    let url = optional(env, name).unwrap_or_else(|| default.to_owned());
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError::Malformed {
            name,
            reason: "expected an http:// or https:// URL".into(),
        });
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl SpotifyConfig {
    /// Reads the adapter's settings; errors name the variable.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let call_budget: u32 = parse_or(env, "SPOTIFY_CALL_BUDGET", 1000)?;
        if call_budget == 0 {
            return Err(ConfigError::Malformed {
                name: "SPOTIFY_CALL_BUDGET",
                reason: "expected at least 1".into(),
            });
        }
        Ok(Self {
            api_base_url: base_url(env, "SPOTIFY_API_BASE_URL", DEFAULT_API_BASE_URL)?,
            auth_base_url: base_url(env, "SPOTIFY_AUTH_BASE_URL", DEFAULT_AUTH_BASE_URL)?,
            tier: parse_or(env, "SPOTIFY_API_TIER", Tier::Development)?,
            call_budget,
            max_retries: parse_or(env, "SPOTIFY_MAX_RETRIES", 3)?,
            client_id_secret: optional(env, "SPOTIFY_CLIENT_ID_SECRET")
                .unwrap_or_else(|| "spotify/client_id".into()),
            client_secret_secret: optional(env, "SPOTIFY_CLIENT_SECRET_SECRET")
                .unwrap_or_else(|| "spotify/client_secret".into()),
            refresh_token_secret: optional(env, "SPOTIFY_REFRESH_TOKEN_SECRET")
                .unwrap_or_else(|| "spotify/refresh_token".into()),
        })
    }

    /// Defaults pointed at `api_base_url` / `auth_base_url` (tests and the sandbox).
    pub fn for_urls(api_base_url: &str, auth_base_url: &str, tier: Tier) -> Self {
        let env: HashMap<&str, &str> = [
            ("SPOTIFY_API_BASE_URL", api_base_url),
            ("SPOTIFY_AUTH_BASE_URL", auth_base_url),
        ]
        .into();
        let mut config = Self::from_env(&env).unwrap_or_else(|_| Self {
            api_base_url: api_base_url.trim_end_matches('/').to_owned(),
            auth_base_url: auth_base_url.trim_end_matches('/').to_owned(),
            tier,
            call_budget: 1000,
            max_retries: 3,
            client_id_secret: "spotify/client_id".into(),
            client_secret_secret: "spotify/client_secret".into(),
            refresh_token_secret: "spotify/refresh_token".into(),
        });
        config.tier = tier;
        config
    }
}

/// An access token and when to stop using it.
struct AccessToken {
    value: SecretString,
    renew_at: Instant,
}

/// Which token a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Client credentials: catalog reads.
    App,
    /// The user's token from the refresh token: playlists and library.
    User,
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// What one HTTP request carries besides its operation name.
struct Request<'a> {
    method: Method,
    url: &'a str,
    headers: &'a Headers,
    query: &'a [(&'a str, String)],
    body: Option<&'a Value>,
    form: Option<&'a [(&'a str, &'a str)]>,
}

/// Built once per cold start: configuration, HTTP client, credentials and cached tokens.
/// Clones share all of it.
#[derive(Clone)]
pub struct SpotifyClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: SpotifyConfig,
    http: HttpClient,
    secrets: Arc<dyn Secrets>,
    metrics: Metrics,
    app_token: tokio::sync::Mutex<Option<AccessToken>>,
    user_token: tokio::sync::Mutex<Option<AccessToken>>,
    /// The refresh token Spotify refused, so it is not sent again until an operator replaces it.
    refused_refresh: Mutex<Option<SecretString>>,
}

impl std::fmt::Debug for SpotifyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpotifyClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl SpotifyClient {
    /// A client reading credentials from `secrets` and counting calls into `metrics`.
    pub fn new(config: SpotifyConfig, secrets: Arc<dyn Secrets>, metrics: Metrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                http: HttpClient::default(),
                secrets,
                metrics,
                app_token: tokio::sync::Mutex::new(None),
                user_token: tokio::sync::Mutex::new(None),
                refused_refresh: Mutex::new(None),
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SpotifyConfig {
        &self.inner.config
    }

    /// One invocation's session, which must finish its calls by `deadline`.
    pub fn session(&self, deadline: Instant) -> SpotifySession {
        SpotifySession {
            inner: self.inner.clone(),
            deadline,
            calls: AtomicU32::new(0),
            batching_off: AtomicBool::new(false),
            cache: Mutex::new(HashMap::new()),
            stats: Mutex::new(SessionStats::default()),
        }
    }

    /// A session for an invocation with `remaining` time left.
    pub fn session_for(&self, remaining: Duration) -> SpotifySession {
        self.session(Instant::now() + remaining)
    }
}

impl SpotifyConnect for SpotifyClient {
    type Session = SpotifySession;

    fn tier(&self) -> Tier {
        self.inner.config.tier
    }

    fn open(&self, remaining: Duration) -> SpotifySession {
        self.session_for(remaining)
    }
}

/// What one session did, for tests, benchmarks and the invocation summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// HTTP requests made to Spotify, token requests included.
    pub calls: u32,
    /// Requests per operation (`artists.several`, `artist`, `token.refresh`...).
    pub calls_by_operation: BTreeMap<&'static str, u32>,
    /// Requests repeated after a 5xx, connection failure, 401 or 429.
    pub retries: u32,
    /// 429 responses received.
    pub rate_limited: u32,
    /// Answers served from the request cache.
    pub cache_hits: u32,
    /// Whether a 403 switched batched reads to single-item calls.
    pub batch_fallback: bool,
}

/// One invocation's use of Spotify: deadline, budget, request cache, tier fallback.
pub struct SpotifySession {
    inner: Arc<Inner>,
    deadline: Instant,
    calls: AtomicU32,
    batching_off: AtomicBool,
    /// Raw JSON by object (`artist:{id}`) or by request, so nothing is fetched twice.
    cache: Mutex<HashMap<String, Value>>,
    stats: Mutex<SessionStats>,
}

impl std::fmt::Debug for SpotifySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpotifySession")
            .field("deadline", &self.deadline)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A refusal that is not retried at the transport level: the caller maps it.
struct Refused {
    status: u16,
    body: String,
}

fn decode<T: DeserializeOwned>(operation: &'static str, body: &str) -> Result<T, SpotifyError> {
    serde_json::from_str(body).map_err(|err| SpotifyError::Decode {
        operation,
        source: err.into(),
    })
}

fn from_value<T: DeserializeOwned>(operation: &'static str, v: Value) -> Result<T, SpotifyError> {
    serde_json::from_value(v).map_err(|err| SpotifyError::Decode {
        operation,
        source: err.into(),
    })
}

fn convert<W, T>(operation: &'static str, w: W) -> Result<T, SpotifyError>
where
    T: TryFrom<W, Error = WireError>,
{
    T::try_from(w).map_err(|err| SpotifyError::Decode {
        operation,
        source: err.into(),
    })
}

/// Spotify's error message, from `{"error":{"message":..}}` or `{"error_description":..}`.
fn error_message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v.pointer("/error/message")
        .or_else(|| v.get("error_description"))
        .or_else(|| v.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .chars()
        .take(200)
        .collect()
}

impl SpotifySession {
    /// What this session did so far.
    pub fn stats(&self) -> SessionStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The tier the session is using: the configured one, or development after a 403 fallback.
    pub fn effective_tier(&self) -> Tier {
        if self.batching_off.load(Ordering::Relaxed) {
            Tier::Development
        } else {
            self.inner.config.tier
        }
    }

    fn record(&self, f: impl FnOnce(&mut SessionStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn cache_get(&self, key: &str) -> Option<Value> {
        let hit = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        if hit.is_some() {
            self.record(|s| s.cache_hits += 1);
            self.inner.metrics.count("SpotifyCacheHits", 1);
        }
        hit
    }

    fn cache_put(&self, key: String, value: Value) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, value);
    }

    fn cache_forget_prefix(&self, prefix: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| !k.starts_with(prefix));
    }

    /// Counts one request against the budget and in the metrics, or refuses it.
    fn admit(&self, operation: &'static str) -> Result<(), SpotifyError> {
        let budget = self.inner.config.call_budget;
        if self.calls.fetch_add(1, Ordering::Relaxed) >= budget {
            self.calls.fetch_sub(1, Ordering::Relaxed);
            self.inner.metrics.count("SpotifyBudgetExhausted", 1);
            return Err(SpotifyError::BudgetExhausted { budget });
        }
        if Instant::now() + DEADLINE_MARGIN >= self.deadline {
            self.calls.fetch_sub(1, Ordering::Relaxed);
            return Err(SpotifyError::DeadlineExceeded { operation });
        }
        self.inner.metrics.count("SpotifyCalls", 1);
        self.record(|s| {
            s.calls += 1;
            *s.calls_by_operation.entry(operation).or_default() += 1;
        });
        Ok(())
    }

    fn note_retry(&self) {
        self.inner.metrics.count("SpotifyRetries", 1);
        self.record(|s| s.retries += 1);
    }

    /// Sends one request, retrying 5xx / connection failures with backoff and waiting out
    /// 429s that fit before the deadline. Other refusals come back as [`Refused`].
    async fn transport(
        &self,
        operation: &'static str,
        request: Request<'_>,
    ) -> Result<Result<String, Refused>, SpotifyError> {
        let Request {
            method,
            url,
            headers,
            query,
            body,
            form,
        } = request;
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.inner.config.max_retries)
            .with_total_delay(Some(Duration::from_secs(20)))
            .with_jitter()
            .build();
        let mut waits = 0u32;
        loop {
            self.admit(operation)?;
            let query_map: HashMap<&str, &str> =
                query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let empty = json!({});
            let payload = body.unwrap_or(&empty);
            let http = &self.inner.http;
            let result = match (method, form) {
                (Method::Post, Some(form)) => {
                    let form: HashMap<&str, &str> = form.iter().copied().collect();
                    http.post_form(url, Some(headers), &form).await
                }
                (Method::Get, _) => http.get(url, Some(headers), &query_map).await,
                (Method::Post, None) => http.post(url, Some(headers), payload).await,
                (Method::Put, _) => http.put(url, Some(headers), payload).await,
                (Method::Delete, _) => http.delete(url, Some(headers), payload).await,
            };
            let failure: SpotifyError = match result {
                Ok(text) => return Ok(Ok(text)),
                Err(HttpError::StatusCode(response)) => {
                    let status = response.status().as_u16();
                    if status == 429 {
                        let retry_after = response
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map_or(Duration::from_secs(1), Duration::from_secs);
                        self.inner.metrics.count("SpotifyRateLimited", 1);
                        self.record(|s| s.rate_limited += 1);
                        waits += 1;
                        let fits = Instant::now() + retry_after + DEADLINE_MARGIN < self.deadline;
                        if !fits || waits > MAX_RATE_LIMIT_WAITS {
                            tracing::warn!(
                                operation,
                                retry_after_s = retry_after.as_secs(),
                                "Spotify rate limit outlasts the invocation; handing back"
                            );
                            return Err(SpotifyError::RateLimited {
                                operation,
                                retry_after,
                            });
                        }
                        tracing::info!(
                            operation,
                            retry_after_s = retry_after.as_secs(),
                            "Spotify rate limit; waiting"
                        );
                        tokio::time::sleep(retry_after).await;
                        self.note_retry();
                        continue;
                    }
                    let text = response.text().await.unwrap_or_default();
                    if status < 500 {
                        return Ok(Err(Refused { status, body: text }));
                    }
                    SpotifyError::Transient {
                        operation,
                        source: format!("HTTP {status}: {}", error_message(&text)).into(),
                    }
                }
                Err(HttpError::Client(err)) => SpotifyError::Transient {
                    operation,
                    source: err.into(),
                },
            };
            match backoff.next() {
                Some(delay) if Instant::now() + delay + DEADLINE_MARGIN < self.deadline => {
                    tracing::info!(operation, delay_ms = delay.as_millis() as u64, error = %crate::error::chain(&failure), "retrying Spotify call");
                    tokio::time::sleep(delay).await;
                    self.note_retry();
                }
                _ => return Err(failure),
            }
        }
    }

    /// Calls the Web API at `path` with the token `auth` needs, renewing it once on a 401.
    async fn api(
        &self,
        operation: &'static str,
        auth: Auth,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<String, SpotifyError> {
        let url = format!("{}{}", self.inner.config.api_base_url, path);
        let mut renewed = false;
        // The token Spotify refused, so that only a token that is still that one is renewed.
        let mut refused_token: Option<SecretString> = None;
        loop {
            let token = self.token(auth, refused_token.as_ref()).await?;
            let headers: Headers = [(
                "authorization".to_owned(),
                format!("Bearer {}", token.expose_secret()),
            )]
            .into();
            let refused = match self
                .transport(
                    operation,
                    Request {
                        method,
                        url: &url,
                        headers: &headers,
                        query,
                        body,
                        form: None,
                    },
                )
                .await?
            {
                Ok(text) => return Ok(text),
                Err(refused) => refused,
            };
            let message = error_message(&refused.body);
            return Err(match refused.status {
                401 if !renewed => {
                    // An expired or revoked access token: renew once and repeat the call.
                    renewed = true;
                    refused_token = Some(token);
                    self.note_retry();
                    continue;
                }
                401 => SpotifyError::Unauthorized {
                    operation,
                    reason: message,
                },
                403 => SpotifyError::Forbidden { operation, message },
                404 => SpotifyError::NotFound { operation },
                _ => SpotifyError::BadRequest { operation, message },
            });
        }
    }

    /// A GET whose JSON answer is cached for the session under `key`.
    async fn get_cached(
        &self,
        operation: &'static str,
        auth: Auth,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, SpotifyError> {
        let mut key = format!("GET {path}");
        for (k, v) in query {
            key.push_str(&format!("&{k}={v}"));
        }
        if let Some(hit) = self.cache_get(&key) {
            return Ok(hit);
        }
        let text = self
            .api(operation, auth, Method::Get, path, query, None)
            .await?;
        let value: Value = decode(operation, &text)?;
        self.cache_put(key, value.clone());
        Ok(value)
    }

    /// A valid access token for `auth`, fetched or refreshed when needed: none yet, near its
    /// expiry, or still the `refused` one. One refresher: the slot's lock is held across the
    /// request, so concurrent callers wait for the one fetch and then share its token; a caller
    /// whose refused token was already replaced by another's refresh takes the new one
    /// without refreshing again.
    async fn token(
        &self,
        auth: Auth,
        refused: Option<&SecretString>,
    ) -> Result<SecretString, SpotifyError> {
        let slot = match auth {
            Auth::App => &self.inner.app_token,
            Auth::User => &self.inner.user_token,
        };
        let mut guard = slot.lock().await;
        if let Some(token) = guard.as_ref()
            && Instant::now() < token.renew_at
            && refused.is_none_or(|r| r.expose_secret() != token.value.expose_secret())
        {
            return Ok(token.value.clone());
        }
        let fresh = match auth {
            Auth::App => self.fetch_app_token().await?,
            Auth::User => self.fetch_user_token().await?,
        };
        let value = fresh.value.clone();
        *guard = Some(fresh);
        Ok(value)
    }

    async fn token_request(
        &self,
        operation: &'static str,
        form: &[(&str, &str)],
    ) -> Result<Result<TokenResponse, Refused>, SpotifyError> {
        let secrets = &self.inner.secrets;
        let id = secrets.get(&self.inner.config.client_id_secret).await?;
        let secret = secrets.get(&self.inner.config.client_secret_secret).await?;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            id.expose_secret(),
            secret.expose_secret()
        ));
        let headers: Headers = [("authorization".to_owned(), format!("Basic {basic}"))].into();
        let url = format!("{}/api/token", self.inner.config.auth_base_url);
        self.inner.metrics.count("SpotifyTokenRequests", 1);
        match self
            .transport(
                operation,
                Request {
                    method: Method::Post,
                    url: &url,
                    headers: &headers,
                    query: &[],
                    body: None,
                    form: Some(form),
                },
            )
            .await?
        {
            Ok(text) => Ok(Ok(decode(operation, &text)?)),
            Err(refused) => Ok(Err(refused)),
        }
    }

    async fn fetch_app_token(&self) -> Result<AccessToken, SpotifyError> {
        const OP: &str = "token.client_credentials";
        match self
            .token_request(OP, &[("grant_type", "client_credentials")])
            .await?
        {
            Ok(token) => Ok(token.into_access()),
            Err(refused) => Err(SpotifyError::Unauthorized {
                operation: OP,
                reason: oauth_error(&refused.body),
            }),
        }
    }

    async fn fetch_user_token(&self) -> Result<AccessToken, SpotifyError> {
        const OP: &str = "token.refresh";
        let name = &self.inner.config.refresh_token_secret;
        let refresh = self.inner.secrets.get(name).await?;
        let already_refused = self
            .inner
            .refused_refresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|r| r.expose_secret() == refresh.expose_secret());
        if already_refused {
            // Reported when it was refused; sending it again would only be refused again.
            return Err(SpotifyError::ReauthorisationRequired { operation: OP });
        }
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose_secret()),
        ];
        match self.token_request(OP, &form).await? {
            Ok(token) => {
                if let Some(rotated) = token.refresh_token.as_ref()
                    && rotated.expose_secret() != refresh.expose_secret()
                {
                    // rspotify would keep the old token; Spotify has already invalidated it.
                    self.inner.secrets.put(name, rotated).await?;
                    self.inner.metrics.count("SpotifyRefreshTokenRotated", 1);
                    tracing::info!(secret = %name, "Spotify rotated the refresh token; stored the new one");
                }
                Ok(token.into_access())
            }
            Err(refused) if oauth_error(&refused.body) == "invalid_grant" => {
                *self
                    .inner
                    .refused_refresh
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(refresh);
                self.inner
                    .metrics
                    .count("SpotifyReauthorisationRequired", 1);
                let err = SpotifyError::ReauthorisationRequired { operation: OP };
                tracing::error!(error = %err, "Spotify user authorisation lost");
                Err(err)
            }
            Err(refused) => Err(SpotifyError::Unauthorized {
                operation: OP,
                reason: oauth_error(&refused.body),
            }),
        }
    }

    /// Switches batched reads to single-item calls for the rest of the session, once.
    fn fall_back(&self, operation: &'static str, message: &str) {
        if !self.batching_off.swap(true, Ordering::Relaxed) {
            self.inner.metrics.count("SpotifyBatchFallback", 1);
            self.record(|s| s.batch_fallback = true);
            tracing::warn!(
                operation,
                spotify_message = message,
                configured_tier = self.inner.config.tier.as_str(),
                "Spotify refused a several-ids endpoint; using single-item calls for this invocation (is SPOTIFY_API_TIER right?)"
            );
        }
    }

    /// Fetches the objects `ids` of `kind`, batched as the tier allows, each at most once per
    /// session. Returns the raw JSON per id, `Null` for unknown ids.
    async fn objects(&self, kind: &ObjectKind, ids: &[&str]) -> Result<Vec<Value>, SpotifyError> {
        let key = |id: &str| format!("{}:{id}", kind.path);
        let mut seen = HashSet::new();
        let missing: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| seen.insert(*id) && self.cache_get(&key(id)).is_none())
            .collect();
        let mut todo: Vec<&str> = missing.clone();
        if self.inner.config.tier == Tier::Extended
            && !self.batching_off.load(Ordering::Relaxed)
            && missing.len() > 1
        {
            todo.clear();
            for (n, chunk) in missing.chunks(kind.batch).enumerate() {
                let query = [("ids", chunk.join(","))];
                let path = format!("/{}", kind.path);
                match self
                    .api(kind.several_op, Auth::App, Method::Get, &path, &query, None)
                    .await
                {
                    Ok(text) => {
                        let mut v: Value = decode(kind.several_op, &text)?;
                        let list = v
                            .get_mut(kind.path)
                            .and_then(Value::as_array_mut)
                            .map(std::mem::take)
                            .unwrap_or_default();
                        for (id, object) in chunk.iter().zip(list) {
                            self.cache_put(key(id), object);
                        }
                    }
                    Err(SpotifyError::Forbidden { message, .. }) => {
                        self.fall_back(kind.several_op, &message);
                        todo = missing[n * kind.batch..].to_vec();
                        break;
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        for id in todo {
            let path = format!("/{}/{id}", kind.path);
            let object = match self
                .api(kind.single_op, Auth::App, Method::Get, &path, &[], None)
                .await
            {
                Ok(text) => decode(kind.single_op, &text)?,
                Err(SpotifyError::NotFound { .. }) => Value::Null,
                Err(err) => return Err(err),
            };
            self.cache_put(key(id), object);
        }
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        Ok(ids
            .iter()
            .map(|id| cache.get(&key(id)).cloned().unwrap_or(Value::Null))
            .collect())
    }

    async fn many<W, T>(
        &self,
        kind: &ObjectKind,
        ids: &[&str],
    ) -> Result<Vec<Option<T>>, SpotifyError>
    where
        W: DeserializeOwned,
        T: TryFrom<W, Error = WireError>,
    {
        self.objects(kind, ids)
            .await?
            .into_iter()
            .map(|v| match v {
                Value::Null => Ok(None),
                v => convert(kind.single_op, from_value::<W>(kind.single_op, v)?).map(Some),
            })
            .collect()
    }

    async fn one<W, T>(&self, kind: &ObjectKind, id: &str) -> Result<T, SpotifyError>
    where
        W: DeserializeOwned,
        T: TryFrom<W, Error = WireError>,
    {
        self.many::<W, T>(kind, &[id])
            .await?
            .pop()
            .flatten()
            .ok_or(SpotifyError::NotFound {
                operation: kind.single_op,
            })
    }

    /// The page-size cap of search and artist albums: 10 in Development Mode.
    fn list_limit(&self, asked: u32) -> u32 {
        let cap = match self.inner.config.tier {
            Tier::Development => 10,
            Tier::Extended => 50,
        };
        asked.clamp(1, cap)
    }

    async fn edit(
        &self,
        operation: &'static str,
        method: Method,
        id: &PlaylistId,
        body: Value,
    ) -> Result<SnapshotId, SpotifyError> {
        let path = format!("/playlists/{id}/items");
        let text = self
            .api(operation, Auth::User, method, &path, &[], Some(&body))
            .await?;
        self.cache_forget_prefix(&format!("GET /playlists/{id}"));
        let snap: wire::WSnapshot = decode(operation, &text)?;
        Ok(SnapshotId(snap.snapshot_id))
    }
}

/// How the objects of one kind are fetched.
struct ObjectKind {
    path: &'static str,
    batch: usize,
    single_op: &'static str,
    several_op: &'static str,
}

const ARTISTS: ObjectKind = ObjectKind {
    path: "artists",
    batch: BATCH_ARTISTS_TRACKS,
    single_op: "artist",
    several_op: "artists.several",
};
const TRACKS: ObjectKind = ObjectKind {
    path: "tracks",
    batch: BATCH_ARTISTS_TRACKS,
    single_op: "track",
    several_op: "tracks.several",
};
const ALBUMS: ObjectKind = ObjectKind {
    path: "albums",
    batch: BATCH_ALBUMS,
    single_op: "album",
    several_op: "albums.several",
};

/// The longest access-token lifetime believed (Spotify's are an hour).
const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 60 * 60;

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    expires_in: Option<u64>,
    refresh_token: Option<SecretString>,
}

impl TokenResponse {
    fn into_access(self) -> AccessToken {
        // Capped: the value comes from outside, and an `Instant` overflows on absurd lifetimes.
        let lifetime =
            Duration::from_secs(self.expires_in.unwrap_or(3600).min(MAX_TOKEN_LIFETIME_SECS));
        AccessToken {
            value: self.access_token,
            renew_at: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
        }
    }
}

/// The OAuth error code of an accounts-service refusal (`invalid_grant`, `invalid_client`).
fn oauth_error(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn uris(tracks: &[TrackId]) -> Vec<String> {
    tracks.iter().map(|t| t.uri().to_string()).collect()
}

#[async_trait]
impl SpotifyCatalog for SpotifySession {
    async fn artist(&self, id: &ArtistId) -> Result<Artist, SpotifyError> {
        self.one::<wire::WArtist, Artist>(&ARTISTS, id.as_str())
            .await
    }

    async fn artists(&self, ids: &[ArtistId]) -> Result<Vec<Option<Artist>>, SpotifyError> {
        let ids: Vec<&str> = ids.iter().map(ArtistId::as_str).collect();
        self.many::<wire::WArtist, Artist>(&ARTISTS, &ids).await
    }

    async fn artist_albums(
        &self,
        id: &ArtistId,
        page: PageRequest,
    ) -> Result<Page<Album>, SpotifyError> {
        const OP: &str = "artist.albums";
        let query = [
            ("limit", self.list_limit(page.limit).to_string()),
            ("offset", page.offset.to_string()),
        ];
        let v = self
            .get_cached(OP, Auth::App, &format!("/artists/{id}/albums"), &query)
            .await?;
        from_value::<wire::WPage<wire::WAlbum>>(OP, v)?
            .convert(Album::try_from)
            .map_err(|e| SpotifyError::Decode {
                operation: OP,
                source: e.into(),
            })
    }

    async fn album(&self, id: &AlbumId) -> Result<Album, SpotifyError> {
        self.one::<wire::WAlbum, Album>(&ALBUMS, id.as_str()).await
    }

    async fn albums(&self, ids: &[AlbumId]) -> Result<Vec<Option<Album>>, SpotifyError> {
        let ids: Vec<&str> = ids.iter().map(AlbumId::as_str).collect();
        self.many::<wire::WAlbum, Album>(&ALBUMS, &ids).await
    }

    async fn album_tracks(
        &self,
        id: &AlbumId,
        page: PageRequest,
    ) -> Result<Page<Track>, SpotifyError> {
        const OP: &str = "album.tracks";
        let query = [
            ("limit", page.limit.clamp(1, 50).to_string()),
            ("offset", page.offset.to_string()),
        ];
        let v = self
            .get_cached(OP, Auth::App, &format!("/albums/{id}/tracks"), &query)
            .await?;
        from_value::<wire::WPage<wire::WTrack>>(OP, v)?
            .convert(Track::try_from)
            .map_err(|e| SpotifyError::Decode {
                operation: OP,
                source: e.into(),
            })
    }

    async fn track(&self, id: &TrackId) -> Result<Track, SpotifyError> {
        self.one::<wire::WTrack, Track>(&TRACKS, id.as_str()).await
    }

    async fn tracks(&self, ids: &[TrackId]) -> Result<Vec<Option<Track>>, SpotifyError> {
        let ids: Vec<&str> = ids.iter().map(TrackId::as_str).collect();
        self.many::<wire::WTrack, Track>(&TRACKS, &ids).await
    }

    async fn search(
        &self,
        query: &str,
        kinds: &[SearchKind],
        page: PageRequest,
    ) -> Result<SearchResults, SpotifyError> {
        const OP: &str = "search";
        let types: Vec<&str> = kinds.iter().map(SearchKind::as_str).collect();
        let params = [
            ("q", query.to_owned()),
            ("type", types.join(",")),
            ("limit", self.list_limit(page.limit).to_string()),
            ("offset", page.offset.to_string()),
        ];
        let v = self.get_cached(OP, Auth::App, "/search", &params).await?;
        convert(OP, from_value::<wire::WSearch>(OP, v)?)
    }
}

#[async_trait]
impl SpotifyPlaylists for SpotifySession {
    async fn playlist(&self, id: &PlaylistId) -> Result<Playlist, SpotifyError> {
        const OP: &str = "playlist";
        let v = self
            .get_cached(OP, Auth::User, &format!("/playlists/{id}"), &[])
            .await?;
        convert(OP, from_value::<wire::WPlaylist>(OP, v)?)
    }

    async fn playlist_items(
        &self,
        id: &PlaylistId,
        page: PageRequest,
    ) -> Result<Page<PlaylistItem>, SpotifyError> {
        const OP: &str = "playlist.items";
        let query = [
            ("limit", page.limit.clamp(1, 50).to_string()),
            ("offset", page.offset.to_string()),
        ];
        let v = self
            .get_cached(OP, Auth::User, &format!("/playlists/{id}/items"), &query)
            .await?;
        from_value::<wire::WPage<wire::WPlaylistItem>>(OP, v)?
            .convert(PlaylistItem::try_from)
            .map_err(|e| SpotifyError::Decode {
                operation: OP,
                source: e.into(),
            })
    }

    async fn add_items(
        &self,
        id: &PlaylistId,
        tracks: &[TrackId],
        position: Option<u32>,
    ) -> Result<SnapshotId, SpotifyError> {
        let mut snapshot = None;
        for (n, chunk) in tracks.chunks(PLAYLIST_EDIT_CHUNK).enumerate() {
            let mut body = json!({ "uris": uris(chunk) });
            if let Some(position) = position {
                body["position"] = json!(position as usize + n * PLAYLIST_EDIT_CHUNK);
            }
            snapshot = Some(self.edit("playlist.add", Method::Post, id, body).await?);
        }
        match snapshot {
            Some(s) => Ok(s),
            None => Ok(self.playlist(id).await?.snapshot_id),
        }
    }

    async fn remove_items(
        &self,
        id: &PlaylistId,
        tracks: &[TrackId],
        snapshot: Option<&SnapshotId>,
    ) -> Result<SnapshotId, SpotifyError> {
        let mut current = snapshot.cloned();
        for chunk in tracks.chunks(PLAYLIST_EDIT_CHUNK) {
            let items: Vec<Value> = uris(chunk).into_iter().map(|u| json!({"uri": u})).collect();
            let mut body = json!({ "items": items });
            if let Some(s) = &current {
                body["snapshot_id"] = json!(s.0);
            }
            current = Some(
                self.edit("playlist.remove", Method::Delete, id, body)
                    .await?,
            );
        }
        match current {
            Some(s) => Ok(s),
            None => Ok(self.playlist(id).await?.snapshot_id),
        }
    }

    async fn reorder_items(
        &self,
        id: &PlaylistId,
        range_start: u32,
        insert_before: u32,
        range_length: u32,
        snapshot: Option<&SnapshotId>,
    ) -> Result<SnapshotId, SpotifyError> {
        let mut body = json!({
            "range_start": range_start,
            "insert_before": insert_before,
            "range_length": range_length,
        });
        if let Some(s) = snapshot {
            body["snapshot_id"] = json!(s.0);
        }
        self.edit("playlist.reorder", Method::Put, id, body).await
    }

    async fn replace_items(
        &self,
        id: &PlaylistId,
        tracks: &[TrackId],
    ) -> Result<SnapshotId, SpotifyError> {
        let (first, rest) = tracks.split_at(tracks.len().min(PLAYLIST_EDIT_CHUNK));
        let snapshot = self
            .edit(
                "playlist.replace",
                Method::Put,
                id,
                json!({ "uris": uris(first) }),
            )
            .await?;
        if rest.is_empty() {
            return Ok(snapshot);
        }
        self.add_items(id, rest, None).await
    }
}

#[async_trait]
impl SpotifyLibrary for SpotifySession {
    async fn current_user(&self) -> Result<User, SpotifyError> {
        const OP: &str = "me";
        let v = self.get_cached(OP, Auth::User, "/me", &[]).await?;
        convert(OP, from_value::<wire::WUser>(OP, v)?)
    }

    async fn current_user_playlists(
        &self,
        page: PageRequest,
    ) -> Result<Page<PlaylistSummary>, SpotifyError> {
        const OP: &str = "me.playlists";
        let query = [
            ("limit", page.limit.clamp(1, 50).to_string()),
            ("offset", page.offset.to_string()),
        ];
        let v = self
            .get_cached(OP, Auth::User, "/me/playlists", &query)
            .await?;
        from_value::<wire::WPage<wire::WPlaylist>>(OP, v)?
            .convert(PlaylistSummary::try_from)
            .map_err(|e| SpotifyError::Decode {
                operation: OP,
                source: e.into(),
            })
    }

    async fn recently_played(
        &self,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<CursorPage<PlayHistory>, SpotifyError> {
        const OP: &str = "me.recently_played";
        let mut query = vec![("limit", limit.clamp(1, 50).to_string())];
        match cursor {
            Some(Cursor::After(ms)) => query.push(("after", ms.to_string())),
            Some(Cursor::Before(ms)) => query.push(("before", ms.to_string())),
            None => {}
        }
        let v = self
            .get_cached(OP, Auth::User, "/me/player/recently-played", &query)
            .await?;
        convert(OP, from_value::<wire::WRecentlyPlayed>(OP, v)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_bad_variable() {
        let env: HashMap<&str, &str> = [("SPOTIFY_API_TIER", "premium")].into();
        let err = SpotifyConfig::from_env(&env).unwrap_err();
        assert!(err.to_string().contains("SPOTIFY_API_TIER"), "{err}");
        let env: HashMap<&str, &str> = [("SPOTIFY_API_BASE_URL", "api.spotify.com")].into();
        let err = SpotifyConfig::from_env(&env).unwrap_err();
        assert!(err.to_string().contains("SPOTIFY_API_BASE_URL"), "{err}");
        let config = SpotifyConfig::from_env(&HashMap::<&str, &str>::new()).unwrap();
        assert_eq!(config.api_base_url, DEFAULT_API_BASE_URL);
        assert_eq!(config.auth_base_url, DEFAULT_AUTH_BASE_URL);
        assert_eq!(config.tier, Tier::Development);
    }

    #[test]
    fn reauthorisation_is_permanent_and_says_what_to_do() {
        use crate::error::{Classify, ErrorClass};
        let err = SpotifyError::ReauthorisationRequired {
            operation: "token.refresh",
        };
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert!(err.to_string().contains("re-authorise"));
        let err = SpotifyError::RateLimited {
            operation: "artist",
            retry_after: Duration::from_secs(7),
        };
        assert_eq!(err.class(), ErrorClass::RateLimited(Duration::from_secs(7)));
    }
}

/// Property-based fuzzing of every Spotify response decoder and of token responses: near-valid
/// responses (recorded shapes with subtrees replaced, removed or retyped) and arbitrary JSON
/// never panic, in decoding or in conversion to the model.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::fuzz::{arb_json, arb_text, near};
    use crate::spotify::wire::{WAlbum, WArtist, WPage, WPlaylist, WTrack};

    const ARTIST: &str = r#"{"external_urls": {"spotify": "https://open.spotify.com/artist/0OdUWJ0sBjDrqHygGUXeCF"}, "followers": {"href": null, "total": 306565}, "genres": ["indie folk", "indie pop"], "href": "https://api.spotify.com/v1/artists/0OdUWJ0sBjDrqHygGUXeCF", "id": "0OdUWJ0sBjDrqHygGUXeCF", "images": [{"height": 816, "url": "https://i.scdn.co/image/eb266625dab075341e8c4378a177a27370f91903", "width": 1000}, {"height": 522, "url": "https://i.scdn.co/image/2f91c3cace3c5a6a48f3d0e2fd21364d4911b332", "width": 640}, {"height": 163, "url": "https://i.scdn.co/image/2efc93d7ee88435116093274980f04ebceb7b527", "width": 200}, {"height": 52, "url": "https://i.scdn.co/image/4f25297750dfa4051195c36809a9049f6b841a23", "width": 64}], "name": "Band of Horses", "popularity": 59, "type": "artist", "uri": "spotify:artist:0OdUWJ0sBjDrqHygGUXeCF"}"#;
    const TRACK: &str = r#"{"album": {"album_type": "album", "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/0C0XlULifJtAgn6ZNCW2eu"}, "href": "https://api.spotify.com/v1/artists/0C0XlULifJtAgn6ZNCW2eu", "id": "0C0XlULifJtAgn6ZNCW2eu", "name": "The Killers", "type": "artist", "uri": "spotify:artist:0C0XlULifJtAgn6ZNCW2eu"}], "available_markets": [], "external_urls": {"spotify": "https://open.spotify.com/album/4OHNH3sDzIxnmUADXzv2kT"}, "href": "https://api.spotify.com/v1/albums/4OHNH3sDzIxnmUADXzv2kT", "id": "4OHNH3sDzIxnmUADXzv2kT", "images": [{"height": 640, "url": "https://i.scdn.co/image/ac68a9e4a867ec3ce8249cd90a2d7c73755fb487", "width": 629}], "name": "Hot Fuss (Deluxe Version)", "release_date": "2004-06-15", "release_date_precision": "day", "total_tracks": 13, "type": "album", "uri": "spotify:album:4OHNH3sDzIxnmUADXzv2kT"}, "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/0C0XlULifJtAgn6ZNCW2eu"}, "href": "https://api.spotify.com/v1/artists/0C0XlULifJtAgn6ZNCW2eu", "id": "0C0XlULifJtAgn6ZNCW2eu", "name": "The Killers", "type": "artist", "uri": "spotify:artist:0C0XlULifJtAgn6ZNCW2eu"}], "available_markets": [], "disc_number": 1, "duration_ms": 222200, "explicit": false, "external_ids": {"isrc": "GBFFP0300052"}, "external_urls": {"spotify": "https://open.spotify.com/track/3n3Ppam7vgaVa1iaRUc9Lp"}, "href": "https://api.spotify.com/v1/tracks/3n3Ppam7vgaVa1iaRUc9Lp", "id": "3n3Ppam7vgaVa1iaRUc9Lp", "name": "Mr. Brightside", "popularity": 73, "preview_url": null, "track_number": 2, "type": "track", "uri": "spotify:track:3n3Ppam7vgaVa1iaRUc9Lp"}"#;
    const ALBUMS_PAGE: &str = r#"{"href": "https://api.spotify.com/v1/artists/1vCWHaC5f2uS3yhpwWbIA6/albums?offset=0&limit=2&include_groups=single&market=ES", "items": [{"album_group": "single", "album_type": "single", "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/1vCWHaC5f2uS3yhpwWbIA6"}, "href": "https://api.spotify.com/v1/artists/1vCWHaC5f2uS3yhpwWbIA6", "id": "1vCWHaC5f2uS3yhpwWbIA6", "name": "Avicii", "type": "artist", "uri": "spotify:artist:1vCWHaC5f2uS3yhpwWbIA6"}, {"external_urls": {"spotify": "https://open.spotify.com/artist/1Cs0zKBU1kc0i8ypK3B9ai"}, "href": "https://api.spotify.com/v1/artists/1Cs0zKBU1kc0i8ypK3B9ai", "id": "1Cs0zKBU1kc0i8ypK3B9ai", "name": "David Guetta", "type": "artist", "uri": "spotify:artist:1Cs0zKBU1kc0i8ypK3B9ai"}, {"external_urls": {"spotify": "https://open.spotify.com/artist/19HFRWmRCl27kTk6LeqAO8"}, "href": "https://api.spotify.com/v1/artists/19HFRWmRCl27kTk6LeqAO8", "id": "19HFRWmRCl27kTk6LeqAO8", "name": "MORTEN", "type": "artist", "uri": "spotify:artist:19HFRWmRCl27kTk6LeqAO8"}], "external_urls": {"spotify": "https://open.spotify.com/album/37bCTD5iLWMpDcBanNkkXB"}, "href": "https://api.spotify.com/v1/albums/37bCTD5iLWMpDcBanNkkXB", "id": "37bCTD5iLWMpDcBanNkkXB", "images": [{"height": 640, "url": "https://i.scdn.co/image/5eeb367a91e7abb76ae6cb15ada77dde636ef740", "width": 640}], "name": "Heaven (David Guetta & MORTEN Remix)", "release_date": "2019-08-23", "release_date_precision": "day", "total_tracks": 2, "type": "album", "uri": "spotify:album:37bCTD5iLWMpDcBanNkkXB"}, {"album_group": "single", "album_type": "single", "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/1vCWHaC5f2uS3yhpwWbIA6"}, "href": "https://api.spotify.com/v1/artists/1vCWHaC5f2uS3yhpwWbIA6", "id": "1vCWHaC5f2uS3yhpwWbIA6", "name": "Avicii", "type": "artist", "uri": "spotify:artist:1vCWHaC5f2uS3yhpwWbIA6"}], "external_urls": {"spotify": "https://open.spotify.com/album/7CvAfGvq4RlIwEbT9o8Iav"}, "href": "https://api.spotify.com/v1/albums/7CvAfGvq4RlIwEbT9o8Iav", "id": "7CvAfGvq4RlIwEbT9o8Iav", "images": [{"height": 640, "url": "https://i.scdn.co/image/fc52325821e3626ab74ee873aa5add2f61f73fd6", "width": 640}], "name": "Tough Love (Ti\u00ebsto Remix)", "release_date": "2019-06-14", "release_date_precision": "day", "total_tracks": 2, "type": "album", "uri": "spotify:album:7CvAfGvq4RlIwEbT9o8Iav"}], "limit": 2, "next": "https://api.spotify.com/v1/artists/1vCWHaC5f2uS3yhpwWbIA6/albums?offset=2&limit=2&include_groups=single&market=ES", "offset": 0, "previous": null, "total": 64}"#;
    const PLAYLIST: &str = r#"{"collaborative": false, "description": "A playlist for testing pourposes", "external_urls": {"spotify": "https://open.spotify.com/playlist/3cEYpjA9oz9GiPac4AsH4n"}, "href": "https://api.spotify.com/v1/playlists/3cEYpjA9oz9GiPac4AsH4n?locale=en-US%2Cen%3Bq%3D0.9", "id": "3cEYpjA9oz9GiPac4AsH4n", "images": [{"url": "https://image-cdn-ak.spotifycdn.com/image/ab67706c0000da848d0ce13d55f634e290f744ba", "height": null, "width": null}], "name": "Spotify Web API Testing playlist", "owner": {"external_urls": {"spotify": "https://open.spotify.com/user/jmperezperez"}, "href": "https://api.spotify.com/v1/users/jmperezperez", "id": "jmperezperez", "type": "user", "uri": "spotify:user:jmperezperez", "display_name": "JMPerez\u00b2"}, "public": true, "snapshot_id": "AAAAEur2+1I6iINI0+04uFfVLiVJraUQ", "items": {"href": "https://api.spotify.com/v1/playlists/3cEYpjA9oz9GiPac4AsH4n/items?offset=0&limit=100&locale=en-US,en;q%3D0.9", "limit": 100, "next": null, "offset": 0, "previous": null, "total": 5, "items": [{"added_at": "2015-01-15T12:39:22Z", "added_by": {"external_urls": {"spotify": "https://open.spotify.com/user/jmperezperez"}, "href": "https://api.spotify.com/v1/users/jmperezperez", "id": "jmperezperez", "type": "user", "uri": "spotify:user:jmperezperez"}, "is_local": false, "item": {"album": {"album_type": "compilation", "total_tracks": 20, "external_urls": {"spotify": "https://open.spotify.com/album/2pANdqPvxInB0YvcDiw4ko"}, "href": "https://api.spotify.com/v1/albums/2pANdqPvxInB0YvcDiw4ko", "id": "2pANdqPvxInB0YvcDiw4ko", "images": [{"url": "https://i.scdn.co/image/ab67616d0000b273ce6d0eef0c1ce77e5f95bbbc", "height": 640, "width": 640}, {"url": "https://i.scdn.co/image/ab67616d00001e02ce6d0eef0c1ce77e5f95bbbc", "height": 300, "width": 300}, {"url": "https://i.scdn.co/image/ab67616d00004851ce6d0eef0c1ce77e5f95bbbc", "height": 64, "width": 64}], "name": "Progressive Psy Trance Picks Vol.8", "release_date": "2012-04-02", "release_date_precision": "day", "type": "album", "uri": "spotify:album:2pANdqPvxInB0YvcDiw4ko", "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/0LyfQWJT6nXafLPZqxe9Of"}, "href": "https://api.spotify.com/v1/artists/0LyfQWJT6nXafLPZqxe9Of", "id": "0LyfQWJT6nXafLPZqxe9Of", "name": "Various Artists", "type": "artist", "uri": "spotify:artist:0LyfQWJT6nXafLPZqxe9Of"}]}, "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/6eSdhw46riw2OUHgMwR8B5"}, "href": "https://api.spotify.com/v1/artists/6eSdhw46riw2OUHgMwR8B5", "id": "6eSdhw46riw2OUHgMwR8B5", "name": "Odiseo", "type": "artist", "uri": "spotify:artist:6eSdhw46riw2OUHgMwR8B5"}], "disc_number": 1, "duration_ms": 376000, "explicit": false, "external_ids": {"isrc": "DEKC41200989"}, "external_urls": {"spotify": "https://open.spotify.com/track/4rzfv0JLZfVhOhbSQ8o5jZ"}, "href": "https://api.spotify.com/v1/tracks/4rzfv0JLZfVhOhbSQ8o5jZ", "id": "4rzfv0JLZfVhOhbSQ8o5jZ", "name": "Api", "popularity": 6, "preview_url": null, "track_number": 10, "type": "track", "uri": "spotify:track:4rzfv0JLZfVhOhbSQ8o5jZ", "is_local": false, "episode": false, "track": true}, "track": {"album": {"album_type": "compilation", "total_tracks": 20, "external_urls": {"spotify": "https://open.spotify.com/album/2pANdqPvxInB0YvcDiw4ko"}, "href": "https://api.spotify.com/v1/albums/2pANdqPvxInB0YvcDiw4ko", "id": "2pANdqPvxInB0YvcDiw4ko", "images": [{"url": "https://i.scdn.co/image/ab67616d0000b273ce6d0eef0c1ce77e5f95bbbc", "height": 640, "width": 640}, {"url": "https://i.scdn.co/image/ab67616d00001e02ce6d0eef0c1ce77e5f95bbbc", "height": 300, "width": 300}, {"url": "https://i.scdn.co/image/ab67616d00004851ce6d0eef0c1ce77e5f95bbbc", "height": 64, "width": 64}], "name": "Progressive Psy Trance Picks Vol.8", "release_date": "2012-04-02", "release_date_precision": "day", "type": "album", "uri": "spotify:album:2pANdqPvxInB0YvcDiw4ko", "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/0LyfQWJT6nXafLPZqxe9Of"}, "href": "https://api.spotify.com/v1/artists/0LyfQWJT6nXafLPZqxe9Of", "id": "0LyfQWJT6nXafLPZqxe9Of", "name": "Various Artists", "type": "artist", "uri": "spotify:artist:0LyfQWJT6nXafLPZqxe9Of"}]}, "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/6eSdhw46riw2OUHgMwR8B5"}, "href": "https://api.spotify.com/v1/artists/6eSdhw46riw2OUHgMwR8B5", "id": "6eSdhw46riw2OUHgMwR8B5", "name": "Odiseo", "type": "artist", "uri": "spotify:artist:6eSdhw46riw2OUHgMwR8B5"}], "disc_number": 1, "duration_ms": 376000, "explicit": false, "external_ids": {"isrc": "DEKC41200989"}, "external_urls": {"spotify": "https://open.spotify.com/track/4rzfv0JLZfVhOhbSQ8o5jZ"}, "href": "https://api.spotify.com/v1/tracks/4rzfv0JLZfVhOhbSQ8o5jZ", "id": "4rzfv0JLZfVhOhbSQ8o5jZ", "name": "Api", "popularity": 6, "preview_url": null, "track_number": 10, "type": "track", "uri": "spotify:track:4rzfv0JLZfVhOhbSQ8o5jZ", "is_local": false, "episode": false, "track": true}, "primary_color": null, "video_thumbnail": {"url": null}}]}, "tracks": {"href": "https://api.spotify.com/v1/playlists/3cEYpjA9oz9GiPac4AsH4n/tracks?offset=0&limit=100&locale=en-US,en;q%3D0.9", "limit": 100, "next": null, "offset": 0, "previous": null, "total": 5, "items": [{"added_at": "2015-01-15T12:39:22Z", "added_by": {"external_urls": {"spotify": "https://open.spotify.com/user/jmperezperez"}, "href": "https://api.spotify.com/v1/users/jmperezperez", "id": "jmperezperez", "type": "user", "uri": "spotify:user:jmperezperez"}, "is_local": false, "item": {"album": {"album_type": "compilation", "total_tracks": 20, "external_urls": {"spotify": "https://open.spotify.com/album/2pANdqPvxInB0YvcDiw4ko"}, "href": "https://api.spotify.com/v1/albums/2pANdqPvxInB0YvcDiw4ko", "id": "2pANdqPvxInB0YvcDiw4ko", "images": [{"url": "https://i.scdn.co/image/ab67616d0000b273ce6d0eef0c1ce77e5f95bbbc", "height": 640, "width": 640}, {"url": "https://i.scdn.co/image/ab67616d00001e02ce6d0eef0c1ce77e5f95bbbc", "height": 300, "width": 300}, {"url": "https://i.scdn.co/image/ab67616d00004851ce6d0eef0c1ce77e5f95bbbc", "height": 64, "width": 64}], "name": "Progressive Psy Trance Picks Vol.8", "release_date": "2012-04-02", "release_date_precision": "day", "type": "album", "uri": "spotify:album:2pANdqPvxInB0YvcDiw4ko", "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/0LyfQWJT6nXafLPZqxe9Of"}, "href": "https://api.spotify.com/v1/artists/0LyfQWJT6nXafLPZqxe9Of", "id": "0LyfQWJT6nXafLPZqxe9Of", "name": "Various Artists", "type": "artist", "uri": "spotify:artist:0LyfQWJT6nXafLPZqxe9Of"}]}, "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/6eSdhw46riw2OUHgMwR8B5"}, "href": "https://api.spotify.com/v1/artists/6eSdhw46riw2OUHgMwR8B5", "id": "6eSdhw46riw2OUHgMwR8B5", "name": "Odiseo", "type": "artist", "uri": "spotify:artist:6eSdhw46riw2OUHgMwR8B5"}], "disc_number": 1, "duration_ms": 376000, "explicit": false, "external_ids": {"isrc": "DEKC41200989"}, "external_urls": {"spotify": "https://open.spotify.com/track/4rzfv0JLZfVhOhbSQ8o5jZ"}, "href": "https://api.spotify.com/v1/tracks/4rzfv0JLZfVhOhbSQ8o5jZ", "id": "4rzfv0JLZfVhOhbSQ8o5jZ", "name": "Api", "popularity": 6, "preview_url": null, "track_number": 10, "type": "track", "uri": "spotify:track:4rzfv0JLZfVhOhbSQ8o5jZ", "is_local": false, "episode": false, "track": true}, "track": {"album": {"album_type": "compilation", "total_tracks": 20, "external_urls": {"spotify": "https://open.spotify.com/album/2pANdqPvxInB0YvcDiw4ko"}, "href": "https://api.spotify.com/v1/albums/2pANdqPvxInB0YvcDiw4ko", "id": "2pANdqPvxInB0YvcDiw4ko", "images": [{"url": "https://i.scdn.co/image/ab67616d0000b273ce6d0eef0c1ce77e5f95bbbc", "height": 640, "width": 640}, {"url": "https://i.scdn.co/image/ab67616d00001e02ce6d0eef0c1ce77e5f95bbbc", "height": 300, "width": 300}, {"url": "https://i.scdn.co/image/ab67616d00004851ce6d0eef0c1ce77e5f95bbbc", "height": 64, "width": 64}], "name": "Progressive Psy Trance Picks Vol.8", "release_date": "2012-04-02", "release_date_precision": "day", "type": "album", "uri": "spotify:album:2pANdqPvxInB0YvcDiw4ko", "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/0LyfQWJT6nXafLPZqxe9Of"}, "href": "https://api.spotify.com/v1/artists/0LyfQWJT6nXafLPZqxe9Of", "id": "0LyfQWJT6nXafLPZqxe9Of", "name": "Various Artists", "type": "artist", "uri": "spotify:artist:0LyfQWJT6nXafLPZqxe9Of"}]}, "artists": [{"external_urls": {"spotify": "https://open.spotify.com/artist/6eSdhw46riw2OUHgMwR8B5"}, "href": "https://api.spotify.com/v1/artists/6eSdhw46riw2OUHgMwR8B5", "id": "6eSdhw46riw2OUHgMwR8B5", "name": "Odiseo", "type": "artist", "uri": "spotify:artist:6eSdhw46riw2OUHgMwR8B5"}], "disc_number": 1, "duration_ms": 376000, "explicit": false, "external_ids": {"isrc": "DEKC41200989"}, "external_urls": {"spotify": "https://open.spotify.com/track/4rzfv0JLZfVhOhbSQ8o5jZ"}, "href": "https://api.spotify.com/v1/tracks/4rzfv0JLZfVhOhbSQ8o5jZ", "id": "4rzfv0JLZfVhOhbSQ8o5jZ", "name": "Api", "popularity": 6, "preview_url": null, "track_number": 10, "type": "track", "uri": "spotify:track:4rzfv0JLZfVhOhbSQ8o5jZ", "is_local": false, "episode": false, "track": true}, "primary_color": null, "video_thumbnail": {"url": null}}]}, "type": "playlist", "uri": "spotify:playlist:3cEYpjA9oz9GiPac4AsH4n", "followers": {"href": null, "total": 1475}, "primary_color": null}"#;
    const TOKEN: &str = r#"{"access_token":"fixture-access-token","token_type":"Bearer","scope":"playlist-modify-private","expires_in":3600,"refresh_token":"fixture-refresh-token"}"#;

    fn template(text: &str) -> Value {
        serde_json::from_str(text).expect("a valid template")
    }

    /// Decodes `body` as every response type and converts what decodes.
    fn decode_all(body: &str) {
        if let Ok(w) = decode::<WArtist>("artist", body) {
            let _ = convert::<_, crate::spotify::model::Artist>("artist", w);
        }
        if let Ok(w) = decode::<WTrack>("track", body) {
            let _ = convert::<_, crate::spotify::model::Track>("track", w);
        }
        if let Ok(w) = decode::<WAlbum>("album", body) {
            let _ = convert::<_, crate::spotify::model::Album>("album", w);
        }
        let _ = decode::<WPage<WAlbum>>("artist.albums", body);
        if let Ok(w) = decode::<WPlaylist>("playlist", body) {
            let _ = convert::<_, crate::spotify::model::Playlist>("playlist", w);
        }
        if let Ok(token) = decode::<TokenResponse>("token.refresh", body) {
            // The token's lifetime comes from outside too: any `expires_in` must be usable.
            let _ = token.into_access();
        }
        let _ = error_message(body);
        let _ = oauth_error(body);
    }

    #[test]
    fn templates_decode() {
        assert!(decode::<WArtist>("artist", ARTIST).is_ok());
        assert!(decode::<WTrack>("track", TRACK).is_ok());
        assert!(decode::<WPage<WAlbum>>("artist.albums", ALBUMS_PAGE).is_ok());
        assert!(decode::<WPlaylist>("playlist", PLAYLIST).is_ok());
        assert!(decode::<TokenResponse>("token", TOKEN).is_ok());
    }

    #[test]
    fn a_tracks_markets_and_restriction_are_kept_as_given() {
        let listed = Track::try_from(decode::<WTrack>("track", TRACK).unwrap()).unwrap();
        // The recording lists no market: an empty list, not an unknown one.
        assert_eq!(listed.available_markets, Some(vec![]));
        assert_eq!((listed.playable, listed.restriction), (None, None));
        // Asked with `market`: no list, `is_playable` and `restrictions` instead.
        let mut v: serde_json::Value = serde_json::from_str(TRACK).unwrap();
        v.as_object_mut().unwrap().remove("available_markets");
        v["is_playable"] = serde_json::json!(false);
        v["restrictions"] = serde_json::json!({"reason": "market"});
        let relinked = Track::try_from(decode::<WTrack>("track", &v.to_string()).unwrap()).unwrap();
        assert_eq!(relinked.available_markets, None);
        assert_eq!(relinked.playable, Some(false));
        assert_eq!(relinked.restriction.as_deref(), Some("market"));
    }

    proptest! {
        #[test]
        fn near_valid_artists_never_panic(v in near(template(ARTIST))) {
            decode_all(&v.to_string());
        }

        #[test]
        fn near_valid_tracks_never_panic(v in near(template(TRACK))) {
            decode_all(&v.to_string());
        }

        #[test]
        fn near_valid_album_pages_never_panic(v in near(template(ALBUMS_PAGE))) {
            decode_all(&v.to_string());
        }

        #[test]
        fn near_valid_playlists_never_panic(v in near(template(PLAYLIST))) {
            decode_all(&v.to_string());
        }

        #[test]
        fn near_valid_token_responses_never_panic(v in near(template(TOKEN))) {
            decode_all(&v.to_string());
        }

        #[test]
        fn any_token_lifetime_is_usable(expires_in in any::<u64>()) {
            let body = format!(r#"{{"access_token":"t","expires_in":{expires_in}}}"#);
            let token = decode::<TokenResponse>("token", &body).expect("decodes");
            let _ = token.into_access();
        }

        #[test]
        fn any_json_never_panics(v in arb_json()) {
            decode_all(&v.to_string());
        }

        #[test]
        fn any_text_never_panics(text in arb_text()) {
            decode_all(&text);
        }
    }
}
