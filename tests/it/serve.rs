//! `recalcd serve` through the real binary, on both stores (`serve::postgres::*`,
//! `serve::questdb::*`): its JSON API against the command line and the service, its
//! bad input (4xx with a JSON message naming the parameter), and the token.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{unique, Harness};

on_both_stores!(
    the_api_answers_as_the_command_line,
    bad_requests_get_a_json_message_naming_the_parameter,
);

/// The devices of the data set.
pub const DEVICES: [i32; 2] = [5, 7];

/// A config file for `h`: `tmp` indexed with 1d/1h/10m/1m in °C, and `extra` appended.
pub fn config_file(extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("recalcd-serve-"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("recalcd.toml");
    std::fs::write(
        &path,
        format!(
            "[log]\nlevel = \"warn\"\n[[index.feature]]\nchannel = \"tmp\"\n\
             levels = [\"1d\", \"1h\", \"10m\", \"1m\"]\nunit = \"°C\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// Runs `recalcd ARGS --config CONFIG --database-url …`, which must succeed; its stdout.
pub fn recalcd_ok(h: &Harness, config: &Path, args: &[&str]) -> String {
    let out = h
        .command()
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--database-url")
        .arg(h.url())
        .output()
        .expect("run recalcd");
    assert!(
        out.status.success(),
        "recalcd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two days of `tmp` for devices 5 and 7, a row every 30 s (a slow wave with bursts,
/// a gap of two hours, now and then a value that is not a number), computed and
/// indexed.
pub fn load(h: &Harness, config: &Path) {
    recalcd_ok(h, config, &["migrate"]);
    let origin = chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut values = Vec::new();
    for id in DEVICES {
        for k in 0..(2 * 2880) {
            if (1500..1740).contains(&k) {
                continue; // the gap
            }
            let t = origin + chrono::Duration::seconds(30 * k + i64::from(id));
            let x = k as f64 / 300.0 + f64::from(id);
            let burst = if k % 613 == 0 { 15.0 } else { 0.0 };
            let tmp = if k % 997 == 5 {
                "tmp=hot;".to_string()
            } else {
                format!(
                    "tmp={:.2};",
                    20.0 + 5.0 * x.sin() + burst + (k % 7) as f64 / 10.0
                )
            };
            let at = t.format("%Y-%m-%d %H:%M:%S");
            values.push(format!("('{at}', '{at}', {id}, 1, 'x=1;{tmp}')"));
        }
    }
    for chunk in values.chunks(2000) {
        h.exec(&format!(
            "INSERT INTO {{data}} (datetime, data_time, id, recalc, conjoined) VALUES {};",
            chunk.join(",\n")
        ));
    }
    recalcd_ok(h, config, &["once"]);
    recalcd_ok(h, config, &["index", "build", "--channel", "tmp"]);
}

/// A running `recalcd serve` on a free port, stopped when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `recalcd serve --listen 127.0.0.1:0` and waits for its address.
    pub fn start(h: &Harness, config: &Path) -> Server {
        let mut child = h
            .command()
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--database-url")
            .arg(h.url())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start recalcd serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.trim().trim_end_matches('/').to_string());
                }
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("recalcd serve did not start: {}", stderr.lock().unwrap());
            }
        };
        Server {
            child,
            base,
            stderr,
        }
    }

    /// `GET path?params`, with `token` as a bearer token: the status and the body.
    pub fn get(&self, path: &str, params: &[(&str, &str)], token: Option<&str>) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut req = agent.get(format!("{}{path}", self.base));
        for (k, v) in params {
            req = req.query(*k, *v);
        }
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().expect("request");
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().expect("body");
        (status, body)
    }

    /// [`Server::get`] of JSON that must answer `want`.
    pub fn json(&self, path: &str, params: &[(&str, &str)], want: u16) -> serde_json::Value {
        let (status, body) = self.get(path, params, None);
        assert_eq!(status, want, "{path} {params:?}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"))
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Stops the server (SIGTERM) and waits for it; its stderr.
    pub fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "serve exited with {status}: {}",
                    self.stderr()
                );
                std::thread::sleep(Duration::from_millis(50));
                return self.stderr();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("serve did not stop on SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON without what differs from run to run (the time taken).
fn without_elapsed(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(stats) = v.get_mut("stats").and_then(|s| s.as_object_mut()) {
        stats.remove("elapsed_ms");
    }
    v
}

fn the_api_answers_as_the_command_line(h: &Harness) {
    let config = config_file("");
    load(h, &config);
    let server = Server::start(h, &config);

    let channels = server.json("/api/channels", &[], 200);
    let tmp = &channels["channels"][0];
    assert_eq!(tmp["channel"], "tmp");
    assert_eq!(tmp["unit"], "°C");
    assert_eq!(tmp["built"], true);
    assert_eq!(tmp["levels"], serde_json::json!(["1d", "1h", "10m", "1m"]));
    assert_eq!(tmp["devices"], serde_json::json!(DEVICES));

    // Searches: the same JSON as `recalcd search --format json`, device by device and
    // over all devices, with every method.
    let cases: [(&str, Option<&str>, &str, &str, &str); 5] = [
        (
            "AVG(5m) > 24",
            Some("5"),
            "2024-03-01",
            "2024-03-02",
            "auto",
        ),
        (
            "MAX(1m) >= 30",
            None,
            "2024-03-01T03:17:00",
            "2024-03-02T19:00:30",
            "auto",
        ),
        (
            "RUN(< 17, 10m)",
            Some("7"),
            "2024-03-01",
            "2024-03-02",
            "filtering",
        ),
        (
            "SUM(10m) > 500",
            None,
            "2024-03-01T11:00:00",
            "2024-03-01T23:00:00",
            "fixed",
        ),
        (
            "MIN(2m) < 16",
            Some("5"),
            "2024-03-01",
            "2024-03-02",
            "scan",
        ),
    ];
    for (cond, id, from, to, method) in cases {
        let mut params = vec![
            ("channel", "tmp"),
            ("from", from),
            ("to", to),
            ("where", cond),
        ];
        let mut args = vec!["search", "--channel", "tmp", "--from", from, "--to", to];
        args.extend(["--where", cond, "--method", method, "--format", "json"]);
        params.push(("method", method));
        if let Some(id) = id {
            params.push(("id", id));
            args.extend(["--id", id]);
        }
        let api = server.json("/api/search", &params, 200);
        let cli: serde_json::Value =
            serde_json::from_str(&recalcd_ok(h, &config, &args)).expect("CLI JSON");
        assert_eq!(
            without_elapsed(api.clone()),
            without_elapsed(cli),
            "{cond} {id:?}"
        );
        assert!(api["stats"]["elapsed_ms"].is_u64());
    }
    // `limit` lists fewer matches; the statistics still count all.
    let all = server.json(
        "/api/search",
        &[
            ("channel", "tmp"),
            ("from", "2024-03-01"),
            ("to", "2024-03-02"),
            ("where", "MAX(1m) >= 30"),
        ],
        200,
    );
    let n = all["matches"].as_array().unwrap().len();
    assert!(n >= 2, "the data set has bursts: {all}");
    let one = server.json(
        "/api/search",
        &[
            ("channel", "tmp"),
            ("from", "2024-03-01"),
            ("to", "2024-03-02"),
            ("where", "MAX(1m) >= 30"),
            ("limit", "1"),
        ],
        200,
    );
    assert_eq!(one["matches"].as_array().unwrap().len(), 1);
    assert_eq!(one["stats"]["matches"], n);
    // Plots: the frames of `service::plot` itself, coarse first, final exact.
    for (id, from, to, width) in [
        (5, "2024-03-01", "2024-03-02", "700"),
        (7, "2024-03-01T05:17:03", "2024-03-02T13:01:00.5", "333"),
        (5, "2024-03-01T10:00:00", "2024-03-01T10:07:00", "400"),
    ] {
        let id_text = id.to_string();
        let params = |step: &'static str| {
            vec![
                ("channel", "tmp"),
                ("id", id_text.as_str()),
                ("from", from),
                ("to", to),
                ("width", width),
                ("step", step),
            ]
        };
        let all = server.json("/api/plot", &params("all"), 200);
        let coarse = server.json("/api/plot", &params("coarse"), 200);
        let fine = server.json("/api/plot", &params("final"), 200);
        let expected = service_plot(h, &config, id, from, to, width.parse().unwrap());
        let frames = all["frames"].as_array().unwrap();
        assert_eq!(frames.len(), expected.frames.len());
        for (got, want) in frames.iter().zip(&expected.frames) {
            assert_frame(got, want);
        }
        assert_eq!(coarse["frames"].as_array().unwrap().len(), 1);
        assert_frame(&coarse["frames"][0], &expected.frames[0]);
        assert_eq!(fine["frames"].as_array().unwrap().len(), 1);
        let last = expected.frames.last().unwrap();
        assert!(last.exact);
        assert_frame(&fine["frames"][0], last);
        assert!(
            last.columns.iter().any(Option::is_some),
            "{from}..{to}: nothing drawn"
        );
        assert_eq!(all["unit"], "°C");
        assert_eq!(all["width"], width.parse::<u64>().unwrap());
    }
    server.stop();
}

