//! Arbitrary bytes as event values, matched by a program of every kind of atom.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigmarrow_core::fuzzing::values(data));
