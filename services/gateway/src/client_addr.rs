//! The client's address behind trusted proxies.
//!
//! `X-Forwarded-For` is a list every proxy appends its peer to: `client, proxy1, proxy2`. Only the
//! hops appended by proxies we trust are facts; everything to their left was written by whoever
//! connected to the first of them, i.e. possibly the client itself. So the client is the
//! RIGHT-most hop that is not a trusted proxy, found by walking from the right while the address
//! in hand is trusted — nginx's `real_ip` with `real_ip_recursive on`, Envoy's
//! `xff_num_trusted_hops` with the networks spelled out. When the peer itself is not a trusted
//! proxy, the header is ignored: it is whatever the client wrote.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// One network, `10.0.0.0/8` or `fd00::/8` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `addr` is inside the network (IPv4-mapped IPv6 addresses count as IPv4).
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(addr) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(addr) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network (e.g. 10.0.0.0/8, fd00::/8)"))?;
        // `::ffff:10.0.0.0/104` is the IPv4 network 10.0.0.0/8 written in IPv6.
        let mapped = network.is_ipv6() && network.to_canonical().is_ipv4();
        let max: u8 = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max && (!mapped || *p >= 96))
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0..={max}"))?,
        };
        let (network, prefix) = if mapped {
            (network.to_canonical(), prefix - 96)
        } else {
            (network, prefix)
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `TRUSTED_PROXIES`: comma-separated networks; empty trusts nobody (the peer is the client).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Whether `addr` is a trusted proxy.
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(addr))
    }

    /// Whether the list is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The client's address: the peer, or — when the peer is a trusted proxy — the right-most
    /// `X-Forwarded-For` hop that is not one (the left-most hop when all of them are). A hop that
    /// is not an address stops the walk at the proxy that reported it: what is left of it cannot
    /// be trusted, and that proxy's address is the closest fact we have.
    #[must_use]
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        // Several header lines are one list, in order (RFC 9110 §5.3).
        let lines: Vec<&str> = match headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str())
            .collect::<Result<_, _>>()
        {
            Ok(lines) => lines,
            Err(_) => return client,
        };
        for hop in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            let hop = hop.trim();
            if hop.is_empty() {
                continue;
            }
            let Some(addr) = parse_hop(hop) else {
                return client;
            };
            client = addr;
            if !self.contains(addr) {
                return addr;
            }
        }
        client
    }
}

/// A hop as proxies write it: `1.2.3.4`, `2001:db8::1`, or with a port `1.2.3.4:5678`,
/// `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(addr) = hop.parse::<IpAddr>() {
        return Some(addr.to_canonical());
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
        .map(|addr| IpAddr::V6(addr).to_canonical())
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Cidr>, _>>()
            .map(Self)
    }
}

/// The rate limiter's key for an address: IPv4 as is, IPv6 by its /64 (one subscriber's
/// network: an IPv6 client can pick any of 2^64 addresses, so the address alone is no identity).
#[must_use]
pub fn limiter_key(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("{network}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("127.0.0.1/32", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("192.168.1.128/25", "192.168.1.200", true),
            ("192.168.1.128/25", "192.168.1.100", false),
            ("fd00::/8", "fd12:3456::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::/0", "2001:db8::1", true),
            ("2001:db8::1/128", "2001:db8::1", true),
            ("2001:db8::1", "2001:db8::2", false),
            // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6.
            ("127.0.0.0/8", "::ffff:127.0.0.1", true),
            ("::ffff:10.0.0.0/104", "10.1.2.3", true),
        ];
        for (net, addr, inside) in cases {
            let cidr: Cidr = net.parse().unwrap();
            assert_eq!(cidr.contains(ip(addr)), inside, "{net} ∋ {addr}");
        }
    }

    #[test]
    fn malformed_networks_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "example.com",
            "10.0.0.0/",
            "10.0.0.0/-1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
        assert_eq!("".parse::<TrustedProxies>(), Ok(TrustedProxies::default()));
        let list: TrustedProxies = " 10.0.0.0/8 , fd00::/8,".parse().unwrap();
        assert_eq!(list.0.len(), 2);
    }

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        map
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let proxies: TrustedProxies = "10.0.0.0/8,fd00::/8".parse().unwrap();
        let cases: &[(&str, &[&str], &str)] = &[
            // No proxy trusted → the peer, whatever the header says.
            ("203.0.113.7", &["198.51.100.1"], "203.0.113.7"),
            // One trusted proxy: the hop it appended, not the client's own left-most claims.
            ("10.0.0.2", &["198.51.100.1"], "198.51.100.1"),
            ("10.0.0.2", &["1.1.1.1, 198.51.100.1"], "198.51.100.1"),
            (
                "10.0.0.2",
                &["6.6.6.6, 7.7.7.7, 198.51.100.1"],
                "198.51.100.1",
            ),
            // Two trusted proxies in a chain.
            (
                "10.0.0.2",
                &["1.1.1.1, 198.51.100.1, 10.0.0.9"],
                "198.51.100.1",
            ),
            // Several header lines are one list.
            (
                "10.0.0.2",
                &["1.1.1.1", "198.51.100.1, 10.0.0.9"],
                "198.51.100.1",
            ),
            // A trusted peer without the header is the client.
            ("10.0.0.2", &[], "10.0.0.2"),
            // Every hop trusted: the left-most one.
            ("10.0.0.2", &["10.1.1.1, 10.0.0.9"], "10.1.1.1"),
            // Garbage stops the walk at the proxy that forwarded it.
            ("10.0.0.2", &["1.1.1.1, unknown"], "10.0.0.2"),
            (
                "10.0.0.2",
                &["garbage, 198.51.100.1, 10.0.0.9"],
                "198.51.100.1",
            ),
            ("10.0.0.2", &["1.1.1.1, not-an-ip, 10.0.0.9"], "10.0.0.9"),
            // Empty elements are skipped; ports and brackets are understood.
            (
                "10.0.0.2",
                &["1.1.1.1, , 198.51.100.1:4711"],
                "198.51.100.1",
            ),
            ("10.0.0.2", &["[2001:db8::5]:443"], "2001:db8::5"),
            ("10.0.0.2", &["2001:db8::5, fd00::1"], "2001:db8::5"),
            // IPv6 proxy, IPv4-mapped peer.
            ("fd00::7", &["203.0.113.50"], "203.0.113.50"),
            ("::ffff:10.0.0.2", &["203.0.113.50"], "203.0.113.50"),
        ];
        for (peer, lines, client) in cases {
            assert_eq!(
                proxies.client(ip(peer), &headers(lines)),
                ip(client),
                "peer {peer}, X-Forwarded-For {lines:?}"
            );
        }
        let nobody = TrustedProxies::default();
        assert_eq!(
            nobody.client(ip("10.0.0.2"), &headers(&["1.1.1.1"])),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        assert_eq!(limiter_key(ip("203.0.113.7")), "203.0.113.7");
        assert_eq!(limiter_key(ip("::ffff:203.0.113.7")), "203.0.113.7");
        assert_eq!(
            limiter_key(ip("2001:db8:1:2:aaaa::1")),
            limiter_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_eq!(limiter_key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_ne!(
            limiter_key(ip("2001:db8:1:2::1")),
            limiter_key(ip("2001:db8:1:3::1"))
        );
    }
}
