//! The typed results of the Wopan operations, with the real field names.
//!
//! The same structs serialise the emulator's answers, so client and emulator cannot drift
//! apart. Reading is lenient where public clients found the service inconsistent (numbers that
//! sometimes arrive as strings, missing optional fields); writing uses the captured types
//! (numeric `type`/`size`/`familyId`, string `fileType`/`createTime`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use tokenlb_core::{Millis, Secret};

/// Which drive space a call addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Space {
    /// The account's own space (`spaceType` "0").
    #[default]
    Personal,
    /// A family space (`spaceType` "1"), by its numeric family id.
    Family { family_id: String },
}

impl Space {
    /// The `spaceType` parameter.
    pub fn space_type(&self) -> &'static str {
        match self {
            Space::Personal => "0",
            Space::Family { .. } => "1",
        }
    }

    pub fn family_id(&self) -> Option<&str> {
        match self {
            Space::Personal => None,
            Space::Family { family_id } => Some(family_id),
        }
    }
}

/// A number that may arrive as a JSON number or a numeric string.
pub(crate) fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom("expected a non-negative integer")),
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom("expected a numeric string")),
        Value::Null => Ok(0),
        _ => Err(serde::de::Error::custom("expected a number")),
    }
}

/// A string that may arrive as a JSON number.
pub(crate) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err(serde::de::Error::custom("expected a string")),
    }
}

/// One entry of a `QueryAllFiles` listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// 32-hex id: the parent id for listings, the target of mutations.
    pub id: String,
    /// File-content id used to ask for download links; `"0"` for folders.
    #[serde(default, deserialize_with = "lenient_string")]
    pub fid: String,
    pub name: String,
    /// 0 = folder, 1 = file.
    #[serde(rename = "type", deserialize_with = "lenient_u64")]
    pub entry_type: u64,
    /// "0" folder, "1" image, "2" video, "3" audio, "4" document, "5" other.
    #[serde(default, deserialize_with = "lenient_string")]
    pub file_type: String,
    /// Bytes; 0 for folders.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub size: u64,
    /// `yyyyMMddHHmmss`, no time zone (most likely China time).
    #[serde(default, deserialize_with = "lenient_string")]
    pub create_time: String,
    /// Masked phone number of the uploader.
    #[serde(default, deserialize_with = "lenient_string")]
    pub creator: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub family_id: u64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub shooting_time: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub thumb_url: String,
}

impl FileEntry {
    pub fn is_folder(&self) -> bool {
        self.entry_type == 0
    }
}

/// One page of `QueryAllFiles`. There is no total or cursor: a short page is the last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    #[serde(default)]
    pub files: Vec<FileEntry>,
    /// Present (as `[]`) at the personal root; element shape unverified, kept raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_dirs: Option<Vec<Value>>,
}

/// `AppQueryUser` DATA. `user_id` is the account's (masked) phone, used as `phoneNum`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct UserInfo {
    #[serde(deserialize_with = "lenient_string")]
    pub user_id: String,
    #[serde(deserialize_with = "lenient_string")]
    pub head_url: String,
    #[serde(deserialize_with = "lenient_string")]
    pub user_name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub sex: String,
    #[serde(deserialize_with = "lenient_string")]
    pub birthday: String,
    #[serde(deserialize_with = "lenient_string")]
    pub is_modify: String,
    #[serde(deserialize_with = "lenient_string")]
    pub is_head_modify: String,
    #[serde(deserialize_with = "lenient_string")]
    pub is_set_password: String,
    /// `yyyyMMddHHmmss`.
    #[serde(deserialize_with = "lenient_string")]
    pub register_time: String,
}

/// `AppRefreshToken` DATA as sent (plain JSON, snake_case).
#[derive(Clone, Serialize, Deserialize)]
pub struct RawTokenPair {
    pub access_token: String,
    #[serde(default)]
    pub token_type: String,
    pub refresh_token: String,
    #[serde(deserialize_with = "lenient_u64")]
    pub expires_in: u64,
    #[serde(default)]
    pub scope: String,
}

/// A fresh pair from `AppRefreshToken`. Both secrets redact themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: Secret,
    /// Store this one: the service may rotate the refresh token.
    pub refresh_token: Secret,
    /// Lifetime in seconds as the service stated it (604799 for web tokens).
    pub expires_in_s: u64,
    /// `now + expires_in`, in Unix milliseconds, computed when the answer arrived.
    pub expires_at: Millis,
}

/// One `{fid, downloadUrl}` item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkItem {
    #[serde(deserialize_with = "lenient_string")]
    pub fid: String,
    #[serde(deserialize_with = "lenient_string")]
    pub download_url: String,
}

/// `GetDownloadUrlV2` DATA: `{"type":1,"list":[…]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkListV2 {
    #[serde(rename = "type", default, deserialize_with = "lenient_u64")]
    pub list_type: u64,
    #[serde(default)]
    pub list: Vec<LinkItem>,
}

