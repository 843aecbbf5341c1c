//! Parser and evaluator tests: precedence, null semantics, the predicates, numbers against
//! strings, the build-time checks, error positions, and random input.

use proptest::prelude::*;

use super::*;

fn eval_with(expression: &str, props: &[(&str, &str)]) -> bool {
    let filter = compile(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
    filter.matches(props)
}

fn parse_error(expression: &str) -> ParseError {
    match compile(expression) {
        Ok(f) => panic!("{expression} parsed as {:?}", f.expr()),
        Err(e) => e,
    }
}

#[test]
fn comparisons_of_numbers() {
    let p = [("a", "7")];
    assert!(eval_with("a > 5", &p));
    assert!(eval_with("a >= 7", &p));
    assert!(!eval_with("a < 7", &p));
    assert!(eval_with("a <= 7.0", &p));
    assert!(eval_with("a = 7", &p));
    assert!(!eval_with("a <> 7", &p));
    assert!(eval_with("a <> 8", &p));
    assert!(eval_with("5 < a", &p));
    assert!(eval_with("a > -1", &p));
    assert!(eval_with("a > 6.5", &p));
    assert!(eval_with("a > 6.5E0", &p));
    assert!(
        eval_with("-a IS NULL", &p),
        "negating a string property is null"
    );
    assert!(eval_with("a = 7L", &p));
}

#[test]
fn precedence_and_binds_tighter_than_or() {
    let p = [("a", "1"), ("b", "2")];
    assert!(eval_with("a = 1 OR a = 2 AND b = 3", &p));
    assert!(!eval_with("(a = 1 OR a = 2) AND b = 3", &p));
    assert!(eval_with("a = 2 AND b = 3 OR b = 2", &p));
    assert!(eval_with("NOT (a = 2)", &p));
    // RocketMQ's grammar: unary NOT binds tighter than `=`, so this is `(NOT a) = 1`.
    assert!(!eval_with("NOT a = 2", &p));
}

#[test]
fn missing_properties_are_unknown_and_never_match() {
    let none: [(&str, &str); 0] = [];
    for expression in [
        "a > 5",
        "a = 5",
        "a = 'x'",
        "a <> 'x'",
        "NOT (a = 'x')",
        "a BETWEEN 1 AND 2",
        "a NOT BETWEEN 1 AND 2",
        "a IN ('x')",
        "a NOT IN ('x')",
        "a IS NOT NULL",
        "a",
        "a CONTAINS 'x'",
        "a STARTSWITH 'x'",
        "a ENDSWITH 'x'",
        "NULL",
    ] {
        assert!(!eval_with(expression, &none), "{expression}");
    }
    assert!(eval_with("a IS NULL", &none));
    // Three-valued logic: unknown OR true is true, unknown AND false is false.
    assert!(eval_with("a > 5 OR TRUE", &none));
    assert!(!eval_with("NOT (a > 5 AND FALSE) AND a > 5", &none));
    assert!(eval_with("NOT (a > 5 AND FALSE)", &none));
    // RocketMQ's NOT CONTAINS family is FALSE, not unknown, on a missing property.
    assert!(!eval_with("a NOT CONTAINS 'x'", &none));
    assert!(eval_with("NOT (a CONTAINS 'x')", &none));
}

#[test]
fn between_in_and_is_null() {
    let p = [("a", "5"), ("t", "x")];
    assert!(eval_with("a BETWEEN 5 AND 6", &p));
    assert!(eval_with("a BETWEEN 1 AND 5", &p));
    assert!(!eval_with("a BETWEEN 6 AND 9", &p));
    assert!(eval_with("a NOT BETWEEN 6 AND 9", &p));
    assert!(!eval_with("a NOT BETWEEN 5 AND 5", &p));
    assert!(eval_with("a BETWEEN 4.5 AND 5.5", &p));
    assert!(eval_with("t IN ('y', 'x')", &p));
    assert!(!eval_with("t IN ('y', 'z', 'w', 'v', 'u', 'q')", &p));
    assert!(eval_with("t NOT IN ('y')", &p));
    assert!(!eval_with("t NOT IN ('x')", &p));
    assert!(eval_with("t IS NOT NULL AND u IS NULL", &p));
    assert!(eval_with("TAGS IS NULL", &p));
}

#[test]
fn strings_compare_only_for_equality() {
    let p = [("s", "abc"), ("n", "10"), ("m", "9.5")];
    assert!(eval_with("s = 'abc'", &p));
    assert!(!eval_with("s = 'ABC'", &p));
    assert!(eval_with("s <> 'abd'", &p));
    // `s > 5` must read s as a number: it is not, so the message does not match, even
    // through OR (the whole evaluation fails, as in RocketMQ).
    assert!(!eval_with("s > 5", &p));
    assert!(!eval_with("s > 5 OR n = 10", &p));
    assert!(!eval_with("s = 5", &p));
    // Two properties compared with `>` are read as doubles.
    assert!(eval_with("n > m", &p));
    assert!(!eval_with("s > m", &p));
    // Integer constants read the property as an integer; decimals as a double.
    assert!(!eval_with("m > 5", &p));
    assert!(eval_with("m > 5.0", &p));
    assert!(eval_with("n = '10'", &p));
    assert!(!eval_with("n = '10.0'", &p));
}

#[test]
fn booleans_and_casts() {
    let p = [("f", "true"), ("g", "false")];
    assert!(eval_with("f = TRUE", &p));
    assert!(eval_with("g = FALSE", &p));
    assert!(eval_with("TRUE", &p));
    assert!(!eval_with("FALSE", &p));
    // A bare property is a boolean cast: a string is never the boolean TRUE.
    assert!(!eval_with("f", &p));
    // A number never equals a boolean.
    assert!(!eval_with("1 = TRUE", &p));
}

#[test]
fn contains_startswith_endswith() {
    let p = [("s", "hello world")];
    assert!(eval_with("s CONTAINS 'lo w'", &p));
    assert!(eval_with("s STARTSWITH 'hell'", &p));
    assert!(eval_with("s ENDSWITH 'world'", &p));
    assert!(eval_with("s NOT CONTAINS 'xyz'", &p));
    assert!(!eval_with("s NOT STARTSWITH 'h'", &p));
    assert!(eval_with("s NOT ENDSWITH 'hello'", &p));
    assert!(!eval_with("s CONTAINS ''", &p), "empty search is FALSE");
    assert!(eval_with("s contains 'o' and s startsWith 'h'", &p));
}

#[test]
fn tags_and_quotes() {
    let p = [("TAGS", "it's"), ("KEYS", "k1 k2")];
    assert!(eval_with("TAGS = 'it''s'", &p));
    assert!(eval_with("KEYS CONTAINS 'k2'", &p));
    assert!(
        !eval_with("tags = 'it''s'", &p),
        "identifiers are case-sensitive"
    );
}

#[test]
fn repeated_property_last_value_wins() {
    let raw = b"a\x011\x02a\x012\x02";
    let filter = compile("a = 2").unwrap();
    assert!(filter.matches(&EncodedProperties(raw)));
}

#[test]
fn build_time_checks_reject_what_rocketmq_rejects() {
    for expression in [
        "a > 'x'",
        "a = NULL",
        "a BETWEEN 'a' AND 'b'",
        "a BETWEEN 5 AND 1",
        "TRUE = 1",
        "5",
        "'x'",
        "a + 1 > 2",
        "5 IN ('a')",
        "a IN (1, 2)",
        "a IN ()",
        "(a = 1) > 2",
        "NOT 5",
        "5 AND a = 1",
        "a LIKE 'x%'",
        "a IS 5",
        "a = 1 a = 2",
        "",
        "a != 1",
    ] {
        assert!(
            compile(expression).is_err(),
            "{expression} should not parse"
        );
    }
    // Accepted: BETWEEN with negated bounds is not checked, like RocketMQ.
    assert!(compile("a BETWEEN -1 AND -5").is_ok());
    assert!(compile("1 = TRUE").is_ok());
}

#[test]
fn errors_point_at_the_position() {
    let e = parse_error("a > 5 AND");
    assert_eq!((e.line, e.column), (1, 10), "{e}");
    assert!(e.to_string().contains("line 1, column 10"), "{e}");
    let e = parse_error("a = 1 AND\n  b >> 2");
    assert_eq!((e.line, e.column), (2, 6), "{e}");
    let e = parse_error("a = 1 AND b > 'x'");
    assert_eq!((e.line, e.column), (1, 13), "{e}");
    let e = parse_error("(a = 1");
    assert_eq!((e.line, e.column), (1, 7), "{e}");
    assert!(e.message.contains("')'"), "{e}");
}

#[test]
fn limits_are_enforced() {
    let deep = format!("{}a = 1{}", "(".repeat(100), ")".repeat(100));
    assert!(compile(&deep).is_err());
    let nots = format!("{}TRUE", "NOT ".repeat(100));
    assert!(compile(&nots).is_err());
    let wide = vec!["a = 1"; 2000].join(" OR ");
    assert!(compile(&wide).is_err());
    let long = format!("a = '{}'", "x".repeat(20_000));
    assert!(compile(&long).is_err());
    let fine = vec!["a = 1"; 100].join(" AND ");
    assert!(eval_with(&fine, &[("a", "1")]));
}

#[test]
fn check_subscription_codes() {
    let mut cache = FilterCache::new();
    let sql = |expr: &str| SubscriptionData {
        topic: "T".into(),
        sub_string: expr.into(),
        expression_type: SQL92.into(),
        ..SubscriptionData::default()
    };
    assert!(check_subscription(&mut cache, true, "G", &sql("a > 1")).is_ok());
    let e = check_subscription(&mut cache, true, "G", &sql("a >")).unwrap_err();
    assert_eq!(e.response_code(), ResponseCode::SubscriptionParseFailed);
    assert!(e.to_string().contains("column"), "{e}");
    let e = check_subscription(&mut cache, false, "G", &sql("a > 1")).unwrap_err();
    assert_eq!(e.response_code(), ResponseCode::SystemError);
    assert!(e.to_string().contains("enable_property_filter"), "{e}");
    let tags = SubscriptionData::tags("T", "A || B", 1);
    assert!(check_subscription(&mut cache, false, "G", &tags).is_ok());
    let mut odd = sql("x");
    odd.expression_type = "XPATH".into();
    assert_eq!(
        check_subscription(&mut cache, true, "G", &odd)
            .unwrap_err()
            .response_code(),
        ResponseCode::SubscriptionParseFailed
    );
    let registered = for_subscription(&mut cache, true, "G", &sql("a >"), true).unwrap_err();
    assert_eq!(registered.response_code(), ResponseCode::FilterDataNotExist);
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,200}") {
        if let Ok(filter) = compile(&src) {
            let _ = filter.matches(&[("a", "1"), ("b", "x")][..]);
        }
    }

    #[test]
    fn arbitrary_expressions_from_tokens_never_panic(
        parts in proptest::collection::vec(prop_oneof![
            Just("a"), Just("b"), Just("TAGS"), Just("AND"), Just("OR"), Just("NOT"),
            Just("("), Just(")"), Just("="), Just("<>"), Just(">"), Just(">="), Just("<"),
            Just("<="), Just("BETWEEN"), Just("IN"), Just("IS"), Just("NULL"), Just("TRUE"),
            Just("FALSE"), Just("1"), Just("-2"), Just("2.5"), Just("'x'"), Just(","),
            Just("CONTAINS"), Just("STARTSWITH"), Just("ENDSWITH"), Just("-"), Just("+"),
        ], 0..40),
        a in prop_oneof![Just("1"), Just("x"), Just("2.5"), Just("true"), Just("")],
        b in prop_oneof![Just("1"), Just("x"), Just("NaN"), Just("-0.0")],
    ) {
        let src = parts.join(" ");
        if let Ok(filter) = compile(&src) {
            let _ = filter.matches(&[("a", a), ("b", b)][..]);
            let _ = filter.matches(&[("TAGS", a)][..]);
        }
    }

    #[test]
    fn numeric_comparison_agrees_with_integers(x in -1000i64..1000, y in -1000i64..1000) {
        let value = x.to_string();
        let p = [("a", value.as_str())];
        prop_assert_eq!(eval_with(&format!("a > {y}"), &p), x > y);
        prop_assert_eq!(eval_with(&format!("a <= {y}"), &p), x <= y);
        prop_assert_eq!(eval_with(&format!("a = {y}"), &p), x == y);
        prop_assert_eq!(eval_with(&format!("a BETWEEN {y} AND {}", y + 10), &p), x >= y && x <= y + 10);
    }
}
