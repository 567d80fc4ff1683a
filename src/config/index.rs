//! `[index]`: the indexes declared over recalculated channels.
//!
//! ```toml
//! [index]
//! # database_url = "postgres://…"   # default: the data store
//!
//! [[index.feature]]
//! channel = "tmp"
//! levels = ["1d", "1h", "10m", "1m"]
//! unit = "°C"          # optional
//! devices = [7, 9]     # optional; default every device
//! ```
//!
//! Validated like the rest of the configuration: [`RawIndex`] mirrors the file,
//! [`RawIndex::validate`] checks it and names the index and the level at fault.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::index::feature::{write_length, Levels};
use crate::index::Micros;

/// `[index]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawIndex {
    /// `index.database_url`: where the index tables live; default the data store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `[[index.feature]]`: one table per indexed channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature: Vec<RawFeatureIndex>,
    /// `[[index.similarity]]`: one table per channel whose jobs are compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub similarity: Vec<super::similarity::RawSimilarityIndex>,
    /// `[[index.subsequence]]`: one table per channel searched for patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsequence: Vec<super::subsequence::RawSubsequenceIndex>,
}

/// One `[[index.feature]]` table as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeatureIndex {
    /// The data-level `conjoined` name it indexes.
    pub channel: String,
    /// Bucket lengths, coarse to fine, e.g. `["1d", "1h", "10m", "1m"]`.
    pub levels: Vec<String>,
    /// The channel's unit, for plots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The devices indexed; default every device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<i64>>,
}

/// `[index]`, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexConfig {
    /// Where the index tables live; `None`: in the data store.
    pub database_url: Option<String>,
    /// The declared feature indexes, one per channel.
    pub feature: Vec<FeatureIndexConfig>,
    /// The declared similarity indexes, one per channel.
    pub similarity: Vec<super::similarity::SimilarityIndexConfig>,
    /// The declared subsequence indexes, one per channel.
    pub subsequence: Vec<super::subsequence::SubsequenceIndexConfig>,
}

/// One declared feature index.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureIndexConfig {
    /// The channel as declared (compared case-insensitively).
    pub channel: String,
    /// Its bucket lengths.
    pub levels: Levels,
    /// Its unit, for plots.
    pub unit: Option<String>,
    /// The devices indexed, sorted; `None`: every device.
    pub devices: Option<Vec<i32>>,
}

impl FeatureIndexConfig {
    /// Whether device `id` is indexed.
    pub fn covers(&self, id: i32) -> bool {
        self.devices
            .as_ref()
            .is_none_or(|d| d.binary_search(&id).is_ok())
    }

    /// The parameters as the catalogue records them: the levels, then the devices, e.g.
    /// `1d/1h/10m/1m` or `1d/1h devices=7,9`. Two builds with the same parameters
    /// hold comparable buckets.
    pub fn params(&self) -> String {
        format!("{}{}", self.levels, devices_text(self.devices.as_deref()))
    }
}

impl IndexConfig {
    /// The feature index declared for `channel` (case-insensitive).
    pub fn feature(&self, channel: &str) -> Option<&FeatureIndexConfig> {
        self.feature
            .iter()
            .find(|f| crate::conjoined::same_name(&f.channel, channel))
    }

    /// The similarity index declared for `channel` (case-insensitive).
    pub fn similarity(&self, channel: &str) -> Option<&super::similarity::SimilarityIndexConfig> {
        self.similarity
            .iter()
            .find(|f| crate::conjoined::same_name(&f.channel, channel))
    }

    /// The subsequence index declared for `channel` (case-insensitive).
    pub fn subsequence(
        &self,
        channel: &str,
    ) -> Option<&super::subsequence::SubsequenceIndexConfig> {
        self.subsequence
            .iter()
            .find(|f| crate::conjoined::same_name(&f.channel, channel))
    }

    /// The declared subsequence channels, for messages: `tmp, pressure`, or `none`.
    pub fn declared_subsequence(&self) -> String {
        if self.subsequence.is_empty() {
            return "none (declare one with [[index.subsequence]] in the configuration)".into();
        }
        let names: Vec<&str> = self
            .subsequence
            .iter()
            .map(|f| f.channel.as_str())
            .collect();
        names.join(", ")
    }

