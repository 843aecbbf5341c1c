//! The per-shard cache of compiled SQL92 subscriptions, keyed by (group, topic,
//! expression), so that an expression is parsed once and not on every pull. Parse failures
//! are cached too (every pull of a broken subscription would fail the same way).
//!
//! Lives in the shard state, on the shard's thread. Bounded by
//! [`FILTER_CACHE_ENTRIES_MAX`]: past it the oldest entry is evicted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::error::ParseError;
use super::limits::FILTER_CACHE_ENTRIES_MAX;
use super::{SqlFilter, compile};

type Key = (String, String, String);

/// Compiled subscriptions of one shard.
#[derive(Debug)]
pub struct FilterCache {
    entries: HashMap<Key, Result<Arc<SqlFilter>, ParseError>>,
    order: VecDeque<Key>,
    capacity: usize,
    compiled: u64,
}

impl Default for FilterCache {
    fn default() -> Self {
        FilterCache::with_capacity(FILTER_CACHE_ENTRIES_MAX)
    }
}

impl FilterCache {
    /// An empty cache holding at most [`FILTER_CACHE_ENTRIES_MAX`] expressions.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache holding at most `capacity` expressions (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        FilterCache {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            compiled: 0,
        }
    }

    /// The compiled form of `expression` for `group` on `topic`, compiling it on first use.
    pub fn get(
        &mut self,
        group: &str,
        topic: &str,
        expression: &str,
    ) -> Result<Arc<SqlFilter>, ParseError> {
        let key = (group.to_owned(), topic.to_owned(), expression.to_owned());
        if let Some(found) = self.entries.get(&key) {
            return found.clone();
        }
        let compiled = compile(expression).map(Arc::new);
        self.compiled += 1;
        if let Err(e) = &compiled {
            tracing::info!(target: "ringmq::filter", group, topic, expression, error = %e,
                "SQL92 subscription does not parse");
        }
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.order.push_back(key.clone());
        self.entries.insert(key, compiled.clone());
        compiled
    }

    /// Expressions cached now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many times an expression was parsed (cache misses), since start.
    pub fn compiled_count(&self) -> u64 {
        self.compiled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_stays_bounded() {
        let mut cache = FilterCache::with_capacity(2);
        let a = cache.get("G", "T", "a > 1").unwrap();
        let again = cache.get("G", "T", "a > 1").unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(cache.compiled_count(), 1);
        assert!(cache.get("G", "T", "a >").is_err());
        assert!(cache.get("G", "T", "a >").is_err());
        assert_eq!(cache.compiled_count(), 2);
        cache.get("G", "U", "b = 'x'").unwrap();
        assert_eq!(cache.len(), 2);
        // The oldest entry was evicted: asking again parses again.
        cache.get("G", "T", "a > 1").unwrap();
        assert_eq!(cache.compiled_count(), 4);
        assert_eq!(cache.len(), 2);
    }
}
