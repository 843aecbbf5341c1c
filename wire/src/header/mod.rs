//! Typed request and response headers, one module per command family.
//!
//! A header travels as the command's `extFields`: string keys, string values. Each typed
//! header implements [`CommandHeader`]; the helpers here ([`Fields`]) read fields with errors
//! that name the field, and accept what stock clients send (`"true"`/`"1"` for booleans,
//! numbers with surrounding whitespace).

use std::str::FromStr;

use crate::command::{ExtFields, RemotingCommand};
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
        self.0.get(field).map(String::as_str)
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
    /// Writes a field from anything displayable.
    fn put(&mut self, field: &str, value: impl ToString);
    /// Writes a field if present.
    fn put_opt<T: ToString>(&mut self, field: &str, value: Option<T>);
}

impl FieldsMut for ExtFields {
    fn put(&mut self, field: &str, value: impl ToString) {
        self.insert(field.to_owned(), value.to_string());
    }

    fn put_opt<T: ToString>(&mut self, field: &str, value: Option<T>) {
        if let Some(value) = value {
            self.put(field, value);
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
