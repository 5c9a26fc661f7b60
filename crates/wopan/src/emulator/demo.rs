//! The built-in demo data, served when no fixture is given (`tokenlb wopan-emulator` and
//! `tokenlb up --demo`).
//!
//! Personal space:
//! ```text
//! BD-another/   01.mp4 02.mp4 03.mp4 04.mkv cover.jpg
//!               extras/  trailer.mp4 making-of.mp4
//! Docs/         readme.txt  2024/  report.pdf notes.txt  Q4/ summary.xlsx
//! Photos/       IMG_0001.jpg … IMG_0250.jpg   (250 files: three pages of 100)
//! welcome.txt
//! ```
//! Family space 9263097 (演示家庭): `家庭相册/` (a few photos), `Videos/holiday.mp4`,
//! `BD-another/01.mp4`.
//!
//! Tokens (UUID format, never expiring unless noted; all in family 9263097):
//! [`DEMO_TOKENS`] are healthy; [`DEMO_EXPIRED_TOKEN`] is expired from the start but its
//! refresh token works, which shows the refresh path in a demo.

use super::fixture::{
    ExpiresAt, Fixture, FixtureEntry, FixtureFamily, FixtureToken, FixtureUser, Generate,
};

/// A demo token pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoToken {
    pub name: &'static str,
    pub access_token: &'static str,
    pub refresh_token: &'static str,
}

/// The demo family id.
pub const DEMO_FAMILY_ID: u64 = 9263097;

/// Three healthy demo tokens.
pub const DEMO_TOKENS: [DemoToken; 3] = [
    DemoToken {
        name: "demo-1",
        access_token: "de000001-7e57-4a1b-9c2d-00000000a001",
        refresh_token: "de000001-7e57-4a1b-9c2d-00000000f001",
    },
    DemoToken {
        name: "demo-2",
        access_token: "de000002-7e57-4a1b-9c2d-00000000a002",
        refresh_token: "de000002-7e57-4a1b-9c2d-00000000f002",
    },
    DemoToken {
        name: "demo-3",
        access_token: "de000003-7e57-4a1b-9c2d-00000000a003",
        refresh_token: "de000003-7e57-4a1b-9c2d-00000000f003",
    },
];

/// A demo token that is expired from the start; refreshing it yields a working pair.
pub const DEMO_EXPIRED_TOKEN: DemoToken = DemoToken {
    name: "demo-expired",
    access_token: "de0000ee-7e57-4a1b-9c2d-00000000a0ee",
    refresh_token: "de0000ee-7e57-4a1b-9c2d-00000000f0ee",
};

fn token(t: &DemoToken, expires_at: Option<ExpiresAt>) -> FixtureToken {
    FixtureToken {
        access_token: t.access_token.into(),
        refresh_token: Some(t.refresh_token.into()),
        expires_at,
        ttl_s: None,
        family_id: Some(DEMO_FAMILY_ID),
        user: None,
    }
}

fn files(names: &[(&str, u64)]) -> Vec<FixtureEntry> {
    names
        .iter()
        .map(|(n, s)| FixtureEntry::file(n, *s))
        .collect()
}

/// The demo fixture.
pub fn demo_fixture() -> Fixture {
    let mut tokens: Vec<FixtureToken> = DEMO_TOKENS.iter().map(|t| token(t, None)).collect();
    tokens.push(token(&DEMO_EXPIRED_TOKEN, Some(ExpiresAt::Millis(0))));
    let mut bd = files(&[
        ("01.mp4", 5_242_880),
        ("02.mp4", 3_145_728),
        ("03.mp4", 2_097_152),
        ("04.mkv", 1_048_576),
        ("cover.jpg", 65_536),
    ]);
    bd.push(FixtureEntry::folder(
        "extras",
        files(&[("trailer.mp4", 524_288), ("making-of.mp4", 786_432)]),
    ));
    let mut y2024 = files(&[("report.pdf", 131_072), ("notes.txt", 2_048)]);
    y2024.push(FixtureEntry::folder(
        "Q4",
        files(&[("summary.xlsx", 16_384)]),
    ));
    let mut docs = files(&[("readme.txt", 1_024)]);
    docs.push(FixtureEntry::folder("2024", y2024));
    let photos = FixtureEntry {
        generate: Some(Generate {
            count: 250,
            prefix: "IMG_".into(),
            suffix: ".jpg".into(),
            size: 4_096,
        }),
        ..FixtureEntry::folder("Photos", Vec::new())
    };
    let personal = vec![
        FixtureEntry::folder("BD-another", bd),
        FixtureEntry::folder("Docs", docs),
        photos,
        FixtureEntry::file("welcome.txt", 512),
    ];
    let family = vec![
        FixtureEntry::folder(
            "家庭相册",
            files(&[
                ("合影.jpg", 204_800),
                ("生日.jpg", 153_600),
                ("旅行.png", 307_200),
            ]),
        ),
        FixtureEntry::folder("Videos", files(&[("holiday.mp4", 1_572_864)])),
        FixtureEntry::folder("BD-another", files(&[("01.mp4", 2_621_440)])),
    ];
    Fixture {
        user: Some(FixtureUser::default()),
        tokens,
        personal,
        families: vec![FixtureFamily {
            id: DEMO_FAMILY_ID,
            name: "演示家庭".into(),
            files: family,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_fixture_is_valid_and_has_uuid_tokens() {
        let f = demo_fixture();
        f.validate().unwrap();
        for t in DEMO_TOKENS.iter().chain([&DEMO_EXPIRED_TOKEN]) {
            assert_eq!(t.access_token.len(), 36);
            assert_eq!(t.access_token.matches('-').count(), 4);
        }
    }
}
