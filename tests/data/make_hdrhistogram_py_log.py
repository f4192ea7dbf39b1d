"""Writes tests/data/hdrhistogram_py.hlog with HdrHistogram_py (`pip install hdrhistogram`),
an implementation other than ours, the way its users commonly log: values in nanoseconds
(the writer's default max_value_unit_ratio of 1e6 prints the max column in ms), absolute
time stamps (seconds since the epoch) with `#[BaseTime: 0.000000 …]`, and a StartTime
header (written by hand: HdrHistogram_py 0.10.8's output_start_time raises).

Three one-second intervals starting at 1800000000 s; interval k holds 1000 values of
(k + 1) ms. So the merged distribution has 3000 values, 1000 each at 1, 2 and 3 ms:
p50 = 2 ms, max = 3 ms, over a 3 s run. `ratebench report` must say exactly that.
"""
import io
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogWriter

START_S = 1_800_000_000

out = io.StringIO()
writer = HistogramLogWriter(out)
writer.output_comment("Written by HdrHistogram_py for ratebench's tests")
writer.output_log_format_version()
writer.output_comment("[StartTime: %f (seconds since epoch)]" % START_S)
writer.output_base_time(0)
writer.output_legend()
for k in range(3):
    h = HdrHistogram(1, 3_600_000_000_000, 3)
    h.record_value((k + 1) * 1_000_000, 1000)
    writer.output_interval_histogram(h, START_S + k, START_S + k + 1)
sys.stdout.write(out.getvalue())
