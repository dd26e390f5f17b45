//! The dashboard of `tasks serve` in a real headless browser: `tasks local --days 3` fills a
//! store, `tasks serve` serves it on an ephemeral loopback port, and Debian's
//! chromium-headless-shell (installed pinned by `scripts/install-debs.sh`, run through the
//! `CHROMIUM` wrapper) loads each main page over the DevTools protocol. Each page must load
//! without an uncaught exception, a console error, a `Log` entry of level error or a failed
//! sub-resource, and show its key elements; a screenshot of each is kept in
//! `target/dashboard-screenshots/`. The 404 and 400 pages must render as pages. A track analysis
//! and a draft are added first, so the analyses (with the PNG report) and drafts pages show one.
//!
//! The DevTools client is a minimal one over a WebSocket written here (text frames, client
//! masking, no extensions): enough for one page's commands and events, with no new crate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `command` and waits for a stderr line containing `marker`; returns the rest of it.
fn start(mut command: Command, marker: &str) -> (Killed, String) {
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the process starts");
    let pipe = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(rest) = lines.lock().unwrap().iter().find_map(|l| {
            l.split_once(marker)
                .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_owned())
        }) {
            return (Killed(child), rest);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("exited with {status}: {}", lines.lock().unwrap().join("\n"));
        }
        assert!(Instant::now() < deadline, "no {marker:?} on stderr");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One WebSocket connection to a DevTools target.
struct Cdp {
    stream: TcpStream,
    next_id: u64,
    /// Every event received, in order.
    events: Vec<Value>,
}

impl Cdp {
    fn connect(ws_url: &str) -> Self {
        let rest = ws_url.strip_prefix("ws://").expect("a ws:// URL");
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = TcpStream::connect(host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Self {
            stream,
            next_id: 0,
            events: Vec::new(),
        }
    }

    fn send_frame(&mut self, payload: &[u8]) {
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).unwrap();
    }

    /// The next complete text message (fragments joined; pings and others skipped).
    fn read_message(&mut self) -> Value {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head).unwrap();
            let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.stream.read_exact(&mut b).unwrap();
                    u16::from_be_bytes(b) as usize
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b) as usize
                }
                n => n as usize,
            };
            let mut payload = vec![0u8; len];
            self.stream.read_exact(&mut payload).unwrap();
            assert_ne!(opcode, 8, "the browser closed the DevTools connection");
            if opcode == 1 || opcode == 0 {
                message.extend_from_slice(&payload);
                if fin {
                    return serde_json::from_slice(&message).unwrap();
                }
            }
        }
    }

    /// Sends a command and returns its result, keeping the events that arrive meanwhile.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let text = json!({"id": id, "method": method, "params": params}).to_string();
        self.send_frame(text.as_bytes());
        loop {
            let message = self.read_message();
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            self.events.push(message);
        }
    }

    /// Waits for the event `method`, keeping the others.
    fn wait_for(&mut self, method: &str) {
        if self.events.iter().any(|e| e["method"] == method) {
            return;
        }
        loop {
            let message = self.read_message();
            let done = message["method"] == method;
            self.events.push(message);
            if done {
                return;
            }
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )["result"]["value"]
            .clone()
    }
}

/// What went wrong while a page loaded: exceptions, console errors, error log entries and
/// failed loads, as readable lines.
fn problems(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e["method"].as_str()? {
            "Runtime.exceptionThrown" => Some(format!("exception: {}", e["params"])),
            "Runtime.consoleAPICalled" if e["params"]["type"] == "error" => {
                Some(format!("console.error: {}", e["params"]["args"]))
            }
            "Log.entryAdded" if e["params"]["entry"]["level"] == "error" => {
                Some(format!("log error: {}", e["params"]["entry"]))
            }
            "Network.loadingFailed" => Some(format!("failed load: {}", e["params"])),
            "Network.responseReceived"
                if e["params"]["response"]["status"].as_u64().unwrap_or(0) >= 400 =>
            {
                Some(format!(
                    "{} {}",
                    e["params"]["response"]["status"], e["params"]["response"]["url"]
                ))
            }
            _ => None,
        })
        .collect()
}

