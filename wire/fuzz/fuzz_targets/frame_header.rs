//! Fuzz target: the frame decoder, both header encodings, every typed header and the JSON
//! bodies, on arbitrary bytes.
//!
//! Properties checked, beyond "never panics, never allocates without bound":
//! - a decoded command re-encodes, and decoding that re-encoding gives a command whose own
//!   encoding is byte-identical (encoding is a fixed point after one round);
//! - feeding the same bytes in two chunks yields the same frames as feeding them at once.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringmq_wire::body::client::{ConsumerRunningInfo, ResetOffsetBody};
use ringmq_wire::body::consumer::{
    ConsumerConnection, ConsumerOffsetSerializeWrapper, GetConsumerListByGroupResponseBody,
    LockBatchRequestBody, LockBatchResponseBody, ProducerConnection,
};
use ringmq_wire::body::heartbeat::HeartbeatData;
use ringmq_wire::body::stats::{ConsumeStats, QueryConsumeTimeSpanBody, TopicStatsTable};
use ringmq_wire::body::subscription::{SubscriptionGroupConfig, SubscriptionGroupWrapper};
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::{admin, consumer, offset, pull, query, send, transaction};
use ringmq_wire::{FrameDecoder, RemotingCommand};

/// Decodes every typed header from the command; results are irrelevant, panics are not.
fn typed_headers(command: &RemotingCommand) {
    let _ = send::SendMessageRequestHeader::decode_any(command);
    let _ = send::SendMessageRequestHeaderV2::decode(command).map(|v2| {
        // V2 -> V1 -> V2 must be lossless.
        let back = send::SendMessageRequestHeaderV2::from(v2.clone().into_v1());
        assert_eq!(back.a, v2.a);
        assert_eq!(back.g, v2.g);
    });
    let _ = send::SendMessageResponseHeader::decode(command);
    let _ = pull::PullMessageRequestHeader::decode(command);
    let _ = pull::PullMessageResponseHeader::decode(command);
    let _ = offset::QueryConsumerOffsetRequestHeader::decode(command);
    let _ = offset::UpdateConsumerOffsetRequestHeader::decode(command);
    let _ = offset::SearchOffsetRequestHeader::decode(command);
    let _ = offset::GetMaxOffsetRequestHeader::decode(command);
    let _ = offset::GetMinOffsetRequestHeader::decode(command);
    let _ = offset::GetEarliestMsgStoretimeRequestHeader::decode(command);
    let _ = offset::OffsetResponseHeader::decode(command);
    let _ = consumer::UnregisterClientRequestHeader::decode(command);
    let _ = consumer::ConsumerSendMsgBackRequestHeader::decode(command);
    let _ = consumer::GetConsumerListByGroupRequestHeader::decode(command);
    let _ = consumer::GetConsumerRunningInfoRequestHeader::decode(command);
    let _ = consumer::ResetOffsetRequestHeader::decode(command);
    let _ = admin::GetProducerConnectionListRequestHeader::decode(command);
    let _ = query::QueryMessageRequestHeader::decode(command);
    let _ = query::ViewMessageRequestHeader::decode(command);
    let _ = transaction::EndTransactionRequestHeader::decode(command);
    let _ = transaction::CheckTransactionStateRequestHeader::decode(command);
    let _ = admin::CreateTopicRequestHeader::decode(command);
    let _ = admin::GetConsumeStatsRequestHeader::decode(command);
    let _ = admin::parse_properties(&command.body);
}

/// Decodes the body as every JSON body type.
fn bodies(body: &[u8]) {
    let _ = HeartbeatData::decode(body);
    let _ = LockBatchRequestBody::decode(body);
    let _ = LockBatchResponseBody::decode(body);
    let _ = GetConsumerListByGroupResponseBody::decode(body);
    let _ = ConsumerConnection::decode(body);
    let _ = ProducerConnection::decode(body);
    if let Ok(info) = ConsumerRunningInfo::decode(body) {
        assert!(ConsumerRunningInfo::decode(&info.encode()).is_ok());
    }
    if let Ok(reset) = ResetOffsetBody::decode(body) {
        assert_eq!(ResetOffsetBody::decode(&reset.encode()).ok(), Some(reset));
    }
    let _ = ConsumerOffsetSerializeWrapper::decode(body);
    let _ = SubscriptionGroupConfig::decode(body);
    let _ = SubscriptionGroupWrapper::decode(body);
    let _ = QueryConsumeTimeSpanBody::decode(body);
    if let Ok(stats) = TopicStatsTable::decode(body) {
        assert!(TopicStatsTable::decode(&stats.encode()).is_ok());
    }
    if let Ok(stats) = ConsumeStats::decode(body) {
        assert!(ConsumeStats::decode(&stats.encode()).is_ok());
    }
}

fn check_command(command: &RemotingCommand) {
    typed_headers(command);
    bodies(&command.body);
    // Encoding may refuse (e.g. a code over 16 bits in a binary header); when it does not,
    // one round must reach a fixed point.
    if let Ok(first) = command.encode_frame() {
        let again = RemotingCommand::decode(first.slice(4..)).expect("our own frame decodes");
        let second = again.encode_frame().expect("a decoded command re-encodes");
        assert_eq!(first, second, "encoding is not a fixed point");
    }
}

fuzz_target!(|data: &[u8]| {
    // Whole input at once.
    let mut decoder = FrameDecoder::new(1 << 20);
    decoder.extend(data);
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = decoder.next_frame() {
        frames.push(frame);
    }
    // The same input split in two must give the same frames.
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut chunked = FrameDecoder::new(1 << 20);
    let mut chunked_frames = Vec::new();
    for part in [&data[..split], &data[split..]] {
        chunked.extend(part);
        while let Ok(Some(frame)) = chunked.next_frame() {
            chunked_frames.push(frame);
        }
    }
    assert_eq!(frames, chunked_frames);

    for frame in frames {
        if let Ok(command) = RemotingCommand::decode(frame) {
            check_command(&command);
        }
    }
    // The content decoder on its own, without a length prefix.
    if let Ok(command) = RemotingCommand::decode(Bytes::copy_from_slice(data)) {
        check_command(&command);
    }
});
