//! The error taxonomy every task and adapter maps into.
//!
//! The harness only needs to know what to do with a failure, not what it was: drop it to the
//! dead-letter queue (invalid, permanent), let SQS redeliver it (transient), or hand it back
//! with a visibility delay (rate-limited). Task error types implement [`Classify`] once; the
//! harness decides with [`ErrorClass`] in one place.

use std::time::Duration;

use crate::validate::ValidationError;

/// What the caller must do with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The input can never succeed: do not retry, send it to the DLQ with the reason.
    Invalid,
    /// A passing fault (timeout, throttling, 5xx): retry with backoff.
    Transient,
    /// The downstream asked us to wait this long before trying again.
    RateLimited(Duration),
    /// The input was valid but cannot be processed (revoked credentials, deleted object):
    /// do not retry, send it to the DLQ and alert.
    Permanent,
}

impl ErrorClass {
    /// Short, stable label used in logs, metrics dimensions and audit records.
    pub fn label(&self) -> &'static str {
        match self {
            ErrorClass::Invalid => "invalid",
            ErrorClass::Transient => "transient",
            ErrorClass::RateLimited(_) => "rate_limited",
            ErrorClass::Permanent => "permanent",
        }
    }

    /// Whether the message should be redelivered by the queue.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ErrorClass::Transient | ErrorClass::RateLimited(_))
    }
}

/// Implemented by every error a task can return, so the harness can route it.
pub trait Classify {
    /// The class that decides retry, delay or dead-letter.
    fn class(&self) -> ErrorClass;
}

/// A boxed error source that keeps the chain for logs and Sentry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The generic task error: a convenient target for tasks that have no richer enum of their own,
/// and the shape port adapters return.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The input failed validation.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A passing failure of `operation`; retrying may succeed.
    #[error("{operation} failed (transient)")]
    Transient {
        /// What was being attempted, such as `dynamodb.PutItem`.
        operation: String,
        /// The underlying cause.
        #[source]
        source: BoxError,
    },
    /// `operation` was refused with a request to wait `retry_after`.
    #[error("{operation} was rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// What was being attempted.
        operation: String,
        /// How long the downstream asked us to wait.
        retry_after: Duration,
    },
    /// A port adapter failed; its own class decides.
    #[error(transparent)]
    Port(#[from] PortError),
    /// `operation` failed in a way no retry can fix.
    #[error("{operation} failed (permanent)")]
    Permanent {
        /// What was being attempted.
        operation: String,
        /// The underlying cause.
        #[source]
        source: BoxError,
    },
}

impl TaskError {
    /// A transient failure of `operation` caused by `source`.
    pub fn transient(operation: impl Into<String>, source: impl Into<BoxError>) -> Self {
        TaskError::Transient {
            operation: operation.into(),
            source: source.into(),
        }
    }

    /// A permanent failure of `operation` caused by `source`.
    pub fn permanent(operation: impl Into<String>, source: impl Into<BoxError>) -> Self {
        TaskError::Permanent {
            operation: operation.into(),
            source: source.into(),
        }
    }
}

impl Classify for TaskError {
    fn class(&self) -> ErrorClass {
        match self {
            TaskError::Invalid(_) => ErrorClass::Invalid,
            TaskError::Transient { .. } => ErrorClass::Transient,
            TaskError::RateLimited { retry_after, .. } => ErrorClass::RateLimited(*retry_after),
            TaskError::Port(err) => err.class(),
            TaskError::Permanent { .. } => ErrorClass::Permanent,
        }
    }
}

/// The error every port adapter returns: it names the operation and keeps the cause.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A write's condition did not hold (optimistic concurrency, already exists).
    #[error("{operation}: condition failed")]
    Conflict {
        /// The operation whose condition failed.
        operation: &'static str,
    },
    /// The backend is throttling or briefly unavailable; retrying may succeed.
    #[error("{operation} failed (transient)")]
    Transient {
        /// The operation that failed.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// The backend refused in a way retrying cannot fix (missing table, bad credentials,
    /// corrupt stored data).
    #[error("{operation} failed (permanent)")]
    Permanent {
        /// The operation that failed.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl PortError {
    /// A transient failure of `operation`.
    pub fn transient(operation: &'static str, source: impl Into<BoxError>) -> Self {
        PortError::Transient {
            operation,
            source: source.into(),
        }
    }

    /// A permanent failure of `operation`.
    pub fn permanent(operation: &'static str, source: impl Into<BoxError>) -> Self {
        PortError::Permanent {
            operation,
            source: source.into(),
        }
    }
}

impl Classify for PortError {
    fn class(&self) -> ErrorClass {
        match self {
            // A conflict the caller did not handle is a race: retrying re-reads the state.
            PortError::Conflict { .. } | PortError::Transient { .. } => ErrorClass::Transient,
            PortError::Permanent { .. } => ErrorClass::Permanent,
        }
    }
}

/// Renders an error and its whole source chain on one line, for logs and DLQ reasons.
///
/// A cause whose text the line already ends with is not repeated: many errors show their
/// source in their own message as well as returning it from `source()`.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("playlist p1: {source}")]
        Shown {
            #[source]
            source: std::io::Error,
        },
        #[error("playlist p1")]
        Hidden {
            #[source]
            source: std::io::Error,
        },
    }

    #[test]
    fn chain_names_every_cause_once() {
        let shown = Outer::Shown {
            source: std::io::Error::other("3 per artist need 7 artists"),
        };
        assert_eq!(chain(&shown), "playlist p1: 3 per artist need 7 artists");
        let hidden = Outer::Hidden {
            source: std::io::Error::other("3 per artist need 7 artists"),
        };
        assert_eq!(chain(&hidden), "playlist p1: 3 per artist need 7 artists");
    }

    #[test]
    fn port_errors_map_to_task_error_classes() {
        let conflict: TaskError = PortError::Conflict { operation: "put" }.into();
        assert_eq!(conflict.class(), ErrorClass::Transient);
        let permanent: TaskError =
            PortError::permanent("get", std::io::Error::other("no such table")).into();
        assert_eq!(permanent.class(), ErrorClass::Permanent);
        assert_eq!(chain(&permanent), "get failed (permanent): no such table");
    }

    #[test]
    fn only_transient_and_rate_limited_are_retryable() {
        assert!(ErrorClass::Transient.is_retryable());
        assert!(ErrorClass::RateLimited(Duration::from_secs(3)).is_retryable());
        assert!(!ErrorClass::Invalid.is_retryable());
        assert!(!ErrorClass::Permanent.is_retryable());
    }
}
