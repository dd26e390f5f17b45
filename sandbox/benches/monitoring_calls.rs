//! Spotify calls needed to monitor 1,000 artists, per tier, against the sandbox.
//!
//! `cargo bench -p spotify-sandbox --bench monitoring_calls`. Prints, per tier, the requests
//! the adapter made (from the sandbox's own counts) and the wall time. In the extended tier
//! the floor is 20 artist calls (1,000 / 50 ids per call).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backbone::SecretString;
use backbone::error::PortError;
use backbone::ports::Secrets;
use backbone::spotify::model::PageRequest;
use backbone::spotify::{SpotifyCatalog, SpotifyClient, SpotifyConfig, Tier};
use backbone::telemetry::{Capture, Metrics};
use backbone::validate::ArtistId;
use spotify_sandbox::{SandboxConfig, Tier as SandboxTier};

const ARTISTS: usize = 1000;

struct Fixed(SandboxConfig);

#[async_trait]
impl Secrets for Fixed {
    async fn get(&self, name: &str) -> Result<SecretString, PortError> {
        let value = match name {
            "spotify/client_id" => &self.0.client_id,
            "spotify/client_secret" => &self.0.client_secret,
            _ => &self.0.refresh_token,
        };
        Ok(SecretString::from(value.clone()))
    }

    async fn put(&self, _: &str, _: &SecretString) -> Result<(), PortError> {
        Ok(())
    }
}

async fn run(tier: Tier, with_albums: bool) {
    let sandbox_tier = match tier {
        Tier::Development => SandboxTier::Development,
        Tier::Extended => SandboxTier::Extended,
    };
    let config = SandboxConfig {
        tier: sandbox_tier,
        artists: ARTISTS,
        ..SandboxConfig::default()
    };
    let (addr, sandbox) = spotify_sandbox::spawn(config.clone())
        .await
        .expect("sandbox starts");
    let client = SpotifyClient::new(
        SpotifyConfig {
            call_budget: 10_000,
            ..SpotifyConfig::for_urls(
                &format!("http://{addr}/v1"),
                &format!("http://{addr}"),
                tier,
            )
        },
        Arc::new(Fixed(config)),
        Metrics::new("Bench", vec![], Arc::new(Capture::new())),
    );
    let ids: Vec<ArtistId> = sandbox
        .catalog()
        .artists
        .iter()
        .map(|a| a.id.parse().expect("sandbox ids are valid"))
        .collect();
    let session = client.session_for(Duration::from_secs(900));
    let started = Instant::now();
    let artists = session.artists(&ids).await.expect("artists");
    assert_eq!(artists.iter().flatten().count(), ARTISTS);
    if with_albums {
        for id in &ids {
            session
                .artist_albums(id, PageRequest::first(10))
                .await
                .expect("albums");
        }
    }
    let elapsed = started.elapsed();
    let calls = sandbox.calls();
    let artist_calls = calls.get("GET /v1/artists").copied().unwrap_or(0)
        + calls.get("GET /v1/artists/{id}").copied().unwrap_or(0);
    let album_calls = calls
        .get("GET /v1/artists/{id}/albums")
        .copied()
        .unwrap_or(0);
    let token_calls = calls.get("POST /api/token").copied().unwrap_or(0);
    println!(
        "tier={:<11} scenario={:<22} artists={ARTISTS} artist_calls={artist_calls:>4} album_calls={album_calls:>4} token_calls={token_calls} total_calls={:>4} wall={:?}",
        tier.as_str(),
        if with_albums {
            "stats+latest-releases"
        } else {
            "stats"
        },
        session.stats().calls,
        elapsed,
    );
    if tier == Tier::Extended {
        assert_eq!(artist_calls, 20, "extended floor: 1,000 / 50");
    }
    sandbox.stop().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        for tier in [Tier::Extended, Tier::Development] {
            run(tier, false).await;
            run(tier, true).await;
        }
    });
}
