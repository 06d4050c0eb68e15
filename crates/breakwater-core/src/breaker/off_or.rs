//! Serde for the breaker's optional checks: `false` (or null) is off, anything else is
//! the value. TOML has no null, so `Option`'s own form cannot say "off" there.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{F64Deserializer, I64Deserializer, MapAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// Writes the value, or `false` for `None`.
pub(super) fn serialize<T: Serialize, S: Serializer>(
    value: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => value.serialize(s),
        None => s.serialize_bool(false),
    }
}

/// Reads a value, or `false` / null as `None`.
pub(super) fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_any(OffOr(PhantomData))
}

/// Accepts what `T` accepts from a self-describing format (numbers and maps are
/// all the breaker needs), plus `false` and null.
struct OffOr<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OffOr<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a setting, or false to turn it off")
    }

    fn visit_bool<E: de::Error>(self, on: bool) -> Result<Option<T>, E> {
        if on {
            Err(E::invalid_value(de::Unexpected::Bool(true), &self))
        } else {
            Ok(None)
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<T>, E> {
        T::deserialize(de::value::U64Deserializer::new(v)).map(Some)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<T>, E> {
        T::deserialize(I64Deserializer::new(v)).map(Some)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<T>, E> {
        T::deserialize(F64Deserializer::new(v)).map(Some)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error, F64Deserializer};

    use super::*;

    /// A format that wraps its value in `Some`, as RON's `Some(0.5)` does (JSON and
    /// TOML hand the value over bare).
    struct Wrapped(f64);

    impl<'de> Deserializer<'de> for Wrapped {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_some(F64Deserializer::new(self.0))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            struct enum identifier ignored_any
        }
    }

    #[test]
    fn a_wrapped_value_is_on_and_false_or_unit_is_off() {
        assert_eq!(deserialize::<f64, _>(Wrapped(0.5)), Ok(Some(0.5)));
        let off: Result<Option<f64>, Error> = deserialize(false.into_deserializer());
        assert_eq!(off, Ok(None));
        let unit: Result<Option<f64>, Error> = deserialize(().into_deserializer());
        assert_eq!(unit, Ok(None));
        let on: Result<Option<f64>, Error> = deserialize(true.into_deserializer());
        assert!(on.is_err());
    }

    #[test]
    fn a_rejected_value_is_told_what_is_expected() {
        let word: Result<Option<f64>, Error> = deserialize("on".into_deserializer());
        let error = word.expect_err("a string is not a setting").to_string();
        assert!(
            error.contains("expected a setting, or false to turn it off"),
            "{error}"
        );
    }
}
