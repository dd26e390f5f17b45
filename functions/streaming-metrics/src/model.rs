//! The observation and its parts, validated at the edge.
//!
//! An observation says: for this subject, in this territory, on this date, this metric had
//! this value, according to this source, as of this time. Every part is a newtype whose
//! constructor checks and normalises it, so the store and the rollups trust them.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use backbone::validate::{SpotifyId, Validate, ValidationError};

/// ISO 3166-1 alpha-2 codes (2026), and `XK` (Kosovo), which the stores report.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF \
BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW \
CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM \
GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH \
KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP \
MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN \
PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK \
YE YT ZA ZM ZW";

/// The marker of worldwide totals.
pub const GLOBAL: &str = "GLOBAL";

fn echo(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    if short.len() < s.len() {
        format!("{short:?}...")
    } else {
        format!("{short:?}")
    }
}

/// What an observation is about: a recording (ISRC), a Spotify track or a Spotify artist.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Subject {
    /// An ISRC, normalised: upper case, no hyphens (`USRC17607839`).
    Isrc(String),
    /// A Spotify track id.
    Track(SpotifyId),
    /// A Spotify artist id.
    Artist(SpotifyId),
}

impl Subject {
    /// Parses `USRC17607839`, `US-RC1-76-07839`, `isrc:...`, `spotify:track:<id>`,
    /// `track:<id>`, `spotify:artist:<id>` or `artist:<id>`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        for (prefix, artist) in [
            ("spotify:track:", false),
            ("track:", false),
            ("spotify:artist:", true),
            ("artist:", true),
        ] {
            if lower.starts_with(prefix) {
                let id = SpotifyId::new(&t[prefix.len()..])?;
                return Ok(if artist {
                    Subject::Artist(id)
                } else {
                    Subject::Track(id)
                });
            }
        }
        let bare = if lower.starts_with("isrc:") {
            &t[5..]
        } else {
            t
        };
        normalise_isrc(bare).map(Subject::Isrc)
    }

    /// The artist, when the subject is one.
    pub fn artist(&self) -> Option<&SpotifyId> {
        match self {
            Subject::Artist(id) => Some(id),
            _ => None,
        }
    }
}

/// Normalises an ISRC: `CC-XXX-YY-NNNNN` with or without hyphens or spaces, any case.
pub fn normalise_isrc(s: &str) -> Result<String, String> {
    let compact: String = s
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let b = compact.as_bytes();
    let ok = b.len() == 12
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..5].iter().all(u8::is_ascii_alphanumeric)
        && b[5..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(compact)
    } else {
        Err(format!(
            "{} is neither an ISRC (CC-XXX-YY-NNNNN) nor a Spotify track or artist (spotify:track:<id>, spotify:artist:<id>)",
            echo(s)
        ))
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Isrc(isrc) => write!(f, "isrc:{isrc}"),
            Subject::Track(id) => write!(f, "track:{id}"),
            Subject::Artist(id) => write!(f, "artist:{id}"),
        }
    }
}

impl TryFrom<String> for Subject {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Subject::parse(&s)
    }
}

impl From<Subject> for String {
    fn from(s: Subject) -> Self {
        s.to_string()
    }
}

/// A territory: an ISO 3166-1 alpha-2 code or [`GLOBAL`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Territory(String);

impl Territory {
    /// Parses a code in any case; `UK` is read as `GB`; `GLOBAL`, `WW`, `WORLDWIDE`, `ALL`
    /// and `ZZ` (the stores' "unknown / worldwide") as [`GLOBAL`].
    pub fn parse(s: &str) -> Result<Self, String> {
        let up = s.trim().to_ascii_uppercase();
        let code = match up.as_str() {
            "GLOBAL" | "WW" | "WORLDWIDE" | "WORLD" | "ALL" | "ZZ" => GLOBAL,
            "UK" => "GB",
            other => other,
        };
        if code == GLOBAL
            || (code.len() == 2 && ISO_3166_ALPHA2.split_whitespace().any(|c| c == code))
        {
            Ok(Territory(code.to_owned()))
        } else {
            Err(format!(
                "{} is not an ISO 3166-1 alpha-2 territory or GLOBAL",
                echo(s)
            ))
        }
    }

    /// Worldwide.
    pub fn global() -> Self {
        Territory(GLOBAL.to_owned())
    }

    /// Whether this is the worldwide marker.
    pub fn is_global(&self) -> bool {
        self.0 == GLOBAL
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Territory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Territory {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Territory::parse(&s)
    }
}

impl From<Territory> for String {
    fn from(t: Territory) -> Self {
        t.0
    }
}

/// What was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Plays of 30 seconds or more.
    Streams,
    /// Unique listeners (not additive across tracks: the artist's own figure is stored as
    /// the artist subject's).
    Listeners,
    /// Saves to a library.
    Saves,
    /// Additions to playlists.
    PlaylistAdds,
    /// Followers.
    Followers,
    /// Downloads and purchases.
    Downloads,
    /// Earnings in millionths of the statement's currency (USD for DistroKid and TuneCore).
    RevenueMicros,
}

impl Metric {
    /// All metrics.
    pub const ALL: [Metric; 7] = [
        Metric::Streams,
        Metric::Listeners,
        Metric::Saves,
        Metric::PlaylistAdds,
        Metric::Followers,
        Metric::Downloads,
        Metric::RevenueMicros,
    ];

