//! A real, throwaway PostgreSQL cluster for tests: `initdb` into a fresh temporary directory,
//! a postmaster listening on 127.0.0.1 at a free port, gone when the handle drops.
//!
//! Invariants:
//! - Never a mock: the server is the `postgres` binary of the installed distribution (Debian's
//!   `/usr/lib/postgresql/<version>/bin`, the newest version found, or `GRAPHJIT_PG_BINDIR`, or
//!   `initdb` on `PATH`). When none is installed, [`TestPostgres::start`] fails with the
//!   command that installs it ([`INSTALL_HINT`]); nothing is skipped silently.
//! - Reachable from this machine only: TCP on 127.0.0.1 and a unix socket inside the cluster's
//!   own directory; `pg_hba.conf` trusts exactly those two and nothing else.
//! - Clusters never share state: each has its own directory, port and postmaster, so tests may
//!   start several at once. A port taken between choosing it and binding it is retried.
//! - Running as root, the cluster belongs to the unprivileged system user [`TEST_USER`]
//!   (created with `useradd --system` when absent): PostgreSQL refuses to run as root. The
//!   child processes drop to that user through `Command::uid`/`gid`, so the process we hold is
//!   the postmaster itself and `kill` reaches it, not a wrapper.
//! - Dropping the handle stops the postmaster (fast shutdown, SIGKILL after a grace period)
//!   and removes the directory. A test process killed outright can leave a postmaster behind;
//!   it holds only a temporary directory and a loopback port.
//! - Durability is off (`fsync`, `synchronous_commit`, `full_page_writes`): a test cluster
//!   trades crash safety for start-up and commit speed, and is never reused.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The command that installs PostgreSQL on Debian (what `scripts/test` runs on CI).
pub const INSTALL_HINT: &str = "apt-get update && apt-get install -y postgresql";

/// The system user that owns test clusters when the tests run as root.
pub const TEST_USER: &str = "graphjit-test";

/// The superuser role `initdb` creates, and the role [`TestPostgres::url`] connects as.
const SUPERUSER: &str = "postgres";

/// How long a postmaster may take to accept connections. Start-up is ~0.2 s on an idle
/// machine; the margin covers a loaded CI box with several clusters starting at once.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a fast shutdown may take before the postmaster is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a start is retried when the chosen port was taken by someone else.
const PORT_ATTEMPTS: usize = 5;

/// How long a restart after [`TestPostgres::kill`] waits for the old backends to exit (they
/// notice the postmaster's death within milliseconds, but still hold its shared memory).
const RESTART_TIMEOUT: Duration = Duration::from_secs(15);

/// A running throwaway cluster. See the module docs for its guarantees.
#[derive(Debug)]
pub struct TestPostgres {
    /// Removed on drop (after the postmaster has stopped).
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    /// `None` after `stop` or `kill`.
    postmaster: Option<Child>,
}

