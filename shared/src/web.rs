//! The HTTP adapter of [`WebApi`] on reqwest (rustls): base URL per upstream, a descriptive
//! User-Agent, timeouts and a cap on the body read.
//!
//! URLs are never put in errors or logs: a query may carry an API key. reqwest's own errors
//! are stripped of their URL for the same reason.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret;

use crate::error::PortError;
use crate::ports::{WebApi, WebRequest, WebResponse};

const OP: &str = "web.get";

/// Most bytes read of one response body.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// GETs from configured upstreams.
#[derive(Debug, Clone)]
pub struct HttpWeb {
    client: reqwest::Client,
    bases: BTreeMap<String, String>,
}

impl HttpWeb {
    /// A client sending `user_agent` (MusicBrainz requires one that names the application and
    /// a contact), giving up on a request after `timeout`, with `bases` mapping upstream
    /// names to base URLs (no trailing slash).
    pub fn new(
        user_agent: &str,
        timeout: Duration,
        bases: BTreeMap<String, String>,
    ) -> Result<Self, PortError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(user_agent)
            .build()
            .map_err(|err| PortError::permanent("web.client", err))?;
        let bases = bases
            .into_iter()
            .map(|(k, v)| (k, v.trim_end_matches('/').to_owned()))
            .collect();
        Ok(Self { client, bases })
    }

    /// The base URL of `upstream`, if configured.
    pub fn base(&self, upstream: &str) -> Option<&str> {
        self.bases.get(upstream).map(String::as_str)
    }
}

#[async_trait]
impl WebApi for HttpWeb {
    async fn get(&self, request: &WebRequest) -> Result<WebResponse, PortError> {
        let base = self.bases.get(request.upstream).ok_or_else(|| {
            PortError::permanent(
                OP,
                format!("no base URL configured for upstream {:?}", request.upstream),
            )
        })?;
        let mut query: Vec<(&str, &str)> = request
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some((name, value)) = &request.secret_query {
            query.push((name, value.expose_secret()));
        }
        let mut builder = self
            .client
            .get(format!("{base}{}", request.path))
            .query(&query);
        if let Some(token) = &request.bearer {
            builder = builder.bearer_auth(token.expose_secret());
        }
        let what = format!("{} {}", request.upstream, request.path);
        let mut response = builder
            .send()
            .await
            .map_err(|err| PortError::transient(OP, format!("{what}: {}", err.without_url())))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| {
            PortError::transient(
                OP,
                format!("{what}: reading the body: {}", err.without_url()),
            )
        })? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(PortError::permanent(
                    OP,
                    format!("{what}: body larger than {MAX_BODY_BYTES} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(WebResponse {
            status,
            body,
            retry_after,
        })
    }
}
