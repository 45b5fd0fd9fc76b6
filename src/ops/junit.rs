//! JUnit XML for the verbs that report steps (`ci run`, `check`): one test
//! case per phase, in the dialect CI systems read (Jenkins, GitLab, Prow's
//! Spyglass).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PhaseResult {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
    pub result: PhaseResult,
    pub message: Option<String>,
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry are
/// dropped.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML of one suite, a test case per phase (`classname` names the
/// tool: `hke.ci`, `hke.check`).
pub fn junit_suite(
    name: &str,
    suite: &str,
    classname: &str,
    started_at: &str,
    properties: &[(&str, &str)],
    phases: &[Phase],
) -> String {
    let failures = phases.iter().filter(|p| p.result == PhaseResult::Failed).count();
    let skipped = phases.iter().filter(|p| p.result == PhaseResult::Skipped).count();
    let total: f64 = phases.iter().map(|p| p.seconds).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total:.3}\">\n",
        xml_escape(name),
        phases.len()
    ));
    x.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total:.3}\" timestamp=\"{}\">\n",
        xml_escape(suite),
        phases.len(),
        // JUnit's timestamp: ISO 8601 without a zone or fractions.
        xml_escape(started_at.get(..19).unwrap_or(started_at))
    ));
    x.push_str("    <properties>\n");
    for (k, v) in properties {
        x.push_str(&format!("      <property name=\"{k}\" value=\"{}\"/>\n", xml_escape(v)));
    }
    x.push_str("    </properties>\n");
    for p in phases {
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(classname),
            xml_escape(&p.name),
            p.seconds
        );
        let msg = p.message.clone().unwrap_or_default();
        let first = msg.lines().next().unwrap_or_default();
        match p.result {
            PhaseResult::Passed => x.push_str(&format!("{head}/>\n")),
            PhaseResult::Failed => x.push_str(&format!(
                "{head}>\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                xml_escape(first),
                xml_escape(&p.name),
                xml_escape(&msg)
            )),
            PhaseResult::Skipped => x.push_str(&format!(
                "{head}>\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                xml_escape(first)
            )),
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}
