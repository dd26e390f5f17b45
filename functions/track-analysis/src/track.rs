//! The track an analysis is about: a Spotify track id or an ISRC, with optional metadata, and
//! the store key derived from it.

use std::fmt;

use backbone::validate::{TrackId, ValidationError};
use serde::{Deserialize, Deserializer, Serialize};

/// An International Standard Recording Code: two letters (country), three letters or digits
/// (registrant), two digits (year), five digits (designation); hyphens and case are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Isrc(String);

impl Isrc {
    /// Parses an ISRC such as `USRC17607839` or `us-rc1-76-07839`.
    pub fn new(s: &str) -> Result<Self, String> {
        let code: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let b = code.as_bytes();
        let valid = b.len() == 12
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2..5].iter().all(u8::is_ascii_alphanumeric)
            && b[5..].iter().all(u8::is_ascii_digit);
        if valid {
            Ok(Self(code))
        } else {
            let shown: String = s.chars().take(40).collect();
            Err(format!(
                "{shown:?} is not an ISRC (CC-XXX-YY-NNNNN: country, registrant, year, number)"
            ))
        }
    }

    /// The code, upper case without hyphens.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Isrc {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = String::deserialize(de)?;
        Isrc::new(&s).map_err(serde::de::Error::custom)
    }
}

impl From<Isrc> for String {
    fn from(isrc: Isrc) -> Self {
        isrc.0
    }
}

impl fmt::Display for Isrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The track: at least one of a Spotify id and an ISRC, with what the label knows of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrackRef {
    /// The Spotify track (id, `spotify:track:` URI or open.spotify.com URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spotify_id: Option<TrackId>,
    /// The recording's ISRC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isrc: Option<Isrc>,
    /// Title, for people reading the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Artist names, for people reading the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artists: Vec<String>,
}

impl TrackRef {
    /// Checks that the track is identified and the metadata is of sane size.
    pub fn check(&self, field: &str) -> Result<(), ValidationError> {
        if self.spotify_id.is_none() && self.isrc.is_none() {
            return Err(ValidationError::new(
                field,
                "name the track by spotifyId or isrc (or both)",
            ));
        }
        if self.title.as_ref().is_some_and(|t| t.len() > 500) {
            return Err(ValidationError::new(
                format!("{field}.title"),
                "longer than 500 bytes",
            ));
        }
        if self.artists.len() > 50 || self.artists.iter().any(|a| a.len() > 500) {
            return Err(ValidationError::new(
                format!("{field}.artists"),
                "at most 50 names of at most 500 bytes",
            ));
        }
        Ok(())
    }

    /// The track's part of the store key: `isrc:<ISRC>` when known (an ISRC names the
    /// recording across services), else `spotify:<id>`.
    pub fn key(&self) -> String {
        match (&self.isrc, &self.spotify_id) {
            (Some(isrc), _) => format!("isrc:{isrc}"),
            (None, Some(id)) => format!("spotify:{id}"),
            (None, None) => "unknown".to_owned(),
        }
    }

    /// The track named by an object key such as `audio/USRC17607839.flac` or
    /// `audio/4uLU6hMCjMI75M1A2tKUQC/master.wav`: the file stem or a folder that parses as an
    /// ISRC or a Spotify track id, the file stem tried first.
    pub fn from_object_key(key: &str) -> Option<Self> {
        let mut segments: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
        let file = segments.pop()?;
        let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
        std::iter::once(stem)
            .chain(segments.into_iter().rev())
            .find_map(|candidate| {
                if let Ok(isrc) = Isrc::new(candidate) {
                    return Some(TrackRef {
                        spotify_id: None,
                        isrc: Some(isrc),
                        title: None,
                        artists: Vec::new(),
                    });
                }
                candidate.parse::<TrackId>().ok().map(|id| TrackRef {
                    spotify_id: Some(id),
                    isrc: None,
                    title: None,
                    artists: Vec::new(),
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isrcs_are_normalised_and_checked() {
        assert_eq!(
            Isrc::new("us-rc1-76-07839").unwrap().as_str(),
            "USRC17607839"
        );
        assert!(Isrc::new("USRC1760783").is_err());
        assert!(Isrc::new("12RC17607839").is_err());
        assert!(Isrc::new("USRC17607A39").is_err());
    }

    #[test]
    fn object_keys_name_their_track() {
        let t = TrackRef::from_object_key("audio/USRC17607839.flac").unwrap();
        assert_eq!(t.key(), "isrc:USRC17607839");
        let t = TrackRef::from_object_key("audio/4uLU6hMCjMI75M1A2tKUQC/master.wav").unwrap();
        assert_eq!(t.key(), "spotify:4uLU6hMCjMI75M1A2tKUQC");
        assert!(TrackRef::from_object_key("uploads/my song.mp3").is_none());
    }

    #[test]
    fn a_track_needs_an_identifier() {
        let t: TrackRef = serde_json::from_str(r#"{"title":"Song"}"#).unwrap();
        assert!(t.check("track").is_err());
        let t: TrackRef = serde_json::from_str(r#"{"isrc":"USRC17607839"}"#).unwrap();
        assert!(t.check("track").is_ok());
        assert!(serde_json::from_str::<TrackRef>(r#"{"isrc":"nope"}"#).is_err());
    }
}
