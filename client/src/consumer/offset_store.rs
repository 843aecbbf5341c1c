//! Consumer offsets: cached in the client, persisted to the broker (clustering) or to a local
//! file (broadcasting), RocketMQ's `RemoteBrokerOffsetStore` / `LocalFileOffsetStore`.
//!
//! Persisting is periodic (every 5 s, by the consumer) and on shutdown. The local file is
//! JSON, `{"offsets":[{"brokerName":…,"queueId":…,"topic":…,"offset":…},…]}`, written to a
//! temporary file and renamed, so a crash leaves the old or the new file, never half of one.
//! It is ringmq's own format (RocketMQ's Java file keys a map by JSON objects), read only by
//! this client.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::consumer::api;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;
use crate::queue::MessageQueue;

/// Where offsets are persisted.
#[derive(Debug, Clone)]
pub enum OffsetStorage {
    /// On the master broker of each queue (clustering).
    Broker,
    /// In a local JSON file (broadcasting).
    File(PathBuf),
}

/// The default local offset file of a group: `~/.rocketmq_offsets/<clientId>/<group>/offsets.json`
/// (RocketMQ's `rocketmq.client.localOffsetStoreDir` default).
pub fn default_offset_file(client_id: &str, group: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".rocketmq_offsets")
        .join(client_id.replace(['/', '\\'], "_"))
        .join(group.replace(['/', '\\'], "_"))
        .join("offsets.json")
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    #[serde(flatten)]
    queue: MessageQueue,
    offset: i64,
}

#[derive(Serialize, Deserialize, Default)]
struct FileContent {
    offsets: Vec<FileEntry>,
}

/// The offset cache of one consumer group.
#[derive(Debug)]
pub struct OffsetStore {
    group: String,
    storage: OffsetStorage,
    offsets: Mutex<HashMap<MessageQueue, i64>>,
}

