//! social-media-sync for local runs: the social sandbox started in-process (the default: no
//! account, no network), or the real platforms when `SOCIAL_CONTACT` is set (MusicBrainz asks
//! for a contact in the User-Agent) with credentials from `SECRET_SOCIAL_CREDENTIALS`; and the
//! `tasks social` commands (link, unlink, show).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backbone::SecretString;
use backbone::config::{ConfigError, EnvSource};
use backbone::error::PortError;
use backbone::local::EnvSecrets;
use backbone::ports::{Secrets, Store, WebApi, WebRequest, WebResponse};
use backbone::validate::ArtistId;
use backbone::web::HttpWeb;
use chrono::NaiveDate;
use clap::Subcommand;
use serde::Serialize;
use social_media_sync::identity::{Graph, ManualLink};
use social_media_sync::platform::Platform;
use social_media_sync::{Settings, records};
use social_sandbox::{SocialSandbox, SocialSandboxConfig};

/// The name of the credentials secret in local runs.
pub const SECRET: &str = "social/credentials";

/// The MusicBrainz spacing of local runs against the sandbox.
pub const LOCAL_MUSICBRAINZ_INTERVAL: Duration = Duration::from_millis(50);

/// Why local social access could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocialSetupError {
    /// A variable is malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client or a secret failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The sandbox could not start.
    #[error(transparent)]
    Sandbox(#[from] social_sandbox::SandboxError),
}

/// What the local social-media-sync talks to.
pub struct LocalSocial {
    /// The upstreams.
    pub web: Arc<dyn WebApi>,
    /// The credentials secret.
    pub secrets: Arc<dyn Secrets>,
    /// The in-process sandbox, unless the real platforms are configured.
    pub sandbox: Option<SocialSandbox>,
    /// The task's settings.
    pub settings: Settings,
}

/// Refuses every request, saying why: local runs without the sandbox's recordings and
/// without `SOCIAL_CONTACT` reach no platform.
struct Unreachable(String);

#[async_trait::async_trait]
impl WebApi for Unreachable {
    async fn get(&self, _request: &WebRequest) -> Result<WebResponse, PortError> {
        Err(PortError::permanent("web.get", self.0.clone()))
    }
}

impl LocalSocial {
    /// The real platforms when `SOCIAL_CONTACT` is set; else a sandbox whose roster is
    /// `roster` (the Spotify sandbox's demo artists), built from `shared/social/fixtures`.
    pub async fn from_env(
        env: &dyn EnvSource,
        roster: Vec<String>,
    ) -> Result<Self, SocialSetupError> {
        let mut settings = Settings::from_env(env)?;
        if backbone::config::optional(env, "SOCIAL_CONTACT").is_some() {
            let web = HttpWeb::new(
                &social_media_sync::user_agent(env)?,
                Duration::from_secs(10),
                social_media_sync::upstreams_from_env(env)?,
            )?;
            settings
                .credentials_secret
                .get_or_insert_with(|| SECRET.to_owned());
            return Ok(Self {
                web: Arc::new(web),
                secrets: Arc::new(EnvSecrets::new()),
                sandbox: None,
                settings,
            });
        }
        let here = std::env::current_dir().unwrap_or_else(|_| Path::new(".").to_owned());
        let Some(fixtures) = social_sandbox::find_fixtures(&here) else {
            let reason = "no social sandbox: shared/social/fixtures not found beside the project (set SOCIAL_FIXTURES_DIR), and SOCIAL_CONTACT is not set for the real platforms".to_owned();
            tracing::warn!("{reason}");
            return Ok(Self {
                web: Arc::new(Unreachable(reason)),
                secrets: Arc::new(EnvSecrets::new()),
                sandbox: None,
                settings,
            });
        };
        let mut config = SocialSandboxConfig::new(roster, fixtures);
        // The sandbox keeps MusicBrainz's rule (requests spaced, deployment-wide) at a twentieth
        // of its pace, so a simulated month runs in seconds; the task is paced to match.
        config.musicbrainz_interval = LOCAL_MUSICBRAINZ_INTERVAL;
        settings.musicbrainz_interval = LOCAL_MUSICBRAINZ_INTERVAL;
        let sandbox = SocialSandbox::spawn(config).await?;
        let web = HttpWeb::new(
            "music-tasks-local/0 ( local run against the social sandbox )",
            Duration::from_secs(10),
            sandbox.base_urls(),
        )?;
        let secrets = EnvSecrets::new();
        secrets
            .put(SECRET, &SecretString::from(sandbox.credentials_json()))
            .await?;
        settings.credentials_secret = Some(SECRET.to_owned());
        Ok(Self {
            web: Arc::new(web),
            secrets: Arc::new(secrets),
            sandbox: Some(sandbox),
            settings,
        })
    }
}

