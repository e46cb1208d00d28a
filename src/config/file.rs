//! `--config theraroom.toml` (or `THERAROOM_CONFIG`): a TOML file whose keys are the
//! long flag names of [`Settings`] (`rtc_port = 7882` or `rtc-port = 7882`).
//!
//! The file's values become clap's defaults before the real parse, so clap keeps
//! deciding precedence (flag, then environment, then file, then built-in default) and
//! converting values, and a new field of `Settings` is a valid key with no code here:
//! the TOML type a key takes is read off its clap argument ([`Shape`]).

use std::any::TypeId;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches};

use super::{secret, Cli, Settings};

/// The parsed command line and what is needed to tell where each setting came from.
#[derive(Debug)]
pub struct Loaded {
    /// The typed command line.
    pub cli: Cli,
    /// clap's matches, for [`ArgMatches::value_source`] and the raw values.
    pub matches: ArgMatches,
    /// The configuration file that was read, if any.
    pub file: Option<ConfigFile>,
}

/// A configuration file that was read.
#[derive(Debug)]
pub struct ConfigFile {
    /// Its path, as given.
    pub path: PathBuf,
    /// Argument ids of the settings it gave.
    pub ids: Vec<String>,
}

impl ConfigFile {
    /// Whether the file gave the setting with argument id `id`.
    pub fn gave(&self, id: &str) -> bool {
        self.ids.iter().any(|given| given == id)
    }
}

/// Why the command line could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// A usage error, `--help` or `--version`: clap prints it and picks the exit code.
    Usage(clap::Error),
    /// The configuration file is missing, not TOML, or has a bad key or value.
    File(String),
}

/// The TOML type of one value of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `true` / `false`.
    Boolean,
    /// `7882`.
    Integer,
    /// `0.5`.
    Float,
    /// `"1h"`; also addresses, paths and choices.
    String,
}

/// What a setting takes in TOML: one value or an array of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The type of each value.
    pub kind: Kind,
    /// `turn_uris = ["...", "..."]` rather than one value.
    pub list: bool,
}

impl Shape {
    /// Reads the shape off a clap argument: flags are booleans, repeatable options
    /// arrays, and the value parser's type tells integers and floats from strings.
    pub fn of(arg: &Arg) -> Shape {
        let list = matches!(arg.get_action(), ArgAction::Append);
        let type_id = arg.get_value_parser().type_id();
        let is = |ids: &[TypeId]| ids.iter().any(|id| type_id == *id);
        let kind = if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
            || is(&[TypeId::of::<bool>()])
        {
            Kind::Boolean
        } else if is(&integer_types()) {
            Kind::Integer
        } else if is(&[TypeId::of::<f32>(), TypeId::of::<f64>()]) {
            Kind::Float
        } else {
            Kind::String
        };
        Shape { kind, list }
    }

    /// "an integer", "an array of strings": for error messages.
    pub fn describe(&self) -> &'static str {
        match (self.list, self.kind) {
            (false, Kind::Boolean) => "a boolean",
            (false, Kind::Integer) => "an integer",
            (false, Kind::Float) => "a number",
            (false, Kind::String) => "a string",
            (true, Kind::Boolean) => "an array of booleans",
            (true, Kind::Integer) => "an array of integers",
            (true, Kind::Float) => "an array of numbers",
            (true, Kind::String) => "an array of strings",
        }
    }
}

/// The Rust types clap parses from integers (a `Settings` field of any of them takes
/// a TOML integer).
fn integer_types() -> [TypeId; 12] {
    [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<isize>(),
        TypeId::of::<std::num::NonZeroU32>(),
        TypeId::of::<std::num::NonZeroU64>(),
    ]
}

/// The arguments of [`Settings`] alone (no `--config`, `--help`, subcommand options):
/// the keys a configuration file may have, in declaration order.
pub fn settings_command() -> clap::Command {
    Settings::augment_args(clap::Command::new("settings"))
}

/// The key of a setting in the file and in `config print`: its long flag with `_`.
pub fn key_of(arg: &Arg) -> String {
    arg.get_long()
        .unwrap_or(arg.get_id().as_str())
        .replace('-', "_")
}

/// Parses the command line `args` (program name first), reading the configuration
/// file it or `THERAROOM_CONFIG` names.
pub fn load<I, T>(args: I) -> Result<Loaded, LoadError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = Cli::command();
    let mut file = None;
    if let Some(path) = config_path(&cmd, &args) {
        let table = read_table(&path)?;
        let (with_file, ids) = apply(cmd, &path, &table)?;
        cmd = with_file;
        file = Some(ConfigFile { path, ids });
    }
    let matches = cmd
        .try_get_matches_from_mut(&args)
        .map_err(LoadError::Usage)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| LoadError::Usage(e.format(&mut cmd)))?;
    Ok(Loaded { cli, matches, file })
}

