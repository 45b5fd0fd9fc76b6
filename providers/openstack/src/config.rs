//! Where and as whom: the provider's settings, and the cloud connection
//! read the way the OpenStack CLI reads it.
//!
//! The connection (openstacksdk's `openstack.config`, which the `openstack`
//! CLI uses):
//! - `OS_CLOUD` names a cloud of `clouds.yaml`, found at
//!   `OS_CLIENT_CONFIG_FILE` or as `clouds.{yaml,yml,json}` in the current
//!   directory, `$XDG_CONFIG_HOME/openstack` (`~/.config/openstack`) and
//!   `/etc/openstack`, in that order; `secure.yaml` beside it adds secrets
//!   (or `OS_CLIENT_SECURE_FILE`), `clouds-public.yaml` vendor profiles;
//! - the `OS_*` variables (`OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`,
//!   `OS_PROJECT_NAME`, `OS_USER_DOMAIN_NAME`, `OS_APPLICATION_CREDENTIAL_ID`
//!   and `_SECRET`, `OS_REGION_NAME`, `OS_INTERFACE`, …) are a cloud of their
//!   own without `OS_CLOUD`, and override the named cloud's values with it
//!   (as the CLI's `--os-*` options, whose defaults they are);
//! - `<service>_endpoint_override` keys of a cloud, or
//!   `OS_<SERVICE>_ENDPOINT_OVERRIDE`, replace the catalog's endpoint of a
//!   service (`compute`, `network`, `image`, `load_balancer`, `identity`).
//!
//! Only Keystone v3 is spoken: password (`password`, `v3password`) and
//! application credentials (`v3applicationcredential`, also chosen when an
//! application credential secret is given without an auth type), and
//! `token`.
//!
//! Nothing here reads the process environment: the caller hands in a
//! lookup (hke's `context::Env`), so tests never pick up a real login.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openstack_sdk::config::{Auth, CloudConfig, ConfigFile};
use secrecy::SecretString;

/// The `OS_*` variables read (the CLI's names), as `(variable, field)`.
const AUTH_VARS: [(&str, &str); 20] = [
    ("OS_AUTH_URL", "auth_url"),
    ("OS_USERNAME", "username"),
    ("OS_USER_ID", "user_id"),
    ("OS_PASSWORD", "password"),
    ("OS_USER_DOMAIN_NAME", "user_domain_name"),
    ("OS_USER_DOMAIN_ID", "user_domain_id"),
    ("OS_PROJECT_NAME", "project_name"),
    ("OS_TENANT_NAME", "project_name"),
    ("OS_PROJECT_ID", "project_id"),
    ("OS_TENANT_ID", "project_id"),
    ("OS_PROJECT_DOMAIN_NAME", "project_domain_name"),
    ("OS_PROJECT_DOMAIN_ID", "project_domain_id"),
    ("OS_DOMAIN_NAME", "domain_name"),
    ("OS_DOMAIN_ID", "domain_id"),
    ("OS_APPLICATION_CREDENTIAL_ID", "application_credential_id"),
    ("OS_APPLICATION_CREDENTIAL_NAME", "application_credential_name"),
    ("OS_APPLICATION_CREDENTIAL_SECRET", "application_credential_secret"),
    ("OS_TOKEN", "token"),
    ("OS_SYSTEM_SCOPE", "system_scope"),
    ("OS_DEFAULT_DOMAIN", "default_domain"),
];

/// Variables about the connection rather than the login.
const CONNECTION_VARS: [&str; 9] = [
    "OS_CLOUD",
    "OS_CLIENT_CONFIG_FILE",
    "OS_CLIENT_SECURE_FILE",
    "OS_AUTH_TYPE",
    "OS_REGION_NAME",
    "OS_INTERFACE",
    "OS_ENDPOINT_TYPE",
    "OS_CACERT",
    "OS_INSECURE",
];

/// Services whose endpoint may be overridden, by their clouds.yaml prefix
/// (`compute_endpoint_override`; the SDK maps `_` to `-` for the service
/// type: openstack_sdk_core `catalog::Catalog::configure`).
pub const SERVICES: [&str; 5] = ["compute", "network", "image", "load_balancer", "identity"];

/// The variables whose values are secrets.
const SECRET_VARS: [&str; 3] = ["OS_PASSWORD", "OS_APPLICATION_CREDENTIAL_SECRET", "OS_TOKEN"];

