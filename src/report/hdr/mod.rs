//! HdrHistogram interval logs (`--hdr-log FILE`) and reading them back (`ratebench report`).
//!
//! The log is the standard text format that HdrHistogram implementations in every
//! language read: `#[StartTime: …]`/`#[BaseTime: …]` headers, the column legend, then one
//! line per second and distribution, `Tag=corrected,<start s>,<length s>,<max ms>,<base64
//! V2-deflate histogram>` (and `Tag=uncorrected`), values in microseconds. ratebench's own
//! counters (scheduled, sent, errors …) travel in `#[ratebench-…]` comment lines, which
//! other readers skip, so `ratebench report` can rebuild the full report — and merge logs
//! from several machines that ran at the same time, second by second — from logs alone.
//!
//! Writing is in `write.rs`, reading and merging in `read.rs`; the tags both agree on are
//! here.
//!
//! Used by `app` (writing during a run; reading for `report`).

mod read;
mod write;

use crate::record::histogram::Hist;
use crate::record::StreamRecorder;
pub use read::{read, ReadError};
pub use write::HlogWriter;

/// The tag of corrected-latency lines.
pub const TAG_CORRECTED: &str = "corrected";
/// The tag of uncorrected-latency lines.
pub const TAG_UNCORRECTED: &str = "uncorrected";
pub(crate) const TAG_SEND_LAG: &str = "send_lag";
pub(crate) const TAG_RELEASE_LAG: &str = "release_lag";
pub(crate) const TAG_CONNECT_TCP: &str = "connect_tcp";
pub(crate) const TAG_CONNECT_TLS: &str = "connect_tls";
pub(crate) const TAG_TTFT: &str = "ttft";
pub(crate) const STREAM_TAGS: [&str; 5] = [
    "ttfb",
    "ttft_uncorrected",
    "itl",
    "tpot",
    "tokens_per_request",
];
pub(crate) const COUNTS: &str = "#[ratebench-counts ";
pub(crate) const TOTALS: &str = "#[ratebench-totals ";

/// The whole-run stream histograms and their tags (TTFT goes per second, above).
pub(crate) fn stream_hists(st: &StreamRecorder) -> [(&'static str, &Hist); 5] {
    [
        ("ttfb", &st.ttfb),
        ("ttft_uncorrected", &st.ttft_uncorrected),
        ("itl", &st.itl),
        ("tpot", &st.tpot),
        ("tokens_per_request", &st.tokens_per_request),
    ]
}

pub(crate) fn stream_hists_mut(st: &mut StreamRecorder) -> [(&'static str, &mut Hist); 5] {
    [
        ("ttfb", &mut st.ttfb),
        ("ttft_uncorrected", &mut st.ttft_uncorrected),
        ("itl", &mut st.itl),
        ("tpot", &mut st.tpot),
        ("tokens_per_request", &mut st.tokens_per_request),
    ]
}
