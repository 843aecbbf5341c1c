//! Tokens of RocketMQ's SQL92 selector dialect (`SelectorParser.jj`): case-insensitive
//! keywords, identifiers `[A-Za-z_$][A-Za-z0-9_$]*`, single-quoted strings with `''` as an
//! escaped quote, decimal integers (optional `L` suffix) and floating-point numbers, the
//! operators `= <> > >= < <= ( ) , + -`, and `--`/`/* */` comments.
//!
//! Pure function of its input; runs wherever the expression is compiled (a shard thread).

use super::error::ParseError;
use super::limits::EXPRESSION_TOKENS_MAX;

/// One lexical token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `NOT`.
    Not,
    /// `AND`.
    And,
    /// `OR`.
    Or,
    /// `BETWEEN`.
    Between,
    /// `IN`.
    In,
    /// `TRUE`.
    True,
    /// `FALSE`.
    False,
    /// `NULL`.
    Null,
    /// `IS`.
    Is,
    /// `CONTAINS`.
    Contains,
    /// `STARTSWITH`.
    StartsWith,
    /// `ENDSWITH`.
    EndsWith,
    /// A decimal integer literal.
    Int(i64),
    /// A floating-point literal.
    Float(f64),
    /// A string literal, unescaped.
    Str(String),
    /// An identifier (a message property name; case kept).
    Id(String),
    /// `=`.
    Eq,
    /// `<>`.
    Ne,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
    /// `+`.
    Plus,
    /// `-`.
    Minus,
    /// End of input.
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Not => "NOT".into(),
            Tok::And => "AND".into(),
            Tok::Or => "OR".into(),
            Tok::Between => "BETWEEN".into(),
            Tok::In => "IN".into(),
            Tok::True => "TRUE".into(),
            Tok::False => "FALSE".into(),
            Tok::Null => "NULL".into(),
            Tok::Is => "IS".into(),
            Tok::Contains => "CONTAINS".into(),
            Tok::StartsWith => "STARTSWITH".into(),
            Tok::EndsWith => "ENDSWITH".into(),
            Tok::Int(v) => v.to_string(),
            Tok::Float(v) => v.to_string(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Id(s) => s.clone(),
            Tok::Eq => "=".into(),
            Tok::Ne => "<>".into(),
            Tok::Gt => ">".into(),
            Tok::Ge => ">=".into(),
            Tok::Lt => "<".into(),
            Tok::Le => "<=".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Plus => "+".into(),
            Tok::Minus => "-".into(),
            Tok::Eof => "end of expression".into(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    src: &'a str,
    line: u32,
    column: u32,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|(_, c)| *c)
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.chars.clone();
        it.next();
        it.next().map(|(_, c)| c)
    }

    fn bump(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn offset(&mut self) -> usize {
        self.chars.peek().map_or(self.src.len(), |(i, _)| *i)
    }

    fn error(&self, line: u32, column: u32, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut cur = Cursor {
        chars: src.char_indices().peekable(),
        src,
        line: 1,
        column: 1,
    };
    let mut out = Vec::new();
    loop {
        skip_blanks(&mut cur)?;
        let (line, column) = (cur.line, cur.column);
        if out.len() >= EXPRESSION_TOKENS_MAX {
            return Err(cur.error(
                line,
                column,
                format!("expression longer than {EXPRESSION_TOKENS_MAX} tokens"),
            ));
        }
        let Some(c) = cur.peek() else {
            out.push(Token {
                tok: Tok::Eof,
                line,
                column,
            });
            return Ok(out);
        };
        let tok = match c {
            '\'' => string(&mut cur)?,
            '0'..='9' => number(&mut cur)?,
            '.' if cur.peek2().is_some_and(|d| d.is_ascii_digit()) => number(&mut cur)?,
            c if c.is_ascii_alphabetic() || c == '_' || c == '$' => word(&mut cur),
            _ => operator(&mut cur)?,
        };
        out.push(Token { tok, line, column });
    }
}

fn skip_blanks(cur: &mut Cursor<'_>) -> Result<(), ParseError> {
    loop {
        match cur.peek() {
            Some(' ' | '\t' | '\n' | '\r' | '\u{c}') => {
                cur.bump();
            }
            Some('-') if cur.peek2() == Some('-') => {
                while cur.peek().is_some_and(|c| c != '\n' && c != '\r') {
                    cur.bump();
                }
            }
            Some('/') if cur.peek2() == Some('*') => {
                let (line, column) = (cur.line, cur.column);
                cur.bump();
                cur.bump();
                let mut prev = '\0';
                loop {
                    match cur.bump() {
                        Some('/') if prev == '*' => break,
                        Some(c) => prev = c,
                        None => return Err(cur.error(line, column, "unterminated comment")),
                    }
                }
            }
            _ => return Ok(()),
        }
    }
}

fn string(cur: &mut Cursor<'_>) -> Result<Tok, ParseError> {
    let (line, column) = (cur.line, cur.column);
    cur.bump();
    let mut value = String::new();
    loop {
        match cur.bump() {
            Some('\'') if cur.peek() == Some('\'') => {
                cur.bump();
                value.push('\'');
            }
            Some('\'') => return Ok(Tok::Str(value)),
            Some(c) => value.push(c),
            None => return Err(cur.error(line, column, "unterminated string literal")),
        }
    }
}

fn number(cur: &mut Cursor<'_>) -> Result<Tok, ParseError> {
    let (line, column) = (cur.line, cur.column);
    let start = cur.offset();
    let mut float = false;
    while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
        cur.bump();
    }
    if cur.peek() == Some('.') {
        float = true;
        cur.bump();
        while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
            cur.bump();
        }
    }
    if matches!(cur.peek(), Some('e' | 'E')) {
        let mut ahead = cur.chars.clone();
        ahead.next();
        let mut next = ahead.next().map(|(_, c)| c);
        if matches!(next, Some('+' | '-')) {
            next = ahead.next().map(|(_, c)| c);
        }
        if next.is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            cur.bump();
            if matches!(cur.peek(), Some('+' | '-')) {
                cur.bump();
            }
            while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
                cur.bump();
            }
        }
    }
    let end = cur.offset();
    let text = &cur.src[start..end];
    if float {
        return match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Tok::Float(v)),
            _ => Err(cur.error(line, column, format!("invalid number {text}"))),
        };
    }
    if matches!(cur.peek(), Some('l' | 'L')) {
        cur.bump();
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(cur.error(
            line,
            column,
            format!("invalid number {text}: octal literals are not supported"),
        ));
    }
    text.parse::<i64>().map(Tok::Int).map_err(|_| {
        cur.error(
            line,
            column,
            format!("number {text} is out of the 64-bit integer range"),
        )
    })
}

