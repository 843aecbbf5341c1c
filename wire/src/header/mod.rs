//! Typed request and response headers, one module per command family.
//!
//! A header travels as the command's `extFields`: string keys, string values. Each typed
//! header implements [`CommandHeader`]; the helpers here ([`Fields`]) read fields with errors
//! that name the field, and accept what stock clients send (`"true"`/`"1"` for booleans,
//! numbers with surrounding whitespace).
//!
//! This module also holds the machinery every header module uses: the crate-private
//! `header_struct!` macro that declares a header struct and its [`CommandHeader`] impl from a
//! field table, the [`FieldValue`] conversions behind it, and [`RpcFields`], the RPC fields
//! most topic requests carry.

use std::fmt::Display;
use std::str::FromStr;

use compact_str::ToCompactString;

use crate::command::{ExtFields, FieldStr, RemotingCommand};
use crate::error::WireError;

pub mod admin;
pub mod consumer;
pub mod namesrv;
pub mod offset;
pub mod pull;
pub mod query;
pub mod send;
pub mod transaction;

/// A typed header that converts to and from a command's `extFields`.
pub trait CommandHeader: Sized {
    /// Writes the fields (absent optional fields are not written).
    fn write_to(&self, fields: &mut ExtFields);

    /// Reads the fields; a missing or malformed required field is an error naming it.
    fn read_from(fields: &Fields<'_>) -> Result<Self, WireError>;

    /// Reads this header from a command.
    fn decode(command: &RemotingCommand) -> Result<Self, WireError> {
        Self::read_from(&Fields(&command.ext_fields))
    }

    /// Writes this header into a command's `extFields`.
    fn encode_into(&self, command: &mut RemotingCommand) {
        self.write_to(&mut command.ext_fields);
    }
}

/// Read access to `extFields` with typed, field-naming errors.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a>(pub &'a ExtFields);

impl<'a> Fields<'a> {
    /// A field's raw value, if present.
    pub fn get(&self, field: &str) -> Option<&'a str> {
        self.0.get(field)
    }

    /// The value of the first of several names that is present (e.g. a field and its alias).
    pub fn get_any(&self, fields: &[&str]) -> Option<&'a str> {
        fields.iter().find_map(|field| self.get(field))
    }

    /// A required string field.
    pub fn string(&self, field: &'static str) -> Result<String, WireError> {
        self.get(field)
            .map(str::to_owned)
            .ok_or(WireError::MissingField { field })
    }

    /// An optional string field.
    pub fn opt_string(&self, field: &str) -> Option<String> {
        self.get(field).map(str::to_owned)
    }

    /// A required number field.
    pub fn number<T: FromStr>(&self, field: &'static str) -> Result<T, WireError> {
        let raw = self.get(field).ok_or(WireError::MissingField { field })?;
        parse_number(field, raw)
    }

    /// An optional number field; present but malformed is an error.
    pub fn opt_number<T: FromStr>(&self, field: &'static str) -> Result<Option<T>, WireError> {
        self.get(field)
            .map(|raw| parse_number(field, raw))
            .transpose()
    }

    /// A required boolean field (`true`/`false` in any case, or `1`/`0`).
    pub fn boolean(&self, field: &'static str) -> Result<bool, WireError> {
        let raw = self.get(field).ok_or(WireError::MissingField { field })?;
        parse_boolean(field, raw)
    }

    /// An optional boolean field; present but malformed is an error.
    pub fn opt_boolean(&self, field: &'static str) -> Result<Option<bool>, WireError> {
        self.get(field)
            .map(|raw| parse_boolean(field, raw))
            .transpose()
    }
}

fn parse_number<T: FromStr>(field: &'static str, raw: &str) -> Result<T, WireError> {
    raw.trim()
        .parse()
        .map_err(|_| WireError::invalid_field(field, raw, "not a number in range"))
}

fn parse_boolean(field: &'static str, raw: &str) -> Result<bool, WireError> {
    crate::json::parse_bool(raw)
        .ok_or_else(|| WireError::invalid_field(field, raw, "not a boolean (true/false/1/0)"))
}

/// Helpers for [`CommandHeader::write_to`].
pub trait FieldsMut {
    /// Writes a field from anything displayable (integers, booleans and short strings are
    /// formatted inline, without allocating).
    fn put(&mut self, field: &str, value: impl Display);
    /// Writes a field if present.
    fn put_opt<T: Display>(&mut self, field: &str, value: Option<T>);
}

impl FieldsMut for ExtFields {
    fn put(&mut self, field: &str, value: impl Display) {
        self.insert(FieldStr::from(field), value.to_compact_string());
    }

