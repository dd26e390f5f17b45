//! What a draft request asks for: the kind, the language, the tone and the length, with their
//! documented bounds, and the derivations it declares.

use backbone::validate::{ArtistId, Validate, ValidationError};
use serde::{Deserialize, Serialize};

use crate::facts::{Fact, FactSheet, FactValue};
use crate::lang::{Language, Unit};

/// Spotify's limit for a playlist description, characters.
pub const PLAYLIST_DESCRIPTION_CHARS: usize = 300;
/// Most tracks a request may name.
pub const MAX_TRACKS: usize = 10;
/// Most derivations a request may declare.
pub const MAX_DERIVATIONS: usize = 5;

/// What kind of text to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A short artist bio: 20 to 80 words (default 50).
    BioShort,
    /// A long artist bio: 80 to 300 words (default 150).
    BioLong,
    /// A release announcement: 30 to 150 words (default 80).
    ReleaseAnnouncement,
    /// A playlist description: 10 to 50 words (default 30), and never over Spotify's 300
    /// characters.
    PlaylistDescription,
    /// A social post: 10 to 50 words (default 35), at most 280 characters.
    SocialPost,
}

impl Kind {
    /// The word bounds (min, default, max).
    pub fn words(self) -> (u16, u16, u16) {
        match self {
            Kind::BioShort => (20, 50, 80),
            Kind::BioLong => (80, 150, 300),
            Kind::ReleaseAnnouncement => (30, 80, 150),
            Kind::PlaylistDescription => (10, 30, 50),
            Kind::SocialPost => (10, 35, 50),
        }
    }

    /// The hard character limit of the final text, where the platform has one.
    pub fn max_chars(self) -> Option<usize> {
        match self {
            Kind::PlaylistDescription => Some(PLAYLIST_DESCRIPTION_CHARS),
            Kind::SocialPost => Some(280),
            _ => None,
        }
    }

    /// How the kind is named in a prompt.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::BioShort => "a short artist biography",
            Kind::BioLong => "a long artist biography",
            Kind::ReleaseAnnouncement => "a release announcement",
            Kind::PlaylistDescription => "a playlist description",
            Kind::SocialPost => "a social media post",
        }
    }

    /// The `snake_case` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BioShort => "bio_short",
            Kind::BioLong => "bio_long",
            Kind::ReleaseAnnouncement => "release_announcement",
            Kind::PlaylistDescription => "playlist_description",
            Kind::SocialPost => "social_post",
        }
    }
}

/// The voice of a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// Plain and factual (default).
    #[default]
    Neutral,
    /// Friendly.
    Warm,
    /// Lively.
    Energetic,
    /// Press-release formal.
    Formal,
}

impl Tone {
    /// How the tone is named in a prompt.
    pub fn describe(self) -> &'static str {
        match self {
            Tone::Neutral => "neutral and factual",
            Tone::Warm => "warm and friendly",
            Tone::Energetic => "energetic",
            Tone::Formal => "formal",
        }
    }
}

/// A value computed from two facts, declared by the request so that the verifier accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Derivation {
    /// The percentage change from `from` to `to` (one decimal, signed).
    PercentChange {
        /// The derived value's id.
        id: String,
        /// The earlier value's fact id.
        from: String,
        /// The later value's fact id.
        to: String,
    },
}

impl Derivation {
    /// The derived fact, if both facts exist, are numbers and the change is defined.
    pub fn derive(&self, sheet: &FactSheet) -> Option<Fact> {
        match self {
            Derivation::PercentChange { id, from, to } => {
                let (a, b) = (sheet.get(from)?, sheet.get(to)?);
                let (x, y) = (a.number()?, b.number()?);
                if x == 0.0 || !x.is_finite() || !y.is_finite() {
                    return None;
                }
                let pct = ((y - x) / x * 1000.0).round() / 10.0;
                Some(Fact {
                    id: id.clone(),
                    label: format!("change from {} to {}", a.label, b.label),
                    value: FactValue::Percent { value: pct },
                    unit: Unit::None,
                    source: format!("derived: percent change {from} -> {to}"),
                    as_of: b.as_of,
                    priority: a.priority.max(b.priority),
                })
            }
        }
    }
}

/// A request for one draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    /// The artist.
    pub artist: ArtistId,
    /// The kind of text.
    pub kind: Kind,
    /// `en`, `fr` or `de`.
    pub language: Language,
    /// The voice (default neutral).
    #[serde(default)]
    pub tone: Tone,
    /// Target length in words, within the kind's bounds (default: the kind's default).
    #[serde(default)]
    pub max_words: Option<u16>,
    /// The release to announce (album id); required for a release announcement.
    #[serde(default)]
    pub release: Option<String>,
    /// Tracks whose analysis may be used (their track-analysis keys).
    #[serde(default)]
    pub tracks: Vec<String>,
    /// The playlist to describe (id); required for a playlist description.
    #[serde(default)]
    pub playlist: Option<String>,
    /// Values derived from two facts that the draft may state.
    #[serde(default)]
    pub derivations: Vec<Derivation>,
}

fn key_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'))
}

impl Validate for DraftRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        let (min, _, max) = self.kind.words();
        if let Some(w) = self.max_words
            && !(min..=max).contains(&w)
        {
            return Err(ValidationError::new(
                "max_words",
                format!("{w} is outside {min} to {max} for {}", self.kind.as_str()),
            ));
        }
        if self.tracks.len() > MAX_TRACKS {
            return Err(ValidationError::new(
                "tracks",
                format!("at most {MAX_TRACKS} tracks"),
            ));
        }
        if let Some(bad) = self.tracks.iter().find(|t| !key_ok(t)) {
            return Err(ValidationError::new(
                "tracks",
                format!("{bad:?} is not a track key"),
            ));
        }
        for (field, v) in [("release", &self.release), ("playlist", &self.playlist)] {
            if let Some(v) = v
                && !key_ok(v)
            {
                return Err(ValidationError::new(field, format!("{v:?} is not an id")));
            }
        }
        if self.kind == Kind::ReleaseAnnouncement && self.release.is_none() {
            return Err(ValidationError::new(
                "release",
                "a release announcement needs the release (album id)",
            ));
        }
        if self.kind == Kind::PlaylistDescription && self.playlist.is_none() {
            return Err(ValidationError::new(
                "playlist",
                "a playlist description needs the playlist id",
            ));
        }
        if self.derivations.len() > MAX_DERIVATIONS {
            return Err(ValidationError::new(
                "derivations",
                format!("at most {MAX_DERIVATIONS}"),
            ));
        }
        for d in &self.derivations {
            let Derivation::PercentChange { id, from, to } = d;
            if ![id, from, to].iter().all(|s| key_ok(s)) {
                return Err(ValidationError::new(
                    "derivations",
                    "ids are 1 to 128 of [A-Za-z0-9:._-]",
                ));
            }
        }
        Ok(())
    }
}

impl DraftRequest {
    /// The target length in words.
    pub fn words(&self) -> u16 {
        self.max_words.unwrap_or(self.kind.words().1)
    }
}
