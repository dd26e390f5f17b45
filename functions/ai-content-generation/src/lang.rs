//! Languages and how values are written in each: numbers, compact counts, percentages, dates
//! and unit nouns. The renderer and the verifier share these functions, so a value has exactly
//! one written form per language.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// A draft's language (the seed's documentation languages). Anything else is refused when the
/// request is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English.
    En,
    /// French.
    Fr,
    /// German.
    De,
}

/// Every language, in a fixed order.
pub const LANGUAGES: [Language; 3] = [Language::En, Language::Fr, Language::De];

/// French thousands separator and the space before `%` and unit symbols (CLDR: U+202F).
pub const NNBSP: char = '\u{202F}';

impl Language {
    /// The ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
            Language::De => "de",
        }
    }

    /// The language's name in English (for the prompt).
    pub fn name(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Fr => "French",
            Language::De => "German",
        }
    }

    fn separators(self) -> (char, char) {
        // (thousands, decimal)
        match self {
            Language::En => (',', '.'),
            Language::Fr => (NNBSP, ','),
            Language::De => ('.', ','),
        }
    }

    /// An integer with the language's grouping: 1,234,567 / 1 234 567 / 1.234.567.
    pub fn integer(self, n: i64) -> String {
        let (thousands, _) = self.separators();
        let digits = n.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        if n < 0 {
            out.push('-');
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(thousands);
            }
            out.push(c);
        }
        out
    }

    /// A decimal with `decimals` places (rounded half away from zero), grouped.
    pub fn decimal(self, value: f64, decimals: u8) -> String {
        let (_, point) = self.separators();
        let fixed = format!("{:.*}", usize::from(decimals), value.abs());
        let (int, frac) = fixed.split_once('.').unwrap_or((&fixed, ""));
        // The integer part of a finite value formatted by `format!` is digits only.
        let int_value: i64 = int.parse().unwrap_or(0);
        let mut out = self.integer(int_value);
        if value < 0.0 && fixed.chars().any(|c| c.is_ascii_digit() && c != '0') {
            out.insert(0, '-');
        }
        if !frac.is_empty() {
            out.push(point);
            out.push_str(frac);
        }
        out
    }

    /// A count as written in prose: in full below a million, compact above
    /// (1.2M / 1,2 M / 1,2 Mio.; 3.4B / 3,4 Md / 3,4 Mrd.).
    pub fn count(self, n: u64) -> String {
        const MILLION: u64 = 1_000_000;
        const BILLION: u64 = 1_000_000_000;
        let (scale, suffix) = if n >= BILLION {
            (
                BILLION,
                match self {
                    Language::En => "B".to_owned(),
                    Language::Fr => format!("{NNBSP}Md"),
                    Language::De => format!("{NNBSP}Mrd."),
                },
            )
        } else if n >= MILLION {
            (
                MILLION,
                match self {
                    Language::En => "M".to_owned(),
                    Language::Fr => format!("{NNBSP}M"),
                    Language::De => format!("{NNBSP}Mio."),
                },
            )
        } else {
            return self.integer(n as i64);
        };
        // Tenths of the scale, rounded half up; exact in integers.
        let tenths = (n * 10 + scale / 2) / scale;
        let (_, point) = self.separators();
        let mut out = (tenths / 10).to_string();
        if !tenths.is_multiple_of(10) {
            out.push(point);
            out.push_str(&(tenths % 10).to_string());
        }
        out.push_str(&suffix);
        out
    }

    /// A percentage with one decimal and, when `signed`, an explicit sign:
    /// +12.5% / +12,5 % / +12,5 %.
    pub fn percent(self, value: f64, signed: bool) -> String {
        let mut body = self.decimal(value.abs(), 1);
        if signed {
            let negative = value < 0.0 && body.chars().any(|c| c.is_ascii_digit() && c != '0');
            body.insert(0, if negative { '-' } else { '+' });
        } else if value < 0.0 {
            body.insert(0, '-');
        }
        match self {
            Language::En => format!("{body}%"),
            Language::Fr | Language::De => format!("{body}{NNBSP}%"),
        }
    }

    /// A month's name.
    pub fn month(self, month: u32) -> &'static str {
        let i = (month.clamp(1, 12) - 1) as usize;
        match self {
            Language::En => EN_MONTHS[i],
            Language::Fr => FR_MONTHS[i],
            Language::De => DE_MONTHS[i],
        }
    }

    /// A full date: March 5, 2026 / 5 mars 2026 / 5. März 2026.
    pub fn date(self, date: NaiveDate) -> String {
        let (d, m, y) = (date.day(), self.month(date.month()), date.year());
        match self {
            Language::En => format!("{m} {d}, {y}"),
            Language::Fr => format!("{d} {m} {y}"),
            Language::De => format!("{d}. {m} {y}"),
        }
    }

    /// A month of a year: March 2026 / mars 2026 / März 2026.
    pub fn month_year(self, year: i32, month: u32) -> String {
        format!("{} {year}", self.month(month))
    }

    /// A duration as minutes and seconds: 3:07.
    pub fn duration(self, seconds: u64) -> String {
        format!("{}:{:02}", seconds / 60, seconds % 60)
    }
}

/// English month names.
pub const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// French month names.
pub const FR_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
/// German month names.
pub const DE_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];

