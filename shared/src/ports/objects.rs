//! `ObjectSource`: files the tasks read (audio, streaming reports) from S3, https or a path.
//!
//! An object is fetched to a local file, streamed and capped, never held whole in memory: a
//! decoder or CSV reader then streams from that file, and a 2 GB report or a 3-hour recording
//! costs disk (Lambda's `/tmp`), not memory. The SHA-256 of the content is computed while it is
//! written, so a task can key its idempotency on what it read.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::PortError;
use crate::validate::ValidationError;

/// The longest S3 object key, in bytes (S3's own limit).
const MAX_S3_KEY_BYTES: usize = 1024;
/// The longest location string accepted, in bytes.
const MAX_LOCATION_BYTES: usize = 4096;

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectLocation {
    /// An S3 object: `s3://bucket/key`.
    S3 {
        /// The bucket (S3's naming rules: 3 to 63 lowercase letters, digits, `.` and `-`).
        bucket: String,
        /// The key, as stored (not URL-encoded).
        key: String,
    },
    /// An `https://` URL (`http://` only to a loopback host, for local servers and tests).
    Https {
        /// The URL.
        url: String,
    },
    /// A file on this machine (the CLI's `analyze FILE`, `ingest FILE`).
    Path(PathBuf),
}

impl ObjectLocation {
    /// The S3 object `bucket`/`key`, validated.
    pub fn s3(bucket: impl Into<String>, key: impl Into<String>) -> Result<Self, ValidationError> {
        let (bucket, key) = (bucket.into(), key.into());
        validate_bucket(&bucket)?;
        if key.is_empty() {
            return Err(ValidationError::new(
                "location",
                "an S3 key cannot be empty",
            ));
        }
        if key.len() > MAX_S3_KEY_BYTES {
            return Err(ValidationError::new(
                "location",
                format!(
                    "an S3 key is at most {MAX_S3_KEY_BYTES} bytes, got {}",
                    key.len()
                ),
            ));
        }
        Ok(ObjectLocation::S3 { bucket, key })
    }

    /// The scheme, for messages and routing: `s3`, `https` or `path`.
    pub fn scheme(&self) -> &'static str {
        match self {
            ObjectLocation::S3 { .. } => "s3",
            ObjectLocation::Https { .. } => "https",
            ObjectLocation::Path(_) => "path",
        }
    }

    /// The last path segment (a file name), for labels and format detection by extension.
    pub fn file_name(&self) -> Option<&str> {
        let tail = match self {
            ObjectLocation::S3 { key, .. } => key.rsplit('/').next(),
            ObjectLocation::Https { url } => url
                .split(['?', '#'])
                .next()
                .and_then(|u| u.rsplit('/').next()),
            ObjectLocation::Path(path) => path.file_name().and_then(|n| n.to_str()),
        };
        tail.filter(|t| !t.is_empty())
    }
}

fn validate_bucket(bucket: &str) -> Result<(), ValidationError> {
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ok_ends = bucket
        .bytes()
        .next()
        .zip(bucket.bytes().last())
        .is_some_and(|(first, last)| first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric());
    if (3..=63).contains(&bucket.len()) && ok_chars && ok_ends {
        Ok(())
    } else {
        Err(ValidationError::new(
            "location",
            format!(
                "an S3 bucket name is 3 to 63 lowercase letters, digits, '.' and '-', \
                 starting and ending with a letter or digit; got {bucket:?}"
            ),
        ))
    }
}

/// Whether `authority` (host with optional port and user info) names a loopback host.
fn is_loopback_authority(authority: &str) -> bool {
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl FromStr for ObjectLocation {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| Err(ValidationError::new("location", reason));
        if s.is_empty() {
            return fail("an object location cannot be empty".to_owned());
        }
        if s.len() > MAX_LOCATION_BYTES {
            return fail(format!(
                "an object location is at most {MAX_LOCATION_BYTES} bytes, got {}",
                s.len()
            ));
        }
        if s.contains('\0') {
            return fail("an object location cannot contain a NUL character".to_owned());
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let Some((bucket, key)) = rest.split_once('/') else {
                return fail(format!("{s:?}: an S3 location is s3://bucket/key"));
            };
            return ObjectLocation::s3(bucket, key);
        }
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            let (scheme_len, https) = if lower.starts_with("https://") {
                (8, true)
            } else {
                (7, false)
            };
            let authority = s[scheme_len..].split(['/', '?', '#']).next().unwrap_or("");
            if authority.is_empty() {
                return fail(format!("{s:?}: a URL needs a host"));
            }
            if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return fail(format!(
                    "{s:?}: a URL cannot contain spaces or control characters"
                ));
            }
            if !https && !is_loopback_authority(authority) {
                return fail(format!(
                    "{s:?}: plain http is refused except to a loopback host; use https"
                ));
            }
            return Ok(ObjectLocation::Https { url: s.to_owned() });
        }
        if let Some((scheme, _)) = s.split_once("://") {
            if scheme != "file" {
                return fail(format!(
                    "{s:?}: unsupported scheme {scheme:?}; an object location is s3://bucket/key, \
                     an https URL or a file path"
                ));
            }
            return Ok(ObjectLocation::Path(PathBuf::from(&s["file://".len()..])));
        }
        Ok(ObjectLocation::Path(PathBuf::from(s)))
    }
}

