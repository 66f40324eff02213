//! The one clock of the data plane: monotonic nanoseconds since the process first asked.
//!
//! Both planes stamp with [`now_ns`], so an ingest stamp taken on a shard and a send stamp
//! taken by the control plane are on the same scale. It reads the vDSO monotonic clock: no
//! syscall, no allocation.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Monotonic nanoseconds since the first call in this process (so the first call returns 0).
#[inline]
pub fn now_ns() -> u64 {
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_back() {
        let mut last = now_ns();
        for _ in 0..1000 {
            let now = now_ns();
            assert!(now >= last);
            last = now;
        }
    }
}
