//! Where the simulator's WSDLs and OpenAPI descriptions come from. The simulator does not know
//! the gateway's configuration: the binary hands it whatever it read its configuration from.

use std::path::Path;

/// A configuration's files: a directory on disk, or a configuration compiled into the binary,
/// which can be read by name but not listed.
pub trait ConfigFiles {
    /// The directory relative paths resolve from; `None` when the files cannot be listed.
    fn dir(&self) -> Option<&Path>;
    /// The file at `rel`, relative to the configuration.
    fn read(&self, rel: &str) -> std::io::Result<Vec<u8>>;
    /// A name for messages: the path as the user would look for it.
    fn display(&self, rel: &str) -> String;
}

/// A configuration directory on disk.
impl ConfigFiles for Path {
    fn dir(&self) -> Option<&Path> {
        Some(self)
    }

    fn read(&self, rel: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.join(rel))
    }

    fn display(&self, rel: &str) -> String {
        self.join(rel).display().to_string()
    }
}