impl fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectLocation::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            ObjectLocation::Https { url } => f.write_str(url),
            ObjectLocation::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

impl Serialize for ObjectLocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectLocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse()
            .map_err(|err: ValidationError| <D::Error as serde::de::Error>::custom(err.reason))
    }
}

/// An object's bytes in a local file: a temporary file (removed on drop) for remote objects,
/// the file itself for [`ObjectLocation::Path`].
#[derive(Debug)]
pub struct FetchedObject {
    path: PathBuf,
    size: u64,
    sha256: String,
    content_type: Option<String>,
    // Keeps the temporary file alive; dropping it removes the file.
    _temp: Option<tempfile::TempPath>,
}

impl FetchedObject {
    /// The local file to read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Hex SHA-256 of the content.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The content type the source declared, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// An already-local file, measured and hashed by reading it once (streamed).
    pub fn local_file(path: PathBuf, max_bytes: u64) -> Result<Self, PortError> {
        const OP: &str = "objects.fetch";
        let meta = std::fs::metadata(&path)
            .map_err(|err| PortError::permanent(OP, format!("{}: {err}", path.display())))?;
        if !meta.is_file() {
            return Err(PortError::permanent(
                OP,
                format!("{}: not a regular file", path.display()),
            ));
        }
        if meta.len() > max_bytes {
            return Err(too_large(
                &path.display().to_string(),
                meta.len(),
                max_bytes,
            ));
        }
        let mut file = std::fs::File::open(&path)
            .map_err(|err| PortError::permanent(OP, format!("{}: {err}", path.display())))?;
        let mut hasher = Sha256::new();
        let size = std::io::copy(&mut file, &mut HashWriter(&mut hasher))
            .map_err(|err| PortError::permanent(OP, format!("{}: {err}", path.display())))?;
        Ok(Self {
            path,
            size,
            sha256: hex::encode(hasher.finalize()),
            content_type: None,
            _temp: None,
        })
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn too_large(what: &str, size: u64, max_bytes: u64) -> PortError {
    PortError::permanent(
        "objects.fetch",
        format!("{what}: {size} bytes is over the limit of {max_bytes} bytes"),
    )
}

/// Writes a remote object's chunks to a temporary file as they arrive, hashing them and
/// refusing to go past `max_bytes`: what every remote adapter does with a body stream.
pub struct Spool {
    what: String,
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    size: u64,
    max_bytes: u64,
    content_type: Option<String>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("what", &self.what)
            .field("size", &self.size)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// A spool for the object `what` (its location, for messages), refusing more than
    /// `max_bytes`. A declared length over the limit is refused before anything is read.
    pub fn new(
        what: &ObjectLocation,
        max_bytes: u64,
        declared_len: Option<u64>,
        content_type: Option<String>,
    ) -> Result<Self, PortError> {
        let what = what.to_string();
        if let Some(len) = declared_len.filter(|len| *len > max_bytes) {
            return Err(too_large(&what, len, max_bytes));
        }
        let file = tempfile::NamedTempFile::new().map_err(|err| {
            PortError::transient("objects.fetch", format!("{what}: no temporary file: {err}"))
        })?;
        Ok(Self {
            what,
            file,
            hasher: Sha256::new(),
            size: 0,
            max_bytes,
            content_type,
        })
    }

    /// Appends one chunk.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), PortError> {
        self.size += chunk.len() as u64;
        if self.size > self.max_bytes {
            return Err(too_large(
                &format!("{} (still arriving)", self.what),
                self.size,
                self.max_bytes,
            ));
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).map_err(|err| {
            PortError::transient("objects.fetch", format!("{}: writing: {err}", self.what))
        })
    }

    /// The finished object.
    pub fn finish(mut self) -> Result<FetchedObject, PortError> {
        self.file.flush().map_err(|err| {
            PortError::transient("objects.fetch", format!("{}: writing: {err}", self.what))
        })?;
        let temp = self.file.into_temp_path();
        Ok(FetchedObject {
            path: temp.to_path_buf(),
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
            content_type: self.content_type,
            _temp: Some(temp),
        })
    }
}

/// A source of objects.
#[async_trait]
pub trait ObjectSource: Send + Sync {
    /// Fetches the object at `location` to a local file, streamed, refusing anything over
    /// `max_bytes`. Not found, too large and a scheme this source does not serve are
    /// [`PortError::Permanent`] with a message naming the location; network faults, 5xx and
    /// throttling are [`PortError::Transient`].
    async fn fetch(
        &self,
        location: &ObjectLocation,
        max_bytes: u64,
    ) -> Result<FetchedObject, PortError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ObjectLocation, ValidationError> {
        s.parse()
    }

