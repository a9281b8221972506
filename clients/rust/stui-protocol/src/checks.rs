//! `deserialize_with` helpers for what a plain serde type does not check by itself: integer ranges,
//! string lengths, constants, list sizes, and the two null rules of spec 13.2 (an optional member is
//! omitted, never null; an error reply's `id` and `command` are present, possibly null).
//!
//! Only deserialisation is checked here; serialisation writes what the value holds.

use serde::de::{Deserialize, Deserializer, Error};

/// 2^53 - 1: the largest integer every JSON implementation holds exactly, and the `maximum` of every
/// v1 integer (spec 13.3).
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

fn in_range<E: Error>(value: u64, min: u64) -> Result<u64, E> {
    if value < min {
        Err(E::custom(format_args!("{value} is below the minimum {min}")))
    } else if value > MAX_SAFE_INTEGER {
        Err(E::custom(format_args!("{value} is above the maximum 2^53-1")))
    } else {
        Ok(value)
    }
}

/// An integer from `MIN` to 2^53-1. serde's `u64` already refuses `1800.0`, `3e0`, `-1` and `"3"`
/// (spec CMP-5, CMP-6).
pub fn int<'de, D: Deserializer<'de>, const MIN: u64>(deserializer: D) -> Result<u64, D::Error> {
    in_range(u64::deserialize(deserializer)?, MIN)
}

/// An optional integer from `MIN` to 2^53-1: absent is `None`, `null` is an error.
pub fn opt_int<'de, D: Deserializer<'de>, const MIN: u64>(deserializer: D) -> Result<Option<u64>, D::Error> {
    int::<D, MIN>(deserializer).map(Some)
}

/// The constant `0` (`session.create`'s `revision`).
pub fn zero<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    match u64::deserialize(deserializer)? {
        0 => Ok(0),
        other => Err(D::Error::custom(format_args!("{other} is not the constant 0"))),
    }
}

/// The constant `true` (`valid`, `closed`).
pub fn always_true<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    if bool::deserialize(deserializer)? {
        Ok(true)
    } else {
        Err(D::Error::custom("false where the schema says the constant true"))
    }
}

/// An optional member: absent is `None` (with `#[serde(default)]`), `null` is an error (spec CMP-3,
/// CMP-4), anything else must be a `T`.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A required member that may be `null` (an error reply's `id` and `command`, spec ENV-5, ENV-6):
/// using `deserialize_with` makes serde report a missing member instead of defaulting to `None`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(deserializer)
}

fn between(min: usize, max: usize) -> String {
    if max == usize::MAX {
        format!("at least {min}")
    } else {
        format!("{min} to {max}")
    }
}

fn length<E: Error>(text: &str, min: usize, max: usize) -> Result<(), E> {
    let n = text.chars().count();
    if n < min || n > max {
        // The text is not quoted: it may be anything the server wrote.
        Err(E::custom(format_args!("a string of {n} characters where {} are allowed", between(min, max))))
    } else {
        Ok(())
    }
}

/// A string of `MIN` to `MAX` characters (code points, as JSON Schema counts them).
pub fn text<'de, D: Deserializer<'de>, const MIN: usize, const MAX: usize>(
    deserializer: D,
) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    length(&text, MIN, MAX)?;
    Ok(text)
}

/// An optional string of `MIN` to `MAX` characters: absent is `None`, `null` is an error.
pub fn opt_text<'de, D: Deserializer<'de>, const MIN: usize, const MAX: usize>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    text::<D, MIN, MAX>(deserializer).map(Some)
}

/// A non-empty string (`error.message`, spec ENV-8, and the other `minLength: 1` texts).
pub fn non_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    text::<D, 1, { usize::MAX }>(deserializer)
}

/// A list of `MIN` to `MAX` items.
pub fn items<'de, D: Deserializer<'de>, T: Deserialize<'de>, const MIN: usize, const MAX: usize>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    let list = Vec::<T>::deserialize(deserializer)?;
    if list.len() < MIN || list.len() > MAX {
        return Err(D::Error::custom(format_args!("{} items where {} are allowed", list.len(), between(MIN, MAX))));
    }
    Ok(list)
}

/// A list of one or more items.
pub fn non_empty_list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    items::<D, T, 1, { usize::MAX }>(deserializer)
}

/// A list of `MIN` or more items, no two equal (`uniqueItems`).
pub fn unique_items<'de, D: Deserializer<'de>, T: Deserialize<'de> + PartialEq, const MIN: usize>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    let list = items::<D, T, MIN, { usize::MAX }>(deserializer)?;
    for (i, item) in list.iter().enumerate() {
        if list[..i].contains(item) {
            return Err(D::Error::custom(format_args!("item {i} repeats an earlier item")));
        }
    }
    Ok(list)
}

/// `hello`'s `capabilities`: distinct names of 1 to 64 characters.
pub fn capabilities<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let list = unique_items::<D, String, 0>(deserializer)?;
    for name in &list {
        length::<D::Error>(name, 1, 64)?;
    }
    Ok(list)
}
