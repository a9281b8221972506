//! The string types of v1 (`schemas/common.json` and `schemas/state.json` `$defs`), each checked on
//! construction and on deserialisation against its schema's length and pattern, so a value of one of
//! these types is always one the schemas accept.
//!
//! Checks are hand-written rather than regexes: every pattern is a short anchored character class, and
//! hand-written checks have no ECMA-262-versus-Rust regex dialect question (`$` never matches before a
//! trailing newline here). An error never quotes the rejected value: it may be a token.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that breaks its type's schema. Says which type and which rule, never the value itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidValue {
    /// The type, e.g. "session id".
    pub kind: &'static str,
    /// The rule broken, as the schema states it.
    pub rule: &'static str,
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.kind, self.rule)
    }
}

impl std::error::Error for InvalidValue {}

fn chars_between(s: &str, min: usize, max: usize) -> bool {
    let n = s.chars().count();
    n >= min && n <= max
}

fn base64url(s: &str, min: usize, max: usize) -> bool {
    // ASCII only, so bytes are characters.
    s.len() >= min && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `[a-z][a-z0-9_]*`
fn lower_word(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z')) && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

fn command_name(s: &str) -> bool {
    chars_between(s, 1, 64) && s.split('.').all(lower_word)
}

fn protocol_version(s: &str) -> bool {
    let digits = |p: &str| (1..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('.') {
        Some((major, minor)) => digits(major) && digits(minor),
        None => false,
    }
}

fn client_id(s: &str) -> bool {
    chars_between(s, 1, 128) && !s.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}')
}

fn object_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// `^[A-Z][A-Za-z0-9_]*( class)?$`, 1 to 256 characters.
fn class_name(s: &str) -> bool {
    let name = s.strip_suffix(" class").unwrap_or(s);
    let mut bytes = name.bytes();
    s.len() <= 256 && matches!(bytes.next(), Some(b'A'..=b'Z')) && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `^[A-Za-z][A-Za-z0-9_]*$`, at most 256 characters.
fn variable_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 256
        && matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` in UTC (`common.json` `$defs/Timestamp`, spec ENV-10).
fn timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if !s.is_ascii() || b.len() < 20 || b[b.len() - 1] != b'Z' {
        return false;
    }
    let num = |i: usize, n: usize| -> Option<u32> {
        let part = b.get(i..i + n)?;
        if part.iter().all(u8::is_ascii_digit) {
            Some(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
        } else {
            None
        }
    };
    // (no let-else: Debian 12's rustc 1.63 predates it)
    let (month, day, hour, minute, second) = match (num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2))
    {
        (Some(_), Some(month), Some(day), Some(hour), Some(minute), Some(second)) => (month, day, hour, minute, second),
        _ => return false,
    };
    let separators = b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':';
    let fraction = &b[19..b.len() - 1];
    let fraction_ok = fraction.is_empty()
        || (fraction[0] == b'.' && (2..=10).contains(&fraction.len()) && fraction[1..].iter().all(u8::is_ascii_digit));
    separators
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60
        && fraction_ok
}

/// Defines a validated string type: constructor `new`, `as_str`, `into_string`, serde as a JSON
/// string checked on the way in.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $rule:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The value, when it matches the schema.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
                let value = value.into();
                let check: fn(&str) -> bool = $check;
                if check(&value) {
                    Ok(Self(value))
                } else {
                    Err(InvalidValue { kind: $kind, rule: $rule })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, InvalidValue> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidValue;
            fn try_from(value: &str) -> Result<Self, InvalidValue> {
                Self::new(value)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::new(String::deserialize(deserializer)?).map_err(D::Error::custom)
            }
        }
    };
}

/// Implements `Display` and `Debug` as the plain value, for types that are not secrets.
macro_rules! shown {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}

checked_string!(
    /// A client-chosen request id (1 to 128 characters); the key of the retry cache (spec RTY).
    RequestId, "request id", "1 to 128 characters", |s| chars_between(s, 1, 128)
);
checked_string!(
    /// A dotted lower-case command name, e.g. `session.create` (1 to 64 characters).
    CommandName, "command name", "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$, 1 to 64 characters", command_name
);
checked_string!(
    /// A protocol version `MAJOR.MINOR`, e.g. `1.0`.
    ProtocolVersion, "protocol version", "^[0-9]{1,4}\\.[0-9]{1,4}$", protocol_version
);
checked_string!(
    /// An opaque session id: base64url, 22 to 128 characters (spec SEC).
    SessionId, "session id", "^[A-Za-z0-9_-]{22,128}$", |s| base64url(s, 22, 128)
);
checked_string!(
    /// The session secret: base64url, 43 to 128 characters. `Debug` prints `Token(<redacted>)` and there
    /// is no `Display`: a token reaches text only through [`Token::expose`] (spec SEC).
    Token, "token", "^[A-Za-z0-9_-]{43,128}$", |s| base64url(s, 43, 128)
);
checked_string!(
    /// The client-chosen name of a client installation (1 to 128 characters, no control characters).
    ClientId, "client id", "1 to 128 characters, none of U+0000-U+001F or U+007F", client_id
);
checked_string!(
    /// An id in the session's object registry (assigned by `inspect`).
    ObjectId, "object id", "^[A-Za-z0-9_.:-]+$, 1 to 64 characters", object_id
);
checked_string!(
    /// A Smalltalk class name, e.g. `SmallInteger`, `ByteString`, `Foo class`.
    ClassName, "class name", "^[A-Z][A-Za-z0-9_]*( class)?$, 1 to 256 characters", class_name
);
checked_string!(
    /// A workspace variable name.
    VariableName, "variable name", "^[A-Za-z][A-Za-z0-9_]*$, at most 256 characters", variable_name
);
checked_string!(
    /// An RFC 3339 time in UTC with a literal `Z`, e.g. `2026-11-24T03:02:11.120Z` (spec ENV-10).
    /// Kept as the server wrote it: equal timestamps compare equal as text (a retried reply keeps its
    /// original `timestamp`, spec RTY).
    Timestamp, "timestamp", "YYYY-MM-DDTHH:MM:SS[.1-9 digits]Z", timestamp
);
checked_string!(
    /// Smalltalk source: `evaluate`'s `code` or `inspect`'s `expression` (1 to 32768 characters).
    Code, "code", "1 to 32768 characters", |s| chars_between(s, 1, 32768)
);

shown!(
    RequestId,
    CommandName,
    ProtocolVersion,
    SessionId,
    ClientId,
    ObjectId,
    ClassName,
    VariableName,
    Timestamp,
    Code
);

impl Token {
    /// The secret itself, for the wire or a protected session file. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The protocol version of every v1 envelope: serialises as `"1.0"` and accepts nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct V1;

impl V1 {
    pub const TEXT: &'static str = "1.0";
}

impl Serialize for V1 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Self::TEXT)
    }
}

impl<'de> Deserialize<'de> for V1 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == Self::TEXT {
            Ok(V1)
        } else {
            Err(D::Error::custom("version is not \"1.0\""))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        for ok in ["2026-11-24T03:02:11.120Z", "2026-11-24T03:02:11Z", "2026-12-31T23:59:60.123456789Z"] {
            assert!(Timestamp::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2026-11-24T03:02:11.120",
            "2026-11-24 03:02:11Z",
            "2026-11-24T03:02:11.120+00:00",
            "2026-13-24T03:02:11Z",
            "2026-11-00T03:02:11Z",
            "2026-11-24T24:02:11Z",
            "2026-11-24T03:60:11Z",
            "2026-11-24T03:02:61Z",
            "2026-11-24T03:02:11.Z",
            "2026-11-24T03:02:11.1234567890Z",
            "2026-11-24t03:02:11Z",
            "2026-11-24T03:02:11z",
            "2026-11-24T03:02:11Z\n",
            "+026-11-24T03:02:11Z",
        ] {
            assert!(Timestamp::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert!(CommandName::new("session.create").is_ok());
        assert!(CommandName::new("a1_.b").is_ok());
        assert!(CommandName::new("a..b").is_err());
        assert!(CommandName::new("1a").is_err());
        assert!(CommandName::new("Session.Create").is_err());
        assert!(CommandName::new("session.").is_err());
        assert!(ClassName::new("Foo class").is_ok());
        assert!(ClassName::new("Foo class class").is_err());
        assert!(ClassName::new("foo").is_err());
        assert!(ClassName::new(" class").is_err());
        assert!(VariableName::new("x1_").is_ok());
        assert!(VariableName::new("1x").is_err());
        assert!(VariableName::new("").is_err());
        assert!(ProtocolVersion::new("10.0").is_ok());
        assert!(ProtocolVersion::new("1").is_err());
        assert!(ProtocolVersion::new("1.0.0").is_err());
        assert!(ClientId::new("laptop\u{7f}").is_err());
        assert!(ClientId::new("stui-rust/0.4 laptop-7 \u{e4}").is_ok());
        assert!(RequestId::new("\u{e4}".repeat(128)).is_ok());
        assert!(RequestId::new("\u{e4}".repeat(129)).is_err());
    }

    #[test]
    fn token_is_never_shown() {
        let token = Token::new("q8Jf3LrT0vXy2NcW9aBd4KpZ7mQs1HuE6gYt5RiVo0A").unwrap();
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        let err = serde_json::from_str::<Token>("\"short-secret\"").unwrap_err().to_string();
        assert!(!err.contains("short-secret"), "{err}");
    }
}
