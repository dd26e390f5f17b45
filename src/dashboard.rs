//! The read-only web dashboard of `tasks serve`: server-rendered HTML pages over the same local
//! database the functions write, with trend charts drawn as inline SVG on the server (no
//! script, no CDN, nothing fetched at build or run time).
//!
//! Pages: `/` (overview: counts, the audit chains' state, links), `/watchlists/{name}` (its
//! artists), `/artists/{id}?from=&to=` (followers and popularity over time), `/alerts?from=&to=`
//! (alerts with the figures that triggered them), and one module each for `/analyses` (track
//! analyses and their PNG reports), `/anomalies?from=&to=` (streaming anomalies on their
//! series), `/playlists` (playlist-update's runs and explanations) and `/drafts?state=` (AI
//! drafts waiting for approval). Bad input is a page with a 4xx status: an
//! unknown watchlist or artist is 404, a malformed date, `from` after `to`, a range over
//! [`MAX_RANGE_DAYS`] days or a year outside [`YEARS`] is 400 naming the parameter. Unknown query
//! parameters are ignored. A store failure is a 503 page naming the operation, never a trace.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use artist_monitoring::alerts::Alert;
use artist_monitoring::snapshots::{self, Snapshot};
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use backbone::audit::{ChainProblem, VerifyReport};
use backbone::clock::Clock;
use backbone::local::LocalDb;
use backbone::validate::ArtistId;
use backbone::watchlist::{self, WatchlistError, WatchlistName};
use chrono::NaiveDate;

mod analyses;
mod anomalies;
mod drafts;
mod playlists;
#[cfg(test)]
pub(crate) mod testing;

/// The longest date range a page accepts: a year and a day (a leap year's 366 days).
pub const MAX_RANGE_DAYS: i64 = 366;

/// The years a date parameter may name; anything else is a typo or a probe.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// The default range: the 28 days up to today on the service's clock.
const DEFAULT_DAYS: i64 = 28;

const CSS: &str = "body{font-family:sans-serif;margin:1.5rem;color:#222;max-width:70rem}\
nav a{margin-right:1rem}table{border-collapse:collapse;margin:1rem 0}\
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}\
.ok{color:#176117}.broken{color:#a11}svg{background:#fafafa;border:1px solid #ddd}\
pre{background:#f4f4f4;padding:.5rem;white-space:pre-wrap}";

/// What the pages read: the local database and the service's clock (for "today").
#[derive(Clone)]
pub struct Dashboard {
    db: LocalDb,
    clock: Arc<dyn Clock>,
}

impl Dashboard {
    /// A dashboard over `db`, dating its default ranges by `clock`.
    pub fn new(db: LocalDb, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// The dashboard's routes, to merge into the service's router (which adds the token check
    /// and the 404/405 fallbacks).
    pub fn routes<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        Router::new()
            .route("/", get(overview))
            .route("/dashboard.css", get(css))
            .route("/watchlists/{name}", get(watchlist_page))
            .route("/artists/{id}", get(artist_page))
            .route("/alerts", get(alerts_page))
            .route("/analyses", get(analyses::index))
            .route("/anomalies", get(anomalies::page_of))
            .route("/playlists", get(playlists::index))
            .route("/drafts", get(drafts::index))
            .route("/analyses/{track}", get(analyses::show))
            .route("/analyses/{track}/report.png", get(analyses::report))
            .with_state(self)
    }
}

/// A page that could not be shown, with the status and the sentence a person reads.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    fn bad(message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }

    fn not_found(message: String) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message,
        }
    }

    fn store(err: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %err, "a dashboard page could not read the store");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the local store could not be read: {err}"),
        }
    }
}

impl From<backbone::error::PortError> for PageError {
    fn from(err: backbone::error::PortError) -> Self {
        Self::store(err)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = format!(
            "{} {}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("error")
        );
        let body = format!(
            "<p id=\"error\" data-status=\"{}\">{}</p><p><a href=\"/\">Back to the overview</a></p>",
            self.status.as_u16(),
            esc(&self.message)
        );
        (self.status, page(&title, &body)).into_response()
    }
}

