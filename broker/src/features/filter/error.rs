//! Errors of the SQL92 filter: a parse error with its position, and the evaluation error
//! that makes a message not match (RocketMQ's evaluator throws, and the broker treats a
//! throwing expression as "not matched").

/// Why an expression was rejected when compiled. The position is where the offending token
/// starts, 1-based, in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SQL92 expression at line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What is wrong.
    pub message: String,
}

/// Why an expression could not be evaluated against one message (a property that should
/// be a number is not, …). The message is not matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A string value could not be read as the number it is compared with.
    #[error("'{value}' is not a number")]
    NotANumber {
        /// The value.
        value: String,
    },
    /// Two values of these types cannot be compared (Java throws a ClassCastException).
    #[error("cannot compare {left} with {right}")]
    Incomparable {
        /// Left type.
        left: &'static str,
        /// Right type.
        right: &'static str,
    },
}
