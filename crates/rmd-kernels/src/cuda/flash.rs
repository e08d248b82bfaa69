//! Flash attention (flash.cu) on cubecl CUDA tensors: compiled once per device and head dim
//! with NVRTC, launched on cubecl's own stream (like the cuBLAS GEMMs, no host sync).
//!
//! Nothing `[L, L]`-sized ever reaches device memory: the forward keeps each query tile's
//! softmax state on chip and writes the output and one log-sum-exp per query; the backward
//! recomputes the probabilities tile by tile from them.

use std::collections::HashMap;
use std::ffi::{c_void, CStr, CString};
use std::sync::Mutex;

use burn::tensor::{DType, Shape};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cubecl::cuda::CudaRuntime;
use cudarc::driver::result as drv;
use cudarc::driver::sys as cu;
use cudarc::nvrtc::result as nvrtc;

type T = CubeTensor<CudaRuntime>;

const SOURCE: &str = include_str!("flash.cu");
const THREADS: u32 = 128;
const TILE: usize = 64;

/// Head dims the kernels are built for.
pub(crate) fn supported(head_dim: usize) -> bool {
    head_dim == 64 || head_dim == 128
}

// Shared memory of each kernel: SMEM_FWD / SMEM_BWD of flash.cu (bf16 tiles padded to hd + 8
// columns, f32 score tiles to 68, mask rows to 68 bytes); the CPU emulation launches with those
// and checks every access against them.
fn smem_fwd(hd: usize) -> usize {
    3 * TILE * (hd + 8) * 2 + TILE * 68 * 4 + TILE * 72 * 2 + TILE * (hd + 4) * 4 + TILE * 68
}

fn smem_bwd(hd: usize) -> usize {
    4 * TILE * (hd + 8) * 2 + 2 * TILE * 68 * 4 + 2 * TILE * 72 * 2 + TILE * 68 + 2 * TILE * 4
}

#[derive(Clone, Copy)]
struct Kernels {
    fwd: cu::CUfunction,
    prep: cu::CUfunction,
    bwd: cu::CUfunction,
    reduce: cu::CUfunction,
}

// SAFETY: function handles of a loaded module are plain driver handles, valid on any thread
// with the module's context current.
unsafe impl Send for Kernels {}

static KERNELS: Mutex<Option<HashMap<(usize, usize), Kernels>>> = Mutex::new(None);

fn cuda_include() -> String {
    let root = std::env::var("CUDA_PATH").unwrap_or_else(|_| "/usr/local/cuda".to_string());
    format!("--include-path={root}/include")
}

/// Device `index`'s kernels for head dim `hd` (compiled on first use), its context current.
fn kernels(index: usize, hd: usize) -> Kernels {
    let mut guard = KERNELS.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    super::gemm::make_current(index);
    *map.entry((index, hd)).or_insert_with(|| compile(index, hd))
}

fn compile(index: usize, hd: usize) -> Kernels {
    // SAFETY: NVRTC and module-loading FFI on owned, NUL-terminated inputs; the context of
    // device `index` is current (set by the caller).
    unsafe {
        let dev = drv::device::get(index as i32).expect("CUDA device");
        let major = drv::device::get_attribute(dev, cu::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR).expect("compute capability");
        let minor = drv::device::get_attribute(dev, cu::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR).expect("compute capability");
        assert!(major >= 8, "flash attention needs bf16 tensor cores (sm_80+), device has sm_{major}{minor}");
        let src = CString::new(SOURCE).expect("kernel source has no NUL");
        let prog = nvrtc::create_program(&src, None).expect("NVRTC program");
        // RMD_FLASH_MASK_WORDS=0 reads the mask a byte at a time (a diagnostic for the word path).
        let words = std::env::var("RMD_FLASH_MASK_WORDS").map_or(1, |v| u8::from(v != "0"));
        let options = [format!("--gpu-architecture=sm_{major}{minor}"), format!("-DHD={hd}"), format!("-DMASK_WORDS={words}"), cuda_include(), "-lineinfo".to_string()];
        if nvrtc::compile_program(prog, &options).is_err() {
            let log = nvrtc::get_program_log(prog).unwrap_or_default();
            let log = CStr::from_ptr(log.as_ptr()).to_string_lossy();
            panic!("NVRTC could not compile flash.cu (HD={hd}, options {options:?}):\n{log}");
        }
        let ptx = nvrtc::get_ptx(prog).expect("PTX");
        let module = drv::module::load_data(ptx.as_ptr() as *const c_void).expect("load flash module");
        let get = |name: &str| drv::module::get_function(module, CString::new(name).unwrap()).expect("kernel in flash module");
        let k = Kernels { fwd: get("flash_fwd"), prep: get("flash_bwd_prep"), bwd: get("flash_bwd"), reduce: get("flash_bwd_reduce") };
        let attr = cu::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
        drv::function::set_function_attribute(k.fwd, attr, smem_fwd(hd) as i32).expect("flash_fwd shared memory");
        drv::function::set_function_attribute(k.bwd, attr, smem_bwd(hd) as i32).expect("flash_bwd shared memory");
        tracing::debug!(hd, "compiled flash attention kernels for sm_{major}{minor}");
        k
    }
}

fn dims4(t: &T) -> [usize; 4] {
    let s = t.meta.shape();
    [s[0], s[1], s[2], s[3]]
}

fn empty(like: &T, shape: [usize; 4], dtype: DType) -> T {
    let n: usize = shape.iter().product();
    let handle = like.client.empty(n * dtype.size());
    T::new_contiguous(like.client.clone(), like.device.clone(), Shape::from(shape.to_vec()), handle, dtype)
}

