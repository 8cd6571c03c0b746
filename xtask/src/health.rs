//! A minimal HTTP/1.1 client over a std `TcpStream`, enough for etcd's `/health`, `/version` and
//! the gateway's `/v3/maintenance/status`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// `GET path` on `127.0.0.1:port`; returns the status code and the body.
pub(crate) fn get(port: u16, path: &str, timeout: Duration) -> io::Result<(u16, String)> {
    request(port, "GET", path, None, timeout)
}

/// `POST path` with a JSON `body` on `127.0.0.1:port`; returns the status code and the body.
pub(crate) fn post(
    port: u16,
    path: &str,
    body: &str,
    timeout: Duration,
) -> io::Result<(u16, String)> {
    request(port, "POST", path, Some(body), timeout)
}

fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> io::Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if let Some(body) = body {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let _ = stream.shutdown(Shutdown::Both);
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("no end of HTTP headers"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("bad HTTP status line"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        let (Some(chunk), Some(after)) = (rest.get(..n), rest.get(n..)) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.push_str(chunk);
        body = after.trim_start_matches("\r\n");
    }
    out
}

/// Whether the etcd member on `port` answers `/health` with `"health":"true"`.
pub(crate) fn check(port: u16) -> Result<(), String> {
    match get(port, "/health", Duration::from_secs(2)) {
        Ok((200, body)) if body.replace(' ', "").contains("\"health\":\"true\"") => Ok(()),
        Ok((status, body)) => Err(format!("/health answered {status}: {}", body.trim())),
        Err(e) => Err(format!("/health: {e}")),
    }
}

/// What one etcd member says about itself and the cluster (the gateway's
/// `POST /v3/maintenance/status`; see [`Etcd::status`](crate::Etcd::status)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStatus {
    /// This member's id.
    pub member_id: u64,
    /// The member id of the leader this member follows (itself when it leads), `None` when it
    /// knows no leader (an election is under way, or it is cut off from a quorum).
    pub leader: Option<u64>,
    /// This member's raft term.
    pub raft_term: u64,
    /// This member's committed raft index.
    pub raft_index: u64,
}

impl NodeStatus {
    /// Whether this member believes it is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader == Some(self.member_id)
    }
}

/// The status of the member whose client port is `port`.
pub(crate) fn status(port: u16, timeout: Duration) -> Result<NodeStatus, String> {
    let (code, body) = post(port, "/v3/maintenance/status", "{}", timeout)
        .map_err(|e| format!("/v3/maintenance/status: {e}"))?;
    if code != 200 {
        return Err(format!(
            "/v3/maintenance/status answered {code}: {}",
            body.trim()
        ));
    }
    parse_status(&body).ok_or_else(|| format!("/v3/maintenance/status: unexpected answer {body}"))
}

/// Parses the gateway's JSON: uint64 fields are strings, zero values are left out (so a
/// missing `leader` means none). `member_id` is in the header, the rest at the top level
/// (`raftTerm`, camel case, unlike the header's `raft_term`).
fn parse_status(body: &str) -> Option<NodeStatus> {
    let field = |name: &str| -> Option<Option<u64>> {
        let key = format!("\"{name}\":");
        match body.find(&key) {
            None => Some(None),
            Some(at) => {
                let rest = body[at + key.len()..].trim_start();
                let rest = rest.strip_prefix('"').unwrap_or(rest);
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok().map(Some)
            }
        }
    };
    Some(NodeStatus {
        member_id: field("member_id")??,
        leader: field("leader")?.filter(|&id| id != 0),
        raft_term: field("raftTerm")?.unwrap_or(0),
        raft_index: field("raftIndex")?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_status() {
        let body = r#"{"header":{"cluster_id":"3249","member_id":"33198","revision":"1","raft_term":"2"},"version":"3.5.1","dbSize":"20480","leader":"33198","raftIndex":"4","raftTerm":"3","raftAppliedIndex":"4"}"#;
        let status = super::parse_status(body).unwrap();
        assert_eq!(
            status,
            super::NodeStatus {
                member_id: 33198,
                leader: Some(33198),
                raft_term: 3,
                raft_index: 4
            }
        );
        assert!(status.is_leader());
        let no_leader = r#"{"header":{"member_id":"7","raft_term":"9"},"raftIndex":"12","raftTerm":"9","errors":["etcdserver: no leader"]}"#;
        let status = super::parse_status(no_leader).unwrap();
        assert_eq!(status.leader, None);
        assert_eq!(status.raft_term, 9);
        assert!(!status.is_leader());
        assert_eq!(super::parse_status(r#"{"error":"x"}"#), None);
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            super::dechunk("4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n"),
            "abcdef"
        );
    }
}
