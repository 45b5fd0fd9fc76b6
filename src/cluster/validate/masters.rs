//! The master profile: dnsPrefix (the cluster's name), count, size, disk,
//! the masters' addresses (firstConsecutiveStaticIP, the Azure internal
//! load balancer, the AWS spread over zones), extra SANs, the API server's
//! source range and the masters' kubelet flags.

use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::cluster::defaults;
use crate::cluster::Masters;
use crate::model::types::{Cidr, Cloud, DnsPrefix};
use crate::model::vlabs;
use crate::secrets::is_placeholder;

use super::fields::{check_flags, check_vm_size, dns_subdomain_ok};
use super::kubernetes::Kube;
use super::V;

/// What the master profile decides, for the later sections and the `Cluster`.
pub(super) struct Control {
    pub(super) name: DnsPrefix,
    pub(super) id: String,
    pub(super) masters: Masters,
    pub(super) internal_lb_ip: Option<Ipv4Addr>,
    pub(super) api_source_ranges: Vec<String>,
}

/// The master profile, in the order of its checks.
pub(super) fn masters(v: &mut V<'_>, master: &vlabs::MasterProfile, cloud: Cloud, kube: &Kube) -> Control {
    let mpath = "properties.masterProfile";
    let name = dns_prefix(v, master);
    let id = defaults::cluster_id(name.as_str());
    let master_count = count(v, master);
    let master_size = master.vm_size.clone().unwrap_or_else(|| defaults::VM_SIZE.into());
    check_vm_size(v, cloud, &format!("{mpath}.vmSize"), &master_size);
    let master_disk = master.os_disk_size_gb.unwrap_or(defaults::OS_DISK_GB);
    if !(30..=2048).contains(&master_disk) {
        v.err(
            &format!("{mpath}.osDiskSizeGB"),
            format!("osDiskSizeGB {master_disk} is out of range"),
            "use 30 to 2048".to_string(),
        );
    }
    let (master_ips, internal_lb_ip) = addresses(v, master, cloud, kube.node_cidr, master_count);
    let extra_sans = extra_sans(v, master);
    let api_source_ranges = api_source_ranges(v, master);
    check_flags(
        v,
        &format!("{mpath}.kubernetesConfig.kubeletConfig"),
        master
            .kubernetes_config
            .as_ref()
            .and_then(|c| c.kubelet_config.as_ref()),
        true,
    );
    let kubelet_flags = &kube.kubelet_flags;
    let master_kubelet = {
        let mut f = kubelet_flags.clone();
        if let Some(user) = master
            .kubernetes_config
            .as_ref()
            .and_then(|c| c.kubelet_config.as_ref())
        {
            f.extend(user.clone());
        }
        f
    };
    Control {
        name,
        masters: Masters {
            count: master_count,
            vm_size: master_size,
            os_disk_gb: master_disk as u32,
            names: (0..master_count).map(|i| format!("k8s-master-{id}-{i}")).collect(),
            ips: master_ips,
            extra_sans,
            kubelet_flags: master_kubelet,
        },
        id,
        internal_lb_ip,
        api_source_ranges,
    }
}

/// dnsPrefix: present and a valid prefix (a placeholder is reported by the
/// placeholder scan). A wrong one reads as `hke-cluster`.
fn dns_prefix(v: &mut V<'_>, master: &vlabs::MasterProfile) -> DnsPrefix {
    let mpath = "properties.masterProfile";
    match master.dns_prefix.as_deref() {
        None | Some("") => {
            v.err(
                &format!("{mpath}.dnsPrefix"),
                "dnsPrefix is missing or empty; it names the cluster and its DNS label",
                "set it, e.g. \"dnsPrefix\": \"mycluster\" (hke migrate fills one in)".to_string(),
            );
            DnsPrefix::from_str("hke-cluster").unwrap_or_else(|_| unreachable!())
        }
        Some(s) => match s.parse() {
            Ok(d) => d,
            Err(e) => {
                if !is_placeholder(s) {
                    v.err(&format!("{mpath}.dnsPrefix"), e, None);
                }
                DnsPrefix::from_str("hke-cluster").unwrap_or_else(|_| unreachable!())
            }
        },
    }
}

