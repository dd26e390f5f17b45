//! [`ObjectSource`] on S3: `GetObject` streamed to a spool, capped by the declared length
//! before a byte is read and by the bytes as they arrive.

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::error::PortError;
use crate::objects::unserved;
use crate::ports::{FetchedObject, ObjectLocation, ObjectSource, Spool};

use super::sdk_error;

const OP: &str = "s3.GetObject";

/// Reads `s3://` locations with the function's role.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
}

impl S3Objects {
    /// The adapter on `client`.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl ObjectSource for S3Objects {
    async fn fetch(
        &self,
        location: &ObjectLocation,
        max_bytes: u64,
    ) -> Result<FetchedObject, PortError> {
        let ObjectLocation::S3 { bucket, key } = location else {
            return Err(unserved(location));
        };
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| {
                let code = err.code().map(str::to_owned);
                match code.as_deref() {
                    Some("NoSuchKey") | Some("NoSuchBucket") => PortError::permanent(
                        OP,
                        format!("{location}: not found ({})", code.unwrap_or_default()),
                    ),
                    _ => sdk_error(OP, err),
                }
            })?;
        let declared = output
            .content_length()
            .and_then(|len| u64::try_from(len).ok());
        let mut spool = Spool::new(
            location,
            max_bytes,
            declared,
            output.content_type().map(str::to_owned),
        )?;
        let mut body = output.body;
        while let Some(chunk) = body.try_next().await.map_err(|err| {
            PortError::transient(OP, format!("{location}: the body was cut off: {err}"))
        })? {
            spool.write(&chunk)?;
        }
        spool.finish()
    }
}

/// The S3 client configuration from the shared SDK configuration. Path-style addressing when
/// an endpoint is overridden (the emulator on loopback has no per-bucket host names); the
/// real S3 keeps virtual-hosted style.
pub fn s3_config(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some())
}

/// An S3 client on `sdk` (see [`s3_config`]).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(s3_config(sdk).build())
}
