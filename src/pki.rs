//! The cluster's PKI, generated in-process.
//!
//! Certificates and keys given in `certificateProfile` are used as they are
//! (after checking that they parse, that key and certificate match, that the
//! certificate was issued by its CA, covers the names it must and has not
//! expired); missing ones are issued. The result is written back into the
//! profile, so generating again from the output keeps every certificate.

use std::net::{IpAddr, Ipv4Addr};

use rand::rngs::OsRng;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::cluster::Cluster;
use crate::model::diag::{Diagnostics, Origins};
use crate::model::types::KeyAlgorithm;
use crate::model::vlabs::CertificateProfile;
use crate::secrets::Secret;

/// CAs are valid for ten years, other certificates for one (kubeadm's choice;
/// `kubeadm certs renew` extends them).
pub const CA_VALIDITY_DAYS: i64 = 3650;
pub const LEAF_VALIDITY_DAYS: i64 = 365;
/// Start validity a little in the past to tolerate clock skew between the
/// machine running hke and the nodes.
pub const BACKDATE_MINUTES: i64 = 5;
/// Warn when a reused certificate expires within this many days.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone)]
pub struct CertKey {
    pub cert: String,
    pub key: Secret,
}

#[derive(Debug, Clone)]
pub struct Pki {
    pub ca: CertKey,
    pub apiserver: CertKey,
    pub admin: CertKey,
    pub front_proxy_ca: CertKey,
    pub front_proxy_client: CertKey,
    /// kube-proxy's client certificate on Windows nodes.
    pub kube_proxy: CertKey,
    pub etcd_ca: CertKey,
    pub etcd_server: CertKey,
    pub etcd_client: CertKey,
    /// One per master.
    pub etcd_peers: Vec<CertKey>,
    pub service_account_public: String,
    pub service_account_private: Secret,
    /// `sha256:<hex>` of the CA's SubjectPublicKeyInfo, for `kubeadm join`.
    pub discovery_hash: String,
}

/// What a certificate is for.
struct Spec {
    cn: String,
    orgs: Vec<String>,
    sans: Vec<SanType>,
    server: bool,
    client: bool,
}

struct Issuer {
    cert: Certificate,
    key: KeyPair,
    pem: String,
}

struct Ctx<'a> {
    algorithm: KeyAlgorithm,
    now: OffsetDateTime,
    diags: &'a mut Diagnostics,
    origins: &'a Origins,
}

const PROFILE: &str = "properties.certificateProfile";

fn new_key(algorithm: KeyAlgorithm) -> Result<KeyPair, String> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => {
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("cannot generate an ECDSA key: {e}"))
        }
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa4096 => {
            use rsa::pkcs8::EncodePrivateKey;
            let bits = if algorithm == KeyAlgorithm::Rsa2048 { 2048 } else { 4096 };
            let key =
                rsa::RsaPrivateKey::new(&mut OsRng, bits).map_err(|e| format!("cannot generate an RSA key: {e}"))?;
            let der = key
                .to_pkcs8_der()
                .map_err(|e| format!("cannot encode an RSA key: {e}"))?;
            KeyPair::try_from(der.as_bytes()).map_err(|e| format!("cannot load an RSA key: {e}"))
        }
    }
}

/// Load a PEM private key (PKCS#8, or PKCS#1 RSA).
fn load_key(pem: &str) -> Result<KeyPair, String> {
    if let Ok(k) = KeyPair::from_pem(pem) {
        return Ok(k);
    }
    if pem.contains("BEGIN RSA PRIVATE KEY") {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::EncodePrivateKey;
        let key =
            rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|_| "the RSA private key does not parse".to_string())?;
        let der = key
            .to_pkcs8_der()
            .map_err(|_| "the RSA private key cannot be converted".to_string())?;
        return KeyPair::try_from(der.as_bytes()).map_err(|_| "the RSA private key cannot be loaded".to_string());
    }
    if pem.contains("BEGIN EC PRIVATE KEY") {
        return Err("EC keys in SEC1 form are not read; convert with `openssl pkcs8 -topk8 -nocrypt`".into());
    }
    Err("the private key is not a PEM PKCS#8 or PKCS#1 key".into())
}

