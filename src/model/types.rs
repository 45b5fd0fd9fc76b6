//! Parsed values: once a string has become one of these, later stages need
//! not check it again.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Serialize, Serializer};

fn ser_display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// An IPv4 CIDR. The address keeps its host bits (acs-engine's
/// `dockerBridgeSubnet` default is `172.17.0.1/16`: a gateway and its prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_display(self, s)
    }
}

impl Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Cidr> {
        (prefix <= 32).then_some(Cidr { addr, prefix })
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The last address of the range.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !self.mask())
    }

    /// Number of addresses in the range.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// The `n`th address from the network address, if it is in range.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.network()).wrapping_add(n as u32)))
    }

    /// Is the address given with host bits set (`10.0.0.5/16`)?
    pub fn has_host_bits(&self) -> bool {
        self.addr != self.network()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR: write an address and a prefix length, e.g. 10.244.0.0/16"))?;
        if addr.contains(':') {
            return Err(format!("{s:?} is an IPv6 range; hke builds IPv4 clusters"));
        }
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR: {addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{s:?} is not a CIDR: the prefix length must be 0–32"))?;
        Ok(Cidr { addr, prefix })
    }
}

/// `masterProfile.dnsPrefix`: 3–45 characters of letters, digits and hyphens,
/// starting with a letter and ending with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DnsPrefix(String);

impl DnsPrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DnsPrefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let ok_len = (3..=45).contains(&s.len());
        let first = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        let last = s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
        let chars = s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if ok_len && first && last && chars {
            Ok(DnsPrefix(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not a valid dnsPrefix: it must be 3 to 45 characters of letters, digits and hyphens, start with a letter and end with a letter or digit (length {})",
                s.len()
            ))
        }
    }
}

/// A Kubernetes version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct K8sVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Serialize for K8sVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_display(self, s)
    }
}

impl K8sVersion {
    pub fn release(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for K8sVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for K8sVersion {
    type Err = String;

    /// Accepts `1.36.4` and `v1.36.4`; a release `1.36` has patch 0 here
    /// (the version table resolves releases to their newest patch).
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().trim_start_matches('v');
        let parts: Vec<&str> = t.split('.').collect();
        let num = |p: &str| {
            p.parse::<u32>()
                .ok()
                .filter(|_| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        };
        match parts.as_slice() {
            [a, b] => Some((num(a), num(b), Some(0))),
            [a, b, c] => Some((num(a), num(b), num(c))),
            _ => None,
        }
        .and_then(|(a, b, c)| {
            Some(K8sVersion {
                major: a?,
                minor: b?,
                patch: c?,
            })
        })
        .ok_or_else(|| format!("{s:?} is not a Kubernetes version such as 1.36.4"))
    }
}

/// A supported Windows Server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WindowsVersion {
    Ws2019,
    Ws2022,
    Ws2025,
}

impl Serialize for WindowsVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_display(self, s)
    }
}

impl WindowsVersion {
    pub const ALL: [WindowsVersion; 3] = [WindowsVersion::Ws2019, WindowsVersion::Ws2022, WindowsVersion::Ws2025];

    pub fn name(&self) -> &'static str {
        match self {
            WindowsVersion::Ws2019 => "2019",
            WindowsVersion::Ws2022 => "2022",
            WindowsVersion::Ws2025 => "2025",
        }
    }
}

impl fmt::Display for WindowsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a Windows version string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowsVersionError {
    /// A real but retired release (1803, 1809 SAC, 2016, …).
    Retired(String),
    Unknown(String),
}

impl FromStr for WindowsVersion {
    type Err = WindowsVersionError;

