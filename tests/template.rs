//! Checks `template.yaml` against the rules every function block must keep (queues, dead
//! letters, event sources, schedules, alarms, roles), and cross-checks the environment
//! variables each function's code reads against what the template gives it.
//!
//! The template is read with `serde_yaml_ng`; CloudFormation's short-form tags (`!Ref`,
//! `!GetAtt`, `!Sub`, ...) become their long forms (`{"Ref": ..}`, `{"Fn::GetAtt": [..]}`), so
//! the checks see one shape. The variable names come from the source of the crates the Lambda
//! binaries are built from, not from a list kept here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use music_tasks::template::to_json;
use serde_json::{Map, Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Template {
    doc: Value,
}

impl Template {
    fn load() -> Self {
        let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        Self { doc: to_json(yaml) }
    }

    fn resources(&self) -> &Map<String, Value> {
        self.doc["Resources"].as_object().unwrap()
    }

    fn resource(&self, name: &str) -> &Value {
        self.resources()
            .get(name)
            .unwrap_or_else(|| panic!("resource {name} is not in the template"))
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources()
            .iter()
            .filter(move |(_, r)| r["Type"] == kind)
            .map(|(n, r)| (n.as_str(), r))
    }

    /// A function's property, falling back to `Globals.Function`.
    fn function_property<'a>(&'a self, function: &'a Value, key: &str) -> &'a Value {
        let own = &function["Properties"][key];
        if own.is_null() {
            &self.doc["Globals"]["Function"][key]
        } else {
            own
        }
    }

    /// The environment a function gets: the globals, overridden by its own variables.
    fn environment(&self, function: &Value) -> BTreeMap<String, Value> {
        let mut vars = BTreeMap::new();
        for source in [
            &self.doc["Globals"]["Function"]["Environment"]["Variables"],
            &function["Properties"]["Environment"]["Variables"],
        ] {
            if let Some(map) = source.as_object() {
                for (k, v) in map {
                    vars.insert(k.clone(), v.clone());
                }
            }
        }
        vars
    }
}

/// The resource a `Ref` or `Fn::GetAtt` points at.
fn target(value: &Value) -> Option<&str> {
    if let Some(name) = value.get("Ref").and_then(Value::as_str) {
        return Some(name);
    }
    value.get("Fn::GetAtt")?.get(0)?.as_str()
}

fn get_att<'a>(value: &'a Value, attribute: &str) -> Option<&'a str> {
    let pair = value.get("Fn::GetAtt")?;
    (pair.get(1)? == attribute)
        .then(|| pair[0].as_str())
        .flatten()
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

fn as_u64(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{what}: expected a number, got {value}"))
}

/// Every policy statement of a role (inline policies).
fn role_statements(role: &Value) -> Vec<&Value> {
    role["Properties"]["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .collect()
}

/// Every statement anywhere in the template (IAM, key, topic and queue policies).
fn all_statements(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(statements)) = map.get("Statement") {
                out.extend(statements.iter().cloned());
            }
            map.values().for_each(|v| all_statements(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| all_statements(v, out)),
        _ => {}
    }
}

/// Resources a statement names, as template resource names (Ref, GetAtt, or `${Name}` in Sub).
fn statement_resources(statement: &Value) -> Vec<String> {
    let resources = match &statement["Resource"] {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    resources
        .iter()
        .filter_map(|r| {
            if let Some(name) = target(r) {
                return Some(name.to_owned());
            }
            let sub = r.get("Fn::Sub")?.as_str()?;
            let start = sub.find("${")? + 2;
            let end = start + sub[start..].find(['}', '.'])?;
            Some(sub[start..end].to_owned())
        })
        .collect()
}

fn actions(statement: &Value) -> Vec<String> {
    strings(&statement["Action"])
}

fn alarms_on<'a>(template: &'a Template, dimension: &str, resource: &str) -> Vec<&'a Value> {
    template
        .of_type("AWS::CloudWatch::Alarm")
        .map(|(_, a)| a)
        .filter(|a| {
            a["Properties"]["Dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|d| d["Name"] == dimension && target(&d["Value"]) == Some(resource))
        })
        .collect()
}

fn alarm_metrics(alarms: &[&Value]) -> BTreeSet<String> {
    alarms
        .iter()
        .filter_map(|a| a["Properties"]["MetricName"].as_str().map(str::to_owned))
        .collect()
}

