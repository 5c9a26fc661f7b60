//! The emulator's file tree, indexed for the calls it answers.
//!
//! Built once from a [`Fixture`]: each space (personal, every family) becomes a flat vector
//! of nodes with child lists, an id index (for `parentDirectoryId`) and a global fid index
//! (for download links). Entries are stored as the wire type [`FileEntry`], so a listing is a
//! slice copy. Ids are the MD5 of the space and path (32 hex, like the real ones) and fids are
//! 64 base64 characters that contain `+` and `/` like the real ones, both stable across
//! restarts so a consumer's cached listings stay valid.

use super::fixture::{Fixture, FixtureEntry};
use crate::types::FileEntry;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use md5::{Digest, Md5};
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

pub(crate) struct Node {
    pub entry: FileEntry,
    pub children: Vec<usize>,
}

/// One space's entries.
#[derive(Default)]
pub(crate) struct SpaceTree {
    pub nodes: Vec<Node>,
    /// Children of the root id "0".
    pub root: Vec<usize>,
    by_id: HashMap<String, usize>,
}

impl SpaceTree {
    /// The children of a directory id, or `None` for an unknown id or a file.
    pub fn children(&self, dir_id: &str) -> Option<&[usize]> {
        if dir_id == "0" {
            return Some(&self.root);
        }
        let node = &self.nodes[*self.by_id.get(dir_id)?];
        node.entry.is_folder().then_some(node.children.as_slice())
    }

    /// Total bytes of files in this space.
    pub fn used_bytes(&self) -> u64 {
        self.nodes.iter().map(|n| n.entry.size).sum()
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
    by_fid: HashMap<String, (SpaceKey, usize)>,
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

struct Builder<'a> {
    space: SpaceKey,
    creator: &'a str,
    family_id: u64,
    tree: SpaceTree,
    fids: Vec<(String, usize)>,
}

impl Builder<'_> {
    fn add(
        &mut self,
        path: &str,
        name: &str,
        size: Option<u64>,
        e: Option<&FixtureEntry>,
    ) -> usize {
        let folder = size.is_none();
        let id = entry_id(self.space, path);
        let fid = if folder {
            "0".to_string()
        } else {
            entry_fid(self.space, path)
        };
        let file_type = match (folder, e.and_then(|e| e.file_type.as_deref())) {
            (true, _) => "0".to_string(),
            (false, Some(t)) => t.to_string(),
            (false, None) => crate::types::file_type_for_name(name).to_string(),
        };
        let entry = FileEntry {
            id: id.clone(),
            fid: fid.clone(),
            name: name.to_string(),
            entry_type: if folder { 0 } else { 1 },
            file_type,
            size: size.unwrap_or(0),
            create_time: e
                .and_then(|e| e.create_time.clone())
                .unwrap_or_else(|| "20240315120000".into()),
            creator: self.creator.to_string(),
            family_id: self.family_id,
            shooting_time: String::new(),
            thumb_url: String::new(),
        };
        let idx = self.tree.nodes.len();
        self.tree.nodes.push(Node {
            entry,
            children: Vec::new(),
        });
        self.tree.by_id.insert(id, idx);
        if !folder {
            self.fids.push((fid, idx));
        }
        idx
    }

    /// Adds `entries` under `parent` (None = root) and returns their indices.
    fn add_all(&mut self, prefix: &str, entries: &[FixtureEntry]) -> Vec<usize> {
        let mut out = Vec::new();
        for e in entries {
            let path = format!("{prefix}/{}", e.name);
            if !e.is_folder() {
                out.push(self.add(&path, &e.name, Some(e.size.unwrap_or(0)), Some(e)));
                continue;
            }
            let idx = self.add(&path, &e.name, None, Some(e));
            let mut kids = self.add_all(&path, e.children.as_deref().unwrap_or_default());
            if let Some(g) = &e.generate {
                for i in 1..=g.count {
                    let name = format!("{}{i:04}{}", g.prefix, g.suffix);
                    let p = format!("{path}/{name}");
                    kids.push(self.add(&p, &name, Some(g.size), None));
                }
            }
            self.tree.nodes[idx].children = kids;
            out.push(idx);
        }
        out
    }
}

impl Tree {
    pub fn build(f: &Fixture) -> Tree {
        let user = f.user.clone().unwrap_or_default();
        let mut by_fid = HashMap::new();
        let mut build = |space: SpaceKey, family_id: u64, entries: &[FixtureEntry]| {
            let mut b = Builder {
                space,
                creator: &user.phone,
                family_id,
                tree: SpaceTree::default(),
                fids: Vec::new(),
            };
            b.tree.root = b.add_all("", entries);
            for (fid, idx) in b.fids {
                by_fid.entry(fid).or_insert((space, idx));
            }
            b.tree
        };
        let personal = build(SpaceKey::Personal, 0, &f.personal);
        let mut families = BTreeMap::new();
        for fam in &f.families {
            let tree = build(SpaceKey::Family(fam.id), fam.id, &fam.files);
            families.insert(
                fam.id,
                FamilySpace {
                    name: fam.name.clone(),
                    tree,
                },
            );
        }
        Tree {
            personal,
            families,
            by_fid,
        }
    }

    pub fn space(&self, key: SpaceKey) -> Option<&SpaceTree> {
        match key {
            SpaceKey::Personal => Some(&self.personal),
            SpaceKey::Family(id) => self.families.get(&id).map(|f| &f.tree),
        }
    }

    /// The file with this fid: its space and entry.
    pub fn by_fid(&self, fid: &str) -> Option<(SpaceKey, &FileEntry)> {
        let (space, idx) = *self.by_fid.get(fid)?;
        Some((space, &self.space(space)?.nodes[idx].entry))
    }
}
