//! Property tests of the signaling parser (`protocol::parse_client_message`): any
//! text, any JSON value and near-valid messages (right shape, wrong types, huge
//! numbers, deep nesting) give a message or a documented error code, never a panic.
//!
//! Cases: `PROPTEST_CASES` (default 10,000 per property). The seed is printed at the
//! start of each property (shown by cargo when it fails); rerun a failure with
//! `PROPTEST_RNG_SEED=<seed>`. Failing inputs are also persisted under
//! `proptest-regressions/`.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{json, Map, Value};
use signaling::protocol::{
    parse_client_message, ClientMessage, ParseError, MAX_MESSAGE_BYTES, MAX_VIEW_DIMENSION,
};

/// Error codes the parser may answer, as documented in PROTOCOL.md.
const DOCUMENTED_CODES: [&str; 2] = ["bad_message", "message_too_large"];

fn config(name: &str) -> Config {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(rand_seed);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(10_000);
    eprintln!("proptest {name}: {cases} cases, seed {seed} (rerun: PROPTEST_RNG_SEED={seed})");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    }
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// The outcome every input must have: `Ok`, or an error with a documented code whose
/// kind matches the input's size.
fn check_total(text: &str) -> Result<Option<ClientMessage>, TestCaseError> {
    match parse_client_message(text) {
        Ok(m) => {
            prop_assert!(text.len() <= MAX_MESSAGE_BYTES);
            Ok(Some(m))
        }
        Err(err) => {
            prop_assert!(DOCUMENTED_CODES.contains(&err.code()), "{err:?}");
            prop_assert!(!err.message().is_empty());
            prop_assert_eq!(err == ParseError::TooLarge, text.len() > MAX_MESSAGE_BYTES);
            Ok(None)
        }
    }
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN/inf become null
        any::<String>().prop_map(Value::String),
        prop::sample::select(vec![
            "join",
            "listen",
            "offer",
            "answer",
            "candidate",
            "mute",
            "request_keyframe",
            "audio_only",
            "video_view",
            "leave",
            "ping",
            "publisher",
            "subscriber",
            "audio",
            "video",
            ""
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "protocol",
            "session_id",
            "token",
            "display_name",
            "pc",
            "sdp",
            "candidate",
            "sdpMid",
            "sdpMLineIndex",
            "usernameFragment",
            "kind",
            "muted",
            "track_id",
            "ts",
            "visible",
            "width",
            "height",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ]
}

/// One valid message of each type.
fn valid_messages() -> Vec<Value> {
    vec![
        json!({"type":"join","protocol":1,"session_id":"s1","token":"t","display_name":"Ada"}),
        json!({"type":"listen","protocol":1,"token":"t"}),
        json!({"type":"offer","pc":"publisher","sdp":"v=0"}),
        json!({"type":"answer","pc":"subscriber","sdp":"v=0"}),
        json!({"type":"candidate","pc":"publisher","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"u"}}),
        json!({"type":"mute","kind":"audio","muted":true}),
        json!({"type":"request_keyframe","track_id":"tr"}),
        json!({"type":"audio_only","enabled":true}),
        json!({"type":"video_view","track_id":"tr","visible":false}),
        json!({"type":"video_view","track_id":"tr","visible":true,"width":640,"height":360}),
        json!({"type":"leave"}),
        json!({"type":"ping","ts":5}),
    ]
}

/// Awkward values for a field: wrong types, numbers past every integer type, deep
/// nesting past serde_json's recursion limit.
fn awkward_value() -> impl Strategy<Value = String> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string()),
        prop::sample::select(vec![
            "18446744073709551616",
            "-9223372036854775809",
            "1e400",
            "-1e400",
            "4294967296",
            "-1",
            "1.5",
            "0.0",
            "1E2",
            "-0",
            "00",
            "\"\\ud800\"",
            "\"\\u0000\"",
            "true",
            "[]",
            "{}",
        ])
        .prop_map(str::to_string),
        (1usize..400).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        (1usize..400).prop_map(|depth| format!(
            "{}1{}",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        )),
        (1usize..400).prop_map(|depth| "[".repeat(depth)),
    ]
}

