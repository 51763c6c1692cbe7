//! The orphan guard: no replica outlives podscale, even when podscale is SIGKILLed.
//!
//! Each replica runs in its own process group (so a signal reaches the server and every
//! worker it forked). A signal handler cannot run on SIGKILL, so a small watchdog
//! process does the cleanup: `/bin/sh`, in a process group of its own, ignoring INT,
//! TERM, HUP and QUIT, reading `add PGID` / `del PGID` lines on a pipe whose only
//! writer is podscale. When podscale dies, however it dies, the kernel closes the pipe;
//! the watchdog reads end-of-file and SIGKILLs every group still registered.
//!
//! Why not `PR_SET_PDEATHSIG` (prctl in `pre_exec`): it needs `unsafe` (the workspace
//! forbids it), it only reaches the direct child — not the workers a server such as
//! gunicorn or vLLM forks — and it fires when the spawning *thread* exits, which in a
//! tokio runtime is not when podscale exits. The watchdog is safe code, covers the
//! whole group, and is tied to the process.
//!
//! The one window left: podscale is SIGKILLed between spawning a replica and writing
//! its `add` line (microseconds).
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, PoisonError};

use rustix::process::{Pid, Signal, kill_process_group};

const SCRIPT: &str = r#"trap '' INT TERM HUP QUIT
groups=''
while read -r op pg; do
  case "$op" in
    add) groups="$groups $pg" ;;
    del) new=''; for g in $groups; do [ "$g" = "$pg" ] || new="$new $g"; done; groups=$new ;;
  esac
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
"#;

/// The watchdog process and the pipe to it.
#[derive(Debug)]
pub struct Guard {
    inner: Mutex<Option<(Child, ChildStdin)>>,
}

impl Guard {
    /// Starts the watchdog.
    ///
    /// # Errors
    /// `/bin/sh` cannot be started.
    pub fn start() -> std::io::Result<Self> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("podscale-guard")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group: a Ctrl-C at the terminal (SIGINT to the foreground group)
            // must not end the guard before podscale has stopped the replicas.
            .process_group(0)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("the guard's stdin is not a pipe"))?;
        Ok(Self {
            inner: Mutex::new(Some((child, stdin))),
        })
    }

    /// The guard's process id (tests).
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(|(c, _)| c.id())
    }

    /// Registers a process group to kill if podscale dies.
    pub fn add(&self, pgid: u32) {
        self.send(&format!("add {pgid}\n"));
    }

    /// Forgets a group (after podscale killed it itself).
    pub fn remove(&self, pgid: u32) {
        self.send(&format!("del {pgid}\n"));
    }

    fn send(&self, line: &str) {
        if let Some((_, stdin)) = self.lock().as_mut()
            && let Err(e) = stdin.write_all(line.as_bytes())
        {
            tracing::warn!(error = %e, "The orphan guard is gone: replicas may outlive podscale if it is killed.");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Child, ChildStdin)>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Closing the pipe makes the guard kill whatever is still registered and exit;
        // wait for it, so it is not left a zombie.
        if let Some((mut child, stdin)) = self.lock().take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// Sends `signal` to process group `pgid`; a group that is already gone is not an error.
pub fn signal_group(pgid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if let Err(e) = kill_process_group(pid, signal)
        && e != rustix::io::Errno::SRCH
    {
        tracing::warn!(pgid, error = %e, "Cannot signal a replica's process group.");
    }
}

/// Whether any process of group `pgid` is still alive (zombies count as gone).
pub fn group_alive(pgid: u32) -> bool {
    crate::procfs::group_members(pgid).next().is_some()
}
