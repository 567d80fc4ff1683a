//! `[serve]`: the read-only web view and API of `recalcd serve`.
//!
//! ```toml
//! [serve]
//! listen = "127.0.0.1:9188"
//! # token = "…"      # optional: every API request needs `Authorization: Bearer …`
//! pool_size = 8
//! ```

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[serve]` as written.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawServe {
    /// `serve.listen`: an IP address and port (port 0: any free port, printed at start).
    pub listen: String,
    /// `serve.token`: the bearer token the API requires; none when absent or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `serve.pool_size`: connections to each store (data and index) at most.
    pub pool_size: u64,
}

impl fmt::Debug for RawServe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawServe")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| Token::MASK))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// `[serve]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Where `recalcd serve` listens.
    pub listen: SocketAddr,
    /// The bearer token the API requires, if any.
    pub token: Option<Token>,
    /// Connections to each store at most (so at most this many queries at once).
    pub pool_size: usize,
}

/// A bearer token: compared in constant time, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// What stands for the token wherever it would be shown.
    pub const MASK: &'static str = "***";

    /// The token itself, for comparing and for scrubbing it from messages.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token. Takes the same time for every `given` of the same
    /// length (every byte is compared), so the time an answer takes tells nothing of
    /// how much of a guess was right.
    pub fn matches(&self, given: &[u8]) -> bool {
        let want = self.0.as_bytes();
        let mut diff = u8::from(want.len() != given.len());
        for (i, w) in want.iter().enumerate() {
            diff |= w ^ given.get(i).copied().unwrap_or(!w);
        }
        diff == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MASK)
    }
}

impl RawServe {
    /// Checks the section.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(self) -> Result<ServeConfig, ConfigError> {
        let invalid = |key: &'static str, reason: String| ConfigError::Invalid { key, reason };
        let text = self.listen.trim();
        let listen = text.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "serve.listen",
                format!("`{text}` is not an address (use e.g. `127.0.0.1:9188`, `0.0.0.0:9188`, `[::1]:9188`)"),
            )
        })?;
        let token = match self.token.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) if t.chars().any(|c| c.is_control() || c == ' ') => {
                return Err(invalid(
                    "serve.token",
                    "holds a space or a control character (a bearer token is one word)".into(),
                ))
            }
            Some(t) => Some(Token(t.to_string())),
        };
        let pool_size = usize::try_from(self.pool_size)
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| invalid("serve.pool_size", "must be between 1 and 1000".into()))?;
        Ok(ServeConfig {
            listen,
            token,
            pool_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(listen: &str, token: Option<&str>) -> RawServe {
        RawServe {
            listen: listen.into(),
            token: token.map(Into::into),
            pool_size: 8,
        }
    }

    #[test]
    fn the_token_matches_only_itself_and_is_never_printed() {
        let c = raw("127.0.0.1:0", Some("s3cret")).validate().unwrap();
        let t = c.token.clone().unwrap();
        assert!(t.matches(b"s3cret"));
        for wrong in [&b""[..], b"s3cre", b"s3cret!", b"S3cret", b"\0\0\0\0\0\0"] {
            assert!(!t.matches(wrong), "{wrong:?}");
        }
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!format!("{:?}", raw("127.0.0.1:0", Some("s3cret"))).contains("s3cret"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = raw("localhost:9188", None).validate().unwrap_err();
        assert!(e.to_string().contains("serve.listen"), "{e}");
        let e = raw("127.0.0.1:9188", Some("a b")).validate().unwrap_err();
        assert!(e.to_string().contains("serve.token"), "{e}");
        let mut r = raw("127.0.0.1:9188", None);
        r.pool_size = 0;
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .contains("serve.pool_size"));
        assert_eq!(
            raw("127.0.0.1:9188", Some("  ")).validate().unwrap().token,
            None
        );
    }
}
