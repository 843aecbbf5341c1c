//! Evaluation of a compiled selector against one message's properties, with RocketMQ's
//! semantics (`ComparisonExpression`, `LogicExpression`, `UnaryExpression`):
//!
//! - a property is a string, or null when the message does not have it;
//! - a comparison with null is null (unknown); `AND`/`OR` are three-valued; a message
//!   matches only when the whole expression is TRUE;
//! - a string compared with a number is read as that number (`a > 5` reads `a` as an
//!   integer, `a > 5.0` as a double); two strings compared with `> >= < <=` are read as
//!   doubles; a string that is not such a number makes the expression fail, and a failing
//!   expression does not match (RocketMQ logs the exception and skips the message);
//! - `CONTAINS`/`STARTSWITH`/`ENDSWITH` and their `NOT` forms are FALSE on a missing
//!   property; `IN`/`NOT IN` are null on it.
//!
//! Allocation-free: values borrow the expression's constants and the message's bytes.

use std::cmp::Ordering;

use super::error::EvalError;
use super::expr::{Expr, Literal, StrOp};

/// Where property values come from.
pub trait Properties {
    /// The value of the property `name`, if the message has it.
    fn get(&self, name: &str) -> Option<&str>;
}

/// Properties of a stored message, read from its encoded properties string
/// (`name\x01value\x02…`) without copying. When a name repeats, the last value wins, as in
/// Java's properties map.
#[derive(Debug, Clone, Copy)]
pub struct EncodedProperties<'a>(pub &'a [u8]);

impl Properties for EncodedProperties<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        ringmq_wire::record::properties_iter(self.0)
            .filter(|(k, _)| *k == name.as_bytes())
            .last()
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

impl<S: AsRef<str>> Properties for [(S, S)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// A runtime value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// Unknown / absent.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// A string.
    Str(&'a str),
}

impl Value<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "double",
            Value::Str(_) => "string",
        }
    }
}

type Eval<'a> = Result<Value<'a>, EvalError>;

/// Whether the expression is TRUE for these properties (null, FALSE and errors are not).
pub fn matches(expr: &Expr, props: &(impl Properties + ?Sized)) -> bool {
    matches!(evaluate(expr, props), Ok(Value::Bool(true)))
}

/// Evaluates the expression to a value (TRUE, FALSE, null, …) or an error.
pub fn evaluate<'a>(expr: &'a Expr, props: &'a (impl Properties + ?Sized)) -> Eval<'a> {
    Ok(match expr {
        Expr::Literal(l) => literal(l),
        Expr::Property(name) => props.get(name).map_or(Value::Null, Value::Str),
        Expr::Negate(inner) => match evaluate(inner, props)? {
            Value::Int(v) => Value::Int(v.wrapping_neg()),
            Value::Float(v) => Value::Float(-v),
            _ => Value::Null,
        },
        Expr::Not(inner) => match evaluate(inner, props)? {
            Value::Bool(b) => Value::Bool(!b),
            Value::Null => Value::Null,
            other => return Err(incomparable(other, Value::Bool(true))),
        },
        Expr::BoolCast(inner) => match evaluate(inner, props)? {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            _ => Value::Bool(false),
        },
        Expr::And(l, r) => {
            let lv = boolean(evaluate(l, props)?)?;
            if lv == Some(false) {
                return Ok(Value::Bool(false));
            }
            let rv = boolean(evaluate(r, props)?)?;
            match (lv, rv) {
                (_, Some(false)) => Value::Bool(false),
                (Some(true), Some(true)) => Value::Bool(true),
                _ => Value::Null,
            }
        }
        Expr::Or(l, r) => {
            let lv = boolean(evaluate(l, props)?)?;
            if lv == Some(true) {
                return Ok(Value::Bool(true));
            }
            let rv = boolean(evaluate(r, props)?)?;
            match (lv, rv) {
                (_, Some(true)) => Value::Bool(true),
                (Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            }
        }
        Expr::Equal(l, r) => equal(evaluate(l, props)?, evaluate(r, props)?)?,
        Expr::Relational(op, l, r) => {
            let lv = evaluate(l, props)?;
            if lv == Value::Null {
                return Ok(Value::Null);
            }
            let rv = evaluate(r, props)?;
            if rv == Value::Null {
                return Ok(Value::Null);
            }
            let ordering = match (lv, rv) {
                // Two strings: both read as doubles, or the comparison is illegal.
                (Value::Str(a), Value::Str(b)) => java_double_cmp(parse_f64(a)?, parse_f64(b)?),
                _ => compare(lv, rv)?,
            };
            Value::Bool(op.holds(ordering))
        }
        Expr::In {
            property,
            values,
            negated,
        } => match props.get(property) {
            None => Value::Null,
            Some(v) => {
                Value::Bool(values.binary_search_by(|x| x.as_str().cmp(v)).is_ok() ^ negated)
            }
        },
        Expr::StrMatch {
            op,
            value,
            search,
            negated,
        } => {
            if search.is_empty() {
                return Ok(Value::Bool(false));
            }
            match evaluate(value, props)? {
                Value::Str(s) => {
                    let hit = match op {
                        StrOp::Contains => s.contains(search.as_str()),
                        StrOp::StartsWith => s.starts_with(search.as_str()),
                        StrOp::EndsWith => s.ends_with(search.as_str()),
                    };
                    Value::Bool(hit ^ negated)
                }
                _ => Value::Bool(false),
            }
        }
    })
}

fn literal(l: &Literal) -> Value<'_> {
    match l {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Int(v) => Value::Int(*v),
        Literal::Float(v) => Value::Float(*v),
        Literal::Str(s) => Value::Str(s),
    }
}

