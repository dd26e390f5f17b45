//! Validated input types: parse at the edge, trust inside.
//!
//! Every value a task receives is turned into one of these newtypes while the message is
//! deserialised, so task code never re-checks an id. A failure names the field and says why,
//! and the harness routes it to the dead-letter queue instead of retrying it.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};

mod s3_notification;

pub use s3_notification::{S3Notification, S3Object};

/// An input that failed validation: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// Path of the offending field, such as `artists[3]` or `event.body`.
    pub field: String,
    /// What is wrong with it, for a person to read.
    pub reason: String,
}

impl ValidationError {
    /// A validation failure of `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Cross-field rules that deserialisation alone cannot express.
pub trait Validate {
    /// Checks the whole value; the default accepts it, for inputs whose fields are all newtypes.
    fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

impl Validate for serde_json::Value {}

/// Deserialises `body` into `T` and validates it, naming the failing field on error.
///
/// `root` prefixes the field path (`body`, `detail`) so an operator can find the value.
pub fn parse_json<T>(root: &str, body: &str) -> Result<T, ValidationError>
where
    T: for<'de> Deserialize<'de> + Validate,
{
    let mut de = serde_json::Deserializer::from_str(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." {
            root.to_owned()
        } else {
            format!("{root}.{path}")
        };
        ValidationError::new(field, err.into_inner().to_string())
    })?;
    de.end()
        .map_err(|err| ValidationError::new(root, format!("trailing characters: {err}")))?;
    value.validate()?;
    Ok(value)
}

/// Deserialises an already-parsed JSON value into `T` and validates it.
pub fn parse_value<T>(root: &str, value: serde_json::Value) -> Result<T, ValidationError>
where
    T: for<'de> Deserialize<'de> + Validate,
{
    let value: T = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." {
            root.to_owned()
        } else {
            format!("{root}.{path}")
        };
        ValidationError::new(field, err.into_inner().to_string())
    })?;
    value.validate()?;
    Ok(value)
}

/// The kinds of Spotify object a URI or URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpotifyKind {
    /// An artist.
    Artist,
    /// An album or single.
    Album,
    /// A track.
    Track,
    /// A playlist.
    Playlist,
    /// A podcast episode.
    Episode,
    /// A podcast show.
    Show,
}

impl SpotifyKind {
    /// The word Spotify uses in URIs and URLs.
    pub fn as_str(&self) -> &'static str {
        match self {
            SpotifyKind::Artist => "artist",
            SpotifyKind::Album => "album",
            SpotifyKind::Track => "track",
            SpotifyKind::Playlist => "playlist",
            SpotifyKind::Episode => "episode",
            SpotifyKind::Show => "show",
        }
    }
}

impl FromStr for SpotifyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "artist" => SpotifyKind::Artist,
            "album" => SpotifyKind::Album,
            "track" => SpotifyKind::Track,
            "playlist" => SpotifyKind::Playlist,
            "episode" => SpotifyKind::Episode,
            "show" => SpotifyKind::Show,
            other => return Err(format!("unknown Spotify object type {other:?}")),
        })
    }
}

impl fmt::Display for SpotifyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bare Spotify id: exactly 22 base-62 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SpotifyId(String);

/// Longest text we echo back in an error, so a 256 KB value does not become a 256 KB log line.
const ECHO_LIMIT: usize = 64;

fn echo(s: &str) -> String {
    if s.chars().count() <= ECHO_LIMIT {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(ECHO_LIMIT).collect();
        format!("{head:?}… ({} bytes)", s.len())
    }
}

impl SpotifyId {
    /// Length of every Spotify id.
    pub const LEN: usize = 22;

