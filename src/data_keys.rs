//! Data keys: the AES-256 keys that seal clinical notes at rest, and the keyring that
//! holds them (the current key seals, every key opens what it sealed).
//!
//! Keys come from `--data-key` (base64 of 32 bytes) or from the keyring file
//! `<data dir>/data_keys.json` (mode 0600), generated on the first start like the JWT
//! secret. Once the file exists it names the current key; a configured key is kept
//! readable beside its keys. [`rotate`] adds a fresh key to the file and makes it
//! current. A key's id is a fingerprint of the key (first 16 hex digits of a SHA-256),
//! so a row names its key without revealing it. Keys are never logged or printed:
//! [`DataKey`] and [`Keyring`] show ids only.

pub mod rotate;
pub mod seal;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use seal::{SealError, Sealed, KEY_BYTES};

/// Name of the keyring file in the data directory.
pub const KEYRING_FILE: &str = "data_keys.json";

/// One data key and its id.
#[derive(Clone)]
pub struct DataKey {
    id: String,
    bytes: [u8; KEY_BYTES],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The id of a key: a fingerprint that names it without revealing it.
pub fn key_id(bytes: &[u8; KEY_BYTES]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"theraroom data key id\0");
    hash.update(bytes);
    hex::encode(&hash.finalize()[..8])
}

impl DataKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> DataKey {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        DataKey::from_bytes(bytes)
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> DataKey {
        DataKey {
            id: key_id(&bytes),
            bytes,
        }
    }

    /// A key from base64 (standard alphabet, padding optional) of exactly 32 bytes;
    /// the error names `origin`, never the value.
    pub fn from_base64(text: &str, origin: &str) -> Result<DataKey, String> {
        let text = text.trim();
        let decoded = B64
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| format!("the data key from {origin} is not base64"))?;
        let bytes: [u8; KEY_BYTES] = decoded.try_into().map_err(|d: Vec<u8>| {
            format!(
                "the data key from {origin} is {} bytes long; exactly {KEY_BYTES} are required \
                 (generate one with `openssl rand -base64 32`)",
                d.len()
            )
        })?;
        Ok(DataKey::from_bytes(bytes))
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The keys the server knows; the current one seals new text.
#[derive(Clone)]
pub struct Keyring {
    current: usize,
    keys: Vec<DataKey>,
    /// Where the ring was loaded from, when from a data directory ([`load`]).
    origin: Option<Origin>,
}

/// Where a keyring came from, and the keyring file as it was when read, so that a
/// running server notices a rotation done beside it ([`Keyring::reloaded_if_changed`]).
#[derive(Clone)]
struct Origin {
    data_dir: PathBuf,
    configured: Option<String>,
    file: Option<FileStamp>,
}

/// What identifies one version of the keyring file: it is always replaced by a rename,
/// so a new version has a new inode (and usually a new modification time).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FileStamp {
    modified: Option<SystemTime>,
    inode: u64,
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = meta.len();
    Some(FileStamp {
        modified: meta.modified().ok(),
        inode,
    })
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_id())
            .field("ids", &self.ids())
            .finish()
    }
}

impl Keyring {
    /// A keyring of one key (a configured key, or tests).
    pub fn single(key: DataKey) -> Keyring {
        Keyring {
            current: 0,
            keys: vec![key],
            origin: None,
        }
    }

    /// A keyring of `keys` (duplicates dropped) whose current key is `current`
    /// (added when missing).
    pub fn with_current(keys: Vec<DataKey>, current: DataKey) -> Keyring {
        let mut ring = Keyring {
            current: 0,
            keys: Vec::new(),
            origin: None,
        };
        for key in keys.into_iter().chain([current.clone()]) {
            ring.add(key);
        }
        ring.current = ring.position(current.id()).unwrap_or(0);
        ring
    }

    fn add(&mut self, key: DataKey) {
        if self.position(key.id()).is_none() {
            self.keys.push(key);
        }
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.keys.iter().position(|k| k.id == id)
    }

    /// Id of the key that seals new text.
    pub fn current_id(&self) -> &str {
        &self.keys[self.current].id
    }

