//! Pulling the public figures of linked accounts, platform by platform, into series points.
//!
//! YouTube is asked in batches of up to 50 channels per `channels.list` call (1 quota unit
//! each, reserved before the call); handles are resolved to channel ids once (1 unit each)
//! and the id kept in the graph. Last.fm, Deezer, Instagram and TikTok are asked per account.
//! Every artist gets one [`Outcome`] per linked platform: what was stored, or why not.

use std::collections::BTreeMap;
use std::time::Duration;

use backbone::ExposeSecret;
use backbone::ports::{WebRequest, WebResponse};
use backbone::series::SeriesPoint;
use backbone::validate::ArtistId;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::client::Caller;
use crate::credentials::Credentials;
use crate::figures::{self, Absent, Account, DecodeError, FaultKind};
use crate::identity::Graph;
use crate::pacing::{DailyQuota, pacific_date};
use crate::platform::Platform;

/// A platform's body decoder.
type Decoder = fn(&[u8]) -> Result<Account, DecodeError>;

/// What happened to one artist on one platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Figures stored.
    Stored {
        /// The account asked.
        account: String,
        /// The metrics stored.
        metrics: Vec<String>,
        /// The metrics absent, and why (a hidden subscriber count).
        absent: Vec<Absent>,
        /// The account's handle now, when it differs from the one linked (renamed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        renamed_to: Option<String>,
    },
    /// The platform's credentials are not configured: skipped.
    NoCredentials {
        /// What is missing.
        missing: String,
    },
    /// The account no longer exists or its handle no longer resolves.
    AccountGone {
        /// The account asked.
        account: String,
        /// What the platform said.
        detail: String,
    },
    /// The daily quota is spent: not asked today.
    QuotaExhausted {
        /// Units used today.
        used: i64,
        /// The daily limit.
        limit: i64,
    },
    /// The call or the answer failed; the other platforms and artists are unaffected.
    Failed {
        /// Why.
        error: String,
    },
}

/// One artist's state while pulling.
pub struct Subject<'a> {
    /// The artist.
    pub artist: &'a ArtistId,
    /// Its graph (stable ids are written back into it).
    pub graph: &'a mut Graph,
    /// Outcomes per platform.
    pub outcomes: BTreeMap<Platform, Outcome>,
    /// Points to store.
    pub points: Vec<SeriesPoint>,
}

/// What every pull needs.
pub struct Pull<'a> {
    /// The caller.
    pub caller: &'a Caller,
    /// The credentials.
    pub credentials: &'a Credentials,
    /// YouTube's daily quota.
    pub quota: &'a DailyQuota,
    /// The day the points describe.
    pub date: NaiveDate,
    /// Now.
    pub now: DateTime<Utc>,
    /// Time left in the invocation.
    pub time_left: Duration,
}

fn points(
    s: &mut Subject<'_>,
    platform: Platform,
    source: String,
    account: &Account,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut metrics = Vec::new();
    for f in &account.figures {
        metrics.push(f.metric.to_owned());
        s.points.push(SeriesPoint {
            artist: s.artist.clone(),
            platform: platform.as_str().to_owned(),
            metric: f.metric.to_owned(),
            value: f.value,
            as_of: date,
            source: source.clone(),
            precision: f.precision,
            fetched_at: now,
        });
    }
    metrics
}

fn fault_outcome(account: &str, err: DecodeError) -> Outcome {
    match err {
        DecodeError::Fault(f) if f.kind == FaultKind::NotFound => Outcome::AccountGone {
            account: account.to_owned(),
            detail: f.to_string(),
        },
        other => Outcome::Failed {
            error: other.to_string(),
        },
    }
}

