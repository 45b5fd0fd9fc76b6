//! Certificates checked by openssl, per cloud.

use std::fs;
use std::path::Path;

use base64::Engine;

use crate::support::{hke, openssl, root, text};

fn generate(dir: &Path, example: &str, extra: &[&str]) -> std::path::PathBuf {
    let m = root().join("examples").join(example);
    let mut args = vec!["generate", "-m", m.to_str().expect("utf8"), "-o", "out"];
    args.extend_from_slice(extra);
    let out = hke(dir, &args);
    assert!(out.status.success(), "{example}: {}", text(&out.stderr));
    dir.join("out")
}

fn sans(pki: &Path, cert: &str) -> String {
    let (ok, out) = openssl(pki, &["x509", "-in", cert, "-noout", "-ext", "subjectAltName"]);
    assert!(ok, "{out}");
    out
}

fn verify_all(pki: &Path) {
    for (ca, certs) in [
        ("ca.crt", vec!["apiserver.crt", "admin.crt"]),
        ("front-proxy-ca.crt", vec!["front-proxy-client.crt"]),
        (
            "etcd/ca.crt",
            vec!["etcd/server.crt", "etcd/peer-0.crt", "apiserver-etcd-client.crt"],
        ),
    ] {
        for cert in certs {
            let (ok, out) = openssl(pki, &["verify", "-CAfile", ca, cert]);
            assert!(ok && out.contains(": OK"), "{cert} against {ca}: {out}");
        }
    }
    // A certificate does not verify against the wrong CA (the check can fail).
    let (ok, _) = openssl(pki, &["verify", "-CAfile", "etcd/ca.crt", "apiserver.crt"]);
    assert!(!ok, "apiserver.crt must not verify against the etcd CA");
}

fn kubeconfig_matches(out: &Path, location: &str) {
    let kc: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(out.join(format!("kubeconfig/kubeconfig.{location}.json"))).expect("kubeconfig"),
    )
    .expect("json");
    let b64 = |v: &serde_json::Value| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().expect("string"))
                .expect("base64"),
        )
        .expect("utf8")
    };
    assert_eq!(
        b64(&kc["clusters"][0]["cluster"]["certificate-authority-data"]),
        fs::read_to_string(out.join("pki/ca.crt")).expect("ca")
    );
    assert_eq!(
        b64(&kc["users"][0]["user"]["client-certificate-data"]),
        fs::read_to_string(out.join("pki/admin.crt")).expect("admin")
    );
    assert_eq!(
        b64(&kc["users"][0]["user"]["client-key-data"]),
        fs::read_to_string(out.join("pki/admin.key")).expect("key")
    );
    // The embedded client key belongs to the embedded certificate.
    let pki = out.join("pki");
    let (_, cert_pub) = openssl(&pki, &["x509", "-in", "admin.crt", "-noout", "-pubkey"]);
    let (_, key_pub) = openssl(&pki, &["pkey", "-in", "admin.key", "-pubout"]);
    assert_eq!(cert_pub, key_pub);
    let (_, subject) = openssl(&pki, &["x509", "-in", "admin.crt", "-noout", "-subject"]);
    assert!(subject.contains("O = system:masters"), "{subject}");
}

fn discovery_hash_matches(pki: &Path) {
    let (ok, der) = openssl(pki, &["x509", "-in", "ca.crt", "-noout", "-pubkey"]);
    assert!(ok);
    fs::write(pki.join("ca.pub.pem"), der).expect("write");
    let (ok, out) = openssl(
        pki,
        &[
            "pkey",
            "-pubin",
            "-in",
            "ca.pub.pem",
            "-outform",
            "der",
            "-out",
            "ca.pub.der",
        ],
    );
    assert!(ok, "{out}");
    let (_, digest) = openssl(pki, &["dgst", "-sha256", "-r", "ca.pub.der"]);
    let hex = digest.split_whitespace().next().expect("digest");
    let ours = fs::read_to_string(pki.join("discovery-hash.txt")).expect("hash");
    assert_eq!(ours.trim(), format!("sha256:{hex}"));
}

#[test]
fn azure_certificates_verify_and_cover_the_fqdn_and_every_master() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = generate(tmp.path(), "windows.json", &[]);
    let pki = out.join("pki");
    verify_all(&pki);
    let s = sans(&pki, "apiserver.crt");
    for want in [
        "DNS:kubernetes-windows.westus2.cloudapp.azure.com",
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:kubernetes.default.svc,",
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:10.0.0.1",
        "IP Address:10.255.255.5",
        "IP Address:10.255.255.6",
        "IP Address:10.255.255.7",
        "IP Address:10.255.255.15",
    ] {
        assert!(s.contains(want), "missing {want} in {s}");
    }
    assert!(
        !s.contains("eastus"),
        "only the cluster's location, not every region: {s}"
    );
    let e = sans(&pki, "etcd/peer-1.crt");
    assert!(e.contains("IP Address:10.255.255.6"), "{e}");
    kubeconfig_matches(&out, "westus2");
    discovery_hash_matches(&pki);
    let (_, key) = openssl(&pki, &["pkey", "-in", "ca.key", "-noout", "-text"]);
    assert!(
        key.contains("P-256") || key.contains("prime256v1"),
        "ECDSA P-256 by default: {key}"
    );
    let (_, dates) = openssl(
        &pki,
        &["x509", "-in", "ca.crt", "-noout", "-enddate", "-checkend", "157680000"],
    );
    assert!(
        dates.contains("will not expire"),
        "CA valid for more than five years: {dates}"
    );
}

