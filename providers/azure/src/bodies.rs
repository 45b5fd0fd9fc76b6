//! The bodies hke sends to ARM, built from the plan's specs: what `hke
//! deploy` PUTs (`client`, with the `client` feature) and what the ARM
//! template holds (`template`), so both build identical resources. Pure
//! data over `models`: no SDK, no I/O.

use std::collections::BTreeMap;

use base64::Engine as _;
use hke_provider_api::snat;
use hke_provider_api::{Login, Os, ProviderError, Rule};

use crate::models::*;

/// The load balancer's backend pool of the masters (the API server's rule).
pub const POOL_MASTERS: &str = "masters";
/// The load balancer's backend pool of every node (the outbound rule).
pub const POOL_NODES: &str = "nodes";
/// The Windows machines' CustomScript extension that runs the bootstrap.
pub const BOOTSTRAP_EXTENSION: &str = "hke-bootstrap";

/// NSG rules: one inbound allow per hke rule, priorities 100, 110, ….
pub fn nsg_props(rules: &[Rule]) -> NsgProps {
    NsgProps {
        security_rules: rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let sources: Vec<String> = r
                    .sources
                    .iter()
                    .map(|s| if s == "0.0.0.0/0" { "*".to_string() } else { s.clone() })
                    .collect();
                let (one, many) = if sources.len() == 1 {
                    (sources.first().cloned(), Vec::new())
                } else {
                    (None, sources)
                };
                Child::new(
                    &r.name,
                    SecurityRuleProps {
                        priority: 100 + 10 * i as u32,
                        direction: "Inbound".into(),
                        access: "Allow".into(),
                        protocol: match r.protocol.as_str() {
                            "tcp" => "Tcp".into(),
                            "udp" => "Udp".into(),
                            _ => "*".into(),
                        },
                        source_port_range: "*".into(),
                        destination_port_range: r.ports.clone(),
                        source_address_prefix: one,
                        source_address_prefixes: many,
                        destination_address_prefix: "*".into(),
                    },
                )
            })
            .collect(),
    }
}

pub fn public_ip_props(dns_label: Option<&str>) -> PublicIpProps {
    PublicIpProps {
        public_ip_allocation_method: "Static".into(),
        public_ip_address_version: "IPv4".into(),
        dns_settings: dns_label.map(|l| DnsSettings {
            domain_name_label: l.into(),
        }),
    }
}

/// The API server's load balancer. Its parts refer to each other by id:
/// `part(collection, name)` makes one. Every node leaves through its
/// outbound rule, from the API server's address and the `outbound`
/// addresses, with `snat::PORTS_PER_NODE` ports each (the plan sizes the
/// addresses for its nodes: nodes × ports ≤ addresses × 64,000).
pub fn lb_props(part: impl Fn(&str, &str) -> String, address: &str, outbound: &[String], port: u16) -> LbProps {
    let frontend = part("frontendIPConfigurations", "frontend");
    let masters = part("backendAddressPools", POOL_MASTERS);
    let nodes = part("backendAddressPools", POOL_NODES);
    let probe = part("probes", "apiserver");
    let mut frontends = vec![Child::new(
        "frontend",
        FrontendProps {
            public_ip_address: SubRef::to(address),
        },
    )];
    let mut outbound_frontends = vec![SubRef::to(frontend.clone())];
    for (k, pip) in outbound.iter().enumerate() {
        let name = format!("outbound-{}", k + 1);
        outbound_frontends.push(SubRef::to(part("frontendIPConfigurations", &name)));
        frontends.push(Child::new(
            &name,
            FrontendProps {
                public_ip_address: SubRef::to(pip.clone()),
            },
        ));
    }
    LbProps {
        frontend_ip_configurations: frontends,
        backend_address_pools: vec![Child::new(POOL_MASTERS, Empty {}), Child::new(POOL_NODES, Empty {})],
        probes: vec![Child::new(
            "apiserver",
            ProbeProps {
                protocol: "Tcp".into(),
                port,
                interval_in_seconds: 5,
                number_of_probes: 2,
            },
        )],
        load_balancing_rules: vec![Child::new(
            "apiserver",
            LbRuleProps {
                frontend_ip_configuration: SubRef::to(frontend.clone()),
                backend_address_pool: SubRef::to(masters),
                probe: SubRef::to(probe),
                protocol: "Tcp".into(),
                frontend_port: port,
                backend_port: port,
                enable_floating_ip: false,
                idle_timeout_in_minutes: 30,
                // Outbound traffic goes through the outbound rule.
                disable_outbound_snat: true,
            },
        )],
        outbound_rules: vec![Child::new(
            "nodes",
            OutboundRuleProps {
                frontend_ip_configurations: outbound_frontends,
                backend_address_pool: SubRef::to(nodes),
                allocated_outbound_ports: snat::PORTS_PER_NODE,
                protocol: "All".into(),
                enable_tcp_reset: true,
                idle_timeout_in_minutes: 4,
            },
        )],
    }
}

