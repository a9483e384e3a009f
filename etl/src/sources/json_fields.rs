//! Lenient reads of JSON fields, shared by the JSON sources: real feeds write the same field as a
//! number in one item and a string in the next, or `null`, or leave it out.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A non-empty string field (numbers are written as text).
pub fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A string field kept even when empty: tells "absent" from "empty".
pub fn text_or_empty(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// An integer field, from a number or a numeric string.
pub fn int(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A float field, from a number or a numeric string.
pub fn float(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An RFC 3339 timestamp field.
pub fn timestamp(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    let s = v.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a whole body as JSON, naming the URL on failure.
pub fn parse_body(url: &str, body: &[u8]) -> Result<Value, super::ParseError> {
    serde_json::from_slice(body).map_err(|e| super::ParseError::Json {
        url: url.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_accept_numbers_and_strings() {
        let v: Value = serde_json::json!({"a": 5, "b": "6", "c": 7.5, "d": null, "e": "", "t": "2026-01-02T03:04:05Z"});
        assert_eq!(int(&v, "a"), Some(5));
        assert_eq!(int(&v, "b"), Some(6));
        assert_eq!(int(&v, "c"), Some(7));
        assert_eq!(float(&v, "b"), Some(6.0));
        assert_eq!(int(&v, "d"), None);
        assert_eq!(text(&v, "a").as_deref(), Some("5"));
        assert_eq!(text(&v, "e"), None);
        assert_eq!(text_or_empty(&v, "e").as_deref(), Some(""));
        assert_eq!(text_or_empty(&v, "missing"), None);
        assert_eq!(
            timestamp(&v, "t").unwrap().to_rfc3339(),
            "2026-01-02T03:04:05+00:00"
        );
        assert!(
            parse_body("http://x/", b"{")
                .unwrap_err()
                .to_string()
                .contains("http://x/")
        );
    }
}