/// count: 1, 3 or 5 (a wrong one reads as 1).
fn count(v: &mut V<'_>, master: &vlabs::MasterProfile) -> u32 {
    let mpath = "properties.masterProfile";
    let master_count = master.count.unwrap_or(1);
    if ![1, 3, 5].contains(&master_count) {
        v.err(
            &format!("{mpath}.count"),
            format!("masterProfile count {master_count} is not allowed"),
            "use 1, 3 or 5 (etcd needs an odd quorum)".to_string(),
        );
    }
    if [1, 3, 5].contains(&master_count) {
        master_count as u32
    } else {
        1
    }
}

/// The masters' addresses from firstConsecutiveStaticIP, each usable in
/// vnetCidr (spread over the zones on AWS), and the Azure internal load
/// balancer's address.
fn addresses(
    v: &mut V<'_>,
    master: &vlabs::MasterProfile,
    cloud: Cloud,
    node_cidr: Cidr,
    master_count: u32,
) -> (Vec<Ipv4Addr>, Option<Ipv4Addr>) {
    let mpath = "properties.masterProfile";
    let fpath = format!("{mpath}.firstConsecutiveStaticIP");
    let first_ip = match master
        .first_consecutive_static_ip
        .as_deref()
        .map(str::parse::<Ipv4Addr>)
    {
        Some(Ok(ip)) => ip,
        Some(Err(_)) => {
            v.err(
                &fpath,
                format!(
                    "{:?} is not an IPv4 address",
                    master.first_consecutive_static_ip.as_deref().unwrap_or("")
                ),
                None,
            );
            defaults::first_master_ip(&node_cidr).unwrap_or(node_cidr.network())
        }
        None => defaults::first_master_ip(&node_cidr).unwrap_or(node_cidr.network()),
    };
    let mut master_ips = Vec::new();
    for i in 0..master_count {
        let ip = Ipv4Addr::from(u32::from(first_ip).wrapping_add(i));
        if !node_cidr.contains(ip) || ip == node_cidr.network() || ip == node_cidr.broadcast() {
            v.err(
                &fpath,
                format!("master {i} would get {ip}, which is not a usable address of vnetCidr {node_cidr}"),
                "choose a firstConsecutiveStaticIP with room for every master inside vnetCidr".to_string(),
            );
            break;
        }
        master_ips.push(ip);
    }
    if cloud == Cloud::Aws && master_ips.len() == master_count as usize {
        aws_spread_masters(v, &fpath, &node_cidr, &mut master_ips);
    }
    let internal_lb_ip = (cloud == Cloud::Azure && master_count > 1)
        .then(|| Ipv4Addr::from(u32::from(first_ip).wrapping_add(defaults::INTERNAL_LB_OFFSET)))
        .filter(|ip| node_cidr.contains(*ip) && *ip != node_cidr.broadcast());
    if cloud == Cloud::Azure && master_count > 1 && internal_lb_ip.is_none() {
        v.err(
            &fpath,
            format!("the internal load balancer address ({first_ip} + 10) is outside vnetCidr {node_cidr}"),
            "choose a lower firstConsecutiveStaticIP".to_string(),
        );
    }
    (master_ips, internal_lb_ip)
}

/// subjectAltNames: DNS names (wildcards too) or IPv4 addresses.
fn extra_sans(v: &mut V<'_>, master: &vlabs::MasterProfile) -> Vec<String> {
    let mpath = "properties.masterProfile";
    let mut extra_sans = Vec::new();
    for (i, san) in master
        .subject_alt_names
        .clone()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let ok = san.parse::<Ipv4Addr>().is_ok()
            || dns_subdomain_ok(&san.to_ascii_lowercase())
            || (san.starts_with("*.") && dns_subdomain_ok(&san[2..].to_ascii_lowercase()));
        if ok {
            extra_sans.push(san);
        } else {
            v.err(
                &format!("{mpath}.subjectAltNames[{i}]"),
                format!("{san:?} is neither a DNS name nor an IPv4 address"),
                None,
            );
        }
    }
    extra_sans
}

/// HTTPSourceAddressPrefix: the source range of the API server.
fn api_source_ranges(v: &mut V<'_>, master: &vlabs::MasterProfile) -> Vec<String> {
    let mpath = "properties.masterProfile";
    let mut api_source_ranges = Vec::new();
    match master.http_source_address_prefix.as_deref() {
        None | Some("*") | Some("") | Some("Internet") => api_source_ranges.push("0.0.0.0/0".to_string()),
        Some(s) => match s.parse::<Cidr>() {
            Ok(c) => api_source_ranges.push(c.to_string()),
            Err(e) => v.err(
                &format!("{mpath}.HTTPSourceAddressPrefix"),
                e,
                "use a CIDR such as 203.0.113.0/24, or \"*\"".to_string(),
            ),
        },
    }
    api_source_ranges
}

