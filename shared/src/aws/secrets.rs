//! [`Secrets`] on AWS Secrets Manager (string secrets). Wrap it in
//! [`CachedSecrets`](crate::secrets_cache::CachedSecrets): every uncached `get` is an API call.
//!
//! Values only ever live in [`SecretString`]s; errors carry AWS's code and message, which
//! never contain the value.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use secrecy::{ExposeSecret, SecretString};

use super::{adapter_error, sdk_error};
use crate::error::PortError;
use crate::ports::Secrets;

/// Secrets in Secrets Manager, by name or ARN.
#[derive(Clone, Debug)]
pub struct SecretsManagerSecrets {
    client: Client,
}

impl SecretsManagerSecrets {
    /// Secrets through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Secrets for SecretsManagerSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, PortError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|err| sdk_error("secrets.get", err))?;
        output.secret_string.map(SecretString::from).ok_or_else(|| {
            adapter_error("secrets.get", format!("secret {name} has no string value")).permanent()
        })
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), PortError> {
        // A new version of an existing secret (AWSCURRENT moves to it); the secret is created
        // on first write, as the local adapters do.
        let result = self
            .client
            .put_secret_value()
            .secret_id(name)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(PutSecretValueError::ResourceNotFoundException(_))
                ) =>
            {
                self.client
                    .create_secret()
                    .name(name)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|err| sdk_error("secrets.create", err))?;
                Ok(())
            }
            Err(err) => Err(sdk_error("secrets.put", err)),
        }
    }
}
