//! CPU and memory of a replica's whole process group, from `/proc` (Linux).
//!
//! A replica is a process group (the server and every worker it forked), so usage is
//! summed over the group's live members, as a container's cgroup would count it.
use std::fs;

/// One process's fields of `/proc/<pid>/stat` that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub state: char,
    pub pgrp: u32,
    /// `utime + stime`, in clock ticks.
    pub cpu_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may hold spaces and ')', so
/// the fields are read after the last ')'.
pub fn parse_stat(pid: u32, text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_ascii_whitespace().take(13).collect();
    // After the name: state(3) ppid(4) pgrp(5) session tty tpgid flags minflt cminflt
    // majflt cmajflt utime(14) stime(15).
    if f.len() < 13 {
        return None;
    }
    let utime: u64 = f[11].parse().ok()?;
    let stime: u64 = f[12].parse().ok()?;
    Some(ProcStat {
        pid,
        state: f[0].chars().next()?,
        pgrp: f[2].parse().ok()?,
        cpu_ticks: utime.saturating_add(stime),
    })
}

/// The live (not zombie, not dead) members of process group `pgid`.
pub fn group_members(pgid: u32) -> impl Iterator<Item = ProcStat> {
    let entries = fs::read_dir("/proc").into_iter().flatten().flatten();
    entries.filter_map(move |e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let s = parse_stat(pid, &text)?;
        (s.pgrp == pgid && !matches!(s.state, 'Z' | 'X' | 'x')).then_some(s)
    })
}

/// Resident memory of a process in bytes (`/proc/<pid>/statm`, field 2, in pages).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(rustix::param::page_size() as u64)
}

/// CPU time (seconds) and resident memory (bytes) of a group, or `None` when no
/// member is alive.
pub fn group_usage(pgid: u32) -> Option<(f64, u64)> {
    let ticks_per_second = rustix::param::clock_ticks_per_second().max(1);
    let mut ticks = 0u64;
    let mut rss = 0u64;
    let mut any = false;
    for p in group_members(pgid) {
        any = true;
        ticks = ticks.saturating_add(p.cpu_ticks);
        rss = rss.saturating_add(rss_bytes(p.pid).unwrap_or(0));
    }
    #[allow(clippy::cast_precision_loss)] // ticks of CPU time: far below 2^52
    any.then(|| (ticks as f64 / ticks_per_second as f64, rss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_name() {
        let text = "123 (a) b (c)) S 1 77 77 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1 2 3";
        let s = parse_stat(123, text).expect("parses");
        assert_eq!(s.state, 'S');
        assert_eq!(s.pgrp, 77);
        assert_eq!(s.cpu_ticks, 300);
        assert_eq!(parse_stat(1, "1 (x) S 1"), None);
        assert_eq!(parse_stat(1, "garbage"), None);
    }

    #[test]
    fn own_group_is_visible() {
        let me = std::process::id();
        let text = fs::read_to_string(format!("/proc/{me}/stat")).expect("own stat");
        let s = parse_stat(me, &text).expect("parses");
        assert!(group_members(s.pgrp).any(|p| p.pid == me));
        let (_, rss) = group_usage(s.pgrp).expect("alive");
        assert!(rss > 0);
    }
}
