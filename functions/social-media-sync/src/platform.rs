//! The platforms an artist's accounts are linked on, and what identifies an account on each.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A platform of the identity graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// The MusicBrainz artist (its MBID): the hub of the open-data links.
    MusicBrainz,
    /// The Wikidata item (its QID).
    Wikidata,
    /// A YouTube channel (its `UC…` channel id; a handle until resolved).
    YouTube,
    /// A Last.fm artist (its name as in the URL).
    LastFm,
    /// A Deezer artist (its numeric id).
    Deezer,
    /// An Instagram account (its username; the stable id once resolved).
    Instagram,
    /// A TikTok account (its username).
    TikTok,
}

impl Platform {
    /// Every platform.
    pub const ALL: [Platform; 7] = [
        Platform::MusicBrainz,
        Platform::Wikidata,
        Platform::YouTube,
        Platform::LastFm,
        Platform::Deezer,
        Platform::Instagram,
        Platform::TikTok,
    ];

    /// The platforms figures are pulled from.
    pub const WITH_FIGURES: [Platform; 5] = [
        Platform::YouTube,
        Platform::LastFm,
        Platform::Deezer,
        Platform::Instagram,
        Platform::TikTok,
    ];

    /// The stable name (series, keys, CLI).
    pub fn as_str(&self) -> &'static str {
        match self {
            Platform::MusicBrainz => "musicbrainz",
            Platform::Wikidata => "wikidata",
            Platform::YouTube => "youtube",
            Platform::LastFm => "lastfm",
            Platform::Deezer => "deezer",
            Platform::Instagram => "instagram",
            Platform::TikTok => "tiktok",
        }
    }

    /// Checks and normalises an account identifier entered for this platform: the form a
    /// manual link must have, and the form found links are compared in.
    pub fn normalise(&self, raw: &str) -> Result<String, String> {
        let s = raw.trim();
        let ok = |cond: bool, what: &str| {
            if cond {
                Ok(())
            } else {
                Err(format!("{}: {raw:?} is not {what}", self.as_str()))
            }
        };
        match self {
            Platform::MusicBrainz => {
                let s = s.to_ascii_lowercase();
                ok(
                    s.len() == 36
                        && s.chars().enumerate().all(|(i, c)| {
                            if [8, 13, 18, 23].contains(&i) {
                                c == '-'
                            } else {
                                c.is_ascii_hexdigit()
                            }
                        }),
                    "an MBID (a UUID)",
                )?;
                Ok(s)
            }
            Platform::Wikidata => {
                let s = s.to_ascii_uppercase();
                ok(
                    s.len() > 1
                        && s.len() <= 12
                        && s.starts_with('Q')
                        && s[1..].bytes().all(|b| b.is_ascii_digit()),
                    "a Wikidata item id (Q123)",
                )?;
                Ok(s)
            }
            Platform::YouTube => {
                if let Some(handle) = s.strip_prefix('@') {
                    ok(
                        (3..=30).contains(&handle.len())
                            && handle
                                .chars()
                                .all(|c| c.is_alphanumeric() || "._-".contains(c)),
                        "a YouTube handle",
                    )?;
                    return Ok(format!("@{}", handle.to_lowercase()));
                }
                ok(
                    s.len() == 24
                        && s.starts_with("UC")
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "a YouTube channel id (UC + 22 characters) or an @handle",
                )?;
                Ok(s.to_owned())
            }
            Platform::LastFm => {
                ok(!s.is_empty() && s.len() <= 200, "a Last.fm artist name")?;
                // Last.fm URLs write spaces as `+`; names compare case-insensitively.
                Ok(s.replace('+', " ").to_lowercase())
            }
            Platform::Deezer => {
                ok(
                    !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()),
                    "a Deezer artist id (digits)",
                )?;
                Ok(s.trim_start_matches('0').to_owned())
            }
            Platform::Instagram | Platform::TikTok => {
                let s = s.trim_start_matches('@').to_lowercase();
                ok(
                    (1..=30).contains(&s.len())
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._".contains(c)),
                    "a username",
                )?;
                Ok(s)
            }
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                let names: Vec<&str> = Platform::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown platform {s:?}; the platforms are {}",
                    names.join(", ")
                )
            })
    }
}