    fn put_opt<T: Display>(&mut self, field: &str, value: Option<T>) {
        if let Some(value) = value {
            self.put(field, value);
        }
    }
}

/// A value that can be a header field: read from and written to its string form.
pub trait FieldValue: Sized {
    /// Reads the field if present; present but malformed is an error naming it.
    fn read(fields: &Fields<'_>, name: &'static str) -> Result<Option<Self>, WireError>;
    /// Writes the field.
    fn write(&self, fields: &mut ExtFields, name: &str);
}

impl FieldValue for String {
    fn read(fields: &Fields<'_>, name: &'static str) -> Result<Option<Self>, WireError> {
        Ok(fields.opt_string(name))
    }
    fn write(&self, fields: &mut ExtFields, name: &str) {
        fields.insert(FieldStr::from(name), FieldStr::from(self.as_str()));
    }
}

impl FieldValue for bool {
    fn read(fields: &Fields<'_>, name: &'static str) -> Result<Option<Self>, WireError> {
        fields.opt_boolean(name)
    }
    fn write(&self, fields: &mut ExtFields, name: &str) {
        let text = if *self { "true" } else { "false" };
        fields.insert(FieldStr::from(name), FieldStr::const_new(text));
    }
}

macro_rules! number_field_value {
    ($($ty:ty),*) => {$(
        impl FieldValue for $ty {
            fn read(fields: &Fields<'_>, name: &'static str) -> Result<Option<Self>, WireError> {
                fields.opt_number(name)
            }
            fn write(&self, fields: &mut ExtFields, name: &str) {
                // Formatted inline (`ToCompactString` is specialised for integers).
                fields.insert(FieldStr::from(name), self.to_compact_string());
            }
        }
    )*};
}
number_field_value!(i32, i64, u32, u64);

/// The name under which a field is present: `wire` itself, else the first present alias,
/// else `wire` (so that a missing field is reported under its wire name).
pub(crate) fn present_name(
    fields: &Fields<'_>,
    wire: &'static str,
    aliases: &[&'static str],
) -> &'static str {
    // Without aliases the answer is `wire` either way: no lookup (the caller looks the
    // field up next; every lookup here was a second one per field).
    if aliases.is_empty() || fields.get(wire).is_some() {
        return wire;
    }
    aliases
        .iter()
        .copied()
        .find(|alias| fields.get(alias).is_some())
        .unwrap_or(wire)
}

/// Declares a header struct from a field table and implements [`CommandHeader`] for it.
///
/// Each field is `req name: Type => "wireName"` (required: missing is
/// [`WireError::MissingField`]), `opt name: Type => "wireName"` (an `Option<Type>`), or
/// `flat name: Type => ""` (a nested [`CommandHeader`] whose fields sit beside ours).
/// `=> "wireName" | "alias"` also accepts the field under its aliases on read; it is
/// always written under its wire name.
macro_rules! header_struct {
    (@type req $ty:ty) => { $ty };
    (@type opt $ty:ty) => { Option<$ty> };
    (@type flat $ty:ty) => { $ty };
    (@read req $ty:ty, $fields:ident, $wire:literal, $aliases:expr) => {
        <$ty as $crate::header::FieldValue>::read(
            $fields,
            $crate::header::present_name($fields, $wire, $aliases),
        )?
        .ok_or($crate::error::WireError::MissingField { field: $wire })?
    };
    (@read opt $ty:ty, $fields:ident, $wire:literal, $aliases:expr) => {
        <$ty as $crate::header::FieldValue>::read(
            $fields,
            $crate::header::present_name($fields, $wire, $aliases),
        )?
    };
    (@read flat $ty:ty, $fields:ident, $wire:literal, $aliases:expr) => {
        <$ty as $crate::header::CommandHeader>::read_from($fields)?
    };
    (@write req $value:expr, $fields:ident, $wire:literal) => {
        $crate::header::FieldValue::write($value, $fields, $wire)
    };
    (@write opt $value:expr, $fields:ident, $wire:literal) => {
        if let Some(value) = $value {
            $crate::header::FieldValue::write(value, $fields, $wire)
        }
    };
    (@write flat $value:expr, $fields:ident, $wire:literal) => {
        $crate::header::CommandHeader::write_to($value, $fields)
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $kind:ident $field:ident : $ty:ty => $wire:literal $(| $alias:literal)*,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $crate::header::header_struct!(@type $kind $ty),
            )*
        }

        impl $crate::header::CommandHeader for $name {
            #[allow(unused_variables)]
            fn write_to(&self, fields: &mut $crate::command::ExtFields) {
                $( $crate::header::header_struct!(@write $kind &self.$field, fields, $wire); )*
            }

            #[allow(unused_variables)]
            fn read_from(
                fields: &$crate::header::Fields<'_>,
            ) -> Result<Self, $crate::error::WireError> {
                Ok($name {
                    $( $field: $crate::header::header_struct!(@read $kind $ty, fields, $wire, &[$($alias),*]), )*
                })
            }
        }
    };
}
pub(crate) use header_struct;

