//! Every endpoint the sandbox serves, in both tiers, answers with bodies that validate against
//! the public OpenAPI description (../shared/spotify/openapi.yml), errors included.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};
use spotify_sandbox::{Faults, SandboxConfig, Tier};

fn spec() -> Value {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "shared",
        "spotify",
        "openapi.yml",
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Value = serde_yaml_ng::from_str(&text).unwrap();
    openapi_to_json_schema(&mut v);
    v
}

/// OpenAPI 3.0 `nullable: true` becomes JSON Schema's `null` type.
fn openapi_to_json_schema(v: &mut Value) {
    match v {
        Value::Object(obj) => {
            for child in obj.values_mut() {
                openapi_to_json_schema(child);
            }
            if obj.get("nullable") == Some(&Value::Bool(true)) {
                obj.remove("nullable");
                match obj.get("type").cloned() {
                    Some(Value::String(t)) => {
                        obj.insert("type".into(), json!([t, "null"]));
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(obj));
                        obj.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(openapi_to_json_schema),
        _ => {}
    }
}

fn deref<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => spec
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("unresolved {r}")),
        None => v,
    }
}

/// The schema of `status` for `method path`, falling back to the shared error responses.
fn response_schema(spec: &Value, path: &str, method: &str, status: u16) -> Value {
    let op = &spec["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not in the spec");
    let declared = &op["responses"][status.to_string()];
    let response = if declared.is_object() {
        deref(spec, declared)
    } else {
        let shared = match status {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            429 => "TooManyRequests",
            other => panic!("{method} {path} declares no {other}"),
        };
        &spec["components"]["responses"][shared]
    };
    response["content"]["application/json"]["schema"].clone()
}

fn validate(spec: &Value, path: &str, method: &str, status: u16, body: &Value) {
    let schema = response_schema(spec, path, method, status);
    let mut root = match schema {
        Value::Object(obj) => obj,
        other => panic!("schema of {method} {path} is {other}"),
    };
    root.insert("components".into(), spec["components"].clone());
    let validator = jsonschema::validator_for(&Value::Object(root)).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:#?}\nbody: {}",
        &body.to_string()[..body.to_string().len().min(600)]
    );
}

struct Walk {
    http: reqwest::Client,
    base: String,
    app: String,
    user: String,
    spec: Value,
    seen: BTreeSet<String>,
}

impl Walk {
    async fn new(tier: Tier) -> (Self, spotify_sandbox::SandboxHandle) {
        let config = SandboxConfig {
            tier,
            artists: 60,
            ..SandboxConfig::default()
        };
        let (addr, handle) = spotify_sandbox::spawn(config.clone()).await.unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://{addr}");
        let token = |form: Vec<(&'static str, String)>| {
            let http = http.clone();
            let url = format!("{base}/api/token");
            let (id, secret) = (config.client_id.clone(), config.client_secret.clone());
            async move {
                let v: Value = http
                    .post(url)
                    .basic_auth(id, Some(secret))
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                for key in ["access_token", "token_type", "expires_in"] {
                    assert!(v.get(key).is_some(), "token response lacks {key}: {v}");
                }
                v["access_token"].as_str().unwrap().to_owned()
            }
        };
        let app = token(vec![("grant_type", "client_credentials".into())]).await;
        let user = token(vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", config.refresh_token.clone()),
        ])
        .await;
        (
            Self {
                http,
                base,
                app,
                user,
                spec: spec(),
                seen: BTreeSet::new(),
            },
            handle,
        )
    }

    /// Calls `method url` and validates the answer against `spec_path`'s schema for its status.
    async fn check(
        &mut self,
        method: &str,
        url: &str,
        spec_path: &str,
        user: bool,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let token = if user { &self.user } else { &self.app };
        let full = format!("{}/v1{url}", self.base);
        let mut req = match method {
            "get" => self.http.get(&full),
            "post" => self.http.post(&full),
            "put" => self.http.put(&full),
            "delete" => self.http.delete(&full),
            other => panic!("{other}"),
        }
        .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        let value: Value = response.json().await.unwrap();
        assert_eq!(status, expect, "{method} {url}: {value}");
        validate(&self.spec, spec_path, method, status, &value);
        self.seen.insert(format!("{method} {spec_path} {status}"));
        value
    }
}

