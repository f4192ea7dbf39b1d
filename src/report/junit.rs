//! Thresholds as JUnit XML (`--junit FILE`), the report every CI system reads: one test
//! case per `--threshold`, failed with the measured value when it did not hold, under one
//! suite named after the target; the run's warnings as the suite's `system-err`.
//!
//! The format is the de-facto one of Ant's JUnit task as Jenkins, GitLab, GitHub Actions
//! reporters and Buildkite read it: `testsuites` › `testsuite` (`name`, `tests`,
//! `failures`, `errors`, `time`) › `testcase` (`classname`, `name`, `time`) › `failure`
//! (`message`, `type`).

use super::threshold::Verdict;
use super::Summary;
use crate::run::RunResult;
use std::fmt::Write;

/// `text` with XML's five special characters escaped (attribute- and text-safe).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// How a verdict's measured value reads (`1.234 ms`, `0.500 %`).
fn actual(v: &Verdict) -> String {
    format!("{:.3} {}", v.actual, v.unit).trim_end().to_string()
}

/// The JUnit document of a finished run judged by `verdicts`.
pub fn render(r: &RunResult, s: &Summary, verdicts: &[Verdict]) -> String {
    let failures = verdicts.iter().filter(|v| !v.pass).count();
    let time = r.load_duration.as_secs_f64();
    let suite = escape(&format!("ratebench {} {}", r.meta.method, r.meta.url));
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"ratebench\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">",
        verdicts.len()
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time:.3}\">",
        verdicts.len()
    );
    let _ = writeln!(o, "    <properties>");
    for (name, value) in [
        ("rate", format!("{}", r.meta.rate)),
        ("connections", r.meta.connections.to_string()),
        ("threads", r.meta.threads.to_string()),
        ("arrival", r.meta.arrival.clone()),
        ("seed", r.meta.seed.to_string()),
        ("achieved_rate", format!("{:.3}", s.achieved_rate)),
        ("completed", r.recorder.total.completed.to_string()),
    ] {
        let _ = writeln!(
            o,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(&value)
        );
    }
    let _ = writeln!(o, "    </properties>");
    for v in verdicts {
        let name = escape(&v.expr);
        if v.pass {
            let _ = writeln!(
                o,
                "    <testcase classname=\"ratebench.thresholds\" name=\"{name}\" time=\"0\"/>"
            );
        } else {
            let message = escape(&format!("{} did not hold: actual {}", v.expr, actual(v)));
            let _ = writeln!(
                o,
                "    <testcase classname=\"ratebench.thresholds\" name=\"{name}\" time=\"0\">\n      \
                 <failure type=\"threshold\" message=\"{message}\">{message}</failure>\n    </testcase>"
            );
        }
    }
    if !s.warnings.is_empty() {
        let text: Vec<String> = s.warnings.iter().map(|w| format!("WARNING: {w}")).collect();
        let _ = writeln!(
            o,
            "    <system-err>{}</system-err>",
            escape(&text.join("\n"))
        );
    }
    let _ = writeln!(o, "  </testsuite>\n</testsuites>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_xml_reserves() {
        assert_eq!(
            escape("p99{tag=a&b}<1s \"x\" 'y' >"),
            "p99{tag=a&amp;b}&lt;1s &quot;x&quot; &apos;y&apos; &gt;"
        );
        assert_eq!(escape("a\u{1}b"), "a b");
    }
}
