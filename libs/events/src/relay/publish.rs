//! Publishing to RabbitMQ: the confirm channel, and a batch published with `mandatory` and
//! persistence, then its confirms awaited together and sorted into sent, failed and deferred.

use std::time::Duration;

use chrono::Utc;
use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{Channel, Connection};

use super::Relay;
use super::claim::PendingRow;
use crate::amqp;

/// How long an event may come back unroutable before it is logged as a warning: on a fresh system
/// the consumers declare their queues a few seconds after the first events are written (the
/// catalog's, on a first start), and the relay retries until they do; past this, a consumer is
/// missing and an operator should know (`outbox_oldest_pending_seconds` grows too).
pub const UNROUTABLE_GRACE: Duration = Duration::from_secs(60);

/// What became of a batch.
pub(super) struct Published {
    /// Confirmed: to mark published.
    pub(super) sent: Vec<i64>,
    /// Nacked, unconfirmed, or unroutable past the grace period: released, and the round failed.
    pub(super) failed: Vec<i64>,
    /// Unroutable within the grace period (a consumer still declaring its queue): released for
    /// the next round, which is no failure.
    pub(super) deferred: Vec<i64>,
    /// The broker error that stopped publishing, if any.
    pub(super) broker_error: Option<lapin::Error>,
}

/// An open confirm channel and its connection.
pub(super) struct Publisher {
    pub(super) connection: Connection,
    pub(super) channel: Channel,
}

impl Relay {
    pub(super) async fn connect(&self) -> Result<Publisher, lapin::Error> {
        let connection = amqp::connect(&self.config.amqp_url, &self.config.connection_name).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        for exchange in &self.config.exchanges {
            amqp::declare_event_exchange(&channel, exchange).await?;
        }
        tracing::info!(table = %self.config.table, "outbox relay connected to RabbitMQ");
        Ok(Publisher {
            connection,
            channel,
        })
    }

    /// Publishes every row, then awaits the confirms.
    ///
    /// The publishes are issued together, not one after the other: lapin writes from its own
    /// I/O thread and each `basic_publish` waits until its frames are written, so awaiting them
    /// in turn costs two thread hand-offs and a socket write per event, while issued together
    /// the batch's frames go out in one write (the pipeline profile in docs/benchmarks.md).
    /// Delivery tags follow the rows' order either way: `join_all` polls the publishes in order.
    pub(super) async fn publish(&self, channel: &Channel, rows: &[PendingRow]) -> Published {
        let mut pending = Vec::with_capacity(rows.len());
        let mut failed = Vec::new();
        let mut deferred = Vec::new();
        let mut broker_error = None;
        let publishes = futures::future::join_all(rows.iter().map(|row| {
            let properties = amqp::event_properties(
                &row.event_id.to_string(),
                &row.event_type,
                u64::try_from(row.created_at.timestamp()).unwrap_or(0),
                row.traceparent.as_deref(),
            );
            channel.basic_publish(
                ShortString::from(row.exchange.as_str()),
                ShortString::from(row.routing_key.as_str()),
                BasicPublishOptions {
                    mandatory: !self.config.best_effort_events.contains(&row.event_type),
                    ..BasicPublishOptions::default()
                },
                &row.payload,
                properties,
            )
        }))
        .await;
        for (row, published) in rows.iter().zip(publishes) {
            match published {
                Ok(confirm) => pending.push((row.id, row.created_at, confirm)),
                Err(err) => {
                    failed.push(row.id);
                    broker_error.get_or_insert(err);
                }
            }
        }
        let mut sent = Vec::with_capacity(pending.len());
        let confirms = futures::future::join_all(pending.into_iter().map(
            |(id, created_at, confirm)| async move {
                (
                    id,
                    created_at,
                    tokio::time::timeout(self.config.confirm_timeout, confirm).await,
                )
            },
        ))
        .await;
        for (id, created_at, outcome) in confirms {
            match outcome {
                // Acked and not returned: the broker routed and stored it.
                Ok(Ok(Confirmation::Ack(None))) => sent.push(id),
                Ok(Ok(Confirmation::Ack(Some(returned)))) => {
                    // On a fresh system the consumers declare their queues after the first
                    // events are written: that is not a fault until it lasts.
                    let age = (Utc::now() - created_at).to_std().unwrap_or_default();
                    if age < UNROUTABLE_GRACE {
                        tracing::info!(id, reply = %returned.reply_text, "event unroutable: its consumer has not declared its queue yet; will retry");
                        deferred.push(id);
                    } else {
                        tracing::warn!(id, reply = %returned.reply_text, age_seconds = age.as_secs(), "event returned unroutable; will retry");
                        failed.push(id);
                    }
                }
                Ok(Ok(Confirmation::Nack(_) | Confirmation::NotRequested)) => failed.push(id),
                Ok(Err(err)) => {
                    failed.push(id);
                    broker_error.get_or_insert(err);
                }
                Err(_) => failed.push(id),
            }
        }
        Published {
            sent,
            failed,
            deferred,
            broker_error,
        }
    }
}
