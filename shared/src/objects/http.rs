//! `https://` objects on reqwest (rustls): streamed to a spool, capped, with timeouts.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::PortError;
use crate::ports::{FetchedObject, ObjectLocation, ObjectSource, Spool};

use super::unserved;

const OP: &str = "objects.fetch";

/// Fetches `https://` locations (and `http://` to loopback hosts).
#[derive(Debug, Clone)]
pub struct HttpObjects {
    client: reqwest::Client,
}

impl HttpObjects {
    /// A client that gives up connecting after `connect_timeout` and on the whole transfer
    /// after `timeout`, and follows at most five redirects.
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<Self, PortError> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("music-tasks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| PortError::permanent("objects.http_client", err))?;
        Ok(Self { client })
    }
}

#[async_trait]
impl ObjectSource for HttpObjects {
    async fn fetch(
        &self,
        location: &ObjectLocation,
        max_bytes: u64,
    ) -> Result<FetchedObject, PortError> {
        let ObjectLocation::Https { url } = location else {
            return Err(unserved(location));
        };
        let mut response = self.client.get(url).send().await.map_err(|err| {
            // Connection refused, DNS failure, timeout: the host may come back.
            PortError::transient(OP, format!("{location}: {}", without_url(&err)))
        })?;
        let status = response.status();
        if !status.is_success() {
            let message = format!("{location}: HTTP {status}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                PortError::transient(OP, message)
            } else if status.as_u16() == 404 || status.as_u16() == 410 {
                PortError::permanent(OP, format!("{location}: not found (HTTP {status})"))
            } else {
                PortError::permanent(OP, message)
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut spool = Spool::new(location, max_bytes, response.content_length(), content_type)?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| PortError::transient(OP, format!("{location}: {}", without_url(&err))))?
        {
            spool.write(&chunk)?;
        }
        spool.finish()
    }
}

/// reqwest's message without the URL it repeats (the caller names the location once, and a
/// signed URL's query string should not travel into logs twice).
fn without_url(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_redirect() {
        "too many redirects"
    } else if err.is_body() || err.is_decode() {
        "the body was cut off"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    format!("{kind}{detail}")
}
