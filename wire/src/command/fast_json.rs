//! A fast path for the JSON header: a hand-written parser for the shape RocketMQ clients
//! actually send (a flat object; scalar `extFields` values; integers for the numeric fields;
//! strings with the usual escapes). It allocates only the strings it returns.
//!
//! It either produces exactly what the serde path ([`super::decode_json_header`]'s
//! fallback) would, or gives up (`None`) and lets the serde path decide: anything unusual —
//! nested values, numbers that are not plain integers, surrogate escapes, duplicate fields,
//! numbers as strings, invalid UTF-8, trailing bytes — goes there. A differential property
//! test holds the two paths to the same results.

use std::borrow::Cow;

use bytes::Bytes;

use super::{ExtFields, FieldStr, RemotingCommand, SerializeType};
use crate::code::LanguageCode;

/// Parses a JSON header, or returns `None` to defer to the serde path.
pub(super) fn parse_header(input: &[u8]) -> Option<RemotingCommand> {
    // Validated once here, so that every string below is a slice of `text` (char-boundary
    // checked) instead of being validated again on its own.
    let text = std::str::from_utf8(input).ok()?;
    let mut parser = Parser { text, input, at: 0 };
    let mut command = RemotingCommand {
        code: 0,
        language: LanguageCode::Other,
        version: 0,
        opaque: 0,
        flag: 0,
        remark: None,
        ext_fields: ExtFields::new(),
        body: Bytes::new(),
        serialize_type: SerializeType::Json,
    };
    // Bit per known field, to give up on duplicates (serde rejects them).
    let mut seen = 0u8;
    parser.expect(b'{')?;
    if !parser.eat(b'}') {
        loop {
            let key = parser.string_cow()?;
            parser.expect(b':')?;
            let bit = match key.as_ref() {
                "code" => {
                    command.code = parser.int()?;
                    1
                }
                "language" => {
                    let name = parser.string_cow()?;
                    command.language = match name.parse::<u8>() {
                        Ok(n) => LanguageCode::from_u8_lenient(n),
                        Err(_) => LanguageCode::from_name(&name).unwrap_or(LanguageCode::Other),
                    };
                    2
                }
                "version" => {
                    command.version = parser.int()?;
                    4
                }
                "opaque" => {
                    command.opaque = parser.int()?;
                    8
                }
                "flag" => {
                    command.flag = parser.int()?;
                    16
                }
                "remark" => {
                    command.remark = if parser.eat_literal(b"null") {
                        None
                    } else {
                        Some(parser.string()?)
                    };
                    32
                }
                "extFields" => {
                    parser.ext_fields(&mut command.ext_fields)?;
                    64
                }
                _ => {
                    parser.skip_scalar()?;
                    0
                }
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            if parser.eat(b',') {
                continue;
            }
            parser.expect(b'}')?;
            break;
        }
    }
    parser.skip_whitespace();
    (parser.at == input.len()).then_some(command)
}

/// A parsed string as a field: borrowed text is copied inline when short; an unescaped
/// `String` keeps its buffer.
fn field_str(text: Cow<'_, str>) -> FieldStr {
    match text {
        Cow::Borrowed(text) => FieldStr::from(text),
        Cow::Owned(text) => FieldStr::from(text),
    }
}

struct Parser<'a> {
    /// The whole header, valid UTF-8.
    text: &'a str,
    /// `text` as bytes.
    input: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.input.get(self.at).copied()
    }

    /// Consumes `byte` (after whitespace) if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// Consumes a literal (`null`, `true`, `false`) if it is next and ends there.
    fn eat_literal(&mut self, literal: &[u8]) -> bool {
        self.skip_whitespace();
        let end = self.at + literal.len();
        if self.input.get(self.at..end) == Some(literal) && !self.continues_token(end) {
            self.at = end;
            true
        } else {
            false
        }
    }

    /// Whether a token running to `end` would continue past it (so it is not what we think).
    fn continues_token(&self, end: usize) -> bool {
        matches!(self.input.get(end), Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'_'))
    }

    /// A string literal, unescaped, owned.
    fn string(&mut self) -> Option<String> {
        self.string_cow().map(Cow::into_owned)
    }

    /// A string literal, unescaped; borrowed from the input when it has no escapes.
    fn string_cow(&mut self) -> Option<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.at;
        // Plain run: no escapes, no control characters; skip 8 clean bytes at a time.
        self.skip_clean_words();
        while let Some(&byte) = self.input.get(self.at) {
            match byte {
                b'"' => {
                    let text = self.text.get(start..self.at)?;
                    self.at += 1;
                    return Some(Cow::Borrowed(text));
                }
                b'\\' => break,
                0x00..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        self.escaped_string(start).map(Cow::Owned)
    }

    /// Advances over 8-byte words that hold no quote, backslash or control character.
    fn skip_clean_words(&mut self) {
        while let Some(chunk) = self.input.get(self.at..self.at + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if super::needs_escape(u64::from_le_bytes(word)) {
                break;
            }
            self.at += 8;
        }
    }

    /// The rest of a string that contains escapes, from its first byte at `start`; `at` is
    /// on the first backslash. Unescaped runs are copied whole (they are slices of valid
    /// UTF-8 between ASCII delimiters).
    fn escaped_string(&mut self, start: usize) -> Option<String> {
        // Unescaping never lengthens a string: the rest of the input bounds it.
        let mut out = String::with_capacity((self.input.len() - start).min(256));
        out.push_str(self.text.get(start..self.at)?);
        loop {
            let byte = *self.input.get(self.at)?;
            self.at += 1;
            match byte {
                b'"' => return Some(out),
                0x00..=0x1f => return None,
                b'\\' => {
                    let escape = *self.input.get(self.at)?;
                    self.at += 1;
                    match escape {
                        b'"' | b'\\' | b'/' => out.push(char::from(escape)),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hex = self.text.get(self.at..self.at + 4)?;
                            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                                return None;
                            }
                            let code = u32::from_str_radix(hex, 16).ok()?;
                            // Surrogates (pairs or lone) are left to serde.
                            out.push(char::from_u32(code)?);
                            self.at += 4;
                        }
                        _ => return None,
                    }
                }
                _ => {
                    // A run up to the next quote, backslash or control character.
                    let run = self.at - 1;
                    self.skip_clean_words();
                    while let Some(&next) = self.input.get(self.at) {
                        if matches!(next, b'"' | b'\\' | 0x00..=0x1f) {
                            break;
                        }
                        self.at += 1;
                    }
                    out.push_str(self.text.get(run..self.at)?);
                }
            }
        }
    }

    /// A plain integer literal (`0`, `-12`, at most 18 digits), as text.
    fn integer_text(&mut self) -> Option<&str> {
        self.skip_whitespace();
        let start = self.at;
        if self.input.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let digits_start = self.at;
        while let Some(b'0'..=b'9') = self.input.get(self.at) {
            self.at += 1;
        }
        let digits = &self.input[digits_start..self.at];
        let plain = !digits.is_empty()
            && digits.len() <= 18
            && (digits[0] != b'0' || digits.len() == 1)
            && !(digits == b"0" && digits_start > start)
            && !self.continues_token(self.at);
        if !plain {
            return None;
        }
        self.text.get(start..self.at)
    }

    /// An `i32` given as a plain JSON integer.
    fn int(&mut self) -> Option<i32> {
        self.integer_text()?.parse().ok()
    }

    /// `extFields`: an object of strings, plain integers, booleans and nulls.
    fn ext_fields(&mut self, out: &mut ExtFields) -> Option<()> {
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Some(());
        }
        if out.is_empty() {
            *out = ExtFields::with_capacity(super::EXT_FIELDS_CAPACITY);
        }
        // Clients send the keys sorted, so each insert appends without searching. Duplicate
        // keys keep their last value, as repeated inserts (the serde path) do.
        loop {
            let key = field_str(self.string_cow()?);
            self.expect(b':')?;
            let value = match self.peek()? {
                b'"' => Some(field_str(self.string_cow()?)),
                b't' if self.eat_literal(b"true") => Some(FieldStr::const_new("true")),
                b'f' if self.eat_literal(b"false") => Some(FieldStr::const_new("false")),
                b'n' if self.eat_literal(b"null") => None,
                _ => Some(FieldStr::from(self.integer_text()?)),
            };
            // fastjson (and the serde path) drop null values.
            if let Some(value) = value {
                out.insert(key, value);
            }
            if self.eat(b',') {
                continue;
            }
            self.expect(b'}')?;
            return Some(());
        }
    }

    /// Skips the value of an unknown field, if it is a scalar.
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string_cow().map(drop),
            b't' => self.eat_literal(b"true").then_some(()),
            b'f' => self.eat_literal(b"false").then_some(()),
            b'n' => self.eat_literal(b"null").then_some(()),
            _ => self.integer_text().map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::command::decode_json_header_serde;

    #[test]
    fn stock_headers_take_the_fast_path() {
        let headers: [&[u8]; 3] = [
            br#"{"code":310,"extFields":{"a":"PG","d":4,"i":"TAGS\u0001A\u0002","k":false,"z":null},"flag":0,"language":"CPP","opaque":42,"serializeTypeCurrentRPC":"JSON","version":401}"#,
            br#" { "code" : 34 , "language" : "JAVA" , "remark" : null , "version" : -1 } "#,
            br#"{}"#,
        ];
        let dup = parse_header(br#"{"extFields":{"b":"1","a":"x","b":"2","a":null}}"#).unwrap();
        assert_eq!(dup.ext("b"), Some("2"));
        assert_eq!(dup.ext("a"), Some("x"));
        for header in headers {
            let fast = parse_header(header).expect("fast path");
            assert_eq!(Ok(fast), decode_json_header_serde(header));
        }
    }

    #[test]
    fn unusual_headers_are_left_to_serde() {
        let headers: [&[u8]; 13] = [
            br#"{"code":"310"}"#,
            br#"{"code":1.0}"#,
            br#"{"code":-0}"#,
            br#"{"code":01}"#,
            br#"{"code":1,"code":2}"#,
            br#"{"language":0}"#,
            br#"{"extFields":null}"#,
            br#"{"extFields":{"a":[1]}}"#,
            br#"{"extFields":{"a":1e3}}"#,
            br#"{"remark":"\ud83d\ude00"}"#,
            br#"{"other":{"x":1}}"#,
            br#"{"code":1} x"#,
            b"{\"remark\":\"\x01\"}",
        ];
        for header in headers {
            assert_eq!(
                parse_header(header),
                None,
                "{}",
                String::from_utf8_lossy(header)
            );
        }
    }

    /// JSON text for a value the fast path may or may not accept.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (-5i32..5).prop_map(|n| n.to_string()),
            "\\PC{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("\"a\\u0001b\\n\\\"c\\/\"".to_owned()),
            Just("\"\\ud83d\\ude00\"".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("null".to_owned()),
            Just("1.5".to_owned()),
            Just("-0".to_owned()),
            Just("007".to_owned()),
            Just("12345678901234567890".to_owned()),
            Just("[1,{\"a\":2}]".to_owned()),
            Just("{\"x\":null}".to_owned()),
            Just("\"310\"".to_owned()),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("code"),
            Just("language"),
            Just("version"),
            Just("opaque"),
            Just("flag"),
            Just("remark"),
            Just("serializeTypeCurrentRPC"),
            Just("unknown"),
        ]
        .prop_map(str::to_owned)
    }

    fn header() -> impl Strategy<Value = String> {
        let ext = proptest::collection::vec(("[a-n]{1,2}", value()), 0..8).prop_map(|entries| {
            let body: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", body.join(","))
        });
        let ext = prop_oneof![ext, value()];
        (
            proptest::collection::vec((key(), value()), 0..8),
            proptest::option::of(ext),
            prop_oneof![Just(""), Just(" "), Just("\n\t")],
        )
            .prop_map(|(fields, ext, space)| {
                let mut parts: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("{space}\"{k}\"{space}:{space}{v}"))
                    .collect();
                if let Some(ext) = ext {
                    parts.push(format!("\"extFields\":{space}{ext}"));
                }
                format!("{space}{{{}}}{space}", parts.join(","))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whenever the fast path answers, it answers what serde answers.
        #[test]
        fn fast_path_agrees_with_serde(text in header()) {
            if let Some(fast) = parse_header(text.as_bytes()) {
                prop_assert_eq!(Ok(fast), decode_json_header_serde(text.as_bytes()), "{}", text);
            }
        }

        #[test]
        fn fast_path_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Some(fast) = parse_header(&bytes) {
                prop_assert_eq!(Ok(fast), decode_json_header_serde(&bytes));
            }
        }
    }
}
