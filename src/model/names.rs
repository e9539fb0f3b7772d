//! Domain names as newtypes: a value of these types is always valid, so code past the validator
//! never re-checks a name.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest VM name vCenter accepts (the UI and API both reject longer ones).
pub const MAX_VM_NAME_LEN: usize = 80;

/// Characters that vCenter escapes or rejects in inventory names, or that break paths.
pub const FORBIDDEN_NAME_CHARS: &[char] = &['/', '\\', '%', '<', '>', '&', '"', '\'', '?', '*'];

/// The first character of `s` that text bound for vCenter must not hold: a control character
/// other than tab and newline (C0, DEL, C1; a carriage return too, which XML parsers turn into a
/// newline), or U+FFFE/U+FFFF, which XML cannot carry. vCenter's XML parser refuses a request
/// with such a character; one stored anyway (as the seed's simulator did) breaks every later
/// read of the object by pyvmomi and govmomi. The config validator and the SOAP encoder both
/// use this one check.
pub fn forbidden_text_char(s: &str) -> Option<char> {
    s.chars()
        .find(|&c| (c.is_control() && c != '\t' && c != '\n') || c == '\u{FFFE}' || c == '\u{FFFF}')
}

/// Why a name was refused; rendered by the config validator with a span.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {len} characters long; vCenter accepts at most {max}")]
    TooLong { len: usize, max: usize },
    #[error("name contains {ch:?}, which vCenter escapes or rejects in inventory names")]
    ForbiddenChar { ch: char },
    #[error("name contains a control or whitespace character")]
    ControlOrSpace,
    #[error("name must start with a letter or digit")]
    BadStart,
}

/// Checks a name against labsync's safe set: letters, digits, `-`, `_`, `.`; starts with a letter
/// or digit; at most `max` characters.
pub fn check_name(s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    let len = s.chars().count();
    if len > max {
        return Err(NameError::TooLong { len, max });
    }
    if let Some(ch) = s.chars().find(|c| FORBIDDEN_NAME_CHARS.contains(c)) {
        return Err(NameError::ForbiddenChar { ch });
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(NameError::ControlOrSpace);
    }
    if !s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err(NameError::BadStart);
    }
    Ok(())
}

macro_rules! name_newtype {
    ($(#[$meta:meta])* $name:ident, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a name.
            pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                check_name(&s, $max)?;
                Ok(Self(s))
            }
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_newtype!(
    /// A lab's name, e.g. `alice-k8s` or `class-7`; also the name of its folder in vCenter.
    LabName,
    MAX_VM_NAME_LEN
);
name_newtype!(
    /// A VM's role inside a template, e.g. `db`.
    VmRole,
    MAX_VM_NAME_LEN
);
name_newtype!(
    /// The name of a VM in vCenter: `<lab>-<role>`.
    VmName,
    MAX_VM_NAME_LEN
);
name_newtype!(
    /// A lab template's name, e.g. `k8s-basics`.
    TemplateName,
    MAX_VM_NAME_LEN
);
name_newtype!(
    /// The id of a labsync installation, written into every marker (`labsync.owner`).
    OwnerId,
    64
);

impl VmName {
    /// The vCenter name of a lab's VM: `<lab>-<role>`.
    pub fn for_lab(lab: &LabName, role: &VmRole) -> Result<Self, NameError> {
        Self::new(format!("{lab}-{role}"))
    }
}

/// An inventory path such as `/DC1/vm/templates/k8s-db` (absolute, `/`-separated).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InventoryPath(String);

/// Why an inventory path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("inventory path must start with '/' (e.g. /DC1/vm/templates/web)")]
    NotAbsolute,
    #[error("inventory path has an empty component ('//' or a trailing '/')")]
    EmptyComponent,
}

impl InventoryPath {
    /// Validates an absolute, `/`-separated path with no empty components.
    pub fn new(s: impl Into<String>) -> Result<Self, PathError> {
        let s = s.into();
        let rest = s.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        if rest.split('/').any(str::is_empty) {
            return Err(PathError::EmptyComponent);
        }
        Ok(Self(s))
    }
    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The last component: the object's own name.
    pub fn leaf(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
    /// The path of a child object.
    pub fn join(&self, child: &str) -> Self {
        Self(format!("{}/{}", self.0, child))
    }
    /// Is this `parent.join(child)`? (Without building that path.)
    pub fn is_child_of(&self, parent: &InventoryPath, child: &str) -> bool {
        self.0
            .strip_prefix(parent.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            == Some(child)
    }
}
impl TryFrom<String> for InventoryPath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, PathError> {
        Self::new(s)
    }
}
impl From<InventoryPath> for String {
    fn from(p: InventoryPath) -> String {
        p.0
    }
}
impl fmt::Display for InventoryPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A vCenter managed object reference: its type (`VirtualMachine`) and id (`vm-42`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MoRef {
    /// The managed object type, e.g. `VirtualMachine`, `HostSystem`, `Folder`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The id, e.g. `vm-42`.
    pub value: String,
}

impl MoRef {
    /// A reference of the given type and id.
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            value: value.into(),
        }
    }
}
impl fmt::Display for MoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// The hash of a lab's effective spec (hex SHA-256, first 16 chars), stored in `labsync.spec`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpecHash(pub String);

impl fmt::Display for SpecHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_safe_set_are_accepted() {
        assert!(LabName::new("alice-k8s.v2_1").is_ok());
    }

    #[test]
    fn names_outside_the_safe_set_are_refused_with_the_reason() {
        assert_eq!(LabName::new(""), Err(NameError::Empty));
        assert_eq!(
            LabName::new("a/b"),
            Err(NameError::ForbiddenChar { ch: '/' })
        );
        assert_eq!(LabName::new("a b"), Err(NameError::ControlOrSpace));
        assert_eq!(LabName::new("-ab"), Err(NameError::BadStart));
        assert_eq!(
            LabName::new("x".repeat(81)),
            Err(NameError::TooLong { len: 81, max: 80 })
        );
    }

    #[test]
    fn vm_name_joins_lab_and_role_and_checks_the_length() {
        let lab = LabName::new("a".repeat(70)).unwrap();
        let role = VmRole::new("worker-one").unwrap();
        assert!(matches!(
            VmName::for_lab(&lab, &role),
            Err(NameError::TooLong { len: 81, .. })
        ));
    }

    #[test]
    fn a_child_path_is_recognised_exactly_as_join_builds_it() {
        let labs = InventoryPath::new("/DC1/vm/labs").unwrap();
        for (path, child, want) in [
            ("/DC1/vm/labs/alice", "alice", true),
            ("/DC1/vm/labs/alice", "alic", false),
            ("/DC1/vm/labs/alice/x", "alice", false),
            ("/DC1/vm/labsalice", "alice", false),
            ("/DC1/vm/other/alice", "alice", false),
            ("/DC1/vm/labs", "", false),
        ] {
            let p = InventoryPath::new(path).unwrap();
            assert_eq!(p.is_child_of(&labs, child), want, "{path} under {child}");
            assert_eq!(p == labs.join(child), want, "{path}: join agrees");
        }
    }

    #[test]
    fn inventory_paths_must_be_absolute_without_empty_parts() {
        assert_eq!(InventoryPath::new("DC1/vm"), Err(PathError::NotAbsolute));
        assert_eq!(
            InventoryPath::new("/DC1//vm"),
            Err(PathError::EmptyComponent)
        );
        let p = InventoryPath::new("/DC1/vm/templates/db").unwrap();
        assert_eq!(p.leaf(), "db");
    }
}