/// The mask's element strides and byte width (`true` = masked; broadcast dims have stride 0).
fn mask_meta(mask: &T) -> ([i64; 4], i32) {
    let s = mask.meta.strides();
    ([s[0] as i64, s[1] as i64, s[2] as i64, s[3] as i64], mask.dtype.size() as i32)
}

/// Device pointers (kept alive by the returned resources) and the stream to launch on.
struct Bound {
    ptrs: Vec<u64>,
    stream: cu::CUstream,
    _keep: Vec<Box<dyn std::any::Any>>,
}

fn bind(tensors: &[&T]) -> Bound {
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

fn launch(f: cu::CUfunction, grid: (u32, u32, u32), smem: usize, stream: cu::CUstream, params: &mut [*mut c_void]) {
    // SAFETY: `params` point at live locals matching the kernel's signature; the buffers they
    // name are live cubecl allocations ordered on `stream`.
    unsafe { drv::launch_kernel(f, grid, (THREADS, 1, 1), smem as u32, stream, params).expect("flash kernel launch") };
}

/// One block per (64-position tile, query head, row): the grid of flash_fwd and flash_bwd.
fn tile_grid(rows: usize, heads: usize, len: usize) -> (u32, u32, u32) {
    (len.div_ceil(TILE) as u32, heads as u32, rows as u32)
}

macro_rules! params {
    ($($x:expr),* $(,)?) => { [$((&$x) as *const _ as *mut c_void),*] };
}

/// `(out, lse)` for bf16 `q: [rows, heads, L, d]`, `k, v: [rows, kv_heads, L, d]` and the bool
/// `mask` (`[rows, heads, L, L]`, any strides); `lse: [rows, heads, L]` in f32.
pub(crate) fn forward(q: T, k: T, v: T, mask: T, scale: f64) -> (T, T) {
    let (q, k, v) = (into_contiguous(q), into_contiguous(k), into_contiguous(v));
    let [rows, heads, len, hd] = dims4(&q);
    let kvh = dims4(&k)[1];
    let kern = kernels(q.device.index, hd);
    let out = empty(&q, [rows, heads, len, hd], q.dtype);
    let lse = empty(&q, [rows, heads, len, 1], DType::F32);
    let b = bind(&[&q, &k, &v, &mask, &out, &lse]);
    let (ms, melem) = mask_meta(&mask);
    let (heads_i, kvh_i, len_i, scale_f) = (heads as i32, kvh as i32, len as i32, scale as f32);
    let [pq, pk, pv, pm, po, pl] = std::array::from_fn(|i| b.ptrs[i]);
    let mut p = params![pq, pk, pv, pm, ms[0], ms[1], ms[2], ms[3], melem, po, pl, heads_i, kvh_i, len_i, scale_f];
    launch(kern.fwd, tile_grid(rows, heads, len), smem_fwd(hd), b.stream, &mut p);
    (out, lse)
}

/// `(dq (f32), dk, dv)` for the forward's inputs, its output `out`, `lse` and the output
/// gradient `d_out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(q: T, k: T, v: T, out: T, lse: T, d_out: T, mask: T, scale: f64) -> (T, T, T) {
    let [q, k, v, out, d_out] = [q, k, v, out, d_out].map(into_contiguous);
    let [rows, heads, len, hd] = dims4(&q);
    let kvh = dims4(&k)[1];
    let len_pad = len.div_ceil(TILE) * TILE;
    let kern = kernels(q.device.index, hd);
    let dq = empty(&q, [rows, heads, len, hd], DType::F32);
    let dk = empty(&q, [rows, kvh, len, hd], q.dtype);
    let dv = empty(&q, [rows, kvh, len, hd], q.dtype);
    let dvec = empty(&q, [rows, heads, len, 1], DType::F32);
    // Per-query-head dK, dV (every key tile written whole, hence the padded length).
    let dk_part = empty(&q, [rows, heads, len_pad, hd], DType::F32);
    let dv_part = empty(&q, [rows, heads, len_pad, hd], DType::F32);
    let b = bind(&[&q, &k, &v, &out, &d_out, &lse, &mask, &dq, &dk, &dv, &dvec, &dk_part, &dv_part]);
    let [pq, pk, pv, po, pdo, pl, pm, pdq, pdk, pdv, pd, pkp, pvp] = std::array::from_fn(|i| b.ptrs[i]);
    let n = (rows * heads * len) as i64;
    // SAFETY: `pdq` is a live allocation of `n * hd` f32 ordered on `b.stream`.
    unsafe { drv::memset_d8_async(pdq, 0, n as usize * hd * 4, b.stream).expect("zero dQ") };
    let mut p = params![po, pdo, pd, n];
    launch(kern.prep, ((n as usize).div_ceil(THREADS as usize / 32) as u32, 1, 1), 0, b.stream, &mut p);
    let (ms, melem) = mask_meta(&mask);
    let (heads_i, kvh_i, len_i, len_pad_i, scale_f) = (heads as i32, kvh as i32, len as i32, len_pad as i32, scale as f32);
    let mut p = params![pq, pk, pv, pdo, pl, pd, pm, ms[0], ms[1], ms[2], ms[3], melem, pdq, pkp, pvp, heads_i, kvh_i, len_i, len_pad_i, scale_f];
    launch(kern.bwd, tile_grid(rows, heads, len), smem_bwd(hd), b.stream, &mut p);
    let total = (rows * kvh * len * hd) as i64;
    let mut p = params![pkp, pvp, pdk, pdv, heads_i, kvh_i, len_i, len_pad_i, total];
    launch(kern.reduce, ((total as usize).div_ceil(THREADS as usize) as u32, 1, 1), 0, b.stream, &mut p);
    (dq, dk, dv)
}
