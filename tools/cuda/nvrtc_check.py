"""NVRTC compile of a CUDA source for HD=64 and 128 (sm_90); writes flash_<hd>.ptx. Run by check-flash.sh."""
import ctypes, sys
lib = ctypes.CDLL("x/nvidia/cuda_nvrtc/lib/libnvrtc.so.12")
src = open(sys.argv[1]).read().encode()
for hd in (64, 128):
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"flash.cu", 0, None, None) == 0
    opts = [b"--gpu-architecture=sm_90", ("-DHD=%d" % hd).encode(), b"--include-path=x/nvidia/cuda_runtime/include", b"--include-path=x/nvidia/cuda_nvcc/include", b"-lineinfo"]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
    n = ctypes.c_size_t(); lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value); lib.nvrtcGetProgramLog(prog, log)
    print("HD", hd, "rc", rc); print(log.value.decode()[:3000])
    if rc == 0:
        lib.nvrtcGetPTXSize(prog, ctypes.byref(n)); ptx = ctypes.create_string_buffer(n.value); lib.nvrtcGetPTX(prog, ptx)
        p = ptx.value.decode(); open("flash_%d.ptx" % hd, "w").write(p)
        print("ptx bytes", len(p), "mma lines", p.count("mma.sync"), "wmma", p.count("wmma"), "local", p.count(".local"))
