//! Connection strings: what a user writes in `database.url`, and what recalcd may show of it.
//!
//! PostgreSQL accepts two forms, and so does recalcd: a URL
//! (`postgres://user:password@host:port/dbname?param=value`, also with the password as a
//! `?password=` parameter) and libpq key/value pairs (`host=h user=u password='a b'`,
//! values quoted with `'`, `\` escaping the next character, spaces allowed around `=`).
//! Finding the password in that text by hand is how passwords leak: an unencoded `/`,
//! a quoted value with a space, a `\ ` escape each fooled such a scanner. So nothing here
//! reads the text: the driver parses it ([`tokio_postgres::Config`], the parser that also
//! connects), and both things recalcd derives for output come from that parsed form —
//!
//! - [`ConnectionString::display`]: a URL naming the user, hosts, ports and database,
//!   with `***` where a password is set; never the text as written;
//! - [`ConnectionString::secrets`]: the password(s) to scrub from messages of others
//!   (the driver's, the configuration loader's) before they are printed.

use std::fmt::Write as _;

/// A parsed connection string (URL or key/value form).
#[derive(Clone)]
pub struct ConnectionString {
    /// The driver's reading of the text: what a connection would actually use.
    parsed: tokio_postgres::Config,
}

/// What a connection string shows in place of a password.
pub const PASSWORD_MASK: &str = "***";

impl ConnectionString {
    /// Parses `text` as the driver does (URL first, then key/value pairs).
    ///
    /// # Errors
    /// The driver's complaint; it names an option or a byte position, not the text.
    pub fn parse(text: &str) -> Result<Self, tokio_postgres::Error> {
        text.trim()
            .parse()
            .map(|parsed| ConnectionString { parsed })
    }

    /// The parsed configuration, to connect with.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.parsed
    }

    /// Whether a password is set (in any of the forms).
    pub fn has_password(&self) -> bool {
        self.parsed.get_password().is_some()
    }

    /// A URL for logs and messages: user, hosts, ports and database, with
    /// [`PASSWORD_MASK`] in place of a password. Other parameters are left out.
    pub fn display(&self) -> String {
        self.url_with_password(self.has_password().then_some(PASSWORD_MASK))
    }

    /// The same URL with `password` written in as given (not encoded: pass a
    /// placeholder such as `PASSWORD`), or without a password at all.
    pub fn url_with_password(&self, password: Option<&str>) -> String {
        let mut url = String::from("postgres://");
        if let Some(user) = self.parsed.get_user() {
            url.push_str(&encode(user.as_bytes()));
            if let Some(password) = password {
                url.push(':');
                url.push_str(password);
            }
            url.push('@');
        } else if let Some(password) = password {
            url.push(':');
            url.push_str(password);
            url.push('@');
        }
        let hosts: Vec<String> = if self.parsed.get_hosts().is_empty() {
            // `hostaddr` alone names the server by address.
            self.parsed
                .get_hostaddrs()
                .iter()
                .map(|a| match a {
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                    std::net::IpAddr::V4(v4) => v4.to_string(),
                })
                .collect()
        } else {
            self.parsed.get_hosts().iter().map(host_text).collect()
        };
        let ports = self.parsed.get_ports();
        for (i, host) in hosts.iter().enumerate() {
            if i > 0 {
                url.push(',');
            }
            url.push_str(host);
            // One port applies to every host; otherwise there is one per host.
            if let Some(port) = ports.get(i).or(ports.first().filter(|_| ports.len() == 1)) {
                let _ = write!(url, ":{port}");
            }
        }
        if hosts.is_empty() {
            if let [port] = ports {
                let _ = write!(url, ":{port}");
            }
        }
        if let Some(db) = self.parsed.get_dbname() {
            url.push('/');
            url.push_str(&encode(db.as_bytes()));
        }
        url
    }

    /// The secrets to scrub from any message before it is shown: the password as the
    /// server receives it and as it is written percent-encoded in a URL. Empty without a
    /// password.
    pub fn secrets(&self) -> Vec<String> {
        let Some(password) = self.parsed.get_password() else {
            return Vec::new();
        };
        let plain = String::from_utf8_lossy(password).into_owned();
        let encoded = encode(password);
        let mut secrets = vec![plain];
        if !secrets.contains(&encoded) {
            secrets.push(encoded);
        }
        secrets.retain(|s| !s.is_empty());
        secrets
    }

    /// Whether a host holds an `@`: the sign of a URL whose password has an unencoded `@`
    /// (the driver ends the password at the first `@`, so the rest became the host).
    pub fn hosts_with_at(&self) -> bool {
        self.parsed
            .get_hosts()
            .iter()
            .any(|h| matches!(h, tokio_postgres::config::Host::Tcp(name) if name.contains('@')))
    }
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// `text`'s displayable form ([`ConnectionString::display`]); a string that does not
/// parse is not shown at all.
pub fn display(text: &str) -> String {
    ConnectionString::parse(text).map_or_else(
        |_| "(a connection string that does not parse)".to_owned(),
        |c| c.display(),
    )
}

/// The secrets of `text` ([`ConnectionString::secrets`]); none if it does not parse
/// (such a string is never shown, see [`display`]).
pub fn secrets(text: &str) -> Vec<String> {
    ConnectionString::parse(text).map_or_else(|_| Vec::new(), |c| c.secrets())
}

