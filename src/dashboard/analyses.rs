//! `/analyses`: the tracks track-analysis has analysed (newest schema), `/analyses/{track}`:
//! one analysis with the CLI's summary lines, and `/analyses/{track}/report.png`: the CLI's PNG
//! report (`tasks analyze --plot`).
//!
//! The store keeps the features, not the time series the PNG draws, so the report is made on
//! request the way the CLI makes it: the stored audio location is fetched again, checked
//! against the stored SHA-256 (audio gone or changed is a 409 page, not a wrong picture),
//! analysed under
//! [`REPORT_LIMITS`] and drawn by `track_analysis::plot::render`. One report is drawn at a time
//! (another request meanwhile is a 503 with `Retry-After`), and the last [`CACHED_REPORTS`] are
//! kept by content hash. `{track}` is an ISRC (hyphens and case ignored) or a Spotify track id;
//! anything else is a 400, an unanalysed track a 404.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use backbone::ports::{ObjectLocation, ObjectSource, Store};
use backbone::validate::SpotifyId;
use track_analysis::StoredAnalysis;
use track_analysis::decode::Limits;
use track_analysis::track::Isrc;

use super::{Dashboard, PageError, esc, page};

/// Analyses listed on `/analyses` at most (the page says when there are more).
pub const MAX_LISTED: usize = 500;

/// Reports kept in memory, by the audio's SHA-256 (about 170 KB each).
pub const CACHED_REPORTS: usize = 8;

/// What the dashboard decodes to draw a report: at most 256 MiB and 20 minutes of audio.
pub const REPORT_LIMITS: Limits = Limits {
    max_bytes: 256 << 20,
    max_seconds: 20.0 * 60.0,
    max_channels: 16,
    sample_rates: (8_000, 384_000),
};

/// The longest a report may take to draw before the page gives up with a 503.
const REPORT_TIMEOUT: Duration = Duration::from_secs(120);

static DRAWING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
static CACHE: Mutex<VecDeque<(String, Vec<u8>)>> = Mutex::new(VecDeque::new());

fn sk() -> String {
    format!("analysis#v{}", track_analysis::features::SCHEMA_VERSION)
}

/// The track of a path segment: `isrc:<ISRC>` or `spotify:<id>`, the store's key part.
fn track_key(segment: &str) -> Result<String, PageError> {
    if let Ok(isrc) = Isrc::new(segment) {
        return Ok(format!("isrc:{isrc}"));
    }
    if let Ok(id) = SpotifyId::new(segment) {
        return Ok(format!("spotify:{}", id.as_str()));
    }
    let shown: String = segment.chars().take(40).collect();
    Err(PageError::bad(format!(
        "{shown:?} is neither an ISRC (CC-XXX-YY-NNNNN) nor a Spotify track id"
    )))
}

/// The path segment of a stored track key (`isrc:X` -> `X`).
fn segment_of(key: &str) -> &str {
    key.split_once(':').map_or(key, |(_, id)| id)
}

fn decode(item: backbone::ports::Item) -> Result<(String, StoredAnalysis), PageError> {
    let key = item
        .key
        .pk
        .strip_prefix("track#")
        .unwrap_or(&item.key.pk)
        .to_owned();
    let stored = serde_json::from_value(item.data)
        .map_err(|e| PageError::store(format!("the analysis of {key} does not decode: {e}")))?;
    Ok((key, stored))
}

async fn load(d: &Dashboard, segment: &str) -> Result<(String, StoredAnalysis), PageError> {
    let key = track_key(segment)?;
    let item =
        d.db.get(&track_analysis::analysis_key(&key))
            .await?
            .ok_or_else(|| PageError::not_found(format!("no analysis of the track {key}")))?;
    decode(item)
}

fn title_of(key: &str, a: &StoredAnalysis) -> String {
    let title = a.track.as_ref().and_then(|t| t.title.clone());
    let artists = a
        .track
        .as_ref()
        .map(|t| t.artists.join(", "))
        .unwrap_or_default();
    match (title, artists.is_empty()) {
        (Some(t), false) => format!("{t} ({artists})"),
        (Some(t), true) => t,
        (None, _) => key.to_owned(),
    }
}

