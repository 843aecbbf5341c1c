//! `SEND_MESSAGE` (10), `SEND_MESSAGE_V2` (310) and `SEND_BATCH_MESSAGE` (320), as
//! RocketMQ's `SendMessageProcessor` answers them: permission and topic checks (with
//! auto-creation from `TBW102`), queue id check, size limits, retry-to-DLQ redirection,
//! delay-level rewriting to `SCHEDULE_TOPIC_XXXX`, append, wake long polls, and a response
//! released once the record is durable under the flush mode.
//!
//! A transactional (prepared) message is stored as a half message in
//! `RMQ_SYS_TRANS_HALF_TOPIC` ([`crate::features::transaction::prepare_half`]); the response
//! names the queue the producer chose and the half's queue offset, which the producer's
//! `END_TRANSACTION` quotes back. Batches cannot be transactional.

use bytes::Bytes;
use ringmq_wire::header::send::{SendMessageRequestHeader, SendMessageResponseHeader, sys_flag};
use ringmq_wire::msgid::offset_msg_id;
use ringmq_wire::record::{self, Properties, property};
use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode};

use crate::features::transaction;
use crate::server::handler::{HandlerResult, error, success_with, wire_error};
use crate::server::state::{Conn, ShardState};
use crate::server::store::{Appended, PutMessage, ShardStore, StoreError};
use crate::server::topic::{TopicConfig, TopicError, perm, system, validate_topic_name};

/// Most messages in one batch send (bounds the per-request work and vectors).
pub const BATCH_MESSAGES_MAX: usize = 4_096;

/// The region RocketMQ reports in `MSG_REGION` (`BrokerConfig.regionId` default).
pub const REGION_ID: &str = "DefaultRegion";

/// Handles the three send codes.
pub fn handle<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    now_ms: u64,
) -> HandlerResult {
    let header =
        SendMessageRequestHeader::decode_any(request).map_err(|e| wire_error(request, &e))?;
    let result = send(state, conn, request, &header, now_ms);
    if result.is_err() {
        state.stats.put_failures += 1;
    }
    result
}

