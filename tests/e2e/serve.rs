//! `tasks serve` as a user runs it: the real binary, its `/metrics` checked by `promtool` and
//! scraped by a real Prometheus server, 50 concurrent scrapers, bad requests, and SIGTERM with
//! messages queued.
//!
//! promtool and prometheus come from Debian's `prometheus` package, installed pinned by
//! `scripts/install-debs.sh` (which `scripts/test.sh` runs); the tests read `PROMTOOL` and
//! `PROMETHEUS`, else the script's install under `.local/debs/prometheus`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backbone::clock::ManualClock;
use backbone::local::{LocalDb, LocalQueues};
use backbone::ports::{OutgoingMessage, Queues};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Debian tool: `$VAR`, else where `scripts/install-debs.sh` puts it.
fn tool(var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".local/debs/prometheus/usr/bin").join(name));
    assert!(
        path.exists(),
        "{} not found: run scripts/install-debs.sh (or set {var})",
        path.display()
    );
    path
}

/// A running `tasks serve`, stopped (SIGKILL) on drop if the test did not stop it.
struct Served {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Served {
    fn start(db: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tasks"));
        command
            .arg("serve")
            .args(args)
            .env("TASKS_DB", db)
            .env("TEXT_GENERATOR", "template")
            .env_remove("SPOTIFY_API_BASE_URL")
            .env_remove("SOCIAL_CONTACT")
            .env_remove("SERVE_TOKEN")
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("tasks serve starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().unwrap();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let addr = loop {
            if let Some(addr) = stderr.lock().unwrap().iter().find_map(|l| {
                l.split_once("listening on http://")
                    .and_then(|(_, rest)| rest.split_whitespace().next())
                    .map(str::to_owned)
            }) {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "tasks serve exited with {status}: {}",
                    stderr.lock().unwrap().join("\n")
                );
            }
            assert!(Instant::now() < deadline, "tasks serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            addr,
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "tasks serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses a text exposition strictly: every line is a `# HELP`/`# TYPE` comment or a sample
/// `name{label="value",...} number`. Returns the samples and the declared types.
fn parse_exposition(text: &str) -> Result<(Vec<Sample>, BTreeMap<String, String>), String> {
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(format!("bad type: {line}"));
            }
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            return Err(format!("unexpected line: {line:?}"));
        }
        let name_end = line.find(['{', ' ']).ok_or(format!("no value: {line}"))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(format!("bad name: {line}"));
        }
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(inner) = rest.strip_prefix('{') {
            let mut pos = 0;
            loop {
                if inner[pos..].starts_with('}') {
                    rest = &inner[pos + 1..];
                    break;
                }
                let eq = inner[pos..]
                    .find("=\"")
                    .ok_or(format!("bad label: {line}"))?
                    + pos;
                let key = &inner[pos..eq];
                if !valid_name(key) {
                    return Err(format!("bad label name: {line}"));
                }
                let mut value = String::new();
                let mut closing = None;
                let mut escaped = false;
                for (offset, c) in inner[eq + 2..].char_indices() {
                    match (escaped, c) {
                        (true, 'n') => value.push('\n'),
                        (true, c) => value.push(c),
                        (false, '\\') => {
                            escaped = true;
                            continue;
                        }
                        (false, '"') => {
                            closing = Some(eq + 2 + offset);
                            break;
                        }
                        (false, c) => value.push(c),
                    }
                    escaped = false;
                }
                let closing = closing.ok_or(format!("unterminated label value: {line}"))?;
                labels.insert(key.to_owned(), value);
                let after = closing + 1;
                if inner[after..].starts_with(',') {
                    pos = after + 1;
                } else if inner[after..].starts_with('}') {
                    pos = after;
                } else {
                    return Err(format!("bad label separator: {line}"));
                }
            }
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or(format!("no space before the value: {line}"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| format!("bad value: {line}"))?,
        };
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok((samples, types))
}

/// The samples that may only go up: counters, and histograms' buckets, sums and counts.
fn monotonic(samples: &[Sample], types: &BTreeMap<String, String>) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter(|s| {
            types.get(&s.name).is_some_and(|t| t == "counter")
                || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                    s.name
                        .strip_suffix(suffix)
                        .is_some_and(|base| types.get(base).is_some_and(|t| t == "histogram"))
                })
        })
        .map(|s| (format!("{}{:?}", s.name, s.labels), s.value))
        .collect()
}

