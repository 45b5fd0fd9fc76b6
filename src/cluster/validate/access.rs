//! Access to the cluster: the Linux administrator and SSH keys, user names
//! and Windows passwords, the certificates' key algorithm and the bootstrap
//! token, and the API server's endpoint.

use std::net::Ipv4Addr;

use crate::cluster::defaults;
use crate::cluster::{Endpoint, LinuxAccess, Provider};
use crate::model::types::{Cloud, DnsPrefix, KeyAlgorithm};
use crate::model::vlabs;
use crate::secrets::{self, is_placeholder, password, Secret};

use super::V;

/// User names Azure refuses for VMs; hke refuses them on every cloud.
pub const RESERVED_USERNAMES: &[&str] = &[
    "1",
    "123",
    "a",
    "actuser",
    "adm",
    "admin",
    "admin1",
    "admin2",
    "administrator",
    "aspnet",
    "backup",
    "console",
    "david",
    "guest",
    "john",
    "owner",
    "root",
    "server",
    "sql",
    "support",
    "support_388945a0",
    "sys",
    "test",
    "test1",
    "test2",
    "test3",
    "user",
    "user1",
    "user2",
    "user3",
    "user4",
    "user5",
];

/// The Linux profile: the administrator and the SSH public keys.
pub(super) fn linux(v: &mut V<'_>, p: &vlabs::Properties) -> LinuxAccess {
    let lp = p.linux_profile.clone().unwrap_or_default();
    let lpath = "properties.linuxProfile";
    let luser = lp.admin_username.clone().unwrap_or_default();
    if !is_placeholder(&luser) {
        check_username(v, &format!("{lpath}.adminUsername"), &luser, false);
    }
    let ssh = lp.ssh.clone().unwrap_or_default();
    let mut keys = Vec::new();
    for (i, key) in ssh.public_keys.clone().unwrap_or_default().iter().enumerate() {
        let kp = format!("{lpath}.ssh.publicKeys[{i}].keyData");
        let data = key.key_data.clone().unwrap_or_default();
        if data.trim().is_empty() {
            v.err(
                &kp,
                "keyData is empty",
                "remove the publicKeys entry and hke generates a key pair, or paste your OpenSSH public key (hke migrate removes empty keys)".to_string(),
            );
        } else if !is_placeholder(&data) {
            match ssh_key::PublicKey::from_openssh(data.trim()) {
                Ok(_) => keys.push(data.trim().to_string()),
                Err(_) => v.err(
                    &kp,
                    "keyData is not an OpenSSH public key",
                    "paste the one line of your id_ed25519.pub or id_rsa.pub".to_string(),
                ),
            }
        }
    }
    if ssh.public_keys.as_ref().is_none_or(|k| k.is_empty()) {
        v.err(
            &format!("{lpath}.ssh"),
            "no SSH public key",
            "remove linuxProfile.ssh and hke generates a key pair".to_string(),
        );
    }
    LinuxAccess {
        admin_username: luser,
        ssh_public_keys: keys,
        ssh_private_key: ssh.private_key.clone().map(Secret::new),
    }
}

/// The certificate profile: the key algorithm and the bootstrap token.
pub(super) fn certificates(v: &mut V<'_>, p: &vlabs::Properties) -> (KeyAlgorithm, Secret) {
    let cp = p.certificate_profile.clone().unwrap_or_default();
    let key_algorithm: KeyAlgorithm = v.parse(
        "properties.certificateProfile.keyAlgorithm",
        cp.key_algorithm.as_deref(),
        defaults::KEY_ALGORITHM,
        None,
    );
    let token = cp.bootstrap_token.clone().unwrap_or_default();
    if !secrets::is_bootstrap_token(&token) {
        v.err(
            "properties.certificateProfile.bootstrapToken",
            "the bootstrap token is not of the form [a-z0-9]{6}.[a-z0-9]{16}",
            "remove bootstrapToken and hke generates one".to_string(),
        );
    }
    (key_algorithm, Secret::new(token))
}

