//! The simulated world: which accounts each artist has, how its figures move day by day, and
//! the response bodies, built from the recorded responses in `shared/social/fixtures`.
//!
//! Every artist gets a profile by its position on the roster (`index % 9`), so a roster of
//! twelve covers every case the task must handle:
//!
//! | profile | what is true |
//! |---|---|
//! | 0, 1, 2 | MusicBrainz and Wikidata agree: YouTube, Instagram, Deezer, Last.fm (0: TikTok too; 1: Deezer fans surge on day 21) |
//! | 3 | no links anywhere (MusicBrainz 404, no Wikidata item) |
//! | 4 | two YouTube channels: MusicBrainz and Wikidata disagree |
//! | 5 | the YouTube channel was removed; the Deezer artist is gone (error 800 with HTTP 200) |
//! | 6 | linked by YouTube handle; the handle is renamed on day 3; Instagram renamed too (error 110) |
//! | 7 | Wikidata redirect (the query returns a merged item); hidden subscriber count; a statement of the wrong type; Last.fm counts with separators |
//! | 8 | MusicBrainz artist that the Wikidata item does not list (quarantined) |

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The recordings the bodies are built from.
pub struct Fixtures {
    pub(crate) mb_url: Value,
    pub(crate) mb_release: Value,
    pub(crate) wd_entity: Value,
    pub(crate) wd_sparql: Value,
    pub(crate) yt_list: Value,
    pub(crate) yt_key_invalid: Value,
    pub(crate) lastfm: Value,
    pub(crate) lastfm_not_found: Value,
    pub(crate) deezer: Value,
    pub(crate) deezer_no_data: Value,
    pub(crate) instagram: Value,
}

/// Why the fixtures could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct FixtureError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

impl Fixtures {
    /// Reads the recordings from `dir` (`shared/social/fixtures`).
    pub fn load(dir: &Path) -> Result<Self, FixtureError> {
        let read = |name: &str| -> Result<Value, FixtureError> {
            let path = dir.join(name);
            let text = std::fs::read(&path).map_err(|e| FixtureError {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            serde_json::from_slice(&text).map_err(|e| FixtureError {
                path,
                reason: e.to_string(),
            })
        };
        Ok(Self {
            mb_url: read("musicbrainz_url_lookup_release_rels.json")?,
            mb_release: read("musicbrainz_release_url_rels.json")?,
            wd_entity: read("wikidata_entitydata_Q20145_iu.json")?,
            wd_sparql: read("wikidata_sparql_results.json")?,
            yt_list: read("youtube_channels_list_snippet_statistics.json")?,
            yt_key_invalid: read("youtube_error_400_keyInvalid.json")?,
            lastfm: read("lastfm_artist_getinfo_u2.json")?,
            lastfm_not_found: read("lastfm_error_6_artist_not_found.json")?,
            deezer: read("deezer_artist_27.json")?,
            deezer_no_data: read("deezer_error_800_no_data.json")?,
            instagram: read("instagram_business_discovery_fields.json")?,
        })
    }
}

/// The fixtures folder: `SOCIAL_FIXTURES_DIR`, else the first ancestor of `start` holding
/// `shared/social/fixtures`.
pub fn find_fixtures(start: &Path) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SOCIAL_FIXTURES_DIR") {
        return Some(PathBuf::from(dir));
    }
    start
        .ancestors()
        .map(|a| a.join("shared").join("social").join("fixtures"))
        .find(|p| p.is_dir())
}

/// A number in [0, 1) from the parts, stable across runs.
pub fn unit(parts: &[&str]) -> f64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