/// `FamilyUserCurrentEncode` DATA: the user's default family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct FamilyInfo {
    /// The default family id to use with [`Space::Family`].
    #[serde(deserialize_with = "lenient_u64")]
    pub default_home_id: u64,
    #[serde(deserialize_with = "lenient_u64")]
    pub id: u64,
    #[serde(deserialize_with = "lenient_string")]
    pub default_home_name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub group_name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub group_head_url: String,
    #[serde(deserialize_with = "lenient_string")]
    pub member_role: String,
    #[serde(deserialize_with = "lenient_string")]
    pub count: String,
    #[serde(deserialize_with = "lenient_string")]
    pub unread_flag: String,
}

/// `QueryCloudUsageInfo` DATA.`usageInfo` (sizes in KiB unless `byte*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageInfo {
    #[serde(deserialize_with = "lenient_string")]
    pub total_size: String,
    #[serde(deserialize_with = "lenient_u64")]
    pub used_size: u64,
    #[serde(deserialize_with = "lenient_u64")]
    pub image_size: u64,
    #[serde(deserialize_with = "lenient_u64")]
    pub video_size: u64,
    #[serde(deserialize_with = "lenient_u64")]
    pub audio_size: u64,
    #[serde(deserialize_with = "lenient_u64")]
    pub text_size: u64,
    #[serde(deserialize_with = "lenient_u64")]
    pub other_size: u64,
    #[serde(deserialize_with = "lenient_u64")]
    pub byte_used_size: u64,
    #[serde(deserialize_with = "lenient_string")]
    pub byte_total_size: String,
}

/// `QueryCloudUsageInfo` DATA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct CloudUsage {
    #[serde(deserialize_with = "lenient_string")]
    pub code: String,
    pub usage_info: UsageInfo,
    #[serde(deserialize_with = "lenient_string")]
    pub vip_level: String,
    #[serde(deserialize_with = "lenient_string")]
    pub expire_time: String,
    #[serde(deserialize_with = "lenient_string")]
    pub status: String,
}

impl CloudUsage {
    /// Used bytes (`byteUsedSize`).
    pub fn used_bytes(&self) -> u64 {
        self.usage_info.byte_used_size
    }

    /// Total bytes (`byteTotalSize`), if it parses.
    pub fn total_bytes(&self) -> Option<u64> {
        self.usage_info.byte_total_size.trim().parse().ok()
    }
}

/// The `fileType` of a name, from its extension, following `ClassifyRule`'s groups ("1" image,
/// "2" video, "3" audio, "4" document, "5" other). Used for uploads' `fileInfo` and by the
/// emulator for the entries it creates.
pub fn file_type_for_name(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg" | "png" | "gif" | "bmp" | "webp" | "heic" | "tif" | "tiff") => "1",
        Some("mp4" | "mkv" | "avi" | "mov" | "wmv" | "flv" | "ts" | "m4v") => "2",
        Some("mp3" | "flac" | "wav" | "aac" | "m4a" | "ogg") => "3",
        Some("txt" | "pdf" | "doc" | "docx" | "xls" | "xlsx" | "ppt" | "pptx" | "md") => "4",
        _ => "5",
    }
}

/// `CreateDirectory` DATA: the new folder's id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedDirectory {
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
}

/// `GetZoneInfo` DATA: the upload host (`https://…upload…`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneInfo {
    #[serde(deserialize_with = "lenient_string")]
    pub url: String,
}

/// The `fileInfo` form field of `upload2C`, before encryption (captured field names and
/// types: `fileSize` a number, the rest strings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub space_type: String,
    pub directory_id: String,
    /// `yyyyMMddHHmmss` (China time) of the upload.
    pub batch_no: String,
    pub file_name: String,
    pub file_size: u64,
    pub file_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_id: Option<String>,
}

/// `upload2C`'s answer. Not the dispatcher envelope: `{"code","msg","data":{"fid"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UploadAnswer {
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub msg: String,
    #[serde(default)]
    pub data: Option<UploadData>,
}

/// `upload2C`'s `data`: the new file's `fid` once the last part is in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UploadData {
    #[serde(default, deserialize_with = "lenient_string")]
    pub fid: String,
}

/// A finished upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// The new file's content id (for download links).
    pub fid: String,
    /// Bytes sent.
    pub size: u64,
    /// Parts sent (each one 8 MiB but the last).
    pub parts: u64,
    /// Part attempts that were repeated after a transient failure or a rate limit.
    pub retries: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entry_reads_captured_shape_and_string_numbers() {
        let v = json!({"familyId": 0, "fid": "nmG2/qu+x", "creator": "186****5244", "size": 1599939,
            "createTime": "20220221190017", "name": "bg.png", "shootingTime": "", "id": "6a06",
            "type": 1, "thumbUrl": "", "fileType": "1"});
        let e: FileEntry = serde_json::from_value(v).unwrap();
        assert!(!e.is_folder());
        assert_eq!(e.size, 1599939);
        let e: FileEntry =
            serde_json::from_value(json!({"id":"a","name":"d","type":"0","size":"0"})).unwrap();
        assert!(e.is_folder());
        let back = serde_json::to_value(&e).unwrap();
        assert_eq!(back["type"], json!(0));
        assert_eq!(back["fileType"], json!(""));
    }
}
