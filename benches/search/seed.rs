//! Seeding the benchmark database with the search benchmark's series (`series.rs`):
//! shared by the search and plot benchmarks.

use futures_util::pin_mut;
use recalcd::store::Row;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::Client;

use crate::common::{self, ROW_TYPES};
use crate::series::Series;

/// Rows per chunk handed from the generator thread to the `COPY`.
const CHUNK: usize = 20_000;

/// Streams the generated rows into `data` while the generator runs on a thread of its
/// own; returns the `tmp` values in tenths.
pub async fn seed(client: &Client, rows: usize) -> Vec<i32> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Row>>(4);
    let generator = std::thread::spawn(move || {
        let mut series = Series::new(rows, 13);
        println!(
            "  planted: {} overheats (8–40 min towards 106–118 °C), {} sensor dropouts (2–15 s at −40 °C)",
            series.overheat_count(),
            series.dropout_count()
        );
        let mut tenths = Vec::with_capacity(rows);
        let mut chunk = Vec::with_capacity(CHUNK);
        while let Some((row, t)) = series.next_row() {
            tenths.push(t);
            chunk.push(row);
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                if tx.blocking_send(full).is_err() {
                    break;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
        tenths
    });
    let sink = client
        .copy_in(&format!(
            "COPY data ({}) FROM STDIN BINARY",
            common::COLUMNS
        ))
        .await
        .expect("COPY");
    let writer = BinaryCopyInWriter::new(sink, &ROW_TYPES);
    pin_mut!(writer);
    while let Some(chunk) = rx.recv().await {
        for r in &chunk {
            writer.as_mut().write(&r.params()).await.expect("COPY row");
        }
    }
    writer.finish().await.expect("COPY finish");
    generator.join().expect("the generator thread")
}
