//! One row per validation rule: a `--set` edit of a valid example and the
//! error it must produce (path and words).

use hke::model::diag::Severity;
use hke::model::load::SetArg;
use hke::ops::generate::prepare;

use crate::support::{example, now, rng};

fn errors(base: &str, sets: &[&str]) -> Vec<String> {
    let sets: Vec<SetArg> = sets.iter().map(|s| s.parse().expect("valid --set")).collect();
    match prepare(&example(base), &sets, &mut rng(11), now()) {
        Ok(_) => Vec::new(),
        Err(r) => r
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| format!("{} | {} | {}", d.path, d.message, d.hint.clone().unwrap_or_default()))
            .collect(),
    }
}

#[track_caller]
fn check(base: &str, sets: &[&str], path: &str, words: &str) {
    let errs = errors(base, sets);
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{path} |")) && e.contains(words)),
        "{sets:?}: expected an error at {path} containing {words:?}, got:\n{}",
        errs.join("\n")
    );
}

const K: &str = "properties.orchestratorProfile.kubernetesConfig";
const M: &str = "properties.masterProfile";
const P1: &str = "properties.agentPoolProfiles[1]";
const W: &str = "properties.windowsProfile";

#[test]
fn the_examples_are_valid() {
    for ex in [
        "windows.json",
        "windows-aws.json",
        "windows-gcp.json",
        "windows-openstack.json",
    ] {
        assert_eq!(errors(ex, &[]), Vec::<String>::new(), "{ex}");
    }
}

#[test]
fn model_rules() {
    let az = "windows.json";
    check(
        az,
        &["apiVersion=2017-07-01"],
        "apiVersion",
        "legacy acs-engine API version",
    );
    check(
        az,
        &["properties.orchestratorProfile.orchestratorType=Swarm"],
        "properties.orchestratorProfile.orchestratorType",
        "hke builds Kubernetes clusters; Swarm is not supported",
    );
    check(
        az,
        &["properties.orchestratorProfile.orchestratorRelease=1.24"],
        "properties.orchestratorProfile.orchestratorRelease",
        "supported versions are",
    );
    check(
        az,
        &["properties.orchestratorProfile.orchestratorVersion=1.36.x"],
        "properties.orchestratorProfile.orchestratorVersion",
        "not a Kubernetes version",
    );
    check(az, &[&format!("{M}.count=2")], &format!("{M}.count"), "1, 3 or 5");
    check(
        az,
        &[&format!("{M}.dnsPrefix=9lives")],
        &format!("{M}.dnsPrefix"),
        "start with a letter",
    );
    check(
        az,
        &[&format!("{M}.vmSize=m5.large")],
        &format!("{M}.vmSize"),
        "not an Azure VM size",
    );
    check(
        az,
        &[&format!("{M}.osDiskSizeGB=5000")],
        &format!("{M}.osDiskSizeGB"),
        "out of range",
    );
    check(
        az,
        &[&format!("{M}.firstConsecutiveStaticIP=10.255.255.254")],
        &format!("{M}.firstConsecutiveStaticIP"),
        "not a usable address",
    );
    check(
        az,
        &[&format!("{M}.subjectAltNames=[\"not a name\"]")],
        &format!("{M}.subjectAltNames[0]"),
        "neither a DNS name",
    );
    check(
        az,
        &[&format!("{M}.HTTPSourceAddressPrefix=10.0.0.0")],
        &format!("{M}.HTTPSourceAddressPrefix"),
        "not a CIDR",
    );
}

#[test]
fn pool_rules() {
    let az = "windows.json";
    check(
        az,
        &[&format!("{P1}.name=linuxpool1")],
        &format!("{P1}.name"),
        "used twice",
    );
    check(az, &[&format!("{P1}.name=Win_Pool")], &format!("{P1}.name"), "invalid");
    check(az, &[&format!("{P1}.count=0")], &format!("{P1}.count"), "1 to 1000");
    check(
        az,
        &[&format!("{P1}.osType=Solaris")],
        &format!("{P1}.osType"),
        "Linux or Windows",
    );
    check(
        az,
        &[&format!("{P1}.windowsVersion=1803")],
        &format!("{P1}.windowsVersion"),
        "Windows Server 1803 is retired",
    );
    check(
        az,
        &[&format!("{P1}.windowsVersion=vista")],
        &format!("{P1}.windowsVersion"),
        "not a Windows Server version",
    );
    check(
        az,
        &["properties.agentPoolProfiles[0].windowsVersion=2022"],
        "properties.agentPoolProfiles[0].windowsVersion",
        "Linux pool",
    );
    check(
        az,
        &[&format!("{P1}.osDiskSizeGB=20")],
        &format!("{P1}.osDiskSizeGB"),
        "out of range",
    );
    check(
        az,
        &[&format!("{P1}.dnsPrefix=x")],
        &format!("{P1}.dnsPrefix"),
        "must be empty",
    );
    check(
        az,
        &[&format!("{P1}.customNodeLabels={{\"kubernetes.io/role\":\"x\"}}")],
        &format!("{P1}.customNodeLabels[\"kubernetes.io/role\"]"),
        "reserved prefix",
    );
    check(
        az,
        &[&format!(
            "{P1}.kubernetesConfig.kubeletConfig={{\"--register-with-taints\":\"os=windows\"}}"
        )],
        &format!("{P1}.kubernetesConfig.kubeletConfig[\"--register-with-taints\"]"),
        "no effect",
    );
    check(
        az,
        &[&format!("{P1}.diskSizesGB=[1,2,3,4,5]")],
        &format!("{P1}.diskSizesGB"),
        "at most 4",
    );
    check(
        az,
        &[
            &format!("{P1}.availabilityProfile=VirtualMachineScaleSets"),
            "properties.agentPoolProfiles[0].availabilityProfile=AvailabilitySet",
        ],
        "properties.agentPoolProfiles",
        "mix",
    );
    check(
        az,
        &[&format!("{P1}.vnetSubnetID=/subscriptions/x")],
        &format!("{P1}.vnetSubnetID"),
        "all name a custom VNet subnet",
    );
    check(
        az,
        &[&format!("{P1}.imageId=ami-0123456789abcdef0")],
        &format!("{P1}.imageId"),
        "pins an AWS AMI, but the cluster is on azure",
    );
    check(
        "windows-aws.json",
        &[&format!("{P1}.imageId=ubuntu-24.04")],
        &format!("{P1}.imageId"),
        "is not an AMI id",
    );
    assert_eq!(
        errors("windows-aws.json", &[&format!("{P1}.imageId=ami-0123456789abcdef0")]),
        Vec::<String>::new()
    );
}