/// The provider's settings.
#[derive(Clone)]
pub struct OpenStackConfig {
    /// The cluster's name: the `hke.io/cluster` tag.
    pub cluster: String,
    /// The cloud of clouds.yaml (`OS_CLOUD`); `None` uses the `OS_*`
    /// variables alone.
    pub cloud: Option<String>,
    /// A clouds.yaml to read instead of searching (`OS_CLIENT_CONFIG_FILE`).
    pub clouds_file: Option<PathBuf>,
    /// A secure.yaml to read instead of searching (`OS_CLIENT_SECURE_FILE`).
    pub secure_file: Option<PathBuf>,
    /// Where clouds.yaml, secure.yaml and clouds-public.yaml are searched.
    pub search_dirs: Vec<PathBuf>,
    /// The `OS_*` variables that were set (secrets are never printed).
    pub vars: BTreeMap<String, String>,
    /// The Identity endpoint, over the cloud's `auth_url` (hke's
    /// `--endpoint-url` / `HKE_OPENSTACK_ENDPOINT_URL`).
    pub auth_url: Option<String>,
    /// The region, over `OS_REGION_NAME` and the cloud's `region_name`.
    pub region: Option<String>,
    /// The endpoint interface (`public`, `internal`, `admin`), over
    /// `OS_INTERFACE` and the cloud's `interface`; `public` by default.
    pub interface: Option<String>,
    /// Service (`compute`, `network`, `image`, `load_balancer`, `identity`) →
    /// endpoint URL, over the catalog (tests, private endpoints).
    pub endpoints: BTreeMap<String, String>,
    /// The external network of the router's gateway and the floating IPs
    /// (name or id); when `None`, the only `router:external` network.
    pub external_network: Option<String>,
    /// The plan's image names (`ubuntu-24.04`, `windows-2022`) → a Glance
    /// image name or id, where the image's lookup does not name one.
    pub images: BTreeMap<String, String>,
    /// The API endpoint through Octavia (`Some(true)`), a floating IP on the
    /// single master (`Some(false)`), or Octavia when the catalog has it.
    pub octavia: Option<bool>,
    /// Boot servers from a Cinder volume of the model's disk size instead
    /// of the flavor's root disk.
    pub boot_from_volume: bool,
    /// Give servers a config drive (for clouds without a metadata service).
    pub config_drive: bool,
    /// DNS servers of the subnet; none leaves Neutron's default.
    pub dns_nameservers: Vec<String>,
    /// The first pause between reads of something hke waits for (a server
    /// to build, a load balancer to go ACTIVE); it doubles up to ten times
    /// this, at most 5 s.
    pub poll: Duration,
    /// How long to wait for one server or load balancer.
    pub wait: Duration,
    /// Servers of a machine group created at once.
    pub group_concurrency: usize,
}

impl fmt::Debug for OpenStackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vars: BTreeMap<&str, &str> = self
            .vars
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_VARS.contains(&k.as_str()) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("OpenStackConfig")
            .field("cluster", &self.cluster)
            .field("cloud", &self.cloud)
            .field("clouds_file", &self.clouds_file)
            .field("vars", &vars)
            .field("auth_url", &self.auth_url)
            .field("region", &self.region)
            .field("interface", &self.interface)
            .field("endpoints", &self.endpoints)
            .field("external_network", &self.external_network)
            .field("images", &self.images)
            .field("octavia", &self.octavia)
            .finish_non_exhaustive()
    }
}

fn on_off(name: &str, v: Option<String>) -> Result<Option<bool>, String> {
    match v.as_deref().map(str::trim) {
        None | Some("") | Some("auto") => Ok(None),
        Some("on" | "true" | "1" | "yes") => Ok(Some(true)),
        Some("off" | "false" | "0" | "no") => Ok(Some(false)),
        Some(other) => Err(format!("{name}={other:?}: on, off or auto")),
    }
}

/// `a=b,c=d` as a map.
fn pairs(name: &str, v: &str) -> Result<BTreeMap<String, String>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| format!("{name}: {p:?} is not NAME=VALUE"))
        })
        .collect()
}

impl OpenStackConfig {
    pub fn new(cluster: &str) -> OpenStackConfig {
        OpenStackConfig {
            cluster: cluster.to_string(),
            cloud: None,
            clouds_file: None,
            secure_file: None,
            search_dirs: vec![PathBuf::from("/etc/openstack")],
            vars: BTreeMap::new(),
            auth_url: None,
            region: None,
            interface: None,
            endpoints: BTreeMap::new(),
            external_network: None,
            images: BTreeMap::new(),
            octavia: None,
            boot_from_volume: false,
            config_drive: false,
            dns_nameservers: Vec::new(),
            poll: Duration::from_millis(500),
            wait: Duration::from_secs(1800),
            group_concurrency: 10,
        }
    }