fn der_of(pem_text: &str) -> Result<Vec<u8>, String> {
    let p = ::pem::parse(pem_text).map_err(|_| "the certificate is not PEM".to_string())?;
    if p.tag() != "CERTIFICATE" {
        return Err(format!("expected a CERTIFICATE PEM block, found {}", p.tag()));
    }
    Ok(p.contents().to_vec())
}

fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7F; // positive
    bytes[0] |= 0x01; // and not zero-prefixed
    SerialNumber::from_slice(&bytes)
}

fn dn(cn: &str, orgs: &[String]) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    for o in orgs {
        d.push(DnType::OrganizationName, o.as_str());
    }
    d.push(DnType::CommonName, cn);
    d
}

fn dns(s: &str) -> Option<SanType> {
    s.to_string().try_into().ok().map(SanType::DnsName)
}

impl Ctx<'_> {
    fn err(&mut self, field: &str, message: impl Into<String>, hint: impl Into<String>) {
        let path = format!("{PROFILE}.{field}");
        let origin = self.origins.lookup(&path);
        self.diags.error(path, origin, message, Some(hint.into()));
    }

    fn warn(&mut self, field: &str, message: impl Into<String>) {
        let path = format!("{PROFILE}.{field}");
        let origin = self.origins.lookup(&path);
        self.diags.warning(path, origin, message, None);
    }

    fn new_ca(&mut self, cn: &str) -> Result<Issuer, String> {
        let key = new_key(self.algorithm)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(cn, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = self.now - Duration::minutes(BACKDATE_MINUTES);
        params.not_after = self.now + Duration::days(CA_VALIDITY_DAYS);
        params.serial_number = Some(serial());
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("cannot sign the {cn} CA: {e}"))?;
        let pem = cert.pem();
        Ok(Issuer { cert, key, pem })
    }

    fn issue(&mut self, spec: &Spec, ca: &Issuer) -> Result<CertKey, String> {
        let key = new_key(self.algorithm)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&spec.cn, &spec.orgs);
        params.subject_alt_names = spec.sans.clone();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        if spec.server {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.not_before = self.now - Duration::minutes(BACKDATE_MINUTES);
        params.not_after = self.now + Duration::days(LEAF_VALIDITY_DAYS);
        params.serial_number = Some(serial());
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &ca.cert, &ca.key)
            .map_err(|e| format!("cannot sign {}: {e}", spec.cn))?;
        Ok(CertKey {
            cert: cert.pem(),
            key: Secret::new(key.serialize_pem()),
        })
    }

    /// A CA from the profile, or a new one.
    fn ca(
        &mut self,
        cert_field: &str,
        key_field: &str,
        cert: Option<&str>,
        key: Option<&str>,
        cn: &str,
    ) -> Option<Issuer> {
        match (cert, key) {
            (Some(c), Some(k)) => match self.load_ca(c, k) {
                Ok(i) => Some(i),
                Err(e) => {
                    self.err(cert_field, e, format!("fix it, or remove {cert_field} and {key_field} to have hke generate a new CA (every certificate it signed is then re-issued)"));
                    None
                }
            },
            (Some(_), None) => {
                self.err(
                    key_field,
                    format!("{cert_field} is given without {key_field}"),
                    "hke needs the CA key to issue the cluster's certificates: give both, or neither",
                );
                None
            }
            (None, Some(_)) => {
                self.err(
                    cert_field,
                    format!("{key_field} is given without {cert_field}"),
                    "give both, or neither",
                );
                None
            }
            (None, None) => match self.new_ca(cn) {
                Ok(i) => Some(i),
                Err(e) => {
                    self.err(cert_field, e, "report this as a bug");
                    None
                }
            },
        }
    }

    fn load_ca(&mut self, cert_pem: &str, key_pem: &str) -> Result<Issuer, String> {
        let key = load_key(key_pem)?;
        let der = der_of(cert_pem)?;
        let (_, x) = X509Certificate::from_der(&der).map_err(|_| "the CA certificate does not parse".to_string())?;
        if x.public_key().raw != key.public_key_der().as_slice() {
            return Err("the CA certificate and private key do not belong together".into());
        }
        if !x.is_ca() {
            return Err("the certificate is not a CA (basicConstraints CA:FALSE)".into());
        }
        self.check_expiry_of(&x)?;
        let params = CertificateParams::from_ca_cert_der(&der.clone().into())
            .map_err(|e| format!("the CA certificate cannot be used: {e}"))?;
        // Re-creating the issuer object only gives rcgen its name and key; the
        // original PEM is what ships.
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("the CA cannot be loaded: {e}"))?;
        Ok(Issuer {
            cert,
            key,
            pem: cert_pem.to_string(),
        })
    }

    fn check_expiry_of(&mut self, x: &X509Certificate<'_>) -> Result<(), String> {
        let not_after = x.validity().not_after.timestamp();
        let now = self.now.unix_timestamp();
        if not_after <= now {
            return Err(format!("the certificate expired on {}", x.validity().not_after));
        }
        Ok(())
    }

    /// A leaf from the profile (checked), or a new one.
    #[allow(clippy::too_many_arguments)]
    fn leaf(
        &mut self,
        cert_field: &str,
        key_field: &str,
        cert: Option<&str>,
        key: Option<&str>,
        spec: &Spec,
        ca: &Issuer,
        fresh_ca: bool,
    ) -> Option<CertKey> {
        let given = match (cert, key) {
            (Some(c), Some(k)) if !fresh_ca => Some((c, k)),
            (Some(_), Some(_)) => {
                self.err(
                    cert_field,
                    format!("{cert_field} is given but not the CA that issued it"),
                    format!(
                        "add the CA certificate and key to certificateProfile, or remove {cert_field} and {key_field}"
                    ),
                );
                return None;
            }
            (Some(_), None) | (None, Some(_)) => {
                self.err(
                    cert_field,
                    format!("{cert_field} and {key_field} must be given together"),
                    "give both, or remove both to have hke issue them",
                );
                return None;
            }
            (None, None) => None,
        };
        if let Some((c, k)) = given {
            match self.check_leaf(c, k, spec, ca) {
                Ok(()) => {
                    return Some(CertKey {
                        cert: c.to_string(),
                        key: Secret::new(k),
                    });
                }
                Err(e) => {
                    self.err(
                        cert_field,
                        e,
                        format!("remove {cert_field} and {key_field} to have hke issue a new one"),
                    );
                    return None;
                }
            }
        }
        match self.issue(spec, ca) {
            Ok(ck) => Some(ck),
            Err(e) => {
                self.err(cert_field, e, "report this as a bug");
                None
            }
        }
    }

    fn check_leaf(&mut self, cert_pem: &str, key_pem: &str, spec: &Spec, ca: &Issuer) -> Result<(), String> {
        let key = load_key(key_pem)?;
        let der = der_of(cert_pem)?;
        let (_, x) = X509Certificate::from_der(&der).map_err(|_| "the certificate does not parse".to_string())?;
        if x.public_key().raw != key.public_key_der().as_slice() {
            return Err("the certificate and private key do not belong together".into());
        }
        let ca_der = der_of(&ca.pem)?;
        let (_, cax) =
            X509Certificate::from_der(&ca_der).map_err(|_| "the CA certificate does not parse".to_string())?;
        if x.issuer() != cax.subject() || x.verify_signature(Some(cax.public_key())).is_err() {
            return Err("the certificate was not issued by its CA in this profile".into());
        }
        self.check_expiry_of(&x)?;
        let days_left = (x.validity().not_after.timestamp() - self.now.unix_timestamp()) / 86400;
        if days_left < EXPIRY_WARNING_DAYS {
            self.warn(
                "",
                format!("the certificate for {} expires in {days_left} days; remove it from certificateProfile to have hke issue a new one", spec.cn),
            );
        }
        // Every required name must be covered.
        let mut have_dns = Vec::new();
        let mut have_ip = Vec::new();
        if let Ok(Some(san)) = x.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => have_dns.push(d.to_ascii_lowercase()),
                    GeneralName::IPAddress(b) if b.len() == 4 => {
                        have_ip.push(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
                    }
                    _ => {}
                }
            }
        }
        let mut missing = Vec::new();
        for s in &spec.sans {
            match s {
                SanType::DnsName(d) if !have_dns.contains(&d.as_str().to_ascii_lowercase()) => {
                    missing.push(d.as_str().to_string());
                }
                SanType::IpAddress(ip) if !have_ip.contains(ip) => missing.push(ip.to_string()),
                _ => {}
            }
        }
        if !missing.is_empty() {
            return Err(format!("the certificate does not cover {}", missing.join(", ")));
        }
        Ok(())
    }
}

