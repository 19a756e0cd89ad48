//! CPU time, read from Linux `/proc`, to tell what share of a batch's CPU the store takes.
//!
//! On a machine whose cores the workers keep busy, throughput is inversely proportional to
//! CPU time per device, so the store's share of the process's CPU time is the speed the batch
//! would gain without it. Elsewhere than Linux these return `None` and nothing is reported.

use std::time::Duration;

/// On-CPU time of the calling thread (`/proc/thread-self/schedstat`, nanoseconds).
pub fn thread() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

/// User plus system CPU time of the whole process, all threads (`/proc/self/stat` fields 14
/// and 15, in clock ticks of 1/100 s, the kernel's `USER_HZ` on every Linux architecture).
pub fn process() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    let after_name = &text[text.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // after_name starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The whole machine's CPU time by kind, summed over its cores: the first line of
/// `/proc/stat`, in clock ticks. Read before and after a run, it tells where the cores a
/// process did not use went: idle, other processes, or the hypervisor (steal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineTicks {
    /// Running anything: user, nice, system, irq and softirq (guest time is inside user).
    pub busy: u64,
    /// Idle, waiting for I/O included.
    pub idle: u64,
    /// Taken by the hypervisor for other guests while this one had work.
    pub steal: u64,
}

impl MachineTicks {
    /// The ticks from `earlier` to `self`.
    pub fn since(self, earlier: MachineTicks) -> MachineTicks {
        MachineTicks {
            busy: self.busy.saturating_sub(earlier.busy),
            idle: self.idle.saturating_sub(earlier.idle),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }

    /// All ticks counted.
    pub fn total(self) -> u64 {
        self.busy + self.idle + self.steal
    }
}

/// The machine's CPU time now ([`MachineTicks`]).
pub fn machine() -> Option<MachineTicks> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_proc_stat(text: &str) -> Option<MachineTicks> {
    let line = text.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields.map(|f| f.parse().ok()).collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let at = |i: usize| ticks.get(i).copied();
    Some(MachineTicks {
        busy: at(0)? + at(1)? + at(2)? + at(5)? + at(6)?,
        idle: at(3)? + at(4)?,
        steal: at(7)?,
    })
}

/// Runs `f` and adds the calling thread's CPU time it took to `total`.
pub fn measure<T>(total: &mut Duration, f: impl FnOnce() -> T) -> T {
    let start = thread();
    let result = f();
    if let (Some(start), Some(end)) = (start, thread()) {
        *total += end.saturating_sub(start);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (cert mill) R 1 4242 4242 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(3250)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn proc_stat_splits_busy_idle_and_steal() {
        let text = "cpu  100 2 30 400 5 6 7 8 9 10\ncpu0 50 1 15 200 2 3 3 4 4 5\nintr 1 2\n";
        let ticks = parse_proc_stat(text).expect("parsed");
        assert_eq!(
            ticks,
            MachineTicks {
                busy: 100 + 2 + 30 + 6 + 7,
                idle: 405,
                steal: 8
            }
        );
        let later = MachineTicks {
            busy: ticks.busy + 150,
            idle: ticks.idle + 40,
            steal: ticks.steal + 10,
        };
        let run = later.since(ticks);
        assert_eq!(
            (run.busy, run.idle, run.steal, run.total()),
            (150, 40, 10, 200)
        );
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(parse_proc_stat("cpu  1 2 3"), None);
        if std::path::Path::new("/proc/stat").exists() {
            assert!(machine().expect("this machine's /proc/stat").total() > 0);
        }
    }

    #[test]
    fn busy_work_takes_thread_and_process_time() {
        let (Some(before), Some(process_before)) = (thread(), process()) else {
            return; // not Linux
        };
        let mut total = Duration::ZERO;
        // Spin until this thread has run 30 ms, however long a loaded machine takes to give
        // it that (a fixed wall-clock spin can get almost no CPU while other tests run).
        let sum = measure(&mut total, || {
            let started = std::time::Instant::now();
            let mut x = 0u64;
            while thread().unwrap_or(Duration::MAX).saturating_sub(before)
                < Duration::from_millis(30)
                && started.elapsed() < Duration::from_secs(30)
            {
                for _ in 0..10_000 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
            }
            x
        });
        std::hint::black_box(sum);
        assert!(total >= Duration::from_millis(20), "{total:?}");
        assert!(thread().unwrap() - before >= total);
        assert!(process().unwrap() >= process_before);
    }
}