    /// Ids of every key, oldest first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// The keyring file again when it changed since this ring was loaded (a rotation
    /// by `theraroom admin rotate-data-key` while the server runs), so the server opens
    /// the rows re-sealed with the new key and seals new text with it. `None` when
    /// nothing changed, the ring did not come from a data directory, or the new file
    /// cannot be read (logged; the ring in use stays).
    pub fn reloaded_if_changed(&self) -> Option<Keyring> {
        let origin = self.origin.as_ref()?;
        let path = keyring_path(&origin.data_dir);
        let now = file_stamp(&path);
        if now.is_none() || now == origin.file {
            return None;
        }
        match load(&origin.data_dir, origin.configured.as_deref()) {
            Ok(ring) => {
                tracing::info!(path = %path.display(), current = ring.current_id(),
                    "the keyring file changed: data keys reloaded");
                Some(ring)
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error,
                    "the keyring file changed but cannot be read; the loaded data keys stay in use");
                None
            }
        }
    }

    /// Seals `text` with the current key, bound to `aad` (the row it is stored in).
    pub fn seal(&self, aad: &str, text: &str) -> Result<Sealed, SealError> {
        let key = &self.keys[self.current];
        seal::seal(&key.id, &key.bytes, aad, text)
    }

    /// Opens `sealed` with the key it names, checking it belongs to `aad`.
    pub fn open(&self, aad: &str, sealed: &Sealed) -> Result<String, SealError> {
        let key = self
            .position(&sealed.key_id)
            .map(|i| &self.keys[i])
            .ok_or_else(|| SealError::UnknownKey(sealed.key_id.clone()))?;
        seal::open(&key.bytes, aad, sealed)
    }
}

/// The keyring file as stored.
#[derive(Serialize, Deserialize)]
struct KeyringFile {
    /// Id of the current key.
    current: String,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyEntry {
    id: String,
    /// base64 of the 32 bytes.
    key: String,
}

/// Where the keyring file of `data_dir` is.
pub fn keyring_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEYRING_FILE)
}

/// The keyring in effect: the keyring file (its current key seals) plus a configured
/// key (`--data-key`); a configured key alone when there is no file; else a new file
/// with one random key.
pub fn load(data_dir: &Path, configured: Option<&str>) -> Result<Keyring, String> {
    let mut ring = load_ring(data_dir, configured)?;
    ring.origin = Some(Origin {
        data_dir: data_dir.to_path_buf(),
        configured: configured.map(str::to_string),
        file: file_stamp(&keyring_path(data_dir)),
    });
    Ok(ring)
}

fn load_ring(data_dir: &Path, configured: Option<&str>) -> Result<Keyring, String> {
    let configured = configured
        .filter(|text| !text.trim().is_empty())
        .map(|text| DataKey::from_base64(text, "the configuration (--data-key)"))
        .transpose()?;
    let path = keyring_path(data_dir);
    match (read_file(&path)?, configured) {
        (Some((keys, current)), configured) => {
            let mut ring = Keyring::with_current(keys, current);
            if let Some(key) = configured {
                if key.id() != ring.current_id() {
                    tracing::warn!(path = %path.display(), key_id = key.id(), current = ring.current_id(),
                        "the keyring file names the current data key; the configured one only stays readable");
                }
                ring.add(key);
            }
            Ok(ring)
        }
        (None, Some(key)) => Ok(Keyring::single(key)),
        (None, None) => {
            let ring = Keyring::single(DataKey::generate());
            write_file(&path, &ring)?;
            tracing::warn!(path = %path.display(), key_id = ring.current_id(),
                "no data key configured: generated one and stored it in the keyring file (back it up: notes cannot be read without it)");
            Ok(ring)
        }
    }
}

/// Adds a fresh key to the keyring in effect, makes it current and writes the keyring
/// file (every old key stays in it, so old rows stay readable). The rows are
/// re-sealed by [`rotate::rotate_data_key`].
pub fn add_current_key(data_dir: &Path, configured: Option<&str>) -> Result<Keyring, String> {
    let old = load(data_dir, configured)?;
    let ring = Keyring::with_current(old.keys, DataKey::generate());
    write_file(&keyring_path(data_dir), &ring)?;
    Ok(ring)
}

/// Reads the keyring file: its keys and its current key; `None` when there is none.
fn read_file(path: &Path) -> Result<Option<(Vec<DataKey>, DataKey)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let origin = path.display().to_string();
    let file: KeyringFile =
        serde_json::from_str(&text).map_err(|e| format!("{origin} is not a keyring file: {e}"))?;
    let mut keys = Vec::new();
    for entry in &file.keys {
        let key = DataKey::from_base64(&entry.key, &origin)?;
        if key.id() != entry.id {
            return Err(format!(
                "{origin}: key {} does not match its id (the file was altered)",
                entry.id
            ));
        }
        keys.push(key);
    }
    let current = keys
        .iter()
        .find(|k| k.id() == file.current)
        .cloned()
        .ok_or_else(|| format!("{origin}: the current key {} is not in it", file.current))?;
    Ok(Some((keys, current)))
}

