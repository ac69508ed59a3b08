//! Watch retry policy. kube-runtime's default backs off to 30 s, so after an API-server restart
//! of a few seconds the operator could stay blind for half a minute; we cap retries at 4 s
//! (with jitter, so replicas and watches do not retry in lockstep) and start again from 250 ms
//! once a watch has been healthy for a minute.

use std::time::Duration;

use kube::runtime::utils::{Backoff, ResetTimerBackoff};

/// Exponential backoff from `min` to `max`, ±25 % jitter.
pub struct Exponential {
    min: Duration,
    max: Duration,
    next: Duration,
    seed: u64,
}

impl Exponential {
    pub fn new(min: Duration, max: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9)
            | 1;
        Self {
            min,
            max,
            next: min,
            seed,
        }
    }
}

impl Iterator for Exponential {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // xorshift: jitter only, no need for a real RNG.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = 0.75 + (self.seed % 1000) as f64 / 2000.0; // 0.75 ..= 1.25
        let d = self.next.mul_f64(jitter);
        self.next = (self.next * 2).min(self.max);
        Some(d)
    }
}

impl Backoff for Exponential {
    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// The policy for every watch of the controller.
pub fn watch() -> ResetTimerBackoff<Exponential> {
    ResetTimerBackoff::new(
        Exponential::new(Duration::from_millis(250), Duration::from_secs(4)),
        Duration::from_secs(60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Exponential::new(Duration::from_millis(250), Duration::from_secs(4));
        let first: Vec<Duration> = b.by_ref().take(10).collect();
        assert!(first[0] >= Duration::from_millis(187) && first[0] <= Duration::from_millis(313));
        assert!(first.iter().all(|d| *d <= Duration::from_secs(5)));
        assert!(first[9] >= Duration::from_secs(3));
        b.reset();
        assert!(b.next().is_some_and(|d| d <= Duration::from_millis(313)));
    }
}
