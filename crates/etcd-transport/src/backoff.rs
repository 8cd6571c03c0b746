//! [`Backoff`]: the one exponential backoff with jitter of the workspace (the transport's
//! retries, etcd-kv's stream hubs and cache, etcd-pmap's conflict retries).

use std::time::Duration;

/// Exponential backoff with jitter: after `failures` failures, `initial × 2^failures`,
/// capped at `max`, then multiplied by a random factor in `1 ± jitter`.
///
/// The cap applies before the jitter, so a delay can be up to `max × (1 + jitter)`; with
/// `jitter` 1.0 the delay is uniform between 0 and twice the capped base ("full jitter"
/// around half of it). The default is the transport's retry backoff: 50 ms doubling up to
/// 2 s, ±50 %.
///
/// ```
/// use etcd_transport::Backoff;
/// use std::time::Duration;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
/// let d = backoff.delay(3); // 800 ms ± 50 %
/// assert!(d >= Duration::from_millis(400) && d <= Duration::from_millis(1200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// The delay after the first failure (before jitter).
    pub initial: Duration,
    /// The longest delay (before jitter).
    pub max: Duration,
    /// The random spread, as a fraction of the delay: 0.5 draws it from 50 % to 150 %.
    /// Taken between 0 and 1.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 50 ms doubling up to 2 s, ±50 %: the transport's retry backoff.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(50), Duration::from_secs(2))
    }
}

impl Backoff {
    /// A backoff from `initial` doubling up to `max` (at least `initial`), ±50 %.
    pub const fn new(initial: Duration, max: Duration) -> Backoff {
        let max = if max.as_nanos() < initial.as_nanos() {
            initial
        } else {
            max
        };
        Backoff {
            initial,
            max,
            jitter: 0.5,
        }
    }

    /// The same with another jitter (a fraction, taken between 0 and 1).
    pub const fn with_jitter(mut self, jitter: f64) -> Backoff {
        self.jitter = jitter;
        self
    }

    /// The delay after `failures` failures: `initial × 2^failures` capped at `max`, with
    /// the jitter applied (`delay(0)` is about `initial`).
    pub fn delay(&self, failures: u32) -> Duration {
        self.delay_with(failures, rand::random::<f64>())
    }

    /// The delay for a given draw `unit` in `[0, 1)` of the jitter.
    fn delay_with(&self, failures: u32, unit: f64) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << failures.min(31))
            .min(self.max);
        let jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        base.mul_f64(1.0 - jitter + 2.0 * jitter * unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_from_initial_up_to_the_cap() {
        let b = Backoff::new(ms(100), ms(5000)).with_jitter(0.0);
        assert_eq!(b.delay(0), ms(100));
        assert_eq!(b.delay(1), ms(200));
        assert_eq!(b.delay(5), ms(3200));
        assert_eq!(b.delay(6), ms(5000));
        assert_eq!(b.delay(31), ms(5000));
        assert_eq!(b.delay(u32::MAX), ms(5000));
    }

    #[test]
    fn jitter_spreads_the_delay_within_its_bounds() {
        let b = Backoff::new(ms(100), ms(5000));
        assert_eq!(b.delay_with(2, 0.0), ms(200));
        assert_eq!(b.delay_with(2, 0.5), ms(400));
        assert!(b.delay_with(2, 0.999_999) <= ms(600));
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..1000 {
            let d = b.delay(2);
            assert!(d >= ms(200) && d <= ms(600), "{d:?}");
            seen_low |= d < ms(300);
            seen_high |= d > ms(500);
        }
        assert!(seen_low && seen_high, "the jitter spreads the delays");
        // Capped before the jitter: at most max × 1.5.
        for _ in 0..100 {
            let d = b.delay(40);
            assert!(d >= ms(2500) && d <= ms(7500), "{d:?}");
        }
    }

    #[test]
    fn full_jitter_and_out_of_range_values() {
        let full = Backoff::new(ms(50), ms(500)).with_jitter(1.0);
        assert_eq!(full.delay_with(1, 0.0), Duration::ZERO);
        assert!(full.delay_with(1, 0.999_999) <= ms(200));
        // Jitter is taken between 0 and 1; NaN as none.
        assert_eq!(
            Backoff::new(ms(50), ms(500))
                .with_jitter(7.0)
                .delay_with(0, 0.0),
            Duration::ZERO
        );
        assert_eq!(
            Backoff::new(ms(50), ms(500))
                .with_jitter(f64::NAN)
                .delay_with(0, 0.9),
            ms(50)
        );
        // A max under the initial delay is raised to it.
        assert_eq!(Backoff::new(ms(80), ms(10)).max, ms(80));
    }

    #[test]
    fn the_default_is_the_transports_retry_backoff() {
        let b = Backoff::default();
        assert_eq!((b.initial, b.max, b.jitter), (ms(50), ms(2000), 0.5));
    }
}
