//! The OpenAPI descriptions the simulator serves at `GET /openapi/<name>`: each is read once at
//! start and checked with [`brama_xroad::openapi::parse`], so a broken file stops the start with its
//! name instead of being served.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

use crate::ConfigFiles;

/// The descriptions of `openapi/` carried by the binary: the embedded configuration cannot list
/// a directory, and the binary's embedded default (which carries the WSDLs) is not asked to carry
/// these.
const BUILTIN: &[(&str, &[u8])] = &[(
    "ehealth-declarations.yaml",
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../openapi/ehealth-declarations.yaml"
    )),
)];

/// OpenAPI descriptions by file name.
#[derive(Clone, Debug, Default)]
pub struct OpenApiFiles(HashMap<String, Bytes>);

impl OpenApiFiles {
    /// The descriptions in `openapi/` when the binary was built.
    pub fn builtin() -> OpenApiFiles {
        let mut files = OpenApiFiles::default();
        for (name, bytes) in BUILTIN {
            // Checked by the unit tests; a broken built-in file is left out rather than served.
            let _ = files.insert(name, Bytes::from_static(bytes));
        }
        files
    }

    /// Every `*.yaml`, `*.yml` and `*.json` file directly inside `dir`; any that is not an
    /// OpenAPI 3 description is an error naming it.
    pub(crate) fn from_dir(dir: &Path) -> std::io::Result<OpenApiFiles> {
        let mut files = OpenApiFiles::default();
        for (name, path, bytes) in super::servable_files(dir, "OpenAPI", servable)? {
            files
                .insert(&name, bytes)
                .map_err(|e| invalid_data(format!("{}: {e}", path.display())))?;
        }
        Ok(files)
    }

    /// Adds or replaces one description after checking it; names that could not be requested
    /// and descriptions that do not parse are refused with the reason.
    pub fn insert(&mut self, name: &str, content: impl Into<Bytes>) -> Result<(), String> {
        if !servable(name) {
            return Err(format!(
                "'{name}' is not a servable file name (plain .yaml, .yml or .json)"
            ));
        }
        let content = content.into();
        brama_xroad::openapi::parse(&content).map_err(|e| e.to_string())?;
        self.0.insert(name.to_string(), content);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.0.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The descriptions in `dir`, relative to the configuration (`simulator.openapi_dir`). An
/// embedded configuration cannot be listed: there the built-in names are looked up, and a name
/// the embedded configuration does not carry is the built-in copy.
pub fn load_openapi(
    source: &(impl ConfigFiles + ?Sized),
    dir: &str,
) -> std::io::Result<OpenApiFiles> {
    match source.dir() {
        Some(base) => OpenApiFiles::from_dir(&base.join(dir)),
        None => {
            let mut files = OpenApiFiles::default();
            for (name, builtin) in BUILTIN {
                let rel = format!("{}/{name}", dir.trim_end_matches('/'));
                let bytes = match source.read(&rel) {
                    Ok(bytes) => Bytes::from(bytes),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Bytes::from_static(builtin)
                    }
                    Err(e) => return Err(e),
                };
                files
                    .insert(name, bytes)
                    .map_err(|e| invalid_data(format!("{}: {e}", source.display(&rel))))?;
            }
            Ok(files)
        }
    }
}

fn invalid_data(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

/// A `.yaml`, `.yml` or `.json` file name of ordinary characters: one path segment, no `/`,
/// `\`, `..`, hidden files or escapes (as WSDL names).
pub(crate) fn servable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
}

/// The media type a description is served with.
pub(crate) fn content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else {
        // RFC 9512.
        "application/yaml; charset=utf-8"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_descriptions_parse_and_load_from_every_source() {
        assert_eq!(OpenApiFiles::builtin().len(), BUILTIN.len());
        let embedded = load_openapi(&crate::tests::Unlisted, "../openapi").unwrap();
        assert!(embedded.get("ehealth-declarations.yaml").is_some());
        let dir = load_openapi(Path::new(crate::tests::REPO), "openapi").unwrap();
        assert_eq!(
            dir.get("ehealth-declarations.yaml"),
            embedded.get("ehealth-declarations.yaml")
        );
        assert!(load_openapi(Path::new("/nonexistent"), "openapi").is_err());
    }

    #[test]
    fn bad_files_and_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        std::fs::write(dir.path().join("old.json"), r#"{"swagger": "2.0"}"#).unwrap();
        let e = OpenApiFiles::from_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("old.json") && e.contains("Swagger"), "{e}");
        let mut f = OpenApiFiles::default();
        for name in ["../x.yaml", ".hidden.yaml", "a/b.yaml", "x.txt", ""] {
            assert!(f.insert(name, "openapi: 3.0.3").is_err(), "{name}");
        }
        assert!(servable("ehealth-declarations.yaml") && servable("a.yml") && servable("b.json"));
    }
}
