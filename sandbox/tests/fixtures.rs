//! Real recorded Spotify responses (../shared/spotify/fixtures) served by a test server and read
//! through the adapter: nothing the tasks use is lost, old and new playlist shapes alike.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use backbone::spotify::model::{PageRequest, Playable};
use backbone::spotify::{
    SpotifyCatalog, SpotifyClient, SpotifyConfig, SpotifyLibrary, SpotifyPlaylists, Tier,
};
use backbone::telemetry::{Capture, Metrics};
use backbone::validate::{AlbumId, ArtistId, PlaylistId, TrackId};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "shared",
        "spotify",
        "fixtures",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

const NEW_AND_OLD: &str = "3cEYpjA9oz9GiPac4AsH4n";
const OLD_ONLY: &str = "3cEYpjA9oz9GiPac4AsOLD";
const NEW_ONLY: &str = "3cEYpjA9oz9GiPac4AsNEW";

/// The transition fixture with only one of the two shapes kept.
fn playlist_shape(keep_new: bool) -> Value {
    let mut v = fixture("playlist_new_items_shape.json");
    let (drop_page, drop_item) = if keep_new {
        ("tracks", "track")
    } else {
        ("items", "item")
    };
    let obj = v.as_object_mut().unwrap();
    obj.remove(drop_page);
    let page_key = if keep_new { "items" } else { "tracks" };
    for item in obj[page_key]["items"].as_array_mut().unwrap() {
        item.as_object_mut().unwrap().remove(drop_item);
    }
    v
}

fn json(v: Value) -> impl IntoResponse {
    axum::Json(v)
}

