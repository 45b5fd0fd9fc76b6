//! The ARM deployment template of a plan (`azuredeploy.json`).
