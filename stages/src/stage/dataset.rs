//! The `dataset` stage: reads the training images from the official binary layout (downloading
//! the official archive when allowed), or samples ImageNet-1k from its folder, and stores the
//! image pool the scores sample from.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tenas_pipeline::{resolve_params_as, ParamError, Stage, StageContext};

use super::write_json;
use crate::data::cifar::{self, Dataset};
use crate::data::download;
use crate::data::imagenet;
use crate::data::imagenet16;
use crate::error::{Error, Result};
use crate::hashing::file_sha256;

/// Environment variable naming the data root; it overrides `root`.
pub const DATA_ENV: &str = "TENAS_DATA";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetParams {
    /// `cifar10`, `cifar100`, `imagenet16-120` or `imagenet-1k`.
    pub name: String,
    /// Folder holding `cifar-10-batches-bin/`, `cifar-100-binary/`, `imagenet-1k/train/`...
    pub root: PathBuf,
    /// Download and verify the official archive when the files are missing.
    pub download: bool,
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
            root: PathBuf::from("../shared/data"),
            download: false,
            limit: None,
            sample: None,
            sample_seed: None,
            verify: None,
        }
    }
}

impl DatasetParams {
    fn dataset(&self) -> Result<Dataset> {
        Dataset::from_name(&self.name)
    }

    fn data_root(&self) -> PathBuf {
        std::env::var_os(DATA_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.clone())
    }

    /// ImageNet16-120: whether the batches must have their published md5.
    fn verify(&self) -> bool {
        self.verify.unwrap_or(true)
    }

    fn imagenet_folder(&self) -> PathBuf {
        self.data_root().join(imagenet::IMAGENET_DIR)
    }

    /// ImageNet-1k's draw: `(images, seed)`.
    fn imagenet_sample(&self) -> (usize, u64) {
        (
            self.sample.unwrap_or(DEFAULT_IMAGENET_SAMPLE),
            self.sample_seed.unwrap_or(0),
        )
    }

    /// The files the pool is read from, where they exist.
    fn source_files(&self) -> Result<Vec<PathBuf>> {
        let root = self.data_root();
        Ok(match self.dataset()? {
            Dataset::Cifar10 => cifar::cifar10_batch_paths(&root),
            Dataset::Cifar100 => {
                let p = root.join(cifar::CIFAR100_DIR).join(cifar::CIFAR100_TRAIN);
                if p.is_file() {
                    vec![p]
                } else {
                    vec![]
                }
            }
            Dataset::ImageNet16_120 => imagenet16::batch_paths(&root)
                .into_iter()
                .map(|(path, _)| path)
                .collect(),
            Dataset::ImageNet1k => vec![],
        })
    }
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
    fn default_inputs(&self) -> Vec<&'static str> {
        vec![]
    }
    fn uses_seed(&self) -> bool {
        false
    }
    fn uses_device(&self) -> bool {
        false
    }
    fn resolve_paths(&self, params: &mut toml::Table, base: &std::path::Path) {
        tenas_pipeline::resolve_path_param(params, "root", base);
    }
    fn resolve_params(&self, params: &toml::Table) -> std::result::Result<Value, ParamError> {
        let value = resolve_params_as::<DatasetParams>(params)?;
        let p: DatasetParams = serde_json::from_value(value.clone()).expect("just resolved");
        p.dataset()
            .map_err(|e| ParamError::new("name", e.to_string()))?;
        Ok(value)
    }
    /// The data enters the key by the content of its files (or, before a download, by the
    /// official archive's checksum), never by where it lives.
    fn keyed_params(&self, params: &Value) -> std::result::Result<Value, ParamError> {
        let p: DatasetParams = serde_json::from_value(params.clone())
            .map_err(|e| ParamError::new("name", e.to_string()))?;
        let dataset = p
            .dataset()
            .map_err(|e| ParamError::new("name", e.to_string()))?;
        if dataset == Dataset::ImageNet1k {
            let (count, seed) = p.imagenet_sample();
            let digests = imagenet::sample_digests(&p.imagenet_folder(), count, seed)
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
                "content": [tenas_pipeline::sha256_hex(listing.as_bytes())],
            }));
        }
        let files = p
            .source_files()
            .map_err(|e| ParamError::new("root", e.to_string()))?;
        let content: Vec<String> = if !files.is_empty() {
            files
                .iter()
                .map(|f| file_sha256(f))
                .collect::<Result<_>>()
                .map_err(|e| ParamError::new("root", e.to_string()))?
        } else if p.download && dataset != Dataset::ImageNet16_120 {
            let source = download::ArchiveSource::official(dataset)
                .map_err(|e| ParamError::new("name", e.to_string()))?;
            vec![format!("archive:{}", source.md5)]
        } else {
            return Err(ParamError::new("root", missing_message(&p, dataset)));
        };
        if dataset == Dataset::ImageNet16_120 {
            return Ok(
                json!({ "name": dataset.name(), "limit": p.limit, "verify": p.verify(), "content": content }),
            );
        }
        Ok(json!({ "name": dataset.name(), "limit": p.limit, "content": content }))
    }
    fn run(&self, ctx: &StageContext<'_>) -> tenas_pipeline::Result<()> {
        Ok(run(ctx)?)
    }
}

