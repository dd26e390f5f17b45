//! `tasks auth` end to end: the real binary against the Spotify sandbox's `/authorize` and
//! `/api/token`, with this test playing the browser (follow the authorize URL's redirect to the
//! loopback listener). The stored secret must hold the sandbox's fresh refresh token, and
//! nothing the command prints may contain the client secret or a token.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use backbone::ExposeSecret;
use backbone::ports::Secrets;
use spotify_sandbox::SandboxConfig;

/// A running `tasks auth`, killed if the test ends before it does.
struct Run {
    child: Child,
    url: String,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tasks auth` against the sandbox at `auth_base` and reads the authorize URL it prints.
async fn start(
    auth_base: &str,
    config: &SandboxConfig,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tasks"));
    command
        .args(["auth", "--port", "0", "--timeout-seconds", "30"])
        .args(extra)
        .env("SPOTIFY_AUTH_BASE_URL", auth_base)
        .env("SECRET_SPOTIFY_CLIENT_ID", &config.client_id)
        .env("SECRET_SPOTIFY_CLIENT_SECRET", &config.client_secret)
        .env_remove("AWS_ENDPOINT_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    // The first line on stdout is the URL; the command waits for the redirect after it.
    let line = tokio::task::spawn_blocking(move || BufReader::new(stdout).lines().next());
    let url = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .expect("the authorize URL within 30 s")
        .unwrap()
        .expect("a line on stdout")
        .unwrap();
    Run { child, url }
}

/// What the browser does: GET the authorize URL, follow its redirect to the loopback listener.
async fn browse(url: &str, tamper_state: bool) -> reqwest::StatusCode {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND, "{url}");
    let mut location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    if tamper_state {
        location = location.replace("state=", "state=forged");
    }
    client.get(&location).send().await.unwrap().status()
}

/// Waits (at most 30 s) for the command to exit: whether it succeeded, and all it printed.
async fn finish(mut run: Run) -> (bool, String) {
    let mut stderr_pipe = run.child.stderr.take().unwrap();
    let stderr = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        stderr_pipe.read_to_string(&mut text).map(|_| text)
    });
    let stderr = tokio::time::timeout(Duration::from_secs(30), stderr)
        .await
        .expect("tasks auth exits within 30 s")
        .unwrap()
        .unwrap();
    let status = run.child.wait().unwrap();
    (status.success(), format!("{}\n{stderr}", run.url))
}

#[tokio::test]
async fn auth_stores_the_fresh_refresh_token_in_the_local_secrets_file() {
    let config = SandboxConfig::default();
    let (addr, sandbox) = spotify_sandbox::spawn(config.clone()).await.unwrap();
    let before = sandbox.current_refresh_token().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    let auth_base = format!("http://{addr}");

    let run = start(
        &auth_base,
        &config,
        &[
            "--secrets-file",
            file.to_str().unwrap(),
            "--secret-id",
            "music/spotify",
        ],
        &[],
    )
    .await;
    let url = reqwest::Url::parse(&run.url).unwrap();
    let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(url.path(), "/authorize");
    // Every scope a function needs, playlist-update's writes included, space-separated.
    let asked: Vec<&str> = pairs["scope"].split(' ').collect();
    for scope in [
        "user-read-recently-played",
        "playlist-read-private",
        "playlist-read-collaborative",
        "playlist-modify-public",
        "playlist-modify-private",
    ] {
        assert!(asked.contains(&scope), "{scope} not asked: {url}");
    }
    assert!(
        pairs["redirect_uri"].starts_with("http://127.0.0.1:"),
        "{url}"
    );
    assert_eq!(browse(&run.url, false).await, reqwest::StatusCode::OK);
    let (ok, printed) = finish(run).await;
    assert!(ok, "{printed}");

    // The grant's refresh token is now the valid one, and it is what the secret holds.
    let fresh = sandbox.current_refresh_token().unwrap();
    assert_ne!(fresh, before);
    let secrets = backbone::local::FileSecrets::new(&file);
    let stored = secrets.get("music/spotify").await.unwrap();
    let stored: serde_json::Value = serde_json::from_str(stored.expose_secret()).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "refresh_token": fresh,
        })
    );
    for secret in [&config.client_secret, &fresh] {
        assert!(
            !printed.contains(secret.as_str()),
            "a secret was printed:\n{printed}"
        );
    }
}

#[tokio::test]
async fn a_redirect_with_a_forged_state_stores_nothing() {
    let config = SandboxConfig::default();
    let (addr, _sandbox) = spotify_sandbox::spawn(config.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    let run = start(
        &format!("http://{addr}"),
        &config,
        &["--secrets-file", file.to_str().unwrap()],
        &[],
    )
    .await;
    browse(&run.url, true).await;
    let (ok, printed) = finish(run).await;
    assert!(!ok);
    assert!(printed.contains("state does not match"), "{printed}");
    assert!(!file.exists());
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_by_the_token_endpoint() {
    let config = SandboxConfig::default();
    let (addr, _sandbox) = spotify_sandbox::spawn(config.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    let run = start(
        &format!("http://{addr}"),
        &config,
        &["--secrets-file", file.to_str().unwrap()],
        &[("SECRET_SPOTIFY_CLIENT_SECRET", "not-the-secret")],
    )
    .await;
    browse(&run.url, false).await;
    let (ok, printed) = finish(run).await;
    assert!(!ok);
    assert!(printed.contains("invalid_client"), "{printed}");
    assert!(!printed.contains("not-the-secret"), "{printed}");
    assert!(!file.exists());
}

/// With `AWS_ENDPOINT_URL` (the emulator), the secret goes to Secrets Manager.
#[cfg(feature = "aws")]
#[tokio::test]
async fn auth_stores_in_secrets_manager_when_an_aws_endpoint_is_set() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "AWS_ENDPOINT_URL is not set but CI is: this test needs the emulator"
        );
        eprintln!("skipping: AWS_ENDPOINT_URL is not set (infra/moto.sh start)");
        return;
    };
    let config = SandboxConfig::default();
    let (addr, sandbox) = spotify_sandbox::spawn(config.clone()).await.unwrap();
    let secret_id = format!(
        "music-tasks/auth-test-{}/spotify",
        uuid::Uuid::new_v4().simple()
    );
    let run = start(
        &format!("http://{addr}"),
        &config,
        &["--secret-id", &secret_id],
        &[("AWS_ENDPOINT_URL", &endpoint)],
    )
    .await;
    assert_eq!(browse(&run.url, false).await, reqwest::StatusCode::OK);
    let (ok, printed) = finish(run).await;
    assert!(ok, "{printed}");
    let sdk = backbone::aws::load_sdk_config().await;
    let secrets =
        backbone::aws::SecretsManagerSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let stored = secrets.get(&secret_id).await.unwrap();
    let stored: serde_json::Value = serde_json::from_str(stored.expose_secret()).unwrap();
    assert_eq!(
        stored["refresh_token"],
        sandbox.current_refresh_token().unwrap()
    );
}