async fn get(client: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Scrapes until `predicate` holds on a sample, or panics after `timeout`.
async fn wait_for_sample(
    served: &Served,
    token: Option<&str>,
    timeout: Duration,
    predicate: impl Fn(&Sample) -> bool,
) -> String {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    loop {
        let (status, body) = get(&client, &served.url("/metrics"), token).await;
        assert_eq!(status, 200, "{body}");
        let (samples, _) = parse_exposition(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        if samples.iter().any(&predicate) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no such sample in time:\n{body}\n{}",
            served.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn completed(task: &'static str) -> impl Fn(&Sample) -> bool {
    move |s| {
        s.name == "messages_completed_total"
            && s.labels.get("task").is_some_and(|t| t == task)
            && s.value > 0.0
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_exposition_parser_rejects_what_prometheus_would() {
    let good = "# HELP a_total A\n# TYPE a_total counter\na_total{task=\"x\\\"y\",service=\"s\"} 3\nb 1.5\n";
    let (samples, types) = parse_exposition(good).unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].labels["task"], "x\"y");
    assert_eq!(samples[0].labels["service"], "s");
    assert_eq!(types["a_total"], "counter");
    for bad in [
        "a{task=\"x} 1\n",
        "a 1 2 x\n",
        "9a 1\n",
        "a{t=x} 1\n",
        "a\n",
        "\n",
    ] {
        assert!(parse_exposition(bad).is_err(), "{bad:?}");
    }
}

/// The artist-monitoring plan fires on the local clock (06:00 reached in seconds), its fan-out
/// runs from the local queue, and the scrape carries the harness's EMF metrics: promtool finds
/// nothing to say about it, and a real Prometheus server scraping the service (with the token)
/// answers a query for the series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_a_real_prometheus_server_scrapes_them() {
    let promtool = tool("PROMTOOL", "promtool");
    let prometheus = tool("PROMETHEUS", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let token = "scrape-token-7f3a";
    let mut served = Served::start(
        &dir.path().join("tasks.sqlite3"),
        &[
            "--addr",
            "127.0.0.1:0",
            "--clock-start",
            "2026-11-25T05:59:50Z",
            "--clock-speed",
            "10",
        ],
        &[("SERVE_TOKEN", token)],
    );
    let body = wait_for_sample(
        &served,
        Some(token),
        Duration::from_secs(120),
        completed("artist-monitoring"),
    )
    .await;
    // The schedule's own counter, and the EMF dimensions as labels.
    assert!(body.contains("schedule_firings_total{schedule=\"ArtistMonitoringSchedule\",service=\"tasks-serve\",task=\"artist-monitoring\"} 1"), "{body}");
    assert!(body.contains("message_duration_seconds_bucket{service=\"artist-monitoring\",task=\"artist-monitoring\",le=\"+Inf\"}"), "{body}");
    assert!(!body.contains(token), "the token never appears in a scrape");

    let scrape = dir.path().join("scrape.prom");
    std::fs::write(&scrape, &body).unwrap();
    let check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&scrape).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success() && check.stdout.is_empty() && check.stderr.is_empty(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: tasks-serve\n    authorization:\n      credentials: {token}\n    static_configs:\n      - targets: ['{}']\n",
            served.addr
        ),
    )
    .unwrap();
    let check = Command::new(&promtool)
        .args(["check", "config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let mut server = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("prometheus.log")).unwrap(),
        ))
        .spawn()
        .expect("prometheus starts");
    let client = reqwest::Client::new();
    let query = |q: &str| {
        format!(
            "http://127.0.0.1:{port}/api/v1/query?query={}",
            q.replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
                .replace('=', "%3D")
        )
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let (up, series) = loop {
        let answer = async |q: &str| -> Option<serde_json::Value> {
            let response = client.get(query(q)).send().await.ok()?;
            let json: serde_json::Value = response.json().await.ok()?;
            let result = json["data"]["result"].as_array()?.clone();
            (!result.is_empty()).then_some(serde_json::Value::Array(result))
        };
        let up = answer("up{job=\"tasks-serve\"}").await;
        let series = answer("messages_completed_total{task=\"artist-monitoring\"}").await;
        if let (Some(up), Some(series)) = (up, series) {
            break (up, series);
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!(
                "Prometheus never returned the series: {}",
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(up[0]["value"][1], "1", "the scrape succeeded: {up}");
    let first = &series[0];
    assert_eq!(first["metric"]["service"], "artist-monitoring", "{series}");
    assert_eq!(first["metric"]["job"], "tasks-serve", "{series}");
    let value: f64 = first["value"][1].as_str().unwrap().parse().unwrap();
    assert!(value > 0.0, "{series}");

    let status = served.terminate();
    assert!(status.success(), "{status}: {}", served.stderr());
    assert!(
        !served.stderr().contains(token),
        "the token is never printed"
    );
}

/// 50 scrapers at once, while the schedule's work runs: every answer is a 200 that parses,
/// and no counter, bucket, sum or count ever goes down between one scraper's scrapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_scrapers_see_counters_that_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(
        &dir.path().join("tasks.sqlite3"),
        &[
            "--addr",
            "127.0.0.1:0",
            "--clock-start",
            "2026-11-25T05:59:58Z",
            "--clock-speed",
            "2",
        ],
        &[],
    );
    let url = served.url("/metrics");
    let mut scrapers = Vec::new();
    for _ in 0..50 {
        let url = url.clone();
        scrapers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut last: BTreeMap<String, f64> = BTreeMap::new();
            let mut seen = 0;
            for _ in 0..20 {
                let (status, body) = get(&client, &url, None).await;
                assert_eq!(status, 200);
                let (samples, types) =
                    parse_exposition(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
                for (series, value) in monotonic(&samples, &types) {
                    if let Some(before) = last.get(&series) {
                        assert!(value >= *before, "{series} went from {before} to {value}");
                    }
                    last.insert(series, value);
                }
                seen = seen.max(last.len());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        }));
    }
    let mut most = 0;
    for scraper in scrapers {
        most = most.max(scraper.await.expect("a scraper panicked"));
    }
    assert!(most > 0, "the scrapers saw counters: {}", served.stderr());
    let status = served.terminate();
    assert!(status.success(), "{status}: {}", served.stderr());
}

/// Unknown paths, wrong methods, wrong or missing tokens, and a non-loopback bind without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_and_no_token_refuses_a_public_bind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.sqlite3");
    // Not loopback and no token: refused before anything listens.
    let out = Command::new(env!("CARGO_BIN_EXE_tasks"))
        .args(["serve", "--addr", "0.0.0.0:0"])
        .env("TASKS_DB", &db)
        .env_remove("SERVE_TOKEN")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("needs a token") && stderr.contains("SERVE_TOKEN"),
        "{stderr}"
    );

    // Bound on every interface with a token: every request needs it.
    let token = "d2a9-serve-token";
    let mut served = Served::start(&db, &["--addr", "0.0.0.0:0"], &[("SERVE_TOKEN", token)]);
    let port = served.addr.rsplit(':').next().unwrap().to_owned();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for path in ["/metrics", "/healthz", "/nope"] {
        let (status, _) = get(&client, &format!("{base}{path}"), None).await;
        assert_eq!(status, 401, "{path} without a token");
        let (status, _) = get(&client, &format!("{base}{path}"), Some("wrong")).await;
        assert_eq!(status, 401, "{path} with a wrong token");
    }
    let response = client
        .get(format!("{base}/metrics"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401, "another scheme");
    assert_eq!(
        get(&client, &format!("{base}/healthz"), Some(token))
            .await
            .0,
        200
    );
    let (status, body) = get(&client, &format!("{base}/nope"), Some(token)).await;
    assert_eq!(status, 404);
    assert!(body.contains("/metrics"), "{body}");
    let (status, _) = get(&client, &format!("{base}/metrics?x=%ff%00"), Some(token)).await;
    assert_eq!(status, 200, "a query string changes nothing");
    let response = client
        .post(format!("{base}/metrics"))
        .bearer_auth(token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    // A request line that is not HTTP: an error status, the service stays up.
    {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        stream.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(!answer.contains(" 500 "), "{answer}");
    }
    assert_eq!(
        get(&client, &format!("{base}/healthz"), Some(token))
            .await
            .0,
        200
    );
    let status = served.terminate();
    assert!(status.success(), "{status}: {}", served.stderr());
    assert!(
        !served.stderr().contains(token),
        "the token is never printed"
    );
}

/// Observations for streaming-metrics, one message each, told apart by their date.
fn observation(i: usize) -> OutgoingMessage {
    let date =
        chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Duration::days(i as i64);
    let body = serde_json::json!({"observations": [{
        "subject": "USRC17607839", "territory": "GLOBAL", "date": date.to_string(),
        "metric": "listeners", "value": 100 + i, "source": "spotify_for_artists",
        "as_of": "2026-11-22T06:00:00Z", "artist": "G019KKcygUS3wlPi98QoBL"
    }]});
    OutgoingMessage {
        body: body.to_string(),
        attributes: BTreeMap::new(),
        group_id: None,
        dedup_id: None,
        trace_header: None,
    }
}

/// (still queued, received but not finished, completed, dead letters) of streaming-metrics' messages.
fn queue_state(db: &Path) -> (i64, i64, i64, i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    (
        count("SELECT COUNT(*) FROM messages WHERE queue = 'streaming-metrics'"),
        // Received and neither deleted nor handed back: a batch abandoned in flight.
        count(
            "SELECT COUNT(*) FROM messages WHERE queue = 'streaming-metrics' AND receive_count > 0",
        ),
        count(
            "SELECT COUNT(*) FROM idempotency WHERE key LIKE 'streaming-metrics#%' AND status = 'COMPLETED'",
        ),
        count("SELECT COUNT(*) FROM dead_letters WHERE task = 'streaming-metrics'"),
    )
}

/// SIGTERM while the queue is being worked through: the process exits cleanly, every message
/// is either done or still queued (none hidden in flight, none dead-lettered), and a restart
/// finishes the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_messages_queued_loses_none() {
    const MESSAGES: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.sqlite3");
    {
        let local = LocalDb::open(&db).unwrap();
        // Sent a minute before the service's local clock starts, so they are visible to it.
        let sent = chrono::DateTime::parse_from_rfc3339("2026-11-25T11:59:00Z").unwrap();
        let clock = Arc::new(ManualClock::new(sent.with_timezone(&chrono::Utc)));
        let queues = LocalQueues::new(local, "streaming-metrics", clock, 3);
        let messages: Vec<OutgoingMessage> = (0..MESSAGES).map(observation).collect();
        queues.send(&messages).await.unwrap();
        assert_eq!(queues.depth().await.unwrap(), MESSAGES as u64);
    }
    // Noon on the local clock: no schedule of the template fires during the test.
    let args = [
        "--addr",
        "127.0.0.1:0",
        "--clock-start",
        "2026-11-25T12:00:00Z",
    ];
    let mut served = Served::start(&db, &args, &[]);
    wait_for_sample(
        &served,
        None,
        Duration::from_secs(120),
        completed("streaming-metrics"),
    )
    .await;
    let status = served.terminate();
    assert!(status.success(), "{status}: {}", served.stderr());
    let stderr = served.stderr();
    drop(served);
    let (queued, hidden, done, dead) = queue_state(&db);
    assert_eq!(dead, 0, "{stderr}");
    assert_eq!(
        hidden, 0,
        "a batch in flight was finished, not abandoned: {stderr}"
    );
    assert_eq!(
        queued + done,
        MESSAGES as i64,
        "queued {queued} + done {done}: {stderr}"
    );
    assert!(
        queued > 0,
        "the stop left work queued (else the test proves nothing): {stderr}"
    );
    assert!(done > 0, "{stderr}");
    assert!(
        stderr.contains(&format!("still queued: streaming-metrics {queued}")),
        "{stderr}"
    );

    let mut served = Served::start(&db, &args, &[]);
    let deadline = Instant::now() + Duration::from_secs(300);
    wait_for_sample(&served, None, Duration::from_secs(300), |s| {
        s.name == "local_queue_messages"
            && s.labels
                .get("task")
                .is_some_and(|t| t == "streaming-metrics")
            && s.value == 0.0
    })
    .await;
    assert!(Instant::now() < deadline);
    let status = served.terminate();
    assert!(status.success(), "{status}: {}", served.stderr());
    drop(served);
    let (queued, hidden, done, dead) = queue_state(&db);
    assert_eq!((queued, hidden, dead), (0, 0, 0));
    assert_eq!(done, MESSAGES as i64, "every message done once");
}