/// Escapes text for HTML content and attribute values: the one escaping function every
/// stored string goes through.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} - tasks</title>\
<link rel=\"stylesheet\" href=\"/dashboard.css\"></head><body>\
<nav><a href=\"/\">Overview</a><a href=\"/alerts\">Alerts</a><a href=\"/analyses\">Analyses</a><a href=\"/anomalies\">Anomalies</a><a href=\"/playlists\">Playlists</a><a href=\"/drafts\">Drafts</a><a href=\"/metrics\">Metrics</a></nav>\
<h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    ))
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/css"))],
        CSS,
    )
        .into_response()
}

/// A validated `from..=to` range of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
}

/// The form that picks a page's date range, filled with `range`.
pub(crate) fn range_form(range: Range) -> String {
    format!(
        "<form id=\"range\" method=\"get\"><label>from <input name=\"from\" value=\"{}\"></label> \
<label>to <input name=\"to\" value=\"{}\"></label> <button>show</button></form>",
        range.from, range.to
    )
}

fn parse_day(name: &str, value: &str) -> Result<NaiveDate, PageError> {
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        PageError::bad(format!(
            "parameter {name}: {value:?} is not a date of the form YYYY-MM-DD"
        ))
    })?;
    if !YEARS.contains(&chrono::Datelike::year(&day)) {
        return Err(PageError::bad(format!(
            "parameter {name}: {value} is outside the years {} to {}",
            YEARS.start(),
            YEARS.end()
        )));
    }
    Ok(day)
}

