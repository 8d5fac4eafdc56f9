//! Where a scenario's CPU went. Before and after each load run the bench
//! reads the machine's busy time (`/proc/stat`) and each group of
//! processes' user + system time (`/proc/<pid>/stat`); divided by the
//! operations the run completed, that is the CPU one request (or delivery)
//! costs, and by whom. On a machine whose cores are all busy, the cores
//! divided by that cost is the most it can give, whatever the concurrency:
//! a target above it needs a lower cost or more cores.
//!
//! A service is its process and every process below it (uvicorn's
//! workers under its master). Postgres is every `postgres` process plus
//! what the postmaster's reaped children (backends that ended) used; the load generator is what this
//! process's reaped children used (it is the only child waited for during
//! a run). The replica run's throwaway cluster is counted apart, as its
//! primary and its replica: each postmaster (by the pid its data directory
//! names), its children and its reaped children; Postgres stays the system
//! cluster the other runs use.

use std::collections::BTreeMap;

use anyhow::Context;

/// The bench's name of the FastAPI original's process (uvicorn's master).
pub const ORIGINAL_SERVICE: &str = "fastapi-original";

/// Who spent the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Api,
    /// The FastAPI original of the side-by-side run: uvicorn's master and workers.
    Original,
    Postgres,
    Redis,
    /// The webhook worker, the Cloud Tasks and Pub/Sub stand-ins and the receiver.
    Pipeline,
    LoadGenerator,
    /// The replica run's throwaway primary.
    Primary,
    /// Its streaming replica.
    Replica,
}

impl Group {
    pub const ALL: [Group; 8] = [
        Group::Api,
        Group::Postgres,
        Group::Redis,
        Group::Pipeline,
        Group::LoadGenerator,
        Group::Primary,
        Group::Replica,
        Group::Original,
    ];
    /// The groups of the main CPU table: every run but the replica run's.
    pub const STACK: [Group; 6] =
        [Group::Api, Group::Original, Group::Postgres, Group::Redis, Group::Pipeline, Group::LoadGenerator];

    pub fn label(self) -> &'static str {
        match self {
            Group::Api => "API",
            Group::Original => "FastAPI original",
            Group::Postgres => "Postgres",
            Group::Redis => "Redis",
            Group::Pipeline => "worker, stand-ins, receiver",
            Group::LoadGenerator => "load generator",
            Group::Primary => "primary",
            Group::Replica => "replica",
        }
    }

    /// The group of a process the bench started, by its name there.
    pub fn of_service(name: &str) -> Group {
        if name.starts_with("api") {
            Group::Api
        } else if name == ORIGINAL_SERVICE {
            Group::Original
        } else {
            Group::Pipeline
        }
    }
}

/// CPU counters at one moment, in clock ticks.
pub struct Sample {
    machine_busy: u64,
    machine_total: u64,
    groups: BTreeMap<Group, u64>,
}

impl Sample {
    /// Reads the counters now; `services` are the bench's processes (name,
    /// pid), `postmasters` the throwaway cluster's (its group, pid).
    pub fn take(services: &[(&str, u32)], postmasters: &[(Group, u32)]) -> anyhow::Result<Sample> {
        let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
        let (machine_busy, machine_total) = machine_ticks(&stat).context("no cpu line in /proc/stat")?;
        let mut groups = BTreeMap::new();
        let processes: Vec<Process> = all_processes().collect();
        for (name, pid) in services {
            for process in with_descendants(&processes, *pid) {
                *groups.entry(Group::of_service(name)).or_default() += process.own;
            }
        }
        for process in &processes {
            let group = match process.command.as_str() {
                "postgres" => postgres_group(process, postmasters),
                "redis-server" => Group::Redis,
                _ => continue,
            };
            // The postmaster (whose parent is not postgres) also carries the
            // backends that ended; a backend's reaped children are none.
            *groups.entry(group).or_default() += process.own + process.reaped_children;
        }
        *groups.entry(Group::LoadGenerator).or_default() += reaped_children_of_self()?;
        Ok(Sample { machine_busy, machine_total, groups })
    }
}

