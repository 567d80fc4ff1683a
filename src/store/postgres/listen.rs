//! Wake-ups on PostgreSQL: `LISTEN` on a connection of its own to the channel named
//! after the data table, on which the triggers of migration 0003 notify after every
//! producer statement on the data, job or day table.

use futures_util::future::poll_fn;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::super::{open_connection, StoreError, Wakeups};
use crate::config::{DatabaseConfig, TableNames};

/// Opens the listening connection.
pub async fn listen(database: &DatabaseConfig, tables: &TableNames) -> Result<Wakeups, StoreError> {
    let what = "listening for notifications";
    let (client, mut connection) = open_connection(database).await?;
    // Capacity 1: notifications nobody has waited for yet fold into one.
    let (sender, receiver) = mpsc::channel(1);
    let task = tokio::spawn(async move {
        let end = loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    let _ = sender.try_send(Ok(()));
                }
                Some(Ok(_)) => {} // a notice
                Some(Err(source)) => {
                    break StoreError::Query {
                        what: what.into(),
                        source,
                    }
                }
                None => break StoreError::Closed { what: what.into() },
            }
        };
        let _ = sender.send(Err(end)).await;
    });
    let wakeups = Wakeups::new(client, receiver, task);
    // The channel is the data table's name: unique per installation in a database, and
    // short enough for a channel name (at most 63 bytes, like the table name).
    wakeups
        .client()
        .batch_execute(&format!(r#"LISTEN "{}""#, tables.data))
        .await
        .map_err(StoreError::query(what))?;
    Ok(wakeups)
}
