//! Property-based fuzzing of the platform response decoders (MusicBrainz, Wikidata, YouTube,
//! Last.fm, Deezer, Instagram, TikTok): no body makes one panic, and every refusal says what
//! is wrong. Near-valid bodies start from the recorded responses in `shared/social/fixtures`
//! beside the project (TikTok, which has none recorded, from its documented shape).
//!
//! The case count is proptest's (`PROPTEST_CASES`, 256 unless set); the documented long run
//! (docs/reliability.md) sets `PROPTEST_CASES=100000`.

use std::path::PathBuf;

use backbone::fuzz::{arb_json, arb_text, near};
use proptest::prelude::*;
use serde_json::{Value, json};
use social_media_sync::figures::{deezer, instagram, lastfm, tiktok, youtube};
use social_media_sync::{musicbrainz, wikidata};

/// A recorded response, parsed: `SOCIAL_FIXTURES_DIR`, else the first ancestor of this crate
/// holding `shared/social/fixtures`.
fn fixture(name: &str) -> Value {
    let dir = std::env::var_os("SOCIAL_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|a| a.join("shared").join("social").join("fixtures"))
                .find(|p| p.is_dir())
                .expect("shared/social/fixtures beside the project, or SOCIAL_FIXTURES_DIR")
        });
    let path = dir.join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// TikTok's `GET /v2/user/info/` answer, as its documentation shows it.
fn tiktok_user() -> Value {
    json!({
        "data": { "user": {
            "open_id": "723f24d7-e717-40f8-a2b6-cb8464cd23b4",
            "username": "tiktok",
            "follower_count": 1_234_567,
            "likes_count": 98_765_432,
            "video_count": 321
        }},
        "error": { "code": "ok", "message": "", "log_id": "20231120125345E1C0C1A1B2C3D4E5F6" }
    })
}

/// An artist's url-rels in the recorded envelope of `musicbrainz_release_url_rels.json`, with
/// the artist-url type ids (the recorded release's relations yield no account: a refusal-free
/// but empty answer, kept in the arbitrary-input runs).
fn artist_relations() -> Value {
    let mut doc = fixture("musicbrainz_release_url_rels.json");
    doc["relations"] = json!([
        {"type": "youtube", "type-id": musicbrainz::YOUTUBE, "target-type": "url", "ended": false,
         "url": {"resource": "https://www.youtube.com/channel/UCc4K7bAqpdBP8jh1j9XZAww", "id": "x"}},
        {"type": "social network", "type-id": musicbrainz::SOCIAL_NETWORK, "target-type": "url",
         "ended": false, "url": {"resource": "https://www.instagram.com/thebeatles/", "id": "y"}},
        {"type": "free streaming", "type-id": musicbrainz::FREE_STREAMING, "target-type": "url",
         "ended": false, "url": {"resource": "https://www.deezer.com/artist/1", "id": "z"}},
    ]);
    doc
}

/// A query service answer with `?item` bindings (the recorded SELECT binds other variables:
/// it is a refusal, so it stays in the arbitrary-input runs).
fn sparql_items() -> Value {
    json!({
        "head": { "vars": ["item"] },
        "results": { "bindings": [
            { "item": { "type": "uri", "value": "http://www.wikidata.org/entity/Q1299" } },
            { "item": { "type": "uri", "value": "http://www.wikidata.org/entity/Q20145" } }
        ]}
    })
}

/// A decoder over raw bytes: whether it accepted the body, or the refusal's text.
type Decoder = fn(&[u8]) -> Result<(), String>;

/// Every decoder of a platform response, named, over raw bytes: whether it accepted the
/// body, or the refusal's text.
fn decoders() -> Vec<(&'static str, Decoder)> {
    fn text<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<(), String> {
        r.map(|_| ()).map_err(|e| e.to_string())
    }
    vec![
        ("musicbrainz.artists_of_url", |b| {
            text(musicbrainz::artists_of_url(b))
        }),
        ("musicbrainz.artist_urls", |b| {
            text(musicbrainz::artist_urls(b))
        }),
        ("wikidata.items_of", |b| text(wikidata::items_of(b))),
        ("wikidata.entity", |b| text(wikidata::entity("Q1299", b))),
        ("youtube.channels", |b| text(youtube::channels(b))),
        ("youtube.fault", |b| {
            let fault = youtube::fault(400, b);
            Err(fault.to_string())
        }),
        ("lastfm.artist", |b| text(lastfm::artist(b))),
        ("deezer.artist", |b| text(deezer::artist(b))),
        ("instagram.discovery", |b| text(instagram::discovery(b))),
        ("tiktok.user", |b| text(tiktok::user(b))),
    ]
}

/// Runs every decoder on `body`: none may panic, and a refusal must say something.
fn check_all(body: &[u8]) -> Result<(), TestCaseError> {
    for (name, decode) in decoders() {
        if let Err(reason) = decode(body) {
            prop_assert!(
                !reason.trim().is_empty(),
                "{name}: a refusal without a reason"
            );
        }
    }
    Ok(())
}

