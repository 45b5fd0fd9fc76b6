//! Pure decisions for servers: which flavor a VM size becomes, and the user
//! data Nova is given.

use std::io::Write;

use base64::Engine as _;
use hke_provider_api::Os;

/// Nova's limit on user data: "The provided user data must be base64
/// encoded and is restricted to 65535 bytes" (Nova user docs, "Provide user
/// data to instances"; the API schema's `user_data` maxLength).
pub const USER_DATA_LIMIT: usize = 65535;

/// The first line cloudbase-init needs to run user data as a PowerShell
/// script in the native (64-bit) host (cloudbase-init docs, "Userdata":
/// `#ps1_sysnative`).
pub const PS1_SYSNATIVE: &str = "#ps1_sysnative";

/// A flavor as Nova lists it (`GET /flavors/detail`: `vcpus`, `ram` in MiB,
/// `disk` in GiB; `OS-FLV-DISABLED:disabled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram_mib: u64,
    pub disk_gib: u64,
    pub disabled: bool,
}

impl Flavor {
    pub fn from_json(v: &serde_json::Value) -> Option<Flavor> {
        Some(Flavor {
            id: v.get("id")?.as_str()?.to_string(),
            name: v.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_string(),
            vcpus: v.get("vcpus")?.as_u64()?.try_into().ok()?,
            ram_mib: v.get("ram")?.as_u64()?,
            disk_gib: v.get("disk").and_then(|d| d.as_u64()).unwrap_or(0),
            disabled: v
                .get("OS-FLV-DISABLED:disabled")
                .and_then(|d| d.as_bool())
                .unwrap_or(false),
        })
    }
}

/// What a machine asks for when its size is not a flavor's name: at least
/// this many vCPUs and this much memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRequest {
    pub vcpus: u32,
    pub ram_mib: u64,
}

/// The size string for "at least `vcpus` vCPUs and `ram_mib` MiB" that
/// `choose_flavor` understands (`2vcpu-8192mib`); the planner builds it
/// from the model's VM size (data/vmsizes.json has vCPUs and GiB).
pub fn size_request(vcpus: u32, ram_mib: u64) -> String {
    format!("{vcpus}vcpu-{ram_mib}mib")
}

/// Parse `2vcpu-8192mib` or `2vcpu-8gib`.
pub fn parse_size(size: &str) -> Option<SizeRequest> {
    let s = size.trim().to_ascii_lowercase();
    let (cpu, mem) = s.split_once("vcpu-")?;
    let vcpus: u32 = cpu.parse().ok().filter(|v| *v > 0)?;
    let ram_mib = if let Some(m) = mem.strip_suffix("mib") {
        m.parse::<u64>().ok()?
    } else if let Some(g) = mem.strip_suffix("gib") {
        // Fractional GiB (3.5gib) as MiB.
        let g: f64 = g.parse().ok().filter(|g: &f64| g.is_finite() && *g > 0.0)?;
        (g * 1024.0).round() as u64
    } else {
        return None;
    };
    (ram_mib > 0).then_some(SizeRequest { vcpus, ram_mib })
}

/// The flavor of a machine: the flavor named (or with the id) `size`; else,
/// for a `size_request` string, the smallest enabled flavor with at least
/// those vCPUs and that memory, preferring one whose root disk holds
/// `disk_gb` (then fewest vCPUs, least memory, smallest disk, name).
pub fn choose_flavor<'a>(flavors: &'a [Flavor], size: &str, disk_gb: u32) -> Result<&'a Flavor, String> {
    if let Some(f) = flavors.iter().find(|f| f.name == size || f.id == size) {
        return Ok(f);
    }
    let Some(want) = parse_size(size) else {
        let names: Vec<&str> = flavors
            .iter()
            .filter(|f| !f.disabled)
            .map(|f| f.name.as_str())
            .collect();
        return Err(format!(
            "no flavor named {size:?} (flavors: {}); name a flavor, or give the size as vCPUs and memory \
             (`2vcpu-8192mib`)",
            names.join(", ")
        ));
    };
    flavors
        .iter()
        .filter(|f| !f.disabled && f.vcpus >= want.vcpus && f.ram_mib >= want.ram_mib)
        .min_by_key(|f| {
            (
                f.disk_gib < u64::from(disk_gb),
                f.vcpus,
                f.ram_mib,
                f.disk_gib,
                f.name.clone(),
            )
        })
        .ok_or_else(|| {
            let biggest = flavors
                .iter()
                .filter(|f| !f.disabled)
                .max_by_key(|f| (f.vcpus, f.ram_mib))
                .map(|f| format!("{} ({} vCPUs, {} MiB)", f.name, f.vcpus, f.ram_mib))
                .unwrap_or_else(|| "none".into());
            format!(
                "no flavor has {} vCPUs and {} MiB (the largest is {biggest}); name a flavor as the VM size",
                want.vcpus, want.ram_mib
            )
        })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the boot file of {node} is {size} bytes base64-encoded, over Nova's 65535-byte user-data limit{how}")]
pub struct TooLarge {
    pub node: String,
    pub size: usize,
    pub how: &'static str,
}

