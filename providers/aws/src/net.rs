//! Names and address ranges as AWS wants them.

use std::net::Ipv4Addr;

/// ELBv2 load balancer and target group names: at most 32 characters of
/// letters, digits and hyphens, not starting or ending with a hyphen. Longer
/// names keep their start and get a stable hash suffix.
pub fn elb_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let clean = clean.trim_matches('-').to_string();
    if clean.len() <= 32 {
        return clean;
    }
    let hash = fnv1a(name.as_bytes());
    let head = clean[..23].trim_end_matches('-');
    format!("{head}-{:08x}", hash as u32)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A stable small number for a name (spreading machines over zones).
pub fn spread(name: &str, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (fnv1a(name.as_bytes()) % n as u64) as usize
    }
}

/// An IPv4 range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Range {
    pub fn parse(s: &str) -> Option<Range> {
        let (a, p) = s.split_once('/')?;
        let prefix: u8 = p.parse().ok()?;
        let base: Ipv4Addr = a.parse().ok()?;
        (prefix <= 32).then_some(Range { base, prefix })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        (u32::from(ip) & mask) == (u32::from(self.base) & mask)
    }

    /// The range split into 4 equal parts (when each part can still be an
    /// AWS subnet, at most /28), else the range itself.
    pub fn quarters(&self) -> Vec<Range> {
        if self.prefix + 2 > 28 {
            return vec![*self];
        }
        let size = 1u32 << (32 - u32::from(self.prefix) - 2);
        (0..4)
            .map(|i| Range {
                base: Ipv4Addr::from(u32::from(self.base) + i * size),
                prefix: self.prefix + 2,
            })
            .collect()
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elb_names_fit_and_stay_distinct() {
        assert_eq!(elb_name("hke-windows-aws-apiserver"), "hke-windows-aws-apiserver");
        let a = elb_name("a-very-long-cluster-name-for-windows-apiserver");
        let b = elb_name("a-very-long-cluster-name-for-windows-apiserver-tg");
        assert!(a.len() <= 32 && b.len() <= 32, "{a} {b}");
        assert_ne!(a, b);
        assert!(!a.ends_with('-') && !a.starts_with('-'));
        assert_eq!(elb_name("x.y_z"), "x-y-z");
    }

    #[test]
    fn quarters_cover_the_range() {
        let r = Range::parse("10.240.0.0/16").expect("range");
        let q = r.quarters();
        assert_eq!(q.len(), 4);
        assert_eq!(q[3].to_string(), "10.240.192.0/18");
        assert!(q[3].contains("10.240.255.5".parse().expect("ip")));
        assert!(!q[0].contains("10.240.64.1".parse().expect("ip")));
        assert_eq!(Range::parse("10.0.0.0/27").expect("r").quarters().len(), 1);
    }
}
