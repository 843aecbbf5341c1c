//! The reporting loop shared by every tool: a snapshot every second into the sliding
//! window, one RocketMQ line every report interval once the window is full, and a live
//! progress line on a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::stats::{self, Counters, Delta, Window};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where report lines go: stdout normally, stderr when stdout carries `--json` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Sink {
    /// Prints one line.
    pub fn line(self, text: &str) {
        match self {
            Sink::Stdout => println!("{text}"),
            Sink::Stderr => eprintln!("{text}"),
        }
    }
}

/// Formats one periodic line from the window's span and the counters (which hold maxima).
pub type LineFn<const N: usize> = Box<dyn Fn(&str, &Delta<N>, &Counters<N>) -> String + Send>;

/// Runs until `stop` turns true; returns the final window (for `[Complete]` lines).
///
/// `progress_index` names the counter shown in the live progress line (only drawn when
/// stderr is a terminal and lines go to stdout, so it never mixes into a captured log).
pub async fn run<const N: usize>(
    counters: Arc<Counters<N>>,
    report_interval: Duration,
    sink: Sink,
    progress_index: usize,
    line: LineFn<N>,
    mut stop: watch::Receiver<bool>,
) -> Window<N> {
    let mut window = Window::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; RocketMQ's first snapshot is after 1 s
    let report_every_ms = report_interval.as_millis().max(1) as u64;
    let started_ms = now_ms();
    let mut last_report_ms = started_ms;
    let progress = std::io::stderr().is_terminal() && sink == Sink::Stdout;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
                continue;
            }
        }
        let now = now_ms();
        window.push(counters.snapshot(now));
        if progress {
            let done = counters.snapshot(now).values[progress_index];
            let rate = window.span().map(|d| d.rate(progress_index)).unwrap_or(0);
            eprint!(
                "\r[{:>5} s] {done} done, {rate}/s   ",
                (now - started_ms) / 1000
            );
            let _ = std::io::stderr().flush();
        }
        if now.saturating_sub(last_report_ms) + 500 >= report_every_ms && window.is_full() {
            last_report_ms = now;
            if let Some(delta) = window.span() {
                if progress {
                    eprint!("\r");
                }
                sink.line(&line(&stats::current_time(), &delta, &counters));
            }
        }
    }
    if progress {
        eprintln!();
    }
    window.push(counters.snapshot(now_ms()));
    window
}

/// A stop signal fired by Ctrl-C, SIGTERM, or after `duration` if given.
pub fn stop_signal(duration: Option<Duration>) -> (watch::Sender<bool>, watch::Receiver<bool>) {
    let (tx, rx) = watch::channel(false);
    let signal_tx = tx.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        let timer = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminate = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = timer => {}
            _ = terminate => {}
        }
        let _ = signal_tx.send(true);
    });
    (tx, rx)
}
