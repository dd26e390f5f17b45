//! `/drafts?state=`: the texts ai-content-generation wrote, read-only: by default those waiting
//! for a person (`draft`, waiting for approval, and `approved`, waiting for publication), or
//! one state (`draft`, `approved`, `published`, `rejected`) or `all`. Each shows its kind,
//! language, tone, model, the grounding check's result (with its violations) and the review
//! note, and its text, escaped. Approving stays with `tasks content approve`.
//!
//! Bounded: at most [`MAX_SCANNED`] stored drafts are read (in id order) and the newest
//! [`MAX_SHOWN`] of the chosen state are shown; the page says when either bound was reached.
//! An unknown `state` is a 400.

use std::fmt::Write as _;

use ai_content_generation::drafts::{Draft, Status};
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{Dashboard, PageError, QueryMap, esc, page, query_of};

/// Stored drafts read at most.
pub const MAX_SCANNED: usize = 1_000;

/// Drafts shown at most (the newest).
pub const MAX_SHOWN: usize = 100;

/// Which drafts a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    Waiting,
    All,
    One(Status),
}

impl Filter {
    fn parse(value: Option<&String>) -> Result<Self, PageError> {
        Ok(match value.map(String::as_str) {
            None | Some("waiting") => Filter::Waiting,
            Some("all") => Filter::All,
            Some("draft") => Filter::One(Status::Draft),
            Some("approved") => Filter::One(Status::Approved),
            Some("published") => Filter::One(Status::Published),
            Some("rejected") => Filter::One(Status::Rejected),
            Some(other) => {
                let shown: String = other.chars().take(40).collect();
                return Err(PageError::bad(format!(
                    "parameter state: {shown:?} is not one of waiting, all, draft, approved, published, rejected"
                )));
            }
        })
    }

    fn keeps(self, status: Status) -> bool {
        match self {
            Filter::Waiting => matches!(status, Status::Draft | Status::Approved),
            Filter::All => true,
            Filter::One(s) => s == status,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Filter::Waiting => "waiting",
            Filter::All => "all",
            Filter::One(s) => s.as_str(),
        }
    }
}

/// The stored drafts (at most [`MAX_SCANNED`]), and whether there were more.
pub(crate) async fn scanned(d: &Dashboard) -> Result<(Vec<Draft>, bool), PageError> {
    let (items, more) = d.db.scan_partitions("draft#", "draft", MAX_SCANNED).await?;
    let mut drafts = Vec::with_capacity(items.len());
    for item in items {
        match serde_json::from_value::<Draft>(item.data) {
            Ok(draft) => drafts.push(draft),
            Err(err) => {
                tracing::warn!(draft = %item.key.pk, error = %err, "a stored draft does not decode")
            }
        }
    }
    Ok((drafts, more))
}

/// How many stored drafts wait for a person.
pub(crate) fn waiting(drafts: &[Draft]) -> usize {
    drafts
        .iter()
        .filter(|d| Filter::Waiting.keeps(d.status))
        .count()
}

fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn draft_section(d: &Draft) -> String {
    let v = &d.verification;
    let grounding = if v.passed {
        format!("passed ({} attempts)", v.attempts)
    } else {
        format!("FAILED ({} attempts)", v.attempts)
    };
    let mut out = format!(
        "<section class=\"draft\" id=\"draft-{id}\" data-draft=\"{id}\" data-state=\"{state}\" data-kind=\"{kind}\" \
data-language=\"{lang}\" data-grounded=\"{grounded}\"><h2>{kind} in {lang} for <a href=\"/artists/{artist}\">{artist}</a></h2>\
<dl><dt>state</dt><dd>{state}</dd><dt>tone</dt><dd>{tone}</dd><dt>words</dt><dd>{words}</dd>\
<dt>model</dt><dd>{model}</dd><dt>written</dt><dd>{at}</dd><dt>grounding</dt><dd class=\"grounding {class}\">{grounding}</dd></dl>",
        id = esc(&d.id),
        state = d.status.as_str(),
        kind = d.kind.as_str(),
        lang = esc(&name_of(&d.language)),
        grounded = v.passed,
        artist = esc(d.artist.as_str()),
        tone = esc(&name_of(&d.tone)),
        words = d.words,
        model = esc(&d.model),
        at = d.created_at.format("%Y-%m-%d %H:%M UTC"),
        class = if v.passed { "ok" } else { "broken" },
    );
    if !v.violations.is_empty() {
        out.push_str("<ul class=\"violations\">");
        for violation in &v.violations {
            let _ = write!(
                out,
                "<li>{} {:?} at {}</li>",
                esc(&violation.kind),
                esc(&violation.found),
                violation.offset
            );
        }
        out.push_str("</ul>");
    }
    if let Some(review) = &d.review {
        let _ = write!(
            out,
            "<p class=\"review broken\">review: {}</p>",
            esc(review)
        );
    }
    let _ = write!(
        out,
        "<pre class=\"text\">{}</pre>",
        if d.text.is_empty() {
            "(no text: no attempt produced one)".to_owned()
        } else {
            esc(&d.text)
        }
    );
    for change in &d.history {
        let _ = write!(
            out,
            "<p class=\"change\">{} -> {} by {} at {}{}</p>",
            change.from.as_str(),
            change.to.as_str(),
            esc(&change.by),
            change.at.format("%Y-%m-%d %H:%M UTC"),
            change
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {}", esc(r)))
        );
    }
    out.push_str("</section>");
    out
}

