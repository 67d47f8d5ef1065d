#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gpustream_fuzz_targets::rules_toml(data));
