//! What our CUDA C kernels share on the Rust side: device pointers and cubecl's stream for a
//! set of tensors, the launch itself, new outputs, and the `Strides` view of `[rows, heads, L,
//! d]` operands that lets kernels read the model's `[rows, L, heads, d]` projections in place.

use std::ffi::c_void;

use burn::tensor::{DType, Shape};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cubecl::cuda::CudaRuntime;
use cudarc::driver::result as drv;
use cudarc::driver::sys as cu;

pub(super) type T = CubeTensor<CudaRuntime>;

/// Threads per block of every launch.
pub(super) const THREADS: u32 = 128;

pub(super) fn dims4(t: &T) -> [usize; 4] {
    let s = t.meta.shape();
    [s[0], s[1], s[2], s[3]]
}

pub(super) fn empty<const N: usize>(like: &T, shape: [usize; N], dtype: DType) -> T {
    let n: usize = shape.iter().product();
    let handle = like.client.empty(n * dtype.size());
    T::new_contiguous(like.client.clone(), like.device.clone(), Shape::from(shape.to_vec()), handle, dtype)
}

/// Device pointers (kept alive by the returned resources) and the stream to launch on.
pub(super) struct Bound {
    pub(super) ptrs: Vec<u64>,
    pub(super) stream: cu::CUstream,
    _keep: Vec<Box<dyn std::any::Any>>,
}

pub(super) fn bind(tensors: &[&T]) -> Bound {
    let client = &tensors[0].client;
    let mut ptrs = Vec::with_capacity(tensors.len());
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::with_capacity(tensors.len());
    let mut stream = std::ptr::null_mut();
    for t in tensors {
        let r = client.get_resource(t.handle.clone()).expect("tensor resource");
        ptrs.push(r.resource().ptr);
        stream = r.resource().stream;
        keep.push(Box::new(r));
    }
    assert!(!stream.is_null(), "cubecl-cuda without the stream patch (vendor/cubecl-cuda)");
    Bound { ptrs, stream, _keep: keep }
}

pub(super) fn launch(f: cu::CUfunction, grid: (u32, u32, u32), smem: usize, stream: cu::CUstream, params: &mut [*mut c_void]) {
    // SAFETY: `params` point at live locals matching the kernel's signature; the buffers they
    // name are live cubecl allocations ordered on `stream`.
    unsafe { drv::launch_kernel(f, grid, (THREADS, 1, 1), smem as u32, stream, params).expect("kernel launch") };
}

macro_rules! params {
    ($($x:expr),* $(,)?) => { [$((&$x) as *const _ as *mut c_void),*] };
}
pub(super) use params;

/// The kernels' `Strides`: element strides of a `[rows, heads, L, d]` operand's first three dims.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Strides {
    row: i64,
    head: i64,
    pos: i64,
}

/// `t` as the kernels read it: `d` contiguous, rows of 16-byte-aligned vectors. Views like the
/// model's heads <-> sequence transposes qualify as they are; anything else is copied.
pub(super) fn readable(t: T) -> (T, Strides) {
    let ok = {
        let s = t.meta.strides();
        let aligned = |x: usize| x.is_multiple_of(8); // 8 bf16 = one 16-byte vector
        s[3] == 1 && aligned(s[0]) && aligned(s[1]) && aligned(s[2]) && t.handle.offset_start.unwrap_or(0).is_multiple_of(16)
    };
    let t = if ok { t } else { into_contiguous(t) };
    let s = t.meta.strides();
    let st = Strides { row: s[0] as i64, head: s[1] as i64, pos: s[2] as i64 };
    (t, st)
}

/// A new bf16/f32 `[rows, heads, L, d]` tensor stored as `[rows, L, heads, d]`: what the model
/// transposes attention's outputs and gradients back to, so that transpose becomes a view.
pub(super) fn empty_seq_major(like: &T, [rows, heads, len, hd]: [usize; 4], dtype: DType) -> (T, Strides) {
    let mut t = empty(like, [rows, len, heads, hd], dtype);
    t.meta.swap(1, 2);
    let st = Strides { row: (len * heads * hd) as i64, head: hd as i64, pos: (heads * hd) as i64 };
    (t, st)
}
