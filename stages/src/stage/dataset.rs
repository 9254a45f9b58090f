//! The `dataset` stage: reads the training images from the official binary layout (downloading
//! the official archive when they are missing), or samples ImageNet-1k from its folder, and
//! stores the image pool the scores sample from.
//!
//! Planning never downloads: a missing CIFAR dataset that may be fetched is keyed by its
//! official archive (file name and published md5), and the stage downloads it when it runs.
//! The download leaves a provenance record beside the files, so found files that match it are
//! keyed by the same archive: `run`, `status` and `explain` agree on a machine without the data
//! or the network, and a second run recomputes nothing. Files put there by hand are keyed by
//! their content.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::write_json;
use crate::error::{Error, Result};
use tenas_core::data::dataset::Dataset;
use tenas_core::data::download::{self, ArchiveSource, Provenance};
use tenas_core::data::imagenet;
use tenas_core::data::imagenet16;
use tenas_core::data::load::{load_dataset, source_files};
use tenas_core::data::pool::{save_pool, ImagePool};
use tenas_core::hashing::{file_sha256, sha256_hex};

/// Environment variable naming the data root; it overrides `root`.
pub const DATA_ENV: &str = "TENAS_DATA";
/// Testing hook: a server holding the CIFAR archives under their official file names, used in
/// place of the official site.
pub const MIRROR_ENV: &str = "TENAS_DOWNLOAD_MIRROR";
/// Testing hook: the md5 expected of a downloaded archive (a generated one has its own).
pub const MD5_ENV: &str = "TENAS_DOWNLOAD_MD5";

/// When the stage may fetch a missing dataset's official archive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DownloadValue", into = "DownloadValue")]
pub enum Download {
    /// Use the files that are there, fetch what is missing (`"auto"`, or `true`).
    #[default]
    Auto,
    /// Never fetch: missing files are an error (`false`, for offline use).
    Off,
}

/// How `download` is written in an experiment file.
#[derive(Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum DownloadValue {
    Flag(bool),
    Word(String),
}

impl TryFrom<DownloadValue> for Download {
    type Error = String;
    fn try_from(value: DownloadValue) -> std::result::Result<Download, String> {
        match value {
            DownloadValue::Flag(true) => Ok(Download::Auto),
            DownloadValue::Flag(false) => Ok(Download::Off),
            DownloadValue::Word(word) if word == "auto" => Ok(Download::Auto),
            DownloadValue::Word(word) => Err(format!(
                "download = {word:?}: expected \"auto\" (fetch what is missing), true (the same) or false (offline)"
            )),
        }
    }
}

