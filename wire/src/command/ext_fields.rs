//! [`ExtFields`]: a command's header fields, as a sorted vector of inline strings.
//!
//! A `SEND_MESSAGE_V2` request carries 13 fields; as a `BTreeMap<String, String>` that was 26
//! heap strings plus the tree's nodes per request, and allocation was most of the cost of
//! decoding a header. Here keys and values are [`FieldStr`]s (`compact_str::CompactString`:
//! up to 24 bytes inline, no allocation), held in one `Vec` sorted by key. Decoding a stock
//! V2 header allocates the vector and the properties value (`i`), nothing else.
//!
//! The API mirrors the `BTreeMap` calls the workspace used (`get`, `insert`, `remove`,
//! `contains_key`, iteration in key order, `ext["key"]`), so call sites read the same. Lookups
//! are binary searches: headers have a few dozen fields at most.

use std::fmt;

pub use compact_str::CompactString as FieldStr;

/// Header fields keyed by name, sorted by key (both encodings write keys in order). See the
/// module docs.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ExtFields {
    entries: Vec<(FieldStr, FieldStr)>,
}

/// Byte-wise (`str`) order of two keys. Header keys are short and most pairs differ in
/// their first byte (V2's one-letter keys always do), so that byte is compared inline
/// before falling back to the slice comparison (a `memcmp` call): lookups were the largest
/// single item in the broker's send-path profile.
#[inline]
fn cmp_key(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

impl fmt::Debug for ExtFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl ExtFields {
    /// No fields.
    pub const fn new() -> Self {
        ExtFields {
            entries: Vec::new(),
        }
    }

    /// No fields, with room for `capacity` without reallocating.
    pub fn with_capacity(capacity: usize) -> Self {
        ExtFields {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        let key = key.as_bytes();
        self.entries
            .binary_search_by(|(k, _)| cmp_key(k.as_bytes(), key))
    }

    /// A field's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key)
            .ok()
            .map(|at| self.entries[at].1.as_str())
    }

    /// A field's value, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut FieldStr> {
        self.position(key).ok().map(|at| &mut self.entries[at].1)
    }

    /// Whether a field is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets a field, returning its previous value. Appending keys in ascending order (as
    /// decoders do: peers send them sorted) costs no search.
    pub fn insert(&mut self, key: FieldStr, value: FieldStr) -> Option<FieldStr> {
        if self
            .entries
            .last()
            .is_none_or(|(last, _)| last.as_str() < key.as_str())
        {
            self.entries.push((key, value));
            return None;
        }
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// Sets a field from borrowed text (inline when short: no allocation).
    pub fn insert_str(&mut self, key: &str, value: &str) -> Option<FieldStr> {
        self.insert(FieldStr::from(key), FieldStr::from(value))
    }

    /// Removes a field, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<FieldStr> {
        self.position(key).ok().map(|at| self.entries.remove(at).1)
    }

    /// Removes every field.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The fields in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.entries.iter(),
        }
    }

    /// The keys in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &FieldStr> + DoubleEndedIterator {
        self.entries.iter().map(|(key, _)| key)
    }

    /// The values in key order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &FieldStr> + DoubleEndedIterator {
        self.entries.iter().map(|(_, value)| value)
    }
}

/// Iterator over `(&key, &value)` in key order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, (FieldStr, FieldStr)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a FieldStr, &'a FieldStr);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(key, value)| (key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|(key, value)| (key, value))
    }
}

impl<'a> IntoIterator for &'a ExtFields {
    type Item = (&'a FieldStr, &'a FieldStr);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for ExtFields {
    type Item = (FieldStr, FieldStr);
    type IntoIter = std::vec::IntoIter<(FieldStr, FieldStr)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<K: Into<FieldStr>, V: Into<FieldStr>> Extend<(K, V)> for ExtFields {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key.into(), value.into());
        }
    }
}

impl<K: Into<FieldStr>, V: Into<FieldStr>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut fields = ExtFields::with_capacity(iter.size_hint().0);
        fields.extend(iter);
        fields
    }
}

impl<K: Into<FieldStr>, V: Into<FieldStr>, const N: usize> From<[(K, V); N]> for ExtFields {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl std::ops::Index<&str> for ExtFields {
    type Output = FieldStr;

    /// The value of a field that must be present.
    ///
    /// # Panics
    ///
    /// If the field is absent, as `BTreeMap`'s index does.
    fn index(&self, key: &str) -> &FieldStr {
        match self.position(key) {
            Ok(at) => &self.entries[at].1,
            Err(_) => panic!("no extFields entry {key:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn key_order_is_str_order() {
        let keys = [
            "", "a", "ab", "b", "ba", "bname", "n", "ns", "nsd", "\u{7f}", "\u{e9}", "z",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(
                    cmp_key(a.as_bytes(), b.as_bytes()),
                    a.cmp(b),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn behaves_like_a_sorted_map() {
        let mut fields = ExtFields::new();
        assert!(fields.is_empty());
        assert_eq!(fields.insert("b".into(), "2".into()), None);
        assert_eq!(fields.insert("a".into(), "1".into()), None);
        assert_eq!(fields.insert("c".into(), "3".into()), None);
        assert_eq!(
            fields.insert("b".into(), "two".into()).as_deref(),
            Some("2")
        );
        assert_eq!(fields.len(), 3);
        assert_eq!(fields.get("b"), Some("two"));
        assert_eq!(fields["a"], "1");
        assert!(fields.contains_key("c"));
        assert!(!fields.contains_key("d"));
        let keys: Vec<&str> = fields.keys().map(FieldStr::as_str).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(fields.remove("a").as_deref(), Some("1"));
        assert_eq!(fields.remove("a"), None);
        if let Some(value) = fields.get_mut("c") {
            value.push('!');
        }
        assert_eq!(fields.get("c"), Some("3!"));
        assert_eq!(format!("{fields:?}"), r#"{"b": "two", "c": "3!"}"#);
        let same: ExtFields = [("c", "3!"), ("b", "two")].into();
        assert_eq!(fields, same);
    }

    proptest! {
        /// Any sequence of inserts and removes leaves what a `BTreeMap` would hold.
        #[test]
        fn matches_btreemap(ops in proptest::collection::vec(
            (any::<bool>(), "[a-e]{1,2}", "\\PC{0,30}"), 0..40)) {
            let mut ours = ExtFields::new();
            let mut model = BTreeMap::new();
            for (insert, key, value) in ops {
                if insert {
                    let old = ours.insert(key.as_str().into(), value.as_str().into());
                    let expected = model.insert(key, value);
                    prop_assert_eq!(old.as_deref(), expected.as_deref());
                } else {
                    let old = ours.remove(&key);
                    let expected = model.remove(&key);
                    prop_assert_eq!(old.as_deref(), expected.as_deref());
                }
            }
            let ours: Vec<(&str, &str)> = ours.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let model: Vec<(&str, &str)> = model.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(ours, model);
        }
    }
}
