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
pub(crate) const TAG_READ_LAG: &str = "read_lag";
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

/// The interval-log tag of a request tag's distribution: `tag:` and the name, with the
/// characters a log tag cannot hold (`,`, whitespace, `%`) percent-encoded.
pub(crate) fn tag_label(name: &str) -> String {
    let mut out = String::from(TAG_PREFIX);
    for c in name.chars() {
        match c {
            '%' | ',' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_whitespace() => {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The request tag a `tag_label` names, if it is one.
pub(crate) fn tag_of_label(label: &str) -> Option<String> {
    let rest = label.strip_prefix(TAG_PREFIX)?;
    let mut bytes = Vec::with_capacity(rest.len());
    let mut it = rest.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex: Vec<u8> = it.by_ref().take(2).collect();
            let v = std::str::from_utf8(&hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())?;
            bytes.push(v);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

/// The prefix of request-tag distributions in interval logs.
pub(crate) const TAG_PREFIX: &str = "tag:";

#[cfg(test)]
mod tag_label_tests {
    #[test]
    fn round_trip() {
        for name in ["GET /a b", "large", "x,y%z", "turn-1"] {
            let label = super::tag_label(name);
            assert!(!label.contains([',', ' ']), "{label}");
            assert_eq!(super::tag_of_label(&label).as_deref(), Some(name));
        }
    }
}
