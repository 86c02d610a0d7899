//! CIDR blocks for `IpAddress` / `NotIpAddress`, on top of `std::net`.

use std::net::IpAddr;

/// An IPv4 or IPv6 network. A bare address is a /32 or /128 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cidr {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Cidr {
    /// Parses `addr` or `addr/prefix`. Host bits below the prefix are ignored, as AWS does.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (a, Some(p.parse::<u32>().ok()?))
            }
            None => (s, None),
        };
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => {
                let bits = prefix.unwrap_or(32);
                if bits > 32 {
                    return None;
                }
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                Some(Self::V4 { net: u32::from(a) & mask, mask })
            }
            IpAddr::V6(a) => {
                let bits = prefix.unwrap_or(128);
                if bits > 128 {
                    return None;
                }
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                Some(Self::V6 { net: u128::from(a) & mask, mask })
            }
        }
    }

    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
    /// treated as the IPv4 address for IPv4 networks.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Self::V4 { net, mask }, IpAddr::V4(a)) => u32::from(a) & mask == net,
            (Self::V4 { net, mask }, IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a| u32::from(a) & mask == net),
            (Self::V6 { net, mask }, IpAddr::V6(a)) => u128::from(a) & mask == net,
            (Self::V6 { .. }, IpAddr::V4(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_table() {
        // (cidr, address, expected); a `None` expectation means the CIDR must not parse.
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("203.0.113.0/24", "203.0.113.7", Some(true)),
            ("203.0.113.0/24", "203.0.114.7", Some(false)),
            ("203.0.113.9/24", "203.0.113.200", Some(true)),
            ("0.0.0.0/0", "8.8.8.8", Some(true)),
            ("10.1.2.3", "10.1.2.3", Some(true)),
            ("10.1.2.3", "10.1.2.4", Some(false)),
            ("10.0.0.0/8", "::ffff:10.9.9.9", Some(true)),
            ("10.0.0.0/8", "2001:db8::1", Some(false)),
            ("2001:db8::/32", "2001:db8:ffff::1", Some(true)),
            ("2001:db8::/32", "2001:db9::1", Some(false)),
            ("2001:db8::/32", "192.0.2.1", Some(false)),
            ("::/0", "::1", Some(true)),
            ("::1", "::1", Some(true)),
            ("10.0.0.0/33", "", None),
            ("2001:db8::/129", "", None),
            ("10.0.0.0/", "", None),
            ("10.0.0.0/+8", "", None),
            ("10.0.0/8", "", None),
            ("host.example", "", None),
            ("", "", None),
        ];
        for &(c, a, want) in cases {
            let cidr = Cidr::parse(c);
            match want {
                None => assert!(cidr.is_none(), "{c:?} should not parse"),
                Some(want) => {
                    let ip: IpAddr = a.parse().expect("test address");
                    assert_eq!(cidr.expect("test cidr").contains(ip), want, "{c} contains {a}");
                }
            }
        }
    }
}
