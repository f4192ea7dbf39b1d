//! The live view: on a terminal, a full screen of the run as it goes — elapsed against the
//! duration, the rate asked for against the rate sent, corrected p50/p99/p99.9 of the last
//! second and so far, the p99 of every second as a sparkline, status classes and error
//! classes, send lag, and for event streams TTFT, ITL and tokens/s. For `sweep`, the same
//! view of the step that is running, and below it the steps' table as it grows.
//!
//! It is drawn by the coordinator, once for each second's merged snapshot (so at most once a
//! second, far under 10 frames/s): the worker threads never see it. The terminal is left in
//! cooked mode (no raw input), so Ctrl-C stays the signal the engine handles; the view only
//! takes the alternate screen and gives it back — and the final report prints after it, on
//! the ordinary screen. `--no-tui`, or a stdout or stderr that is not a terminal, keeps
//! the one-line progress instead.
//!
//! Used by `app` (runs).

use crate::record::histogram::{new_hist, percentile, Hist};
use crate::record::{Counts, Interval, IntervalStats};
use crate::units::trim_decimal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Sparkline};
use ratatui::Terminal;
use std::io::Stderr;
use std::time::Duration;

/// The most seconds the sparkline keeps (it shows the latest that fit).
const SPARK_KEEP: usize = 3600;

/// A run's live view (restores the terminal when dropped).
pub struct LiveView {
    term: Terminal<CrosstermBackend<Stderr>>,
    title: String,
    total: Duration,
    target_rate: f64,
    so_far: Hist,
    ttft_so_far: Option<Hist>,
    /// ITL p50 and p99 of the last second, µs, when it had token gaps.
    itl_last: Option<(u64, u64)>,
    counts: Counts,
    p99s: Vec<u64>,
    last: Option<(IntervalStats, u64)>,
    /// What a Ctrl-C made of the run, when one came.
    stopping: Option<String>,
    /// A sweep's table so far: its header line, then a row per finished step.
    table: Vec<String>,
    closed: bool,
}

/// Microseconds as the report writes them.
fn us(v: u64) -> String {
    if v >= 1_000_000 {
        format!("{:.2}s", v as f64 / 1e6)
    } else if v >= 1000 {
        format!("{:.2}ms", v as f64 / 1e3)
    } else {
        format!("{v}us")
    }
}

impl LiveView {
    /// Takes the terminal's alternate screen for a run of `total` at `target_rate`.
    pub fn start(title: String, total: Duration, target_rate: f64) -> std::io::Result<LiveView> {
        let mut err = std::io::stderr();
        execute!(err, terminal::EnterAlternateScreen, cursor::Hide)?;
        let mut term = Terminal::new(CrosstermBackend::new(std::io::stderr()))?;
        term.clear()?;
        let mut view = LiveView {
            term,
            title,
            total,
            target_rate,
            so_far: new_hist(),
            ttft_so_far: None,
            itl_last: None,
            counts: Counts::default(),
            p99s: Vec::new(),
            last: None,
            stopping: None,
            table: Vec::new(),
            closed: false,
        };
        view.draw();
        Ok(view)
    }

