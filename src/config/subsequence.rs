//! `[[index.subsequence]]`: the stored sliding-window DFT indexes (subsequence matching,
//! `recalcd match --metric euclid --within D`).
//!
//! ```toml
//! [[index.subsequence]]
//! channel = "tmp"      # a data-level channel
//! window = 64          # w: values per sliding window (default 64, at least 2)
//! coefficients = 4     # f: DFT coefficients kept per window (default 4, 1 ≤ f ≤ w/2)
//! group = 64           # g: consecutive windows per stored box (default 64)
//! devices = [7, 9]     # optional; default every device
//! ```

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The default `window`.
pub const DEFAULT_WINDOW: usize = 64;
/// The default `coefficients`.
pub const DEFAULT_COEFFICIENTS: usize = 4;
/// The default `group`.
pub const DEFAULT_GROUP: usize = 64;

/// One `[[index.subsequence]]` table as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubsequenceIndex {
    /// The data-level `conjoined` name it indexes.
    pub channel: String,
    /// Values per sliding window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
    /// DFT coefficients kept per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coefficients: Option<i64>,
    /// Consecutive windows per box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<i64>,
    /// The devices indexed; default every device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<i64>>,
}

/// The parameters of a window index: `w`, `f`, `g`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowParams {
    /// Values per window.
    pub window: usize,
    /// Coefficients kept.
    pub coefficients: usize,
    /// Windows per box.
    pub group: usize,
}

impl std::fmt::Display for WindowParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "window={} coefficients={} group={}",
            self.window, self.coefficients, self.group
        )
    }
}

impl WindowParams {
    /// The parameters read back from a catalogue's text ([`SubsequenceIndexConfig::params_text`]).
    pub fn parse(text: &str) -> Option<WindowParams> {
        let mut it = text.split_whitespace();
        let mut field = |name: &str| -> Option<usize> {
            it.next()?
                .strip_prefix(name)?
                .strip_prefix('=')?
                .parse()
                .ok()
        };
        let p = WindowParams {
            window: field("window")?,
            coefficients: field("coefficients")?,
            group: field("group")?,
        };
        (p.coefficients >= 1 && 2 * p.coefficients <= p.window && p.group >= 1).then_some(p)
    }
}

/// Whether the devices of a catalogue's parameter text (` devices=7,9`, none: every
/// device) include `id`.
pub fn covers_in(params: &str, id: i32) -> bool {
    params
        .split_whitespace()
        .find_map(|f| f.strip_prefix("devices="))
        .is_none_or(|list| list.split(',').any(|d| d.parse() == Ok(id)))
}

/// One declared subsequence index.
#[derive(Debug, Clone, PartialEq)]
pub struct SubsequenceIndexConfig {
    /// The channel as declared (compared case-insensitively).
    pub channel: String,
    /// Its window, coefficients and group.
    pub params: WindowParams,
    /// The devices indexed, sorted; `None`: every device.
    pub devices: Option<Vec<i32>>,
}

impl SubsequenceIndexConfig {
    /// Whether device `id` is indexed.
    pub fn covers(&self, id: i32) -> bool {
        self.devices
            .as_ref()
            .is_none_or(|d| d.binary_search(&id).is_ok())
    }

    /// The parameters as the catalogue records them: `window=64 coefficients=4
    /// group=64`, then ` devices=7,9` when not every device is indexed.
    pub fn params_text(&self) -> String {
        format!(
            "{}{}",
            self.params,
            super::index::devices_text(self.devices.as_deref())
        )
    }
}