    /// The settings from variables: the CLI's `OS_*` (see the module docs),
    /// `HOME`/`XDG_CONFIG_HOME` for the clouds.yaml search, and hke's own:
    /// `HKE_OPENSTACK_EXTERNAL_NETWORK`, `HKE_OPENSTACK_IMAGES`
    /// (`ubuntu-24.04=NAME_OR_ID,windows-2022=NAME_OR_ID`),
    /// `HKE_OPENSTACK_OCTAVIA` (on/off/auto), `HKE_OPENSTACK_BOOT_FROM_VOLUME`,
    /// `HKE_OPENSTACK_CONFIG_DRIVE` (on/off), `HKE_OPENSTACK_DNS`
    /// (comma-separated), `HKE_OPENSTACK_POLL_MS`.
    pub fn from_lookup(cluster: &str, get: impl Fn(&str) -> Option<String>) -> Result<OpenStackConfig, String> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let mut c = OpenStackConfig::new(cluster);
        for (var, _) in AUTH_VARS {
            if let Some(v) = get(var) {
                c.vars.insert(var.to_string(), v);
            }
        }
        for var in CONNECTION_VARS.iter().chain(["OS_IDENTITY_API_VERSION"].iter()) {
            if let Some(v) = get(var) {
                c.vars.insert(var.to_string(), v);
            }
        }
        c.cloud = c.vars.get("OS_CLOUD").cloned();
        c.clouds_file = c.vars.get("OS_CLIENT_CONFIG_FILE").map(PathBuf::from);
        c.secure_file = c.vars.get("OS_CLIENT_SECURE_FILE").map(PathBuf::from);
        let mut dirs = Vec::new();
        if let Ok(cwd) = std::env::current_dir() {
            dirs.push(cwd);
        }
        match (get("XDG_CONFIG_HOME"), get("HOME")) {
            (Some(x), _) => dirs.push(Path::new(&x).join("openstack")),
            (None, Some(h)) => dirs.push(Path::new(&h).join(".config/openstack")),
            _ => {}
        }
        dirs.push(PathBuf::from("/etc/openstack"));
        c.search_dirs = dirs;
        for svc in SERVICES {
            let var = format!("OS_{}_ENDPOINT_OVERRIDE", svc.to_ascii_uppercase());
            if let Some(v) = get(&var) {
                c.endpoints.insert(svc.to_string(), v);
            }
        }
        c.external_network = get("HKE_OPENSTACK_EXTERNAL_NETWORK");
        if let Some(v) = get("HKE_OPENSTACK_IMAGES") {
            c.images = pairs("HKE_OPENSTACK_IMAGES", &v)?;
        }
        c.octavia = on_off("HKE_OPENSTACK_OCTAVIA", get("HKE_OPENSTACK_OCTAVIA"))?;
        c.boot_from_volume =
            on_off("HKE_OPENSTACK_BOOT_FROM_VOLUME", get("HKE_OPENSTACK_BOOT_FROM_VOLUME"))?.unwrap_or(false);
        c.config_drive = on_off("HKE_OPENSTACK_CONFIG_DRIVE", get("HKE_OPENSTACK_CONFIG_DRIVE"))?.unwrap_or(false);
        if let Some(v) = get("HKE_OPENSTACK_DNS") {
            c.dns_nameservers = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(v) = get("HKE_OPENSTACK_POLL_MS") {
            let ms: u64 = v
                .parse()
                .map_err(|_| format!("HKE_OPENSTACK_POLL_MS={v:?} is not a whole number"))?;
            c.poll = Duration::from_millis(ms.max(1));
        }
        Ok(c)
    }

    /// The secrets of the login (to keep them out of messages).
    pub fn secrets(&self) -> Vec<String> {
        SECRET_VARS.iter().filter_map(|k| self.vars.get(*k).cloned()).collect()
    }

    /// The first `name.{yaml,yml,json}` in the search directories.
    fn find(&self, name: &str) -> Option<PathBuf> {
        self.search_dirs
            .iter()
            .flat_map(|d| ["yaml", "yml", "json"].map(|ext| d.join(format!("{name}.{ext}"))))
            .find(|p| p.is_file())
    }