impl From<Download> for DownloadValue {
    fn from(download: Download) -> DownloadValue {
        match download {
            Download::Auto => DownloadValue::Word("auto".into()),
            Download::Off => DownloadValue::Flag(false),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetParams {
    /// `cifar10`, `cifar100`, `imagenet16-120` or `imagenet-1k`.
    pub name: String,
    /// Folder holding `cifar-10-batches-bin/`, `cifar-100-binary/`, `imagenet-1k/train/`...;
    /// `TENAS_DATA` overrides it, and without either it is the user's cache folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// Whether a missing CIFAR dataset is downloaded (its official archive, md5-checked).
    pub download: Download,
    /// Keep only the first `limit` images (small pools for tests).
    pub limit: Option<usize>,
    /// ImageNet-1k: training images drawn into the pool (only these are read and decoded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    /// ImageNet-1k: seed of that draw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_seed: Option<u64>,
    /// ImageNet16-120: check each batch against its published md5 (default true); false
    /// reads generated or re-packed copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
}

/// ImageNet-1k images drawn into the pool when `sample` is not set: enough for distinct
/// linear-region crops (1000 per batch) and fresh NTK batches every round.
pub const DEFAULT_IMAGENET_SAMPLE: usize = 5000;

impl Default for DatasetParams {
    fn default() -> Self {
        DatasetParams {
            name: "cifar10".into(),
            root: None,
            download: Download::Auto,
            limit: None,
            sample: None,
            sample_seed: None,
            verify: None,
        }
    }
}

impl DatasetParams {
    fn dataset(&self) -> Result<Dataset> {
        Ok(Dataset::from_name(&self.name)?)
    }

    /// ImageNet16-120: whether the batches must have their published md5.
    fn verify(&self) -> bool {
        self.verify.unwrap_or(true)
    }

    /// ImageNet-1k's draw: `(images, seed)`.
    fn imagenet_sample(&self) -> (usize, u64) {
        (
            self.sample.unwrap_or(DEFAULT_IMAGENET_SAMPLE),
            self.sample_seed.unwrap_or(0),
        )
    }
}

/// The environment variables the stage reads, read once and passed in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataEnv {
    /// `TENAS_DATA`.
    pub data_root: Option<PathBuf>,
    /// `TENAS_DOWNLOAD_MIRROR`.
    pub mirror: Option<String>,
    /// `TENAS_DOWNLOAD_MD5`.
    pub md5: Option<String>,
}

impl DataEnv {
    /// The process's environment; empty variables count as unset.
    pub fn read() -> DataEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        DataEnv {
            data_root: std::env::var_os(DATA_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            mirror: var(MIRROR_ENV),
            md5: var(MD5_ENV),
        }
    }

    /// `TENAS_DATA`, else the param `root`, else the user's cache folder.
    pub fn data_root(&self, p: &DatasetParams) -> Result<PathBuf> {
        match (&self.data_root, &p.root) {
            (Some(root), _) | (None, Some(root)) => Ok(root.clone()),
            (None, None) => user_cache_root(),
        }
    }

    /// The official archive of `dataset`, or the same file from the mirror.
    pub fn archive_source(&self, dataset: Dataset) -> Result<ArchiveSource> {
        let mut source = ArchiveSource::official(dataset)?;
        if let Some(base) = &self.mirror {
            source = source.mirrored(base);
        }
        if let Some(md5) = &self.md5 {
            source.md5 = md5.clone();
        }
        Ok(source)
    }
}

/// `tenas` in the platform's per-user cache folder: `$XDG_CACHE_HOME/tenas`, else
/// `~/.cache/tenas` on Linux; `~/Library/Caches/tenas` on macOS; `%LOCALAPPDATA%\tenas` on
/// Windows.
pub fn user_cache_root() -> Result<PathBuf> {
    dirs::cache_dir().map(|dir| dir.join("tenas")).ok_or_else(|| {
        Error::invalid(format!(
            "no per-user cache folder to keep datasets in (is HOME set?); set {DATA_ENV} to a data root"
        ))
    })
}

/// The stage's output description, next to the pool file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatasetOutput {
    pub dataset: String,
    pub num_classes: usize,
    pub images: usize,
    pub content_sha256: String,
    pub source_files: Vec<(String, String)>,
}

impl DatasetOutput {
    pub const FILE: &'static str = "dataset.json";
    pub const POOL: &'static str = "pool.bin";
}

pub struct DatasetStage;

impl Stage for DatasetStage {
    fn kind(&self) -> &'static str {
        "dataset"
    }
    fn version(&self) -> u32 {
        1
    }
    fn resolve_paths(&self, params: &mut toml::Table, base: &Path) {
        tenas_pipeline::resolve_path_param(params, "root", base);
    }
    fn resolve_params(&self, params: &toml::Table) -> std::result::Result<Value, ParamError> {
        let value = resolve_params_as::<DatasetParams>(params)?;
        let p: DatasetParams = serde_json::from_value(value.clone()).expect("just resolved");
        p.dataset()
            .map_err(|e| ParamError::new("name", e.to_string()))?;
        Ok(value)
    }
    /// The data enters the key by the content of its files, never by where it lives; missing
    /// CIFAR files are fetched first, so found and downloaded data key alike.
    fn keyed_params(&self, params: &Value) -> std::result::Result<Value, ParamError> {
        let p: DatasetParams = serde_json::from_value(params.clone())
            .map_err(|e| ParamError::new("name", e.to_string()))?;
        keyed_view(&p, &DataEnv::read())
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        Ok(run(ctx)?)
    }
}

fn keyed_view(p: &DatasetParams, env: &DataEnv) -> std::result::Result<Value, ParamError> {
    let dataset = p
        .dataset()
        .map_err(|e| ParamError::new("name", e.to_string()))?;
    let root = env
        .data_root(p)
        .map_err(|e| ParamError::new("root", e.to_string()))?;
    if dataset == Dataset::ImageNet1k {
        let (count, seed) = p.imagenet_sample();
        let digests = imagenet::sample_digests(&root.join(imagenet::IMAGENET_DIR), count, seed)
            .map_err(|e| ParamError::new("root", e.to_string()))?;
        let listing: String = digests
            .iter()
            .map(|(f, sha)| format!("{f} {sha}\n"))
            .collect();
        return Ok(json!({
            "name": dataset.name(),
            "limit": p.limit,
            "sample": count,
            "sample_seed": seed,
            "content": [sha256_hex(listing.as_bytes())],
        }));
    }
    let content = content_key(p, env, &root, dataset)?;
    if dataset == Dataset::ImageNet16_120 {
        return Ok(
            json!({ "name": dataset.name(), "limit": p.limit, "verify": p.verify(), "content": content }),
        );
    }
    Ok(json!({ "name": dataset.name(), "limit": p.limit, "content": content }))
}

