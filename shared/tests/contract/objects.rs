//! `ObjectSource`: local files, S3 (on moto) and https (a loopback axum server) answer alike:
//! the bytes and their hash, a clear permanent error for a missing object and for one over the
//! size limit, and a refusal for a scheme the adapter does not serve.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use backbone::error::{Classify, ErrorClass, chain};
use backbone::hash::sha256_hex;
use backbone::ports::{ObjectLocation, ObjectSource};

/// What the loopback server serves, by path.
type Served = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// Puts bytes where one adapter can read them, and names the location of a missing object.
#[async_trait]
trait Place: Send + Sync {
    async fn put(&self, name: &str, bytes: Vec<u8>) -> ObjectLocation;
    fn missing(&self) -> ObjectLocation;
}

macro_rules! objects_contract {
    ($($scenario:ident),* $(,)?) => { $(
        mod $scenario {
            #[tokio::test]
            async fn files() {
                let (source, place) = super::files();
                super::$scenario(source, place).await;
            }

            #[tokio::test]
            async fn s3() {
                let sdk = crate::require_moto!();
                let (source, place) = super::s3(&sdk).await;
                super::$scenario(source, place).await;
            }

            #[tokio::test]
            async fn https() {
                let (source, place) = super::https().await;
                super::$scenario(source, place).await;
            }
        }
    )* };
}

objects_contract!(
    bytes_arrive_with_their_hash,
    a_missing_object_is_permanent_and_named,
    an_object_over_the_limit_is_refused,
    other_schemes_are_refused,
);

async fn bytes_arrive_with_their_hash(source: Arc<dyn ObjectSource>, place: Arc<dyn Place>) {
    // Larger than any single read or network chunk, so the spool sees several.
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let location = place
        .put("reports/Nov 2026 (final).csv", bytes.clone())
        .await;
    let object = source.fetch(&location, 1_000_000).await.unwrap();
    assert_eq!(object.size(), bytes.len() as u64);
    assert_eq!(object.sha256(), sha256_hex(&bytes));
    assert_eq!(std::fs::read(object.path()).unwrap(), bytes);

    let empty = place.put("empty.wav", Vec::new()).await;
    let object = source.fetch(&empty, 10).await.unwrap();
    assert_eq!(object.size(), 0);
    assert_eq!(object.sha256(), sha256_hex(""));
}

async fn a_missing_object_is_permanent_and_named(
    source: Arc<dyn ObjectSource>,
    place: Arc<dyn Place>,
) {
    let missing = place.missing();
    let err = source.fetch(&missing, 10).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{}", chain(&err));
    assert!(
        chain(&err).contains(&missing.to_string()),
        "the error names the location: {}",
        chain(&err)
    );
}

async fn an_object_over_the_limit_is_refused(source: Arc<dyn ObjectSource>, place: Arc<dyn Place>) {
    let location = place.put("big.flac", vec![1u8; 5000]).await;
    let err = source.fetch(&location, 4999).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{}", chain(&err));
    assert!(
        chain(&err).contains("over the limit of 4999 bytes"),
        "{}",
        chain(&err)
    );
    // At the limit exactly it is fine.
    assert_eq!(source.fetch(&location, 5000).await.unwrap().size(), 5000);
}

async fn other_schemes_are_refused(source: Arc<dyn ObjectSource>, place: Arc<dyn Place>) {
    let own = place.missing().scheme();
    for other in ["s3://bucket/key", "https://example.invalid/x", "/tmp/x"] {
        let location: ObjectLocation = other.parse().unwrap();
        if location.scheme() == own {
            continue;
        }
        let err = source.fetch(&location, 10).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert!(chain(&err).contains("not served here"), "{}", chain(&err));
    }
}

// --- local files ---

struct FilePlace(tempfile::TempDir);

#[async_trait]
impl Place for FilePlace {
    async fn put(&self, name: &str, bytes: Vec<u8>) -> ObjectLocation {
        let path = self.0.path().join(name.replace('/', "_"));
        std::fs::write(&path, bytes).unwrap();
        ObjectLocation::Path(path)
    }

    fn missing(&self) -> ObjectLocation {
        ObjectLocation::Path(self.0.path().join("missing.csv"))
    }
}

fn files() -> (Arc<dyn ObjectSource>, Arc<dyn Place>) {
    (
        Arc::new(backbone::local::FileObjects),
        Arc::new(FilePlace(tempfile::tempdir().unwrap())),
    )
}

// --- S3 on moto ---

struct S3Place {
    client: aws_sdk_s3::Client,
    bucket: String,
}

#[async_trait]
impl Place for S3Place {
    async fn put(&self, name: &str, bytes: Vec<u8>) -> ObjectLocation {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(name)
            .body(bytes.into())
            .send()
            .await
            .unwrap();
        ObjectLocation::s3(&self.bucket, name).unwrap()
    }

    fn missing(&self) -> ObjectLocation {
        ObjectLocation::s3(&self.bucket, "no/such/key.csv").unwrap()
    }
}

async fn s3(sdk: &aws_config::SdkConfig) -> (Arc<dyn ObjectSource>, Arc<dyn Place>) {
    let client = backbone::aws::s3_client(sdk);
    let bucket = crate::helpers::unique("objects").to_lowercase();
    let bucket = bucket[..bucket.len().min(63)].to_owned();
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    (
        Arc::new(backbone::aws::S3Objects::new(client.clone())),
        Arc::new(S3Place { client, bucket }),
    )
}

// --- https (plain http on loopback, which the location type allows) ---

struct HttpPlace {
    base: String,
    files: Served,
}

#[async_trait]
impl Place for HttpPlace {
    async fn put(&self, name: &str, bytes: Vec<u8>) -> ObjectLocation {
        let path = name.replace(' ', "%20").replace(['(', ')'], "_");
        self.files.lock().unwrap().insert(format!("/{path}"), bytes);
        format!("{}/{path}", self.base).parse().unwrap()
    }

    fn missing(&self) -> ObjectLocation {
        format!("{}/missing.csv", self.base).parse().unwrap()
    }
}

async fn https() -> (Arc<dyn ObjectSource>, Arc<dyn Place>) {
    use axum::extract::State;
    use axum::http::{StatusCode, Uri};

    let files: Served = Arc::default();
    let app = axum::Router::new()
        .fallback(|State(files): State<Served>, uri: Uri| async move {
            match files.lock().unwrap().get(uri.path()) {
                Some(bytes) => Ok(bytes.clone()),
                None => Err(StatusCode::NOT_FOUND),
            }
        })
        .with_state(files.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let source = backbone::objects::HttpObjects::new(
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    (Arc::new(source), Arc::new(HttpPlace { base, files }))
}

#[tokio::test]
async fn an_unreachable_host_is_transient() {
    // A port nothing listens on: bind one, learn it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = backbone::objects::HttpObjects::new(
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let location: ObjectLocation = format!("http://127.0.0.1:{port}/a.mp3").parse().unwrap();
    let err = source.fetch(&location, 10).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{}", chain(&err));
    assert!(chain(&err).contains("could not connect"), "{}", chain(&err));
}
