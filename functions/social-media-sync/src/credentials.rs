//! The platforms' keys and tokens, read from one JSON secret.
//!
//! `{"youtube_api_key": "...", "lastfm_api_key": "...", "instagram_access_token": "...",
//! "instagram_user_id": "...", "tiktok_tokens": {"<spotify artist id>": "..."}}`: every field
//! optional. A platform without its credentials is skipped and reported, not an error.
//! MusicBrainz, Wikidata and Deezer's public API need none.

use std::collections::BTreeMap;

use backbone::SecretString;
use serde::Deserialize;

/// The credentials, each wrapped so `Debug` never prints a value.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// YouTube Data API key.
    #[serde(default)]
    pub youtube_api_key: Option<SecretString>,
    /// Last.fm API key.
    #[serde(default)]
    pub lastfm_api_key: Option<SecretString>,
    /// The Graph API token of the team's Instagram business account.
    #[serde(default)]
    pub instagram_access_token: Option<SecretString>,
    /// That account's IG user id (business discovery is asked through it).
    #[serde(default)]
    pub instagram_user_id: Option<String>,
    /// TikTok user tokens, per artist whose team connected its account.
    #[serde(default)]
    pub tiktok_tokens: BTreeMap<String, SecretString>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: &Option<SecretString>| if o.is_some() { "[set]" } else { "[unset]" };
        f.debug_struct("Credentials")
            .field("youtube_api_key", &set(&self.youtube_api_key))
            .field("lastfm_api_key", &set(&self.lastfm_api_key))
            .field("instagram_access_token", &set(&self.instagram_access_token))
            .field("instagram_user_id", &self.instagram_user_id)
            .field(
                "tiktok_tokens",
                &self.tiktok_tokens.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Credentials {
    /// Parses the secret's JSON; the error names the field, never a value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            // serde's message may quote the offending value: keep only its category.
            let kind = match e.inner().classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    "not valid JSON"
                }
                _ => "unexpected field or type",
            };
            format!("social credentials secret: {path}: {kind}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_errors_never_show_values() {
        let c = Credentials::parse(
            r#"{"youtube_api_key": "AIzaSECRET", "tiktok_tokens": {"a": "act.SECRET"}}"#,
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("[set]") && debug.contains("[unset]"));
        let err = Credentials::parse(r#"{"youtube_api_key": 12345678}"#).unwrap_err();
        assert!(
            err.contains("youtube_api_key") && !err.contains("12345678"),
            "{err}"
        );
        let err = Credentials::parse(r#"{"youtube_key": "AIzaSECRET"}"#).unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
    }
}