    /// The declared similarity channels, for messages: `tmp, pressure`, or `none`.
    pub fn declared_similarity(&self) -> String {
        if self.similarity.is_empty() {
            return "none (declare one with [[index.similarity]] in the configuration)".into();
        }
        let names: Vec<&str> = self.similarity.iter().map(|f| f.channel.as_str()).collect();
        names.join(", ")
    }

    /// The declared channels, for messages: `tmp, pressure`, or `none`.
    pub fn declared_channels(&self) -> String {
        if self.feature.is_empty() {
            return "none (declare one with [[index.feature]] in the configuration)".into();
        }
        let names: Vec<&str> = self.feature.iter().map(|f| f.channel.as_str()).collect();
        names.join(", ")
    }
}

impl RawIndex {
    /// Checks every declared index.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the index (its channel) and what is wrong.
    pub fn validate(self) -> Result<IndexConfig, ConfigError> {
        let invalid = |key: &'static str, reason: String| ConfigError::Invalid { key, reason };
        let database_url = match self.database_url {
            None => None,
            Some(u) if u.trim().is_empty() => None,
            Some(u) => {
                super::ConnectionString::parse(u.trim()).map_err(|e| {
                    let e = std::error::Error::source(&e)
                        .map_or_else(|| e.to_string(), |c| format!("{e}: {c}"));
                    invalid(
                        "index.database_url",
                        format!("not a connection string ({e})"),
                    )
                })?;
                Some(u.trim().to_string())
            }
        };
        let mut feature: Vec<FeatureIndexConfig> = Vec::with_capacity(self.feature.len());
        for (n, raw) in self.feature.into_iter().enumerate() {
            let channel = raw.channel.trim().to_string();
            if channel.is_empty() || channel.contains([';', '=']) {
                return Err(invalid(
                    "index.feature.channel",
                    format!(
                        "index {} has channel `{}`: a channel is a non-empty `conjoined` name without `;` or `=`",
                        n + 1,
                        raw.channel
                    ),
                ));
            }
            if let Some(other) = feature
                .iter()
                .find(|f| crate::conjoined::same_name(&f.channel, &channel))
            {
                return Err(invalid(
                    "index.feature.channel",
                    format!(
                        "channel `{channel}` is declared twice (as `{}` too; names compare case-insensitively)",
                        other.channel
                    ),
                ));
            }
            let mut lengths = Vec::with_capacity(raw.levels.len());
            for text in &raw.levels {
                let d = super::parse_duration(text).map_err(|r| {
                    invalid(
                        "index.feature.levels",
                        format!("index `{channel}`: level `{text}`: {r}"),
                    )
                })?;
                let micros = Micros::try_from(d.as_micros()).unwrap_or(Micros::MAX);
                lengths.push(micros);
            }
            let levels = Levels::new(lengths).map_err(|e| {
                let named = level_named(&e, &raw.levels);
                invalid(
                    "index.feature.levels",
                    format!("index `{channel}`: {named}{e} (e.g. levels = [\"1d\", \"1h\", \"10m\", \"1m\"])"),
                )
            })?;
            let devices = devices(raw.devices, "index.feature.devices", &channel)?;
            feature.push(FeatureIndexConfig {
                channel,
                levels,
                unit: raw.unit.filter(|u| !u.trim().is_empty()),
                devices,
            });
        }
        let similarity = super::similarity::validate(self.similarity)?;
        let subsequence = super::subsequence::validate(self.subsequence)?;
        Ok(IndexConfig {
            database_url,
            feature,
            similarity,
            subsequence,
        })
    }
}

/// `level "10m" (3rd): ` for the level a [`crate::index::feature::LevelsError`] names.
fn level_named(e: &crate::index::feature::LevelsError, texts: &[String]) -> String {
    use crate::index::feature::LevelsError as E;
    let at = match e {
        E::Empty => return String::new(),
        E::NotPositive(i) | E::NotAligned(i) => *i,
        E::NotDividing { fine, .. } => *fine,
    };
    texts
        .get(at)
        .map_or_else(String::new, |t| format!("level `{t}`: "))
}

/// A level length written back as the configuration spells it (`1d`, `10m`).
pub fn length_text(l: Micros) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_length(&mut s, l);
    s
}

