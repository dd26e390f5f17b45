//! Detection as the data arrives: the series whose days changed are scored with the
//! [`crate::detector`], the [`crate::signals`] rules run on the changed days, known causes
//! are ruled in or out, and the result is a `MetricAnomaly` to publish, an explained jump or
//! a repeat silenced by the cooldown.
//!
//! Detector state is stored per series at `det#<source>#<metric>` in the series' partition
//! (`stream#<subject>` or `streams-artist#<artist>`) with the last day it has seen. A day at
//! or before that one (a restatement, a late file) makes the series replay its last
//! [`REPLAY_DAYS`] days from the rollups, so the state always reflects the current figures;
//! only the changed days can raise an alert. The cooldown per series and kind lives at
//! `alert#<kind>#<source>#<metric>`; known causes at `cause#<date>#<kind>#<id>`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use backbone::error::PortError;
use backbone::ports::{ItemKey, PutCondition, Query, Store};
use backbone::validate::SpotifyId;

use crate::detector::{DETECTOR_NAME, DETECTOR_VERSION, DetectorConfig, PointScore, SeriesState};
use crate::model::{GLOBAL, Metric, Source, Subject};
use crate::rollups::{self, DayTotal, SeriesDay, artist_pk, subject_pk};
use crate::signals::{self, Cause, CauseKind, SignalConfig};

/// Days replayed when a series receives a day it has already seen.
pub const REPLAY_DAYS: i64 = 120;
/// The version of the `MetricAnomaly` schema (`schemas/metric-anomaly.schema.json`).
pub const ANOMALY_SCHEMA_VERSION: &str = "1";
/// The rules' version, carried with their alerts.
pub const SIGNALS_VERSION: &str = "1";

/// What kind of anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A rise the detector flags with no known cause.
    UnexplainedSpike,
    /// A fall below the band.
    Drop,
    /// Too many streams per listener.
    ArtificialStreaming,
    /// The territory mix moved.
    TerritoryShift,
    /// Streams jumped while the save rate fell.
    SaveRateCollapse,
}

impl AnomalyKind {
    /// The snake-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            AnomalyKind::UnexplainedSpike => "unexplained_spike",
            AnomalyKind::Drop => "drop",
            AnomalyKind::ArtificialStreaming => "artificial_streaming",
            AnomalyKind::TerritoryShift => "territory_shift",
            AnomalyKind::SaveRateCollapse => "save_rate_collapse",
        }
    }
}

/// The days an anomaly was judged over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// First day of the history used.
    pub from: NaiveDate,
    /// The day judged.
    pub to: NaiveDate,
    /// Days with data in between.
    pub points: usize,
}

/// Why an anomaly fired: the values, band, score and rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The observed value (for ratio rules, the ratio).
    pub observed: f64,
    /// The expected value.
    pub expected: Option<f64>,
    /// The band of usual values, [low, high].
    pub band: Option<[f64; 2]>,
    /// The score in [0, 1] (for rules, how far past the threshold, capped at 1).
    pub score: f64,
    /// The threshold the score crossed.
    pub threshold: f64,
    /// The history judged against.
    pub window: Window,
    /// The detector or rule.
    pub detector: String,
    /// Its version.
    pub version: String,
    /// Known causes checked and ruled out (a rise only).
    #[serde(default)]
    pub ruled_out: Vec<String>,
    /// Rule-specific figures.
    #[serde(default)]
    pub details: serde_json::Value,
}

/// One anomaly: the detail of a `MetricAnomaly` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAnomaly {
    /// What kind.
    pub kind: AnomalyKind,
    /// The subject (`isrc:...`, `track:...`, `artist:...`).
    pub subject: String,
    /// The artist, when known.
    pub artist: Option<String>,
    /// The source of the figures.
    pub source: String,
    /// The metric.
    pub metric: Metric,
    /// The territory (`GLOBAL` for totals).
    pub territory: String,
    /// The day.
    pub date: NaiveDate,
    /// Stable per series, kind and day.
    pub dedupe_key: String,
    /// One line for a person.
    pub summary: String,
    /// Why.
    pub evidence: Evidence,
}

/// What became of a candidate anomaly.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Publish it, then store its cooldown with [`mark_published`].
    Publish {
        /// The anomaly.
        anomaly: Box<MetricAnomaly>,
        /// Where its cooldown is kept.
        #[serde(skip)]
        cooldown: ItemKey,
    },
    /// A known cause explains it: no alert.
    Explained {
        /// The anomaly it would have been.
        anomaly: Box<MetricAnomaly>,
        /// The cause.
        cause: Cause,
    },
    /// The same series and kind alerted within the cooldown.
    Suppressed {
        /// The anomaly.
        anomaly: Box<MetricAnomaly>,
        /// The day of the alert that silences it.
        last_alert: NaiveDate,
    },
}