async fn walk(tier: Tier) -> BTreeSet<String> {
    let (mut w, sandbox) = Walk::new(tier).await;
    let ext = tier == Tier::Extended;
    let c = sandbox.catalog();
    let (a0, a1) = (c.artists[0].id.clone(), c.artists[1].id.clone());
    let b0 = c.albums[0].id.clone();
    let b1 = c.albums[1].id.clone();
    let (t0, t1) = (c.tracks[0].id.clone(), c.tracks[1].id.clone());
    let (own, _) = sandbox.playlists().into_iter().find(|(_, o)| *o).unwrap();
    let (other, _) = sandbox.playlists().into_iter().find(|(_, o)| !*o).unwrap();
    let batch = if ext { 200 } else { 403 };

    let artist = w
        .check(
            "get",
            &format!("/artists/{a0}"),
            "/artists/{id}",
            false,
            None,
            200,
        )
        .await;
    assert_eq!(
        artist.get("popularity").is_some(),
        ext,
        "removed fields absent in development"
    );
    w.check(
        "get",
        &format!("/artists?ids={a0},{a1}"),
        "/artists",
        false,
        None,
        batch,
    )
    .await;
    w.check(
        "get",
        &format!("/artists/{a0}/albums?limit=10"),
        "/artists/{id}/albums",
        false,
        None,
        200,
    )
    .await;
    w.check(
        "get",
        &format!("/artists/{a0}/albums?limit=11"),
        "/artists/{id}/albums",
        false,
        None,
        if ext { 200 } else { 400 },
    )
    .await;
    w.check(
        "get",
        &format!("/artists/{a0}/top-tracks"),
        "/artists/{id}/top-tracks",
        false,
        None,
        batch,
    )
    .await;
    w.check(
        "get",
        &format!("/artists/{a0}/related-artists"),
        "/artists/{id}/related-artists",
        false,
        None,
        403,
    )
    .await;
    w.check(
        "get",
        &format!("/albums/{b0}"),
        "/albums/{id}",
        false,
        None,
        200,
    )
    .await;
    w.check(
        "get",
        &format!("/albums?ids={b0},{b1}"),
        "/albums",
        false,
        None,
        batch,
    )
    .await;
    w.check(
        "get",
        &format!("/albums/{b0}/tracks"),
        "/albums/{id}/tracks",
        false,
        None,
        200,
    )
    .await;
    let track = w
        .check(
            "get",
            &format!("/tracks/{t0}"),
            "/tracks/{id}",
            false,
            None,
            200,
        )
        .await;
    assert_eq!(track.get("popularity").is_some(), ext);
    w.check(
        "get",
        &format!("/tracks?ids={t0},{t1}"),
        "/tracks",
        false,
        None,
        batch,
    )
    .await;
    w.check(
        "get",
        "/tracks/0000000000000000000000",
        "/tracks/{id}",
        false,
        None,
        404,
    )
    .await;
    w.check(
        "get",
        "/search?q=a&type=artist,album,track&limit=10",
        "/search",
        false,
        None,
        200,
    )
    .await;
    w.check(
        "get",
        "/search?q=a&type=artist&limit=20",
        "/search",
        false,
        None,
        if ext { 200 } else { 400 },
    )
    .await;
    w.check(
        "get",
        "/browse/new-releases",
        "/browse/new-releases",
        false,
        None,
        batch,
    )
    .await;
    w.check(
        "get",
        "/browse/categories",
        "/browse/categories",
        false,
        None,
        403,
    )
    .await;
    w.check(
        "get",
        &format!("/audio-features?ids={t0}"),
        "/audio-features",
        false,
        None,
        403,
    )
    .await;
    w.check(
        "get",
        &format!("/audio-features/{t0}"),
        "/audio-features/{id}",
        false,
        None,
        403,
    )
    .await;
    w.check(
        "get",
        &format!("/audio-analysis/{t0}"),
        "/audio-analysis/{id}",
        false,
        None,
        403,
    )
    .await;
    w.check(
        "get",
        "/recommendations?seed_genres=pop",
        "/recommendations",
        false,
        None,
        403,
    )
    .await;

    w.check(
        "get",
        &format!("/playlists/{own}"),
        "/playlists/{playlist_id}",
        true,
        None,
        200,
    )
    .await;
    w.check(
        "get",
        &format!("/playlists/{other}"),
        "/playlists/{playlist_id}",
        true,
        None,
        200,
    )
    .await;
    w.check(
        "get",
        &format!("/playlists/{own}/items?limit=5"),
        "/playlists/{playlist_id}/items",
        true,
        None,
        200,
    )
    .await;
    w.check(
        "get",
        &format!("/playlists/{other}/items"),
        "/playlists/{playlist_id}/items",
        true,
        None,
        batch,
    )
    .await;
    w.check(
        "get",
        &format!("/playlists/{own}/tracks"),
        "/playlists/{playlist_id}/tracks",
        true,
        None,
        batch,
    )
    .await;
    w.check(
        "get",
        &format!("/playlists/{own}/items"),
        "/playlists/{playlist_id}/items",
        false,
        None,
        403,
    )
    .await;
    let uris = json!({"uris": [format!("spotify:track:{t0}"), format!("spotify:track:{t1}")], "position": 0});
    let snap = w
        .check(
            "post",
            &format!("/playlists/{own}/items"),
            "/playlists/{playlist_id}/items",
            true,
            Some(uris),
            201,
        )
        .await;
    let reorder = json!({"range_start": 0, "insert_before": 2, "range_length": 1, "snapshot_id": snap["snapshot_id"]});
    w.check(
        "put",
        &format!("/playlists/{own}/items"),
        "/playlists/{playlist_id}/items",
        true,
        Some(reorder),
        200,
    )
    .await;
    let remove = json!({"items": [{"uri": format!("spotify:track:{t1}")}]});
    w.check(
        "delete",
        &format!("/playlists/{own}/items"),
        "/playlists/{playlist_id}/items",
        true,
        Some(remove),
        200,
    )
    .await;
    let replace = json!({"uris": [format!("spotify:track:{t0}")]});
    w.check(
        "put",
        &format!("/playlists/{own}/items"),
        "/playlists/{playlist_id}/items",
        true,
        Some(replace),
        200,
    )
    .await;
    w.check(
        "post",
        &format!("/playlists/{other}/items"),
        "/playlists/{playlist_id}/items",
        true,
        Some(json!({"uris": [format!("spotify:track:{t0}")]})),
        403,
    )
    .await;
    w.check("get", "/me", "/me", true, None, 200).await;
    w.check("get", "/me", "/me", false, None, 403).await;
    w.check("get", "/me/playlists", "/me/playlists", true, None, 200)
        .await;
    let recent = w
        .check(
            "get",
            "/me/player/recently-played?limit=50",
            "/me/player/recently-played",
            true,
            None,
            200,
        )
        .await;
    let before = recent["cursors"]["before"].as_str().unwrap().to_owned();
    w.check(
        "get",
        &format!("/me/player/recently-played?before={before}"),
        "/me/player/recently-played",
        true,
        None,
        200,
    )
    .await;

    // Faults: 429 with Retry-After, 503 and expired tokens have the spec's error shape too.
    sandbox.rate_limit_next(1, 7);
    let response = w
        .http
        .get(format!("{}/v1/artists/{a0}", w.base))
        .bearer_auth(&w.app)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    validate(&w.spec, "/artists/{id}", "get", 429, &body);
    sandbox.set_faults(Faults {
        expired_token_rate: 1.0,
        ..Faults::default()
    });
    w.check(
        "get",
        &format!("/artists/{a0}"),
        "/artists/{id}",
        false,
        None,
        401,
    )
    .await;
    w.seen
}

