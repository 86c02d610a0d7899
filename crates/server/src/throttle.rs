//! The `[throttle]` table of the configuration: request rates per account and ECR operation.
//!
//! ```toml
//! [throttle]
//! BatchGetImage = { rate = 2000, burst = 4000 }
//! PutImage = { rate = 10 }   # burst: one second's worth
//! ```

use std::collections::BTreeMap;

use berth_registry::throttle::{Limits, Rate};
use serde::{Deserialize, Serialize};

/// One operation's limit as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleRate {
    /// Sustained requests per second, per account (may be fractional: 0.5 is one every 2 s).
    pub rate: f64,
    /// Requests admitted at once after an idle period; one second's worth (at least 1) when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// The core's limits from the configured table, refusing unknown operation names, rates not
/// above 0 and bursts of 0.
///
/// # Errors
/// The first entry that is not usable, named.
pub fn limits(table: &BTreeMap<String, ThrottleRate>) -> Result<Limits, String> {
    let mut limits = Limits::new();
    for (op, r) in table {
        if !berth_api_ecr::is_operation(op) {
            return Err(format!("throttle.{op}: not an ECR operation (names are as in the API: BatchGetImage, ...)"));
        }
        // One second's worth, within u32 (the float-to-int cast saturates).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let second = r.rate.ceil().max(1.0) as u32;
        limits.insert(op.clone(), Rate { per_second: r.rate, burst: r.burst.unwrap_or(second) });
    }
    berth_registry::throttle::check(&limits)?;
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(rate: f64, burst: Option<u32>) -> ThrottleRate {
        ThrottleRate { rate, burst }
    }

    #[test]
    fn table_becomes_limits() {
        let table = BTreeMap::from([
            ("BatchGetImage".to_owned(), rate(2000.0, Some(4000))),
            ("PutImage".to_owned(), rate(10.0, None)),
            ("CreateRepository".to_owned(), rate(0.5, None)),
        ]);
        let l = limits(&table).unwrap();
        assert_eq!(l["BatchGetImage"], Rate { per_second: 2000.0, burst: 4000 });
        assert_eq!(l["PutImage"], Rate { per_second: 10.0, burst: 10 });
        assert_eq!(l["CreateRepository"], Rate { per_second: 0.5, burst: 1 });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure returns figment::Error
    fn the_table_is_read_from_the_file() {
        use std::path::Path;

        use crate::config::{Config, Overrides};
        figment::Jail::expect_with(|jail| {
            let env = Vec::<(String, String)>::new;
            let c = Config::load(None, env(), &Overrides::default()).map_err(|e| e.to_string())?.config;
            assert!(c.throttle.is_empty(), "off by default");
            jail.create_file(
                "t.toml",
                "listen = \"127.0.0.1:6000\"\n[throttle]\nBatchGetImage = { rate = 2000, burst = 4000 }\n\
                 PutImage = { rate = 0.5 }\n",
            )?;
            let c = Config::load(Some(Path::new("t.toml")), env(), &Overrides::default())
                .map_err(|e| e.to_string())?
                .config;
            assert_eq!(c.throttle["BatchGetImage"], rate(2000.0, Some(4000)));
            assert_eq!(c.throttle["PutImage"], rate(0.5, None));
            assert_eq!(c.server.listen.port(), 6000, "an old flat key beside the table");
            jail.create_file("bad.toml", "[throttle]\nPutImage = { rate = 1, brust = 2 }\n")?;
            assert!(Config::load(Some(Path::new("bad.toml")), env(), &Overrides::default()).is_err(), "typo refused");
            Ok(())
        });
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        let one = |op: &str, r| limits(&BTreeMap::from([(op.to_owned(), r)])).unwrap_err();
        assert!(one("GetImage", rate(1.0, None)).contains("throttle.GetImage: not an ECR operation"));
        assert!(one("PutImage", rate(0.0, None)).contains("throttle.PutImage"));
        assert!(one("PutImage", rate(-1.0, None)).contains("throttle.PutImage"));
        assert!(one("PutImage", rate(1.0, Some(0))).contains("burst"));
    }
}
