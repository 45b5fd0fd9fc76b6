//! `generate`: load → defaults → validate → PKI → output tree. Everything but
//! the final `Tree::commit` is pure, so tests drive `prepare` directly.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{CryptoRng, RngCore};
use time::OffsetDateTime;

use crate::cluster::endpoint_host;
use crate::cluster::{Built, Cluster};
use crate::model::diag::{Diagnostic, Rejected};
use crate::model::load::SetArg;
use crate::model::vlabs::ApiModel;
use crate::output::{Mode, Tree};
use crate::pki::{self, Pki};
use crate::render::kubeconfig;
use crate::render::{self, NodeRef, RenderError, Renderer};

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

/// Run every pure stage: the cluster stage, then the PKI.
pub fn prepare<R: RngCore + CryptoRng>(
    text: &str,
    sets: &[SetArg],
    rng: &mut R,
    now: OffsetDateTime,
) -> Result<Prepared, Rejected> {
    let built = crate::cluster::build(text, sets, rng)?;
    issue(built, now)
}

/// Issue (or take from the model) the PKI of a built cluster: the rest of
/// `prepare`, for a caller that built the cluster already.
pub fn issue(built: Built, now: OffsetDateTime) -> Result<Prepared, Rejected> {
    let Built {
        mut model,
        cluster,
        origins,
        mut diagnostics,
    } = built;
    PREPARED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = model
        .properties
        .as_ref()
        .and_then(|p| p.certificate_profile.clone())
        .unwrap_or_default();
    let Some(pki) = pki::issue(&cluster, &profile, now, &origins, &mut diagnostics) else {
        return Err(Rejected {
            diagnostics: diagnostics.items,
        });
    };
    if let Some(props) = model.properties.as_mut() {
        pki::store(&pki, props.certificate_profile.get_or_insert_with(Default::default));
    }
    Ok(Prepared {
        model,
        cluster,
        pki,
        warnings: diagnostics.items,
    })
}

/// How many times this process prepared a cluster (issued or loaded its
/// PKI): one command prepares once, which a test holds.
pub static PREPARED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The default output directory: `_output/<dnsPrefix>`.
pub fn default_dir(cluster: &Cluster) -> PathBuf {
    Path::new("_output").join(cluster.name.as_str())
}

fn pretty<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize: {e}\"}}"));
    s.push('\n');
    s.into_bytes()
}

/// A machine (or machine group) of a plan that gets a boot file.
struct Machine<'c> {
    /// Its resource name, which the renderer knows it by.
    name: String,
    /// The directory its boot file is written under: `<node>` for
    /// individual machines, `<pool>` for machine groups.
    dir: String,
    node: NodeRef<'c>,
}

/// The machines of a plan, in plan order.
fn machines<'c>(c: &'c Cluster, plan: &crate::plan::Plan) -> Result<Vec<Machine<'c>>, RenderError> {
    let index = render::node_index(c);
    let mut out = Vec::new();
    for res in plan.resources.values() {
        let dir = match &res.spec {
            hke_provider_api::Spec::Machine(_) => res.name.clone(),
            hke_provider_api::Spec::MachineGroup(_) => c
                .pools
                .iter()
                .find(|p| crate::plan::group_name(c, &p.name) == res.name)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| res.name.clone()),
            _ => continue,
        };
        let node = index
            .get(&res.name)
            .cloned()
            .ok_or_else(|| RenderError::UnknownNode(res.name.clone()))?;
        out.push(Machine {
            name: res.name.clone(),
            dir,
            node,
        });
    }
    Ok(out)
}

/// Everything each machine (or machine group) of a plan gets, typed, with
/// the directory its boot file is written under (`<node>` for individual
/// machines, `<pool>` for machine groups).
pub fn node_specs(
    c: &Cluster,
    pki: &Pki,
    plan: &crate::plan::Plan,
) -> Result<Vec<(String, render::NodeSpec)>, RenderError> {
    let r = Renderer::new(c, pki, &plan.pod_cidrs)?;
    let host = endpoint_host(c);
    machines(c, plan)?
        .into_iter()
        .map(|m| Ok((m.dir, r.node_spec_of(&m.name, m.node, &host)?)))
        .collect()
}

