//! SQL92 filter benchmarks: compiling a selector, judging one stored 1 KiB record (decode
//! of the record layout + evaluation over its properties), and a whole filtered pull batch
//! against an unfiltered one, over the in-memory store.
//!
//! `cargo bench -p ringmq-broker --bench filter`

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringmq_broker::features::filter::{compile, read_filtered};
use ringmq_broker::server::mem_store::MemStore;
use ringmq_broker::server::store::{PutMessage, QueueRead, ShardStore};
use ringmq_wire::record::{Properties, RecordFields};

const SELECTOR: &str = "a > 5 AND TAGS IN ('x', 'y') AND region = 'eu'";
const QUEUE_MESSAGES: usize = 4096;
const BATCH: usize = 32;

fn properties(i: usize) -> String {
    let mut props = Properties::new();
    props.insert("TAGS", if i.is_multiple_of(2) { "x" } else { "z" });
    props.insert("KEYS", format!("order-{i}"));
    props.insert("UNIQ_KEY", format!("7F000001000018B4AAC2{i:012X}"));
    props.insert("a", (i % 10).to_string());
    props.insert("region", if i.is_multiple_of(3) { "eu" } else { "us" });
    props.insert("WAIT", "true");
    props.encode().expect("valid properties")
}

fn record(i: usize) -> Bytes {
    let props = properties(i);
    let addr: SocketAddr = "127.0.0.1:10911".parse().expect("addr");
    let body = vec![b'x'; 1024];
    let fields = RecordFields {
        topic: "BenchTopic",
        queue_id: 0,
        flag: 0,
        queue_offset: i as i64,
        physical_offset: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: addr,
        store_timestamp: 1_700_000_000_001,
        store_host: addr,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: &body,
        properties: props.as_bytes(),
    };
    let mut out = BytesMut::new();
    fields.encode(&mut out).expect("encode");
    out.freeze()
}

fn store() -> MemStore {
    let mut store = MemStore::new();
    let addr: SocketAddr = "127.0.0.1:10911".parse().expect("addr");
    for i in 0..QUEUE_MESSAGES {
        store
            .append(PutMessage {
                topic: "BenchTopic".into(),
                queue_id: 0,
                flag: 0,
                sys_flag: 0,
                born_timestamp: 1_700_000_000_000,
                born_host: addr,
                store_host: addr,
                reconsume_times: 0,
                prepared_transaction_offset: 0,
                body: Bytes::from(vec![b'x'; 1024]),
                properties: properties(i),
                tags_code: 0,
                keys: Vec::new(),
                uniq_key: None,
            })
            .expect("append");
    }
    store
}

fn bench(c: &mut Criterion) {
    c.bench_function("compile selector", |b| {
        b.iter(|| compile(std::hint::black_box(SELECTOR)).expect("compiles"))
    });

    let filter = compile(SELECTOR).expect("compiles");
    let records: Vec<Bytes> = (0..64).map(record).collect();
    let mut group = c.benchmark_group("judge 1 KiB record");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("decode + evaluate", |b| {
        b.iter(|| {
            records
                .iter()
                .filter(|r| filter.matches_record(std::hint::black_box(r)))
                .count()
        })
    });
    group.finish();

    let store = store();
    let read = QueueRead {
        topic: "BenchTopic",
        queue_id: 0,
        offset: 0,
        max_count: BATCH,
        max_bytes: 256 * 1024,
        tag_codes: None,
        splice: false,
    };
    let mut group = c.benchmark_group("pull batch of 32 from 4096 x 1 KiB");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("unfiltered", |b| {
        b.iter(|| store.get(std::hint::black_box(&read)).expect("read"))
    });
    // One message in fifteen matches: the filtered pull reads about 480 to fill its 32.
    group.bench_function("SQL92 filtered", |b| {
        b.iter(|| read_filtered(&store, std::hint::black_box(&read), &filter).expect("read"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
