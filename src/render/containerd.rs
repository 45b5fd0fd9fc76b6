//! containerd's configuration, rendered whole by hke (config version 3, as
//! containerd 2.x reads it) instead of edited at boot with sed or `-replace`.
//!
//! Only what differs from containerd's defaults is written: containerd's
//! loader decodes each plugin's table onto that plugin's default config
//! (cmd/containerd/server/config LoadConfig; plugin configs are decoded onto
//! the registration's default struct), so an absent key keeps its default.
//! This is also why a Hyper-V pool adds nothing: containerd 2.2's Windows
//! defaults already define the `runhcs-wcow-hypervisor` runtime
//! (internal/cri/config/config_windows.go), and appending the same table
//! again is a TOML duplicate-table error that stops containerd.

use super::escape::toml_literal;

/// Where each OS keeps it.
pub const LINUX_PATH: &str = "/etc/containerd/config.toml";
/// containerd's default config path on Windows (`%ProgramFiles%\containerd`).
pub const WINDOWS_PATH: &str = r"C:\Program Files\containerd\config.toml";

/// CNI directories (the same on every node of an OS, whatever the plugin).
pub const LINUX_CNI_BIN: &str = "/opt/cni/bin";
pub const LINUX_CNI_CONF: &str = "/etc/cni/net.d";
pub const WINDOWS_CNI_BIN: &str = r"C:\opt\cni\bin";
pub const WINDOWS_CNI_CONF: &str = r"C:\etc\cni\net.d";

/// The CRI runtime's named pipe on Windows.
pub const WINDOWS_ENDPOINT: &str = "npipe:////./pipe/containerd-containerd";
pub const LINUX_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";

fn header(os: &str) -> String {
    format!(
        "# containerd configuration of a {os} node, written by hke. Version 3 is\n\
         # containerd 2.x's format; keys not written here keep containerd's defaults.\n\
         version = 3\n"
    )
}

fn common(pause_image: &str, bin: &str, conf: &str) -> String {
    format!(
        "\n[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = {}\n\
         \n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dirs = [{}]\n  conf_dir = {}\n",
        toml_literal(pause_image),
        toml_literal(bin),
        toml_literal(conf),
    )
}

/// Linux: the systemd cgroup driver (kubelet is configured with the same),
/// the pinned pause image and the CNI directories.
pub fn linux_config(pause_image: &str) -> String {
    let mut s = header("Linux");
    s.push_str(&common(pause_image, LINUX_CNI_BIN, LINUX_CNI_CONF));
    s.push_str(
        "\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n  \
         runtime_type = 'io.containerd.runc.v2'\n\
         \n  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n    \
         SystemdCgroup = true\n",
    );
    s
}

/// Windows: the pinned pause image and the CNI directories. The runtimes
/// (`runhcs-wcow-process`, `runhcs-wcow-hypervisor`) are containerd's own
/// defaults.
pub fn windows_config(pause_image: &str) -> String {
    let mut s = header("Windows");
    s.push_str(&common(pause_image, WINDOWS_CNI_BIN, WINDOWS_CNI_CONF));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(s: &str) -> Vec<&str> {
        s.lines().map(str::trim).filter(|l| l.starts_with('[')).collect()
    }

    #[test]
    fn no_table_is_written_twice() {
        for s in [linux_config("p"), windows_config("p")] {
            let t = tables(&s);
            let mut d = t.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), t.len(), "{s}");
        }
    }

    #[test]
    fn windows_leaves_the_runtimes_to_containerd() {
        assert!(!windows_config("p").contains("runtimes"));
    }

    #[test]
    fn values_are_toml_literals() {
        let s = windows_config("reg/pause:1'x");
        assert!(s.contains(r#"sandbox = "reg/pause:1'x""#), "{s}");
        assert!(s.contains(r"bin_dirs = ['C:\opt\cni\bin']"), "{s}");
    }
}
