//! The nemesis: one fault at a time, chosen by the seed, on the execution side's
//! processes (a books_db or executor replica, leader or not, the queue, payment),
//! each healed before the next: `kill -9` and a restart on the same data (which
//! must come back: its port must answer again), SIGSTOP then SIGCONT (a paused
//! leader wakes up still believing it leads), and a network partition of one
//! process (its own cgroup v2, whose packets iptables drops) where the host
//! allows it, which [`Partitions::probe`] finds out and says.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::processes::Signal;
use testkit::shop::Shop;
use tokio::time::Instant;

/// splitmix64: the schedule's one source of chance, from the seed.
pub struct Chance(pub u64);

impl Chance {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high - low + 1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    BooksDb(u64),
    Executor(u64),
    Queue,
    Payment,
}

impl Target {
    /// The process's kind, without its replica id.
    pub fn group(self) -> &'static str {
        match self {
            Self::BooksDb(_) => "books_db",
            Self::Executor(_) => "order_executor",
            Self::Queue => "order_queue",
            Self::Payment => "payment",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BooksDb(id) => write!(f, "books_db-{id}"),
            Self::Executor(id) => write!(f, "order_executor-{id}"),
            Self::Queue => f.write_str("order_queue"),
            Self::Payment => f.write_str("payment"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Kill,
    Pause,
    Partition,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kill => "kill -9",
            Self::Pause => "SIGSTOP",
            Self::Partition => "partition",
        })
    }
}

/// One fault as it happened, in time since the run began.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Kind,
    pub target: Target,
    /// Whether the target led its Raft group when it was chosen.
    pub leader: bool,
    pub began: Duration,
    pub healed: Duration,
    /// A killed process that did not answer on its port again within the bound.
    pub not_back: bool,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let leader = if self.leader { " (leader)" } else { "" };
        write!(
            f,
            "{:>7.2}–{:>7.2} s  {} {}{leader}",
            self.began.as_secs_f64(),
            self.healed.as_secs_f64(),
            self.kind,
            self.target
        )
    }
}

/// How long a killed process has to answer on its port again.
const BACK_WITHIN: Duration = Duration::from_secs(20);

pub struct Nemesis {
    chance: Chance,
    origin: Instant,
    partitions: Result<Partitions, String>,
}

impl Nemesis {
    /// `partitions`: [`Partitions::probe`]'s answer; the shop's processes must
    /// run in the cgroups it names.
    pub fn new(seed: u64, origin: Instant, partitions: Result<Partitions, String>) -> Self {
        Self { chance: Chance(seed ^ 0x006E_656D_6573_6973), origin, partitions }
    }

    /// Whether partitions run here, or why not.
    pub fn partitions(&self) -> Result<(), &str> {
        self.partitions.as_ref().map(drop).map_err(String::as_str)
    }

    /// Breaks something, waits, heals it; answers what it did.
    pub async fn strike(&mut self, shop: &mut Shop) -> Fault {
        tokio::time::sleep(self.chance.millis(300, 1_000)).await;
        let kinds: &[Kind] = match self.partitions {
            Ok(_) => &[Kind::Kill, Kind::Pause, Kind::Partition],
            Err(_) => &[Kind::Kill, Kind::Pause],
        };
        let kind = kinds[self.chance.below(kinds.len() as u64) as usize];
        let (target, leader) = self.target(shop).await;
        let began = self.origin.elapsed();
        let mut not_back = false;
        match kind {
            Kind::Kill => {
                kill(shop, target);
                tokio::time::sleep(self.chance.millis(200, 1_000)).await;
                restart(shop, target);
                not_back = !answers(port(shop, target), BACK_WITHIN).await;
            }
            Kind::Pause => {
                process(shop, target).signal(Signal::Pause);
                tokio::time::sleep(self.chance.millis(500, 5_000)).await;
                process(shop, target).signal(Signal::Resume);
            }
            Kind::Partition => {
                let partitions = self.partitions.as_ref().expect("chosen only where they run");
                let cut = partitions.cut(process(shop, target));
                tokio::time::sleep(self.chance.millis(1_000, 5_000)).await;
                drop(cut);
            }
        }
        Fault { kind, target, leader, began, healed: self.origin.elapsed(), not_back }
    }

    /// One of the four kinds of process, each as likely: the queue, payment, or
    /// a replica of books_db or of the executors, half the time its group's
    /// leader (if one answers within a second), else any of the three.
    async fn target(&mut self, shop: &Shop) -> (Target, bool) {
        let (ports, make): (_, fn(u64) -> Target) = match self.chance.below(4) {
            0 => return (Target::Queue, false),
            1 => return (Target::Payment, false),
            2 => (&shop.side.books_db.ports, Target::BooksDb),
            _ => (&shop.side.executors.ports, Target::Executor),
        };
        if self.chance.below(2) == 0 {
            let urls = ports.iter().map(|(id, port)| (*id, testkit::processes::url(*port)));
            let leader = tokio::time::timeout(Duration::from_secs(1), testkit::probe::leader(urls)).await;
            if let Ok(Some(id)) = leader {
                return (make(id), true);
            }
        }
        (make(1 + self.chance.below(3)), false)
    }
}

fn process(shop: &Shop, target: Target) -> &testkit::processes::Process {
    match target {
        Target::BooksDb(id) => shop.side.books_db.replica(id),
        Target::Executor(id) => shop.side.executors.replica(id),
        Target::Queue => &shop.side.queue,
        Target::Payment => &shop.side.payment,
    }
}

