//! Arbitrary bytes as a compiled program: load it, and match it with and without shortcuts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sigmarrow_core::fuzzing::program(data));
