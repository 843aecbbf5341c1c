//! `ringmq-perf tx-producer`: RocketMQ's `benchmark/TransactionProducer.java`.
//!
//! Every body carries its own script: bytes 0-7 the batch id (`-b`), 8-15 the message id
//! (`(start_ms << 32) | counter`), byte 16 the local transaction's answer (COMMIT /
//! ROLLBACK / UNKNOW ordinal, drawn with `-sr` / `-su`), bytes 17-36 the answers to
//! checks #1..#20 (drawn with `-cr` / `-cu`); the rest is random. The checker answers from
//! the script, counts checks, and detects *duplicated* checks (same message, same
//! `TRANSACTION_CHECK_TIMES`, remembered for the last 200 000 message ids) and
//! *unexpected* ones (a check for a message whose local transaction did not answer
//! UNKNOW, or whose earlier scripted check answer was not UNKNOW).
//!
//! The periodic line is RocketMQ 5.1+'s (see [`stats::transaction_line`]): per-window
//! deltas, max RT reset after each print.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes, BytesMut};
use clap::Args;
use ringmq_client::consumer::message_ext::MessageExt;
use ringmq_client::message::Message;
use ringmq_client::producer::{Producer, ProducerConfig};
use ringmq_client::{LocalTransactionState, SendStatus};
use ringmq_wire::record::property;
use tokio::sync::watch;

use crate::latency::Latency;
use crate::producer::{CommonArgs, print_json};
use crate::report::{self, now_ms};
use crate::stats::{self, Counters, transaction};

/// Scripted check answers per message (RocketMQ's `MAX_CHECK_RESULT_IN_MSG`).
pub const MAX_CHECKS: usize = 20;
/// Bytes of the script at the start of every body.
pub const SCRIPT_BYTES: usize = 8 + 8 + 1 + MAX_CHECKS;
/// Message ids whose check history is remembered.
pub const CHECK_HISTORY: usize = 200_000;

/// `tx-producer` options (RocketMQ's `TransactionProducer`).
#[derive(Debug, Clone, Args)]
pub struct TxProducerArgs {
    /// Topic.
    #[arg(short = 't', long = "topic", default_value = "BenchmarkTest")]
    pub topic: String,
    /// Sender threads.
    #[arg(short = 'w', long = "threadCount", default_value_t = 32)]
    pub threads: usize,
    /// Body bytes (at least 37: the script).
    #[arg(short = 's', long = "messageSize", default_value_t = 2048)]
    pub message_size: usize,
    /// Share of local transactions answering ROLLBACK.
    #[arg(long = "sendRollbackRate", default_value_t = 0.0)]
    pub send_rollback_rate: f64,
    /// Share of local transactions answering UNKNOW (the broker checks back).
    #[arg(long = "sendUnknownRate", default_value_t = 0.0)]
    pub send_unknown_rate: f64,
    /// Share of check answers that are ROLLBACK.
    #[arg(long = "checkRollbackRate", default_value_t = 0.0)]
    pub check_rollback_rate: f64,
    /// Share of check answers that are UNKNOW (the broker checks again).
    #[arg(long = "checkUnknownRate", default_value_t = 0.0)]
    pub check_unknown_rate: f64,
    /// Batch id written into every body (default: the start time in ms).
    #[arg(short = 'b', long = "testBatchId")]
    pub batch_id: Option<u64>,
    /// Milliseconds each sender sleeps between sends.
    #[arg(short = 'i', long = "sendInterval", default_value_t = 0)]
    pub send_interval_ms: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// A local-transaction or check answer as scripted in a body (RocketMQ's ordinals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Scripted {
    /// COMMIT_MESSAGE.
    Commit = 0,
    /// ROLLBACK_MESSAGE.
    Rollback = 1,
    /// UNKNOW.
    Unknown = 2,
}

impl Scripted {
    fn from_byte(b: u8) -> Scripted {
        match b {
            1 => Scripted::Rollback,
            2 => Scripted::Unknown,
            _ => Scripted::Commit,
        }
    }

    /// Draws an answer: ROLLBACK with `rollback`, UNKNOW with `unknown`, else COMMIT.
    fn draw(r: f64, rollback: f64, unknown: f64) -> Scripted {
        if r < rollback {
            Scripted::Rollback
        } else if r < rollback + unknown {
            Scripted::Unknown
        } else {
            Scripted::Commit
        }
    }

    fn state(self) -> LocalTransactionState {
        match self {
            Scripted::Commit => LocalTransactionState::Commit,
            Scripted::Rollback => LocalTransactionState::Rollback,
            Scripted::Unknown => LocalTransactionState::Unknown,
        }
    }
}

/// The script read back from a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The run's batch id.
    pub batch_id: u64,
    /// The message id.
    pub msg_id: u64,
    /// The local transaction's answer.
    pub send: Scripted,
    /// Answers to checks #1..#20.
    pub checks: [Scripted; MAX_CHECKS],
}

