//! The emulator's file tree: every space's folders and files, changed by the write
//! operations.
//!
//! Built from a [`Fixture`]: each space (personal, every family) is a map from entry id to
//! node, with each folder's children kept in order (the listing order) and a global fid index
//! for download links. Entries are stored as the wire type [`FileEntry`], so a listing is a
//! copy. Fixture ids are the MD5 of the space and path (32 hex, like the real ones) unless the
//! fixture names one, and fids are 64 base64 characters with `+` and `/` like the real ones,
//! both stable across restarts so a consumer's cached listings stay valid; entries made later
//! (folders, uploads, copies) get random ids and fids.
//!
//! Content: a fixture file's bytes are generated from a seed ([`super::content_bytes`]), an
//! uploaded file's are stored; a copy shares its original's content. Deleting moves a subtree
//! to the space's recycle bin, which still counts towards the quota until
//! `EmptyRecycleData` (personal space only: that call names no space).
//!
//! Each operation checks what the real service is expected to refuse (unknown ids, a name
//! taken in the folder, a folder moved into itself) and answers a [`TreeError`]; the real
//! codes for those cases are unknown, so the dispatcher maps them to the emulator's own
//! (module docs of [`crate::emulator`]).

use super::fixture::{Fixture, FixtureEntry};
use crate::types::{file_type_for_name, FileEntry};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use md5::{Digest, Md5};
use rand::Rng;
use std::collections::{BTreeMap, HashMap};

/// Which space a node lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SpaceKey {
    Personal,
    Family(u64),
}

impl SpaceKey {
    fn label(self) -> String {
        match self {
            SpaceKey::Personal => "personal".into(),
            SpaceKey::Family(id) => format!("family:{id}"),
        }
    }
}

/// Where a file's bytes come from.
#[derive(Clone, Debug)]
pub(crate) enum Content {
    /// Generated from this seed (the fixture entry's original id).
    Generated(String),
    /// Uploaded.
    Stored(Bytes),
}

#[derive(Clone)]
pub(crate) struct Node {
    pub entry: FileEntry,
    /// The parent folder's id (`"0"` for the root).
    pub parent: String,
    pub children: Vec<String>,
    pub content: Content,
}

/// Why a write was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TreeError {
    /// An id that is not in this space (or a parent that is a file).
    NoSuchEntry,
    /// The name is already used in that folder.
    NameTaken,
    /// A folder moved or copied into itself or below itself.
    IntoItself,
    /// Empty, over 255 bytes, or containing `/`.
    BadName,
}

/// One space's entries.
#[derive(Default)]
pub(crate) struct SpaceTree {
    nodes: HashMap<String, Node>,
    /// Children of the root id "0".
    root: Vec<String>,
    /// Bytes of files deleted but not yet purged.
    recycled_bytes: u64,
}

fn check_name(name: &str) -> Result<(), TreeError> {
    if name.trim().is_empty() || name.len() > 255 || name.contains('/') {
        return Err(TreeError::BadName);
    }
    Ok(())
}

impl SpaceTree {
    /// The entries of a directory, in order, or `None` for an unknown id or a file.
    pub fn list(&self, dir_id: &str) -> Option<Vec<&FileEntry>> {
        let ids = self.children_of(dir_id)?;
        Some(
            ids.iter()
                .filter_map(|i| self.nodes.get(i))
                .map(|n| &n.entry)
                .collect(),
        )
    }

    fn children_of(&self, dir_id: &str) -> Option<&Vec<String>> {
        if dir_id == "0" {
            return Some(&self.root);
        }
        let node = self.nodes.get(dir_id)?;
        node.entry.is_folder().then_some(&node.children)
    }

    fn children_mut(&mut self, dir_id: &str) -> Option<&mut Vec<String>> {
        if dir_id == "0" {
            return Some(&mut self.root);
        }
        let node = self.nodes.get_mut(dir_id)?;
        if node.entry.is_folder() {
            Some(&mut node.children)
        } else {
            None
        }
    }

    pub fn get(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// Total bytes of files in this space, the recycle bin included.
    pub fn used_bytes(&self) -> u64 {
        self.files().map(|e| e.size).sum::<u64>() + self.recycled_bytes
    }

    /// Every file entry.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        self.nodes
            .values()
            .map(|n| &n.entry)
            .filter(|e| !e.is_folder())
    }

    fn name_taken(&self, dir_id: &str, name: &str, except: Option<&str>) -> bool {
        self.list(dir_id)
            .unwrap_or_default()
            .iter()
            .any(|e| e.name == name && Some(e.id.as_str()) != except)
    }

