//! EC2 user data: at most 16 KiB before base64. Linux cloud-init goes as it
//! is, or gzip-compressed when too long (cloud-init reads gzip user data).
//! Windows scripts go inside `<powershell>` tags for EC2Launch; a script too
//! long for that is sent compressed with a short loader that writes it to
//! disk and runs it from there.

use std::io::{Read, Write};

use base64::Engine as _;
use hke_provider_api::Os;

/// EC2's limit on user data, before base64 encoding.
pub const LIMIT: usize = 16 * 1024;

/// Where the Windows loader writes a compressed script.
const WINDOWS_SCRIPT: &str = r"C:\k\hke-bootstrap.ps1";
const LOADER_MARK: &str = "# hke: compressed bootstrap";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the bootstrap of {node} is {size} bytes, over EC2's 16 KiB user-data limit even compressed")]
pub struct TooLarge {
    pub node: String,
    pub size: usize,
}

/// The user data for `script`, base64-encoded as RunInstances wants it.
pub fn encode(node: &str, os: &Os, script: &str) -> Result<String, TooLarge> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw: Vec<u8> = match os {
        Os::Linux => {
            if script.len() <= LIMIT {
                script.as_bytes().to_vec()
            } else {
                gzip(script.as_bytes())
            }
        }
        Os::Windows => {
            let plain = format!("<powershell>\n{script}\n</powershell>\n<persist>false</persist>");
            if plain.len() <= LIMIT {
                plain.into_bytes()
            } else {
                let packed = b64.encode(gzip(script.as_bytes()));
                format!(
                    "<powershell>\n{LOADER_MARK}\n$ErrorActionPreference = 'Stop'\n\
                     $bytes = [Convert]::FromBase64String('{packed}')\n\
                     $in = New-Object System.IO.MemoryStream(,$bytes)\n\
                     $gz = New-Object System.IO.Compression.GZipStream($in, [System.IO.Compression.CompressionMode]::Decompress)\n\
                     $text = (New-Object System.IO.StreamReader($gz)).ReadToEnd()\n\
                     New-Item -ItemType Directory -Force -Path (Split-Path '{WINDOWS_SCRIPT}') | Out-Null\n\
                     Set-Content -Path '{WINDOWS_SCRIPT}' -Value $text -Encoding UTF8\n\
                     & powershell.exe -NoProfile -ExecutionPolicy Bypass -File '{WINDOWS_SCRIPT}'\n\
                     exit $LASTEXITCODE\n</powershell>\n<persist>false</persist>"
                )
                .into_bytes()
            }
        }
    };
    if raw.len() > LIMIT {
        return Err(TooLarge {
            node: node.to_string(),
            size: raw.len(),
        });
    }
    Ok(b64.encode(raw))
}

/// The script inside user data (the inverse of `encode`), for checks and
/// `hke logs`.
pub fn decode(user_data_b64: &str) -> Option<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = b64.decode(user_data_b64.trim()).ok()?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        gunzip(&raw)?
    } else {
        String::from_utf8(raw).ok()?
    };
    let Some(body) = text.strip_prefix("<powershell>\n") else {
        return Some(text);
    };
    let body = body.strip_suffix("\n</powershell>\n<persist>false</persist>")?;
    if body.starts_with(LOADER_MARK) {
        let start = body.find("FromBase64String('")? + "FromBase64String('".len();
        let end = start + body[start..].find('\'')?;
        return gunzip(&b64.decode(&body[start..end]).ok()?);
    }
    Some(body.to_string())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

fn gunzip(bytes: &[u8]) -> Option<String> {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut s).ok()?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_scripts_go_as_they_are_and_round_trip() {
        for os in [Os::Linux, Os::Windows] {
            let script = "#cloud-config\nruncmd: [echo hi]\n";
            let ud = encode("n", &os, script).expect("fits");
            assert_eq!(decode(&ud).as_deref(), Some(script));
            let raw = base64::engine::general_purpose::STANDARD.decode(&ud).expect("b64");
            assert_eq!(raw.starts_with(b"<powershell>"), os == Os::Windows);
        }
    }

    #[test]
    fn long_scripts_are_compressed_under_the_limit() {
        // Realistic text: compressible, but well over 16 KiB.
        let script: String = (0..900)
            .map(|i| format!("Write-Log 'step {i} of the bootstrap'\n"))
            .collect();
        assert!(script.len() > LIMIT);
        for os in [Os::Linux, Os::Windows] {
            let ud = encode("n", &os, &script).expect("fits compressed");
            let raw = base64::engine::general_purpose::STANDARD.decode(&ud).expect("b64");
            assert!(raw.len() <= LIMIT);
            assert_eq!(decode(&ud).as_deref(), Some(script.as_str()));
        }
    }

    #[test]
    fn incompressible_scripts_are_refused_with_the_node_name() {
        // 40 KB of pseudo-random hex does not compress below 16 KiB.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let script: String = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{:08x}", x as u32)
            })
            .collect();
        let e = encode("k8s-master-0", &Os::Linux, &script).expect_err("too large");
        assert!(e.to_string().contains("k8s-master-0"), "{e}");
    }
}
