//! The session kept between commands, as govc keeps its own: a `labsync plan` right after
//! another reuses the vCenter session instead of logging in again (and does not log out, so the
//! next one can). One file per URL and user under `$XDG_CACHE_HOME/labsync/sessions/`, mode
//! 0600 in a 0700 folder, since the session cookie is as good as the password while it lives.
//! A session that has expired meanwhile costs nothing extra: the first call answers
//! `NotAuthenticated`, the client logs in again as always and the file is rewritten.
//! `LABSYNC_SESSION_CACHE=off` turns it off.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Turns the cache off when set to `off`, `0`, `false` or `no`.
pub const ENV: &str = "LABSYNC_SESSION_CACHE";

/// What one file holds.
#[derive(Serialize, Deserialize)]
pub(crate) struct Saved {
    pub url: String,
    pub username: String,
    /// The `vmware_soap_session` cookie: a secret.
    pub cookie: String,
    /// The API version negotiated at login, so the next command skips `vimServiceVersions.xml`.
    pub api_version: String,
    /// Container views made in the session (they live as long as it does), so the next
    /// command skips `CreateContainerView` too. A view the server no longer has is made again.
    #[serde(default)]
    pub views: Vec<SavedView>,
}

/// A container view of the session: over what, of which types.
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedView {
    pub container: crate::model::MoRef,
    pub types: Vec<String>,
    pub view: crate::model::MoRef,
}

/// Where the session of `username` at `url` is kept, unless the cache is off or there is no
/// cache folder (no `XDG_CACHE_HOME`, no `HOME`).
pub fn default_path(url: &str, username: &str) -> Option<PathBuf> {
    let off = std::env::var(ENV).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        )
    });
    if off {
        return None;
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(
        base.join("labsync")
            .join("sessions")
            .join(file_name(url, username)),
    )
}

/// `<first 16 bytes of SHA-256(url, user) in hex>.json`: neither the URL nor the user name
/// shows in the folder listing.
fn file_name(url: &str, username: &str) -> String {
    let mut h = Sha256::new();
    h.update(url.as_bytes());
    h.update([0]);
    h.update(username.as_bytes());
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

/// The saved session for `url` and `username`, if the file holds one for exactly them.
pub(crate) fn load(path: &Path, url: &str, username: &str) -> Option<Saved> {
    let text = std::fs::read_to_string(path).ok()?;
    let saved: Saved = serde_json::from_str(&text).ok()?;
    (saved.url == url && saved.username == username && !saved.cookie.is_empty()).then_some(saved)
}

/// Writes the file (0600; its folder 0700), replacing it atomically.
pub(crate) fn save(path: &Path, saved: &Saved) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut f = super::secret::create_private_file(&tmp)?;
        f.write_all(serde_json::to_string(saved)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Forgets the saved session (after a logout, or when it belongs to nobody any more).
pub(crate) fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_session_is_private_and_read_back_only_for_its_url_and_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("s")
            .join(file_name("https://vc/sdk", "ops"));
        let saved = Saved {
            url: "https://vc/sdk".into(),
            username: "ops".into(),
            cookie: "c00kie".into(),
            api_version: "8.0.2.0".into(),
            views: Vec::new(),
        };
        save(&path, &saved).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        let back = load(&path, "https://vc/sdk", "ops").expect("read back");
        assert_eq!(
            (back.cookie.as_str(), back.api_version.as_str()),
            ("c00kie", "8.0.2.0")
        );
        assert!(load(&path, "https://other/sdk", "ops").is_none());
        assert!(load(&path, "https://vc/sdk", "root").is_none());
        assert!(!file_name("https://vc/sdk", "ops").contains("vc"));
        remove(&path);
        assert!(load(&path, "https://vc/sdk", "ops").is_none());
    }
}
