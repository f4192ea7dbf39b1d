//! `ratebench report`: interval logs merged into a report, or a requests log drawn.

use super::*;

/// Whether `path` starts as a `--requests-log` does.
pub(super) fn is_requests_log(path: &Path) -> bool {
    let mut first = String::new();
    std::fs::File::open(path)
        .map(std::io::BufReader::new)
        .and_then(|mut f| std::io::BufRead::read_line(&mut f, &mut first))
        .is_ok()
        && first.starts_with(report::scatter::MAGIC)
}

/// `ratebench report requests.tsv --html FILE`: a requests log drawn as a scatter.
pub(super) fn scatter_cmd(path: &Path, args: &ReportArgs, outputs: &Outputs) -> Result<()> {
    let name = path.display().to_string();
    let Some(html) = &outputs.html else {
        return Err(ConfigError::Missing(format!(
            "{name} is a requests log (--requests-log): it is drawn as a scatter, so give \
             --html FILE (the text report and --json come from the run or its --hdr-log)"
        ))
        .into());
    };
    if args.logs.len() > 1 {
        return Err(ConfigError::Missing("one requests log at a time".into()).into());
    }
    let file =
        std::fs::File::open(path).map_err(|e| ConfigError::Missing(format!("{name}: {e}")))?;
    let s = report::scatter::read(std::io::BufReader::new(file), &name)
        .map_err(ConfigError::Missing)?;
    write_output(html, s.html(&name).as_bytes())
        .map_err(|e| Error::Write(format!("{}: {e}", html.display())))?;
    eprintln!(
        "{name}: {} requests, {} drawn in {}",
        s.lines(),
        s.drawn(),
        html.display()
    );
    Ok(())
}

/// `ratebench report`: merge interval logs and report on them.
pub(super) fn report_cmd(args: &ReportArgs) -> Result<()> {
    let outputs = args.output.validate()?;
    if let Some(first) = args.logs.first().filter(|p| is_requests_log(p)) {
        return scatter_cmd(first, args, &outputs);
    }
    let result = report::hdr::read(&args.logs, args.allow_partial)?;
    let spectra = Spectra {
        corrected: args.spectra.latency,
        uncorrected: args.spectra.u_latency,
    };
    let to_stderr = outputs.json_to_stdout();
    let names: Vec<String> = args.logs.iter().map(|p| p.display().to_string()).collect();
    let what = if result.meta.threads == 0 {
        // A log of another HdrHistogram tool: latencies only, no plan written down.
        format!(
            "  written by another HdrHistogram tool: latency distributions only (no rate, \
             threads or connections recorded; {} per second observed)\n",
            result.meta.rate
        )
    } else {
        format!(
            "  {} threads and {} connections in all, target {} requests/s\n",
            result.meta.threads, result.meta.connections, result.meta.rate
        )
    };
    // (A foreign log has no URL: the file is named once.)
    let target = if result.meta.threads == 0 {
        String::new()
    } else {
        format!(" @ {}", result.meta.url)
    };
    out(
        to_stderr,
        &format!(
            "Report of {} interval log{} ({}){target}\n{what}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
        ),
    );
    let summary = Summary::of(&result);
    finish(&result, &summary, &outputs, spectra, to_stderr, Vec::new())
}