/// AWS: spread several masters one per availability zone. An AWS subnet
/// lies in one zone, and the provider makes the node range's quarters its
/// subnets, quarter q in the region's zone q mod 3 (providers/aws
/// `create_subnets`): consecutive addresses would put every master in one
/// quarter, so one zone. Master 0 keeps firstConsecutiveStaticIP; master i
/// takes the same place in the quarter of the next zone, one address
/// further in each round of three. A range too small to quarter (smaller
/// than /26) keeps consecutive addresses.
fn aws_spread_masters(v: &mut V<'_>, fpath: &str, node: &Cidr, ips: &mut [Ipv4Addr]) {
    const ZONES: u32 = 3;
    if ips.len() < 2 || node.prefix() > 26 {
        return;
    }
    let base = u32::from(node.network());
    let quarter = (node.size() / 4) as u32;
    let first = u32::from(ips[0]) - base;
    let (q0, offset) = (first / quarter, first % quarter);
    for (i, ip) in ips.iter_mut().enumerate() {
        let i = i as u32;
        let zone = (q0 % ZONES + i) % ZONES;
        let q = if q0 % ZONES == zone { q0 } else { zone };
        let at = offset + i / ZONES;
        // AWS keeps the first four addresses and the last of every subnet.
        if at < 4 || at >= quarter - 1 {
            v.err(
                fpath,
                format!(
                    "on AWS the masters are spread over the zones' subnets (quarters of vnetCidr {node}); master {i} \
                     would get address {at} of its quarter, which AWS reserves"
                ),
                "choose a firstConsecutiveStaticIP at least 4 addresses past the start of its quarter and a few before its end"
                    .to_string(),
            );
            return;
        }
        *ip = Ipv4Addr::from(base + q * quarter + at);
    }
}

#[cfg(test)]
mod aws_tests {
    use super::*;

    fn spread(cidr: &str, first: &str, n: u32) -> (Vec<String>, bool) {
        let node: Cidr = cidr.parse().expect("cidr");
        let first: Ipv4Addr = first.parse().expect("ip");
        let mut ips: Vec<Ipv4Addr> = (0..n).map(|i| Ipv4Addr::from(u32::from(first) + i)).collect();
        let origins = crate::model::diag::Origins::default();
        let mut diags = crate::model::diag::Diagnostics::default();
        let mut v = V {
            origins: &origins,
            diags: &mut diags,
        };
        aws_spread_masters(
            &mut v,
            "properties.masterProfile.firstConsecutiveStaticIP",
            &node,
            &mut ips,
        );
        (ips.iter().map(Ipv4Addr::to_string).collect(), diags.has_errors())
    }

    #[test]
    fn aws_masters_take_one_quarter_per_zone() {
        // Quarter q of 10.240.0.0/16 is in zone q mod 3: 3 → a, 1 → b, 2 → c.
        assert_eq!(
            spread("10.240.0.0/16", "10.240.255.5", 3),
            (
                vec!["10.240.255.5".into(), "10.240.127.5".into(), "10.240.191.5".into()],
                false
            )
        );
        // Five masters: a second round one address further on.
        assert_eq!(
            spread("10.240.0.0/16", "10.240.255.5", 5).0,
            vec![
                "10.240.255.5",
                "10.240.127.5",
                "10.240.191.5",
                "10.240.255.6",
                "10.240.127.6"
            ]
        );
        // A first address in quarter 0 (zone a): then b and c.
        assert_eq!(
            spread("10.0.0.0/24", "10.0.0.10", 3).0,
            vec!["10.0.0.10", "10.0.0.74", "10.0.0.138"]
        );
        // One master, or a range too small to quarter: as given.
        assert_eq!(spread("10.240.0.0/16", "10.240.255.5", 1).0, vec!["10.240.255.5"]);
        assert_eq!(
            spread("10.0.0.0/27", "10.0.0.4", 3).0,
            vec!["10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
        // An address AWS reserves in another quarter is an error.
        assert!(spread("10.0.0.0/24", "10.0.0.194", 3).1);
    }
}