/// The SANs of the API server certificate.
pub fn apiserver_sans(c: &Cluster) -> Vec<SanType> {
    let mut names: Vec<String> = vec![
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        format!("kubernetes.default.svc.{}", c.network.cluster_domain),
        "localhost".into(),
    ];
    names.extend(c.masters.names.iter().cloned());
    names.extend(c.endpoint.san_names.iter().cloned());
    let mut ips: Vec<Ipv4Addr> = vec![Ipv4Addr::LOCALHOST, c.network.kubernetes_service_ip];
    ips.extend(c.masters.ips.iter().copied());
    ips.extend(c.endpoint.internal_lb_ip);
    for extra in &c.masters.extra_sans {
        match extra.parse::<Ipv4Addr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => names.push(extra.clone()),
        }
    }
    let mut out: Vec<SanType> = Vec::new();
    for n in names {
        if let Some(s) = dns(&n) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    for ip in ips {
        let s = SanType::IpAddress(IpAddr::V4(ip));
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// `sha256:<hex>` of a PEM certificate's SubjectPublicKeyInfo.
pub fn discovery_hash(ca_pem: &str) -> Result<String, String> {
    let der = der_of(ca_pem)?;
    let (_, x) = X509Certificate::from_der(&der).map_err(|_| "the CA certificate does not parse".to_string())?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(x.public_key().raw))))
}

