//! `generate`: load → defaults → validate → PKI → output tree. Everything but
//! the final `Tree::commit` is pure, so tests drive `prepare` directly.

use std::path::{Path, PathBuf};

use rand::{CryptoRng, RngCore};
use time::OffsetDateTime;

use crate::cluster::Cluster;
use crate::defaults;
use crate::diag::{Diagnostic, Diagnostics, Rejected};
use crate::kubeconfig;
use crate::model::load::{self, SetArg};
use crate::model::vlabs::ApiModel;
use crate::output::{Mode, Tree};
use crate::pki::{self, Pki};
use crate::validate;

/// A model that passed every stage, ready to be written.
#[derive(Debug)]
pub struct Prepared {
    /// The defaulted model with every secret and certificate: `apimodel.json`.
    pub model: ApiModel,
    pub cluster: Cluster,
    pub pki: Pki,
    /// Warnings (errors would have rejected the model).
    pub warnings: Vec<Diagnostic>,
}

/// Run every pure stage.
pub fn prepare<R: RngCore + CryptoRng>(
    text: &str,
    sets: &[SetArg],
    rng: &mut R,
    now: OffsetDateTime,
) -> Result<Prepared, Rejected> {
    let loaded = load::load(text, sets)?;
    let mut diags: Diagnostics = loaded.diagnostics;
    let mut model = defaults::apply(loaded.model, &loaded.origins, rng, &mut diags);
    let cluster = validate::validate(&model, &loaded.origins, &mut diags);
    let (Some(cluster), false) = (cluster, diags.has_errors()) else {
        return Err(Rejected {
            diagnostics: diags.items,
        });
    };
    let profile = model
        .properties
        .as_ref()
        .and_then(|p| p.certificate_profile.clone())
        .unwrap_or_default();
    let Some(pki) = pki::issue(&cluster, &profile, now, &loaded.origins, &mut diags) else {
        return Err(Rejected {
            diagnostics: diags.items,
        });
    };
    if let Some(props) = model.properties.as_mut() {
        pki::store(&pki, props.certificate_profile.get_or_insert_with(Default::default));
    }
    Ok(Prepared {
        model,
        cluster,
        pki,
        warnings: diags.items,
    })
}

/// The default output directory: `_output/<dnsPrefix>`.
pub fn default_dir(cluster: &Cluster) -> PathBuf {
    Path::new("_output").join(cluster.name.as_str())
}

fn pretty<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize: {e}\"}}"));
    s.push('\n');
    s.into_bytes()
}

/// The API server host a node should use as known now: the planned name,
/// or a placeholder where the cloud assigns it at deploy.
pub fn endpoint_host(c: &Cluster) -> String {
    let u = c.endpoint.url.trim_start_matches("https://");
    u.rsplit_once(':').map(|(h, _)| h).unwrap_or(u).to_string()
}

/// Everything each machine (or machine group) of a plan gets, typed, with
/// the directory its boot file is written under (`<node>` for individual
/// machines, `<pool>` for machine groups).
pub fn node_specs(
    c: &Cluster,
    pki: &Pki,
    plan: &crate::plan::Plan,
) -> Result<Vec<(String, crate::render::NodeSpec)>, crate::render::RenderError> {
    let r = crate::render::Renderer::new(c, pki, &plan.pod_cidrs)?;
    let host = endpoint_host(c);
    let mut out = Vec::new();
    for res in plan.resources.values() {
        let dir = match &res.spec {
            hke_provider_api::Spec::Machine { .. } => res.name.clone(),
            hke_provider_api::Spec::MachineGroup { .. } => c
                .pools
                .iter()
                .find(|p| crate::plan::group_name(c, &p.name) == res.name)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| res.name.clone()),
            _ => continue,
        };
        out.push((dir, r.node_spec(&res.name, &host)?));
    }
    Ok(out)
}

/// Every boot file: `bootstrap/<node>/<file>` for individual machines,
/// `bootstrap/<pool>/<file>` for machine groups, and the cluster manifests.
pub fn boot_files(
    c: &Cluster,
    pki: &Pki,
    plan: &crate::plan::Plan,
) -> Result<Vec<(String, String)>, crate::render::RenderError> {
    let mut out = Vec::new();
    for (dir, spec) in node_specs(c, pki, plan)? {
        out.push((format!("bootstrap/{dir}/{}", spec.boot.file_name), spec.boot.content));
    }
    let r = crate::render::Renderer::new(c, pki, &plan.pod_cidrs)?;
    for (file, content) in r.manifests()? {
        out.push((format!("bootstrap/manifests/{file}"), content));
    }
    Ok(out)
}

