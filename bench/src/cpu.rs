//! CPU time of this process and of the etcd server.

use std::time::Duration;

/// User + system CPU time consumed so far by every thread of this process.
///
/// Read with `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`: the same sum as getrusage's
/// `ru_utime + ru_stime`, with nanosecond resolution and no `unsafe`.
pub fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// User + system CPU time of process `pid` from `/proc/PID/stat` (clock-tick resolution,
/// 10 ms on Linux); `None` if it cannot be read.
pub fn server_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, field 2, is in parentheses and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime), counted from 1 with the pid; `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks_per_second();
    let total = utime + stime;
    Some(
        Duration::from_secs(total / ticks)
            + Duration::from_nanos(total % ticks * 1_000_000_000 / ticks),
    )
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on (it is fixed by the kernel ABI
/// for `/proc`, whatever `CONFIG_HZ` is).
fn clock_ticks_per_second() -> u64 {
    100
}
