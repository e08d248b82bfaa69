# Sourced by the GPU scripts: unpacks gpu-xz/*.xz into gpu-dist/ and puts cuBLAS on the loader path.
mkdir -p gpu-dist
for f in gpu-xz/*.xz; do
  [ -e "$f" ] || continue
  out="gpu-dist/$(basename "${f%.xz}")"
  # Always unpacked: a warm machine keeps gpu-dist/ from an earlier call, with older binaries.
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$out" && chmod +x "$out"
done

# cuBLAS comes from PyTorch's wheels on this machine; cudarc loads it by name.
if [ -z "${RMD_CUBLAS_DIR:-}" ]; then
  lib=$(find / -name 'libcublas.so*' -not -path '*/proc/*' 2>/dev/null | head -1)
  RMD_CUBLAS_DIR=$(dirname "$lib")
fi
mkdir -p /tmp/rmd-lib
for f in "$RMD_CUBLAS_DIR"/libcublas*.so*; do
  base=$(basename "$f"); ln -sf "$f" "/tmp/rmd-lib/$base"; ln -sf "$f" "/tmp/rmd-lib/${base%%.so*}.so"
done
export LD_LIBRARY_PATH="/tmp/rmd-lib:$RMD_CUBLAS_DIR:${LD_LIBRARY_PATH:-}"
