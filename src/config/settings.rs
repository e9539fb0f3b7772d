//! User settings: things that are not lab definitions (vCenter profiles, output format, color),
//! from `~/.config/labsync/config.toml` (or `$XDG_CONFIG_HOME/labsync/config.toml`, or
//! `--config FILE`). Resolved once, in this order: flags > `LABSYNC_*` environment > file >
//! defaults. `NO_COLOR` follows its convention: below the file and the flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::diagnostic::{Code, Diagnostic, SourceFile};
use super::yaml::Span;

/// When to color terminal output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ColorChoice {
    /// Color when writing to a terminal.
    #[default]
    Auto,
    Always,
    Never,
}

/// The default output format of commands that have a `--json` flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Human,
    Json,
}

/// A named vCenter connection, overriding the `vcenter` section's connection details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub url: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub thumbprint: Option<String>,
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure: bool,
    /// Allow a plain `http://` `url` to another machine (as `vcenter.insecure_http`).
    #[serde(default)]
    pub insecure_http: bool,
}

/// The settings file as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    /// The profile used when neither `--profile` nor `LABSYNC_PROFILE` names one.
    pub default_profile: Option<String>,
    pub output: Option<OutputFormat>,
    pub color: Option<ColorChoice>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// What the command line said (absent = not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub color: Option<ColorChoice>,
    pub json: bool,
    pub profile: Option<String>,
    /// `--trace-soap FILE`.
    pub trace_soap: Option<PathBuf>,
}

/// The environment variables that matter, captured once so resolution stays pure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The variables of this process that settings read.
    pub fn from_process() -> Self {
        const NAMES: &[&str] = &[
            "LABSYNC_CONFIG",
            "LABSYNC_COLOR",
            "LABSYNC_OUTPUT",
            "LABSYNC_PROFILE",
            "LABSYNC_TRACE_SOAP",
            "NO_COLOR",
            "XDG_CONFIG_HOME",
            "HOME",
        ];
        Self::from_pairs(
            NAMES
                .iter()
                .filter_map(|n| std::env::var(n).ok().map(|v| (n.to_string(), v))),
        )
    }
    /// An environment from explicit pairs (for tests).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            vars: pairs.into_iter().collect(),
        }
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The resolved settings every command reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub color: ColorChoice,
    pub output: OutputFormat,
    /// The selected vCenter profile, if any.
    pub profile: Option<(String, Profile)>,
    /// The settings file that was read, if one was.
    pub file: Option<PathBuf>,
    /// Where to write every SOAP exchange, secrets redacted (`--trace-soap` or
    /// `LABSYNC_TRACE_SOAP`); for debugging.
    pub trace_soap: Option<PathBuf>,
}

/// Why settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid settings file")]
    Invalid(Box<Diagnostic>),
    #[error("invalid value `{value}` for {name}: expected {expected}")]
    Env {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("unknown profile `{0}`")]
    UnknownProfile(String),
}

/// Where the settings file is: `--config`, else `LABSYNC_CONFIG`, else the XDG location.
/// The second value says whether it was asked for explicitly (then it must exist).
pub fn settings_path(flags: &Flags, env: &Env) -> Option<(PathBuf, bool)> {
    if let Some(p) = &flags.config {
        return Some((p.clone(), true));
    }
    if let Some(p) = env.get("LABSYNC_CONFIG") {
        return Some((PathBuf::from(p), true));
    }
    let base = match env.get("XDG_CONFIG_HOME") {
        Some(x) => PathBuf::from(x),
        None => Path::new(env.get("HOME")?).join(".config"),
    };
    Some((base.join("labsync").join("config.toml"), false))
}

/// Parses a settings file's text; errors become a diagnostic pointing into it.
pub fn parse_settings(name: &str, text: &str) -> Result<SettingsFile, Box<Diagnostic>> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let src: Arc<SourceFile> = SourceFile::new(name, text);
        let span = e.span().map_or(Span::default(), |r| Span::new(r.start, r.len()));
        Box::new(
            Diagnostic::error(Code::Settings, format!("invalid settings file: {}", e.message().trim()))
                .label(&src, span, "here")
                .help("keys: default_profile, output (human|json), color (auto|always|never), [profiles.NAME]"),
        )
    })
}

