//! Bounds of the SQL92 filter. Expressions come from clients, so each bound guards the
//! shard against one hostile or broken subscription.

/// Longest expression accepted, in bytes: a subscription is a line of SQL, and the string is
/// kept in the compiled-expression cache key.
pub const EXPRESSION_BYTES_MAX: usize = 16 * 1024;

/// Most tokens in one expression: bounds parse work.
pub const EXPRESSION_TOKENS_MAX: usize = 4 * 1024;

/// Most nodes in one compiled expression (IN-list items count): bounds evaluation work per
/// message and the evaluator's recursion depth (a left-deep `AND` chain is as deep as long).
pub const EXPRESSION_NODES_MAX: usize = 1024;

/// Deepest nesting of parentheses and unary operators: bounds the parser's recursion.
pub const EXPRESSION_NESTING_MAX: usize = 64;

/// Compiled expressions cached per shard, keyed by (group, topic, expression).
pub const FILTER_CACHE_ENTRIES_MAX: usize = 4 * 1024;

/// Most records a filtered pull examines in all its store reads (each read is bounded by the
/// pull's batch size): a sparse filter answers after this many instead of scanning a whole
/// queue in one request.
pub const FILTER_SCAN_RECORDS_MAX: usize = 4 * 1024;

const _: () = assert!(EXPRESSION_NODES_MAX <= EXPRESSION_TOKENS_MAX);
const _: () = assert!(EXPRESSION_TOKENS_MAX <= EXPRESSION_BYTES_MAX);
