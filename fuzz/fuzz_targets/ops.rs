//! Any list of operations (updates with any mix of fields and methods, removals with and
//! without tombstones, cleanups, clock steps, latencies, confirmations and failures) on the
//! store and on the model of `tests/model/mod.rs`, under each configuration of
//! `model::Config::EACH` in turn (the seed's defaults, the resilient endpoint policy,
//! tombstones, `EvictSecondHand`, a second-hand quota, all of them at once, and the
//! evidence-based admission with bans, `EvictUnproven` and the unproven quota): a panic or any
//! difference between the two is a crash. Every configuration runs every input, rather than a
//! byte choosing one, so that the committed seeds keep their meaning.
//!
//! The operations added with the admission settings (`remove_for`, and a two-byte update that
//! names only a peer and a method, so that a short input fills the store, floods it
//! second-hand and knocks at it first-hand) took selector values past the old ones: 14 to 19
//! of `0..=19`, where a selector byte below 14 still means what it meant, so a seed written
//! for the old decoder (`seed-expire`, `seed-fill-past-cap`) decodes to the same operations.
//! Bans and unbans came the same way, as 20 and 21 of `0..=21`: a selector byte below 20
//! decodes as it did (the selector is the byte modulo the range's size).
#![no_main]

#[path = "../../tests/model/mod.rs"]
mod model;

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use model::{Announce, Config, Op};

/// The operations, decoded from the fuzzer's bytes into the model's small-number form.
#[derive(Debug)]
struct Ops(Vec<Op>);

impl<'a> Arbitrary<'a> for Ops {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < 200 {
            let op = match u.int_in_range(0u8..=21)? {
                0..=6 => Op::Update(Announce {
                    key: u.arbitrary()?,
                    method: u.arbitrary()?,
                    endpoint: u.arbitrary()?,
                    mesh_ip: u.arbitrary()?,
                    mesh_ipv6: u.arbitrary()?,
                    hostname: u.arbitrary()?,
                    networks: u.arbitrary()?,
                    introducer: u.arbitrary()?,
                    nat: u.arbitrary()?,
                    last_seen: u.arbitrary()?,
                    seen_secs: u.arbitrary()?,
                }),
                7 => Op::Remove {
                    key: u.arbitrary()?,
                },
                8 => Op::Cleanup,
                9 | 10 => Op::Advance {
                    secs: u.int_in_range(0..=900)?,
                },
                11 => Op::SetLatency {
                    key: u.arbitrary()?,
                    ms: u.arbitrary()?,
                },
                12 => Op::Confirm {
                    key: u.arbitrary()?,
                    endpoint: u.arbitrary()?,
                    probe: u.arbitrary()?,
                },
                13 => Op::Fail {
                    key: u.arbitrary()?,
                    endpoint: u.arbitrary()?,
                },
                // A tombstone of up to 15 minutes: past `remove_after` and a few clock steps.
                14 | 15 => Op::RemoveFor {
                    key: u.arbitrary()?,
                    secs: u.int_in_range(0..=900)?,
                },
                // A ban until lifted (0) or of up to 15 minutes, and its lifting.
                20 => Op::Ban {
                    key: u.arbitrary()?,
                    secs: u.int_in_range(0..=900)?,
                },
                21 => Op::Unban {
                    key: u.arbitrary()?,
                },
                // A peer heard by a method, saying nothing else, in two bytes: enough of them
                // fill the store, flood it second-hand and knock at it first-hand.
                _ => Op::Update(Announce {
                    key: u.arbitrary()?,
                    method: u.arbitrary()?,
                    ..Announce::default()
                }),
            };
            ops.push(op);
        }
        Ok(Ops(ops))
    }
}

fuzz_target!(|ops: Ops| {
    for config in Config::EACH {
        if let Err(diff) = model::run_with(config, &ops.0) {
            panic!(
                "the store and the model differ under {}: {diff}",
                config.name
            );
        }
    }
});
