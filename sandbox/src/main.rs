//! `spotify-sandbox [ADDR]`: serves the sandbox until stopped (default 127.0.0.1:8899).
//!
//! `SANDBOX_TIER` (`development` | `extended`), `SANDBOX_SEED` and `SANDBOX_CONFIG` (a JSON
//! [`spotify_sandbox::SandboxConfig`]) adjust it. The CLI's `tasks sandbox serve` calls
//! [`spotify_sandbox::serve`] the same way.

use std::net::SocketAddr;

use spotify_sandbox::{SandboxConfig, Tier};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber_init();
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8899".into())
        .parse()?;
    let mut config: SandboxConfig = match std::env::var("SANDBOX_CONFIG") {
        Ok(json) => serde_json::from_str(&json)?,
        Err(_) => SandboxConfig::default(),
    };
    if let Ok(tier) = std::env::var("SANDBOX_TIER") {
        config.tier = match tier.as_str() {
            "extended" => Tier::Extended,
            "development" => Tier::Development,
            other => {
                return Err(format!(
                    "SANDBOX_TIER: expected development or extended, got {other:?}"
                )
                .into());
            }
        };
    }
    if let Ok(seed) = std::env::var("SANDBOX_SEED") {
        config.seed = seed.parse().map_err(|e| format!("SANDBOX_SEED: {e}"))?;
    }
    eprintln!(
        "Spotify sandbox on http://{addr} (tier {:?}): SPOTIFY_API_BASE_URL=http://{addr}/v1 SPOTIFY_AUTH_BASE_URL=http://{addr}",
        config.tier
    );
    spotify_sandbox::serve(addr, config).await?;
    Ok(())
}

fn tracing_subscriber_init() {}
