//! The backoff between reconnections of the watch and keep-alive hubs and the cache.

use std::time::Duration;

/// Exponential backoff with jitter: 100 ms doubling to 5 s, ±50 %.
pub(crate) fn backoff(failures: u32) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1 << failures.min(6));
    base.min(Duration::from_secs(5))
        .mul_f64(0.5 + rand::random::<f64>())
}
