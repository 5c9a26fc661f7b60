//! A token's full value (or its 16-character wohome key) never reaches the logs, on success
//! or on any failure, from the client or the emulator.

use crate::common::{demo, demo_refresh, start_demo};
use serde_json::json;
use tokenlb_test_support::logs::Logs;
use tokenlb_wopan::emulator::DEMO_TOKENS;
use tokenlb_wopan::Space;

#[tokio::test]
async fn tokens_never_appear_in_logs() {
    let (capture, _guard) = Logs::capture(tracing::Level::TRACE);

    let emu = start_demo().await;
    let c = emu.client();
    c.check_deep(&demo(0), &Space::Personal).await.unwrap();
    let file = c
        .resolve_path(&demo(0), &Space::Personal, "BD-another/01.mp4")
        .await
        .unwrap();
    c.download_url(&demo(0), &file.fid).await.unwrap();
    let pair = c.refresh_token(&demo_refresh(1)).await.unwrap();
    emu.control(json!({"tokens": {DEMO_TOKENS[2].access_token: "expired"}}))
        .await;
    assert!(c
        .list_page(&demo(2), &Space::Personal, "0", 0, 1)
        .await
        .is_err());
    assert!(c.refresh_token(&demo_refresh(1)).await.is_err());
    assert!(c.query_user(&demo(1)).await.is_err());
    // Writes and uploads (the token also travels in the upload's form), on success and on
    // failure.
    let dir = c
        .create_directory(&demo(0), &Space::Personal, "0", "logs")
        .await
        .unwrap();
    let body = futures::stream::iter(vec![Ok::<_, String>(bytes::Bytes::from_static(b"abc"))]);
    let target = tokenlb_wopan::UploadTarget {
        space: &Space::Personal,
        dir_id: &dir,
        name: "a.txt",
        size: 3,
    };
    c.upload(&demo(0), target.clone(), body).await.unwrap();
    emu.control(json!({"tokens": {DEMO_TOKENS[0].access_token: "expired"}}))
        .await;
    let body = futures::stream::iter(vec![Ok::<_, String>(bytes::Bytes::from_static(b"abc"))]);
    let zone = emu.base.clone();
    assert!(c.upload_to(&zone, &demo(0), target, body).await.is_err());
    assert!(c.empty_recycle(&demo(0)).await.is_err());

    let logs = capture.text();
    assert!(
        logs.contains("wopan call ok"),
        "the capture saw the client's traces"
    );
    assert!(logs.contains("wopan call failed"));
    let mut secrets: Vec<String> = vec![
        pair.access_token.expose().into(),
        pair.refresh_token.expose().into(),
    ];
    for t in DEMO_TOKENS {
        secrets.push(t.access_token.into());
        secrets.push(t.access_token[..16].into());
        secrets.push(t.refresh_token.into());
    }
    for s in secrets {
        assert!(!logs.contains(&s), "a secret reached the logs");
    }
}
