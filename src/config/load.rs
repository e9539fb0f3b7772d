//! Loading a labs file from disk: read it, follow its `include` globs, then decode, validate and
//! expand. The only I/O of the config module; everything after reading is pure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;

use super::connection::Connection;
use super::decode::{DecodedFile, FileRole, decode_file};
use super::diagnostic::{Code, Diagnostic, SourceFile};
use super::expand::expand;
use super::validate::validate;
use super::yaml::Span;
use crate::model::{Desired, IncludeMatch, LabOrigin};

/// Files larger than this are refused: a labs file is a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// More included files than this is a runaway glob.
pub const MAX_INCLUDED_FILES: usize = 10_000;

/// The outcome of loading: the desired state when there is no error, and every diagnostic.
#[derive(Debug)]
pub struct Loaded {
    /// `Some` exactly when no diagnostic is an error.
    pub desired: Option<Desired>,
    /// How to reach vCenter, with paths resolved against the labs file; `Some` with `desired`.
    pub connection: Option<Connection>,
    /// Every error and warning, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// The files read: the main file first, then included files in order.
    pub files: Vec<Arc<SourceFile>>,
    /// The main file's `include` patterns as written (relative to it), whenever the main file
    /// decodes, even with errors elsewhere: `watch` keeps watching them while a file is broken.
    pub include: Vec<String>,
    /// When only included files have errors: the state of the main file and the intact
    /// included files, for `status`, which shows what it can rather than nothing.
    pub salvaged: Option<Salvaged>,
}

/// What the files ask for without the included files that have errors.
#[derive(Debug)]
pub struct Salvaged {
    pub desired: Desired,
    pub connection: Connection,
    /// The included files left out, as origins (`include:labs.d/req-7.yaml`).
    pub left_out: Vec<LabOrigin>,
}

impl Loaded {
    /// Did any diagnostic come out as an error?
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Why loading could not even start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Loads `path` and the files it includes; `now` decides which `expires_at` are past.
pub fn load(path: &Path, now: Timestamp) -> Result<Loaded, LoadError> {
    load_with(path, now, None)
}

/// A file that is not on disk (yet), loaded as if it were an included file at `relative`
/// (`/`-separated, relative to the main file's folder): how the request API checks a request
/// with the same diagnostics as the files before it writes it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub relative: String,
    pub text: String,
}

