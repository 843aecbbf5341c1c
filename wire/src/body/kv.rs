//! A key/value table (`KVTable`), the body of `GET_KVLIST_BY_NAMESPACE` answers, of
//! `REGISTER_BROKER` answers (the `ORDER_TOPIC_CONFIG` namespace) and of
//! `GET_BROKER_RUNTIME_INFO` (28) answers (runtime statistics, every value as text:
//! `{"table":{"brokerVersion":"474","msgPutTotalTodayNow":"12",…}}`).
//!
//! ```text
//! {"table":{"TopicOrder":"broker-a:4;broker-b:4"}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::lenient;

/// The KV namespace holding ordered-topic configurations (`NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG`).
pub const NAMESPACE_ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";

/// A string → string table (`KVTable`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KvTable {
    /// The entries; values that arrive as numbers or booleans are kept as text.
    #[serde(default, deserialize_with = "lenient::string_map")]
    pub table: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{parse, to_vec};

    #[test]
    fn round_trip_and_lenient_values() {
        let mut table = KvTable::default();
        table.table.insert("TopicOrder".into(), "broker-a:4".into());
        let json = to_vec(&table);
        assert_eq!(json, br#"{"table":{"TopicOrder":"broker-a:4"}}"#);
        assert_eq!(parse::<KvTable>("kv table", &json).unwrap(), table);
        let lenient: KvTable =
            parse("kv table", br#"{"table":{"n":5,"b":true,"z":null},"x":1}"#).unwrap();
        assert_eq!(lenient.table["n"], "5");
        assert_eq!(lenient.table["b"], "true");
        assert!(!lenient.table.contains_key("z"));
        assert_eq!(
            parse::<KvTable>("kv table", b"{}").unwrap(),
            KvTable::default()
        );
    }
}
