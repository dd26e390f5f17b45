//! What the pages' router tests share: a local runtime on an in-memory database at a fixed
//! time, the service's router over it, and a GET without a socket.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use backbone::clock::{Clock, ManualClock};
use backbone::local::{LocalDb, LocalRuntime};
use backbone::telemetry::Capture;
use backbone::telemetry::prometheus::Registry;
use tower::ServiceExt;

use super::Dashboard;

/// The time every test runs at.
pub const NOW: &str = "2026-11-30T12:00:00Z";

/// A runtime whose functions write where the dashboard reads.
pub fn runtime() -> LocalRuntime {
    let db = LocalDb::in_memory().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW.parse().unwrap()));
    LocalRuntime::new(db, clock, Arc::new(Capture::new()))
}

/// The service's router with the dashboard over `runtime`'s database.
pub fn app(runtime: &LocalRuntime) -> Router {
    crate::serve::router(
        Arc::new(Registry::new()),
        None,
        Some(Dashboard::new(runtime.db.clone(), runtime.clock.clone())),
    )
}

/// `method` `path`, with an `Authorization` header if given: status, headers and body.
pub async fn call(
    app: &Router,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(auth) = auth {
        request = request.header(axum::http::header::AUTHORIZATION, auth);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, headers, bytes.to_vec())
}

/// GET `path`: status, headers and body.
pub async fn get(app: &Router, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    call(app, "GET", path, None).await
}

/// `method` `path` as text, with an `Authorization` header if given.
pub async fn call_text(
    app: &Router,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> (StatusCode, String) {
    let (status, _, body) = call(app, method, path, auth).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// GET `path` as text.
pub async fn text(app: &Router, path: &str) -> (StatusCode, String) {
    let (status, _, body) = get(app, path).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}
