//! Outbound SNAT sizing for Azure's Standard load balancer, shared by the
//! plan (how many frontend public addresses) and the Azure provider (the
//! outbound rule's `allocatedOutboundPorts`).
//!
//! Every node (masters too) is in the load balancer's `nodes` backend pool
//! and leaves through its outbound rule. With ARM's default allocation a
//! pool of 801–1,000 instances gets 32 ports each from one frontend IP, so
//! hke allocates ports explicitly and adds frontend addresses for them.

/// Ephemeral ports one frontend public IP gives an outbound rule.
// Source: learn.microsoft.com/azure/load-balancer/load-balancer-outbound-connections
// ("Azure gives 64,000 for use as ephemeral ports" per IP address).
pub const PORTS_PER_FRONTEND_IP: u64 = 64_000;

/// SNAT ports hke allocates to every backend instance: what ARM's default
/// table gives the smallest pools (1–50 instances: 1,024), kept at any size.
// Source: learn.microsoft.com/azure/load-balancer/load-balancer-outbound-connections
// (default port allocation table: 1-50 → 1,024 … 801-1,000 → 32); the value
// must be a multiple of 8 (load-balancer-outbound-rules "Scale").
pub const PORTS_PER_NODE: u32 = 1_024;

/// Frontend public IPs (the API server's included) an outbound rule needs
/// so that `backend` instances get `PORTS_PER_NODE` ports each:
/// backend × ports ≤ IPs × 64,000.
// Source: learn.microsoft.com/azure/load-balancer/outbound-rules
// ("Number of frontend IPs * 64K / Number of backend instances").
pub fn frontend_ips(backend: u64) -> u64 {
    (backend * u64::from(PORTS_PER_NODE))
        .div_ceil(PORTS_PER_FRONTEND_IP)
        .max(1)
}

/// The cloud name of the `k`-th extra outbound address (k ≥ 1) of the load
/// balancer named `lb`; the provider finds them by this prefix.
pub fn outbound_address_name(lb: &str, k: u64) -> String {
    format!("{}{k}", outbound_address_prefix(lb))
}

/// The prefix of every extra outbound address name of load balancer `lb`.
pub fn outbound_address_prefix(lb: &str) -> String {
    format!("{lb}-outbound-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizing_keeps_every_node_at_1024_ports() {
        assert_eq!(PORTS_PER_NODE % 8, 0);
        assert_eq!(frontend_ips(0), 1);
        assert_eq!(frontend_ips(1), 1);
        assert_eq!(frontend_ips(62), 1, "62 × 1,024 = 63,488 ≤ 64,000");
        assert_eq!(frontend_ips(63), 2);
        assert_eq!(frontend_ips(1_000), 16);
        assert_eq!(frontend_ips(1_003), 17);
        for b in [1u64, 50, 62, 63, 200, 999, 1_000, 1_003, 5_000] {
            let ips = frontend_ips(b);
            assert!(b * u64::from(PORTS_PER_NODE) <= ips * PORTS_PER_FRONTEND_IP, "{b}");
            assert!(
                ips == 1 || b * u64::from(PORTS_PER_NODE) > (ips - 1) * PORTS_PER_FRONTEND_IP,
                "{b}: minimal"
            );
        }
    }
}
