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
