//! No password in any output of the real binary: start-up logs, retry errors, one-line
//! errors and the demo's follow-up commands, for every form of connection string.

use std::process::{Command, Output};

/// A port nothing listens on.
const CLOSED: &str = "127.0.0.1:1";

/// Connection strings to the closed port with their passwords, one per form of the
/// grammar: URLs with unencoded and percent-encoded odd passwords, the `?password=`
/// parameter, and key/value pairs with quotes, escapes and spaces around `=`.
fn forms() -> Vec<(String, &'static str)> {
    vec![
        (
            format!("postgres://postgres:ab/cdSECRET@{CLOSED}/db"),
            "ab/cdSECRET",
        ),
        (
            format!("postgres://u:pa%40ss%2FSECRET@{CLOSED}/db"),
            "pa@ss/SECRET",
        ),
        (
            format!("postgres://u:a:b?SECRET#x@{CLOSED}/db"),
            "a:b?SECRET#x",
        ),
        (
            format!("postgres://u@{CLOSED}/db?password=QuerySECRET"),
            "QuerySECRET",
        ),
        (
            "host=127.0.0.1 port=1 user=u password='Top Secret' dbname=db".into(),
            "Top Secret",
        ),
        (
            "host=127.0.0.1 port=1 user=u password=Top\\ Secret dbname=db".into(),
            "Top Secret",
        ),
        (
            "host=127.0.0.1 port=1 user=u password = 'Top Secret' dbname=db".into(),
            "Top Secret",
        ),
    ]
}

fn recalcd(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recalcd"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RECALCD_CONFIG");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RECALCD__") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(envs.iter().copied())
        .output()
        .expect("run recalcd")
}

/// Neither the password nor any word of it (nor its percent-encoded form) in `o`'s output.
fn assert_no_secret(o: &Output, password: &str, what: &str) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!all.contains(password), "{what}: {all}");
    for word in password.split([' ', '/', '@', ':', '?', '#']) {
        if word.len() > 2 {
            assert!(!all.contains(word), "{what}: `{word}` in {all}");
        }
    }
    assert!(
        !all.contains("SECRET") && !all.contains("Secret"),
        "{what}: {all}"
    );
}

#[test]
fn a_failing_connection_never_shows_the_password() {
    for (url, password) in forms() {
        let o = recalcd(&["status", "--database-url", &url], &[]);
        assert_eq!(o.status.code(), Some(1), "{url}");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            err.contains("cannot connect to postgres://"),
            "{url}: {err}"
        );
        assert!(err.contains(":***@127.0.0.1:1"), "{url}: {err}");
        assert_no_secret(&o, password, &url);

        // Through the environment and a configuration file too.
        let o = recalcd(&["migrate"], &[("RECALCD__DATABASE__URL", &url)]);
        assert_eq!(o.status.code(), Some(1), "{url}");
        assert_no_secret(&o, password, &url);
    }
}

#[test]
fn the_daemon_logs_no_password_at_start_or_in_retries() {
    for (url, password) in forms() {
        let o = recalcd(
            &["run", "--database-url", &url],
            &[
                ("RECALCD__LOG__LEVEL", "debug"),
                ("RECALCD__HTTP__LISTEN", "off"),
                ("RECALCD__DATABASE__GIVE_UP_AFTER", "1s"),
                ("RECALCD__POLL__MAX_BACKOFF", "250ms"),
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{url}");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        // It started, logged where it connects, retried and gave up.
        assert!(err.matches("127.0.0.1:1").count() >= 3, "{url}: {err}");
        assert_no_secret(&o, password, &url);
    }
}

#[test]
fn a_bad_connection_string_is_refused_without_showing_it() {
    for url in [
        "host=127.0.0.1 password='Top SECRET",
        "postgres://u:p@SECRET@127.0.0.1/db",
        "postgres://u:SECRET@127.0.0.1:port/db",
    ] {
        let o = recalcd(&["status", "--database-url", url], &[]);
        assert_eq!(o.status.code(), Some(2), "{url}");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(err.contains("`database.url`"), "{url}: {err}");
        assert_no_secret(&o, "SECRET", url);
    }
}

#[test]
fn a_bad_log_level_stops_with_exit_2_naming_the_key() {
    for level in ["inof", "verbose", "recalcd=loud"] {
        let o = recalcd(
            &["once", "--database-url", "postgres://u@127.0.0.1:1/db"],
            &[("RECALCD__LOG__LEVEL", level)],
        );
        assert_eq!(o.status.code(), Some(2), "{level}");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("`log.level`"), "{err}");
        assert!(!err.contains("cannot connect"), "{err}");
    }
    let dir = std::env::temp_dir().join(crate::support::unique("recalcd-level-"));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("recalcd.toml");
    std::fs::write(&path, "[log]\nlevel = \"inof\"\n").expect("write the file");
    let o = recalcd(&["run", "--config", &path.to_string_lossy()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`log.level`"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_demo_prints_pastable_commands_without_the_password() {
    let password = "Kq/7z SECRET";
    let server = recalcd::demo::TempServer::start_with_password(password)
        .expect("the machine has PostgreSQL installed");
    let port = server
        .url()
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned)
        .expect("a port in the URL");
    let url =
        format!("host=127.0.0.1 port={port} user=postgres password='{password}' dbname=postgres");
    let o = recalcd(
        &[
            "demo",
            "--devices",
            "1",
            "--days",
            "1",
            "--jobs-per-day",
            "1",
            "--database-url",
            &url,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_no_secret(&o, password, "demo");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("export DATABASE_URL='"))
        .unwrap_or_else(|| panic!("no export line in:\n{out}"));
    assert!(line.contains("in place of PASSWORD"), "{line}");
    let pasted = line
        .split('\'')
        .nth(1)
        .expect("a quoted URL")
        .replace("PASSWORD", "Kq%2F7z%20SECRET");
    // The printed commands read DATABASE_URL: with the password put in, they work.
    let o = Command::new(env!("CARGO_BIN_EXE_recalcd"))
        .arg("status")
        .env("DATABASE_URL", &pasted)
        .env("RECALCD__LOG__LEVEL", "warn")
        .output()
        .expect("run recalcd");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("  recalcd status\n"), "{out}");
}
