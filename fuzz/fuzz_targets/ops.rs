//! Any list of operations (updates with any mix of fields and methods, removals, cleanups,
//! clock steps, latencies, confirmations and failures) on the store and on the model of
//! `tests/model/mod.rs`, under each endpoint policy in turn (the seed's, then the resilient
//! one): a panic or any difference between the two is a crash. Both policies run every input,
//! rather than a byte choosing one, so that the committed seeds keep their meaning.
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
            let op = match u.int_in_range(0u8..=13)? {
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
                _ => Op::Fail {
                    key: u.arbitrary()?,
                    endpoint: u.arbitrary()?,
                },
            };
            ops.push(op);
        }
        Ok(Ops(ops))
    }
}

fuzz_target!(|ops: Ops| {
    for config in Config::ALL {
        if let Err(diff) = model::run_with(config, &ops.0) {
            panic!("the store and the model differ under {config:?}: {diff}");
        }
    }
});
