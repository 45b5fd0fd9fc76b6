//! Names, labels and keys the later stages share, owned here because the
//! cluster is the earliest stage that needs them.

use crate::model::types::{Cloud, OsType};

/// Label of nodes that offer Hyper-V isolated containers.
pub const HYPERV_LABEL: &str = "hke.io/hyperv";

/// Pools of at least this many nodes become one machine group (VMSS, ASG,
/// MIG), unless the network plugin needs a route per node (kubenet).
pub const MACHINE_GROUP_MIN: u32 = 20;

/// Windows computer names are at most 15 characters.
pub const WINDOWS_NAME_MAX: usize = 15;

/// The first four characters of Windows node names: the cluster id's. GCE
/// names must start with a letter, so there a leading digit becomes one of
/// `g`–`p` (never a hex digit: no clash with another cluster's id).
pub fn windows_stem(cluster_id: &str, cloud: Cloud) -> String {
    let stem = &cluster_id[..4.min(cluster_id.len())];
    match stem.as_bytes().first() {
        Some(d) if cloud == Cloud::Gcp && d.is_ascii_digit() => {
            format!("{}{}", char::from(b'g' + (d - b'0')), &stem[1..])
        }
        _ => stem.to_string(),
    }
}

/// Node name of instance `i` of a pool.
pub fn node_name(cluster_id: &str, cloud: Cloud, pool: &str, pool_index: usize, os: OsType, i: u32) -> String {
    match os {
        // <4 id chars>k8s<2-digit pool index><instance>: 1708k8s01002
        OsType::Windows => format!("{}k8s{:02}{:03}", windows_stem(cluster_id, cloud), pool_index % 100, i),
        OsType::Linux => format!("k8s-{pool}-{cluster_id}-{i}"),
    }
}
