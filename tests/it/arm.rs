//! `generate` on Azure writes `azuredeploy.json` and its parameters: an ARM
//! deployment template of the same plan, for `az deployment group create`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use serde_json::Value;

use crate::support::{hke, root, text};

/// `(type, name)` of the ARM resource a plan resource becomes.
fn arm_of(plan: &Value, id: &str) -> Option<(String, String)> {
    let r = &plan["resources"][id];
    let name = r["name"].as_str()?.to_string();
    let vnet = || {
        plan["resources"]["network"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    Some(match r["spec"]["kind"].as_str()? {
        "network" => ("Microsoft.Network/virtualNetworks".into(), name),
        "subnet" => (
            "Microsoft.Network/virtualNetworks/subnets".into(),
            format!("{}/{name}", vnet()),
        ),
        "firewall" => ("Microsoft.Network/networkSecurityGroups".into(), name),
        "publicAddress" => ("Microsoft.Network/publicIPAddresses".into(), name),
        "loadBalancer" => ("Microsoft.Network/loadBalancers".into(), name),
        "placementGroup" => ("Microsoft.Compute/availabilitySets".into(), name),
        "machine" => ("Microsoft.Compute/virtualMachines".into(), name),
        "machineGroup" => ("Microsoft.Compute/virtualMachineScaleSets".into(), name),
        "route" => (
            "Microsoft.Network/routeTables/routes".into(),
            format!("{}-routetable/{name}", vnet()),
        ),
        _ => return None,
    })
}

/// `[resourceId('T', 'a', 'b')]` → `(T, "a/b")`.
fn parse_rid(e: &str) -> Option<(String, String)> {
    let inner = e.strip_prefix("[resourceId(")?.strip_suffix(")]")?;
    let parts: Vec<&str> = inner.split(", ").map(|p| p.trim_matches('\'')).collect();
    Some((parts.first()?.to_string(), parts[1..].join("/")))
}

fn check(sets: &[&str], machines_in_template: usize) {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = root().join("examples/windows.json");
    let mut args = vec!["generate", "-m", model.to_str().expect("utf8"), "-o", "out"];
    args.extend_from_slice(sets);
    let out = hke(tmp.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tmp.path().join("out");
    let t: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("azuredeploy.json")).expect("template")).expect("json");
    let params: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("azuredeploy.parameters.json")).expect("params"))
            .expect("json");
    let plan: Value = serde_json::from_str(&fs::read_to_string(dir.join("plan.json")).expect("plan")).expect("json");

    // The deployment template schema's required structure.
    assert_eq!(
        t["$schema"],
        "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
    );
    assert_eq!(t["contentVersion"], "1.0.0.0");
    assert!(t["parameters"].is_object());
    let resources = t["resources"].as_array().expect("resources");
    let mut declared: BTreeMap<(String, String), &Value> = BTreeMap::new();
    for r in resources {
        let rtype = r["type"].as_str().expect("type");
        assert!(rtype.starts_with("Microsoft.") && rtype.contains('/'), "{rtype}");
        let api = r["apiVersion"].as_str().expect("apiVersion");
        assert!(api.len() == 10 && api.as_bytes()[4] == b'-', "{api}");
        let name = r["name"].as_str().expect("name");
        // A child's name has one segment per type level below the provider.
        assert_eq!(name.split('/').count(), rtype.split('/').count() - 1, "{rtype} {name}");
        assert!(
            declared.insert((rtype.to_string(), name.to_string()), r).is_none(),
            "{rtype} {name} twice"
        );
    }

    // Every planned resource is there, with the plan's dependencies.
    let ids: Vec<&String> = plan["resources"].as_object().expect("plan").keys().collect();
    let mut mapped = 0;
    for id in &ids {
        let Some(key) = arm_of(&plan, id) else { continue };
        let r = declared
            .get(&key)
            .unwrap_or_else(|| panic!("{id}: no {key:?} in the template"));
        mapped += 1;
        let deps: BTreeSet<(String, String)> = r["dependsOn"]
            .as_array()
            .expect("dependsOn")
            .iter()
            .filter_map(|d| d.as_str().and_then(parse_rid))
            .collect();
        for dep in plan["resources"][id.as_str()]["dependsOn"].as_array().expect("deps") {
            let dep = dep.as_str().expect("dep");
            if let Some(want) = arm_of(&plan, dep) {
                assert!(deps.contains(&want), "{id} should depend on {want:?}: {deps:?}");
            }
        }
    }
    assert!(mapped >= 14, "{mapped}");
    // Every dependency is declared in the template.
    for r in resources {
        for d in r["dependsOn"].as_array().expect("dependsOn") {
            let key = parse_rid(d.as_str().expect("string")).expect("resourceId");
            assert!(
                declared.contains_key(&key),
                "{} depends on undeclared {key:?}",
                r["name"]
            );
        }
    }
    let vms = resources
        .iter()
        .filter(|r| r["type"] == "Microsoft.Compute/virtualMachines")
        .count();
    assert_eq!(vms, machines_in_template);

    // Parameters: every one used is declared; secure ones have values in
    // the parameters file, and only there.
    let body = serde_json::to_string(&t["resources"]).expect("json");
    for used in body.split("parameters('").skip(1) {
        let name = used.split('\'').next().expect("name");
        assert!(t["parameters"].get(name).is_some(), "parameter {name} not declared");
    }
    assert_eq!(
        params["$schema"],
        "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"
    );
    assert_eq!(params["contentVersion"], "1.0.0.0");
    for (name, p) in t["parameters"].as_object().expect("parameters") {
        if p.get("defaultValue").is_none() {
            assert!(params["parameters"][name]["value"].is_string(), "{name} has no value");
        }
    }
    let model: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("apimodel.json")).expect("model")).expect("json");
    let password = model
        .pointer("/properties/windowsProfile/adminPassword")
        .and_then(|p| p.as_str())
        .expect("password");
    assert_eq!(params["parameters"]["adminPassword"]["value"], password);
    let public = fs::read_to_string(dir.join("azuredeploy.json")).expect("template");
    assert!(!public.contains(password) && !public.contains("PRIVATE KEY") && !public.contains("bootstrap_token"));
    // Each node's custom data is its bootstrap file.
    let master = "k8s-master-aa910c6f-0";
    let boot = fs::read_to_string(dir.join(format!("bootstrap/{master}/cloud-init.yaml"))).expect("boot");
    assert_eq!(
        params["parameters"]["customDatak8smasteraa910c6f0"]["value"],
        boot.as_str()
    );
    let vm = declared[&("Microsoft.Compute/virtualMachines".to_string(), master.to_string())];
    assert_eq!(
        vm["properties"]["osProfile"]["customData"],
        "[base64(parameters('customDatak8smasteraa910c6f0'))]"
    );
    // A master's NIC is in the API server's pool and the outbound pool.
    let nic = declared[&(
        "Microsoft.Network/networkInterfaces".to_string(),
        format!("{master}-nic"),
    )];
    let pools = nic["properties"]["ipConfigurations"][0]["properties"]["loadBalancerBackendAddressPools"].to_string();
    assert!(pools.contains("'masters'") && pools.contains("'nodes'"), "{pools}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| fs::metadata(dir.join(f)).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode("azuredeploy.parameters.json"), 0o600);
        assert_eq!(mode("azuredeploy.json"), 0o644);
    }
}

