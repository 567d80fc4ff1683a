//! The baseline: the SQL a user would write without recalcd — the channel extracted
//! from `conjoined` with a regular expression, window functions over a `RANGE` frame
//! for `AVG`, `MIN`, `MAX` and `SUM`, gaps and islands for `RUN` — and its timing.
//!
//! The strongest plain form of it, measured at 200,000 rows: the extracted values are a
//! `MATERIALIZED` CTE — inlined, PostgreSQL evaluates the regular expression again for
//! every row of every frame (`MAX(1m)` 60 s instead of 3.2 s, `MAX(10m)` 456 s instead
//! of 12 s); `AVG` and `SUM` aggregate `numeric`, which PostgreSQL moves through the
//! frame (it has an inverse transition: `AVG(10m)` 1.2 s), while `float8` sums, `min`
//! and `max` restart for every row's frame (`float8` `AVG(10m)` 10.8 s). The frame's
//! last row comes from `last_value`, which costs nothing per row.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::reference::{Cond, Kind, Match};

/// The rows of the channel inside `[from, to)` for one device, with their value (rows
/// without the channel are not points; every `tmp` of the benchmark is a number).
fn points(channel: &str) -> String {
    format!(
        "SELECT t, s::float8 AS v FROM (
             SELECT datetime AS t, substring(conjoined from '(?:^|;){channel}=([^;]*)') AS s
               FROM data WHERE id = $1 AND datetime >= $2 AND datetime < $3) e
          WHERE s IS NOT NULL"
    )
}

/// The query answering `cond` on `channel`: rows `(from, to)` in time order.
pub fn query(cond: &Cond, channel: &str) -> String {
    let points = points(channel);
    let (op, x) = (cond.op_sql(), cond.x);
    if cond.kind == Kind::Run {
        // A row whose value is not a number (NULL here) breaks a run.
        return format!(
            "WITH p AS MATERIALIZED ({points}),
             q AS (SELECT t, coalesce(v {op} {x}, false) AS ok FROM p),
             r AS (SELECT t, ok, CASE WHEN ok IS DISTINCT FROM lag(ok) OVER (ORDER BY t)
                                      THEN 1 ELSE 0 END AS flip FROM q),
             s AS (SELECT t, ok, sum(flip) OVER (ORDER BY t) AS grp FROM r)
             SELECT min(t), max(t) FROM s WHERE ok GROUP BY grp
             HAVING max(t) - min(t) >= interval '{secs} seconds' ORDER BY 1",
            secs = cond.secs
        );
    }
    let agg = match cond.kind {
        Kind::Avg => "avg(v::numeric)",
        Kind::Sum => "sum(v::numeric)",
        Kind::Min => "min(v)",
        Kind::Max => "max(v)",
        Kind::Run => unreachable!("handled above"),
    };
    format!(
        "WITH p AS MATERIALIZED ({points}),
         n AS (SELECT t, v FROM p WHERE v IS NOT NULL),
         w AS (SELECT t, last_value(t) OVER win AS last, {agg} OVER win AS a FROM n
               WINDOW win AS (ORDER BY t RANGE BETWEEN CURRENT ROW
                   AND interval '{secs} seconds' - interval '1 microsecond' FOLLOWING)),
         m AS (SELECT t, last FROM w WHERE a {op} {x}),
         g AS (SELECT t, last, CASE WHEN t <= max(last) OVER (ORDER BY t ROWS BETWEEN
                   UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS new FROM m),
         h AS (SELECT t, last, sum(new) OVER (ORDER BY t) AS grp FROM g)
         SELECT min(t), max(last) FROM h GROUP BY grp ORDER BY 1",
        secs = cond.secs
    )
}

/// Runs the baseline for device `id` over `[from, to)`: its matches and wall time.
pub async fn run(
    client: &Client,
    cond: &Cond,
    channel: &str,
    id: i32,
    from: chrono::NaiveDateTime,
    to: chrono::NaiveDateTime,
) -> Result<(Vec<Match>, Duration), tokio_postgres::Error> {
    let sql = query(cond, channel);
    let start = Instant::now();
    let rows = client.query(&sql, &[&id, &from, &to]).await?;
    let elapsed = start.elapsed();
    let micros = |t: chrono::NaiveDateTime| t.and_utc().timestamp_micros();
    let matches = rows
        .iter()
        .map(|r| {
            Ok((
                id,
                micros(r.try_get::<_, chrono::NaiveDateTime>(0)?),
                micros(r.try_get::<_, chrono::NaiveDateTime>(1)?),
            ))
        })
        .collect::<Result<Vec<Match>, tokio_postgres::Error>>()?;
    Ok((matches, elapsed))
}