fn boolean(v: Value<'_>) -> Result<Option<bool>, EvalError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        other => Err(incomparable(other, Value::Bool(true))),
    }
}

fn incomparable(l: Value<'_>, r: Value<'_>) -> EvalError {
    EvalError::Incomparable {
        left: l.type_name(),
        right: r.type_name(),
    }
}

/// `=`: null on the left only is null; null on the right only is FALSE; both null is TRUE
/// (this is how `IS NULL` works); otherwise equal values, or values equal once converted.
fn equal<'a>(lv: Value<'a>, rv: Value<'a>) -> Eval<'a> {
    Ok(match (lv, rv) {
        (Value::Null, Value::Null) => Value::Bool(true),
        (Value::Null, _) => Value::Null,
        (_, Value::Null) => Value::Bool(false),
        (Value::Str(a), Value::Str(b)) => Value::Bool(a == b),
        (Value::Bool(a), Value::Bool(b)) => Value::Bool(a == b),
        _ => Value::Bool(compare(lv, rv)? == Ordering::Equal),
    })
}

/// RocketMQ's `__compare` with string conversion on: values of different types are brought
/// to the type of the other side; booleans never equal numbers.
fn compare(lv: Value<'_>, rv: Value<'_>) -> Result<Ordering, EvalError> {
    use Value::*;
    Ok(match (lv, rv) {
        (Int(a), Int(b)) => a.cmp(&b),
        (Float(a), Float(b)) => java_double_cmp(a, b),
        (Int(a), Float(b)) => java_double_cmp(a as f64, b),
        (Float(a), Int(b)) => java_double_cmp(a, b as f64),
        (Str(a), Str(b)) => java_string_cmp(a, b),
        (Bool(a), Bool(b)) => a.cmp(&b),
        (Int(a), Str(b)) => a.cmp(&parse_i64(b)?),
        (Str(a), Int(b)) => parse_i64(a)?.cmp(&b),
        (Float(a), Str(b)) => java_double_cmp(a, parse_f64(b)?),
        (Str(a), Float(b)) => java_double_cmp(parse_f64(a)?, b),
        (Str(a), Bool(b)) => a.eq_ignore_ascii_case("true").cmp(&b),
        // Java casts the boolean to a string here and throws.
        (Bool(_), Str(_)) => return Err(incomparable(lv, rv)),
        // Mixed boolean/number: "-1", never equal.
        (Bool(_), Int(_) | Float(_)) | (Int(_) | Float(_), Bool(_)) => Ordering::Less,
        (Null, _) | (_, Null) => return Err(incomparable(lv, rv)),
    })
}

/// Java `Long.valueOf`: an optional sign and ASCII digits, nothing else.
fn parse_i64(s: &str) -> Result<i64, EvalError> {
    s.parse::<i64>().map_err(|_| EvalError::NotANumber {
        value: s.chars().take(64).collect(),
    })
}

/// Java `Double.valueOf`: surrounding whitespace and a trailing `d`/`f` are allowed.
fn parse_f64(s: &str) -> Result<f64, EvalError> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let t = t
        .strip_suffix(['d', 'D', 'f', 'F'])
        .filter(|rest| !rest.is_empty() && !rest.ends_with(['e', 'E', '+', '-']))
        .unwrap_or(t);
    let lower = t.trim_start_matches(['+', '-']);
    // Java spells them NaN and Infinity only.
    let named = lower.eq_ignore_ascii_case("nan")
        || lower.eq_ignore_ascii_case("inf")
        || lower.eq_ignore_ascii_case("infinity");
    if named && lower != "NaN" && lower != "Infinity" {
        return Err(EvalError::NotANumber {
            value: s.chars().take(64).collect(),
        });
    }
    t.parse::<f64>().map_err(|_| EvalError::NotANumber {
        value: s.chars().take(64).collect(),
    })
}

/// Java `Double.compareTo`: -0.0 < 0.0, NaN equals itself and is above everything.
fn java_double_cmp(a: f64, b: f64) -> Ordering {
    match a.partial_cmp(&b) {
        Some(Ordering::Equal) | None => {
            let bits = |v: f64| {
                if v.is_nan() {
                    f64::NAN.to_bits() as i64
                } else {
                    v.to_bits() as i64
                }
            };
            bits(a).cmp(&bits(b))
        }
        Some(o) => o,
    }
}

/// Java `String.compareTo`: by UTF-16 code units.
fn java_string_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}