/// What a run cost, from two samples.
#[derive(Clone, Debug)]
pub struct Cost {
    pub cores: f64,
    /// Of all the machine's cores, the share that was busy.
    pub busy_share: f64,
    /// Busy CPU milliseconds per operation, the whole machine.
    pub machine_ms_per_op: f64,
    /// CPU milliseconds per operation, by group.
    pub group_ms_per_op: BTreeMap<Group, f64>,
}

impl Cost {
    pub fn between(before: &Sample, after: &Sample, operations: f64) -> Cost {
        let ms_per_tick = 1000.0 / clock_ticks_per_second();
        let per_op = |ticks: u64| ticks as f64 * ms_per_tick / operations.max(1.0);
        let total = after.machine_total.saturating_sub(before.machine_total);
        let busy = after.machine_busy.saturating_sub(before.machine_busy);
        let group_ms_per_op = Group::ALL
            .into_iter()
            .map(|group| {
                let spent = after
                    .groups
                    .get(&group)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(before.groups.get(&group).copied().unwrap_or(0));
                (group, per_op(spent))
            })
            .collect();
        Cost {
            cores: cores(),
            busy_share: if total == 0 { 0.0 } else { busy as f64 / total as f64 },
            machine_ms_per_op: per_op(busy),
            group_ms_per_op,
        }
    }

    /// The machine's busy time the groups do not account for: the kernel's
    /// interrupt work (much of loopback networking) and other processes.
    pub fn other_ms_per_op(&self) -> f64 {
        (self.machine_ms_per_op - self.group_ms_per_op.values().sum::<f64>()).max(0.0)
    }

    /// Operations per second this machine gives at this cost with every core busy.
    pub fn most_per_second(&self) -> f64 {
        if self.machine_ms_per_op <= 0.0 { 0.0 } else { self.cores * 1000.0 / self.machine_ms_per_op }
    }
}

/// (busy, total) ticks of all cores, from `/proc/stat`'s first line:
/// user nice system idle iowait irq softirq steal.
fn machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).take(8).filter_map(|field| field.parse().ok()).collect();
    if fields.len() < 8 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    let idle = fields[3] + fields[4];
    Some((total - idle, total))
}

struct Process {
    pid: u32,
    parent: u32,
    command: String,
    /// utime + stime
    own: u64,
    /// cutime + cstime: its children that ended and were waited for.
    reaped_children: u64,
}

/// Fields of `/proc/<pid>/stat`; the command may hold spaces and
/// parentheses, so the fields are counted after its last `)`.
fn parse_process(stat: &str) -> Option<Process> {
    let (start, end) = (stat.find('(')?, stat.rfind(')')?);
    let command = stat.get(start + 1..end)?.to_owned();
    // pid(1) before "(", after ")": state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
    let pid = stat.get(..start)?.trim().parse().ok()?;
    let fields: Vec<&str> = stat.get(end + 1..)?.split_whitespace().collect();
    let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
    Some(Process {
        pid,
        parent: u32::try_from(field(4)?).ok()?,
        command,
        own: field(14)? + field(15)?,
        reaped_children: field(16)? + field(17)?,
    })
}

/// Whose a `postgres` process is: the throwaway cluster's primary or replica
/// when it is that server's postmaster or one of its children, else the
/// system's Postgres.
fn postgres_group(process: &Process, postmasters: &[(Group, u32)]) -> Group {
    postmasters
        .iter()
        .find(|(_, postmaster)| process.pid == *postmaster || process.parent == *postmaster)
        .map_or(Group::Postgres, |(group, _)| *group)
}

/// The processes whose command line holds `text` now (a backend's shows
/// its database's name).
pub fn processes_holding(text: &str) -> Vec<u32> {
    process_ids()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| line.windows(text.len()).any(|window| window == text.as_bytes()))
        })
        .collect()
}