/// The detection settings: one for every series.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Settings {
    /// The generic detector (daily).
    pub detector: DetectorConfig,
    /// The music rules.
    pub signals: SignalConfig,
}

impl Settings {
    /// The settings for daily streaming series.
    pub fn daily() -> Self {
        Self {
            detector: DetectorConfig::daily(),
            signals: SignalConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoredState {
    version: String,
    last_date: Option<NaiveDate>,
    state: SeriesState,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LastAlert {
    date: Option<NaiveDate>,
}

/// A series the detector follows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesRef {
    pk: String,
    subject: Option<Subject>,
    artist: Option<SpotifyId>,
    source: Source,
    metric: Metric,
}

fn ts_of(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp())
}

fn corrupt(operation: &'static str, err: serde_json::Error) -> PortError {
    PortError::permanent(operation, err)
}

async fn get_doc<T: for<'de> Deserialize<'de> + Default>(
    store: &dyn Store,
    key: &ItemKey,
) -> Result<T, PortError> {
    match store.get(key).await? {
        Some(item) => serde_json::from_value(item.data).map_err(|e| corrupt("anomaly.read", e)),
        None => Ok(T::default()),
    }
}

async fn put_doc<T: Serialize>(store: &dyn Store, key: &ItemKey, doc: &T) -> Result<(), PortError> {
    let data = serde_json::to_value(doc).map_err(|e| corrupt("anomaly.encode", e))?;
    store
        .put(key, &data, PutCondition::Always, None)
        .await
        .map(|_| ())
}

/// Stores a known cause (a release, a playlist add) for a subject and, when given, its
/// artist.
pub async fn record_cause(
    store: &dyn Store,
    subject: &Subject,
    artist: Option<&SpotifyId>,
    cause: &Cause,
) -> Result<(), PortError> {
    let sk = format!(
        "cause#{}#{}#{}",
        cause.date,
        serde_json::to_value(cause.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        cause.detail.as_deref().unwrap_or("-")
    );
    let data = serde_json::to_value(cause).map_err(|e| corrupt("cause.encode", e))?;
    let mut pks = vec![subject_pk(subject)];
    if let Some(a) = artist {
        pks.push(artist_pk(a));
    }
    for pk in pks {
        store
            .put(
                &ItemKey::new(pk, sk.clone()),
                &data,
                PutCondition::Always,
                None,
            )
            .await?;
    }
    Ok(())
}

async fn causes(
    store: &dyn Store,
    series: &SeriesRef,
    date: NaiveDate,
    config: &SignalConfig,
) -> Result<Vec<Cause>, PortError> {
    let from = date - Duration::days(config.explain_days);
    let mut pks = vec![series.pk.clone()];
    if let Some(a) = &series.artist
        && series.subject.is_some()
    {
        pks.push(artist_pk(a));
    }
    let mut out = Vec::new();
    for pk in pks {
        let q = Query::partition(pk).between(format!("cause#{from}"), format!("cause#{date}~"));
        for item in backbone::ports::store::query_all(store, q, 1000).await? {
            if let Ok(c) = serde_json::from_value::<Cause>(item.data) {
                out.push(c);
            }
        }
    }
    // Playlist adds the source counted explain a track's rise too.
    if let Some(subject) = &series.subject {
        for d in rollups::track_days(
            store,
            subject,
            &series.source,
            Metric::PlaylistAdds,
            from,
            date,
        )
        .await?
        {
            if d.value > 0 {
                out.push(Cause {
                    kind: CauseKind::PlaylistAdd,
                    date: d.date,
                    detail: Some(format!(
                        "{} playlist adds counted by {}",
                        d.value, series.source
                    )),
                });
            }
        }
    }
    Ok(out)
}

async fn days(
    store: &dyn Store,
    series: &SeriesRef,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayTotal>, PortError> {
    match (&series.subject, &series.artist) {
        (Some(subject), _) => {
            rollups::track_days(store, subject, &series.source, series.metric, from, to).await
        }
        (None, Some(artist)) => {
            rollups::artist_days(store, artist, &series.source, series.metric, from, to).await
        }
        (None, None) => Ok(Vec::new()),
    }
}

/// Runs detection over the days `changed` touched and returns what to do with each finding,
/// cooldowns applied (the published alerts' cooldowns are stored).
pub async fn detect(
    store: &dyn Store,
    changed: &BTreeSet<SeriesDay>,
    settings: &Settings,
) -> Result<Vec<Verdict>, PortError> {
    // Per series: the changed days, and the revisited ones (scored only if still unseen).
    let mut series: BTreeMap<SeriesRef, (BTreeSet<NaiveDate>, BTreeSet<NaiveDate>)> =
        BTreeMap::new();
    let pick = |sets: &mut (BTreeSet<NaiveDate>, BTreeSet<NaiveDate>), c: &SeriesDay| {
        if c.revisited {
            sets.1.insert(c.date);
        } else {
            sets.0.insert(c.date);
        }
    };
    for c in changed.iter().filter(|c| c.metric == Metric::Streams) {
        let track = SeriesRef {
            pk: subject_pk(&c.subject),
            subject: Some(c.subject.clone()),
            artist: c.artist.clone(),
            source: c.source.clone(),
            metric: c.metric,
        };
        pick(series.entry(track).or_default(), c);
        if let Some(artist) = &c.artist
            && c.subject.artist().is_none()
        {
            let rollup = SeriesRef {
                pk: artist_pk(artist),
                subject: None,
                artist: Some(artist.clone()),
                source: c.source.clone(),
                metric: c.metric,
            };
            pick(series.entry(rollup).or_default(), c);
        }
    }
    let mut verdicts = Vec::new();
    for (s, (changed_days, revisited)) in series {
        // The detector state, read once: it decides which revisited days are unseen, and the
        // scoring resumes from it.
        let key = ItemKey::new(s.pk.clone(), format!("det#{}#{}", s.source, s.metric));
        let stored: StoredState = get_doc(store, &key).await?;
        let seen = stored
            .last_date
            .filter(|_| stored.version == DETECTOR_VERSION);
        let mut dates = changed_days;
        dates.extend(
            revisited
                .into_iter()
                .filter(|d| seen.is_none_or(|l| *d > l)),
        );
        if dates.is_empty() {
            continue;
        }
        let (s, dates) = (&s, &dates);
        let mut found = score_series(store, s, stored, dates, settings).await?;
        if s.subject.is_some() {
            for date in dates {
                found.extend(rules(store, s, *date, &settings.signals).await?);
            }
        }
        for (anomaly, cause) in found {
            verdicts.push(judge(store, s, anomaly, cause, &settings.signals).await?);
        }
    }
    Ok(verdicts)
}

fn label(s: &SeriesRef) -> String {
    match (&s.subject, &s.artist) {
        (Some(subject), _) => subject.to_string(),
        (None, Some(artist)) => format!("artist:{artist}"),
        (None, None) => s.pk.clone(),
    }
}

fn anomaly(
    s: &SeriesRef,
    kind: AnomalyKind,
    date: NaiveDate,
    summary: String,
    evidence: Evidence,
) -> MetricAnomaly {
    let subject = label(s);
    MetricAnomaly {
        kind,
        dedupe_key: format!(
            "{}#{subject}#{}#{}#{date}",
            kind.as_str(),
            s.source,
            s.metric
        ),
        subject,
        artist: s.artist.as_ref().map(|a| a.to_string()),
        source: s.source.to_string(),
        metric: s.metric,
        territory: GLOBAL.to_owned(),
        date,
        summary,
        evidence,
    }
}

/// Scores the series' changed days; a rise comes back with the cause that explains it.
async fn score_series(
    store: &dyn Store,
    s: &SeriesRef,
    mut stored: StoredState,
    dates: &BTreeSet<NaiveDate>,
    settings: &Settings,
) -> Result<Vec<(MetricAnomaly, Option<Cause>)>, PortError> {
    let (Some(&first), Some(&last)) = (dates.first(), dates.last()) else {
        return Ok(Vec::new());
    };
    let key = ItemKey::new(s.pk.clone(), format!("det#{}#{}", s.source, s.metric));
    let resume = stored.version == DETECTOR_VERSION && stored.last_date.is_some_and(|l| first > l);
    let from = if resume {
        stored.last_date.map_or(first, |l| l + Duration::days(1))
    } else {
        stored = StoredState {
            version: DETECTOR_VERSION.to_owned(),
            ..StoredState::default()
        };
        last - Duration::days(REPLAY_DAYS)
    };
    let points = days(store, s, from, last).await?;
    let config = &settings.detector;
    let mut out = Vec::new();
    let history_from = from.min(first);
    for (i, p) in points.iter().enumerate() {
        let score: PointScore = stored.state.observe(config, ts_of(p.date), p.value as f64);
        stored.last_date = Some(p.date);
        if !dates.contains(&p.date) || score.score < config.threshold {
            continue;
        }
        let Some(expected) = score.expected else {
            continue;
        };
        let rise = (p.value as f64) > expected;
        let evidence = Evidence {
            observed: p.value as f64,
            expected: Some(expected),
            band: score.band.map(|(l, h)| [l, h]),
            score: score.score,
            threshold: config.threshold,
            window: Window {
                from: history_from,
                to: p.date,
                points: i + 1,
            },
            detector: DETECTOR_NAME.to_owned(),
            version: DETECTOR_VERSION.to_owned(),
            ruled_out: Vec::new(),
            details: serde_json::json!({ "z": score.z, "period": score.period }),
        };
        if !rise {
            let summary = format!(
                "{} {} fell to {} on {} (expected about {:.0})",
                label(s),
                s.metric,
                p.value,
                p.date,
                expected
            );
            out.push((
                anomaly(s, AnomalyKind::Drop, p.date, summary, evidence),
                None,
            ));
            continue;
        }
        let known = causes(store, s, p.date, &settings.signals).await?;
        let cause = signals::explaining(&known, p.date, &settings.signals).cloned();
        let mut evidence = evidence;
        evidence.ruled_out = vec![
            format!(
                "no release in the {} days before",
                settings.signals.explain_days
            ),
            format!(
                "no playlist add known in the {} days before",
                settings.signals.explain_days
            ),
        ];
        let (kind, summary) = match save_collapse(store, s, p.date, p.value, &settings.signals)
            .await?
        {
            Some((rate, usual)) => {
                evidence.details["save_rate"] = serde_json::json!(rate);
                evidence.details["usual_save_rate"] = serde_json::json!(usual);
                (
                    AnomalyKind::SaveRateCollapse,
                    format!(
                        "{} streams jumped to {} on {} while its save rate fell to {:.4} (usually {:.4})",
                        label(s),
                        p.value,
                        p.date,
                        rate,
                        usual
                    ),
                )
            }
            None => (
                AnomalyKind::UnexplainedSpike,
                format!(
                    "{} {} jumped to {} on {} (expected about {:.0}) with no release or playlist add to explain it",
                    label(s),
                    s.metric,
                    p.value,
                    p.date,
                    expected
                ),
            ),
        };
        out.push((anomaly(s, kind, p.date, summary, evidence), cause));
    }
    put_doc(store, &key, &stored).await?;
    Ok(out)
}

/// The day's save rate and the usual one, when the rate collapsed.
async fn save_collapse(
    store: &dyn Store,
    s: &SeriesRef,
    date: NaiveDate,
    streams: i64,
    config: &SignalConfig,
) -> Result<Option<(f64, f64)>, PortError> {
    let Some(subject) = &s.subject else {
        return Ok(None);
    };
    let from = date - Duration::days(config.baseline_days);
    let saves = rollups::track_days(store, subject, &s.source, Metric::Saves, from, date).await?;
    let streams_hist =
        rollups::track_days(store, subject, &s.source, Metric::Streams, from, date).await?;
    let Some(today_saves) = saves.iter().find(|d| d.date == date) else {
        return Ok(None);
    };
    if streams < config.min_streams {
        return Ok(None);
    }
    let rates: Vec<f64> = streams_hist
        .iter()
        .filter(|d| d.date < date && d.value > 0)
        .filter_map(|d| {
            saves
                .iter()
                .find(|x| x.date == d.date)
                .map(|x| x.value as f64 / d.value as f64)
        })
        .collect();
    if rates.len() < 7 {
        return Ok(None);
    }
    let usual = signals::median(&rates).unwrap_or(0.0);
    let rate = today_saves.value as f64 / streams as f64;
    Ok((usual > 0.0 && rate < config.save_rate_ratio * usual).then_some((rate, usual)))
}

/// The per-day rules on a subject: streams per listener and territory mix.
async fn rules(
    store: &dyn Store,
    s: &SeriesRef,
    date: NaiveDate,
    config: &SignalConfig,
) -> Result<Vec<(MetricAnomaly, Option<Cause>)>, PortError> {
    let Some(subject) = &s.subject else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let Some(today) = rollups::track_day(store, subject, &s.source, Metric::Streams, date).await?
    else {
        return Ok(out);
    };
    let window = Window {
        from: date,
        to: date,
        points: 1,
    };
    let listeners = rollups::track_day(store, subject, &s.source, Metric::Listeners, date).await?;
    if let Some(l) = listeners
        && let Some(ratio) = signals::streams_per_listener(today.total, l.total, config)
        && ratio > config.max_streams_per_listener
    {
        let evidence = Evidence {
            observed: ratio,
            expected: None,
            band: Some([0.0, config.max_streams_per_listener]),
            score: (ratio / config.max_streams_per_listener / 2.0).min(1.0),
            threshold: config.max_streams_per_listener,
            window: window.clone(),
            detector: "streams_per_listener".to_owned(),
            version: SIGNALS_VERSION.to_owned(),
            ruled_out: Vec::new(),
            details: serde_json::json!({ "streams": today.total, "listeners": l.total }),
        };
        let summary = format!(
            "{subject} had {ratio:.1} streams per listener on {date} ({} streams, {} listeners): above {}",
            today.total, l.total, config.max_streams_per_listener
        );
        out.push((
            anomaly(s, AnomalyKind::ArtificialStreaming, date, summary, evidence),
            None,
        ));
    }
    let shares: Vec<(String, i64)> = today
        .territories
        .iter()
        .filter(|(t, _)| t.as_str() != GLOBAL)
        .map(|(t, f)| (t.clone(), f.value))
        .collect();
    let volume: i64 = shares.iter().map(|(_, v)| v).sum();
    if volume >= config.min_streams && !shares.is_empty() {
        let mut base: BTreeMap<String, f64> = BTreeMap::new();
        let mut days_with = 0usize;
        let from = date - Duration::days(config.baseline_days);
        let history = rollups::track_day_docs(
            store,
            subject,
            &s.source,
            Metric::Streams,
            from,
            date - Duration::days(1),
        )
        .await?;
        for (_, doc) in &history {
            let total: i64 = doc
                .territories
                .iter()
                .filter(|(t, _)| t.as_str() != GLOBAL)
                .map(|(_, f)| f.value)
                .sum();
            if total > 0 {
                days_with += 1;
                for (t, f) in doc.territories.iter().filter(|(t, _)| t.as_str() != GLOBAL) {
                    *base.entry(t.clone()).or_default() += f.value as f64 / total as f64;
                }
            }
        }
        if days_with >= 7 {
            let baseline: Vec<(String, f64)> = base.into_iter().collect();
            let shift = signals::territory_shift(&shares, &baseline);
            if shift >= config.max_territory_shift {
                let top = shares
                    .iter()
                    .max_by_key(|(_, v)| *v)
                    .map(|(t, _)| t.clone())
                    .unwrap_or_default();
                let evidence = Evidence {
                    observed: shift,
                    expected: None,
                    band: Some([0.0, config.max_territory_shift]),
                    score: shift.min(1.0),
                    threshold: config.max_territory_shift,
                    window: Window {
                        from,
                        to: date,
                        points: days_with + 1,
                    },
                    detector: "territory_shift".to_owned(),
                    version: SIGNALS_VERSION.to_owned(),
                    ruled_out: Vec::new(),
                    details: serde_json::json!({ "largest_territory": top, "streams": volume }),
                };
                let summary = format!(
                    "{subject}'s territory mix moved by {:.0} % on {date} (largest now {top})",
                    shift * 100.0
                );
                out.push((
                    anomaly(s, AnomalyKind::TerritoryShift, date, summary, evidence),
                    None,
                ));
            }
        }
    }
    Ok(out)
}

/// Applies the known cause and the cooldown to one finding.
async fn judge(
    store: &dyn Store,
    s: &SeriesRef,
    anomaly: MetricAnomaly,
    cause: Option<Cause>,
    config: &SignalConfig,
) -> Result<Verdict, PortError> {
    if let Some(cause) = cause {
        return Ok(Verdict::Explained {
            anomaly: Box::new(anomaly),
            cause,
        });
    }
    let key = ItemKey::new(
        s.pk.clone(),
        format!("alert#{}#{}#{}", anomaly.kind.as_str(), s.source, s.metric),
    );
    let last: LastAlert = get_doc(store, &key).await?;
    if let Some(prev) = last.date
        && (anomaly.date - prev).num_days().abs() < config.cooldown_days
    {
        return Ok(Verdict::Suppressed {
            anomaly: Box::new(anomaly),
            last_alert: prev,
        });
    }
    Ok(Verdict::Publish {
        anomaly: Box::new(anomaly),
        cooldown: key,
    })
}

/// Starts the cooldown of a published anomaly (after the bus accepted it, so a failed
/// publish is retried rather than silenced).
pub async fn mark_published(
    store: &dyn Store,
    cooldown: &ItemKey,
    date: NaiveDate,
) -> Result<(), PortError> {
    let mut last: LastAlert = get_doc(store, cooldown).await?;
    last.date = Some(last.date.map_or(date, |p| p.max(date)));
    put_doc(store, cooldown, &last).await
}
