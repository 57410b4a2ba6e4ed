//! Compute microversions: `OpenStack-API-Version: compute 2.x` or the older
//! `X-OpenStack-Nova-API-Version: 2.x`, `latest`, the 400 for a malformed version and the 406
//! for one outside 2.1..=2.103. Only the minor number varies, so a microversion is that
//! number. Every response names the version it was served at in both headers, with `Vary`.

use axum::http::{HeaderMap, HeaderValue, StatusCode};

use crate::error::ComputeError;

pub const MIN: Microversion = Microversion(1);
/// Nova 2026.1 "Gazpacho".
pub const MAX: Microversion = Microversion(103);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Microversion(pub u16);

impl Microversion {
    pub fn at_least(self, minor: u16) -> bool {
        self.0 >= minor
    }
}

impl std::fmt::Display for Microversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "2.{}", self.0)
    }
}

/// The version a request asks for; 2.1 when it names none.
pub fn negotiate(headers: &HeaderMap) -> Result<Microversion, ComputeError> {
    let mut asked: Option<String> = None;
    for value in headers.get_all("openstack-api-version") {
        let Ok(text) = value.to_str() else { continue };
        for part in text.split(',') {
            let mut words = part.split_whitespace();
            if words
                .next()
                .is_some_and(|s| s.eq_ignore_ascii_case("compute"))
            {
                asked = Some(words.collect::<Vec<_>>().join(" "));
            }
        }
    }
    if asked.is_none() {
        asked = headers
            .get("x-openstack-nova-api-version")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string());
    }
    let Some(asked) = asked else {
        return Ok(MIN);
    };
    parse(&asked)
}

pub fn parse(asked: &str) -> Result<Microversion, ComputeError> {
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(MAX);
    }
    let invalid = || {
        ComputeError::bad(format!(
            "API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."
        ))
    };
    let (major, minor) = asked.split_once('.').ok_or_else(invalid)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) || (minor.len() > 1 && minor.starts_with('0')) {
        return Err(invalid());
    }
    let major: u32 = major.parse().map_err(|_| invalid())?;
    let minor: u32 = minor.parse().map_err(|_| invalid())?;
    if major != 2 || minor < MIN.0 as u32 || minor > MAX.0 as u32 {
        return Err(ComputeError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Version {asked} is not supported by the API. Minimum is {MIN} and maximum is {MAX}."),
        ));
    }
    Ok(Microversion(minor as u16))
}

/// Adds the served version and `Vary` to a response's headers.
pub fn stamp(headers: &mut HeaderMap, mv: Microversion) {
    if let Ok(v) = HeaderValue::from_str(&format!("compute {mv}")) {
        headers.insert("openstack-api-version", v);
    }
    if let Ok(v) = HeaderValue::from_str(&mv.to_string()) {
        headers.insert("x-openstack-nova-api-version", v);
    }
    headers.insert(
        axum::http::header::VARY,
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn negotiates_both_headers() {
        assert_eq!(negotiate(&HeaderMap::new()).unwrap(), MIN);
        assert_eq!(
            negotiate(&with("openstack-api-version", "compute 2.47")).unwrap(),
            Microversion(47)
        );
        assert_eq!(
            negotiate(&with("x-openstack-nova-api-version", "2.10")).unwrap(),
            Microversion(10)
        );
        assert_eq!(
            negotiate(&with("openstack-api-version", "compute latest")).unwrap(),
            MAX
        );
        // Another service's version is not ours.
        assert_eq!(
            negotiate(&with("openstack-api-version", "placement 1.20")).unwrap(),
            MIN
        );
    }

    #[test]
    fn refuses_bad_versions() {
        assert_eq!(
            parse("2.999").unwrap_err().status,
            StatusCode::NOT_ACCEPTABLE
        );
        assert_eq!(parse("3.0").unwrap_err().status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(parse("2.0").unwrap_err().status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(parse("2").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(parse("2.x").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(parse("2.103").unwrap(), MAX);
    }
}
