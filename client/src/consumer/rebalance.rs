//! Queue allocation strategies, as pure functions.
//!
//! Every consumer of a group sorts the topic's queues and the group's client ids the same
//! way and applies the same strategy, so that without talking to each other the members
//! end up with disjoint shares covering every queue. The strategies compute exactly what
//! RocketMQ's `AllocateMessageQueueAveragely`, `…AveragelyByCircle` and `…ConsistentHash`
//! compute (spec §C.8.1), so a group may mix our consumers with Java ones.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

use crate::queue::MessageQueue;

/// Virtual nodes per client on the consistent-hash ring (RocketMQ's default).
pub const CONSISTENT_HASH_VIRTUAL_NODES: usize = 10;

/// How a group's queues are shared among its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocateStrategy {
    /// Contiguous blocks ("AVG", RocketMQ's default): 8 queues / 3 clients → 3, 3, 2.
    #[default]
    Averagely,
    /// Round robin ("AVG_BY_CIRCLE"): client i gets queues i, i+n, i+2n, …
    AveragelyByCircle,
    /// Consistent hashing of client ids ("CONSISTENT_HASH") with this many virtual nodes per
    /// client: membership changes move few queues.
    ConsistentHash {
        /// Virtual nodes per client.
        virtual_nodes: usize,
    },
}

impl AllocateStrategy {
    /// RocketMQ's name of the strategy.
    pub fn name(self) -> &'static str {
        match self {
            AllocateStrategy::Averagely => "AVG",
            AllocateStrategy::AveragelyByCircle => "AVG_BY_CIRCLE",
            AllocateStrategy::ConsistentHash { .. } => "CONSISTENT_HASH",
        }
    }

    /// The queues `current` gets out of `queues` among `clients`. Both lists are sorted and
    /// deduplicated first, so callers may pass them in any order. A client not in `clients`
    /// gets nothing.
    pub fn allocate(
        self,
        current: &str,
        queues: &[MessageQueue],
        clients: &[String],
    ) -> Vec<MessageQueue> {
        let mut queues = queues.to_vec();
        queues.sort();
        queues.dedup();
        let mut clients = clients.to_vec();
        clients.sort();
        clients.dedup();
        match self {
            AllocateStrategy::Averagely => averagely(current, &queues, &clients),
            AllocateStrategy::AveragelyByCircle => by_circle(current, &queues, &clients),
            AllocateStrategy::ConsistentHash { virtual_nodes } => {
                consistent_hash(current, &queues, &clients, virtual_nodes.max(1))
            }
        }
    }
}

fn averagely(current: &str, queues: &[MessageQueue], clients: &[String]) -> Vec<MessageQueue> {
    let Some(index) = clients.iter().position(|c| c == current) else {
        return Vec::new();
    };
    if queues.is_empty() {
        return Vec::new();
    }
    let (q, c) = (queues.len(), clients.len());
    let remainder = q % c;
    let average = if q <= c {
        1
    } else if index < remainder {
        q / c + 1
    } else {
        q / c
    };
    let start = if remainder > 0 && index < remainder {
        index * average
    } else {
        index * average + remainder
    };
    let range = average.min(q.saturating_sub(start));
    (0..range)
        .map(|i| queues[(start + i) % q].clone())
        .collect()
}

fn by_circle(current: &str, queues: &[MessageQueue], clients: &[String]) -> Vec<MessageQueue> {
    let Some(index) = clients.iter().position(|c| c == current) else {
        return Vec::new();
    };
    queues
        .iter()
        .skip(index)
        .step_by(clients.len())
        .cloned()
        .collect()
}

