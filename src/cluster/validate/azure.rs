//! Azure's rules: the enumerations and ranges of Azure-only settings
//! (checked on every cloud), and Azure's limits on what the plan makes.

use std::collections::BTreeSet;

use crate::cluster::names;
use crate::cluster::Pool;
use crate::model::types::NetworkPlugin;
use crate::model::vlabs;

use super::fields::{in_range, one_of};
use super::V;

/// "User-defined routes per route table: 400" (Azure subscription and service
/// limits, Networking limits - Azure Resource Manager).
pub const AZURE_ROUTES_PER_TABLE: u64 = 400;
/// "Virtual machines per availability set: 200" (Azure subscription and
/// service limits, Virtual Machines limits - Azure Resource Manager).
pub const AZURE_AVAILABILITY_SET_MAX: u32 = 200;

/// Azure's limits on what the plan makes, refused here rather than
/// mid-deploy. A pool is also one scale set at most: the pool count check
/// (1 to 1000) matches a scale set's 1,000 instances, and sets over 100
/// span placement groups (the provider sets `singlePlacementGroup: false`).
pub(super) fn azure_limits(v: &mut V<'_>, plugin: NetworkPlugin, name: &str, master_count: u32, pools: &[Pool]) {
    let mpath = "properties.masterProfile";
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    // dnsPrefix is the DNS label of the API server's public IP, which ARM
    // requires to match ^[a-z][a-z0-9-]{1,61}[a-z0-9]$ (domainNameLabel,
    // Network REST API "Check Dns Name Availability").
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        v.err(
            &format!("{mpath}.dnsPrefix"),
            format!(
                "dnsPrefix {name:?} has capital letters; on Azure it is the DNS label of the API server's public IP, \
                 which must be lower case"
            ),
            format!("use \"dnsPrefix\": {:?}", name.to_ascii_lowercase()),
        );
    }
    // kubenet: one route per node in the VNet's one route table.
    if plugin == NetworkPlugin::Kubenet {
        let routes = u64::from(master_count) + pools.iter().map(|p| u64::from(p.count)).sum::<u64>();
        if routes > AZURE_ROUTES_PER_TABLE {
            v.err(
                &format!("{kpath}.networkPlugin"),
                format!(
                    "networkPlugin \"kubenet\" on Azure needs one route per node: {routes} routes, over the \
                     {AZURE_ROUTES_PER_TABLE} routes an Azure route table holds"
                ),
                format!("use networkPlugin azure, flannel or calico, or at most {AZURE_ROUTES_PER_TABLE} nodes with kubenet"),
            );
        }
    }
    // A pool's machines share an availability set unless the pool is a
    // scale set, which every pool of 20 or more is, but with kubenet (a
    // route per machine). Such a pool is refused rather than split over
    // several sets: with kubenet it cannot become a scale set, and the
    // route limit caps the cluster at 400 nodes anyway.
    for pool in pools {
        let in_set = plugin == NetworkPlugin::Kubenet || pool.count < names::MACHINE_GROUP_MIN;
        if in_set && pool.count > AZURE_AVAILABILITY_SET_MAX {
            v.err(
                &format!("properties.agentPoolProfiles[{}].count", pool.index),
                format!(
                    "pool {} has {} nodes; with networkPlugin \"kubenet\" each is a VM in the pool's availability set, \
                     which holds at most {AZURE_AVAILABILITY_SET_MAX} VMs",
                    pool.name, pool.count
                ),
                format!(
                    "split it into pools of at most {AZURE_AVAILABILITY_SET_MAX} nodes, or use networkPlugin azure, \
                     flannel or calico (the pool becomes one scale set)"
                ),
            );
        }
    }
}