/// The ARM template of an Azure plan, for `az deployment group create`.
#[cfg(feature = "azure")]
pub fn arm_template(
    c: &Cluster,
    pki: &Pki,
    plan: &crate::plan::Plan,
) -> Result<hke_provider_azure::template::Template, crate::render::RenderError> {
    use hke_provider_azure::template;
    let r = crate::render::Renderer::new(c, pki, &plan.pod_cidrs)?;
    let host = endpoint_host(c);
    let mut bootstrap = std::collections::BTreeMap::new();
    let mut resources = Vec::new();
    for (id, res) in &plan.resources {
        if matches!(
            res.spec,
            hke_provider_api::Spec::Machine { .. } | hke_provider_api::Spec::MachineGroup { .. }
        ) {
            bootstrap.insert(res.name.clone(), r.node(&res.name, &host)?.content);
        }
        resources.push(template::Planned {
            logical_id: id.clone(),
            name: res.name.clone(),
            spec: res.spec.clone(),
            depends_on: res.depends_on.clone(),
        });
    }
    let tags = hke_provider_api::standard_tags(c.name.as_str(), template::CREATED_AT, None, &c.tags);
    let linux = crate::bootstrap::login(c, &hke_provider_api::Os::Linux).unwrap_or_else(|| hke_provider_api::Login {
        username: c.linux.admin_username.clone(),
        ssh_public_keys: Vec::new(),
        password: None,
    });
    template::build(&template::Input {
        location: &c.provider.location,
        tags: &tags,
        resources: &resources,
        bootstrap: &bootstrap,
        linux,
        windows: crate::bootstrap::login(c, &hke_provider_api::Os::Windows),
    })
    .map_err(crate::render::RenderError::Other)
}

/// The files `generate` writes.
pub fn tree(p: &Prepared) -> Result<Tree, crate::render::RenderError> {
    let mut t = Tree::default();
    let c = &p.cluster;
    t.add("apimodel.json", pretty(&p.model), Mode::Secret);
    t.add("cluster.json", pretty(&p.cluster), Mode::Public);
    match crate::plan::plan(c) {
        Ok(plan) => {
            t.add("plan.json", pretty(&plan), Mode::Public);
            for (path, content) in boot_files(c, &p.pki, &plan)? {
                // Boot files carry the bootstrap token and, on masters, CA keys.
                t.add(path, content, Mode::Secret);
            }
            #[cfg(feature = "azure")]
            if c.provider.cloud == crate::model::types::Cloud::Azure {
                let arm = arm_template(c, &p.pki, &plan)?;
                t.add("azuredeploy.json", pretty(&arm.template), Mode::Public);
                // The parameters hold the admin password and every bootstrap.
                t.add("azuredeploy.parameters.json", pretty(&arm.parameters), Mode::Secret);
            }
        }
        Err(e) => t.add(
            "plan.json",
            pretty(&serde_json::json!({ "error": e.to_string() })),
            Mode::Public,
        ),
    }
    let kc = kubeconfig::admin(c, &p.pki);
    t.add(
        format!("kubeconfig/kubeconfig.{}.json", c.provider.location),
        pretty(&kc),
        Mode::Secret,
    );

    let pair = |t: &mut Tree, base: &str, ck: &pki::CertKey| {
        t.add(format!("pki/{base}.crt"), ck.cert.clone(), Mode::Public);
        t.add(format!("pki/{base}.key"), ck.key.expose().to_string(), Mode::Secret);
    };
    pair(&mut t, "ca", &p.pki.ca);
    pair(&mut t, "apiserver", &p.pki.apiserver);
    pair(&mut t, "admin", &p.pki.admin);
    pair(&mut t, "front-proxy-ca", &p.pki.front_proxy_ca);
    pair(&mut t, "front-proxy-client", &p.pki.front_proxy_client);
    pair(&mut t, "kube-proxy", &p.pki.kube_proxy);
    pair(&mut t, "etcd/ca", &p.pki.etcd_ca);
    pair(&mut t, "etcd/server", &p.pki.etcd_server);
    pair(&mut t, "apiserver-etcd-client", &p.pki.etcd_client);
    for (i, peer) in p.pki.etcd_peers.iter().enumerate() {
        pair(&mut t, &format!("etcd/peer-{i}"), peer);
    }
    t.add("pki/sa.pub", p.pki.service_account_public.clone(), Mode::Public);
    t.add(
        "pki/sa.key",
        p.pki.service_account_private.expose().to_string(),
        Mode::Secret,
    );
    t.add(
        "pki/discovery-hash.txt",
        format!("{}\n", p.pki.discovery_hash),
        Mode::Public,
    );
    if let Some(private) = &c.linux.ssh_private_key {
        let user = &c.linux.admin_username;
        t.add(
            format!("ssh/{user}_ed25519"),
            private.expose().to_string(),
            Mode::Secret,
        );
        let public = c.linux.ssh_public_keys.first().cloned().unwrap_or_default();
        t.add(format!("ssh/{user}_ed25519.pub"), format!("{public}\n"), Mode::Public);
    }
    Ok(t)
}

/// Current time for certificate validity.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The shipped example, prepared with `sets` and a fixed seed and clock, for
/// unit tests.
#[cfg(test)]
pub fn example_cluster(sets: &[&str]) -> Cluster {
    use rand::SeedableRng;
    let text = include_str!("../examples/windows.json");
    let sets: Vec<_> = sets.iter().map(|s| s.parse().expect("set")).collect();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    prepare(
        text,
        &sets,
        &mut rng,
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20000),
    )
    .expect("valid")
    .cluster
}
