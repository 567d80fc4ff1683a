//! `recalcd serve`'s page in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`). The page loads, draws the coarsest frame and then the final one,
//! is zoomed by dragging the mouse across it and refines again, shades a condition's
//! matches; each time the test compares what the page drew (its `window.recalcdState`)
//! with the API's answer, and checks that a screenshot is not blank.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Where
//! they are missing the test says `skipped: …` — unless `CI=true`, where it fails.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::serve::{config_file, load, Server};
use crate::support::Harness;

/// A program on `PATH`, by its first name found.
fn program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    })
}

/// A headless Chromium session through `chromedriver`, ended when dropped.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

impl Browser {
    /// Starts `chromedriver` on a free port and a headless Chromium session; `None`
    /// (skipped) where they are not installed, a failure with `CI=true`.
    fn start() -> Option<Browser> {
        let (Some(chromium), Some(chromedriver)) = (
            program(&["chromium", "chromium-browser"]),
            program(&["chromedriver"]),
        ) else {
            let why = "chromium or chromedriver is not installed (Debian: apt-get install chromium chromium-driver)";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: {why}"
            );
            eprintln!("skipped: {why}");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = b
                .agent
                .get(format!("{}/status", b.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"]
            }
        }}});
        let created = b.call("POST", "/session", Some(caps));
        b.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Some(b)
    }

    /// A WebDriver command; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let resp = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let mut text = String::new();
        resp.body_mut()
            .as_reader()
            .read_to_string(&mut text)
            .expect("WebDriver answer");
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(status == 200, "{method} {path}: {status} {text}");
        v["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn open(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({ "url": url })),
        );
    }

    /// Runs `script` (a function body) in the page; what it returns.
    fn exec(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Polls `script` until it returns something other than `null`; fails on an
    /// `{"error": …}` answer or after a minute.
    fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.exec(script);
            if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
                panic!("{what}: the page says: {e}");
            }
            if !v.is_null() {
                return v;
            }
            assert!(Instant::now() < deadline, "{what}: timed out");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The page's state once the final frame of a load after `seq` is drawn.
    fn final_after(&self, seq: u64) -> Value {
        self.wait_for(
            "the final frame",
            &format!(
                "const s = window.recalcdState;
                 if (!s) return null;
                 if (s.phase === 'error') return {{error: s.error}};
                 return s.phase === 'final' && s.seq > {seq} ? JSON.parse(JSON.stringify(s)) : null;"
            ),
        )
    }

    /// Drags the mouse across the chart, from `from` to `to` pixels right of the
    /// canvas's centre.
    fn drag(&self, from: i64, to: i64) {
        let rect = self.exec(
            "const r = document.getElementById('chart').getBoundingClientRect();
             return [Math.round(r.left + r.width / 2), Math.round(r.top + r.height / 2)];",
        );
        let (cx, cy) = (rect[0].as_i64().unwrap(), rect[1].as_i64().unwrap());
        let actions = json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "duration": 0, "origin": "viewport", "x": cx + from, "y": cy},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerMove", "duration": 150, "origin": "viewport", "x": cx + (from + to) / 2, "y": cy + 10},
                {"type": "pointerMove", "duration": 150, "origin": "viewport", "x": cx + to, "y": cy + 20},
                {"type": "pointerUp", "button": 0}
            ]
        }]});
        self.call("POST", &self.session_path("/actions"), Some(actions));
    }

    /// A screenshot of the window, decoded: (width, height, RGBA bytes) and the PNG.
    fn screenshot(&self) -> ((u32, u32, Vec<u8>), Vec<u8>) {
        let b64 = self.call("GET", &self.session_path("/screenshot"), None);
        let png_bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64"))
            .expect("base64 PNG");
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes.clone()));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
        let mut reader = decoder.read_info().expect("PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("PNG frame");
        buf.truncate(info.buffer_size());
        ((info.width, info.height, buf), png_bytes)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Whether two JSON values are equal, numbers compared as numbers (the page writes
/// `20` where the API wrote `20.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The page drew what the API answers for its view: the final frame's columns, all of
/// them with a value drawn.
fn check_against_api(server: &Server, state: &Value) {
    let width = state["width"].as_u64().expect("width").to_string();
    let id = state["id"].as_i64().expect("id").to_string();
    let api = server.json(
        "/api/plot",
        &[
            ("channel", "tmp"),
            ("id", &id),
            ("from", state["from"].as_str().unwrap()),
            ("to", state["to"].as_str().unwrap()),
            ("width", &width),
            ("step", "final"),
        ],
        200,
    );
    let frame = &api["frames"][0];
    assert_eq!(frame["exact"], true);
    assert!(
        same(&frame["columns"], &state["columns"]),
        "the page's columns differ from the API's"
    );
    let with_value = frame["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c.is_null())
        .count();
    assert!(with_value > 0, "nothing to draw: {state}");
    assert_eq!(state["drawn"].as_u64(), Some(with_value as u64));
}

/// The frames the page drew for load `seq`: coarse first, final and exact last.
fn check_progression(state: &Value) {
    let seq = state["seq"].as_u64().unwrap();
    let frames: Vec<&Value> = state["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["seq"].as_u64() == Some(seq))
        .collect();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0]["phase"], "coarse");
    assert_eq!(frames[0]["step"], 0);
    assert_eq!(frames[1]["phase"], "final");
    assert_eq!(frames[1]["exact"], true);
}

/// Pixels of the canvas matching `test` (r, g, b), counted in the page.
fn canvas_pixels(b: &Browser, test: &str) -> u64 {
    b.exec(&format!(
        "const c = document.getElementById('chart');
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
         let n = 0;
         for (let i = 0; i < d.length; i += 4) {{
           const r = d[i], g = d[i + 1], b = d[i + 2];
           if ({test}) n++;
         }}
         return n;"
    ))
    .as_u64()
    .expect("a count")
}

#[test]
fn the_page_draws_coarse_then_final_zooms_and_shades_matches() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let h = Harness::postgres_blocking();
    let config = config_file("");
    load(&h, &config);
    let server = Server::start(&h, &config);
    let view = "channel=tmp&id=5&from=2024-03-01T00:00:00&to=2024-03-03T00:00:00";
    browser.open(&format!("{}/#{view}", server.base));

    // Loaded: the coarsest frame first, then the final one in place.
    let first = browser.final_after(0);
    check_progression(&first);
    check_against_api(&server, &first);
    assert_eq!(first["from"], "2024-03-01T00:00:00");
    assert!(
        first["level"].as_u64().is_some(),
        "drawn from the index: {first}"
    );
    let line = "b > 150 && r < 100";
    assert!(canvas_pixels(&browser, line) > 300, "the line is not drawn");

    // Zoomed by dragging across a fifth of the chart: refined again.
    browser.drag(-300, -100);
    let zoomed = browser.final_after(first["seq"].as_u64().unwrap());
    check_progression(&zoomed);
    check_against_api(&server, &zoomed);
    let micros = |v: &Value| {
        recalcd::index::micros(recalcd::index::parse_time(v.as_str().unwrap(), false).unwrap())
    };
    let (a, b) = (micros(&first["from"]), micros(&first["to"]));
    let (c, d) = (micros(&zoomed["from"]), micros(&zoomed["to"]));
    assert!(a < c && c < d && d < b, "zoomed to {zoomed}");
    let share = (d - c) as f64 / (b - a) as f64;
    let expected = 200.0 / first["width"].as_f64().unwrap();
    assert!(
        (share - expected).abs() < 0.02,
        "zoomed to {share} of the range"
    );
    let hash = browser.exec("return decodeURIComponent(location.hash);");
    assert!(
        hash.as_str()
            .unwrap()
            .contains(zoomed["from"].as_str().unwrap()),
        "the address does not hold the view: {hash}"
    );

    // A condition: its matches shaded, the same as the API's search.
    let cond = "MAX(1m) >= 30";
    browser.exec(&format!(
        "location.hash = '{view}&where=' + encodeURIComponent('{cond}');"
    ));
    let shaded = browser.wait_for(
        "the matches",
        &format!(
            "const s = window.recalcdState;
             if (s.phase === 'error') return {{error: s.error}};
             return s.phase === 'final' && s.seq > {} && s.search ? JSON.parse(JSON.stringify(s)) : null;",
            zoomed["seq"]
        ),
    );
    check_against_api(&server, &shaded);
    let api = server.json(
        "/api/search",
        &[
            ("channel", "tmp"),
            ("id", "5"),
            ("from", "2024-03-01T00:00:00"),
            ("to", "2024-03-03T00:00:00"),
            ("where", cond),
        ],
        200,
    );
    assert!(!api["matches"].as_array().unwrap().is_empty());
    assert_eq!(shaded["matches"], api["matches"]);
    let orange = "r > 240 && g > 190 && g < 240 && b > 150 && b < 215";
    assert!(canvas_pixels(&browser, orange) > 100, "no match is shaded");

    // A screenshot of the page is not blank: many pixels of several colours.
    let ((w, hgt, rgba), png) = browser.screenshot();
    let pixels = (w * hgt) as usize;
    let inked = rgba
        .chunks(4)
        .filter(|p| p[0] < 200 || p[1] < 200 || p[2] < 200)
        .count();
    let blue = rgba.chunks(4).filter(|p| p[2] > 150 && p[0] < 100).count();
    assert!(
        inked > pixels / 200,
        "the screenshot is blank: {inked} of {pixels} inked"
    );
    assert!(
        blue > 300,
        "the screenshot shows no line: {blue} blue pixels"
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join("serve-page.png"), png).expect("keep the screenshot");
    server.stop();
}
