//! `tasks`: run the task functions locally on the embedded adapters, and admin commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use backbone::clock::{Clock, ManualClock, SystemClock};
use backbone::config::{HarnessConfig, ProcessEnv};
use backbone::harness::metrics_for;
use backbone::local::{Invoke, LocalDb, LocalRuntime};
use backbone::spotify::Tier;
use backbone::telemetry::prometheus::{RecordingSink, Registry};
use backbone::telemetry::{self, FileSink, LineSink, Otel};
use backbone::validate::ArtistId;
use backbone::watchlist::{self, WatchlistName};
use backbone::{ExposeSecret, SecretString};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use music_tasks::Local;
use music_tasks::spotify::LocalSpotify;

/// Run the music platform's background tasks locally, without an AWS account.
#[derive(Debug, Parser)]
#[command(name = "tasks", version, about)]
struct Cli {
    /// The local database (store, idempotency, audit, queues, events).
    #[arg(
        long,
        env = "TASKS_DB",
        default_value = ".local/tasks.sqlite3",
        global = true
    )]
    db: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Invoke one function's handler with an event file, exactly as Lambda would call it.
    Invoke {
        /// The function (`tasks functions` lists them).
        function: String,
        /// The event: an SQS batch, an EventBridge event or a direct payload (JSON).
        #[arg(long)]
        event: PathBuf,
    },
    /// Run every function over its sample events in `events/`, drain the queues, verify the
    /// audit log. With `--days N`, run the schedules once per simulated day against the Spotify
    /// sandbox and print a report.
    Local {
        /// The folder of sample events, one subfolder per function.
        #[arg(long, default_value = "events")]
        events: PathBuf,
        /// Longest wait for delayed messages before the drain stops.
        #[arg(long, default_value_t = 5)]
        max_wait_seconds: u64,
        /// Simulated days to run the schedules over (from the sandbox's day 0).
        #[arg(long)]
        days: Option<u32>,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the function set as a long-lived local service on the embedded default: the
    /// schedules of template.yaml fire on the local clock, the local queues feed the functions,
    /// and `GET /metrics` (Prometheus) and `GET /healthz` answer over HTTP. SIGTERM or Ctrl-C
    /// stops it: the batches in flight finish, queued messages wait for the next start.
    Serve {
        /// The address to listen on; any other than loopback needs a token.
        #[arg(long, default_value = music_tasks::serve::DEFAULT_ADDR)]
        addr: std::net::SocketAddr,
        /// The token every request must carry as `Authorization: Bearer <token>`.
        #[arg(long, env = "SERVE_TOKEN", hide_env_values = true, value_parser = parse_secret)]
        token: Option<SecretString>,
        /// The watchlist the scheduled plans work through (the template's `Watchlist`).
        #[arg(long, default_value = music_tasks::days::DEMO_WATCHLIST)]
        watchlist: String,
        /// The SAM template whose schedules fire (default: the one built into `tasks`).
        #[arg(long)]
        template: Option<PathBuf>,
        /// Where the local clock starts (RFC 3339, e.g. 2026-11-25T05:59:00Z; default now).
        #[arg(long)]
        clock_start: Option<DateTime<Utc>>,
        /// How many times faster than real time the local clock runs (3600: an hour a second).
        #[arg(long, default_value_t = 1.0)]
        clock_speed: f64,
    },
    /// The Spotify sandbox: a stand-in for the Web API and accounts service.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// A fake of PagerDuty's Events API v2 that checks every event as PagerDuty does; point
    /// `PAGERDUTY_EVENTS_URL` at `http://ADDR/v2/enqueue` and `tasks local` sends it its alerts.
    PagerdutyFake {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8898")]
        addr: std::net::SocketAddr,
    },
    /// List the functions that exist.
    Functions,
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The dead letters of a function, with their reasons.
    DeadLetters {
        /// The function.
        function: String,
    },
    /// Watchlists: the rosters of artists the monitoring and sync functions work through.
    Watchlist {
        #[command(subcommand)]
        command: WatchlistCommand,
    },
    /// Authorize the Spotify app for a user (authorization-code flow, loopback redirect) and
    /// store `{"client_id", "client_secret", "refresh_token"}` in the credentials secret: in
    /// Secrets Manager with `--aws` or when `AWS_ENDPOINT_URL` is set (build with `--features
    /// aws`), else in the local secrets file. The client secret is read from
    /// `SECRET_SPOTIFY_CLIENT_SECRET`, never from an argument.
    Auth {
        /// The app's client id.
        #[arg(long, env = "SECRET_SPOTIFY_CLIENT_ID")]
        client_id: String,
        /// The loopback port of the redirect `http://127.0.0.1:<port>/callback` (register that
        /// URI in the app's settings); 0 picks a free port.
        #[arg(long, default_value_t = 8888)]
        port: u16,
        /// The secret to write (name or ARN).
        #[arg(long, env = "SPOTIFY_SECRET_ID", default_value = "spotify/credentials")]
        secret_id: String,
        /// Store in Secrets Manager (default: only when AWS_ENDPOINT_URL is set).
        #[arg(long)]
        aws: bool,
        /// The local secrets file (JSON of secret name to value) when not storing in AWS.
        #[arg(long, default_value = ".local/secrets.json")]
        secrets_file: PathBuf,
        /// How long to wait for the browser's redirect.
        #[arg(long, default_value_t = 300)]
        timeout_seconds: u64,
    },
    /// Analyse an audio file (MP3, AAC/M4A, FLAC, WAV, Ogg Vorbis): tempo, key, loudness,
    /// spectral features. Prints a summary, or the feature JSON with `--json`.
    Analyze {
        /// The audio: a file path or an https URL.
        audio: String,
        /// Print the features as JSON (the schema `track-analysis` stores).
        #[arg(long)]
        json: bool,
        /// With `--json`, add the time series (waveform, loudness, chroma) under `timeline`.
        #[arg(long)]
        timeline: bool,
        /// Also draw the report (waveform and beats, loudness, chroma) to this PNG file.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// social-media-sync: link an artist to an account by hand, unlink, show the identity
    /// graph and the series.
    Social {
        #[command(subcommand)]
        command: music_tasks::social::SocialCommand,
    },
    /// playlist-update: rule files (`rules validate|apply|show`), runs, and `explain`.
    Playlist {
        #[command(subcommand)]
        command: music_tasks::playlist::PlaylistCommand,
    },
    /// ai-content-generation: draft from stored facts, approve, publish, reject, show drafts.
    Content {
        #[command(subcommand)]
        command: music_tasks::content::ContentCommand,
    },
    /// streaming-metrics: ingest a report, read rollups, run the NAB and synthetic benchmarks.
    #[command(name = "streaming-metrics")]
    StreamingMetrics {
        #[command(subcommand)]
        command: music_tasks::streaming::StreamingCommand,
    },
}

#[derive(Debug, Subcommand)]
enum WatchlistCommand {
    /// Add artists (ids, spotify: URIs or open.spotify.com URLs), creating the list if needed.
    Add {
        /// The watchlist.
        name: String,
        /// The artists.
        #[arg(required = true)]
        artists: Vec<String>,
    },
    /// Remove artists.
    Remove {
        /// The watchlist.
        name: String,
        /// The artists.
        #[arg(required = true)]
        artists: Vec<String>,
    },
    /// Show one watchlist, or list every watchlist's name.
    List {
        /// The watchlist (default: list the names).
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// Serve the sandbox until stopped; point `SPOTIFY_API_BASE_URL` at `http://ADDR/v1` and
    /// `SPOTIFY_AUTH_BASE_URL` at `http://ADDR`.
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8899")]
        addr: std::net::SocketAddr,
        /// The tier to imitate (default: `SPOTIFY_API_TIER`, else development).
        #[arg(long)]
        tier: Option<Tier>,
        /// Seed of the catalog and of fault injection.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Share of Web API calls answered 429 (0 to 1).
        #[arg(long, default_value_t = 0.0)]
        rate_limit_rate: f64,
        /// Share of Web API calls answered 503 (0 to 1).
        #[arg(long, default_value_t = 0.0)]
        server_error_rate: f64,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the hash chains and report gaps, edits and broken links.
    Verify {
        /// One stream only (default: every stream).
        #[arg(long)]
        stream: Option<String>,
    },
}

fn parse_secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

async fn local(db: &std::path::Path, clock: Arc<dyn Clock>) -> Result<Local> {
    local_recorded(db, clock, None).await
}

/// The local wiring; with a registry, the EMF lines are also recorded for `/metrics`.
async fn local_recorded(
    db: &std::path::Path,
    clock: Arc<dyn Clock>,
    registry: Option<Arc<Registry>>,
) -> Result<Local> {
    if let Some(dir) = db.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let db_handle = LocalDb::open(db).with_context(|| format!("opening {}", db.display()))?;
    let telemetry_path = db.with_file_name("telemetry.jsonl");
    let file: Arc<dyn LineSink> = Arc::new(
        FileSink::append(&telemetry_path)
            .with_context(|| format!("opening {}", telemetry_path.display()))?,
    );
    let sink: Arc<dyn LineSink> = match registry {
        Some(registry) => Arc::new(RecordingSink::new(file, registry)),
        None => file,
    };
    // OTLP when the OTEL_* variables ask for it (an OpenTelemetry collector on loopback, say).
    let otel = Otel::from_env(&ProcessEnv, "music-tasks", env!("CARGO_PKG_VERSION"))
        .context("starting the OTLP export")?;
    let sink = match &otel {
        Some(otel) => otel.metrics_sink(sink),
        None => sink,
    };
    telemetry::init_with_otel(&ProcessEnv, sink.clone(), otel.as_deref())?;
    let mut runtime = LocalRuntime::new(db_handle, clock, sink.clone());
    runtime.otel = otel;
    let metrics = metrics_for(&HarnessConfig::for_task("spotify"), "spotify", sink);
    let playlists = db.with_file_name("sandbox-playlists.json");
    let spotify = LocalSpotify::from_env(&ProcessEnv, metrics, Some(playlists))
        .await
        .context("setting up Spotify access")?;
    // The social sandbox's roster: the Spotify sandbox's demo artists, so its personas (every
    // identity case) line up with the demo watchlist.
    let roster: Vec<String> = spotify
        .sandbox
        .as_ref()
        .map(|s| {
            s.catalog()
                .artists
                .iter()
                .take(music_tasks::days::DEMO_ARTISTS)
                .map(|a| a.id.clone())
                .collect()
        })
        .unwrap_or_default();
    let social = music_tasks::social::LocalSocial::from_env(&ProcessEnv, roster)
        .await
        .context("setting up the social platforms")?;
    Ok(Local {
        runtime,
        spotify,
        social: Some(social),
    })
}

fn find<'a>(functions: &'a [Box<dyn Invoke>], name: &str) -> Result<&'a dyn Invoke> {
    match functions.iter().find(|f| f.name() == name) {
        Some(function) => Ok(function.as_ref()),
        None => {
            let known: Vec<&str> = functions.iter().map(|f| f.name()).collect();
            bail!(
                "unknown function {name:?}; the functions are: {}",
                if known.is_empty() {
                    "(none yet)".to_owned()
                } else {
                    known.join(", ")
                }
            )
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::io::Write::write_all(&mut std::io::stdout(), format!("{text}\n").as_bytes())?;
    Ok(())
}

async fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Sandbox {
        command:
            SandboxCommand::Serve {
                addr,
                tier,
                seed,
                rate_limit_rate,
                server_error_rate,
            },
    } = cli.command
    {
        let tier = match tier {
            Some(tier) => tier,
            None => backbone::config::parse_or(&ProcessEnv, "SPOTIFY_API_TIER", Tier::Development)?,
        };
        let mut config = music_tasks::spotify::sandbox_config(tier);
        config.seed = seed;
        config.faults.rate_limit_rate = rate_limit_rate;
        config.faults.server_error_rate = server_error_rate;
        tracing::info!(%addr, tier = tier.as_str(), "serving the Spotify sandbox");
        eprintln!(
            "Spotify sandbox ({}) on http://{addr}: SPOTIFY_API_BASE_URL=http://{addr}/v1 SPOTIFY_AUTH_BASE_URL=http://{addr}",
            tier.as_str()
        );
        spotify_sandbox::serve(addr, config).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::PagerdutyFake { addr } = cli.command {
        tracing::info!(%addr, "serving the PagerDuty Events API fake");
        eprintln!(
            "PagerDuty Events API fake on http://{addr}: PAGERDUTY_EVENTS_URL=http://{addr}/v2/enqueue"
        );
        music_tasks::pagerduty::serve_fake(addr).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Auth {
        client_id,
        port,
        secret_id,
        aws,
        secrets_file,
        timeout_seconds,
    } = cli.command
    {
        auth_command(AuthArgs {
            client_id,
            port,
            secret_id,
            aws: aws || std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            secrets_file,
            timeout: Duration::from_secs(timeout_seconds),
        })
        .await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Serve {
        addr,
        token,
        watchlist,
        template,
        clock_start,
        clock_speed,
    } = cli.command
    {
        serve_command(
            &cli.db,
            ServeArgs {
                addr,
                token,
                watchlist,
                template,
                clock_start,
                clock_speed,
            },
        )
        .await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Analyze {
        audio,
        json,
        timeline,
        plot,
    } = &cli.command
    {
        analyze(audio, *json, *timeline, plot.as_deref()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::StreamingMetrics { command } = cli.command {
        if command.is_standalone() {
            music_tasks::streaming::run_standalone(command).await?;
            return Ok(ExitCode::SUCCESS);
        }
        let local = local(&cli.db, Arc::new(SystemClock)).await?;
        let functions = music_tasks::functions(&local);
        let ok = music_tasks::streaming::run_local(command, &local.runtime.db, &functions).await?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if let Command::Playlist { command } = cli.command {
        let local = local(&cli.db, Arc::new(SystemClock)).await?;
        let functions = music_tasks::functions(&local);
        let ok = music_tasks::playlist::run(
            command,
            &local.runtime.db,
            &functions,
            local.runtime.clock.now(),
        )
        .await?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if let Command::Content { command } = cli.command {
        music_tasks::content::generator(&ProcessEnv)?;
        let local = local(&cli.db, Arc::new(SystemClock)).await?;
        let functions = music_tasks::functions(&local);
        let ok = music_tasks::content::run(command, &local.runtime.db, &functions).await?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let manual = Arc::new(ManualClock::new(chrono::Utc::now()));
    let clock: Arc<dyn Clock> = match &cli.command {
        Command::Local { days: Some(_), .. } => manual.clone(),
        _ => Arc::new(SystemClock),
    };
    let local = local(&cli.db, clock).await?;
    let runtime = &local.runtime;
    let functions = music_tasks::functions(&local);
    match cli.command {
        Command::Sandbox { .. }
        | Command::Serve { .. }
        | Command::PagerdutyFake { .. }
        | Command::Auth { .. }
        | Command::Analyze { .. }
        | Command::StreamingMetrics { .. }
        | Command::Playlist { .. }
        | Command::Content { .. } => Ok(ExitCode::SUCCESS),
        Command::Social { command } => {
            let out = music_tasks::social::run(&runtime.db, runtime.clock.now(), command).await?;
            print_json(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Local {
            events,
            max_wait_seconds,
            days: Some(days),
            json,
        } => {
            let seeded = music_tasks::days::seed_demo_watchlist(&local).await?;
            music_tasks::days::seed_demo_rules(&local).await?;
            let seen = runtime.bus().last_id().await?;
            let runs = music_tasks::days::simulate(
                &local,
                &manual,
                &functions,
                &events,
                0..days,
                Duration::from_secs(max_wait_seconds),
            )
            .await?;
            let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
                bail!("--days must be at least 1");
            };
            let names: Vec<&str> = functions.iter().map(|f| f.name()).collect();
            let report = music_tasks::report::build(
                &local,
                &music_tasks::days::demo_name(),
                first.date,
                last.date,
                &names,
            )
            .await?;
            let errors: Vec<&String> = runs.iter().flat_map(|r| &r.errors).collect();
            let paged = music_tasks::pagerduty::forward_local(&runtime.bus(), seen).await?;
            if json {
                print_json(&serde_json::json!({
                    "database": cli.db.display().to_string(),
                    "seededWatchlist": seeded,
                    "days": runs,
                    "report": report,
                    "pagerduty": paged,
                }))?;
            } else {
                let mut text = report.to_string();
                if let Some(paged) = &paged {
                    text.push_str(&format!("pagerduty: {} events sent\n", paged.len()));
                }
                for error in &errors {
                    text.push_str(&format!("schedule error: {error}\n"));
                }
                std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
            }
            let intact = report.audit.iter().all(|r| r.is_intact());
            Ok(if intact && errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Functions => {
            let names: Vec<&str> = functions.iter().map(|f| f.name()).collect();
            print_json(&names)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Invoke { function, event } => {
            let function = find(&functions, &function)?;
            let bytes =
                std::fs::read(&event).with_context(|| format!("reading {}", event.display()))?;
            match function.invoke_bytes(&bytes).await {
                Ok(report) => {
                    print_json(&report.response)?;
                    let refused = matches!(
                        report.response.get("status").and_then(|s| s.as_str()),
                        Some("rejected" | "failed")
                    );
                    Ok(if refused {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    })
                }
                Err(err) => bail!("{} failed: {err}", function.name()),
            }
        }
        Command::Local {
            events,
            max_wait_seconds,
            days: None,
            ..
        } => {
            music_tasks::days::seed_demo_watchlist(&local).await?;
            music_tasks::days::seed_demo_rules(&local).await?;
            let seen = runtime.bus().last_id().await?;
            let mut runs = Vec::new();
            for function in &functions {
                runs.push(
                    music_tasks::run_function(
                        function.as_ref(),
                        runtime,
                        &events,
                        Duration::from_secs(max_wait_seconds),
                    )
                    .await?,
                );
            }
            let audit = music_tasks::verify_audit(runtime, None).await?;
            let intact = audit.iter().all(|r| r.is_intact());
            // With `PAGERDUTY_EVENTS_URL`, this run's alerts go where the template routes them.
            let paged = music_tasks::pagerduty::forward_local(&runtime.bus(), seen).await?;
            print_json(&serde_json::json!({
                "database": cli.db.display().to_string(),
                "functions": runs,
                "audit": audit,
                "pagerduty": paged,
                "note": if functions.is_empty() { "no function exists yet" } else { "" },
            }))?;
            Ok(if intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Audit {
            command: AuditCommand::Verify { stream },
        } => {
            let reports = music_tasks::verify_audit(runtime, stream.as_deref()).await?;
            // The EMF line each function's scheduled verify logs (same metric, same
            // dimensions), which its `AuditChainAlarm` watches.
            for report in &reports {
                backbone::audit::emit_verify_metrics(
                    std::slice::from_ref(report),
                    &backbone::config::HarnessConfig::for_task(&report.stream),
                    runtime.sink.clone(),
                    runtime.clock.now(),
                );
            }
            print_json(&reports)?;
            Ok(if reports.iter().all(|r| r.is_intact()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Watchlist { command } => {
            watchlist_command(runtime, command).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DeadLetters { function } => {
            let letters = runtime.queues(&function).dead_letters().await?;
            print_json(&letters)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn watchlist_command(runtime: &LocalRuntime, command: WatchlistCommand) -> Result<()> {
    let store = &runtime.db;
    let parse_name = |name: &str| {
        WatchlistName::new(name).map_err(|reason| anyhow::anyhow!("watchlist name: {reason}"))
    };
    let parse_artists = |artists: &[String]| -> Result<Vec<ArtistId>> {
        artists
            .iter()
            .enumerate()
            .map(|(i, a)| ArtistId::parse(&format!("artists[{i}]"), a).map_err(anyhow::Error::from))
            .collect()
    };
    match command {
        WatchlistCommand::Add { name, artists } => {
            let list =
                watchlist::add(store, &parse_name(&name)?, &parse_artists(&artists)?).await?;
            print_json(&list)
        }
        WatchlistCommand::Remove { name, artists } => {
            let list =
                watchlist::remove(store, &parse_name(&name)?, &parse_artists(&artists)?).await?;
            print_json(&list)
        }
        WatchlistCommand::List { name: Some(name) } => {
            print_json(&watchlist::load(store, &parse_name(&name)?).await?)
        }
        WatchlistCommand::List { name: None } => print_json(&watchlist::names(store).await?),
    }
}

/// The arguments of `tasks serve`.
struct ServeArgs {
    addr: std::net::SocketAddr,
    token: Option<SecretString>,
    watchlist: String,
    template: Option<PathBuf>,
    clock_start: Option<DateTime<Utc>>,
    clock_speed: f64,
}

async fn serve_command(db: &std::path::Path, args: ServeArgs) -> Result<()> {
    use music_tasks::serve;

    let template = match &args.template {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => music_tasks::template::TEMPLATE.to_owned(),
    };
    let overrides =
        std::collections::BTreeMap::from([("Watchlist".to_owned(), args.watchlist.clone())]);
    let schedules = music_tasks::schedule::from_template(&template, &overrides)?;
    if !(args.clock_speed.is_finite() && args.clock_speed > 0.0) {
        bail!("--clock-speed must be a positive number");
    }
    let token = args.token.filter(|t| !t.expose_secret().is_empty());
    // The signal handlers are in place before the service says it listens: a SIGTERM from then
    // on is a clean stop, never the default kill.
    let shutdown = shutdown_signal().context("installing the SIGTERM and Ctrl-C handlers")?;
    let clock: Arc<dyn Clock> = match (args.clock_start, args.clock_speed) {
        (None, 1.0) => Arc::new(SystemClock),
        (start, speed) => Arc::new(serve::ScaledClock::new(
            start.unwrap_or_else(Utc::now),
            speed,
        )),
    };
    let registry = Arc::new(Registry::new());
    let local = local_recorded(db, clock, Some(registry.clone())).await?;
    music_tasks::days::seed_demo_watchlist(&local).await?;
    music_tasks::days::seed_demo_rules(&local).await?;
    let functions = music_tasks::functions(&local);
    let listener = serve::bind(args.addr, token.as_ref()).await?;
    let bound = listener.local_addr().context("reading the bound address")?;
    eprintln!(
        "tasks serve: listening on http://{bound} (/metrics, /healthz); {} functions, {} schedules from the template; SIGTERM or Ctrl-C stops it",
        functions.len(),
        schedules.len()
    );
    for schedule in &schedules {
        let next = schedule
            .expression
            .next_after(local.runtime.clock.now(), local.runtime.clock.now());
        eprintln!(
            "  {schedule}: next {}",
            next.map_or_else(|| "never".to_owned(), |t| t.to_rfc3339())
        );
    }
    let summary = serve::run(
        &local,
        functions,
        schedules,
        registry,
        listener,
        token.as_ref(),
        shutdown,
    )
    .await?;
    let queued: Vec<String> = summary
        .queued
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(f, n)| format!("{f} {n}"))
        .collect();
    eprintln!(
        "tasks serve: stopped after {} schedule firings and {} batches ({} messages completed); still queued: {}",
        summary.firings,
        summary.batches,
        summary.completed,
        if queued.is_empty() {
            "none".to_owned()
        } else {
            queued.join(", ")
        }
    );
    Ok(())
}

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C). The handlers are installed now, not when
/// the future is first polled.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// The arguments of `tasks auth`.
struct AuthArgs {
    client_id: String,
    port: u16,
    secret_id: String,
    aws: bool,
    secrets_file: PathBuf,
    timeout: Duration,
}

async fn auth_command(args: AuthArgs) -> Result<()> {
    use backbone::SecretString;
    use music_tasks::auth;

    let client_secret = backbone::config::required(&ProcessEnv, "SECRET_SPOTIFY_CLIENT_SECRET")?;
    let app = auth::AppCredentials {
        client_id: args.client_id,
        client_secret: SecretString::from(client_secret),
    };
    let auth_base = backbone::config::optional(&ProcessEnv, "SPOTIFY_AUTH_BASE_URL")
        .unwrap_or_else(|| backbone::spotify::client::DEFAULT_AUTH_BASE_URL.to_owned());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("binding the redirect listener on 127.0.0.1:{}", args.port))?;
    let credentials = auth::run(&auth_base, &app, listener, args.timeout, |url| {
        eprintln!("Open this URL in a browser and approve the app:");
        // The URL alone on stdout, for scripts; it carries no secret.
        println!("{url}");
    })
    .await?;
    if args.aws {
        store_in_aws(&args.secret_id, &credentials).await?;
        eprintln!(
            "Stored the Spotify credentials in Secrets Manager secret {}.",
            args.secret_id
        );
    } else {
        if let Some(dir) = args.secrets_file.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let secrets = backbone::local::FileSecrets::new(&args.secrets_file);
        auth::store(&secrets, &args.secret_id, &credentials).await?;
        eprintln!(
            "Stored the Spotify credentials as secret {} in {}.",
            args.secret_id,
            args.secrets_file.display()
        );
    }
    Ok(())
}

#[cfg(feature = "aws")]
async fn store_in_aws(secret_id: &str, credentials: &backbone::SecretString) -> Result<()> {
    let sdk = backbone::aws::load_sdk_config().await;
    let secrets =
        backbone::aws::SecretsManagerSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk));
    music_tasks::auth::store(&secrets, secret_id, credentials).await?;
    Ok(())
}

#[cfg(not(feature = "aws"))]
async fn store_in_aws(_secret_id: &str, _credentials: &backbone::SecretString) -> Result<()> {
    bail!(
        "storing in Secrets Manager needs the AWS SDK: run `cargo run --features aws -- auth ...`"
    )
}

/// `tasks analyze`: the track-analysis core on one file, without the local database.
async fn analyze(
    audio: &str,
    json: bool,
    with_timeline: bool,
    plot: Option<&std::path::Path>,
) -> Result<()> {
    use backbone::ports::{ObjectLocation, ObjectSource};
    let location: ObjectLocation = audio
        .parse()
        .map_err(|err| anyhow::anyhow!("{audio}: {err}"))?;
    let limits = track_analysis::limits_from_env(&ProcessEnv)?;
    let fetched = music_tasks::local_objects()
        .fetch(&location, limits.max_bytes)
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "{location}: {}",
                backbone::error::chain(&err as &(dyn std::error::Error + 'static))
            )
        })?;
    let path = fetched.path().to_owned();
    let (features, timeline) =
        tokio::task::spawn_blocking(move || track_analysis::decode::analyze_path(&path, &limits))
            .await?
            .with_context(|| location.to_string())?;
    if let Some(png) = plot {
        let title = location.file_name().unwrap_or(audio).to_owned();
        track_analysis::plot::render(png, &title, &features, &timeline)
            .with_context(|| format!("writing {}", png.display()))?;
    }
    if json {
        if with_timeline {
            print_json(&serde_json::json!({"features": features, "timeline": timeline}))
        } else {
            print_json(&features)
        }
    } else {
        let text = track_analysis::summary(&features);
        std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