/// Writes the keyring file whole (a temporary file renamed over it, mode 0600), so a
/// crash leaves the old file or the new one, never half of one.
fn write_file(path: &Path, ring: &Keyring) -> Result<(), String> {
    let file = KeyringFile {
        current: ring.current_id().to_string(),
        keys: ring
            .keys
            .iter()
            .map(|k| KeyEntry {
                id: k.id.clone(),
                key: B64.encode(k.bytes),
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
    let io_error = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error)?;
    }
    let tmp = path.with_extension("json.tmp");
    crate::config::write_private(&tmp, &text).map_err(io_error)?;
    std::fs::rename(&tmp, path).map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("theraroom-keys-{}", uuid::Uuid::new_v4().simple()))
    }

    #[test]
    fn a_keyring_file_is_generated_once_and_kept() {
        let dir = temp_dir();
        let first = load(&dir, None).unwrap();
        let again = load(&dir, None).unwrap();
        assert_eq!(first.current_id(), again.current_id());
        let sealed = first.seal("row-1", "text").unwrap();
        assert_eq!(again.open("row-1", &sealed).unwrap(), "text");
        let text = std::fs::read_to_string(keyring_path(&dir)).unwrap();
        assert!(text.contains(first.current_id()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(keyring_path(&dir))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_configured_key_alone_writes_no_file_and_rotation_keeps_it_readable() {
        let dir = temp_dir();
        let configured = B64.encode([3u8; KEY_BYTES]);
        let ring = load(&dir, Some(&configured)).unwrap();
        assert_eq!(ring.current_id(), key_id(&[3u8; KEY_BYTES]));
        assert!(!keyring_path(&dir).exists());
        let old = ring.seal("row-1", "old text").unwrap();

        let rotated = add_current_key(&dir, Some(&configured)).unwrap();
        assert_ne!(rotated.current_id(), ring.current_id());
        assert_eq!(rotated.open("row-1", &old).unwrap(), "old text");
        // From now on the file names the current key, the configured one stays readable.
        let reloaded = load(&dir, Some(&configured)).unwrap();
        assert_eq!(reloaded.current_id(), rotated.current_id());
        assert_eq!(reloaded.open("row-1", &old).unwrap(), "old text");
        let without = load(&dir, None).unwrap();
        assert_eq!(without.open("row-1", &old).unwrap(), "old text");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_running_ring_picks_up_a_rotation_done_beside_it() {
        let dir = temp_dir();
        let running = load(&dir, None).unwrap();
        assert!(
            running.reloaded_if_changed().is_none(),
            "nothing changed yet"
        );
        let old = running.seal("row-1", "old text").unwrap();

        let rotated = add_current_key(&dir, None).unwrap();
        let resealed = rotated.seal("row-1", "old text").unwrap();
        assert!(
            running.open("row-1", &resealed).is_err(),
            "the old ring lacks the new key"
        );

        let reloaded = running.reloaded_if_changed().expect("the file changed");
        assert_eq!(reloaded.current_id(), rotated.current_id());
        assert_eq!(reloaded.open("row-1", &resealed).unwrap(), "old text");
        assert_eq!(reloaded.open("row-1", &old).unwrap(), "old text");
        assert!(
            reloaded.reloaded_if_changed().is_none(),
            "loaded at its newest"
        );
        assert!(Keyring::single(DataKey::generate())
            .reloaded_if_changed()
            .is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_keys_are_refused_without_showing_them() {
        let err = DataKey::from_base64("c2hvcnQ=", "THERAROOM_DATA_KEY").unwrap_err();
        assert!(err.contains("5 bytes") && !err.contains("c2hvcnQ"), "{err}");
        let err = DataKey::from_base64("not base64!", "x").unwrap_err();
        assert!(err.contains("not base64"), "{err}");
        let key = DataKey::from_bytes([9; KEY_BYTES]);
        let shown = format!("{key:?} {:?}", Keyring::single(key.clone()));
        assert!(!shown.contains(&B64.encode([9u8; KEY_BYTES])), "{shown}");
        assert!(shown.contains(key.id()));
    }

    #[test]
    fn an_altered_keyring_file_is_refused() {
        let dir = temp_dir();
        load(&dir, None).unwrap();
        let path = keyring_path(&dir);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
        file["keys"][0]["key"] = B64.encode([1u8; KEY_BYTES]).into();
        std::fs::write(&path, file.to_string()).unwrap();
        let err = load(&dir, None).unwrap_err();
        assert!(err.contains("does not match its id"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
