//! The captured write requests, replayed verbatim against the emulator: each is accepted,
//! answered in the real envelope, and changes the tree as the operation says.
//!
//! The fixture holds the ids the captures name (the folders and files of the account they
//! were taken from) and a token whose first 16 characters are the captures' wohome key, so
//! the captured ciphertexts open. The captured `CreateDirectory` in family space answered
//! the id `ab8147db…` that the later captures use; the emulator hands out its own ids, so that
//! folder is in the fixture from the start.

use crate::captures::{Capture, CAPTURES, CAPTURE_KEY};
use crate::common::start;
use serde_json::{json, Value};
use tokenlb_core::Secret;
use tokenlb_wopan::crypto::{self, ChannelKey};
use tokenlb_wopan::emulator::{EmulatorConfig, Fixture};
use tokenlb_wopan::{Space, WopanClient};

const TOKEN: &str = "c3f0362b-0515-49aa-8000-00000000c0de";

fn fixture() -> Fixture {
    assert!(TOKEN.starts_with(CAPTURE_KEY));
    serde_json::from_value(json!({
        "user": { "phone": "186****5244", "name": "wo_Kbc7Hb" },
        "tokens": [ { "access_token": TOKEN, "family_id": 9263097 } ],
        "personal": [
            { "name": "test", "id": "b2e9b430ed02493782065106291b0308", "children": [
                { "name": "avatar.png", "id": "78ee3248f33941b4815199f1b6daaab7", "size": 70207 } ] },
            { "name": "A", "id": "57ad13bb15cf4e6e94799c330d06e9f6", "children": [] },
            { "name": "B", "id": "8fa10be30f5e41b49a6abb516f5c7649", "children": [] },
            { "name": "C", "id": "70431a1e535b405f956b6e451db9255d", "children": [
                { "name": "x.bin", "size": 1000 } ] }
        ],
        "families": [ { "id": 9263097, "name": "186****5244的家", "files": [
            { "name": "test", "id": "37135bfb5178467b857129a00931e24a", "children": [
                { "name": "inner_folder", "id": "b8aa81b8d90c42e4b9e4109d9c8d2de5", "children": [
                    { "name": "a.txt", "size": 10 } ] } ] },
            { "name": "made_earlier", "id": "ab8147dba859439abef9edec0987341b", "children": [] }
        ] } ]
    }))
    .unwrap()
}

fn capture(op: &str, space: &str) -> &'static Capture {
    CAPTURES
        .iter()
        .find(|c| c.op == op && c.space == space)
        .unwrap()
}

/// Posts the captured envelope as it was sent; the answer's `RSP`.
async fn replay(emu: &crate::common::Emu, c: &Capture) -> Value {
    let r = emu
        .post_raw(
            "/wohome/dispatcher",
            &[("Content-Type", "application/json"), ("Accesstoken", TOKEN)],
            c.request.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["STATUS"], "200", "{v}");
    assert_eq!(v["LOGID"].as_str().unwrap().len(), 32);
    v["RSP"].clone()
}

async fn names(c: &WopanClient, space: &Space, dir: &str) -> Vec<String> {
    let t = Secret::new(TOKEN);
    let mut n: Vec<String> = c
        .list_all(&t, space, dir)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    n.sort();
    n
}

fn ok_empty(rsp: &Value) {
    assert_eq!(rsp["RSP_CODE"], "0000", "{rsp}");
    assert_eq!(rsp["RSP_DESC"], "成功");
    assert_eq!(rsp["DATA"], "");
}