fn send<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    now_ms: u64,
) -> HandlerResult {
    let topic_config = check_topic(state, request, header, now_ms)?;
    let queue_id = choose_queue(state, request, header, &topic_config)?;
    let max_body = state.config.limits.max_message_bytes;
    // RocketMQ's broker goes by the header's `batch` flag, not only by the code: the C++
    // client (rocketmq-client-cpp 2.x) sends its batches as SEND_MESSAGE with `batch=true`.
    let batch =
        request.code == RequestCode::SendBatchMessage.as_i32() || header.batch == Some(true);
    if !batch && request.body.len() > max_body {
        return Err(error(
            request,
            ResponseCode::MessageIllegal,
            format!(
                "the message body of {} bytes exceeds the limit of {max_body} bytes",
                request.body.len()
            ),
        ));
    }
    let properties_text = header.properties.as_deref().unwrap_or("");
    if properties_text.len() > ringmq_wire::limits::PROPERTIES_BYTES_MAX {
        return Err(error(
            request,
            ResponseCode::MessageIllegal,
            format!(
                "the message properties of {} bytes exceed the limit of {} bytes",
                properties_text.len(),
                ringmq_wire::limits::PROPERTIES_BYTES_MAX
            ),
        ));
    }
    if batch && header.transaction_type() == sys_flag::TRANSACTION_PREPARED {
        return Err(error(
            request,
            ResponseCode::MessageIllegal,
            "batch messages do not support transactions",
        ));
    }
    if batch {
        return send_batch(state, conn, request, header, queue_id, now_ms);
    }
    let mut target = Target {
        topic: header.topic.clone(),
        queue_id,
        tags_code: record::tag_hash_code(record::property_value(
            properties_text.as_bytes(),
            property::TAGS,
        )),
    };
    let tran_msg = record::property_value(properties_text.as_bytes(), property::TRAN_MSG)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let half =
        tran_msg || header.sys_flag & sys_flag::TRANSACTION_MASK == sys_flag::TRANSACTION_PREPARED;
    let mut sys_flag_value = header.sys_flag;
    // The common case (not a half message, no DELAY, canonical properties) keeps the
    // producer's properties string and appends CLUSTER, without parsing it into pairs.
    let fast = if half {
        None
    } else {
        redirect_retry_to_dlq(state, request, header, &mut target, now_ms)?;
        with_cluster_fast(properties_text, &state.identity.cluster_name)
    };
    let encoded = match fast {
        Some(encoded) => encoded,
        None => {
            let mut properties = Properties::parse(properties_text.as_bytes())
                .map_err(|e| error(request, ResponseCode::MessageIllegal, e.to_string()))?;
            if half {
                let (topic, half_queue_id, flag) = transaction::prepare_half(
                    &mut properties,
                    &target.topic,
                    target.queue_id,
                    header.sys_flag,
                );
                target.topic = topic.to_owned();
                target.queue_id = half_queue_id;
                sys_flag_value = flag;
            } else {
                redirect_delay(&state.schedule, &mut properties, &mut target, now_ms);
            }
            properties.insert(property::CLUSTER, state.identity.cluster_name.clone());
            properties
                .encode()
                .map_err(|e| error(request, ResponseCode::MessageIllegal, e.to_string()))?
        }
    };
    let transaction_id =
        record::property_value(encoded.as_bytes(), property::UNIQ_KEY).map(str::to_owned);
    let mut message = build_message(state, conn, header, &target, encoded, request.body.clone())
        .map_err(|reason| error(request, ResponseCode::MessageIllegal, reason))?;
    message.sys_flag = sys_flag_value;
    let appended = append(state, request, message)?;
    if half {
        transaction::half_stored(state);
    }
    state.wake_pulls_when_visible(
        &target.topic,
        target.queue_id,
        appended.queue_offset + 1,
        appended.end_offset,
        now_ms,
    );
    let response = success_with(
        request,
        &SendMessageResponseHeader {
            msg_id: offset_msg_id(state.identity.store_host, appended.physical_offset),
            // A half message answers with the queue the producer chose (RocketMQ's
            // `queueIdInt`) and its half-queue offset.
            queue_id: if half { queue_id } else { target.queue_id },
            queue_offset: appended.queue_offset,
            transaction_id,
            batch_uniq_id: None,
            recall_handle: None,
        },
    );
    Ok(state.reply_when_durable(conn.id, appended.end_offset, with_region(response), now_ms))
}

/// Where a message goes after redirections.
struct Target {
    topic: String,
    queue_id: i32,
    tags_code: i64,
}

fn with_region(mut response: RemotingCommand) -> RemotingCommand {
    response
        .ext_fields
        .insert(property::MSG_REGION.into(), REGION_ID.into());
    response
        .ext_fields
        .insert(property::TRACE_ON.into(), "true".into());
    response
}

/// What the send path needs of a topic's config, copied out of it (cloning the whole config,
/// its name and attributes, cost allocations on every send).
#[derive(Debug, Clone, Copy)]
struct SendTopic {
    perm: i32,
    read_queue_nums: i32,
    write_queue_nums: i32,
}

impl From<&TopicConfig> for SendTopic {
    fn from(config: &TopicConfig) -> Self {
        SendTopic {
            perm: config.perm,
            read_queue_nums: config.read_queue_nums,
            write_queue_nums: config.write_queue_nums,
        }
    }
}