/// A valid message with one field replaced by raw JSON text, removed, or an extra
/// field added.
fn near_valid() -> impl Strategy<Value = String> {
    let messages = valid_messages();
    (
        prop::sample::select(messages),
        any::<prop::sample::Index>(),
        awkward_value(),
        0u8..4,
    )
        .prop_map(|(msg, which, value, how)| {
            let Value::Object(mut fields) = msg else {
                return String::new();
            };
            let keys: Vec<String> = fields.keys().cloned().collect();
            let key = which.get(&keys).clone();
            match how {
                0 => {
                    fields.remove(&key);
                    Value::Object(fields).to_string()
                }
                1 => {
                    fields.insert("unexpected".into(), Value::Null);
                    Value::Object(fields).to_string()
                }
                _ => {
                    // Splice raw text so that invalid JSON numbers and deep nesting
                    // reach the parser as written.
                    fields.insert(key.clone(), Value::String("\u{1}PLACEHOLDER\u{1}".into()));
                    Value::Object(fields)
                        .to_string()
                        .replace("\"\\u0001PLACEHOLDER\\u0001\"", &value)
                }
            }
        })
}

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "\"",
            "\\",
            "\"type\"",
            "\"join\"",
            "\"ping\"",
            "\"protocol\"",
            "1",
            "-",
            "e9",
            ".",
            "null",
            "true",
            " ",
            "\n",
            "\"ts\"",
            "\u{0}",
            "\u{feff}",
            "é",
            "\"pc\"",
            "\"publisher\"",
        ]),
        0..48,
    )
    .prop_map(|parts| parts.concat())
}

#[test]
fn arbitrary_text_never_panics() {
    proptest!(config("arbitrary_text"), |(text in prop_oneof![any::<String>(), token_soup()])| {
        check_total(&text)?;
    });
}

#[test]
fn arbitrary_json_never_panics() {
    proptest!(config("arbitrary_json"), |(value in json_value())| {
        check_total(&value.to_string())?;
    });
}

#[test]
fn near_valid_messages_never_panic() {
    proptest!(config("near_valid"), |(text in near_valid())| {
        check_total(&text)?;
    });
}

#[test]
fn wrong_types_in_required_fields_are_bad_message() {
    // Each (message, field) whose value must be a string, number or enum.
    let required = [
        (0, "protocol"),
        (0, "session_id"),
        (1, "protocol"),
        (2, "pc"),
        (2, "sdp"),
        (3, "sdp"),
        (4, "pc"),
        (5, "kind"),
        (5, "muted"),
        (6, "track_id"),
    ];
    proptest!(config("wrong_types"), |(which in prop::sample::select(required.to_vec()), value in json_value())| {
        let (index, field) = which;
        let mut msg = valid_messages()[index].clone();
        let original = msg[field].clone();
        // Same JSON type as the original may still be valid (e.g. another string).
        let same_type = std::mem::discriminant(&original) == std::mem::discriminant(&value);
        msg[field] = value;
        let outcome = check_total(&msg.to_string())?;
        if !same_type {
            prop_assert!(outcome.is_none(), "accepted {msg}");
        }
    });
}

/// A `video_view` dimension: anything an i64 holds, with the bounds' neighbourhoods
/// drawn often.
fn view_dimension() -> impl Strategy<Value = Option<i64>> {
    prop::option::of(prop_oneof![
        any::<i64>(),
        -2i64..4,
        (MAX_VIEW_DIMENSION as i64 - 3)..(MAX_VIEW_DIMENSION as i64 + 3),
    ])
}

#[test]
fn video_view_sizes_parse_only_paired_and_in_bounds() {
    proptest!(config("video_view_size"), |(width in view_dimension(), height in view_dimension())| {
        let mut msg = json!({"type":"video_view","track_id":"tr","visible":true});
        if let Some(w) = width { msg["width"] = json!(w); }
        if let Some(h) = height { msg["height"] = json!(h); }
        let in_bounds = |v: i64| (1..=i64::from(MAX_VIEW_DIMENSION)).contains(&v);
        let valid = match (width, height) {
            (None, None) => true,
            (Some(w), Some(h)) => in_bounds(w) && in_bounds(h),
            _ => false,
        };
        let outcome = check_total(&msg.to_string())?;
        prop_assert_eq!(outcome.is_some(), valid, "{}", msg);
        if let Some(ClientMessage::VideoView { width: w, height: h, .. }) = outcome {
            prop_assert_eq!(w.map(i64::from), width);
            prop_assert_eq!(h.map(i64::from), height);
        }
    });
}

#[test]
fn valid_messages_parse_and_oversize_is_refused() {
    for msg in valid_messages() {
        assert!(parse_client_message(&msg.to_string()).is_ok(), "{msg}");
    }
    let padded = format!(
        r#"{{"type":"ping","ts":"{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    assert_eq!(parse_client_message(&padded), Err(ParseError::TooLarge));
    assert_eq!(ParseError::TooLarge.code(), "message_too_large");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let err = parse_client_message(&format!(r#"{{"type":"ping","ts":{deep}}}"#)).unwrap_err();
    assert_eq!(err.code(), "bad_message");
}
