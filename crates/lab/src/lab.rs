//! Two namespaces joined by a veth pair.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// Interface name of the veth end in namespace `a`.
pub const IFNAME_A: &str = "xwa";
/// Interface name of the veth end in namespace `b`.
pub const IFNAME_B: &str = "xwb";

const MAC_A: [u8; 6] = [0x02, 0x78, 0x77, 0x00, 0x00, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x78, 0x77, 0x00, 0x00, 0x02];
const IPV4_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const IPV4_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const IPV6_A: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x78, 0x77, 0, 0, 0, 0, 1);
const IPV6_B: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x78, 0x77, 0, 0, 0, 0, 2);

/// How to build a [`Lab`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabOptions {
    /// MTU of both veth ends (68..=65535); default 1500.
    pub mtu: u32,
    /// Configure IPv6 addresses and neighbours (default true). When false,
    /// IPv6 is disabled on the veths, so no IPv6 control traffic appears.
    pub ipv6: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            mtu: 1500,
            ipv6: true,
        }
    }
}

impl LabOptions {
    /// Sets the MTU (e.g. 9000 for jumbo frames).
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = mtu;
        self
    }

    /// Enables or disables IPv6 on the veths.
    pub fn ipv6(mut self, on: bool) -> Self {
        self.ipv6 = on;
        self
    }
}

/// One end of a [`Lab`]: a namespace and its veth interface.
#[derive(Debug)]
pub struct Host {
    ns: Netns,
    ifname: &'static str,
    ifindex: u32,
    mac: [u8; 6],
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
}

impl Host {
    /// The host's network namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// Name of the veth interface inside the namespace.
    pub fn ifname(&self) -> &str {
        self.ifname
    }

    /// Interface index of the veth, as seen inside the namespace.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// MAC address of the veth.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// IPv4 address (/24).
    pub fn ipv4(&self) -> Ipv4Addr {
        self.ipv4
    }

    /// IPv6 address (/64); only configured when [`LabOptions::ipv6`] is set.
    pub fn ipv6(&self) -> Ipv6Addr {
        self.ipv6
    }

    /// The address of the given family (`v6` true: IPv6).
    pub fn ip(&self, v6: bool) -> IpAddr {
        if v6 {
            self.ipv6.into()
        } else {
            self.ipv4.into()
        }
    }
}

/// Two hosts `a` and `b` in their own namespaces, joined by a veth pair.
///
/// | end | interface | MAC | IPv4 | IPv6 |
/// | --- | --- | --- | --- | --- |
/// | a | `xwa` | 02:78:77:00:00:01 | 198.18.0.1/24 | fd00:78:77::1/64 |
/// | b | `xwb` | 02:78:77:00:00:02 | 198.18.0.2/24 | fd00:78:77::2/64 |
///
/// Links are up, IPv6 addresses are added with `nodad`, link-local address
/// generation is off (`addrgenmode none`, so no DAD/RS chatter), and static
/// neighbour entries exist both ways, so the first packet needs no ARP/ND.
/// Nothing connects the lab to the host's network.
///
/// Dropping the lab deletes both namespaces, which removes the veth pair.
/// Note: native XDP on a veth with MTU above about 3.5 KiB needs a
/// frags-aware (`xdp.frags`) program.
#[derive(Debug)]
pub struct Lab {
    a: Host,
    b: Host,
    mtu: u32,
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Lab {
    /// Builds the lab. Everything created so far is removed again on error.
    pub fn new(opts: LabOptions) -> Result<Lab> {
        if !(68..=65535).contains(&opts.mtu) {
            return Err(Error::InvalidArgument(format!(
                "MTU {} not in 68..=65535",
                opts.mtu
            )));
        }
        let ns_a = Netns::new("a")?;
        let ns_b = Netns::new("b")?;
        let (mac_a, mac_b) = (mac_str(MAC_A), mac_str(MAC_B));
        // Created directly inside the namespaces: no name ever appears in the
        // host namespace, so parallel labs cannot collide.
        ns_a.ip(&[
            "link",
            "add",
            IFNAME_A,
            "address",
            &mac_a,
            "type",
            "veth",
            "peer",
            "name",
            IFNAME_B,
            "address",
            &mac_b,
            "netns",
            ns_b.name(),
        ])?;
        let mtu = opts.mtu.to_string();
        let ends = [
            (&ns_a, IFNAME_A, IPV4_A, IPV6_A, IPV4_B, IPV6_B, &mac_b),
            (&ns_b, IFNAME_B, IPV4_B, IPV6_B, IPV4_A, IPV6_A, &mac_a),
        ];
        for (ns, ifname, v4, _, _, _, _) in ends {
            if opts.ipv6 {
                ns.ip(&["link", "set", ifname, "addrgenmode", "none"])?;
            } else {
                let knob = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
                ns.run(|| std::fs::write(&knob, "1"))?
                    .map_err(|e| Error::io(format!("writing {knob} in {}", ns.name()), e))?;
            }
            ns.ip(&["link", "set", ifname, "mtu", &mtu, "up"])?;
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", ifname])?;
        }
        for (ns, ifname, _, v6, peer4, peer6, peer_mac) in ends {
            ns.ip(&[
                "neigh",
                "replace",
                &peer4.to_string(),
                "lladdr",
                peer_mac,
                "dev",
                ifname,
                "nud",
                "permanent",
            ])?;
            if opts.ipv6 {
                ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", ifname, "nodad"])?;
                ns.ip(&[
                    "-6",
                    "neigh",
                    "replace",
                    &peer6.to_string(),
                    "lladdr",
                    peer_mac,
                    "dev",
                    ifname,
                    "nud",
                    "permanent",
                ])?;
            }
        }
        let ifindex_a = ifindex_in(&ns_a, IFNAME_A)?;
        let ifindex_b = ifindex_in(&ns_b, IFNAME_B)?;
        Ok(Lab {
            a: Host {
                ns: ns_a,
                ifname: IFNAME_A,
                ifindex: ifindex_a,
                mac: MAC_A,
                ipv4: IPV4_A,
                ipv6: IPV6_A,
            },
            b: Host {
                ns: ns_b,
                ifname: IFNAME_B,
                ifindex: ifindex_b,
                mac: MAC_B,
                ipv4: IPV4_B,
                ipv6: IPV6_B,
            },
            mtu: opts.mtu,
        })
    }

    /// Host `a` (interface `xwa`, 198.18.0.1, fd00:78:77::1).
    pub fn a(&self) -> &Host {
        &self.a
    }

    /// Host `b` (interface `xwb`, 198.18.0.2, fd00:78:77::2).
    pub fn b(&self) -> &Host {
        &self.b
    }

    /// The MTU both veth ends were configured with.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }
}

/// `if_nametoindex` evaluated inside `ns`.
fn ifindex_in(ns: &Netns, ifname: &str) -> Result<u32> {
    let c = std::ffi::CString::new(ifname)
        .map_err(|_| Error::InvalidArgument(format!("interface name {ifname:?}")))?;
    let (idx, err) = ns.run(|| {
        // SAFETY: `c` is a valid NUL-terminated string for the call.
        let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
        (idx, std::io::Error::last_os_error())
    })?;
    if idx == 0 {
        return Err(Error::io(
            format!("if_nametoindex({ifname}) in {}", ns.name()),
            err,
        ));
    }
    Ok(idx)
}
