//! `ringmq-broker check -c FILE`: validates a broker config file without starting anything,
//! and reports **every** problem, each with its key and the fix (a plain start stops at the
//! first one). Used as the systemd unit's `ExecStartPre`.
//!
//! How it finds them all: the file is read as a TOML table; each key the schema refuses
//! (unknown section or key, wrong type) is reported and set aside; then the value checks of
//! [`BrokerConfig::validate`] run again and again, each refused key reported and put back to
//! its default, until the rest passes. Then the shard count against the CPUs, the data
//! directory, and the overlay of runtime changes next to the data
//! ([`crate::server::handler::broker_config::apply_overlay`]).
//!
//! Runs on the calling thread; reads files only.

use std::path::{Path, PathBuf};

use crate::config::{BrokerConfig, ConfigError};
use crate::server::handler::broker_config::{apply_overlay, overlay_path};

/// Most value problems reported for one file (each round resets one key, so this bounds
/// the rounds).
pub const PROBLEMS_MAX: usize = 64;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key (`section.key`), or the file itself for syntax errors.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The outcome of checking one file.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file.
    pub path: PathBuf,
    /// Every problem found, in file order where known.
    pub problems: Vec<Problem>,
    /// The configuration as the broker would run it (defaults for the keys in error), when
    /// the file could be read at all.
    pub config: Option<BrokerConfig>,
    /// Keys applied from the overlay of runtime changes.
    pub overlay: Vec<(String, String)>,
}

impl Report {
    /// Whether the file is good to start with.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// What `check` prints: one line per problem then a summary, or the OK line.
    pub fn render(&self) -> String {
        let path = self.path.display();
        if self.ok() {
            let Some(c) = &self.config else {
                return format!("{path}: OK\n");
            };
            return format!(
                "{path}: OK (cluster {}, broker {}, {} shard(s) from port {}, store {}, flush {:?}{})\n",
                c.broker.cluster_name,
                c.broker.broker_name,
                c.resolved_shards().unwrap_or(0),
                c.broker.base_port,
                c.store.path.display(),
                c.store.flush_mode,
                if self.overlay.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} key(s) from {}",
                        self.overlay.len(),
                        overlay_path(c).display()
                    )
                }
            );
        }
        let mut out = String::new();
        for problem in &self.problems {
            out.push_str(&format!("error: {problem}\n"));
        }
        out.push_str(&format!(
            "{path}: {} problem(s); the broker will not start with this file\n",
            self.problems.len()
        ));
        out
    }
}

/// Checks the config file at `path`.
pub fn check_file(path: &Path) -> Report {
    match std::fs::read_to_string(path) {
        Ok(text) => check_str(&text, path),
        Err(e) => Report {
            path: path.to_owned(),
            problems: vec![Problem {
                key: path.display().to_string(),
                message: format!("cannot read the config file: {e}"),
            }],
            config: None,
            overlay: Vec::new(),
        },
    }
}

/// Checks a config document (`path` names it in the report).
pub fn check_str(text: &str, path: &Path) -> Report {
    let mut report = Report {
        path: path.to_owned(),
        problems: Vec::new(),
        config: None,
        overlay: Vec::new(),
    };
    let mut table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            report.problems.push(Problem {
                key: path.display().to_string(),
                message: format!("not valid TOML: {}", e.to_string().trim()),
            });
            return report;
        }
    };
    report.problems.extend(schema_problems(&mut table));
    let mut config = match toml::Value::Table(table.clone()).try_into::<BrokerConfig>() {
        Ok(config) => config,
        Err(e) => {
            report.problems.push(Problem {
                key: path.display().to_string(),
                message: e.to_string().trim().to_owned(),
            });
            return report;
        }
    };
    value_problems(&mut table, &mut config, &mut report.problems);
    if let Err(e) = config.resolved_shards() {
        report.problems.push(problem_of(&e));
    }
    report.problems.extend(store_problems(&config));
    match apply_overlay(&mut config) {
        Ok(applied) => report.overlay = applied,
        Err(e) => report.problems.push(Problem {
            key: overlay_path(&config).display().to_string(),
            message: e.to_string(),
        }),
    }
    report.config = Some(config);
    report
}

/// Keys the schema refuses, each tested alone; they are removed from `table`.
fn schema_problems(table: &mut toml::Table) -> Vec<Problem> {
    let mut problems = Vec::new();
    let sections: Vec<String> = table.keys().cloned().collect();
    for section in sections {
        let Some(toml::Value::Table(entries)) = table.get(&section).cloned() else {
            // A top-level key that is not a section: test it as it is.
            let value = table
                .get(&section)
                .cloned()
                .unwrap_or(toml::Value::Boolean(false));
            if let Err(e) = try_alone(&section, None, value) {
                problems.push(Problem {
                    key: section.clone(),
                    message: e,
                });
                table.remove(&section);
            }
            continue;
        };
        if let Err(e) = try_alone(&section, None, toml::Value::Table(toml::Table::new())) {
            problems.push(Problem {
                key: format!("[{section}]"),
                message: e,
            });
            table.remove(&section);
            continue;
        }
        for (key, value) in entries {
            if let Err(e) = try_alone(&section, Some(&key), value) {
                problems.push(Problem {
                    key: format!("{section}.{key}"),
                    message: e,
                });
                if let Some(toml::Value::Table(t)) = table.get_mut(&section) {
                    t.remove(&key);
                }
            }
        }
    }
    problems
}

