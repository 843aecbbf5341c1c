//! The KV store (RocketMQ's `KVConfigManager`): namespaced string pairs, kept in memory and
//! persisted to one JSON file on every change, as RocketMQ writes it:
//! `{"configTable":{"<namespace>":{"<key>":"<value>"}}}`.
//!
//! Changes are applied to a copy, the copy is written to `<file>.tmp`, synced, renamed over
//! the file (and the directory synced), and only then published: a change that could not be
//! persisted is refused and leaves the store as it was. Writers are serialised; readers never
//! wait for the disk.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::error::NameServerError;
use crate::limits::{KV_ENTRIES_MAX, KV_ITEM_BYTES_MAX};

/// namespace → key → value.
pub type KvTables = BTreeMap<String, BTreeMap<String, String>>;

/// The file form (`KVConfigSerializeWrapper`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KvFile {
    #[serde(default)]
    config_table: KvTables,
}

/// Why a KV change was refused.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The store is full.
    #[error("the KV store already holds {KV_ENTRIES_MAX} entries")]
    Full,
    /// A namespace, key or value is too long or empty.
    #[error("{what} must be 1 to {KV_ITEM_BYTES_MAX} bytes long, got {len}")]
    BadItem {
        /// Which part.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// The change could not be written to disk; nothing changed.
    #[error(transparent)]
    Persist(#[from] NameServerError),
}

/// The KV store.
#[derive(Debug)]
pub struct KvStore {
    path: PathBuf,
    tables: RwLock<Arc<KvTables>>,
    /// Serialises writers so that the file always holds the latest published state.
    write_lock: tokio::sync::Mutex<()>,
}

impl KvStore {
    /// Opens the store: reads the file if it exists (a missing file is an empty store; a
    /// corrupt one is an error, never silently overwritten).
    pub fn open(path: PathBuf) -> Result<Self, NameServerError> {
        let tables = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => KvTables::new(),
            Ok(bytes) => {
                let file: KvFile =
                    ringmq_wire::json::parse("KV config file", &bytes).map_err(|e| {
                        NameServerError::KvCorrupt {
                            path: path.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                file.config_table
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => KvTables::new(),
            Err(source) => return Err(NameServerError::KvRead { path, source }),
        };
        let entries: usize = tables.values().map(BTreeMap::len).sum();
        tracing::info!(path = %path.display(), namespaces = tables.len(), entries, "KV store loaded");
        Ok(KvStore {
            path,
            tables: RwLock::new(Arc::new(tables)),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The file the store persists to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn snapshot(&self) -> Arc<KvTables> {
        // A poisoned lock only means a reader panicked; the Arc inside is intact.
        self.tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// One value.
    pub fn get(&self, namespace: &str, key: &str) -> Option<String> {
        self.snapshot().get(namespace)?.get(key).cloned()
    }

    /// All pairs of a namespace, or `None` if it has none.
    pub fn namespace(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.snapshot()
            .get(namespace)
            .filter(|table| !table.is_empty())
            .cloned()
    }

    /// Sets a value and persists.
    pub async fn put(&self, namespace: &str, key: &str, value: &str) -> Result<(), KvError> {
        check_item("namespace", namespace)?;
        check_item("key", key)?;
        if value.len() > KV_ITEM_BYTES_MAX {
            return Err(KvError::BadItem {
                what: "value",
                len: value.len(),
            });
        }
        self.change(|tables| {
            let entries: usize = tables.values().map(BTreeMap::len).sum();
            let table = tables.entry(namespace.to_owned()).or_default();
            if !table.contains_key(key) && entries >= KV_ENTRIES_MAX {
                return Err(KvError::Full);
            }
            table.insert(key.to_owned(), value.to_owned());
            Ok(true)
        })
        .await
        .map(|_| ())
    }

    /// Removes a value and persists; returns whether it existed.
    pub async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        self.change(|tables| {
            let Some(table) = tables.get_mut(namespace) else {
                return Ok(false);
            };
            let existed = table.remove(key).is_some();
            if table.is_empty() {
                tables.remove(namespace);
            }
            Ok(existed)
        })
        .await
    }

    /// Applies `edit` to a copy; if it reports a change, persists the copy and publishes it.
    async fn change(
        &self,
        edit: impl FnOnce(&mut KvTables) -> Result<bool, KvError>,
    ) -> Result<bool, KvError> {
        let _writer = self.write_lock.lock().await;
        let mut next = (*self.snapshot()).clone();
        if !edit(&mut next)? {
            return Ok(false);
        }
        let bytes = ringmq_wire::json::to_vec(&KvFile {
            config_table: next.clone(),
        });
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|e| {
                KvError::Persist(NameServerError::KvWrite {
                    path: self.path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            })??;
        *self
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        Ok(true)
    }
}

fn check_item(what: &'static str, item: &str) -> Result<(), KvError> {
    if item.is_empty() || item.len() > KV_ITEM_BYTES_MAX {
        return Err(KvError::BadItem {
            what,
            len: item.len(),
        });
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), NameServerError> {
    let err = |source| NameServerError::KvWrite {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut file = std::fs::File::create(&tmp).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)?;
    // Make the rename itself durable.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("kvConfig.json");
        let store = KvStore::open(path.clone()).unwrap();
        store
            .put("ORDER_TOPIC_CONFIG", "T", "a:4;b:4")
            .await
            .unwrap();
        store.put("ns", "k", "v").await.unwrap();
        assert!(store.delete("ns", "k").await.unwrap());
        assert!(!store.delete("ns", "k").await.unwrap());
        assert_eq!(
            store.get("ORDER_TOPIC_CONFIG", "T").as_deref(),
            Some("a:4;b:4")
        );
        assert!(store.namespace("ns").is_none());

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            r#"{"configTable":{"ORDER_TOPIC_CONFIG":{"T":"a:4;b:4"}}}"#
        );
        let reopened = KvStore::open(path).unwrap();
        assert_eq!(
            reopened.get("ORDER_TOPIC_CONFIG", "T").as_deref(),
            Some("a:4;b:4")
        );
    }

    #[tokio::test]
    async fn corrupt_file_is_an_error_and_bad_items_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            KvStore::open(path.clone()),
            Err(NameServerError::KvCorrupt { .. })
        ));
        std::fs::write(&path, b"").unwrap();
        let store = KvStore::open(path).unwrap();
        assert!(matches!(
            store.put("", "k", "v").await,
            Err(KvError::BadItem {
                what: "namespace",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn failed_persist_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // The "file" path is a directory, so the rename fails.
        let path = dir.path().join("taken");
        std::fs::create_dir_all(path.join("inner")).unwrap();
        let store = KvStore::open(dir.path().join("absent.json")).unwrap();
        let blocked = KvStore {
            path,
            tables: RwLock::new(store.snapshot()),
            write_lock: tokio::sync::Mutex::new(()),
        };
        assert!(matches!(
            blocked.put("ns", "k", "v").await,
            Err(KvError::Persist(_))
        ));
        assert!(blocked.get("ns", "k").is_none());
    }
}
