//! The emulator answers malformed, badly signed, wrongly routed and undecryptable requests
//! with the real envelope and a non-0000 code — never a panic, never HTML.

use crate::common::{start_demo, Emu};
use serde_json::{json, Value};
use tokenlb_wopan::crypto::{self, ChannelKey};
use tokenlb_wopan::emulator::DEMO_TOKENS;
use tokenlb_wopan::envelope::{build_request, BodyFlag, Channel, Header};

async fn envelope(
    emu: &Emu,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String, Value) {
    let r = emu.post_raw(path, headers, body).await;
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "{path}: content-type {ct}"
    );
    let v: Value = r.json().await.expect("a JSON body");
    assert_eq!(v["STATUS"], "200", "{v}");
    assert!(v["LOGID"].as_str().is_some_and(|l| l.len() == 32));
    let code = v["RSP"]["RSP_CODE"].as_str().unwrap().to_string();
    (status, code, v)
}

fn signed(op: &str, channel: Channel, key: &ChannelKey, param: Value) -> Value {
    build_request(
        &Header::new(op, channel, 1_700_000_000_000, 123_456),
        channel,
        key,
        &param,
        BodyFlag::Secret,
    )
}

const TOKEN: &str = DEMO_TOKENS[0].access_token;

#[tokio::test]
async fn a_good_request_passes() {
    let emu = start_demo().await;
    let body = signed(
        "AppQueryUser",
        Channel::ApiUser,
        &ChannelKey::api_user(),
        json!({"accessToken": TOKEN}),
    );
    let (status, code, v) = envelope(
        &emu,
        "/api-user/dispatcher",
        &[],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!((status, code.as_str()), (200, "0000"));
    let data =
        crypto::decrypt(&ChannelKey::api_user(), v["RSP"]["DATA"].as_str().unwrap()).unwrap();
    assert!(data.contains("\"userId\""));
    // `key:true` bodies are accepted like `secret:true` ones.
    let wkey = ChannelKey::wohome(TOKEN).unwrap();
    let body = build_request(
        &Header::new("QueryAllFiles", Channel::Wohome, 1, 2),
        Channel::Wohome,
        &wkey,
        &json!({"spaceType": "0", "parentDirectoryId": "0", "pageNum": 0, "pageSize": 1}),
        BodyFlag::Key,
    );
    let (_, code, v) = envelope(
        &emu,
        "/wohome/dispatcher",
        &[("Accesstoken", TOKEN)],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, "0000");
    let data = crypto::decrypt(&wkey, v["RSP"]["DATA"].as_str().unwrap()).unwrap();
    assert!(data.starts_with("{\"files\":["), "{data}");
    // The wire types of the captures: numbers for type/size/familyId, strings for
    // fileType/createTime/id/fid, and systemDirs: [] at the personal root.
    let v: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["systemDirs"], json!([]));
    let e = &v["files"][0];
    assert!(
        e["type"].is_u64() && e["size"].is_u64() && e["familyId"].is_u64(),
        "{e}"
    );
    for field in [
        "id",
        "fid",
        "name",
        "fileType",
        "createTime",
        "creator",
        "shootingTime",
        "thumbUrl",
    ] {
        assert!(e[field].is_string(), "{field} in {e}");
    }
}

#[tokio::test]
async fn bad_signature() {
    let emu = start_demo().await;
    let mut body = signed(
        "AppQueryUser",
        Channel::ApiUser,
        &ChannelKey::api_user(),
        json!({"accessToken": TOKEN}),
    );
    body["header"]["sign"] = json!("00000000000000000000000000000000");
    let (_, code, v) = envelope(
        &emu,
        "/api-user/dispatcher",
        &[],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, "0002", "{v}");
    assert_eq!(v["RSP"]["DATA"], "");
    // Changing a signed value breaks the signature too.
    let mut body = signed(
        "AppQueryUser",
        Channel::ApiUser,
        &ChannelKey::api_user(),
        json!({"accessToken": TOKEN}),
    );
    body["header"]["reqSeq"] = json!(1);
    let (_, code, _) = envelope(
        &emu,
        "/api-user/dispatcher",
        &[],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, "0002");
}

