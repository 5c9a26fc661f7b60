//! Checking the folder and file paths that come in on the query string.
//!
//! Paths are Wopan names joined by `/` (`BD-another/01.mp4`, `A/B`). They are checked before
//! anything else happens, so a bad one costs no token and no upstream call, and the answer
//! names exactly what is wrong: a `..` or `.` component, an empty component (`A//B`), a
//! component over 255 bytes, a path over 1024 bytes, or a control character. One leading and
//! one trailing `/` are tolerated (`/A/B/`), as users type them.

use std::fmt;

/// Longest accepted component, in bytes.
pub const MAX_COMPONENT: usize = 255;
/// Longest accepted path, in bytes.
pub const MAX_PATH: usize = 1024;

/// A checked path: non-empty components, none of them `.`/`..`, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DrivePath(Vec<String>);

/// Why a path was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPath(pub String);

impl fmt::Display for BadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl DrivePath {
    /// The root folder (no components).
    pub fn root() -> Self {
        DrivePath(Vec::new())
    }

    /// Checks `raw`; `what` names the parameter in the error ("folder", "url").
    /// An empty string is the root only when `allow_root` is set.
    pub fn parse(raw: &str, what: &str, allow_root: bool) -> Result<Self, BadPath> {
        if raw.len() > MAX_PATH {
            return Err(BadPath(format!(
                "{what} is {} bytes long; at most {MAX_PATH} are allowed",
                raw.len()
            )));
        }
        if raw.chars().any(char::is_control) {
            return Err(BadPath(format!("{what} contains a control character")));
        }
        let trimmed = raw.strip_prefix('/').unwrap_or(raw);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        if trimmed.trim().is_empty() {
            return if allow_root && trimmed.is_empty() {
                Ok(DrivePath::root())
            } else {
                Err(BadPath(format!("{what} is empty")))
            };
        }
        let mut parts = Vec::new();
        for part in trimmed.split('/') {
            if part.trim().is_empty() {
                return Err(BadPath(format!("{what} has an empty name between slashes")));
            }
            if part == "." || part == ".." {
                return Err(BadPath(format!("{what} may not contain {part:?}")));
            }
            if part.len() > MAX_COMPONENT {
                return Err(BadPath(format!(
                    "a name in {what} is {} bytes long; at most {MAX_COMPONENT} are allowed",
                    part.len()
                )));
            }
            parts.push(part.to_string());
        }
        Ok(DrivePath(parts))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn components(&self) -> &[String] {
        &self.0
    }

    /// The parent folder and the last name; `None` for the root.
    pub fn split_last(&self) -> Option<(DrivePath, &str)> {
        let (last, rest) = self.0.split_last()?;
        Some((DrivePath(rest.to_vec()), last.as_str()))
    }

    /// This path with one more component.
    pub fn child(&self, name: &str) -> DrivePath {
        let mut v = self.0.clone();
        v.push(name.to_string());
        DrivePath(v)
    }
}

impl fmt::Display for DrivePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_paths() {
        let p = DrivePath::parse("BD-another/01.mp4", "url", false).unwrap();
        assert_eq!(p.components(), ["BD-another", "01.mp4"]);
        assert_eq!(p.to_string(), "BD-another/01.mp4");
        let (parent, name) = p.split_last().unwrap();
        assert_eq!(
            (parent.to_string().as_str(), name),
            ("BD-another", "01.mp4")
        );
        assert_eq!(
            DrivePath::parse("/A/B/", "folder", false)
                .unwrap()
                .to_string(),
            "A/B"
        );
        assert!(DrivePath::parse("", "folder", true).unwrap().is_root());
        assert_eq!(
            DrivePath::parse("电影 2024/a b.mkv", "url", false)
                .unwrap()
                .components()
                .len(),
            2
        );
    }

    #[test]
    fn refuses_bad_paths_with_a_reason() {
        let bad = |s: &str| DrivePath::parse(s, "folder", false).unwrap_err().0;
        assert!(bad("").contains("empty"));
        assert!(bad("   ").contains("empty"));
        assert!(bad("A//B").contains("empty name"));
        assert!(bad("../etc").contains(".."));
        assert!(bad("A/./B").contains("\".\""));
        assert!(bad("A\nB").contains("control"));
        assert!(bad("A\u{7f}").contains("control"));
        assert!(bad(&"x".repeat(256)).contains("255"));
        let long = vec!["y".repeat(200); 6].join("/");
        assert!(bad(&long).contains("1024"));
        assert!(DrivePath::parse(&"x".repeat(255), "folder", false).is_ok());
    }
}
