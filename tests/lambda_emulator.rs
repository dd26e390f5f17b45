//! The real Lambda binaries under cargo-lambda's runtime emulator (`cargo lambda watch`),
//! invoked with `cargo lambda invoke` and the files in `events/`, on the AWS emulator (moto)
//! and the Spotify sandbox: the deployed code path end to end, cold start included.
//!
//! Per function: a stack of its own on moto (tables, bus, work queue and dead-letter queue, the
//! credentials secret), the demo watchlist, one `cargo lambda watch` with the environment the
//! template gives the function. A scheduled function then gets the schedule's plan event, the
//! work queue drained through the emulator as Lambda's SQS event source would (each received
//! batch written to a file and invoked), and the sample SQS event; an upload-triggered function
//! gets its sample file put in a moto bucket and the S3 notification of it through SQS. Every
//! batch must succeed, nothing may be dead-lettered, and the audit chain must be intact and
//! non-empty.
//!
//! Needs `AWS_ENDPOINT_URL` (moto) and `cargo lambda` on `PATH` (scripts/test.sh installs it
//! into `.venv/cargo-lambda` and builds the binaries first). Without them it is skipped with a
//! notice, except under `CI`, where it fails.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backbone::audit::AuditLog;
use backbone::aws::poller::SqsPoller;
use backbone::aws::{AwsConfig, DynamoAuditStore, DynamoStore, SecretsManagerSecrets, provision};
use backbone::clock::SystemClock;
use backbone::ports::Secrets;
use backbone::spotify::Tier;
use backbone::validate::ArtistId;
use backbone::watchlist::{self, WatchlistName};
use backbone::{ExposeSecret, SecretString};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `Some` when the emulator and cargo-lambda are there; `None` (skip) or a panic under CI.
fn prerequisites() -> Option<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.trim().is_empty());
    let cargo_lambda = std::process::Command::new("cargo")
        .args(["lambda", "invoke", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match (endpoint, cargo_lambda) {
        (Some(endpoint), true) => Some(endpoint),
        (endpoint, lambda) => {
            let why = format!(
                "AWS_ENDPOINT_URL {}, cargo lambda {}",
                if endpoint.is_some() { "set" } else { "not set" },
                if lambda { "found" } else { "not on PATH" }
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "{why}, but CI is: scripts/test.sh installs cargo-lambda and starts moto"
            );
            eprintln!("skipping the cargo-lambda end-to-end test: {why}");
            None
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One `cargo lambda watch --only-lambda-apis` (the runtime API and invoke endpoint) and the
/// function's prebuilt binary polling it, with the environment the template gives it.
///
/// The emulator could start the function itself (`cargo run`), but it runs cargo with an
/// environment that invalidates build-script fingerprints, so every run would rebuild the TLS
/// stack; the binary `scripts/test.sh` built is run instead, exactly as the emulator would run
/// it (the same `AWS_LAMBDA_*` variables).
struct Emulator {
    watch: Child,
    function: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The function's binary as `cargo build -p <function>` leaves it.
fn binary(function: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let path = target.join("debug").join(function);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p {function}` first (scripts/test.sh does)",
        path.display()
    );
    path
}

fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    for _ in 0..50 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
}

impl Emulator {
    async fn start(function: &str, env: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("function.log");
        let port = free_port();
        let watch = Command::new("cargo")
            .args(["lambda", "watch", "--only-lambda-apis"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .current_dir(root().join("functions").join(function))
            .stdout(std::fs::File::create(dir.path().join("watch.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("watch.err")).unwrap())
            // Its own process group, ended whole.
            .process_group(0)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let function_process = Command::new(binary(function))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt/{function}"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "lambda-emulator")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("function.err")).unwrap())
            .process_group(0)
            .spawn()
            .unwrap();
        Self {
            watch,
            function: function_process,
            port,
            log,
            _dir: dir,
        }
    }

    /// `cargo lambda invoke <function> --data-file <file>`: the handler's JSON response.
    async fn invoke(&self, function: &str, file: &Path) -> Value {
        let mut command = Command::new("cargo");
        command
            .args(["lambda", "invoke", function, "--output-format", "json"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(file)
            .current_dir(root());
        // Blocking: off the runtime's threads, which serve the sandbox meanwhile.
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "invoke {function} {}: {}\n{stdout}\nfunction output:\n{}",
            file.display(),
            String::from_utf8_lossy(&output.stderr),
            self.output()
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("invoke {function}: not JSON ({e}): {stdout}"))
    }

    /// Everything the function printed (JSON log lines and EMF metrics).
    fn output(&self) -> String {
        ["function.log", "function.err", "watch.err"]
            .iter()
            .map(|name| std::fs::read_to_string(self.log.with_file_name(name)).unwrap_or_default())
            .collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        kill_group(&mut self.function);
        kill_group(&mut self.watch);
    }
}

/// The environment the template gives a function, pointed at the emulator and the sandbox.
fn function_env(
    service: &str,
    stack: &AwsConfig,
    endpoint: &str,
    spotify: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("POWERTOOLS_SERVICE_NAME", service),
        ("POWERTOOLS_METRICS_NAMESPACE", "MusicTasks"),
        ("POWERTOOLS_LOG_LEVEL", "INFO"),
        ("STORE_TABLE", &stack.store_table),
        ("IDEMPOTENCY_TABLE", &stack.idempotency_table),
        ("AUDIT_TABLE", &stack.audit_table),
        ("WORK_QUEUE_URL", &stack.work_queue_url),
        ("DEAD_LETTER_QUEUE_URL", &stack.dead_letter_queue_url),
        ("EVENT_BUS_NAME", &stack.event_bus_name),
        (
            "SPOTIFY_SECRET_ID",
            stack.spotify_secret_id.as_deref().expect("provisioned"),
        ),
        ("SPOTIFY_API_TIER", "development"),
        ("AWS_ENDPOINT_URL", endpoint),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.push(("SPOTIFY_API_BASE_URL".into(), format!("{spotify}/v1")));
    env.push(("SPOTIFY_AUTH_BASE_URL".into(), spotify.to_owned()));
    // The emulator's dummy credentials and region, as the test process has them.
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
    ] {
        if let Ok(value) = std::env::var(name) {
            env.push((name.to_owned(), value));
        }
    }
    env
}

fn failures(response: &Value) -> usize {
    response["batchItemFailures"]
        .as_array()
        .map_or(0, |items| items.len())
}

/// One function deployed on the emulators: its stack on moto, the Spotify sandbox with the
/// credentials in the stack's secret, the demo watchlist, and `cargo lambda watch` running the
/// binary with the template's environment.
struct Deployed {
    function: &'static str,
    sdk: aws_config::SdkConfig,
    stack: AwsConfig,
    secrets: SecretsManagerSecrets,
    client_secret: String,
    emulator: Emulator,
    events: PathBuf,
    _sandbox: spotify_sandbox::SandboxHandle,
    _social: Option<social_sandbox::SocialSandbox>,
}

impl Deployed {
    async fn start(function: &'static str) -> Option<Self> {
        let endpoint = prerequisites()?;
        let sdk = backbone::aws::load_sdk_config().await;
        let prefix = format!("lambda-e2e-{}", uuid::Uuid::new_v4().simple());
        // Queue visibility as in the template (6x the function timeout); receives as its redrive.
        let stack = provision::stack(&sdk, &prefix, 720, 5).await.unwrap();

        let sandbox_config = music_tasks::spotify::sandbox_config(Tier::Development);
        let (addr, sandbox) = spotify_sandbox::spawn(sandbox_config.clone())
            .await
            .unwrap();
        let secrets = SecretsManagerSecrets::new(aws_sdk_secretsmanager_client(&sdk));
        let credentials = serde_json::json!({
            "client_id": sandbox_config.client_id,
            "client_secret": sandbox_config.client_secret,
            "refresh_token": sandbox_config.refresh_token,
        });
        secrets
            .put(
                stack.spotify_secret_id.as_deref().expect("provisioned"),
                &SecretString::from(credentials.to_string()),
            )
            .await
            .unwrap();
        // The demo watchlist the sample events name: the sandbox's first twelve artists.
        let store = DynamoStore::new(aws_sdk_dynamodb_client(&sdk), stack.store_table.clone());
        let artists: Vec<ArtistId> = sandbox
            .catalog()
            .artists
            .iter()
            .take(12)
            .map(|a| ArtistId::parse("artist", &a.id).unwrap())
            .collect();
        watchlist::add(&store, &WatchlistName::new("demo").unwrap(), &artists)
            .await
            .unwrap();
        // The demo playlist's rules, which playlist-update's plan and sample event name.
        let rules = playlist_update::rules::RuleFile::parse(music_tasks::days::DEMO_RULES).unwrap();
        playlist_update::state::save_rules(
            &store,
            music_tasks::days::DEMO_RULES,
            &rules,
            chrono::Utc::now(),
        )
        .await
        .unwrap();

        let mut env = function_env(function, &stack, &endpoint, &format!("http://{addr}"));
        // social-media-sync: the social sandbox (the same twelve artists), its credentials in
        // a secret of the stack, and every upstream pointed at it.
        let social = if function == "social-media-sync" {
            let fixtures = social_sandbox::find_fixtures(&root()).expect("shared/social/fixtures");
            let roster = artists.iter().map(|a| a.to_string()).collect();
            let social = social_sandbox::SocialSandbox::spawn(
                social_sandbox::SocialSandboxConfig::new(roster, fixtures),
            )
            .await
            .unwrap();
            let secret_id = format!("{prefix}-social");
            secrets
                .put(&secret_id, &SecretString::from(social.credentials_json()))
                .await
                .unwrap();
            env.push(("SOCIAL_SECRET_ID".into(), secret_id));
            env.push(("SOCIAL_CONTACT".into(), "tests@example.org".into()));
            for (upstream, var, _) in social_media_sync::UPSTREAMS {
                env.push((var.to_owned(), social.base_urls()[upstream].clone()));
            }
            Some(social)
        } else {
            None
        };
        let emulator = Emulator::start(function, &env).await;
        Some(Self {
            function,
            sdk,
            stack,
            secrets,
            client_secret: sandbox_config.client_secret,
            emulator,
            events: root().join("events").join(function),
            _sandbox: sandbox,
            _social: social,
        })
    }

    /// Invokes an SQS event file and asserts that no record of it failed.
    async fn invoke_ok(&self, file: &Path) -> Value {
        let response = self.emulator.invoke(self.function, file).await;
        assert_eq!(
            failures(&response),
            0,
            "{}: {response}\n{}",
            file.display(),
            self.emulator.output()
        );
        response
    }

    /// Nothing dead-lettered, an intact and non-empty audit chain, JSON logs without a secret.
    async fn check_effects(&self) {
        let dead = SqsPoller::new(&self.sdk, &self.stack.dead_letter_queue_url)
            .bodies()
            .await
            .unwrap();
        assert!(dead.is_empty(), "dead letters: {dead:?}");

        let audit = AuditLog::new(
            Arc::new(DynamoAuditStore::new(
                aws_sdk_dynamodb_client(&self.sdk),
                self.stack.audit_table.clone(),
            )),
            Arc::new(SystemClock),
        );
        let report = audit.verify(self.function).await.unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert!(report.records > 0, "no audit records");

        let output = self.emulator.output();
        assert!(output.contains("\"requestId\""), "{output}");
        let current = self
            .secrets
            .get(
                self.stack
                    .spotify_secret_id
                    .as_deref()
                    .expect("provisioned"),
            )
            .await
            .unwrap();
        let current: Value = serde_json::from_str(current.expose_secret()).unwrap();
        for secret in [
            self.client_secret.as_str(),
            current["refresh_token"].as_str().unwrap(),
        ] {
            assert!(!output.contains(secret), "a secret reached the logs");
        }
    }
}

/// A scheduled function: the schedule's plan, its fan-out drained through the emulator, then
/// the sample SQS event.
async fn run_scheduled_function(function: &'static str, sample_batch: &str) {
    let Some(deployed) = Deployed::start(function).await else {
        return;
    };
    // The schedule's plan (a direct payload, as EventBridge Scheduler sends it).
    let plan = deployed
        .emulator
        .invoke(function, &deployed.events.join("1-schedule-plan.json"))
        .await;
    assert!(!plan.is_null(), "{plan}");

    // Lambda's SQS event source, played through the emulator: receive, invoke, delete.
    let poller = SqsPoller::new(&deployed.sdk, &deployed.stack.work_queue_url);
    let dir = tempfile::tempdir().unwrap();
    let mut batches = 0;
    while let Some((event, handles)) = poller.receive(1).await.unwrap() {
        batches += 1;
        assert!(batches <= 30, "the work queue does not drain");
        let file = dir.path().join(format!("batch-{batches}.json"));
        std::fs::write(&file, event.to_string()).unwrap();
        let response = deployed.invoke_ok(&file).await;
        poller.acknowledge(&handles, &response).await.unwrap();
    }
    assert!(batches >= 1, "the plan fanned out nothing");

    deployed
        .invoke_ok(&deployed.events.join(sample_batch))
        .await;
    deployed.check_effects().await;
}

/// A function triggered by uploads: `file` is put in a fresh moto bucket at the key the sample
/// S3 notification names, and the notification (delivered through SQS) is invoked with the
/// bucket renamed.
async fn run_upload_function(function: &'static str, sample_batch: &str, file: &str) {
    let Some(deployed) = Deployed::start(function).await else {
        return;
    };
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(deployed.events.join(sample_batch)).unwrap())
            .unwrap();
    let mut notification: Value =
        serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
    let object = &mut notification["Records"][0]["s3"];
    let raw_key = object["object"]["key"].as_str().unwrap().to_owned();
    // The key as S3 stores it: notifications carry it form-encoded.
    let key = raw_key.replace('+', " ");
    let bucket = format!("lambda-e2e-{}", uuid::Uuid::new_v4().simple());
    object["bucket"]["name"] = Value::from(bucket.clone());
    event["Records"][0]["body"] = Value::from(notification.to_string());

    let s3 = backbone::aws::s3_client(&deployed.sdk);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(std::fs::read(root().join(file)).unwrap().into())
        .send()
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload.json");
    std::fs::write(&path, event.to_string()).unwrap();
    let response = deployed.invoke_ok(&path).await;
    assert!(!response.is_null(), "{response}");
    deployed.check_effects().await;
}

fn aws_sdk_dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

fn aws_sdk_secretsmanager_client(sdk: &aws_config::SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(sdk)
}

/// One test, the functions one after the other: each emulator may build its binary, and two
/// builds at once only fight over the target directory.
#[tokio::test(flavor = "multi_thread")]
async fn every_function_runs_under_the_lambda_emulator() {
    run_scheduled_function("artist-monitoring", "2-sqs-snapshot.json").await;
    run_scheduled_function("data-sync", "2-sqs-artists.json").await;
    run_scheduled_function("social-media-sync", "2-sqs-sync.json").await;
    run_scheduled_function("playlist-update", "2-sqs-update.json").await;
    run_upload_function(
        "track-analysis",
        "aws/sqs-s3-upload.json",
        "events/track-analysis/audio/drums-120bpm-c-major.flac",
    )
    .await;
    run_upload_function(
        "streaming-metrics",
        "s3/sqs-report-landed.json",
        "events/streaming-metrics/reports/s4a-songs.csv",
    )
    .await;
}
