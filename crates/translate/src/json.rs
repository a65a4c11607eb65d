//! Small serde helpers shared by the wire types.
//!
//! The formats often allow "a string or a list" (`content`, `system`, `stop`) or "a string or
//! an object" (`tool_choice`). Serde's untagged enums would buffer the value and cannot hold
//! raw JSON inside, so these two types have hand-written visitors that read the value once.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

/// Serialises `value` onto the end of `out`.
pub fn write(out: &mut Vec<u8>, value: &impl Serialize) {
    // Writing Keyway's own wire types into a Vec cannot fail: every map key is a string and
    // no type has a fallible `Serialize`. Should that ever change, say so rather than panic.
    if let Err(error) = serde_json::to_writer(out, value) {
        tracing::error!(%error, "translate: could not serialise a translated body");
    }
}

/// Serialises `value` into a new buffer, sized for a typical body.
pub fn to_vec(value: &impl Serialize, size_hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint.max(256));
    write(&mut out, value);
    out
}

/// A string, or a list of `T`. `null` reads as an empty list.
#[derive(Debug, Clone, PartialEq)]
pub enum StrOr<T> {
    Str(String),
    List(Vec<T>),
}

impl<T> Default for StrOr<T> {
    fn default() -> Self {
        StrOr::List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for StrOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = StrOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOr::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrOr::Str(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrOr::List(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrOr::List(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(StrOr::List(items))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

impl<T: Serialize> Serialize for StrOr<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            StrOr::Str(s) => serializer.serialize_str(s),
            StrOr::List(items) => items.serialize(serializer),
        }
    }
}

/// A string, or an object `T`.
#[derive(Debug, Clone, PartialEq)]
pub enum StrOrObj<T> {
    Str(String),
    Obj(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for StrOrObj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = StrOrObj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an object")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOrObj::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrOrObj::Str(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(StrOrObj::Obj)
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// A request body read field by field, for the four client surfaces' request types: the
/// fields a surface maps are read into their typed places ([`RequestObject::field`]), the
/// others it defines go to `known_other` (handled one by one: dropped or refused), and
/// unknown ones are kept in `extra` to be forwarded — without `#[serde(flatten)]`, which would
/// buffer the whole body and cannot hold raw JSON.
pub trait RequestObject: Default {
    /// What the body is, for serde's error ("a Messages request object").
    const EXPECTING: &'static str;
    /// The surface's fields that have no typed place.
    const KNOWN_OTHER: &'static [&'static str];

    /// Reads the value of `key` when the surface maps it; `false` (the value unread) when not.
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;

    /// Where the other fields go: the known ones, and the unknown ones.
    fn others(
        &mut self,
    ) -> (
        &mut Vec<(String, serde_json::Value)>,
        &mut serde_json::Map<String, serde_json::Value>,
    );

    /// A required field the body left out, if any.
    fn missing(&self) -> Option<&'static str>;
}

/// Deserialises a [`RequestObject`] from a JSON object, reading each value once.
pub fn deserialize_request<'de, D: Deserializer<'de>, T: RequestObject>(
    deserializer: D,
) -> Result<T, D::Error> {
    struct V<T>(PhantomData<T>);
    impl<'de, T: RequestObject> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(T::EXPECTING)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            let mut r = T::default();
            while let Some(key) = map.next_key::<String>()? {
                if r.field(&key, &mut map)? {
                    continue;
                }
                let value = map.next_value()?;
                let (known, extra) = r.others();
                if T::KNOWN_OTHER.contains(&key.as_str()) {
                    known.push((key, value));
                } else {
                    extra.insert(key, value);
                }
            }
            match r.missing() {
                Some(field) => Err(de::Error::missing_field(field)),
                None => Ok(r),
            }
        }
    }
    deserializer.deserialize_map(V(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Item {
        a: u32,
    }

    #[test]
    fn str_or_list_reads_each_shape() {
        let s: StrOr<Item> = serde_json::from_str(r#""hi""#).unwrap();
        assert_eq!(s, StrOr::Str("hi".into()));
        let l: StrOr<Item> = serde_json::from_str(r#"[{"a":1},{"a":2}]"#).unwrap();
        assert_eq!(l, StrOr::List(vec![Item { a: 1 }, Item { a: 2 }]));
        let n: StrOr<Item> = serde_json::from_str("null").unwrap();
        assert_eq!(n, StrOr::List(vec![]));
        assert!(serde_json::from_str::<StrOr<Item>>("3").is_err());
    }

    #[test]
    fn raw_values_survive_inside_lists() {
        #[derive(serde::Deserialize)]
        struct WithRaw {
            input: Box<RawValue>,
        }
        let l: StrOr<WithRaw> = serde_json::from_str(r#"[{"input":{"x":[1,2]}}]"#).unwrap();
        let StrOr::List(items) = l else {
            panic!("a list")
        };
        assert_eq!(items[0].input.get(), r#"{"x":[1,2]}"#);
    }

    #[test]
    fn str_or_object_reads_each_shape() {
        let s: StrOrObj<Item> = serde_json::from_str(r#""auto""#).unwrap();
        assert_eq!(s, StrOrObj::Str("auto".into()));
        let o: StrOrObj<Item> = serde_json::from_str(r#"{"a":7}"#).unwrap();
        assert_eq!(o, StrOrObj::Obj(Item { a: 7 }));
    }
}
