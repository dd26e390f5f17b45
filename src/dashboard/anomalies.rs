//! `/anomalies?from=&to=`: the streaming anomalies streaming-metrics published (its
//! `MetricAnomaly` events on the local bus) for days in the range, each series drawn with its
//! anomalous days circled, and a table of every anomaly with its evidence.
//!
//! Bounded: the newest [`MAX_EVENTS`] anomaly events are read, at most [`MAX_SERIES`] series
//! are drawn (the table lists every anomaly of the range, the page says how many series are
//! not drawn), and a series is read over the range only (at most a year and a day, [`Range`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use backbone::local::LocalBus;
use backbone::validate::SpotifyId;
use chrono::NaiveDate;
use streaming_metrics::anomaly::MetricAnomaly;
use streaming_metrics::model::{Source, Subject};
use streaming_metrics::rollups;

use super::{Dashboard, PageError, QueryMap, Range, chart_marked, esc, page, query_of};

/// Anomaly events read at most (the newest).
pub const MAX_EVENTS: usize = 2_000;

/// Series drawn at most on one page.
pub const MAX_SERIES: usize = 20;

/// One series: subject, source and metric.
type SeriesKey = (String, String, String);

/// The anomalies of days in `range`, newest day first, one per dedupe key.
pub(crate) async fn in_range(d: &Dashboard, range: Range) -> Result<Vec<MetricAnomaly>, PageError> {
    let events = LocalBus::new(d.db.clone())
        .recent(
            streaming_metrics::EVENT_SOURCE,
            streaming_metrics::ANOMALY_DETAIL_TYPE,
            MAX_EVENTS,
        )
        .await?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for stored in events {
        let Ok(anomaly) =
            serde_json::from_value::<MetricAnomaly>(stored.event.detail["anomaly"].clone())
        else {
            tracing::warn!(event = stored.id, "a MetricAnomaly event does not decode");
            continue;
        };
        if (range.from..=range.to).contains(&anomaly.date)
            && seen.insert(anomaly.dedupe_key.clone())
        {
            out.push(anomaly);
        }
    }
    out.sort_by(|a, b| (b.date, &a.dedupe_key).cmp(&(a.date, &b.dedupe_key)));
    Ok(out)
}

/// The daily totals of one series over `range` (none when the event names a subject or a
/// source that does not parse: its anomalies are still listed in the table).
async fn series(
    d: &Dashboard,
    a: &MetricAnomaly,
    range: Range,
) -> Result<Vec<(NaiveDate, f64)>, PageError> {
    let (Ok(source), Ok(subject)) = (Source::parse(&a.source), Subject::parse(&a.subject)) else {
        tracing::warn!(subject = %a.subject, source = %a.source, "an anomaly names no readable series");
        return Ok(Vec::new());
    };
    let days = match &subject {
        Subject::Artist(id) => {
            rollups::artist_days(&d.db, id, &source, a.metric, range.from, range.to).await?
        }
        other => rollups::track_days(&d.db, other, &source, a.metric, range.from, range.to).await?,
    };
    Ok(days.into_iter().map(|t| (t.date, t.value as f64)).collect())
}

fn num(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.1}"))
}

fn artist_link(artist: Option<&str>) -> String {
    match artist.map(SpotifyId::new) {
        Some(Ok(id)) => format!("<a href=\"/artists/{a}\">{a}</a>", a = esc(id.as_str())),
        Some(Err(_)) | None => esc(artist.unwrap_or("-")),
    }
}

