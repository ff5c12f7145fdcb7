//! The signal dispositions a container starts with: every one at its default, as under runc.
//!
//! An ignored signal stays ignored across exec, and berth's own processes ignore two: Rust's
//! runtime ignores SIGPIPE (a write to a closed pipe is then an error, not a death), and
//! glibc's `posix_spawn` leaves its internal signals (32 and 33) ignored in the monitor it
//! starts. A
//! container that inherited those behaved unlike Docker's: `yes | head -1` printed "Broken
//! pipe" instead of ending quietly. A handler, unlike an ignore, is reset by exec, so SIGPIPE
//! gets one that does nothing (this process still sees EPIPE) and every other ignored signal
//! goes back to its default.

use nix::libc;

/// The kernel's `struct sigaction` (x86_64 and aarch64, both with `sa_restorer`), for the
/// signals glibc's own `sigaction` refuses to touch (its internal 32 and 33).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "KernelSigaction's layout is x86_64's and aarch64's; check the kernel's for this one"
);
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

extern "C" fn ignore_quietly(_: libc::c_int) {}

/// Gives every signal this process ignores a disposition that exec resets to the default;
/// this process keeps it for good (SIGPIPE still only makes writes fail with EPIPE). Call
/// before the runtime clones a container's process.
pub(crate) fn default_for_children() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old = KernelSigaction::default();
        // SAFETY: rt_sigaction with a null new action only reads the disposition into
        // `old`, a kernel-layout struct of the size the kernel writes (sigsetsize 8).
        let read = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KernelSigaction>(),
                &mut old as *mut KernelSigaction,
                8usize,
            )
        };
        if read != 0 || old.handler != libc::SIG_IGN {
            continue;
        }
        if sig == libc::SIGPIPE {
            // SAFETY: installs a handler that does nothing (async-signal-safe) through
            // glibc, which supplies the restorer; the struct is fully initialised.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = ignore_quietly as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        } else {
            let default = KernelSigaction {
                handler: libc::SIG_DFL,
                ..Default::default()
            };
            // SAFETY: sets the default disposition (no handler, so no restorer is needed)
            // from a kernel-layout struct; the old one is not asked for.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &default as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// A child started after the reset ignores nothing, though this process ignored SIGPIPE
    /// (Rust's runtime) and SIGUSR2 (here, to stand for any inherited ignore).
    #[test]
    fn children_start_with_default_dispositions() {
        use nix::sys::signal::{signal, SigHandler, Signal};
        // SAFETY: SIG_IGN installs no handler code.
        unsafe { signal(Signal::SIGUSR2, SigHandler::SigIgn) }.unwrap();
        super::default_for_children();
        // Forked and exec'd as libcontainer's clone does (a pre_exec hook keeps std from
        // posix_spawn, which resets SIGPIPE but ignores glibc's internal signals itself).
        use std::os::unix::process::CommandExt;
        let mut grep = std::process::Command::new("grep");
        grep.args(["SigIgn", "/proc/self/status"]);
        // SAFETY: the hook does nothing, so it is async-signal-safe.
        unsafe { grep.pre_exec(|| Ok(())) };
        let out = grep.output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "SigIgn:\t0000000000000000"
        );
    }
}
