//! End-to-end tests: the `hke` binary against cloud emulators on 127.0.0.1.

mod aws;
mod moto;