fn missing_message(p: &DatasetParams, dataset: Dataset) -> String {
    let root = p.data_root();
    match dataset {
        Dataset::ImageNet16_120 => format!(
            "no ImageNet16 training batches under {} (expected train_data_batch_1 .. train_data_batch_10, the downsampled ImageNet 16x16 files NAS-Bench-201 uses; they are not downloaded automatically); set {DATA_ENV} to a data root that holds {}/",
            root.join(imagenet16::IMAGENET16_DIR).display(),
            imagenet16::IMAGENET16_DIR
        ),
        Dataset::ImageNet1k => format!(
            "no ImageNet-1k folder at {} (expected train/<wnid>/*.JPEG); set {DATA_ENV} to a data root that holds {}/",
            p.imagenet_folder().display(),
            imagenet::IMAGENET_DIR
        ),
        _ => format!(
            "no {} training files under {} (expected {}/); set {DATA_ENV} to a data root, or `download = true` to fetch the official archive",
            dataset.name(),
            root.display(),
            download::dataset_dir(dataset).unwrap_or("?"),
        ),
    }
}

fn run(ctx: &StageContext<'_>) -> Result<()> {
    let p: DatasetParams = ctx.params_as()?;
    let dataset = p.dataset()?;
    let root = p.data_root();
    if dataset == Dataset::ImageNet1k {
        let (count, seed) = p.imagenet_sample();
        let mut pool = imagenet::load_sample(&p.imagenet_folder(), count, seed)?;
        if let Some(limit) = p.limit {
            pool.truncate(limit);
        }
        ctx.progress().log(format!(
            "dataset: decoded {} sampled imagenet-1k images from {} at 32x32",
            pool.n,
            p.imagenet_folder().display()
        ));
        return save(ctx, &pool);
    }
    if dataset == Dataset::ImageNet16_120 {
        return run_imagenet16(ctx, &p);
    }
    if p.source_files()?.is_empty() {
        if !p.download {
            return Err(Error::data(&root, missing_message(&p, dataset)));
        }
        ctx.progress().log(format!(
            "downloading {} into {}",
            dataset.name(),
            root.display()
        ));
        download::ensure_cifar(
            &root,
            dataset,
            true,
            &download::ArchiveSource::official(dataset)?,
        )?;
    }
    let mut pool = cifar::load_dataset(&root, dataset)?;
    let read = pool.n;
    if let Some(limit) = p.limit {
        pool.truncate(limit);
    }
    ctx.progress().log(format!(
        "dataset: read {read} {} images from {}, keeping {}",
        dataset.name(),
        root.display(),
        pool.n
    ));
    save(ctx, &pool)
}

/// Reads the ImageNet16 batches that exist, saying which are missing, and keeps the records of
/// the 120 classes.
fn run_imagenet16(ctx: &StageContext<'_>, p: &DatasetParams) -> Result<()> {
    let root = p.data_root();
    if p.source_files()?.is_empty() {
        return Err(Error::data(
            &root,
            missing_message(p, Dataset::ImageNet16_120),
        ));
    }
    let missing = imagenet16::missing_batches(&root);
    if !missing.is_empty() {
        ctx.progress().log(format!(
            "dataset: {} of {} ImageNet16 training batches are missing ({}); using the others",
            missing.len(),
            imagenet16::TRAIN_BATCHES.len(),
            missing.join(", ")
        ));
    }
    let mut pool = imagenet16::load_imagenet16_120(&root, p.verify())?;
    let read = pool.n;
    if let Some(limit) = p.limit {
        pool.truncate(limit);
    }
    ctx.progress().log(format!(
        "dataset: read {read} imagenet16-120 images (classes 1..=120 of {} batches) from {}, keeping {}",
        pool.source_files.len(),
        root.join(imagenet16::IMAGENET16_DIR).display(),
        pool.n
    ));
    save(ctx, &pool)
}

fn save(ctx: &StageContext<'_>, pool: &cifar::ImagePool) -> Result<()> {
    cifar::save_pool(pool, &ctx.out_dir().join(DatasetOutput::POOL))?;
    let output = DatasetOutput {
        dataset: pool.dataset.name().to_string(),
        num_classes: pool.dataset.num_classes(),
        images: pool.n,
        content_sha256: pool.content_sha256(),
        source_files: pool.source_files.clone(),
    };
    write_json(&ctx.out_dir().join(DatasetOutput::FILE), &output)
}
