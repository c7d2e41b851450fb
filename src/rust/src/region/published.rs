//! Published names: what one may be, removing one, and pruning those whose
//! creator is gone.

use mori_core::name::RegionName;
use mori_core::os;

use crate::error::{Error, Kind, Result};

use super::with_open;

pub fn bad_published_name(name: &str) -> Error {
    Error::report(Kind::BadName, format!("'{}' cannot name a shared region", crate::error::short(name)), NAME_RULE)
}

/// What a published name may be, for messages.
pub const NAME_RULE: &str =
    "Use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit and not with 'mori'.";

/// Removes leftovers whose creating process is gone (published regions, and
/// wherever the OS keeps names, those of killed creators). Returns the
/// published names removed.
pub fn prune() -> Vec<String> {
    os::prune()
}

/// Removes the name of a published region; objects already mapped keep it.
pub fn unpublish(name: &str) -> Result<bool> {
    if RegionName::published(name).is_none() {
        return Err(bad_published_name(name));
    }
    with_open(|m| m.remove(name));
    Ok(os::unpublish(name)?)
}