#[test]
fn azure_generate_writes_an_arm_template_of_the_plan() {
    check(&[], 8);
}

#[test]
fn the_arm_template_routes_kubenet_through_a_route_table() {
    check(
        &[
            "--set",
            "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
        ],
        8,
    );
}

#[test]
fn other_clouds_get_no_arm_template() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = root().join("examples/windows-aws.json");
    let out = hke(
        tmp.path(),
        &["generate", "-m", model.to_str().expect("utf8"), "-o", "out"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!tmp.path().join("out/azuredeploy.json").exists());
}

#[test]
fn a_restricted_api_server_rule_admits_the_clusters_own_outbound_addresses() {
    // 100 nodes: two outbound frontends (1,024 SNAT ports per node).
    let sets = [
        "--set",
        "properties.masterProfile.HTTPSourceAddressPrefix=198.51.100.0/24",
        "--set",
        "properties.agentPoolProfiles[0].count=95",
    ];
    // 3 masters and 3 Windows VMs; the 95 Linux nodes are a scale set.
    check(&sets, 6);
    let tmp = tempfile::tempdir().expect("tmp");
    let model = root().join("examples/windows.json");
    let mut args = vec!["generate", "-m", model.to_str().expect("utf8"), "-o", "out"];
    args.extend_from_slice(&sets);
    let out = hke(tmp.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t: Value =
        serde_json::from_str(&fs::read_to_string(tmp.path().join("out/azuredeploy.json")).expect("template"))
            .expect("json");
    let nsg = t["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Microsoft.Network/networkSecurityGroups")
        .expect("nsg");
    let rule = |name: &str| {
        nsg["properties"]["securityRules"]
            .as_array()
            .expect("rules")
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("rule {name}"))["properties"]
            .clone()
    };
    let pip =
        |name: &str| format!("[reference(resourceId('Microsoft.Network/publicIPAddresses', '{name}')).ipAddress]");
    let api = rule("apiserver");
    let sources: Vec<&str> = api["sourceAddressPrefixes"]
        .as_array()
        .expect("several sources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // The clients' range, then every frontend a node's packet to the
    // public endpoint can leave from.
    assert_eq!(
        sources,
        [
            "198.51.100.0/24".to_string(),
            pip("kubernetes-windows-apiserver-ip"),
            pip("kubernetes-windows-apiserver-outbound-1"),
        ],
        "{api}"
    );
    // SSH is not widened: nodes do not log in to masters.
    assert_eq!(rule("ssh")["sourceAddressPrefix"], "198.51.100.0/24");
    // ARM creates the addresses before it reads them.
    let deps = nsg["dependsOn"].to_string();
    assert!(
        deps.contains("kubernetes-windows-apiserver-ip") && deps.contains("kubernetes-windows-apiserver-outbound-1"),
        "{deps}"
    );
}
