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
fn types_map_to_teardown_kinds() {
    assert_eq!(kind_of_type("Microsoft.Compute/virtualMachines"), Some(Kind::Machine));
    assert_eq!(kind_of_type("microsoft.network/networkinterfaces"), Some(Kind::Machine));
    assert_eq!(kind_of_type("Microsoft.Network/routeTables"), Some(Kind::Network));
    assert_eq!(
        kind_of_type("Microsoft.Compute/availabilitySets"),
        Some(Kind::PlacementGroup)
    );
    assert_eq!(kind_of_type("Microsoft.Storage/storageAccounts"), None);
    assert_eq!(
        api_of("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v"),
        API_COMPUTE
    );
    assert_eq!(api_of("/subscriptions/s/resourceGroups/g"), API_RESOURCES);
    assert_eq!(
        api_of("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d"),
        API_DISKS
    );
}

#[test]
fn nic_of_a_machine_is_in_its_group() {
    assert_eq!(
        nic_of("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/k8s-master-0"),
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkInterfaces/k8s-master-0-nic"
    );
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

fn reply(status: u16, body: serde_json::Value) -> arm::Reply {
    arm::Reply {
        status,
        headers: azure_core::http::headers::Headers::new(),
        body,
    }
}

#[test]
fn operation_not_allowed_is_a_quota_unless_something_is_in_use() {
    use hke_provider_api::Class;
    // Azure docs, "Resolve errors for resource quotas".
    let quota = reply(
        409,
        serde_json::json!({"error": {"code": "OperationNotAllowed",
            "message": "Operation results in exceeding quota limits of Core. Maximum allowed: 4, Current in use: 4, Additional requested: 2."}}),
    );
    let e = arm::classify("PUT /vm", &quota);
    assert_eq!(e.class, Class::Permanent, "{e}");
    assert_eq!(e.code.as_deref(), Some("OperationNotAllowed"));
    assert!(
        e.message.contains("quota") && e.message.contains("az vm list-usage"),
        "{e}"
    );
    // The same code while a set still holds a VM, or another operation runs
    // (Azure docs, "Understand common error messages ... virtual machines").
    for message in [
        "Availability Set a1 cannot be deleted. Before deleting an Availability Set please ensure that it does not contain any VM.",
        "Operation 'start' is not allowed on VM 'm1' since another operation is in progress.",
    ] {
        let busy = reply(
            409,
            serde_json::json!({"error": {"code": "OperationNotAllowed", "message": message}}),
        );
        let e = arm::classify("DELETE /x", &busy);
        assert!(e.is_transient(), "{e}");
        assert!(!e.message.contains("quota"), "{e}");
    }
    // A failed operation is classified the same way.
    let over = models::ArmError {
        code: "OperationNotAllowed".into(),
        message: "Operation could not be completed as it results in exceeding approved standardDSv3Family Cores quota."
            .into(),
        details: Vec::new(),
    };
    let e = arm::operation_error("/vm", "Failed", &over, None);
    assert_eq!(e.class, Class::Permanent, "{e}");
    assert!(e.message.contains("az vm list-usage"), "{e}");
}

#[test]
fn retryable_codes_are_transient_at_the_top_or_inside() {
    // terraform-provider-azurerm#30197: a failed operation's error.
    let inner = models::ArmError {
        code: "RetryableError".into(),
        message: "A retryable error occurred.".into(),
        details: vec![models::ArmError {
            code: "ReferencedResourceNotProvisioned".into(),
            message: "Cannot proceed with operation because resource /s used by resource /n is not in Succeeded state."
                .into(),
            details: Vec::new(),
        }],
    };
    let e = arm::operation_error("/n", "Failed", &inner, None);
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.code.as_deref(), Some("RetryableError"));
    assert!(
        e.message.contains("ReferencedResourceNotProvisioned: Cannot proceed"),
        "{e}"
    );
    // An unknown outer code with a retryable inner one.
    let wrapped = models::ArmError {
        code: "Conflict".into(),
        message: "conflict".into(),
        details: vec![models::ArmError {
            code: "AnotherOperationInProgress".into(),
            ..Default::default()
        }],
    };
    assert!(arm::is_transient_error(&wrapped));
    let e = arm::classify(
        "PUT /n",
        &reply(
            400,
            serde_json::json!({"error": {"code": "ReferencedResourceNotProvisioned", "message": "m"}}),
        ),
    );
    assert!(e.is_transient(), "{e}");
    // Others stay permanent.
    let alloc = models::ArmError {
        code: "AllocationFailed".into(),
        ..Default::default()
    };
    assert!(!arm::operation_error("/vm", "Failed", &alloc, None).is_transient());
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

#[test]
fn the_template_gives_the_outbound_rule_every_planned_outbound_address() {
    use hke_provider_api::{Spec, Val};
    let group = template::Planned {
        logical_id: "group".into(),
        name: "c".into(),
        spec: Spec::Group {
            location: "westus2".into(),
            ssh_public_key: None,
        },
        depends_on: Vec::new(),
    };
    let pip = |id: &str, name: &str, label: Option<&str>| template::Planned {
        logical_id: id.into(),
        name: name.into(),
        spec: Spec::PublicAddress {
            group: Val::id_of("group"),
            dns_label: label.map(String::from),
        },
        depends_on: vec!["group".into()],
    };
    let lb = template::Planned {
        logical_id: "loadBalancer/apiserver".into(),
        name: "c-apiserver".into(),
        spec: Spec::LoadBalancer {
            address: Some(Val::id_of("publicAddress/apiserver")),
            subnet: Val::lit("/s"),
            port: 6443,
        },
        depends_on: vec![
            "publicAddress/apiserver".into(),
            "publicAddress/outbound-1".into(),
            "publicAddress/outbound-2".into(),
        ],
    };
    let resources = vec![
        group,
        pip("publicAddress/apiserver", "c-apiserver-ip", Some("c")),
        pip("publicAddress/outbound-1", "c-apiserver-outbound-1", None),
        pip("publicAddress/outbound-2", "c-apiserver-outbound-2", None),
        lb,
    ];
    let tags = BTreeMap::new();
    let t = template::build(&template::Input {
        location: "westus2",
        tags: &tags,
        resources: &resources,
        bootstrap: &BTreeMap::new(),
        linux: login(None),
        windows: None,
    })
    .expect("template");
    let lb = t.template["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Microsoft.Network/loadBalancers")
        .expect("lb");
    let p = &lb["properties"];
    assert_eq!(p["frontendIPConfigurations"].as_array().map(Vec::len), Some(3));
    assert!(p["frontendIPConfigurations"][2]["properties"]["publicIPAddress"]["id"]
        .as_str()
        .is_some_and(|s| s.contains("c-apiserver-outbound-2")));
    let rule = &p["outboundRules"][0]["properties"];
    assert_eq!(rule["frontendIPConfigurations"].as_array().map(Vec::len), Some(3));
    assert_eq!(rule["allocatedOutboundPorts"], hke_provider_api::snat::PORTS_PER_NODE);
    let deps = lb["dependsOn"].to_string();
    assert!(
        deps.contains("c-apiserver-outbound-1") && deps.contains("c-apiserver-outbound-2"),
        "{deps}"
    );
    // The API server's address is the one with a DNS label.
    assert!(t.template["outputs"]["apiServerFqdn"]["value"]
        .as_str()
        .is_some_and(|v| v.contains("'c-apiserver-ip'")));
}
