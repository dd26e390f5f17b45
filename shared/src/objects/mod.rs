//! Routing object fetches by scheme to the adapters a deployment has, and (feature `http`) the
//! https adapter.
//!
//! A Lambda function is given S3 and https; the local CLI paths and https. A location whose
//! scheme has no adapter here is refused with a message saying so, never silently dropped.

#[cfg(feature = "http")]
mod http;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::PortError;
use crate::ports::{FetchedObject, ObjectLocation, ObjectSource};

#[cfg(feature = "http")]
pub use http::HttpObjects;

/// An [`ObjectSource`] that hands each location to the adapter of its scheme.
#[derive(Clone, Default)]
pub struct ObjectRouter {
    s3: Option<Arc<dyn ObjectSource>>,
    https: Option<Arc<dyn ObjectSource>>,
    paths: Option<Arc<dyn ObjectSource>>,
}

impl ObjectRouter {
    /// A router that serves nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `s3://` locations with `source`.
    pub fn with_s3(mut self, source: Arc<dyn ObjectSource>) -> Self {
        self.s3 = Some(source);
        self
    }

    /// Serves `https://` (and loopback `http://`) locations with `source`.
    pub fn with_https(mut self, source: Arc<dyn ObjectSource>) -> Self {
        self.https = Some(source);
        self
    }

    /// Serves file paths with `source` (the local CLI only: a deployed function never reads
    /// a path a message names).
    pub fn with_paths(mut self, source: Arc<dyn ObjectSource>) -> Self {
        self.paths = Some(source);
        self
    }
}

#[async_trait]
impl ObjectSource for ObjectRouter {
    async fn fetch(
        &self,
        location: &ObjectLocation,
        max_bytes: u64,
    ) -> Result<FetchedObject, PortError> {
        let source = match location {
            ObjectLocation::S3 { .. } => &self.s3,
            ObjectLocation::Https { .. } => &self.https,
            ObjectLocation::Path(_) => &self.paths,
        };
        match source {
            Some(source) => source.fetch(location, max_bytes).await,
            None => Err(unserved(location)),
        }
    }
}

/// The error for a location whose scheme this source does not serve.
pub fn unserved(location: &ObjectLocation) -> PortError {
    PortError::permanent(
        "objects.fetch",
        format!(
            "{location}: {} locations are not served here",
            location.scheme()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Classify, ErrorClass, chain};

    struct Fixed(&'static str);

    #[async_trait]
    impl ObjectSource for Fixed {
        async fn fetch(
            &self,
            location: &ObjectLocation,
            _max_bytes: u64,
        ) -> Result<FetchedObject, PortError> {
            Err(PortError::permanent(
                "objects.fetch",
                format!("{} asked for {location}", self.0),
            ))
        }
    }

    #[tokio::test]
    async fn each_scheme_goes_to_its_adapter_and_the_rest_is_refused() {
        let router = ObjectRouter::new()
            .with_s3(Arc::new(Fixed("s3")))
            .with_https(Arc::new(Fixed("https")));
        let s3 = router
            .fetch(&"s3://bucket/k".parse().unwrap(), 1)
            .await
            .unwrap_err();
        assert!(chain(&s3).contains("s3 asked for s3://bucket/k"));
        let https = router
            .fetch(&"https://h/x".parse().unwrap(), 1)
            .await
            .unwrap_err();
        assert!(chain(&https).contains("https asked for https://h/x"));
        let path = router
            .fetch(&"/etc/passwd".parse().unwrap(), 1)
            .await
            .unwrap_err();
        assert_eq!(path.class(), ErrorClass::Permanent);
        assert!(
            chain(&path).contains("/etc/passwd: path locations are not served here"),
            "{}",
            chain(&path)
        );
    }
}
