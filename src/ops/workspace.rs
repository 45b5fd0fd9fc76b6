//! A cluster's output directory, opened once per command: the model it
//! holds prepared (PKI issued or read back) and planned exactly once, then
//! handed to deploy, teardown, logs, check and ci, which never prepare or
//! plan again. The directory's files are rewritten here only.

use std::path::{Path, PathBuf};

use rand::rngs::OsRng;

use crate::cluster::{self, Built, Cluster};
use crate::context::Env;
use crate::engine::{Event, EventSink};
use crate::model::load::SetArg;
use crate::ops::error::DeployError;
use crate::ops::generate::{self, Prepared};
use crate::ops::target::{Flags, Target};
use crate::output::Mode;
use crate::plan::{self, Plan};

/// The model's file in an output directory.
pub const MODEL_FILE: &str = "apimodel.json";

/// A prepared and planned cluster with its directory.
#[derive(Debug)]
pub struct Workspace {
    pub dir: PathBuf,
    pub prepared: Prepared,
    pub plan: Plan,
}

impl Workspace {
    /// For `deploy` and `ci run`: the directory's `apimodel.json` when an
    /// earlier run wrote one (its secrets and certificates are kept),
    /// otherwise the given model, generated into the directory.
    pub fn open_or_generate(
        text: &str,
        sets: &[SetArg],
        dir: Option<PathBuf>,
        events: &EventSink,
    ) -> Result<Workspace, DeployError> {
        // The cluster stage only (no PKI): the name, and what was asked.
        let given = cluster::build(text, sets, &mut OsRng).map_err(DeployError::Rejected)?;
        let dir = dir.unwrap_or_else(|| generate::default_dir(&given.cluster));
        let existing = dir.join(MODEL_FILE);
        if existing.is_file() {
            let ws = Workspace::load(&dir)?;
            events(&Event::Note {
                message: format!(
                    "using {} from an earlier run (its secrets and certificates are kept)",
                    existing.display()
                ),
            });
            // Deploy builds what apimodel.json says (it does not scale or
            // upgrade): say so when the model given now asks for more.
            if shape(&given.cluster) != shape(&ws.prepared.cluster) {
                events(&Event::Note {
                    message: format!(
                        "the given model (with its --set edits) differs from {}: deploy builds what that file says; to change the cluster, tear it down and deploy again, or use another --output-directory",
                        existing.display()
                    ),
                });
            }
            return Ok(ws);
        }
        Workspace::generate(given, dir, events)
    }

    /// Generate a built cluster into a new directory: the PKI, the plan and
    /// every file, once.
    pub fn generate(given: Built, dir: PathBuf, events: &EventSink) -> Result<Workspace, DeployError> {
        let prepared = generate::issue(given, generate::now()).map_err(DeployError::Rejected)?;
        let plan = plan::plan(&prepared.cluster);
        generate::tree_planned(&prepared, plan.clone())
            .map_err(|e| DeployError::Usage(e.to_string()))?
            .commit(&dir, false)?;
        events(&Event::Note {
            message: format!("generated {}", dir.display()),
        });
        Ok(Workspace {
            dir,
            plan: plan?,
            prepared,
        })
    }

    /// For `teardown`, `logs` and `check`: a directory an earlier `generate`
    /// or `deploy` wrote.
    pub fn load(dir: &Path) -> Result<Workspace, DeployError> {
        let path = dir.join(MODEL_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            DeployError::Usage(format!(
                "cannot read {}: {e}; pass -o with the cluster's output directory",
                path.display()
            ))
        })?;
        let prepared = generate::prepare(&text, &[], &mut OsRng, generate::now()).map_err(DeployError::Rejected)?;
        let plan = plan::plan(&prepared.cluster)?;
        Ok(Workspace {
            dir: dir.to_path_buf(),
            prepared,
            plan,
        })
    }

    pub fn cluster(&self) -> &Cluster {
        &self.prepared.cluster
    }

    /// The cloud target of this cluster: `flags` over the model over `env`.
    pub fn target(&self, flags: &Flags, env: &Env) -> Result<Target, DeployError> {
        Target::of_cluster(self.cluster(), flags, env).map_err(DeployError::Usage)
    }

    /// The admin kubeconfig hke wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join(format!(
            "kubeconfig/kubeconfig.{}.json",
            self.cluster().provider.location
        ))
    }

    /// Point the admin kubeconfig at `server` (`https://host:port`), once
    /// the cloud has assigned the address. It holds the admin's client key,
    /// so it stays 0600.
    pub fn set_kubeconfig_server(&self, server: &str) -> Result<(), DeployError> {
        let path = self.kubeconfig();
        let text = std::fs::read_to_string(&path).map_err(|e| DeployError::Io(path.clone(), e))?;
        let mut kc: serde_json::Value = serde_json::from_str(&text).map_err(|e| DeployError::Usage(e.to_string()))?;
        kc["clusters"][0]["cluster"]["server"] = serde_json::json!(server);
        crate::output::write_atomic(&path, &serde_json::to_vec_pretty(&kc).unwrap_or_default(), Mode::Secret)?;
        Ok(())
    }
}

/// What a deploy would build, for telling a changed model from the one on
/// disk: the cloud, the version, the masters and each pool.
fn shape(c: &Cluster) -> impl PartialEq + std::fmt::Debug {
    (
        c.provider.cloud,
        c.provider.location.clone(),
        c.kubernetes.to_string(),
        c.network.plugin,
        c.masters.count,
        c.masters.vm_size.clone(),
        c.pools
            .iter()
            .map(|p| (p.name.clone(), p.count, p.os, p.vm_size.clone()))
            .collect::<Vec<_>>(),
    )
}
