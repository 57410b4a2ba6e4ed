//! Address arithmetic for IP address management, without I/O: CIDRs, allocation pools,
//! EUI-64 addresses for SLAAC subnets, MAC addresses with Neutron's `fa:16:3e` prefix.
//! Addresses are handled as `u128` so IPv4 and IPv6 share one code path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// A network prefix with its host bits clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: u128,
    pub prefix: u8,
    pub version: u8,
}

/// An inclusive range of addresses handed out automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub start: String,
    pub end: String,
}

pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub fn from_u128(value: u128, version: u8) -> IpAddr {
    if version == 4 {
        IpAddr::V4(Ipv4Addr::from(value as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(value))
    }
}

pub fn version_of(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() {
        4
    } else {
        6
    }
}

/// Parses an address; `None` for anything else (including a CIDR).
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse().ok()
}

/// The canonical text of an address (IPv6 compressed, lower case).
pub fn normalize_ip(text: &str) -> Option<String> {
    parse_ip(text).map(|ip| ip.to_string())
}

impl Cidr {
    pub fn bits(&self) -> u8 {
        if self.version == 4 {
            32
        } else {
            128
        }
    }

    fn host_mask(&self) -> u128 {
        let host_bits = (self.bits() - self.prefix) as u32;
        if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        }
    }

    /// Parses `addr/prefix`. With `strict`, host bits must be clear (Neutron refuses
    /// `10.0.0.5/24` for a subnet); otherwise they are cleared.
    pub fn parse(text: &str, strict: bool) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let ip = parse_ip(addr).ok_or_else(|| format!("'{text}' is not a valid IP subnet"))?;
        let version = version_of(&ip);
        let max = if version == 4 { 32 } else { 128 };
        let prefix: u8 = match prefix {
            Some(p) => p
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{text}' is not a valid IP subnet"))?,
            None => max,
        };
        let mut cidr = Cidr {
            network: to_u128(ip),
            prefix,
            version,
        };
        let host = cidr.network & cidr.host_mask();
        if host != 0 {
            if strict {
                cidr.network &= !cidr.host_mask();
                return Err(format!(
                    "'{text}' isn't a recognized IP subnet cidr, '{cidr}' is recommended"
                ));
            }
            cidr.network &= !cidr.host_mask();
        }
        Ok(cidr)
    }

    pub fn first(&self) -> u128 {
        self.network
    }

    pub fn last(&self) -> u128 {
        self.network | self.host_mask()
    }

    /// How many addresses the prefix spans (saturating for a /0 in IPv6).
    pub fn size(&self) -> u128 {
        self.host_mask().saturating_add(1)
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        version_of(ip) == self.version && {
            let v = to_u128(*ip);
            v >= self.first() && v <= self.last()
        }
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.version == other.version
            && self.first() <= other.last()
            && other.first() <= self.last()
    }

    pub fn ip(&self, value: u128) -> IpAddr {
        from_u128(value, self.version)
    }

    /// The range addresses may be allocated from: IPv4 leaves out the network and
    /// broadcast addresses (except on /31 and /32), IPv6 the subnet-router anycast address.
    pub fn usable(&self) -> (u128, u128) {
        match (self.version, self.prefix) {
            (4, p) if p >= 31 => (self.first(), self.last()),
            (4, _) => (self.first() + 1, self.last() - 1),
            (_, 128) => (self.first(), self.last()),
            _ => (self.first() + 1, self.last()),
        }
    }

    /// Neutron's default gateway: the first usable address.
    pub fn default_gateway(&self) -> IpAddr {
        self.ip(self.usable().0)
    }

    /// The default allocation pools: the usable range less the gateway.
    pub fn default_pools(&self, gateway: Option<&IpAddr>) -> Vec<Pool> {
        let (start, end) = self.usable();
        let mut ranges = vec![(start, end)];
        if let Some(gw) = gateway.filter(|g| self.contains(g)) {
            let g = to_u128(*gw);
            ranges = ranges
                .into_iter()
                .flat_map(|(s, e)| {
                    if g < s || g > e {
                        vec![(s, e)]
                    } else {
                        let mut parts = Vec::new();
                        if g > s {
                            parts.push((s, g - 1));
                        }
                        if g < e {
                            parts.push((g + 1, e));
                        }
                        parts
                    }
                })
                .collect();
        }
        ranges
            .into_iter()
            .map(|(s, e)| Pool {
                start: self.ip(s).to_string(),
                end: self.ip(e).to_string(),
            })
            .collect()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip(self.network), self.prefix)
    }
}