/// Deserializes a config holding only `section` (and `key = value` in it).
fn try_alone(section: &str, key: Option<&str>, value: toml::Value) -> Result<(), String> {
    let mut doc = toml::Table::new();
    match key {
        Some(key) => {
            let mut inner = toml::Table::new();
            inner.insert(key.to_owned(), value);
            doc.insert(section.to_owned(), toml::Value::Table(inner));
        }
        None => {
            doc.insert(section.to_owned(), value);
        }
    }
    toml::Value::Table(doc)
        .try_into::<BrokerConfig>()
        .map(drop)
        .map_err(|e| e.to_string().trim().to_owned())
}

/// Runs the value checks until they pass, resetting each refused key to its default.
fn value_problems(table: &mut toml::Table, config: &mut BrokerConfig, problems: &mut Vec<Problem>) {
    for _ in 0..PROBLEMS_MAX {
        let Err(error) = config.validate() else {
            return;
        };
        let problem = problem_of(&error);
        let removed = match &error {
            ConfigError::Invalid { key, .. } => remove_key(table, key),
            _ => false,
        };
        problems.push(problem);
        if !removed {
            // The refused value is a default or follows from other keys: nothing left to
            // reset, so later checks cannot run.
            return;
        }
        match toml::Value::Table(table.clone()).try_into::<BrokerConfig>() {
            Ok(next) => *config = next,
            Err(_) => return,
        }
    }
}

fn remove_key(table: &mut toml::Table, dotted: &str) -> bool {
    let Some((section, key)) = dotted.split_once('.') else {
        return table.remove(dotted).is_some();
    };
    match table.get_mut(section) {
        Some(toml::Value::Table(t)) => t.remove(key).is_some(),
        _ => false,
    }
}

fn problem_of(error: &ConfigError) -> Problem {
    match error {
        ConfigError::Invalid { key, value, fix } => Problem {
            key: (*key).to_owned(),
            message: format!("{value} is refused: {fix}"),
        },
        other => Problem {
            key: "config".into(),
            message: other.to_string(),
        },
    }
}

/// The data directory must be a directory the broker can write, or creatable.
fn store_problems(config: &BrokerConfig) -> Vec<Problem> {
    let path = &config.store.path;
    let problem = |message: String| {
        vec![Problem {
            key: "store.path".into(),
            message,
        }]
    };
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => problem(format!(
            "{} exists and is not a directory: point store.path at a directory",
            path.display()
        )),
        Ok(meta) if meta.permissions().readonly() => problem(format!(
            "{} is read-only: make it writable by the broker's user",
            path.display()
        )),
        Ok(_) => Vec::new(),
        Err(_) => {
            // Created at start: its nearest existing parent must be a directory.
            let parent = path.ancestors().skip(1).find(|p| p.exists());
            match parent {
                Some(p) if p.is_dir() => Vec::new(),
                Some(p) => problem(format!(
                    "{} cannot be created: {} is not a directory",
                    path.display(),
                    p.display()
                )),
                None => Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Report {
        check_str(text, Path::new("broker.toml"))
    }

    #[test]
    fn a_good_file_is_ok() {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = check(&format!(
            "[broker]\nbroker_name = \"b\"\nnamesrv_addrs = [\"127.0.0.1:9876\"]\n\
             listen_addr = \"127.0.0.1\"\nshards = 1\n[store]\npath = \"{}\"\n",
            dir.path().display()
        ));
        assert!(report.ok(), "{}", report.render());
        assert!(
            report
                .render()
                .contains("OK (cluster DefaultCluster, broker b, 1 shard(s)")
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let report = check(
            "[broker]\nbroker_name = \"b\"\npermission = 3\nregister_period_ms = 5\n\
             namesrv_addrs = [\"nohost\"]\nlisten_addr = \"127.0.0.1\"\nbogus = 1\n\
             [store]\nflush_mode = \"sometimes\"\nsegment_bytes = 1000\n\
             [retention]\ndelete_when = \"25\"\n[nosuch]\nx = 1\n",
        );
        let keys: Vec<&str> = report.problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "broker.bogus",
            "store.flush_mode",
            "[nosuch]",
            "broker.permission",
            "broker.register_period_ms",
            "broker.namesrv_addrs",
            "store.segment_bytes",
            "retention.delete_when",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        let text = report.render();
        assert!(text.contains("use 2 (write), 4 (read) or 6"), "{text}");
        assert!(text.contains("problem(s)"), "{text}");
        assert!(!report.ok());
    }

    #[test]
    fn syntax_errors_and_unreadable_files_are_reported() {
        let report = check("[broker\n");
        assert_eq!(report.problems.len(), 1);
        assert!(report.problems[0].message.starts_with("not valid TOML"));
        let report = check_file(Path::new("/nonexistent/ringmq/broker.toml"));
        assert!(report.problems[0].message.contains("cannot read"));
    }

    #[test]
    fn a_bad_overlay_next_to_the_data_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path()
                .join(crate::server::handler::broker_config::OVERLAY_FILE),
            "brokerPermission=5\n",
        )
        .expect("write");
        let report = check(&format!(
            "[broker]\nlisten_addr = \"127.0.0.1\"\nshards = 1\n[store]\npath = \"{}\"\n",
            dir.path().display()
        ));
        assert_eq!(report.problems.len(), 1, "{}", report.render());
        assert!(report.problems[0].message.contains("brokerPermission"));
    }
}
