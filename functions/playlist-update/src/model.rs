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