/// A NIC: the primary IP configuration (static for masters, in the load
/// balancer's pools), and with Azure CNI `pod_ips` secondary dynamic ones
/// in the same subnet, which azure-vnet-ipam hands to pods (it reads the
/// NIC's non-primary addresses from the wireserver; aks-engine
/// networkinterfaces.go made `ipconfig2`… the same way).
pub fn nic_props(
    subnet: &str,
    nsg: &str,
    private_ip: Option<&str>,
    forwarding: bool,
    pools: &[String],
    pod_ips: u32,
) -> NicProps {
    let mut ip_configurations = vec![Child::new(
        "ipconfig1",
        IpConfigProps {
            primary: true,
            subnet: SubRef::to(subnet),
            private_ip_allocation_method: if private_ip.is_some() { "Static" } else { "Dynamic" }.into(),
            private_ip_address: private_ip.map(String::from),
            load_balancer_backend_address_pools: pools.iter().map(SubRef::to).collect(),
        },
    )];
    for i in 0..pod_ips {
        ip_configurations.push(Child::new(
            &format!("ipconfig{}", i + 2),
            IpConfigProps {
                primary: false,
                subnet: SubRef::to(subnet),
                private_ip_allocation_method: "Dynamic".into(),
                private_ip_address: None,
                load_balancer_backend_address_pools: Vec::new(),
            },
        ));
    }
    NicProps {
        enable_ip_forwarding: forwarding,
        network_security_group: Some(SubRef::to(nsg)),
        ip_configurations,
    }
}

/// What a VM body is made of.
pub struct VmInput<'a> {
    pub name: &'a str,
    pub nic: &'a str,
    pub os: &'a Os,
    pub size: &'a str,
    pub image: &'a BTreeMap<String, String>,
    pub disk_gb: u32,
    pub placement: Option<&'a str>,
    pub login: Option<&'a Login>,
    pub user_data: &'a str,
}

/// Azure takes custom data up to 64 KiB (base64: 87,380 characters).
pub const CUSTOM_DATA_MAX: usize = 87_380;

/// Premium SSD where the size supports it (an `s` after the size number,
/// or a DS/GS family), Standard SSD elsewhere.
pub fn disk_type(size: &str) -> &'static str {
    let core = size.split('_').nth(1).unwrap_or(size);
    let digit = core.find(|c: char| c.is_ascii_digit()).unwrap_or(core.len());
    let (family, rest) = core.split_at(digit);
    let suffix: String = rest.chars().skip_while(|c| c.is_ascii_digit()).collect();
    if suffix.contains('s') || family.ends_with('S') {
        "Premium_LRS"
    } else {
        "StandardSSD_LRS"
    }
}

