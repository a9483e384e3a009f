//! Shared helpers for the criterion benchmarks under `benches/`.

/// Peak resident set size of this process (VmHWM from /proc, Linux), in MiB; `None` where /proc
/// does not say.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
