//! Secrets (the password, the session cookie) in a wrapper whose `Debug` never shows them, so
//! they cannot leak through logs, errors or `{:?}`. There is deliberately no `Display`.

/// A secret string; read it only with [`Secret::expose`], at the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the vCenter password comes from: never the config file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// An environment variable (`password_env`).
    Env(String),
    /// A file holding the password; one trailing newline is ignored (`password_file`).
    File(std::path::PathBuf),
    /// Ask on the terminal without echo (only when stderr is a terminal).
    Prompt { user: String },
}

/// Why no password could be read. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("environment variable {0} is not set (or empty); export it with the vCenter password")]
    EnvMissing(String),
    #[error("cannot read the password file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the password file {0} is empty")]
    FileEmpty(String),
    #[error(
        "no terminal to ask for the password; set vcenter.password_env or vcenter.password_file"
    )]
    NoTerminal,
    #[error("reading the password from the terminal failed: {0}")]
    Prompt(String),
}

impl PasswordSource {
    /// Reads the password.
    pub fn read(&self) -> Result<Secret, PasswordError> {
        match self {
            PasswordSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => Err(PasswordError::EnvMissing(var.clone())),
            },
            PasswordSource::File(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| PasswordError::File {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                if let Some(who) = std::fs::metadata(path).ok().and_then(|m| readable_by(&m)) {
                    tracing::warn!(
                        "the password file {shown} can be read by {who}; make it private: chmod 600 {shown}"
                    );
                }
                let text = text
                    .strip_suffix("\r\n")
                    .or_else(|| text.strip_suffix('\n'))
                    .unwrap_or(&text);
                if text.is_empty() {
                    return Err(PasswordError::FileEmpty(shown));
                }
                Ok(Secret::new(text))
            }
            PasswordSource::Prompt { user } => {
                let term = console::Term::stderr();
                if !term.is_term() {
                    return Err(PasswordError::NoTerminal);
                }
                term.write_str(&format!("vCenter password for {user}: "))
                    .map_err(|e| PasswordError::Prompt(e.to_string()))?;
                let line = term
                    .read_secure_line()
                    .map_err(|e| PasswordError::Prompt(e.to_string()))?;
                Ok(Secret::new(line))
            }
        }
    }
}

/// Who besides the owner can read a file with these metadata (`group`, `others`, `group and
/// others`), if anyone. Always `None` where there are no Unix permissions.
fn readable_by(meta: &std::fs::Metadata) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        loose_read_bits(meta.permissions().mode())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// [`readable_by`] for a Unix mode.
#[cfg_attr(not(unix), allow(dead_code))]
fn loose_read_bits(mode: u32) -> Option<&'static str> {
    match (mode & 0o040 != 0, mode & 0o004 != 0) {
        (true, true) => Some("group and others"),
        (true, false) => Some("its group"),
        (false, true) => Some("others"),
        (false, false) => None,
    }
}

/// Creates (or truncates) a file only its owner can read and write (mode 0600 on Unix), for
/// what may hold secrets or session details: SOAP traces, saved plans. An existing regular file
/// is tightened to 0600 too (`open` keeps its old mode); a device such as `/dev/stderr` is left
/// as it is.
pub fn create_private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.is_file() {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret \n").unwrap();
        let s = PasswordSource::File(path.clone()).read().unwrap();
        assert_eq!(s.expose(), "s3cret ");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            PasswordSource::File(path.clone()).read(),
            Err(PasswordError::FileEmpty(path.display().to_string()))
        );
    }

    #[test]
    fn a_missing_password_variable_is_named() {
        let e = PasswordSource::Env("LABSYNC_TEST_SURELY_UNSET_VAR".into())
            .read()
            .unwrap_err();
        assert!(e.to_string().contains("LABSYNC_TEST_SURELY_UNSET_VAR"));
    }

    #[test]
    fn group_or_other_read_bits_are_named() {
        assert_eq!(loose_read_bits(0o100600), None);
        assert_eq!(loose_read_bits(0o100400), None);
        assert_eq!(loose_read_bits(0o100620), None);
        assert_eq!(loose_read_bits(0o100640), Some("its group"));
        assert_eq!(loose_read_bits(0o100604), Some("others"));
        assert_eq!(loose_read_bits(0o100644), Some("group and others"));
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_0600_even_when_it_existed_with_a_looser_mode() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.xml");
        std::fs::write(&path, "old content").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut f = create_private_file(&path).unwrap();
        f.write_all(b"new").unwrap();
        drop(f);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let fresh = dir.path().join("fresh");
        drop(create_private_file(&fresh).unwrap());
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let s = Secret::new("hunter2");
        let shown = format!("{s:?} {:?} {:#?}", Some(&s), vec![s.clone()]);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
    }
}
