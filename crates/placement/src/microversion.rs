//! Placement's microversions: `OpenStack-API-Version: placement 1.x` (or the older
//! `OpenStack-Placement-API-Version`), `latest`, and the 406 for anything outside 1.0..=1.39.
//! Only the minor number varies, so a microversion is that number.

use axum::http::{HeaderMap, StatusCode};

use crate::error::{code, PlacementError};

pub const MIN: Microversion = Microversion(0);
pub const MAX: Microversion = Microversion(39);

/// `1.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion(pub u16);

impl Microversion {
    /// Whether the request's version is at least `1.<minor>`.
    pub fn at_least(self, minor: u16) -> bool {
        self.0 >= minor
    }

    pub fn header_value(self) -> String {
        format!("placement 1.{}", self.0)
    }
}

impl std::fmt::Display for Microversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "1.{}", self.0)
    }
}

/// The version a request asks for; the minimum when it names none.
pub fn negotiate(headers: &HeaderMap) -> Result<Microversion, PlacementError> {
    let mut asked = None;
    for value in headers.get_all("openstack-api-version") {
        let Ok(text) = value.to_str() else { continue };
        for part in text.split(',') {
            let mut words = part.split_whitespace();
            if words
                .next()
                .is_some_and(|s| s.eq_ignore_ascii_case("placement"))
            {
                asked = words.next().map(str::to_string);
            }
        }
    }
    if asked.is_none() {
        asked = headers
            .get("openstack-placement-api-version")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string());
    }
    let Some(asked) = asked else {
        return Ok(MIN);
    };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(MAX);
    }
    let bad = || {
        PlacementError::bad(format!(
            "Bad OpenStack-API-Version header: invalid version string: {asked}"
        ))
    };
    let (major, minor) = asked.split_once('.').ok_or_else(bad)?;
    let major: u16 = major.parse().map_err(|_| bad())?;
    let minor: u16 = minor.parse().map_err(|_| bad())?;
    if major != 1 || minor > MAX.0 {
        return Err(PlacementError::new(
            StatusCode::NOT_ACCEPTABLE,
            code::DEFAULT,
            format!(
                "Unacceptable version header: {asked}. The requested microversion is not \
                 supported; the supported range is {MIN} to {MAX}."
            ),
        ));
    }
    Ok(Microversion(minor))
}