/// A bad request: the path, its parameters, the status and a part of the message.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

fn bad_requests_get_a_json_message_naming_the_parameter(h: &Harness) {
    let config = config_file("");
    load(h, &config);
    let server = Server::start(h, &config);
    let base = [("from", "2024-03-01"), ("to", "2024-03-02")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut p = base.to_vec();
        p.extend_from_slice(extra);
        p
    };
    let cases: Vec<Case> = vec![
        // Unknown channel and device: 404.
        (
            "/api/search",
            with(&[("channel", "nosuch"), ("where", "MAX(1m) > 1")]),
            404,
            "`channel` nosuch",
        ),
        (
            "/api/search",
            with(&[("channel", "tmp"), ("id", "999"), ("where", "MAX(1m) > 1")]),
            404,
            "`id`: device 999",
        ),
        // Malformed: 400 naming the parameter.
        (
            "/api/search",
            with(&[("channel", "tmp"), ("where", "MAX(1m) >> 1")]),
            400,
            "`where`",
        ),
        (
            "/api/search",
            with(&[("channel", "tmp")]),
            400,
            "missing parameter `where`",
        ),
        (
            "/api/search",
            vec![
                ("channel", "tmp"),
                ("where", "MAX(1m) > 1"),
                ("to", "2024-03-02"),
            ],
            400,
            "missing parameter `from`",
        ),
        (
            "/api/search",
            vec![
                ("channel", "tmp"),
                ("where", "MAX(1m) > 1"),
                ("from", "2024-03-02"),
                ("to", "2024-03-01T00:00:00"),
            ],
            400,
            "`to` 2024-03-01T00:00:00 is not after `from`",
        ),
        (
            "/api/search",
            vec![
                ("channel", "tmp"),
                ("where", "MAX(1m) > 1"),
                ("from", "1800-01-01"),
                ("to", "2100-01-01"),
            ],
            400,
            "73200 days, the limit",
        ),
        (
            "/api/search",
            with(&[("channel", "tmp"), ("where", "MAX(1m) > 1"), ("id", "7x")]),
            400,
            "`id`: '7x'",
        ),
        (
            "/api/search",
            with(&[
                ("channel", "tmp"),
                ("where", "MAX(1m) > 1"),
                ("method", "fast"),
            ]),
            400,
            "`method`: 'fast'",
        ),
        (
            "/api/search",
            with(&[
                ("channel", "tmp"),
                ("where", "MAX(1m) > 1"),
                ("limit", "1000001"),
            ]),
            400,
            "`limit`",
        ),
        (
            "/api/search",
            with(&[
                ("channel", "tmp"),
                ("where", "MAX(1m) > 1"),
                ("colour", "red"),
            ]),
            400,
            "unknown parameter `colour`",
        ),
        (
            "/api/plot",
            with(&[("channel", "nosuch"), ("id", "5"), ("width", "300")]),
            404,
            "`channel` nosuch",
        ),
        (
            "/api/plot",
            with(&[("channel", "tmp"), ("id", "999"), ("width", "300")]),
            404,
            "`id` 999",
        ),
        (
            "/api/plot",
            with(&[("channel", "tmp"), ("width", "300")]),
            400,
            "missing parameter `id`",
        ),
        (
            "/api/plot",
            with(&[("channel", "tmp"), ("id", "5"), ("width", "0")]),
            400,
            "`width`: '0'",
        ),
        (
            "/api/plot",
            with(&[("channel", "tmp"), ("id", "5"), ("width", "20000")]),
            400,
            "from 1 to 16384, the limit",
        ),
        (
            "/api/plot",
            with(&[
                ("channel", "tmp"),
                ("id", "5"),
                ("width", "300"),
                ("step", "fine"),
            ]),
            400,
            "`step`: 'fine'",
        ),
        (
            "/api/plot",
            with(&[("channel", "tmp"), ("id", "5")]),
            400,
            "missing parameter `width`",
        ),
        ("/api/nothing", vec![], 404, "no such page"),
        // Nothing a viewer sends reaches SQL unbound.
        (
            "/api/search",
            with(&[
                ("channel", "tmp'; DROP TABLE data; --"),
                ("where", "MAX(1m) > 1"),
            ]),
            404,
            "`channel` tmp'; DROP TABLE data; --",
        ),
    ];
    for (path, params, status, message) in cases {
        let body = server.json(path, &params, status);
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
        assert!(error.contains(message), "{path} {params:?}: {error}");
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    }
    let rows = h.query("SELECT count(*) FROM {data}");
    assert_eq!(rows[0][0].as_deref(), Some("11040"));
    server.stop();
}