/// The function's SQS event sources: (event name, properties).
fn sqs_events(function: &Value) -> Vec<(&str, &Value)> {
    function["Properties"]["Events"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, e)| e["Type"] == "SQS")
        .map(|(n, e)| (n.as_str(), &e["Properties"]))
        .collect()
}

/// Default retention of an SQS queue (4 days) when the template does not set it.
const SQS_DEFAULT_RETENTION: u64 = 345_600;

#[test]
fn every_function_is_built_by_cargo_lambda_for_arm64_on_al2023() {
    let template = Template::load();
    let functions: Vec<_> = template.of_type("AWS::Serverless::Function").collect();
    assert!(!functions.is_empty());
    for (name, function) in &functions {
        assert_eq!(
            template.function_property(function, "Runtime"),
            "provided.al2023",
            "{name}"
        );
        assert_eq!(
            template.function_property(function, "Architectures"),
            &json!(["arm64"]),
            "{name}"
        );
        assert_eq!(
            function["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{name}"
        );
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: Metadata.BuildProperties.Binary"));
        let manifest = root().join("functions").join(binary).join("Cargo.toml");
        let manifest = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", manifest.display()));
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{name}: no binary {binary}"
        );
        let timeout = as_u64(&function["Properties"]["Timeout"], name);
        assert!((1..=900).contains(&timeout), "{name}: Timeout {timeout}");
        let memory = as_u64(&function["Properties"]["MemorySize"], name);
        assert!(
            (128..=10_240).contains(&memory),
            "{name}: MemorySize {memory}"
        );
    }
    // Every function crate is deployed: a crate without a block would never run.
    let deployed: BTreeSet<_> = functions
        .iter()
        .map(|(_, f)| {
            f["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for entry in std::fs::read_dir(root().join("functions")).unwrap() {
        let crate_name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            deployed.contains(&crate_name),
            "functions/{crate_name} has no function in template.yaml"
        );
    }
}

#[test]
fn queues_event_sources_and_dead_letters_keep_the_retry_rules() {
    let template = Template::load();
    for (name, function) in template.of_type("AWS::Serverless::Function") {
        let timeout = as_u64(&function["Properties"]["Timeout"], name);
        let reserved = as_u64(
            &function["Properties"]["ReservedConcurrentExecutions"],
            &format!("{name}: ReservedConcurrentExecutions"),
        );
        let events = sqs_events(function);
        assert!(!events.is_empty(), "{name}: no SQS event source");
        for (event, props) in events {
            let what = format!("{name}.{event}");
            assert!(
                strings(&props["FunctionResponseTypes"])
                    .contains(&"ReportBatchItemFailures".into()),
                "{what}: ReportBatchItemFailures"
            );
            let batch = as_u64(&props["BatchSize"], &what);
            assert!((1..=10_000).contains(&batch), "{what}: BatchSize");
            as_u64(&props["MaximumBatchingWindowInSeconds"], &what);
            let max = as_u64(&props["ScalingConfig"]["MaximumConcurrency"], &what);
            assert!(
                (2..=reserved).contains(&max),
                "{what}: MaximumConcurrency {max} must be 2 to the reserved {reserved}"
            );

            let queue_name = get_att(&props["Queue"], "Arn").unwrap_or_else(|| {
                panic!("{what}: Queue must be !GetAtt <queue>.Arn of this stack")
            });
            let queue = template.resource(queue_name);
            assert_eq!(queue["Type"], "AWS::SQS::Queue", "{queue_name}");
            let qp = &queue["Properties"];
            let visibility = as_u64(&qp["VisibilityTimeout"], queue_name);
            assert!(
                visibility >= 6 * timeout,
                "{queue_name}: visibility {visibility} s < 6 x {name}'s timeout {timeout} s"
            );
            let redrive = &qp["RedrivePolicy"];
            let receives = as_u64(&redrive["maxReceiveCount"], queue_name);
            assert!(
                (5..=10).contains(&receives),
                "{queue_name}: maxReceiveCount {receives}"
            );
            let dlq_name = get_att(&redrive["deadLetterTargetArn"], "Arn")
                .unwrap_or_else(|| panic!("{queue_name}: deadLetterTargetArn"));
            let dlq = &template.resource(dlq_name)["Properties"];
            let retention = qp["MessageRetentionPeriod"]
                .as_u64()
                .unwrap_or(SQS_DEFAULT_RETENTION);
            let dlq_retention = dlq["MessageRetentionPeriod"]
                .as_u64()
                .unwrap_or(SQS_DEFAULT_RETENTION);
            assert!(
                dlq_retention > retention,
                "{dlq_name}: retention {dlq_retention} s must outlast {queue_name}'s {retention} s"
            );

            // The function's DEAD_LETTER_QUEUE_URL is this queue's redrive target.
            let env = template.environment(function);
            assert_eq!(
                env.get("WORK_QUEUE_URL").and_then(target),
                Some(queue_name),
                "{name}"
            );
            assert_eq!(
                env.get("DEAD_LETTER_QUEUE_URL").and_then(target),
                Some(dlq_name),
                "{name}"
            );

            let queue_alarms = alarm_metrics(&alarms_on(&template, "QueueName", queue_name));
            assert!(
                queue_alarms.contains("ApproximateAgeOfOldestMessage"),
                "{queue_name}: no alarm on the age of the oldest message"
            );
        }
        let function_alarms = alarm_metrics(&alarms_on(&template, "FunctionName", name));
        for metric in ["Errors", "Throttles"] {
            assert!(
                function_alarms.contains(metric),
                "{name}: no {metric} alarm"
            );
        }
    }
}

#[test]
fn every_queue_is_encrypted_and_every_dead_letter_queue_has_an_alarm() {
    let template = Template::load();
    let mut dead_letter_queues = BTreeSet::new();
    for (_, queue) in template.of_type("AWS::SQS::Queue") {
        if let Some(dlq) = get_att(
            &queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"],
            "Arn",
        ) {
            dead_letter_queues.insert(dlq.to_owned());
        }
    }
    for (_, schedule) in template.of_type("AWS::Scheduler::Schedule") {
        if let Some(dlq) = get_att(
            &schedule["Properties"]["Target"]["DeadLetterConfig"]["Arn"],
            "Arn",
        ) {
            dead_letter_queues.insert(dlq.to_owned());
        }
    }
    for (_, function) in template.of_type("AWS::Serverless::Function") {
        if let Some(dlq) = get_att(
            &function["Properties"]["DeadLetterQueue"]["TargetArn"],
            "Arn",
        ) {
            dead_letter_queues.insert(dlq.to_owned());
        }
    }
    assert!(!dead_letter_queues.is_empty());
    for (name, queue) in template.of_type("AWS::SQS::Queue") {
        let p = &queue["Properties"];
        assert!(
            p["SqsManagedSseEnabled"] == true || !p["KmsMasterKeyId"].is_null(),
            "{name}: not encrypted"
        );
    }
    for dlq in &dead_letter_queues {
        let alarms = alarms_on(&template, "QueueName", dlq);
        assert!(
            alarms.iter().any(|a| {
                a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
                    && !a["Properties"]["AlarmActions"].is_null()
            }),
            "{dlq}: no depth alarm with an action"
        );
    }
}

#[test]
fn every_schedule_retries_dead_letters_and_sends_a_plan_the_function_knows() {
    let template = Template::load();
    let schedules: Vec<_> = template.of_type("AWS::Scheduler::Schedule").collect();
    assert!(!schedules.is_empty());
    for (name, schedule) in schedules {
        let t = &schedule["Properties"]["Target"];
        assert!(
            as_u64(&t["RetryPolicy"]["MaximumRetryAttempts"], name) >= 1,
            "{name}: retries"
        );
        let dlq = get_att(&t["DeadLetterConfig"]["Arn"], "Arn")
            .unwrap_or_else(|| panic!("{name}: no dead-letter queue"));
        assert_eq!(template.resource(dlq)["Type"], "AWS::SQS::Queue");
        let function_name = get_att(&t["Arn"], "Arn").unwrap_or_else(|| panic!("{name}: target"));
        let function = template.resource(function_name);
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        // The input, with the template's parameters filled in, is the JSON of a sample event.
        let input = t["Input"]["Fn::Sub"]
            .as_str()
            .or_else(|| t["Input"].as_str())
            .unwrap_or_else(|| panic!("{name}: Input"));
        let input = input.replace("${Watchlist}", "main");
        let input: Value =
            serde_json::from_str(&input).unwrap_or_else(|e| panic!("{name}: Input: {e}"));
        // A harness command (the audit verify) or the function's own plan.
        let sample_path = if input.get("harness").is_some() {
            root().join("events").join("audit-verify.json")
        } else {
            root()
                .join("events")
                .join(binary)
                .join("1-schedule-plan.json")
        };
        let sample: Value =
            serde_json::from_str(&std::fs::read_to_string(&sample_path).unwrap()).unwrap();
        let keys = |v: &Value| {
            v.as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(
            keys(&input),
            keys(&sample),
            "{name}: input fields differ from {}",
            sample_path.display()
        );
        assert_eq!(input["step"], sample["step"], "{name}");
        assert_eq!(input["harness"], sample["harness"], "{name}");
        assert_eq!(
            input["scheduledTime"], "<aws.scheduler.scheduled-time>",
            "{name}: each run must have its own idempotency key"
        );
        // The schedule's role may invoke exactly its function.
        let role = template.resource(get_att(&t["RoleArn"], "Arn").unwrap());
        let invokes: Vec<_> = role_statements(role)
            .into_iter()
            .filter(|s| actions(s).contains(&"lambda:InvokeFunction".into()))
            .flat_map(statement_resources)
            .collect();
        assert_eq!(invokes, vec![function_name.to_owned()], "{name}");
    }
}

/// Each function's audit chain is walked daily and a break pages: the schedule sends the
/// harness's verify command and an alarm with an action watches the metric it emits.
#[test]
fn every_audit_chain_is_verified_on_a_schedule_and_a_break_raises_an_alarm() {
    let template = Template::load();
    let functions: Vec<_> = template.of_type("AWS::Serverless::Function").collect();
    assert!(functions.len() >= 4);
    for (name, function) in functions {
        let service = &template.environment(function)["POWERTOOLS_SERVICE_NAME"];
        let verifies = template
            .of_type("AWS::Scheduler::Schedule")
            .filter(|(_, s)| {
                let t = &s["Properties"]["Target"];
                get_att(&t["Arn"], "Arn") == Some(name)
                    && t["Input"]
                        .as_str()
                        .and_then(|i| serde_json::from_str::<Value>(i).ok())
                        .is_some_and(|i| i["harness"] == "verify-audit")
            })
            .count();
        assert_eq!(verifies, 1, "{name}: one audit-verify schedule");
        let alarmed = template.of_type("AWS::CloudWatch::Alarm").any(|(_, a)| {
            let p = &a["Properties"];
            let dims = p["Dimensions"].as_array().cloned().unwrap_or_default();
            let dim = |key: &str| {
                dims.iter()
                    .any(|d| d["Name"] == key && &d["Value"] == service)
            };
            p["MetricName"] == backbone::audit::CHAIN_BREAKS_METRIC
                && p["Namespace"] == "MusicTasks"
                && dim("service")
                && dim("task")
                && p["Threshold"] == 0
                && p["ComparisonOperator"] == "GreaterThanThreshold"
                && !p["AlarmActions"].is_null()
        });
        assert!(
            alarmed,
            "{name}: no alarm on {} for {service}",
            backbone::audit::CHAIN_BREAKS_METRIC
        );
    }
}

/// The rules on the bus that match `source` and `detail_type`.
fn rules_for<'a>(
    template: &'a Template,
    source: &str,
    detail_type: &str,
) -> Vec<(&'a str, &'a Value)> {
    template
        .of_type("AWS::Events::Rule")
        .filter(|(_, r)| {
            let pattern = &r["Properties"]["EventPattern"];
            strings(&pattern["source"]).iter().any(|s| s == source)
                && strings(&pattern["detail-type"])
                    .iter()
                    .any(|d| d == detail_type)
        })
        .collect()
}

/// Whether a resource policy of `policy_type` on `resource` lets EventBridge in from `rule`.
fn lets_rule_in(template: &Template, policy_type: &str, resource: &str, rule: &str) -> bool {
    let list = if policy_type == "AWS::SNS::TopicPolicy" {
        "Topics"
    } else {
        "Queues"
    };
    template
        .of_type(policy_type)
        .filter(|(_, p)| {
            p["Properties"][list]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| target(t) == Some(resource))
        })
        .flat_map(|(_, p)| {
            p["Properties"]["PolicyDocument"]["Statement"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .any(|s| {
            s["Effect"] == "Allow"
                && strings(&s["Principal"]["Service"]).contains(&"events.amazonaws.com".into())
                && match &s["Condition"]["ArnEquals"]["aws:SourceArn"] {
                    Value::Array(arns) => arns.iter().any(|a| get_att(a, "Arn") == Some(rule)),
                    arn => get_att(arn, "Arn") == Some(rule),
                }
        })
}

#[test]
fn alerts_and_anomalies_reach_the_alerts_topic_with_retries_and_dead_letters() {
    let template = Template::load();
    for (source, detail_type) in [
        (
            artist_monitoring::EVENT_SOURCE,
            artist_monitoring::ALERT_DETAIL_TYPE,
        ),
        (
            streaming_metrics::EVENT_SOURCE,
            streaming_metrics::ANOMALY_DETAIL_TYPE,
        ),
    ] {
        let rules = rules_for(&template, source, detail_type);
        assert_eq!(rules.len(), 1, "{source} {detail_type}: one rule");
        let (name, rule) = rules[0];
        assert_eq!(
            target(&rule["Properties"]["EventBusName"]),
            Some("EventBus"),
            "{name}"
        );
        assert_eq!(rule["Properties"]["State"], "ENABLED", "{name}");
        let targets = rule["Properties"]["Targets"].as_array().unwrap();
        let topic = targets
            .iter()
            .find(|t| target(&t["Arn"]) == Some("AlertsTopic"))
            .unwrap_or_else(|| panic!("{name}: no target on the alerts topic"));
        assert!(
            as_u64(&topic["RetryPolicy"]["MaximumRetryAttempts"], name) >= 1,
            "{name}: retries"
        );
        let dlq = get_att(&topic["DeadLetterConfig"]["Arn"], "Arn")
            .unwrap_or_else(|| panic!("{name}: no dead-letter queue"));
        assert!(
            lets_rule_in(&template, "AWS::SNS::TopicPolicy", "AlertsTopic", name),
            "{name}: the alerts topic's policy does not let the rule publish"
        );
        assert!(
            lets_rule_in(&template, "AWS::SQS::QueuePolicy", dlq, name),
            "{name}: {dlq}'s policy does not let the rule dead-letter"
        );
    }
}

/// Every JSON file under `dir`, recursively.
fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// The S3 locations a sample SQS batch names: (bucket, key or `None` for a test event).
fn s3_locations(batch: &Value) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for record in batch["Records"].as_array().into_iter().flatten() {
        let Some(body) = record["body"].as_str() else {
            continue;
        };
        if let Ok(body) = serde_json::from_str::<Value>(body) {
            if body["Event"] == "s3:TestEvent" {
                out.push((body["Bucket"].as_str().unwrap().to_owned(), None));
            }
            for r in body["Records"].as_array().into_iter().flatten() {
                let object = &r["s3"];
                out.push((
                    object["bucket"]["name"].as_str().unwrap().to_owned(),
                    object["object"]["key"].as_str().map(str::to_owned),
                ));
            }
        }
        // Direct requests name an object as `s3://bucket/key`.
        let mut rest = body;
        while let Some(at) = rest.find("s3://") {
            let url = &rest[at + 5..];
            let end = url.find(['"', '\\']).unwrap_or(url.len());
            let (bucket, key) = url[..end].split_once('/').unwrap_or((&url[..end], ""));
            out.push((bucket.to_owned(), Some(key.to_owned())));
            rest = &url[end..];
        }
    }
    out
}

#[test]
fn sample_upload_events_name_the_uploads_bucket_and_their_functions_prefix() {
    let template = Template::load();
    let bucket = template.resource("UploadsBucket");
    // The stage and account of the samples (the SQS ARNs' account).
    let name = bucket["Properties"]["BucketName"]["Fn::Sub"]
        .as_str()
        .unwrap()
        .replace("${Stage}", "dev")
        .replace("${AWS::AccountId}", "123456789012");
    let notifications = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
        .as_array()
        .unwrap();
    assert!(!notifications.is_empty());
    for n in notifications {
        let queue = get_att(&n["Queue"], "Arn").unwrap();
        let prefix = n["Filter"]["S3Key"]["Rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["Name"] == "prefix")
            .and_then(|r| r["Value"].as_str())
            .unwrap_or_else(|| panic!("{queue}: the notification has no prefix"));
        let (function, _) = template
            .of_type("AWS::Serverless::Function")
            .find(|(_, f)| {
                sqs_events(f)
                    .iter()
                    .any(|(_, e)| get_att(&e["Queue"], "Arn") == Some(queue))
            })
            .unwrap_or_else(|| panic!("no function reads {queue}"));
        let binary = template.resource(function)["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        let mut files = Vec::new();
        json_files(&root().join("events").join(binary), &mut files);
        let mut notified = 0;
        for file in files {
            let batch: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for (b, key) in s3_locations(&batch) {
                assert_eq!(b, name, "{}: not the uploads bucket", file.display());
                if let Some(key) = key {
                    assert!(
                        key.starts_with(prefix),
                        "{}: {key} is not under {prefix}, which notifies {binary}",
                        file.display()
                    );
                    notified += 1;
                }
            }
        }
        assert!(
            notified >= 1,
            "{binary}: no sample names an object under {prefix}"
        );
    }
}

#[test]
fn policies_name_their_actions_and_stay_inside_the_stack() {
    let template = Template::load();
    let mut statements = Vec::new();
    all_statements(&template.doc, &mut statements);
    assert!(statements.len() > 10);
    for statement in &statements {
        // A wildcard only narrows what a Deny refuses (the uploads bucket's TLS-only rule).
        if statement["Effect"] == "Deny" {
            continue;
        }
        for action in actions(statement) {
            assert!(!action.contains('*'), "wildcard action {action}");
        }
    }
    let mut resource_names: BTreeSet<_> = template.resources().keys().cloned().collect();
    // A parameter pinned to Bedrock ARNs (the model a function may invoke) counts as in the
    // stack: it cannot name anything but a Bedrock model or inference profile.
    for (name, parameter) in template.doc["Parameters"].as_object().into_iter().flatten() {
        if parameter["AllowedPattern"]
            .as_str()
            .is_some_and(|p| p.starts_with("^arn:aws[a-z-]*:bedrock:"))
        {
            resource_names.insert(name.clone());
        }
    }
    let mut roles_of_functions = BTreeSet::new();
    for (name, function) in template.of_type("AWS::Serverless::Function") {
        let role_name = get_att(&function["Properties"]["Role"], "Arn")
            .unwrap_or_else(|| panic!("{name}: Role must be its own !GetAtt <role>.Arn"));
        assert!(
            roles_of_functions.insert(role_name.to_owned()),
            "{role_name} is shared by two functions"
        );
        let role = template.resource(role_name);
        assert_eq!(role["Type"], "AWS::IAM::Role");
        for statement in role_statements(role) {
            let scoped = statement_resources(statement);
            assert!(
                !scoped.is_empty() && scoped.iter().all(|r| resource_names.contains(r)),
                "{role_name}: statement {statement} is not scoped to this stack's resources"
            );
            if scoped.contains(&"AuditTable".to_owned()) {
                for action in actions(statement) {
                    assert!(
                        matches!(
                            action.as_str(),
                            "dynamodb:Query" | "dynamodb:PutItem" | "dynamodb:GetItem"
                        ),
                        "{role_name}: {action} on the audit table (insert-only)"
                    );
                }
            }
        }
    }
    // No role except a function's own touches the data.
    for (name, role) in template.of_type("AWS::IAM::Role") {
        if roles_of_functions.contains(name) {
            continue;
        }
        for statement in role_statements(role) {
            for action in actions(statement) {
                assert!(
                    !action.starts_with("dynamodb:") && !action.starts_with("secretsmanager:"),
                    "{name}: {action}"
                );
            }
        }
    }
}

#[test]
fn tables_and_secret_are_production_grade() {
    let template = Template::load();
    for (name, table) in template.of_type("AWS::DynamoDB::Table") {
        let p = &table["Properties"];
        assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{name}");
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{name}"
        );
        assert_eq!(p["SSESpecification"]["SSEEnabled"], true, "{name}");
    }
    for (name, secret) in template.of_type("AWS::SecretsManager::Secret") {
        let p = &secret["Properties"];
        assert!(
            p["SecretString"].is_null() && p["GenerateSecretString"].is_null(),
            "{name}: the value is never in the template"
        );
    }
    for parameter in ["Stage", "SpotifyApiTier"] {
        assert!(
            !template.doc["Parameters"][parameter].is_null(),
            "{parameter}"
        );
    }
}

/// Source text without its `#[cfg(test)]` modules.
fn production_source(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn rust_files(dir: &Path, skip: &[&str], out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, skip, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The variables the code reads: `required` (the cold start fails without them) and every
/// upper-case string literal passed to a config reader or listed for one (`known`).
struct CodeVariables {
    required: BTreeSet<String>,
    known: BTreeSet<String>,
}

/// The first upper-case string literal among the arguments of the call opened at `at`.
fn literal_after(text: &str, at: usize) -> Option<String> {
    let rest = &text[at..];
    let rest = &rest[..rest.find(')').unwrap_or(rest.len())];
    let start = rest.find('"')? + 1;
    let end = start + rest[start..].find('"')?;
    let name = &rest[start..end];
    let is_var = name.len() > 2
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    is_var.then(|| name.to_owned())
}

fn code_variables(function_crate: &str) -> CodeVariables {
    let mut files = Vec::new();
    // The local adapters and the CLI's runtime are not in the Lambda binary.
    rust_files(&root().join("shared/src"), &["local"], &mut files);
    rust_files(
        &root().join("functions").join(function_crate).join("src"),
        &[],
        &mut files,
    );
    let mut required = BTreeSet::new();
    let mut known = BTreeSet::new();
    for file in files {
        let text = production_source(&file);
        for (at, call) in text.match_indices("required(") {
            required.extend(literal_after(&text, at + call.len() - 1));
        }
        for reader in [
            "optional(",
            "parse_or(",
            "flag(",
            "seconds(",
            "base_url(",
            "required(",
            "std::env::var(",
        ] {
            for (at, call) in text.match_indices(reader) {
                if let Some(name) = literal_after(&text, at + call.len() - 1) {
                    known.insert(name);
                }
            }
        }
        // Names read in a loop: `for name in ["A", "B"] { optional(env, name) ... }`.
        for (at, _) in text.match_indices("for name in [") {
            let end = at + text[at..].find(']').unwrap();
            for part in text[at..end].split(',') {
                if let Some(name) = literal_after(part, 0) {
                    known.insert(name);
                }
            }
        }
    }
    // Read by the ADOT collector layer the template adds when OpenTelemetry is on, not by
    // the function's code.
    known.insert("OPENTELEMETRY_COLLECTOR_CONFIG_URI".to_owned());
    CodeVariables { required, known }
}

#[test]
fn every_variable_a_function_reads_is_set_and_every_resource_it_names_is_granted() {
    let template = Template::load();
    for (name, function) in template.of_type("AWS::Serverless::Function") {
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        let code = code_variables(binary);
        assert!(
            code.required.len() >= 3 && code.required.is_subset(&code.known),
            "{name}: the source scan found {:?} / {:?}",
            code.required,
            code.known
        );
        let env = template.environment(function);
        for variable in &code.required {
            assert!(
                env.contains_key(variable),
                "{name}: the code requires {variable}, the template does not set it"
            );
        }
        for variable in env.keys() {
            assert!(
                code.known.contains(variable),
                "{name}: the template sets {variable}, which no code of {binary} reads"
            );
        }
        // A variable naming a resource of the stack: the function's role grants on it.
        let role = template.resource(get_att(&function["Properties"]["Role"], "Arn").unwrap());
        let granted: BTreeSet<String> = role_statements(role)
            .into_iter()
            .flat_map(statement_resources)
            .collect();
        for (variable, value) in &env {
            let Some(resource) = target(value) else {
                continue;
            };
            if template.resources().contains_key(resource) {
                assert!(
                    granted.contains(resource),
                    "{name}: {variable} names {resource}, which its role grants nothing on"
                );
            }
        }
        // And the log group it writes to.
        let log_group = target(&function["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{name}: LoggingConfig.LogGroup"));
        assert!(granted.contains(log_group), "{name}: logs");
    }
}

#[test]
fn the_yaml_reader_turns_short_forms_into_long_forms() {
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        "a: !Ref Thing\nb: !GetAtt Queue.Arn\nc: !Sub 'x-${Stage}'\nd: !If [Cond, 1, 2]\n",
    )
    .unwrap();
    assert_eq!(
        to_json(yaml),
        json!({
            "a": {"Ref": "Thing"},
            "b": {"Fn::GetAtt": ["Queue", "Arn"]},
            "c": {"Fn::Sub": "x-${Stage}"},
            "d": {"Fn::If": ["Cond", 1, 2]},
        })
    );
}