pub(crate) async fn index(
    State(d): State<Dashboard>,
    query: QueryMap,
) -> Result<Response, PageError> {
    let query = query_of(query)?;
    let filter = Filter::parse(query.get("state"))?;
    let (drafts, more) = scanned(&d).await?;
    let mut shown: Vec<&Draft> = drafts.iter().filter(|x| filter.keeps(x.status)).collect();
    shown.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    let total = shown.len();
    shown.truncate(MAX_SHOWN);
    let mut body = String::from("<p id=\"states\">");
    for f in [
        "waiting",
        "draft",
        "approved",
        "published",
        "rejected",
        "all",
    ] {
        let _ = write!(body, "<a href=\"/drafts?state={f}\">{f}</a> ");
    }
    let _ = write!(
        body,
        "</p><p id=\"drafts-count\" data-state=\"{}\" data-count=\"{total}\">{total} drafts ({}){}{}.</p>",
        filter.name(),
        filter.name(),
        if total > MAX_SHOWN {
            format!(", the newest {MAX_SHOWN} shown")
        } else {
            String::new()
        },
        if more {
            format!("; only the first {MAX_SCANNED} stored drafts were read")
        } else {
            String::new()
        }
    );
    for draft in shown {
        body.push_str(&draft_section(draft));
    }
    Ok(page("Drafts", &body).into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::StatusCode;
    use backbone::config::HarnessConfig;
    use backbone::local::Invoke;
    use backbone::ports::{ItemKey, PutCondition, Store};
    use serde_json::json;

    use crate::dashboard::testing::{self, text};

    const ARTIST: &str = "0TnOYISbd1XYRBk9myaseg";

    #[tokio::test]
    async fn drafts_waiting_show_their_state_grounding_and_escaped_text() {
        let runtime = testing::runtime();
        runtime
            .db
            .put(
                &ItemKey::new(format!("artist#{ARTIST}"), "snapshot#2026-11-30"),
                &json!({ "artist": ARTIST, "date": "2026-11-30", "name": "<Band> & Co",
                         "followers": 12_345, "popularity": 40, "genres": ["indie pop"],
                         "releases": [], "unavailable": [] }),
                PutCondition::Always,
                None,
            )
            .await
            .unwrap();
        let function = runtime.harness(
            ai_content_generation::ContentGeneration {
                store: Arc::new(runtime.db.clone()),
                events: Arc::new(runtime.bus()),
                generator: Arc::new(ai_content_generation::writer::TemplateWriter),
                attempts: ai_content_generation::DEFAULT_ATTEMPTS,
            },
            HarnessConfig::for_task("ai-content-generation"),
        );
        let mut ids = Vec::new();
        for kind in ["bio_short", "social_post"] {
            let report = function
                .invoke(
                    json!({"action": "draft", "artist": ARTIST, "kind": kind, "language": "fr"}),
                )
                .await
                .unwrap();
            let response = report.response.to_string();
            let (_, rest) = response.split_once("\"draft\":\"").expect(&response);
            ids.push(rest.split('"').next().unwrap().to_owned());
        }
        function
            .invoke(json!({"action": "reject", "draft": ids[1], "by": "editor", "reason": "too <loud>"}))
            .await
            .unwrap();

        let app = testing::app(&runtime);
        let (status, body) = text(&app, "/").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.contains(
                "data-count=\"drafts\" data-value=\"1\"><a href=\"/drafts\">1 drafts waiting"
            ),
            "{body}"
        );
        let (status, body) = text(&app, "/drafts").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.contains("id=\"drafts-count\" data-state=\"waiting\" data-count=\"1\""),
            "{body}"
        );
        assert!(
            body.contains(&format!("data-draft=\"{}\" data-state=\"draft\" data-kind=\"bio_short\" data-language=\"fr\" data-grounded=\"true\"", ids[0])),
            "{body}"
        );
        assert!(
            body.contains("&lt;Band&gt; &amp; Co") && !body.contains("<Band>"),
            "{body}"
        );
        assert!(body.contains("class=\"grounding ok\">passed"), "{body}");

        let (_, body) = text(&app, "/drafts?state=rejected").await;
        assert!(body.contains("data-count=\"1\""), "{body}");
        assert!(
            body.contains("draft -> rejected by editor") && body.contains("too &lt;loud&gt;"),
            "{body}"
        );
        let (_, body) = text(&app, "/drafts?state=all").await;
        assert!(body.contains("data-count=\"2\""), "{body}");

        let (status, body) = text(&app, "/drafts?state=%3Cscript%3E").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body.contains("parameter state") && !body.contains("<script>"),
            "{body}"
        );
    }
}
