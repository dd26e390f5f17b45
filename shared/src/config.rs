//! Configuration from environment variables, failing fast at cold start.
//!
//! Every reader names the variable it could not use, so a deployment with a typo stops on its
//! first invocation with a message an operator can act on, instead of running with an empty
//! value. Variables follow Powertools for AWS Lambda where it has a name for the concept.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

/// A variable that is missing or cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or is empty).
    #[error("environment variable {name} is required but not set")]
    Missing {
        /// The variable.
        name: &'static str,
    },
    /// A variable is set to a value that cannot be used.
    #[error("environment variable {name} is malformed: {reason}")]
    Malformed {
        /// The variable.
        name: &'static str,
        /// Why the value was refused. Never the value itself: it may be a secret.
        reason: String,
    },
}

/// Where variables come from: the process environment in production, a map in tests.
pub trait EnvSource {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;

    /// Every variable with its value, for the readers that look for names by pattern (the
    /// secret-named variables an error report must not contain). Empty unless a source lists.
    fn vars(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }

    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl EnvSource for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| (*v).to_owned())
    }

    fn vars(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
}

/// Reads `name`; an unset or blank value counts as missing.
pub fn required(env: &dyn EnvSource, name: &'static str) -> Result<String, ConfigError> {
    optional(env, name).ok_or(ConfigError::Missing { name })
}

/// Reads `name` if set and not blank.
pub fn optional(env: &dyn EnvSource, name: &'static str) -> Option<String> {
    env.var(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Parses `name` if set, else returns `default`; a malformed value is an error, never the default.
pub fn parse_or<T>(env: &dyn EnvSource, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match optional(env, name) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|err: T::Err| ConfigError::Malformed {
            name,
            reason: err.to_string(),
        }),
    }
}

/// Parses a boolean flag (`true`/`false`, `1`/`0`, `yes`/`no`, any case).
pub fn flag(env: &dyn EnvSource, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match optional(env, name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no") => Ok(false),
        Some(_) => Err(ConfigError::Malformed {
            name,
            reason: "expected true or false".into(),
        }),
    }
}

/// Reads a whole number of seconds within `range`.
pub fn seconds(
    env: &dyn EnvSource,
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    let secs = parse_or(env, name, default)?;
    if !range.contains(&secs) {
        return Err(ConfigError::Malformed {
            name,
            reason: format!(
                "expected {} to {} seconds, got {secs}",
                range.start(),
                range.end()
            ),
        });
    }
    Ok(Duration::from_secs(secs))
}

/// Settings the harness needs in every function.
#[derive(Debug, Clone, PartialEq)]
pub struct HarnessConfig {
    /// `POWERTOOLS_SERVICE_NAME`: the service dimension of metrics and logs (default: the task name).
    pub service: String,
    /// `POWERTOOLS_METRICS_NAMESPACE`: the CloudWatch namespace of EMF metrics.
    pub metrics_namespace: String,
    /// `POWERTOOLS_IDEMPOTENCY_DISABLED`: skip idempotency (only for tests and control runs).
    pub idempotency_disabled: bool,
    /// `IDEMPOTENCY_EXPIRES_AFTER_SECONDS`: how long a completed result is replayed (default 3600).
    pub idempotency_ttl: Duration,
    /// `BATCH_CONCURRENCY`: records of a standard-queue batch processed at once (default 4).
    pub batch_concurrency: usize,
    /// `AWS_LAMBDA_FUNCTION_VERSION` or the crate version: the version stamped on logs and audit.
    pub version: String,
    /// `SENTRY_DSN` (and `SENTRY_ENVIRONMENT`): where errors and panics are reported; `None`
    /// reports nothing.
    pub sentry: Option<crate::telemetry::SentryConfig>,
}

/// Default CloudWatch namespace of the metrics.
pub const DEFAULT_METRICS_NAMESPACE: &str = "MusicTasks";

impl HarnessConfig {
    /// Reads the harness settings for `task`, with `crate_version` as the fallback version.
    pub fn from_env(
        env: &dyn EnvSource,
        task: &str,
        crate_version: &str,
    ) -> Result<Self, ConfigError> {
        let batch_concurrency: usize = parse_or(env, "BATCH_CONCURRENCY", 4)?;
        if !(1..=10).contains(&batch_concurrency) {
            return Err(ConfigError::Malformed {
                name: "BATCH_CONCURRENCY",
                reason: format!("expected 1 to 10, got {batch_concurrency}"),
            });
        }
        Ok(Self {
            service: optional(env, "POWERTOOLS_SERVICE_NAME").unwrap_or_else(|| task.to_owned()),
            metrics_namespace: optional(env, "POWERTOOLS_METRICS_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_owned()),
            idempotency_disabled: flag(env, "POWERTOOLS_IDEMPOTENCY_DISABLED", false)?,
            idempotency_ttl: seconds(
                env,
                "IDEMPOTENCY_EXPIRES_AFTER_SECONDS",
                3600,
                1..=2_592_000,
            )?,
            batch_concurrency,
            version: optional(env, "AWS_LAMBDA_FUNCTION_VERSION")
                .filter(|v| v != "$LATEST")
                .unwrap_or_else(|| crate_version.to_owned()),
            sentry: crate::telemetry::SentryConfig::from_env(env)?,
        })
    }

    /// Defaults for tests and the local runner.
    pub fn for_task(task: &str) -> Self {
        Self::from_env(&HashMap::<String, String>::new(), task, "0.0.0-local").unwrap_or_else(
            |_| unreachable!("an empty environment uses the defaults, which are valid"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_malformed_name_the_variable() {
        let env: HashMap<&str, &str> = [
            ("BATCH_CONCURRENCY", "eleven"),
            ("BLANK", "   "),
            ("IDEMPOTENCY_EXPIRES_AFTER_SECONDS", "0"),
        ]
        .into();
        assert_eq!(
            required(&env, "BLANK").unwrap_err().to_string(),
            "environment variable BLANK is required but not set"
        );
        let err = HarnessConfig::from_env(&env, "t", "1").unwrap_err();
        assert!(
            err.to_string().contains("BATCH_CONCURRENCY is malformed"),
            "{err}"
        );

        let env: HashMap<&str, &str> = [("IDEMPOTENCY_EXPIRES_AFTER_SECONDS", "0")].into();
        let err = HarnessConfig::from_env(&env, "t", "1").unwrap_err();
        assert!(
            err.to_string()
                .contains("IDEMPOTENCY_EXPIRES_AFTER_SECONDS"),
            "{err}"
        );

        let env: HashMap<&str, &str> = [("POWERTOOLS_IDEMPOTENCY_DISABLED", "maybe")].into();
        assert!(matches!(
            HarnessConfig::from_env(&env, "t", "1"),
            Err(ConfigError::Malformed {
                name: "POWERTOOLS_IDEMPOTENCY_DISABLED",
                ..
            })
        ));
    }

    #[test]
    fn defaults_and_overrides() {
        let config = HarnessConfig::for_task("artist-monitoring");
        assert_eq!(config.service, "artist-monitoring");
        assert_eq!(config.idempotency_ttl, Duration::from_secs(3600));
        let env: HashMap<&str, &str> = [
            ("POWERTOOLS_SERVICE_NAME", "music"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "7"),
            ("POWERTOOLS_IDEMPOTENCY_DISABLED", "TRUE"),
        ]
        .into();
        let config = HarnessConfig::from_env(&env, "t", "1.0.0").unwrap();
        assert_eq!(
            (config.service.as_str(), config.version.as_str()),
            ("music", "7")
        );
        assert!(config.idempotency_disabled);
    }
}
