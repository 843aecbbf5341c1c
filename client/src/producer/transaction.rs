//! Transactional sends (RocketMQ's `TransactionMQProducer`).
//!
//! [`Producer::send_in_transaction`] sends the message as a half (prepared) message, which
//! consumers do not see; runs the application's local transaction; then tells the broker to
//! commit or roll back (`END_TRANSACTION`, oneway, as Java sends it). When the outcome is
//! unknown (or the end request is lost), the broker asks later with
//! `CHECK_TRANSACTION_STATE`: the checker registered with
//! [`Producer::set_transaction_checker`] answers, and its answer is sent back as an
//! `END_TRANSACTION` marked `fromTransactionCheck`. Brokers find the producer through its
//! heartbeats (sent every 30 s by every producer).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use ringmq_wire::header::CommandHeader;
use ringmq_wire::header::send::RpcFields;
use ringmq_wire::header::transaction::{
    CheckTransactionStateRequestHeader, EndTransactionRequestHeader, commit_or_rollback,
};
use ringmq_wire::msgid::parse_offset_msg_id;
use ringmq_wire::record::{StoredMessage, property};
use ringmq_wire::{RemotingCommand, RequestCode};
use tracing::{debug, info, warn};

use super::{Producer, SendResult, SendStatus};
use crate::consumer::message_ext::MessageExt;
use crate::error::{ClientError, Result};
use crate::message::Message;
use crate::remoting::{BoxFuture, RemotingClient};

/// The outcome of a local transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTransactionState {
    /// Make the message visible to consumers.
    Commit,
    /// Drop the message.
    Rollback,
    /// Not known yet: the broker will ask the checker later.
    Unknown,
}

impl LocalTransactionState {
    fn wire(self) -> i32 {
        match self {
            LocalTransactionState::Commit => commit_or_rollback::COMMIT,
            LocalTransactionState::Rollback => commit_or_rollback::ROLLBACK,
            LocalTransactionState::Unknown => commit_or_rollback::NOT_TYPE,
        }
    }
}

/// Answers the broker's question about an undecided half message.
pub type TransactionChecker =
    Arc<dyn Fn(MessageExt) -> BoxFuture<LocalTransactionState> + Send + Sync>;

/// Checkers by producer group, shared by the handler of one client instance.
pub(crate) type Checkers = Arc<Mutex<HashMap<String, TransactionChecker>>>;

/// The outcome of [`Producer::send_in_transaction`].
#[derive(Debug, Clone)]
pub struct TransactionSendResult {
    /// Where the half message was stored.
    pub send: SendResult,
    /// What the local transaction decided (and the broker was told).
    pub state: LocalTransactionState,
}

impl Producer {
    /// Registers the checker the broker's `CHECK_TRANSACTION_STATE` requests for this
    /// producer's group are answered with (replacing any previous one).
    pub fn set_transaction_checker<F, Fut>(&self, checker: F)
    where
        F: Fn(MessageExt) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = LocalTransactionState> + Send + 'static,
    {
        let checker: TransactionChecker = Arc::new(move |message| Box::pin(checker(message)));
        self.inner
            .instance
            .transaction_checkers()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(self.inner.config.group.clone(), checker);
    }

    /// Sends `message` as a half message, runs `local_transaction` with the send result,
    /// and commits or rolls back accordingly. A failed send is returned as an error (the
    /// local transaction does not run); a half message the broker stored with a flush or
    /// replication problem is rolled back without running it, as Java does.
    pub async fn send_in_transaction<F, Fut>(
        &self,
        mut message: Message,
        local_transaction: F,
    ) -> Result<TransactionSendResult>
    where
        F: FnOnce(SendResult) -> Fut,
        Fut: Future<Output = LocalTransactionState>,
    {
        if message.delay_level().is_some_and(|level| level > 0) {
            return Err(ClientError::InvalidArgument(
                "transactional messages cannot be delayed".into(),
            ));
        }
        message
            .properties
            .insert(property::TRAN_MSG.into(), "true".into());
        message
            .properties
            .insert(property::PGROUP.into(), self.inner.config.group.clone());
        let send = self.send(message).await?;
        if let Ok(route) = self.inner.instance.routes().get(&send.queue.topic).await
            && let Ok(addr) = route.master_addr(&send.queue.broker_name)
        {
            super::introduce(&self.inner, addr).await;
        }
        let state = if send.status == SendStatus::Ok {
            local_transaction(send.clone()).await
        } else {
            LocalTransactionState::Rollback
        };
        if let Err(error) = self.end_transaction(&send, state).await {
            // The broker will check back; the outcome is not lost.
            warn!(msg_id = %send.msg_id, ?state, %error, "END_TRANSACTION not sent; the broker will check back");
        }
        Ok(TransactionSendResult { send, state })
    }

