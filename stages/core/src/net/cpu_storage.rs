//! Reading and making candle CPU tensors, for the project's own CPU ops (`conv`,
//! `batch_norm`): their elements as slices, and tensors from computed buffers.
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Device, Layout, Shape, Storage, Tensor};

/// The elements of a contiguous CPU storage that `layout` covers.
pub(super) fn elements<'a, T>(
    all: &'a [T],
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [T]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: a non-contiguous argument")))?;
    Ok(&all[start..end])
}

/// `f` on a CPU tensor's storage and layout, after making it contiguous.
pub(super) fn with_storage<R>(
    t: &Tensor,
    op: &str,
    f: impl FnOnce(&CpuStorage, &Layout) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(s, layout),
        _ => Err(candle_core::Error::Msg(format!(
            "{op}: a tensor off the CPU"
        ))),
    }
}

/// A CPU tensor of `shape` holding `storage`'s elements.
pub(super) fn tensor(
    storage: CpuStorage,
    shape: &Shape,
    op: &'static str,
) -> candle_core::Result<Tensor> {
    match storage {
        CpuStorage::F32(v) => Tensor::from_vec(v, shape, &Device::Cpu),
        CpuStorage::F64(v) => Tensor::from_vec(v, shape, &Device::Cpu),
        other => Err(unsupported(&other, op)),
    }
}

/// The error for a dtype other than f32 and f64.
pub(super) fn unsupported(s: &CpuStorage, op: &'static str) -> candle_core::Error {
    candle_core::Error::UnsupportedDTypeForOp(s.dtype(), op)
}
