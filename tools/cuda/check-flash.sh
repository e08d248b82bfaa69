#!/usr/bin/env bash
# Compile-checks crates/rmd-kernels/src/cuda/flash.cu on a machine without a GPU: NVRTC and ptxas
# from NVIDIA's PyPI wheels (~130 MB download), both head dims, sm_90; prints register use and spills.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${W:-/tmp/rmd-nvrtc}; mkdir -p "$W"
if [ ! -e "$W/x/nvidia/cuda_nvrtc/lib/libnvrtc.so.12" ]; then
  python3 -m pip download --no-deps --only-binary=:all: -q -d "$W" nvidia-cuda-nvrtc-cu12 nvidia-cuda-runtime-cu12 nvidia-cuda-nvcc-cu12
  for w in "$W"/*.whl; do python3 -m zipfile -e "$w" "$W/x"; done
  chmod +x "$W/x/nvidia/cuda_nvcc/bin/ptxas"
fi
(cd "$W" && LD_LIBRARY_PATH=x/nvidia/cuda_nvrtc/lib python3 "$OLDPWD/tools/cuda/nvrtc_check.py" "$OLDPWD/crates/rmd-kernels/src/cuda/flash.cu")
for hd in 64 128; do "$W/x/nvidia/cuda_nvcc/bin/ptxas" -arch=sm_90 -v "$W/flash_$hd.ptx" -o /dev/null 2>&1 | grep -E "entry|registers|spill"; done
