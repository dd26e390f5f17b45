//! `WebApi`: a GET to a named upstream JSON API (MusicBrainz, Wikidata, YouTube, ...).
//!
//! Tasks describe a request by upstream name, path and query; the adapter owns the base URLs,
//! the User-Agent, TLS and timeouts. Credentials travel as [`SecretString`]s so no adapter or
//! log can print them by accident. The adapter does not judge the answer: status, body and
//! `Retry-After` come back as they arrived, because several upstreams report errors with a
//! 200 status and only the task knows each one's envelope.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::error::PortError;

/// One GET request.
#[derive(Clone)]
pub struct WebRequest {
    /// The upstream's name, as configured in the adapter (`musicbrainz`, `youtube`).
    pub upstream: &'static str,
    /// The path below the upstream's base URL, starting with `/`.
    pub path: String,
    /// Query parameters (not secret; they may be logged).
    pub query: Vec<(String, String)>,
    /// A secret query parameter (an API key), never logged.
    pub secret_query: Option<(&'static str, SecretString)>,
    /// A bearer token, never logged.
    pub bearer: Option<SecretString>,
}

impl std::fmt::Debug for WebRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRequest")
            .field("upstream", &self.upstream)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("secret_query", &self.secret_query.as_ref().map(|(k, _)| k))
            .field("bearer", &self.bearer.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl WebRequest {
    /// A GET of `path` on `upstream` with no parameters.
    pub fn get(upstream: &'static str, path: impl Into<String>) -> Self {
        Self {
            upstream,
            path: path.into(),
            query: Vec::new(),
            secret_query: None,
            bearer: None,
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Sets the secret query parameter.
    pub fn secret_query(mut self, name: &'static str, value: SecretString) -> Self {
        self.secret_query = Some((name, value));
        self
    }

    /// Sets the bearer token.
    pub fn bearer(mut self, token: SecretString) -> Self {
        self.bearer = Some(token);
        self
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub struct WebResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body (bounded by the adapter).
    pub body: Vec<u8>,
    /// `Retry-After`, in seconds form, when sent.
    pub retry_after: Option<Duration>,
}

/// GETs from named upstream APIs.
#[async_trait]
pub trait WebApi: Send + Sync {
    /// Sends `request`; transport failures (connect, timeout, oversize body) are errors, any
    /// HTTP status is a response.
    async fn get(&self, request: &WebRequest) -> Result<WebResponse, PortError>;
}