/// [`load`], with `candidate` added to the included files (replacing a file of that path).
pub fn load_with(
    path: &Path,
    now: Timestamp,
    candidate: Option<&Candidate>,
) -> Result<Loaded, LoadError> {
    let mut diags = Vec::new();
    let (main_src, usable) = match read_source(path, &mut diags) {
        Ok(s) => s,
        Err(source) => {
            return Err(LoadError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut files = vec![Arc::clone(&main_src)];
    let main = usable
        .then(|| decode_file(&main_src, FileRole::Main, &mut diags))
        .flatten();
    let include = main
        .as_ref()
        .map(|m| m.raw.include.iter().map(|p| p.value.clone()).collect())
        .unwrap_or_default();
    let mut included = Vec::new();
    let mut matches = Vec::new();
    if let Some(m) = &main {
        let mut found = include_sources(path, m, &mut diags);
        if let Some(c) = candidate {
            let origin = LabOrigin::included(&c.relative);
            found.files.retain(|(_, _, o)| *o != origin);
            found.files.push((
                SourceFile::new(c.relative.as_str(), c.text.as_str()),
                true,
                origin,
            ));
        }
        matches = found.patterns;
        for (src, usable, origin) in found.files {
            files.push(Arc::clone(&src));
            if !usable {
                continue;
            }
            if let Some(mut f) = decode_file(&src, FileRole::Included, &mut diags) {
                f.origin = origin;
                included.push(f);
            }
        }
    }
    let resolved = main
        .as_ref()
        .and_then(|m| validate(m, &included, now, &mut diags));
    let mut desired = None;
    let mut connection = None;
    let mut salvaged = None;
    if let Some(r) = resolved {
        let base = path.parent().unwrap_or(Path::new(""));
        connection = Some(r.connection.clone().resolve_paths(base));
        match expand(&r) {
            Ok(mut d) => {
                d.origins.extend(included.iter().map(|f| f.origin.clone()));
                d.includes = matches;
                desired = Some(d);
            }
            Err(e) => diags.push(Diagnostic::error(Code::InvalidName, e.to_string()).label(
                &main_src,
                Span::default(),
                "while expanding labs",
            )),
        }
    } else if let Some(m) = &main {
        salvaged = salvage(path, m, included, &matches, &files, &diags, now);
    }
    sort_by_place(&mut diags, &files);
    if diags.iter().any(Diagnostic::is_error) {
        desired = None;
        connection = None;
    }
    Ok(Loaded {
        desired,
        connection,
        diagnostics: diags,
        files,
        include,
        salvaged,
    })
}

/// The desired state without the included files that have errors, when the main file has none
/// and every error is placed in an included file (a file that does not decode at all counts).
fn salvage(
    path: &Path,
    main: &DecodedFile,
    included: Vec<DecodedFile>,
    matches: &[IncludeMatch],
    files: &[Arc<SourceFile>],
    diags: &[Diagnostic],
    now: Timestamp,
) -> Option<Salvaged> {
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
    let mut broken: Vec<&Arc<SourceFile>> = Vec::new();
    for d in &errors {
        let source = &d.labels.first()?.source;
        if Arc::ptr_eq(source, &main.source) {
            return None;
        }
        if !broken.iter().any(|b| Arc::ptr_eq(b, source)) {
            broken.push(source);
        }
    }
    let intact: Vec<DecodedFile> = included
        .into_iter()
        .filter(|f| !broken.iter().any(|b| Arc::ptr_eq(b, &f.source)))
        .collect();
    let base = path.parent().unwrap_or(Path::new(""));
    let left_out: Vec<LabOrigin> = files
        .iter()
        .skip(1)
        .filter(|f| broken.iter().any(|b| Arc::ptr_eq(b, f)))
        .map(|f| relative_origin(base, Path::new(&f.name)))
        .collect();
    let mut scratch = Vec::new();
    let resolved = validate(main, &intact, now, &mut scratch)?;
    if scratch.iter().any(Diagnostic::is_error) {
        return None;
    }
    let mut desired = expand(&resolved).ok()?;
    desired
        .origins
        .extend(intact.iter().map(|f| f.origin.clone()));
    desired.includes = matches.to_vec();
    Some(Salvaged {
        desired,
        connection: resolved.connection.clone().resolve_paths(base),
        left_out,
    })
}

/// The SHA-256 (hex) of each included file's bytes as this load read them, by origin: what a
/// request status document says labsync acted on (a file on disk may already be newer).
pub fn included_sha256(main_path: &Path, files: &[Arc<SourceFile>]) -> BTreeMap<LabOrigin, String> {
    use sha2::{Digest, Sha256};
    let base = main_path.parent().unwrap_or(Path::new(""));
    files
        .iter()
        .skip(1)
        .map(|f| {
            let sum = Sha256::digest(f.text.as_bytes());
            let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
            (relative_origin(base, Path::new(&f.name)), hex)
        })
        .collect()
}

/// Checks the text of a single file as the main file, with no includes followed (for editors,
/// tests and fuzzing).
pub fn check_text(name: &str, text: &str, now: Timestamp) -> Loaded {
    let src = SourceFile::new(name, text);
    let mut diags = Vec::new();
    let main = decode_file(&src, FileRole::Main, &mut diags);
    let resolved = main.and_then(|m| validate(&m, &[], now, &mut diags));
    let connection = resolved.as_ref().map(|r| r.connection.clone());
    let desired = resolved.and_then(|r| expand(&r).ok());
    let files = vec![src];
    sort_by_place(&mut diags, &files);
    let ok = !diags.iter().any(Diagnostic::is_error);
    Loaded {
        desired: desired.filter(|_| ok),
        connection: connection.filter(|_| ok),
        diagnostics: diags,
        files,
        include: Vec::new(),
        salvaged: None,
    }
}

fn sort_by_place(diags: &mut [Diagnostic], files: &[Arc<SourceFile>]) {
    diags.sort_by_key(|d| {
        let place = d.labels.first().map(|l| {
            let file = files.iter().position(|f| Arc::ptr_eq(f, &l.source));
            (file.unwrap_or(usize::MAX), l.span.offset)
        });
        place.unwrap_or((usize::MAX, 0))
    });
}

/// Reads a file as text. Oversized or non-UTF-8 files become diagnostics (with what could be
/// read, and `false`: not to be decoded); only a failed read is an error.
fn read_source(
    path: &Path,
    diags: &mut Vec<Diagnostic>,
) -> std::io::Result<(Arc<SourceFile>, bool)> {
    let name = path.display().to_string();
    let size = std::fs::metadata(path)?.len();
    if size > MAX_FILE_BYTES {
        let src = SourceFile::new(name, "");
        diags.push(
            Diagnostic::error(
                Code::TooComplex,
                format!("the file is {size} bytes; labsync reads at most {MAX_FILE_BYTES}"),
            )
            .label(&src, Span::default(), "this file"),
        );
        return Ok((src, false));
    }
    let bytes = std::fs::read(path)?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok((SourceFile::new(name, text), true)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            // Control characters would garble the snippet; show them as U+FFFD too.
            let text: String = String::from_utf8_lossy(e.as_bytes())
                .chars()
                .map(|c| {
                    if c.is_control() && c != '\n' && c != '\t' {
                        '\u{FFFD}'
                    } else {
                        c
                    }
                })
                .collect();
            let src = SourceFile::new(name, text);
            diags.push(
                Diagnostic::error(Code::YamlSyntax, "the file is not UTF-8 text")
                    .label(&src, Span::new(at, 1), "invalid byte here")
                    .help("save the file as UTF-8"),
            );
            // Nothing else is checked in a file that is not text.
            Ok((src, false))
        }
    }
}

/// What the `include` patterns found.
struct Included {
    /// Each file read once, in a stable order: its text, whether it can be decoded, and its
    /// origin (its path relative to the main file's directory).
    files: Vec<(Arc<SourceFile>, bool, LabOrigin)>,
    /// Every pattern with the number of files it matched.
    patterns: Vec<IncludeMatch>,
}

/// `labs.d/req-1.yaml`: `path` relative to `base`, `/`-separated, for [`LabOrigin`].
fn relative_origin(base: &Path, path: &Path) -> LabOrigin {
    let rel = path.strip_prefix(base).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    LabOrigin::included(&parts.join("/"))
}

/// The files the main file's `include` patterns match, each read once, in a stable order.
///
/// Includes are confined to the labs file's directory: a pattern may not be absolute or contain
/// `..`, and every matched file is resolved (symlinks followed) and must still lie inside that
/// directory; a file outside it is never read, so its content can never show in a diagnostic.
fn include_sources(main_path: &Path, main: &DecodedFile, diags: &mut Vec<Diagnostic>) -> Included {
    let base = main_path.parent().unwrap_or(Path::new(""));
    let main_canonical = main_path.canonicalize().ok();
    let base_canonical = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    }
    .canonicalize()
    .ok();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut out = Included {
        files: Vec::new(),
        patterns: Vec::new(),
    };
    for pattern in &main.raw.include {
        if Path::new(&pattern.value).is_absolute() {
            diags.push(
                Diagnostic::error(
                    Code::InvalidInclude,
                    format!("include pattern `{}` is absolute", pattern.value),
                )
                .label(&main.source, pattern.span, "absolute")
                .help("include patterns are relative to this file, e.g. `labs.d/*.yaml`"),
            );
            continue;
        }
        if pattern.value.split(['/', '\\']).any(|part| part == "..") {
            diags.push(
                Diagnostic::error(
                    Code::InvalidInclude,
                    format!("include pattern `{}` leaves the labs file's directory", pattern.value),
                )
                .label(&main.source, pattern.span, "`..` here")
                .help("included files must live in this file's directory or below it, e.g. `labs.d/*.yaml`"),
            );
            continue;
        }
        let full = if base.as_os_str().is_empty() {
            pattern.value.clone()
        } else {
            format!(
                "{}/{}",
                glob::Pattern::escape(&base.display().to_string()),
                pattern.value
            )
        };
        let paths = match glob::glob(&full) {
            Ok(paths) => paths,
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidInclude,
                        format!(
                            "include pattern `{}` is not a valid glob: {}",
                            pattern.value, e.msg
                        ),
                    )
                    .label(&main.source, pattern.span, "this pattern")
                    .help("use `*`, `?`, `[abc]` and `**`, e.g. `labs.d/*.yaml`"),
                );
                continue;
            }
        };
        let mut matched: Vec<PathBuf> = paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        matched.sort();
        out.patterns.push(IncludeMatch {
            pattern: pattern.value.clone(),
            matched: matched.len(),
        });
        if matched.is_empty() {
            diags.push(
                Diagnostic::warning(
                    Code::IncludeNoMatch,
                    format!("include pattern `{}` matches no file", pattern.value),
                )
                .label(&main.source, pattern.span, "no match")
                .help(format!("looked for `{full}`")),
            );
        }
        for p in matched {
            let canonical = match (p.canonicalize(), &base_canonical) {
                (Ok(c), Some(b)) if c.starts_with(b) => c,
                (Ok(c), _) => {
                    diags.push(
                        Diagnostic::error(
                            Code::IncludeOutside,
                            format!(
                                "included file {} resolves to {}, outside the labs file's directory; it was not read",
                                p.display(),
                                c.display()
                            ),
                        )
                        .label(&main.source, pattern.span, "matched by this pattern")
                        .help("a symlink under the labs file's directory must point inside it; copy the file in, or move the labs file up"),
                    );
                    continue;
                }
                (Err(e), _) => {
                    diags.push(
                        Diagnostic::error(
                            Code::Io,
                            format!("cannot resolve included file {}: {e}", p.display()),
                        )
                        .label(
                            &main.source,
                            pattern.span,
                            "matched by this pattern",
                        ),
                    );
                    continue;
                }
            };
            if Some(&canonical) == main_canonical.as_ref() || !seen.insert(canonical) {
                continue;
            }
            if out.files.len() >= MAX_INCLUDED_FILES {
                diags.push(
                    Diagnostic::error(
                        Code::TooComplex,
                        format!("more than {MAX_INCLUDED_FILES} included files"),
                    )
                    .label(&main.source, pattern.span, "this pattern")
                    .help("narrow the include pattern"),
                );
                return out;
            }
            match read_source(&p, diags) {
                Ok((src, usable)) => out.files.push((src, usable, relative_origin(base, &p))),
                Err(e) => diags.push(
                    Diagnostic::error(
                        Code::Io,
                        format!("cannot read included file {}: {e}", p.display()),
                    )
                    .label(
                        &main.source,
                        pattern.span,
                        "matched by this pattern",
                    ),
                ),
            }
        }
    }
    out
}
