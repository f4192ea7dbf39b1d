//! `ratebench sweep`: constant-rate steps up to the knee, then a bisection.

use super::*;

/// `ratebench sweep`: the climb, the bisection, the table and the answer.
pub(super) fn sweep_cmd(command: &SweepCommand) -> Result<()> {
    use crate::sweep::{self, Step};
    let base = &command.base;
    let to_stderr = base.outputs.json_to_stdout();
    let script = load_script(&base.plan)?;
    let config = sweep::SweepConfig {
        url: base.plan.target.url.clone(),
        from_per_s: command.from,
        to_per_s: command.to,
        steps: command.steps,
        refine: command.refine,
        duration_s: base.plan.duration.as_secs_f64(),
        connections: base.plan.connections,
        threads: base.plan.threads,
        thresholds: base
            .outputs
            .thresholds
            .iter()
            .map(|t| t.expr.clone())
            .collect(),
    };
    let mut text = format!(
        "Sweep of {}: {} → {} req/s in {} geometric steps, then {} bisections; each step {:?} \
         with {} threads and {} connections, judged by {}\n",
        config.url,
        config.from_per_s,
        config.to_per_s,
        config.steps,
        config.refine,
        base.plan.duration,
        config.threads,
        config.connections,
        config.thresholds.join(", ")
    );
    text.push_str(&sweep::table_header());
    // On a terminal, the live view of each step with the table growing below it; the sweep's
    // text prints when the view closes. Otherwise a progress line a second and the rows as
    // they come.
    let tui = live_view_wanted(base.no_tui, to_stderr);
    let live: std::cell::RefCell<Option<crate::live::LiveView>> = std::cell::RefCell::new(None);
    if tui {
        *live.borrow_mut() = crate::live::LiveView::start(
            format!("sweep {}", config.url),
            base.plan.duration,
            command.from,
        )
        .ok();
        if let Some(v) = live.borrow_mut().as_mut() {
            v.table_line(&sweep::table_header());
        }
    }
    if live.borrow().is_none() {
        out(to_stderr, &text);
    }
    let mut steps: Vec<Step> = Vec::new();
    // Ctrl-C ends the sweep after the step it interrupted (whose numbers are partial).
    let interrupted = std::cell::Cell::new(false);
    // One step: a full run at `rate`, its own accounting, judged; then a short drain.
    let mut run_step = |rate: f64, phase: &'static str, text: &mut String| -> Result<bool> {
        let mut plan = base.plan.clone();
        plan.rate = crate::pacer::Rate::new((rate * 1000.0).round() as u128, 1000);
        plan.start_rate = Some(plan.rate);
        // The step's progress, a line a second on a terminal, as a single run's.
        let mut progress = Progress::new(plan.duration);
        progress.label = format!("{phase} {}/s ", crate::units::trim_decimal(rate));
        if let Some(v) = live.borrow_mut().as_mut() {
            progress.tty = false;
            v.step(
                format!(
                    "sweep {}: {phase} {}/s",
                    config.url,
                    crate::units::trim_decimal(rate)
                ),
                plan.duration,
                rate,
            );
        }
        let r = engine::run(
            &plan,
            RunOptions {
                handle_sigint: true,
                thread_setups: script.as_ref().map(|s| s.thread_setups()),
                on_interval: Box::new(|iv, s| {
                    progress.second(iv, s);
                    if let Some(v) = live.borrow_mut().as_mut() {
                        v.second(iv, s);
                    }
                }),
                ..RunOptions::default()
            },
        )
        .map_err(|source| Error::Run {
            url: plan.target.url.clone(),
            source,
        })?;
        progress.clear();
        interrupted.set(interrupted.get() || r.interrupted);
        let s = Summary::of(&r);
        let verdicts: Vec<Verdict> = base
            .outputs
            .thresholds
            .iter()
            .map(|t| t.evaluate(&r, &s))
            .collect();
        let step = sweep::judge(rate, &r, &s, &verdicts, phase);
        let row = sweep::table_row(&step);
        match live.borrow_mut().as_mut() {
            Some(v) => v.table_line(&row),
            None => out(to_stderr, &row),
        }
        text.push_str(&row);
        let pass = step.pass;
        steps.push(step);
        std::thread::sleep(Duration::from_secs(1));
        Ok(pass)
    };
    let (mut lo, mut hi) = (None, None);
    for rate in sweep::step_rates(command.from, command.to, command.steps) {
        if interrupted.get() {
            break;
        }
        if run_step(rate, "step", &mut text)? {
            lo = Some(rate);
        } else {
            hi = Some(rate);
            break;
        }
    }
    if let (Some(mut l), Some(mut h)) = (lo, hi) {
        for _ in 0..command.refine {
            let m = sweep::midpoint(l, h);
            if interrupted.get() {
                break;
            }
            if m <= l || m >= h {
                break; // nothing left between them at this resolution
            }
            if run_step(m, "refine", &mut text)? {
                l = m;
            } else {
                h = m;
            }
        }
    }
    let highest = sweep::highest_passing(&steps);
    if let Some(mut v) = live.borrow_mut().take() {
        v.close();
        out(to_stderr, &text);
    }
    let answer = match highest {
        Some(r) => format!("Highest rate meeting all thresholds: {r} req/s\n"),
        None => format!(
            "No rate met all thresholds: the lowest step ({} req/s) failed\n",
            command.from
        ),
    };
    out(to_stderr, &answer);
    text.push_str(&answer);
    let mut failures = Vec::new();
    let mut write = |path: &Path, text: String| {
        if let Err(e) = write_output(path, text.as_bytes()) {
            failures.push(format!("{}: {e}", path.display()));
        }
    };
    if let Some(p) = &base.outputs.json {
        write(p, sweep::json(&config, &steps));
    }
    if let Some(p) = &base.outputs.html {
        write(p, sweep::html(&config, &steps, &text));
    }
    if !failures.is_empty() {
        return Err(Error::Write(failures.join("; ")));
    }
    if highest.is_none() {
        return Err(Error::NoPassingRate);
    }
    Ok(())
}
