//! The public figures of each platform's answer, and the errors each reports in its body.
//!
//! Every decoder returns the figures it could read as [`Figure`]s and names the ones it could
//! not in `absent`: a hidden subscriber count is absent, never 0. Errors that arrive with
//! HTTP 200 (Deezer's `{"error": {...}}`, Last.fm's `{"error": 6}`) are errors here, whatever
//! the status said.

use backbone::series::Precision;
use serde_json::Value;

use crate::counts;
use crate::wire::{self, WireError};

/// One figure read.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The metric (`subscribers`, `views`, ...).
    pub metric: &'static str,
    /// The value.
    pub value: u64,
    /// How exact it is.
    pub precision: Precision,
}

/// A metric the platform did not give, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Absent {
    /// The metric.
    pub metric: String,
    /// Why.
    pub reason: String,
}

/// One account's figures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Account {
    /// The platform's stable id of the account.
    pub id: String,
    /// Its handle or name, when given (a renamed handle shows here).
    pub handle: Option<String>,
    /// The figures read.
    pub figures: Vec<Figure>,
    /// The figures missing, and why.
    pub absent: Vec<Absent>,
}

/// An error the platform reported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{api} error {code}: {message}")]
pub struct ApiFault {
    /// The API.
    pub api: &'static str,
    /// Its code (`6`, `800`, `quotaExceeded`, `110`).
    pub code: String,
    /// Its message.
    pub message: String,
    /// What the code means for the caller.
    pub kind: FaultKind,
}

/// What an API error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The account does not exist (or no longer does).
    NotFound,
    /// Too many requests: wait and retry.
    RateLimited,
    /// A daily quota is spent.
    QuotaExhausted,
    /// The key or token is refused.
    Unauthorized,
    /// Anything else.
    Other,
}