impl OffsetStore {
    /// An empty store; a file store loads its file (a missing file is empty).
    pub fn new(group: &str, storage: OffsetStorage) -> Result<Self> {
        let mut offsets = HashMap::new();
        if let OffsetStorage::File(path) = &storage {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let content: FileContent = serde_json::from_slice(&bytes).map_err(|e| {
                        ClientError::InvalidArgument(format!(
                            "offset file {} is not valid: {e}",
                            path.display()
                        ))
                    })?;
                    offsets.extend(content.offsets.into_iter().map(|e| (e.queue, e.offset)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ClientError::Io {
                        what: format!("reading offset file {}", path.display()),
                        source,
                    });
                }
            }
        }
        Ok(OffsetStore {
            group: group.to_owned(),
            storage,
            offsets: Mutex::new(offsets),
        })
    }

    fn offsets(&self) -> std::sync::MutexGuard<'_, HashMap<MessageQueue, i64>> {
        self.offsets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets a queue's offset; with `increase_only` a smaller value is ignored.
    pub fn update(&self, queue: &MessageQueue, offset: i64, increase_only: bool) {
        let mut offsets = self.offsets();
        match offsets.get_mut(queue) {
            Some(current) if increase_only && *current >= offset => {}
            Some(current) => *current = offset,
            None => {
                offsets.insert(queue.clone(), offset);
            }
        }
    }

    /// The cached offset of a queue.
    pub fn cached(&self, queue: &MessageQueue) -> Option<i64> {
        self.offsets().get(queue).copied()
    }

    /// Forgets a queue (after it is no longer owned and its offset was persisted).
    pub fn forget(&self, queue: &MessageQueue) {
        self.offsets().remove(queue);
    }

    /// The stored offset of a queue: the broker's (clustering) or the file's (broadcasting);
    /// `None` if there is none.
    pub async fn read_stored(
        &self,
        instance: &ClientInstance,
        queue: &MessageQueue,
    ) -> Result<Option<i64>> {
        match &self.storage {
            OffsetStorage::File(_) => Ok(self.cached(queue)),
            OffsetStorage::Broker => {
                let addr = master_addr(instance, queue).await?;
                let stored =
                    api::query_consumer_offset(instance, &addr, &self.group, queue).await?;
                if let Some(offset) = stored {
                    self.update(queue, offset, false);
                }
                Ok(stored)
            }
        }
    }

    /// Persists the offsets of `queues` (all cached queues if `None`). Broker storage sends
    /// oneway updates unless `wait`; failures are logged and retried next time.
    pub async fn persist(
        &self,
        instance: &ClientInstance,
        queues: Option<&[MessageQueue]>,
        wait: bool,
    ) -> Result<()> {
        let snapshot: Vec<(MessageQueue, i64)> = {
            let offsets = self.offsets();
            match queues {
                Some(queues) => queues
                    .iter()
                    .filter_map(|q| offsets.get(q).map(|o| (q.clone(), *o)))
                    .collect(),
                None => offsets.iter().map(|(q, o)| (q.clone(), *o)).collect(),
            }
        };
        match &self.storage {
            OffsetStorage::Broker => {
                for (queue, offset) in snapshot {
                    let outcome = async {
                        let addr = master_addr(instance, &queue).await?;
                        if wait {
                            api::update_consumer_offset(
                                instance,
                                &addr,
                                &self.group,
                                &queue,
                                offset,
                            )
                            .await
                        } else {
                            api::update_consumer_offset_oneway(
                                instance,
                                &addr,
                                &self.group,
                                &queue,
                                offset,
                            )
                            .await
                        }
                    }
                    .await;
                    match outcome {
                        Ok(()) => debug!(%queue, offset, "offset persisted"),
                        Err(error) => warn!(%queue, offset, %error, "offset not persisted"),
                    }
                }
                Ok(())
            }
            OffsetStorage::File(path) => self.write_file(path),
        }
    }

    fn write_file(&self, path: &PathBuf) -> Result<()> {
        let content = FileContent {
            offsets: self
                .offsets()
                .iter()
                .map(|(queue, offset)| FileEntry {
                    queue: queue.clone(),
                    offset: *offset,
                })
                .collect(),
        };
        let io = |what: &str, source| ClientError::Io {
            what: format!("{what} {}", path.display()),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
        }
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&content)
            .map_err(|e| ClientError::InvalidArgument(format!("cannot serialize offsets: {e}")))?;
        std::fs::write(&tmp, bytes).map_err(|e| io("writing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("renaming into", e))?;
        Ok(())
    }
}

async fn master_addr(instance: &ClientInstance, queue: &MessageQueue) -> Result<String> {
    let route = instance.routes().get(&queue.topic).await?;
    Ok(route.master_addr(&queue.broker_name)?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increase_only_updates_never_go_back() {
        let store = OffsetStore::new("G", OffsetStorage::Broker).expect("store");
        let queue = MessageQueue::new("T", "b", 0);
        store.update(&queue, 10, true);
        store.update(&queue, 5, true);
        assert_eq!(store.cached(&queue), Some(10));
        store.update(&queue, 5, false);
        assert_eq!(store.cached(&queue), Some(5));
        store.forget(&queue);
        assert_eq!(store.cached(&queue), None);
    }

    #[tokio::test]
    async fn file_store_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!(
            "ringmq-offsets-{}-{}",
            std::process::id(),
            crate::producer::now_ms()
        ));
        let path = dir.join("G").join("offsets.json");
        let queue = MessageQueue::new("T", "b", 3);
        let instance =
            crate::instance::ClientInstance::new(crate::instance::ClientConfig::new("127.0.0.1:9"))
                .expect("instance");
        {
            let store = OffsetStore::new("G", OffsetStorage::File(path.clone())).expect("store");
            store.update(&queue, 42, false);
            store.persist(&instance, None, true).await.expect("persist");
        }
        let reopened = OffsetStore::new("G", OffsetStorage::File(path)).expect("store");
        assert_eq!(
            reopened.read_stored(&instance, &queue).await.expect("read"),
            Some(42)
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