fn key_of(a: &StoredAnalysis) -> String {
    a.features.key.as_ref().map_or("-".to_owned(), |k| {
        let mode = match k.mode {
            track_analysis::analysis::key::Mode::Major => "major",
            track_analysis::analysis::key::Mode::Minor => "minor",
        };
        format!("{} {mode} ({})", k.tonic, k.camelot)
    })
}

/// The stored analyses, in track-key order, at most [`MAX_LISTED`], and whether there are more.
pub(crate) async fn list(
    d: &Dashboard,
) -> Result<(Vec<(String, StoredAnalysis)>, bool), PageError> {
    let (items, more) = d.db.scan_partitions("track#", &sk(), MAX_LISTED).await?;
    let analyses = items
        .into_iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((analyses, more))
}

pub(crate) async fn index(State(d): State<Dashboard>) -> Result<Response, PageError> {
    let (analyses, more) = list(&d).await?;
    let mut body = format!(
        "<p id=\"analyses-count\" data-count=\"{n}\">{n} analysed tracks{}.</p>\
<table id=\"analyses\"><tr><th>track</th><th>ISRC</th><th>key</th><th>tempo (BPM)</th>\
<th>loudness (LUFS)</th><th>duration (s)</th><th>energy</th><th>danceability</th><th>analysed</th></tr>",
        if more {
            format!(" (the first {MAX_LISTED} shown)")
        } else {
            String::new()
        },
        n = analyses.len(),
    );
    for (key, a) in &analyses {
        let f = &a.features;
        let _ = write!(
            body,
            "<tr data-track=\"{k}\"><td><a href=\"/analyses/{seg}\">{}</a></td><td>{}</td><td>{}</td>\
<td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td></tr>",
            esc(&title_of(key, a)),
            esc(&a
                .track
                .as_ref()
                .and_then(|t| t.isrc.as_ref())
                .map_or("-".to_owned(), ToString::to_string)),
            esc(&key_of(a)),
            f.tempo
                .as_ref()
                .map_or("-".to_owned(), |t| format!("{:.1}", t.bpm)),
            f.loudness
                .integrated_lufs
                .map_or("-".to_owned(), |l| format!("{l:.1}")),
            f.duration_seconds,
            f.derived.energy,
            f.derived.danceability,
            a.analyzed_at.format("%Y-%m-%d %H:%M"),
            k = esc(key),
            seg = esc(segment_of(key)),
        );
    }
    body.push_str("</table>");
    Ok(page("Track analyses", &body).into_response())
}

pub(crate) async fn show(
    State(d): State<Dashboard>,
    Path(track): Path<String>,
) -> Result<Response, PageError> {
    let (key, a) = load(&d, &track).await?;
    let body = format!(
        "<dl id=\"analysis\" data-track=\"{k}\" data-sha256=\"{sha}\">\
<dt>track</dt><dd>{k}</dd><dt>key</dt><dd id=\"key\">{}</dd><dt>audio</dt><dd>{}</dd>\
<dt>analysed</dt><dd>{}</dd><dt>size</dt><dd>{} bytes</dd></dl>\
<pre id=\"summary\">{}</pre>\
<p><img id=\"report\" src=\"/analyses/{seg}/report.png\" width=\"1200\" height=\"900\" \
alt=\"waveform and beats, short-term loudness and chroma of {k}\"></p>",
        esc(&key_of(&a)),
        esc(&a.audio),
        a.analyzed_at.to_rfc3339(),
        a.bytes,
        esc(&track_analysis::summary(&a.features)),
        k = esc(&key),
        sha = esc(&a.sha256),
        seg = esc(segment_of(&key)),
    );
    Ok(page(&title_of(&key, &a), &body).into_response())
}

fn cached(sha256: &str) -> Option<Vec<u8>> {
    let cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .iter()
        .find(|(s, _)| s == sha256)
        .map(|(_, png)| png.clone())
}

fn remember(sha256: &str, png: &[u8]) {
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.iter().any(|(s, _)| s == sha256) {
        return;
    }
    if cache.len() >= CACHED_REPORTS {
        cache.pop_front();
    }
    cache.push_back((sha256.to_owned(), png.to_vec()));
}

fn png(bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=300"),
            ),
        ],
        bytes,
    )
        .into_response()
}

fn busy(message: String) -> Response {
    let mut response = PageError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message,
    }
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

