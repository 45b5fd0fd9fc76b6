//! What hke knows of the world outside the model: Kubernetes and Windows
//! versions with their images and binaries (`versions`), and each cloud's
//! VM sizes (`vmsizes`). Both are data files under `data/`, compiled in.

pub mod versions;
pub mod vmsizes;