/// What keys the dataset's files: the archive they were (or will be) downloaded from, else the
/// sha256 of each. A missing dataset that may not be fetched is an error that says where the
/// files were looked for.
fn content_key(
    p: &DatasetParams,
    env: &DataEnv,
    root: &Path,
    dataset: Dataset,
) -> std::result::Result<Value, ParamError> {
    let files = source_files(root, dataset);
    if files.is_empty() {
        let downloadable = matches!(dataset, Dataset::Cifar10 | Dataset::Cifar100);
        if !downloadable || p.download == Download::Off {
            let key = if downloadable { "download" } else { "name" };
            return Err(ParamError::new(key, missing_message(root, dataset)));
        }
        let source = env
            .archive_source(dataset)
            .map_err(|e| ParamError::new("name", e.to_string()))?;
        return Ok(archive_key(Provenance::archive_name(&source), &source.md5));
    }
    let digests: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let name = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok((name, file_sha256(f)?))
        })
        .collect::<Result<_>>()
        .map_err(|e| ParamError::new("root", e.to_string()))?;
    match Provenance::read(root, dataset) {
        Some(provenance) if provenance.files == digests => {
            Ok(archive_key(&provenance.archive, &provenance.md5))
        }
        _ => Ok(json!(digests
            .into_iter()
            .map(|(_, sha)| sha)
            .collect::<Vec<_>>())),
    }
}

fn archive_key(archive: &str, md5: &str) -> Value {
    json!({ "archive": archive, "md5": md5.to_lowercase() })
}

/// Downloads a missing CIFAR dataset into `root` (the plan allowed it when it keyed the
/// stage); a build without the `download` feature says how to provide the files instead.
fn fetch_if_missing(env: &DataEnv, root: &Path, dataset: Dataset) -> Result<()> {
    if download::is_present(root, dataset) {
        return Ok(());
    }
    let source = env.archive_source(dataset)?;
    fetch(root, dataset, &source).map_err(|e| {
        Error::invalid(format!(
            "{e}; to use a copy you already have, set {DATA_ENV} to the folder that holds {}/",
            download::dataset_dir(dataset).unwrap_or("?")
        ))
    })
}

#[cfg(feature = "download")]
fn fetch(root: &Path, dataset: Dataset, source: &ArchiveSource) -> Result<()> {
    Ok(tenas_core::data::fetch::ensure_cifar(
        root, dataset, source,
    )?)
}

#[cfg(not(feature = "download"))]
fn fetch(root: &Path, dataset: Dataset, source: &ArchiveSource) -> Result<()> {
    Err(Error::invalid(format!(
        "{} is missing under {} and this build of tenas cannot download {} (built without the `download` feature)",
        dataset.name(),
        root.display(),
        source.url
    )))
}

fn missing_message(root: &Path, dataset: Dataset) -> String {
    match dataset {
        Dataset::ImageNet16_120 => format!(
            "no ImageNet16 training batches under {} (expected train_data_batch_1 .. train_data_batch_10, the downsampled ImageNet 16x16 files NAS-Bench-201 uses; they are not downloaded automatically); set {DATA_ENV} to a data root that holds {}/",
            root.join(imagenet16::IMAGENET16_DIR).display(),
            imagenet16::IMAGENET16_DIR
        ),
        Dataset::ImageNet1k => format!(
            "no ImageNet-1k folder at {} (expected train/<wnid>/*.JPEG); set {DATA_ENV} to a data root that holds {}/",
            root.join(imagenet::IMAGENET_DIR).display(),
            imagenet::IMAGENET_DIR
        ),
        _ => format!(
            "no {} training files under {} (expected {}/); set {DATA_ENV} to a data root that holds them, or drop `download = false` to fetch the official archive",
            dataset.name(),
            root.display(),
            download::dataset_dir(dataset).unwrap_or("?"),
        ),
    }
}

