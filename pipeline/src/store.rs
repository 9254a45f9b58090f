//! The content-addressed artifact store: atomic writes, per-key locks, validation.
//!
//! Layout under the root:
//! `objects/<k[0..2]>/<k>/` stage artifacts, `units/<k[0..2]>/<k>/` sub-unit artifacts,
//! `locks/<k>.lock`, `tmp/<random>/` staging, `runs/`, `results/` (see README.md).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde_json::Value;
use walkdir::WalkDir;

use crate::error::{Error, IoContext, Result};
use crate::hash::file_digest;
use crate::manifest::{host_name, validate, FileEntry, Manifest, Validity, MANIFEST_FILE};
use crate::util::{fsync_dir, random_hex, utc_timestamp};

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Stage artifacts and units live in separate trees so `gc` can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Objects,
    Units,
}

impl Area {
    pub(crate) fn dir_name(self) -> &'static str {
        match self {
            Area::Objects => "objects",
            Area::Units => "units",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Hit,
    Miss,
    RecomputedInvalid,
}

pub(crate) struct Artifact {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub outcome: Outcome,
}

/// What a computation hands back to be recorded in its manifest.
pub(crate) struct Produced {
    pub units: Vec<String>,
}

/// Held while a key is being checked or computed; the OS drops flocks of dead processes.
struct KeyLock {
    _file: File,
}

/// `tmp/<random>/`: `lock` (held while in use) and `out/` (becomes the artifact, or is
/// deleted with the rest on drop).
pub(crate) struct Staging {
    dir: PathBuf,
    out: PathBuf,
    _lock: File,
}

impl Staging {
    /// The folder to write into.
    pub(crate) fn path(&self) -> &Path {
        &self.out
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // After a commit only the lock file is left; after a failure, partial output.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Store {
    /// Opens a store; nothing is created until something is written.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        if root.exists() && !root.is_dir() {
            return Err(Error::NotAStore { path: root });
        }
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn artifact_dir(&self, area: Area, key: &str) -> PathBuf {
        self.root.join(area.dir_name()).join(&key[..2]).join(key)
    }

    pub fn validate(&self, area: Area, key: &str) -> Validity {
        validate(&self.artifact_dir(area, key), key)
    }

