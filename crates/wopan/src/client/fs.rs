//! Directory-level operations built on `QueryAllFiles`: whole listings, the path walk, and the
//! two health checks.
//!
//! The service has no path lookup, no total and no cursor (research notes §5.2, §6): a listing
//! is read page by page (0-based) until a page comes back shorter than the page size, and a
//! path such as `BD-another/01.mp4` is resolved by walking from the root id `"0"`, matching
//! names exactly (case-sensitive), taking the first match, and requiring every intermediate
//! component to be a folder. The walk stops paging a directory as soon as the name appears.

use super::WopanClient;
use crate::error::WopanError;
use crate::types::{FileEntry, Space, UserInfo};
use tokenlb_core::Secret;

/// The root directory id, in personal and family space alike.
pub const ROOT_ID: &str = "0";

impl WopanClient {
    /// Every entry of a directory, reading pages of the configured size until a short page.
    pub async fn list_all(
        &self,
        token: &Secret,
        space: &Space,
        dir_id: &str,
    ) -> Result<Vec<FileEntry>, WopanError> {
        let size = self.cfg.page_size;
        let mut all = Vec::new();
        for page in 0..self.cfg.max_pages {
            let listing = self.list_page(token, space, dir_id, page, size).await?;
            let n = listing.files.len();
            all.extend(listing.files);
            if n < size as usize {
                return Ok(all);
            }
        }
        Err(WopanError::malformed(
            "QueryAllFiles",
            format!("no short page after {} pages", self.cfg.max_pages),
        ))
    }

    /// The first entry named exactly `name` in directory `dir_id`, paging only as far as needed.
    async fn find_in_dir(
        &self,
        token: &Secret,
        space: &Space,
        dir_id: &str,
        name: &str,
    ) -> Result<Option<FileEntry>, WopanError> {
        let size = self.cfg.page_size;
        for page in 0..self.cfg.max_pages {
            let listing = self.list_page(token, space, dir_id, page, size).await?;
            let n = listing.files.len();
            if let Some(e) = listing.files.into_iter().find(|e| e.name == name) {
                return Ok(Some(e));
            }
            if n < size as usize {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Resolves `a/b/c` from the root: the entry of the last component. Leading, trailing and
    /// doubled slashes are ignored; an empty path is not an entry (use [`ROOT_ID`]).
    pub async fn resolve_path(
        &self,
        token: &Secret,
        space: &Space,
        path: &str,
    ) -> Result<FileEntry, WopanError> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let (last, folders) = match parts.split_last() {
            Some(split) => split,
            None => {
                return Err(WopanError::NotFound {
                    path: path.to_string(),
                })
            }
        };
        let mut dir = ROOT_ID.to_string();
        let mut walked = String::new();
        for part in folders {
            walked = join(&walked, part);
            let entry = self.find_in_dir(token, space, &dir, part).await?;
            match entry {
                None => return Err(WopanError::NotFound { path: walked }),
                Some(e) if !e.is_folder() => return Err(WopanError::NotAFolder { path: walked }),
                Some(e) => dir = e.id,
            }
        }
        let walked = join(&walked, last);
        self.find_in_dir(token, space, &dir, last)
            .await?
            .ok_or(WopanError::NotFound { path: walked })
    }

    /// The directory id of a folder path (`""` or `"/"` is the root `"0"`).
    pub async fn dir_id_for_path(
        &self,
        token: &Secret,
        space: &Space,
        path: &str,
    ) -> Result<String, WopanError> {
        if path.split('/').all(|p| p.is_empty()) {
            return Ok(ROOT_ID.to_string());
        }
        let entry = self.resolve_path(token, space, path).await?;
        if entry.is_folder() {
            Ok(entry.id)
        } else {
            Err(WopanError::NotAFolder {
                path: path.to_string(),
            })
        }
    }

    /// Light health check: one `AppQueryUser` (api-user channel).
    pub async fn check_light(&self, token: &Secret) -> Result<UserInfo, WopanError> {
        self.query_user(token).await
    }

    /// Deep health check: `AppQueryUser`, then a one-entry listing of the root of `space` on
    /// the wohome channel, which also proves that the token keys the wohome cipher.
    pub async fn check_deep(&self, token: &Secret, space: &Space) -> Result<UserInfo, WopanError> {
        let user = self.query_user(token).await?;
        self.list_page(token, space, ROOT_ID, 0, 1).await?;
        Ok(user)
    }
}

fn join(walked: &str, part: &str) -> String {
    if walked.is_empty() {
        part.to_string()
    } else {
        format!("{walked}/{part}")
    }
}