/// Finds the platform and account an URL points to (the URL relationships of MusicBrainz),
/// or `None` for URLs of other sites or shapes this task does not follow.
pub fn from_url(url: &str) -> Option<(Platform, String)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let host = host.strip_prefix("m.").unwrap_or(host);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let first = segments.first().copied();
    let second = segments.get(1).copied();
    let found = match (host, first, second) {
        ("youtube.com", Some("channel"), Some(id)) => (Platform::YouTube, id.to_owned()),
        ("youtube.com", Some(handle), None) if handle.starts_with('@') => {
            (Platform::YouTube, handle.to_owned())
        }
        ("last.fm" | "lastfm.com", Some("music"), Some(name)) => {
            (Platform::LastFm, percent_decode(name))
        }
        ("deezer.com", Some("artist"), Some(id)) => (Platform::Deezer, id.to_owned()),
        ("deezer.com", Some(_lang), Some("artist")) => {
            (Platform::Deezer, segments.get(2)?.to_string())
        }
        ("instagram.com", Some(user), None) => (Platform::Instagram, user.to_owned()),
        ("tiktok.com", Some(user), None) if user.starts_with('@') => {
            (Platform::TikTok, user.to_owned())
        }
        _ => return None,
    };
    let id = found.0.normalise(&found.1).ok()?;
    Some((found.0, id))
}

/// Decodes `%XX` escapes (Last.fm names in URLs); invalid escapes are kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_accounts() {
        assert_eq!(
            from_url("https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw"),
            Some((Platform::YouTube, "UC_x5XG1OV2P6uZZ5FSM9Ttw".into()))
        );
        assert_eq!(
            from_url("https://www.youtube.com/@GoogleDevelopers"),
            Some((Platform::YouTube, "@googledevelopers".into()))
        );
        assert_eq!(
            from_url("https://www.last.fm/music/The+Beatles"),
            Some((Platform::LastFm, "the beatles".into()))
        );
        assert_eq!(
            from_url("https://www.last.fm/music/Legi%C3%A3o+Urbana"),
            Some((Platform::LastFm, "legião urbana".into()))
        );
        assert_eq!(
            from_url("https://www.deezer.com/artist/27"),
            Some((Platform::Deezer, "27".into()))
        );
        assert_eq!(
            from_url("https://www.deezer.com/fr/artist/27"),
            Some((Platform::Deezer, "27".into()))
        );
        assert_eq!(
            from_url("https://www.instagram.com/TheBeatles/"),
            Some((Platform::Instagram, "thebeatles".into()))
        );
        assert_eq!(
            from_url("https://www.tiktok.com/@thebeatles"),
            Some((Platform::TikTok, "thebeatles".into()))
        );
        assert_eq!(from_url("https://www.deezer.com/album/6097061"), None);
        assert_eq!(from_url("https://music.apple.com/us/album/578168980"), None);
        assert_eq!(from_url("not a url"), None);
        assert_eq!(
            from_url("https://www.last.fm/music/%E"),
            Some((Platform::LastFm, "%e".into()))
        );
    }

    #[test]
    fn manual_identifiers_are_checked() {
        assert!(Platform::YouTube.normalise("UCshort").is_err());
        assert!(Platform::Deezer.normalise("27a").is_err());
        assert_eq!(Platform::Wikidata.normalise("q1299"), Ok("Q1299".into()));
        assert!(
            Platform::MusicBrainz
                .normalise("b10bbbfc-cf9e-42e0-be17-e2c3e1d2600d")
                .is_ok()
        );
        assert!(Platform::MusicBrainz.normalise("b10bbbfc").is_err());
        assert_eq!("TikTok".parse::<Platform>(), Ok(Platform::TikTok));
        assert!(
            "myspace"
                .parse::<Platform>()
                .unwrap_err()
                .contains("the platforms are")
        );
    }
}
