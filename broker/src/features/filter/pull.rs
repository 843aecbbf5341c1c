//! The pull side of SQL92 filtering: which compiled filter a pull uses, and the filtered
//! queue read.
//!
//! Runs on the shard thread serving the pull, over the shard's [`ShardStore`]: the store API
//! is unchanged (no tag codes are passed for SQL92 subscriptions), records are judged after
//! the read, and further reads continue past the skipped ones until the batch is full or
//! [`FILTER_SCAN_RECORDS_MAX`] records were examined.

use std::sync::Arc;

use ringmq_wire::body::heartbeat::{EXPRESSION_TYPE_SQL92, SubscriptionData};

use super::limits::FILTER_SCAN_RECORDS_MAX;
use super::{FilterCache, FilterError, SqlFilter, is_tag_type};
use crate::server::store::{GetStatus, QueueRead, QueueReadResult, ShardStore, StoreError};

/// The compiled filter of a subscription: `None` for tag subscriptions (filtered by tag as
/// before), the cached [`SqlFilter`] for SQL92 ones. `registered` says the subscription came
/// from the group's heartbeat rather than the pull (it selects the error code).
pub fn for_subscription(
    cache: &mut FilterCache,
    enabled: bool,
    group: &str,
    subscription: &SubscriptionData,
    registered: bool,
) -> Result<Option<Arc<SqlFilter>>, FilterError> {
    let expression_type = subscription.expression_type.as_str();
    if is_tag_type(expression_type) {
        return Ok(None);
    }
    if expression_type != EXPRESSION_TYPE_SQL92 {
        return Err(FilterError::UnsupportedType {
            expression_type: expression_type.to_owned(),
        });
    }
    let compiled = cache
        .get(group, &subscription.topic, &subscription.sub_string)
        .map_err(|error| FilterError::Parse { error, registered })?;
    if !enabled {
        return Err(FilterError::Disabled {
            expression_type: expression_type.to_owned(),
        });
    }
    Ok(Some(compiled))
}

/// Reads a queue and keeps the records `filter` matches. While the batch is not full and
/// records keep coming, reads again from where the last read stopped, so a sparse filter
/// does not cost one round trip per batch of skipped messages; the total examined is bounded
/// by [`FILTER_SCAN_RECORDS_MAX`]. The result's `next_begin_offset` is past every record
/// examined. When nothing matched, the status is that of the last read: `NoMatchedMessage`
/// (the client pulls again at once) or, at the end of the queue, `OffsetOverflowOne` (the
/// pull waits for new messages).
pub fn read_filtered<S: ShardStore>(
    store: &S,
    read: &QueueRead<'_>,
    filter: &SqlFilter,
) -> Result<QueueReadResult, StoreError> {
    let mut result = store.get(read)?;
    if result.status != GetStatus::Found {
        return Ok(result);
    }
    let mut examined = result.records.len();
    result
        .records
        .retain(|r| r.memory().is_none_or(|b| filter.matches_record(b)));
    let mut bytes: usize = result.records.iter().map(|r| r.len()).sum();
    let mut next = *read;
    while result.records.len() < read.max_count
        && examined < FILTER_SCAN_RECORDS_MAX
        && bytes < read.max_bytes
        && result.next_begin_offset > next.offset
    {
        next.offset = result.next_begin_offset;
        next.max_count = (read.max_count - result.records.len())
            .min(FILTER_SCAN_RECORDS_MAX - examined)
            .max(1);
        next.max_bytes = read.max_bytes - bytes;
        let more = store.get(&next)?;
        result.min_offset = more.min_offset;
        result.max_offset = more.max_offset;
        if more.status != GetStatus::Found {
            if result.records.is_empty() {
                result.status = more.status;
                result.next_begin_offset = more.next_begin_offset;
            }
            break;
        }
        examined += more.records.len();
        result.next_begin_offset = more.next_begin_offset;
        for record in more.records {
            if record.memory().is_none_or(|b| filter.matches_record(b)) {
                bytes += record.len();
                result.records.push(record);
            }
        }
    }
    if result.status == GetStatus::Found && result.records.is_empty() {
        result.status = GetStatus::NoMatchedMessage;
    }
    tracing::trace!(target: "ringmq::filter", topic = read.topic, queue = read.queue_id,
        from = read.offset, next = result.next_begin_offset, examined,
        matched = result.records.len(), "SQL92 filtered read");
    Ok(result)
}

#[cfg(test)]
#[path = "pull_tests.rs"]
mod tests;