/// A VM's body: image, managed OS disk, login (SSH keys on Linux, the
/// admin password on Windows), the bootstrap as custom data, boot
/// diagnostics. Refused without a login, on Windows without a password, and
/// over `CUSTOM_DATA_MAX`.
pub fn vm_props(i: VmInput<'_>) -> Result<VmProps, ProviderError> {
    let login = i
        .login
        .ok_or_else(|| ProviderError::permanent("InvalidRequest", format!("{}: no admin login", i.name)))?;
    let custom_data = base64::engine::general_purpose::STANDARD.encode(i.user_data.as_bytes());
    if custom_data.len() > CUSTOM_DATA_MAX {
        return Err(ProviderError::permanent(
            "InvalidParameter",
            format!(
                "{}: the bootstrap is {} bytes, over Azure's 64 KiB custom data limit",
                i.name,
                i.user_data.len()
            ),
        ));
    }
    let lookup = |k: &str| i.image.get(k).cloned().unwrap_or_default();
    let windows = *i.os == Os::Windows;
    let (linux_configuration, windows_configuration, admin_password) = if windows {
        let pw = login.password.clone().ok_or_else(|| {
            ProviderError::permanent("InvalidRequest", format!("{}: no Windows admin password", i.name))
        })?;
        (
            None,
            Some(WindowsConfig {
                provision_vm_agent: true,
                enable_automatic_updates: false,
            }),
            Some(pw),
        )
    } else {
        (
            Some(LinuxConfig {
                disable_password_authentication: true,
                ssh: SshConfig {
                    public_keys: login
                        .ssh_public_keys
                        .iter()
                        .map(|k| SshKey {
                            path: format!("/home/{}/.ssh/authorized_keys", login.username),
                            key_data: k.clone(),
                        })
                        .collect(),
                },
            }),
            None,
            None,
        )
    };
    let version = lookup("version");
    Ok(VmProps {
        hardware_profile: HardwareProfile { vm_size: i.size.into() },
        storage_profile: StorageProfile {
            image_reference: ImageReference {
                publisher: lookup("publisher"),
                offer: lookup("offer"),
                sku: lookup("sku"),
                version: if version.is_empty() { "latest".into() } else { version },
            },
            os_disk: OsDisk {
                name: Some(format!("{}-osdisk", i.name)),
                create_option: "FromImage".into(),
                caching: "ReadWrite".into(),
                disk_size_gb: i.disk_gb,
                managed_disk: ManagedDisk {
                    storage_account_type: disk_type(i.size).into(),
                },
                delete_option: Some("Delete".into()),
            },
        },
        os_profile: OsProfile {
            computer_name: Some(i.name.into()),
            computer_name_prefix: None,
            admin_username: login.username.clone(),
            admin_password,
            custom_data,
            linux_configuration,
            windows_configuration,
        },
        network_profile: NetworkProfile {
            network_interfaces: vec![NicRef {
                id: i.nic.into(),
                properties: NicRefProps {
                    primary: true,
                    delete_option: Some("Delete".into()),
                },
            }],
        },
        diagnostics_profile: DiagnosticsProfile {
            boot_diagnostics: BootDiagnostics { enabled: true },
        },
        availability_set: i.placement.map(SubRef::to),
        license_type: i.image.get("licenseType").cloned(),
    })
}

/// Where a scale set's instances attach.
pub struct ScaleSetNet<'a> {
    pub subnet: &'a str,
    pub nsg: &'a str,
    pub forwarding: bool,
    pub pools: &'a [String],
    /// Secondary IP configurations per instance (Azure CNI).
    pub pod_ips: u32,
}

/// Instances a scale set holds in one placement group, ARM's default
/// (`singlePlacementGroup` true); above it the set must span several
/// ("Virtual Machine Scale Sets and placement groups", Azure docs).
pub const SINGLE_PLACEMENT_GROUP_MAX: u32 = 100;
/// Instances a scale set holds at all (same source); validation keeps every
/// pool at or under it, so a pool is one scale set.
pub const SCALE_SET_MAX: u32 = 1000;