/// The unprivileged user the cluster's processes run as.
#[derive(Clone, Copy, Debug)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl TestPostgres {
    /// Creates a cluster in a new temporary directory and starts it on a free loopback port;
    /// returns once it accepts connections. Takes about a second (`initdb` is most of it).
    pub fn start() -> Result<TestPostgres, String> {
        let bin = find_bindir()?;
        let run_as = if running_as_root() {
            Some(ensure_test_user()?)
        } else {
            None
        };
        let parent = if run_as.is_some() {
            // Root's TMPDIR may sit under /root, which the test user cannot traverse.
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("graphjit-pg-")
            .tempdir_in(&parent)
            .map_err(|e| {
                format!(
                    "cannot create a temporary directory in {}: {e}",
                    parent.display()
                )
            })?;
        let socket_dir = dir.path().join("socket");
        fs::create_dir(&socket_dir)
            .map_err(|e| format!("cannot create {}: {e}", socket_dir.display()))?;
        if let Some(user) = run_as {
            for path in [dir.path(), socket_dir.as_path()] {
                std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                    .map_err(|e| format!("cannot give {} to {TEST_USER}: {e}", path.display()))?;
            }
        }
        let mut cluster = TestPostgres {
            dir,
            bin,
            run_as,
            port: 0,
            postmaster: None,
        };
        cluster.initdb()?;
        cluster.start_on_free_port()?;
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication, no password).
    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The loopback TCP port the cluster listens on (kept across [`TestPostgres::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data, socket and server log inside it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log so far: what to print when a test fails.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether the postmaster is still running.
    pub fn is_running(&mut self) -> bool {
        match self.postmaster.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Fast shutdown (SIGINT: open transactions roll back, clients are disconnected), waiting
    /// until the postmaster has exited; SIGKILL if it takes longer than 10 s.
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.postmaster.take() else {
            return Ok(());
        };
        if let Ok(Some(_)) = child.try_wait() {
            return Ok(());
        }
        let signalled = Command::new("kill")
            .args(["-s", "INT", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if signalled.is_ok_and(|s| s.success()) && wait_for_exit(&mut child, STOP_TIMEOUT) {
            return Ok(());
        }
        // The signal failed or the shutdown hung: kill it rather than leak it.
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "PostgreSQL did not stop within {STOP_TIMEOUT:?}; killed it\n{}",
            self.log()
        ))
    }

    /// SIGKILLs the postmaster, as a crash would (for fault tests). Its backends notice and exit
    /// on their own; clients see their connections drop.
    pub fn kill(&mut self) -> Result<(), String> {
        let Some(mut child) = self.postmaster.take() else {
            return Ok(());
        };
        match child.kill() {
            // Already exited: nothing to kill.
            Err(e) if e.kind() == ErrorKind::InvalidInput => {}
            Err(e) => return Err(format!("cannot kill the postmaster: {e}")),
            Ok(()) => {}
        }
        child
            .wait()
            .map(drop)
            .map_err(|e| format!("cannot reap the postmaster: {e}"))
    }

    /// Starts the cluster again on the same directory and port (stopping it first if it runs).
    /// After [`TestPostgres::kill`] this is crash recovery: it retries until the old backends
    /// are gone and the server accepts connections.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop()?;
        let deadline = Instant::now() + RESTART_TIMEOUT;
        loop {
            match self.spawn_postmaster() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A command for one of the cluster's binaries, dropped to the test user when root.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command
            .current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        if let Some(user) = self.run_as {
            // std also clears the supplementary groups when root changes uid.
            command.uid(user.uid).gid(user.gid);
        }
        command
    }

    fn initdb(&self) -> Result<(), String> {
        let data = self.data_dir();
        let output = self
            .command("initdb")
            .arg("--pgdata")
            .arg(&data)
            .args([
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
            ])
            .args(["--locale", "C", "--no-sync"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.join("initdb").display()))?;
        if !output.status.success() {
            return Err(format!(
                "initdb failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        // Loopback only: the unix socket and 127.0.0.1, nothing else (no `host all all all`).
        let hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n";
        let hba_path = data.join("pg_hba.conf");
        fs::write(&hba_path, hba).map_err(|e| format!("cannot write {}: {e}", hba_path.display()))
    }

    fn start_on_free_port(&mut self) -> Result<(), String> {
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            self.port = free_port()?;
            match self.spawn_postmaster() {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
            if !self.log().contains("could not bind") && !self.log().contains("could not create") {
                break;
            }
        }
        Err(last_error)
    }

    /// Spawns the postmaster on `self.port` and waits until it is ready.
    fn spawn_postmaster(&mut self) -> Result<(), String> {
        let log = File::create(self.log_path())
            .map_err(|e| format!("cannot create {}: {e}", self.log_path().display()))?;
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string()])
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.socket_dir().display()
            ))
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "shared_buffers=16MB"])
            .args([
                "-c",
                "max_connections=60",
                "-c",
                "max_wal_senders=0",
                "-c",
                "wal_level=minimal",
            ])
            .args([
                "-c",
                "logging_collector=off",
                "-c",
                "log_min_messages=warning",
            ])
            .stdout(Stdio::null())
            .stderr(log);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.join("postgres").display()))?;
        self.postmaster = Some(child);
        match self.wait_until_ready() {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Some(mut child) = self.postmaster.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(format!("{e}\nserver log:\n{}", self.log()))
            }
        }
    }

    /// Ready means `postmaster.pid` says `ready` (PostgreSQL ≥ 10 writes its state there once
    /// it accepts connections) and the port answers.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let pid_file = self.data_dir().join("postmaster.pid");
        loop {
            if let Some(child) = self.postmaster.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        return Err(format!("PostgreSQL exited during start-up ({status})"));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(format!("cannot watch the postmaster: {e}")),
                }
            }
            let ready = fs::read_to_string(&pid_file).is_ok_and(|text| {
                text.lines()
                    .nth(7)
                    .is_some_and(|status| status.trim() == "ready")
            });
            if ready && TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "PostgreSQL did not become ready within {READY_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Waits up to `timeout` for `child` to exit; false if it is still running.
fn wait_for_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => return false,
        }
    }
}

/// A loopback port that was free a moment ago (the caller retries if it is taken meanwhile).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot read the bound port: {e}"))
}

/// The directory holding `initdb` and `postgres`: `GRAPHJIT_PG_BINDIR`, else Debian's layout,
/// else `PATH`.
fn find_bindir() -> Result<PathBuf, String> {
    find_bindir_in(
        std::env::var_os("GRAPHJIT_PG_BINDIR").map(PathBuf::from),
        Path::new("/usr/lib/postgresql"),
        std::env::var_os("PATH"),
    )
}

fn find_bindir_in(
    override_dir: Option<PathBuf>,
    debian_root: &Path,
    path_var: Option<std::ffi::OsString>,
) -> Result<PathBuf, String> {
    let has_binaries = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = override_dir {
        if has_binaries(&dir) {
            return Ok(dir);
        }
        return Err(format!(
            "GRAPHJIT_PG_BINDIR={} holds no initdb and postgres; unset it, or install \
             PostgreSQL with: {INSTALL_HINT}",
            dir.display()
        ));
    }
    // Debian and Ubuntu: /usr/lib/postgresql/<major>/bin, not on PATH. Newest major wins.
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(debian_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_binaries(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    // Elsewhere (Fedora, Homebrew, a source build): initdb on PATH.
    let on_path: Vec<PathBuf> = path_var
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    if let Some(dir) = on_path.into_iter().find(|dir| has_binaries(dir)) {
        return Ok(dir);
    }
    Err(format!(
        "PostgreSQL is not installed: no initdb and postgres under {}/*/bin or on PATH. The \
         database tests need a real server; install it with: {INSTALL_HINT} (scripts/test does \
         this on CI), or point GRAPHJIT_PG_BINDIR at its bin directory",
        debian_root.display()
    ))
}

fn running_as_root() -> bool {
    // The owner of /proc/self is this process's effective uid.
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// The uid and gid of [`TEST_USER`], creating it (a system user, no home, no shell) if absent.
fn ensure_test_user() -> Result<RunAs, String> {
    // One `useradd` per process; other processes racing us are handled by looking again.
    static CREATING: Mutex<()> = Mutex::new(());
    let _guard = CREATING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(user) = lookup_user(TEST_USER) {
        return Ok(user);
    }
    let created = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
        ])
        .args(["--shell", "/usr/sbin/nologin", TEST_USER])
        .output();
    if let Some(user) = lookup_user(TEST_USER) {
        return Ok(user);
    }
    let why = match created {
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_string(),
        Err(e) => e.to_string(),
    };
    Err(format!(
        "PostgreSQL refuses to run as root, and the system user {TEST_USER} could not be \
         created with useradd ({why}); create it, or run the tests as an unprivileged user"
    ))
}

fn lookup_user(name: &str) -> Option<RunAs> {
    let id = |flag: &str| -> Option<u32> {
        let output = Command::new("id")
            .args([flag, name])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    };
    Some(RunAs {
        uid: id("-u")?,
        gid: id("-g")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> TestPostgres {
        match TestPostgres::start() {
            Ok(cluster) => cluster,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn starts_on_loopback_and_cleans_up_on_drop() {
        let started = Instant::now();
        let mut cluster = start();
        eprintln!("cluster start: {:?}", started.elapsed());
        assert!(cluster.is_running());
        assert!(cluster.url().starts_with("postgres://postgres@127.0.0.1:"));
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, cluster.port())).is_ok());
        let dir = cluster.dir().to_path_buf();
        let port = cluster.port();
        drop(cluster);
        assert!(!dir.exists(), "the cluster's directory outlived it");
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    }

    #[test]
    fn concurrent_clusters_get_their_own_ports_and_directories() {
        let handles: Vec<_> = (0..3)
            .map(|_| std::thread::spawn(TestPostgres::start))
            .collect();
        let clusters: Vec<TestPostgres> = handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(Ok(cluster)) => cluster,
                Ok(Err(e)) => panic!("{e}"),
                Err(_) => panic!("a start panicked"),
            })
            .collect();
        let ports: std::collections::BTreeSet<u16> = clusters.iter().map(|c| c.port()).collect();
        let dirs: std::collections::BTreeSet<&Path> = clusters.iter().map(|c| c.dir()).collect();
        assert_eq!(ports.len(), 3);
        assert_eq!(dirs.len(), 3);
    }

    #[test]
    fn a_missing_installation_names_the_install_command() {
        let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let error = find_bindir_in(None, empty.path(), Some(empty.path().as_os_str().into()))
            .err()
            .unwrap_or_else(|| panic!("found PostgreSQL in an empty directory"));
        assert!(error.contains(INSTALL_HINT), "{error}");
        let error = find_bindir_in(Some(empty.path().to_path_buf()), empty.path(), None)
            .err()
            .unwrap_or_else(|| panic!("accepted an empty GRAPHJIT_PG_BINDIR"));
        assert!(error.contains(INSTALL_HINT), "{error}");
    }

    #[test]
    fn stop_kill_and_restart() {
        let mut cluster = start();
        cluster.stop().unwrap_or_else(|e| panic!("{e}"));
        assert!(!cluster.is_running());
        cluster.restart().unwrap_or_else(|e| panic!("{e}"));
        assert!(cluster.is_running());
        cluster.kill().unwrap_or_else(|e| panic!("{e}"));
        assert!(!cluster.is_running());
        cluster.restart().unwrap_or_else(|e| panic!("{e}"));
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, cluster.port())).is_ok());
    }
}
