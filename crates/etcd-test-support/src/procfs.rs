//! What `/proc` says about this process: its TCP connections to a port, its resident memory,
//! and its open-file limit. Linux only, like the rest of the harness.

use std::collections::HashSet;

/// The number of this process's sockets that are ESTABLISHED TCP connections to remote
/// `port` (IPv4 or IPv6).
///
/// `/proc/self/net/tcp{,6}` list every socket of the network namespace (the etcd server's
/// included, when it runs on the same host); only those whose inode is one of this
/// process's file descriptors (`/proc/self/fd/N -> socket:[INODE]`) are counted. Filtering
/// on the remote port leaves out the server's own side of loopback connections.
pub fn tcp_connections_to(port: u16) -> std::io::Result<usize> {
    let mut ours = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        // A descriptor closed while we read the directory is simply gone.
        let Ok(target) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        if let Some(inode) = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok())
        {
            ours.insert(inode);
        }
    }
    let mut count = 0;
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            // No IPv6 in this kernel or namespace.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        count += text
            .lines()
            .skip(1)
            .filter_map(parse_tcp_line)
            .filter(|s| s.state == ESTABLISHED && s.remote_port == port && ours.contains(&s.inode))
            .count();
    }
    Ok(count)
}

/// `st` of an ESTABLISHED socket (`TCP_ESTABLISHED` in the kernel's `tcp_states.h`).
const ESTABLISHED: u8 = 0x01;

#[derive(Debug, PartialEq)]
struct TcpSocket {
    remote_port: u16,
    state: u8,
    inode: u64,
}

/// One line of `/proc/net/tcp`:
/// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...`,
/// addresses as `HEXADDR:HEXPORT`.
fn parse_tcp_line(line: &str) -> Option<TcpSocket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (_, port) = fields.get(2)?.rsplit_once(':')?;
    Some(TcpSocket {
        remote_port: u16::from_str_radix(port, 16).ok()?,
        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

/// This process's resident set size in bytes (`VmRSS` of `/proc/self/status`); `None` if
/// it cannot be read.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    // `VmRSS:     12345 kB`
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Raises the soft limit of open files to the hard limit (many watches need one socket
/// each on HTTP/1.1); returns the soft limit now in force, or `None` if unknown.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        // Not fatal: the workload reports its own error if it runs out of descriptors.
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current
}

/// The port of an `http://host:port` or `https://host:port` endpoint (80 or 443 when it
/// has none).
pub fn endpoint_port(endpoint: &str) -> Option<u16> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let authority = rest.split('/').next()?;
    // `[::1]:2379` or `127.0.0.1:2379`: the port follows the last colon after any `]`.
    let after_host = authority.rsplit_once(']').map_or(authority, |(_, p)| p);
    match after_host.rsplit_once(':') {
        Some((_, port)) => port.parse().ok(),
        None => match scheme {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp() {
        let line = "   3: 0100007F:D2F0 0100007F:094B 01 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(
            parse_tcp_line(line),
            Some(TcpSocket {
                remote_port: 2379,
                state: ESTABLISHED,
                inode: 123456
            })
        );
        assert_eq!(parse_tcp_line("  sl  local_address rem_address"), None);
    }

    #[test]
    fn counts_own_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let a = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let b = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // The accepted sides have `port` as their local port, not their remote one.
        let _accepted = (listener.accept().unwrap(), listener.accept().unwrap());
        assert_eq!(tcp_connections_to(port).unwrap(), 2);
        drop((a, b));
        assert!(rss_bytes().unwrap() > 0);
    }

    #[test]
    fn ports() {
        assert_eq!(endpoint_port("http://127.0.0.1:2379"), Some(2379));
        assert_eq!(endpoint_port("http://[::1]:12379/"), Some(12379));
        assert_eq!(endpoint_port("https://localhost"), Some(443));
    }
}