#[test]
fn network_rules() {
    let az = "windows.json";
    check(
        az,
        &[&format!("{K}.networkPlugin=cilium")],
        &format!("{K}.networkPlugin"),
        "no Windows data plane",
    );
    check(
        az,
        &[&format!("{K}.networkPlugin=weave")],
        &format!("{K}.networkPlugin"),
        "unknown networkPlugin",
    );
    check(
        "windows-aws.json",
        &[&format!("{K}.networkPlugin=azure")],
        &format!("{K}.networkPlugin"),
        "Azure CNI runs only on Azure",
    );
    check(
        az,
        &[
            &format!("{K}.networkPlugin=kubenet"),
            &format!("{K}.networkPolicy=calico"),
        ],
        &format!("{K}.networkPolicy"),
        "cannot enforce policy on Windows",
    );
    check(
        az,
        &[&format!("{K}.networkPlugin=calico")],
        &format!("{K}.networkPlugin"),
        "Calico for Windows needs the Tigera operator",
    );
    check(
        az,
        &[&format!("{K}.networkPolicy=azure")],
        &format!("{K}.networkPolicy"),
        "not supported with Windows pools",
    );
    check(
        az,
        &[
            &format!("{K}.networkPlugin=kubenet"),
            &format!("{K}.serviceCidr=10.244.0.0/16"),
        ],
        &format!("{K}.serviceCidr"),
        "overlaps clusterSubnet",
    );
    check(
        az,
        &[&format!("{K}.dockerBridgeSubnet=10.0.5.1/24")],
        &format!("{K}.dockerBridgeSubnet"),
        "overlaps serviceCidr",
    );
    check(
        az,
        &[
            &format!("{K}.networkPlugin=flannel"),
            &format!("{K}.clusterSubnet=10.244.0.0/28"),
        ],
        &format!("{K}.clusterSubnet"),
        "node pod ranges",
    );
    check(
        az,
        &[&format!("{K}.dnsServiceIP=10.1.0.10")],
        &format!("{K}.dnsServiceIP"),
        "not within serviceCidr",
    );
    check(
        az,
        &[&format!("{K}.dnsServiceIP=10.0.0.1")],
        &format!("{K}.dnsServiceIP"),
        "reserved",
    );
    check(
        az,
        &[
            &format!("{K}.clusterSubnet=10.230.0.0/16"),
            &format!("{M}.vnetCidr=10.240.0.0/12"),
        ],
        &format!("{K}.clusterSubnet"),
        "must lie inside vnetCidr",
    );
    check(
        az,
        &[&format!("{K}.maxPods=3")],
        &format!("{K}.maxPods"),
        "out of range",
    );
    check(
        az,
        &[&format!("{K}.kubeProxyMode=userspace")],
        &format!("{K}.kubeProxyMode"),
        "unknown kubeProxyMode",
    );
    check(
        az,
        &[&format!("{K}.containerRuntime=docker")],
        &format!("{K}.containerRuntime"),
        "dockershim was removed in 1.24",
    );
    check(
        az,
        &[&format!("{K}.containerdVersion=1.5.13")],
        &format!("{K}.containerdVersion"),
        "not supported",
    );
    check(
        az,
        &[&format!("{K}.enableRbac=false")],
        &format!("{K}.enableRbac"),
        "always use RBAC",
    );
    check(
        az,
        &[&format!("{K}.kubeletConfig={{\"--network-plugin\":\"cni\"}}")],
        &format!("{K}.kubeletConfig[\"--network-plugin\"]"),
        "removed in Kubernetes 1.24",
    );
    check(
        az,
        &[&format!("{K}.kubeletConfig={{\"max-pods\":\"5\"}}")],
        &format!("{K}.kubeletConfig[\"max-pods\"]"),
        "dashes",
    );
    check(
        az,
        &[&format!(
            "{K}.controllerManagerConfig={{\"--node-monitor-grace-period\":\"40\"}}"
        )],
        &format!("{K}.controllerManagerConfig[\"--node-monitor-grace-period\"]"),
        "not a duration",
    );
    check(
        az,
        &[&format!("{K}.loadBalancerSku=Premium")],
        &format!("{K}.loadBalancerSku"),
        "Standard, Basic",
    );
    check(
        az,
        &["properties.featureFlags.enableIPv6DualStack=true"],
        "properties.featureFlags.enableIPv6DualStack",
        "not supported",
    );
}