fn load(cdp: &mut Cdp, url: &str) -> Vec<String> {
    cdp.events.clear();
    cdp.call("Page.navigate", json!({"url": url}));
    cdp.wait_for("Page.loadEventFired");
    // Late console messages of the page's own load arrive before this round trip returns.
    cdp.eval("1");
    problems(&cdp.events)
}

fn screenshot(cdp: &mut Cdp, dir: &Path, name: &str) {
    let shot = cdp.call(
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true}),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

#[test]
fn the_dashboard_loads_cleanly_in_headless_chromium() {
    let chromium = std::env::var_os("CHROMIUM").map(PathBuf::from).expect(
        "CHROMIUM is not set: run scripts/install-debs.sh and `source .local/debs.env` (scripts/test.sh does both)",
    );
    assert!(
        chromium.exists(),
        "CHROMIUM={} does not exist",
        chromium.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.sqlite3");
    let local = Command::new(env!("CARGO_BIN_EXE_tasks"))
        .args(["local", "--days", "3", "--json"])
        .env("TASKS_DB", &db)
        .env("TEXT_GENERATOR", "template")
        .env_remove("SPOTIFY_API_BASE_URL")
        .env_remove("SOCIAL_CONTACT")
        .env_remove("PAGERDUTY_EVENTS_URL")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    let run: Value = serde_json::from_slice(&local.stdout).unwrap();
    let report = &run["report"];
    let (from, to) = (
        report["from"].as_str().unwrap(),
        report["to"].as_str().unwrap(),
    );
    let artist = report["artists"][0]["artist"].as_str().unwrap().to_owned();
    let watchlist = report["watchlist"].as_str().unwrap().to_owned();
    // A track analysed and a draft written, as the guide's commands do, so every page has
    // something of its own to show (the local run itself writes playlist runs).
    for args in [
        vec![
            "invoke",
            "track-analysis",
            "--event",
            "events/track-analysis/1-sqs-analyze.json",
        ],
        vec![
            "content",
            "draft",
            "--artist",
            &artist,
            "--kind",
            "bio_short",
            "--language",
            "fr",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tasks"))
            .args(&args)
            .env("TASKS_DB", &db)
            .env("TEXT_GENERATOR", "template")
            .env_remove("SPOTIFY_API_BASE_URL")
            .current_dir(root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut serve = Command::new(env!("CARGO_BIN_EXE_tasks"));
    serve
        .args(["serve", "--addr", "127.0.0.1:0", "--clock-start"])
        .arg(format!("{to}T12:00:00Z"))
        .env("TASKS_DB", &db)
        .env("TEXT_GENERATOR", "template")
        .env_remove("SPOTIFY_API_BASE_URL")
        .env_remove("SOCIAL_CONTACT")
        .env_remove("SERVE_TOKEN")
        .current_dir(root());
    let (_serve, addr) = start(serve, "listening on http://");

    let profile = tempfile::tempdir().unwrap();
    let mut browser = Command::new(&chromium);
    browser
        .arg("--no-sandbox")
        .arg("--remote-debugging-port=0")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--window-size=1280,900")
        .arg("about:blank");
    let (_browser, ws) = start(browser, "DevTools listening on ");
    let port = ws
        .strip_prefix("ws://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .expect("a loopback DevTools URL")
        .to_owned();
    let targets: Value = {
        let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        write!(
            stream,
            "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        // The DevTools HTTP server may keep the connection open: read until the body parses.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).unwrap();
            text.extend_from_slice(&chunk[..n]);
            let whole = String::from_utf8_lossy(&text).into_owned();
            if let Some((_, body)) = whole.split_once("\r\n\r\n")
                && let Ok(value) = serde_json::from_str::<Value>(body)
            {
                break value;
            }
            assert!(n > 0, "the DevTools list ended early: {whole}");
        }
    };
    let page_ws = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .expect("a page target")
        .to_owned();
    let mut cdp = Cdp::connect(&page_ws);
    for domain in [
        "Page.enable",
        "Runtime.enable",
        "Log.enable",
        "Network.enable",
    ] {
        cdp.call(domain, json!({}));
    }

    let shots = root().join("target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let base = format!("http://{addr}");
    let range = format!("from={from}&to={to}");
    let pages = [
        (
            "overview",
            "/".to_owned(),
            vec!["#counts", "#watchlists", "#audit-status[data-broken=\"0\"]"],
        ),
        (
            "watchlist",
            format!("/watchlists/{watchlist}"),
            vec!["#artists", "tr[data-artist]"],
        ),
        (
            "artist",
            format!("/artists/{artist}?{range}"),
            // The development tier (the sandbox's default) returns no followers or
            // popularity: the charts say so; the snapshots are there.
            vec![
                "#snapshots[data-count=\"3\"]",
                "#followers-chart[data-points]",
                "#popularity-chart[data-points]",
                "#range",
                "#alerts",
            ],
        ),
        ("alerts", format!("/alerts?{range}"), vec!["#alerts"]),
        (
            "analyses",
            "/analyses".to_owned(),
            vec![
                "#analyses-count[data-count=\"1\"]",
                "table#analyses tr[data-track=\"isrc:QZES82600001\"]",
            ],
        ),
        (
            "analysis",
            "/analyses/QZES82600001".to_owned(),
            vec![
                "dl#analysis[data-sha256]",
                "#key",
                "pre#summary",
                "img#report",
            ],
        ),
        (
            "anomalies",
            format!("/anomalies?{range}"),
            vec!["form#range", "#anomalies-count[data-count]"],
        ),
        (
            "playlists",
            "/playlists".to_owned(),
            vec!["#runs-count", "section.run[data-playlist]"],
        ),
        (
            "drafts",
            "/drafts".to_owned(),
            vec![
                "#drafts-count[data-state=\"waiting\"][data-count=\"1\"]",
                "section.draft[data-kind=\"bio_short\"][data-language=\"fr\"]",
                "pre.text",
            ],
        ),
    ];
    for (name, path, selectors) in &pages {
        let found = load(&mut cdp, &format!("{base}{path}"));
        assert!(found.is_empty(), "{name} ({path}): {found:#?}");
        for selector in selectors {
            let present = cdp.eval(&format!(
                "document.querySelector({}) !== null",
                Value::from(*selector)
            ));
            assert_eq!(present, true, "{name}: no {selector}");
        }
        screenshot(&mut cdp, &shots, name);
    }
    // The analysis's PNG report was drawn and decoded by the browser.
    load(&mut cdp, &format!("{base}/analyses/QZES82600001"));
    let width = cdp.eval(
        "(async () => { const i = document.querySelector('#report'); await i.decode(); return i.naturalWidth; })()",
    );
    assert!(
        width.as_u64().is_some_and(|w| w > 0),
        "the report image: {width}"
    );
    // The error pages render as pages: the only complaint is the document's own status.
    for (name, path, status) in [
        (
            "not-found",
            "/artists/0000000000000000000000".to_owned(),
            404,
        ),
        (
            "bad-request",
            format!("/alerts?from=2026-13-45&to={to}"),
            400,
        ),
    ] {
        let found = load(&mut cdp, &format!("{base}{path}"));
        assert!(
            found.iter().all(|p| p.contains(&status.to_string())),
            "{name}: {found:#?}"
        );
        let shown = cdp.eval("document.querySelector('#error')?.dataset.status");
        assert_eq!(shown, Value::from(status.to_string()), "{name}");
        screenshot(&mut cdp, &shots, name);
    }
    println!("dashboard screenshots: {}", shots.display());
}