/// The color setting for reporting that the settings could not be resolved: `--color`, else
/// `NO_COLOR`, else auto (the file and `LABSYNC_COLOR` may be what is broken).
pub fn color_without_settings(flag: Option<ColorChoice>, env: &Env) -> ColorChoice {
    flag.or_else(|| env.get("NO_COLOR").map(|_| ColorChoice::Never))
        .unwrap_or_default()
}

/// Resolves settings from flags, environment and the file (pure).
pub fn resolve(
    flags: &Flags,
    env: &Env,
    file: Option<(PathBuf, SettingsFile)>,
) -> Result<Settings, SettingsError> {
    let (path, file) = match file {
        Some((p, f)) => (Some(p), f),
        None => (None, SettingsFile::default()),
    };
    let env_color = match env.get("LABSYNC_COLOR") {
        None => None,
        Some("auto") => Some(ColorChoice::Auto),
        Some("always") => Some(ColorChoice::Always),
        Some("never") => Some(ColorChoice::Never),
        Some(v) => {
            return Err(SettingsError::Env {
                name: "LABSYNC_COLOR",
                value: v.to_string(),
                expected: "auto, always or never",
            });
        }
    };
    let no_color = env.get("NO_COLOR").map(|_| ColorChoice::Never);
    let color = flags
        .color
        .or(env_color)
        .or(file.color)
        .or(no_color)
        .unwrap_or_default();
    let env_output = match env.get("LABSYNC_OUTPUT") {
        None => None,
        Some("human") => Some(OutputFormat::Human),
        Some("json") => Some(OutputFormat::Json),
        Some(v) => {
            return Err(SettingsError::Env {
                name: "LABSYNC_OUTPUT",
                value: v.to_string(),
                expected: "human or json",
            });
        }
    };
    let output = flags
        .json
        .then_some(OutputFormat::Json)
        .or(env_output)
        .or(file.output)
        .unwrap_or_default();
    let profile_name = flags
        .profile
        .clone()
        .or_else(|| env.get("LABSYNC_PROFILE").map(str::to_string))
        .or(file.default_profile.clone());
    let profile = match profile_name {
        None => None,
        Some(name) => match file.profiles.get(&name) {
            Some(p) => Some((name, p.clone())),
            None => return Err(SettingsError::UnknownProfile(name)),
        },
    };
    let trace_soap = flags
        .trace_soap
        .clone()
        .or_else(|| env.get("LABSYNC_TRACE_SOAP").map(PathBuf::from));
    Ok(Settings {
        color,
        output,
        profile,
        file: path,
        trace_soap,
    })
}