impl Script {
    /// Writes the script followed by `filler` up to `size` bytes.
    pub fn encode(&self, size: usize, filler: &[u8]) -> Bytes {
        let mut body = BytesMut::with_capacity(size.max(SCRIPT_BYTES));
        body.put_u64(self.batch_id);
        body.put_u64(self.msg_id);
        body.put_u8(self.send as u8);
        for check in self.checks {
            body.put_u8(check as u8);
        }
        let rest = size.saturating_sub(SCRIPT_BYTES);
        body.extend(filler.iter().cycle().take(rest));
        body.freeze()
    }

    /// Reads a script; `None` when the body is too short.
    pub fn decode(body: &[u8]) -> Option<Script> {
        if body.len() < SCRIPT_BYTES {
            return None;
        }
        let batch_id = u64::from_be_bytes(body[0..8].try_into().ok()?);
        let msg_id = u64::from_be_bytes(body[8..16].try_into().ok()?);
        let send = Scripted::from_byte(body[16]);
        let mut checks = [Scripted::Commit; MAX_CHECKS];
        for (i, check) in checks.iter_mut().enumerate() {
            *check = Scripted::from_byte(body[17 + i]);
        }
        Some(Script {
            batch_id,
            msg_id,
            send,
            checks,
        })
    }
}

/// What the checker decided about one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckVerdict {
    /// The answer to send.
    pub answer: LocalTransactionState,
    /// The check should not have happened.
    pub unexpected: bool,
    /// This check round was already seen for this message.
    pub duplicated: bool,
}

/// Check bookkeeping: a bitmask of the check rounds seen per message id, for the last
/// [`CHECK_HISTORY`] ids (oldest forgotten first).
#[derive(Debug, Default)]
pub struct CheckBook {
    seen: HashMap<u64, u32>,
    order: VecDeque<u64>,
}

impl CheckBook {
    /// Judges check number `check_times` (1-based) of the message with `script`, from
    /// run `batch_id`.
    pub fn judge(&mut self, batch_id: u64, script: &Script, check_times: usize) -> CheckVerdict {
        if script.batch_id != batch_id {
            // Not sent by this run (an earlier run's leftover): roll it back.
            return CheckVerdict {
                answer: LocalTransactionState::Rollback,
                unexpected: false,
                duplicated: false,
            };
        }
        let round = check_times.clamp(1, MAX_CHECKS);
        let bit = 1u32 << (round - 1);
        let mask = match self.seen.get_mut(&script.msg_id) {
            Some(mask) => mask,
            None => {
                if self.order.len() >= CHECK_HISTORY
                    && let Some(oldest) = self.order.pop_front()
                {
                    self.seen.remove(&oldest);
                }
                self.order.push_back(script.msg_id);
                self.seen.entry(script.msg_id).or_insert(0)
            }
        };
        let duplicated = *mask & bit != 0;
        *mask |= bit;
        let unexpected = script.send != Scripted::Unknown
            || script.checks[..round - 1]
                .iter()
                .any(|c| *c != Scripted::Unknown)
            || check_times > MAX_CHECKS;
        let answer = if check_times > MAX_CHECKS {
            LocalTransactionState::Rollback
        } else {
            script.checks[round - 1].state()
        };
        CheckVerdict {
            answer,
            unexpected,
            duplicated,
        }
    }
}

struct Shared {
    producer: Producer,
    counters: Arc<Counters<{ transaction::N }>>,
    latency: Mutex<Latency>,
    args: TxProducerArgs,
    batch_id: u64,
    start_ms: u64,
    next_id: AtomicU64,
    filler: Bytes,
    first_error_reported: AtomicBool,
}

impl Shared {
    fn next_script(&self) -> Script {
        let counter = self.next_id.fetch_add(1, Ordering::Relaxed);
        let args = &self.args;
        let mut checks = [Scripted::Commit; MAX_CHECKS];
        for check in &mut checks {
            *check = Scripted::draw(
                rand::random::<f64>(),
                args.check_rollback_rate,
                args.check_unknown_rate,
            );
        }
        Script {
            batch_id: self.batch_id,
            msg_id: (self.start_ms << 32) | (counter & 0xffff_ffff),
            send: Scripted::draw(
                rand::random::<f64>(),
                args.send_rollback_rate,
                args.send_unknown_rate,
            ),
            checks,
        }
    }

