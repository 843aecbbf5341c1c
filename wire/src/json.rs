//! JSON as RocketMQ's fastjson writes and reads it.
//!
//! Two quirks matter to a peer: fastjson (in its default, pre-4.9.4 mode) writes integer map
//! keys bare — `{"brokerAddrs":{0:"10.0.0.1:10911"}}` — which is not JSON; and RocketMQ
//! clients put numbers and booleans where Java would have strings. [`parse`] accepts both;
//! the [`lenient`] deserializers are for `#[serde(deserialize_with = ...)]` on body fields.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

use crate::error::WireError;

/// Parses a JSON body as fastjson may have written it (bare numeric map keys accepted).
pub fn parse<T: DeserializeOwned>(what: &'static str, input: &[u8]) -> Result<T, WireError> {
    let text = std::str::from_utf8(input).map_err(|_| WireError::InvalidUtf8 { what })?;
    let quoted = quote_bare_keys(text);
    serde_json::from_str(&quoted).map_err(|e| WireError::InvalidJson {
        what,
        reason: e.to_string(),
    })
}

/// Serializes a body as standard JSON (quoted keys), which every RocketMQ client accepts.
pub fn to_vec<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own plain data types cannot fail: no maps with non-string keys, no
    // custom serializers that return errors.
    serde_json::to_vec(value).unwrap_or_else(|e| panic!("serializing a body failed: {e}"))
}

/// Rewrites the map keys fastjson writes unquoted into string keys, leaving string contents
/// untouched: bare tokens (`{0:"a"}` → `{"0":"a"}`) and object or array keys, which fastjson
/// writes as the JSON of the key object (`{{"a":1}:2}` → `{"{\"a\":1}":2}`; Java's
/// `Map<MessageQueue, …>`). Returns the input unchanged (borrowed) when there is nothing to
/// do; an unterminated key is left as it is, for the parser to reject.
pub fn quote_bare_keys(input: &str) -> Cow<'_, str> {
    let bytes = input.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    let mut in_string = false;
    // Whether the next token (after whitespace) is in key position: after `{` or after a
    // `,` inside an object.
    let mut stack: Vec<u8> = Vec::new();
    let mut expect_key = false;
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            match byte {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match byte {
            b'{' | b'[' if expect_key => {
                let Some(end) = matching_close(bytes, i) else {
                    return Cow::Borrowed(input);
                };
                let buf = out.get_or_insert_with(|| String::with_capacity(input.len() + 64));
                buf.push_str(&input[copied..i]);
                crate::command::write_json_str(buf, &input[i..=end]);
                copied = end + 1;
                i = end + 1;
                expect_key = false;
                continue;
            }
            b'"' => {
                in_string = true;
                expect_key = false;
            }
            b'{' => {
                stack.push(b'{');
                expect_key = true;
            }
            b'[' => {
                stack.push(b'[');
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => expect_key = stack.last() == Some(&b'{'),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if expect_key => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'-' | b'_' | b'.'))
                {
                    i += 1;
                }
                if i > start {
                    let buf = out.get_or_insert_with(|| String::with_capacity(input.len() + 16));
                    buf.push_str(&input[copied..start]);
                    buf.push('"');
                    buf.push_str(&input[start..i]);
                    buf.push('"');
                    copied = i;
                    expect_key = false;
                    continue;
                }
                expect_key = false;
            }
            _ => expect_key = false,
        }
        i += 1;
    }
    match out {
        Some(mut buf) => {
            buf.push_str(&input[copied..]);
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(input),
    }
}

