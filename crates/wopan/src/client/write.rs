//! The write operations of the drive: create, rename, move, copy, delete, empty the recycle
//! bin, and the upload host (`GetZoneInfo`).
//!
//! Each is one wohome call whose `param` comes from [`crate::params`]; the mutations answer
//! `DATA:""` except `CreateDirectory`, which answers the new folder's `{id}` (research notes
//! §4, §5.2). The ids are the 32-hex `id` of listing entries, never paths: resolving a path
//! is the caller's business ([`WopanClient::resolve_path`]), so a caller that has the
//! listing cached pays for no extra walk. Errors are the same [`WopanError`]s as the reads.

use super::WopanClient;
use crate::crypto::ChannelKey;
use crate::envelope::{BodyFlag, Channel, Data};
use crate::error::WopanError;
use crate::params;
use crate::types::{CreatedDirectory, FileEntry, Space, ZoneInfo};
use serde_json::Value;
use tokenlb_core::Secret;

/// Entries of one operation, split by kind as the service wants them (`dirList`, `fileList`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub dirs: Vec<String>,
    pub files: Vec<String>,
}

impl Selection {
    /// The ids of `entries`, folders and files apart.
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a FileEntry>) -> Selection {
        let mut s = Selection::default();
        for e in entries {
            if e.is_folder() {
                s.dirs.push(e.id.clone());
            } else {
                s.files.push(e.id.clone());
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.files.is_empty()
    }
}

impl WopanClient {
    /// A mutation that answers `DATA:""` (anything else is accepted and ignored, as the SDK
    /// does).
    async fn mutation(&self, op: &str, token: &Secret, param: Value) -> Result<(), WopanError> {
        self.wohome(op, token, param).await.map(|_| ())
    }

    /// `CreateDirectory`: a folder `name` in `parent_id`; its new id.
    pub async fn create_directory(
        &self,
        token: &Secret,
        space: &Space,
        parent_id: &str,
        name: &str,
    ) -> Result<String, WopanError> {
        const OP: &str = "CreateDirectory";
        let param = params::create_directory(space, parent_id, name);
        let (data, key) = self.wohome(OP, token, param).await?;
        if data == Data::Empty {
            return Err(WopanError::malformed(OP, "answer has no new id"));
        }
        let created: CreatedDirectory = data.decode(OP, &key)?;
        if created.id.is_empty() {
            return Err(WopanError::malformed(OP, "answer has an empty id"));
        }
        Ok(created.id)
    }

    /// `RenameFileOrDirectory`: gives `entry` the name `name` (same folder). `fileType` is
    /// `"0"` for a folder and, for a file, the type of the new name (as the SDK sends it).
    pub async fn rename(
        &self,
        token: &Secret,
        space: &Space,
        entry: &FileEntry,
        name: &str,
    ) -> Result<(), WopanError> {
        let file_type = if entry.is_folder() {
            "0"
        } else {
            crate::types::file_type_for_name(name)
        };
        let param = params::rename(space, entry.entry_type, file_type, &entry.id, name);
        self.mutation("RenameFileOrDirectory", token, param).await
    }

    /// `MoveFile`: moves the selection into the folder `target_dir_id` of the same space.
    pub async fn move_entries(
        &self,
        token: &Secret,
        space: &Space,
        what: &Selection,
        target_dir_id: &str,
    ) -> Result<(), WopanError> {
        let param = params::move_files(space, target_dir_id, &what.dirs, &what.files);
        self.mutation("MoveFile", token, param).await
    }

    /// `CopyFile`: copies the selection into the folder `target_dir_id` of the same space.
    pub async fn copy_entries(
        &self,
        token: &Secret,
        space: &Space,
        what: &Selection,
        target_dir_id: &str,
    ) -> Result<(), WopanError> {
        let param = params::copy_files(space, target_dir_id, &what.dirs, &what.files);
        self.mutation("CopyFile", token, param).await
    }

    /// `DeleteFile`: moves the selection to the recycle bin.
    pub async fn delete_entries(
        &self,
        token: &Secret,
        space: &Space,
        what: &Selection,
    ) -> Result<(), WopanError> {
        let param = params::delete_files(space, &what.dirs, &what.files);
        self.mutation("DeleteFile", token, param).await
    }

    /// `EmptyRecycleData`: empties the recycle bin for good.
    pub async fn empty_recycle(&self, token: &Secret) -> Result<(), WopanError> {
        self.mutation("EmptyRecycleData", token, params::empty_recycle())
            .await
    }

    /// `GetZoneInfo`: the upload host (`scheme://host[:port]`, no trailing slash).
    pub async fn zone_url(&self, token: &Secret) -> Result<String, WopanError> {
        const OP: &str = "GetZoneInfo";
        let key = ChannelKey::wohome(token.expose())
            .map_err(|e| WopanError::TokenTooShort { len: e.len })?;
        let data = self
            .call_flagged(
                Channel::Wohome,
                OP,
                Some(token),
                &key,
                params::zone_info(),
                BodyFlag::Key,
            )
            .await?;
        let zone: ZoneInfo = data.decode(OP, &key)?;
        let url = zone.url.trim().trim_end_matches('/').to_string();
        let ok = reqwest::Url::parse(&url)
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .unwrap_or(false);
        if !ok {
            return Err(WopanError::malformed(
                OP,
                "upload host is not an http(s) URL",
            ));
        }
        Ok(url)
    }
}