/// `--config` or `THERAROOM_CONFIG`, from a first parse that ignores every other error
/// (the real parse reports them). `--help` ends that parse early: no file then.
fn config_path(cmd: &clap::Command, args: &[OsString]) -> Option<PathBuf> {
    let matches = cmd
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()?;
    matches.get_one::<PathBuf>("config").cloned()
}

/// An error about the file at `path`.
fn file_error(path: &Path, message: impl std::fmt::Display) -> LoadError {
    LoadError::File(format!("configuration file {}: {message}", path.display()))
}

/// Reads and parses the file; a missing file is an error (it was asked for).
fn read_table(path: &Path) -> Result<toml::Table, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(path, format_args!("cannot read it: {e}")))?;
    toml::from_str(&text).map_err(|e| file_error(path, format_args!("not valid TOML: {e}")))
}

/// Makes each key of `table` the default of its argument in `cmd`; returns the
/// command and the ids of the arguments the file gave.
fn apply(
    mut cmd: clap::Command,
    path: &Path,
    table: &toml::Table,
) -> Result<(clap::Command, Vec<String>), LoadError> {
    let settings = settings_command();
    let mut given: BTreeMap<String, &str> = BTreeMap::new();
    for (key, value) in table {
        let wanted = key.replace('_', "-");
        let arg = settings
            .get_arguments()
            .find(|arg| arg.get_long() == Some(wanted.as_str()))
            .ok_or_else(|| file_error(path, format_args!("unknown key `{key}`")))?;
        let id = arg.get_id().to_string();
        if let Some(first) = given.insert(id.clone(), key) {
            return Err(file_error(
                path,
                format_args!("`{key}` and `{first}` are the same setting"),
            ));
        }
        let values = file_values(arg, key, value).map_err(|e| file_error(path, e))?;
        let hide = secret::is_secret(arg);
        cmd = cmd.mut_arg(id, |arg| {
            arg.default_values(values).hide_default_value(hide)
        });
    }
    Ok((cmd, given.into_keys().collect()))
}

/// The file's value of setting `arg` as the strings clap parses, checked with the
/// argument's own value parser.
fn file_values(arg: &Arg, key: &str, value: &toml::Value) -> Result<Vec<String>, String> {
    let shape = Shape::of(arg);
    let wrong_type = || {
        format!(
            "`{key}` must be {}, not {}",
            shape.describe(),
            describe_toml(value)
        )
    };
    let values: Vec<String> = match (shape.list, value) {
        (true, toml::Value::Array(items)) => items
            .iter()
            .map(|item| scalar(shape.kind, item))
            .collect::<Option<_>>()
            .ok_or_else(wrong_type)?,
        (true, _) => return Err(wrong_type()),
        (false, value) => vec![scalar(shape.kind, value).ok_or_else(wrong_type)?],
    };
    if shape.kind != Kind::Boolean || !matches!(arg.get_action(), ArgAction::SetTrue) {
        for text in &values {
            check_value(arg, text)
                .map_err(|e| format!("`{key}` has an invalid value {text:?}: {e}"))?;
        }
    }
    Ok(values)
}

/// One TOML value as clap's text, when it has the type `kind` takes.
fn scalar(kind: Kind, value: &toml::Value) -> Option<String> {
    match (kind, value) {
        (Kind::Boolean, toml::Value::Boolean(b)) => Some(b.to_string()),
        (Kind::Integer, toml::Value::Integer(i)) => Some(i.to_string()),
        (Kind::Float, toml::Value::Float(f)) => Some(f.to_string()),
        (Kind::Float, toml::Value::Integer(i)) => Some(i.to_string()),
        (Kind::String, toml::Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// "a string", "an array", ...: the type the file gave.
fn describe_toml(value: &toml::Value) -> String {
    let name = value.type_str();
    let article = if name.starts_with(['a', 'i']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// Runs `text` through the value parser of `arg` (so `bind = "nowhere"` fails here,
/// naming the key, rather than later as if it had been a flag).
fn check_value(arg: &Arg, text: &str) -> Result<(), String> {
    let probe = Arg::new("value")
        .long("value")
        .action(ArgAction::Set)
        .value_parser(arg.get_value_parser().clone());
    clap::Command::new("probe")
        .arg(probe)
        .try_get_matches_from([OsString::from("probe"), format!("--value={text}").into()])
        .map(|_| ())
        .map_err(|err| describe_clap(&err))
}

/// The useful part of a value parser's error: its cause, or the valid choices.
fn describe_clap(err: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    if let Some(cause) = std::error::Error::source(err) {
        return cause.to_string();
    }
    if let Some(ContextValue::Strings(valid)) = err.get(ContextKind::ValidValue) {
        return format!("expected one of {}", valid.join(", "));
    }
    err.kind().to_string()
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
