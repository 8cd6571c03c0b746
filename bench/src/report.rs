//! The output line of one workload.

use std::fmt::Write as _;
use std::time::Duration;

/// The measured result of one workload: printed as one JSON line with exactly the spec's
/// fields (the `server_*` ones only when the server's pid was given), then the workload's
/// extra fields, if any.
#[derive(Debug, Clone)]
pub struct Line {
    /// Client name: `ours`, `ceiling`, `etcd-client`.
    pub client: String,
    /// Workload name.
    pub workload: &'static str,
    /// n of the workload (range-all: keys per range).
    pub n: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Operations counted (range-all: ranges; watch: events).
    pub ops: usize,
    /// Wall time of the measured part.
    pub wall: Duration,
    /// Per-request latencies, sorted, in microseconds.
    pub latencies_us: Vec<u64>,
    /// CPU of this process over the measured part.
    pub client_cpu: Duration,
    /// CPU of the server over the measured part, when known.
    pub server_cpu: Option<Duration>,
    /// Fields the spec allows some workloads to add (`client_conns`, `client_rss_mb`,
    /// `watches_per_s`, `leases_lost`...), in output order.
    pub extra: Vec<Extra>,
}

/// One extra numeric field of a line.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    /// The JSON field name.
    pub name: &'static str,
    /// Its value.
    pub value: f64,
    /// Digits after the decimal point (0: printed as an integer).
    pub decimals: usize,
}

impl Extra {
    /// A count, printed as an integer.
    pub fn count(name: &'static str, value: usize) -> Extra {
        Extra {
            name,
            value: value as f64,
            decimals: 0,
        }
    }

    /// A measure, printed with `decimals` digits.
    pub fn measure(name: &'static str, value: f64, decimals: usize) -> Extra {
        Extra {
            name,
            value,
            decimals,
        }
    }
}

impl Line {
    /// The `q` quantile (0..=1) of the latencies, nearest rank; 0 without latencies.
    pub fn percentile_us(&self, q: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let rank = (q * self.latencies_us.len() as f64).ceil() as usize;
        self.latencies_us[rank.clamp(1, self.latencies_us.len()) - 1]
    }

    /// Operations per second.
    pub fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Client CPU per operation, in microseconds.
    pub fn cpu_us_per_op(&self) -> f64 {
        self.client_cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64
    }

    /// The JSON line (without newline).
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(256);
        let _ = write!(
            s,
            "{{\"client\":\"{}\",\"workload\":\"{}\",\"n\":{},\"concurrency\":{},\"wall_s\":{:.3},\
             \"ops_per_s\":{:.1},\"p50_us\":{},\"p99_us\":{},\"client_cpu_s\":{:.4},\"cpu_us_per_op\":{:.2}",
            self.client,
            self.workload,
            self.n,
            self.concurrency,
            self.wall.as_secs_f64(),
            self.ops_per_s(),
            self.percentile_us(0.50),
            self.percentile_us(0.99),
            self.client_cpu.as_secs_f64(),
            self.cpu_us_per_op(),
        );
        if let Some(server) = self.server_cpu {
            let _ = write!(
                s,
                ",\"server_cpu_s\":{:.3},\"server_cpu_us_per_op\":{:.2}",
                server.as_secs_f64(),
                server.as_secs_f64() * 1e6 / self.ops.max(1) as f64
            );
        }
        for extra in &self.extra {
            let _ = write!(s, ",\"{}\":{:.*}", extra.name, extra.decimals, extra.value);
        }
        s.push('}');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line() {
        let line = Line {
            client: "ours".into(),
            workload: "put-seq",
            n: 4,
            concurrency: 1,
            ops: 4,
            wall: Duration::from_millis(2),
            latencies_us: vec![100, 200, 300, 400],
            client_cpu: Duration::from_micros(400),
            server_cpu: None,
            extra: Vec::new(),
        };
        assert_eq!(
            line.to_json(),
            "{\"client\":\"ours\",\"workload\":\"put-seq\",\"n\":4,\"concurrency\":1,\"wall_s\":0.002,\
             \"ops_per_s\":2000.0,\"p50_us\":200,\"p99_us\":400,\"client_cpu_s\":0.0004,\"cpu_us_per_op\":100.00}"
        );
        let mut line = line;
        line.extra = vec![
            Extra::count("client_conns", 3),
            Extra::measure("client_rss_mb", 12.345, 1),
        ];
        assert!(line
            .to_json()
            .ends_with(",\"client_conns\":3,\"client_rss_mb\":12.3}"));
    }
}