/// RocketMQ's `ConsistentHashRouter.MD5Hash`: the first 4 bytes of the MD5 digest, big-endian.
fn md5_hash(key: &str) -> u32 {
    let digest = Md5::digest(key.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn consistent_hash(
    current: &str,
    queues: &[MessageQueue],
    clients: &[String],
    virtual_nodes: usize,
) -> Vec<MessageQueue> {
    if !clients.iter().any(|c| c == current) {
        return Vec::new();
    }
    // Later insertions overwrite earlier ones on a hash collision, as Java's TreeMap.put does.
    let mut ring: BTreeMap<u32, &str> = BTreeMap::new();
    for client in clients {
        for replica in 0..virtual_nodes {
            ring.insert(md5_hash(&format!("{client}-{replica}")), client);
        }
    }
    queues
        .iter()
        .filter(|queue| {
            let hash = md5_hash(&queue.to_string());
            let owner = ring
                .range(hash..)
                .next()
                .or_else(|| ring.iter().next())
                .map(|(_, client)| *client);
            owner == Some(current)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn queues(brokers: &[&str], per_broker: i32) -> Vec<MessageQueue> {
        brokers
            .iter()
            .flat_map(|b| (0..per_broker).map(move |q| MessageQueue::new("T", *b, q)))
            .collect()
    }

    fn clients(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}@{i}")).collect()
    }

    const STRATEGIES: [AllocateStrategy; 3] = [
        AllocateStrategy::Averagely,
        AllocateStrategy::AveragelyByCircle,
        AllocateStrategy::ConsistentHash {
            virtual_nodes: CONSISTENT_HASH_VIRTUAL_NODES,
        },
    ];

    /// Every member gets a disjoint share and the union is all queues, for every strategy
    /// and many sizes (including more clients than queues).
    #[test]
    fn shares_are_disjoint_and_cover_all_queues() {
        for strategy in STRATEGIES {
            for brokers in [&["a"][..], &["a", "b"], &["a", "b", "c"]] {
                for per_broker in [1, 3, 4, 8] {
                    for n in 1..=12 {
                        let all = queues(brokers, per_broker);
                        let members = clients(n);
                        let mut seen = BTreeSet::new();
                        for member in &members {
                            for queue in strategy.allocate(member, &all, &members) {
                                assert!(
                                    seen.insert(queue.clone()),
                                    "{} gave {queue} twice ({n} clients)",
                                    strategy.name()
                                );
                            }
                        }
                        assert_eq!(seen.len(), all.len(), "{} {n} clients", strategy.name());
                    }
                }
            }
        }
    }

    #[test]
    fn stable_when_membership_does_not_change_and_order_is_irrelevant() {
        let all = queues(&["a", "b"], 4);
        let members = clients(3);
        let mut shuffled_queues = all.clone();
        shuffled_queues.reverse();
        let mut shuffled_members = members.clone();
        shuffled_members.rotate_left(1);
        for strategy in STRATEGIES {
            for member in &members {
                let first = strategy.allocate(member, &all, &members);
                let again = strategy.allocate(member, &shuffled_queues, &shuffled_members);
                assert_eq!(first, again, "{}", strategy.name());
            }
        }
    }

    /// Spec §C.8.1: 8 queues / 3 clients → [0,1,2], [3,4,5], [6,7].
    #[test]
    fn averagely_gives_contiguous_blocks() {
        let all = queues(&["a"], 8);
        let members = clients(3);
        let ids = |m: &str| -> Vec<i32> {
            AllocateStrategy::Averagely
                .allocate(m, &all, &members)
                .iter()
                .map(|q| q.queue_id)
                .collect()
        };
        assert_eq!(ids(&members[0]), [0, 1, 2]);
        assert_eq!(ids(&members[1]), [3, 4, 5]);
        assert_eq!(ids(&members[2]), [6, 7]);
        // More clients than queues: the extra clients get nothing.
        let few = queues(&["a"], 2);
        assert!(
            AllocateStrategy::Averagely
                .allocate(&members[2], &few, &members)
                .is_empty()
        );
    }

    #[test]
    fn by_circle_deals_round_robin() {
        let all = queues(&["a"], 8);
        let members = clients(3);
        let ids: Vec<i32> = AllocateStrategy::AveragelyByCircle
            .allocate(&members[1], &all, &members)
            .iter()
            .map(|q| q.queue_id)
            .collect();
        assert_eq!(ids, [1, 4, 7]);
    }

    #[test]
    fn unknown_client_gets_nothing() {
        let all = queues(&["a"], 4);
        for strategy in STRATEGIES {
            assert!(strategy.allocate("stranger", &all, &clients(2)).is_empty());
        }
    }

    /// Consistent hashing: a new member takes queues only for itself; nobody else's share
    /// moves between old members.
    #[test]
    fn consistent_hash_moves_only_to_the_newcomer() {
        let strategy = AllocateStrategy::ConsistentHash { virtual_nodes: 10 };
        let all = queues(&["a", "b", "c"], 16);
        let before = clients(4);
        let mut after = before.clone();
        after.push("newcomer@1".into());
        for member in &before {
            let old: BTreeSet<_> = strategy
                .allocate(member, &all, &before)
                .into_iter()
                .collect();
            let new: BTreeSet<_> = strategy
                .allocate(member, &all, &after)
                .into_iter()
                .collect();
            assert!(new.is_subset(&old), "{member} gained queues from a peer");
        }
    }

    /// Pinned against RocketMQ's MD5 hash: the first four digest bytes, big-endian.
    #[test]
    fn md5_hash_matches_rocketmq() {
        // MD5("") = d41d8cd9…, MD5("abc") = 900150983cd24fb0…
        assert_eq!(md5_hash(""), 0xd41d_8cd9);
        assert_eq!(md5_hash("abc"), 0x9001_5098);
        assert_eq!(
            MessageQueue::new("T", "b", 3).to_string(),
            "MessageQueue [topic=T, brokerName=b, queueId=3]"
        );
    }
}
