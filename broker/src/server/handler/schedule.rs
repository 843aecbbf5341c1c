//! `GET_ALL_DELAY_OFFSET` (45): the delay service's progress per level, as RocketMQ's
//! `delayOffset.json` (`{"offsetTable":{"1":<next offset>,…}}`, level → next offset of
//! `SCHEDULE_TOPIC_XXXX` queue level − 1 to deliver). No header fields.

use std::collections::BTreeMap;

use ringmq_wire::RemotingCommand;

use crate::server::handler::{HandlerResult, success};
use crate::server::state::ShardState;
use crate::server::store::ShardStore;

/// The body of the answer (`DelayOffsetSerializeWrapper`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DelayOffsets {
    /// Level → next offset to deliver.
    pub offset_table: BTreeMap<i32, i64>,
}

/// Handles `GET_ALL_DELAY_OFFSET`.
pub fn all_delay_offsets<S: ShardStore>(
    state: &mut ShardState<S>,
    request: &RemotingCommand,
) -> HandlerResult {
    let body = ringmq_wire::json::to_vec(&DelayOffsets {
        offset_table: state.schedule.offset_table(),
    });
    Ok(Some(success(request).with_body(body)))
}

#[cfg(test)]
mod tests {
    use ringmq_wire::{RemotingCommand, RequestCode};

    use crate::server::handler::testing::*;

    #[test]
    fn delay_offsets_list_every_level_with_its_progress() {
        let mut shard = TestShard::new();
        let response = shard.call(send_request("T", 0, b"x", &[("DELAY", "2")]));
        assert_eq!(response.code, 0);
        shard.advance(5_000);
        let response = shard.call(RemotingCommand::request(RequestCode::GetAllDelayOffset));
        assert_eq!(response.code, 0);
        let body: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
        let table = body["offsetTable"].as_object().expect("offsetTable");
        assert_eq!(table.len(), 18);
        assert_eq!(table["1"], 0);
        assert_eq!(table["2"], 1, "level 2 delivered its message");
        let info = shard.call(RemotingCommand::request(RequestCode::GetBrokerRuntimeInfo));
        let info: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
        assert_eq!(info["table"]["scheduleMessageOffset_2"], "1,1");
    }
}
