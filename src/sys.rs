//! The system calls the workflow needs, in one bottom module: whether a recorded process is
//! still the one that was recorded (pid plus start time, so a recycled pid does not keep a dead
//! run alive), signals to a process or a whole process group, and the interrupt handlers
//! (SIGINT, SIGTERM, SIGHUP) that only raise a flag the long-running loops check at safe points.
//!
//! Process start times are Linux's: field 22 of `/proc/<pid>/stat`, in clock ticks since boot.
//! Elsewhere there is no start time and a pid alone decides, as before.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// An interrupt `implement`, `postflight` and `demo` handle by stopping cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGINT (Ctrl-C): exit 130.
    Int,
    /// SIGTERM: exit 143.
    Term,
    /// SIGHUP (the terminal went away): exit 129.
    Hup,
}

impl Interrupt {
    /// `SIGINT`, `SIGTERM`, `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            Interrupt::Int => "SIGINT",
            Interrupt::Term => "SIGTERM",
            Interrupt::Hup => "SIGHUP",
        }
    }

    /// The conventional exit status of a process that stopped on this signal: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Interrupt::Int => 130,
            Interrupt::Term => 143,
            Interrupt::Hup => 129,
        }
    }

    fn number(self) -> i32 {
        match self {
            Interrupt::Int => libc::SIGINT,
            Interrupt::Term => libc::SIGTERM,
            Interrupt::Hup => libc::SIGHUP,
        }
    }

    fn from_number(n: i32) -> Option<Interrupt> {
        [Interrupt::Int, Interrupt::Term, Interrupt::Hup].into_iter().find(|i| i.raw() == n)
    }

    fn raw(self) -> i32 {
        {
            self.number()
        }
    }
}

