//! Egress: every refused range, its IPv4-mapped form, and what the policy can allow.

use std::net::{IpAddr, Ipv4Addr};

use crate::footprint::{AddrClass, Denied, EgressPolicy, IpNet, IpNetError};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn outcome(policy: &EgressPolicy, addr: &str) -> Result<(), (AddrClass, Option<Ipv4Addr>)> {
    match policy.check_addr(ip(addr)) {
        Ok(()) => Ok(()),
        Err(Denied::Egress {
            addr: got,
            class,
            via,
        }) => {
            assert_eq!(got, ip(addr), "the refusal names the address checked");
            Err((class, via))
        }
        Err(other) => panic!("{addr}: {other:?}"),
    }
}

/// One IPv4 address of each refused range, and its class.
const V4_CASES: &[(&str, AddrClass)] = &[
    ("0.0.0.0", AddrClass::Unspecified),
    ("0.1.2.3", AddrClass::ThisNetwork),
    ("127.0.0.1", AddrClass::Loopback),
    ("127.255.255.254", AddrClass::Loopback),
    ("10.0.0.1", AddrClass::Private),
    ("172.16.0.1", AddrClass::Private),
    ("172.31.255.255", AddrClass::Private),
    ("192.168.1.1", AddrClass::Private),
    ("100.64.0.1", AddrClass::SharedAddressSpace),
    ("100.127.255.255", AddrClass::SharedAddressSpace),
    ("169.254.0.1", AddrClass::LinkLocal),
    ("169.254.169.254", AddrClass::Metadata),
    ("169.254.170.2", AddrClass::Metadata),
    ("100.100.100.200", AddrClass::Metadata),
    ("224.0.0.1", AddrClass::Multicast),
    ("239.255.255.250", AddrClass::Multicast),
    ("255.255.255.255", AddrClass::Broadcast),
    ("240.0.0.1", AddrClass::Reserved),
    ("192.0.0.8", AddrClass::Reserved),
    ("192.88.99.1", AddrClass::Reserved),
    ("192.0.2.1", AddrClass::Documentation),
    ("198.51.100.1", AddrClass::Documentation),
    ("203.0.113.1", AddrClass::Documentation),
    ("198.18.0.1", AddrClass::Benchmarking),
    ("198.19.255.255", AddrClass::Benchmarking),
];

const V6_CASES: &[(&str, AddrClass)] = &[
    ("::", AddrClass::Unspecified),
    ("::1", AddrClass::Loopback),
    ("fc00::1", AddrClass::Private),
    ("fd12:3456::1", AddrClass::Private),
    ("fd00:ec2::254", AddrClass::Metadata),
    ("fe80::1", AddrClass::LinkLocal),
    ("febf::1", AddrClass::LinkLocal),
    ("fec0::1", AddrClass::Reserved),
    ("ff02::1", AddrClass::Multicast),
    ("2001:db8::1", AddrClass::Documentation),
    ("3fff::1", AddrClass::Documentation),
    ("2001:2::1", AddrClass::Benchmarking),
    ("2001::1", AddrClass::Reserved),
    ("2001:10::1", AddrClass::Reserved),
    ("100::1", AddrClass::Reserved),
    ("64:ff9b:1::1", AddrClass::Reserved),
];

#[test]
fn every_refused_ipv4_range_is_refused_by_default() {
    let policy = EgressPolicy::default();
    for &(addr, class) in V4_CASES {
        assert_eq!(outcome(&policy, addr), Err((class, None)), "{addr}");
    }
}

#[test]
fn every_refused_ipv6_range_is_refused_by_default() {
    let policy = EgressPolicy::default();
    for &(addr, class) in V6_CASES {
        assert_eq!(outcome(&policy, addr), Err((class, None)), "{addr}");
    }
}

#[test]
fn ipv6_forms_embedding_ipv4_are_judged_as_the_ipv4_address() {
    let policy = EgressPolicy::default();
    for &(v4, class) in V4_CASES {
        let embedded: Ipv4Addr = v4.parse().expect("v4");
        let [a, b, c, d] = embedded.octets();
        let high = u16::from_be_bytes([a, b]);
        let low = u16::from_be_bytes([c, d]);
        let mut forms = vec![
            format!("::ffff:{v4}"),
            format!("::ffff:0:{v4}"),
            format!("64:ff9b::{v4}"),
            format!("2002:{high:x}:{low:x}::1"),
        ];
        // `::` and `::1` are themselves, not IPv4-compatible forms of 0.0.0.0 and 0.0.0.1.
        if u32::from(embedded) > 1 {
            forms.push(format!("::{v4}"));
        }
        for form in forms {
            assert_eq!(
                outcome(&policy, &form),
                Err((class, Some(embedded))),
                "{form} embeds {v4}"
            );
        }
    }
    assert_eq!(
        outcome(&policy, "::ffff:127.0.0.1"),
        Err((AddrClass::Loopback, Some(Ipv4Addr::LOCALHOST)))
    );
    assert_eq!(
        outcome(&policy, "::ffff:a9fe:a9fe"),
        Err((AddrClass::Metadata, Some(Ipv4Addr::new(169, 254, 169, 254))))
    );
}

