//! Readiness of a loop's sockets (epoll) and its wake-up from other threads (eventfd),
//! through `libc`: the loop blocks in one `epoll_pwait2` for every socket it owns, the
//! command queue's waker and the next timer, with nanosecond timeouts.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Token of the loop's waker in the epoll set (never a connection key).
pub(crate) const WAKER_TOKEN: u64 = u64::MAX;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An epoll instance (level-triggered: a socket with datagrams left is reported again).
pub(crate) struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
    pwait2: bool,
}

impl Epoll {
    /// A new epoll set returning up to `capacity` ready sockets per wait.
    pub(crate) fn new(capacity: usize) -> io::Result<Epoll> {
        // SAFETY: plain syscall; the returned descriptor is owned from here on.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll {
            // SAFETY: `fd` is a fresh descriptor nobody else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)],
            pwait2: true,
        })
    }

    /// Watches `fd` for readability under `token`.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` lives across the call; the kernel copies it.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })
            .map(|_| ())
    }

    /// Stops watching `fd`.
    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) })
            .map(|_| ())
    }

    #[cfg(test)]
    /// Waits until a watched descriptor is ready or `timeout` passed (`None`: forever);
    /// returns the tokens of the ready ones (empty on timeout or signal).
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<Vec<u64>> {
        let mut out = Vec::new();
        self.wait_into(timeout, &mut out)?;
        Ok(out)
    }

    /// Like [`Epoll::wait`], filling `out` (cleared first) so the loop reuses one vector.
    pub(crate) fn wait_into(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<u64>,
    ) -> io::Result<()> {
        out.clear();
        let max = self.events.len() as libc::c_int;
        let n = if self.pwait2 {
            let ts = timeout.map(|d| libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            });
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `events` has `max` slots; `ts_ptr` is null or points at `ts`.
            let r = unsafe {
                libc::epoll_pwait2(
                    self.fd.as_raw_fd(),
                    self.events.as_mut_ptr(),
                    max,
                    ts_ptr,
                    std::ptr::null(),
                )
            };
            if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                self.pwait2 = false;
                return self.wait_into(timeout, out);
            }
            r
        } else {
            // Millisecond resolution, rounded up so a timer is never fired early.
            let ms = timeout.map_or(-1, |d| {
                d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int
            });
            // SAFETY: `events` has `max` slots.
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), self.events.as_mut_ptr(), max, ms) }
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        out.extend(self.events[..n as usize].iter().map(|e| e.u64));
        Ok(())
    }
}

/// Wakes a loop blocked in [`Epoll::wait`] from another thread (an eventfd).
pub(crate) struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// A new waker; register [`Waker::fd`] with [`WAKER_TOKEN`].
    pub(crate) fn new() -> io::Result<Waker> {
        // SAFETY: plain syscall; the descriptor is owned from here on.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        Ok(Waker {
            // SAFETY: fresh descriptor.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The descriptor to watch.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes the loop's next (or current) wait return.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from `one`. A full counter (EAGAIN) means the loop is
        // already due to wake: nothing to do.
        unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast::<libc::c_void>(),
                8,
            );
        }
    }

    /// Resets the counter after a wake-up.
    pub(crate) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into `v`; EAGAIN (nothing pending) is fine.
        unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut v as *mut u64).cast::<libc::c_void>(),
                8,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waker_wakes_and_timeout_expires() {
        let mut ep = Epoll::new(8).unwrap();
        let w = Waker::new().unwrap();
        ep.add(w.fd(), WAKER_TOKEN).unwrap();
        assert!(ep.wait(Some(Duration::ZERO)).unwrap().is_empty());
        w.wake();
        w.wake();
        assert_eq!(
            ep.wait(Some(Duration::from_secs(5))).unwrap(),
            vec![WAKER_TOKEN]
        );
        w.drain();
        assert!(ep.wait(Some(Duration::from_millis(1))).unwrap().is_empty());
    }
}
