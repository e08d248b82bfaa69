//! NVRTC compilation of our CUDA C sources (the `.cu` files beside this module) for the device
//! they run on, and a per-(device, options) cache of what each caller builds from the loaded module.

use std::collections::HashMap;
use std::ffi::{c_void, CStr, CString};
use std::hash::Hash;
use std::sync::{Mutex, OnceLock};

use cudarc::driver::result as drv;
use cudarc::driver::sys as cu;
use cudarc::nvrtc::result as nvrtc;

/// Whether libnvrtc can be loaded (logged once when it cannot).
pub(crate) fn available() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    *PRESENT.get_or_init(|| {
        // SAFETY: only probes for the shared library by name.
        let ok = unsafe { cudarc::nvrtc::sys::is_culib_present() };
        if !ok {
            tracing::warn!("libnvrtc not found (set LD_LIBRARY_PATH); our CUDA kernels are off");
        }
        ok
    })
}

/// Values built once per device and key (the key stands for the compile options), e.g. a
/// source's kernel handles.
pub(crate) struct Cache<K, V>(Mutex<Option<HashMap<(usize, K), V>>>);

impl<K: Eq + Hash, V: Copy> Cache<K, V> {
    pub(crate) const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// Device `index`'s value for `key`, built by `build` on first use (with the device's context
    /// current); the context is current on return, as launches need.
    pub(crate) fn get(&self, index: usize, key: K, build: impl FnOnce() -> V) -> V {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(HashMap::new);
        super::gemm::make_current(index);
        *map.entry((index, key)).or_insert_with(build)
    }
}

/// Device `index`'s compute capability `(major, minor)`.
pub(crate) fn compute_capability(index: usize) -> (i32, i32) {
    // SAFETY: plain attribute queries on a device cubecl already initialised.
    unsafe {
        let dev = drv::device::get(index as i32).expect("CUDA device");
        let attr = |a| drv::device::get_attribute(dev, a).expect("compute capability");
        (
            attr(cu::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
            attr(cu::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
        )
    }
}

fn cuda_include() -> String {
    let root = std::env::var("CUDA_PATH").unwrap_or_else(|_| "/usr/local/cuda".to_string());
    format!("--include-path={root}/include")
}

/// A loaded module (never unloaded: its kernels live as long as the process).
pub(crate) struct Module {
    handle: cu::CUmodule,
    name: &'static str,
}

impl Module {
    pub(crate) fn function(&self, kernel: &str) -> cu::CUfunction {
        let c = CString::new(kernel).expect("kernel name has no NUL");
        // SAFETY: `handle` is a loaded module and `c` a NUL-terminated name.
        unsafe { drv::module::get_function(self.handle, c) }.unwrap_or_else(|e| panic!("kernel {kernel} in {}: {e:?}", self.name))
    }
}

/// The device helpers every source includes (`#include "common.cuh"`).
const COMMON: &str = include_str!("common.cuh");

/// `source` (called `name` in messages) compiled for device `index`'s architecture with
/// `options` (besides the architecture, the CUDA include path and line info) and loaded; the
/// device's context must be current ([`Cache::get`] makes it so).
pub(crate) fn compile(index: usize, name: &'static str, source: &str, options: &[String]) -> Module {
    let (major, minor) = compute_capability(index);
    let mut all = vec![format!("--gpu-architecture=sm_{major}{minor}")];
    all.extend_from_slice(options);
    all.extend([cuda_include(), "-lineinfo".to_string()]);
    // SAFETY: NVRTC and module-loading FFI on owned, NUL-terminated inputs; the context of
    // device `index` is current (set by the caller).
    unsafe {
        // NVRTC is given one self-contained program: the shared helpers spliced in.
        let source = source.replace("#include \"common.cuh\"", COMMON);
        let src = CString::new(source).expect("kernel source has no NUL");
        let prog = nvrtc::create_program(&src, None).expect("NVRTC program");
        if nvrtc::compile_program(prog, &all).is_err() {
            let log = nvrtc::get_program_log(prog).unwrap_or_default();
            let log = CStr::from_ptr(log.as_ptr()).to_string_lossy();
            panic!("NVRTC could not compile {name} (options {all:?}):\n{log}");
        }
        let ptx = nvrtc::get_ptx(prog).expect("PTX");
        let handle = drv::module::load_data(ptx.as_ptr() as *const c_void).unwrap_or_else(|e| panic!("load {name} module: {e:?}"));
        Module { handle, name }
    }
}
