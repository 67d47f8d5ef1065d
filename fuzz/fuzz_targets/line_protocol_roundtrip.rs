#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gpustream_fuzz_targets::line_protocol_roundtrip(data));