/// RocketMQ's RPC fields, carried by every request whose Java header extends
/// `RpcRequestHeader`/`TopicRequestHeader`: they steer proxies and static topics, and a broker
/// that serves queues directly only needs to tolerate them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpcFields {
    /// `ns`: namespace.
    pub namespace: Option<String>,
    /// `nsd`: whether the namespace has been applied to the names already.
    pub namespaced: Option<bool>,
    /// `bname`: the broker the request is meant for.
    pub broker_name: Option<String>,
    /// `oway`: the request is one-way.
    pub oneway: Option<bool>,
    /// `lo`: logical (static topic) queue request.
    pub logic: Option<bool>,
}

impl CommandHeader for RpcFields {
    fn write_to(&self, fields: &mut ExtFields) {
        let flags = [
            ("nsd", self.namespaced),
            ("oway", self.oneway),
            ("lo", self.logic),
        ];
        if let Some(ns) = &self.namespace {
            ns.write(fields, "ns");
        }
        if let Some(bname) = &self.broker_name {
            bname.write(fields, "bname");
        }
        for (name, value) in flags {
            if let Some(value) = value {
                value.write(fields, name);
            }
        }
    }

    fn read_from(fields: &Fields<'_>) -> Result<Self, WireError> {
        // Java reads these with Boolean.parseBoolean, which never fails: so do we.
        let flag = |name| fields.get(name).and_then(crate::json::parse_bool);
        Ok(RpcFields {
            namespace: fields.opt_string("ns"),
            namespaced: flag("nsd"),
            broker_name: fields.opt_string("bname"),
            oneway: flag("oway"),
            logic: flag("lo"),
        })
    }
}

/// Checks a header's contract: it round-trips through `extFields`, writes exactly the
/// `expected` wire names, and reading it without any one of the `required` names fails with
/// [`WireError::MissingField`] naming that field.
#[cfg(test)]
pub(crate) fn assert_header_contract<H>(header: &H, expected: &[&str], required: &[&str])
where
    H: CommandHeader + PartialEq + std::fmt::Debug,
{
    let mut fields = ExtFields::new();
    header.write_to(&mut fields);
    let mut written: Vec<&str> = fields.keys().map(FieldStr::as_str).collect();
    let mut expected = expected.to_vec();
    written.sort_unstable();
    expected.sort_unstable();
    assert_eq!(written, expected, "wire names of {header:?}");
    assert_eq!(H::read_from(&Fields(&fields)).as_ref(), Ok(header));
    for name in required {
        let mut without = fields.clone();
        without.remove(name);
        match H::read_from(&Fields(&without)) {
            Err(WireError::MissingField { field }) => assert_eq!(field, *name),
            other => panic!("without {name}: expected MissingField, got {other:?}"),
        }
    }
    for name in expected {
        let mut garbled = fields.clone();
        garbled.insert(name.into(), "\u{1}not-a-value".into());
        // Strings accept anything; numbers and booleans must fail naming the field.
        if let Err(error) = H::read_from(&Fields(&garbled)) {
            assert!(
                matches!(error, WireError::InvalidField { field, .. } if field == name),
                "garbled {name}: {error:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_name_the_field() {
        let mut ext = ExtFields::new();
        ext.put("queueId", " 3 ");
        ext.put("flag", "yes");
        ext.put("unitMode", "TRUE");
        let fields = Fields(&ext);
        assert_eq!(fields.number::<i32>("queueId"), Ok(3));
        assert_eq!(
            fields.string("topic"),
            Err(WireError::MissingField { field: "topic" })
        );
        assert!(matches!(
            fields.boolean("flag"),
            Err(WireError::InvalidField { field: "flag", .. })
        ));
        assert_eq!(fields.opt_boolean("unitMode"), Ok(Some(true)));
        assert_eq!(fields.opt_number::<i64>("absent"), Ok(None));
        assert!(fields.number::<u8>("queueId").is_ok());
        ext.put("big", "300");
        assert!(Fields(&ext).number::<u8>("big").is_err());
    }
}
