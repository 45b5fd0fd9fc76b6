//! End-to-end tests: the `hke` binary against cloud emulators on 127.0.0.1
//! (moto for AWS, hke's fake Resource Manager for Azure, hke's fake
//! Compute Engine server for GCP).

mod aws;
mod azure;
mod gcp;
mod harness;
mod moto;