fn token(parts: &[&str], alphabet: &[u8], len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut i = 0u32;
    while out.len() < len {
        let n = i.to_string();
        let mut p = parts.to_vec();
        p.push(&n);
        let idx = (unit(&p) * alphabet.len() as f64) as usize;
        out.push(alphabet[idx.min(alphabet.len() - 1)] as char);
        i += 1;
    }
    out
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &[u8] = b"0123456789abcdef";

fn uuid(parts: &[&str]) -> String {
    let h = token(parts, HEX, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// One artist of the world.
#[derive(Debug, Clone, PartialEq)]
pub struct Persona {
    /// The Spotify artist id.
    pub spotify: String,
    /// Its profile (see the module docs).
    pub profile: usize,
    /// The display name.
    pub name: String,
    /// The MusicBrainz artist the Spotify URL links to.
    pub mbid: Option<String>,
    /// The MBID the Wikidata item lists.
    pub wikidata_mbid: Option<String>,
    /// The Wikidata item (the query returns `qid_alias` instead when set: a merged item).
    pub qid: Option<String>,
    /// The redirected (merged) id the query still returns.
    pub qid_alias: Option<String>,
    /// YouTube channel in MusicBrainz.
    pub yt_mb: Option<String>,
    /// YouTube channel in Wikidata.
    pub yt_wd: Option<String>,
    /// The handle MusicBrainz links (profile 6), and the channel it resolves to.
    pub yt_handle: Option<(String, String)>,
    /// The Instagram username.
    pub instagram: Option<String>,
    /// The TikTok username.
    pub tiktok: Option<String>,
    /// The Deezer id.
    pub deezer: Option<String>,
    /// The Last.fm name.
    pub lastfm: Option<String>,
}

impl Persona {
    /// The persona of the `index`-th artist of the roster.
    pub fn new(index: usize, spotify: &str) -> Self {
        let profile = index % 9;
        let s = spotify;
        let name = format!("Sandbox Artist {index}");
        let channel = |tag: &str| format!("UC{}", token(&[s, "yt", tag], B64, 22));
        let mut p = Persona {
            spotify: s.to_owned(),
            profile,
            name: name.clone(),
            mbid: Some(uuid(&[s, "mbid"])),
            wikidata_mbid: None,
            qid: Some(format!(
                "Q{}",
                100_000 + (unit(&[s, "qid"]) * 9_000_000.0) as u64
            )),
            qid_alias: None,
            yt_mb: Some(channel("a")),
            yt_wd: None,
            yt_handle: None,
            instagram: Some(format!("sandbox.artist{index}")),
            tiktok: None,
            deezer: Some(format!(
                "{}",
                1_000 + (unit(&[s, "deezer"]) * 9_000_000.0) as u64
            )),
            lastfm: Some(name.to_lowercase()),
        };
        p.yt_wd = p.yt_mb.clone();
        p.wikidata_mbid = p.mbid.clone();
        match profile {
            0 => p.tiktok = Some(format!("sandboxartist{index}")),
            3 => {
                p.mbid = None;
                p.wikidata_mbid = None;
                p.qid = None;
                p.yt_mb = None;
                p.yt_wd = None;
                p.instagram = None;
                p.deezer = None;
                p.lastfm = None;
            }
            4 => p.yt_wd = Some(channel("b")),
            6 => {
                p.yt_handle = Some((format!("@sandboxartist{index}"), channel("a")));
                p.yt_mb = None;
                p.yt_wd = None;
            }
            7 => {
                p.qid_alias = Some(format!("Q{}", 10_000 + index));
            }
            8 => p.wikidata_mbid = Some(uuid(&[s, "other-mbid"])),
            _ => {}
        }
        p
    }

    /// Whether the YouTube channel `id` exists on `day`.
    pub fn channel_exists(&self, id: &str) -> bool {
        !(self.profile == 5 && self.yt_mb.as_deref() == Some(id))
    }

    /// The channel's handle on `day` (renamed on day 3 for profile 6).
    pub fn handle_on(&self, day: u32) -> Option<String> {
        let (handle, _) = self.yt_handle.as_ref()?;
        Some(if day >= 3 {
            format!("{handle}-official")
        } else {
            handle.clone()
        })
    }

    /// A figure on `day`: a base drawn from the artist and metric, steady growth, and
    /// (profile 1, Deezer fans) a surge from day 21.
    pub fn figure(&self, platform: &str, metric: &str, day: u32) -> u64 {
        let base = 2_000.0 + unit(&[&self.spotify, platform, metric]) * 3_000_000.0;
        let growth = base * (0.001 + unit(&[&self.spotify, platform, metric, "g"]) * 0.004);
        let wobble =
            (unit(&[&self.spotify, platform, metric, &day.to_string()]) - 0.5) * growth * 0.2;
        let mut v = base + growth * f64::from(day) + wobble;
        if self.profile == 1 && platform == "deezer" && metric == "fans" && day >= 21 {
            v += base * 0.08;
        }
        v.max(0.0) as u64
    }
}

/// Rounds down to three significant figures, as YouTube shows subscriber counts.
pub fn three_figures(v: u64) -> u64 {
    if v < 1_000 {
        return v;
    }
    let digits = v.ilog10() + 1;
    let step = 10u64.pow(digits - 3);
    v / step * step
}

fn statement(template: &Value, pid: &str, value: Value) -> Value {
    let mut st = template.clone();
    st["mainsnak"]["property"] = json!(pid);
    st["mainsnak"]["datavalue"]["value"] = value;
    st["rank"] = json!("normal");
    st
}

impl Fixtures {
    /// `url?resource=<spotify url>&inc=artist-rels` for `p`, in the recorded envelope.
    pub fn mb_url_lookup(&self, p: &Persona, resource: &str) -> Value {
        let mut doc = self.mb_url.clone();
        doc["resource"] = json!(resource);
        doc["id"] = json!(uuid(&[&p.spotify, "url"]));
        let mut rel = doc["relations"][0].clone();
        if let Some(o) = rel.as_object_mut() {
            o.remove("release");
        }
        rel["type"] = json!("free streaming");
        rel["type-id"] = json!("769085a1-c2f7-4c24-a532-2375a77693bd");
        rel["target-type"] = json!("artist");
        rel["artist"] =
            json!({"id": p.mbid, "name": p.name, "sort-name": p.name, "disambiguation": ""});
        doc["relations"] = json!([rel]);
        doc
    }

    /// `artist/<mbid>?inc=url-rels` for `p`, relations in the recorded shape.
    pub fn mb_artist(&self, p: &Persona) -> Value {
        let template = self.mb_release["relations"][0].clone();
        let rel = |type_name: &str, type_id: &str, url: String| {
            let mut r = template.clone();
            r["type"] = json!(type_name);
            r["type-id"] = json!(type_id);
            r["url"] = json!({"resource": url, "id": uuid(&[&url])});
            r
        };
        let mut rels = vec![rel(
            "free streaming",
            "769085a1-c2f7-4c24-a532-2375a77693bd",
            format!("https://open.spotify.com/artist/{}", p.spotify),
        )];
        if let Some(id) = &p.yt_mb {
            rels.push(rel(
                "youtube",
                "6a540e5b-58c6-4192-b6ba-dbc71ec8fcf0",
                format!("https://www.youtube.com/channel/{id}"),
            ));
        }
        if let Some((handle, _)) = &p.yt_handle {
            rels.push(rel(
                "youtube",
                "6a540e5b-58c6-4192-b6ba-dbc71ec8fcf0",
                format!("https://www.youtube.com/{handle}"),
            ));
        }
        if let Some(u) = &p.instagram {
            rels.push(rel(
                "social network",
                "99429741-f3f6-484b-84f8-23af51991770",
                format!("https://www.instagram.com/{u}/"),
            ));
        }
        if let Some(u) = &p.tiktok {
            rels.push(rel(
                "social network",
                "99429741-f3f6-484b-84f8-23af51991770",
                format!("https://www.tiktok.com/@{u}"),
            ));
        }
        if let Some(id) = &p.deezer {
            rels.push(rel(
                "free streaming",
                "769085a1-c2f7-4c24-a532-2375a77693bd",
                format!("https://www.deezer.com/artist/{id}"),
            ));
        }
        if let Some(n) = &p.lastfm {
            rels.push(rel(
                "last.fm",
                "08db8098-c0df-4b78-82c3-c8697b4bba7f",
                format!("https://www.last.fm/music/{}", n.replace(' ', "+")),
            ));
        }
        json!({"id": p.mbid, "name": p.name, "sort-name": p.name, "type": "Person", "disambiguation": "", "relations": rels})
    }

    /// The query service's answer for `p` (its item, or the merged one for profile 7).
    pub fn wd_query(&self, p: Option<&Persona>) -> Value {
        let mut doc = self.wd_sparql.clone();
        doc["head"]["vars"] = json!(["item"]);
        let bindings: Vec<Value> = p
            .and_then(|p| p.qid_alias.clone().or_else(|| p.qid.clone()))
            .map(|q| json!({"item": {"type": "uri", "value": format!("http://www.wikidata.org/entity/{q}")}}))
            .into_iter()
            .collect();
        doc["results"]["bindings"] = json!(bindings);
        doc
    }

    /// `Special:EntityData/<qid>.json` for `p`, the recorded entity with its claims replaced.
    pub fn wd_entity(&self, p: &Persona) -> Value {
        let (qid, mut entity) = match self.wd_entity["entities"]
            .as_object()
            .and_then(|m| m.iter().next())
        {
            Some((_, e)) => (p.qid.clone().unwrap_or_default(), e.clone()),
            None => (p.qid.clone().unwrap_or_default(), json!({})),
        };
        let template = entity["claims"]["P2003"][0].clone();
        let mut claims = serde_json::Map::new();
        let mut put = |pid: &str, v: Value| {
            claims.insert(pid.to_owned(), json!([statement(&template, pid, v)]));
        };
        put("P1902", json!(p.spotify));
        if let Some(m) = &p.wikidata_mbid {
            put("P434", json!(m));
        }
        if let Some(y) = &p.yt_wd {
            put("P2397", json!(y));
        }
        if let Some(u) = &p.instagram {
            put("P2003", json!(u));
        }
        if let Some(u) = &p.tiktok {
            put("P7085", json!(u));
        }
        if let Some(d) = &p.deezer {
            // Profile 7: a statement of an unexpected type (a quantity instead of a string).
            if p.profile == 7 {
                put("P2722", json!({"amount": format!("+{d}"), "unit": "1"}));
            } else {
                put("P2722", json!(d));
            }
        }
        if let Some(n) = &p.lastfm {
            put("P3192", json!(n.replace(' ', "+")));
        }
        entity["id"] = json!(qid);
        entity["title"] = json!(qid);
        entity["labels"] = json!({"en": {"language": "en", "value": p.name}});
        entity["claims"] = Value::Object(claims);
        if let Some(o) = entity.as_object_mut() {
            o.remove("sitelinks");
            o.remove("aliases");
            o.remove("descriptions");
        }
        json!({"entities": {qid: entity}})
    }

    /// One channel of `channels.list` on `day`, in the recorded item shape.
    pub fn yt_channel(&self, p: &Persona, id: &str, day: u32, with_stats: bool) -> Value {
        let mut item = self.yt_list["items"][0].clone();
        item["id"] = json!(id);
        item["snippet"]["title"] = json!(p.name);
        item["snippet"]["localized"]["title"] = json!(p.name);
        item["snippet"]["customUrl"] = json!(
            p.handle_on(day)
                .unwrap_or_else(|| format!("@{}", p.name.replace(' ', "").to_lowercase()))
        );
        if !with_stats {
            if let Some(o) = item.as_object_mut() {
                o.remove("statistics");
            }
            return item;
        }
        let hidden = p.profile == 7;
        let subs = three_figures(p.figure("youtube", "subscribers", day));
        let mut stats = json!({
            "viewCount": p.figure("youtube", "views", day).to_string(),
            "commentCount": "0",
            "hiddenSubscriberCount": hidden,
            "videoCount": (20 + day / 7).to_string(),
        });
        if !hidden {
            stats["subscriberCount"] = json!(subs.to_string());
        }
        item["statistics"] = stats;
        item
    }

    /// A `channels.list` answer holding `items`.
    pub fn yt_list(&self, items: Vec<Value>) -> Value {
        let mut doc = self.yt_list.clone();
        doc["pageInfo"] = json!({"totalResults": items.len(), "resultsPerPage": items.len()});
        if items.is_empty() {
            if let Some(o) = doc.as_object_mut() {
                o.remove("items");
            }
        } else {
            doc["items"] = json!(items);
        }
        doc
    }

    /// `artist.getInfo` for `p` on `day` (profile 7: counts with thousands separators).
    pub fn lastfm(&self, p: &Persona, day: u32) -> Value {
        let mut doc = self.lastfm.clone();
        let (l, c) = (
            p.figure("lastfm", "listeners", day),
            p.figure("lastfm", "plays", day) * 20,
        );
        let fmt = |v: u64| {
            if p.profile == 7 {
                let s = v.to_string();
                let mut out = String::new();
                for (i, ch) in s.chars().enumerate() {
                    if i > 0 && (s.len() - i).is_multiple_of(3) {
                        out.push(',');
                    }
                    out.push(ch);
                }
                out
            } else {
                v.to_string()
            }
        };
        doc["artist"]["name"] = json!(p.name);
        doc["artist"]["mbid"] = json!(p.mbid.clone().unwrap_or_default());
        doc["artist"]["url"] = json!(format!(
            "https://www.last.fm/music/{}",
            p.name.replace(' ', "+")
        ));
        doc["artist"]["stats"] = json!({"listeners": fmt(l), "playcount": fmt(c)});
        doc
    }

    /// `GET /artist/<id>` for `p` on `day`.
    pub fn deezer(&self, p: &Persona, day: u32) -> Value {
        let mut doc = self.deezer.clone();
        let id: u64 = p
            .deezer
            .as_deref()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        doc["id"] = json!(id);
        doc["name"] = json!(p.name);
        doc["link"] = json!(format!("https://www.deezer.com/artist/{id}"));
        doc["nb_fan"] = json!(p.figure("deezer", "fans", day));
        doc["nb_album"] = json!(3 + day / 10);
        doc
    }

    /// Business discovery of `p` on `day`.
    pub fn instagram(&self, p: &Persona, caller: &str, day: u32) -> Value {
        let mut doc = self.instagram.clone();
        doc["id"] = json!(caller);
        let bd = &mut doc["business_discovery"];
        bd["id"] = json!(format!("1784{}", (unit(&[&p.spotify, "ig"]) * 1e11) as u64));
        bd["username"] = json!(p.instagram);
        bd["name"] = json!(p.name);
        bd["followers_count"] = json!(p.figure("instagram", "followers", day));
        bd["media_count"] = json!(100 + day);
        doc
    }

    /// `/v2/user/info/` of `p` on `day` (the documented envelope: no recording exists).
    pub fn tiktok(&self, p: &Persona, day: u32) -> Value {
        json!({
            "data": {"user": {
                "open_id": format!("sandbox-open-{}", p.spotify),
                "username": p.tiktok,
                "display_name": p.name,
                "follower_count": p.figure("tiktok", "followers", day),
                "likes_count": p.figure("tiktok", "likes", day) * 10,
                "video_count": 40 + day,
            }},
            "error": {"code": "ok", "message": "", "log_id": format!("sandbox-{day}")}
        })
    }
}
