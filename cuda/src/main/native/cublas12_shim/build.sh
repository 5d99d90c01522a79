#!/usr/bin/env bash
# Builds libcublas.so.12 (the compatibility shim) into OUTDIR from shim.c and symbols.txt.
# Run by Maven (exec plugin, process-resources). On a host that is not Linux x86_64 or has no gcc, copies the
# committed prebuilt/libcublas.so.12 instead (unless --require-gcc).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUTDIR [--require-gcc]}"
require="${2:-}"
mkdir -p "$out"
CC="${CC:-gcc}"
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ] || ! command -v "$CC" >/dev/null 2>&1; then
  [ "$require" = "--require-gcc" ] && { echo "cublas12 shim: needs gcc on Linux x86_64" >&2; exit 2; }
  cp "$here/prebuilt/libcublas.so.12" "$out/libcublas.so.12"
  echo "cublas12 shim: no gcc on Linux x86_64 here, shipped the prebuilt copy"
  exit 0
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
syms="$(grep -v '^#' "$here/symbols.txt" | grep -v '^$')"
printf 'X(%s)\n' $syms > "$tmp/shim_symbols.h"
{
  echo "libcublas.so.12 {"
  echo "  global:"
  printf '    %s;\n' $syms
  echo "    kiln_cublas12_shim_resolved; kiln_cublas12_shim_unresolved; kiln_cublas12_shim_target;"
  echo "  local: *;"
  echo "};"
} > "$tmp/shim.map"
"$CC" -shared -fPIC -O2 -Wall -Werror -I"$tmp" -o "$tmp/libcublas.so.12" "$here/shim.c" \
  -Wl,-soname,libcublas.so.12 -Wl,--version-script="$tmp/shim.map" -Wl,--build-id=none -Wl,-z,noexecstack -Wl,--no-as-needed -ldl
cp "$tmp/libcublas.so.12" "$out/libcublas.so.12"
echo "cublas12 shim: built $out/libcublas.so.12 ($(echo "$syms" | wc -l) symbols)"