/// Broker permission, topic name, topic existence (auto-creating), topic permission.
fn check_topic<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    now_ms: u64,
) -> Result<SendTopic, RemotingCommand> {
    let topic = header.topic.as_str();
    if !perm::is_writeable(state.config.broker.permission as i32) {
        return Err(error(
            request,
            ResponseCode::NoPermission,
            format!(
                "the broker[{}] sending message is forbidden",
                state.identity.store_host
            ),
        ));
    }
    validate_topic_name(topic)
        .map_err(|e| error(request, ResponseCode::SystemError, e.to_string()))?;
    if system::is_not_allowed_send_topic(topic) {
        return Err(error(
            request,
            ResponseCode::NoPermission,
            format!("Sending message to topic[{topic}] is forbidden."),
        ));
    }
    if let Some(config) = state.topics.get(topic) {
        // The common case: the topic exists (what `find_or_create_for_send` returns first).
        return writeable(request, topic, SendTopic::from(config));
    }
    let topic_sys_flag = if header.unit_mode == Some(true) { 1 } else { 0 };
    let found = state.topics.find_or_create_for_send(
        topic,
        &header.default_topic,
        header.default_topic_queue_nums,
        topic_sys_flag,
        now_ms,
    );
    let (config, created) = match found {
        Ok(found) => found,
        Err(TopicError::NotExist { .. }) if topic.starts_with(system::RETRY_GROUP_TOPIC_PREFIX) => {
            let group = &topic[system::RETRY_GROUP_TOPIC_PREFIX.len()..];
            let retry_queues = state
                .groups
                .find_or_create(group, now_ms)
                .map(|g| g.retry_queue_nums)
                .map_err(|e| {
                    error(
                        request,
                        ResponseCode::SubscriptionGroupNotExist,
                        e.to_string(),
                    )
                })?;
            state
                .topics
                .find_or_create_retry_topic(group, retry_queues, now_ms)
                .map_err(|e| error(request, ResponseCode::SystemError, e.to_string()))?
        }
        Err(e @ TopicError::NotExist { .. }) => {
            return Err(error(request, ResponseCode::TopicNotExist, e.to_string()));
        }
        Err(e) => return Err(error(request, ResponseCode::SystemError, e.to_string())),
    };
    if created {
        state.request_register();
    }
    writeable(request, topic, SendTopic::from(&config))
}

/// The topic's own permission check, last step of [`check_topic`].
fn writeable(
    request: &RemotingCommand,
    topic: &str,
    config: SendTopic,
) -> Result<SendTopic, RemotingCommand> {
    if !perm::is_writeable(config.perm) {
        return Err(error(
            request,
            ResponseCode::NoPermission,
            format!("the topic[{topic}] sending message is forbidden"),
        ));
    }
    Ok(config)
}

fn choose_queue<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    config: &SendTopic,
) -> Result<i32, RemotingCommand> {
    let valid = config.write_queue_nums.max(config.read_queue_nums);
    if header.queue_id >= valid {
        return Err(error(
            request,
            ResponseCode::SystemError,
            format!(
                "request queueId[{}] is illegal, topic {} has {valid} queues, producer: {}",
                header.queue_id, header.topic, header.producer_group
            ),
        ));
    }
    if header.queue_id >= 0 {
        return Ok(header.queue_id);
    }
    // RocketMQ picks a random write queue; spreading by the put counter is as good and
    // deterministic.
    let writes = config.write_queue_nums.max(1) as u64;
    Ok((state.stats.put_messages % writes) as i32)
}

/// A message to a retry topic that has been reconsumed too often goes to the group's DLQ.
fn redirect_retry_to_dlq<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    target: &mut Target,
    now_ms: u64,
) -> Result<(), RemotingCommand> {
    let Some(group) = target.topic.strip_prefix(system::RETRY_GROUP_TOPIC_PREFIX) else {
        return Ok(());
    };
    let group = group.to_owned();
    let config = state.groups.find_or_create(&group, now_ms).map_err(|e| {
        error(
            request,
            ResponseCode::SubscriptionGroupNotExist,
            e.to_string(),
        )
    })?;
    let max = header.max_reconsume_times.unwrap_or(config.retry_max_times);
    if header.reconsume_times.unwrap_or(0) < max {
        return Ok(());
    }
    let (dlq, created) = state
        .topics
        .find_or_create_dlq_topic(&group, now_ms)
        .map_err(|e| error(request, ResponseCode::SystemError, e.to_string()))?;
    if created {
        state.request_register();
    }
    tracing::info!(target: "ringmq::server::send", group, reconsume_times = ?header.reconsume_times,
        "message sent to dead-letter topic");
    target.topic = dlq.topic_name;
    target.queue_id = 0;
    Ok(())
}

