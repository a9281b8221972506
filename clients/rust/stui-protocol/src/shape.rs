//! The check that closes serde's lenient reading of JSON: a derived struct also reads a JSON array
//! (`"parameters": ["laptop"]` becomes `{"client_id": "laptop"}`), and a unit enum also reads an
//! object (`"source": {"live": null}`). v1 allows neither.
//!
//! [`same_shape`] compares what was read with the typed value written back: at every position the
//! written value has, the read value must hold the same JSON type. Members the types ignore (unknown
//! ones, CMP-2) are not written back, so they are not compared.

use serde_json::Value;

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `Err` names the first position where `read` and `written` disagree on the JSON type.
pub(crate) fn same_shape(read: &Value, written: &Value) -> Result<(), String> {
    walk(read, written, &mut String::from("$"))
}

fn walk(read: &Value, written: &Value, path: &mut String) -> Result<(), String> {
    match (read, written) {
        (Value::Object(read), Value::Object(written)) => {
            for (key, value) in written {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                match read.get(key) {
                    Some(original) => walk(original, value, path)?,
                    None => return Err(format!("{path} was written but never read")),
                }
                path.truncate(len);
            }
            Ok(())
        }
        (Value::Array(read), Value::Array(written)) if read.len() == written.len() => {
            for (i, (original, value)) in read.iter().zip(written).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(original, value, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        (Value::Array(_), Value::Array(_)) => Err(format!("{path}: an array read with another length")),
        (read, written) if type_name(read) == type_name(written) => Ok(()),
        (read, written) => Err(format!("{path}: {} where {} is expected", type_name(read), type_name(written))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::same_shape;

    #[test]
    fn types_must_agree_where_written() {
        assert!(same_shape(&json!({"a": [1, {"b": "x"}], "extra": 1}), &json!({"a": [2, {"b": "y"}]})).is_ok());
        assert!(same_shape(&json!({"a": ["x"]}), &json!({"a": {"b": "x"}})).is_err());
        assert!(same_shape(&json!({"a": {"live": null}}), &json!({"a": "live"})).is_err());
        assert!(same_shape(&json!({}), &json!({"a": 1})).is_err());
        assert!(same_shape(&json!([1, 2]), &json!([1])).is_err());
    }
}
