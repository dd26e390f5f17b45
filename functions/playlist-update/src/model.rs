//! The candidates the solver chooses from: a track, where it came from, and the features
//! track-analysis measured for it (tempo, Camelot key, energy), when the store has them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::rules::normalise;

/// A key on the Camelot wheel: 1 to 12 and A (minor) or B (major).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Camelot {
    /// The wheel number, 1 to 12.
    pub number: u8,
    /// Major (B) or minor (A).
    pub major: bool,
}

impl Camelot {
    /// Parses `8A`, `12B`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let last = s.chars().last()?;
        let (num, letter) = s.split_at(s.len() - last.len_utf8());
        let number: u8 = num.parse().ok().filter(|n| (1..=12).contains(n))?;
        let major = match letter {
            "A" | "a" => false,
            "B" | "b" => true,
            _ => return None,
        };
        Some(Self { number, major })
    }

    /// Steps between two keys on the wheel: around the numbers, plus one to change letter.
    /// 0 is the same key; 1 is a compatible move (a fifth, or the relative major/minor).
    pub fn distance(self, other: Camelot) -> u8 {
        let d = self.number.abs_diff(other.number);
        let around = d.min(12 - d);
        around + u8::from(self.major != other.major)
    }

    /// A dense index 0..24, for bucketing.
    pub fn index(self) -> usize {
        usize::from(self.number - 1) * 2 + usize::from(self.major)
    }
}

impl TryFrom<String> for Camelot {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Camelot::parse(&s).ok_or_else(|| format!("{s:?} is not a Camelot key (1A to 12B)"))
    }
}

impl From<Camelot> for String {
    fn from(c: Camelot) -> Self {
        format!("{}{}", c.number, if c.major { 'B' } else { 'A' })
    }
}

/// What track-analysis measured, where known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackFeatures {
    /// Tempo, BPM.
    pub bpm: Option<f64>,
    /// Key on the Camelot wheel.
    pub camelot: Option<Camelot>,
    /// Energy, 0 to 1.
    pub energy: Option<f64>,
}

/// One track the solver may pick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The Spotify track id.
    pub id: String,
    /// Its title.
    pub name: String,
    /// Its artists' ids (every credited artist).
    pub artists: Vec<String>,
    /// Its artists' names, where known (for people reading explanations).
    #[serde(default)]
    pub artist_names: Vec<String>,
    /// The recording's ISRC, where known.
    pub isrc: Option<String>,
    /// Length, milliseconds.
    pub duration_ms: u64,
    /// Marked explicit.
    pub explicit: bool,
    /// When it was released (the album's date, to the precision Spotify gives, first day).
    pub release_date: Option<NaiveDate>,
    /// When it was added to the source playlist (playlist sources only).
    pub added_at: Option<DateTime<Utc>>,
    /// The sources that offered it, by label.
    pub sources: Vec<String>,
    /// Measured features.
    pub features: TrackFeatures,
    /// Where Spotify says it can be played; unknown for tracks of the synced catalog.
    #[serde(default, skip_serializing_if = "Availability::is_unknown")]
    pub availability: Availability,
}

/// Where a track can be played, as far as Spotify said: its `available_markets`, and the
/// `restrictions.reason` or `is_playable: false` of a request that named a market.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    /// The markets it is listed in; `None` when Spotify did not list them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markets: Option<MarketSet>,
    /// Why Spotify says it cannot be played (`market`, `product`, `explicit`, or `unplayable`
    /// when only `is_playable: false` was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restriction: Option<String>,
}

impl Availability {
    /// From a Spotify track's fields.
    pub fn of(track: &backbone::spotify::model::Track) -> Self {
        let restriction = match (&track.restriction, track.playable) {
            (Some(reason), _) => Some(reason.clone()),
            (None, Some(false)) => Some("unplayable".to_owned()),
            (None, _) => None,
        };
        Availability {
            markets: track
                .available_markets
                .as_ref()
                .map(|m| MarketSet::from_codes(m.iter().map(String::as_str))),
            restriction,
        }
    }

    /// Nothing is known (so a market filter lets it pass).
    pub fn is_unknown(&self) -> bool {
        self.markets.is_none() && self.restriction.is_none()
    }

    /// The first of `wanted` it cannot be played in, or the restriction Spotify gave; `None`
    /// when it passes or when nothing is known.
    pub fn unavailable_in(&self, wanted: &[String]) -> Option<String> {
        if wanted.is_empty() {
            return None;
        }
        if let Some(reason) = &self.restriction {
            return Some(format!("not playable ({reason})"));
        }
        let markets = self.markets.as_ref()?;
        wanted
            .iter()
            .find(|m| !markets.contains(m))
            .map(|m| format!("not available in {m}"))
    }
}

/// A set of ISO 3166-1 alpha-2 market codes, one bit each (a track lists up to about 185
/// markets; a pool holds thousands of tracks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct MarketSet([u64; 11]);

impl MarketSet {
    fn index(code: &str) -> Option<usize> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Some(
                usize::from(a.to_ascii_uppercase() - b'A') * 26
                    + usize::from(b.to_ascii_uppercase() - b'A'),
            ),
            _ => None,
        }
    }

    /// The set of `codes`; anything that is not two letters is not a market and is left out.
    pub fn from_codes<'a>(codes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = MarketSet::default();
        for i in codes.into_iter().filter_map(Self::index) {
            set.0[i / 64] |= 1 << (i % 64);
        }
        set
    }

    /// Whether `code` (either case) is in the set.
    pub fn contains(&self, code: &str) -> bool {
        Self::index(code).is_some_and(|i| self.0[i / 64] & (1 << (i % 64)) != 0)
    }

    /// The codes, upper case, in order.
    pub fn codes(&self) -> Vec<String> {
        (0..26 * 26)
            .filter(|i| self.0[i / 64] & (1 << (i % 64)) != 0)
            .map(|i| {
                // i < 676, so both quotients are letters.
                let (a, b) = ((i / 26) as u8, (i % 26) as u8);
                String::from_utf8_lossy(&[b'A' + a, b'A' + b]).into_owned()
            })
            .collect()
    }
}