#[test]
fn public_addresses_pass() {
    let policy = EgressPolicy::default();
    for addr in [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "100.128.0.1",
        "169.253.255.255",
        "192.0.3.1",
        "2606:4700:4700::1111",
        "2a00:1450::1",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2002:808:808::1",
    ] {
        assert_eq!(outcome(&policy, addr), Ok(()), "{addr}");
    }
}

#[test]
fn flags_allow_exactly_their_ranges() {
    let loopback = EgressPolicy {
        allow_loopback: true,
        ..EgressPolicy::default()
    };
    assert_eq!(outcome(&loopback, "127.0.0.1"), Ok(()));
    assert_eq!(outcome(&loopback, "::1"), Ok(()));
    assert_eq!(outcome(&loopback, "::ffff:127.0.0.1"), Ok(()));
    assert_eq!(
        outcome(&loopback, "10.0.0.1"),
        Err((AddrClass::Private, None))
    );
    assert_eq!(
        outcome(&loopback, "0.0.0.0"),
        Err((AddrClass::Unspecified, None))
    );
    let private = EgressPolicy {
        allow_private: true,
        ..EgressPolicy::default()
    };
    for addr in [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "fd12::1",
        "::ffff:10.0.0.1",
    ] {
        assert_eq!(outcome(&private, addr), Ok(()), "{addr}");
    }
    assert_eq!(
        outcome(&private, "127.0.0.1"),
        Err((AddrClass::Loopback, None))
    );
    assert_eq!(
        outcome(&private, "fd00:ec2::254"),
        Err((AddrClass::Metadata, None))
    );
    assert_eq!(
        outcome(&private, "100.64.0.1"),
        Err((AddrClass::SharedAddressSpace, None))
    );
    assert_eq!(
        outcome(&private, "169.254.169.254"),
        Err((AddrClass::Metadata, None))
    );
}

#[test]
fn allowed_nets_open_one_network_and_metadata_needs_its_exact_address() {
    let net = |text: &str| text.parse::<IpNet>().expect("net");
    let policy = EgressPolicy {
        allowed_nets: vec![net("10.1.0.0/16"), net("169.254.0.0/16"), net("fd00::/8")],
        ..EgressPolicy::default()
    };
    assert_eq!(outcome(&policy, "10.1.2.3"), Ok(()));
    assert_eq!(outcome(&policy, "::ffff:10.1.2.3"), Ok(()));
    assert_eq!(
        outcome(&policy, "10.2.0.1"),
        Err((AddrClass::Private, None))
    );
    assert_eq!(outcome(&policy, "169.254.1.1"), Ok(()));
    assert_eq!(
        outcome(&policy, "169.254.169.254"),
        Err((AddrClass::Metadata, None))
    );
    assert_eq!(
        outcome(&policy, "fd00:ec2::254"),
        Err((AddrClass::Metadata, None))
    );
    let metadata = EgressPolicy {
        allowed_nets: vec![net("169.254.169.254/32")],
        ..EgressPolicy::default()
    };
    assert_eq!(outcome(&metadata, "169.254.169.254"), Ok(()));
    assert_eq!(outcome(&metadata, "::ffff:169.254.169.254"), Ok(()));
    assert_eq!(
        outcome(&metadata, "169.254.169.253"),
        Err((AddrClass::LinkLocal, None))
    );
    let everything = EgressPolicy {
        allowed_nets: vec![net("0.0.0.0/0")],
        ..EgressPolicy::default()
    };
    assert_eq!(outcome(&everything, "127.0.0.1"), Ok(()));
    assert_eq!(
        outcome(&everything, "169.254.169.254"),
        Err((AddrClass::Metadata, None))
    );
    assert_eq!(
        outcome(&everything, "::1"),
        Err((AddrClass::Loopback, None))
    );
}

#[test]
fn networks_parse_strictly() {
    assert_eq!("10.0.0.0".parse::<IpNet>(), Err(IpNetError::Syntax));
    assert_eq!("10.0.0.0/33".parse::<IpNet>(), Err(IpNetError::Prefix(33)));
    assert_eq!("::/129".parse::<IpNet>(), Err(IpNetError::Prefix(129)));
    assert_eq!("10.0.0.0/x".parse::<IpNet>(), Err(IpNetError::Syntax));
    assert_eq!("10.0.0.0/-1".parse::<IpNet>(), Err(IpNetError::Syntax));
    let net: IpNet = "10.0.0.7/8".parse().expect("host bits are ignored");
    assert!(net.contains(ip("10.255.0.1")));
    assert!(!net.contains(ip("11.0.0.1")));
    assert!(
        !net.contains(ip("::ffff:10.0.0.1")),
        "families do not mix in contains"
    );
}

#[test]
fn refusals_name_the_range() {
    let denied = EgressPolicy::default()
        .check_addr(ip("::ffff:169.254.169.254"))
        .expect_err("refused");
    assert_eq!(
        denied.to_string(),
        "connecting to ::ffff:169.254.169.254 refused: cloud metadata (it embeds 169.254.169.254)"
    );
    assert!(denied.remediation().contains("operator"));
}
