//! Recursive-descent parser for RocketMQ's SQL92 selector grammar (`SelectorParser.jj`),
//! with the same precedence (lowest first: `OR`, `AND`, `= <> IS`, `> >= < <= BETWEEN IN
//! CONTAINS STARTSWITH ENDSWITH`, unary `+ - NOT`) and the same build-time checks: only
//! numbers around `> >= < <=` and `BETWEEN`, no `NULL`/boolean constants compared with `=`,
//! a property on the left of `IN`, constant `BETWEEN` bounds in order, and a boolean result.
//!
//! Note the grammar's unary `NOT` binds tighter than comparisons: `NOT a = 1` reads
//! `(NOT a) = 1`, as in RocketMQ; write `NOT (a = 1)`.

use super::error::ParseError;
use super::expr::{Expr, Literal, RelOp, StrOp};
use super::lexer::{Tok, Token, tokenize};
use super::limits::{EXPRESSION_BYTES_MAX, EXPRESSION_NESTING_MAX, EXPRESSION_NODES_MAX};

/// Parses `src` into a boolean expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    if src.len() > EXPRESSION_BYTES_MAX {
        return Err(ParseError {
            line: 1,
            column: 1,
            message: format!(
                "expression of {} bytes; the limit is {EXPRESSION_BYTES_MAX}",
                src.len()
            ),
        });
    }
    let tokens = tokenize(src)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        nodes: 0,
        depth: 0,
    };
    let start = parser.position();
    let expr = parser.or()?;
    if parser.peek() != &Tok::Eof {
        return Err(parser.unexpected("an operator or the end of the expression"));
    }
    parser.as_boolean(expr, start)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    nodes: usize,
    depth: usize,
}

type Position = (u32, u32);

impl Parser {
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Tok {
        // The last token is always Eof.
        let i = (self.at + n).min(self.tokens.len() - 1);
        &self.tokens[i].tok
    }

    fn position(&self) -> Position {
        let t = &self.tokens[self.at.min(self.tokens.len() - 1)];
        (t.line, t.column)
    }

    fn next(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        tok
    }