impl From<Vec<String>> for MarketSet {
    fn from(codes: Vec<String>) -> Self {
        MarketSet::from_codes(codes.iter().map(String::as_str))
    }
}

impl From<MarketSet> for Vec<String> {
    fn from(set: MarketSet) -> Self {
        set.codes()
    }
}

impl Candidate {
    /// The recording this track is a version of: its ISRC, else its normalised title and
    /// artists (version markers such as "- Remastered 2011" dropped).
    pub fn recording_key(&self) -> String {
        if let Some(isrc) = &self.isrc {
            return format!("isrc:{}", isrc.to_ascii_uppercase());
        }
        let title = self
            .name
            .split(" - ")
            .next()
            .unwrap_or(&self.name)
            .split(" (")
            .next()
            .unwrap_or(&self.name);
        let mut artists: Vec<String> = self.artists.iter().map(|a| normalise(a)).collect();
        artists.sort();
        format!("title:{}|{}", normalise(title), artists.join(","))
    }

    /// `Title — Artist` for people.
    pub fn display(&self) -> String {
        let who = if self.artist_names.is_empty() {
            self.artists.join(", ")
        } else {
            self.artist_names.join(", ")
        };
        format!("{} — {who}", self.name)
    }
}

/// Parses a Spotify release date (`2026`, `2026-11`, `2026-11-20`) to its first day.
pub fn release_date(s: &str) -> Option<NaiveDate> {
    let mut parts = s.split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next().map_or(Some(1), |m| m.parse().ok())?;
    let day: u32 = parts.next().map_or(Some(1), |d| d.parse().ok())?;
    NaiveDate::from_ymd_opt(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_market_set_holds_exactly_its_codes_and_round_trips() {
        let set = MarketSet::from_codes(["GB", "us", "ZZ", "AA", "GBR", "", "1A"]);
        assert_eq!(set.codes(), ["AA", "GB", "US", "ZZ"]);
        assert!(set.contains("gb") && set.contains("US"));
        assert!(!set.contains("DE") && !set.contains("GBR") && !set.contains(""));
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["AA","GB","US","ZZ"]"#);
        assert_eq!(serde_json::from_str::<MarketSet>(&json).unwrap(), set);
    }

    #[test]
    fn availability_names_the_first_market_missing_or_the_restriction() {
        let track = backbone::spotify::model::Track {
            id: backbone::validate::TrackId::parse("t", "3n3Ppam7vgaVa1iaRUc9Lp").unwrap(),
            name: "Mr. Brightside".into(),
            artists: vec![],
            album: None,
            duration_ms: 222_200,
            explicit: false,
            popularity: None,
            isrc: None,
            track_number: None,
            disc_number: None,
            available_markets: Some(vec!["DE".into(), "FR".into()]),
            playable: None,
            restriction: None,
        };
        let a = Availability::of(&track);
        let wanted = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(a.unavailable_in(&wanted(&["DE", "FR"])), None);
        assert_eq!(
            a.unavailable_in(&wanted(&["DE", "GB", "US"])).as_deref(),
            Some("not available in GB")
        );
        assert_eq!(a.unavailable_in(&[]), None, "no filter, no rejection");
        let relinked = backbone::spotify::model::Track {
            available_markets: None,
            playable: Some(false),
            ..track.clone()
        };
        assert_eq!(
            Availability::of(&relinked)
                .unavailable_in(&wanted(&["DE"]))
                .as_deref(),
            Some("not playable (unplayable)")
        );
        let restricted = backbone::spotify::model::Track {
            restriction: Some("market".into()),
            ..relinked
        };
        assert_eq!(
            Availability::of(&restricted)
                .unavailable_in(&wanted(&["DE"]))
                .as_deref(),
            Some("not playable (market)")
        );
        let unknown = Availability::default();
        assert!(unknown.is_unknown());
        assert_eq!(
            unknown.unavailable_in(&wanted(&["GB"])),
            None,
            "unknown passes"
        );
    }

    #[test]
    fn camelot_distances() {
        let k = |s| Camelot::parse(s).unwrap();
        assert_eq!(k("8A").distance(k("8A")), 0);
        assert_eq!(k("8A").distance(k("9A")), 1);
        assert_eq!(k("12A").distance(k("1A")), 1);
        assert_eq!(k("8A").distance(k("8B")), 1);
        assert_eq!(k("8A").distance(k("2B")), 7);
        assert!(Camelot::parse("13A").is_none());
        assert!(Camelot::parse("8C").is_none());
        assert!(Camelot::parse("").is_none());
    }

    #[test]
    fn release_dates_at_every_precision() {
        assert_eq!(release_date("2026"), NaiveDate::from_ymd_opt(2026, 1, 1));
        assert_eq!(
            release_date("2026-11"),
            NaiveDate::from_ymd_opt(2026, 11, 1)
        );
        assert_eq!(
            release_date("2026-11-20"),
            NaiveDate::from_ymd_opt(2026, 11, 20)
        );
        assert_eq!(release_date("soon"), None);
    }
}
