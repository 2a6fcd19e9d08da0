//! Fixtures for the root tests: a uniquely named node network removed on drop, and probes run
//! inside a network namespace (ICMP echo, TCP connect) without any program but `ip` and `nft`.

#![allow(dead_code)] // Each test binary uses a different part.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

mod icmp;

pub use icmp::ping;

/// How long a probe waits for an answer before calling the address unreachable.
const PATIENCE: Duration = Duration::from_secs(3);

pub use spread_testkit::net::{NetSandbox as Sandbox, output};
pub use spread_testkit::runc::random;

/// Runs `f` on a thread that has entered the network namespace at `netns`.
#[allow(unsafe_code)]
pub fn in_netns<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> T {
    use std::os::fd::AsRawFd;
    let file = File::open(netns).unwrap();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                // SAFETY: setns only changes this thread's network namespace, and the thread
                // ends when `f` returns, so no other code runs in the namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(
                    rc,
                    0,
                    "setns {}: {}",
                    netns.display(),
                    std::io::Error::last_os_error()
                );
                f()
            })
            .join()
            .unwrap()
    })
}

/// Connects to `addr:port` from inside `netns`.
pub fn tcp_connect(netns: &Path, addr: Ipv4Addr, port: u16) -> std::io::Result<()> {
    in_netns(netns, || {
        TcpStream::connect_timeout(&SocketAddr::from((addr, port)), PATIENCE).map(drop)
    })
}

/// `ip args` inside `netns`, parsed as JSON (the args should include `-j`).
pub fn ip_json_in(netns: &Path, args: &[&str]) -> serde_json::Value {
    let net = format!("--net={}", netns.display());
    let all: Vec<&str> = [net.as_str(), "ip"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    serde_json::from_str(&output("nsenter", &all)).unwrap()
}

/// Waits until `f` is true, at most `PATIENCE`; says whether it became true.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