    pub(crate) fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub(crate) fn results_dir(&self) -> PathBuf {
        self.root.join("results")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn lock_key(&self, key: &str) -> Result<KeyLock> {
        let dir = self.root.join("locks");
        fs::create_dir_all(&dir).at(&dir)?;
        let path = dir.join(format!("{key}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        fs4::FileExt::lock(&file).at(&path)?;
        Ok(KeyLock { _file: file })
    }

    /// A locked temporary folder inside the store, removed when dropped.
    pub(crate) fn scratch_dir(&self) -> Result<Staging> {
        self.begin_staging()
    }

    fn begin_staging(&self) -> Result<Staging> {
        let dir = self.tmp_dir().join(random_hex());
        let out = dir.join("out");
        fs::create_dir_all(&out).at(&out)?;
        let lock_path = dir.join("lock");
        let lock = File::create(&lock_path).at(&lock_path)?;
        fs4::FileExt::lock(&lock).at(&lock_path)?;
        Ok(Staging {
            dir,
            out,
            _lock: lock,
        })
    }

    /// Returns the valid artifact for `key`, computing it (once, across threads and
    /// processes) when it is missing or invalid. `warn` is told about invalid ones.
    pub(crate) fn get_or_compute(
        &self,
        area: Area,
        key: &str,
        components: &Value,
        tool_version: &str,
        warn: &dyn Fn(String),
        compute: impl FnOnce(&Path) -> Result<Produced>,
    ) -> Result<Artifact> {
        let dir = self.artifact_dir(area, key);
        // Artifacts appear and vanish by rename, so an unlocked check is safe.
        if let Validity::Valid(manifest) = validate(&dir, key) {
            return Ok(Artifact {
                dir,
                manifest: *manifest,
                outcome: Outcome::Hit,
            });
        }
        let _lock = self.lock_key(key)?;
        let outcome = match validate(&dir, key) {
            Validity::Valid(manifest) => {
                return Ok(Artifact {
                    dir,
                    manifest: *manifest,
                    outcome: Outcome::Hit,
                })
            }
            Validity::Missing => Outcome::Miss,
            Validity::Invalid { file, reason } => {
                warn(format!(
                    "warning: artifact {} is invalid ({file}: {reason}); recomputing",
                    dir.display()
                ));
                self.discard(&dir)?;
                Outcome::RecomputedInvalid
            }
        };
        let staging = self.begin_staging()?;
        let started = SystemTime::now();
        let clock = Instant::now();
        let produced = compute(&staging.out)?;
        let manifest = Manifest {
            key: key.to_string(),
            components: components.clone(),
            files: Vec::new(),
            units: produced.units,
            started: utc_timestamp(started),
            finished: utc_timestamp(SystemTime::now()),
            wall_seconds: clock.elapsed().as_secs_f64(),
            tool_version: tool_version.to_string(),
            host: host_name(),
        };
        let manifest = commit(&staging.out, &dir, manifest)?;
        Ok(Artifact {
            dir,
            manifest,
            outcome,
        })
    }

    /// Moves a bad artifact out of the namespace atomically, then deletes it.
    pub(crate) fn discard(&self, dir: &Path) -> Result<()> {
        let tmp = self.tmp_dir();
        fs::create_dir_all(&tmp).at(&tmp)?;
        let trash = tmp.join(format!("trash-{}", random_hex()));
        fs::rename(dir, &trash).at(dir)?;
        fs::remove_dir_all(&trash).at(&trash)
    }
}

/// A complete artifact's files are read-only, as DVC's cache: results are hard links to
/// them, and an edit through one would silently change the artifact.
fn make_read_only(path: &Path) -> Result<()> {
    let mut permissions = fs::metadata(path).at(path)?.permissions();
    permissions.set_readonly(true);
    fs::set_permissions(path, permissions).at(path)
}

/// Lists and fsyncs the output files, writes the manifest, renames `out` to `dest`.
fn commit(out: &Path, dest: &Path, mut manifest: Manifest) -> Result<Manifest> {
    let mut dirs = vec![out.to_path_buf()];
    for entry in WalkDir::new(out).min_depth(1).sort_by_file_name() {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type().is_dir() {
            dirs.push(path.to_path_buf());
            continue;
        }
        let relative = path
            .strip_prefix(out)
            .expect("walked under out")
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if relative == MANIFEST_FILE {
            return Err(Error::ReservedFile {
                name: MANIFEST_FILE.to_string(),
            });
        }
        File::open(path).and_then(|f| f.sync_all()).at(path)?;
        make_read_only(path)?;
        let (size, sha256) = file_digest(path)?;
        manifest.files.push(FileEntry {
            path: relative,
            size,
            sha256,
        });
    }
    let manifest_path = out.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest)?;
    fs::write(&manifest_path, json).at(&manifest_path)?;
    File::open(&manifest_path)
        .and_then(|f| f.sync_all())
        .at(&manifest_path)?;
    make_read_only(&manifest_path)?;
    for dir in &dirs {
        fsync_dir(dir)?;
    }
    let parent = dest.parent().expect("artifact dir has a parent");
    fs::create_dir_all(parent).at(parent)?;
    if let Err(e) = fs::rename(out, dest) {
        // Another process committed the same key first (a filesystem whose locks are not
        // coherent across nodes): its artifact holds the same numbers, keep it.
        if let Validity::Valid(theirs) = validate(dest, &manifest.key) {
            return Ok(*theirs);
        }
        return Err(Error::io(dest.display(), e));
    }
    fsync_dir(parent)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(store: &Store, text: &str) -> Staging {
        let staging = store.begin_staging().unwrap();
        fs::write(staging.path().join("value.txt"), text).unwrap();
        staging
    }

    fn manifest(key: &str) -> Manifest {
        Manifest {
            key: key.into(),
            components: Value::Null,
            files: Vec::new(),
            units: Vec::new(),
            started: String::new(),
            finished: String::new(),
            wall_seconds: 0.0,
            tool_version: "test".into(),
            host: None,
        }
    }

    #[test]
    fn a_commit_that_loses_the_race_keeps_the_winners_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = "ab".repeat(32);
        let dest = store.artifact_dir(Area::Objects, &key);
        let first = staged(&store, "42\n");
        let second = staged(&store, "42\n");
        let winner = commit(first.path(), &dest, manifest(&key)).unwrap();
        let loser = commit(second.path(), &dest, manifest(&key)).unwrap();
        assert_eq!(winner.files, loser.files);
        assert!(matches!(
            store.validate(Area::Objects, &key),
            Validity::Valid(_)
        ));
        // Not a valid artifact in the way: still an error.
        let other = "cd".repeat(32);
        let blocked = store.artifact_dir(Area::Objects, &other);
        fs::create_dir_all(blocked.join("junk")).unwrap();
        let third = staged(&store, "7\n");
        assert!(commit(third.path(), &blocked, manifest(&other)).is_err());
    }
}
