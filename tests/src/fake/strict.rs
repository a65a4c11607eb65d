//! What the three inference APIs' request checking shares: paths into a request, and turning
//! serde's complaints about a typed request struct into provider-neutral [`Flaw`]s that each
//! provider then words the way its real API does.
//!
//! The request types live in `strict_anthropic`, `strict_openai` and `strict_gemini`, written
//! from the official SDKs' type definitions. Every object type denies unknown fields, so a
//! proxy that forwards a field one format has and another lacks is refused here, as the real
//! service refuses it. Values whose shape depends on a tag (`type`, `role`) are kept as JSON by
//! the outer struct and parsed by the provider module once the tag is known, so a flaw's path
//! can name the tag as Anthropic's does (`messages.0.content.0.image.source.base64.data`).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// One step into a JSON value: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// Where a value sits in a request body, from the top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Path(Vec<Step>);

impl Path {
    /// The body itself.
    pub(crate) fn root() -> Path {
        Path::default()
    }

    /// The value at key `key` of the object here.
    pub(crate) fn key(&self, key: &str) -> Path {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_owned()));
        Path(steps)
    }

    /// The value at index `i` of the array here.
    pub(crate) fn index(&self, i: usize) -> Path {
        let mut steps = self.0.clone();
        steps.push(Step::Index(i));
        Path(steps)
    }

    /// This path followed by `more`.
    fn join(&self, more: &[Step]) -> Path {
        let mut steps = self.0.clone();
        steps.extend_from_slice(more);
        Path(steps)
    }

    pub(crate) fn steps(&self) -> &[Step] {
        &self.0
    }

    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// `messages.0.content.1`: pydantic's location, as Anthropic's messages show it.
    pub(crate) fn dotted(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|step| match step {
                Step::Key(key) => key.clone(),
                Step::Index(i) => i.to_string(),
            })
            .collect();
        parts.join(".")
    }

    /// `messages[0].content[1]`: how OpenAI names a parameter, and (with proto field names)
    /// Google a field.
    pub(crate) fn bracketed(&self) -> String {
        let mut out = String::new();
        for step in &self.0 {
            match step {
                Step::Key(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// The last key on the path, if it ends in one.
    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Step::Key(key)) => Some(key),
            _ => None,
        }
    }
}

/// What is wrong with a request, before a provider words it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Flaw {
    /// `field` is no field of the object at `at`.
    Unknown { at: Path, field: String },
    /// The object at `at` lacks required `field`.
    Missing { at: Path, field: String },
    /// The value at `at` is of the wrong JSON type; `expected` is what the field takes.
    Type { at: Path, expected: Expected },
    /// The value at `at` is none of the `allowed` values (a closed set of strings).
    Variant {
        at: Path,
        found: String,
        allowed: Vec<String>,
    },
    /// The tag `key` (`type`, `role`) of the object at `at` names no shape the API has.
    Tag {
        at: Path,
        key: &'static str,
        found: String,
        allowed: Vec<String>,
    },
    /// The same field twice (Gemini: its camelCase and its snake_case name).
    Duplicate { at: Path, field: String },
    /// Anything else about the value at `at`, in serde's words.
    Invalid { at: Path, message: String },
}

/// The JSON type a field takes, as far as the providers' messages distinguish them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
}

impl Expected {
    /// From the end of serde's "invalid type: …, expected X".
    fn from_serde(expected: &str) -> Expected {
        let e = expected.trim();
        if e.contains("string") || e == "a character" {
            Expected::String
        } else if e.starts_with('u') || e.starts_with('i') || e.contains("integer") {
            Expected::Integer
        } else if e.starts_with('f') || e.contains("number") {
            Expected::Number
        } else if e.contains("bool") {
            Expected::Boolean
        } else if e.contains("sequence") || e.contains("array") || e.contains("tuple") {
            Expected::Array
        } else {
            // `struct X`, `a map`, anything else serde reads from an object.
            Expected::Object
        }
    }
}

/// Parses the value at `at` into `T`, or says what is wrong with it and where.
pub(crate) fn parse<T: DeserializeOwned>(value: &Value, at: &Path) -> Result<T, Flaw> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let inner: Vec<Step> = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                // Enum variants and unknown steps name no place in the JSON.
                _ => None,
            })
            .collect();
        flaw(at.join(&inner), &e.inner().to_string())
    })
}

/// Turns serde's message for an error at `path` into a [`Flaw`].
fn flaw(path: Path, message: &str) -> Flaw {
    let quoted = backquoted(message);
    let first = quoted.first().cloned().unwrap_or_default();
    if message.starts_with("unknown field") {
        // serde_path_to_error ends the path with the unknown key itself.
        let mut at = path;
        let field = match at.0.pop() {
            Some(Step::Key(key)) => key,
            Some(other) => {
                at.0.push(other);
                first
            }
            None => first,
        };
        Flaw::Unknown { at, field }
    } else if message.starts_with("missing field") {
        Flaw::Missing {
            at: path,
            field: first,
        }
    } else if message.starts_with("duplicate field") {
        Flaw::Duplicate {
            at: path,
            field: first,
        }
    } else if message.starts_with("unknown variant") {
        Flaw::Variant {
            at: path,
            found: first,
            allowed: quoted.into_iter().skip(1).collect(),
        }
    } else if let Some(rest) = message.strip_prefix("invalid type: ") {
        let expected = rest.rsplit_once(", expected ").map_or("", |(_, e)| e);
        Flaw::Type {
            at: path,
            expected: Expected::from_serde(expected),
        }
    } else {
        Flaw::Invalid {
            at: path,
            message: message.to_owned(),
        }
    }
}

/// The `` `…` ``-quoted words of a serde message, in order.
fn backquoted(message: &str) -> Vec<String> {
    message
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
        .collect()
}

/// The tag `key` of the object at `at` (`type` of a content block, `role` of a message).
/// `Ok(None)` when the object has no such key; a non-object or a tag that is no string is a
/// flaw.
pub(crate) fn tag<'a>(value: &'a Value, at: &Path, key: &str) -> Result<Option<&'a str>, Flaw> {
    let Some(object) = value.as_object() else {
        return Err(Flaw::Type {
            at: at.clone(),
            expected: Expected::Object,
        });
    };
    match object.get(key) {
        None => Ok(None),
        Some(Value::String(tag)) => Ok(Some(tag)),
        Some(_) => Err(Flaw::Type {
            at: at.key(key),
            expected: Expected::String,
        }),
    }
}

/// The value at `path` in `root`, if there is one.
pub(crate) fn value_at<'a>(root: &'a Value, path: &Path) -> Option<&'a Value> {
    path.steps()
        .iter()
        .try_fold(root, |value, step| match step {
            Step::Key(key) => value.get(key),
            Step::Index(i) => value.get(i),
        })
}

/// Whether `name` is 1 to `max` characters of `a-zA-Z0-9_-` (Anthropic's and OpenAI's tool
/// names).
pub(crate) fn plain_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