#[tokio::test]
async fn wrong_channel() {
    let emu = start_demo().await;
    // Correctly signed for api-user, sent to the wohome dispatcher.
    let body = signed(
        "AppQueryUser",
        Channel::ApiUser,
        &ChannelKey::api_user(),
        json!({"accessToken": TOKEN}),
    );
    let (_, code, _) = envelope(
        &emu,
        "/wohome/dispatcher",
        &[("Accesstoken", TOKEN)],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, "0003");
    // A wohome op on the api-user dispatcher, signed for wohome.
    let body = signed(
        "QueryAllFiles",
        Channel::Wohome,
        &ChannelKey::wohome(TOKEN).unwrap(),
        json!({}),
    );
    let (_, code, _) = envelope(
        &emu,
        "/api-user/dispatcher",
        &[],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, "0003");
}

#[tokio::test]
async fn undecryptable_param() {
    let emu = start_demo().await;
    // wohome param encrypted with the api-user key instead of the token's.
    let body = signed(
        "QueryAllFiles",
        Channel::Wohome,
        &ChannelKey::api_user(),
        json!({"spaceType": "0"}),
    );
    let (_, code, _) = envelope(
        &emu,
        "/wohome/dispatcher",
        &[("Accesstoken", TOKEN)],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, "0004");
    for param in [
        json!("%%% not base64"),
        json!("AAAA"),
        json!(crypto::encrypt(&ChannelKey::api_user(), b"not json")),
    ] {
        let mut body = signed(
            "AppQueryUser",
            Channel::ApiUser,
            &ChannelKey::api_user(),
            json!({}),
        );
        body["body"]["param"] = param;
        let (_, code, _) = envelope(
            &emu,
            "/api-user/dispatcher",
            &[],
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(code, "0004");
    }
}

#[tokio::test]
async fn malformed_bodies_and_unknown_keys() {
    let emu = start_demo().await;
    for raw in [
        &b"<html>"[..],
        b"",
        b"[]",
        b"{}",
        b"{\"header\":{}}",
        b"{\"header\":1,\"body\":2}",
        &[0xff, 0xfe, 0x00],
    ] {
        let (_, code, _) = envelope(&emu, "/api-user/dispatcher", &[], raw.to_vec()).await;
        assert_eq!(code, "0001", "{:?}", String::from_utf8_lossy(raw));
    }
    let big = vec![b' '; 2 * 1024 * 1024];
    let (_, code, _) = envelope(&emu, "/api-user/dispatcher", &[], big).await;
    assert_eq!(
        code, "0001",
        "an oversized body is answered in the envelope too"
    );
    let body = signed(
        "PcWebLogin",
        Channel::ApiUser,
        &ChannelKey::api_user(),
        json!({}),
    );
    let (_, code, _) = envelope(
        &emu,
        "/api-user/dispatcher",
        &[],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, "0005");
    let state = emu.state().await;
    assert_eq!(state["calls"]["_malformed"], 8);
    assert_eq!(state["calls"]["_unknown"], 1);
    // Unknown paths are JSON too.
    let r = emu.post_raw("/nope", &[], vec![]).await;
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.is_ok());
}

#[tokio::test]
async fn missing_or_wrong_access_token_on_wohome() {
    let emu = start_demo().await;
    let body = signed(
        "QueryAllFiles",
        Channel::Wohome,
        &ChannelKey::wohome(TOKEN).unwrap(),
        json!({}),
    );
    let (_, code, _) = envelope(
        &emu,
        "/wohome/dispatcher",
        &[],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, "9999");
    let (_, code, _) = envelope(
        &emu,
        "/wohome/dispatcher",
        &[("Accesstoken", "x")],
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, "9999");
}

#[tokio::test]
async fn control_refuses_bad_fields_and_state_masks_tokens() {
    let emu = start_demo().await;
    let http = reqwest::Client::new();
    for bad in [
        json!({"error_rate": 2}),
        json!({"invalid_code": 42}),
        json!({"bogus": 1}),
        json!({"tokens": {"ffffffff-ffff-4fff-8fff-ffffffffffff": "expired"}}),
        json!({"tokens": {TOKEN: "sleepy"}}),
        json!({"rate_limit_status": 500}),
    ] {
        let r = http
            .post(format!("{}/_emulator/control", emu.base))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["message"].is_string());
        assert!(!v.to_string().contains("ffffffff-ffff-4fff"));
    }
    let state = emu.control(json!({"latency_ms": 5})).await;
    assert_eq!(state["settings"]["latency_ms"], 5);
    assert_eq!(state["settings"]["down"], false);
    let text = state.to_string();
    for t in DEMO_TOKENS {
        assert!(!text.contains(t.access_token) && !text.contains(t.refresh_token));
    }
    assert!(text.contains("de00…a001"));
}