    /// Takes a second's snapshot and redraws.
    pub fn second(&mut self, iv: &Interval, s: &IntervalStats) {
        let _ = self.so_far.add(&iv.corrected);
        if let Some(t) = &iv.ttft {
            let _ = self.ttft_so_far.get_or_insert_with(new_hist).add(t);
        }
        self.itl_last = iv
            .itl
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| (percentile(h, 50.0), percentile(h, 99.0)));
        self.counts.add(&s.counts);
        if self.p99s.len() == SPARK_KEEP {
            self.p99s.remove(0);
        }
        self.p99s.push(s.p99_us);
        self.last = Some((s.clone(), percentile(&iv.send_lag, 99.0)));
        self.draw();
    }

    /// A sweep's next step begins: the view starts over for it (the table stays).
    pub fn step(&mut self, title: String, total: Duration, target_rate: f64) {
        self.title = title;
        self.total = total;
        self.target_rate = target_rate;
        self.so_far = new_hist();
        self.ttft_so_far = None;
        self.itl_last = None;
        self.counts = Counts::default();
        self.p99s.clear();
        self.last = None;
        self.draw();
    }

    /// A sweep's table line (its header first, then a row per finished step).
    pub fn table_line(&mut self, line: &str) {
        self.table.push(line.trim_end().to_string());
        self.draw();
    }

    /// A Ctrl-C came: say what happens now.
    pub fn stopping(&mut self, what: String) {
        self.stopping = Some(what);
        self.draw();
    }

    /// The lines of text above the sparkline.
    fn lines(&self) -> Vec<Line<'static>> {
        let secs = self.last.as_ref().map_or(0, |(s, _)| s.index + 1);
        let dim = Style::default().fg(Color::DarkGray);
        let mut out = Vec::new();
        let (sent, completed) = self
            .last
            .as_ref()
            .map_or((0, 0), |(s, _)| (s.counts.sent, s.counts.completed));
        out.push(Line::from(vec![
            Span::raw(format!(
                "rate      target {}/s   sent {sent}/s   completed {completed}/s  ",
                trim_decimal(self.target_rate)
            )),
            Span::styled("(last second)", dim),
        ]));
        let q = |h: &Hist, p: f64| {
            if h.is_empty() {
                "n/a".to_string()
            } else {
                us(percentile(h, p))
            }
        };
        match &self.last {
            Some((s, _)) if s.counts.completed > 0 => out.push(Line::from(format!(
                "latency   last second  p50 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}",
                us(s.p50_us),
                us(s.p99_us),
                us(s.p999_us),
                us(s.max_us)
            ))),
            _ => out.push(Line::from("latency   last second  (nothing completed)")),
        }
        out.push(Line::from(format!(
            "          so far       p50 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}   (corrected)",
            q(&self.so_far, 50.0),
            q(&self.so_far, 99.0),
            q(&self.so_far, 99.9),
            if self.so_far.is_empty() {
                "n/a".into()
            } else {
                us(self.so_far.max())
            }
        )));
        let c = &self.counts;
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        let statuses: Vec<String> = classes
            .iter()
            .zip(c.status_classes)
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        let mut status_line = vec![Span::raw(format!("answers   {}", statuses.join("  ")))];
        if c.rate_limited > 0 {
            status_line.push(Span::raw(format!("   429 {}", c.rate_limited)));
        }
        out.push(Line::from(status_line));
        let errors: Vec<String> = crate::outcome::ErrorClass::ALL
            .iter()
            .map(|e| format!("{} {}", e.name(), c.errors[e.index()]))
            .collect();
        let failed = c.error_total() > 0;
        out.push(Line::from(Span::styled(
            format!("errors    {}", errors.join("  ")),
            if failed {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            },
        )));
        if let Some((_, lag)) = &self.last {
            out.push(Line::from(format!(
                "send lag  p99 {} (last second)",
                us(*lag)
            )));
        }
        if let Some(t) = &self.ttft_so_far {
            let ttft_last = self.last.as_ref().map_or(0, |(s, _)| s.ttft_p99_us);
            let tokens = self.last.as_ref().map_or(0, |(s, _)| s.counts.tokens);
            let itl = self.itl_last.map_or("n/a".to_string(), |(p50, p99)| {
                format!("p50 {} p99 {}", us(p50), us(p99))
            });
            out.push(Line::from(format!(
                "streams   TTFT p99 {} last second, {} so far   ITL {itl}   tokens {tokens}/s",
                us(ttft_last),
                q(t, 99.0)
            )));
        }
        if let Some(what) = &self.stopping {
            out.push(Line::from(Span::styled(
                what.clone(),
                Style::default().fg(Color::Yellow).bold(),
            )));
        }
        out.push(Line::from(Span::styled(
            format!(
                "{secs}s of {}s; Ctrl-C stops sending",
                self.total.as_secs_f64().ceil()
            ),
            dim,
        )));
        out
    }

    fn draw(&mut self) {
        if self.closed {
            return;
        }
        let secs = self.last.as_ref().map_or(0, |(s, _)| s.index + 1);
        let ratio = (secs as f64 / self.total.as_secs_f64().max(1e-9)).clamp(0.0, 1.0);
        let lines = self.lines();
        let height = lines.len() as u16 + 2;
        let title = self.title.clone();
        let spark: Vec<u64> = self.p99s.clone();
        let table: Vec<Line<'static>> = self.table.iter().map(|l| Line::from(l.clone())).collect();
        let table_height = if table.is_empty() {
            0
        } else {
            table.len() as u16 + 2
        };
        let _ = self.term.draw(|f| {
            let [gauge, text, steps, chart] = Layout::vertical([
                Constraint::Length(3),
                Constraint::Length(height),
                Constraint::Length(table_height),
                Constraint::Min(5),
            ])
            .areas(f.area());
            f.render_widget(
                Gauge::default()
                    .block(Block::bordered().title(format!(" ratebench {title} ")))
                    .gauge_style(Style::default().fg(Color::Cyan))
                    .ratio(ratio)
                    .label(format!("{secs}s / {}s", self.total.as_secs_f64().ceil())),
                gauge,
            );
            f.render_widget(Paragraph::new(lines).block(Block::bordered()), text);
            if !table.is_empty() {
                // The newest rows when the table outgrows its room.
                let room = steps.height.saturating_sub(2) as usize;
                let first = table.len().saturating_sub(room).max(1);
                let mut shown = vec![table[0].clone()];
                shown.extend(table[first..].iter().cloned());
                f.render_widget(
                    Paragraph::new(shown).block(Block::bordered().title(" sweep steps ")),
                    steps,
                );
            }
            let width = chart.width.saturating_sub(2) as usize;
            let shown = &spark[spark.len().saturating_sub(width)..];
            let top = shown.iter().copied().max().unwrap_or(0);
            f.render_widget(
                Sparkline::default()
                    .block(
                        Block::bordered()
                            .title(format!(" p99 of each second (corrected; top {}) ", us(top))),
                    )
                    .style(Style::default().fg(Color::Cyan))
                    .data(shown),
                chart,
            );
        });
    }

    /// Gives the screen back (the final report prints after).
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let mut err = std::io::stderr();
        let _ = execute!(err, terminal::LeaveAlternateScreen, cursor::Show);
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.close();
    }
}