/// A message with `DELAY` level n > 0 is stored in `SCHEDULE_TOPIC_XXXX` queue n−1 with its
/// real topic and queue in properties, and the deliver time as tag code (RocketMQ's
/// CommitLog does this rewrite; [`crate::features::schedule`] later re-appends it). Levels
/// above the highest configured one are clamped to it. A message headed for a dead-letter
/// topic is not delayed.
fn redirect_delay(
    schedule: &crate::features::schedule::ScheduleService,
    properties: &mut Properties,
    target: &mut Target,
    now_ms: u64,
) {
    let level = properties
        .get(property::DELAY)
        .and_then(|d| d.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if level == 0 || target.topic.starts_with(system::DLQ_GROUP_TOPIC_PREFIX) {
        return;
    }
    let slot = schedule.slot(level, now_ms);
    properties.insert(property::DELAY, slot.level.to_string());
    properties.insert(property::REAL_TOPIC, target.topic.clone());
    properties.insert(property::REAL_QID, target.queue_id.to_string());
    target.topic = system::SCHEDULE_TOPIC.to_owned();
    target.queue_id = slot.queue_id;
    target.tags_code = slot.deliver_ms;
}

/// The stored properties string for the common case, without parsing into owned pairs:
/// `text` followed by the `CLUSTER` pair. `None` (take the general path) unless `text` is
/// exactly what [`Properties::parse`] then [`Properties::encode`] would give back (every
/// pair `name\x01value\x02`, no empty pair, no second separator in a value), and it holds
/// neither `CLUSTER` (which must be replaced in place) nor `DELAY` (which rewrites the
/// properties). The result is then byte for byte what the general path produces.
fn with_cluster_fast(text: &str, cluster: &str) -> Option<String> {
    const NV: u8 = record::NAME_VALUE_SEPARATOR;
    const PS: u8 = record::PROPERTY_SEPARATOR;
    let bytes = text.as_bytes();
    if cluster.bytes().any(|b| b == NV || b == PS) {
        return None;
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        // Each pair must end with its separator and hold exactly one name/value separator.
        let end = rest.iter().position(|b| *b == PS)?;
        let pair = &rest[..end];
        let sep = pair.iter().position(|b| *b == NV)?;
        let (name, value) = (&pair[..sep], &pair[sep + 1..]);
        if value.contains(&NV)
            || name == property::CLUSTER.as_bytes()
            || name == property::DELAY.as_bytes()
        {
            return None;
        }
        rest = &rest[end + 1..];
    }
    let mut out = String::with_capacity(text.len() + property::CLUSTER.len() + cluster.len() + 2);
    out.push_str(text);
    out.push_str(property::CLUSTER);
    out.push(char::from(NV));
    out.push_str(cluster);
    out.push(char::from(PS));
    (out.len() <= ringmq_wire::limits::PROPERTIES_BYTES_MAX).then_some(out)
}

fn build_message<S: ShardStore>(
    state: &ShardState<S>,
    conn: Conn,
    header: &SendMessageRequestHeader,
    target: &Target,
    encoded: String,
    body: Bytes,
) -> Result<PutMessage, String> {
    if encoded.len() > ringmq_wire::limits::PROPERTIES_BYTES_MAX {
        return Err(format!(
            "the message properties of {} bytes exceed the limit of {} bytes",
            encoded.len(),
            ringmq_wire::limits::PROPERTIES_BYTES_MAX
        ));
    }
    let keys = PutMessage::index_keys(record::property_value(encoded.as_bytes(), property::KEYS));
    let uniq_key =
        record::property_value(encoded.as_bytes(), property::UNIQ_KEY).map(str::to_owned);
    Ok(PutMessage {
        topic: target.topic.clone(),
        queue_id: target.queue_id,
        flag: header.flag,
        sys_flag: header.sys_flag,
        born_timestamp: header.born_timestamp,
        born_host: conn.remote,
        store_host: state.identity.store_host,
        reconsume_times: header.reconsume_times.unwrap_or(0),
        prepared_transaction_offset: 0,
        body,
        properties: encoded,
        tags_code: target.tags_code,
        keys,
        uniq_key,
    })
}

fn append<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
    message: PutMessage,
) -> Result<Appended, RemotingCommand> {
    let body_len = message.body.len() as u64;
    match state.store.append(message) {
        Ok(appended) => {
            state.stats.put_messages += 1;
            state.stats.put_bytes += body_len;
            Ok(appended)
        }
        Err(e) => {
            let code = match e {
                StoreError::NotWritable { .. } => ResponseCode::ServiceNotAvailable,
                StoreError::Busy { .. } => ResponseCode::SystemBusy,
                StoreError::MessageIllegal { .. } => ResponseCode::MessageIllegal,
                StoreError::NotFound { .. } | StoreError::Failed { .. } => {
                    ResponseCode::SystemError
                }
            };
            tracing::warn!(target: "ringmq::server::send", error = %e, "append failed");
            Err(error(request, code, e.to_string()))
        }
    }
}