    /// Is `id` the folder `ancestor` or somewhere below it?
    fn is_within(&self, id: &str, ancestor: &str) -> bool {
        let mut id = id.to_string();
        for _ in 0..=self.nodes.len() {
            if id == ancestor {
                return true;
            }
            match self.nodes.get(&id) {
                Some(n) if n.parent != id => id = n.parent.clone(),
                _ => return false,
            }
        }
        false
    }

    fn insert(&mut self, node: Node) {
        let (id, parent) = (node.entry.id.clone(), node.parent.clone());
        self.nodes.insert(id.clone(), node);
        if let Some(kids) = self.children_mut(&parent) {
            kids.push(id);
        }
    }

    /// Takes a subtree out; its nodes, root first.
    fn detach(&mut self, id: &str) -> Vec<Node> {
        let Some(node) = self.nodes.get(id) else {
            return Vec::new();
        };
        let parent = node.parent.clone();
        if let Some(kids) = self.children_mut(&parent) {
            kids.retain(|k| k != id);
        }
        let mut out = Vec::new();
        let mut stack = vec![id.to_string()];
        while let Some(next) = stack.pop() {
            if let Some(n) = self.nodes.remove(&next) {
                stack.extend(n.children.iter().rev().cloned());
                out.push(n);
            }
        }
        out
    }
}

/// A family space and its display name.
pub(crate) struct FamilySpace {
    pub name: String,
    pub tree: SpaceTree,
}

/// Every space, plus the fid index.
pub(crate) struct Tree {
    pub personal: SpaceTree,
    pub families: BTreeMap<u64, FamilySpace>,
    by_fid: HashMap<String, (SpaceKey, String)>,
}

fn md5_of(s: &str) -> [u8; 16] {
    Md5::digest(s.as_bytes()).into()
}

/// The 32-hex id of a path in a space.
fn entry_id(space: SpaceKey, path: &str) -> String {
    hex::encode(md5_of(&format!("id:{}:{path}", space.label())))
}

/// A 64-character base64 fid (48 bytes) derived from the path.
fn entry_fid(space: SpaceKey, path: &str) -> String {
    let mut bytes = Vec::with_capacity(48);
    for round in 0..3 {
        bytes.extend_from_slice(&md5_of(&format!("fid{round}:{}:{path}", space.label())));
    }
    STANDARD.encode(bytes)
}

fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn random_fid() -> String {
    let mut bytes = [0u8; 48];
    rand::thread_rng().fill(&mut bytes[..]);
    STANDARD.encode(bytes)
}

/// `yyyyMMddHHmmss` now, China time (what listings show).
fn create_time_now() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8))
        .format("%Y%m%d%H%M%S")
        .to_string()
}

struct Builder<'a> {
    space: SpaceKey,
    creator: &'a str,
    family_id: u64,
    tree: SpaceTree,
}

impl Builder<'_> {
    fn node(&self, path: &str, parent: &str, e: &FixtureEntry, size: Option<u64>) -> Node {
        let folder = size.is_none();
        let id = e.id.clone().unwrap_or_else(|| entry_id(self.space, path));
        let fid = if folder {
            "0".to_string()
        } else {
            entry_fid(self.space, path)
        };
        let file_type = match (folder, e.file_type.as_deref()) {
            (true, _) => "0".to_string(),
            (false, Some(t)) => t.to_string(),
            (false, None) => file_type_for_name(&e.name).to_string(),
        };
        let entry = FileEntry {
            id: id.clone(),
            fid,
            name: e.name.clone(),
            entry_type: if folder { 0 } else { 1 },
            file_type,
            size: size.unwrap_or(0),
            create_time: e
                .create_time
                .clone()
                .unwrap_or_else(|| "20240315120000".into()),
            creator: self.creator.to_string(),
            family_id: self.family_id,
            shooting_time: String::new(),
            thumb_url: String::new(),
        };
        Node {
            entry,
            parent: parent.to_string(),
            children: Vec::new(),
            content: Content::Generated(id),
        }
    }

    fn add_all(&mut self, prefix: &str, parent: &str, entries: &[FixtureEntry]) {
        for e in entries {
            let path = format!("{prefix}/{}", e.name);
            if !e.is_folder() {
                let n = self.node(&path, parent, e, Some(e.size.unwrap_or(0)));
                self.tree.insert(n);
                continue;
            }
            let n = self.node(&path, parent, e, None);
            let id = n.entry.id.clone();
            self.tree.insert(n);
            self.add_all(&path, &id, e.children.as_deref().unwrap_or_default());
            if let Some(g) = &e.generate {
                for i in 1..=g.count {
                    let name = format!("{}{i:04}{}", g.prefix, g.suffix);
                    let file = FixtureEntry::file(&name, g.size);
                    let n = self.node(&format!("{path}/{name}"), &id, &file, Some(g.size));
                    self.tree.insert(n);
                }
            }
        }
    }
}