impl std::fmt::Display for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The first interrupt received (its signal number), 0 for none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_interrupt(sig: libc::c_int) {
    // Only an atomic store, which is async-signal-safe. The first signal wins; the process
    // stops at its next safe point, never inside the handler.
    let _ = RECEIVED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// Installs the handlers of SIGINT, SIGTERM and SIGHUP, which only record the signal (see
/// [`interrupted`]). A signal the process was started ignoring (`nohup`, a background job) stays
/// ignored. Call once, early, from the command line of a command that runs an agent or writes
/// the ledger at length.
///
/// # Errors
/// `sigaction` fails (it does not for these signals).
pub fn install_interrupt_handlers() -> std::io::Result<()> {
    for sig in [Interrupt::Int, Interrupt::Term, Interrupt::Hup] {
        let sig = sig.number();
        // SAFETY: `sigaction` is given valid pointers to a zero-initialised `struct sigaction`
        // (all-zero is a valid value of it) that lives across the call, and a null or valid
        // pointer for the old action. The handler installed only stores into an atomic, which
        // is async-signal-safe, and `SA_RESTART` keeps interrupted system calls (file writes of
        // a ledger transaction, waits) restarting instead of failing with EINTR.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if old.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The interrupt received since the handlers were installed, if any.
pub fn interrupted() -> Option<Interrupt> {
    Interrupt::from_number(RECEIVED.load(Ordering::SeqCst))
}

/// The pid as a kill(2) target: a positive number above 1 (never 0, which means the caller's
/// own group, nor 1, nor anything that would turn negative).
fn target(pid: u32) -> Option<rustix::process::Pid> {
    let raw = i32::try_from(pid).ok().filter(|p| *p > 1)?;
    rustix::process::Pid::from_raw(raw)
}

/// What `/proc/<pid>/stat` says about a process (Linux; the parser is tested everywhere).
#[cfg(any(target_os = "linux", test))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    /// Field 3: `R`, `S`, `Z` (zombie), ...
    state: u8,
    /// Field 5: the process group.
    pgrp: u32,
    /// Field 22: the start time, in clock ticks since boot.
    start: u64,
}

#[cfg(target_os = "linux")]
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so the fields are counted from the last `)`.
#[cfg(any(target_os = "linux", test))]
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // `rest` starts at field 3.
    Some(ProcStat {
        state: *fields.first()?.as_bytes().first()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(target_os = "linux")]
fn gone(st: &ProcStat) -> bool {
    // A zombie has exited and only waits to be reaped; `X` is a dead task being removed.
    matches!(st.state, b'Z' | b'X')
}

/// The start time of process `pid`, in clock ticks since boot (Linux: field 22 of
/// `/proc/<pid>/stat`); `None` where there is no such thing or the process does not exist.
pub fn start_time(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        proc_stat(pid).map(|s| s.start)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// The start time of this process (see [`start_time`]).
pub fn own_start_time() -> Option<u64> {
    start_time(std::process::id())
}

/// Whether process `pid` exists (Unix `kill(pid, 0)`, a permission error meaning it does).
fn exists(pid: u32) -> bool {
    let Some(p) = target(pid) else { return false };
    match rustix::process::test_kill_process(p) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Whether the process recorded as `pid` with start time `start` is still running.
///
/// With a start time (Linux), the process must exist, not be a zombie, and have started at
/// exactly that tick: a recycled pid is another process and counts as dead. Without one (a
/// legacy record, or a system without start times) only the pid's existence decides.
pub fn process_alive(pid: u32, start: Option<u64>) -> bool {
    {
        if !exists(pid) {
            return false;
        }
        let Some(start) = start else { return true };
        #[cfg(target_os = "linux")]
        {
            match proc_stat(pid) {
                Some(st) => !gone(&st) && st.start == start,
                // Exists but /proc cannot tell (not mounted, hidden): trust the pid, as before.
                None => true,
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = start;
            true
        }
    }
}

/// Whether the process group `pgid`, whose leader started at `leader_start`, still has a member
/// that runs (zombies do not count).
///
/// Linux: when a process numbered `pgid` runs but started at another time, the number was
/// recycled, and since a number is not reused while a group of that number exists, the group is
/// gone. Otherwise the group lives while `/proc` shows a process of it that is not a zombie (the
/// leader may be gone while a background child it started runs on). Elsewhere, or without
/// `/proc`: `kill(-pgid, 0)`.
pub fn group_alive(pgid: u32, leader_start: Option<u64>) -> bool {
    {
        let Some(p) = target(pgid) else { return false };
        #[cfg(target_os = "linux")]
        {
            if let Some(leader) = proc_stat(pgid) {
                if leader.pgrp == pgid && !gone(&leader) && leader_start.is_none_or(|s| s == leader.start) {
                    return true;
                }
                if leader_start.is_some_and(|s| s != leader.start) {
                    return false;
                }
            }
            if let Some(found) = group_member_in_proc(pgid) {
                return found;
            }
        }
        let _ = leader_start;
        match rustix::process::test_kill_process_group(p) {
            Ok(()) => true,
            Err(e) => e == rustix::io::Errno::PERM,
        }
    }
}

/// Whether `/proc` lists a running (not zombie) process of group `pgid`; `None` when `/proc`
/// cannot be read.
#[cfg(target_os = "linux")]
fn group_member_in_proc(pgid: u32) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut any = false;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        any = true;
        if proc_stat(pid).is_some_and(|st| st.pgrp == pgid && !gone(&st)) {
            return Some(true);
        }
    }
    // An empty /proc is one that is not mounted.
    any.then_some(false)
}

/// A signal sent by [`signal_process`] and [`signal_group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// SIGTERM: asks the process to stop.
    Term,
    /// SIGKILL: stops it.
    Kill,
}

fn rustix_signal(sig: Kill) -> rustix::process::Signal {
    match sig {
        Kill::Term => rustix::process::Signal::TERM,
        Kill::Kill => rustix::process::Signal::KILL,
    }
}

/// Sends `sig` to process `pid` (never to pid 0 or 1). Whether it was delivered.
pub fn signal_process(pid: u32, sig: Kill) -> bool {
    {
        target(pid).is_some_and(|p| rustix::process::kill_process(p, rustix_signal(sig)).is_ok())
    }
}

/// Sends `sig` to every process of group `pgid` (kill(2) with `-pgid`; never group 0 or 1).
/// Whether any process received it.
pub fn signal_group(pgid: u32, sig: Kill) -> bool {
    {
        target(pgid).is_some_and(|p| rustix::process::kill_process_group(p, rustix_signal(sig)).is_ok())
    }
}

/// Waits up to `limit` for group `pgid` to have no running member; whether it is gone.
pub fn wait_group_gone(pgid: u32, leader_start: Option<u64>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !group_alive(pgid, leader_start) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits up to `limit` for the process recorded as (`pid`, `start`) to end; whether it has.
pub fn wait_process_gone(pid: u32, start: Option<u64>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !process_alive(pid, start) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` certainly started after `time` (Linux: its start time, converted to
/// wall-clock time with the boot clock). A record written at `time` by the process that has
/// `pid` now cannot be that process's when it started later: the pid was recycled. `false`
/// when it cannot be told (no start time, no such process), which keeps the pid-only answer.
pub fn started_after(pid: u32, time: SystemTime) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(ticks) = start_time(pid) else { return false };
        let hz = rustix::param::clock_ticks_per_second();
        if hz == 0 {
            return false;
        }
        let since_boot = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let (Ok(secs), Ok(nanos)) = (u64::try_from(since_boot.tv_sec), u32::try_from(since_boot.tv_nsec)) else {
            return false;
        };
        let Some(boot) = SystemTime::now().checked_sub(Duration::new(secs, nanos)) else { return false };
        let started = boot + Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz);
        // The start time is rounded down to a tick and file times lag by up to one: a margin
        // well above both.
        started > time + Duration::from_millis(50)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pid, time);
        false
    }
}

/// This process's process group.
pub fn own_process_group() -> u32 {
    {
        rustix::process::getpgrp().as_raw_nonzero().get().unsigned_abs()
    }
}

/// The local time zone's offset from UTC, in seconds, at `seconds` since the epoch (`TZ`, else
/// `/etc/localtime`, as the C library reads them); 0 when it cannot be told.
pub fn local_offset(seconds: i64) -> i32 {
    {
        // `time_t` is 64 bits wide on the systems supported; where it is not, out of range is 0.
        #[allow(irrefutable_let_patterns)]
        let Ok(t) = libc::time_t::try_from(seconds) else {
            return 0;
        };
        let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
        // SAFETY: localtime_r only writes the struct it is given, which lives until the end of
        // this block; a null return means it failed and the struct is not read.
        let ok = unsafe { !libc::localtime_r(&t, tm.as_mut_ptr()).is_null() };
        if ok {
            // SAFETY: localtime_r succeeded, so it filled the struct.
            return i32::try_from(unsafe { tm.assume_init() }.tm_gmtoff).unwrap_or(0);
        }
        0
    }
}

/// What one `stat` says of a file (the fields a change fingerprint needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatInfo {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Mode (type and permission bits).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// Status change time (seconds, nanoseconds).
    pub ctime: (i64, i64),
}

/// `fstatat(dir, path)`: `path` is relative to the open directory `dir` (or absolute) and must
/// end with a NUL byte and hold no other. Follows a final symlink unless `no_follow`. `None`
/// when the call fails or the path is not NUL-terminated.
pub fn stat_at(dir: &std::fs::File, path_nul: &[u8], no_follow: bool) -> Option<StatInfo> {
    use std::os::fd::AsRawFd;
    if path_nul.last() != Some(&0) || path_nul[..path_nul.len() - 1].contains(&0) {
        return None;
    }
    let flags = if no_follow { libc::AT_SYMLINK_NOFOLLOW } else { 0 };
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path_nul` is NUL-terminated (checked above) and `st` is valid for a `struct stat`
    // write; `st` is read only when fstatat reports success, that is, when it was written.
    let st = unsafe {
        if libc::fstatat(dir.as_raw_fd(), path_nul.as_ptr().cast(), st.as_mut_ptr(), flags) != 0 {
            return None;
        }
        st.assume_init()
    };
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Some(StatInfo {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        mode: st.st_mode as u32,
        size: st.st_size as u64,
        mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
    })
}

/// The type a directory entry reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// The file system did not say (`DT_UNKNOWN`): stat it.
    Unknown,
    /// Anything else (device, socket, fifo).
    Other,
}

/// Opens directory `dir` and lists its entries (without `.` and `..`) with the type each one
/// reports, through `getdents64` into a stack buffer (`std::fs::read_dir` allocates 32 KiB per
/// directory). Returns the open directory too, for [`stat_at`] on its entries.
///
/// # Errors
/// The directory cannot be opened or read.
#[cfg(target_os = "linux")]
pub fn list_dir(dir: &std::path::Path) -> std::io::Result<(std::fs::File, Vec<(std::ffi::OsString, EntryType)>)> {
    use std::ffi::OsStr;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: `path` is NUL-terminated; the returned descriptor, if any, is owned by `file`.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor just opened and owned by nobody else.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut entries = Vec::new();
    let mut buf = [0u64; 1024];
    loop {
        // SAFETY: the buffer is valid for `size_of_val(&buf)` bytes of writes.
        let n = unsafe {
            libc::syscall(libc::SYS_getdents64, file.as_raw_fd(), buf.as_mut_ptr(), std::mem::size_of_val(&buf))
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if n == 0 {
            break;
        }
        let n = usize::try_from(n).map_err(|_| std::io::Error::other("getdents64 returned a bad length"))?;
        // SAFETY: the kernel wrote `n` bytes (at most the buffer's size); the u64 buffer is
        // viewed as bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n.min(std::mem::size_of_val(&buf))) };
        let mut at = 0;
        // Each record: d_ino u64, d_off i64, d_reclen u16, d_type u8, the name NUL-terminated.
        while at + 19 < bytes.len() {
            let reclen = usize::from(u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]));
            if reclen < 20 || at + reclen > bytes.len() {
                return Err(std::io::Error::other("malformed getdents64 record"));
            }
            let kind = bytes[at + 18];
            let name_field = &bytes[at + 19..at + reclen];
            let name = &name_field[..memchr::memchr(0, name_field).unwrap_or(name_field.len())];
            at += reclen;
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match kind {
                libc::DT_DIR => EntryType::Dir,
                libc::DT_REG => EntryType::File,
                libc::DT_LNK => EntryType::Symlink,
                libc::DT_UNKNOWN => EntryType::Unknown,
                _ => EntryType::Other,
            };
            entries.push((OsStr::from_bytes(name).to_os_string(), kind));
        }
    }
    Ok((file, entries))
}

/// All of standard input, read without a thread: `poll` waits for bytes up to `timeout` in all
/// (a caller that never closes the pipe gets an empty answer, as a terminal does).
pub fn read_stdin_within(timeout: Duration) -> Vec<u8> {
    use std::io::{IsTerminal, Read};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Vec::new();
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fd = libc::pollfd { fd: libc::STDIN_FILENO, events: libc::POLLIN, revents: 0 };
        // SAFETY: `fd` is one valid pollfd that outlives the call, and the count is 1.
        let ready = unsafe { libc::poll(&mut fd, 1, ms) };
        if ready < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Vec::new();
        }
        if ready == 0 {
            return Vec::new();
        }
        match stdin.lock().read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that no process has: beyond the kernel's largest pid_max.
    const DEAD_PID: u32 = 4_194_305;

    #[test]
    fn stat_lines_parse_with_odd_command_names() {
        let line = "4242 (a) b (c)) S 1 4240 4240 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3\n";
        assert_eq!(parse_stat(line), Some(ProcStat { state: b'S', pgrp: 4240, start: 987654 }));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 0"), None);
    }

    #[test]
    fn a_recycled_pid_counts_as_dead() {
        let me = std::process::id();
        let start = own_start_time();
        assert!(process_alive(me, start), "this process, recorded exactly");
        assert!(process_alive(me, None), "a legacy record: the pid alone decides");
        assert!(!process_alive(DEAD_PID, None));
        assert!(!process_alive(0, None) && !process_alive(1 << 31, None));
        if cfg!(target_os = "linux") {
            let start = start.expect("Linux has start times");
            assert!(!process_alive(me, Some(start + 1)), "same pid, another start: another process");
            assert!(!group_alive(me, Some(start + 1)), "a group whose number another process took is gone");
        }
    }

    #[test]
    fn groups_are_seen_while_a_member_runs_and_killed_whole() {
        use std::os::unix::process::CommandExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let late = tmp.path().join("late");
        // The leader exits at once; its background child keeps the group alive.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("(sleep 30; touch {}) & exit 0", late.display()))
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pgid = child.id();
        let start = start_time(pgid);
        child.wait().expect("reap the leader");
        assert!(group_alive(pgid, start), "the background child still runs");
        assert!(signal_group(pgid, Kill::Kill));
        assert!(wait_group_gone(pgid, start, Duration::from_secs(10)), "the group is gone after SIGKILL");
        assert!(!signal_group(1, Kill::Kill) && !signal_group(0, Kill::Kill), "never group 0 or 1");
        assert!(!late.exists());
    }

    #[test]
    fn a_process_started_after_a_time_is_told_apart() {
        let me = std::process::id();
        assert!(!started_after(me, SystemTime::now()), "this process started before now");
        if cfg!(target_os = "linux") {
            assert!(started_after(me, SystemTime::UNIX_EPOCH), "and after 1970");
        }
        assert!(!started_after(DEAD_PID, SystemTime::UNIX_EPOCH), "no process, no answer");
    }
}
