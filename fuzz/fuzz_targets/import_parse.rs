//! tokens.json / one-token-per-line import (`tokenlb_manager::import::parse`), as the manager
//! reads it at start and on `POST /api/tokens/import`: any text either parses or gives an error
//! with a line and column; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match tokenlb_manager::import::parse(text) {
        Ok(parsed) => {
            let _ = format!("{parsed:?}");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("line"), "{message}");
        }
    }
});
