"""NVRTC compile of one CUDA source for sm_90: nvrtc_check.py SOURCE OUT.ptx [OPTION...]; prints the
log and writes the PTX. Run by check-cuda.sh (from its working directory with the unpacked wheels)."""
import ctypes, sys

lib = ctypes.CDLL("x/nvidia/cuda_nvrtc/lib/libnvrtc.so.12")
path, out, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
src = open(path).read()
# As nvrtc.rs does: the shared helpers spliced in, one self-contained program.
src = src.replace('#include "common.cuh"', open(path.rsplit("/", 1)[0] + "/common.cuh").read()).encode()
prog = ctypes.c_void_p()
assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, path.rsplit("/", 1)[-1].encode(), 0, None, None) == 0
opts = [b"--gpu-architecture=sm_90", b"--include-path=x/nvidia/cuda_runtime/include", b"--include-path=x/nvidia/cuda_nvcc/include", b"-lineinfo"]
opts += [o.encode() for o in extra]
arr = (ctypes.c_char_p * len(opts))(*opts)
rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
n = ctypes.c_size_t()
lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
log = ctypes.create_string_buffer(n.value)
lib.nvrtcGetProgramLog(prog, log)
print(path, " ".join(extra), "rc", rc)
print(log.value.decode()[:3000])
if rc != 0:
    sys.exit(1)
lib.nvrtcGetPTXSize(prog, ctypes.byref(n))
ptx = ctypes.create_string_buffer(n.value)
lib.nvrtcGetPTX(prog, ptx)
open(out, "w").write(ptx.value.decode())