/// `tasks social`.
#[derive(Debug, Subcommand)]
pub enum SocialCommand {
    /// Link an artist to an account by hand; it wins over what open data says, from the next sync.
    Link {
        /// The artist (id, spotify: URI or open.spotify.com URL).
        artist: String,
        /// The platform: musicbrainz, wikidata, youtube, lastfm, deezer, instagram, tiktok.
        platform: String,
        /// The account: a channel id or @handle, a username, an id, an MBID, a QID.
        account: String,
        /// Who links it, for the record.
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Remove a manual link.
    Unlink {
        /// The artist.
        artist: String,
        /// The platform.
        platform: String,
    },
    /// The identity graph, the manual links and the series of an artist.
    Show {
        /// The artist.
        artist: String,
        /// First day of the series (default: 30 days ago).
        #[arg(long)]
        from: Option<NaiveDate>,
    },
}

/// What `tasks social show` prints.
#[derive(Debug, Serialize)]
pub struct ArtistSocial {
    /// The artist.
    pub artist: String,
    /// The graph, if resolved.
    pub graph: Option<Graph>,
    /// The manual links.
    pub manual: Vec<ManualLink>,
    /// The series: `platform.metric` → (day, value, precision).
    pub series: std::collections::BTreeMap<String, Vec<(NaiveDate, u64, String)>>,
}

/// The graph, manual links and series of `artist` from `from` to `to`.
pub async fn show(
    store: &dyn Store,
    artist: &ArtistId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<ArtistSocial, PortError> {
    let series = backbone::series::load(store, artist, from, to)
        .await?
        .into_iter()
        .map(|((p, m), points)| {
            let values = points
                .into_iter()
                .map(|pt| {
                    let precision = match pt.precision {
                        backbone::series::Precision::Exact => "exact".to_owned(),
                        backbone::series::Precision::SignificantFigures { figures } => {
                            format!("{figures} significant figures")
                        }
                    };
                    (pt.as_of, pt.value, precision)
                })
                .collect();
            (format!("{p}.{m}"), values)
        })
        .collect();
    Ok(ArtistSocial {
        artist: artist.to_string(),
        graph: records::graph(store, artist).await?,
        manual: records::manual_links(store, artist).await?,
        series,
    })
}

/// Runs one `tasks social` command and returns what to print.
pub async fn run(
    store: &dyn Store,
    now: chrono::DateTime<chrono::Utc>,
    command: SocialCommand,
) -> anyhow::Result<serde_json::Value> {
    let parse_artist = |a: &str| ArtistId::parse("artist", a).map_err(anyhow::Error::from);
    let parse_platform = |p: &str| p.parse::<Platform>().map_err(anyhow::Error::msg);
    match command {
        SocialCommand::Link {
            artist,
            platform,
            account,
            by,
        } => {
            let artist = parse_artist(&artist)?;
            let platform = parse_platform(&platform)?;
            let account = platform.normalise(&account).map_err(anyhow::Error::msg)?;
            let link = ManualLink {
                platform,
                account,
                entered_at: now,
                by,
            };
            records::set_manual_link(store, &artist, &link).await?;
            Ok(serde_json::json!({"artist": artist, "linked": link}))
        }
        SocialCommand::Unlink { artist, platform } => {
            let artist = parse_artist(&artist)?;
            let platform = parse_platform(&platform)?;
            records::remove_manual_link(store, &artist, platform).await?;
            Ok(serde_json::json!({"artist": artist, "unlinked": platform}))
        }
        SocialCommand::Show { artist, from } => {
            let artist = parse_artist(&artist)?;
            let to = now.date_naive();
            let from = from.unwrap_or(to - chrono::Duration::days(30));
            Ok(serde_json::to_value(show(store, &artist, from, to).await?)?)
        }
    }
}
