//! `tasks auth`: Spotify's authorization-code flow with a loopback redirect, ending in the
//! credentials secret `{"client_id", "client_secret", "refresh_token"}` the functions read.
//!
//! The operator opens the printed authorize URL, consents, and Spotify redirects the browser
//! to `http://127.0.0.1:<port>/callback` (register that exact URI in the app's settings), where
//! this module listens for one request, checks its `state`, exchanges the code at
//! `<auth base>/api/token` and returns the credentials. Nothing secret is ever printed or
//! logged: the client secret, the code and the tokens stay in [`SecretString`]s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use backbone::ports::Secrets;
use backbone::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The scopes the functions need: data-sync reads listening history and the user's private
/// and collaborative playlists; playlist-update writes the user's public and private
/// playlists; artist-monitoring needs none (catalog data only).
pub const SCOPES: &[&str] = &[
    "user-read-recently-played",
    "playlist-read-private",
    "playlist-read-collaborative",
    "playlist-modify-public",
    "playlist-modify-private",
];

/// The path the loopback listener answers.
pub const CALLBACK_PATH: &str = "/callback";

/// Why the authorization did not complete.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The authorize URL could not be built from the accounts base URL.
    #[error("SPOTIFY_AUTH_BASE_URL is not a usable URL: {0}")]
    BaseUrl(String),
    /// The loopback listener failed.
    #[error("the loopback redirect listener failed: {0}")]
    Listener(#[source] std::io::Error),
    /// Nobody came back to the redirect in time.
    #[error("no redirect reached {redirect_uri} within {seconds} s")]
    Timeout {
        /// The redirect URI waited on.
        redirect_uri: String,
        /// The wait.
        seconds: u64,
    },
    /// The user (or Spotify) refused: the redirect carried `error`.
    #[error("the authorization was refused: {0}")]
    Refused(String),
    /// The redirect's `state` is not the one sent: a forged or stale redirect.
    #[error(
        "the redirect's state does not match the request's: refusing a possibly forged redirect"
    )]
    StateMismatch,
    /// The redirect carried no code.
    #[error("the redirect carried no authorization code")]
    NoCode,
    /// The token endpoint could not be reached.
    #[error("the token endpoint could not be reached: {0}")]
    Http(#[source] reqwest::Error),
    /// The token endpoint refused the exchange.
    #[error("the token endpoint refused the code exchange ({status}): {error}")]
    Exchange {
        /// HTTP status.
        status: u16,
        /// The OAuth `error` and `error_description` (never a token).
        error: String,
    },
    /// The token response had no refresh token.
    #[error("the token response carried no refresh token")]
    NoRefreshToken,
    /// The secret could not be stored.
    #[error("the credentials could not be stored in secret {secret_id}: {source}")]
    Store {
        /// The secret.
        secret_id: String,
        /// The port's error.
        #[source]
        source: backbone::error::PortError,
    },
}

/// The app's credentials, as the operator supplies them.
pub struct AppCredentials {
    /// The client id (not secret, but kept with the rest in the secret).
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .finish()
    }
}

/// The authorize URL for `client_id`, redirecting to `redirect_uri`, carrying `state`.
pub fn authorize_url(
    auth_base_url: &str,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
) -> Result<reqwest::Url, AuthError> {
    let base = auth_base_url.trim_end_matches('/');
    reqwest::Url::parse_with_params(
        &format!("{base}/authorize"),
        &[
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("scope", &SCOPES.join(" ")),
            ("state", state),
        ],
    )
    .map_err(|e| AuthError::BaseUrl(e.to_string()))
}

type Sender = Arc<Mutex<Option<oneshot::Sender<HashMap<String, String>>>>>;

async fn callback(
    State(sender): State<Sender>,
    Query(query): Query<HashMap<String, String>>,
) -> Html<&'static str> {
    let refused = query.contains_key("error");
    if let Some(tx) = sender.lock().unwrap_or_else(|p| p.into_inner()).take() {
        // The receiver is gone only when the wait already timed out; nothing to do then.
        let _ = tx.send(query);
    }
    Html(if refused {
        "<p>The authorization was refused. You can close this window.</p>"
    } else {
        "<p>Received. You can close this window and return to the terminal.</p>"
    })
}

