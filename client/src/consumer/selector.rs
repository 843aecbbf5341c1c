//! How a consumer selects the messages of a topic: by tag (`*`, `TagA || TagB`) or by a
//! SQL92 expression over message properties (RocketMQ's `MessageSelector`).
//!
//! ```
//! use ringmq_client::consumer::MessageSelector;
//!
//! let selector = MessageSelector::sql("a > 5 AND TAGS IN ('x')");
//! assert_eq!(selector.expression_type(), "SQL92");
//! let sub = selector.subscription("T", 1);
//! assert_eq!(sub.sub_string, "a > 5 AND TAGS IN ('x')");
//! assert!(sub.tags_set.is_empty());
//! ```

use ringmq_wire::body::heartbeat::{EXPRESSION_TYPE_SQL92, EXPRESSION_TYPE_TAG, SubscriptionData};

use crate::consumer::api;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;

/// A message selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSelector {
    /// A tag expression: `*` or `TagA || TagB`.
    Tag(String),
    /// A SQL92 expression over message properties, evaluated by the broker (which must
    /// have property filtering enabled; ringmq has it on by default).
    Sql92(String),
}

impl MessageSelector {
    /// Selects by tag expression (`*` or `TagA || TagB`).
    pub fn tag(expression: impl Into<String>) -> Self {
        MessageSelector::Tag(expression.into())
    }

    /// Selects by SQL92 expression, e.g. `a > 5 AND TAGS IN ('x', 'y')`.
    pub fn sql(expression: impl Into<String>) -> Self {
        MessageSelector::Sql92(expression.into())
    }

    /// The wire `expressionType`: `TAG` or `SQL92`.
    pub fn expression_type(&self) -> &'static str {
        match self {
            MessageSelector::Tag(_) => EXPRESSION_TYPE_TAG,
            MessageSelector::Sql92(_) => EXPRESSION_TYPE_SQL92,
        }
    }

    /// The expression text.
    pub fn expression(&self) -> &str {
        match self {
            MessageSelector::Tag(e) | MessageSelector::Sql92(e) => e,
        }
    }

    /// The subscription data sent in heartbeats and pulls, as Java's `FilterAPI.build`.
    pub fn subscription(&self, topic: &str, sub_version: i64) -> SubscriptionData {
        match self {
            MessageSelector::Tag(expression) => {
                SubscriptionData::tags(topic, expression, sub_version)
            }
            MessageSelector::Sql92(expression) => SubscriptionData {
                topic: topic.to_owned(),
                sub_string: expression.trim().to_owned(),
                sub_version,
                expression_type: EXPRESSION_TYPE_SQL92.to_owned(),
                ..SubscriptionData::default()
            },
        }
    }
}

/// Before a consumer starts, asks the brokers of each non-tag subscription's topic whether
/// they can serve it (`CHECK_CLIENT_CONFIG`), as Java's `checkClientInBroker`: a broker's
/// refusal (a SQL92 syntax error, property filtering off) fails the start with the broker's
/// code and remark; a topic without a route or a broker that cannot be reached is only
/// logged, and the consumer starts.
pub(crate) async fn check_in_brokers<'a>(
    instance: &ClientInstance,
    group: &str,
    subscriptions: impl IntoIterator<Item = &'a SubscriptionData>,
) -> Result<()> {
    for sub in subscriptions {
        let kind = sub.expression_type.as_str();
        if kind.is_empty() || kind == EXPRESSION_TYPE_TAG {
            continue;
        }
        let route = match instance.routes().get(&sub.topic).await {
            Ok(route) => route,
            Err(e) => {
                tracing::warn!(topic = %sub.topic, error = %e, "no route to check the subscription with; starting anyway");
                continue;
            }
        };
        for addr in route.masters.values() {
            match api::check_client_config(instance, addr, group, sub).await {
                Ok(()) => {}
                Err(e @ ClientError::Broker { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(broker = %addr, topic = %sub.topic, error = %e,
                        "cannot check the subscription with this broker; starting anyway");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_selector_is_the_tag_subscription() {
        assert_eq!(
            MessageSelector::tag("A || B").subscription("T", 7),
            SubscriptionData::tags("T", "A || B", 7)
        );
    }

    #[test]
    fn sql_selector_carries_sql92() {
        let sub = MessageSelector::sql(" a = 1 ").subscription("T", 7);
        assert_eq!(sub.expression_type, "SQL92");
        assert_eq!(sub.sub_string, "a = 1");
        assert!(sub.code_set.is_empty() && sub.tags_set.is_empty());
        assert_eq!((sub.topic.as_str(), sub.sub_version), ("T", 7));
    }
}
