//! Which resolved addresses the HTTP runner may connect to: the host operator's egress policy.
//!
//! The footprint names destinations; this policy guards against a name that resolves (or is
//! rebound) to the host's own network. Invariants:
//! - Refused unless the policy allows them: unspecified, `0.0.0.0/8`, loopback, private
//!   (RFC 1918, `fc00::/7`), shared/CGNAT `100.64.0.0/10`, link-local (`169.254.0.0/16`,
//!   `fe80::/10`), cloud metadata addresses, multicast, broadcast, documentation,
//!   benchmarking and reserved ranges, Teredo.
//! - An IPv6 address that embeds an IPv4 one (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
//!   SIIT `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged as the IPv4
//!   address it reaches: `::ffff:127.0.0.1` is loopback.
//! - `allow_loopback` allows loopback only, `allow_private` RFC 1918 and `fc00::/7` only (not
//!   metadata inside them); any other range only through `allowed_nets`, and a metadata
//!   address only through an entry naming exactly that address.
//!
//! ASSUMPTION: the HTTP runner connects to the address it checked (it pins the resolution),
//! so DNS cannot answer one address to the check and another to the connection.
//! FAILURE MODE: a runner that resolves again after the check is open to DNS rebinding.
//! MITIGATION: the runner resolves once, checks every address, and connects to those.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::Denied;

/// The host operator's egress policy (not the graph's: graphs cannot widen it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EgressPolicy {
    /// Allow `127.0.0.0/8` and `::1` (tests against a local server).
    pub(crate) allow_loopback: bool,
    /// Allow RFC 1918 and `fc00::/7`.
    pub(crate) allow_private: bool,
    /// Networks allowed whatever their range.
    pub(crate) allowed_nets: Vec<IpNet>,
}

/// The range that makes an address refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrClass {
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `0.0.0.0/8` ("this network").
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT.
    SharedAddressSpace,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// Cloud instance metadata: `169.254.169.254`, `169.254.170.2`, `100.100.100.200`,
    /// `fd00:ec2::254`.
    Metadata,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// `240.0.0.0/4`, `192.0.0.0/24`, `192.88.99.0/24`, `100::/64`, `fec0::/10`,
    /// `64:ff9b:1::/48`, `2001:10::/28`, `2001:20::/28`, Teredo `2001::/32`.
    Reserved,
}

impl fmt::Display for AddrClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unspecified => "unspecified",
            Self::ThisNetwork => "this-network (0.0.0.0/8)",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedAddressSpace => "shared address space (100.64.0.0/10)",
            Self::LinkLocal => "link-local",
            Self::Metadata => "cloud metadata",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Reserved => "reserved",
        })
    }
}

/// An IP network, `address/prefix` (host bits are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why an `address/prefix` string is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IpNetError {
    /// Not `address/prefix`.
    #[error("expected address/prefix, such as 10.1.0.0/16")]
    Syntax,
    /// The prefix is longer than the address.
    #[error("prefix {0} is longer than the address")]
    Prefix(u8),
}

impl IpNet {
    /// A network; `prefix` at most 32 (IPv4) or 128 (IPv6).
    pub(crate) fn new(addr: IpAddr, prefix: u8) -> Result<Self, IpNetError> {
        if prefix > max_prefix(addr) {
            return Err(IpNetError::Prefix(prefix));
        }
        Ok(Self { addr, prefix })
    }