fn word(cur: &mut Cursor<'_>) -> Tok {
    let start = cur.offset();
    while cur
        .peek()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    {
        cur.bump();
    }
    let end = cur.offset();
    let text = &cur.src[start..end];
    match text.to_ascii_uppercase().as_str() {
        "NOT" => Tok::Not,
        "AND" => Tok::And,
        "OR" => Tok::Or,
        "BETWEEN" => Tok::Between,
        "IN" => Tok::In,
        "TRUE" => Tok::True,
        "FALSE" => Tok::False,
        "NULL" => Tok::Null,
        "IS" => Tok::Is,
        "CONTAINS" => Tok::Contains,
        "STARTSWITH" => Tok::StartsWith,
        "ENDSWITH" => Tok::EndsWith,
        _ => Tok::Id(text.to_owned()),
    }
}

fn operator(cur: &mut Cursor<'_>) -> Result<Tok, ParseError> {
    let (line, column) = (cur.line, cur.column);
    let Some(c) = cur.bump() else {
        return Ok(Tok::Eof);
    };
    let tok = match c {
        '=' => Tok::Eq,
        '<' if cur.peek() == Some('>') => {
            cur.bump();
            Tok::Ne
        }
        '<' if cur.peek() == Some('=') => {
            cur.bump();
            Tok::Le
        }
        '<' => Tok::Lt,
        '>' if cur.peek() == Some('=') => {
            cur.bump();
            Tok::Ge
        }
        '>' => Tok::Gt,
        '(' => Tok::LParen,
        ')' => Tok::RParen,
        ',' => Tok::Comma,
        '+' => Tok::Plus,
        '-' => Tok::Minus,
        other => {
            return Err(cur.error(line, column, format!("unexpected character '{other}'")));
        }
    };
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn keywords_are_case_insensitive_and_identifiers_keep_case() {
        assert_eq!(
            toks("a Is nOt NULL and Bb"),
            vec![
                Tok::Id("a".into()),
                Tok::Is,
                Tok::Not,
                Tok::Null,
                Tok::And,
                Tok::Id("Bb".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn literals() {
        assert_eq!(
            toks("12 12L 1.5 .5 5. 2E3 'it''s' $x_1"),
            vec![
                Tok::Int(12),
                Tok::Int(12),
                Tok::Float(1.5),
                Tok::Float(0.5),
                Tok::Float(5.0),
                Tok::Float(2000.0),
                Tok::Str("it's".into()),
                Tok::Id("$x_1".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn operators_and_comments() {
        assert_eq!(
            toks("a<>b -- c\n/* d */ <= >= < > = ( , ) + -"),
            vec![
                Tok::Id("a".into()),
                Tok::Ne,
                Tok::Id("b".into()),
                Tok::Le,
                Tok::Ge,
                Tok::Lt,
                Tok::Gt,
                Tok::Eq,
                Tok::LParen,
                Tok::Comma,
                Tok::RParen,
                Tok::Plus,
                Tok::Minus,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn errors_carry_positions() {
        let e = tokenize("a = 'x").unwrap_err();
        assert_eq!((e.line, e.column), (1, 5));
        let e = tokenize("a = 1\n  AND b ! 2").unwrap_err();
        assert_eq!((e.line, e.column), (2, 9));
        assert!(tokenize("a = 99999999999999999999").is_err());
        assert!(tokenize("a = 007").is_err());
        assert!(tokenize("/* open").is_err());
    }
}