/// Waits on `listener` for the one redirect of the flow and returns its query parameters.
async fn wait_for_redirect(
    listener: TcpListener,
    redirect_uri: &str,
    timeout: Duration,
) -> Result<HashMap<String, String>, AuthError> {
    let (tx, rx) = oneshot::channel();
    let sender: Sender = Arc::new(Mutex::new(Some(tx)));
    let app = Router::new()
        .route(CALLBACK_PATH, get(callback))
        .with_state(sender);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    let outcome = tokio::time::timeout(timeout, rx).await;
    let _ = stop_tx.send(());
    // The browser's connection gets its answer before the server stops.
    match server.await {
        Ok(Err(e)) => return Err(AuthError::Listener(e)),
        Err(e) => return Err(AuthError::Listener(std::io::Error::other(e))),
        Ok(Ok(())) => {}
    }
    match outcome {
        Ok(Ok(query)) => Ok(query),
        _ => Err(AuthError::Timeout {
            redirect_uri: redirect_uri.to_owned(),
            seconds: timeout.as_secs(),
        }),
    }
}

/// Runs the flow: builds the authorize URL (handed to `show`, which prints it), waits on
/// `listener` for the redirect, checks `state`, exchanges the code, and returns the
/// credentials secret's JSON text.
pub async fn run(
    auth_base_url: &str,
    app: &AppCredentials,
    listener: TcpListener,
    timeout: Duration,
    show: impl FnOnce(&str),
) -> Result<SecretString, AuthError> {
    let addr = listener.local_addr().map_err(AuthError::Listener)?;
    let redirect_uri = format!("http://{addr}{CALLBACK_PATH}");
    let state = uuid::Uuid::new_v4().simple().to_string();
    let url = authorize_url(auth_base_url, &app.client_id, &redirect_uri, &state)?;
    show(url.as_str());

    let query = wait_for_redirect(listener, &redirect_uri, timeout).await?;
    if let Some(error) = query.get("error") {
        return Err(AuthError::Refused(error.clone()));
    }
    if query.get("state").map(String::as_str) != Some(state.as_str()) {
        return Err(AuthError::StateMismatch);
    }
    let code = SecretString::from(query.get("code").cloned().ok_or(AuthError::NoCode)?);
    let refresh_token = exchange(auth_base_url, app, &code, &redirect_uri).await?;
    let secret = serde_json::json!({
        "client_id": app.client_id,
        "client_secret": app.client_secret.expose_secret(),
        "refresh_token": refresh_token.expose_secret(),
    });
    Ok(SecretString::from(secret.to_string()))
}

/// Exchanges `code` at the token endpoint; returns the refresh token.
async fn exchange(
    auth_base_url: &str,
    app: &AppCredentials,
    code: &SecretString,
    redirect_uri: &str,
) -> Result<SecretString, AuthError> {
    let base = auth_base_url.trim_end_matches('/');
    let response = reqwest::Client::new()
        .post(format!("{base}/api/token"))
        .basic_auth(&app.client_id, Some(app.client_secret.expose_secret()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", redirect_uri),
        ])
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| AuthError::Http(e.without_url()))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| AuthError::Http(e.without_url()))?;
    if !status.is_success() {
        let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
        return Err(AuthError::Exchange {
            status: status.as_u16(),
            error: format!("{} {}", field("error"), field("error_description"))
                .trim()
                .to_owned(),
        });
    }
    body["refresh_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.to_owned()))
        .ok_or(AuthError::NoRefreshToken)
}

/// Stores the credentials JSON as `secret_id` through the Secrets port.
pub async fn store(
    secrets: &dyn Secrets,
    secret_id: &str,
    credentials: &SecretString,
) -> Result<(), AuthError> {
    secrets
        .put(secret_id, credentials)
        .await
        .map_err(|source| AuthError::Store {
            secret_id: secret_id.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_carries_every_parameter_encoded() {
        let url = authorize_url(
            "https://accounts.example/",
            "cid",
            "http://127.0.0.1:8888/callback",
            "s1",
        )
        .unwrap();
        let pairs: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/authorize");
        assert_eq!(pairs["redirect_uri"], "http://127.0.0.1:8888/callback");
        assert_eq!(pairs["scope"], SCOPES.join(" "));
        assert_eq!(pairs["response_type"], "code");
        assert_eq!(pairs["state"], "s1");
        assert!(matches!(
            authorize_url("not a url", "c", "r", "s"),
            Err(AuthError::BaseUrl(_))
        ));
    }

    #[test]
    fn app_credentials_debug_hides_the_secret() {
        let app = AppCredentials {
            client_id: "cid".into(),
            client_secret: SecretString::from("hunter2".to_owned()),
        };
        assert!(!format!("{app:?}").contains("hunter2"));
    }
}
