//! [`Faults`]: what `pinbook publish` does wrong on purpose to one line, seeded so every run
//! with the same seed fails the same way.
//!
//! Per packet, in this order: a drop burst starts with probability `drop / drop_burst` and takes
//! this packet and the `drop_burst - 1` after it (their sequence numbers are still used, so a
//! receiver sees a gap), so about a share `drop` of the packets is lost, in bursts; a packet not dropped is held back with probability `reorder` and sent after
//! the next one; a packet sent is sent twice with probability `duplicate`.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The fault settings of one line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    /// The share of packets lost (a burst starts at a packet with probability
    /// `drop / drop_burst`).
    pub drop: f64,
    /// Packets a drop burst takes (at least 1).
    pub drop_burst: u32,
    /// Probability that a packet is sent after the next one.
    pub reorder: f64,
    /// Probability that a packet is sent twice.
    pub duplicate: f64,
    /// The seed of the line's draws.
    pub seed: u64,
}

/// What was done to a line's packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Message packets dropped.
    pub dropped: u64,
    /// Packets sent after their successor.
    pub reordered: u64,
    /// Packets sent twice.
    pub duplicated: u64,
}

/// A line's faults as they happen.
#[derive(Debug)]
pub struct Faults {
    plan: FaultPlan,
    rng: Xoshiro256PlusPlus,
    burst_left: u32,
    held: Option<Vec<u8>>,
    /// What was done so far.
    pub counts: FaultCounts,
}

impl Faults {
    /// The faults of `plan`, from its seed.
    pub fn new(plan: FaultPlan) -> Faults {
        Faults {
            plan,
            rng: Xoshiro256PlusPlus::seed_from_u64(plan.seed),
            burst_left: 0,
            held: None,
            counts: FaultCounts::default(),
        }
    }

    /// Decides the fate of message packet `packet`: calls `send` for each datagram to send now,
    /// in order (none if it is dropped or held back; a held one follows this one). Returns
    /// whether it was dropped.
    pub fn message(&mut self, packet: &[u8], send: &mut dyn FnMut(&[u8])) -> bool {
        let burst = self.plan.drop_burst.max(1);
        if self.burst_left == 0
            && self.plan.drop > 0.0
            && self
                .rng
                .random_bool((self.plan.drop / f64::from(burst)).min(1.0))
        {
            self.burst_left = burst;
        }
        if self.burst_left > 0 {
            self.burst_left -= 1;
            self.counts.dropped += 1;
            return true;
        }
        if self.held.is_none() && self.plan.reorder > 0.0 && self.rng.random_bool(self.plan.reorder)
        {
            self.counts.reordered += 1;
            self.held = Some(packet.to_vec());
            return false;
        }
        send(packet);
        if self.plan.duplicate > 0.0 && self.rng.random_bool(self.plan.duplicate) {
            self.counts.duplicated += 1;
            send(packet);
        }
        self.flush(send);
        false
    }

    /// Sends a packet held back, if any (before a heartbeat or the end of session).
    pub fn flush(&mut self, send: &mut dyn FnMut(&[u8])) {
        if let Some(held) = self.held.take() {
            send(&held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(plan: FaultPlan, packets: u8) -> Vec<u8> {
        let mut faults = Faults::new(plan);
        let mut out = Vec::new();
        for p in 0..packets {
            let _ = faults.message(&[p], &mut |d| out.push(d[0]));
        }
        faults.flush(&mut |d| out.push(d[0]));
        out
    }

    const NONE: FaultPlan = FaultPlan {
        drop: 0.0,
        drop_burst: 1,
        reorder: 0.0,
        duplicate: 0.0,
        seed: 1,
    };

    #[test]
    fn no_faults_sends_everything_once_in_order() {
        assert_eq!(run(NONE, 5), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_same_seed_fails_the_same_way() {
        let plan = FaultPlan {
            drop: 0.2,
            drop_burst: 3,
            reorder: 0.2,
            duplicate: 0.2,
            seed: 42,
        };
        let a = run(plan, 200);
        assert_eq!(a, run(plan, 200));
        assert_ne!(a, run(FaultPlan { seed: 43, ..plan }, 200));
    }

    #[test]
    fn bursts_drop_runs_and_everything_else_arrives() {
        let plan = FaultPlan {
            drop: 0.05,
            drop_burst: 4,
            ..NONE
        };
        let out = run(plan, 250);
        let lost: Vec<u8> = (0..250).filter(|p| !out.contains(p)).collect();
        assert!(!lost.is_empty());
        assert_eq!(lost.len() % 4, 0, "whole bursts: {lost:?}");
        assert!(out.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn reordered_packets_come_right_after_their_successor() {
        let out = run(
            FaultPlan {
                reorder: 0.3,
                ..NONE
            },
            100,
        );
        let mut sorted = out.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<u8>>(), "nothing lost");
        assert_ne!(out, sorted, "some reordered");
    }
}