    fn error_at(&self, (line, column): Position, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        self.error_at(
            self.position(),
            format!(
                "encountered \"{}\", was expecting {expected}",
                self.peek().describe()
            ),
        )
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), ParseError> {
        if self.peek() == tok {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// Counts one node against [`EXPRESSION_NODES_MAX`].
    fn node(&mut self, expr: Expr, at: Position) -> Result<Expr, ParseError> {
        self.nodes += 1;
        if self.nodes > EXPRESSION_NODES_MAX {
            return Err(self.error_at(
                at,
                format!("expression has more than {EXPRESSION_NODES_MAX} terms"),
            ));
        }
        Ok(expr)
    }

    fn nest(&mut self, at: Position) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > EXPRESSION_NESTING_MAX {
            return Err(self.error_at(
                at,
                format!("expression nested deeper than {EXPRESSION_NESTING_MAX} levels"),
            ));
        }
        Ok(())
    }

    /// RocketMQ's `asBooleanExpression`: predicates pass, a property becomes a boolean cast,
    /// anything else (a number, a string, a negation) is an error.
    fn as_boolean(&mut self, expr: Expr, at: Position) -> Result<Expr, ParseError> {
        if expr.is_boolean() {
            return Ok(expr);
        }
        if matches!(expr, Expr::Property(_)) {
            return self.node(Expr::BoolCast(Box::new(expr)), at);
        }
        Err(self.error_at(at, "expression will not result in a boolean value"))
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let start = self.position();
        let mut left = self.and()?;
        while self.peek() == &Tok::Or {
            let at = self.position();
            self.next();
            let right_at = self.position();
            let right = self.and()?;
            let l = self.as_boolean(left, start)?;
            let r = self.as_boolean(right, right_at)?;
            left = self.node(Expr::Or(Box::new(l), Box::new(r)), at)?;
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let start = self.position();
        let mut left = self.equality()?;
        while self.peek() == &Tok::And {
            let at = self.position();
            self.next();
            let right_at = self.position();
            let right = self.equality()?;
            let l = self.as_boolean(left, start)?;
            let r = self.as_boolean(right, right_at)?;
            left = self.node(Expr::And(Box::new(l), Box::new(r)), at)?;
        }
        Ok(left)
    }

    fn equality(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.comparison()?;
        loop {
            let at = self.position();
            match (self.peek(), self.peek_at(1), self.peek_at(2)) {
                (Tok::Eq | Tok::Ne, _, _) => {
                    let negated = self.next() == Tok::Ne;
                    let right = self.comparison()?;
                    self.check_equal_operands(&left, &right, at)?;
                    left = self.node(Expr::Equal(Box::new(left), Box::new(right)), at)?;
                    if negated {
                        left = self.node(Expr::Not(Box::new(left)), at)?;
                    }
                }
                (Tok::Is, Tok::Null, _) => {
                    self.next();
                    self.next();
                    left = self.is_null(left, at)?;
                }
                (Tok::Is, Tok::Not, Tok::Null) => {
                    self.next();
                    self.next();
                    self.next();
                    let is_null = self.is_null(left, at)?;
                    left = self.node(Expr::Not(Box::new(is_null)), at)?;
                }
                (Tok::Is, _, _) => {
                    self.next();
                    return Err(self.unexpected("NULL or NOT NULL"));
                }
                _ => return Ok(left),
            }
        }
    }

    fn is_null(&mut self, left: Expr, at: Position) -> Result<Expr, ParseError> {
        let null = self.node(Expr::Literal(Literal::Null), at)?;
        self.node(Expr::Equal(Box::new(left), Box::new(null)), at)
    }

    /// `checkEqualOperand` and `checkEqualOperandCompatability`.
    fn check_equal_operands(
        &self,
        left: &Expr,
        right: &Expr,
        at: Position,
    ) -> Result<(), ParseError> {
        for side in [left, right] {
            if matches!(side, Expr::Literal(Literal::Null)) {
                return Err(self.error_at(at, "NULL cannot be compared with '='; use IS NULL"));
            }
        }
        if let (Expr::Literal(Literal::Bool(_)), Expr::Literal(r)) = (left, right)
            && !matches!(r, Literal::Bool(_))
        {
            return Err(self.error_at(at, "a boolean cannot be compared with a non-boolean"));
        }
        Ok(())
    }

    /// `checkLessThanOperand`: only numbers (constants, properties, negations) around
    /// `> >= < <=`.
    fn check_numeric_operand(&self, expr: &Expr, at: Position) -> Result<(), ParseError> {
        let ok = match expr {
            Expr::Literal(Literal::Int(_) | Literal::Float(_)) => true,
            Expr::Literal(_) => false,
            other => !other.is_boolean(),
        };
        if ok {
            Ok(())
        } else {
            Err(self.error_at(
                at,
                "only numbers can be compared with '>', '>=', '<', '<=' or BETWEEN",
            ))
        }
    }

    fn relational(
        &mut self,
        op: RelOp,
        left: Expr,
        right: Expr,
        at: Position,
    ) -> Result<Expr, ParseError> {
        self.check_numeric_operand(&left, at)?;
        self.check_numeric_operand(&right, at)?;
        self.node(Expr::Relational(op, Box::new(left), Box::new(right)), at)
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        loop {
            let at = self.position();
            let rel = match self.peek() {
                Tok::Gt => Some(RelOp::Gt),
                Tok::Ge => Some(RelOp::Ge),
                Tok::Lt => Some(RelOp::Lt),
                Tok::Le => Some(RelOp::Le),
                _ => None,
            };
            if let Some(op) = rel {
                self.next();
                let right = self.unary()?;
                left = self.relational(op, left, right, at)?;
                continue;
            }
            let negated = self.peek() == &Tok::Not
                && matches!(
                    self.peek_at(1),
                    Tok::Contains | Tok::StartsWith | Tok::EndsWith | Tok::Between | Tok::In
                );
            if negated {
                self.next();
            }
            left = match self.peek() {
                Tok::Contains | Tok::StartsWith | Tok::EndsWith => {
                    let op = match self.next() {
                        Tok::Contains => StrOp::Contains,
                        Tok::StartsWith => StrOp::StartsWith,
                        _ => StrOp::EndsWith,
                    };
                    let search = self.string_literal()?;
                    let expr = Expr::StrMatch {
                        op,
                        value: Box::new(left),
                        search,
                        negated,
                    };
                    self.node(expr, at)?
                }
                Tok::Between => {
                    self.next();
                    self.between(left, negated, at)?
                }
                Tok::In => {
                    self.next();
                    self.in_list(left, negated, at)?
                }
                _ => return Ok(left),
            };
        }
    }

    /// `v BETWEEN lo AND hi` is `v >= lo AND v <= hi`; `NOT BETWEEN` is `v < lo OR v > hi`.
    fn between(&mut self, value: Expr, negated: bool, at: Position) -> Result<Expr, ParseError> {
        let low = self.unary()?;
        self.expect(&Tok::And, "AND")?;
        let high = self.unary()?;
        if !negated {
            self.check_bounds(&low, &high, at)?;
        }
        let (lo_op, hi_op) = if negated {
            (RelOp::Lt, RelOp::Gt)
        } else {
            (RelOp::Ge, RelOp::Le)
        };
        let lower = self.relational(lo_op, value.clone(), low, at)?;
        let upper = self.relational(hi_op, value, high, at)?;
        let joined = if negated {
            Expr::Or(Box::new(lower), Box::new(upper))
        } else {
            Expr::And(Box::new(lower), Box::new(upper))
        };
        self.node(joined, at)
    }

    fn check_bounds(&self, low: &Expr, high: &Expr, at: Position) -> Result<(), ParseError> {
        let number = |e: &Expr| match e {
            Expr::Literal(Literal::Int(v)) => Some(*v as f64),
            Expr::Literal(Literal::Float(v)) => Some(*v),
            _ => None,
        };
        if let (Some(lo), Some(hi)) = (number(low), number(high))
            && hi < lo
        {
            return Err(self.error_at(
                at,
                format!("illegal values of BETWEEN: {lo} must be less than or equal to {hi}"),
            ));
        }
        Ok(())
    }

    fn in_list(&mut self, left: Expr, negated: bool, at: Position) -> Result<Expr, ParseError> {
        let Expr::Property(property) = left else {
            return Err(self.error_at(at, "IN expects a property on its left"));
        };
        self.expect(&Tok::LParen, "(")?;
        let mut values = vec![self.string_literal()?];
        while self.peek() == &Tok::Comma {
            self.next();
            let item_at = self.position();
            values.push(self.string_literal()?);
            self.node(Expr::Literal(Literal::Null), item_at)?;
        }
        self.expect(&Tok::RParen, "',' or ')'")?;
        values.sort_unstable();
        values.dedup();
        self.node(
            Expr::In {
                property,
                values,
                negated,
            },
            at,
        )
    }

    fn string_literal(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Tok::Str(_) => match self.next() {
                Tok::Str(s) => Ok(s),
                _ => Err(self.unexpected("a string literal")),
            },
            _ => Err(self.unexpected("a string literal")),
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        let at = self.position();
        match self.peek() {
            Tok::Plus | Tok::Minus | Tok::Not => {
                let op = self.next();
                self.nest(at)?;
                let operand_at = self.position();
                let operand = self.unary()?;
                self.depth -= 1;
                match op {
                    Tok::Plus => Ok(operand),
                    Tok::Minus => self.node(Expr::Negate(Box::new(operand)), at),
                    _ => {
                        let operand = self.as_boolean(operand, operand_at)?;
                        self.node(Expr::Not(Box::new(operand)), at)
                    }
                }
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let at = self.position();
        let literal = match self.peek() {
            Tok::Str(_) => Literal::Str(self.string_literal()?),
            Tok::Int(v) => Literal::Int(*v),
            Tok::Float(v) => Literal::Float(*v),
            Tok::True => Literal::Bool(true),
            Tok::False => Literal::Bool(false),
            Tok::Null => Literal::Null,
            Tok::Id(_) => {
                let Tok::Id(name) = self.next() else {
                    return Err(self.unexpected("a property name"));
                };
                return self.node(Expr::Property(name), at);
            }
            Tok::LParen => {
                self.next();
                self.nest(at)?;
                let inner = self.or()?;
                self.depth -= 1;
                self.expect(&Tok::RParen, "')'")?;
                return Ok(inner);
            }
            _ => return Err(self.unexpected("a property, a literal or '('")),
        };
        if !matches!(literal, Literal::Str(_)) {
            self.next();
        }
        self.node(Expr::Literal(literal), at)
    }
}
