//! The write operations the emulator answers: `CreateDirectory`, `RenameFileOrDirectory`,
//! `MoveFile`, `CopyFile`, `DeleteFile`, `EmptyRecycleData`.
//!
//! Each reads the captured parameters (research notes §5.2; the field table is in
//! [`crate::params`]), checks the space against the token's family as the reads do, changes
//! the tree ([`super::tree`]) and answers as the real service does: `DATA:""`, except
//! `CreateDirectory`, whose DATA is the encrypted `{id}`. Move and copy work within one space
//! (`sourceType` = `targetType`); the family id is `fromFamilyId`/`familyId` for the source
//! and `familyId` for the target, or the token's family when the call names none.

use super::ops::{num_param, space_from, str_param, Reply};
use super::state::TokenRec;
use super::tree::{SpaceKey, TreeError};
use super::Shared;
use serde_json::{json, Value};

fn refused(e: TreeError) -> Reply {
    let (code, desc) = match e {
        TreeError::NoSuchEntry => ("0007", "文件或目录不存在"),
        TreeError::NameTaken => ("0008", "文件名已存在"),
        TreeError::IntoItself => ("0009", "不能移动到自身或其子目录"),
        TreeError::BadName => ("0010", "文件名不合法"),
    };
    Reply::biz(code, desc)
}

fn malformed() -> Reply {
    Reply::biz("0001", "请求报文格式错误")
}

fn done(r: Result<(), TreeError>) -> Reply {
    match r {
        Ok(()) => Reply::Empty,
        Err(e) => refused(e),
    }
}

/// A list of string ids (at most 1,000), or `None` when the field is not one.
fn id_list(param: &Value, name: &str) -> Option<Vec<String>> {
    match param.get(name) {
        None => Some(Vec::new()),
        Some(Value::Array(a)) if a.len() <= 1000 => {
            a.iter().map(|v| v.as_str().map(str::to_string)).collect()
        }
        Some(_) => None,
    }
}

/// `dirList` and `fileList` as one list, each id checked to be of its kind.
fn selection(s: &Shared, space: SpaceKey, param: &Value) -> Result<Vec<String>, Reply> {
    let (Some(dirs), Some(files)) = (id_list(param, "dirList"), id_list(param, "fileList")) else {
        return Err(malformed());
    };
    let tree = s.tree.read();
    let t = tree
        .space(space)
        .ok_or_else(|| refused(TreeError::NoSuchEntry))?;
    let kind_ok =
        |id: &String, folder: bool| t.get(id).is_some_and(|n| n.entry.is_folder() == folder);
    if !dirs.iter().all(|d| kind_ok(d, true)) || !files.iter().all(|f| kind_ok(f, false)) {
        return Err(refused(TreeError::NoSuchEntry));
    }
    Ok(dirs.into_iter().chain(files).collect())
}

pub(crate) fn wohome(s: &Shared, op: &str, param: &Value, rec: &TokenRec) -> Reply {
    let creator = rec.user.phone.as_str();
    match op {
        "CreateDirectory" => {
            let space = match space_from(param, "spaceType", &["familyId"], false, rec, s) {
                Ok(space) => space,
                Err(r) => return r,
            };
            let (Some(parent), Some(name)) = (
                str_param(param, "parentDirectoryId"),
                str_param(param, "directoryName"),
            ) else {
                return malformed();
            };
            match s.tree.write().create_dir(space, parent, name, creator) {
                Ok(id) => Reply::Encrypted(json!({ "id": id })),
                Err(e) => refused(e),
            }
        }
        "RenameFileOrDirectory" => {
            let space = match space_from(param, "spaceType", &["familyId"], false, rec, s) {
                Ok(space) => space,
                Err(r) => return r,
            };
            let (Some(id), Some(name)) = (str_param(param, "id"), str_param(param, "name")) else {
                return malformed();
            };
            // `type` (0 folder / 1 file) must agree with the entry when given.
            if let Some(t) = num_param(param, "type") {
                let kind = s
                    .tree
                    .read()
                    .space(space)
                    .and_then(|tree| tree.get(id).map(|n| n.entry.entry_type));
                if kind.is_some_and(|k| k != t) {
                    return refused(TreeError::NoSuchEntry);
                }
            }
            let file_type = str_param(param, "fileType");
            done(s.tree.write().rename(space, id, name, file_type))
        }
        "MoveFile" | "CopyFile" => transfer(s, op == "MoveFile", param, rec),
        "DeleteFile" => {
            let space = match space_from(param, "spaceType", &["familyId"], true, rec, s) {
                Ok(space) => space,
                Err(r) => return r,
            };
            match selection(s, space, param) {
                Ok(ids) => done(s.tree.write().delete(space, &ids)),
                Err(r) => r,
            }
        }
        "EmptyRecycleData" => {
            s.tree.write().empty_recycle();
            Reply::Empty
        }
        _ => Reply::biz("0005", "未知的接口"),
    }
}

fn transfer(s: &Shared, moving: bool, param: &Value, rec: &TokenRec) -> Reply {
    let from = space_from(
        param,
        "sourceType",
        &["fromFamilyId", "familyId"],
        true,
        rec,
        s,
    );
    let to = space_from(param, "targetType", &["familyId"], true, rec, s);
    let (from, to) = match (from, to) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if from != to {
        return Reply::biz("0006", "不支持的空间类型");
    }
    let Some(target) = str_param(param, "targetDirId") else {
        return malformed();
    };
    let ids = match selection(s, from, param) {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    let mut tree = s.tree.write();
    done(if moving {
        tree.move_to(from, &ids, target)
    } else {
        tree.copy_to(from, &ids, target, &rec.user.phone)
    })
}