    /// Whether `addr` is in the network (same family only).
    pub(crate) fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => prefix_eq(
                u128::from(net.to_bits()),
                u128::from(addr.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                prefix_eq(net.to_bits(), addr.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }

    fn is_single_address(&self) -> bool {
        self.prefix == max_prefix(self.addr)
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = text.split_once('/').ok_or(IpNetError::Syntax)?;
        let addr: IpAddr = addr.parse().map_err(|_| IpNetError::Syntax)?;
        let prefix: u8 = prefix.parse().map_err(|_| IpNetError::Syntax)?;
        Self::new(addr, prefix)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The top `prefix` bits of two `width`-bit values are equal.
fn prefix_eq(a: u128, b: u128, width: u32, prefix: u8) -> bool {
    let shift = width.saturating_sub(u32::from(prefix));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

impl EgressPolicy {
    /// Checks one resolved address. Called by the HTTP runner for every address a name
    /// resolves to, and on every redirect hop, before connecting.
    pub(crate) fn check_addr(&self, addr: IpAddr) -> Result<(), Denied> {
        let (class, via) = classify(addr);
        let Some(class) = class else {
            return Ok(());
        };
        let by_flag = match class {
            AddrClass::Loopback => self.allow_loopback,
            AddrClass::Private => self.allow_private,
            _ => false,
        };
        let by_net = self.allowed_nets.iter().any(|net| {
            let contains = net.contains(addr) || via.is_some_and(|v| net.contains(IpAddr::V4(v)));
            contains && (class != AddrClass::Metadata || net.is_single_address())
        });
        if by_flag || by_net {
            return Ok(());
        }
        Err(Denied::Egress { addr, class, via })
    }
}

/// The refused range an address is in (`None`: a public address), and the IPv4 address it
/// embeds when the range is that address's.
pub(crate) fn classify(addr: IpAddr) -> (Option<AddrClass>, Option<Ipv4Addr>) {
    match addr {
        IpAddr::V4(v4) => (classify_v4(v4), None),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => (classify_v4(v4), Some(v4)),
            None => (classify_v6(v6), None),
        },
    }
}

fn in_v4(addr: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    prefix_eq(
        u128::from(addr.to_bits()),
        u128::from(Ipv4Addr::from(net).to_bits()),
        32,
        prefix,
    )
}

fn in_v6(addr: Ipv6Addr, net: [u16; 8], prefix: u8) -> bool {
    prefix_eq(addr.to_bits(), Ipv6Addr::from(net).to_bits(), 128, prefix)
}

const V4_METADATA: &[[u8; 4]] = &[
    [169, 254, 169, 254],
    [169, 254, 170, 2],
    [100, 100, 100, 200],
];

/// IPv4 ranges, most specific first.
const V4_RANGES: &[([u8; 4], u8, AddrClass)] = &[
    ([0, 0, 0, 0], 32, AddrClass::Unspecified),
    ([255, 255, 255, 255], 32, AddrClass::Broadcast),
    ([0, 0, 0, 0], 8, AddrClass::ThisNetwork),
    ([127, 0, 0, 0], 8, AddrClass::Loopback),
    ([10, 0, 0, 0], 8, AddrClass::Private),
    ([172, 16, 0, 0], 12, AddrClass::Private),
    ([192, 168, 0, 0], 16, AddrClass::Private),
    ([100, 64, 0, 0], 10, AddrClass::SharedAddressSpace),
    ([169, 254, 0, 0], 16, AddrClass::LinkLocal),
    ([224, 0, 0, 0], 4, AddrClass::Multicast),
    ([240, 0, 0, 0], 4, AddrClass::Reserved),
    ([192, 0, 2, 0], 24, AddrClass::Documentation),
    ([198, 51, 100, 0], 24, AddrClass::Documentation),
    ([203, 0, 113, 0], 24, AddrClass::Documentation),
    ([198, 18, 0, 0], 15, AddrClass::Benchmarking),
    ([192, 0, 0, 0], 24, AddrClass::Reserved),
    ([192, 88, 99, 0], 24, AddrClass::Reserved),
];

fn classify_v4(addr: Ipv4Addr) -> Option<AddrClass> {
    if V4_METADATA.contains(&addr.octets()) {
        return Some(AddrClass::Metadata);
    }
    V4_RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(addr, *net, *prefix))
        .map(|(_, _, class)| *class)
}

/// IPv6 ranges, most specific first (forms embedding IPv4 are handled before these).
const V6_RANGES: &[([u16; 8], u8, AddrClass)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 0], 128, AddrClass::Unspecified),
    ([0, 0, 0, 0, 0, 0, 0, 1], 128, AddrClass::Loopback),
    (
        [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254],
        128,
        AddrClass::Metadata,
    ),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, AddrClass::Private),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, AddrClass::LinkLocal),
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, AddrClass::Reserved),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, AddrClass::Multicast),
    (
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        AddrClass::Documentation,
    ),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, AddrClass::Documentation),
    ([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48, AddrClass::Benchmarking),
    ([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, AddrClass::Reserved),
    ([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, AddrClass::Reserved),
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, AddrClass::Reserved),
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, AddrClass::Reserved),
    ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, AddrClass::Reserved),
];

fn classify_v6(addr: Ipv6Addr) -> Option<AddrClass> {
    V6_RANGES
        .iter()
        .find(|(net, prefix, _)| in_v6(addr, *net, *prefix))
        .map(|(_, _, class)| *class)
}

/// The IPv4 address an IPv6 one reaches: mapped `::ffff:0:0/96`, SIIT `::ffff:0:0:0/96`,
/// compatible `::/96` (not `::` or `::1`), NAT64 `64:ff9b::/96`, 6to4 `2002::/16`.
fn embedded_v4(addr: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = addr.to_bits();
    let low = Ipv4Addr::from_bits(u32::try_from(bits & 0xffff_ffff).ok()?);
    let s = addr.segments();
    let zeros = |n: usize| s.iter().take(n).all(|&x| x == 0);
    if zeros(5) && s[5] == 0xffff {
        return Some(low);
    }
    if zeros(4) && s[4] == 0xffff && s[5] == 0 {
        return Some(low);
    }
    if zeros(6) && bits > 1 {
        return Some(low);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low);
    }
    if s[0] == 0x2002 {
        let high = u32::try_from((bits >> 80) & 0xffff_ffff).ok()?;
        return Some(Ipv4Addr::from_bits(high));
    }
    None
}