    #[test]
    fn locations_round_trip_through_their_string_form() {
        for s in [
            "s3://label-audio/masters/Track 01.flac",
            "https://cdn.example.com/a/b.mp3?sig=1",
            "http://127.0.0.1:8080/x.wav",
            "http://localhost/x.wav",
            "http://[::1]:9/x.wav",
            "reports/2026-11.csv",
        ] {
            let location = parse(s).unwrap();
            assert_eq!(location.to_string(), s);
            let json = serde_json::to_string(&location).unwrap();
            assert_eq!(
                serde_json::from_str::<ObjectLocation>(&json).unwrap(),
                location
            );
        }
        assert_eq!(
            parse("s3://b-1.x/k/ey").unwrap(),
            ObjectLocation::S3 {
                bucket: "b-1.x".into(),
                key: "k/ey".into()
            }
        );
        assert_eq!(
            parse("file:///tmp/a.wav").unwrap(),
            ObjectLocation::Path("/tmp/a.wav".into())
        );
    }

    #[test]
    fn bad_locations_say_why() {
        for (s, why) in [
            ("", "empty"),
            ("s3://bucket", "s3://bucket/key"),
            ("s3://Bucket/key", "bucket name"),
            ("s3://ab/key", "bucket name"),
            ("s3://-ab/key", "bucket name"),
            ("s3://bucket/", "cannot be empty"),
            ("http://example.com/a.mp3", "plain http"),
            ("http://127.evil.com/a.mp3", "plain http"),
            ("https:///a.mp3", "needs a host"),
            ("https://x.com/a b.mp3", "spaces"),
            ("ftp://x.com/a.mp3", "unsupported scheme"),
            ("a\0b", "NUL"),
        ] {
            let err = parse(s).unwrap_err();
            assert!(err.reason.contains(why), "{s:?}: {err}");
        }
        let long_key = format!("s3://bucket/{}", "k".repeat(1025));
        assert!(parse(&long_key).unwrap_err().reason.contains("1024"));
    }

    #[test]
    fn file_names_come_from_the_last_segment() {
        assert_eq!(
            parse("s3://b-b/x/y.flac").unwrap().file_name(),
            Some("y.flac")
        );
        assert_eq!(
            parse("https://h/p/q.mp3?x=/z").unwrap().file_name(),
            Some("q.mp3")
        );
        assert_eq!(parse("https://h/p/").unwrap().file_name(), None);
    }

    #[test]
    fn a_spool_hashes_and_caps_what_it_writes() {
        let location = parse("s3://bucket/key").unwrap();
        let mut spool = Spool::new(&location, 10, Some(6), None).unwrap();
        spool.write(b"abc").unwrap();
        spool.write(b"def").unwrap();
        let object = spool.finish().unwrap();
        assert_eq!(object.size(), 6);
        assert_eq!(object.sha256(), crate::hash::sha256_hex("abcdef"));
        assert_eq!(std::fs::read(object.path()).unwrap(), b"abcdef");
        let path = object.path().to_path_buf();
        drop(object);
        assert!(!path.exists(), "the temporary file goes with the object");

        let err = Spool::new(&location, 10, Some(11), None).unwrap_err();
        assert!(err.to_string().contains("objects.fetch"));
        assert!(crate::error::chain(&err).contains("11 bytes is over the limit of 10"));
        let mut spool = Spool::new(&location, 4, None, None).unwrap();
        spool.write(b"abc").unwrap();
        let err = spool.write(b"de").unwrap_err();
        assert!(crate::error::chain(&err).contains("over the limit of 4"));
    }

    #[test]
    fn a_local_file_is_hashed_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "a,b\n").unwrap();
        let object = FetchedObject::local_file(path.clone(), 100).unwrap();
        assert_eq!(object.path(), path);
        assert_eq!(object.sha256(), crate::hash::sha256_hex("a,b\n"));
        drop(object);
        assert!(path.exists(), "a local file is never removed");
        let err = FetchedObject::local_file(path.clone(), 2).unwrap_err();
        assert!(crate::error::chain(&err).contains("4 bytes is over the limit of 2"));
        let err = FetchedObject::local_file(dir.path().join("missing"), 2).unwrap_err();
        assert_eq!(
            crate::error::ErrorClass::Permanent,
            crate::error::Classify::class(&err)
        );
        let err = FetchedObject::local_file(dir.path().to_path_buf(), 2).unwrap_err();
        assert!(crate::error::chain(&err).contains("not a regular file"));
    }
}
