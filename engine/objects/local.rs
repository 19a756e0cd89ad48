//! The `file://` backend: one file per object under a directory. Blocking calls; the store's
//! async methods run them with `spawn_blocking`.

use super::{ObjectError, TEMP_PREFIX};
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Objects as files under `root`; keys were checked by the store (relative, no `..`).
#[derive(Clone, Debug)]
pub(super) struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub(super) fn new(root: PathBuf) -> LocalBackend {
        LocalBackend { root }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Writes the object through a temporary file beside it, synced, then renamed into place:
    /// a reader sees the old object, or no object, or the whole new one.
    fn write_atomically(
        &self,
        key: &str,
        fill: impl FnOnce(&mut File) -> io::Result<u64>,
    ) -> Result<u64, ObjectError> {
        let io = |source| ObjectError::Io {
            key: key.to_owned(),
            source,
        };
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir)
            .map_err(io)?;
        let len = fill(temp.as_file_mut()).map_err(io)?;
        temp.as_file().sync_all().map_err(io)?;
        temp.persist(&path).map_err(|e| io(e.error))?;
        Ok(len)
    }

    pub(super) fn put_file(&self, key: &str, source: &Path) -> Result<u64, ObjectError> {
        let mut input = File::open(source).map_err(|source| ObjectError::Source {
            key: key.to_owned(),
            source,
        })?;
        self.write_atomically(key, |file| io::copy(&mut input, file))
    }

    pub(super) fn put_bytes(&self, key: &str, data: &[u8]) -> Result<(), ObjectError> {
        self.write_atomically(key, |file| {
            file.write_all(data)?;
            Ok(data.len() as u64)
        })?;
        Ok(())
    }

    /// The file, positioned at `range.start`, after checking that the range is inside it.
    pub(super) fn open_range(&self, key: &str, range: &Range<u64>) -> Result<File, ObjectError> {
        let mut file = File::open(self.path(key)).map_err(|e| not_found_or(key, e))?;
        let size = file
            .metadata()
            .map_err(|source| ObjectError::Io {
                key: key.to_owned(),
                source,
            })?
            .len();
        if range.end > size {
            return Err(ObjectError::Range {
                key: key.to_owned(),
                start: range.start,
                end: range.end,
                size: Some(size),
            });
        }
        file.seek(SeekFrom::Start(range.start))
            .map_err(|source| ObjectError::Io {
                key: key.to_owned(),
                source,
            })?;
        Ok(file)
    }

    pub(super) fn size(&self, key: &str) -> Result<u64, ObjectError> {
        let metadata = std::fs::metadata(self.path(key)).map_err(|e| not_found_or(key, e))?;
        if !metadata.is_file() {
            return Err(ObjectError::NotFound {
                key: key.to_owned(),
            });
        }
        Ok(metadata.len())
    }

    /// Removes the object; a missing one is not an error (as on S3).
    pub(super) fn delete(&self, key: &str) -> Result<(), ObjectError> {
        match std::fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ObjectError::Io {
                key: key.to_owned(),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Keys starting with `prefix`, sorted; temporary files of unfinished writes are skipped.
    pub(super) fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        // Only the directory holding the prefix's last component can hold matching keys.
        let (dir_key, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let mut keys = Vec::new();
        let mut stack = vec![dir_key.to_owned()];
        while let Some(dir) = stack.pop() {
            let path = if dir.is_empty() {
                self.root.clone()
            } else {
                self.path(&dir)
            };
            let entries = match std::fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(ObjectError::Io {
                        key: prefix.to_owned(),
                        source,
                    })
                }
            };
            for entry in entries {
                let entry = entry.map_err(|source| ObjectError::Io {
                    key: prefix.to_owned(),
                    source,
                })?;
                // Keys are UTF-8 (the store checks them), so other names are not objects.
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let key = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                let kind = entry.file_type().map_err(|source| ObjectError::Io {
                    key: key.clone(),
                    source,
                })?;
                if kind.is_dir() {
                    // A directory can hold matches if it starts like the prefix or the prefix
                    // starts with it.
                    let as_dir = format!("{key}/");
                    if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                        stack.push(key);
                    }
                } else if kind.is_file() && key.starts_with(prefix) {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

fn not_found_or(key: &str, error: io::Error) -> ObjectError {
    if error.kind() == io::ErrorKind::NotFound {
        ObjectError::NotFound {
            key: key.to_owned(),
        }
    } else {
        ObjectError::Io {
            key: key.to_owned(),
            source: error,
        }
    }
}