async fn recorded_server() -> std::net::SocketAddr {
    let app = Router::new()
        .route(
            "/api/token",
            post(|body: String| async move {
                if body.contains("refresh_token") {
                    json(fixture("token_refresh.json"))
                } else {
                    json(fixture("token_client_credentials.json"))
                }
            }),
        )
        .route(
            "/v1/artists/{id}",
            get(|| async { json(fixture("artist.json")) }),
        )
        .route(
            "/v1/artists",
            get(|| async { json(fixture("several_artists.json")) }),
        )
        .route(
            "/v1/artists/{id}/albums",
            get(|| async { json(fixture("artist_albums_page.json")) }),
        )
        .route(
            "/v1/albums/{id}",
            get(|| async { json(fixture("album.json")) }),
        )
        .route(
            "/v1/tracks/{id}",
            get(|| async { json(fixture("track.json")) }),
        )
        .route(
            "/v1/tracks",
            get(|| async { json(fixture("several_tracks.json")) }),
        )
        .route("/v1/me", get(|| async { json(fixture("me_profile.json")) }))
        .route(
            "/v1/playlists/{id}",
            get(
                |axum::extract::Path(id): axum::extract::Path<String>| async move {
                    match id.as_str() {
                        OLD_ONLY => json(playlist_shape(false)),
                        NEW_ONLY => json(playlist_shape(true)),
                        _ => json(fixture("playlist_new_items_shape.json")),
                    }
                },
            ),
        )
        .route(
            "/v1/playlists/{id}/items",
            get(|| async {
                let v = fixture("playlist_new_items_shape.json");
                json(v["items"].clone())
            })
            .post(|| async {
                (
                    StatusCode::CREATED,
                    axum::Json(fixture("playlist_snapshot_id.json")),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn client(tier: Tier) -> SpotifyClient {
    let addr = recorded_server().await;
    let config = SpotifyConfig::for_urls(
        &format!("http://{addr}/v1"),
        &format!("http://{addr}"),
        tier,
    );
    let secrets = common::MemSecrets::with(&[
        ("spotify/client_id", "id"),
        ("spotify/client_secret", "secret"),
        ("spotify/refresh_token", "refresh"),
    ]);
    SpotifyClient::new(
        config,
        secrets,
        Metrics::new("T", vec![], Arc::new(Capture::new())),
    )
}

#[tokio::test]
async fn recorded_catalog_responses_parse_into_domain_types() {
    let client = client(Tier::Extended).await;
    let s = client.session_for(Duration::from_secs(30));

    let artist = s
        .artist(&"0OdUWJ0sBjDrqHygGUXeCF".parse::<ArtistId>().unwrap())
        .await
        .unwrap();
    assert_eq!(artist.name, "Band of Horses");
    assert_eq!(artist.followers, Some(306_565));
    assert_eq!(artist.popularity, Some(59));
    assert_eq!(
        artist.genres.as_deref(),
        Some(&["indie folk".to_owned(), "indie pop".to_owned()][..])
    );
    assert_eq!(artist.images.len(), 4);

    let ids: Vec<ArtistId> = ["0oSGxfWSnnOXhD2fKuz2Gy", "3dBVyJ7JuOMt4GE9607Qin"]
        .iter()
        .map(|i| i.parse().unwrap())
        .collect();
    let several = s.artists(&ids).await.unwrap();
    assert_eq!(several[0].as_ref().unwrap().name, "David Bowie");
    assert_eq!(several[1].as_ref().unwrap().followers, Some(52_338));

    let albums = s
        .artist_albums(
            &"1vCWHaC5f2uS3yhpwWbIA6".parse().unwrap(),
            PageRequest::first(2),
        )
        .await
        .unwrap();
    assert_eq!(
        (albums.items.len(), albums.total, albums.has_next),
        (2, Some(64), true)
    );
    assert_eq!(albums.next_request().unwrap().offset, 2);
    let single = &albums.items[0];
    assert_eq!(single.album_group.as_deref(), Some("single"));
    assert_eq!(single.artists.len(), 3);
    assert_eq!(single.release_date.as_deref(), Some("2019-08-23"));
    assert_eq!(single.total_tracks, Some(2));

    let album = s
        .album(&"0sNOF9WDwhWunNAHPD3Baj".parse::<AlbumId>().unwrap())
        .await
        .unwrap();
    assert_eq!(album.name, "She's So Unusual");
    assert_eq!(album.popularity, Some(39));
    assert_eq!(album.upc.as_deref(), Some("5099749994324"));
    assert_eq!(album.release_date_precision.as_deref(), Some("year"));
    let tracks = album.tracks.unwrap();
    assert_eq!(tracks.total, Some(13));
    assert_eq!(tracks.items[0].name, "Money Changes Everything");
    assert_eq!(
        tracks.items[0].popularity, None,
        "simplified tracks carry none"
    );

    let track = s
        .track(&"3n3Ppam7vgaVa1iaRUc9Lp".parse::<TrackId>().unwrap())
        .await
        .unwrap();
    assert_eq!(track.name, "Mr. Brightside");
    assert_eq!(track.popularity, Some(73));
    assert_eq!(track.isrc.as_deref(), Some("GBFFP0300052"));
    assert_eq!(track.duration_ms, 222_200);
    assert_eq!(
        track.album.as_ref().unwrap().name,
        "Hot Fuss (Deluxe Version)"
    );
    assert_eq!(track.artists[0].name, "The Killers");

    let ids: Vec<TrackId> = ["3n3Ppam7vgaVa1iaRUc9Lp", "3twNvmDtFQtAd5gMKedhLD"]
        .iter()
        .map(|i| i.parse().unwrap())
        .collect();
    // A fresh invocation: the first id is cached in this one (the server answers by file).
    let s = client.session_for(Duration::from_secs(30));
    let several = s.tracks(&ids).await.unwrap();
    assert_eq!(several[1].as_ref().unwrap().name, "Somebody Told Me");
    assert_eq!(several[1].as_ref().unwrap().popularity, Some(65));
}

#[tokio::test]
async fn recorded_user_and_playlist_responses_parse_in_both_shapes() {
    let client = client(Tier::Development).await;
    let s = client.session_for(Duration::from_secs(30));
    let me = s.current_user().await.unwrap();
    assert_eq!(me.id.as_str(), "wizzler");
    assert_eq!(me.followers, Some(3829));
    assert_eq!(me.product.as_deref(), Some("premium"));

    for id in [NEW_AND_OLD, OLD_ONLY, NEW_ONLY] {
        let playlist = s
            .playlist(&id.parse::<PlaylistId>().unwrap())
            .await
            .unwrap();
        assert_eq!(playlist.name, "Spotify Web API Testing playlist", "{id}");
        assert_eq!(playlist.owner.id.as_str(), "jmperezperez");
        assert_eq!(playlist.snapshot_id.0, "AAAAEur2+1I6iINI0+04uFfVLiVJraUQ");
        assert_eq!(playlist.total_items, Some(5));
        let items = playlist.items.expect("first page embedded");
        let first = &items.items[0];
        assert_eq!(first.added_by.as_ref().unwrap().as_str(), "jmperezperez");
        assert!(first.added_at.is_some());
        let Some(Playable::Track(track)) = &first.item else {
            panic!("{id}: expected a track, got {:?}", first.item);
        };
        assert_eq!(track.name, "Api");
        assert_eq!(track.isrc.as_deref(), Some("DEKC41200989"));
        assert_eq!(track.popularity, Some(6));
    }

    let id: PlaylistId = NEW_AND_OLD.parse().unwrap();
    let page = s
        .playlist_items(&id, PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(page.total, Some(5));
    assert!(!page.has_next);
    let snapshot = s
        .add_items(&id, &["4rzfv0JLZfVhOhbSQ8o5jZ".parse().unwrap()], None)
        .await
        .unwrap();
    assert_eq!(
        snapshot.0,
        "JbtmHBDBAYu3/bt8BOXKjzKx3i0b6LCa/wVjyl6qQ2Yf6nFXkbmzuEa+ZI/U1yF+"
    );
}
