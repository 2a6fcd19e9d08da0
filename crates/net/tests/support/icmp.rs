//! An ICMP echo over a raw socket, so the tests need no `ping` program.

#![allow(unsafe_code)]

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{PATIENCE, in_netns, random};

/// Whether `addr` answers an ICMP echo sent from inside `netns` within the patience.
pub fn ping(netns: &Path, addr: Ipv4Addr) -> bool {
    in_netns(netns, || echo(addr))
}

fn echo(addr: Ipv4Addr) -> bool {
    // SAFETY: a plain socket(2) call; the result is checked before it is owned.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    set_receive_timeout(&socket, Duration::from_millis(500));
    let id = (random() & 0xffff) as u16;
    let deadline = Instant::now() + PATIENCE;
    let mut seq = 0u16;
    while Instant::now() < deadline {
        seq += 1;
        send_request(&socket, addr, id, seq);
        let resend_at = Instant::now() + Duration::from_secs(1);
        while Instant::now() < resend_at {
            if received_reply(&socket, addr, id) {
                return true;
            }
        }
    }
    false
}

fn set_receive_timeout(socket: &OwnedFd, timeout: Duration) {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: `tv` is a valid timeval and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVTIMEO: {}", std::io::Error::last_os_error());
}

fn send_request(socket: &OwnedFd, addr: Ipv4Addr, id: u16, seq: u16) {
    let mut packet = [0u8; 16];
    packet[0] = 8; // echo request
    packet[4..6].copy_from_slice(&id.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..].copy_from_slice(b"spread!\0");
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    let to = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: the buffer and address are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&raw const to).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    // Unreachable networks fail here; the caller sees no reply and tries again.
    let _ = sent;
}

/// Reads one packet (or times out) and says whether it is our echo reply from `addr`.
fn received_reply(socket: &OwnedFd, addr: Ipv4Addr, id: u16) -> bool {
    let mut buf = [0u8; 1500];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    let Ok(n) = usize::try_from(n) else {
        return false;
    };
    let packet = &buf[..n];
    // A raw socket gets the IP header too.
    let header_len = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
    if n < header_len + 8 || packet[12..16] != addr.octets() {
        return false;
    }
    let icmp = &packet[header_len..];
    icmp[0] == 0 && icmp[4..6] == id.to_be_bytes()
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
