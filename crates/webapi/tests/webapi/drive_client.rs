//! The Rust client's drive calls (`tokenlb_client::DriveClient`) against the whole system on
//! loopback: one file's story from folder to deletion, each step seen in the next listing,
//! the web API's refusals as typed errors, and writes refused without the key.

use crate::support::Stack;
use bytes::Bytes;
use tokenlb_client::{DriveClient, DriveError};
use tokenlb_core::Secret;

const KEY: &str = "webapi-test-client-key-0123456789";

fn names(l: &tokenlb_client::drive::Listing) -> Vec<String> {
    let mut n: Vec<String> = l.entries.iter().map(|e| e.name.clone()).collect();
    n.sort();
    n
}

#[tokio::test]
async fn the_rust_client_drives_the_drive() {
    let s = Stack::start_with(|c| c.api_key = Some(Secret::new(KEY))).await;
    let reader = DriveClient::new(&s.web_url).unwrap();
    let drive = reader.clone().with_key(Secret::new(KEY));

    let root = drive.folders(None, true).await.unwrap();
    assert_eq!(root.source, "realtime");
    assert!(names(&root).contains(&"BD-another".to_string()), "{root:?}");
    let used = drive.usage(true).await.unwrap().used_bytes;

    let made = drive.create_folder("ClientDir").await.unwrap();
    assert_eq!(made.path, "ClientDir");
    assert!(made.entry.is_folder());
    assert!(names(&drive.folders(None, false).await.unwrap()).contains(&"ClientDir".to_string()));

    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let up = drive
        .upload("ClientDir/a.bin", data.len() as u64, body)
        .await
        .unwrap();
    assert_eq!(
        (up.path.as_str(), up.entry.size),
        ("ClientDir/a.bin", data.len() as u64)
    );
    let listing = drive.files("ClientDir", false).await.unwrap();
    assert_eq!(
        listing.source, "cache",
        "the write refreshed the cached listing"
    );
    assert_eq!(names(&listing), vec!["a.bin"]);
    let link = drive.download_link("ClientDir/a.bin").await.unwrap();
    let got = reqwest::get(&link.download_url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        got.as_ref(),
        data.as_slice(),
        "the uploaded bytes come back"
    );
    assert!(drive.usage(true).await.unwrap().used_bytes >= used + data.len() as u64);

    // The web API's refusals arrive typed, with its code.
    match drive.create_folder("ClientDir").await {
        Err(DriveError::Http {
            status: 409, code, ..
        }) => assert_eq!(code, "name_taken"),
        other => panic!("{other:?}"),
    }
    match drive.rename("NoSuchDir/a.bin", "b.bin").await {
        Err(DriveError::Http { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }

    let renamed = drive.rename("ClientDir/a.bin", "b.bin").await.unwrap();
    assert_eq!(renamed.path, "ClientDir/b.bin");
    let copied = drive
        .copy_to(&["ClientDir/b.bin"], "BD-another")
        .await
        .unwrap();
    assert_eq!(copied[0].to, "BD-another/b.bin");
    let moved = drive.move_to(&["ClientDir/b.bin"], "").await.unwrap();
    assert_eq!(
        (moved[0].from.as_str(), moved[0].to.as_str()),
        ("ClientDir/b.bin", "b.bin")
    );
    assert!(names(&drive.files("ClientDir", false).await.unwrap()).is_empty());
    let deleted = drive
        .delete(&["b.bin", "BD-another/b.bin", "ClientDir"])
        .await
        .unwrap();
    assert_eq!(deleted.len(), 3, "{deleted:?}");
    let root = drive.folders(None, false).await.unwrap();
    assert!(!names(&root).contains(&"ClientDir".to_string()), "{root:?}");

    // Without the key: refused before anything is sent; with a wrong one, 401.
    assert!(matches!(
        reader.create_folder("X").await,
        Err(DriveError::NoKey)
    ));
    let wrong = reader
        .clone()
        .with_key(Secret::new("not-the-key-000000000000"));
    match wrong.create_folder("X").await {
        Err(DriveError::Http { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
}
