//! `[[index.similarity]]`: the similarity indexes (whole matching of jobs).
//!
//! ```toml
//! [[index.similarity]]
//! channel = "tmp"      # a data-level channel
//! length = 256         # each job's series resampled to this many points (default 256)
//! coefficients = 8     # DFT coefficients kept (default 8, at most length/2)
//! gamma = 5            # γ of the xcorr distance (default 5; finite, > 0)
//! devices = [7, 9]     # optional; default every device
//! # iSAX (`recalcd similar --approx`, `recalcd index show --tree`):
//! word_length = 16     # PAA segments per word (default 16; must divide `length`)
//! cardinality = 2      # base cardinality: a power of two, 2 to 256 (default 2, as iSAX 2.0)
//! leaf_capacity = 512  # entries a leaf holds before it splits (default 512)
//! split = "balanced"   # or "round-robin" (default "balanced")
//! ```

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::index::similarity::isax::{IsaxParams, IsaxParamsError};
use crate::index::similarity::Params;

/// The default `length`.
pub const DEFAULT_LENGTH: usize = 256;
/// The default `coefficients`.
pub const DEFAULT_COEFFICIENTS: usize = 8;
/// The default `gamma`.
pub const DEFAULT_GAMMA: f64 = crate::index::similarity::xcorr::DEFAULT_GAMMA;

/// One `[[index.similarity]]` table as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimilarityIndex {
    /// The data-level `conjoined` name it indexes.
    pub channel: String,
    /// Points per resampled series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<i64>,
    /// DFT coefficients kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coefficients: Option<i64>,
    /// The devices indexed; default every device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<i64>>,
    /// γ of the kernelized cross-correlation distance (`--metric xcorr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
    /// iSAX: segments per word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_length: Option<i64>,
    /// iSAX: base cardinality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cardinality: Option<i64>,
    /// iSAX: entries a leaf holds before it splits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_capacity: Option<i64>,
    /// iSAX: `balanced` or `round-robin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

/// One declared similarity index.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarityIndexConfig {
    /// The channel as declared (compared case-insensitively).
    pub channel: String,
    /// Its length and coefficients.
    pub params: Params,
    /// The devices indexed, sorted; `None`: every device.
    pub devices: Option<Vec<i32>>,
    /// γ of the xcorr distance its vantage-point tree is built for.
    pub gamma: f64,
    /// The iSAX tree's parameters (the words are stored with the entries).
    pub isax: IsaxParams,
}

impl SimilarityIndexConfig {
    /// Whether device `id` is indexed.
    pub fn covers(&self, id: i32) -> bool {
        self.devices
            .as_ref()
            .is_none_or(|d| d.binary_search(&id).is_ok())
    }

    /// The parameters as the catalogue records them: `length=256 coefficients=8`,
    /// the iSAX ones (` word_length=16 cardinality=2 leaf_capacity=512 split=balanced`),
    /// then ` gamma=5` (read back by [`crate::index::similarity::xcorr::gamma_in`];
    /// catalogues written before it have none), then ` devices=7,9` when not every
    /// device is indexed (always last).
    pub fn params_text(&self) -> String {
        let mut s = self.params.to_string();
        s.push(' ');
        s.push_str(&self.isax.to_string());
        s.push_str(&format!(" gamma={}", self.gamma));
        s.push_str(&super::index::devices_text(self.devices.as_deref()));
        s
    }
}

/// Checks the declared similarity indexes.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the index (its channel) and the key at fault.
pub fn validate(raw: Vec<RawSimilarityIndex>) -> Result<Vec<SimilarityIndexConfig>, ConfigError> {
    let invalid = |key: &'static str, reason: String| ConfigError::Invalid { key, reason };
    let mut out: Vec<SimilarityIndexConfig> = Vec::with_capacity(raw.len());
    for (n, r) in raw.into_iter().enumerate() {
        let channel = super::index::channel_of(
            &r.channel,
            n,
            "index.similarity.channel",
            out.iter().map(|f| f.channel.as_str()),
        )?;
        let length = r.length.unwrap_or(DEFAULT_LENGTH as i64);
        let coefficients = r.coefficients.unwrap_or(DEFAULT_COEFFICIENTS as i64);
        let length_u = usize::try_from(length).unwrap_or(0);
        let coefficients_u = usize::try_from(coefficients).unwrap_or(0);
        let params = Params::new(length_u, coefficients_u).map_err(|e| {
            let key = match e {
                crate::index::similarity::ParamsError::Length(_) => "index.similarity.length",
                crate::index::similarity::ParamsError::Coefficients { .. } => {
                    "index.similarity.coefficients"
                }
            };
            invalid(key, format!("index `{channel}`: {e}"))
        })?;
        let isax = isax_params(params.length, &r, &channel)?;
        let devices = super::index::devices(r.devices, "index.similarity.devices", &channel)?;
        let gamma = r.gamma.unwrap_or(DEFAULT_GAMMA);
        if !(gamma.is_finite() && gamma > 0.0) {
            return Err(invalid(
                "index.similarity.gamma",
                format!("index `{channel}`: gamma {gamma} must be a finite number > 0"),
            ));
        }
        out.push(SimilarityIndexConfig {
            channel,
            params,
            devices,
            gamma,
            isax,
        });
    }
    Ok(out)
}