#[tokio::test]
async fn personal_captures_replay() {
    let emu = start(EmulatorConfig {
        fixture: fixture(),
        ..EmulatorConfig::default()
    })
    .await;
    let c = emu.client();
    let p = Space::Personal;
    let key = ChannelKey::wohome(TOKEN).unwrap();
    let t = Secret::new(TOKEN);

    let rsp = replay(&emu, capture("CreateDirectory", "personal")).await;
    assert_eq!(rsp["RSP_CODE"], "0000", "{rsp}");
    let data = crypto::decrypt(&key, rsp["DATA"].as_str().unwrap()).unwrap();
    let id: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(id["id"].as_str().unwrap().len(), 32);
    let test_dir = "b2e9b430ed02493782065106291b0308";
    assert_eq!(
        names(&c, &p, test_dir).await,
        ["avatar.png", "inner_folder"]
    );
    // The same folder again: the name is taken.
    let again = replay(&emu, capture("CreateDirectory", "personal")).await;
    assert_eq!(again["RSP_CODE"], "0008");

    ok_empty(&replay(&emu, capture("RenameFileOrDirectory", "personal")).await);
    assert_eq!(
        names(&c, &p, test_dir).await,
        ["inner_folder", "new_name.png"]
    );

    ok_empty(&replay(&emu, capture("MoveFile", "personal")).await);
    assert_eq!(names(&c, &p, test_dir).await, ["inner_folder"]);
    assert_eq!(
        names(&c, &p, "57ad13bb15cf4e6e94799c330d06e9f6").await,
        ["new_name.png"]
    );

    ok_empty(&replay(&emu, capture("CopyFile", "personal")).await);
    assert_eq!(
        names(&c, &p, "57ad13bb15cf4e6e94799c330d06e9f6").await,
        ["new_name.png"]
    );
    assert_eq!(
        names(&c, &p, "8fa10be30f5e41b49a6abb516f5c7649").await,
        ["new_name.png"]
    );

    let before = c.cloud_usage(&t, "186****5244").await.unwrap().used_bytes();
    ok_empty(&replay(&emu, capture("DeleteFile", "personal")).await);
    assert_eq!(names(&c, &p, "0").await, ["A", "B", "test"]);
    // Deleted files stay in the recycle bin, and in the quota, until it is emptied.
    assert_eq!(
        c.cloud_usage(&t, "186****5244").await.unwrap().used_bytes(),
        before
    );
    ok_empty(&replay(&emu, capture("EmptyRecycleData", "personal")).await);
    let after = c.cloud_usage(&t, "186****5244").await.unwrap().used_bytes();
    assert_eq!(before - after, 1000);
    assert_eq!(after, 2 * 70207);

    let rsp = replay(&emu, capture("GetZoneInfo", "none")).await;
    let zone: Value =
        serde_json::from_str(&crypto::decrypt(&key, rsp["DATA"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(zone["url"], emu.base.as_str());
    for op in [
        "CreateDirectory",
        "MoveFile",
        "CopyFile",
        "DeleteFile",
        "EmptyRecycleData",
    ] {
        assert!(emu.calls(op).await >= 1, "{op} counted");
    }
}

#[tokio::test]
async fn family_captures_replay() {
    let emu = start(EmulatorConfig {
        fixture: fixture(),
        ..EmulatorConfig::default()
    })
    .await;
    let c = emu.client();
    let f = Space::Family {
        family_id: "9263097".into(),
    };
    ok_or_id(&replay(&emu, capture("CreateDirectory", "family")).await);
    assert_eq!(
        names(&c, &f, "0").await,
        ["made_earlier", "test", "test_mkdir"]
    );
    // Personal space did not change.
    assert_eq!(
        names(&c, &Space::Personal, "0").await,
        ["A", "B", "C", "test"]
    );

    ok_empty(&replay(&emu, capture("RenameFileOrDirectory", "family")).await);
    assert_eq!(
        names(&c, &f, "0").await,
        ["rename_newname", "test", "test_mkdir"]
    );

    ok_empty(&replay(&emu, capture("MoveFile", "family")).await);
    assert_eq!(names(&c, &f, "0").await, ["test", "test_mkdir"]);
    let test_dir = "37135bfb5178467b857129a00931e24a";
    assert_eq!(
        names(&c, &f, test_dir).await,
        ["inner_folder", "rename_newname"]
    );

    ok_empty(&replay(&emu, capture("CopyFile", "family")).await);
    let moved = "ab8147dba859439abef9edec0987341b";
    assert_eq!(names(&c, &f, moved).await, ["inner_folder"]);
    let t = Secret::new(TOKEN);
    let copy = c
        .resolve_path(&t, &f, "test/rename_newname/inner_folder/a.txt")
        .await
        .unwrap();
    let orig = c
        .resolve_path(&t, &f, "test/inner_folder/a.txt")
        .await
        .unwrap();
    assert_ne!(copy.id, orig.id);
    assert_ne!(copy.fid, orig.fid);
    assert_eq!(copy.size, 10);

    ok_empty(&replay(&emu, capture("DeleteFile", "family")).await);
    assert_eq!(names(&c, &f, test_dir).await, ["inner_folder"]);
    // The copy's link is gone with it; the original's still works.
    assert!(c.download_url(&t, &copy.fid).await.is_err());
    assert!(c.download_url(&t, &orig.fid).await.is_ok());
}

fn ok_or_id(rsp: &Value) {
    assert_eq!(rsp["RSP_CODE"], "0000", "{rsp}");
    assert!(rsp["DATA"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn another_familys_captures_are_refused() {
    let mut fx = fixture();
    fx.tokens[0].family_id = Some(1);
    let emu = start(EmulatorConfig {
        fixture: fx,
        ..EmulatorConfig::default()
    })
    .await;
    for op in [
        "CreateDirectory",
        "RenameFileOrDirectory",
        "MoveFile",
        "CopyFile",
    ] {
        let rsp = replay(&emu, capture(op, "family")).await;
        assert_eq!(rsp["RSP_CODE"], "120002", "{op}");
    }
    // DeleteFile names no family: it addresses the token's own, which does not hold the id.
    let rsp = replay(&emu, capture("DeleteFile", "family")).await;
    assert_ne!(rsp["RSP_CODE"], "0000");
}