    /// Accepts `2022`, `ws2022`, `ltsc2022` and the build `10.0.20348`/`20348`.
    fn from_str(s: &str) -> Result<Self, WindowsVersionError> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.trim_start_matches("windows").trim_start_matches("server").trim();
        let t = t
            .trim_start_matches("ws")
            .trim_start_matches("ltsc")
            .trim_start_matches("10.0.");
        match t {
            "2019" | "17763" => Ok(WindowsVersion::Ws2019),
            "2022" | "20348" => Ok(WindowsVersion::Ws2022),
            "2025" | "26100" => Ok(WindowsVersion::Ws2025),
            "2016" | "14393" | "1709" | "16299" | "1803" | "17134" | "1809" | "1903" | "18362" | "1909" | "18363"
            | "2004" | "19041" | "20h2" | "19042" => Err(WindowsVersionError::Retired(s.to_string())),
            _ => Err(WindowsVersionError::Unknown(s.to_string())),
        }
    }
}

/// The cloud a cluster is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    Azure,
    Aws,
    Gcp,
    /// A private cloud's OpenStack (Keystone, Nova, Neutron, Glance; Octavia
    /// where the catalog has it).
    OpenStack,
    /// The in-process fake cloud used by tests and demos.
    Fake,
}

impl Cloud {
    pub fn name(&self) -> &'static str {
        match self {
            Cloud::Azure => "azure",
            Cloud::Aws => "aws",
            Cloud::Gcp => "gcp",
            Cloud::OpenStack => "openstack",
            Cloud::Fake => "fake",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Cloud {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "azure" | "azurepubliccloud" => Ok(Cloud::Azure),
            "aws" | "amazon" => Ok(Cloud::Aws),
            "gcp" | "gce" | "google" => Ok(Cloud::Gcp),
            "openstack" => Ok(Cloud::OpenStack),
            "fake" => Ok(Cloud::Fake),
            _ => Err(format!(
                "{s:?} is not a cloud hke knows; use azure, aws, gcp or openstack"
            )),
        }
    }
}

/// The pod network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkPlugin {
    /// Azure CNI: pods take VNet addresses. Azure only.
    Azure,
    /// Per-node pod CIDRs routed by cloud route tables; l2bridge on Windows.
    Kubenet,
    /// VXLAN overlay (VNI 4096, UDP 4789); win-overlay on Windows.
    Flannel,
    /// Calico VXLAN, HostProcess on Windows.
    Calico,
}

impl NetworkPlugin {
    pub fn name(&self) -> &'static str {
        match self {
            NetworkPlugin::Azure => "azure",
            NetworkPlugin::Kubenet => "kubenet",
            NetworkPlugin::Flannel => "flannel",
            NetworkPlugin::Calico => "calico",
        }
    }

    /// Does the plugin encapsulate pod traffic (UDP 4789 between nodes)?
    pub fn is_overlay(&self) -> bool {
        matches!(self, NetworkPlugin::Flannel | NetworkPlugin::Calico)
    }
}

impl fmt::Display for NetworkPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Pool operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum OsType {
    Linux,
    Windows,
}

/// Key algorithm for generated keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KeyAlgorithm {
    EcdsaP256,
    Rsa2048,
    Rsa4096,
}