/// A pool as numbers, checked: both ends addresses of the subnet's version, start <= end.
pub fn pool_range(cidr: &Cidr, pool: &Pool) -> Result<(u128, u128), String> {
    let start = parse_ip(&pool.start)
        .ok_or_else(|| format!("'{}' is not a valid IP address", pool.start))?;
    let end =
        parse_ip(&pool.end).ok_or_else(|| format!("'{}' is not a valid IP address", pool.end))?;
    if version_of(&start) != cidr.version || version_of(&end) != cidr.version {
        return Err(format!(
            "The allocation pool {}-{} does not match the subnet's IP version",
            pool.start, pool.end
        ));
    }
    if !cidr.contains(&start) || !cidr.contains(&end) {
        return Err(format!(
            "The allocation pool {}-{} spans beyond the subnet cidr {cidr}.",
            pool.start, pool.end
        ));
    }
    let (s, e) = (to_u128(start), to_u128(end));
    if s > e {
        return Err(format!(
            "The allocation pool {}-{} is not a valid range: its start is after its end",
            pool.start, pool.end
        ));
    }
    Ok((s, e))
}

/// Checks that pools lie inside the subnet and do not overlap each other; returns them
/// normalized (canonical address text).
pub fn validate_pools(cidr: &Cidr, pools: &[Pool]) -> Result<Vec<Pool>, String> {
    let mut ranges: Vec<(u128, u128)> = Vec::new();
    for p in pools {
        ranges.push(pool_range(cidr, p)?);
    }
    let mut sorted = ranges.clone();
    sorted.sort();
    for w in sorted.windows(2) {
        if w[1].0 <= w[0].1 {
            return Err(format!(
                "Found overlapping allocation pools: {}-{} and {}-{}",
                cidr.ip(w[0].0),
                cidr.ip(w[0].1),
                cidr.ip(w[1].0),
                cidr.ip(w[1].1)
            ));
        }
    }
    Ok(ranges
        .into_iter()
        .map(|(s, e)| Pool {
            start: cidr.ip(s).to_string(),
            end: cidr.ip(e).to_string(),
        })
        .collect())
}

/// Whether `ip` is inside one of `pools`.
pub fn in_pools(cidr: &Cidr, pools: &[Pool], ip: &IpAddr) -> bool {
    let v = to_u128(*ip);
    pools.iter().any(|p| {
        pool_range(cidr, p)
            .map(|(s, e)| v >= s && v <= e)
            .unwrap_or(false)
    })
}

/// Up to `max` free addresses of `pools`, lowest first, skipping `taken`.
pub fn free_addresses(
    cidr: &Cidr,
    pools: &[Pool],
    taken: &std::collections::HashSet<u128>,
    max: usize,
) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for p in pools {
        let Ok((s, e)) = pool_range(cidr, p) else {
            continue;
        };
        let mut v = s;
        while v <= e && out.len() < max {
            if !taken.contains(&v) {
                out.push(cidr.ip(v));
            }
            if v == u128::MAX {
                break;
            }
            v += 1;
        }
        if out.len() >= max {
            break;
        }
    }
    out
}

/// The first prefix of length `prefixlen` inside one of `pools` that overlaps none of
/// `used`, pools taken in order.
pub fn allocate_prefix(pools: &[Cidr], prefixlen: u8, used: &[Cidr]) -> Option<Cidr> {
    for pool in pools {
        if prefixlen < pool.prefix || prefixlen > pool.bits() {
            continue;
        }
        let step: u128 = match pool.bits() - prefixlen {
            128 => return None,
            bits => 1u128 << bits,
        };
        let mut start = pool.first();
        loop {
            let candidate = Cidr {
                network: start,
                prefix: prefixlen,
                version: pool.version,
            };
            if candidate.last() > pool.last() {
                break;
            }
            match used
                .iter()
                .filter(|u| u.overlaps(&candidate))
                .map(|u| u.last())
                .max()
            {
                None => return Some(candidate),
                // Skip past the used prefix, to the next aligned candidate.
                Some(end) => match end.checked_add(1) {
                    Some(next) => start = next.div_ceil(step) * step,
                    None => break,
                },
            }
        }
    }
    None
}

/// The SLAAC address of `mac` in a /64: the prefix plus the modified EUI-64 interface id.
pub fn eui64(cidr: &Cidr, mac: &str) -> Option<IpAddr> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    if bytes.len() != 6 || cidr.version != 6 {
        return None;
    }
    let iid: [u8; 8] = [
        bytes[0] ^ 0x02,
        bytes[1],
        bytes[2],
        0xff,
        0xfe,
        bytes[3],
        bytes[4],
        bytes[5],
    ];
    let iid = u64::from_be_bytes(iid) as u128;
    Some(cidr.ip((cidr.network & !((1u128 << 64) - 1)) | iid))
}

/// A random MAC address with Neutron's default base `fa:16:3e`.
pub fn random_mac() -> String {
    let tail: [u8; 3] = rand::random();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", tail[0], tail[1], tail[2])
}