fn kill(shop: &mut Shop, target: Target) {
    match target {
        Target::BooksDb(id) => shop.side.books_db.kill(id),
        Target::Executor(id) => shop.side.executors.kill(id),
        Target::Queue => shop.side.queue.kill(),
        Target::Payment => shop.side.payment.kill(),
    }
}

fn restart(shop: &mut Shop, target: Target) {
    match target {
        Target::BooksDb(id) => shop.side.books_db.restart(id),
        Target::Executor(id) => shop.side.executors.restart(id),
        Target::Queue => shop.side.queue.restart(),
        Target::Payment => shop.side.payment.restart(),
    }
}

fn port(shop: &Shop, target: Target) -> u16 {
    let from_url = |url: String| url.rsplit(':').next().and_then(|port| port.parse().ok()).expect("a port");
    match target {
        Target::BooksDb(id) => shop.side.books_db.ports[&id],
        Target::Executor(id) => shop.side.executors.ports[&id],
        Target::Queue => from_url(shop.side.queue_url()),
        Target::Payment => from_url(shop.side.payment_url()),
    }
}

/// Whether something accepts connections on `port` within `bound`.
async fn answers(port: u16, bound: Duration) -> bool {
    let until = Instant::now() + bound;
    while Instant::now() < until {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Network partitions of one process: it runs in a cgroup v2 of its own from its
/// start (`Setup::cgroups`, [`Partitions::prefix`]), and iptables drops every
/// packet its sockets send or receive while it is cut off.
pub struct Partitions {
    /// Where cgroup v2 is mounted.
    root: PathBuf,
    /// Tells apart the shops of tests running at once in this process.
    run: u32,
}

impl Partitions {
    /// Partitions if this host can make them (root, cgroup v2, iptables' cgroup
    /// match), else why not.
    pub fn probe() -> Result<Self, String> {
        let mounts = std::fs::read_to_string("/proc/mounts").map_err(|e| format!("/proc/mounts: {e}"))?;
        let root = mounts
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(fields[1]))
            })
            .next()
            .ok_or("no cgroup v2 is mounted")?;
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let partitions = Self { root, run: RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) };
        partitions.sweep();
        let mut probe = partitions.prefix().into_os_string();
        probe.push("-probe");
        let probe = PathBuf::from(probe);
        std::fs::create_dir_all(&probe).map_err(|e| format!("cannot make a cgroup in {}: {e}", probe.display()))?;
        let rule = partitions.rules(&probe, "-I");
        if rule.is_ok() {
            partitions.rules(&probe, "-D").map_err(|e| format!("iptables: {e}"))?;
        }
        let _ = std::fs::remove_dir(&probe);
        rule.map_err(|e| format!("iptables cannot match a cgroup: {e}"))?;
        Ok(partitions)
    }

    /// The processes to partition run in cgroups `<this>-<name>`: named after this
    /// test process, so [`Partitions::sweep`] can tell a run that is gone, and
    /// after this probe, so two tests running at once never share one.
    pub fn prefix(&self) -> PathBuf {
        self.root.join(format!("bookstore-chaos-{}-{}", std::process::id(), self.run))
    }

    /// Deletes the rules a run that is gone left behind (killed mid-partition),
    /// and their empty cgroups; a run still going keeps its own.
    fn sweep(&self) {
        // `bookstore-chaos-<pid>-…` of a process that no longer runs.
        let stale = |text: &str| {
            text.split("bookstore-chaos-")
                .nth(1)
                .and_then(|rest| rest.split('-').next())
                .is_some_and(|pid| pid.parse::<u32>().is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()))
        };
        for chain in ["OUTPUT", "INPUT"] {
            let Ok(listed) = Command::new("iptables").args(["-S", chain]).output() else { return };
            for rule in String::from_utf8_lossy(&listed.stdout).lines().filter(|rule| stale(rule)) {
                let deletion: Vec<&str> = rule.trim_start_matches("-A ").split_whitespace().collect();
                let _ = Command::new("iptables").arg("-D").args(&deletion).output();
            }
        }
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for entry in entries.flatten() {
                if stale(&entry.file_name().to_string_lossy()) {
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
    }

    /// Inserts (`-I`) or deletes (`-D`) the rules that cut the cgroup `cgroup` off.
    fn rules(&self, cgroup: &Path, action: &str) -> Result<(), String> {
        let path = cgroup
            .strip_prefix(&self.root)
            .map_err(|_| format!("{} is not under {}", cgroup.display(), self.root.display()))?;
        let path = path.to_string_lossy();
        for chain in ["OUTPUT", "INPUT"] {
            let status = Command::new("iptables")
                .args([action, chain, "-m", "cgroup", "--path", &path, "-j", "DROP"])
                .output()
                .map_err(|e| format!("iptables: {e}"))?;
            if !status.status.success() {
                return Err(String::from_utf8_lossy(&status.stderr).trim().to_owned());
            }
        }
        Ok(())
    }

    /// Cuts `process` (started in a cgroup of its own) off until the answer is
    /// dropped.
    pub fn cut<'a>(&'a self, process: &testkit::processes::Process) -> Cut<'a> {
        let cgroup = process.cgroup().expect("a process to partition runs in a cgroup of its own").to_owned();
        self.rules(&cgroup, "-I").expect("the rules that cut it off");
        Cut { partitions: self, cgroup }
    }
}

/// A partition in force; dropping it heals it.
pub struct Cut<'a> {
    partitions: &'a Partitions,
    cgroup: PathBuf,
}

impl Drop for Cut<'_> {
    fn drop(&mut self) {
        let _ = self.partitions.rules(&self.cgroup, "-D");
    }
}