#[test]
fn aws_and_gcp_certificates_carry_their_cloud_names() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = generate(tmp.path(), "windows-aws.json", &[]);
    verify_all(&out.join("pki"));
    let s = sans(&out.join("pki"), "apiserver.crt");
    assert!(s.contains("DNS:*.elb.us-west-2.amazonaws.com"), "{s}");
    assert!(!s.contains("cloudapp.azure.com"), "{s}");
    kubeconfig_matches(&out, "us-west-2");

    let tmp = tempfile::tempdir().expect("tmp");
    let out = generate(tmp.path(), "windows-gcp.json", &[]);
    verify_all(&out.join("pki"));
    let s = sans(&out.join("pki"), "apiserver.crt");
    assert!(
        s.contains("IP Address:10.240.255.5") && !s.contains("azure") && !s.contains("amazonaws"),
        "{s}"
    );
    kubeconfig_matches(&out, "us-central1");
}

#[test]
fn rsa_keys_on_request() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = generate(
        tmp.path(),
        "windows-gcp.json",
        &["--set", "properties.certificateProfile.keyAlgorithm=RSA-2048"],
    );
    let pki = out.join("pki");
    verify_all(&pki);
    let (_, key) = openssl(&pki, &["pkey", "-in", "apiserver.key", "-noout", "-text"]);
    assert!(key.contains("2048 bit"), "{key}");
}

#[test]
fn a_user_ca_from_openssl_signs_the_cluster_and_is_kept() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let (ok, out) = openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "user-ca.key",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "user-ca.key",
            "-subj",
            "/CN=corp-k8s-ca",
            "-days",
            "30",
            "-out",
            "user-ca.crt",
        ],
    );
    assert!(ok, "{out}");
    let mut model: serde_json::Value = serde_json::from_str(&crate::support::example("windows.json")).expect("json");
    model["properties"]["certificateProfile"] = serde_json::json!({
        "caCertificate": fs::read_to_string(d.join("user-ca.crt")).expect("crt"),
        "caPrivateKey": fs::read_to_string(d.join("user-ca.key")).expect("key"),
    });
    fs::write(d.join("m.json"), model.to_string()).expect("write");
    let run = hke(d, &["generate", "-m", "m.json", "-o", "out"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(
        fs::read_to_string(d.join("out/pki/ca.crt")).expect("ca"),
        fs::read_to_string(d.join("user-ca.crt")).expect("crt")
    );
    let (ok, out) = openssl(d, &["verify", "-CAfile", "user-ca.crt", "out/pki/apiserver.crt"]);
    assert!(ok, "{out}");

    // A certificate from another CA is refused, naming the field and the fix.
    let other = tempfile::tempdir().expect("tmp");
    let foreign = generate(other.path(), "windows.json", &[]);
    model["properties"]["certificateProfile"]["apiServerCertificate"] =
        fs::read_to_string(foreign.join("pki/apiserver.crt"))
            .expect("crt")
            .into();
    model["properties"]["certificateProfile"]["apiServerPrivateKey"] =
        fs::read_to_string(foreign.join("pki/apiserver.key"))
            .expect("key")
            .into();
    fs::write(d.join("m2.json"), model.to_string()).expect("write");
    let run = hke(d, &["validate", "-m", "m2.json"]);
    assert_eq!(run.status.code(), Some(2));
    let err = text(&run.stderr);
    assert!(
        err.contains("properties.certificateProfile.apiServerCertificate") && err.contains("not issued by its CA"),
        "{err}"
    );
    assert!(!err.contains("PRIVATE KEY"), "{err}");
}

#[test]
fn a_reused_apiserver_certificate_must_still_cover_the_masters() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = generate(tmp.path(), "windows.json", &[]);
    // Grow the control plane from 3 to 5 masters on the old certificates.
    let run = hke(
        tmp.path(),
        &[
            "validate",
            "-m",
            "out/apimodel.json",
            "--set",
            "properties.masterProfile.count=5",
        ],
    );
    assert_eq!(run.status.code(), Some(2));
    let err = text(&run.stderr);
    assert!(err.contains("does not cover") && err.contains("10.255.255.9"), "{err}");
    assert!(
        err.contains("remove apiServerCertificate and apiServerPrivateKey"),
        "{err}"
    );
    drop(out);
}