/// A MAC address in canonical form (lower case, colons), or `None`.
pub fn normalize_mac(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let bytes: Vec<u8> = parts
        .iter()
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    Some(
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_normalize() {
        let c = Cidr::parse("10.0.0.0/24", true).unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/24");
        assert!(Cidr::parse("10.0.0.5/24", true)
            .unwrap_err()
            .contains("'10.0.0.0/24' is recommended"));
        assert_eq!(
            Cidr::parse("10.0.0.5/24", false).unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert_eq!(
            Cidr::parse("2001:DB8:0:0::/64", true).unwrap().to_string(),
            "2001:db8::/64"
        );
        assert!(Cidr::parse("10.0.0.0/33", true).is_err());
        assert!(Cidr::parse("nonsense", true).is_err());
        let other = Cidr::parse("10.0.0.128/25", true).unwrap();
        assert!(c.overlaps(&other) && other.overlaps(&c));
        assert!(!c.overlaps(&Cidr::parse("10.0.1.0/24", true).unwrap()));
    }

    #[test]
    fn default_pools_leave_out_gateway_network_and_broadcast() {
        let c = Cidr::parse("192.168.1.0/24", true).unwrap();
        let gw = c.default_gateway();
        assert_eq!(gw.to_string(), "192.168.1.1");
        assert_eq!(
            c.default_pools(Some(&gw)),
            vec![Pool {
                start: "192.168.1.2".into(),
                end: "192.168.1.254".into()
            }]
        );
        let mid: IpAddr = "192.168.1.100".parse().unwrap();
        assert_eq!(c.default_pools(Some(&mid)).len(), 2);
        let v6 = Cidr::parse("fd00::/64", true).unwrap();
        let pools = v6.default_pools(Some(&v6.default_gateway()));
        assert_eq!(pools[0].start, "fd00::2");
        assert_eq!(pools[0].end, "fd00::ffff:ffff:ffff:ffff");
    }

    #[test]
    fn pools_are_checked() {
        let c = Cidr::parse("10.0.0.0/24", true).unwrap();
        let p = |s: &str, e: &str| Pool {
            start: s.into(),
            end: e.into(),
        };
        assert!(validate_pools(&c, &[p("10.0.0.10", "10.0.0.20")]).is_ok());
        assert!(validate_pools(&c, &[p("10.0.0.10", "10.0.1.20")]).is_err());
        assert!(validate_pools(&c, &[p("10.0.0.20", "10.0.0.10")]).is_err());
        assert!(validate_pools(
            &c,
            &[p("10.0.0.10", "10.0.0.20"), p("10.0.0.15", "10.0.0.30")]
        )
        .unwrap_err()
        .contains("overlapping"));
        let taken = [to_u128("10.0.0.10".parse().unwrap())]
            .into_iter()
            .collect();
        let free = free_addresses(&c, &[p("10.0.0.10", "10.0.0.12")], &taken, 5);
        assert_eq!(
            free.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            vec!["10.0.0.11", "10.0.0.12"]
        );
    }

    #[test]
    fn prefixes_are_allocated_from_pools() {
        let p = |t: &str| Cidr::parse(t, true).unwrap();
        let pools = [p("10.0.0.0/16")];
        assert_eq!(
            allocate_prefix(&pools, 24, &[]).unwrap().to_string(),
            "10.0.0.0/24"
        );
        let used = [p("10.0.0.0/24"), p("10.0.1.0/26")];
        assert_eq!(
            allocate_prefix(&pools, 24, &used).unwrap().to_string(),
            "10.0.2.0/24"
        );
        assert_eq!(
            allocate_prefix(&pools, 26, &used).unwrap().to_string(),
            "10.0.1.64/26"
        );
        assert!(
            allocate_prefix(&pools, 8, &[]).is_none(),
            "larger than the pool"
        );
        assert!(allocate_prefix(&[p("10.0.0.0/24")], 24, &[p("10.0.0.0/25")]).is_none());
        let v6 = [p("2001:db8::/48")];
        assert_eq!(
            allocate_prefix(&v6, 64, &[p("2001:db8::/64")])
                .unwrap()
                .to_string(),
            "2001:db8:0:1::/64"
        );
    }

    #[test]
    fn eui64_and_macs() {
        let c = Cidr::parse("2001:db8::/64", true).unwrap();
        assert_eq!(
            eui64(&c, "fa:16:3e:12:34:56").unwrap().to_string(),
            "2001:db8::f816:3eff:fe12:3456"
        );
        let mac = random_mac();
        assert!(mac.starts_with("fa:16:3e:") && normalize_mac(&mac).as_deref() == Some(&*mac));
        assert_eq!(
            normalize_mac("FA-16-3E-00-00-01").as_deref(),
            Some("fa:16:3e:00:00:01")
        );
        assert!(normalize_mac("fa:16:3e:00:00").is_none());
    }
}
