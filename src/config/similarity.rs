//! `[[index.similarity]]`: the similarity indexes (whole matching of jobs).
//!
//! ```toml
//! [[index.similarity]]
//! channel = "tmp"      # a data-level channel
//! length = 256         # each job's series resampled to this many points (default 256)
//! coefficients = 8     # DFT coefficients kept (default 8, at most length/2)
//! gamma = 5            # γ of the xcorr distance (default 5; finite, > 0)
//! devices = [7, 9]     # optional; default every device
//! ```

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::index::similarity::Params;

/// The default `length`.
pub const DEFAULT_LENGTH: usize = 256;
/// The default `coefficients`.
pub const DEFAULT_COEFFICIENTS: usize = 8;
/// The default `gamma`.
pub const DEFAULT_GAMMA: f64 = crate::index::similarity::xcorr::DEFAULT_GAMMA;

/// One `[[index.similarity]]` table as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
}

impl SimilarityIndexConfig {
    /// Whether device `id` is indexed.
    pub fn covers(&self, id: i32) -> bool {
        self.devices
            .as_ref()
            .is_none_or(|d| d.binary_search(&id).is_ok())
    }

    /// The parameters as the catalogue records them: `length=256 coefficients=8`,
    /// then ` gamma=5` (read back by [`crate::index::similarity::xcorr::gamma_in`];
    /// catalogues written before it have none), then ` devices=7,9` when not every
    /// device is indexed.
    pub fn params_text(&self) -> String {
        let mut s = self.params.to_string();
        s.push_str(&format!(" gamma={}", self.gamma));
        if let Some(d) = &self.devices {
            let ids: Vec<String> = d.iter().map(i32::to_string).collect();
            s.push_str(" devices=");
            s.push_str(&ids.join(","));
        }
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
        let channel = r.channel.trim().to_string();
        if channel.is_empty() || channel.contains([';', '=']) {
            return Err(invalid(
                "index.similarity.channel",
                format!(
                    "index {} has channel `{}`: a channel is a non-empty `conjoined` name without `;` or `=`",
                    n + 1,
                    r.channel
                ),
            ));
        }
        if out
            .iter()
            .any(|f| crate::conjoined::same_name(&f.channel, &channel))
        {
            return Err(invalid(
                "index.similarity.channel",
                format!("channel `{channel}` is declared twice (names compare case-insensitively)"),
            ));
        }
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
        });
    }
    Ok(out)
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
        }
    }

    #[test]
    fn declarations_validate_with_defaults_and_errors_name_the_key() {
        let c = validate(vec![raw("tmp", None, None)]).unwrap();
        assert_eq!(c[0].params_text(), "length=256 coefficients=8 gamma=5");
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
            "length=256 coefficients=8 gamma=5 devices=7,9"
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
        assert_eq!(c[0].params_text(), "length=256 coefficients=8 gamma=0.5");
        assert_eq!(
            crate::index::similarity::xcorr::gamma_in(&c[0].params_text()),
            Some(0.5)
        );
    }
}