/// Finds, reads and resolves the settings (the I/O around [`resolve`]).
pub fn load_settings(flags: &Flags, env: &Env) -> Result<Settings, SettingsError> {
    let file = match settings_path(flags, env) {
        None => None,
        Some((path, explicit)) => match std::fs::read_to_string(&path) {
            Ok(text) => {
                let parsed = parse_settings(&path.display().to_string(), &text)
                    .map_err(SettingsError::Invalid)?;
                Some((path, parsed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => None,
            Err(source) => return Err(SettingsError::Read { path, source }),
        },
    };
    resolve(flags, env, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn file(text: &str) -> Option<(PathBuf, SettingsFile)> {
        Some((
            PathBuf::from("config.toml"),
            parse_settings("config.toml", text).unwrap(),
        ))
    }

    #[test]
    fn flags_beat_environment_which_beats_the_file() {
        let f = file("color = \"always\"\noutput = \"json\"\n");
        let s = resolve(&Flags::default(), &env(&[]), f.clone()).unwrap();
        assert_eq!(
            (s.color, s.output),
            (ColorChoice::Always, OutputFormat::Json)
        );
        let s = resolve(
            &Flags::default(),
            &env(&[("LABSYNC_COLOR", "never"), ("LABSYNC_OUTPUT", "human")]),
            f.clone(),
        )
        .unwrap();
        assert_eq!(
            (s.color, s.output),
            (ColorChoice::Never, OutputFormat::Human)
        );
        let flags = Flags {
            color: Some(ColorChoice::Auto),
            json: true,
            ..Flags::default()
        };
        let s = resolve(
            &flags,
            &env(&[("LABSYNC_COLOR", "never"), ("LABSYNC_OUTPUT", "human")]),
            f,
        )
        .unwrap();
        assert_eq!((s.color, s.output), (ColorChoice::Auto, OutputFormat::Json));
    }

    #[test]
    fn no_color_turns_color_off_unless_the_file_or_a_flag_says_otherwise() {
        let s = resolve(&Flags::default(), &env(&[("NO_COLOR", "1")]), None).unwrap();
        assert_eq!(s.color, ColorChoice::Never);
        let s = resolve(
            &Flags::default(),
            &env(&[("NO_COLOR", "1")]),
            file("color = \"always\""),
        )
        .unwrap();
        assert_eq!(s.color, ColorChoice::Always);
    }

    #[test]
    fn a_broken_settings_file_is_reported_under_the_flag_or_no_color() {
        use ColorChoice::{Always, Auto, Never};
        let cases = [
            (None, &[][..], Auto),
            (None, &[("NO_COLOR", "1")][..], Never),
            // An empty NO_COLOR does not count, by its convention.
            (None, &[("NO_COLOR", "")][..], Auto),
            (Some(Always), &[("NO_COLOR", "1")][..], Always),
            (Some(Never), &[][..], Never),
        ];
        for (flag, vars, want) in cases {
            assert_eq!(
                color_without_settings(flag, &env(vars)),
                want,
                "{flag:?} {vars:?}"
            );
        }
    }

    #[test]
    fn the_settings_file_lives_under_xdg_config_home_or_home() {
        let p = settings_path(
            &Flags::default(),
            &env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]),
        );
        assert_eq!(p, Some((PathBuf::from("/x/labsync/config.toml"), false)));
        let p = settings_path(&Flags::default(), &env(&[("HOME", "/h")]));
        assert_eq!(
            p,
            Some((PathBuf::from("/h/.config/labsync/config.toml"), false))
        );
        let flags = Flags {
            config: Some("my.toml".into()),
            ..Flags::default()
        };
        assert_eq!(
            settings_path(&flags, &env(&[("HOME", "/h")])),
            Some((PathBuf::from("my.toml"), true))
        );
    }

    #[test]
    fn profiles_are_selected_by_flag_env_or_default() {
        let f = file(
            "default_profile = \"prod\"\n[profiles.prod]\nurl = \"https://vc/sdk\"\n[profiles.lab]\nurl = \"sim://x.yaml\"\n",
        );
        let s = resolve(&Flags::default(), &env(&[]), f.clone()).unwrap();
        assert_eq!(s.profile.map(|p| p.0), Some("prod".to_string()));
        let s = resolve(
            &Flags::default(),
            &env(&[("LABSYNC_PROFILE", "lab")]),
            f.clone(),
        )
        .unwrap();
        assert_eq!(s.profile.map(|p| p.0), Some("lab".to_string()));
        let flags = Flags {
            profile: Some("nope".into()),
            ..Flags::default()
        };
        assert!(matches!(
            resolve(&flags, &env(&[]), f),
            Err(SettingsError::UnknownProfile(_))
        ));
    }

    #[test]
    fn the_soap_trace_file_comes_from_the_flag_over_the_environment() {
        let s = resolve(&Flags::default(), &env(&[]), None).unwrap();
        assert_eq!(s.trace_soap, None);
        let from_env = env(&[("LABSYNC_TRACE_SOAP", "env.xml")]);
        let s = resolve(&Flags::default(), &from_env, None).unwrap();
        assert_eq!(s.trace_soap, Some(PathBuf::from("env.xml")));
        let flags = Flags {
            trace_soap: Some("flag.xml".into()),
            ..Flags::default()
        };
        let s = resolve(&flags, &from_env, None).unwrap();
        assert_eq!(s.trace_soap, Some(PathBuf::from("flag.xml")));
    }

    #[test]
    fn a_bad_settings_file_is_a_diagnostic_with_a_place() {
        let d = parse_settings("config.toml", "colour = \"never\"\n").unwrap_err();
        assert_eq!(d.code, Code::Settings);
        assert_eq!(d.labels[0].span.offset, 0);
    }
}