/// A Uniform scale set of `capacity` instances of the VM body `vm` (as
/// `vm_props` made it): instances named from `prefix`, their OS disk and NIC
/// made per instance, the bootstrap extension on Windows, and several
/// placement groups above 100 instances.
pub fn vmss_props(vm: VmProps, prefix: &str, net: ScaleSetNet<'_>, os: &Os, capacity: u32) -> VmssProps {
    let mut os_profile = vm.os_profile;
    os_profile.computer_name = None;
    os_profile.computer_name_prefix = Some(prefix.to_string());
    let mut storage = vm.storage_profile;
    storage.os_disk.name = None;
    storage.os_disk.delete_option = None;
    VmssProps {
        orchestration_mode: "Uniform".into(),
        upgrade_policy: UpgradePolicy { mode: "Manual".into() },
        overprovision: false,
        single_placement_group: (capacity > SINGLE_PLACEMENT_GROUP_MAX).then_some(false),
        virtual_machine_profile: VmssVmProfile {
            storage_profile: storage,
            os_profile,
            network_profile: VmssNetworkProfile {
                network_interface_configurations: vec![Child::new(
                    "nic",
                    VmssNicProps {
                        primary: true,
                        enable_ip_forwarding: net.forwarding,
                        network_security_group: SubRef::to(net.nsg),
                        ip_configurations: std::iter::once(Child::new(
                            "ipconfig1",
                            VmssIpConfig {
                                primary: (net.pod_ips > 0).then_some(true),
                                subnet: SubRef::to(net.subnet),
                                load_balancer_backend_address_pools: net.pools.iter().map(SubRef::to).collect(),
                            },
                        ))
                        .chain((0..net.pod_ips).map(|i| {
                            Child::new(
                                &format!("ipconfig{}", i + 2),
                                VmssIpConfig {
                                    primary: Some(false),
                                    subnet: SubRef::to(net.subnet),
                                    load_balancer_backend_address_pools: Vec::new(),
                                },
                            )
                        }))
                        .collect(),
                    },
                )],
            },
            diagnostics_profile: vm.diagnostics_profile,
            extension_profile: (*os == Os::Windows).then(|| VmssExtensionProfile {
                extensions: vec![Child::new(BOOTSTRAP_EXTENSION, bootstrap_extension())],
            }),
            license_type: vm.license_type,
        },
    }
}

