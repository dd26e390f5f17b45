//! Local secrets: from environment variables, or from a JSON file of name to value.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::error::PortError;
use crate::ports::Secrets;

fn missing(operation: &'static str, what: String) -> PortError {
    PortError::permanent(
        operation,
        std::io::Error::new(std::io::ErrorKind::NotFound, what),
    )
}

/// Secrets from environment variables: the secret `spotify/credentials` is read from
/// `SECRET_SPOTIFY_CREDENTIALS` (upper case, non-alphanumerics as `_`). Writes stay in memory.
#[derive(Default)]
pub struct EnvSecrets {
    overrides: Mutex<BTreeMap<String, SecretString>>,
}

impl EnvSecrets {
    /// Secrets read from the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// The variable that holds the secret `name`.
    pub fn variable(name: &str) -> String {
        let suffix: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("SECRET_{suffix}")
    }
}

#[async_trait]
impl Secrets for EnvSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, PortError> {
        if let Some(value) = self
            .overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(value.clone());
        }
        let variable = Self::variable(name);
        std::env::var(&variable)
            .map(SecretString::from)
            .map_err(|_| {
                missing(
                    "secrets.get",
                    format!("secret {name}: variable {variable} is not set"),
                )
            })
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), PortError> {
        self.overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), value.clone());
        Ok(())
    }
}

/// Secrets in a JSON file `{"name": "value", ...}`, rewritten atomically on `put`.
pub struct FileSecrets {
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileSecrets {
    /// Secrets kept in the file at `path` (created on the first `put`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn load(&self) -> Result<BTreeMap<String, String>, PortError> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                // serde's message names the position, never the content.
                PortError::permanent(
                    "secrets.load",
                    std::io::Error::other(format!(
                        "{} is not a JSON object of strings: {err}",
                        self.path.display()
                    )),
                )
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(err) => Err(PortError::permanent("secrets.load", err)),
        }
    }
}

#[async_trait]
impl Secrets for FileSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, PortError> {
        let _guard = self.lock.lock().await;
        self.load()
            .await?
            .remove(name)
            .map(SecretString::from)
            .ok_or_else(|| {
                missing(
                    "secrets.get",
                    format!("secret {name} is not in {}", self.path.display()),
                )
            })
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), PortError> {
        let _guard = self.lock.lock().await;
        let mut all = self.load().await?;
        all.insert(name.to_owned(), value.expose_secret().to_owned());
        let text = serde_json::to_vec_pretty(&all)
            .map_err(|err| PortError::permanent("secrets.put", err))?;
        let tmp = self.path.with_extension("tmp");
        tokio::fs::write(&tmp, text)
            .await
            .map_err(|err| PortError::permanent("secrets.put", err))?;
        tokio::fs::rename(&tmp, &self.path)
            .await
            .map_err(|err| PortError::permanent("secrets.put", err))
    }
}
