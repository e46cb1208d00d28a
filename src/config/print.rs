//! `theraroom config print`: the settings in effect as TOML an operator can save as a
//! configuration file, each value followed by where it came from, secrets masked.

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches};

use super::file::{key_of, settings_command, ConfigFile, Kind, Shape};
use super::secret;

/// The whole TOML document for the parsed `matches` and the configuration `file` read
/// (see [`super::file::load`]), one line per setting in declaration order.
pub fn render(matches: &ArgMatches, file: Option<&ConfigFile>) -> String {
    let mut out = String::from(
        "# TheraRoom settings in effect (`theraroom config print`). After each value: where\n\
         # it came from (flag, env, file or default). Secrets are masked: put the real\n\
         # ones back before using this as a configuration file.\n",
    );
    if let Some(file) = file {
        out.push_str(&format!("# Configuration file: {}\n", file.path.display()));
    }
    for arg in settings_command().get_arguments() {
        out.push_str(&setting_line(arg, matches, file));
        out.push('\n');
    }
    out
}

/// `key = value  # source`, or a comment when the setting has no value.
fn setting_line(arg: &Arg, matches: &ArgMatches, file: Option<&ConfigFile>) -> String {
    let key = key_of(arg);
    let source = source_of(arg, matches, file);
    let id = arg.get_id().as_str();
    let raw: Option<Vec<String>> = matches.try_get_raw(id).ok().flatten().map(|values| {
        values
            .map(|value| value.to_string_lossy().into_owned())
            .collect()
    });
    match raw {
        None => format!("# {key} is not set  # {source}"),
        Some(values) => {
            let shown = if secret::is_secret(arg) {
                values.iter().map(|value| secret::mask(value)).collect()
            } else {
                values
            };
            let masked = if secret::is_secret(arg) {
                ", masked"
            } else {
                ""
            };
            format!(
                "{key} = {}  # {source}{masked}",
                toml_value(Shape::of(arg), shown)
            )
        }
    }
}

/// `flag --bind`, `env THERAROOM_BIND`, `file theraroom.toml` or `default`.
fn source_of(arg: &Arg, matches: &ArgMatches, file: Option<&ConfigFile>) -> String {
    let id = arg.get_id().as_str();
    match matches.value_source(id) {
        Some(ValueSource::CommandLine) => {
            format!("flag --{}", arg.get_long().unwrap_or(id))
        }
        Some(ValueSource::EnvVariable) => match arg.get_env() {
            Some(name) => format!("env {}", name.to_string_lossy()),
            None => "env".to_string(),
        },
        Some(ValueSource::DefaultValue) => match file {
            Some(file) if file.gave(id) => format!("file {}", file.path.display()),
            _ => "default".to_string(),
        },
        _ => "default".to_string(),
    }
}

/// The values clap holds as one TOML value of the setting's shape (text that does not
/// read as its kind stays a string rather than being lost).
fn toml_value(shape: Shape, values: Vec<String>) -> toml::Value {
    let one = |text: String| match shape.kind {
        Kind::Boolean => text
            .parse()
            .map(toml::Value::Boolean)
            .unwrap_or(toml::Value::String(text)),
        Kind::Integer => text
            .parse()
            .map(toml::Value::Integer)
            .unwrap_or(toml::Value::String(text)),
        Kind::Float => text
            .parse()
            .map(toml::Value::Float)
            .unwrap_or(toml::Value::String(text)),
        Kind::String => toml::Value::String(text),
    };
    if shape.list {
        toml::Value::Array(values.into_iter().map(one).collect())
    } else {
        values
            .into_iter()
            .next()
            .map(one)
            .unwrap_or(toml::Value::String(String::new()))
    }
}
