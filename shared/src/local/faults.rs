//! Fault injection around the ports, for reliability tests and soak runs.
//!
//! [`Faulty`] wraps any port adapter and makes a seeded, reproducible share of its calls fail
//! the way the real backend fails: a throttling error, a timeout (a delay, then an error), or a
//! hang that never returns (to kill an invocation at a chosen step). Faults are injected before
//! the inner call, or, for "lost acknowledgement" faults, after it: the write happened but the
//! caller is told it failed, which is what makes retries dangerous.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;

use crate::error::PortError;
use crate::ports::{
    AppendOutcome, AuditRecord, AuditStore, BusEvent, ChainHead, DeadLetter, EventPublisher,
    IdempotencyRecord, IdempotencyStore, Item, ItemKey, OutgoingMessage, Page, PutCondition,
    PutInProgressError, Query, Queues, Secrets, Store,
};
use crate::ports::{
    Generation, TextError, TextGenerator, TextRequest, WebApi, WebRequest, WebResponse,
};

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Fails at once with a transient (throttling) error; nothing was done.
    Throttle,
    /// Waits, then fails with a transient error; nothing was done.
    Timeout,
    /// Does the call, then fails: the effect happened but the caller does not know it.
    LostAck,
}

/// How often and how faults strike; shared by every wrapper of one test so counts add up.
#[derive(Debug)]
pub struct FaultPlan {
    rate: f64,
    timeout: Duration,
    rng: Mutex<StdRng>,
    injected: Mutex<BTreeMap<(String, Fault), u64>>,
    hang: Mutex<Option<&'static str>>,
    enabled: AtomicBool,
    lost_acks: AtomicBool,
}

impl FaultPlan {
    /// Faults on `rate` (0 to 1) of calls, chosen by a generator seeded with `seed`.
    pub fn new(rate: f64, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            rate: rate.clamp(0.0, 1.0),
            timeout: Duration::from_millis(5),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            injected: Mutex::new(BTreeMap::new()),
            hang: Mutex::new(None),
            enabled: AtomicBool::new(true),
            lost_acks: AtomicBool::new(true),
        })
    }

    /// Makes the next call of `operation` never return (the invocation is then dropped by
    /// the test: a kill at exactly that step).
    pub fn hang_next(&self, operation: &'static str) {
        *self.hang.lock().unwrap_or_else(|p| p.into_inner()) = Some(operation);
    }

    /// Turns injection on or off (off to let a queue drain cleanly at the end of a test).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Allows or forbids [`Fault::LostAck`] (forbid it on a store whose writes are not
    /// idempotent by themselves, such as counters: no harness can undo a lost `ADD`).
    pub fn set_lost_acks(&self, allowed: bool) {
        self.lost_acks.store(allowed, Ordering::SeqCst);
    }

    /// Faults injected so far, by operation and kind.
    pub fn injected(&self) -> BTreeMap<(String, Fault), u64> {
        self.injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Total faults injected so far.
    pub fn total(&self) -> u64 {
        self.injected().values().sum()
    }

    fn draw(&self, operation: &'static str, allow_lost_ack: bool) -> Option<Fault> {
        if !self.enabled.load(Ordering::SeqCst) {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        if rng.random::<f64>() >= self.rate {
            return None;
        }
        let kinds: &[Fault] = if allow_lost_ack && self.lost_acks.load(Ordering::SeqCst) {
            &[Fault::Throttle, Fault::Timeout, Fault::LostAck]
        } else {
            &[Fault::Throttle, Fault::Timeout]
        };
        let fault = kinds[rng.random_range(0..kinds.len())];
        *self
            .injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((operation.to_owned(), fault))
            .or_insert(0) += 1;
        Some(fault)
    }

    async fn before(
        &self,
        operation: &'static str,
        allow_lost_ack: bool,
    ) -> Result<Option<Fault>, PortError> {
        let hang = {
            let mut hang = self.hang.lock().unwrap_or_else(|p| p.into_inner());
            if *hang == Some(operation) {
                hang.take()
            } else {
                None
            }
        };
        if hang.is_some() {
            std::future::pending::<()>().await;
        }
        match self.draw(operation, allow_lost_ack) {
            None => Ok(None),
            Some(Fault::Throttle) => Err(injected(operation, "throttled")),
            Some(Fault::Timeout) => {
                tokio::time::sleep(self.timeout).await;
                Err(injected(operation, "timed out"))
            }
            Some(Fault::LostAck) => Ok(Some(Fault::LostAck)),
        }
    }
}

fn injected(operation: &'static str, what: &str) -> PortError {
    PortError::transient(
        operation,
        std::io::Error::other(format!("injected fault: {what}")),
    )
}

/// A port adapter with faults injected by a [`FaultPlan`].
pub struct Faulty<P: ?Sized> {
    inner: Arc<P>,
    plan: Arc<FaultPlan>,
}

impl<P: ?Sized> Faulty<P> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<P>, plan: Arc<FaultPlan>) -> Self {
        Self { inner, plan }
    }

    /// Runs `call` under the plan: a fault before it, or after it for a lost acknowledgement.
    async fn guard<T, F>(
        &self,
        operation: &'static str,
        lost_ack: bool,
        call: F,
    ) -> Result<T, PortError>
    where
        F: std::future::Future<Output = Result<T, PortError>>,
    {
        let fault = self.plan.before(operation, lost_ack).await?;
        let result = call.await?;
        match fault {
            Some(Fault::LostAck) => {
                Err(injected(operation, "acknowledgement lost after the write"))
            }
            _ => Ok(result),
        }
    }
}