/// Issue (or check and reuse) every certificate of the cluster. Errors go to
/// `diags`; `None` when there were any.
pub fn issue(
    c: &Cluster,
    profile: &CertificateProfile,
    now: OffsetDateTime,
    origins: &Origins,
    diags: &mut Diagnostics,
) -> Option<Pki> {
    let before = diags.errors().count();
    let mut ctx = Ctx {
        algorithm: c.key_algorithm,
        now,
        diags,
        origins,
    };
    let p = profile;
    let fresh = |cert: &Option<String>| cert.is_none();

    let ca = ctx.ca(
        "caCertificate",
        "caPrivateKey",
        p.ca_certificate.as_deref(),
        p.ca_private_key.as_deref(),
        "kubernetes",
    )?;
    let fp_ca = ctx.ca(
        "frontProxyCaCertificate",
        "frontProxyCaPrivateKey",
        p.front_proxy_ca_certificate.as_deref(),
        p.front_proxy_ca_private_key.as_deref(),
        "front-proxy-ca",
    )?;
    // acs-engine signed etcd certificates with the cluster CA and had no etcd
    // CA field: such models keep their certificates.
    let acs_etcd =
        p.etcd_ca_certificate.is_none() && (p.etcd_server_certificate.is_some() || p.etcd_client_certificate.is_some());
    let (etcd_ca_cert, etcd_ca_key) = if acs_etcd {
        (p.ca_certificate.as_deref(), p.ca_private_key.as_deref())
    } else {
        (p.etcd_ca_certificate.as_deref(), p.etcd_ca_private_key.as_deref())
    };
    let etcd_ca = ctx.ca(
        "etcdCaCertificate",
        "etcdCaPrivateKey",
        etcd_ca_cert,
        etcd_ca_key,
        "etcd-ca",
    )?;
    let ca_new = fresh(&p.ca_certificate);
    let fp_new = fresh(&p.front_proxy_ca_certificate);
    let etcd_new = if acs_etcd {
        ca_new
    } else {
        fresh(&p.etcd_ca_certificate)
    };

    let apiserver = ctx.leaf(
        "apiServerCertificate",
        "apiServerPrivateKey",
        p.api_server_certificate.as_deref(),
        p.api_server_private_key.as_deref(),
        &Spec {
            cn: "kube-apiserver".into(),
            orgs: vec![],
            sans: apiserver_sans(c),
            server: true,
            client: false,
        },
        &ca,
        ca_new,
    );
    let admin = ctx.leaf(
        "kubeConfigCertificate",
        "kubeConfigPrivateKey",
        p.kube_config_certificate.as_deref(),
        p.kube_config_private_key.as_deref(),
        &Spec {
            cn: "kubernetes-admin".into(),
            orgs: vec!["system:masters".into()],
            sans: vec![],
            server: false,
            client: true,
        },
        &ca,
        ca_new,
    );
    let front_proxy_client = ctx.leaf(
        "frontProxyClientCertificate",
        "frontProxyClientPrivateKey",
        p.front_proxy_client_certificate.as_deref(),
        p.front_proxy_client_private_key.as_deref(),
        &Spec {
            cn: "front-proxy-client".into(),
            orgs: vec![],
            sans: vec![],
            server: false,
            client: true,
        },
        &fp_ca,
        fp_new,
    );
    // Windows nodes run kube-proxy as a service; this identity is bound to
    // system:node-proxier by Kubernetes' bootstrap RBAC policy
    // (plugin/pkg/auth/authorizer/rbac/bootstrappolicy: user system:kube-proxy),
    // as kube-up's Windows nodes use it.
    let kube_proxy = ctx.leaf(
        "kubeProxyCertificate",
        "kubeProxyPrivateKey",
        p.kube_proxy_certificate.as_deref(),
        p.kube_proxy_private_key.as_deref(),
        &Spec {
            cn: "system:kube-proxy".into(),
            orgs: vec![],
            sans: vec![],
            server: false,
            client: true,
        },
        &ca,
        ca_new,
    );
    let mut etcd_server_sans: Vec<SanType> = vec![];
    for n in c.masters.names.iter().map(String::as_str).chain(["localhost"]) {
        etcd_server_sans.extend(dns(n));
    }
    for ip in c.masters.ips.iter().copied().chain([Ipv4Addr::LOCALHOST]) {
        etcd_server_sans.push(SanType::IpAddress(IpAddr::V4(ip)));
    }
    let etcd_server = ctx.leaf(
        "etcdServerCertificate",
        "etcdServerPrivateKey",
        p.etcd_server_certificate.as_deref(),
        p.etcd_server_private_key.as_deref(),
        &Spec {
            cn: "kube-etcd".into(),
            orgs: vec![],
            sans: etcd_server_sans,
            server: true,
            client: true,
        },
        &etcd_ca,
        etcd_new,
    );
    let etcd_client = ctx.leaf(
        "etcdClientCertificate",
        "etcdClientPrivateKey",
        p.etcd_client_certificate.as_deref(),
        p.etcd_client_private_key.as_deref(),
        &Spec {
            cn: "kube-apiserver-etcd-client".into(),
            orgs: vec![],
            sans: vec![],
            server: false,
            client: true,
        },
        &etcd_ca,
        etcd_new,
    );
    let peer_certs = p.etcd_peer_certificates.clone().unwrap_or_default();
    let peer_keys = p.etcd_peer_private_keys.clone().unwrap_or_default();
    if peer_certs.len() != peer_keys.len() {
        ctx.err(
            "etcdPeerPrivateKeys",
            format!(
                "{} etcd peer certificates but {} keys",
                peer_certs.len(),
                peer_keys.len()
            ),
            "give one key per certificate, or remove both lists",
        );
    }
    let mut etcd_peers = Vec::new();
    for (i, (name, ip)) in c.masters.names.iter().zip(&c.masters.ips).enumerate() {
        let mut sans: Vec<SanType> = dns(name).into_iter().chain(dns("localhost")).collect();
        sans.push(SanType::IpAddress(IpAddr::V4(*ip)));
        sans.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let spec = Spec {
            cn: name.clone(),
            orgs: vec![],
            sans,
            server: true,
            client: true,
        };
        let (pc, pk) = (
            peer_certs.get(i).map(String::as_str),
            peer_keys.get(i).map(String::as_str),
        );
        let (pc, pk) = if peer_certs.len() == peer_keys.len() {
            (pc, pk)
        } else {
            (None, None)
        };
        etcd_peers.extend(ctx.leaf(
            &format!("etcdPeerCertificates[{i}]"),
            &format!("etcdPeerPrivateKeys[{i}]"),
            pc,
            pk,
            &spec,
            &etcd_ca,
            etcd_new,
        ));
    }

    let (sa_public, sa_private) = match (
        p.service_account_public_key.as_deref(),
        p.service_account_private_key.as_deref(),
    ) {
        (Some(public), Some(private)) => match load_key(private) {
            Ok(k) if k.public_key_pem().trim() == public.trim() => (public.to_string(), Secret::new(private)),
            Ok(_) => {
                ctx.err(
                    "serviceAccountPublicKey",
                    "the service-account public and private keys do not belong together",
                    "remove both to have hke generate a pair",
                );
                (String::new(), Secret::new(""))
            }
            Err(e) => {
                ctx.err(
                    "serviceAccountPrivateKey",
                    e,
                    "remove both service-account keys to have hke generate a pair",
                );
                (String::new(), Secret::new(""))
            }
        },
        (None, None) => match new_key(c.key_algorithm) {
            Ok(k) => (k.public_key_pem(), Secret::new(k.serialize_pem())),
            Err(e) => {
                ctx.err("serviceAccountPrivateKey", e, "report this as a bug");
                (String::new(), Secret::new(""))
            }
        },
        _ => {
            ctx.err(
                "serviceAccountPublicKey",
                "serviceAccountPublicKey and serviceAccountPrivateKey must be given together",
                "give both, or neither",
            );
            (String::new(), Secret::new(""))
        }
    };

    let discovery = match discovery_hash(&ca.pem) {
        Ok(h) => h,
        Err(e) => {
            ctx.err("caCertificate", e, "fix the CA certificate");
            String::new()
        }
    };
    if ctx.diags.errors().count() > before {
        return None;
    }
    Some(Pki {
        ca: CertKey {
            cert: ca.pem.clone(),
            key: Secret::new(ca.key.serialize_pem()),
        },
        apiserver: apiserver?,
        admin: admin?,
        front_proxy_ca: CertKey {
            cert: fp_ca.pem.clone(),
            key: Secret::new(fp_ca.key.serialize_pem()),
        },
        front_proxy_client: front_proxy_client?,
        kube_proxy: kube_proxy?,
        etcd_ca: CertKey {
            cert: etcd_ca.pem.clone(),
            key: Secret::new(etcd_ca.key.serialize_pem()),
        },
        etcd_server: etcd_server?,
        etcd_client: etcd_client?,
        etcd_peers,
        service_account_public: sa_public,
        service_account_private: sa_private,
        discovery_hash: discovery,
    })
    .map(|mut pki| {
        // Keep a given CA key byte-for-byte (it may be PKCS#1).
        if let Some(k) = &p.ca_private_key {
            pki.ca.key = Secret::new(k.clone());
        }
        if let Some(k) = &p.front_proxy_ca_private_key {
            pki.front_proxy_ca.key = Secret::new(k.clone());
        }
        if let Some(k) = etcd_ca_key {
            pki.etcd_ca.key = Secret::new(k.to_string());
        }
        pki
    })
}

