//! How a writer thread waits for its channel without costing the request path a syscall.
//!
//! A receiver blocked in `recv` makes every `try_send` on the request path wake it (a futex
//! syscall per event, and a context switch on a busy core). So while events flow, a writer
//! polls: it drains what is queued, sleeps [`POLL`], and looks again; a sender then only
//! pushes onto the queue. After [`IDLE_AFTER`] empty polls (about a second) it blocks again,
//! with a timeout (`tick`), so an idle writer costs no wake-ups either. The query log's writer
//! and every export writer wait this way.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;

/// How long a polling writer sleeps between looks while events flow (the longest an event
/// waits in the queue).
pub const POLL: Duration = Duration::from_millis(5);
/// Empty polls after which a writer blocks instead of polling.
pub const IDLE_AFTER: u32 = 200;

/// What [`Pace::next`] found.
#[derive(Debug)]
pub enum Next<T> {
    /// An item.
    Item(T),
    /// Nothing yet (after a poll's sleep, or a blocking wait's `tick`).
    Empty,
    /// Every sender is gone.
    Closed,
}

/// The waiting state of one writer thread.
#[derive(Debug, Default)]
pub struct Pace {
    idle_polls: u32,
}

impl Pace {
    /// Waits for the next item: polling (a [`POLL`] sleep when the queue is empty) while items
    /// flow, blocking for at most `tick` once the writer has been idle. Drain further items with
    /// `try_recv` after an `Item`, then call `next` again.
    pub fn next<T>(&mut self, rx: &Receiver<T>, tick: Duration) -> Next<T> {
        if self.idle_polls >= IDLE_AFTER {
            return match rx.recv_timeout(tick) {
                Ok(i) => {
                    self.idle_polls = 0;
                    Next::Item(i)
                }
                Err(RecvTimeoutError::Timeout) => Next::Empty,
                Err(RecvTimeoutError::Disconnected) => Next::Closed,
            };
        }
        match rx.try_recv() {
            Ok(i) => {
                self.idle_polls = 0;
                Next::Item(i)
            }
            Err(TryRecvError::Empty) => {
                self.idle_polls += 1;
                std::thread::sleep(POLL);
                Next::Empty
            }
            Err(TryRecvError::Disconnected) => Next::Closed,
        }
    }

    /// Whether the writer is blocking (idle) rather than polling.
    pub fn idle(&self) -> bool {
        self.idle_polls >= IDLE_AFTER
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    #[test]
    fn polls_while_items_flow_then_blocks_when_idle() {
        let (tx, rx) = sync_channel(4);
        let mut p = Pace::default();
        tx.send(1).unwrap();
        assert!(matches!(
            p.next(&rx, Duration::from_millis(1)),
            Next::Item(1)
        ));
        assert!(!p.idle());
        for _ in 0..IDLE_AFTER {
            assert!(matches!(p.next(&rx, Duration::from_millis(1)), Next::Empty));
        }
        assert!(p.idle(), "idle after {IDLE_AFTER} empty polls");
        tx.send(2).unwrap();
        assert!(matches!(
            p.next(&rx, Duration::from_millis(1)),
            Next::Item(2)
        ));
        assert!(!p.idle(), "an item makes it poll again");
        drop(tx);
        assert!(matches!(
            p.next(&rx, Duration::from_millis(1)),
            Next::Closed
        ));
    }
}