impl KeyAlgorithm {
    pub fn name(&self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
            KeyAlgorithm::Rsa2048 => "RSA-2048",
            KeyAlgorithm::Rsa4096 => "RSA-4096",
        }
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().replace(['_', ' '], "-").as_str() {
            "ECDSA-P256" | "ECDSA" | "P256" | "EC" => Ok(KeyAlgorithm::EcdsaP256),
            "RSA-2048" | "RSA2048" => Ok(KeyAlgorithm::Rsa2048),
            "RSA-4096" | "RSA4096" | "RSA" => Ok(KeyAlgorithm::Rsa4096),
            _ => Err(format!(
                "{s:?} is not a key algorithm; use ECDSA-P256, RSA-2048 or RSA-4096"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_table() {
        let c: Cidr = "10.244.0.0/16".parse().expect("valid");
        assert_eq!(c.size(), 65536);
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 244, 255, 255));
        assert!(c.contains(Ipv4Addr::new(10, 244, 3, 4)));
        assert!(!c.contains(Ipv4Addr::new(10, 245, 0, 0)));
        assert_eq!(c.nth(10), Some(Ipv4Addr::new(10, 244, 0, 10)));
        assert_eq!(c.nth(65536), None);
        let bridge: Cidr = "172.17.0.1/16".parse().expect("host bits allowed");
        assert!(bridge.has_host_bits());
        assert_eq!(bridge.network(), Ipv4Addr::new(172, 17, 0, 0));
        assert_eq!(bridge.to_string(), "172.17.0.1/16");
        let all: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
        for (a, b, overlap) in [
            ("10.0.0.0/8", "10.240.0.0/16", true),
            ("10.240.0.0/16", "10.0.0.0/8", true),
            ("10.0.0.0/16", "10.1.0.0/16", false),
            ("10.0.0.0/15", "10.1.0.0/16", true),
            ("192.168.0.0/24", "192.168.0.255/32", true),
        ] {
            let (a, b): (Cidr, Cidr) = (a.parse().expect("a"), b.parse().expect("b"));
            assert_eq!(a.overlaps(&b), overlap, "{a} {b}");
        }
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "fd00::/108", "x/8", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_prefix_table() {
        for ok in ["abc", "kubernetes-windows", "a1-b2", &"a".repeat(45)] {
            assert!(ok.parse::<DnsPrefix>().is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "1abc",
            "abc-",
            "a_bc",
            "",
            &"a".repeat(46),
            "ab.c",
            "<your-dns-prefix>",
        ] {
            assert!(bad.parse::<DnsPrefix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn k8s_version_table() {
        assert_eq!(
            "1.36.4".parse(),
            Ok(K8sVersion {
                major: 1,
                minor: 36,
                patch: 4
            })
        );
        assert_eq!(
            "v1.11.1".parse(),
            Ok(K8sVersion {
                major: 1,
                minor: 11,
                patch: 1
            })
        );
        assert_eq!(
            "1.36".parse(),
            Ok(K8sVersion {
                major: 1,
                minor: 36,
                patch: 0
            })
        );
        for bad in ["", "1", "1.x", "1.2.3.4", "1.2.+3", "1..2"] {
            assert!(bad.parse::<K8sVersion>().is_err(), "{bad}");
        }
        assert!("1.9.0".parse::<K8sVersion>().expect("v") < "1.10.0".parse().expect("v"));
    }

    #[test]
    fn windows_version_table() {
        for (s, v) in [
            ("2019", WindowsVersion::Ws2019),
            ("ltsc2022", WindowsVersion::Ws2022),
            ("10.0.26100", WindowsVersion::Ws2025),
            ("WS2022", WindowsVersion::Ws2022),
            ("17763", WindowsVersion::Ws2019),
        ] {
            assert_eq!(s.parse::<WindowsVersion>(), Ok(v), "{s}");
        }
        for retired in ["1803", "1809", "2016", "1903", "2004", "20H2"] {
            assert!(
                matches!(retired.parse::<WindowsVersion>(), Err(WindowsVersionError::Retired(_))),
                "{retired}"
            );
        }
        assert!(matches!(
            "vista".parse::<WindowsVersion>(),
            Err(WindowsVersionError::Unknown(_))
        ));
    }

    #[test]
    fn cloud_and_key_algorithm_table() {
        assert_eq!("AWS".parse(), Ok(Cloud::Aws));
        assert_eq!("gce".parse(), Ok(Cloud::Gcp));
        assert_eq!("OpenStack".parse(), Ok(Cloud::OpenStack));
        assert!("vsphere".parse::<Cloud>().is_err());
        assert_eq!("rsa-2048".parse(), Ok(KeyAlgorithm::Rsa2048));
        assert_eq!("ECDSA-P256".parse(), Ok(KeyAlgorithm::EcdsaP256));
        assert!("dsa".parse::<KeyAlgorithm>().is_err());
    }
}
