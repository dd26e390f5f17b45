//! A deterministic [`TextGenerator`]: writes the draft from fixed sentence templates per
//! language, one per fact it recognises in the prompt, with every fact as a placeholder.
//!
//! Not a language model: it gives the pipeline a reproducible, always-grounded answer for tests
//! and for `TEXT_GENERATOR=template` runs where the prose matters less than the figures.

use async_trait::async_trait;
use backbone::ports::{Generation, StopReason, TextError, TextGenerator, TextRequest};

use crate::lang::Language;
use crate::prompt::parse_user;
use crate::request::Kind;

/// The template writer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateWriter;

fn sentence(lang: Language, id: &str, ids: &[String]) -> Option<String> {
    let has = |i: &str| ids.iter().any(|x| x == i);
    let name = has("artist.name");
    let s = match (lang, id) {
        (Language::En, "artist.genres") if name => "{{artist.name}} makes {{artist.genres}} music.",
        (Language::Fr, "artist.genres") if name => {
            "{{artist.name}} fait de la musique {{artist.genres}}."
        }
        (Language::De, "artist.genres") if name => "{{artist.name}} macht {{artist.genres}}.",
        (Language::En, "artist.followers") => "On Spotify the artist has {{artist.followers}}.",
        (Language::Fr, "artist.followers") => "Sur Spotify, l'artiste compte {{artist.followers}}.",
        (Language::De, "artist.followers") => "Auf Spotify hat das Projekt {{artist.followers}}.",
        (Language::En, "artist.popularity") => {
            "Its Spotify popularity stands at {{artist.popularity}}."
        }
        (Language::Fr, "artist.popularity") => {
            "Sa popularité sur Spotify atteint {{artist.popularity}}."
        }
        (Language::De, "artist.popularity") => {
            "Die Popularität auf Spotify liegt bei {{artist.popularity}}."
        }
        (Language::En, "release.0.name") if has("release.0.date") => {
            "The latest release, {{release.0.name}}, came out in {{release.0.date}}."
        }
        (Language::Fr, "release.0.name") if has("release.0.date") => {
            "La dernière sortie, {{release.0.name}}, date de {{release.0.date}}."
        }
        (Language::De, "release.0.name") if has("release.0.date") => {
            "Die neueste Veröffentlichung, {{release.0.name}}, stammt aus {{release.0.date}}."
        }
        (Language::En, "playlist.name") if has("playlist.tracks") => {
            "{{playlist.name}}: {{playlist.tracks}} picked for you."
        }
        (Language::Fr, "playlist.name") if has("playlist.tracks") => {
            "{{playlist.name}} : {{playlist.tracks}} choisis pour vous."
        }
        (Language::De, "playlist.name") if has("playlist.tracks") => {
            "{{playlist.name}}: {{playlist.tracks}} für dich ausgewählt."
        }
        (Language::En, "track.0.tempo") if has("track.0.title") => {
            "{{track.0.title}} moves at {{track.0.tempo}}."
        }
        (Language::Fr, "track.0.tempo") if has("track.0.title") => {
            "{{track.0.title}} avance à {{track.0.tempo}}."
        }
        (Language::De, "track.0.tempo") if has("track.0.title") => {
            "{{track.0.title}} läuft mit {{track.0.tempo}}."
        }
        (Language::En, "growth") => "Follower change over the last weeks: {{growth}}.",
        (Language::Fr, "growth") => "Évolution des abonnés ces dernières semaines : {{growth}}.",
        (Language::De, "growth") => "Entwicklung der Follower in den letzten Wochen: {{growth}}.",
        (Language::En, "streams.0.window") if has("streams.window_days") => {
            "Fans streamed the music {{streams.0.window}} over the last {{streams.window_days}} days of reports."
        }
        (Language::Fr, "streams.0.window") if has("streams.window_days") => {
            "Sa musique a cumulé {{streams.0.window}} sur les {{streams.window_days}} derniers jours de relevés."
        }
        (Language::De, "streams.0.window") if has("streams.window_days") => {
            "In den letzten {{streams.window_days}} Tagen der Berichte kam die Musik auf {{streams.0.window}}."
        }
        (Language::En, "social") => "Beyond Spotify: {{social}}.",
        (Language::Fr, "social") => "Au-delà de Spotify : {{social}}.",
        (Language::De, "social") => "Jenseits von Spotify: {{social}}.",
        _ => return None,
    };
    if id == "social" {
        // One sentence lists every platform's audience the sheet holds.
        let list: Vec<String> = ids
            .iter()
            .filter(|i| i.starts_with("social."))
            .map(|i| format!("{{{{{i}}}}}"))
            .collect();
        if list.is_empty() {
            return None;
        }
        return Some(s.replace("{{social}}", &list.join(", ")));
    }
    Some(s.to_owned())
}

fn opening(lang: Language, kind: Kind, ids: &[String]) -> Option<&'static str> {
    let has = |i: &str| ids.iter().any(|x| x == i);
    if !has("artist.name") {
        return None;
    }
    Some(match (lang, kind) {
        (Language::En, Kind::ReleaseAnnouncement) => "New music from {{artist.name}} is here.",
        (Language::Fr, Kind::ReleaseAnnouncement) => "{{artist.name}} revient avec du nouveau.",
        (Language::De, Kind::ReleaseAnnouncement) => "Neue Musik von {{artist.name}} ist da.",
        (Language::En, _) => "Meet {{artist.name}}.",
        (Language::Fr, _) => "Voici {{artist.name}}.",
        (Language::De, _) => "Das ist {{artist.name}}.",
    })
}

/// The answer for a prompt's brief and facts.
pub fn write(kind: Kind, lang: Language, ids: &[String], words: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    if kind != Kind::PlaylistDescription
        && let Some(o) = opening(lang, kind, ids)
    {
        parts.push(o.to_owned());
    }
    let order = [
        "playlist.name",
        "release.0.name",
        "artist.genres",
        "artist.followers",
        "growth",
        "streams.0.window",
        "social",
        "track.0.tempo",
        "artist.popularity",
    ];
    for id in order {
        let present = if id == "social" {
            ids.iter().any(|x| x.starts_with("social."))
        } else {
            ids.iter().any(|x| x == id)
        };
        if present && let Some(s) = sentence(lang, id, ids) {
            let so_far: usize = parts.iter().map(|p| p.split_whitespace().count()).sum();
            if so_far + s.split_whitespace().count() > words && !parts.is_empty() {
                break;
            }
            parts.push(s);
        }
    }
    parts.join(" ")
}

#[async_trait]
impl TextGenerator for TemplateWriter {
    fn model(&self) -> String {
        "template".into()
    }

    fn context_tokens(&self) -> usize {
        usize::MAX
    }

    async fn generate(&self, request: &TextRequest) -> Result<Generation, TextError> {
        let (kind, lang, ids) = parse_user(&request.user).ok_or_else(|| TextError::Refused {
            provider: "template".into(),
            reason: "the prompt has no Kind/Language header".into(),
        })?;
        // The budget is three tokens a word (see `prompt::max_tokens`).
        let words = (request.max_tokens.saturating_sub(64) / 3).max(10) as usize;
        Ok(Generation {
            text: write(kind, lang, &ids, words),
            stop: StopReason::EndTurn,
            model: self.model(),
            input_tokens: None,
            output_tokens: None,
            guardrail_trace: None,
        })
    }
}
