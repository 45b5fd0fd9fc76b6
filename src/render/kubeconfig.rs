//! Kubeconfigs: the admin's, and kube-proxy's on Windows nodes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::json;

use crate::cluster::Cluster;
use crate::pki::Pki;

/// The admin kubeconfig as JSON (kubectl reads JSON and YAML alike).
pub fn admin(c: &Cluster, pki: &Pki) -> serde_json::Value {
    client(c, pki, &c.endpoint.url, "admin", &pki.admin)
}

/// kube-proxy's kubeconfig on Windows nodes: `server` is the API endpoint
/// as the node knows it (the load balancer's address once resolved).
pub fn kube_proxy(c: &Cluster, pki: &Pki, server: &str) -> serde_json::Value {
    client(c, pki, server, "kube-proxy", &pki.kube_proxy)
}

fn client(c: &Cluster, pki: &Pki, server: &str, who: &str, cert: &crate::pki::CertKey) -> serde_json::Value {
    let name = c.name.as_str();
    let user = format!("{name}-{who}");
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": name,
            "cluster": {
                "certificate-authority-data": B64.encode(&pki.ca.cert),
                "server": server,
            }
        }],
        "users": [{
            "name": user,
            "user": {
                "client-certificate-data": B64.encode(&cert.cert),
                "client-key-data": B64.encode(cert.key.expose()),
            }
        }],
        "contexts": [{
            "name": name,
            "context": { "cluster": name, "user": user }
        }],
        "current-context": name,
        "preferences": {}
    })
}