/// Windows does not run custom data: Azure leaves it in
/// `C:\AzureData\CustomData.bin`. The extension copies it to
/// `C:\k\node.ps1` and starts it as a SYSTEM scheduled task, so the
/// bootstrap's reboots do not fail the extension; the bootstrap's own task
/// and mutex carry it across them.
pub fn bootstrap_extension() -> ExtensionProps {
    let command = concat!(
        "powershell.exe -NoProfile -ExecutionPolicy Bypass -Command \"",
        "New-Item -ItemType Directory -Force -Path C:\\k | Out-Null; ",
        "Copy-Item -Force C:\\AzureData\\CustomData.bin C:\\k\\node.ps1; ",
        "$a = New-ScheduledTaskAction -Execute powershell.exe -Argument '-NoProfile -ExecutionPolicy Bypass -File C:\\k\\node.ps1'; ",
        "Register-ScheduledTask -Force -TaskName hke-bootstrap-start -Action $a -User SYSTEM -RunLevel Highest | Out-Null; ",
        "Start-ScheduledTask -TaskName hke-bootstrap-start\""
    );
    ExtensionProps {
        publisher: "Microsoft.Compute".into(),
        kind: "CustomScriptExtension".into(),
        type_handler_version: "1.10".into(),
        auto_upgrade_minor_version: true,
        settings: serde_json::json!({}),
        protected_settings: serde_json::json!({ "commandToExecute": command }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_types_follow_premium_capable_sizes() {
        assert_eq!(disk_type("Standard_D2s_v3"), "Premium_LRS");
        assert_eq!(disk_type("Standard_DS2_v2"), "Premium_LRS");
        assert_eq!(disk_type("Standard_D2_v3"), "StandardSSD_LRS");
        assert_eq!(disk_type("Standard_A2"), "StandardSSD_LRS");
        assert_eq!(disk_type("Standard_D4ads_v5"), "Premium_LRS");
    }

    #[test]
    fn nsg_rules_are_inbound_allows_with_distinct_priorities() {
        let rules = vec![
            Rule {
                name: "apiserver".into(),
                protocol: "tcp".into(),
                ports: "6443".into(),
                sources: vec!["0.0.0.0/0".into()],
            },
            Rule {
                name: "nodes".into(),
                protocol: "all".into(),
                ports: "*".into(),
                sources: vec!["10.0.0.0/8".into(), "192.168.0.0/16".into()],
            },
        ];
        let p = serde_json::to_value(nsg_props(&rules)).expect("json");
        let r = &p["securityRules"];
        assert_eq!(r[0]["properties"]["protocol"], "Tcp");
        assert_eq!(r[0]["properties"]["sourceAddressPrefix"], "*");
        assert_eq!(r[0]["properties"]["destinationPortRange"], "6443");
        assert_eq!(r[1]["properties"]["protocol"], "*");
        assert_eq!(r[1]["properties"]["sourceAddressPrefixes"][1], "192.168.0.0/16");
        assert_ne!(r[0]["properties"]["priority"], r[1]["properties"]["priority"]);
    }

    fn login(password: Option<&str>) -> Login {
        Login {
            username: "azureuser".into(),
            ssh_public_keys: vec!["ssh-ed25519 AAAA test".into()],
            password: password.map(String::from),
        }
    }

    #[test]
    fn vm_bodies_carry_image_disk_license_and_custom_data() {
        let mut image = BTreeMap::new();
        for (k, v) in [
            ("publisher", "MicrosoftWindowsServer"),
            ("offer", "WindowsServer"),
            ("sku", "2022-datacenter-core-smalldisk"),
            ("version", "20348.1.2"),
            ("licenseType", "Windows_Server"),
        ] {
            image.insert(k.to_string(), v.to_string());
        }
        let l = login(Some("S3cret!Passw0rd"));
        let p = vm_props(VmInput {
            name: "aa91k8s01000",
            nic: "/nic",
            os: &Os::Windows,
            size: "Standard_D2s_v3",
            image: &image,
            disk_gb: 128,
            placement: Some("/avset"),
            login: Some(&l),
            user_data: "Write-Output hi",
        })
        .expect("vm");
        let v = serde_json::to_value(&p).expect("json");
        assert_eq!(v["licenseType"], "Windows_Server");
        assert_eq!(v["storageProfile"]["imageReference"]["version"], "20348.1.2");
        assert_eq!(v["storageProfile"]["osDisk"]["diskSizeGB"], 128);
        assert_eq!(v["availabilitySet"]["id"], "/avset");
        assert_eq!(v["osProfile"]["customData"], "V3JpdGUtT3V0cHV0IGhp");
        assert!(v["osProfile"]["windowsConfiguration"].is_object());
        // Debug output never shows the password or the custom data.
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("S3cret") && !dbg.contains("V3JpdGU"), "{dbg}");
        // Linux: keys, no password; a Windows machine without one is refused.
        let p = vm_props(VmInput {
            name: "m",
            nic: "/nic",
            os: &Os::Linux,
            size: "Standard_D2_v3",
            image: &image,
            disk_gb: 30,
            placement: None,
            login: Some(&login(None)),
            user_data: "#cloud-config",
        })
        .expect("vm");
        let v = serde_json::to_value(&p).expect("json");
        assert_eq!(
            v["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["path"],
            "/home/azureuser/.ssh/authorized_keys"
        );
        assert!(v["osProfile"].get("adminPassword").is_none());
        assert!(vm_props(VmInput {
            name: "w",
            nic: "/nic",
            os: &Os::Windows,
            size: "x",
            image: &image,
            disk_gb: 30,
            placement: None,
            login: Some(&login(None)),
            user_data: ""
        })
        .is_err());
        // Over 64 KiB of custom data is refused with the limit named.
        let big = "x".repeat(70_000);
        let e = vm_props(VmInput {
            name: "m",
            nic: "/nic",
            os: &Os::Linux,
            size: "x",
            image: &image,
            disk_gb: 30,
            placement: None,
            login: Some(&login(None)),
            user_data: &big,
        })
        .expect_err("too big");
        assert!(e.message.contains("64 KiB"), "{e}");
    }

    #[test]
    fn scale_sets_over_a_hundred_span_placement_groups() {
        let mut image = BTreeMap::new();
        image.insert("publisher".to_string(), "Canonical".to_string());
        let l = login(None);
        let props = |capacity: u32| {
            let vm = vm_props(VmInput {
                name: "p",
                nic: "",
                os: &Os::Linux,
                size: "Standard_D2s_v3",
                image: &image,
                disk_gb: 30,
                placement: None,
                login: Some(&l),
                user_data: "",
            })
            .expect("vm");
            let net = ScaleSetNet {
                subnet: "/s",
                nsg: "/g",
                forwarding: false,
                pools: &[],
                pod_ips: 0,
            };
            serde_json::to_value(vmss_props(vm, "p", net, &Os::Linux, capacity)).expect("json")
        };
        assert!(props(100).get("singlePlacementGroup").is_none());
        assert_eq!(props(101)["singlePlacementGroup"], false);
        assert_eq!(props(1000)["singlePlacementGroup"], false);
    }
}
