//! The Spotify adapter against the sandbox: tiers, batching, fallback, rate limits, tokens.

mod common;

use std::time::{Duration, Instant};

use backbone::error::{Classify, ErrorClass};
use backbone::spotify::model::{Cursor, PageRequest, Playable, SearchKind};
use backbone::spotify::{SpotifyCatalog, SpotifyError, SpotifyLibrary, SpotifyPlaylists, Tier};
use backbone::validate::{AlbumId, ArtistId, PlaylistId, TrackId};
use common::{sandbox_config, world};
use spotify_sandbox::{Faults, Tier as SandboxTier};

fn artist_ids(w: &common::World, n: usize) -> Vec<ArtistId> {
    w.sandbox.catalog().artists[..n]
        .iter()
        .map(|a| a.id.parse().unwrap())
        .collect()
}

fn track_ids(w: &common::World, n: usize) -> Vec<TrackId> {
    w.sandbox.catalog().tracks[..n]
        .iter()
        .map(|t| t.id.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn extended_tier_batches_fifty_artists_and_tracks_per_call() {
    let w = world(sandbox_config(SandboxTier::Extended), Tier::Extended).await;
    let session = w.session();
    let artists = session.artists(&artist_ids(&w, 120)).await.unwrap();
    assert_eq!(artists.len(), 120);
    assert!(artists.iter().all(Option::is_some));
    assert_eq!(
        w.sandbox.calls_to("GET /v1/artists"),
        3,
        "120 ids = 50 + 50 + 20"
    );
    assert_eq!(w.sandbox.calls_to("GET /v1/artists/{id}"), 0);
    let tracks = session.tracks(&track_ids(&w, 60)).await.unwrap();
    assert!(tracks.iter().all(Option::is_some));
    assert_eq!(w.sandbox.calls_to("GET /v1/tracks"), 2);
    let album_ids: Vec<AlbumId> = w.sandbox.catalog().albums[..41]
        .iter()
        .map(|a| a.id.parse().unwrap())
        .collect();
    session.albums(&album_ids).await.unwrap();
    assert_eq!(
        w.sandbox.calls_to("GET /v1/albums"),
        3,
        "albums go 20 per call"
    );
    // Extended keeps the fields.
    let first = artists[0].as_ref().unwrap();
    assert!(first.followers.is_some() && first.popularity.is_some() && first.genres.is_some());
    assert!(tracks[0].as_ref().unwrap().popularity.is_some());
    assert_eq!(
        session.stats().calls,
        3 + 2 + 3 + 1,
        "plus one client-credentials token"
    );
    assert_eq!(w.metric("SpotifyCalls"), 9.0);
}

#[tokio::test]
async fn development_tier_uses_single_calls_and_keeps_absent_fields_absent() {
    let w = world(sandbox_config(SandboxTier::Development), Tier::Development).await;
    let session = w.session();
    let artists = session.artists(&artist_ids(&w, 12)).await.unwrap();
    assert_eq!(w.sandbox.calls_to("GET /v1/artists/{id}"), 12);
    assert_eq!(w.sandbox.calls_to("GET /v1/artists"), 0);
    for artist in artists.iter().map(|a| a.as_ref().unwrap()) {
        assert_eq!(artist.followers, None, "absent, not 0");
        assert_eq!(artist.popularity, None);
        assert_eq!(artist.genres, None);
    }
    let track = session.track(&track_ids(&w, 1)[0]).await.unwrap();
    assert_eq!(track.popularity, None);
    assert!(track.isrc.is_some() && track.album.is_some());
    // Development Mode caps search and artist albums at 10 per page; the adapter caps too.
    let page = session
        .artist_albums(&artist_ids(&w, 1)[0], PageRequest::first(50))
        .await
        .unwrap();
    assert!(page.limit <= 10);
    let results = session
        .search(
            "a",
            &[SearchKind::Artist, SearchKind::Track],
            PageRequest::first(50),
        )
        .await
        .unwrap();
    assert!(results.artists.unwrap().items.len() <= 10);
}

#[tokio::test]
async fn forbidden_batch_switches_to_single_calls_once() {
    // Configured extended, but the app is really in Development Mode.
    let w = world(sandbox_config(SandboxTier::Development), Tier::Extended).await;
    let session = w.session();
    let ids = artist_ids(&w, 60);
    let artists = session.artists(&ids).await.unwrap();
    assert!(artists.iter().all(Option::is_some));
    assert_eq!(
        w.sandbox.calls_to("GET /v1/artists"),
        1,
        "one refused batch"
    );
    assert_eq!(w.sandbox.calls_to("GET /v1/artists/{id}"), 60);
    let tracks = session.tracks(&track_ids(&w, 5)).await.unwrap();
    assert!(tracks.iter().all(Option::is_some));
    assert_eq!(
        w.sandbox.calls_to("GET /v1/tracks"),
        0,
        "no batch after the fallback"
    );
    assert!(session.stats().batch_fallback);
    assert_eq!(session.effective_tier(), Tier::Development);
    assert_eq!(w.metric("SpotifyBatchFallback"), 1.0, "reported once");
}

#[tokio::test]
async fn a_storm_of_429s_on_30_percent_of_calls_still_completes() {
    let mut config = sandbox_config(SandboxTier::Development);
    config.faults = Faults {
        rate_limit_rate: 0.3,
        retry_after_secs: 1,
        ..Faults::default()
    };
    let w = world(config, Tier::Development).await;
    let session = w.session();
    let started = Instant::now();
    let artists = session.artists(&artist_ids(&w, 16)).await.unwrap();
    assert!(artists.iter().all(Option::is_some));
    let stats = session.stats();
    assert!(stats.rate_limited > 0, "the storm hit: {stats:?}");
    assert_eq!(
        stats.retries, stats.rate_limited,
        "every 429 was waited out and retried"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(u64::from(stats.rate_limited)),
        "Retry-After honoured"
    );
    assert_eq!(
        w.metric("SpotifyRateLimited"),
        f64::from(stats.rate_limited)
    );
    assert_eq!(w.metric("SpotifyRetries"), f64::from(stats.retries));
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_surfaces_as_rate_limited() {
    let w = world(sandbox_config(SandboxTier::Development), Tier::Development).await;
    let id = artist_ids(&w, 1).remove(0);
    w.sandbox.rate_limit_next(1, 19_000);
    let session = w.client.session_for(Duration::from_secs(30));
    let started = Instant::now();
    let err = session.artist(&id).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "never sleeps a long Retry-After"
    );
    assert_eq!(
        err.class(),
        ErrorClass::RateLimited(Duration::from_secs(19_000))
    );
    assert!(matches!(err, SpotifyError::RateLimited { .. }));
}

#[tokio::test]
async fn server_errors_and_expired_tokens_are_retried() {
    let mut config = sandbox_config(SandboxTier::Development);
    config.faults = Faults {
        server_error_rate: 0.2,
        expired_token_rate: 0.1,
        ..Faults::default()
    };
    let w = world(config, Tier::Development).await;
    let session = w.session();
    let artists = session.artists(&artist_ids(&w, 20)).await.unwrap();
    assert!(artists.iter().all(Option::is_some));
    assert!(session.stats().retries > 0);
}

#[tokio::test]
async fn rotated_refresh_token_is_written_back_through_secrets() {
    let w = world(sandbox_config(SandboxTier::Development), Tier::Development).await;
    let me = w.session().current_user().await.unwrap();
    assert_eq!(me.id.as_str(), spotify_sandbox::USER_ID);
    let rotated = w.sandbox.current_refresh_token().unwrap();
    assert_ne!(rotated, "sandbox-refresh-token-0");
    assert_eq!(
        w.secrets.value("spotify/refresh_token").as_deref(),
        Some(rotated.as_str())
    );
    assert_eq!(w.metric("SpotifyRefreshTokenRotated"), 1.0);
    // A new cold start (fresh client, same secret store) refreshes with the rotated token.
    let config = w.client.config().clone();
    let again = backbone::spotify::SpotifyClient::new(config, w.secrets.clone(), w.metrics.clone());
    again
        .session_for(Duration::from_secs(60))
        .current_user()
        .await
        .unwrap();
}

#[tokio::test]
async fn invalid_grant_is_permanent_reported_once_and_never_retried() {
    let w = world(sandbox_config(SandboxTier::Development), Tier::Development).await;
    w.sandbox.revoke_refresh_tokens();
    let session = w.session();
    let err = session.current_user().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("re-authorise"), "{err}");
    let again = session
        .playlist_items(
            &w.sandbox.playlists()[0].0.parse::<PlaylistId>().unwrap(),
            PageRequest::first(10),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        again,
        SpotifyError::ReauthorisationRequired { .. }
    ));
    assert_eq!(
        w.sandbox.calls_to("POST /api/token"),
        1,
        "refused once, never retried"
    );
    assert_eq!(w.sandbox.api_calls(), 0);
    assert_eq!(w.metric("SpotifyReauthorisationRequired"), 1.0);
}

