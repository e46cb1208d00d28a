//! `theraroom admin rotate-data-key`: a new current data key, and every note sealed
//! again with it, so the old keys seal nothing any more (they stay in the keyring file,
//! so a row missed by an interrupted rotation stays readable; run it again to finish).

use std::path::Path;

use serde::Serialize;

use crate::store::Store;

/// What a rotation did (ids only, never keys).
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// The new current key.
    pub key_id: String,
    /// Keys that remain in the keyring file for reading only.
    pub previous_key_ids: Vec<String>,
    /// Notes sealed again with the new key.
    pub resealed_notes: u64,
}

/// Adds a fresh key to the keyring file of `data_dir` (keeping the others), installs
/// it in `store` and re-seals every note with it.
pub async fn rotate_data_key(
    store: &Store,
    data_dir: &Path,
    configured: Option<&str>,
) -> Result<Rotation, String> {
    let ring = super::add_current_key(data_dir, configured)?;
    let key_id = ring.current_id().to_string();
    let previous_key_ids = ring
        .ids()
        .into_iter()
        .filter(|id| *id != key_id)
        .map(str::to_string)
        .collect();
    store.install_data_keys(ring);
    let resealed_notes = store
        .reseal_notes()
        .await
        .map_err(|e| format!("cannot seal the notes with the new data key: {e}"))?;
    tracing::info!(key_id = %key_id, notes = resealed_notes, "data key rotated");
    Ok(Rotation {
        key_id,
        previous_key_ids,
        resealed_notes,
    })
}
