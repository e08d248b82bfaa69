#!/usr/bin/env bash
# Compile-checks every CUDA C source of crates/rmd-kernels/src/cuda on a machine without a GPU:
# NVRTC and ptxas from NVIDIA's PyPI wheels (~130 MB download, cached in $W), sm_90, each source
# with the option sets its launcher compiles it with; prints register use and spills per kernel.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${W:-/tmp/rmd-nvrtc}; mkdir -p "$W"
if [ ! -e "$W/x/nvidia/cuda_nvrtc/lib/libnvrtc.so.12" ]; then
  python3 -m pip download --no-deps --only-binary=:all: -q -d "$W" nvidia-cuda-nvrtc-cu12 nvidia-cuda-runtime-cu12 nvidia-cuda-nvcc-cu12
  for w in "$W"/*.whl; do python3 -m zipfile -e "$w" "$W/x"; done
  chmod +x "$W/x/nvidia/cuda_nvcc/bin/ptxas"
fi
K=$PWD/crates/rmd-kernels/src/cuda
# name source options...
variants=(
  "flash_64 flash.cu -DHD=64"
  "flash_128 flash.cu -DHD=128"
  "embedding embedding.cu"
  "rms_norm rms_norm.cu"
  "rms_norm_f32 rms_norm.cu -DGAMMA_F32"
  "rotary rotary.cu"
  "swiglu swiglu.cu"
)
status=0
for v in "${variants[@]}"; do
  set -- $v
  name=$1 src=$2; shift 2
  if (cd "$W" && LD_LIBRARY_PATH=x/nvidia/cuda_nvrtc/lib python3 "$OLDPWD/tools/cuda/nvrtc_check.py" "$K/$src" "$name.ptx" "$@" > "$name.log"); then
    echo "== $name: $("$W/x/nvidia/cuda_nvcc/bin/ptxas" -arch=sm_90 -v "$W/$name.ptx" -o /dev/null 2>&1 | grep -E "entry|registers|spill" | paste -sd' ' | sed -E "s/ptxas info *: //g")"
  else
    echo "== $name: NVRTC FAILED"; cat "$W/$name.log"; status=1
  fi
done
exit $status