/// Azure-only settings: checked wherever they appear, since a wrong value is
/// wrong on every cloud (and off Azure they only warn as having no effect).
pub(super) fn azure_rules(
    v: &mut V<'_>,
    k: &vlabs::KubernetesConfig,
    master: &vlabs::MasterProfile,
    pools: &[vlabs::AgentPoolProfile],
) {
    const CACHING: &[&str] = &["None", "ReadWrite", "ReadOnly"];
    const AVAILABILITY: &[&str] = &["AvailabilitySet", "VirtualMachineScaleSets"];
    let kpath = "properties.orchestratorProfile.kubernetesConfig";
    let mpath = "properties.masterProfile";
    let fields: [(String, Option<&str>, &[&str]); 5] = [
        (
            format!("{kpath}.loadBalancerSku"),
            k.load_balancer_sku.as_deref(),
            &["Standard", "Basic"],
        ),
        (
            format!("{kpath}.networkMode"),
            k.network_mode.as_deref(),
            &["transparent", "bridge"],
        ),
        (
            format!("{mpath}.storageProfile"),
            master.storage_profile.as_deref(),
            &["ManagedDisks", "StorageAccount"],
        ),
        (
            format!("{mpath}.availabilityProfile"),
            master.availability_profile.as_deref(),
            AVAILABILITY,
        ),
        (
            format!("{mpath}.osDiskCachingType"),
            master.os_disk_caching_type.as_deref(),
            CACHING,
        ),
    ];
    for (path, value, allowed) in &fields {
        one_of(v, path, *value, allowed);
    }
    in_range(
        v,
        &format!("{kpath}.outboundRuleIdleTimeoutInMinutes"),
        k.outbound_rule_idle_timeout_in_minutes,
        4..=120,
        "",
    );
    in_range(
        v,
        &format!("{mpath}.ipAddressCount"),
        master.ip_address_count,
        0..=256,
        "",
    );
    let mut profiles = BTreeSet::new();
    let master_vnet = master.vnet_subnet_id.as_deref().is_some_and(|s| !s.is_empty());
    for (i, pool) in pools.iter().enumerate() {
        let pp = format!("properties.agentPoolProfiles[{i}]");
        let fields: [(&str, Option<&str>, &[&str]); 6] = [
            (
                "storageProfile",
                pool.storage_profile.as_deref(),
                &["ManagedDisks", "StorageAccount", "Ephemeral"],
            ),
            (
                "availabilityProfile",
                pool.availability_profile.as_deref(),
                AVAILABILITY,
            ),
            (
                "scaleSetPriority",
                pool.scale_set_priority.as_deref(),
                &["Regular", "Low", "Spot"],
            ),
            (
                "scaleSetEvictionPolicy",
                pool.scale_set_eviction_policy.as_deref(),
                &["Delete", "Deallocate"],
            ),
            ("osDiskCachingType", pool.os_disk_caching_type.as_deref(), CACHING),
            ("dataDiskCachingType", pool.data_disk_caching_type.as_deref(), CACHING),
        ];
        for (field, value, allowed) in fields {
            one_of(v, &format!("{pp}.{field}"), value, allowed);
        }
        if let Some(p) = pool.availability_profile.as_deref().filter(|p| !p.is_empty()) {
            profiles.insert(p.to_ascii_lowercase());
        }
        if let Some(disks) = &pool.disk_sizes_gb {
            if disks.len() > 4 {
                v.err(
                    &format!("{pp}.diskSizesGB"),
                    format!("{} data disks given", disks.len()),
                    "use at most 4".to_string(),
                );
            }
            for (j, d) in disks.iter().enumerate() {
                in_range(v, &format!("{pp}.diskSizesGB[{j}]"), Some(*d), 1..=32767, " GB");
            }
        }
        in_range(v, &format!("{pp}.ipAddressCount"), pool.ip_address_count, 0..=256, "");
        if pool.vnet_subnet_id.as_deref().is_some_and(|s| !s.is_empty()) != master_vnet {
            v.err(
                &format!("{pp}.vnetSubnetID"),
                "the master profile and every pool must all name a custom VNet subnet, or none of them",
                "set vnetSubnetID everywhere, or remove it everywhere".to_string(),
            );
        }
    }
    if profiles.len() > 1 {
        v.err(
            "properties.agentPoolProfiles",
            "pools mix AvailabilitySet and VirtualMachineScaleSets",
            "use one availabilityProfile for every pool".to_string(),
        );
    }
}
