//! X-Ray trace ids: parsed from `_X_AMZN_TRACE_ID`, the invocation context or the SQS
//! `AWSTraceHeader` attribute, and made up locally so every invocation carries one.

use chrono::{DateTime, Utc};

/// A parsed `X-Amzn-Trace-Id` header: `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id (`1-5759e988-bd862e3fe1be46a994272793`).
    pub root: String,
    /// The parent segment id, if given.
    pub parent: Option<String>,
    /// The sampling decision, if given.
    pub sampled: Option<bool>,
}

impl TraceContext {
    /// Parses a trace header; `None` if it has no valid `Root`.
    pub fn parse(header: &str) -> Option<Self> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = None;
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) if is_trace_id(v) => root = Some(v.to_owned()),
                Some(("Parent", v)) if v.len() == 16 && is_hex(v) => parent = Some(v.to_owned()),
                Some(("Sampled", "1")) => sampled = Some(true),
                Some(("Sampled", "0")) => sampled = Some(false),
                _ => {}
            }
        }
        root.map(|root| Self {
            root,
            parent,
            sampled,
        })
    }

    /// A new root trace id, for invocations that arrive without one (local runs).
    pub fn generate(now: DateTime<Utc>) -> Self {
        let random: [u8; 12] = rand::random();
        Self {
            root: format!("1-{:08x}-{}", now.timestamp(), hex::encode(random)),
            parent: None,
            sampled: Some(false),
        }
    }

    /// The header form, to carry the trace on (SQS `AWSTraceHeader`, EventBridge `TraceHeader`).
    pub fn header(&self) -> String {
        let mut out = format!("Root={}", self.root);
        if let Some(parent) = &self.parent {
            out.push_str(";Parent=");
            out.push_str(parent);
        }
        if let Some(sampled) = self.sampled {
            out.push_str(if sampled { ";Sampled=1" } else { ";Sampled=0" });
        }
        out
    }
}

fn is_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_trace_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    matches!(parts.as_slice(), ["1", time, id] if time.len() == 8 && id.len() == 24 && is_hex(time) && is_hex(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_headers() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let ctx = TraceContext::parse(header).unwrap();
        assert_eq!(ctx.root, "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(ctx.header(), header);
        assert!(TraceContext::parse("Root=1-xyz-abc").is_none());
        assert!(TraceContext::parse("").is_none());
        let made = TraceContext::generate(Utc::now());
        assert!(TraceContext::parse(&made.header()).is_some());
    }
}
