//! The `tasks` binary as a user runs it.

use std::process::Command;

fn tasks(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tasks"))
        .args(args)
        .env("TASKS_DB", db)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the tasks binary runs")
}

#[test]
fn local_runs_on_the_embedded_default_and_verifies_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.sqlite3");
    let out = tasks(&db, &["local"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let functions = tasks(&db, &["functions"]);
    let names: Vec<String> = serde_json::from_slice(&functions.stdout).unwrap();
    assert_eq!(summary["functions"].as_array().unwrap().len(), names.len());
    assert!(
        summary["audit"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["problems"].as_array().unwrap().is_empty())
    );
    assert!(db.exists(), "the local database was created");

    // The demo rules on the demo watchlist `local` seeded: a dry run, its message once, then
    // the explanations.
    let rules = tasks(
        &db,
        &[
            "playlist",
            "rules",
            "apply",
            "events/playlist-update/rules/demo.yaml",
        ],
    );
    assert!(
        rules.status.success(),
        "{}",
        String::from_utf8_lossy(&rules.stderr)
    );
    let run = tasks(&db, &["playlist", "run", "O1oLYhHc76ZH3F9qm5thw7"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let message = stdout
        .lines()
        .find_map(|l| l.split_once("(dry_run): ").map(|(_, m)| m))
        .unwrap_or_else(|| panic!("no dry-run header: {stdout}"));
    assert_eq!(stdout.matches(message).count(), 1, "{stdout}");
}

#[test]
fn unknown_function_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, "{}").unwrap();
    let out = tasks(
        &dir.path().join("db.sqlite3"),
        &[
            "invoke",
            "no-such-function",
            "--event",
            event.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown function \"no-such-function\""),
        "{stderr}"
    );
}

#[test]
fn audit_verify_reports_tampering_with_a_failing_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.sqlite3");
    let ok = tasks(&db, &["audit", "verify"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Write a chain of two records through the library, then break it from outside.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = std::sync::Arc::new(backbone::local::LocalDb::open(&db).unwrap());
        let log = backbone::audit::AuditLog::new(store.clone(), std::sync::Arc::new(backbone::clock::SystemClock));
        for subject in ["a", "b"] {
            log.append(backbone::audit::AuditEntry {
                stream: "cli-test".into(),
                task: "cli-test".into(),
                version: "1".into(),
                trace_id: None,
                idempotency_key: None,
                subject: subject.into(),
                action: "completed".into(),
                input_hash: "00".into(),
                outcome: "ok".into(),
                detail: serde_json::json!({}),
            })
            .await
            .unwrap();
        }
        store.execute("UPDATE audit SET record = replace(record, '\"subject\":\"a\"', '\"subject\":\"z\"')").await.unwrap();
    });
    let broken = tasks(&db, &["audit", "verify", "--stream", "cli-test"]);
    assert!(!broken.status.success());
    let reports: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(reports[0]["problems"][0]["problem"], "altered");
}

#[test]
fn social_link_checks_the_account_and_show_returns_the_manual_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.sqlite3");
    let artist = "4Z8W4fKeB5YxbusRsdQVPb";
    let bad = tasks(&db, &["social", "link", artist, "youtube", "UCshort"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("is not a YouTube channel id"), "{stderr}");
    let unknown = tasks(&db, &["social", "link", artist, "myspace", "x"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown platform \"myspace\""));

    let ok = tasks(
        &db,
        &[
            "social",
            "link",
            artist,
            "youtube",
            "@SomeArtist",
            "--by",
            "label-ops",
        ],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let shown = tasks(&db, &["social", "show", artist]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["manual"][0]["account"], "@someartist");
    assert_eq!(shown["manual"][0]["by"], "label-ops");
    assert!(shown["graph"].is_null(), "resolved at the next sync");
}