    async fn end_transaction(&self, send: &SendResult, state: LocalTransactionState) -> Result<()> {
        let route = self.inner.instance.routes().get(&send.queue.topic).await?;
        let addr = route.master_addr(&send.queue.broker_name)?.to_owned();
        let (_, commit_log_offset) =
            parse_offset_msg_id(&send.offset_msg_id).map_err(|e| ClientError::Wire {
                addr: addr.clone(),
                source: e,
            })?;
        let header = EndTransactionRequestHeader {
            topic: Some(send.queue.topic.clone()),
            producer_group: self.inner.config.group.clone(),
            tran_state_table_offset: send.queue_offset,
            commit_log_offset,
            commit_or_rollback: state.wire(),
            from_transaction_check: Some(false),
            msg_id: send.msg_id.clone(),
            transaction_id: Some(
                send.transaction_id
                    .clone()
                    .unwrap_or_else(|| send.msg_id.clone()),
            ),
            rpc: RpcFields {
                broker_name: Some(send.queue.broker_name.clone()),
                ..RpcFields::default()
            },
        };
        let mut request = RemotingCommand::request(RequestCode::EndTransaction);
        header.encode_into(&mut request);
        self.inner
            .instance
            .remoting()
            .invoke_oneway(&addr, request, self.inner.config.send_timeout)
            .await
    }
}

/// Routes `CHECK_TRANSACTION_STATE` to the checker of the half message's producer group and
/// sends the answer back to the asking broker as `END_TRANSACTION`.
pub(crate) fn register_check_handler(remoting: &RemotingClient, checkers: Checkers) {
    let answering = remoting.clone();
    remoting.register_handler(
        RequestCode::CheckTransactionState,
        Arc::new(move |addr, request: RemotingCommand| {
            let checkers = checkers.clone();
            let remoting = answering.clone();
            Box::pin(async move {
                if let Err(error) = answer_check(&remoting, &checkers, &addr, &request).await {
                    warn!(%addr, %error, "transaction check not answered");
                }
                // The broker sends the check oneway; the answer is the END_TRANSACTION.
                None
            })
        }),
    );
}

async fn answer_check(
    remoting: &RemotingClient,
    checkers: &Checkers,
    addr: &str,
    request: &RemotingCommand,
) -> Result<()> {
    let wire = |source| ClientError::Wire {
        addr: addr.to_owned(),
        source,
    };
    let header = CheckTransactionStateRequestHeader::decode(request).map_err(wire)?;
    let stored = StoredMessage::decode(&request.body, true).map_err(wire)?;
    let message = MessageExt::from_stored(&stored, "")?;
    let group = message
        .property(property::PGROUP)
        .unwrap_or_default()
        .to_owned();
    let checker = checkers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&group)
        .cloned()
        .ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "no transaction checker registered for producer group {group:?}"
            ))
        })?;
    let msg_id = message.msg_id().to_owned();
    let topic = message.topic.clone();
    let state = tokio::spawn(checker(message))
        .await
        .unwrap_or(LocalTransactionState::Unknown);
    info!(%addr, %group, %msg_id, ?state, "transaction check answered");
    let end = EndTransactionRequestHeader {
        topic: header.topic.or(Some(topic)),
        producer_group: group,
        tran_state_table_offset: header.tran_state_table_offset,
        commit_log_offset: header.commit_log_offset,
        commit_or_rollback: state.wire(),
        from_transaction_check: Some(true),
        msg_id: header.msg_id.unwrap_or(msg_id),
        transaction_id: header.transaction_id,
        rpc: RpcFields::default(),
    };
    let mut command = RemotingCommand::request(RequestCode::EndTransaction);
    end.encode_into(&mut command);
    debug!(%addr, "END_TRANSACTION from check");
    remoting
        .invoke_oneway(addr, command, crate::limits::API_TIMEOUT)
        .await
}
