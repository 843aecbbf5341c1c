//! A small in-memory broker for consumer tests: it stores sent messages in RocketMQ's record
//! format, serves pulls (holding empty pulls briefly, like long polling), keeps consumer
//! offsets, group members (from heartbeats), queue locks, and turns send-backs into
//! redeliveries on the group's retry topic. Requests on one connection are served
//! concurrently and answered out of order, as a real broker does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringmq_wire::body::consumer::{
    GetConsumerListByGroupResponseBody, LockBatchRequestBody, LockBatchResponseBody,
};
use ringmq_wire::body::heartbeat::HeartbeatData;
use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::consumer::{
    ConsumerSendMsgBackRequestHeader, GetConsumerListByGroupRequestHeader,
    UnregisterClientRequestHeader,
};
use ringmq_wire::header::offset::{
    GetMaxOffsetRequestHeader, OffsetResponseHeader, QueryConsumerOffsetRequestHeader,
    QueryConsumerOffsetResponseHeader, UpdateConsumerOffsetRequestHeader,
};
use ringmq_wire::header::pull::{PullMessageRequestHeader, PullMessageResponseHeader};
use ringmq_wire::header::query::{
    QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader,
};
use ringmq_wire::header::send::{SendMessageRequestHeader, SendMessageResponseHeader};
use ringmq_wire::header::transaction::{
    CheckTransactionStateRequestHeader, EndTransactionRequestHeader,
};
use ringmq_wire::record::{RecordFields, StoredMessage, property};
use ringmq_wire::{FrameDecoder, RemotingCommand, RequestCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What a send-back asked for.
#[derive(Debug, Clone)]
pub(crate) struct SentBack {
    pub group: String,
    pub delay_level: i32,
    pub body: Bytes,
}

#[derive(Default)]
pub(crate) struct State {
    /// (topic, queue id) → records.
    pub queues: HashMap<(String, i32), Vec<Bytes>>,
    /// Commit log: physical offset → record.
    pub log: BTreeMap<i64, Bytes>,
    next_physical: i64,
    /// (group, topic, queue id) → committed offset.
    pub offsets: HashMap<(String, String, i32), i64>,
    /// group → client ids.
    pub members: HashMap<String, BTreeSet<String>>,
    /// (group, queue) → client id holding the lock.
    pub locks: HashMap<(String, String, i32), String>,
    pub sent_back: Vec<SentBack>,
    /// producer group → a connection of a producer of that group (from heartbeats).
    pub producers: HashMap<String, mpsc::Sender<Bytes>>,
    /// `END_TRANSACTION`s received: (commit log offset, commitOrRollback, from check).
    pub ended: Vec<(i64, i32, bool)>,
    /// client id → a connection of that client (from consumer heartbeats).
    pub clients: HashMap<String, mpsc::Sender<Bytes>>,
    /// Responses awaited to requests this broker sent to clients, by opaque.
    pending: HashMap<i32, tokio::sync::oneshot::Sender<RemotingCommand>>,
}

/// A running mini broker.
#[derive(Clone)]
pub(crate) struct MiniBroker {
    pub addr: String,
    pub state: Arc<Mutex<State>>,
}

impl MiniBroker {
    pub(crate) async fn start() -> MiniBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let broker = MiniBroker {
            addr: addr.clone(),
            state: Arc::default(),
        };
        let serving = broker.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let broker = serving.clone();
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.into_split();
                    let (tx, mut rx) = mpsc::channel::<Bytes>(1024);
                    tokio::spawn(async move {
                        while let Some(frame) = rx.recv().await {
                            if write.write_all(&frame).await.is_err() {
                                return;
                            }
                        }
                    });
                    let mut decoder = FrameDecoder::default();
                    loop {
                        while let Ok(Some(request)) = decoder.next_command() {
                            if request.is_response() {
                                let waiter = broker.state().pending.remove(&request.opaque);
                                if let Some(waiter) = waiter {
                                    let _ = waiter.send(request);
                                }
                                continue;
                            }
                            let broker = broker.clone();
                            let tx = tx.clone();
                            tokio::spawn(async move {
                                let oneway = request.is_oneway();
                                let response = broker.handle(&request, &tx).await;
                                if !oneway && let Ok(frame) = response.encode_frame() {
                                    let _ = tx.send(frame).await;
                                }
                            });
                        }
                        let buffer = decoder.buffer_mut();
                        buffer.reserve(4096);
                        match read.read_buf(buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        broker
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `CHECK_TRANSACTION_STATE` about the record at `physical` to a producer of `group`.
    pub(crate) async fn check_transaction(&self, group: &str, physical: i64) {
        let (conn, record) = {
            let state = self.state();
            (
                state
                    .producers
                    .get(group)
                    .cloned()
                    .expect("producer heartbeat seen"),
                state.log.get(&physical).cloned().expect("record"),
            )
        };
        let mut request = RemotingCommand::request(RequestCode::CheckTransactionState);
        CheckTransactionStateRequestHeader {
            topic: None,
            tran_state_table_offset: 0,
            commit_log_offset: physical,
            msg_id: None,
            transaction_id: None,
            offset_msg_id: None,
            rpc: Default::default(),
        }
        .encode_into(&mut request);
        request.set_oneway();
        request.body = record;
        conn.send(request.encode_frame().expect("frame"))
            .await
            .expect("connection open");
    }

    /// Sends a request to the client `client_id` (known from its consumer heartbeats) and
    /// waits for its response.
    pub(crate) async fn invoke_client(
        &self,
        client_id: &str,
        request: RemotingCommand,
    ) -> RemotingCommand {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let conn = {
            let mut state = self.state();
            state.pending.insert(request.opaque, tx);
            state
                .clients
                .get(client_id)
                .cloned()
                .expect("consumer heartbeat seen")
        };
        conn.send(request.encode_frame().expect("frame"))
            .await
            .expect("connection open");
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("client answered in time")
            .expect("response routed")
    }

    /// Committed offset of a group on a queue.
    pub(crate) fn committed(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.state()
            .offsets
            .get(&(group.to_owned(), topic.to_owned(), queue_id))
            .copied()
    }

    /// Appends a record; returns (queue offset, physical offset).
    fn append(
        &self,
        topic: &str,
        queue_id: i32,
        fields: impl FnOnce(i64, i64) -> Vec<u8>,
    ) -> (i64, i64) {
        let mut state = self.state();
        let physical = state.next_physical;
        let key = (topic.to_owned(), queue_id);
        let queue_offset = state.queues.get(&key).map_or(0, Vec::len) as i64;
        let record = Bytes::from(fields(queue_offset, physical));
        state.next_physical += record.len() as i64;
        state.log.insert(physical, record.clone());
        state.queues.entry(key).or_default().push(record);
        (queue_offset, physical)
    }

    // Test helper mirroring the record's fields one to one.
    #[allow(clippy::too_many_arguments)]
    fn encode_record(
        topic: &str,
        queue_id: i32,
        queue_offset: i64,
        physical: i64,
        sys_flag: i32,
        flag: i32,
        reconsume_times: i32,
        body: &[u8],
        properties: &str,
    ) -> Vec<u8> {
        let host: SocketAddr = "127.0.0.1:10911".parse().expect("addr");
        let mut out = BytesMut::new();
        RecordFields {
            topic,
            queue_id,
            flag,
            queue_offset,
            physical_offset: physical,
            sys_flag,
            born_timestamp: 1,
            born_host: host,
            store_timestamp: 2,
            store_host: host,
            reconsume_times,
            prepared_transaction_offset: 0,
            body,
            properties: properties.as_bytes(),
        }
        .encode(&mut out)
        .expect("encode record");
        out.to_vec()
    }

    async fn handle(
        &self,
        request: &RemotingCommand,
        conn: &mpsc::Sender<Bytes>,
    ) -> RemotingCommand {
        match self.try_handle(request, conn).await {
            Ok(response) => response,
            Err(reason) => {
                RemotingCommand::error_response(request, ResponseCode::SystemError, reason)
            }
        }
    }

    async fn try_handle(
        &self,
        request: &RemotingCommand,
        conn: &mpsc::Sender<Bytes>,
    ) -> Result<RemotingCommand, String> {
        let ok = RemotingCommand::response_to(request, ResponseCode::Success);
        let e = |e: ringmq_wire::WireError| e.to_string();
        let Some(code) = request.request_code() else {
            return Err(format!("unknown code {}", request.code));
        };
        Ok(match code {
            RequestCode::SendMessage | RequestCode::SendMessageV2 => {
                let header = SendMessageRequestHeader::decode_any(request).map_err(e)?;
                let properties = header.properties.clone().unwrap_or_default();
                let (queue_offset, physical) =
                    self.append(&header.topic, header.queue_id, |q, p| {
                        Self::encode_record(
                            &header.topic,
                            header.queue_id,
                            q,
                            p,
                            header.sys_flag,
                            header.flag,
                            0,
                            &request.body,
                            &properties,
                        )
                    });
                let mut response = ok;
                SendMessageResponseHeader {
                    msg_id: ringmq_wire::msgid::offset_msg_id(
                        "127.0.0.1:10911".parse().expect("addr"),
                        physical,
                    ),
                    queue_id: header.queue_id,
                    queue_offset,
                    ..SendMessageResponseHeader::default()
                }
                .encode_into(&mut response);
                response
            }
            RequestCode::PullMessage => {
                let header = PullMessageRequestHeader::decode(request).map_err(e)?;
                let key = (header.topic.clone(), header.queue_id);
                let hold_until = tokio::time::Instant::now()
                    + Duration::from_millis(header.suspend_timeout_millis.clamp(0, 500) as u64);
                loop {
                    let (records, len) = {
                        let state = self.state();
                        let queue = state.queues.get(&key).cloned().unwrap_or_default();
                        let from = header.queue_offset.max(0) as usize;
                        let records: Vec<Bytes> = queue
                            .iter()
                            .skip(from)
                            .take(header.max_msg_nums.max(1) as usize)
                            .cloned()
                            .collect();
                        (records, queue.len() as i64)
                    };
                    let mut fields = PullMessageResponseHeader {
                        suggest_which_broker_id: 0,
                        next_begin_offset: header.queue_offset,
                        min_offset: 0,
                        max_offset: len,
                        ..PullMessageResponseHeader::default()
                    };
                    if header.queue_offset > len {
                        fields.next_begin_offset = len;
                        let mut response =
                            RemotingCommand::response_to(request, ResponseCode::PullOffsetMoved);
                        fields.encode_into(&mut response);
                        return Ok(response);
                    }
                    if !records.is_empty() {
                        fields.next_begin_offset = header.queue_offset + records.len() as i64;
                        let mut body = BytesMut::new();
                        for record in &records {
                            body.extend_from_slice(record);
                        }
                        let mut response = ok.with_body(body.freeze());
                        fields.encode_into(&mut response);
                        return Ok(response);
                    }
                    if tokio::time::Instant::now() >= hold_until {
                        let mut response =
                            RemotingCommand::response_to(request, ResponseCode::PullNotFound);
                        fields.encode_into(&mut response);
                        return Ok(response);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            RequestCode::QueryConsumerOffset => {
                let header = QueryConsumerOffsetRequestHeader::decode(request).map_err(e)?;
                match self.committed(&header.consumer_group, &header.topic, header.queue_id) {
                    Some(offset) => {
                        let mut response = ok;
                        QueryConsumerOffsetResponseHeader { offset }.encode_into(&mut response);
                        response
                    }
                    None => RemotingCommand::error_response(
                        request,
                        ResponseCode::QueryNotFound,
                        "no offset",
                    ),
                }
            }
            RequestCode::UpdateConsumerOffset => {
                let header = UpdateConsumerOffsetRequestHeader::decode(request).map_err(e)?;
                self.state().offsets.insert(
                    (header.consumer_group, header.topic, header.queue_id),
                    header.commit_offset,
                );
                ok
            }
            RequestCode::GetMaxOffset => {
                let header = GetMaxOffsetRequestHeader::decode(request).map_err(e)?;
                let len = self
                    .state()
                    .queues
                    .get(&(header.topic, header.queue_id))
                    .map_or(0, Vec::len) as i64;
                let mut response = ok;
                OffsetResponseHeader { offset: len }.encode_into(&mut response);
                response
            }
            RequestCode::GetMinOffset | RequestCode::SearchOffsetByTimestamp => {
                let mut response = ok;
                OffsetResponseHeader { offset: 0 }.encode_into(&mut response);
                response
            }
            RequestCode::HeartBeat => {
                let data = HeartbeatData::decode(&request.body).map_err(e)?;
                let mut state = self.state();
                for producer in &data.producer_data_set {
                    state
                        .producers
                        .insert(producer.group_name.clone(), conn.clone());
                }
                if !data.consumer_data_set.is_empty() {
                    state.clients.insert(data.client_id.clone(), conn.clone());
                }
                for consumer in data.consumer_data_set {
                    state
                        .members
                        .entry(consumer.group_name)
                        .or_default()
                        .insert(data.client_id.clone());
                }
                ok
            }
            RequestCode::UnregisterClient => {
                let header = UnregisterClientRequestHeader::decode(request).map_err(e)?;
                if let Some(group) = header.consumer_group
                    && let Some(members) = self.state().members.get_mut(&group)
                {
                    members.remove(&header.client_id);
                }
                ok
            }
            RequestCode::GetConsumerListByGroup => {
                let header = GetConsumerListByGroupRequestHeader::decode(request).map_err(e)?;
                let ids = self
                    .state()
                    .members
                    .get(&header.consumer_group)
                    .map(|m| m.iter().cloned().collect())
                    .unwrap_or_default();
                ok.with_body(
                    GetConsumerListByGroupResponseBody {
                        consumer_id_list: ids,
                    }
                    .encode(),
                )
            }
            RequestCode::ConsumerSendMsgBack => {
                let header = ConsumerSendMsgBackRequestHeader::decode(request).map_err(e)?;
                let record = self
                    .state()
                    .log
                    .get(&header.offset)
                    .cloned()
                    .ok_or("no message at that offset")?;
                let stored = StoredMessage::decode(&record, true).map_err(e)?;
                let body = stored.body();
                self.state().sent_back.push(SentBack {
                    group: header.group.clone(),
                    delay_level: header.delay_level,
                    body: body.clone(),
                });
                let topic = if header.delay_level < 0 {
                    format!("%DLQ%{}", header.group)
                } else {
                    format!("%RETRY%{}", header.group)
                };
                let mut properties =
                    ringmq_wire::record::Properties::parse(stored.properties_raw()).map_err(e)?;
                if properties.get(property::RETRY_TOPIC).is_none() {
                    properties.insert(property::RETRY_TOPIC, stored.topic());
                }
                let properties = properties.encode().map_err(e)?;
                let reconsume = stored.layout.reconsume_times + 1;
                let sys_flag = stored.layout.sys_flag;
                let flag = stored.layout.flag;
                self.append(&topic, 0, |q, p| {
                    Self::encode_record(
                        &topic,
                        0,
                        q,
                        p,
                        sys_flag,
                        flag,
                        reconsume,
                        &body,
                        &properties,
                    )
                });
                ok
            }
            RequestCode::LockBatchMq => {
                let body = LockBatchRequestBody::decode(&request.body).map_err(e)?;
                let mut state = self.state();
                let mut locked = Vec::new();
                for queue in body.mq_set {
                    let key = (
                        body.consumer_group.clone(),
                        queue.topic.clone(),
                        queue.queue_id,
                    );
                    let holder = state
                        .locks
                        .entry(key)
                        .or_insert_with(|| body.client_id.clone());
                    if *holder == body.client_id {
                        locked.push(queue);
                    }
                }
                ok.with_body(
                    LockBatchResponseBody {
                        lock_ok_mq_set: locked,
                    }
                    .encode(),
                )
            }
            RequestCode::UnlockBatchMq => {
                let body = LockBatchRequestBody::decode(&request.body).map_err(e)?;
                let mut state = self.state();
                for queue in body.mq_set {
                    let key = (body.consumer_group.clone(), queue.topic, queue.queue_id);
                    if state.locks.get(&key) == Some(&body.client_id) {
                        state.locks.remove(&key);
                    }
                }
                ok
            }
            RequestCode::EndTransaction => {
                let header = EndTransactionRequestHeader::decode(request).map_err(e)?;
                self.state().ended.push((
                    header.commit_log_offset,
                    header.commit_or_rollback,
                    header.from_transaction_check == Some(true),
                ));
                ok
            }
            RequestCode::ViewMessageById => {
                let header = ViewMessageRequestHeader::decode(request).map_err(e)?;
                match self.state().log.get(&header.offset).cloned() {
                    Some(record) => ok.with_body(record),
                    None => RemotingCommand::error_response(
                        request,
                        ResponseCode::SystemError,
                        "no message at that offset",
                    ),
                }
            }
            RequestCode::QueryMessage => {
                let header = QueryMessageRequestHeader::decode(request).map_err(e)?;
                let state = self.state();
                let mut body = BytesMut::new();
                let mut found = 0;
                for ((topic, _), records) in &state.queues {
                    if *topic != header.topic {
                        continue;
                    }
                    for record in records {
                        let stored = StoredMessage::decode(record, false).map_err(e)?;
                        let hit = if header.unique_key_query == Some(true) {
                            stored.uniq_key() == Some(header.key.as_str())
                        } else {
                            stored.keys().any(|k| k == header.key)
                        };
                        if hit && found < header.max_num {
                            body.extend_from_slice(record);
                            found += 1;
                        }
                    }
                }
                if found == 0 {
                    RemotingCommand::error_response(request, ResponseCode::QueryNotFound, "none")
                } else {
                    let mut response = ok.with_body(body.freeze());
                    QueryMessageResponseHeader {
                        index_last_update_timestamp: 0,
                        index_last_update_phyoffset: 0,
                    }
                    .encode_into(&mut response);
                    response
                }
            }
            other => return Err(format!("{other} not served by the mini broker")),
        })
    }
}
