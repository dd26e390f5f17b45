//! The recorded responses of `shared/social/fixtures` (beside the project), for unit tests.

use std::path::PathBuf;

/// The fixtures folder: `SOCIAL_FIXTURES_DIR`, else the first ancestor of this crate holding
/// `shared/social/fixtures`.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SOCIAL_FIXTURES_DIR") {
        return PathBuf::from(dir);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared").join("social").join("fixtures"))
        .find(|p| p.is_dir())
        .expect("shared/social/fixtures beside the project, or SOCIAL_FIXTURES_DIR")
}

/// The bytes of one recorded response.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
