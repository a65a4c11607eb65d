//! Gemini's OpenAPI-style `Schema` into JSON Schema.
//!
//! Gemini clients may declare function parameters (and response schemas) in Gemini's own
//! schema dialect: upper-case type names (`OBJECT`, `STRING`) and `nullable`. The other
//! formats take JSON Schema, so such a schema is rewritten once per request. This walks a
//! `serde_json::Value`, which is fine off the hot text path: it only sees tool declarations.
//! (`parametersJsonSchema`, which is JSON Schema already, passes through untouched.)

use serde_json::{Map, Value};

/// The schema in JSON Schema terms.
pub fn to_json_schema(schema: Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(object(map)),
        other => other,
    }
}

fn object(map: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::with_capacity(map.len());
    let mut nullable = false;
    for (key, value) in map {
        match key.as_str() {
            "type" => {
                let name = value.as_str().map(str::to_ascii_lowercase);
                out.insert(key, name.map(Value::String).unwrap_or(value));
            }
            "nullable" => nullable = value.as_bool().unwrap_or(false),
            "properties" => {
                let props = match value {
                    Value::Object(props) => Value::Object(
                        props
                            .into_iter()
                            .map(|(name, schema)| (name, to_json_schema(schema)))
                            .collect(),
                    ),
                    other => other,
                };
                out.insert(key, props);
            }
            "items" => {
                out.insert(key, to_json_schema(value));
            }
            "anyOf" | "any_of" => {
                let list = match value {
                    Value::Array(items) => {
                        Value::Array(items.into_iter().map(to_json_schema).collect())
                    }
                    other => other,
                };
                out.insert("anyOf".into(), list);
            }
            // Gemini-only hints with no JSON Schema meaning.
            "propertyOrdering" | "property_ordering" | "example" => {}
            "minItems" | "maxItems" | "minLength" | "maxLength" | "minProperties"
            | "maxProperties" => {
                // Gemini writes int64 as strings; JSON Schema wants numbers.
                let number = value
                    .as_str()
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(Value::from)
                    .unwrap_or(value);
                out.insert(key, number);
            }
            _ => {
                out.insert(key, value);
            }
        }
    }
    if nullable && let Some(Value::String(name)) = out.get("type").cloned() {
        out.insert(
            "type".into(),
            Value::Array(vec![Value::String(name), Value::String("null".into())]),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gemini_schema_becomes_json_schema() {
        let gemini = json!({
            "type": "OBJECT",
            "properties": {
                "city": {"type": "STRING", "description": "City name"},
                "days": {"type": "INTEGER", "nullable": true},
                "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": "3"}
            },
            "required": ["city"],
            "propertyOrdering": ["city", "days", "tags"]
        });
        assert_eq!(
            to_json_schema(gemini),
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "days": {"type": ["integer", "null"]},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
                },
                "required": ["city"]
            })
        );
    }
}
