//! hke's Azure provider: the `Provider` trait over Azure Resource Manager
//! REST, on azure_core's pipeline (bearer tokens from azure_identity,
//! retries that honour Retry-After) with typed bodies (`models`).
//!
//! | hke kind         | ARM resource                                                           |
//! |------------------|------------------------------------------------------------------------|
//! | group            | resource group (an existing untagged one is the user's: never deleted) |
//! | network          | virtual network                                                        |
//! | subnet           | subnet of the virtual network                                          |
//! | firewall         | network security group, one inbound rule per hke rule, on every NIC    |
//! | publicAddress    | Standard static public IP, DNS label `<dnsPrefix>.<location>.cloudapp.azure.com` |
//! | loadBalancer     | Standard load balancer: frontends (the API server's address and the plan's `publicAddress/outbound-N`), pools `masters` and `nodes`, TCP probe and rule on the API port, outbound rule for every node with `allocatedOutboundPorts` 1,024 (`hke_provider_api::snat`) |
//! | placementGroup   | availability set (2 fault, 5 update domains) per pool and for the masters |
//! | machine          | NIC `<name>-nic` + VM (managed OS disk, custom data = bootstrap, boot diagnostics); Windows adds a CustomScript extension that runs the custom data |
//! | lbMember         | the master's NIC joins the `masters` pool                              |
//! | route            | route in `<vnet>-routetable` (created and bound to the subnet on first use), next hop the node's IP |
//! | machineGroup     | VM scale set (Uniform, manual upgrades); over 100 instances `singlePlacementGroup: false` |
//!
//! In a resource group of the user's, every create reads first: a resource
//! that exists and succeeded is adopted, never PUT again, and another
//! cluster's is an error. In a group of hke's own no other cluster can hold
//! a name, so creates PUT at once (ARM's PUT is idempotent by id; the engine
//! reads before it creates anything an earlier run may have made). An
//! operation followed to `Succeeded` is not read again unless its computed
//! properties are needed (public IP addresses, NIC addresses), and VM
//! creations that wait together share one list of the group's VMs per poll
//! interval instead of polling each operation. Calls wait for ARM's
//! per-principal buckets (`arm::Limits`), and lower them to what ARM's
//! `x-ms-ratelimit-remaining-*` headers say is left. Teardown of a cluster whose resource group hke
//! made is one resource-group delete; otherwise tagged resources go in
//! dependency order. Tag keys cannot hold `/` on Azure: `hke.io/cluster`
//! is written `hke.io_cluster` (see `tags`).
//!
//! Modules: `bodies` builds the request bodies from the plan's specs,
//! `models` types them, `tags` writes hke's tags as Azure tag names and
//! `template` makes the ARM deployment template (`azuredeploy.json`) of the
//! same bodies; these need no SDK and are always built, so `hke generate`
//! writes the template in any build. The client (`Azure`, `AzureConfig`,
//! `arm`: azure_core, azure_identity, reqwest) is the `client` feature,
//! off by default; hke's `azure` feature turns it on.

pub mod bodies;
pub mod models;
pub mod tags;
pub mod template;

#[cfg(feature = "client")]
pub mod arm;
#[cfg(feature = "client")]
mod client;

pub use bodies::*;
#[cfg(feature = "client")]
pub use client::*;
