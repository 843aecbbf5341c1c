//! Codec micro-benchmarks: a 1 KiB `SEND_MESSAGE_V2` request as stock clients send it, with a
//! JSON header (numbers and booleans as JSON scalars) and with a ROCKETMQ binary header.
//!
//! - `decode_reencode`: frame bytes → `RemotingCommand` → frame bytes (the header codec alone);
//! - `send_path`: frame bytes → `RemotingCommand` → typed V2 header → V1 → send response
//!   (`SendMessageResponseHeader`) encoded as a frame: what a broker does per send, minus the
//!   store.
//!
//! Each case is measured twice: `wall/…` in wall-clock time (criterion's default) and
//! `cpu/…` in the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), which leaves out
//! the time the thread spent preempted: on a shared, oversubscribed machine the wall-clock
//! figures mostly measure the neighbours.
//!
//! Run: `cargo bench -p ringmq-wire --bench codec -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group};
use ringmq_wire::code::ResponseCode;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::send::{SendMessageRequestHeaderV2, SendMessageResponseHeader};
use ringmq_wire::{FrameDecoder, RemotingCommand, SerializeType};

const JSON_HEADER: &str = r#"{"code":310,"extFields":{"a":"ProducerGroupName","b":"TopicTest","c":"TBW102","d":4,"e":3,"f":0,"g":1700000000123,"h":0,"i":"KEYS\u0001order-1\u0002TAGS\u0001TagA\u0002UNIQ_KEY\u00017F0000010F3A18B4AAC25E8E5E5A0000\u0002WAIT\u0001true\u0002","j":0,"k":false,"m":false},"flag":0,"language":"CPP","opaque":42,"serializeTypeCurrentRPC":"JSON","version":401}"#;

fn frame(serialize_type: u8, header: &[u8], body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + header.len() + body.len());
    out.extend_from_slice(&((4 + header.len() + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(&((u32::from(serialize_type) << 24) | header.len() as u32).to_be_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    Bytes::from(out)
}

fn requests() -> [(&'static str, Bytes); 2] {
    let body = vec![b'x'; 1024];
    let json = frame(0, JSON_HEADER.as_bytes(), &body);
    let mut binary = RemotingCommand::decode(json.slice(4..)).expect("JSON request decodes");
    binary.serialize_type = SerializeType::RocketMq;
    binary.language = ringmq_wire::code::LanguageCode::Java;
    [
        ("json", json),
        (
            "binary",
            binary.encode_frame().expect("binary request encodes"),
        ),
    ]
}

/// One send as a broker handles it, minus the store.
fn send_path(decoder: &mut FrameDecoder, bytes: &[u8], out: &mut BytesMut) {
    decoder.extend(bytes);
    let request = decoder.next_command().expect("decodes").expect("complete");
    let header = SendMessageRequestHeaderV2::decode(&request)
        .expect("typed header")
        .into_v1();
    let mut response = RemotingCommand::response_to(&request, ResponseCode::Success);
    SendMessageResponseHeader {
        msg_id: "7F00000100002A9F0000000000000400".to_owned(),
        queue_id: header.queue_id,
        queue_offset: 1_000,
        transaction_id: None,
        batch_uniq_id: None,
        recall_handle: None,
    }
    .encode_into(&mut response);
    out.clear();
    response.encode_into(out).expect("response encodes");
    black_box(&header);
}

/// CPU time of the calling thread, in nanoseconds.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant the kernel
    // supports on every Linux this runs on.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, like wall time's: reuse its formatting.
        WALL.formatter()
    }
}

fn bench<M: Measurement>(c: &mut Criterion<M>, prefix: &str) {
    let mut group = c.benchmark_group(format!("{prefix}/send_v2_1k"));
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in requests() {
        let content = bytes.slice(4..);
        group.bench_function(format!("{name}/decode_reencode"), |b| {
            let mut out = BytesMut::with_capacity(4096);
            b.iter(|| {
                let command = RemotingCommand::decode(black_box(content.clone())).expect("decodes");
                out.clear();
                command.encode_into(&mut out).expect("encodes");
                black_box(&out);
            })
        });
        group.bench_function(format!("{name}/send_path"), |b| {
            let mut decoder = FrameDecoder::default();
            let mut out = BytesMut::with_capacity(4096);
            b.iter(|| send_path(&mut decoder, black_box(&bytes), &mut out))
        });
    }
    group.finish();
}

fn wall(c: &mut Criterion) {
    bench(c, "wall");
}

fn cpu(c: &mut Criterion<ThreadCpuTime>) {
    bench(c, "cpu");
}

criterion_group!(wall_benches, wall);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu
}

/// `WIRE_BENCH_ITERS=n [WIRE_BENCH_CASE=json/send_path]`: run each case (or one) exactly `n`
/// times and print thread-CPU ns per iteration, for `perf stat` (instructions and cycles per
/// iteration do not depend on what the neighbours do).
fn fixed_iterations(iterations: u64, only: Option<&str>) {
    for (name, bytes) in requests() {
        let content = bytes.slice(4..);
        let mut out = BytesMut::with_capacity(4096);
        let mut decoder = FrameDecoder::default();
        for case in ["decode_reencode", "send_path"] {
            let label = format!("{name}/{case}");
            if only.is_some_and(|only| only != label) {
                continue;
            }
            let start = thread_cpu_ns();
            for _ in 0..iterations {
                if case == "send_path" {
                    send_path(&mut decoder, black_box(&bytes), &mut out);
                } else {
                    let command =
                        RemotingCommand::decode(black_box(content.clone())).expect("decodes");
                    out.clear();
                    command.encode_into(&mut out).expect("encodes");
                    black_box(&out);
                }
            }
            let per_iteration = (thread_cpu_ns() - start) as f64 / iterations as f64;
            println!("{label}: {per_iteration:.0} ns CPU per iteration ({iterations} iterations)");
        }
    }
}

fn main() {
    if let Some(iterations) = std::env::var("WIRE_BENCH_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        let only = std::env::var("WIRE_BENCH_CASE").ok();
        fixed_iterations(iterations, only.as_deref());
        return;
    }
    wall_benches();
    cpu_benches();
    Criterion::default().configure_from_args().final_summary();
}