/// The API server's endpoint: the names known before deploy (certificate
/// SANs) and the URL, final on Azure, a placeholder deploy rewrites on AWS
/// and GCP.
pub(super) fn endpoint(provider: &Provider, name: &DnsPrefix, internal_lb_ip: Option<Ipv4Addr>) -> Endpoint {
    let (cloud, location) = (provider.cloud, &provider.location);
    let port = defaults::API_SERVER_PORT;
    let (san_names, url, resolved) = match cloud {
        Cloud::Azure => {
            let fqdn = format!("{name}.{location}.cloudapp.azure.com");
            (vec![fqdn.clone()], format!("https://{fqdn}:{port}"), true)
        }
        Cloud::Fake => {
            let fqdn = format!("{name}.{location}.fake.hke.invalid");
            (vec![fqdn.clone()], format!("https://{fqdn}:{port}"), true)
        }
        Cloud::Aws => (
            vec![format!("*.elb.{location}.amazonaws.com")],
            format!("https://{name}.pending.hke.invalid:{port}"),
            false,
        ),
        // Both give the API server an address at deploy (a forwarding
        // rule's, a floating IP), which the masters add to its certificate.
        Cloud::Gcp | Cloud::OpenStack => (Vec::new(), format!("https://{name}.pending.hke.invalid:{port}"), false),
    };
    Endpoint {
        san_names,
        url,
        resolved,
        port,
        internal_lb_ip,
    }
}

pub(super) fn check_username(v: &mut V<'_>, path: &str, name: &str, windows: bool) {
    if name.is_empty() {
        v.err(
            path,
            "the user name is empty",
            "write a user name such as azureuser, or remove the key for the default".to_string(),
        );
        return;
    }
    if RESERVED_USERNAMES.contains(&name.to_ascii_lowercase().as_str()) {
        v.err(
            path,
            format!("{name:?} is a reserved user name"),
            "choose another, such as azureuser".to_string(),
        );
        return;
    }
    if windows {
        if name.len() > 20 || name.chars().any(|c| "\\/\"[]:|<>+=;,?*@ ".contains(c)) || name.ends_with('.') {
            v.err(
                path,
                format!("{name:?} is not a valid Windows user name"),
                "use at most 20 characters, none of \\/\"[]:|<>+=;,?*@ or spaces, not ending with '.'".to_string(),
            );
        }
    } else {
        // Azure and cloud-init accept mixed case (acs-engine examples use
        // "azureUser"); refuse what useradd cannot create.
        let ok = name.len() <= 32
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !ok {
            v.err(
                path,
                format!("{name:?} is not a valid Linux user name"),
                "use at most 32 letters, digits, '_', '-' and '.', starting with a letter or '_'".to_string(),
            );
        }
    }
}

pub(super) fn check_password(v: &mut V<'_>, path: &str, pw: &str, user: &str) {
    if is_placeholder(pw) {
        return; // reported by the placeholder scan
    }
    if pw.is_empty() {
        v.err(
            path,
            "the Windows admin password is empty",
            "remove adminPassword and hke generates one".to_string(),
        );
        return;
    }
    let n = pw.chars().count();
    if !(12..=123).contains(&n) {
        v.err(
            path,
            format!("the Windows admin password has {n} characters; it needs 12 to 123"),
            "use a longer password, or remove adminPassword and hke generates one".to_string(),
        );
    }
    if password::classes(pw) < 3 {
        v.err(
            path,
            "the Windows admin password does not meet complexity rules: it needs three of lowercase, uppercase, digits and symbols",
            "add characters of the missing kinds, or remove adminPassword and hke generates one".to_string(),
        );
    }
    if user.len() >= 3 && pw.to_ascii_lowercase().contains(&user.to_ascii_lowercase()) {
        v.err(
            path,
            format!("the Windows admin password contains the user name {user:?}"),
            "choose a password without it".to_string(),
        );
    }
    if password::DISALLOWED.iter().any(|d| d.eq_ignore_ascii_case(pw)) {
        v.err(
            path,
            "the Windows admin password is on Azure's list of disallowed passwords",
            "choose another".to_string(),
        );
    }
}
