//! The cluster map (`ClusterInfo`), the body of `GET_BROKER_CLUSTER_INFO` answers.
//!
//! ```text
//! {"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a",
//!                                 "cluster":"DefaultCluster","enableActingMaster":false}},
//!  "clusterAddrTable":{"DefaultCluster":["broker-a"]}}
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize};

use crate::body::route::BrokerData;

/// Every broker group and every cluster the NameServer knows (`ClusterInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// Broker name → broker group.
    #[serde(default, deserialize_with = "null_as_default")]
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// Cluster name → names of its broker groups.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl ClusterInfo {
    /// All broker addresses (every member of every group) of one cluster.
    pub fn broker_addrs_of_cluster(&self, cluster: &str) -> Vec<&str> {
        self.cluster_addr_table
            .get(cluster)
            .into_iter()
            .flatten()
            .filter_map(|name| self.broker_addr_table.get(name))
            .flat_map(|broker| broker.broker_addrs.values().map(String::as_str))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{parse, to_vec};

    #[test]
    fn round_trip_and_fastjson_form() {
        let mut info = ClusterInfo::default();
        info.broker_addr_table.insert(
            "broker-a".into(),
            BrokerData {
                broker_addrs: [(0, "10.0.0.1:10911".into())].into_iter().collect(),
                broker_name: "broker-a".into(),
                cluster: "C".into(),
                enable_acting_master: false,
                zone_name: None,
            },
        );
        info.cluster_addr_table
            .insert("C".into(), ["broker-a".to_string()].into_iter().collect());
        let json = to_vec(&info);
        assert_eq!(
            String::from_utf8(json.clone()).unwrap(),
            r#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{"0":"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"C","enableActingMaster":false}},"clusterAddrTable":{"C":["broker-a"]}}"#
        );
        assert_eq!(parse::<ClusterInfo>("cluster info", &json).unwrap(), info);
        let legacy: ClusterInfo = parse(
            "cluster info",
            br#"{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"10.0.0.1:10911"},"brokerName":"broker-a","cluster":"C"}},"clusterAddrTable":{"C":["broker-a"]}}"#,
        )
        .unwrap();
        assert_eq!(legacy, info);
        assert_eq!(info.broker_addrs_of_cluster("C"), vec!["10.0.0.1:10911"]);
        assert!(info.broker_addrs_of_cluster("D").is_empty());
        let empty: ClusterInfo = parse("cluster info", br#"{"brokerAddrTable":null}"#).unwrap();
        assert_eq!(empty, ClusterInfo::default());
    }
}