pub(crate) async fn page_of(
    State(d): State<Dashboard>,
    query: QueryMap,
) -> Result<Response, PageError> {
    let query = query_of(query)?;
    let range = Range::from_query(&query, d.clock.now().date_naive())?;
    let anomalies = in_range(&d, range).await?;
    let mut groups: BTreeMap<SeriesKey, Vec<&MetricAnomaly>> = BTreeMap::new();
    for a in &anomalies {
        groups
            .entry((
                a.subject.clone(),
                a.source.clone(),
                a.metric.as_str().to_owned(),
            ))
            .or_default()
            .push(a);
    }
    let mut body = format!(
        "{}<p id=\"anomalies-count\" data-count=\"{}\" data-series=\"{}\">{} anomalies on {} series from {} to {}.</p>",
        super::range_form(range),
        anomalies.len(),
        groups.len(),
        anomalies.len(),
        groups.len(),
        range.from,
        range.to
    );
    if groups.len() > MAX_SERIES {
        let _ = write!(
            body,
            "<p id=\"series-not-drawn\">{} series are not drawn (at most {MAX_SERIES} a page): narrow the range.</p>",
            groups.len() - MAX_SERIES
        );
    }
    body.push_str("<div id=\"series\">");
    for (i, ((subject, source, metric), list)) in groups.iter().take(MAX_SERIES).enumerate() {
        let points = series(&d, list[0], range).await?;
        let marks: Vec<NaiveDate> = list.iter().map(|a| a.date).collect();
        let title = format!("{subject}: {metric} ({source})");
        let _ = write!(
            body,
            "<section class=\"series\" data-subject=\"{}\" data-metric=\"{}\" data-source=\"{}\" data-anomalies=\"{}\">",
            esc(subject),
            esc(metric),
            esc(source),
            list.len()
        );
        match chart_marked(&format!("series-{i}"), &title, &points, &marks) {
            Some(svg) => body.push_str(&svg),
            None => {
                let _ = write!(
                    body,
                    "<p id=\"series-{i}\" data-points=\"0\">{}: no stored days in this range.</p>",
                    esc(&title)
                );
            }
        }
        body.push_str("</section>");
    }
    body.push_str("</div>");
    let _ = write!(
        body,
        "<table id=\"anomalies\" data-count=\"{}\"><tr><th>day</th><th>kind</th><th>subject</th><th>artist</th>\
<th>metric</th><th>observed</th><th>expected</th><th>band</th><th>score</th><th>summary</th><th>evidence</th></tr>",
        anomalies.len()
    );
    for a in &anomalies {
        let e = &a.evidence;
        let evidence = serde_json::to_string_pretty(e).unwrap_or_default();
        let _ = write!(
            body,
            "<tr data-anomaly=\"{}\" data-kind=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td>\
<td>{}</td><td>{}</td><td>{}</td><td>{:.2} / {:.2}</td><td>{}</td><td><pre class=\"evidence\">{}</pre></td></tr>",
            esc(&a.dedupe_key),
            a.kind.as_str(),
            a.date,
            a.kind.as_str(),
            esc(&a.subject),
            artist_link(a.artist.as_deref()),
            a.metric.as_str(),
            esc(&a.territory),
            num(Some(e.observed)),
            num(e.expected),
            e.band
                .map_or("-".to_owned(), |[lo, hi]| format!("{lo:.1} to {hi:.1}")),
            e.score,
            e.threshold,
            esc(&a.summary),
            esc(&evidence)
        );
    }
    body.push_str("</table>");
    Ok(page("Streaming anomalies", &body).into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::StatusCode;
    use backbone::config::HarnessConfig;
    use backbone::local::Invoke;
    use chrono::Duration;
    use serde_json::{Value, json};
    use streaming_metrics::StreamingMetrics;

    use crate::dashboard::testing::{self, text};

    const ARTIST: &str = "G019KKcygUS3wlPi98QoBL";

    fn day_obs(date: NaiveDate, streams: i64, listeners: i64, saves: i64) -> Value {
        let as_of = (date + Duration::days(1))
            .and_hms_opt(6, 0, 0)
            .unwrap()
            .and_utc();
        let o = |territory: &str, metric: &str, value: i64| {
            json!({ "subject": "USRC17607839", "territory": territory, "date": date, "metric": metric,
                    "value": value, "source": "spotify_for_artists", "as_of": as_of, "artist": ARTIST })
        };
        json!({ "observations": [
            o("SE", "streams", streams * 6 / 10),
            o("NO", "streams", streams - streams * 6 / 10),
            o("GLOBAL", "listeners", listeners),
            o("GLOBAL", "saves", saves),
        ]})
    }

    fn usual(day: i64) -> i64 {
        let weekly = [100, 95, 97, 104, 118, 130, 110];
        weekly[(day % 7) as usize] * 20 + (day * 7) % 13
    }

    use super::*;

    #[tokio::test]
    async fn anomalies_are_marked_on_their_series() {
        let runtime = testing::runtime();
        let task = StreamingMetrics::new(
            Arc::new(runtime.db.clone()),
            Arc::new(runtime.bus()),
            Arc::new(crate::local_objects()),
        );
        let function = runtime.harness(task, HarnessConfig::for_task("streaming-metrics"));
        // 60 usual days up to 2026-11-24, then bought streams on 2026-11-25.
        let burst: NaiveDate = "2026-11-25".parse().unwrap();
        let start = burst - Duration::days(60);
        for day in 0..=60 {
            let (s, l, saves) = if day == 60 {
                (usual(60) * 5, usual(60) / 2, 10)
            } else {
                (usual(day), usual(day) / 2, usual(day) / 30)
            };
            let report = function
                .invoke(day_obs(start + Duration::days(day), s, l, saves))
                .await
                .unwrap();
            assert!(
                !report.response.to_string().contains("failed"),
                "{}",
                report.response
            );
        }
        let app = testing::app(&runtime);
        let (status, body) = text(&app, "/").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.contains("data-count=\"anomalies\" data-value=\"3\"><a href=\"/anomalies\">"),
            "{body}"
        );
        let (status, body) = text(&app, "/anomalies").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.contains("data-kind=\"artificial_streaming\""),
            "{body}"
        );
        assert!(
            body.contains("data-subject=\"isrc:USRC17607839\" data-metric=\"streams\""),
            "{body}"
        );
        assert!(
            body.contains("<circle class=\"mark\" data-date=\"2026-11-25\""),
            "{body}"
        );
        // The default range is the 28 days up to the clock's day (2026-11-03 to 2026-11-30):
        // the 23 stored days in it are drawn, the artist's total beside the track's.
        assert!(body.contains("data-series=\"2\""), "{body}");
        assert_eq!(body.matches("data-points=\"23\"").count(), 2, "{body}");
        assert!(
            body.contains(&format!("href=\"/artists/{ARTIST}\"")),
            "{body}"
        );

        let (status, body) = text(&app, "/anomalies?from=2026-11-01&to=2026-11-24").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("id=\"anomalies-count\" data-count=\"0\" data-series=\"0\""),
            "{body}"
        );
        for (path, says) in [
            ("/anomalies?from=2026-11-30&to=2026-11-01", "after to"),
            ("/anomalies?from=2024-01-01", "at most 366"),
            ("/anomalies?to=30-11-2026", "parameter to"),
        ] {
            let (status, body) = text(&app, path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            assert!(body.contains(says), "{path}: {body}");
        }
    }
}
