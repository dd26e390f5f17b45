//! `Secrets`: credentials by name. Values are [`SecretString`]s, whose `Debug` prints nothing.

use async_trait::async_trait;
use secrecy::SecretString;

use crate::error::PortError;

/// A secret store.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The current value of the secret `name`.
    async fn get(&self, name: &str) -> Result<SecretString, PortError>;

    /// Replaces the value of `name` (a rotated refresh token).
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), PortError>;
}