/// Whether `pid` is still there, a zombie not yet reaped included.
pub fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn read_process(pid: u32) -> Option<Process> {
    parse_process(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The processes below `pid` (a service's workers), now.
pub fn descendants_of(pid: u32) -> Vec<u32> {
    let processes: Vec<Process> = all_processes().collect();
    with_descendants(&processes, pid).iter().map(|process| process.pid).filter(|&below| below != pid).collect()
}

/// The process `root` and every process below it, of `processes`.
fn with_descendants(processes: &[Process], root: u32) -> Vec<&Process> {
    let mut tree: Vec<&Process> = processes.iter().filter(|process| process.pid == root).collect();
    let mut next = 0;
    while let Some(parent) = tree.get(next).map(|process| process.pid) {
        tree.extend(processes.iter().filter(|process| process.parent == parent && process.pid != parent));
        next += 1;
    }
    tree
}

fn all_processes() -> impl Iterator<Item = Process> {
    process_ids().filter_map(read_process)
}

fn process_ids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
}

/// User + system time of this process's children that ended and were
/// waited for, in clock ticks.
fn reaped_children_of_self() -> anyhow::Result<u64> {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        anyhow::bail!("getrusage(RUSAGE_CHILDREN) failed: {}", std::io::Error::last_os_error());
    }
    let micros = |time: libc::timeval| time.tv_sec as f64 * 1e6 + time.tv_usec as f64;
    let seconds = (micros(usage.ru_utime) + micros(usage.ru_stime)) / 1e6;
    Ok((seconds * clock_ticks_per_second()).round() as u64)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, usize::from) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_line_splits_busy_from_idle() {
        let stat = "cpu  100 5 50 1000 20 3 7 2 0 0\ncpu0 50 2 25 500 10 1 3 1 0 0\n";
        assert_eq!(machine_ticks(stat), Some((167, 1187)));
        assert_eq!(machine_ticks("intr 1 2 3\n"), None);
    }

    #[test]
    fn a_process_line_is_read_after_its_command() {
        let stat = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 900 0 0 0 731 204 55 12 20 0 9 0 123 0 0";
        let process = parse_process(stat).unwrap();
        assert_eq!((process.pid, process.parent), (4242, 1));
        assert_eq!(process.command, "tokio (rt) 1");
        assert_eq!((process.own, process.reaped_children), (731 + 204, 55 + 12));
        assert!(parse_process("4242 (cut").is_none());
    }

    #[test]
    fn postgres_processes_are_split_by_postmaster() {
        let postmasters = [(Group::Primary, 500), (Group::Replica, 600)];
        let process = |line: &str| parse_process(line).unwrap();
        let stat = |pid: u32, parent: u32| format!("{pid} (postgres) S {parent} {pid} {pid} 0 -1 0 0 0 0 0 7 3 40 2");
        assert_eq!(postgres_group(&process(&stat(500, 1)), &postmasters), Group::Primary, "the postmaster");
        assert_eq!(postgres_group(&process(&stat(501, 500)), &postmasters), Group::Primary, "a backend");
        assert_eq!(postgres_group(&process(&stat(601, 600)), &postmasters), Group::Replica, "the walreceiver");
        assert_eq!(postgres_group(&process(&stat(90, 1)), &postmasters), Group::Postgres, "the system's postmaster");
        assert_eq!(postgres_group(&process(&stat(91, 90)), &postmasters), Group::Postgres, "one of its backends");
        assert_eq!(postgres_group(&process(&stat(501, 500)), &[]), Group::Postgres, "no throwaway cluster");
    }

    #[test]
    fn a_service_is_its_process_and_those_below_it() {
        let process = |pid, parent| Process { pid, parent, command: "uvicorn".into(), own: 0, reaped_children: 0 };
        // A master (10) with two workers (11, 12), one with a child of its own (13); 20 is not below it.
        let processes =
            [process(1, 0), process(10, 1), process(11, 10), process(12, 10), process(13, 12), process(20, 1)];
        let mut tree: Vec<u32> = with_descendants(&processes, 10).iter().map(|process| process.pid).collect();
        tree.sort_unstable();
        assert_eq!(tree, [10, 11, 12, 13]);
        assert!(with_descendants(&processes, 99).is_empty(), "a process that ended has nothing below it");
    }

    #[test]
    fn this_process_and_its_children_are_measured() {
        let before = Sample::take(&[("api", std::process::id())], &[]).unwrap();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let after = Sample::take(&[("api", std::process::id())], &[]).unwrap();
        let cost = Cost::between(&before, &after, 1.0);
        assert!(cost.group_ms_per_op[&Group::LoadGenerator] > 0.0, "the reaped child's time: {cost:?}");
        assert!(cost.machine_ms_per_op >= cost.group_ms_per_op[&Group::LoadGenerator] * 0.5, "{cost:?}");
        assert!((0.0..=1.0).contains(&cost.busy_share));
    }
}
