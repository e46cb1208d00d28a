//! Service codes (CPT) of booked 1:1 sessions: which codes a session may carry.
//!
//! The list is an operator setting (`--service-codes`, TOML `service_codes`); by
//! default it holds the common psychotherapy codes. A code is compared after trimming
//! and upper-casing (HCPCS codes have letters), and stored in that form.

use std::sync::Arc;

/// The codes accepted when the operator configured none: diagnostic evaluation
/// (90791, 90792), psychotherapy of 30/45/60 minutes (90832, 90834, 90837), the
/// add-on codes with an E/M visit (90833, 90836, 90838), crisis (90839, 90840),
/// family (90846, 90847), multiple-family group (90849), group (90853) and
/// interactive complexity (90785).
pub const DEFAULT_SERVICE_CODES: &[&str] = &[
    "90785", "90791", "90792", "90832", "90833", "90834", "90836", "90837", "90838", "90839",
    "90840", "90846", "90847", "90849", "90853",
];

/// A code that is not in the configured list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownServiceCode(pub String);

/// The configured list of accepted service codes; cheap to clone. Handed to the
/// handlers as an axum `Extension` by `serve`; handlers without one use the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCodes(Arc<Vec<String>>);

impl Default for ServiceCodes {
    fn default() -> Self {
        ServiceCodes::new(DEFAULT_SERVICE_CODES.iter().copied())
    }
}

impl ServiceCodes {
    /// The list of `codes` (normalized; blanks dropped, duplicates kept once).
    pub fn new<I, S>(codes: I) -> ServiceCodes
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<String> = codes
            .into_iter()
            .map(|c| normalize(c.as_ref()))
            .filter(|c| !c.is_empty())
            .collect();
        list.sort();
        list.dedup();
        ServiceCodes(Arc::new(list))
    }

    /// The accepted codes, sorted.
    pub fn list(&self) -> &[String] {
        &self.0
    }

    /// The normalized code when `raw` is in the list.
    pub fn check(&self, raw: &str) -> Result<String, UnknownServiceCode> {
        let code = normalize(raw);
        if self.0.contains(&code) {
            Ok(code)
        } else {
            Err(UnknownServiceCode(code))
        }
    }
}

fn normalize(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_list_accepts_common_codes_only() {
        let codes = ServiceCodes::default();
        assert_eq!(codes.check(" 90837 "), Ok("90837".into()));
        assert!(codes.check("99213").is_err());
        assert!(codes.check("").is_err());
        let custom = ServiceCodes::new(["g0410", " ", "G0410"]);
        assert_eq!(custom.list(), ["G0410".to_string()]);
        assert_eq!(custom.check("G0410"), Ok("G0410".into()));
    }
}