#[tokio::test]
async fn the_request_cache_makes_no_duplicate_calls() {
    let w = world(sandbox_config(SandboxTier::Extended), Tier::Extended).await;
    let session = w.session();
    let ids = artist_ids(&w, 3);
    session.artist(&ids[0]).await.unwrap();
    session.artist(&ids[0]).await.unwrap();
    session.artists(&ids).await.unwrap();
    session.artists(&ids).await.unwrap();
    assert_eq!(w.sandbox.calls_to("GET /v1/artists/{id}"), 1);
    assert_eq!(
        w.sandbox.calls_to("GET /v1/artists"),
        1,
        "only the two missing ids"
    );
    // A new invocation asks again: the cache is per invocation.
    w.client
        .session_for(Duration::from_secs(10))
        .artist(&ids[0])
        .await
        .unwrap();
    assert_eq!(w.sandbox.calls_to("GET /v1/artists/{id}"), 2);
}

#[tokio::test]
async fn the_call_budget_stops_an_invocation() {
    let w = world(sandbox_config(SandboxTier::Development), Tier::Development).await;
    let mut config = w.client.config().clone();
    config.call_budget = 5;
    let client =
        backbone::spotify::SpotifyClient::new(config, w.secrets.clone(), w.metrics.clone());
    let err = client
        .session_for(Duration::from_secs(30))
        .artists(&artist_ids(&w, 10))
        .await
        .unwrap_err();
    assert!(matches!(err, SpotifyError::BudgetExhausted { budget: 5 }));
    assert_eq!(err.class(), ErrorClass::Transient);
}