/// The user data of a machine, base64-encoded as Nova takes it: cloud-init
/// as it is (gzip-compressed when too long: cloud-init uncompresses gzip
/// user data, cloud-init docs "User data formats", "Gzip compressed
/// content"); a Windows script behind `#ps1_sysnative` for cloudbase-init.
pub fn user_data(node: &str, os: &Os, script: &str) -> Result<String, TooLarge> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw: Vec<u8> = match os {
        Os::Linux => script.as_bytes().to_vec(),
        Os::Windows if script.starts_with("#ps1") => script.as_bytes().to_vec(),
        Os::Windows => format!("{PS1_SYSNATIVE}\n{script}").into_bytes(),
    };
    let plain = b64.encode(&raw);
    if plain.len() <= USER_DATA_LIMIT {
        return Ok(plain);
    }
    match os {
        Os::Linux => {
            let packed = b64.encode(gzip(&raw));
            if packed.len() <= USER_DATA_LIMIT {
                Ok(packed)
            } else {
                Err(TooLarge {
                    node: node.to_string(),
                    size: packed.len(),
                    how: " even gzip-compressed",
                })
            }
        }
        // cloudbase-init's gzip support is not something hke relies on.
        Os::Windows => Err(TooLarge {
            node: node.to_string(),
            size: plain.len(),
            how: "",
        }),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Whether a string is an OpenStack UUID (ids of images, flavors, servers).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    let hex = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_hexdigit));
    (b.len() == 36 && hex(0..8) && b[8] == b'-' && hex(9..13) && b[13] == b'-' && hex(14..18))
        && b[18] == b'-'
        && hex(19..23)
        && b[23] == b'-'
        && hex(24..36)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn f(name: &str, vcpus: u32, ram: u64, disk: u64) -> Flavor {
        Flavor {
            id: format!("id-{name}"),
            name: name.into(),
            vcpus,
            ram_mib: ram,
            disk_gib: disk,
            disabled: false,
        }
    }

    #[test]
    fn the_nearest_flavor_fits() {
        let mut flavors = vec![
            f("m1.tiny", 1, 512, 1),
            f("m1.small", 1, 2048, 20),
            f("m1.medium", 2, 4096, 40),
            f("m1.large", 4, 8192, 80),
            f("m1.medium-nodisk", 2, 4096, 0),
            f("m1.xlarge", 8, 16384, 160),
        ];
        let pick = |size: &str, disk: u32, fl: &[Flavor]| choose_flavor(fl, size, disk).map(|f| f.name.clone());
        assert_eq!(pick("2vcpu-4096mib", 30, &flavors), Ok("m1.medium".into()));
        // No 2-vCPU flavor has 8 GiB: the next size up.
        assert_eq!(pick("2vcpu-8gib", 30, &flavors), Ok("m1.large".into()));
        // A disk that fits wins over the smaller one without.
        assert_eq!(pick("2vcpu-4096mib", 40, &flavors), Ok("m1.medium".into()));
        assert_eq!(pick("2vcpu-4096mib", 50, &flavors), Ok("m1.large".into()));
        // Nothing holds the disk: the smallest that fits vCPUs and memory.
        assert_eq!(pick("2vcpu-4096mib", 500, &flavors), Ok("m1.medium-nodisk".into()));
        assert_eq!(pick("m1.small", 100, &flavors), Ok("m1.small".into()));
        assert_eq!(pick("id-m1.tiny", 100, &flavors), Ok("m1.tiny".into()));
        assert_eq!(pick("1vcpu-3.5gib", 1, &flavors), Ok("m1.medium".into()));
        let e = pick("16vcpu-64gib", 30, &flavors).expect_err("fails");
        assert!(e.contains("m1.xlarge (8 vCPUs, 16384 MiB)"), "{e}");
        let e = pick("Standard_D2s_v3", 30, &flavors).expect_err("fails");
        assert!(
            e.contains("no flavor named \"Standard_D2s_v3\"") && e.contains("m1.tiny"),
            "{e}"
        );
        flavors[2].disabled = true;
        assert_eq!(pick("2vcpu-4096mib", 30, &flavors), Ok("m1.large".into()));
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(
            parse_size(&size_request(2, 8192)),
            Some(SizeRequest {
                vcpus: 2,
                ram_mib: 8192
            })
        );
        assert_eq!(parse_size("4VCPU-16GiB").map(|s| s.ram_mib), Some(16384));
        assert_eq!(parse_size("0vcpu-1gib"), None);
        assert_eq!(parse_size("2vcpu-8gb"), None);
        assert_eq!(parse_size("m1.small"), None);
    }

    #[test]
    fn user_data_per_os() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |s: &str| b64.decode(s).expect("base64");
        let linux = user_data("n", &Os::Linux, "#cloud-config\n").expect("fits");
        assert_eq!(decode(&linux), b"#cloud-config\n");
        let win = user_data("w", &Os::Windows, "Write-Host hi").expect("fits");
        assert_eq!(decode(&win), b"#ps1_sysnative\nWrite-Host hi");
        // A large but compressible cloud-config goes gzip-compressed.
        let big = format!("#cloud-config\n{}", "write_files: []\n".repeat(5000));
        let packed = decode(&user_data("n", &Os::Linux, &big).expect("compressed"));
        assert_eq!(&packed[..2], &[0x1f, 0x8b]);
        let mut out = String::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_string(&mut out)
            .expect("gunzip");
        assert_eq!(out, big);
        let e = user_data("w", &Os::Windows, &"x".repeat(60000)).expect_err("fails");
        assert!(e.to_string().contains("65535"), "{e}");
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("0b5ad5a4-8d9e-4b55-b3d2-2a8c8a3f2a10"));
        assert!(!is_uuid("ubuntu-22.04"));
        assert!(!is_uuid("0b5ad5a4-8d9e-4b55-b3d2-2a8c8a3f2a1g"));
    }
}
