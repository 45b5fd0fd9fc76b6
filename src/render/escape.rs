//! Escaping for the languages rendered files are written in. Every value
//! from the model reaches a template through one of these.

/// A PowerShell single-quoted string literal. PowerShell treats the Unicode
/// single quotes ‘ ’ ‚ ‛ as `'` too, so each is doubled as well; nothing else
/// is special inside single quotes (no `$`, backtick or newline processing).
pub fn ps(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    // The Unicode quotes are U+2018..U+201B, E2 80 98..9B in UTF-8: without
    // an E2 byte only `'` needs doubling, found a run at a time (files of
    // several KiB go through here for every Windows node).
    if s.as_bytes().contains(&0xE2) {
        for c in s.chars() {
            out.push(c);
            if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
                out.push(c);
            }
        }
    } else {
        let mut runs = s.split('\'');
        out.push_str(runs.next().unwrap_or_default());
        for run in runs {
            out.push_str("''");
            out.push_str(run);
        }
    }
    out.push('\'');
    out
}

/// A POSIX shell word: single-quoted, with `'` written as `'\''`.
pub fn sh(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A YAML double-quoted scalar. Beyond `"` and `\`, control characters, C1
/// controls, the BOM and the Unicode line and paragraph separators are
/// escaped: YAML folds line breaks inside flow scalars and rejects
/// non-printable characters, which would change the value.
pub fn yaml(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON string literal.
pub fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A TOML string: a literal string ('…', no escapes at all) when the value
/// has no `'` and no control character, else a basic string ("…") with
/// TOML's escapes (TOML 1.0, "String").
pub fn toml_literal(s: &str) -> String {
    if !s.chars().any(|c| c == '\'' || c.is_control()) {
        return format!("'{s}'");
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Base64 (standard alphabet, padded).
pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powershell() {
        assert_eq!(ps("plain"), "'plain'");
        assert_eq!(ps("a'b"), "'a''b'");
        assert_eq!(ps("$(rm -rf /)`n\"x\""), "'$(rm -rf /)`n\"x\"'");
        assert_eq!(ps("it’s"), "'it’’s'");
        assert_eq!(ps(""), "''");
        assert_eq!(ps("'"), "''''");
        assert_eq!(ps("''a'"), "'''''a'''");
        assert_eq!(ps("‘a’ and 'b' and ‚c‛ …"), "'‘‘a’’ and ''b'' and ‚‚c‛‛ …'");
        assert_eq!(ps("€'"), "'€'''");
    }

    #[test]
    fn shell() {
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sh("it's $HOME"), "'it'\\''s $HOME'");
    }

    #[test]
    fn yaml_scalars() {
        assert_eq!(yaml("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(yaml("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(yaml("\u{2028}"), "\"\\u2028\"");
        assert_eq!(yaml("\u{85}"), "\"\\x85\"");
        assert_eq!(yaml("{{ x }}: y # z"), "\"{{ x }}: y # z\"");
    }

    #[test]
    fn toml_strings() {
        assert_eq!(toml_literal(r"C:\opt"), r"'C:\opt'");
        assert_eq!(toml_literal("a'b\\"), r#""a'b\\""#);
        assert_eq!(toml_literal("x\ny"), r#""x\ny""#);
    }

    #[test]
    fn json_and_base64() {
        assert_eq!(json("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(b64("hke"), "aGtl");
    }
}
