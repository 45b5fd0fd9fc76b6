//! Secret values and their generation.
//!
//! `Secret` never prints its content through `Debug` or `Display`, so a
//! secret cannot reach a log line by accident; code that needs the value
//! calls `expose()`, which is easy to grep for.

use std::fmt;

use rand::{CryptoRng, Rng, RngCore};

/// The one rule for which model fields are secret: a key naming a password,
/// a secret, a private key or a token. Their values never appear in
/// messages, not even as the `--set` argument a diagnostic points at.
pub fn is_secret_key(name: &str) -> bool {
    let k = name.to_ascii_lowercase();
    k.contains("password") || k.contains("secret") || k.contains("privatekey") || k.contains("token")
}

/// A `<your-...>` placeholder left in a model where a value belongs.
pub fn is_placeholder(s: &str) -> bool {
    let t = s.trim();
    t.len() >= 3 && t.starts_with('<') && t.ends_with('>')
}

/// A secret string (password, private key, token).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Serializes as a redaction marker: a `Secret` inside a value written to
/// `plan.json` or JSON output never leaks. Files that must hold the secret
/// (apimodel.json) are written from the vlabs model, not from these types.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
/// Symbols that need no quoting in PowerShell, YAML, JSON or shell words.
const SYMBOLS: &[u8] = b"-_.+=%@";

/// A Windows admin password: 24 characters with every character class, so it
/// meets Windows' and Azure's complexity rules.
pub fn generate_password<R: RngCore + CryptoRng>(rng: &mut R) -> Secret {
    let classes: [&[u8]; 4] = [LOWER, UPPER, DIGITS, SYMBOLS];
    let all: Vec<u8> = classes.concat();
    let mut chars: Vec<u8> = classes.iter().map(|c| c[rng.gen_range(0..c.len())]).collect();
    while chars.len() < 24 {
        chars.push(all[rng.gen_range(0..all.len())]);
    }
    // Fisher–Yates so the class-guaranteed characters are not always first.
    for i in (1..chars.len()).rev() {
        let j = rng.gen_range(0..=i);
        chars.swap(i, j);
    }
    Secret(chars.into_iter().map(char::from).collect())
}

/// A kubeadm bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn generate_bootstrap_token<R: RngCore + CryptoRng>(rng: &mut R) -> Secret {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect()
    };
    let id = pick(6);
    let secret = pick(16);
    Secret(format!("{id}.{secret}"))
}

/// Is `s` a well-formed bootstrap token?
pub fn is_bootstrap_token(s: &str) -> bool {
    let ok = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    matches!(s.split_once('.'), Some((id, sec)) if ok(id, 6) && ok(sec, 16))
}

/// An SSH key pair: (OpenSSH public line, OpenSSH private key PEM).
pub fn generate_ssh_key<R: RngCore + CryptoRng>(rng: &mut R, comment: &str) -> Result<(String, Secret), String> {
    let mut key = ssh_key::PrivateKey::random(rng, ssh_key::Algorithm::Ed25519)
        .map_err(|e| format!("cannot generate an SSH key: {e}"))?;
    key.set_comment(comment);
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| format!("cannot encode the SSH public key: {e}"))?;
    let private = key
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|e| format!("cannot encode the SSH private key: {e}"))?;
    Ok((public, Secret(private.to_string())))
}

/// Password rules shared by validation and tests.
pub mod password {
    /// Windows' complexity rule: three of lower, upper, digit, symbol.
    pub fn classes(p: &str) -> usize {
        let lower = p.chars().any(|c| c.is_lowercase());
        let upper = p.chars().any(|c| c.is_uppercase());
        let digit = p.chars().any(|c| c.is_ascii_digit());
        let symbol = p.chars().any(|c| !c.is_alphanumeric());
        [lower, upper, digit, symbol].iter().filter(|b| **b).count()
    }

    /// Passwords Azure refuses outright.
    pub const DISALLOWED: &[&str] = &[
        "abc@123",
        "iloveyou!",
        "P@$$w0rd",
        "P@ssw0rd",
        "P@ssword123",
        "Pa$$word",
        "pass@word1",
        "Password!",
        "Password1",
        "Password22",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(serde_json::to_string(&s).expect("json"), "\"<redacted>\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn generated_passwords_meet_the_rules() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for _ in 0..500 {
            let p = generate_password(&mut rng);
            let p = p.expose();
            assert_eq!(p.len(), 24);
            assert_eq!(password::classes(p), 4, "{p}");
            assert!(p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+=%@".contains(c)));
        }
    }

    #[test]
    fn bootstrap_tokens_have_kubeadm_shape() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let t = generate_bootstrap_token(&mut rng);
        assert!(is_bootstrap_token(t.expose()), "{:?}", t.expose().len());
        for bad in [
            "abcdef.0123456789abcde",
            "ABCDEF.0123456789abcdef",
            "abcdef0123456789abcdef",
            "",
        ] {
            assert!(!is_bootstrap_token(bad), "{bad}");
        }
    }

    #[test]
    fn ssh_keys_round_trip() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let (public, private) = generate_ssh_key(&mut rng, "azureuser@hke").expect("key");
        assert!(public.starts_with("ssh-ed25519 "));
        let parsed = ssh_key::PrivateKey::from_openssh(private.expose()).expect("parses");
        assert_eq!(parsed.public_key().to_openssh().expect("pub"), public);
    }
}
