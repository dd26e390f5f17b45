//! Canonical JSON and SHA-256: the basis of idempotency keys, payload checks and audit chains.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// The canonical JSON text of `value`: object keys sorted, no whitespace, so two equal
/// payloads hash the same however their producers ordered the fields.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    // serde_json's `Value` keeps object keys in a BTreeMap (the `preserve_order` feature is off
    // in this workspace), so a round trip through it sorts every level.
    let value = serde_json::to_value(value)?;
    serde_json::to_string(&value)
}

/// SHA-256 of the canonical JSON of `value`.
pub fn hash_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    canonical_json(value).map(sha256_hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_order_does_not_change_the_hash() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[1,2]}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "a": {"x":[1,2], "y":2}, "b":1 }"#).unwrap();
        assert_eq!(hash_json(&a).unwrap(), hash_json(&b).unwrap());
        let c: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":[2,1],"y":2},"b":1}"#).unwrap();
        assert_ne!(hash_json(&a).unwrap(), hash_json(&c).unwrap());
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
