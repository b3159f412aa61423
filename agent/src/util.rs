//! Randomness, backoff and shutdown-aware sleeping shared by the loops.

use std::time::Duration;

use tokio::sync::watch;

use crate::AgentError;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `len` random lowercase alphanumerics (agent IDs), every character equally likely.
pub fn random_id(len: usize) -> Result<String, AgentError> {
    // 252 is the largest multiple of 36 below 256: rejecting bytes above it avoids bias.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| AgentError::Random(e.to_string()))?;
        for b in bytes.into_iter().filter(|b| *b < limit) {
            if out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

/// A uniform random number in `[0, 1)`; 0.5 if the system has no randomness (jitter is a
/// nicety, never worth failing for).
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// `base` stretched by up to `factor` (Kubernetes' `wait.Jitter`: base + rand·factor·base).
pub fn jittered(base: Duration, factor: f64) -> Duration {
    base.mul_f64(1.0 + factor * random_unit())
}

/// Exponential backoff with jitter, for retrying a hub that is down.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { next: initial, initial, max }
    }

    /// The next delay (jittered by up to 20 % so that many agents do not retry in step).
    pub fn next_delay(&mut self) -> Duration {
        let delay = jittered(self.next, 0.2).min(self.max);
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Sleeps for `duration`; `true` if shutdown came first (or its sender is gone).
pub async fn sleep_or_shutdown(duration: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(duration) => false,
        _ = shutdown.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_and_jitter() {
        let id = random_id(10).unwrap();
        assert_eq!(id.len(), 10);
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(id, random_id(10).unwrap());
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
            let d = jittered(Duration::from_secs(60), 0.25);
            assert!(d >= Duration::from_secs(60) && d <= Duration::from_secs(75), "{d:?}");
        }
    }

    #[test]
    fn backoff_grows_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_secs(1) && delays[0] <= Duration::from_millis(1200));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(10)));
        assert!(delays[7] >= Duration::from_secs(10) - Duration::from_millis(1));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
    }
}
