//! What the benchmarks share: a repeatable random generator and percentiles of timings.

/// A small deterministic generator (xorshift), so that runs are comparable.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The median, the `high` percentile and the maximum of `samples` (not empty).
pub fn percentiles(mut samples: Vec<f64>, high: f64) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize];
    (at(50.0), at(high), samples[samples.len() - 1])
}

/// The peak resident set size of process `pid` in KiB (`VmHWM` in `/proc/PID/status`), when
/// the system reports it.
#[allow(dead_code)] // Not every benchmark that shares this module measures memory.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