/// A unit a figure is counted in; its noun is part of the figure's written form, so a figure
/// with the wrong unit does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Spotify followers.
    Followers,
    /// Streams (plays).
    Streams,
    /// Tracks (of a playlist or release).
    Tracks,
    /// Beats per minute.
    Bpm,
    /// Loudness units relative to full scale.
    Lufs,
    /// Spotify popularity, out of 100.
    Popularity,
    /// YouTube channel subscribers (rounded by YouTube).
    YoutubeSubscribers,
    /// Last.fm listeners.
    LastfmListeners,
    /// Deezer fans.
    DeezerFans,
    /// Instagram followers.
    InstagramFollowers,
    /// TikTok followers.
    TiktokFollowers,
    /// No unit (text, dates, durations, percentages).
    None,
}

/// The platforms other than Spotify whose audiences carry their name in a unit noun. A figure
/// followed by one of them (`529 abonnés YouTube`, `529 followers on TikTok`) is read as that
/// platform's figure, so the verifier does not accept it as a Spotify form.
pub const PLATFORM_NAMES: [&str; 5] = ["YouTube", "Last.fm", "Deezer", "Instagram", "TikTok"];

/// Every unit with a noun (for unit-swap tests).
pub const COUNTED_UNITS: [Unit; 8] = [
    Unit::Followers,
    Unit::Streams,
    Unit::Tracks,
    Unit::YoutubeSubscribers,
    Unit::LastfmListeners,
    Unit::DeezerFans,
    Unit::InstagramFollowers,
    Unit::TiktokFollowers,
];

impl Unit {
    /// The unit's noun or symbol for `n` of it in `lang`, or `None` for unitless values.
    pub fn noun(self, lang: Language, singular: bool) -> Option<&'static str> {
        use Language::*;
        Some(match (self, lang, singular) {
            (Unit::Followers, En, true) => "follower",
            (Unit::Followers, En, false) => "followers",
            (Unit::Followers, Fr, true) => "abonné",
            (Unit::Followers, Fr, false) => "abonnés",
            (Unit::Followers, De, _) => "Follower",
            (Unit::Streams, En, true) => "stream",
            (Unit::Streams, En, false) => "streams",
            (Unit::Streams, Fr, true) => "écoute",
            (Unit::Streams, Fr, false) => "écoutes",
            (Unit::Streams, De, true) => "Stream",
            (Unit::Streams, De, false) => "Streams",
            (Unit::Tracks, En, true) => "track",
            (Unit::Tracks, En, false) => "tracks",
            (Unit::Tracks, Fr, true) => "titre",
            (Unit::Tracks, Fr, false) => "titres",
            (Unit::Tracks, De, true) => "Titel",
            (Unit::Tracks, De, false) => "Titel",
            // The other platforms' audiences name the platform, so that no figure of one
            // reads as another's (a French `abonnés` alone would be both Spotify's and
            // YouTube's).
            (Unit::YoutubeSubscribers, En, true) => "YouTube subscriber",
            (Unit::YoutubeSubscribers, En, false) => "YouTube subscribers",
            (Unit::YoutubeSubscribers, Fr, true) => "abonné YouTube",
            (Unit::YoutubeSubscribers, Fr, false) => "abonnés YouTube",
            (Unit::YoutubeSubscribers, De, true) => "YouTube-Abonnent",
            (Unit::YoutubeSubscribers, De, false) => "YouTube-Abonnenten",
            (Unit::LastfmListeners, En, true) => "Last.fm listener",
            (Unit::LastfmListeners, En, false) => "Last.fm listeners",
            (Unit::LastfmListeners, Fr, true) => "auditeur Last.fm",
            (Unit::LastfmListeners, Fr, false) => "auditeurs Last.fm",
            (Unit::LastfmListeners, De, _) => "Last.fm-Hörer",
            (Unit::DeezerFans, En, true) => "Deezer fan",
            (Unit::DeezerFans, En, false) => "Deezer fans",
            (Unit::DeezerFans, Fr, true) => "fan Deezer",
            (Unit::DeezerFans, Fr, false) => "fans Deezer",
            (Unit::DeezerFans, De, true) => "Deezer-Fan",
            (Unit::DeezerFans, De, false) => "Deezer-Fans",
            (Unit::InstagramFollowers, En, true) => "Instagram follower",
            (Unit::InstagramFollowers, En, false) => "Instagram followers",
            (Unit::InstagramFollowers, Fr, true) => "abonné Instagram",
            (Unit::InstagramFollowers, Fr, false) => "abonnés Instagram",
            (Unit::InstagramFollowers, De, _) => "Instagram-Follower",
            (Unit::TiktokFollowers, En, true) => "TikTok follower",
            (Unit::TiktokFollowers, En, false) => "TikTok followers",
            (Unit::TiktokFollowers, Fr, true) => "abonné TikTok",
            (Unit::TiktokFollowers, Fr, false) => "abonnés TikTok",
            (Unit::TiktokFollowers, De, _) => "TikTok-Follower",
            (Unit::Bpm, _, _) => "BPM",
            (Unit::Lufs, _, _) => "LUFS",
            (Unit::Popularity, _, _) => "/100",
            (Unit::None, _, _) => return None,
        })
    }
}