/// The index of the bracket closing the one at `open`, skipping strings.
fn matching_close(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = open;
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            match byte {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Deserializers that accept what RocketMQ peers actually send.
pub mod lenient {
    use std::fmt;

    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

    use crate::code::LanguageCode;

    /// A JSON scalar rendered as fastjson renders it into a Java `String` field.
    struct Scalar(Option<String>);

    impl<'de> de::Deserialize<'de> for Scalar {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ScalarVisitor)
        }
    }

    struct ScalarVisitor;

    impl<'de> Visitor<'de> for ScalarVisitor {
        type Value = Scalar;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string, number, boolean or null")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
            Ok(Scalar(Some(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
            Ok(Scalar(Some(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
            Ok(Scalar(Some(v.to_string())))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
            Ok(Scalar(Some(v.to_string())))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
            Ok(Scalar(Some(v.to_string())))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
            Ok(Scalar(Some(v.to_string())))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
            Ok(Scalar(None))
        }
        fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
            Ok(Scalar(None))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
            let value: serde_json::Value =
                de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
            Ok(Scalar(Some(value.to_string())))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
            let value: serde_json::Value =
                de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
            Ok(Scalar(Some(value.to_string())))
        }
    }

    /// A string field that may arrive as a number, boolean or null.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(<Scalar as de::Deserialize>::deserialize(d)?.0)
    }

    /// A string field that may arrive as a number or boolean; null reads as empty.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(opt_string(d)?.unwrap_or_default())
    }

    /// A `String -> String` map whose values may be numbers, booleans or nested JSON
    /// (rendered as text); null values are dropped, as fastjson drops them. Builds any map
    /// that can be extended with string pairs ([`ExtFields`](crate::command::ExtFields), `BTreeMap<String, String>`).
    pub fn string_map<'de, D, M>(d: D) -> Result<M, D::Error>
    where
        D: Deserializer<'de>,
        M: Default + Extend<(String, String)>,
    {
        struct MapVisitor<M>(std::marker::PhantomData<M>);
        impl<'de, M: Default + Extend<(String, String)>> Visitor<'de> for MapVisitor<M> {
            type Value = M;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of scalars, or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<M, E> {
                Ok(M::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<M, E> {
                Ok(M::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<M, A::Error> {
                let mut out = M::default();
                while let Some((key, value)) = map.next_entry::<String, Scalar>()? {
                    if let Some(value) = value.0 {
                        out.extend(std::iter::once((key, value)));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(MapVisitor(std::marker::PhantomData))
    }

    fn parse_number<E: de::Error, T: std::str::FromStr>(s: &str, what: &str) -> Result<T, E> {
        s.trim()
            .parse()
            .map_err(|_| E::custom(format!("expected {what}, got {s:?}")))
    }

    /// Reads an integer field without allocating: JSON numbers directly, strings parsed,
    /// null as 0; booleans, arrays and objects are errors. (This is on the path of every
    /// JSON header, so it avoids the `Scalar` detour through a `String`.)
    struct IntVisitor<T>(std::marker::PhantomData<T>);

    impl<'de, T> Visitor<'de> for IntVisitor<T>
    where
        T: std::str::FromStr + TryFrom<i64> + TryFrom<u64> + Default,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer, a string holding one, or null")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            // As before: a float that prints as an integer (`3.0` -> "3") is accepted.
            parse_number(&v.to_string(), "an integer")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            parse_number(v, "an integer")
        }
        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
            d.deserialize_any(self)
        }
    }

    macro_rules! lenient_int {
        ($name:ident, $ty:ty) => {
            #[doc = concat!("A `", stringify!($ty), "` that may arrive as a string or null (read as 0).")]
            pub fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                d.deserialize_any(IntVisitor::<$ty>(std::marker::PhantomData))
            }
        };
    }
    lenient_int!(i32, i32);
    lenient_int!(i64, i64);
    lenient_int!(u32, u32);

    /// A boolean that may arrive as `true`/`false`, `"true"`/`"false"`, `0`/`1` or
    /// `"0"`/`"1"`; null reads as false.
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match <Scalar as de::Deserialize>::deserialize(d)?.0.as_deref() {
            None => Ok(false),
            Some(s) => super::parse_bool(s)
                .ok_or_else(|| de::Error::custom(format!("expected a boolean, got {s:?}"))),
        }
    }

    /// A language given by name (`"JAVA"`) or ordinal (`0`); unknown names read as `OTHER`.
    pub fn language<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LanguageCode>, D::Error> {
        struct LanguageVisitor;
        impl<'de> Visitor<'de> for LanguageVisitor {
            type Value = Option<LanguageCode>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a language name or ordinal")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Some(match s.parse::<u8>() {
                    Ok(n) => LanguageCode::from_u8_lenient(n),
                    Err(_) => LanguageCode::from_name(s).unwrap_or(LanguageCode::Other),
                }))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Some(u8::try_from(v).map_or(
                    LanguageCode::Other,
                    LanguageCode::from_u8_lenient,
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Some(u8::try_from(v).map_or(
                    LanguageCode::Other,
                    LanguageCode::from_u8_lenient,
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                self.visit_str(if v { "true" } else { "false" })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                <de::IgnoredAny as de::Deserialize>::deserialize(
                    de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(Some(LanguageCode::Other))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                <de::IgnoredAny as de::Deserialize>::deserialize(
                    de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(Some(LanguageCode::Other))
            }
        }
        d.deserialize_any(LanguageVisitor)
    }
}

/// Reads a boolean the way RocketMQ peers write them: `true`/`false` (any case) or `1`/`0`.
pub fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") || value == "1" {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") || value == "0" {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_bare_numeric_keys_only() {
        let input = r#"{"brokerAddrs":{0:"127.0.0.1:10911", 1 :"x:1"},"list":[1,2,{3:"a"}],"s":"{4:5,6:7}"}"#;
        assert_eq!(
            quote_bare_keys(input),
            r#"{"brokerAddrs":{"0":"127.0.0.1:10911", "1" :"x:1"},"list":[1,2,{"3":"a"}],"s":"{4:5,6:7}"}"#
        );
        let standard = r#"{"a":{"0":1},"b":[1,2],"c":"x\"{1:2}"}"#;
        assert!(matches!(quote_bare_keys(standard), Cow::Borrowed(_)));
    }

    #[test]
    fn quotes_object_keys_and_leaves_values_alone() {
        let input = r#"{"a":{"b":1},"c":[{"d":2}],"e":"{x}:y",{"k":[1,"}"]}:3,7:{"q":1}}"#;
        assert_eq!(
            quote_bare_keys(input),
            r#"{"a":{"b":1},"c":[{"d":2}],"e":"{x}:y","{\"k\":[1,\"}\"]}":3,"7":{"q":1}}"#
        );
        assert!(matches!(
            quote_bare_keys(r#"{"a":[1,{"b":2}]}"#),
            Cow::Borrowed(_)
        ));
        // An unterminated object key is left for the parser to reject.
        assert!(parse::<serde_json::Value>("body", br#"{{"a":1:2}"#).is_err());
    }

    #[test]
    fn parse_accepts_fastjson_route() {
        let value: serde_json::Value = parse(
            "route",
            br#"{"brokerDatas":[{"brokerAddrs":{0:"a:1",1:"b:2"}}]}"#,
        )
        .unwrap();
        assert_eq!(value["brokerDatas"][0]["brokerAddrs"]["1"], "b:2");
        assert!(parse::<serde_json::Value>("route", b"{0:").is_err());
        assert!(parse::<serde_json::Value>("route", &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn booleans() {
        for (s, b) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("false", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(s), Some(b));
        }
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn lenient_integers_and_languages() {
        #[derive(serde::Deserialize)]
        struct Probe {
            #[serde(default, deserialize_with = "lenient::i32")]
            n: i32,
            #[serde(default, deserialize_with = "lenient::language")]
            l: Option<crate::code::LanguageCode>,
        }
        let read = |text: &str| serde_json::from_str::<Probe>(text).map(|p| (p.n, p.l));
        use crate::code::LanguageCode::{Cpp, Java, Other};
        assert_eq!(read(r#"{"n":7,"l":"JAVA"}"#).unwrap(), (7, Some(Java)));
        assert_eq!(read(r#"{"n":" -7 ","l":1}"#).unwrap(), (-7, Some(Cpp)));
        assert_eq!(read(r#"{"n":null,"l":null}"#).unwrap(), (0, None));
        assert_eq!(read(r#"{"n":3.0,"l":"x"}"#).unwrap(), (3, Some(Other)));
        assert_eq!(read(r#"{"l":[1],"n":1}"#).unwrap(), (1, Some(Other)));
        assert_eq!(read(r#"{"l":300}"#).unwrap(), (0, Some(Other)));
        for bad in [
            r#"{"n":true}"#,
            r#"{"n":2147483648}"#,
            r#"{"n":[1]}"#,
            r#"{"n":1.5}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
