//! Acknowledgements in batches: one `basic.ack` with `multiple` for the events applied so far,
//! instead of one per event.
//!
//! Each ack is a frame handed to lapin's I/O thread through its internal RPC and awaited; the
//! pipeline profile (docs/benchmarks.md, "The relay's and the worker's CPU per event") found acks
//! and that RPC 13% of the worker's CPU. An ack with `multiple` settles every unsettled delivery
//! up to its tag, so it may only reach tags whose events are applied or already settled on their
//! own: the window acks up to the highest applied tag below the lowest one still being handled.
//!
//! Holding an ack back for a few milliseconds changes no statistic: the event is in Redis before
//! its tag is marked applied here. A worker that dies holding acks has those events delivered
//! again, and applying is idempotent (ADR 0006). The held acks count against `PREFETCH`, so a
//! batch goes out once half of it is applied, or after [`ACK_DELAY`].

use std::collections::BTreeSet;
use std::pin::Pin;
use std::time::Duration;

use lapin::Channel;
use lapin::options::BasicAckOptions;
use tokio::time::Sleep;

/// The longest an applied event waits for its ack to go out.
pub const ACK_DELAY: Duration = Duration::from_millis(5);

/// How a handled delivery is settled.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Settled {
    /// Its event is applied (or was before): acked with the next batch.
    Applied(u64),
    /// Settled on its own: dead-lettered, parked for a retry, or left to the broker.
    Alone(u64),
}

/// The delivery tags of one channel: being handled, and applied but not yet acked.
#[derive(Debug)]
pub(crate) struct AckWindow {
    handling: BTreeSet<u64>,
    applied: BTreeSet<u64>,
    /// How many applied events make a batch go out without waiting for [`ACK_DELAY`].
    batch: usize,
    /// When the held acks are due; none while none is held.
    due: Option<Pin<Box<Sleep>>>,
}

impl AckWindow {
    /// A window for a channel that has up to `prefetch` unacked deliveries.
    pub(crate) fn new(prefetch: u16) -> Self {
        Self {
            handling: BTreeSet::new(),
            applied: BTreeSet::new(),
            batch: usize::from(prefetch / 2).max(1),
            due: None,
        }
    }

    /// A delivery arrived and is being handled.
    pub(crate) fn delivered(&mut self, tag: u64) {
        self.handling.insert(tag);
    }

    /// A delivery was handled: acks a batch if one is full, else makes sure a tick will.
    pub(crate) async fn handled(
        &mut self,
        channel: &Channel,
        settled: Settled,
    ) -> Result<(), lapin::Error> {
        self.record(settled);
        if self.full() {
            self.send(channel).await?;
        }
        self.arm();
        Ok(())
    }

    /// Resolves when held acks are due; never while none is held.
    pub(crate) async fn due(&mut self) {
        match &mut self.due {
            Some(due) => due.as_mut().await,
            None => std::future::pending().await,
        }
    }

    /// Sends the acks that are due; those held back by an event still being handled wait for
    /// the next tick.
    pub(crate) async fn tick(&mut self, channel: &Channel) -> Result<(), lapin::Error> {
        self.due = None;
        self.send(channel).await?;
        self.arm();
        Ok(())
    }

    /// Starts the [`ACK_DELAY`] timer if an applied event waits and no timer runs.
    fn arm(&mut self) {
        if self.waiting() && self.due.is_none() {
            self.due = Some(Box::pin(tokio::time::sleep(ACK_DELAY)));
        }
    }

    /// Notes how a handled delivery is settled.
    pub(crate) fn record(&mut self, settled: Settled) {
        match settled {
            Settled::Applied(tag) => {
                self.handling.remove(&tag);
                self.applied.insert(tag);
            }
            Settled::Alone(tag) => {
                self.handling.remove(&tag);
            }
        }
    }

    /// Acks, with one `multiple` ack, every applied event that may be settled now.
    pub(crate) async fn send(&mut self, channel: &Channel) -> Result<(), lapin::Error> {
        match self.take() {
            Some(upto) => {
                channel
                    .basic_ack(upto, BasicAckOptions { multiple: true })
                    .await
            }
            None => Ok(()),
        }
    }

    /// Whether enough are applied for a batch to go out now.
    fn full(&self) -> bool {
        self.applied.len() >= self.batch
    }

    /// Whether any applied event waits for its ack.
    fn waiting(&self) -> bool {
        !self.applied.is_empty()
    }

    /// The tag a `multiple` ack may settle now, if any; the tags it covers are forgotten.
    fn take(&mut self) -> Option<u64> {
        let lowest_handled = self.handling.first().copied().unwrap_or(u64::MAX);
        let upto = self.applied.range(..lowest_handled).next_back().copied()?;
        self.applied = self.applied.split_off(&(upto + 1));
        Some(upto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(prefetch: u16, delivered: &[u64]) -> AckWindow {
        let mut window = AckWindow::new(prefetch);
        for tag in delivered {
            window.delivered(*tag);
        }
        window
    }

    #[test]
    fn an_ack_never_reaches_a_delivery_still_being_handled() {
        let mut acks = window(32, &[1, 2, 3, 4]);
        acks.record(Settled::Applied(1));
        acks.record(Settled::Applied(3));
        // 2 is still being handled: only 1 may be acked.
        assert_eq!(acks.take(), Some(1));
        assert_eq!(acks.take(), None);
        assert!(acks.waiting(), "3 waits for 2");
        acks.record(Settled::Applied(2));
        assert_eq!(acks.take(), Some(3));
        assert!(!acks.waiting());
        acks.record(Settled::Applied(4));
        assert_eq!(acks.take(), Some(4));
        assert_eq!(acks.take(), None);
    }

    #[test]
    fn deliveries_settled_on_their_own_do_not_hold_the_others_back() {
        let mut acks = window(32, &[1, 2, 3]);
        acks.record(Settled::Applied(3));
        acks.record(Settled::Alone(1)); // dead-lettered
        acks.record(Settled::Alone(2)); // parked for a retry
        assert_eq!(acks.take(), Some(3));
    }

    #[test]
    fn a_batch_is_full_at_half_the_prefetch_and_at_once_with_prefetch_one() {
        let mut acks = window(4, &[1, 2, 3]);
        acks.record(Settled::Applied(1));
        assert!(!acks.full());
        acks.record(Settled::Applied(2));
        assert!(acks.full());

        let mut one_at_a_time = window(1, &[7]);
        one_at_a_time.record(Settled::Applied(7));
        assert!(one_at_a_time.full());
        assert_eq!(one_at_a_time.take(), Some(7));
    }
}
