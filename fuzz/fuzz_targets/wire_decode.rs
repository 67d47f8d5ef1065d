#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gpustream_fuzz_targets::wire_decode(data));
