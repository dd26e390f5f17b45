//! Files named by path, for the local CLI (`analyze FILE`, `ingest FILE`).

#[cfg(feature = "http")]
use std::time::Duration;

use async_trait::async_trait;

use crate::error::PortError;
use crate::objects::unserved;
use crate::ports::{FetchedObject, ObjectLocation, ObjectSource};

/// Serves [`ObjectLocation::Path`] locations from this machine's file system, read in place.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileObjects;

#[async_trait]
impl ObjectSource for FileObjects {
    async fn fetch(
        &self,
        location: &ObjectLocation,
        max_bytes: u64,
    ) -> Result<FetchedObject, PortError> {
        let ObjectLocation::Path(path) = location else {
            return Err(unserved(location));
        };
        let path = path.clone();
        // Hashing reads the whole file: off the async threads.
        tokio::task::spawn_blocking(move || FetchedObject::local_file(path, max_bytes))
            .await
            .map_err(|err| PortError::transient("objects.fetch", err))?
    }
}

/// The object source of the local CLI: paths, and https when built with it.
pub fn local_objects() -> Result<crate::objects::ObjectRouter, PortError> {
    let router = crate::objects::ObjectRouter::new().with_paths(std::sync::Arc::new(FileObjects));
    #[cfg(feature = "http")]
    let router = router.with_https(std::sync::Arc::new(crate::objects::HttpObjects::new(
        Duration::from_secs(10),
        Duration::from_secs(300),
    )?));
    Ok(router)
}