#[tokio::test]
async fn playlist_edits_thread_snapshots_and_chunk_by_100() {
    let w = world(sandbox_config(SandboxTier::Development), Tier::Development).await;
    let session = w.session();
    let (owned, _) = w
        .sandbox
        .playlists()
        .into_iter()
        .find(|(_, own)| *own)
        .unwrap();
    let id: PlaylistId = owned.parse().unwrap();
    let before = session.playlist(&id).await.unwrap();
    let tracks = track_ids(&w, 150);
    let after_add = session.replace_items(&id, &tracks).await.unwrap();
    assert_ne!(after_add, before.snapshot_id);
    assert_eq!(w.sandbox.calls_to("PUT /v1/playlists/{id}/items"), 1);
    assert_eq!(
        w.sandbox.calls_to("POST /v1/playlists/{id}/items"),
        1,
        "the 50 beyond 100"
    );
    let first = session
        .playlist_items(&id, PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(first.total, Some(150));
    assert!(first.has_next);
    let ids: Vec<TrackId> = first
        .items
        .iter()
        .filter_map(|i| match &i.item {
            Some(Playable::Track(t)) => Some(t.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids[..], tracks[..50]);
    let reordered = session
        .reorder_items(&id, 0, 10, 2, Some(&after_add))
        .await
        .unwrap();
    let removed = session
        .remove_items(&id, &tracks[..120], Some(&reordered))
        .await
        .unwrap();
    assert_eq!(w.sandbox.calls_to("DELETE /v1/playlists/{id}/items"), 2);
    assert_ne!(removed, reordered);
    let page = session
        .playlist_items(&id, PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(page.total, Some(30), "edits invalidate the cached pages");
    // Development Mode: items of someone else's playlist are refused.
    let (other, _) = w
        .sandbox
        .playlists()
        .into_iter()
        .find(|(_, own)| !*own)
        .unwrap();
    let err = session
        .playlist_items(&other.parse().unwrap(), PageRequest::first(10))
        .await
        .unwrap_err();
    assert!(matches!(err, SpotifyError::Forbidden { .. }));
}

#[tokio::test]
async fn recently_played_pages_by_cursor_and_user_playlists_list() {
    let w = world(sandbox_config(SandboxTier::Development), Tier::Development).await;
    let session = w.session();
    let first = session.recently_played(50, None).await.unwrap();
    assert_eq!(first.items.len(), 50);
    let Some(Cursor::Before(before)) = first.next else {
        panic!("expected an older page: {:?}", first.next);
    };
    let second = session.recently_played(50, first.next).await.unwrap();
    assert!(
        second
            .items
            .iter()
            .all(|h| h.played_at.timestamp_millis() < before)
    );
    let newer = session
        .recently_played(50, Some(Cursor::After(first.after.unwrap())))
        .await
        .unwrap();
    assert!(newer.items.is_empty());
    let mine = session
        .current_user_playlists(PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(mine.items.len(), 5);
    assert!(mine.items.iter().all(|p| p.total_items.is_some()));
}

#[tokio::test]
async fn stats_evolve_day_by_day() {
    let w = world(sandbox_config(SandboxTier::Extended), Tier::Extended).await;
    let id = artist_ids(&w, 1).remove(0);
    let day0 = w.session().artist(&id).await.unwrap();
    w.sandbox.advance_days(30);
    let day30 = w.session().artist(&id).await.unwrap();
    assert_ne!(day0.followers, day30.followers);
}

#[tokio::test]
async fn a_playlists_file_carries_edits_to_the_next_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sandbox-playlists.json");
    let config = spotify_sandbox::SandboxConfig {
        playlists_file: Some(file.clone()),
        ..sandbox_config(SandboxTier::Development)
    };
    let first = world(config.clone(), Tier::Development).await;
    let (owned, _) = first
        .sandbox
        .playlists()
        .into_iter()
        .find(|(_, own)| *own)
        .unwrap();
    let id: PlaylistId = owned.parse().unwrap();
    let tracks = track_ids(&first, 7);
    let snapshot = first.session().replace_items(&id, &tracks).await.unwrap();
    first.sandbox.stop().await;

    let second = world(config.clone(), Tier::Development).await;
    let session = second.session();
    let playlist = session.playlist(&id).await.unwrap();
    assert_eq!(
        playlist.snapshot_id, snapshot,
        "same version, same snapshot"
    );
    let page = session
        .playlist_items(&id, PageRequest::first(50))
        .await
        .unwrap();
    let ids: Vec<TrackId> = page
        .items
        .iter()
        .filter_map(|i| match &i.item {
            Some(Playable::Track(t)) => Some(t.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, tracks);
    second.sandbox.stop().await;

    // Another catalog: the file's track indexes would mean other tracks, so it is not used.
    let other = spotify_sandbox::SandboxConfig {
        seed: 7,
        ..config.clone()
    };
    let third = world(other, Tier::Development).await;
    let generated = third.session().playlist(&id).await;
    assert!(
        generated.map_or(true, |p| p.snapshot_id != snapshot),
        "a file of another catalog is ignored"
    );
    third.sandbox.stop().await;

    // A damaged file stops the start, naming the file, rather than losing the playlists.
    std::fs::write(&file, b"{\"seed\": 42, \"artists\": ").unwrap();
    let err = spotify_sandbox::spawn(config).await.err().unwrap();
    let text = backbone::error::chain(&err);
    assert!(text.contains("sandbox-playlists.json"), "{text}");
    assert!(text.contains("EOF"), "{text}");
}