fn host_text(host: &tokio_postgres::config::Host) -> String {
    match host {
        tokio_postgres::config::Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
        tokio_postgres::config::Host::Tcp(name) => encode(name.as_bytes()),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(path) => encode(path.as_os_str().as_encoded_bytes()),
    }
}

/// Percent-encodes every byte but the URL's unreserved ones (letters, digits, `-._~`).
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form of the grammar that carries a password, with the password the
    /// server receives.
    const FORMS: &[(&str, &str)] = &[
        // URLs, unencoded odd characters (the driver ends the userinfo at the first `@`).
        ("postgres://postgres:ab/cdSECRET@host/db", "ab/cdSECRET"),
        ("postgresql://u:a:b?c#d@h:5433/db", "a:b?c#d"),
        ("postgres://u:semi;colon&amp=x@h/db", "semi;colon&amp=x"),
        ("postgres://u:Top Secret@h/db", "Top Secret"),
        ("postgres://u:100%zz@h/db", "100%zz"),
        // URLs, percent-encoded.
        ("postgres://u:p%40ss%2Fw%20rd@h/db", "p@ss/w rd"),
        ("postgres://u:%E2%82%AC-euro@h/db", "€-euro"),
        // The query parameter, alone and beside userinfo (the later one wins).
        ("postgres://u@h/db?password=QuerySecret", "QuerySecret"),
        (
            "postgres://u@h/db?sslmode=disable&password=Q%20S%26x",
            "Q S&x",
        ),
        (
            "postgres://u:first@h/db?password=SecondSecret",
            "SecondSecret",
        ),
        // Key/value pairs: quotes, escapes, spaces around `=`.
        ("host=h user=u password=plainSecret dbname=d", "plainSecret"),
        ("host=h password='Top Secret' dbname=d", "Top Secret"),
        ("host=h password=Top\\ Secret dbname=d", "Top Secret"),
        ("host=h password = 'Top Secret' dbname=d", "Top Secret"),
        ("host=h password   =   'Top Secret'", "Top Secret"),
        ("password='it\\'s \\\\ secret' host=h", "it's \\ secret"),
        ("host=h password='' user=u", ""),
        ("\thost=h\npassword='tab\tand space' ", "tab\tand space"),
    ];

    #[test]
    fn every_form_yields_its_password_and_never_shows_it() {
        for (text, password) in FORMS {
            let c = ConnectionString::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let secrets = c.secrets();
            if password.is_empty() {
                assert!(secrets.is_empty(), "{text}: {secrets:?}");
            } else {
                assert!(
                    secrets.contains(&password.to_string()),
                    "{text}: {secrets:?}"
                );
            }
            let shown = c.display();
            assert!(shown.contains(":***@"), "{text} shown as {shown}");
            for word in password.split_whitespace().filter(|w| w.len() > 1) {
                assert!(!shown.contains(word), "{text} shown as {shown}");
            }
            for secret in &secrets {
                assert!(!shown.contains(secret.as_str()), "{text} shown as {shown}");
            }
            assert!(!format!("{c:?}").contains(password) || password.is_empty());
            assert_eq!(display(text), shown);
            assert_eq!(super::secrets(text), secrets);
        }
    }

    #[test]
    fn the_display_names_the_server() {
        assert_eq!(
            display("postgres://postgres:ab/cdSECRET@host/db"),
            "postgres://postgres:***@host:5432/db"
        );
        assert_eq!(
            display("host=h1,h2 port=5433,5434 user='a b' password=x dbname=my\\ db"),
            "postgres://a%20b:***@h1:5433,h2:5434/my%20db"
        );
        assert_eq!(
            display("postgres://u@[::1]:5433/db"),
            "postgres://u@[::1]:5433/db"
        );
        assert_eq!(
            display("postgres://u@%2Fvar%2Frun%2Fpostgresql/db"),
            "postgres://u@%2Fvar%2Frun%2Fpostgresql:5432/db"
        );
        assert_eq!(
            display("hostaddr=10.0.0.1 port=1 user=u"),
            "postgres://u@10.0.0.1:1"
        );
        assert_eq!(display("host=h password=x"), "postgres://:***@h");
        assert_eq!(
            display("host=h password='unterminated"),
            "(a connection string that does not parse)"
        );
        assert!(super::secrets("host=h password='unterminated").is_empty());
    }

    #[test]
    fn a_placeholder_goes_where_the_password_goes() {
        let c = ConnectionString::parse("host=h user=u password='Top Secret' dbname=d").unwrap();
        assert_eq!(
            c.url_with_password(Some("PASSWORD")),
            "postgres://u:PASSWORD@h/d"
        );
        assert_eq!(c.url_with_password(None), "postgres://u@h/d");
    }

    #[test]
    fn the_encoded_form_is_a_secret_too() {
        let c = ConnectionString::parse("postgres://u:p%40ss@h/db").unwrap();
        assert_eq!(c.secrets(), vec!["p@ss".to_owned(), "p%40ss".to_owned()]);
    }

    #[test]
    fn an_unencoded_at_shows_in_the_host() {
        let c = ConnectionString::parse("postgres://u:p@ss@h/db").unwrap();
        assert!(c.hosts_with_at());
        assert!(!ConnectionString::parse("postgres://u:p%40ss@h/db")
            .unwrap()
            .hosts_with_at());
    }
}