fn run(ctx: &StageContext<'_>) -> Result<()> {
    let p: DatasetParams = ctx.params_as()?;
    let dataset = p.dataset()?;
    let root = DataEnv::read().data_root(&p)?;
    if dataset == Dataset::ImageNet1k {
        let (count, seed) = p.imagenet_sample();
        let folder = root.join(imagenet::IMAGENET_DIR);
        let mut pool = imagenet::load_sample(&folder, count, seed)?;
        if let Some(limit) = p.limit {
            pool.truncate(limit);
        }
        ctx.progress().log(format!(
            "decoded {} sampled imagenet-1k images from {} at 32x32",
            pool.n,
            folder.display()
        ));
        return save(ctx, &pool);
    }
    if dataset == Dataset::ImageNet16_120 {
        return run_imagenet16(ctx, &p, &root);
    }
    fetch_if_missing(&DataEnv::read(), &root, dataset)?;
    let mut pool = load_dataset(&root, dataset)?;
    let read = pool.n;
    if let Some(limit) = p.limit {
        pool.truncate(limit);
    }
    ctx.progress().log(format!(
        "read {read} {} images from {}, keeping {}",
        dataset.name(),
        root.display(),
        pool.n
    ));
    save(ctx, &pool)
}

/// Reads the ImageNet16 batches that exist, saying which are missing, and keeps the records of
/// the 120 classes.
fn run_imagenet16(ctx: &StageContext<'_>, p: &DatasetParams, root: &Path) -> Result<()> {
    if source_files(root, Dataset::ImageNet16_120).is_empty() {
        return Err(Error::data(
            root,
            missing_message(root, Dataset::ImageNet16_120),
        ));
    }
    let missing = imagenet16::missing_batches(root);
    if !missing.is_empty() {
        ctx.progress().log(format!(
            "{} of {} ImageNet16 training batches are missing ({}); using the others",
            missing.len(),
            imagenet16::TRAIN_BATCHES.len(),
            missing.join(", ")
        ));
    }
    let mut pool = imagenet16::load_imagenet16_120(root, p.verify())?;
    let read = pool.n;
    if let Some(limit) = p.limit {
        pool.truncate(limit);
    }
    ctx.progress().log(format!(
        "read {read} imagenet16-120 images (classes 1..=120 of {} batches) from {}, keeping {}",
        pool.source_files.len(),
        root.join(imagenet16::IMAGENET16_DIR).display(),
        pool.n
    ));
    save(ctx, &pool)
}

