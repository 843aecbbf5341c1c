//! Message filtering by SQL92 expression over message properties, RocketMQ's
//! `ExpressionType.SQL92` (`MessageSelector.bySql(..)` in the Java client).
//!
//! A consumer subscribes with `expressionType = SQL92` and a selector such as
//! `a > 5 AND TAGS IN ('x', 'y')`, in its heartbeat's subscription data and/or in each pull
//! (`subscription` + `expressionType` header fields). The broker compiles the selector once per
//! (group, topic, expression) ([`FilterCache`]), then, on each pull, reads the queue as
//! usual and keeps only the records whose stored properties make the selector TRUE
//! ([`read_filtered`]); the pull's next offset moves past the records it skipped, as tag
//! filtering does. Properties are read in place from the stored record: no body is copied.
//!
//! The dialect is RocketMQ's (`filter/.../SelectorParser.jj`): `AND OR NOT`, parentheses,
//! `= <> > >= < <=`, `[NOT] BETWEEN a AND b`, `[NOT] IN ('a', …)`, `IS [NOT] NULL`,
//! `[NOT] CONTAINS|STARTSWITH|ENDSWITH 's'`, string literals in single quotes, integers and
//! decimals, `TRUE`/`FALSE`/`NULL`. There is no `LIKE` (RocketMQ removed it from the
//! ActiveMQ grammar it started from). Identifiers are property names, exact case (`TAGS`,
//! `KEYS` and the user's properties). Semantics are in [`eval`].
//!
//! Enabled by `[filter] enable_property_filter` (RocketMQ's `enablePropertyFilter`), true by
//! default in ringmq. Everything here runs on the shard thread that serves the pull.
//!
//! ```
//! use ringmq_broker::features::filter::compile;
//!
//! let filter = compile("a > 5 AND TAGS IN ('x')").unwrap();
//! assert!(filter.matches(&[("a", "7"), ("TAGS", "x")][..]));
//! assert!(!filter.matches(&[("a", "3"), ("TAGS", "x")][..]));
//! assert!(!filter.matches(&[("TAGS", "x")][..])); // a missing: unknown, not matched
//! let error = compile("a > ").unwrap_err();
//! assert_eq!((error.line, error.column), (1, 5));
//! ```

pub mod cache;
pub mod error;
pub mod eval;
pub mod expr;
pub mod lexer;
pub mod limits;
pub mod parser;
pub mod pull;

use bytes::Bytes;
use ringmq_wire::ResponseCode;
use ringmq_wire::body::heartbeat::{EXPRESSION_TYPE_SQL92, EXPRESSION_TYPE_TAG, SubscriptionData};
use ringmq_wire::record::StoredMessage;

pub use cache::FilterCache;
pub use error::{EvalError, ParseError};
pub use eval::{EncodedProperties, Properties};
pub use pull::{for_subscription, read_filtered};

/// A compiled SQL92 selector.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    source: String,
    expr: expr::Expr,
}

/// Compiles a SQL92 selector.
pub fn compile(expression: &str) -> Result<SqlFilter, ParseError> {
    Ok(SqlFilter {
        source: expression.to_owned(),
        expr: parser::parse(expression)?,
    })
}

impl SqlFilter {
    /// The expression as the client wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The compiled tree.
    pub fn expr(&self) -> &expr::Expr {
        &self.expr
    }

    /// Whether the selector is TRUE for these properties.
    pub fn matches(&self, props: &(impl Properties + ?Sized)) -> bool {
        eval::matches(&self.expr, props)
    }

    /// Whether a stored record (RocketMQ CommitLog format) matches, judged on its properties.
    /// A record that does not decode is kept: the consumer then sees and reports it, as with
    /// tag filtering.
    pub fn matches_record(&self, record: &Bytes) -> bool {
        match StoredMessage::decode(record, false) {
            Ok(message) => self.matches(&EncodedProperties(message.properties_raw())),
            Err(_) => true,
        }
    }
}

/// Whether an `expressionType` means tag filtering (`TAG`, empty or absent), as Java's
/// `ExpressionType.isTagType`.
pub fn is_tag_type(expression_type: &str) -> bool {
    expression_type.is_empty() || expression_type == EXPRESSION_TYPE_TAG
}

/// Why a subscription cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Property filtering is switched off on this broker.
    #[error(
        "The broker does not support consumer to filter message by {expression_type}: \
         property filtering is disabled; set `enable_property_filter = true` in the [filter] \
         section of the broker configuration"
    )]
    Disabled {
        /// The subscription's expression type.
        expression_type: String,
    },
    /// The expression type is neither `TAG` nor `SQL92`.
    #[error("unsupported expressionType {expression_type:?}: ringmq filters by TAG or SQL92")]
    UnsupportedType {
        /// The type asked for.
        expression_type: String,
    },
    /// The expression does not parse.
    #[error("parse the consumer's subscription failed: {error}")]
    Parse {
        /// The parse error, with its position.
        error: ParseError,
        /// The expression came from the group's heartbeat, not the pull itself.
        registered: bool,
    },
}

impl FilterError {
    /// The response code RocketMQ answers with: `SYSTEM_ERROR` when disabled,
    /// `SUBSCRIPTION_PARSE_FAILED` for an expression carried by the request,
    /// `FILTER_DATA_NOT_EXIST` for a heartbeat-registered expression that did not compile.
    pub fn response_code(&self) -> ResponseCode {
        match self {
            FilterError::Disabled { .. } => ResponseCode::SystemError,
            FilterError::UnsupportedType { .. } => ResponseCode::SubscriptionParseFailed,
            FilterError::Parse {
                registered: true, ..
            } => ResponseCode::FilterDataNotExist,
            FilterError::Parse { .. } => ResponseCode::SubscriptionParseFailed,
        }
    }
}

/// Checks a subscription as `CHECK_CLIENT_CONFIG` does: tag subscriptions pass; SQL92 ones
/// need property filtering enabled and must compile.
pub fn check_subscription(
    cache: &mut FilterCache,
    enabled: bool,
    group: &str,
    subscription: &SubscriptionData,
) -> Result<(), FilterError> {
    for_subscription(cache, enabled, group, subscription, false).map(|_| ())
}

/// The expression type constant for SQL92 subscriptions.
pub const SQL92: &str = EXPRESSION_TYPE_SQL92;

#[cfg(test)]
mod tests;