    async fn send_one(&self) {
        let script = self.next_script();
        let body = script.encode(self.args.message_size, &self.filler);
        let message = Message::new(self.args.topic.clone(), body);
        let started = Instant::now();
        let local = script.send.state();
        match self
            .producer
            .send_in_transaction(message, move |_| async move { local })
            .await
        {
            Ok(result) if result.send.status == SendStatus::Ok => {
                let elapsed = started.elapsed();
                let rt_ms = elapsed.as_millis() as u64;
                self.counters.add(transaction::SUCCESS, 1);
                self.counters.add(transaction::RT_TOTAL_MS, rt_ms);
                self.counters.observe_max(rt_ms);
                if let Ok(mut latency) = self.latency.lock() {
                    latency.record_us(elapsed.as_micros() as u64);
                }
            }
            Ok(result) => {
                self.counters.add(transaction::FAILED, 1);
                tracing::warn!(status = ?result.send.status, "transactional send not SEND_OK");
            }
            Err(error) => {
                self.counters.add(transaction::FAILED, 1);
                if !self.first_error_reported.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "send failed: {error} (further failures are counted; RUST_LOG=warn logs each)"
                    );
                } else {
                    tracing::warn!(%error, "transactional send failed");
                }
            }
        }
    }
}

/// Answers one broker check and counts it.
fn check(
    book: &Mutex<CheckBook>,
    counters: &Counters<{ transaction::N }>,
    batch_id: u64,
    message: &MessageExt,
) -> LocalTransactionState {
    counters.add(transaction::CHECK, 1);
    let check_times = message
        .property(property::TRANSACTION_CHECK_TIMES)
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(1);
    let Some(script) = Script::decode(&message.body) else {
        // Not one of ours (too short to carry a script).
        return LocalTransactionState::Rollback;
    };
    let verdict = book
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .judge(batch_id, &script, check_times);
    if verdict.duplicated {
        counters.add(transaction::DUPLICATED_CHECK, 1);
    }
    if verdict.unexpected {
        counters.add(transaction::UNEXPECTED_CHECK, 1);
        eprintln!(
            "{} unexpected check: msgId={},txId={},checkTimes={},sendResult={:?}",
            chrono::Local::now().format("%H:%M:%S,%3f"),
            message.msg_id(),
            message
                .property(property::TRANSACTION_ID)
                .unwrap_or_else(|| message.msg_id()),
            check_times,
            script.send.state(),
        );
    }
    verdict.answer
}

