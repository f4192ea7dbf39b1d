//! CSV outputs: the percentile table (`--csv`) and the per-second time series
//! (`--csv-timeseries`). Headers on the first line; latencies in milliseconds, rates in
//! requests per second, counts as counts.
//!
//! Used by `app` after a run or a `report` merge.

use crate::outcome::ErrorClass;
use crate::record::histogram::percentile;
use crate::run::RunResult;

/// The percentiles in the `--csv` table.
pub const TABLE_PERCENTILES: [f64; 19] = [
    0.0, 10.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 90.0, 95.0, 99.0, 99.5, 99.9,
    99.99, 99.999, 100.0,
];

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// `percentile,corrected_ms,uncorrected_ms`, one row per entry of `TABLE_PERCENTILES`.
pub fn percentiles(r: &RunResult) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["percentile", "corrected_ms", "uncorrected_ms"])?;
    let (c, u) = (&r.recorder.corrected, &r.recorder.uncorrected);
    for p in TABLE_PERCENTILES {
        w.write_record([format!("{p}"), ms(percentile(c, p)), ms(percentile(u, p))])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// One row per second: intended and achieved rate, completed, errors by class, bytes and
/// corrected latency percentiles of the requests that ended in that second.
pub fn timeseries(r: &RunResult) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["second", "intended_per_s", "achieved_per_s", "completed"];
    let error_cols: Vec<String> = ErrorClass::ALL
        .iter()
        .map(|e| format!("errors_{}", e.name()))
        .collect();
    header.extend(error_cols.iter().map(String::as_str));
    header.extend([
        "bytes",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "p99_9_ms",
        "max_ms",
        "uncorrected_p99_ms",
        "tokens",
        "ttft_p99_ms",
    ]);
    w.write_record(&header)?;
    for s in &r.intervals {
        let mut row = vec![
            s.index.to_string(),
            s.counts.scheduled.to_string(),
            s.counts.sent.to_string(),
            s.counts.completed.to_string(),
        ];
        row.extend(s.counts.errors.iter().map(|e| e.to_string()));
        row.extend([
            s.counts.bytes.to_string(),
            ms(s.p50_us),
            ms(s.p90_us),
            ms(s.p99_us),
            ms(s.p999_us),
            ms(s.max_us),
            ms(s.uncorrected_p99_us),
            s.counts.tokens.to_string(),
            ms(s.ttft_p99_us),
        ]);
        w.write_record(&row)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