#[tokio::test]
async fn development_tier_responses_match_the_openapi_description() {
    let seen = walk(Tier::Development).await;
    assert!(seen.len() >= 30, "{seen:#?}");
}

#[tokio::test]
async fn extended_tier_responses_match_the_openapi_description() {
    let seen = walk(Tier::Extended).await;
    assert!(seen.contains("get /artists 200"));
}

#[test]
fn nullable_becomes_a_null_type() {
    let mut v = json!({"a": {"type": "string", "nullable": true}, "b": {"allOf": [{"$ref": "#/x"}], "nullable": true}});
    openapi_to_json_schema(&mut v);
    assert_eq!(v["a"]["type"], json!(["string", "null"]));
    assert!(v["b"]["anyOf"].is_array());
}

#[test]
fn the_validator_rejects_a_wrong_shape() {
    let spec = spec();
    let bad =
        json!({"id": "x", "type": "artist", "popularity": "high", "followers": {"total": "many"}});
    let caught = std::panic::catch_unwind(|| validate(&spec, "/artists/{id}", "get", 200, &bad));
    assert!(caught.is_err(), "a string popularity must not validate");
    let bad_page = json!({"href": "h", "items": [{"item": {"type": "track", "duration_ms": "long"}}], "limit": 1, "offset": 0, "total": 1, "next": null, "previous": null});
    let caught = std::panic::catch_unwind(|| {
        validate(
            &spec,
            "/playlists/{playlist_id}/items",
            "get",
            200,
            &bad_page,
        )
    });
    assert!(caught.is_err(), "a bad nested track must not validate");
}