/// Runs `tx-producer`.
pub async fn run_tx_producer(args: TxProducerArgs) -> anyhow::Result<()> {
    args.common.check_supported()?;
    if args.message_size < SCRIPT_BYTES {
        bail!(
            "-s {}: transactional bodies need at least {SCRIPT_BYTES} bytes",
            args.message_size
        );
    }
    for (name, rate) in [
        ("-sr", args.send_rollback_rate),
        ("-su", args.send_unknown_rate),
        ("-cr", args.check_rollback_rate),
        ("-cu", args.check_unknown_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            bail!("{name} {rate}: a rate is between 0 and 1");
        }
    }
    if args.threads == 0 {
        bail!("-w must be at least 1");
    }
    let start_ms = now_ms();
    let batch_id = args.batch_id.unwrap_or(start_ms);
    let sink = args.common.sink();
    sink.line(&format!(
        "threadCount: {}, messageSize: {}, batchId: {}, sendRollbackRate: {}, sendUnknownRate: {}, checkRollbackRate: {}, checkUnknownRate: {}, sendInterval: {}, reportInterval: {}",
        args.threads,
        args.message_size,
        batch_id,
        args.send_rollback_rate,
        args.send_unknown_rate,
        args.check_rollback_rate,
        args.check_unknown_rate,
        args.send_interval_ms,
        args.common.report_interval_ms
    ));
    let instance = args.common.client(&format!("benchmark_{start_ms}"))?;
    let mut config = ProducerConfig::new("benchmark_transaction_producer");
    config.default_topic_queue_nums = 1000;
    let producer = Producer::new(instance.clone(), config).context("cannot start the producer")?;
    let counters = Arc::new(Counters::<{ transaction::N }>::default());
    let book = Arc::new(Mutex::new(CheckBook::default()));
    {
        let counters = counters.clone();
        let book = book.clone();
        producer.set_transaction_checker(move |message: MessageExt| {
            let answer = check(&book, &counters, batch_id, &message);
            async move { answer }
        });
    }
    let shared = Arc::new(Shared {
        producer,
        counters: counters.clone(),
        latency: Mutex::new(Latency::default()),
        filler: crate::producer::random_body(args.message_size.saturating_sub(SCRIPT_BYTES).max(1)),
        args: args.clone(),
        batch_id,
        start_ms,
        next_id: AtomicU64::new(0),
        first_error_reported: AtomicBool::new(false),
    });
    let (stop_tx, stop_rx) = report::stop_signal(args.common.duration_s.map(Duration::from_secs));
    let reporter = tokio::spawn(report::run(
        counters.clone(),
        Duration::from_millis(args.common.report_interval_ms),
        sink,
        transaction::SUCCESS,
        Box::new(
            |now: &str,
             delta: &stats::Delta<{ transaction::N }>,
             counters: &Counters<{ transaction::N }>| {
                // RocketMQ resets the transaction tool's max RT after each print.
                stats::transaction_line(now, delta, counters.take_maxima().0)
            },
        ),
        stop_rx.clone(),
    ));
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..args.threads {
        let shared = shared.clone();
        let mut stop: watch::Receiver<bool> = stop_rx.clone();
        senders.spawn(async move {
            while !*stop.borrow() {
                shared.send_one().await;
                if shared.args.send_interval_ms > 0 {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(shared.args.send_interval_ms)) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let _ = stop_tx.send(true);
    reporter.await.context("the reporter task failed")?;
    let summary = shared
        .latency
        .lock()
        .map(|l| l.summary())
        .unwrap_or_else(|e| e.into_inner().summary());
    sink.line(&summary.line());
    let totals = counters.snapshot(now_ms()).values;
    sink.line(&format!(
        "[Complete] Send Total: {} | Send Failed: {} | Check: {} | UnexpectedCheck: {} | DuplicatedCheck: {}",
        totals[transaction::SUCCESS] + totals[transaction::FAILED],
        totals[transaction::FAILED],
        totals[transaction::CHECK],
        totals[transaction::UNEXPECTED_CHECK],
        totals[transaction::DUPLICATED_CHECK],
    ));
    if args.common.json {
        print_json(
            "tx-producer",
            &args.topic,
            args.threads,
            args.message_size,
            totals[transaction::SUCCESS],
            totals[transaction::FAILED],
            0,
            totals[transaction::RT_TOTAL_MS],
            counters.maxima().0,
            elapsed,
            &summary,
        );
    }
    shared.producer.shutdown();
    instance.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(send: Scripted, checks: &[Scripted]) -> Script {
        let mut all = [Scripted::Commit; MAX_CHECKS];
        all[..checks.len()].copy_from_slice(checks);
        Script {
            batch_id: 7,
            msg_id: 42,
            send,
            checks: all,
        }
    }

    #[test]
    fn script_round_trips_and_fills_the_size() {
        let s = script(Scripted::Unknown, &[Scripted::Unknown, Scripted::Rollback]);
        let body = s.encode(100, b"xyz");
        assert_eq!(body.len(), 100);
        assert_eq!(&body[SCRIPT_BYTES..SCRIPT_BYTES + 3], b"xyz");
        assert_eq!(Script::decode(&body), Some(s));
        assert_eq!(Script::decode(&body[..SCRIPT_BYTES - 1]), None);
    }

    #[test]
    fn draw_splits_by_rate() {
        assert_eq!(Scripted::draw(0.05, 0.1, 0.2), Scripted::Rollback);
        assert_eq!(Scripted::draw(0.25, 0.1, 0.2), Scripted::Unknown);
        assert_eq!(Scripted::draw(0.35, 0.1, 0.2), Scripted::Commit);
        assert_eq!(Scripted::draw(0.0, 0.0, 0.0), Scripted::Commit);
    }

    #[test]
    fn checks_follow_the_script_and_flag_anomalies() {
        let mut book = CheckBook::default();
        let s = script(Scripted::Unknown, &[Scripted::Unknown, Scripted::Rollback]);
        let first = book.judge(7, &s, 1);
        assert_eq!(first.answer, LocalTransactionState::Unknown);
        assert!(!first.unexpected && !first.duplicated);
        let second = book.judge(7, &s, 2);
        assert_eq!(second.answer, LocalTransactionState::Rollback);
        assert!(!second.unexpected && !second.duplicated);
        // Check #2 again: duplicated. Check #3 after a final ROLLBACK: unexpected.
        assert!(book.judge(7, &s, 2).duplicated);
        assert!(book.judge(7, &s, 3).unexpected);
        // A committed message should never be checked.
        let committed = script(Scripted::Commit, &[]);
        assert!(book.judge(7, &committed, 1).unexpected);
        // Another run's message: rolled back, not counted as ours.
        let foreign = book.judge(8, &s, 1);
        assert_eq!(foreign.answer, LocalTransactionState::Rollback);
        assert!(!foreign.unexpected);
    }

    #[test]
    fn check_history_is_bounded() {
        let mut book = CheckBook::default();
        let mut s = script(Scripted::Unknown, &[Scripted::Unknown]);
        for id in 0..(CHECK_HISTORY as u64 + 10) {
            s.msg_id = id;
            book.judge(7, &s, 1);
        }
        assert_eq!(book.seen.len(), CHECK_HISTORY);
        assert_eq!(book.order.len(), CHECK_HISTORY);
        s.msg_id = 0;
        assert!(!book.judge(7, &s, 1).duplicated, "id 0 was forgotten");
    }
}