/// One decoder on a near-valid body: it may accept or refuse, never panic, and a refusal
/// names what is wrong.
fn check_one(
    decode: impl Fn(&[u8]) -> Result<(), String>,
    value: &Value,
) -> Result<(), TestCaseError> {
    let body = serde_json::to_vec(value).expect("JSON values serialise");
    if let Err(reason) = decode(&body) {
        prop_assert!(!reason.trim().is_empty(), "a refusal without a reason");
    }
    Ok(())
}

macro_rules! near_valid {
    ($name:ident, $template:expr, $decode:expr) => {
        proptest! {
            #[test]
            fn $name(value in near($template)) {
                check_one($decode, &value)?;
            }
        }
    };
}

near_valid!(
    near_valid_musicbrainz_url_lookups_never_panic,
    fixture("musicbrainz_url_lookup_release_rels.json"),
    |b| musicbrainz::artists_of_url(b)
        .map(|_| ())
        .map_err(|e| e.to_string())
);
near_valid!(
    near_valid_musicbrainz_artist_relations_never_panic,
    artist_relations(),
    |b| musicbrainz::artist_urls(b)
        .map(|_| ())
        .map_err(|e| e.to_string())
);
near_valid!(
    near_valid_wikidata_sparql_results_never_panic,
    sparql_items(),
    |b| wikidata::items_of(b).map(|_| ()).map_err(|e| e.to_string())
);
near_valid!(
    near_valid_wikidata_entities_never_panic,
    fixture("wikidata_entitydata_Q20145_iu.json"),
    |b| wikidata::entity("Q20145", b)
        .map(|_| ())
        .map_err(|e| e.to_string())
);
near_valid!(
    near_valid_youtube_channels_never_panic,
    fixture("youtube_channels_list_snippet_statistics.json"),
    |b| youtube::channels(b).map(|_| ()).map_err(|e| e.to_string())
);
near_valid!(
    near_valid_youtube_errors_never_panic,
    fixture("youtube_error_400_keyInvalid.json"),
    |b| Err(youtube::fault(403, b).to_string())
);
near_valid!(
    near_valid_lastfm_artists_never_panic,
    fixture("lastfm_artist_getinfo_legiao_urbana_en.json"),
    |b| lastfm::artist(b).map(|_| ()).map_err(|e| e.to_string())
);
near_valid!(
    near_valid_deezer_artists_never_panic,
    fixture("deezer_artist_27.json"),
    |b| deezer::artist(b).map(|_| ()).map_err(|e| e.to_string())
);
near_valid!(
    near_valid_instagram_discoveries_never_panic,
    fixture("instagram_business_discovery_fields.json"),
    |b| instagram::discovery(b)
        .map(|_| ())
        .map_err(|e| e.to_string())
);
near_valid!(near_valid_tiktok_users_never_panic, tiktok_user(), |b| {
    tiktok::user(b).map(|_| ()).map_err(|e| e.to_string())
});

proptest! {
    /// Any JSON document, to every decoder.
    #[test]
    fn any_json_never_panics(value in arb_json()) {
        check_all(&serde_json::to_vec(&value).expect("JSON values serialise"))?;
    }

    /// Any text (fragments, invalid UTF-8 made lossy, deep nesting), to every decoder.
    #[test]
    fn any_text_never_panics(text in arb_text()) {
        check_all(text.as_bytes())?;
    }

    /// Raw bytes, invalid UTF-8 included, to every decoder.
    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_all(&bytes)?;
    }
}

/// The templates are real answers: each decodes, so the near-valid runs start from inside
/// the decoders' accepted language, not from a refusal.
#[test]
fn the_fuzz_templates_decode() {
    let bytes = |v: Value| serde_json::to_vec(&v).expect("JSON values serialise");
    assert!(
        musicbrainz::artists_of_url(&bytes(fixture("musicbrainz_url_lookup_release_rels.json")))
            .is_ok()
    );
    assert_eq!(
        musicbrainz::artist_urls(&bytes(artist_relations()))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(wikidata::items_of(&bytes(sparql_items())).unwrap().len(), 2);
    assert!(wikidata::items_of(&bytes(fixture("wikidata_sparql_results.json"))).is_err());
    assert!(
        wikidata::entity(
            "Q20145",
            &bytes(fixture("wikidata_entitydata_Q20145_iu.json"))
        )
        .is_ok()
    );
    assert!(
        !youtube::channels(&bytes(fixture(
            "youtube_channels_list_snippet_statistics.json"
        )))
        .unwrap()
        .is_empty()
    );
    assert!(
        lastfm::artist(&bytes(fixture(
            "lastfm_artist_getinfo_legiao_urbana_en.json"
        )))
        .is_ok()
    );
    assert!(deezer::artist(&bytes(fixture("deezer_artist_27.json"))).is_ok());
    assert!(
        instagram::discovery(&bytes(fixture("instagram_business_discovery_fields.json"))).is_ok()
    );
    let user = tiktok::user(&bytes(tiktok_user())).unwrap();
    assert_eq!(user.handle.as_deref(), Some("tiktok"));
}