#[test]
fn the_token_is_required_when_set_and_never_shown() {
    let h = Harness::postgres_blocking();
    let token = "s3rve-T0ken-4d1f";
    let config = config_file(&format!("[serve]\ntoken = \"{token}\"\n"));
    recalcd_ok(&h, &config, &["migrate"]);
    let server = Server::start(&h, &config);
    // The page itself holds no data: it loads without the token and asks for it.
    let (status, page) = server.get("/", &[], None);
    assert_eq!(status, 200);
    assert!(page.contains("<canvas"), "{page}");
    for given in [
        None,
        Some("wrong"),
        Some("s3rve-T0ken-4d1"),
        Some("s3rve-T0ken-4d1f0"),
    ] {
        let (status, body) = server.get("/api/channels", &[], given);
        assert_eq!(status, 401, "{given:?}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(body["error"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"));
    }
    let (status, body) = server.get("/api/channels", &[], Some(token));
    assert_eq!(status, 200, "{body}");
    let stderr = server.stop();
    assert!(stderr.contains("listening on"), "{stderr}");
    assert!(!stderr.contains(token), "the token was shown: {stderr}");
}

#[test]
fn a_store_without_schema_stops_serve_at_start() {
    let h = Harness::postgres_blocking();
    let config = config_file("");
    let out = h
        .command()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--database-url")
        .arg(h.url())
        .output()
        .expect("run recalcd serve");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open a session on the store"), "{err}");
}

