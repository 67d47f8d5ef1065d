//! `config_toml`: a configuration file → every binary's settings.

use gpustream_runtime::config::{ConfigFile, resolve};
use gpustream_runtime::kafka::KafkaSettings;
use producer::cli::simulate::SimulateSettings;
use producer::cli::{ModeSettings, nvml::NvmlSettings, replay::ReplaySettings, resolve_mode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{line_in_range, text};

/// The path the file is read as; every error about it must start with it.
const PATH: &str = "/fuzz/gpustream.toml";

/// What the flags and the environment add: nothing.
#[derive(Serialize)]
struct NoFlags {}

/// Reads `data` (as UTF-8, invalid sequences replaced) as a configuration file and
/// resolves every binary's settings from it. Checks:
///
/// - no panic, no hang;
/// - every error about the file starts with its path, and a line it names is a line of
///   the file;
/// - settings that resolve print (as `config --print` does) to a file that resolves to
///   the same settings.
pub fn config_toml(data: &[u8]) {
    let text = text(data);
    let file = match ConfigFile::parse(PATH, text.as_str()) {
        Ok(f) => f,
        Err(e) => return file_error(&e.to_string(), &text),
    };
    match KafkaSettings::load(Some(&file), None, &[], "127.0.0.1:9092") {
        Ok(kafka) => {
            let again = ConfigFile::parse(PATH, kafka.to_toml_redacted())
                .and_then(|f| KafkaSettings::load(Some(&f), None, &[], "127.0.0.1:9092"));
            match again {
                Ok(again) => assert_eq!(again, kafka, "[kafka] printed and read back"),
                Err(e) => panic!(
                    "printed [kafka] does not read back: {e}\n{}",
                    kafka.to_toml_redacted()
                ),
            }
        }
        Err(e) => setting_error(&e.to_string(), &text),
    }
    mode::<ReplaySettings>(&file, &text);
    mode::<SimulateSettings>(&file, &text);
    mode::<NvmlSettings>(&file, &text);
    section::<stream_processor::cli::Settings>(&file, stream_processor::cli::SECTION, &text);
    section::<consumer_influx::cli::Settings>(&file, consumer_influx::cli::SECTION, &text);
    section::<batch_analytics::cli::Settings>(&file, batch_analytics::cli::SECTION, &text);
}

/// An error about the file: its path first, then any line within the file.
fn file_error(shown: &str, text: &str) {
    assert!(shown.starts_with(PATH), "error without the file: {shown}");
    line_in_range(shown, PATH, text);
}

/// An error of a resolved setting: about the file, or (for values that may also come
/// from flags) naming the setting.
fn setting_error(shown: &str, text: &str) {
    if shown.starts_with(PATH) {
        return file_error(shown, text);
    }
    panic!("error without the file: {shown}");
}

fn mode<S: ModeSettings>(file: &ConfigFile, text: &str) {
    match resolve_mode::<S>(Some(file), &NoFlags {}) {
        Ok(s) => {
            let section = format!("{}.{}", producer::cli::SECTION, S::MODE);
            let printed = print(&section, &s);
            let again = ConfigFile::parse(PATH, printed.as_str())
                .map_err(|e| e.to_string())
                .and_then(|f| resolve_mode::<S>(Some(&f), &NoFlags {}).map_err(|e| e.to_string()));
            same_settings(&section, &s, again, &printed);
        }
        Err(e) => setting_error(&e.to_string(), text),
    }
}

fn section<S: Serialize + DeserializeOwned + Default>(file: &ConfigFile, name: &str, text: &str) {
    match resolve::<S>(Some(file), name, &NoFlags {}) {
        Ok(s) => {
            let printed = print(name, &s);
            let again = ConfigFile::parse(PATH, printed.as_str())
                .and_then(|f| resolve::<S>(Some(&f), name, &NoFlags {}))
                .map_err(|e| e.to_string());
            same_settings(name, &s, again, &printed);
        }
        Err(e) => setting_error(&e.to_string(), text),
    }
}

/// Settings as the `[section]` of a file, as `config --print` writes them.
fn print<S: Serialize>(section: &str, s: &S) -> String {
    let body = toml::to_string(s).unwrap_or_else(|e| panic!("[{section}] does not print: {e}"));
    format!("[{section}]\n{body}")
}

fn same_settings<S: Serialize>(section: &str, first: &S, again: Result<S, String>, printed: &str) {
    match again {
        Ok(again) => assert_eq!(
            print(section, &again),
            print(section, first),
            "[{section}] printed and read back"
        ),
        Err(e) => panic!("printed [{section}] does not read back: {e}\n{printed}"),
    }
}