/// Every boot file: `bootstrap/<node>/<file>` for individual machines,
/// `bootstrap/<pool>/<file>` for machine groups, and the cluster manifests.
pub fn boot_files(c: &Cluster, pki: &Pki, plan: &crate::plan::Plan) -> Result<Vec<(String, String)>, RenderError> {
    let r = Renderer::new(c, pki, &plan.pod_cidrs)?;
    let host = endpoint_host(c);
    let mut out = Vec::new();
    for m in machines(c, plan)? {
        let boot = r.boot_file(&m.name, m.node, &host)?;
        out.push((format!("bootstrap/{}/{}", m.dir, boot.file_name), boot.content));
    }
    for (file, content) in r.manifests()? {
        out.push((format!("bootstrap/manifests/{file}"), content));
    }
    Ok(out)
}

/// The ARM template of an Azure plan, for `az deployment group create`.
pub fn arm_template(
    c: &Cluster,
    pki: &Pki,
    plan: &crate::plan::Plan,
) -> Result<hke_provider_azure::template::Template, RenderError> {
    arm_template_with(&Renderer::new(c, pki, &plan.pod_cidrs)?, c, plan)
}

fn arm_template_with(
    r: &Renderer,
    c: &Cluster,
    plan: &crate::plan::Plan,
) -> Result<hke_provider_azure::template::Template, RenderError> {
    use hke_provider_azure::template;
    let host = endpoint_host(c);
    let mut bootstrap = std::collections::BTreeMap::new();
    for m in machines(c, plan)? {
        let boot = r.boot_file(&m.name, m.node, &host)?;
        bootstrap.insert(m.name, boot.content);
    }
    let mut resources = Vec::new();
    for (id, res) in &plan.resources {
        resources.push(template::Planned {
            logical_id: id.clone(),
            name: res.name.clone(),
            spec: res.spec.clone(),
            depends_on: res.depends_on.clone(),
        });
    }
    let tags = hke_provider_api::standard_tags(c.name.as_str(), template::CREATED_AT, None, &c.tags);
    let linux = crate::cluster::login(c, &hke_provider_api::Os::Linux).unwrap_or_else(|| hke_provider_api::Login {
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
        windows: crate::cluster::login(c, &hke_provider_api::Os::Windows),
    })
    .map_err(RenderError::Other)
}

/// The files `generate` writes. Boot files and the plan are rendered as the
/// tree is written (several at a time, each dropped once written), so a
/// thousand-node cluster is never all in memory; a node that cannot be
/// rendered fails the commit and leaves no directory.
pub fn tree(p: &Prepared) -> Result<Tree<'_>, RenderError> {
    // Compile the templates while the plan is made.
    let templates = std::thread::Builder::new().spawn(render::compile_templates);
    let plan = crate::plan::plan(&p.cluster);
    if let Ok(t) = templates {
        let _ = t.join();
    }
    tree_planned(p, plan)
}

/// The output tree of a cluster already planned (or whose plan failed).
pub fn tree_planned(
    p: &Prepared,
    plan: Result<crate::plan::Plan, crate::plan::PlanError>,
) -> Result<Tree<'_>, RenderError> {
    let mut t = Tree::default();
    let c = &p.cluster;
    t.add_lazy("apimodel.json", Mode::Secret, || Ok(pretty(&p.model)));
    t.add_lazy("cluster.json", Mode::Public, || Ok(pretty(&p.cluster)));
    match plan {
        Ok(plan) => {
            let machines = machines(c, &plan)?;
            let r = Arc::new(Renderer::with_pod_cidrs(c, &p.pki, Cow::Owned(plan.pod_cidrs.clone()))?);
            let arm = if c.provider.cloud == crate::model::types::Cloud::Azure {
                Some(arm_template_with(&r, c, &plan)?)
            } else {
                None
            };
            let plan = Arc::new(plan);
            t.add_lazy("plan.json", Mode::Public, move || Ok(pretty(&*plan)));
            let host: Arc<str> = endpoint_host(c).into();
            for m in machines {
                let path = format!("bootstrap/{}/{}", m.dir, render::boot_file_name(m.node.os()));
                let (r, host) = (Arc::clone(&r), Arc::clone(&host));
                // Boot files carry the bootstrap token and, on masters, CA keys.
                t.add_lazy(path, Mode::Secret, move || {
                    r.boot_file(&m.name, m.node.clone(), &host)
                        .map(|boot| boot.content.into_bytes())
                        .map_err(|e| e.to_string())
                });
            }
            for (file, content) in r.manifests()? {
                t.add(format!("bootstrap/manifests/{file}"), content, Mode::Secret);
            }
            if let Some(arm) = arm {
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
