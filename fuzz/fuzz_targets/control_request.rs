#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rsdsm_fuzz::control_request(data));
