//! The configuration file (`Config::from_toml_str`): any text is a valid configuration or an
//! error naming the file; nothing panics, and a valid one renders back with secrets masked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tokenlb_manager::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml_str(text, Path::new("fuzz.toml")) {
        Ok(config) => {
            let _ = config.to_masked_toml();
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("fuzz.toml"), "{message}");
        }
    }
});
