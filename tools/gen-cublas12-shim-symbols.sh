#!/usr/bin/env bash
# Regenerates cuda/src/main/native/cublas12_shim/symbols.txt: every symbol JCublas2's native (libJCublas2-12.6.0)
# imports from libcublas.so.12, read with nm from the jcublas-natives jar in the local Maven repository
# (fetch it with: mvn dependency:get -Dartifact=org.jcuda:jcublas-natives:12.6.0:jar:linux-x86_64).
# Then rebuilds the prebuilt shim (committed for hosts without gcc).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${JCUDA_VERSION:-12.6.0}"
jar="${JCUBLAS_NATIVES_JAR:-$HOME/.m2/repository/org/jcuda/jcublas-natives/$version/jcublas-natives-$version-linux-x86_64.jar}"
[ -f "$jar" ] || { echo "gen-cublas12-shim-symbols: $jar not found" >&2; exit 2; }
shim="$root/cuda/src/main/native/cublas12_shim"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && unzip -q -o "$jar" "lib/libJCublas2-$version-linux-x86_64.so")
{
  echo "# Symbols libJCublas2-$version-linux-x86_64.so imports at version libcublas.so.12 (tools/gen-cublas12-shim-symbols.sh)."
  nm -D --undefined-only "$tmp/lib/libJCublas2-$version-linux-x86_64.so" | awk '{print $2}' \
    | grep '@libcublas\.so\.12$' | sed 's/@libcublas\.so\.12$//' | LC_ALL=C sort -u
} > "$shim/symbols.txt"
echo "gen-cublas12-shim-symbols: $(grep -vc '^#' "$shim/symbols.txt") symbols -> $shim/symbols.txt"
mkdir -p "$shim/prebuilt"
bash "$shim/build.sh" "$shim/prebuilt" --require-gcc
