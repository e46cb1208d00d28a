//! CPU and memory of processes and threads, read from /proc (Linux).

use std::path::Path;

/// Clock ticks per second of /proc stat times (USER_HZ, 100 on every Linux build we
/// run on).
pub const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + system) of the process or thread whose stat file is `path`.
pub fn cpu_seconds_at(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces: split after its closing ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15 -> indices 11 and 12 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// CPU seconds used so far by process `pid`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds_at(Path::new(&format!("/proc/{pid}/stat")))
}

/// CPU seconds used so far by this process.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds_at(Path::new("/proc/self/stat")).unwrap_or(0.0)
}

/// CPU seconds used so far by the calling thread.
pub fn thread_cpu_seconds() -> f64 {
    cpu_seconds_at(Path::new("/proc/thread-self/stat")).unwrap_or(0.0)
}

/// Resident set size of `pid` in MiB (VmRSS).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Number of CPUs and the CPU model, for reports.
pub fn machine() -> (usize, String, String) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    (cpus, model, kernel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_stat_and_rss() {
        assert!(own_cpu_seconds() >= 0.0);
        assert!(thread_cpu_seconds() >= 0.0);
        assert!(rss_mib(std::process::id()).unwrap_or(0.0) > 0.0);
    }
}
