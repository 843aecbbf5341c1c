//! The compiled form of a SQL92 selector: a tree of the node kinds RocketMQ's parser builds
//! (`ComparisonExpression`, `LogicExpression`, `UnaryExpression`, …), with the syntactic
//! sugar (`<>`, `IS [NOT] NULL`, `[NOT] BETWEEN`) already expanded the same way.
//!
//! Immutable once built; shared by every pull of the subscriptions that use it.

/// A constant of the expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `NULL`.
    Null,
    /// `TRUE` / `FALSE`.
    Bool(bool),
    /// A decimal integer (Java `Integer`/`Long`).
    Int(i64),
    /// A floating-point number (Java `Double`).
    Float(f64),
    /// A string.
    Str(String),
}

/// Relational operators (numbers only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
}

impl RelOp {
    /// Whether a comparison result (`-1`, `0`, `1`) satisfies the operator.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            RelOp::Gt => ordering == Greater,
            RelOp::Ge => ordering != Less,
            RelOp::Lt => ordering == Less,
            RelOp::Le => ordering != Greater,
        }
    }
}

/// String predicates (`CONTAINS`, `STARTSWITH`, `ENDSWITH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrOp {
    /// `CONTAINS`.
    Contains,
    /// `STARTSWITH`.
    StartsWith,
    /// `ENDSWITH`.
    EndsWith,
}

/// One node.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant.
    Literal(Literal),
    /// A message property (`TAGS`, `KEYS`, user properties), by exact name.
    Property(String),
    /// Unary minus.
    Negate(Box<Expr>),
    /// `NOT`.
    Not(Box<Expr>),
    /// A property used where a boolean is expected (`WHERE flag`): true only for a boolean.
    BoolCast(Box<Expr>),
    /// `AND`.
    And(Box<Expr>, Box<Expr>),
    /// `OR`.
    Or(Box<Expr>, Box<Expr>),
    /// `=` (and, negated, `<>`; against `NULL`, `IS NULL`).
    Equal(Box<Expr>, Box<Expr>),
    /// `>`, `>=`, `<`, `<=` (and the expansions of `[NOT] BETWEEN`).
    Relational(RelOp, Box<Expr>, Box<Expr>),
    /// `prop [NOT] IN ('a', 'b')`; `values` sorted, without duplicates.
    In {
        /// The property.
        property: String,
        /// The strings.
        values: Vec<String>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `x [NOT] CONTAINS|STARTSWITH|ENDSWITH 's'`.
    StrMatch {
        /// Which predicate.
        op: StrOp,
        /// The value tested.
        value: Box<Expr>,
        /// The string searched for.
        search: String,
        /// The `NOT` form.
        negated: bool,
    },
}

impl Expr {
    /// Whether RocketMQ's parser considers the node a `BooleanExpression` (usable with
    /// `AND`/`OR`/`NOT` as it is). Boolean and null constants are; so is every predicate.
    pub fn is_boolean(&self) -> bool {
        match self {
            Expr::Literal(Literal::Bool(_) | Literal::Null) => true,
            Expr::Literal(_) | Expr::Property(_) | Expr::Negate(_) => false,
            Expr::Not(_)
            | Expr::BoolCast(_)
            | Expr::And(..)
            | Expr::Or(..)
            | Expr::Equal(..)
            | Expr::Relational(..)
            | Expr::In { .. }
            | Expr::StrMatch { .. } => true,
        }
    }
}