#[async_trait]
impl<P: Store + ?Sized> Store for Faulty<P> {
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, PortError> {
        self.guard("store.get", false, self.inner.get(key)).await
    }

    async fn put(
        &self,
        key: &ItemKey,
        data: &serde_json::Value,
        condition: PutCondition,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<u64, PortError> {
        self.guard(
            "store.put",
            true,
            self.inner.put(key, data, condition, expires_at),
        )
        .await
    }

    async fn delete(&self, key: &ItemKey) -> Result<(), PortError> {
        self.guard("store.delete", true, self.inner.delete(key))
            .await
    }

    async fn query(&self, query: &Query) -> Result<Page, PortError> {
        self.guard("store.query", false, self.inner.query(query))
            .await
    }

    async fn add(
        &self,
        key: &ItemKey,
        deltas: &[(&str, i64)],
    ) -> Result<BTreeMap<String, i64>, PortError> {
        // An `ADD` whose acknowledgement is lost is the classic double count on retry.
        self.guard("store.add", true, self.inner.add(key, deltas))
            .await
    }
}

#[async_trait]
impl<P: IdempotencyStore + ?Sized> IdempotencyStore for Faulty<P> {
    async fn put_in_progress(
        &self,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<(), PutInProgressError> {
        self.plan.before("idempotency.put", false).await?;
        self.inner.put_in_progress(record, now).await
    }

    async fn update(&self, record: &IdempotencyRecord) -> Result<(), PortError> {
        self.guard("idempotency.update", true, self.inner.update(record))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, PortError> {
        self.guard("idempotency.get", false, self.inner.get(key))
            .await
    }

    async fn delete(&self, key: &str, lease: &str) -> Result<(), PortError> {
        self.guard("idempotency.delete", false, self.inner.delete(key, lease))
            .await
    }
}

#[async_trait]
impl<P: AuditStore + ?Sized> AuditStore for Faulty<P> {
    async fn last(&self, stream: &str) -> Result<Option<AuditRecord>, PortError> {
        self.guard("audit.last", false, self.inner.last(stream))
            .await
    }

    async fn append(&self, record: &AuditRecord) -> Result<AppendOutcome, PortError> {
        self.guard("audit.append", true, self.inner.append(record))
            .await
    }

    async fn head(&self, stream: &str) -> Result<Option<ChainHead>, PortError> {
        self.guard("audit.head", false, self.inner.head(stream))
            .await
    }

    async fn read(
        &self,
        stream: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, PortError> {
        self.guard("audit.read", false, self.inner.read(stream, after, limit))
            .await
    }

    async fn streams(&self) -> Result<Vec<String>, PortError> {
        self.guard("audit.streams", false, self.inner.streams())
            .await
    }
}

#[async_trait]
impl<P: Queues + ?Sized> Queues for Faulty<P> {
    async fn send(&self, messages: &[OutgoingMessage]) -> Result<(), PortError> {
        self.guard("queue.send", true, self.inner.send(messages))
            .await
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), PortError> {
        self.guard("queue.dead_letter", true, self.inner.dead_letter(letter))
            .await
    }

    async fn delay(&self, receipt_handle: &str, delay: Duration) -> Result<(), PortError> {
        self.guard(
            "queue.delay",
            false,
            self.inner.delay(receipt_handle, delay),
        )
        .await
    }
}

#[async_trait]
impl<P: EventPublisher + ?Sized> EventPublisher for Faulty<P> {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), PortError> {
        self.guard("bus.publish", true, self.inner.publish(events))
            .await
    }
}

#[async_trait]
impl<P: Secrets + ?Sized> Secrets for Faulty<P> {
    async fn get(&self, name: &str) -> Result<SecretString, PortError> {
        self.guard("secrets.get", false, self.inner.get(name)).await
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), PortError> {
        self.guard("secrets.put", true, self.inner.put(name, value))
            .await
    }
}

/// The text port fails as a model endpoint does: throttled (a 429 with a `Retry-After` of
/// zero), timed out, or unavailable (a 5xx). A lost acknowledgement is a throttle here: a
/// generation has no effect of its own to lose.
#[async_trait]
impl<P: TextGenerator + ?Sized> TextGenerator for Faulty<P> {
    fn model(&self) -> String {
        self.inner.model()
    }

    fn context_tokens(&self) -> usize {
        self.inner.context_tokens()
    }

    async fn generate(&self, request: &TextRequest) -> Result<Generation, TextError> {
        let provider = self.inner.model();
        match self.plan.before("text.generate", false).await {
            Ok(_) => self.inner.generate(request).await,
            Err(err) => {
                let draw = self
                    .plan
                    .rng
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .random_range(0..3u8);
                Err(match draw {
                    0 => TextError::Throttled {
                        provider,
                        retry_after: Some(Duration::ZERO),
                    },
                    1 => TextError::Timeout {
                        provider,
                        after: self.plan.timeout,
                    },
                    _ => TextError::Unavailable {
                        provider,
                        operation: "generate".into(),
                        source: Box::new(err),
                    },
                })
            }
        }
    }
}

/// A platform API fails as one does: a transport error (throttled connection, timeout), or
/// an answer `429 Too Many Requests` with a `Retry-After` of zero (a third of the faults),
/// which the caller must honour like a real one.
#[async_trait]
impl<P: WebApi + ?Sized> WebApi for Faulty<P> {
    async fn get(&self, request: &WebRequest) -> Result<WebResponse, PortError> {
        match self.plan.before("web.get", false).await {
            Ok(_) => self.inner.get(request).await,
            Err(err) => {
                let answer_429 = self
                    .plan
                    .rng
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .random_range(0..3u8)
                    == 0;
                if answer_429 {
                    Ok(WebResponse {
                        status: 429,
                        body: br#"{"error":"rate limited (injected fault)"}"#.to_vec(),
                        retry_after: Some(Duration::ZERO),
                    })
                } else {
                    Err(err)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalDb;

    #[tokio::test]
    async fn same_seed_same_faults_and_rate_is_respected() {
        let run = |seed| async move {
            let plan = FaultPlan::new(0.3, seed);
            let store = Faulty::new(Arc::new(LocalDb::in_memory().unwrap()), plan.clone());
            let mut failures = 0;
            for i in 0..1000 {
                let key = ItemKey::new("p", format!("{i}"));
                if store
                    .put(&key, &serde_json::json!({}), PutCondition::Always, None)
                    .await
                    .is_err()
                {
                    failures += 1;
                }
            }
            (failures, plan.total())
        };
        let (a, injected) = run(7).await;
        assert_eq!(run(7).await.0, a, "reproducible");
        assert_eq!(a, injected);
        assert!((250..=350).contains(&a), "about 30 % of 1000 calls: {a}");
    }

    #[tokio::test]
    async fn lost_ack_writes_but_reports_failure() {
        let plan = FaultPlan::new(1.0, 1);
        let inner = Arc::new(LocalDb::in_memory().unwrap());
        let store = Faulty::new(inner.clone(), plan.clone());
        let key = ItemKey::new("p", "s");
        let mut lost = 0;
        for _ in 0..30 {
            if store.add(&key, &[("n", 1)]).await.is_err() {
                lost += 1;
            }
        }
        let written = Store::get(inner.as_ref(), &key)
            .await
            .unwrap()
            .map_or(0, |i| i.counters["n"]);
        let lost_acks = plan
            .injected()
            .get(&("store.add".to_owned(), Fault::LostAck))
            .copied()
            .unwrap_or(0);
        assert_eq!(lost, 30, "every call reported a failure");
        assert_eq!(
            written as u64, lost_acks,
            "lost acknowledgements still wrote"
        );
        assert!(lost_acks > 0);
    }

    struct Answers;

    #[async_trait]
    impl WebApi for Answers {
        async fn get(&self, _request: &WebRequest) -> Result<WebResponse, PortError> {
            Ok(WebResponse {
                status: 200,
                body: b"{}".to_vec(),
                retry_after: None,
            })
        }
    }

    #[async_trait]
    impl TextGenerator for Answers {
        fn model(&self) -> String {
            "answers".into()
        }
        fn context_tokens(&self) -> usize {
            1000
        }
        async fn generate(&self, _request: &TextRequest) -> Result<Generation, TextError> {
            Ok(Generation {
                text: "ok".into(),
                stop: crate::ports::StopReason::EndTurn,
                model: self.model(),
                input_tokens: None,
                output_tokens: None,
                guardrail_trace: None,
            })
        }
    }

    #[tokio::test]
    async fn platform_and_text_faults_are_429s_errors_and_timeouts() {
        let plan = FaultPlan::new(1.0, 3);
        let web = Faulty::new(Arc::new(Answers), plan.clone());
        let request = WebRequest {
            upstream: "deezer",
            path: "/artist/1".into(),
            query: Vec::new(),
            secret_query: None,
            bearer: None,
        };
        let (mut throttled, mut failed) = (0, 0);
        for _ in 0..60 {
            match web.get(&request).await {
                Ok(answer) => {
                    assert_eq!(
                        (answer.status, answer.retry_after),
                        (429, Some(Duration::ZERO))
                    );
                    throttled += 1;
                }
                Err(err) => {
                    assert!(err.to_string().contains("web.get"), "{err}");
                    failed += 1;
                }
            }
        }
        assert!(
            throttled > 5 && failed > 5,
            "{throttled} 429s, {failed} errors"
        );

        let text = Faulty::new(Arc::new(Answers), plan.clone());
        let request = TextRequest {
            system: String::new(),
            user: String::new(),
            max_tokens: 1,
            temperature: 0.0,
        };
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..60 {
            let err = text.generate(&request).await.unwrap_err();
            kinds.insert(match err {
                TextError::Throttled { .. } => "throttled",
                TextError::Timeout { .. } => "timeout",
                TextError::Unavailable { .. } => "unavailable",
                _ => "other",
            });
        }
        assert_eq!(kinds, ["throttled", "timeout", "unavailable"].into());
        assert_eq!(plan.total(), 120);

        plan.set_enabled(false);
        assert_eq!(web.get(&request_of("x")).await.unwrap().status, 200);
        assert_eq!(text.generate(&request).await.unwrap().text, "ok");
    }

    fn request_of(path: &str) -> WebRequest {
        WebRequest {
            upstream: "deezer",
            path: path.into(),
            query: Vec::new(),
            secret_query: None,
            bearer: None,
        }
    }
}
