//! `ratebench compare`: runs against runs, with intervals and verdicts.

use super::*;

/// One file of `compare` as a summary document: a JSON summary as written, or an interval
/// log merged as `report` would.
pub(super) fn compare_input(path: &Path) -> Result<report::json::Document> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError::Missing(format!("compare: cannot read {}: {e}", path.display()))
    })?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return serde_json::from_slice(&bytes).map_err(|e| {
            ConfigError::Missing(format!(
                "compare: {} is not a ratebench JSON summary (--json): {e}",
                path.display()
            ))
            .into()
        });
    }
    let result = report::hdr::read(&[path.to_path_buf()], true)?;
    let summary = Summary::of(&result);
    Ok(report::json::document(&result, &summary, &[]))
}

/// `ratebench compare`: each NEW side against BASE, with intervals and verdicts; exit 2
/// for runs of different plans (unless --force), 99 when a --fail-if holds.
pub(super) fn compare_cmd(args: &CompareArgs) -> Result<()> {
    use report::compare;
    let rules = args
        .fail_if
        .iter()
        .map(|s| compare::parse_fail_if(s))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for (flag, path) in [("--json", &args.json), ("--html", &args.html)] {
        if let Some(p) = path.as_ref().filter(|p| p.as_os_str() != "-") {
            crate::cli::check_writable(flag, p)?;
        }
    }
    let (base, news) = compare_sides(args)?;
    let differences = compare_plans(&base, &news, args.force)?;
    let to_stderr = args.json.as_ref().is_some_and(|p| p.as_os_str() == "-");
    let mut texts = Vec::new();
    let mut comparisons = Vec::new();
    let mut results = Vec::new();
    for new in &news {
        let changes = compare::changes(&base, new);
        let mut text = compare::render_text(&base, new, &changes);
        for rule in &rules {
            let r = compare::check(rule, &new.label, &changes);
            text.push_str(&format!(
                "  fail-if {}: {} ({})\n",
                r.expr,
                if r.failed { "FAILED" } else { "passed" },
                r.reason
            ));
            results.push(r);
        }
        if !differences.is_empty() {
            text.push_str(&format!(
                "  warning: compared with --force although the plans differ: {}\n",
                differences.join("; ")
            ));
        }
        out(to_stderr, &text);
        texts.push(text);
        comparisons.push(compare::ComparisonDoc {
            new: new.label.clone(),
            new_files: new.files.clone(),
            changes,
        });
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.failed)
        .map(|r| r.expr.clone())
        .collect();
    let doc = compare::CompareDoc {
        schema: compare::SCHEMA.into(),
        tool: format!("ratebench {}", env!("CARGO_PKG_VERSION")),
        base: base.label.clone(),
        base_files: base.files.clone(),
        comparisons,
        plan_differences: differences,
        fail_if: results,
        passed: failed.is_empty(),
    };
    write_compare(args, &doc, &compare::render_html(&base, &news, &texts))?;
    if !failed.is_empty() {
        return Err(Error::FailIf {
            failed: failed.len(),
            total: doc.fail_if.len(),
            which: failed.join(", "),
        });
    }
    Ok(())
}

/// `compare`'s sides as given: BASE and each NEW (one run each), or --base and --new
/// (repeated runs each), every file read.
pub(super) fn compare_sides(
    args: &CompareArgs,
) -> Result<(report::compare::Side, Vec<report::compare::Side>)> {
    let usage = |m: &str| Error::Config(ConfigError::Missing(format!("compare: {m}")));
    let (base, news): (Vec<&Path>, Vec<Vec<&Path>>) =
        match (args.files.len(), args.base.is_empty(), args.new.is_empty()) {
            (0, false, false) => (
                args.base.iter().map(|p| p.as_path()).collect(),
                vec![args.new.iter().map(|p| p.as_path()).collect()],
            ),
            (n, true, true) if n >= 2 => (
                vec![args.files[0].as_path()],
                args.files[1..].iter().map(|p| vec![p.as_path()]).collect(),
            ),
            (_, true, true) => {
                return Err(usage(
                    "give BASE NEW [NEW…], or --base FILE… --new FILE… for repeated runs",
                ))
            }
            _ => {
                return Err(usage(
                    "give either BASE NEW [NEW…] or --base FILE… --new FILE…, not both \
                     (and --base needs --new)",
                ))
            }
        };
    let side = |paths: &[&Path]| -> Result<report::compare::Side> {
        let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        Ok(report::compare::Side {
            label: files.join(" "),
            runs: paths
                .iter()
                .map(|p| compare_input(p))
                .collect::<Result<Vec<_>>>()?,
            files,
        })
    };
    let base = side(&base)?;
    let news = news.iter().map(|n| side(n)).collect::<Result<Vec<_>>>()?;
    Ok((base, news))
}

/// What differs between BASE's first run's plan and every other run's: an error (exit 2)
/// unless `force`, then the differences to warn of.
pub(super) fn compare_plans(
    base: &report::compare::Side,
    news: &[report::compare::Side],
    force: bool,
) -> Result<Vec<String>> {
    let first = &base.runs[0];
    let mut differences = Vec::new();
    for (file, run) in news
        .iter()
        .chain(std::iter::once(base))
        .flat_map(|s| s.files.iter().zip(&s.runs))
    {
        for d in report::compare::plan_differences(first, run) {
            differences.push(format!("{} vs {file}: {d}", base.files[0]));
        }
    }
    if !differences.is_empty() && !force {
        return Err(Error::Config(ConfigError::Missing(format!(
            "compare: these runs are of different plans ({}); compare them anyway with --force",
            differences.join("; ")
        ))));
    }
    Ok(differences)
}

/// Writes `compare`'s --json and --html files, if asked for.
pub(super) fn write_compare(
    args: &CompareArgs,
    doc: &report::compare::CompareDoc,
    page: &str,
) -> Result<()> {
    let mut errors = Vec::new();
    if let Some(path) = &args.json {
        let mut bytes = serde_json::to_vec_pretty(doc).expect("serialisable");
        bytes.push(b'\n');
        if let Err(e) = write_output(path, &bytes) {
            errors.push(format!("--json {}: {e}", path.display()));
        }
    }
    if let Some(path) = &args.html {
        if let Err(e) = write_output(path, page.as_bytes()) {
            errors.push(format!("--html {}: {e}", path.display()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Write(errors.join("; ")))
    }
}