    /// The named cloud of clouds.yaml (with secure.yaml and vendor
    /// profiles merged).
    fn file_cloud(&self, name: &str) -> Result<CloudConfig, String> {
        let clouds = match &self.clouds_file {
            Some(p) if p.is_file() => p.clone(),
            Some(p) => return Err(format!("OS_CLIENT_CONFIG_FILE {} does not exist", p.display())),
            None => self.find("clouds").ok_or_else(|| {
                format!(
                    "OS_CLOUD={name} but there is no clouds.yaml in {}",
                    self.search_dirs
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?,
        };
        let secure = self.secure_file.clone().or_else(|| self.find("secure"));
        let mut b = ConfigFile::builder();
        if let Some(public) = self.find("clouds-public") {
            b = b
                .add_source(&public)
                .map_err(|e| format!("read {}: {e}", public.display()))?;
        }
        b = b
            .add_source(&clouds)
            .map_err(|e| format!("read {}: {e}", clouds.display()))?;
        if let Some(s) = secure.filter(|s| s.is_file()) {
            b = b.add_source(&s).map_err(|e| format!("read {}: {e}", s.display()))?;
        }
        let file = b.build().map_err(|e| format!("read {}: {e}", clouds.display()))?;
        file.get_cloud_config(name)
            .map_err(|e| format!("cloud {name} of {}: {e}", clouds.display()))?
            .ok_or_else(|| {
                let mut known: Vec<String> = file.clouds.iter().flat_map(|c| c.keys().cloned()).collect();
                known.sort();
                format!(
                    "there is no cloud {name:?} in {} (clouds: {})",
                    clouds.display(),
                    known.join(", ")
                )
            })
    }

    /// The cloud from the `OS_*` variables.
    fn env_cloud(&self) -> CloudConfig {
        let v = |k: &str| self.vars.get(k).cloned();
        let s = |k: &str| v(k).map(SecretString::from);
        let mut auth = Auth {
            auth_url: v("OS_AUTH_URL"),
            username: v("OS_USERNAME"),
            user_id: v("OS_USER_ID"),
            password: s("OS_PASSWORD"),
            user_domain_name: v("OS_USER_DOMAIN_NAME"),
            user_domain_id: v("OS_USER_DOMAIN_ID"),
            project_name: v("OS_PROJECT_NAME").or_else(|| v("OS_TENANT_NAME")),
            project_id: v("OS_PROJECT_ID").or_else(|| v("OS_TENANT_ID")),
            project_domain_name: v("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: v("OS_PROJECT_DOMAIN_ID"),
            domain_name: v("OS_DOMAIN_NAME"),
            domain_id: v("OS_DOMAIN_ID"),
            application_credential_id: v("OS_APPLICATION_CREDENTIAL_ID"),
            application_credential_name: v("OS_APPLICATION_CREDENTIAL_NAME"),
            application_credential_secret: s("OS_APPLICATION_CREDENTIAL_SECRET"),
            token: s("OS_TOKEN"),
            system_scope: v("OS_SYSTEM_SCOPE"),
            ..Auth::default()
        };
        // keystoneauth's default_domain: the user's and the project's domain
        // id where none is given.
        if let Some(d) = v("OS_DEFAULT_DOMAIN") {
            if auth.user_domain_id.is_none() && auth.user_domain_name.is_none() {
                auth.user_domain_id = Some(d.clone());
            }
            if auth.project_domain_id.is_none() && auth.project_domain_name.is_none() {
                auth.project_domain_id = Some(d);
            }
        }
        // `publicURL` (the legacy OS_ENDPOINT_TYPE) is `public`.
        let interface = v("OS_INTERFACE")
            .or_else(|| v("OS_ENDPOINT_TYPE"))
            .map(|i| i.trim_end_matches("URL").to_string());
        CloudConfig {
            auth: Some(auth),
            auth_type: v("OS_AUTH_TYPE"),
            region_name: v("OS_REGION_NAME"),
            interface,
            cacert: v("OS_CACERT"),
            verify: v("OS_INSECURE").map(|i| !matches!(i.as_str(), "true" | "True" | "1" | "yes")),
            ..CloudConfig::default()
        }
    }

    /// The connection: the named cloud with the `OS_*` variables over it
    /// (or the variables alone), then hke's overrides. Errors name what is
    /// missing and never quote a secret.
    pub fn cloud_config(&self) -> Result<CloudConfig, String> {
        if let Some(v) = self.vars.get("OS_IDENTITY_API_VERSION") {
            if v.trim() != "3" {
                return Err(format!("OS_IDENTITY_API_VERSION={v}: hke speaks Keystone v3 only"));
            }
        }
        let mut cc = self.env_cloud();
        match &self.cloud {
            Some(name) => {
                let file = self.file_cloud(name)?;
                // Unset values of the variables' cloud come from the file.
                cc.update(&file);
                if let Some(v) = file.options.get("identity_api_version") {
                    if v.to_string().trim() != "3" {
                        return Err(format!(
                            "cloud {name}: identity_api_version {v}: hke speaks Keystone v3 only"
                        ));
                    }
                }
                cc.name = Some(name.clone());
            }
            None => {
                if self.auth_url.is_none() && !self.vars.contains_key("OS_AUTH_URL") {
                    return Err(
                        "no OpenStack cloud: set OS_CLOUD (a cloud of clouds.yaml) or the OS_* variables \
                         (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME, …)"
                            .to_string(),
                    );
                }
                cc.name = Some("envvars".into());
            }
        }
        if let Some(url) = &self.auth_url {
            cc.auth.get_or_insert_with(Auth::default).auth_url = Some(url.clone());
        }
        if let Some(r) = &self.region {
            cc.region_name = Some(r.clone());
        }
        if let Some(i) = &self.interface {
            cc.interface = Some(i.clone());
        }
        if cc.interface.is_none() {
            cc.interface = Some("public".into());
        }
        for (svc, url) in &self.endpoints {
            cc.options
                .insert(format!("{svc}_endpoint_override"), config::Value::from(url.as_str()));
        }
        // An on-disk token cache would put a token on disk: never.
        cc.auth_cache = Some(false);
        let auth = cc.auth.as_ref();
        let has = |f: fn(&Auth) -> bool| auth.is_some_and(f);
        if !has(|a| a.auth_url.is_some()) {
            return Err("the OpenStack cloud has no auth_url (OS_AUTH_URL)".into());
        }
        let app_cred = has(|a| a.application_credential_secret.is_some());
        let auth_type = match cc.auth_type.as_deref() {
            None if app_cred => "v3applicationcredential",
            None if has(|a| a.token.is_some()) && !has(|a| a.password.is_some()) => "v3token",
            None => "v3password",
            Some("password" | "v3password") => "v3password",
            Some("v3applicationcredential" | "applicationcredential" | "application_credential") => {
                "v3applicationcredential"
            }
            Some("token" | "v3token") => "v3token",
            Some(other) => {
                return Err(format!(
                    "auth_type {other:?} is not supported: use password, v3applicationcredential or token"
                ))
            }
        };
        match auth_type {
            "v3password" => {
                if !has(|a| a.password.is_some()) {
                    return Err(
                        "password authentication needs a password (OS_PASSWORD or clouds.yaml/secure.yaml)".into(),
                    );
                }
                if !has(|a| a.username.is_some() || a.user_id.is_some()) {
                    return Err("password authentication needs a user (OS_USERNAME or OS_USER_ID)".into());
                }
            }
            "v3applicationcredential" => {
                if !app_cred {
                    return Err(
                        "application credential authentication needs its secret (OS_APPLICATION_CREDENTIAL_SECRET)"
                            .into(),
                    );
                }
                if !has(|a| a.application_credential_id.is_some() || a.application_credential_name.is_some()) {
                    return Err(
                        "application credential authentication needs its id (OS_APPLICATION_CREDENTIAL_ID) or name"
                            .into(),
                    );
                }
            }
            _ => {}
        }
        cc.auth_type = Some(auth_type.to_string());
        Ok(cc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn variables_alone_make_a_password_cloud() {
        let c = OpenStackConfig::from_lookup(
            "c1",
            lookup(&[
                ("OS_AUTH_URL", "http://127.0.0.1/identity"),
                ("OS_USERNAME", "demo"),
                ("OS_PASSWORD", "hunter22"),
                ("OS_PROJECT_NAME", "demo"),
                ("OS_USER_DOMAIN_NAME", "Default"),
                ("OS_PROJECT_DOMAIN_ID", "default"),
                ("OS_REGION_NAME", "RegionOne"),
                ("OS_ENDPOINT_TYPE", "internalURL"),
                ("OS_COMPUTE_ENDPOINT_OVERRIDE", "http://127.0.0.1:8774/v2.1"),
                ("HKE_OPENSTACK_IMAGES", "ubuntu-24.04=ubuntu-22.04, windows-2022=win"),
                ("HKE_OPENSTACK_OCTAVIA", "off"),
            ]),
        )
        .expect("parses");
        assert_eq!(c.images["ubuntu-24.04"], "ubuntu-22.04");
        assert_eq!(c.octavia, Some(false));
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter22"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        let cc = c.cloud_config().expect("cloud");
        assert_eq!(cc.auth_type.as_deref(), Some("v3password"));
        assert_eq!(cc.region_name.as_deref(), Some("RegionOne"));
        assert_eq!(cc.interface.as_deref(), Some("internal"));
        assert_eq!(cc.auth_cache, Some(false));
        assert_eq!(
            cc.options.get("compute_endpoint_override").map(|v| v.to_string()),
            Some("http://127.0.0.1:8774/v2.1".to_string())
        );
        let auth = cc.auth.expect("auth");
        assert_eq!(
            auth.password.map(|p| p.expose_secret().to_string()).as_deref(),
            Some("hunter22")
        );
        assert!(!format!("{:?}", c.secrets()).is_empty());
    }

    #[test]
    fn clouds_yaml_with_variables_over_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("clouds.yaml"),
            "clouds:\n  bed:\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n      username: admin\n      \
             project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    \
             region_name: RegionOne\n    interface: public\n    network_endpoint_override: http://127.0.0.1:9696\n  \
             app:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n      \
             application_credential_id: abc\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("secure.yaml"),
            "clouds:\n  bed:\n    auth:\n      password: from-secure\n  app:\n    auth:\n      application_credential_secret: s3cr3t\n",
        )
        .expect("write");
        let home = dir.path().to_string_lossy().to_string();
        let mk = |extra: &[(&str, &str)]| {
            let mut all = vec![("OS_CLIENT_CONFIG_FILE", "")];
            all.extend_from_slice(extra);
            let mut c = OpenStackConfig::from_lookup("c1", lookup(&all)).expect("parses");
            c.search_dirs = vec![PathBuf::from(&home)];
            c
        };
        let bed = mk(&[("OS_CLOUD", "bed"), ("OS_REGION_NAME", "RegionTwo")])
            .cloud_config()
            .expect("bed");
        assert_eq!(bed.region_name.as_deref(), Some("RegionTwo"));
        assert_eq!(bed.auth_type.as_deref(), Some("v3password"));
        let auth = bed.auth.clone().expect("auth");
        assert_eq!(auth.username.as_deref(), Some("admin"));
        assert_eq!(
            auth.password.map(|p| p.expose_secret().to_string()).as_deref(),
            Some("from-secure")
        );
        assert!(bed.options.contains_key("network_endpoint_override"));
        let app = mk(&[("OS_CLOUD", "app")]).cloud_config().expect("app");
        assert_eq!(app.auth_type.as_deref(), Some("v3applicationcredential"));
        let e = mk(&[("OS_CLOUD", "nope")]).cloud_config().expect_err("fails");
        assert!(e.contains("no cloud \"nope\"") && e.contains("app, bed"), "{e}");
    }

    #[test]
    fn missing_pieces_are_named() {
        let e = OpenStackConfig::from_lookup("c", lookup(&[]))
            .expect("parses")
            .cloud_config()
            .expect_err("fails");
        assert!(e.contains("OS_CLOUD") && e.contains("OS_AUTH_URL"), "{e}");
        let e = OpenStackConfig::from_lookup("c", lookup(&[("OS_AUTH_URL", "http://x/v3"), ("OS_USERNAME", "u")]))
            .expect("parses")
            .cloud_config()
            .expect_err("fails");
        assert!(e.contains("OS_PASSWORD"), "{e}");
        let e = OpenStackConfig::from_lookup(
            "c",
            lookup(&[("OS_AUTH_URL", "http://x/v2.0"), ("OS_IDENTITY_API_VERSION", "2")]),
        )
        .expect("parses")
        .cloud_config()
        .expect_err("fails");
        assert!(e.contains("Keystone v3"), "{e}");
        let e = OpenStackConfig::from_lookup(
            "c",
            lookup(&[("OS_AUTH_URL", "http://x/v3"), ("OS_AUTH_TYPE", "v2password")]),
        )
        .expect("parses")
        .cloud_config()
        .expect_err("fails");
        assert!(e.contains("not supported"), "{e}");
        assert!(OpenStackConfig::from_lookup("c", lookup(&[("HKE_OPENSTACK_OCTAVIA", "maybe")])).is_err());
        assert!(OpenStackConfig::from_lookup("c", lookup(&[("HKE_OPENSTACK_IMAGES", "x")])).is_err());
    }
}