/// The iSAX keys of one declaration, checked, with their defaults.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the key at fault.
fn isax_params(
    length: usize,
    r: &RawSimilarityIndex,
    channel: &str,
) -> Result<IsaxParams, ConfigError> {
    let d = IsaxParams::defaults(length);
    IsaxParams::new(
        length,
        r.word_length.unwrap_or(d.word_length as i64),
        r.cardinality.unwrap_or(i64::from(d.cardinality)),
        r.leaf_capacity.unwrap_or(d.leaf_capacity as i64),
        r.split.as_deref().unwrap_or(d.split.as_str()),
    )
    .map_err(|e| {
        let key = match e {
            IsaxParamsError::WordLength { .. } => "index.similarity.word_length",
            IsaxParamsError::Cardinality(_) => "index.similarity.cardinality",
            IsaxParamsError::LeafCapacity(_) => "index.similarity.leaf_capacity",
            IsaxParamsError::Split(_) => "index.similarity.split",
        };
        ConfigError::Invalid {
            key,
            reason: format!("index `{channel}`: {e}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(channel: &str, length: Option<i64>, coefficients: Option<i64>) -> RawSimilarityIndex {
        RawSimilarityIndex {
            channel: channel.into(),
            length,
            coefficients,
            devices: None,
            gamma: None,
            word_length: None,
            cardinality: None,
            leaf_capacity: None,
            split: None,
        }
    }

    #[test]
    fn declarations_validate_with_defaults_and_errors_name_the_key() {
        let c = validate(vec![raw("tmp", None, None)]).unwrap();
        assert_eq!(
            c[0].params_text(),
            "length=256 coefficients=8 word_length=16 cardinality=2 leaf_capacity=512 split=balanced gamma=5"
        );
        let e = validate(vec![raw("tmp", Some(2), None)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("index.similarity.length") && e.contains("`tmp`"),
            "{e}"
        );
        let e = validate(vec![raw("p", Some(16), Some(9))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("index.similarity.coefficients"), "{e}");
        let e = validate(vec![raw("p", None, None), raw("P", None, None)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("declared twice"), "{e}");
        let mut d = raw("p", None, None);
        d.devices = Some(vec![9, 7]);
        let c = validate(vec![d]).unwrap();
        assert_eq!(
            c[0].params_text(),
            "length=256 coefficients=8 word_length=16 cardinality=2 leaf_capacity=512 split=balanced gamma=5 devices=7,9"
        );
        assert!(c[0].covers(7) && !c[0].covers(8));
    }

    #[test]
    fn gamma_is_checked_and_recorded() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut r = raw("tmp", None, None);
            r.gamma = Some(bad);
            let e = validate(vec![r]).unwrap_err().to_string();
            assert!(
                e.contains("index.similarity.gamma") && e.contains("`tmp`"),
                "{e}"
            );
        }
        let mut r = raw("tmp", None, None);
        r.gamma = Some(0.5);
        let c = validate(vec![r]).unwrap();
        assert_eq!(
            c[0].params_text(),
            "length=256 coefficients=8 word_length=16 cardinality=2 leaf_capacity=512 split=balanced gamma=0.5"
        );
        assert_eq!(
            crate::index::similarity::xcorr::gamma_in(&c[0].params_text()),
            Some(0.5)
        );
    }

    #[test]
    fn isax_keys_are_checked_by_name() {
        let bad = |f: &dyn Fn(&mut RawSimilarityIndex)| {
            let mut r = raw("tmp", None, None);
            f(&mut r);
            validate(vec![r]).unwrap_err().to_string()
        };
        let e = bad(&|r| r.word_length = Some(15));
        assert!(
            e.contains("index.similarity.word_length") && e.contains("divide"),
            "{e}"
        );
        let e = bad(&|r| r.cardinality = Some(3));
        assert!(
            e.contains("index.similarity.cardinality") && e.contains("power of two"),
            "{e}"
        );
        let e = bad(&|r| r.cardinality = Some(512));
        assert!(e.contains("index.similarity.cardinality"), "{e}");
        let e = bad(&|r| r.leaf_capacity = Some(0));
        assert!(e.contains("index.similarity.leaf_capacity"), "{e}");
        let e = bad(&|r| r.split = Some("even".into()));
        assert!(
            e.contains("index.similarity.split") && e.contains("round-robin"),
            "{e}"
        );
        let mut r = raw("tmp", Some(64), None);
        r.word_length = Some(8);
        r.cardinality = Some(4);
        r.split = Some("round-robin".into());
        let c = validate(vec![r]).unwrap();
        assert_eq!(
            c[0].params_text(),
            "length=64 coefficients=8 word_length=8 cardinality=4 leaf_capacity=512 split=round-robin gamma=5"
        );
        // A length without 16 as a divisor gets the largest divisor below it.
        let c = validate(vec![raw("tmp", Some(100), None)]).unwrap();
        assert_eq!(c[0].isax.word_length, 10);
    }
}
