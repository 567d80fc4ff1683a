//! [`Wakeups`]: notifications that rows were flagged, received on a connection of
//! their own (PostgreSQL `LISTEN`; see `postgres::listen`).

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::StoreError;

/// A stream of wake-ups: every notification from the store ends one [`Wakeups::wait`].
///
/// Notifications that arrive while nobody waits are kept (folded into one), so a
/// flag raised during a batch wakes the next wait at once. Dropping it closes its
/// connection.
#[derive(Debug)]
pub struct Wakeups {
    /// One message per notification (`Ok`), or why the connection ended (`Err`, last).
    receiver: mpsc::Receiver<Result<(), StoreError>>,
    /// The task driving the connection; aborted when this is dropped.
    task: JoinHandle<()>,
    /// The connection's client, kept so that the connection stays open.
    client: tokio_postgres::Client,
}

impl Wakeups {
    /// Wraps a connection's client and the task that drives it and sends to `receiver`.
    pub(crate) fn new(
        client: tokio_postgres::Client,
        receiver: mpsc::Receiver<Result<(), StoreError>>,
        task: JoinHandle<()>,
    ) -> Wakeups {
        Wakeups {
            receiver,
            task,
            client,
        }
    }

    /// The listening connection's client (for `LISTEN`).
    pub(crate) fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// Waits for the next notification (or returns at once if one arrived meanwhile).
    ///
    /// # Errors
    /// [`StoreError`] when the listening connection ended: reconnect.
    pub async fn wait(&mut self) -> Result<(), StoreError> {
        match self.receiver.recv().await {
            Some(r) => r,
            None => Err(StoreError::Closed {
                what: "listening for notifications".into(),
            }),
        }
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}