    /// The snake-case name used in keys.
    pub fn as_str(&self) -> &'static str {
        match self {
            Metric::Streams => "streams",
            Metric::Listeners => "listeners",
            Metric::Saves => "saves",
            Metric::PlaylistAdds => "playlist_adds",
            Metric::Followers => "followers",
            Metric::Downloads => "downloads",
            Metric::RevenueMicros => "revenue_micros",
        }
    }

    /// Parses a name (case-insensitive; `-` and spaces read as `_`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == norm)
            .ok_or_else(|| {
                format!(
                    "{} is not a metric (streams, listeners, saves, playlist_adds, followers, downloads, revenue_micros)",
                    echo(s)
                )
            })
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a figure comes from: `spotify_for_artists`, `distrokid/spotify`, `api`, ...
///
/// Figures of different sources are never summed together (a DistroKid Spotify line and a
/// Spotify for Artists figure count the same plays), so the source is part of every key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Source(String);

impl Source {
    /// Normalises: lower case, a parenthesised qualifier dropped (`Spotify (Premium)` is
    /// `spotify`), runs of spaces as `_`; 1 to 64 of `[a-z0-9_./-]` remain.
    pub fn parse(s: &str) -> Result<Self, String> {
        let without_qualifier = match s.find('(') {
            Some(i) => &s[..i],
            None => s,
        };
        let norm = without_qualifier
            .trim()
            .to_ascii_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("_");
        let ok = (1..=64).contains(&norm.len())
            && norm
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_./-".contains(&b));
        if ok {
            Ok(Source(norm))
        } else {
            Err(format!(
                "{} is not a source name (letters, digits, _ . / -)",
                echo(s)
            ))
        }
    }

    /// `family/store`, as statements name their lines (`distrokid/spotify`).
    pub fn store(family: &str, store: &str) -> Result<Self, String> {
        let store = Source::parse(store)?;
        Source::parse(&format!("{family}/{}", store.0))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Source {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Source::parse(&s)
    }
}

impl From<Source> for String {
    fn from(s: Source) -> Self {
        s.0
    }
}

/// The time resolution of a figure: daily figures are detected on; monthly statement lines
/// are stored and rolled up per month only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// One day.
    #[default]
    Day,
    /// One calendar month (the date is its first day).
    Month,
}

/// One validated observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// What it is about.
    pub subject: Subject,
    /// Where.
    pub territory: Territory,
    /// Which day (or month, for statements).
    pub date: NaiveDate,
    /// What was counted.
    pub metric: Metric,
    /// The count (never negative).
    pub value: i64,
    /// Who reported it.
    pub source: Source,
    /// When the source produced the figure; a later one restates an earlier one. Default:
    /// when it was received.
    #[serde(default)]
    pub as_of: Option<DateTime<Utc>>,
    /// The artist the subject belongs to, when known (for the artist rollups).
    #[serde(default)]
    pub artist: Option<SpotifyId>,
    /// Day or month.
    #[serde(default)]
    pub period: Period,
}

/// Earliest and latest dates accepted (a figure outside is a typo or an epoch default).
pub const MIN_DATE: (i32, u32, u32) = (2000, 1, 1);

impl Observation {
    /// Checks what the types alone cannot: a non-negative value, a plausible date.
    pub fn check(&self, today: NaiveDate) -> Result<(), String> {
        if self.value < 0 {
            return Err(format!(
                "{} cannot be negative: {}",
                self.metric, self.value
            ));
        }
        let min =
            NaiveDate::from_ymd_opt(MIN_DATE.0, MIN_DATE.1, MIN_DATE.2).unwrap_or(NaiveDate::MIN);
        if self.date < min {
            return Err(format!("{} is before {min}", self.date));
        }
        if self.date > today + chrono::Duration::days(1) {
            return Err(format!("{} is in the future", self.date));
        }
        Ok(())
    }
}

impl Validate for Observation {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.value < 0 {
            return Err(ValidationError::new(
                "value",
                format!("a count cannot be negative, got {}", self.value),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isrcs_are_normalised_and_spotify_ids_recognised() {
        assert_eq!(
            Subject::parse("us-rc1-76-07839").map(|s| s.to_string()),
            Ok("isrc:USRC17607839".to_owned())
        );
        assert!(matches!(
            Subject::parse("spotify:track:4uLU6hMCjMI75M1A2tKUQC"),
            Ok(Subject::Track(_))
        ));
        assert!(matches!(
            Subject::parse("artist:0TnOYISbd1XYRBk9myaseg"),
            Ok(Subject::Artist(_))
        ));
        assert!(Subject::parse("USRC1760783").is_err());
    }

    #[test]
    fn territories_accept_iso_codes_aliases_and_refuse_others() {
        assert_eq!(Territory::parse("se").map(|t| t.0), Ok("SE".to_owned()));
        assert_eq!(Territory::parse("UK").map(|t| t.0), Ok("GB".to_owned()));
        assert!(Territory::parse("WW").is_ok_and(|t| t.is_global()));
        let err = Territory::parse("QQ").unwrap_err();
        assert!(err.contains("QQ"), "{err}");
    }

    #[test]
    fn store_qualifiers_are_dropped() {
        assert_eq!(
            Source::store("distrokid", "Spotify (Premium)").map(|s| s.0),
            Ok("distrokid/spotify".to_owned())
        );
        assert_eq!(
            Source::parse("Apple Music").map(|s| s.0),
            Ok("apple_music".to_owned())
        );
    }
}