/// Checks the declared subsequence indexes.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the index (its channel) and the key at fault.
pub fn validate(raw: Vec<RawSubsequenceIndex>) -> Result<Vec<SubsequenceIndexConfig>, ConfigError> {
    let invalid = |key: &'static str, reason: String| ConfigError::Invalid { key, reason };
    let mut out: Vec<SubsequenceIndexConfig> = Vec::with_capacity(raw.len());
    for (n, r) in raw.into_iter().enumerate() {
        let channel = super::index::channel_of(
            &r.channel,
            n,
            "index.subsequence.channel",
            out.iter().map(|f| f.channel.as_str()),
        )?;
        let window = r.window.unwrap_or(DEFAULT_WINDOW as i64);
        if !(2..=1 << 20).contains(&window) {
            return Err(invalid(
                "index.subsequence.window",
                format!("index `{channel}`: window {window} must be 2 to 1048576 values"),
            ));
        }
        let coefficients = r.coefficients.unwrap_or(DEFAULT_COEFFICIENTS as i64);
        if !(1..=window / 2).contains(&coefficients) {
            return Err(invalid(
                "index.subsequence.coefficients",
                format!(
                    "index `{channel}`: coefficients {coefficients} must be 1 to window/2 = {}",
                    window / 2
                ),
            ));
        }
        let group = r.group.unwrap_or(DEFAULT_GROUP as i64);
        if !(1..=1 << 20).contains(&group) {
            return Err(invalid(
                "index.subsequence.group",
                format!("index `{channel}`: group {group} must be 1 to 1048576 windows"),
            ));
        }
        let devices = super::index::devices(r.devices, "index.subsequence.devices", &channel)?;
        out.push(SubsequenceIndexConfig {
            channel,
            params: WindowParams {
                window: window as usize,
                coefficients: coefficients as usize,
                group: group as usize,
            },
            devices,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(channel: &str) -> RawSubsequenceIndex {
        RawSubsequenceIndex {
            channel: channel.into(),
            ..RawSubsequenceIndex::default()
        }
    }

    #[test]
    fn declarations_validate_with_defaults_and_read_back() {
        let c = validate(vec![raw("tmp")]).unwrap();
        assert_eq!(c[0].params_text(), "window=64 coefficients=4 group=64");
        assert_eq!(WindowParams::parse(&c[0].params_text()), Some(c[0].params));
        let mut r = raw("p");
        r.window = Some(8);
        r.coefficients = Some(4);
        r.group = Some(3);
        r.devices = Some(vec![9, 7]);
        let c = validate(vec![r]).unwrap();
        assert_eq!(
            c[0].params_text(),
            "window=8 coefficients=4 group=3 devices=7,9"
        );
        assert_eq!(WindowParams::parse(&c[0].params_text()), Some(c[0].params));
        assert!(c[0].covers(7) && !c[0].covers(8));
        assert!(covers_in(&c[0].params_text(), 9) && !covers_in(&c[0].params_text(), 8));
        assert!(covers_in("window=8 coefficients=4 group=3", 8));
        assert_eq!(WindowParams::parse("window=8 coefficients=5 group=3"), None);
        assert_eq!(WindowParams::parse("length=8"), None);
    }

    #[test]
    fn bad_values_name_the_key() {
        let bad = |f: &dyn Fn(&mut RawSubsequenceIndex)| {
            let mut r = raw("tmp");
            f(&mut r);
            validate(vec![r]).unwrap_err().to_string()
        };
        for (e, key) in [
            (bad(&|r| r.window = Some(1)), "index.subsequence.window"),
            (
                bad(&|r| r.coefficients = Some(0)),
                "index.subsequence.coefficients",
            ),
            (
                bad(&|r| r.coefficients = Some(33)),
                "index.subsequence.coefficients",
            ),
            (bad(&|r| r.group = Some(0)), "index.subsequence.group"),
            (
                bad(&|r| r.devices = Some(vec![])),
                "index.subsequence.devices",
            ),
            (
                bad(&|r| r.channel = "a=b".into()),
                "index.subsequence.channel",
            ),
        ] {
            assert!(e.contains(key), "{e}");
        }
        let e = validate(vec![raw("p"), raw("P")]).unwrap_err().to_string();
        assert!(e.contains("declared twice"), "{e}");
    }
}