/// The channel of the `n`-th (0-based) declaration of a similarity or subsequence index,
/// checked (`key` names it in errors): trimmed, a non-empty `conjoined` name without `;`
/// or `=`, not one of `declared` (compared case-insensitively).
///
/// # Errors
/// [`ConfigError::Invalid`] for a bad or repeated channel.
pub(super) fn channel_of<'a>(
    raw: &str,
    n: usize,
    key: &'static str,
    mut declared: impl Iterator<Item = &'a str>,
) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { key, reason };
    let channel = raw.trim().to_string();
    if channel.is_empty() || channel.contains([';', '=']) {
        return Err(invalid(format!(
            "index {} has channel `{raw}`: a channel is a non-empty `conjoined` name without `;` or `=`",
            n + 1
        )));
    }
    if declared.any(|c| crate::conjoined::same_name(c, &channel)) {
        return Err(invalid(format!(
            "channel `{channel}` is declared twice (names compare case-insensitively)"
        )));
    }
    Ok(channel)
}

/// ` devices=7,9` for an index of some devices only, else nothing: the last part of an
/// index's parameters as the catalogue records them.
pub(super) fn devices_text(devices: Option<&[i32]>) -> String {
    devices.map_or_else(String::new, |d| {
        let ids: Vec<String> = d.iter().map(i32::to_string).collect();
        format!(" devices={}", ids.join(","))
    })
}

/// An index's optional `devices` list, validated (`key` names it in errors): sorted and
/// deduplicated 32-bit ids; `None` indexes every device.
///
/// # Errors
/// [`ConfigError::Invalid`] for an id beyond 32 bits or an empty list.
pub(super) fn devices(
    list: Option<Vec<i64>>,
    key: &'static str,
    channel: &str,
) -> Result<Option<Vec<i32>>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { key, reason };
    let Some(list) = list else {
        return Ok(None);
    };
    let mut ids = Vec::with_capacity(list.len());
    for id in list {
        ids.push(i32::try_from(id).map_err(|_| {
            invalid(format!(
                "index `{channel}`: device {id} is not a 32-bit device id"
            ))
        })?);
    }
    if ids.is_empty() {
        return Err(invalid(format!(
            "index `{channel}`: an empty list indexes nothing; leave `devices` out to index every device"
        )));
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(channel: &str, levels: &[&str]) -> RawFeatureIndex {
        RawFeatureIndex {
            channel: channel.into(),
            levels: levels.iter().map(|s| s.to_string()).collect(),
            unit: None,
            devices: None,
        }
    }

    fn error(index: RawIndex) -> String {
        index.validate().unwrap_err().to_string()
    }

    #[test]
    fn a_declaration_validates() {
        let mut f = raw("tmp", &["1d", "1h", "10m", "1m"]);
        f.devices = Some(vec![9, 7, 9]);
        f.unit = Some("°C".into());
        let c = RawIndex {
            database_url: None,
            feature: vec![f],
            ..RawIndex::default()
        }
        .validate()
        .unwrap();
        let tmp = c.feature("TMP").unwrap();
        assert_eq!(tmp.levels.to_string(), "1d/1h/10m/1m");
        assert_eq!(tmp.devices, Some(vec![7, 9]));
        assert!(tmp.covers(7) && !tmp.covers(8));
        assert_eq!(tmp.params(), "1d/1h/10m/1m devices=7,9");
        assert_eq!(c.declared_channels(), "tmp");
    }

    #[test]
    fn errors_name_the_index_and_the_level() {
        let e = error(RawIndex {
            database_url: None,
            feature: vec![raw("tmp", &["1h", "7m"])],
            ..RawIndex::default()
        });
        assert!(e.contains("index `tmp`") && e.contains("level `7m`"), "{e}");
        let e = error(RawIndex {
            database_url: None,
            feature: vec![raw("p", &["10m", "1h"])],
            ..RawIndex::default()
        });
        assert!(e.contains("index `p`") && e.contains("level `1h`"), "{e}");
        let e = error(RawIndex {
            database_url: None,
            feature: vec![raw("p", &["1h", "fast"])],
            ..RawIndex::default()
        });
        assert!(e.contains("level `fast`"), "{e}");
        let e = error(RawIndex {
            database_url: None,
            feature: vec![raw("Tmp", &["1h"]), raw("tmp", &["1d"])],
            ..RawIndex::default()
        });
        assert!(e.contains("declared twice"), "{e}");
        let e = error(RawIndex {
            database_url: Some("postgres://u:TopSecret@h:port/d".into()),
            feature: vec![],
            ..RawIndex::default()
        });
        assert!(
            e.contains("index.database_url") && e.contains("port"),
            "{e}"
        );
        assert!(!e.contains("TopSecret"), "{e}");
    }
}