impl Range {
    /// Reads `from` and `to` from the query (either may be left out: `to` defaults to
    /// `today`, `from` to 27 days before `to`), rejecting what [`PageError`] names.
    pub fn from_query(
        query: &HashMap<String, String>,
        today: NaiveDate,
    ) -> Result<Self, PageError> {
        let to = match query.get("to") {
            Some(v) => parse_day("to", v)?,
            None => today,
        };
        let from = match query.get("from") {
            Some(v) => parse_day("from", v)?,
            None => to - chrono::Duration::days(DEFAULT_DAYS - 1),
        };
        if from > to {
            return Err(PageError::bad(format!(
                "parameter from: {from} is after to ({to})"
            )));
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_RANGE_DAYS {
            return Err(PageError::bad(format!(
                "parameters from and to: {days} days asked, at most {MAX_RANGE_DAYS}"
            )));
        }
        Ok(Self { from, to })
    }
}

type QueryMap = Result<Query<HashMap<String, String>>, QueryRejection>;

fn query_of(query: QueryMap) -> Result<HashMap<String, String>, PageError> {
    query
        .map(|Query(q)| q)
        .map_err(|err| PageError::bad(format!("the query string cannot be read: {err}")))
}

async fn load_watchlists(db: &LocalDb) -> Result<Vec<watchlist::Watchlist>, PageError> {
    let mut lists = Vec::new();
    for name in watchlist::names(db).await.map_err(PageError::store)? {
        lists.push(watchlist::load(db, &name).await.map_err(PageError::store)?);
    }
    Ok(lists)
}

fn describe(problem: &ChainProblem) -> String {
    match problem {
        ChainProblem::Gap { expected, found } => {
            format!("record {expected} missing (found {found})")
        }
        ChainProblem::Altered { seq } => format!("record {seq} altered"),
        ChainProblem::BrokenLink { seq } => format!("broken link at record {seq}"),
        ChainProblem::Truncated { head_seq, last_seq } => {
            format!("truncated after record {last_seq} (head at {head_seq})")
        }
        ChainProblem::HeadMismatch { head_seq, last_seq } => {
            format!("head at {head_seq} does not match record {last_seq}")
        }
        ChainProblem::HeadMissing => "no head record".to_owned(),
    }
}

fn audit_table(reports: &[VerifyReport]) -> String {
    let broken = reports.iter().filter(|r| !r.is_intact()).count();
    let mut out = format!(
        "<p id=\"audit-status\" data-broken=\"{broken}\" class=\"{}\">{}</p>",
        if broken == 0 { "ok" } else { "broken" },
        if broken == 0 {
            format!("Every audit chain verified ({} streams).", reports.len())
        } else {
            format!("{broken} audit chain(s) BROKEN.")
        }
    );
    out.push_str("<table id=\"audit\"><tr><th>stream</th><th>records</th><th>state</th></tr>");
    for r in reports {
        let state = if r.is_intact() {
            "verified".to_owned()
        } else {
            r.problems
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = write!(
            out,
            "<tr data-stream=\"{}\"><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&r.stream),
            esc(&r.stream),
            r.records,
            if r.is_intact() { "ok" } else { "broken" },
            esc(&state)
        );
    }
    out.push_str("</table>");
    out
}

async fn overview(State(d): State<Dashboard>) -> Result<Response, PageError> {
    let lists = load_watchlists(&d.db).await?;
    let today = d.clock.now().date_naive();
    let range = Range {
        from: today - chrono::Duration::days(DEFAULT_DAYS - 1),
        to: today,
    };
    let alerts = alerts_in(&d.db, range).await?;
    let reports = crate::verify_audit_db(&d.db, d.clock.clone(), None)
        .await
        .map_err(PageError::store)?;
    let (analysed, more_analyses) = analyses::list(&d).await?;
    let anomalies = anomalies::in_range(&d, range).await?;
    let runs = playlists::newest(&d).await?;
    let (stored_drafts, _) = drafts::scanned(&d).await?;
    let mut body = format!(
        "<ul id=\"counts\"><li data-count=\"watchlists\">{} watchlists</li>\
<li data-count=\"artists\">{} watched artists</li>\
<li data-count=\"alerts\"><a href=\"/alerts\">{} alerts</a> in the last {DEFAULT_DAYS} days</li>\
<li data-count=\"analyses\" data-value=\"{}\"><a href=\"/analyses\">{}{} analysed tracks</a></li>\
<li data-count=\"anomalies\" data-value=\"{}\"><a href=\"/anomalies\">{} streaming anomalies</a> in the last {DEFAULT_DAYS} days</li>\
<li data-count=\"playlist-runs\" data-value=\"{}\"><a href=\"/playlists\">{} recent playlist runs</a></li>\
<li data-count=\"drafts\" data-value=\"{}\"><a href=\"/drafts\">{} drafts waiting</a> for approval or publication</li></ul>",
        lists.len(),
        lists.iter().map(|l| l.artists.len()).sum::<usize>(),
        alerts.len(),
        analysed.len(),
        analysed.len(),
        if more_analyses { "+" } else { "" },
        anomalies.len(),
        anomalies.len(),
        runs.len(),
        runs.len(),
        drafts::waiting(&stored_drafts),
        drafts::waiting(&stored_drafts),
    );
    body.push_str("<h2>Watchlists</h2><ul id=\"watchlists\">");
    for list in &lists {
        let name = list.name.as_str();
        let _ = write!(
            body,
            "<li><a href=\"/watchlists/{}\">{}</a> ({} artists)</li>",
            esc(name),
            esc(name),
            list.artists.len()
        );
    }
    body.push_str("</ul><h2>Audit log</h2>");
    body.push_str(&audit_table(&reports));
    Ok(page("Overview", &body).into_response())
}

async fn watchlist_page(
    State(d): State<Dashboard>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let unknown = || PageError::not_found(format!("no watchlist is named {name:?}"));
    let list_name = WatchlistName::new(&name).map_err(|_| unknown())?;
    let list = match watchlist::load(&d.db, &list_name).await {
        Ok(list) => list,
        Err(WatchlistError::Unknown(_)) => return Err(unknown()),
        Err(err) => return Err(PageError::store(err)),
    };
    let today = d.clock.now().date_naive();
    let mut body = String::from(
        "<table id=\"artists\"><tr><th>artist</th><th>followers</th><th>popularity</th><th>last snapshot</th></tr>",
    );
    for artist in &list.artists {
        let history = snapshots::history(
            &d.db,
            artist,
            today - chrono::Duration::days(MAX_RANGE_DAYS),
            today,
        )
        .await?;
        let last = history.last();
        let label = last
            .and_then(|s| s.name.clone())
            .unwrap_or_else(|| artist.to_string());
        let _ = write!(
            body,
            "<tr data-artist=\"{id}\"><td><a href=\"/artists/{id}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&label),
            last.and_then(|s| s.followers)
                .map_or("n/a".to_owned(), |v| v.to_string()),
            last.and_then(|s| s.popularity)
                .map_or("n/a".to_owned(), |v| v.to_string()),
            last.map_or("none".to_owned(), |s| s.date.to_string()),
            id = esc(artist.as_str()),
        );
    }
    body.push_str("</table>");
    Ok(page(&format!("Watchlist {name}"), &body).into_response())
}

/// An inline SVG line chart of `points` (day, value), axis labels included; `None` for no
/// points. Values are scaled into a fixed 640x200 box, so the size never depends on the input.
pub fn chart(id: &str, title: &str, points: &[(NaiveDate, f64)]) -> Option<String> {
    chart_marked(id, title, points, &[])
}

/// [`chart`] with the points of the days in `marks` circled in red (`<circle class="mark"
/// data-date="...">`, one per marked day that has a point).
pub fn chart_marked(
    id: &str,
    title: &str,
    points: &[(NaiveDate, f64)],
    marks: &[NaiveDate],
) -> Option<String> {
    let (first, last) = (points.first()?, points.last()?);
    let (w, h, pad) = (640.0, 200.0, 40.0);
    let min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let span_v = if max > min { max - min } else { 1.0 };
    let span_d = ((last.0 - first.0).num_days() as f64).max(1.0);
    let mut line = String::new();
    let mut circles = String::new();
    for (day, value) in points {
        let x = pad + (*day - first.0).num_days() as f64 / span_d * (w - 2.0 * pad);
        let y = h - pad - (value - min) / span_v * (h - 2.0 * pad);
        let _ = write!(line, "{x:.1},{y:.1} ");
        if marks.contains(day) {
            let _ = write!(
                circles,
                "<circle class=\"mark\" data-date=\"{day}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"none\" stroke=\"#a11\" stroke-width=\"2\"><title>{day}: {value}</title></circle>"
            );
        }
    }
    Some(format!(
        "<figure><figcaption>{t}</figcaption><svg id=\"{id}\" data-points=\"{n}\" role=\"img\" \
aria-label=\"{t}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">\
<polyline fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\" points=\"{line}\"/>{circles}\
<text x=\"4\" y=\"{top}\" font-size=\"11\">{max}</text><text x=\"4\" y=\"{bottom}\" font-size=\"11\">{min}</text>\
<text x=\"{pad}\" y=\"{h0}\" font-size=\"11\">{d0}</text><text x=\"{right}\" y=\"{h0}\" font-size=\"11\" text-anchor=\"end\">{d1}</text></svg></figure>",
        t = esc(title),
        id = esc(id),
        n = points.len(),
        line = line.trim_end(),
        top = pad,
        bottom = h - pad,
        h0 = h - 8.0,
        right = w - pad,
        d0 = first.0,
        d1 = last.0,
    ))
}

async fn artist_page(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    query: QueryMap,
) -> Result<Response, PageError> {
    let query = query_of(query)?;
    let unknown = || PageError::not_found(format!("no watched artist has the id {id:?}"));
    let artist = ArtistId::parse("artist", &id).map_err(|_| unknown())?;
    let lists = load_watchlists(&d.db).await?;
    if !lists.iter().any(|l| l.artists.contains(&artist)) {
        return Err(unknown());
    }
    let range = Range::from_query(&query, d.clock.now().date_naive())?;
    let history: Vec<Snapshot> = snapshots::history(&d.db, &artist, range.from, range.to).await?;
    let name = history
        .iter()
        .rev()
        .find_map(|s| s.name.clone())
        .unwrap_or_else(|| artist.to_string());
    let series = |f: &dyn Fn(&Snapshot) -> Option<f64>| -> Vec<(NaiveDate, f64)> {
        history
            .iter()
            .filter_map(|s| f(s).map(|v| (s.date, v)))
            .collect()
    };
    let followers = series(&|s| s.followers.map(|v| v as f64));
    let popularity = series(&|s| s.popularity.map(f64::from));
    let mut body = format!(
        "{}<p id=\"snapshots\" data-count=\"{}\">{} snapshots from {} to {}.</p>",
        range_form(range),
        history.len(),
        history.len(),
        range.from,
        range.to
    );
    for (cid, title, points) in [
        ("followers-chart", "Followers", &followers),
        ("popularity-chart", "Popularity (0-100)", &popularity),
    ] {
        match chart(cid, title, points) {
            Some(svg) => body.push_str(&svg),
            None => {
                let _ = write!(
                    body,
                    "<p id=\"{cid}\" data-points=\"0\">{title}: no values in this range.</p>"
                );
            }
        }
    }
    let alerts: Vec<Alert> = alerts_in(&d.db, range)
        .await?
        .into_iter()
        .filter(|a| a.artist == artist)
        .collect();
    body.push_str("<h2>Alerts</h2>");
    body.push_str(&alerts_table(&alerts));
    Ok(page(&name, &body).into_response())
}

async fn alerts_in(db: &LocalDb, range: Range) -> Result<Vec<Alert>, PageError> {
    Ok(crate::report::alerts_between(db, range.from, range.to).await?)
}

fn alerts_table(alerts: &[Alert]) -> String {
    let mut out = format!(
        "<table id=\"alerts\" data-count=\"{}\"><tr><th>day</th><th>kind</th><th>artist</th><th>summary</th><th>evidence</th></tr>",
        alerts.len()
    );
    for a in alerts {
        let evidence = serde_json::to_string_pretty(&a.evidence).unwrap_or_default();
        let _ = write!(
            out,
            "<tr data-alert=\"{}\"><td>{}</td><td>{}</td><td><a href=\"/artists/{}\">{}</a></td><td>{}</td><td><pre class=\"evidence\">{}</pre></td></tr>",
            esc(&a.dedupe_key),
            a.date,
            a.kind.as_str(),
            esc(a.artist.as_str()),
            esc(a.artist_name.as_deref().unwrap_or(a.artist.as_str())),
            esc(&a.summary),
            esc(&evidence)
        );
    }
    out.push_str("</table>");
    out
}

async fn alerts_page(State(d): State<Dashboard>, query: QueryMap) -> Result<Response, PageError> {
    let query = query_of(query)?;
    let range = Range::from_query(&query, d.clock.now().date_naive())?;
    let alerts = alerts_in(&d.db, range).await?;
    let body = format!(
        "<p>{} alerts from {} to {}.</p>{}",
        alerts.len(),
        range.from,
        range.to,
        alerts_table(&alerts)
    );
    Ok(page("Alerts", &body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_are_validated() {
        let today = day("2026-11-30");
        let r = Range::from_query(&q(&[]), today).unwrap();
        assert_eq!((r.from, r.to), (day("2026-11-03"), today));
        let r = Range::from_query(&q(&[("from", "2026-01-01"), ("x", "y")]), today).unwrap();
        assert_eq!(r.from, day("2026-01-01"));
        for (pairs, names) in [
            (vec![("from", "2026-13-45")], "parameter from"),
            (vec![("to", "yesterday")], "parameter to"),
            (
                vec![("from", "2026-11-10"), ("to", "2026-11-01")],
                "after to",
            ),
            (vec![("from", "2020-01-01")], "at most 366"),
            (
                vec![("from", "9999-01-01"), ("to", "9999-01-02")],
                "outside",
            ),
        ] {
            let err = Range::from_query(&q(&pairs), today).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.contains(names), "{pairs:?}: {}", err.message);
        }
    }

    #[test]
    fn text_is_escaped_and_charts_are_bounded() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert!(chart("c", "t", &[]).is_none());
        let svg = chart(
            "c",
            "<t>",
            &[(day("2026-01-01"), 5.0), (day("2026-01-03"), 5.0)],
        )
        .unwrap();
        assert!(
            svg.contains("data-points=\"2\"") && svg.contains("&lt;t&gt;"),
            "{svg}"
        );
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    mod router {
        use super::*;
        use artist_monitoring::alerts::AlertKind;
        use backbone::SecretString;
        use backbone::clock::ManualClock;
        use backbone::telemetry::prometheus::Registry;

        const ARTIST: &str = "0TnOYISbd1XYRBk9myaseg";

        async fn app(token: Option<&SecretString>) -> Router {
            let db = LocalDb::in_memory().unwrap();
            let clock: Arc<dyn Clock> =
                Arc::new(ManualClock::new("2026-11-30T12:00:00Z".parse().unwrap()));
            let artist = ArtistId::parse("a", ARTIST).unwrap();
            let list = WatchlistName::new("demo").unwrap();
            watchlist::add(&db, &list, std::slice::from_ref(&artist))
                .await
                .unwrap();
            for (i, d) in ["2026-11-20", "2026-11-21", "2026-11-22"]
                .iter()
                .enumerate()
            {
                let snapshot = Snapshot {
                    artist: artist.clone(),
                    date: day(d),
                    name: Some("<Band> & Co".into()),
                    followers: Some(1000 + 10 * i as u64),
                    popularity: Some(40 + i as u8),
                    genres: None,
                    releases: vec![],
                    unavailable: vec![],
                    gone: false,
                };
                snapshots::save(&db, &snapshot).await.unwrap();
            }
            snapshots::record_alert(
                &db,
                &Alert {
                    kind: AlertKind::PopularityJump,
                    artist: artist.clone(),
                    artist_name: Some("<Band> & Co".into()),
                    date: day("2026-11-22"),
                    dedupe_key: "popularity_jump/x".into(),
                    summary: "popularity jumped".into(),
                    evidence: serde_json::json!({"from": 33, "to": 42, "threshold": 8}),
                },
            )
            .await
            .unwrap();
            crate::serve::router(
                Arc::new(Registry::new()),
                token,
                Some(Dashboard::new(db, clock)),
            )
        }

        use crate::dashboard::testing::call_text as get;

        #[tokio::test]
        async fn pages_render_the_stored_figures() {
            let app = app(None).await;
            let (status, body) = get(&app, "GET", "/", None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(
                body.contains("id=\"audit-status\" data-broken=\"0\""),
                "{body}"
            );
            assert!(body.contains("href=\"/watchlists/demo\""), "{body}");
            assert!(body.contains("1 alerts"), "{body}");
            let (status, body) = get(&app, "GET", "/watchlists/demo", None).await;
            assert_eq!(status, StatusCode::OK);
            assert!(
                body.contains("&lt;Band&gt; &amp; Co") && body.contains("1020"),
                "{body}"
            );
            let path = format!("/artists/{ARTIST}?from=2026-11-01&to=2026-11-30&unknown=1");
            let (status, body) = get(&app, "GET", &path, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(
                body.contains("id=\"followers-chart\" data-points=\"3\""),
                "{body}"
            );
            assert!(
                body.contains("id=\"popularity-chart\" data-points=\"3\""),
                "{body}"
            );
            assert!(!body.contains("<Band>"), "unescaped: {body}");
            let (status, body) =
                get(&app, "GET", "/alerts?from=2026-11-22&to=2026-11-22", None).await;
            assert_eq!(status, StatusCode::OK);
            assert!(
                body.contains("data-count=\"1\"") && body.contains("&quot;threshold&quot;: 8"),
                "{body}"
            );
            let (_, body) = get(&app, "GET", "/alerts?from=2026-11-23&to=2026-11-30", None).await;
            assert!(body.contains("data-count=\"0\""), "{body}");
            let (status, body) = get(&app, "GET", "/dashboard.css", None).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.contains("font-family"));
        }

        #[tokio::test]
        async fn bad_input_is_a_page_with_a_4xx() {
            let app = app(None).await;
            for (path, status, says) in [
                (
                    "/artists/0000000000000000000000",
                    StatusCode::NOT_FOUND,
                    "no watched artist",
                ),
                (
                    "/artists/..%2F..%2Fetc",
                    StatusCode::NOT_FOUND,
                    "no watched artist",
                ),
                ("/watchlists/nope", StatusCode::NOT_FOUND, "no watchlist"),
                (
                    &format!("/artists/{ARTIST}?from=2026-13-45"),
                    StatusCode::BAD_REQUEST,
                    "parameter from",
                ),
                (
                    "/alerts?from=2026-11-10&to=2026-11-01",
                    StatusCode::BAD_REQUEST,
                    "after to",
                ),
                (
                    "/alerts?from=0001-01-01&to=9999-12-31",
                    StatusCode::BAD_REQUEST,
                    "outside",
                ),
                (
                    "/alerts?from=2025-01-01&to=2026-11-30",
                    StatusCode::BAD_REQUEST,
                    "at most 366",
                ),
            ] {
                let (got, body) = get(&app, "GET", path, None).await;
                assert_eq!(got, status, "{path}: {body}");
                assert!(
                    body.starts_with("<!doctype html>") && body.contains(says),
                    "{path}: {body}"
                );
                assert!(body.contains("id=\"error\""), "{path}");
            }
            for method in ["POST", "PUT", "DELETE"] {
                let (got, _) = get(&app, method, "/alerts", None).await;
                assert_eq!(got, StatusCode::METHOD_NOT_ALLOWED, "{method}");
            }
        }

        #[tokio::test]
        async fn the_token_guards_the_pages() {
            let token = SecretString::from("dash-token".to_owned());
            let app = app(Some(&token)).await;
            for path in ["/", "/alerts", "/watchlists/demo", "/dashboard.css"] {
                assert_eq!(
                    get(&app, "GET", path, None).await.0,
                    StatusCode::UNAUTHORIZED,
                    "{path}"
                );
                assert_eq!(
                    get(&app, "GET", path, Some("Bearer dash-token")).await.0,
                    StatusCode::OK,
                    "{path}"
                );
            }
        }
    }
}
