//! A crash-safe, file-backed [`PolicyStore`]: the simulated host's
//! counterpart of the driver's registry store, one file per LUN.
//!
//! `save` writes the record to a temporary file in the same directory,
//! flushes it to disk (`fsync`), renames it over the LUN's file and flushes
//! the directory. A rename within one directory is atomic, so a reader
//! (after a crash or a kill at any instant) finds either the old record or
//! the new one, never a mix; and the record's own length and CRC-32C
//! (`rsdsm::persist`) catch whatever the file system does not (a record
//! damaged on disk is refused as `VDS_E_PROVIDER_CACHE_CORRUPT`).
//!
//! One writer per directory (the DSM serialises its sets per LUN; two
//! processes sharing a directory would share temporary files).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use rsdsm::identity::LunKey;
use rsdsm::persist::{MAX_RECORD_LEN, PolicyStore, StoreError};

/// Records in a directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// A store in `dir`, created if missing.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding the record of `key`.
    #[must_use]
    pub fn path_of(&self, key: &LunKey) -> PathBuf {
        use std::fmt::Write as _;
        let mut name = format!("lun-{:02x}{}-", key.kind() as u8, u8::from(key.is_digest()));
        for b in key.as_slice() {
            let _ = write!(name, "{b:02x}");
        }
        name.push_str(".rsdp");
        self.dir.join(name)
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

impl PolicyStore for FileStore {
    fn load(&self, key: &LunKey, buf: &mut [u8]) -> Result<Option<usize>, StoreError> {
        let bytes = match fs::read(self.path_of(key)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(_) => return Err(StoreError::Backend),
        };
        let dst = buf.get_mut(..bytes.len()).ok_or(StoreError::BufferTooSmall)?;
        dst.copy_from_slice(&bytes);
        Ok(Some(bytes.len()))
    }

    fn save(&mut self, key: &LunKey, record: &[u8]) -> Result<(), StoreError> {
        if record.len() > MAX_RECORD_LEN {
            return Err(StoreError::Full);
        }
        let path = self.path_of(key);
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            file.write_all(record)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, &path)?;
            self.sync_dir()
        };
        write().map_err(|_| StoreError::Backend)
    }

    fn delete(&mut self, key: &LunKey) -> Result<(), StoreError> {
        match fs::remove_file(self.path_of(key)) {
            Ok(()) => self.sync_dir().map_err(|_| StoreError::Backend),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(_) => Err(StoreError::Backend),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsdsm::identity::KeyKind;

    #[test]
    fn save_load_replace_delete() {
        let dir = std::env::temp_dir().join(format!("rsdsm-file-store-{}", std::process::id()));
        let mut store = FileStore::open(&dir).unwrap();
        let key = LunKey::from_parts(KeyKind::Naa, &[&[0x60, 1, 2, 3]]);
        let mut buf = [0u8; MAX_RECORD_LEN];
        assert_eq!(store.load(&key, &mut buf), Ok(None));
        store.save(&key, b"first").unwrap();
        store.save(&key, b"second record").unwrap();
        assert_eq!(store.load(&key, &mut buf), Ok(Some(13)));
        assert_eq!(&buf[..13], b"second record");
        assert_eq!(store.load(&key, &mut [0u8; 4]), Err(StoreError::BufferTooSmall));
        assert!(!store.path_of(&key).with_extension("tmp").exists(), "no temporary file left");
        store.delete(&key).unwrap();
        store.delete(&key).unwrap();
        assert_eq!(store.load(&key, &mut buf), Ok(None));
        fs::remove_dir_all(dir).unwrap();
    }
}
