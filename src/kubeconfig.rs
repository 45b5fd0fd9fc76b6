//! The admin kubeconfig.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::json;

use crate::cluster::Cluster;
use crate::pki::Pki;

/// The admin kubeconfig as JSON (kubectl reads JSON and YAML alike).
pub fn admin(c: &Cluster, pki: &Pki) -> serde_json::Value {
    let name = c.name.as_str();
    let user = format!("{name}-admin");
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": name,
            "cluster": {
                "certificate-authority-data": B64.encode(&pki.ca.cert),
                "server": c.endpoint.url,
            }
        }],
        "users": [{
            "name": user,
            "user": {
                "client-certificate-data": B64.encode(&pki.admin.cert),
                "client-key-data": B64.encode(pki.admin.key.expose()),
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