/// A decoder's failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The platform reported an error.
    #[error(transparent)]
    Fault(#[from] ApiFault),
    /// The body is not the documented shape.
    #[error(transparent)]
    Wire(#[from] WireError),
}

fn count(
    api: &'static str,
    doc: &Value,
    path: &str,
    metric: &'static str,
    precision: Precision,
    out: &mut Account,
) -> Result<(), WireError> {
    let value = doc.pointer(&format!("/{}", path.replace('.', "/")));
    match counts::parse(path, value) {
        Ok(v) => {
            out.figures.push(Figure {
                metric,
                value: v,
                precision,
            });
            Ok(())
        }
        Err(counts::CountError::Missing { .. }) => {
            out.absent.push(Absent {
                metric: metric.into(),
                reason: format!("{path} not in the answer"),
            });
            Ok(())
        }
        Err(source) => Err(WireError::Count { api, source }),
    }
}

/// YouTube Data API `channels.list` (part `snippet,statistics`).
pub mod youtube {
    use super::*;

    const API: &str = "youtube";
    /// Subscriber counts above this are rounded to three significant figures (since 2019).
    const ROUNDED_FROM: u64 = 1_000;

    /// The quota units one `channels.list` call costs.
    pub const UNITS_PER_CALL: i64 = 1;
    /// Most channel ids one call takes.
    pub const MAX_IDS: usize = 50;

    /// The error of a non-2xx answer (`{"error": {"code", "message", "errors": [{"reason"}]}}`).
    pub fn fault(status: u16, body: &[u8]) -> ApiFault {
        let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let reason = doc
            .pointer("/error/errors/0/reason")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let message = doc
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_owned();
        let kind = match (status, reason.as_str()) {
            (_, "quotaExceeded" | "dailyLimitExceeded") => FaultKind::QuotaExhausted,
            (429, _) | (_, "rateLimitExceeded" | "userRateLimitExceeded") => FaultKind::RateLimited,
            (_, "keyInvalid" | "forbidden") | (401, _) => FaultKind::Unauthorized,
            (404, _) | (_, "channelNotFound") => FaultKind::NotFound,
            _ => FaultKind::Other,
        };
        ApiFault {
            api: API,
            code: reason,
            message,
            kind,
        }
    }

    /// The channels of a 200 answer; channels asked for but not returned are removed or
    /// never existed, which the caller tells from what it asked.
    pub fn channels(body: &[u8]) -> Result<Vec<Account>, WireError> {
        let doc = wire::json(API, body)?;
        let items = match doc.get("items") {
            // No channel matched: YouTube omits `items`.
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            other => {
                return Err(WireError::Shape {
                    api: API,
                    field: "items".into(),
                    expected: "an array",
                    found: wire::found(other),
                });
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let id = wire::str_at(API, item, "id").map_err(|_| WireError::Shape {
                api: API,
                field: format!("items[{i}].id"),
                expected: "a channel id",
                found: wire::found(item.get("id")),
            })?;
            let mut account = Account {
                id: id.to_owned(),
                handle: item
                    .pointer("/snippet/customUrl")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                ..Account::default()
            };
            let Some(stats) = item.get("statistics") else {
                for metric in ["subscribers", "views", "videos"] {
                    account.absent.push(Absent {
                        metric: metric.into(),
                        reason: "statistics not in the answer (part=statistics not granted)".into(),
                    });
                }
                out.push(account);
                continue;
            };
            match stats.get("hiddenSubscriberCount") {
                Some(Value::Bool(true)) => account.absent.push(Absent {
                    metric: "subscribers".into(),
                    reason: "the channel hides its subscriber count".into(),
                }),
                None | Some(Value::Bool(false)) => {
                    let value = stats.get("subscriberCount");
                    match counts::parse("statistics.subscriberCount", value) {
                        Ok(v) => account.figures.push(Figure {
                            metric: "subscribers",
                            value: v,
                            precision: if v >= ROUNDED_FROM {
                                Precision::SignificantFigures { figures: 3 }
                            } else {
                                Precision::Exact
                            },
                        }),
                        Err(counts::CountError::Missing { .. }) => account.absent.push(Absent {
                            metric: "subscribers".into(),
                            reason: "statistics.subscriberCount not in the answer".into(),
                        }),
                        Err(source) => return Err(WireError::Count { api: API, source }),
                    }
                }
                Some(other) => {
                    return Err(WireError::Shape {
                        api: API,
                        field: format!("items[{i}].statistics.hiddenSubscriberCount"),
                        expected: "a boolean",
                        found: wire::found(Some(other)),
                    });
                }
            }
            count(
                API,
                stats,
                "viewCount",
                "views",
                Precision::Exact,
                &mut account,
            )?;
            count(
                API,
                stats,
                "videoCount",
                "videos",
                Precision::Exact,
                &mut account,
            )?;
            out.push(account);
        }
        Ok(out)
    }
}

/// Last.fm `artist.getInfo`.
pub mod lastfm {
    use super::*;

    const API: &str = "lastfm";

    /// The artist's listeners and play count; `{"error": N}` is an error whatever the status.
    pub fn artist(body: &[u8]) -> Result<Account, DecodeError> {
        let doc = wire::json(API, body)?;
        if let Some(code) = doc.get("error") {
            let code = code
                .as_i64()
                .map_or_else(|| wire::found(Some(code)), |c| c.to_string());
            let kind = match code.as_str() {
                "6" => FaultKind::NotFound,
                "29" => FaultKind::RateLimited,
                "10" | "26" => FaultKind::Unauthorized,
                _ => FaultKind::Other,
            };
            return Err(ApiFault {
                api: API,
                message: doc
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_owned(),
                code,
                kind,
            }
            .into());
        }
        let artist = doc.get("artist").ok_or_else(|| WireError::Shape {
            api: API,
            field: "artist".into(),
            expected: "an object",
            found: "nothing".into(),
        })?;
        let name = wire::str_at(API, artist, "name")?;
        let mut account = Account {
            id: name.to_lowercase(),
            handle: Some(name.to_owned()),
            ..Account::default()
        };
        count(
            API,
            artist,
            "stats.listeners",
            "listeners",
            Precision::Exact,
            &mut account,
        )?;
        count(
            API,
            artist,
            "stats.playcount",
            "plays",
            Precision::Exact,
            &mut account,
        )?;
        Ok(account)
    }
}

/// Deezer `GET /artist/{id}`.
pub mod deezer {
    use super::*;

    const API: &str = "deezer";

    /// Fans and albums; `{"error": {...}}` is an error, and arrives with HTTP 200.
    pub fn artist(body: &[u8]) -> Result<Account, DecodeError> {
        let doc = wire::json(API, body)?;
        if let Some(err) = doc.get("error") {
            let code = err.get("code").and_then(Value::as_i64).unwrap_or(-1);
            let kind = match code {
                800 => FaultKind::NotFound,
                4 => FaultKind::RateLimited,
                200 | 300 => FaultKind::Unauthorized,
                _ => FaultKind::Other,
            };
            return Err(ApiFault {
                api: API,
                code: code.to_string(),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_owned(),
                kind,
            }
            .into());
        }
        let id = match doc.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            other => {
                return Err(WireError::Shape {
                    api: API,
                    field: "id".into(),
                    expected: "the artist id",
                    found: wire::found(other),
                }
                .into());
            }
        };
        let mut account = Account {
            id,
            handle: doc.get("name").and_then(Value::as_str).map(str::to_owned),
            ..Account::default()
        };
        count(API, &doc, "nb_fan", "fans", Precision::Exact, &mut account)?;
        count(
            API,
            &doc,
            "nb_album",
            "albums",
            Precision::Exact,
            &mut account,
        )?;
        Ok(account)
    }
}

/// Instagram Graph API business discovery.
pub mod instagram {
    use super::*;

    const API: &str = "instagram";

    /// The fields asked of the discovered account.
    pub const FIELDS: &str =
        "business_discovery.username({username}){id,username,followers_count,media_count}";

    /// Followers and media of the discovered account; `{"error": {...}}` is an error.
    pub fn discovery(body: &[u8]) -> Result<Account, DecodeError> {
        let doc = wire::json(API, body)?;
        if let Some(err) = doc.get("error") {
            let code = err.get("code").and_then(Value::as_i64).unwrap_or(-1);
            let sub = err.get("error_subcode").and_then(Value::as_i64);
            let kind = match (code, sub) {
                // "Invalid user id": the username does not resolve (renamed or removed).
                (110, _) | (100, Some(2207013)) => FaultKind::NotFound,
                (4 | 17 | 32 | 613, _) => FaultKind::RateLimited,
                (190, _) => FaultKind::Unauthorized,
                _ => FaultKind::Other,
            };
            return Err(ApiFault {
                api: API,
                code: code.to_string(),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_owned(),
                kind,
            }
            .into());
        }
        let bd = doc
            .get("business_discovery")
            .ok_or_else(|| WireError::Shape {
                api: API,
                field: "business_discovery".into(),
                expected: "an object",
                found: "nothing".into(),
            })?;
        let mut account = Account {
            id: wire::str_at(API, bd, "id")?.to_owned(),
            handle: bd
                .get("username")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..Account::default()
        };
        count(
            API,
            bd,
            "followers_count",
            "followers",
            Precision::Exact,
            &mut account,
        )?;
        count(
            API,
            bd,
            "media_count",
            "media",
            Precision::Exact,
            &mut account,
        )?;
        Ok(account)
    }
}

/// TikTok `GET /v2/user/info/` (the connected account's own token).
pub mod tiktok {
    use super::*;

    const API: &str = "tiktok";

    /// The fields asked.
    pub const FIELDS: &str = "open_id,username,follower_count,likes_count,video_count";

    /// Followers, likes and videos; an `error.code` other than `ok` is an error.
    pub fn user(body: &[u8]) -> Result<Account, DecodeError> {
        let doc = wire::json(API, body)?;
        let code = doc
            .pointer("/error/code")
            .and_then(Value::as_str)
            .unwrap_or("ok");
        if code != "ok" {
            let kind = match code {
                "rate_limit_exceeded" => FaultKind::RateLimited,
                "access_token_invalid" | "scope_not_authorized" => FaultKind::Unauthorized,
                _ => FaultKind::Other,
            };
            return Err(ApiFault {
                api: API,
                code: code.to_owned(),
                message: doc
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_owned(),
                kind,
            }
            .into());
        }
        let user = doc.pointer("/data/user").ok_or_else(|| WireError::Shape {
            api: API,
            field: "data.user".into(),
            expected: "an object",
            found: wire::found(doc.get("data")),
        })?;
        let mut account = Account {
            id: wire::str_at(API, user, "open_id")?.to_owned(),
            handle: user
                .get("username")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..Account::default()
        };
        count(
            API,
            user,
            "follower_count",
            "followers",
            Precision::Exact,
            &mut account,
        )?;
        count(
            API,
            user,
            "likes_count",
            "likes",
            Precision::Exact,
            &mut account,
        )?;
        count(
            API,
            user,
            "video_count",
            "videos",
            Precision::Exact,
            &mut account,
        )?;
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::fixture;

    fn value(a: &Account, metric: &str) -> Option<u64> {
        a.figures
            .iter()
            .find(|f| f.metric == metric)
            .map(|f| f.value)
    }

    #[test]
    fn youtube_recordings() {
        let ch =
            youtube::channels(&fixture("youtube_channels_list_snippet_statistics.json")).unwrap();
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].id, "UC_x5XG1OV2P6uZZ5FSM9Ttw");
        assert_eq!(value(&ch[0], "subscribers"), Some(1_927_873));
        assert_eq!(
            ch[0].figures[0].precision,
            Precision::SignificantFigures { figures: 3 }
        );
        assert_eq!(value(&ch[0], "views"), Some(160_361_638));
        assert_eq!(value(&ch[0], "videos"), Some(5026));
        // Without part=statistics: every figure absent, none zero.
        let ch = youtube::channels(&fixture("youtube_channels_list_snippet_only.json")).unwrap();
        assert!(ch[0].figures.is_empty());
        assert_eq!(ch[0].absent.len(), 3);
        let f = youtube::fault(400, &fixture("youtube_error_400_keyInvalid.json"));
        assert_eq!(
            (f.kind, f.code.as_str()),
            (FaultKind::Unauthorized, "keyInvalid")
        );
    }

    #[test]
    fn youtube_hidden_counts_are_absent_and_odd_types_are_errors() {
        let body = serde_json::json!({"items": [{"id": "UCaaaaaaaaaaaaaaaaaaaaaa", "statistics": {
            "viewCount": "1,000", "hiddenSubscriberCount": true, "videoCount": "3"}}]});
        let ch = youtube::channels(body.to_string().as_bytes()).unwrap();
        assert_eq!(value(&ch[0], "subscribers"), None);
        assert_eq!(ch[0].absent[0].metric, "subscribers");
        assert_eq!(value(&ch[0], "views"), Some(1000));
        let body = serde_json::json!({"items": [{"id": "UCaaaaaaaaaaaaaaaaaaaaaa", "statistics": {
            "subscriberCount": {"n": 1}}}]});
        let err = youtube::channels(body.to_string().as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("statistics.subscriberCount: expected a count"),
            "{err}"
        );
        assert!(
            youtube::channels(br#"{"kind":"youtube#channelListResponse"}"#)
                .unwrap()
                .is_empty()
        );
        let quota = serde_json::json!({"error": {"code": 403, "message": "quota", "errors": [{"reason": "quotaExceeded"}]}});
        assert_eq!(
            youtube::fault(403, quota.to_string().as_bytes()).kind,
            FaultKind::QuotaExhausted
        );
    }

    #[test]
    fn lastfm_recordings_and_its_200_errors() {
        let a = lastfm::artist(&fixture("lastfm_artist_getinfo_u2.json")).unwrap();
        assert_eq!(
            (value(&a, "listeners"), value(&a, "plays")),
            (Some(3_623_538), Some(150_387_104))
        );
        let a = lastfm::artist(&fixture("lastfm_artist_getinfo_legiao_urbana_en.json")).unwrap();
        assert_eq!(value(&a, "listeners"), Some(740_367));
        let err = lastfm::artist(&fixture("lastfm_error_6_artist_not_found.json")).unwrap_err();
        let DecodeError::Fault(f) = err else {
            panic!("{err:?}")
        };
        assert_eq!((f.kind, f.code.as_str()), (FaultKind::NotFound, "6"));
    }

    #[test]
    fn deezer_recordings_and_its_200_errors() {
        let a = deezer::artist(&fixture("deezer_artist_27.json")).unwrap();
        assert_eq!(
            (a.id.as_str(), value(&a, "fans"), value(&a, "albums")),
            ("27", Some(3_677_952), Some(32))
        );
        let err = deezer::artist(&fixture("deezer_error_800_no_data.json")).unwrap_err();
        assert_eq!(err.to_string(), "deezer error 800: no data");
        let quota = br#"{"error":{"type":"Exception","message":"Quota limit exceeded","code":4}}"#;
        let DecodeError::Fault(f) = deezer::artist(quota).unwrap_err() else {
            panic!()
        };
        assert_eq!(f.kind, FaultKind::RateLimited);
    }

    #[test]
    fn instagram_recordings_and_tiktok_envelope() {
        let a = instagram::discovery(&fixture("instagram_business_discovery_fields.json")).unwrap();
        assert_eq!(
            (a.id.as_str(), value(&a, "followers"), value(&a, "media")),
            ("17841407673135339", Some(64_976), Some(436))
        );
        let a =
            instagram::discovery(&fixture("instagram_business_discovery_default.json")).unwrap();
        assert_eq!(a.handle.as_deref(), Some("facebook"));
        let renamed = br#"{"error":{"message":"Invalid user id","type":"OAuthException","code":110,"error_subcode":2207013}}"#;
        let DecodeError::Fault(f) = instagram::discovery(renamed).unwrap_err() else {
            panic!()
        };
        assert_eq!(f.kind, FaultKind::NotFound);
        let t = serde_json::json!({"data": {"user": {"open_id": "o-1", "username": "x", "follower_count": 10, "likes_count": "1,200", "video_count": 3}},
            "error": {"code": "ok", "message": "", "log_id": "l"}});
        let a = tiktok::user(t.to_string().as_bytes()).unwrap();
        assert_eq!(value(&a, "likes"), Some(1200));
        let e = serde_json::json!({"data": {}, "error": {"code": "access_token_invalid", "message": "bad", "log_id": "l"}});
        let DecodeError::Fault(f) = tiktok::user(e.to_string().as_bytes()).unwrap_err() else {
            panic!()
        };
        assert_eq!(f.kind, FaultKind::Unauthorized);
    }
}