/// Write the PKI back into the profile, so the output model reproduces it.
pub fn store(pki: &Pki, p: &mut CertificateProfile) {
    let set = |c: &mut Option<String>, k: &mut Option<String>, ck: &CertKey| {
        *c = Some(ck.cert.clone());
        *k = Some(ck.key.expose().to_string());
    };
    set(&mut p.ca_certificate, &mut p.ca_private_key, &pki.ca);
    set(
        &mut p.api_server_certificate,
        &mut p.api_server_private_key,
        &pki.apiserver,
    );
    set(
        &mut p.kube_config_certificate,
        &mut p.kube_config_private_key,
        &pki.admin,
    );
    set(
        &mut p.front_proxy_ca_certificate,
        &mut p.front_proxy_ca_private_key,
        &pki.front_proxy_ca,
    );
    set(
        &mut p.front_proxy_client_certificate,
        &mut p.front_proxy_client_private_key,
        &pki.front_proxy_client,
    );
    set(
        &mut p.kube_proxy_certificate,
        &mut p.kube_proxy_private_key,
        &pki.kube_proxy,
    );
    set(&mut p.etcd_ca_certificate, &mut p.etcd_ca_private_key, &pki.etcd_ca);
    set(
        &mut p.etcd_server_certificate,
        &mut p.etcd_server_private_key,
        &pki.etcd_server,
    );
    set(
        &mut p.etcd_client_certificate,
        &mut p.etcd_client_private_key,
        &pki.etcd_client,
    );
    p.etcd_peer_certificates = Some(pki.etcd_peers.iter().map(|c| c.cert.clone()).collect());
    p.etcd_peer_private_keys = Some(pki.etcd_peers.iter().map(|c| c.key.expose().to_string()).collect());
    p.service_account_public_key = Some(pki.service_account_public.clone());
    p.service_account_private_key = Some(pki.service_account_private.expose().to_string());
}