fn save(ctx: &StageContext<'_>, pool: &ImagePool) -> Result<()> {
    save_pool(pool, &ctx.out_dir().join(DatasetOutput::POOL))?;
    let output = DatasetOutput {
        dataset: pool.dataset.name().to_string(),
        num_classes: pool.dataset.num_classes(),
        images: pool.n,
        content_sha256: pool.content_sha256(),
        source_files: pool.source_files.clone(),
    };
    write_json(&ctx.out_dir().join(DatasetOutput::FILE), &output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenas_core::data::cifar;
    #[cfg(feature = "download")]
    use tenas_core::data::fetch::LOCK_FILE;
    use tenas_core::test_support::served_cifar10;

    fn params(toml_text: &str) -> std::result::Result<DatasetParams, ParamError> {
        let table: toml::Table = toml_text.parse().unwrap();
        let value = DatasetStage.resolve_params(&table)?;
        Ok(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn download_is_auto_by_default_and_takes_auto_true_or_false() {
        assert_eq!(params("").unwrap().download, Download::Auto);
        assert_eq!(
            params("download = \"auto\"").unwrap().download,
            Download::Auto
        );
        assert_eq!(params("download = true").unwrap().download, Download::Auto);
        assert_eq!(params("download = false").unwrap().download, Download::Off);
        let err = params("download = \"always\"").unwrap_err();
        assert_eq!(err.key, "download");
        assert!(err.message.contains("expected \"auto\""), "{}", err.message);
        // Resolved params keep what was meant.
        let resolved = DatasetStage
            .resolve_params(&"download = false".parse().unwrap())
            .unwrap();
        assert_eq!(resolved["download"], json!(false));
        assert!(resolved.get("root").is_none());
    }

    #[test]
    fn tenas_data_wins_over_root_which_wins_over_the_user_cache() {
        let mut p = DatasetParams::default();
        let env = DataEnv::default();
        assert_eq!(env.data_root(&p).unwrap(), user_cache_root().unwrap());
        assert!(user_cache_root().unwrap().ends_with("tenas"));
        p.root = Some("param".into());
        assert_eq!(env.data_root(&p).unwrap(), PathBuf::from("param"));
        let env = DataEnv {
            data_root: Some("variable".into()),
            ..DataEnv::default()
        };
        assert_eq!(env.data_root(&p).unwrap(), PathBuf::from("variable"));
    }

    #[test]
    fn the_mirror_serves_the_official_file_names_and_the_md5_can_be_replaced() {
        let env = DataEnv {
            mirror: Some("http://127.0.0.1:1/cifar".into()),
            md5: Some("ab".repeat(16)),
            ..DataEnv::default()
        };
        let source = env.archive_source(Dataset::Cifar10).unwrap();
        assert_eq!(
            source.url,
            "http://127.0.0.1:1/cifar/cifar-10-binary.tar.gz"
        );
        assert_eq!(source.md5, "ab".repeat(16));
        let official = DataEnv::default()
            .archive_source(Dataset::Cifar100)
            .unwrap();
        assert_eq!(
            official,
            ArchiveSource::official(Dataset::Cifar100).unwrap()
        );
    }

    /// An environment whose data root is `root` and whose archive comes from `source`.
    fn env_for(root: &Path, source: &ArchiveSource) -> DataEnv {
        DataEnv {
            data_root: Some(root.to_path_buf()),
            mirror: Some(source.url.rsplit_once('/').unwrap().0.to_string()),
            md5: Some(source.md5.clone()),
        }
    }

    #[test]
    fn planning_keys_a_missing_dataset_by_its_archive_and_the_download_keys_alike() {
        let (server, source) = served_cifar10(6);
        let fresh = tempfile::tempdir().unwrap();
        let p = params("limit = 4").unwrap();
        let env = env_for(fresh.path(), &source);
        let planned = keyed_view(&p, &env).unwrap();
        assert_eq!(server.requests(), 0, "planning fetched");
        assert_eq!(planned["content"]["md5"], source.md5.to_lowercase());
        fetch_if_missing(&env, fresh.path(), Dataset::Cifar10).unwrap();
        assert_eq!(server.requests(), 1);
        assert_eq!(keyed_view(&p, &env).unwrap(), planned);

        // The same files put elsewhere by hand are keyed by their content.
        let copy = tempfile::tempdir().unwrap();
        let dir = copy.path().join(cifar::CIFAR10_DIR);
        std::fs::create_dir(&dir).unwrap();
        let batch = fresh
            .path()
            .join(cifar::CIFAR10_DIR)
            .join("data_batch_1.bin");
        std::fs::copy(batch, dir.join("data_batch_1.bin")).unwrap();
        let offline = params("limit = 4\ndownload = false").unwrap();
        let found = keyed_view(&offline, &env_for(copy.path(), &source)).unwrap();
        assert_eq!(found["content"].as_array().unwrap().len(), 1);
        assert_eq!(server.requests(), 1);
    }

    #[test]
    fn missing_data_with_download_off_says_how_to_fix_it_and_writes_nothing() {
        let empty = tempfile::tempdir().unwrap();
        let env = DataEnv {
            data_root: Some(empty.path().to_path_buf()),
            mirror: Some("http://127.0.0.1:1".into()),
            ..DataEnv::default()
        };
        let err = keyed_view(&params("download = false").unwrap(), &env).unwrap_err();
        assert_eq!(err.key, "download");
        assert!(
            err.message.contains(&empty.path().display().to_string())
                && err.message.contains("TENAS_DATA")
                && err.message.contains("cifar-10-batches-bin/"),
            "{}",
            err.message
        );
        let err = keyed_view(
            &params("name = \"cifar100\"\ndownload = false").unwrap(),
            &env,
        )
        .unwrap_err();
        assert!(err.message.contains("cifar-100-binary/"), "{}", err.message);
        assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    }

    #[test]
    #[cfg(feature = "download")]
    fn a_failed_download_names_the_url_and_tenas_data() {
        let (_server, source) = served_cifar10(2);
        let root = tempfile::tempdir().unwrap();
        let env = DataEnv {
            md5: Some("0".repeat(32)),
            ..env_for(root.path(), &source)
        };
        let err = fetch_if_missing(&env, root.path(), Dataset::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&source.url)
                && err.contains("md5 mismatch")
                && err.contains("set TENAS_DATA"),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [LOCK_FILE]);
    }

    #[test]
    fn real_data_is_found_without_a_download() {
        let env = DataEnv {
            data_root: Some(tenas_core::test_support::test_data_root()),
            mirror: Some("http://127.0.0.1:1".into()),
            ..DataEnv::default()
        };
        for name in ["cifar10", "cifar100"] {
            let p = params(&format!("name = \"{name}\"\ndownload = false")).unwrap();
            let keyed = keyed_view(&p, &env).unwrap();
            assert_eq!(keyed["content"].as_array().unwrap().len(), 1, "{name}");
        }
    }
}