pub(crate) async fn report(
    State(d): State<Dashboard>,
    Path(track): Path<String>,
) -> Result<Response, PageError> {
    let (key, a) = load(&d, &track).await?;
    if let Some(bytes) = cached(&a.sha256) {
        return Ok(png(bytes));
    }
    let Ok(_permit) = DRAWING.try_acquire() else {
        return Ok(busy(
            "another report is being drawn; try again in a few seconds".to_owned(),
        ));
    };
    match tokio::time::timeout(REPORT_TIMEOUT, draw(&key, &a)).await {
        Ok(Ok(bytes)) => {
            remember(&a.sha256, &bytes);
            Ok(png(bytes))
        }
        Ok(Err(err)) => Err(err),
        Err(_) => Ok(busy(format!(
            "the report of {key} took over {} s to draw",
            REPORT_TIMEOUT.as_secs()
        ))),
    }
}

/// Fetches, checks, analyses and draws, as `tasks analyze --plot` does.
async fn draw(key: &str, a: &StoredAnalysis) -> Result<Vec<u8>, PageError> {
    let unavailable = |why: String| PageError {
        status: StatusCode::CONFLICT,
        message: format!("the report of {key} cannot be drawn: {why}"),
    };
    let location: ObjectLocation = a
        .audio
        .parse()
        .map_err(|e| unavailable(format!("its audio location does not parse: {e}")))?;
    let fetched = crate::local_objects()
        .fetch(&location, REPORT_LIMITS.max_bytes)
        .await
        .map_err(|e| unavailable(format!("its audio cannot be read again: {e}")))?;
    if fetched.sha256() != a.sha256 {
        return Err(unavailable(
            "its audio changed since the analysis (another SHA-256)".to_owned(),
        ));
    }
    let title = location.file_name().unwrap_or(key).to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let (features, timeline) =
            track_analysis::decode::analyze_path(fetched.path(), &REPORT_LIMITS)
                .map_err(|e| format!("its audio does not decode: {e}"))?;
        let file = tempfile::Builder::new()
            .suffix(".png")
            .tempfile()
            .map_err(|e| format!("no temporary file: {e}"))?;
        track_analysis::plot::render(file.path(), &title, &features, &timeline)
            .map_err(|e| e.to_string())?;
        std::fs::read(file.path()).map_err(|e| format!("reading the drawn report: {e}"))
    })
    .await
    .map_err(|e| unavailable(format!("the drawing thread failed: {e}")))?;
    result.map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_segments_are_validated() {
        assert_eq!(track_key("us-rc1-76-07839").unwrap(), "isrc:USRC17607839");
        assert_eq!(
            track_key("4uLU6hMCjMI75M1A2tKUQC").unwrap(),
            "spotify:4uLU6hMCjMI75M1A2tKUQC"
        );
        for bad in ["..", "../../etc/passwd", "USRC1760783", "<script>", ""] {
            let err = track_key(bad).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    mod router {
        use std::sync::Arc;

        use backbone::config::HarnessConfig;
        use backbone::local::Invoke;
        use track_analysis::TrackAnalysis;

        use super::*;
        use crate::dashboard::testing::{self, get, text};

        /// A one-second mono 16-bit WAV of a 440 Hz tone.
        fn tone_wav() -> Vec<u8> {
            let rate = 22_050u32;
            let frames = rate as usize;
            let data_len = (frames * 2) as u32;
            let mut out = Vec::new();
            out.extend_from_slice(b"RIFF");
            out.extend_from_slice(&(36 + data_len).to_le_bytes());
            out.extend_from_slice(b"WAVEfmt ");
            out.extend_from_slice(&16u32.to_le_bytes());
            out.extend_from_slice(&1u16.to_le_bytes());
            out.extend_from_slice(&1u16.to_le_bytes());
            out.extend_from_slice(&rate.to_le_bytes());
            out.extend_from_slice(&(rate * 2).to_le_bytes());
            out.extend_from_slice(&2u16.to_le_bytes());
            out.extend_from_slice(&16u16.to_le_bytes());
            out.extend_from_slice(b"data");
            out.extend_from_slice(&data_len.to_le_bytes());
            for n in 0..frames {
                let s = (2.0 * std::f64::consts::PI * 440.0 * n as f64 / f64::from(rate)).sin();
                out.extend_from_slice(&((s * 0.5 * 32767.0).round() as i16).to_le_bytes());
            }
            out
        }

        #[tokio::test]
        async fn analyses_list_show_and_draw_their_report() {
            let dir = tempfile::tempdir().unwrap();
            let audio = dir.path().join("tone.wav");
            std::fs::write(&audio, tone_wav()).unwrap();
            let runtime = testing::runtime();
            let function = runtime.harness(
                TrackAnalysis {
                    objects: Arc::new(crate::local_objects()),
                    store: Arc::new(runtime.db.clone()),
                    events: Arc::new(runtime.bus()),
                    limits: Limits::default(),
                },
                HarnessConfig::for_task("track-analysis"),
            );
            let report = function
                .invoke(serde_json::json!({
                    "track": {"isrc": "QZ-TAR-26-00001", "title": "<Tone> & Co", "artists": ["A"]},
                    "audio": audio.display().to_string(),
                }))
                .await
                .unwrap();
            assert!(
                report.response.to_string().contains("analyzed"),
                "{}",
                report.response
            );
            let app = testing::app(&runtime);
            let (status, body) = text(&app, "/").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(
                body.contains(
                    "data-count=\"analyses\" data-value=\"1\"><a href=\"/analyses\">1 analysed"
                ),
                "{body}"
            );

            let (status, body) = text(&app, "/analyses").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(body.contains("data-count=\"1\""), "{body}");
            assert!(body.contains("data-track=\"isrc:QZTAR2600001\""), "{body}");
            assert!(body.contains("href=\"/analyses/QZTAR2600001\""), "{body}");
            assert!(
                body.contains("&lt;Tone&gt; &amp; Co (A)") && !body.contains("<Tone>"),
                "{body}"
            );

            let (status, body) = text(&app, "/analyses/qz-tar-26-00001").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(
                body.contains("id=\"report\" src=\"/analyses/QZTAR2600001/report.png\""),
                "{body}"
            );
            assert!(
                body.contains("tempo ") && body.contains("loudness "),
                "{body}"
            );

            let started = std::time::Instant::now();
            let (status, headers, png) = get(&app, "/analyses/QZTAR2600001/report.png").await;
            eprintln!(
                "report.png of a one-second tone: {} bytes in {:.0} ms",
                png.len(),
                started.elapsed().as_secs_f64() * 1e3
            );
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&png));
            assert_eq!(headers[header::CONTENT_TYPE], "image/png");
            assert!(
                png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
                "{}",
                png.len()
            );
            // The IHDR: 1200 x 900, as the CLI draws it.
            assert_eq!(&png[16..24], &[0, 0, 4, 176, 0, 0, 3, 132]);

            // Drawn again from the cache: the same bytes.
            let (_, _, again) = get(&app, "/analyses/QZTAR2600001/report.png").await;
            assert_eq!(again, png);
            // While another report is being drawn, a request is a 503 with Retry-After.
            CACHE.lock().unwrap().clear();
            {
                let _drawing = DRAWING.try_acquire().unwrap();
                let (status, headers, _) = get(&app, "/analyses/QZTAR2600001/report.png").await;
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(headers[header::RETRY_AFTER], "5");
            }
            // Other audio at the stored location is refused, not drawn.
            std::fs::write(&audio, &tone_wav()[..30_000]).unwrap();
            let (status, body) = text(&app, "/analyses/QZTAR2600001/report.png").await;
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
            assert!(body.contains("audio changed"), "{body}");

            for (path, want) in [
                ("/analyses/QZTAR2699999", StatusCode::NOT_FOUND),
                ("/analyses/QZTAR2699999/report.png", StatusCode::NOT_FOUND),
                ("/analyses/not-an-isrc", StatusCode::BAD_REQUEST),
                ("/analyses/..%2F..%2Fetc%2Fpasswd", StatusCode::BAD_REQUEST),
                ("/analyses/%3Cscript%3E/report.png", StatusCode::BAD_REQUEST),
            ] {
                let (status, body) = text(&app, path).await;
                assert_eq!(status, want, "{path}: {body}");
                assert!(
                    body.contains("id=\"error\"") && !body.contains("<script>"),
                    "{path}: {body}"
                );
            }
        }
    }
}