/// `service::plot` run by the test on the same stores and configuration.
fn service_plot(
    h: &Harness,
    config: &Path,
    id: i32,
    from: &str,
    to: &str,
    width: u32,
) -> recalcd::service::plot::Plot {
    use recalcd::index::{micros, parse_time};
    let mut cfg = recalcd::config::Config::load(Some(config), Some(h.url())).expect("config");
    cfg.tables = h.config.tables.clone();
    cfg.database = h.config.database.clone();
    let req = recalcd::service::plot::PlotRequest {
        channel: "tmp".into(),
        id,
        range: (
            micros(parse_time(from, false).unwrap()),
            micros(parse_time(to, true).unwrap()),
        ),
        width,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let data = recalcd::store::connect(&cfg).await.expect("data store");
            let index = recalcd::store::index::IndexStore::connect(&cfg)
                .await
                .expect("index store");
            recalcd::service::plot::plot(&data, Some(&index), &cfg.index, &req, None)
                .await
                .expect("plot")
        })
}

/// The API's frame `got` says what the service's frame `want` holds.
pub fn assert_frame(got: &serde_json::Value, want: &recalcd::service::plot::Frame) {
    assert_eq!(got["step"], want.step as u64);
    assert_eq!(got["level"].as_i64(), want.level);
    assert_eq!(got["exact"], want.exact);
    assert_eq!(got["rows_read"], want.rows_read);
    assert_eq!(got["buckets_read"], want.buckets_read);
    let columns = got["columns"].as_array().expect("columns");
    assert_eq!(columns.len(), want.columns.len());
    for (i, (g, w)) in columns.iter().zip(&want.columns).enumerate() {
        match w {
            None => assert!(g.is_null(), "column {i}: {g}"),
            Some(c) => {
                let p = |v: &serde_json::Value| (v["t"].as_i64().unwrap(), v["v"].as_f64());
                assert_eq!(p(&g["first"]), (c.first.t, c.first.v), "column {i}");
                assert_eq!(p(&g["last"]), (c.last.t, c.last.v), "column {i}");
                assert_eq!(g["min"].as_f64(), Some(c.min), "column {i}");
                assert_eq!(g["max"].as_f64(), Some(c.max), "column {i}");
            }
        }
    }
}