impl Tree {
    pub fn build(f: &Fixture) -> Tree {
        let user = f.user.clone().unwrap_or_default();
        let build = |space: SpaceKey, family_id: u64, entries: &[FixtureEntry]| {
            let mut b = Builder {
                space,
                creator: &user.phone,
                family_id,
                tree: SpaceTree::default(),
            };
            b.add_all("", "0", entries);
            b.tree
        };
        let mut tree = Tree {
            personal: build(SpaceKey::Personal, 0, &f.personal),
            families: BTreeMap::new(),
            by_fid: HashMap::new(),
        };
        for fam in &f.families {
            let space = build(SpaceKey::Family(fam.id), fam.id, &fam.files);
            tree.families.insert(
                fam.id,
                FamilySpace {
                    name: fam.name.clone(),
                    tree: space,
                },
            );
        }
        tree.reindex();
        tree
    }

    /// Rebuilds the fid index (the first space holding a fid wins).
    fn reindex(&mut self) {
        let mut by_fid = HashMap::new();
        let spaces = std::iter::once((SpaceKey::Personal, &self.personal)).chain(
            self.families
                .iter()
                .map(|(id, f)| (SpaceKey::Family(*id), &f.tree)),
        );
        for (key, space) in spaces {
            for e in space.files() {
                by_fid.entry(e.fid.clone()).or_insert((key, e.id.clone()));
            }
        }
        self.by_fid = by_fid;
    }

    pub fn space(&self, key: SpaceKey) -> Option<&SpaceTree> {
        match key {
            SpaceKey::Personal => Some(&self.personal),
            SpaceKey::Family(id) => self.families.get(&id).map(|f| &f.tree),
        }
    }

    fn space_mut(&mut self, key: SpaceKey) -> Result<&mut SpaceTree, TreeError> {
        match key {
            SpaceKey::Personal => Ok(&mut self.personal),
            SpaceKey::Family(id) => self
                .families
                .get_mut(&id)
                .map(|f| &mut f.tree)
                .ok_or(TreeError::NoSuchEntry),
        }
    }

    /// The file with this fid: its space, entry and content.
    pub fn by_fid(&self, fid: &str) -> Option<(SpaceKey, &Node)> {
        let (space, id) = self.by_fid.get(fid)?;
        Some((*space, self.space(*space)?.get(id)?))
    }

    fn new_node(
        space: SpaceKey,
        parent: &str,
        name: &str,
        size: Option<u64>,
        creator: &str,
    ) -> Node {
        let folder = size.is_none();
        let id = random_id();
        Node {
            entry: FileEntry {
                id: id.clone(),
                fid: if folder { "0".into() } else { random_fid() },
                name: name.to_string(),
                entry_type: if folder { 0 } else { 1 },
                file_type: if folder {
                    "0".into()
                } else {
                    file_type_for_name(name).into()
                },
                size: size.unwrap_or(0),
                create_time: create_time_now(),
                creator: creator.to_string(),
                family_id: match space {
                    SpaceKey::Personal => 0,
                    SpaceKey::Family(id) => id,
                },
                shooting_time: String::new(),
                thumb_url: String::new(),
            },
            parent: parent.to_string(),
            children: Vec::new(),
            content: Content::Generated(id),
        }
    }

    /// `CreateDirectory`: the new folder's id.
    pub fn create_dir(
        &mut self,
        space: SpaceKey,
        parent: &str,
        name: &str,
        creator: &str,
    ) -> Result<String, TreeError> {
        check_name(name)?;
        let t = self.space_mut(space)?;
        if t.children_of(parent).is_none() {
            return Err(TreeError::NoSuchEntry);
        }
        if t.name_taken(parent, name, None) {
            return Err(TreeError::NameTaken);
        }
        let node = Self::new_node(space, parent, name, None, creator);
        let id = node.entry.id.clone();
        t.insert(node);
        Ok(id)
    }

    /// A finished upload: a new file in `parent`.
    pub fn add_file(
        &mut self,
        space: SpaceKey,
        parent: &str,
        name: &str,
        bytes: Bytes,
        creator: &str,
    ) -> Result<FileEntry, TreeError> {
        check_name(name)?;
        let t = self.space_mut(space)?;
        if t.children_of(parent).is_none() {
            return Err(TreeError::NoSuchEntry);
        }
        if t.name_taken(parent, name, None) {
            return Err(TreeError::NameTaken);
        }
        let mut node = Self::new_node(space, parent, name, Some(bytes.len() as u64), creator);
        node.content = Content::Stored(bytes);
        let entry = node.entry.clone();
        t.insert(node);
        self.by_fid
            .insert(entry.fid.clone(), (space, entry.id.clone()));
        Ok(entry)
    }