impl Pull<'_> {
    async fn send(&self, request: &WebRequest) -> Result<WebResponse, Outcome> {
        self.caller
            .get(request, self.time_left)
            .await
            .map_err(|e| Outcome::Failed {
                error: e.to_string(),
            })
    }

    async fn reserve(&self) -> Result<(), Outcome> {
        let day = pacific_date(self.now);
        match self
            .quota
            .reserve(day, figures::youtube::UNITS_PER_CALL)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(Outcome::QuotaExhausted {
                used: self.quota.used(day).await.unwrap_or(self.quota.limit()),
                limit: self.quota.limit(),
            }),
            Err(e) => Err(Outcome::Failed {
                error: format!("quota: {}", backbone::error::chain(&e)),
            }),
        }
    }

    /// YouTube for every subject: handles resolved, then channels in batches of 50.
    pub async fn youtube(&self, subjects: &mut [Subject<'_>]) {
        let linked: Vec<usize> = (0..subjects.len())
            .filter(|i| subjects[*i].graph.link(Platform::YouTube).is_some())
            .collect();
        let Some(key) = &self.credentials.youtube_api_key else {
            for i in linked {
                subjects[i].outcomes.insert(
                    Platform::YouTube,
                    Outcome::NoCredentials {
                        missing: "youtube_api_key".into(),
                    },
                );
            }
            return;
        };
        // Handles to channel ids, once.
        for &i in &linked {
            let Some(link) = subjects[i].graph.link(Platform::YouTube) else {
                continue;
            };
            if !link.key().starts_with('@') {
                continue;
            }
            let handle = link.account.clone();
            let outcome = async {
                self.reserve().await?;
                let request = WebRequest::get("youtube", "/youtube/v3/channels")
                    .query("part", "id")
                    .query("forHandle", &handle)
                    .secret_query("key", key.clone());
                let response = self.send(&request).await?;
                if response.status != 200 {
                    return Err(fault_outcome(
                        &handle,
                        figures::youtube::fault(response.status, &response.body).into(),
                    ));
                }
                let channels =
                    figures::youtube::channels(&response.body).map_err(|e| Outcome::Failed {
                        error: e.to_string(),
                    })?;
                channels
                    .into_iter()
                    .next()
                    .map(|c| c.id)
                    .ok_or_else(|| Outcome::AccountGone {
                        account: handle.clone(),
                        detail: "the handle does not resolve to a channel (renamed or removed)"
                            .into(),
                    })
            }
            .await;
            match outcome {
                Ok(id) => {
                    if let Some(link) = subjects[i].graph.link_mut(Platform::YouTube) {
                        link.stable_id = Some(id);
                    }
                }
                Err(o) => {
                    subjects[i].outcomes.insert(Platform::YouTube, o);
                }
            }
        }
        let ready: Vec<(usize, String, String)> = linked
            .into_iter()
            .filter(|i| !subjects[*i].outcomes.contains_key(&Platform::YouTube))
            .filter_map(|i| {
                let link = subjects[i].graph.link(Platform::YouTube)?;
                Some((i, link.key().to_owned(), link.account.clone()))
            })
            .collect();
        for chunk in ready.chunks(figures::youtube::MAX_IDS) {
            let mut ids: Vec<&str> = chunk.iter().map(|(_, id, _)| id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let result = async {
                self.reserve().await?;
                let request = WebRequest::get("youtube", "/youtube/v3/channels")
                    .query("part", "snippet,statistics")
                    .query("id", ids.join(","))
                    .query("maxResults", "50")
                    .secret_query("key", key.clone());
                let response = self.send(&request).await?;
                if response.status != 200 {
                    let fault = figures::youtube::fault(response.status, &response.body);
                    return Err(if fault.kind == FaultKind::QuotaExhausted {
                        Outcome::QuotaExhausted {
                            used: self.quota.limit(),
                            limit: self.quota.limit(),
                        }
                    } else {
                        Outcome::Failed {
                            error: fault.to_string(),
                        }
                    });
                }
                figures::youtube::channels(&response.body).map_err(|e| Outcome::Failed {
                    error: e.to_string(),
                })
            }
            .await;
            match result {
                Err(o) => {
                    for (i, _, _) in chunk {
                        subjects[*i].outcomes.insert(Platform::YouTube, o.clone());
                    }
                }
                Ok(channels) => {
                    let by_id: BTreeMap<&str, &Account> =
                        channels.iter().map(|c| (c.id.as_str(), c)).collect();
                    for (i, id, linked_as) in chunk {
                        let s = &mut subjects[*i];
                        let outcome = match by_id.get(id.as_str()) {
                            None => Outcome::AccountGone {
                                account: id.clone(),
                                detail: "channels.list does not return the channel (removed or terminated)".into(),
                            },
                            Some(account) => {
                                let metrics = points(s, Platform::YouTube, format!("youtube channels.list {id}"), account, self.date, self.now);
                                let renamed_to = match (&account.handle, linked_as.starts_with('@')) {
                                    (Some(h), true) if !h.eq_ignore_ascii_case(linked_as) => Some(h.clone()),
                                    _ => None,
                                };
                                Outcome::Stored { account: id.clone(), metrics, absent: account.absent.clone(), renamed_to }
                            }
                        };
                        s.outcomes.insert(Platform::YouTube, outcome);
                    }
                }
            }
        }
    }

    /// Last.fm, Deezer, Instagram and TikTok for one subject.
    pub async fn per_account(&self, s: &mut Subject<'_>) {
        for platform in [
            Platform::LastFm,
            Platform::Deezer,
            Platform::Instagram,
            Platform::TikTok,
        ] {
            let Some(link) = s.graph.link(platform) else {
                continue;
            };
            let account = link.key().to_owned();
            let linked_as = link.account.clone();
            let outcome = match self.one(platform, s.artist, &linked_as).await {
                Err(o) => o,
                Ok((acc, source)) => {
                    if platform == Platform::Instagram
                        && let Some(link) = s.graph.link_mut(platform)
                    {
                        link.stable_id = Some(acc.id.clone());
                    }
                    let metrics = points(s, platform, source, &acc, self.date, self.now);
                    Outcome::Stored {
                        account,
                        metrics,
                        absent: acc.absent.clone(),
                        renamed_to: None,
                    }
                }
            };
            s.outcomes.insert(platform, outcome);
        }
    }

    async fn one(
        &self,
        platform: Platform,
        artist: &ArtistId,
        account: &str,
    ) -> Result<(Account, String), Outcome> {
        let no = |missing: &str| Outcome::NoCredentials {
            missing: missing.into(),
        };
        let (request, source, decode): (WebRequest, String, Decoder) = match platform {
            Platform::LastFm => {
                let key = self
                    .credentials
                    .lastfm_api_key
                    .clone()
                    .ok_or_else(|| no("lastfm_api_key"))?;
                (
                    WebRequest::get("lastfm", "/2.0/")
                        .query("method", "artist.getinfo")
                        .query("artist", account)
                        .query("autocorrect", "0")
                        .query("format", "json")
                        .secret_query("api_key", key),
                    format!("lastfm artist.getInfo {account}"),
                    figures::lastfm::artist,
                )
            }
            Platform::Deezer => (
                WebRequest::get("deezer", format!("/artist/{account}")),
                format!("deezer artist {account}"),
                figures::deezer::artist,
            ),
            Platform::Instagram => {
                let (Some(token), Some(user)) = (
                    &self.credentials.instagram_access_token,
                    &self.credentials.instagram_user_id,
                ) else {
                    return Err(no("instagram_access_token and instagram_user_id"));
                };
                (
                    WebRequest::get("instagram", format!("/v21.0/{user}"))
                        .query(
                            "fields",
                            figures::instagram::FIELDS.replace("{username}", account),
                        )
                        .secret_query("access_token", token.clone()),
                    format!("instagram business_discovery {account}"),
                    figures::instagram::discovery,
                )
            }
            Platform::TikTok => {
                let token = self
                    .credentials
                    .tiktok_tokens
                    .get(artist.as_str())
                    .ok_or_else(|| no("tiktok_tokens for this artist"))?;
                if token.expose_secret().is_empty() {
                    return Err(no("tiktok_tokens for this artist"));
                }
                (
                    WebRequest::get("tiktok", "/v2/user/info/")
                        .query("fields", figures::tiktok::FIELDS)
                        .bearer(token.clone()),
                    format!("tiktok user.info {account}"),
                    figures::tiktok::user,
                )
            }
            Platform::YouTube | Platform::MusicBrainz | Platform::Wikidata => {
                return Err(Outcome::Failed {
                    error: format!("{platform} is not pulled per account"),
                });
            }
        };
        // Deezer (code 4) and Last.fm (error 29) rate limit with HTTP 200: the body says so, and
        // the call is tried once more after a pause when the invocation has the time.
        for attempt in 1..=BODY_RATE_LIMIT_ATTEMPTS {
            let response = self.send(&request).await?;
            // Errors come in a 200 body (Deezer, Last.fm) or with a status and the same kind of
            // body: the decoder reads the body either way.
            return match decode(&response.body) {
                Ok(acc) if response.status == 200 => Ok((acc, source)),
                Ok(_) => Err(Outcome::Failed {
                    error: format!("{platform}: HTTP {}", response.status),
                }),
                Err(DecodeError::Wire(_)) if response.status != 200 => Err(Outcome::Failed {
                    error: format!("{platform}: HTTP {}", response.status),
                }),
                Err(DecodeError::Fault(f))
                    if f.kind == FaultKind::RateLimited
                        && attempt < BODY_RATE_LIMIT_ATTEMPTS
                        && self.time_left > BODY_RATE_LIMIT_PAUSE * 2 =>
                {
                    tracing::info!(%platform, code = %f.code, "rate limited in the body; pausing");
                    self.caller.pause(BODY_RATE_LIMIT_PAUSE).await;
                    continue;
                }
                Err(e) => Err(fault_outcome(account, e)),
            };
        }
        Err(Outcome::Failed {
            error: format!("{platform}: rate limited"),
        })
    }
}

/// Attempts of a call whose answer says "rate limited" in a 200 body.
const BODY_RATE_LIMIT_ATTEMPTS: u32 = 2;
/// The pause before trying such a call again.
const BODY_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(1);