    /// Checks `s` is a bare id; the error gives the reason only (the caller knows the field).
    pub fn new(s: &str) -> Result<Self, String> {
        if s.len() != Self::LEN {
            return Err(format!(
                "a Spotify id is {} base-62 characters, got {} characters in {}",
                Self::LEN,
                s.chars().count(),
                echo(s)
            ));
        }
        if let Some(bad) = s.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(format!(
                "a Spotify id is base-62 (A-Z, a-z, 0-9), found {bad:?} in {}",
                echo(s)
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SpotifyId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        SpotifyId::new(&s)
    }
}

impl From<SpotifyId> for String {
    fn from(id: SpotifyId) -> Self {
        id.0
    }
}

impl fmt::Display for SpotifyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A typed reference to a Spotify object, as `spotify:{kind}:{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpotifyUri {
    /// What kind of object it names.
    pub kind: SpotifyKind,
    /// Its id.
    pub id: SpotifyId,
}

impl SpotifyUri {
    /// Parses a `spotify:kind:id` URI or an `open.spotify.com` URL (with `?si=`, `/intl-xx/`
    /// or `/embed/`), returning the reason on failure.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("spotify:") {
            let (kind, id) = rest
                .split_once(':')
                .ok_or_else(|| format!("a Spotify URI is spotify:<type>:<id>, got {}", echo(s)))?;
            let kind = kind.parse::<SpotifyKind>()?;
            return Ok(Self {
                kind,
                id: SpotifyId::new(id)?,
            });
        }
        parse_open_url(s)
    }
}

fn parse_open_url(s: &str) -> Result<SpotifyUri, String> {
    let without_scheme = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let (host, path) = without_scheme.split_once('/').ok_or_else(|| {
        format!(
            "expected a Spotify id, URI or open.spotify.com URL, got {}",
            echo(s)
        )
    })?;
    if !host.eq_ignore_ascii_case("open.spotify.com") {
        return Err(format!(
            "expected a Spotify id, URI or open.spotify.com URL, got {}",
            echo(s)
        ));
    }
    // Query (`?si=...`) and fragment carry sharing data, never the id.
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/').filter(|seg| !seg.is_empty()).peekable();
    if segments.peek().is_some_and(|seg| is_locale_prefix(seg)) {
        segments.next();
    }
    if segments.peek() == Some(&"embed") {
        segments.next();
    }
    let kind = segments
        .next()
        .ok_or_else(|| format!("the URL names no object: {}", echo(s)))?
        .parse::<SpotifyKind>()?;
    let id = segments
        .next()
        .ok_or_else(|| format!("the URL has no id after /{kind}/: {}", echo(s)))?;
    if let Some(extra) = segments.next() {
        return Err(format!(
            "unexpected path segment {extra:?} after the id in {}",
            echo(s)
        ));
    }
    Ok(SpotifyUri {
        kind,
        id: SpotifyId::new(id)?,
    })
}

/// `intl-de`, `intl-pt`, `intl-es_419`: the locale prefixes open.spotify.com adds to shared links.
fn is_locale_prefix(seg: &str) -> bool {
    seg.strip_prefix("intl-").is_some_and(|loc| {
        let mut parts = loc.splitn(2, ['-', '_']);
        let lang = parts.next().unwrap_or_default();
        let region_ok = parts.next().is_none_or(|r| {
            !r.is_empty() && r.len() <= 4 && r.chars().all(|c| c.is_ascii_alphanumeric())
        });
        (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_lowercase()) && region_ok
    })
}

impl fmt::Display for SpotifyUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spotify:{}:{}", self.kind, self.id)
    }
}

/// Parses a reference to an object of `kind` given as a bare id, a URI or a URL.
fn parse_ref(kind: SpotifyKind, s: &str) -> Result<SpotifyId, String> {
    let trimmed = s.trim();
    if !trimmed.contains([':', '/', '.']) {
        return SpotifyId::new(trimmed);
    }
    let uri = SpotifyUri::parse(trimmed)?;
    if uri.kind != kind {
        let found = uri.kind.to_string();
        let article = if found.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        return Err(format!(
            "expected a Spotify {kind}, but {} names {article} {found}",
            echo(trimmed),
        ));
    }
    Ok(uri.id)
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        ///
        /// Accepts a bare id, a `spotify:` URI or an open.spotify.com URL of the right type,
        /// and serialises as the bare id.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(into = "String")]
        pub struct $name(SpotifyId);

        impl $name {
            /// The object type this id names.
            pub const KIND: SpotifyKind = $kind;

            /// Parses an id, URI or URL; the error names `field`.
            pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
                parse_ref(Self::KIND, s)
                    .map(Self)
                    .map_err(|reason| ValidationError::new(field, reason))
            }

            /// The bare id.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The `spotify:` URI of this object.
            pub fn uri(&self) -> SpotifyUri {
                SpotifyUri { kind: Self::KIND, id: self.0.clone() }
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_ref(Self::KIND, s).map(Self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                let s = String::deserialize(de)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0.into()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

typed_id!(
    /// A Spotify artist id.
    ArtistId,
    SpotifyKind::Artist
);
typed_id!(
    /// A Spotify album id.
    AlbumId,
    SpotifyKind::Album
);
typed_id!(
    /// A Spotify track id.
    TrackId,
    SpotifyKind::Track
);
typed_id!(
    /// A Spotify playlist id.
    PlaylistId,
    SpotifyKind::Playlist
);

/// A Spotify user id: 1 to 64 characters of letters, digits, `.`, `_` or `-`.
///
/// Older accounts have usernames rather than base-62 ids, so the rule is wider than
/// [`SpotifyId`]'s but still excludes anything that would need escaping in a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Longest user id accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks `s`; the error gives the reason.
    pub fn new(s: &str) -> Result<Self, String> {
        let s = s.strip_prefix("spotify:user:").unwrap_or(s);
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(format!(
                "a user id is 1 to {} characters, got {}",
                Self::MAX_LEN,
                s.len()
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!(
                "a user id holds letters, digits, '.', '_' or '-', found {bad:?} in {}",
                echo(s)
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        UserId::new(&s)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> Self {
        id.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A calendar date written as ISO 8601 `YYYY-MM-DD` (no time, no zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IsoDate(NaiveDate);

impl IsoDate {
    /// Parses `YYYY-MM-DD` strictly: `2026-2-3` and `2026-02-30` are refused.
    pub fn new(s: &str) -> Result<Self, String> {
        let bytes = s.as_bytes();
        let shaped = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shaped {
            return Err(format!("a date is written YYYY-MM-DD, got {}", echo(s)));
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Self)
            .map_err(|_| format!("{} is not a calendar date", echo(s)))
    }

    /// The date.
    pub fn date(&self) -> NaiveDate {
        self.0
    }
}

impl From<NaiveDate> for IsoDate {
    fn from(date: NaiveDate) -> Self {
        Self(date)
    }
}

impl TryFrom<String> for IsoDate {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        IsoDate::new(&s)
    }
}

impl From<IsoDate> for String {
    fn from(date: IsoDate) -> Self {
        date.0.format("%Y-%m-%d").to_string()
    }
}

impl fmt::Display for IsoDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// A list whose length must lie in `MIN..=MAX`, such as "1 to 50 artist ids".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct BoundedVec<T, const MIN: usize, const MAX: usize>(Vec<T>);

impl<T, const MIN: usize, const MAX: usize> BoundedVec<T, MIN, MAX> {
    /// Checks the length of `items`.
    pub fn new(items: Vec<T>) -> Result<Self, String> {
        if items.len() < MIN || items.len() > MAX {
            return Err(format!(
                "must hold {MIN} to {MAX} items, got {}",
                items.len()
            ));
        }
        Ok(Self(items))
    }

    /// The items.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The items, by value.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<'de, T, const MIN: usize, const MAX: usize> Deserialize<'de> for BoundedVec<T, MIN, MAX>
where
    T: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visitor<T, const MIN: usize, const MAX: usize>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const MIN: usize, const MAX: usize> serde::de::Visitor<'de>
            for Visitor<T, MIN, MAX>
        {
            type Value = BoundedVec<T, MIN, MAX>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of {MIN} to {MAX} items")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                // Stop reading at MAX + 1 items: an oversized list is refused without being
                // materialised.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX));
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(serde::de::Error::custom(format!(
                            "must hold {MIN} to {MAX} items, got more than {MAX}"
                        )));
                    }
                    items.push(item);
                }
                BoundedVec::new(items).map_err(serde::de::Error::custom)
            }
        }

        de.deserialize_seq(Visitor::<T, MIN, MAX>(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4Z8W4fKeB5YxbusRsdQVPb";

    #[test]
    fn accepts_bare_id_uri_and_urls() {
        for input in [
            ID.to_owned(),
            format!("spotify:artist:{ID}"),
            format!("https://open.spotify.com/artist/{ID}"),
            format!("https://open.spotify.com/artist/{ID}?si=abc123XYZ"),
            format!("https://open.spotify.com/intl-de/artist/{ID}?si=x#frag"),
            format!("https://open.spotify.com/intl-es_419/artist/{ID}"),
            format!("open.spotify.com/embed/artist/{ID}"),
            format!("  spotify:artist:{ID}  "),
        ] {
            let id = ArtistId::parse("artist", &input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(id.as_str(), ID, "{input}");
        }
    }

    #[test]
    fn refuses_wrong_kind_length_alphabet_and_host() {
        let cases = [
            (format!("spotify:track:{ID}"), "expected a Spotify artist"),
            (
                "4Z8W4fKeB5YxbusRsdQVP".to_owned(),
                "22 base-62 characters, got 21",
            ),
            ("4Z8W4fKeB5YxbusRsdQVP!".to_owned(), "found '!'"),
            (
                format!("https://example.com/artist/{ID}"),
                "open.spotify.com URL",
            ),
            (
                format!("https://open.spotify.com/intl-de/{ID}"),
                "unknown Spotify object type",
            ),
            (
                format!("https://open.spotify.com/artist/{ID}/extra"),
                "unexpected path segment",
            ),
            ("spotify:artist".to_owned(), "spotify:<type>:<id>"),
        ];
        for (input, expected) in cases {
            let err = ArtistId::parse("artists[2]", &input).unwrap_err();
            assert_eq!(err.field, "artists[2]");
            assert!(err.reason.contains(expected), "{input}: {}", err.reason);
        }
    }

    #[test]
    fn long_bad_values_are_not_echoed_in_full() {
        let huge = "x".repeat(10_000);
        let err = TrackId::parse("track", &huge).unwrap_err();
        assert!(err.reason.len() < 300, "{}", err.reason.len());
        assert!(err.reason.contains("10000 bytes"), "{}", err.reason);
    }

    #[test]
    fn user_ids_and_dates() {
        assert_eq!(
            UserId::new("spotify:user:wizzler").unwrap().as_str(),
            "wizzler"
        );
        assert!(UserId::new("a b").unwrap_err().contains("found ' '"));
        assert!(UserId::new("").is_err());
        assert_eq!(
            IsoDate::new("2026-02-28").unwrap().to_string(),
            "2026-02-28"
        );
        assert!(
            IsoDate::new("2026-02-30")
                .unwrap_err()
                .contains("not a calendar date")
        );
        assert!(IsoDate::new("2026-2-3").unwrap_err().contains("YYYY-MM-DD"));
        assert!(IsoDate::new("2026-02-28T00:00:00Z").is_err());
    }

    #[derive(Debug, Deserialize)]
    struct Batch {
        #[allow(dead_code)]
        artists: BoundedVec<ArtistId, 1, 3>,
        #[allow(dead_code)]
        date: IsoDate,
    }
    impl Validate for Batch {}

    #[test]
    fn json_errors_name_the_field_path() {
        let body = format!(r#"{{"artists":["{ID}","nope"],"date":"2026-01-01"}}"#);
        let err = parse_json::<Batch>("body", &body).unwrap_err();
        assert_eq!(err.field, "body.artists[1]");

        let body = format!(r#"{{"artists":["{ID}","{ID}","{ID}","{ID}"],"date":"2026-01-01"}}"#);
        let err = parse_json::<Batch>("body", &body).unwrap_err();
        assert!(err.reason.contains("1 to 3 items"), "{err}");

        let err = parse_json::<Batch>("body", r#"{"artists":[]}"#).unwrap_err();
        assert!(err.reason.contains("got 0"), "{err}");

        let body = format!(r#"{{"artists":["{ID}"]}}"#);
        let err = parse_json::<Batch>("body", &body).unwrap_err();
        assert!(err.reason.contains("missing field `date`"), "{err}");

        let err = parse_json::<Batch>("body", "not json").unwrap_err();
        assert_eq!(err.field, "body");
    }
}