    /// `RenameFileOrDirectory`; a file takes the `fileType` the call names, if any.
    pub fn rename(
        &mut self,
        space: SpaceKey,
        id: &str,
        name: &str,
        file_type: Option<&str>,
    ) -> Result<(), TreeError> {
        check_name(name)?;
        let t = self.space_mut(space)?;
        let parent = t.get(id).ok_or(TreeError::NoSuchEntry)?.parent.clone();
        if t.name_taken(&parent, name, Some(id)) {
            return Err(TreeError::NameTaken);
        }
        if let Some(n) = t.nodes.get_mut(id) {
            n.entry.name = name.to_string();
            if let (false, Some(ft)) = (n.entry.is_folder(), file_type) {
                if matches!(ft, "1" | "2" | "3" | "4" | "5") {
                    n.entry.file_type = ft.to_string();
                }
            }
        }
        Ok(())
    }

    /// Checks a move or copy of `ids` into `target` before anything changes.
    fn check_transfer(
        t: &SpaceTree,
        ids: &[String],
        target: &str,
        moving: bool,
    ) -> Result<(), TreeError> {
        if t.children_of(target).is_none() {
            return Err(TreeError::NoSuchEntry);
        }
        let mut names = std::collections::HashSet::new();
        for id in ids {
            let n = t.get(id).ok_or(TreeError::NoSuchEntry)?;
            if n.entry.is_folder() && t.is_within(target, id) {
                return Err(TreeError::IntoItself);
            }
            let same_place = moving && n.parent == target;
            if !same_place
                && (t.name_taken(target, &n.entry.name, None) || !names.insert(&n.entry.name))
            {
                return Err(TreeError::NameTaken);
            }
        }
        Ok(())
    }

    /// `MoveFile` within one space.
    pub fn move_to(
        &mut self,
        space: SpaceKey,
        ids: &[String],
        target: &str,
    ) -> Result<(), TreeError> {
        let t = self.space_mut(space)?;
        Self::check_transfer(t, ids, target, true)?;
        for id in ids {
            let Some(old) = t.get(id).map(|n| n.parent.clone()) else {
                continue;
            };
            if old == target {
                continue;
            }
            if let Some(kids) = t.children_mut(&old) {
                kids.retain(|k| k != id);
            }
            if let Some(n) = t.nodes.get_mut(id) {
                n.parent = target.to_string();
            }
            if let Some(kids) = t.children_mut(target) {
                kids.push(id.clone());
            }
        }
        Ok(())
    }

    /// `CopyFile` within one space: new ids and fids, the same content.
    pub fn copy_to(
        &mut self,
        space: SpaceKey,
        ids: &[String],
        target: &str,
        creator: &str,
    ) -> Result<(), TreeError> {
        let t = self.space_mut(space)?;
        Self::check_transfer(t, ids, target, false)?;
        let mut new_fids = Vec::new();
        for id in ids {
            let mut stack = vec![(id.clone(), target.to_string())];
            while let Some((src, parent)) = stack.pop() {
                let Some(orig) = t.get(&src).cloned() else {
                    continue;
                };
                let size = (!orig.entry.is_folder()).then_some(orig.entry.size);
                let mut copy = Self::new_node(space, &parent, &orig.entry.name, size, creator);
                copy.entry.file_type = orig.entry.file_type.clone();
                copy.content = orig.content.clone();
                if size.is_some() {
                    new_fids.push((copy.entry.fid.clone(), copy.entry.id.clone()));
                }
                let new_id = copy.entry.id.clone();
                t.insert(copy);
                stack.extend(
                    orig.children
                        .iter()
                        .rev()
                        .map(|c| (c.clone(), new_id.clone())),
                );
            }
        }
        for (fid, id) in new_fids {
            self.by_fid.insert(fid, (space, id));
        }
        Ok(())
    }

    /// `DeleteFile`: the subtrees go to the recycle bin (unknown ids refuse the whole call).
    pub fn delete(&mut self, space: SpaceKey, ids: &[String]) -> Result<(), TreeError> {
        let t = self.space_mut(space)?;
        if ids.iter().any(|id| t.get(id).is_none()) {
            return Err(TreeError::NoSuchEntry);
        }
        let mut gone = Vec::new();
        for id in ids {
            for n in t.detach(id) {
                if !n.entry.is_folder() {
                    t.recycled_bytes += n.entry.size;
                    gone.push(n.entry.fid);
                }
            }
        }
        for fid in gone {
            self.by_fid.remove(&fid);
        }
        Ok(())
    }

    /// `EmptyRecycleData`: what was deleted in personal space stops counting.
    pub fn empty_recycle(&mut self) {
        self.personal.recycled_bytes = 0;
    }
}