fn send_batch<S: ShardStore>(
    state: &mut ShardState<S>,
    conn: Conn,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    queue_id: i32,
    now_ms: u64,
) -> HandlerResult {
    if header.topic.starts_with(system::RETRY_GROUP_TOPIC_PREFIX) {
        return Err(error(
            request,
            ResponseCode::MessageIllegal,
            "batch request does not support retry group",
        ));
    }
    let messages = record::decode_batch(&request.body, BATCH_MESSAGES_MAX)
        .map_err(|e| wire_error(request, &e))?;
    if messages.is_empty() {
        return Err(error(request, ResponseCode::MessageIllegal, "empty batch"));
    }
    let max_body = state.config.limits.max_message_bytes;
    let mut prepared = Vec::with_capacity(messages.len());
    for message in &messages {
        if message.body.len() > max_body {
            return Err(error(
                request,
                ResponseCode::MessageIllegal,
                format!(
                    "a batch message body of {} bytes exceeds the limit of {max_body} bytes",
                    message.body.len()
                ),
            ));
        }
        let mut properties = Properties::parse(&message.properties)
            .map_err(|e| error(request, ResponseCode::MessageIllegal, e.to_string()))?;
        if properties
            .get(property::DELAY)
            .is_some_and(|d| d.trim() != "0")
        {
            return Err(error(
                request,
                ResponseCode::MessageIllegal,
                "batch messages do not support delay levels",
            ));
        }
        properties.insert(property::CLUSTER, state.identity.cluster_name.clone());
        let target = Target {
            topic: header.topic.clone(),
            queue_id,
            tags_code: record::tag_hash_code(properties.get(property::TAGS)),
        };
        let mut one = header.clone();
        one.flag = message.flag;
        let encoded = properties
            .encode()
            .map_err(|e| error(request, ResponseCode::MessageIllegal, e.to_string()))?;
        let put = build_message(state, conn, &one, &target, encoded, message.body.clone())
            .map_err(|reason| error(request, ResponseCode::MessageIllegal, reason))?;
        prepared.push(put);
    }
    let mut ids = Vec::with_capacity(prepared.len());
    let mut first: Option<Appended> = None;
    let mut last_end = 0;
    let mut last_queue_offset = 0;
    for message in prepared {
        let appended = append(state, request, message)?;
        ids.push(offset_msg_id(
            state.identity.store_host,
            appended.physical_offset,
        ));
        first.get_or_insert(appended);
        last_end = appended.end_offset;
        last_queue_offset = appended.queue_offset;
    }
    let Some(first) = first else {
        return Err(error(request, ResponseCode::MessageIllegal, "empty batch"));
    };
    state.wake_pulls_when_visible(
        &header.topic,
        queue_id,
        last_queue_offset + 1,
        last_end,
        now_ms,
    );
    let response = success_with(
        request,
        &SendMessageResponseHeader {
            msg_id: ids.join(","),
            queue_id,
            queue_offset: first.queue_offset,
            transaction_id: None,
            batch_uniq_id: None,
            recall_handle: None,
        },
    );
    Ok(state.reply_when_durable(conn.id, last_end, with_region(response), now_ms))
}

#[cfg(test)]
#[path = "send_tests.rs"]
mod tests;
