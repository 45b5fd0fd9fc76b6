//! OpenStack: what the model must say because OpenStack has no public image
//! catalog, and the limits of a Neutron router and of a cloud without
//! Octavia.

use crate::cluster::{Pool, Provider};
use crate::model::types::{NetworkPlugin, OsType};

use super::V;

/// Neutron's `max_routes` default: "Maximum number of routes per router"
/// (neutron/conf/db/extraroute_db.py, default 30).
pub const OPENSTACK_ROUTES_PER_ROUTER: u64 = 30;

const PP: &str = "properties.providerProfile";

pub(super) fn openstack(v: &mut V<'_>, provider: &Provider, plugin: NetworkPlugin, masters: u32, pools: &[Pool]) {
    let Some(os) = provider.openstack.as_ref() else { return };
    // One Glance image per OS and Windows version in use.
    let mut needed = vec![("linux".to_string(), "Linux nodes and the masters".to_string())];
    for p in pools {
        if let (OsType::Windows, Some(w)) = (p.os, p.windows) {
            let key = format!("windows-{w}");
            if !needed.iter().any(|(k, _)| *k == key) {
                needed.push((key, format!("Windows Server {w} nodes (pool {})", p.name)));
            }
        }
    }
    for (key, what) in needed {
        if os.images.get(&key).is_none_or(|i| i.trim().is_empty()) {
            v.err(
                &format!("{PP}.images.{key}"),
                format!("OpenStack has no public image catalog: no Glance image is named for {what}"),
                format!("set {PP}.images.{key} to the name or id of a Glance image (`openstack image list`)"),
            );
        }
    }
    if os.octavia == Some(false) && masters > 1 {
        v.err(
            "properties.masterProfile.count",
            format!("{masters} masters need a load balancer, and providerProfile.octavia is false"),
            "use 1 master (its floating IP is the API endpoint), or a cloud with Octavia".to_string(),
        );
    }
    let nodes = u64::from(masters) + pools.iter().map(|p| u64::from(p.count)).sum::<u64>();
    if plugin == NetworkPlugin::Kubenet && nodes > OPENSTACK_ROUTES_PER_ROUTER {
        v.err(
            "properties.orchestratorProfile.kubernetesConfig.networkPlugin",
            format!(
                "networkPlugin \"kubenet\" on OpenStack needs a router route per node ({nodes}), over the \
                 {OPENSTACK_ROUTES_PER_ROUTER} routes Neutron allows a router by default (max_routes)"
            ),
            format!(
                "use networkPlugin flannel, or at most {OPENSTACK_ROUTES_PER_ROUTER} nodes with kubenet (or raise \
                 max_routes in neutron.conf)"
            ),
        );
    }
}
