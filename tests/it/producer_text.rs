//! Whatever a producer writes into `conjoined` reads back the same after `recalcd once`
//! rewrites the row, and again after the next recalculation (real binary, on both
//! stores: `producer_text::postgres::*`, `producer_text::questdb::*`).

use recalcd::conjoined;

use crate::support::Harness;

on_both_stores!(producer_text_reads_back_the_same_after_two_recalculations);

fn recalcd(h: &Harness, args: &[&str]) {
    let out = h.recalcd_raw(args);
    // Rows that failed (the unreadable one below) may have an exit code of their own;
    // 1 and 2 are errors.
    assert!(
        out.status.code().is_some_and(|c| c != 1 && c != 2),
        "recalcd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The producers' texts, one data row each (its own job), in `datetime` order.
const PRODUCED: [&str; 7] = [
    r"tmp=4;path=C:\data\",
    r"tmp=5 ;; note = a\;b ;path=x\ ",
    r"tmp=6;weird=\\;v=1,2\,3;;",
    r" tmp = 7 ;TMP=8;hot=stale;path=\",
    "tmp=9;název=Úhel\\ ;x=\\q;\u{a0}s\u{a0}=\u{3000}",
    r"tmp=3;junk;path=C:\x\",
    r"tmp=2;=;;a=b=c;sp=  \  ",
];

/// What a text reads as, in order: each entry's name and stored value (decoded), or
/// an unreadable segment byte for byte — leaving out the output `hot`.
fn producer_entries(text: &str) -> Vec<Result<(String, String), String>> {
    let mut out = Vec::new();
    let mut entries = conjoined::entries(text);
    while let Some(item) = entries.next() {
        match item {
            Ok(e) if e.name.eq_ignore_ascii_case("hot") => {}
            Ok(e) => out.push(Ok((e.name.to_string(), format!("{:?}", e.value())))),
            Err(_) => out.push(Err(entries.segment().to_owned())),
        }
    }
    out
}

fn stored(h: &Harness) -> Vec<String> {
    h.query("SELECT conjoined FROM {data} WHERE id = 1 ORDER BY datetime")
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect()
}

fn assert_read_back(h: &Harness) -> Vec<String> {
    let now = stored(h);
    assert_eq!(now.len(), PRODUCED.len());
    for (text, producer) in now.iter().zip(PRODUCED) {
        assert_eq!(
            producer_entries(text),
            producer_entries(producer),
            "{producer:?} is stored as {text:?}"
        );
        let outputs = conjoined::entries(text)
            .filter(|e| e.as_ref().is_ok_and(|e| e.name.eq_ignore_ascii_case("hot")))
            .count();
        assert!(outputs <= 1, "{text:?} holds the output twice");
    }
    now
}

fn producer_text_reads_back_the_same_after_two_recalculations(h: &Harness) {
    recalcd(h, &["migrate"]);
    let mut sql = String::from(
        "INSERT INTO {constants} (id, name, value) VALUES (0, 'WB', '06:00');
         INSERT INTO {equations} (\"type\", id, name, eq) VALUES
             (1, 0, 'hot', 'IF > $tmp 3 1 0'), (4, 0, 'N', '#RECS');
         INSERT INTO {data} (datetime, data_time, id, recalc, conjoined) VALUES ",
    );
    for (i, text) in PRODUCED.iter().enumerate() {
        let at = format!("2024-03-01 {:02}:00", 8 + i);
        let sep = if i == 0 { "" } else { "," };
        sql.push_str(&format!(
            "{sep}('{at}', '{at}', 1, 1, '{}')",
            text.replace('\'', "''")
        ));
    }
    h.exec(&sql);

    recalcd(h, &["once"]);
    let first = assert_read_back(h);
    // The example of the report, byte for byte: the open tail stays last.
    assert_eq!(first[0], r"tmp=4;hot=1;path=C:\data\");
    assert!(first[3].ends_with(r"path=\"), "{}", first[3]);

    h.exec("UPDATE {data} SET recalc = 1");
    recalcd(h, &["once"]);
    let second = assert_read_back(h);
    assert_eq!(second, first, "a second recalculation changes nothing");
}
