//! The `param` of each write operation, as pure functions of what the caller asks for.
//!
//! Kept apart from the transport so the known-answer tests can hold each one against the
//! captured plaintext (`research/wopan-captures.json`) without a server. Field names, types
//! and the family fields follow the captures exactly (research notes §5.2):
//!
//! | operation | family space adds | notes |
//! |---|---|---|
//! | `CreateDirectory` | `familyId` | personal sends `familyId` too: `"0"` here (OpenWoPan), the web UI's default family id in the capture |
//! | `RenameFileOrDirectory` | `familyId` | `type` is a number (0 folder, 1 file), `fileType` a string |
//! | `MoveFile` | `familyId`, `fromFamilyId` | `sourceType`/`targetType` are the space type; `secret:false` inside the param |
//! | `CopyFile` | `familyId` | as `MoveFile`; the family capture has no `fromFamilyId` |
//! | `DeleteFile` | — | `vipLevel:"0"`; the family capture carries no family id |
//! | `EmptyRecycleData` | — | `{clientId}` only |
//! | `GetZoneInfo` | — | `{appId}`; the body flag is `key:true` |
//!
//! JSON key order does not matter to the service (notes §3), so these are compared as values.

use crate::crypto::CLIENT_ID;
use crate::types::{file_type_for_name, FileInfo, Space};
use serde_json::{json, Value};

/// The app id `GetZoneInfo` names (the only call that uses it).
pub const APP_ID: &str = "10000001";

fn with_family(mut param: Value, space: &Space, fields: &[&str]) -> Value {
    if let (Some(f), Some(obj)) = (space.family_id(), param.as_object_mut()) {
        for name in fields {
            obj.insert((*name).to_string(), Value::String(f.to_string()));
        }
    }
    param
}

/// `CreateDirectory`: a folder `name` inside `parent_id`.
pub fn create_directory(space: &Space, parent_id: &str, name: &str) -> Value {
    json!({
        "spaceType": space.space_type(),
        "familyId": space.family_id().unwrap_or("0"),
        "parentDirectoryId": parent_id,
        "directoryName": name,
        "clientId": CLIENT_ID,
    })
}

/// `RenameFileOrDirectory`: `entry_type` 0 folder / 1 file, `file_type` as listed.
pub fn rename(space: &Space, entry_type: u64, file_type: &str, id: &str, name: &str) -> Value {
    let param = json!({
        "spaceType": space.space_type(),
        "type": entry_type,
        "fileType": file_type,
        "id": id,
        "name": name,
        "clientId": CLIENT_ID,
    });
    with_family(param, space, &["familyId"])
}

fn transfer(space: &Space, target_dir_id: &str, dirs: &[String], files: &[String]) -> Value {
    json!({
        "targetDirId": target_dir_id,
        "sourceType": space.space_type(),
        "targetType": space.space_type(),
        "dirList": dirs,
        "fileList": files,
        "secret": false,
        "clientId": CLIENT_ID,
    })
}

/// `MoveFile`: folders `dirs` and files `files` (ids) into `target_dir_id`, same space.
pub fn move_files(space: &Space, target_dir_id: &str, dirs: &[String], files: &[String]) -> Value {
    let param = transfer(space, target_dir_id, dirs, files);
    with_family(param, space, &["familyId", "fromFamilyId"])
}

/// `CopyFile`: as [`move_files`], the originals stay.
pub fn copy_files(space: &Space, target_dir_id: &str, dirs: &[String], files: &[String]) -> Value {
    let param = transfer(space, target_dir_id, dirs, files);
    with_family(param, space, &["familyId"])
}

/// `DeleteFile`: folders `dirs` and files `files` (ids) go to the recycle bin.
pub fn delete_files(space: &Space, dirs: &[String], files: &[String]) -> Value {
    json!({
        "spaceType": space.space_type(),
        "vipLevel": "0",
        "dirList": dirs,
        "fileList": files,
        "clientId": CLIENT_ID,
    })
}

/// `EmptyRecycleData`: empties the recycle bin.
pub fn empty_recycle() -> Value {
    json!({ "clientId": CLIENT_ID })
}

/// `GetZoneInfo`: which upload host to use.
pub fn zone_info() -> Value {
    json!({ "appId": APP_ID })
}

/// `QueryCloudUsageInfo`: quota of the account whose phone (AppQueryUser `userId`) is given.
pub fn cloud_usage(phone: &str) -> Value {
    json!({ "phoneNum": phone, "clientId": CLIENT_ID })
}

/// The `fileInfo` of an upload (encrypted with the wohome key before it is sent).
pub fn file_info(space: &Space, dir_id: &str, batch_no: &str, name: &str, size: u64) -> FileInfo {
    FileInfo {
        space_type: space.space_type().to_string(),
        directory_id: dir_id.to_string(),
        batch_no: batch_no.to_string(),
        file_name: name.to_string(),
        file_size: size,
        file_type: file_type_for_name(name).to_string(),
        family_id: space.family_id().map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_space_never_names_a_family_except_create() {
        let p = Space::Personal;
        let ids = vec!["a".to_string()];
        assert!(rename(&p, 1, "1", "x", "y").get("familyId").is_none());
        assert!(move_files(&p, "t", &ids, &[]).get("fromFamilyId").is_none());
        assert!(copy_files(&p, "t", &[], &ids).get("familyId").is_none());
        assert_eq!(create_directory(&p, "0", "d")["familyId"], "0");
        assert!(file_info(&p, "0", "b", "n.bin", 1).family_id.is_none());
    }

    #[test]
    fn family_space_fields() {
        let f = Space::Family {
            family_id: "42".into(),
        };
        let m = move_files(&f, "t", &[], &[]);
        assert_eq!(
            (&m["familyId"], &m["fromFamilyId"]),
            (&json!("42"), &json!("42"))
        );
        assert_eq!(m["sourceType"], "1");
        assert!(copy_files(&f, "t", &[], &[]).get("fromFamilyId").is_none());
        assert_eq!(rename(&f, 0, "0", "x", "y")["familyId"], "42");
        assert_eq!(file_info(&f, "0", "b", "a.mp4", 9).file_type, "2");
    }
}
