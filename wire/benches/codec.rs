//! Codec micro-benchmarks: a 1 KiB `SEND_MESSAGE_V2` request as stock clients send it, with a
//! JSON header (numbers and booleans as JSON scalars) and with a ROCKETMQ binary header.
//!
//! - `decode_reencode`: frame bytes → `RemotingCommand` → frame bytes (the header codec alone);
//! - `send_path`: frame bytes → `RemotingCommand` → typed V2 header → V1 → send response
//!   (`SendMessageResponseHeader`) encoded as a frame: what a broker does per send, minus the
//!   store.
//!
//! Run: `cargo bench -p ringmq-wire --bench codec -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("send_v2_1k");
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

criterion_group!(benches, bench);
criterion_main!(benches);