#[test]
fn access_and_provider_rules() {
    let az = "windows.json";
    check(
        az,
        &[&format!("{W}.adminUsername=administrator")],
        &format!("{W}.adminUsername"),
        "reserved user name",
    );
    check(
        az,
        &[&format!("{W}.adminUsername=a/b")],
        &format!("{W}.adminUsername"),
        "not a valid Windows user name",
    );
    check(
        az,
        &[&format!("{W}.adminPassword=alllowercaseletters")],
        &format!("{W}.adminPassword"),
        "complexity",
    );
    check(
        az,
        &[&format!("{W}.adminPassword=P@ssw0rd")],
        &format!("{W}.adminPassword"),
        "12 to 123",
    );
    check(
        az,
        &[&format!("{W}.adminPassword=Azureuser-Passw0rd")],
        &format!("{W}.adminPassword"),
        "contains the user name",
    );
    check(
        az,
        &[&format!("{W}.adminPassword=")],
        &format!("{W}.adminPassword"),
        "empty",
    );
    check(
        az,
        &["properties.linuxProfile.adminUsername=root"],
        "properties.linuxProfile.adminUsername",
        "reserved",
    );
    check(
        az,
        &["properties.linuxProfile.ssh.publicKeys[0].keyData=ssh-rsa nonsense"],
        "properties.linuxProfile.ssh.publicKeys[0].keyData",
        "not an OpenSSH public key",
    );
    check(
        az,
        &["properties.certificateProfile.bootstrapToken=abc"],
        "properties.certificateProfile.bootstrapToken",
        "[a-z0-9]{6}",
    );
    check(
        az,
        &["properties.certificateProfile.keyAlgorithm=DSA"],
        "properties.certificateProfile.keyAlgorithm",
        "not a key algorithm",
    );
    check(
        az,
        &["properties.providerProfile.name=vsphere"],
        "properties.providerProfile.name",
        "not a cloud",
    );
    // OpenStack has no public image catalog: the model names the Glance
    // images, and without Octavia one master.
    check(
        az,
        &["properties.providerProfile.name=openstack"],
        "properties.providerProfile.images.linux",
        "Glance",
    );
    check(
        "windows-openstack.json",
        &["properties.agentPoolProfiles[1].windowsVersion=2019"],
        "properties.providerProfile.images.windows-2019",
        "Glance",
    );
    check(
        "windows-openstack.json",
        &[
            "properties.providerProfile.octavia=false",
            "properties.masterProfile.count=3",
        ],
        "properties.masterProfile.count",
        "Octavia",
    );
    check(
        "windows-openstack.json",
        &[
            "properties.orchestratorProfile.kubernetesConfig.networkPlugin=kubenet",
            "properties.agentPoolProfiles[0].count=40",
        ],
        "properties.orchestratorProfile.kubernetesConfig.networkPlugin",
        "routes",
    );
    check(
        az,
        &["properties.providerProfile.location=eastus"],
        "location",
        "disagree",
    );
    check(
        "windows-gcp.json",
        &["properties.providerProfile.project="],
        "properties.providerProfile.project",
        "needs a project",
    );
    check(
        "windows-gcp.json",
        &["properties.providerProfile.zone=europe-west1-b"],
        "properties.providerProfile.zone",
        "not in region",
    );
    check(
        "windows-gcp.json",
        &["properties.masterProfile.vmSize=Standard_M416ms_v2"],
        "properties.masterProfile.vmSize",
        "no mapping to gcp",
    );
    check(
        "windows-aws.json",
        &["properties.masterProfile.vmSize=n2-standard-2"],
        "properties.masterProfile.vmSize",
        "not a machine type on aws",
    );
    check(
        "windows-aws.json",
        &["properties.providerProfile.region=westus2"],
        "properties.providerProfile.location",
        "not a location on aws",
    );
}

#[test]
fn azure_sizes_map_on_other_clouds() {
    // An Azure size in an AWS model is accepted and mapped.
    assert!(errors("windows-aws.json", &["properties.masterProfile.vmSize=Standard_D2s_v3"]).is_empty());
    assert_eq!(
        hke::catalog::vmsizes::native(hke::model::types::Cloud::Aws, "Standard_D2s_v3").as_deref(),
        Some("m5.large")
    );
}
