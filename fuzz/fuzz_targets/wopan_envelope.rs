//! The Wopan envelope decoder: `parse_response` on any body, then `Data::into_value` (which
//! decrypts `DATA`) under both channel keys; `crypto::decrypt` on any text; and a well-formed
//! envelope whose encrypted `DATA` is arbitrary bytes. Errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenlb_wopan::crypto::{decrypt, encrypt, ChannelKey};
use tokenlb_wopan::envelope::parse_response;

const TOKEN: &str = "de000001-7e57-4a1b-9c2d-00000000a001";

fuzz_target!(|data: &[u8]| {
    let keys = [
        ChannelKey::api_user(),
        ChannelKey::wohome(TOKEN).expect("a 36-byte token"),
    ];
    for key in &keys {
        if let Ok(parsed) = parse_response("QueryAllFiles", data) {
            let _ = parsed.into_value("QueryAllFiles", key);
        }
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = decrypt(key, text);
        }
        // A valid envelope around arbitrary (encrypted) DATA reaches the JSON decoding step.
        let body = serde_json::json!({
            "STATUS": "200",
            "MSG": "success",
            "RSP": {"RSP_CODE": "0000", "RSP_DESC": "ok", "DATA": encrypt(key, data)}
        });
        let bytes = serde_json::to_vec(&body).expect("json");
        if let Ok(parsed) = parse_response("QueryAllFiles", &bytes) {
            let _ = parsed.into_value("QueryAllFiles", key);
        }
    }
});
