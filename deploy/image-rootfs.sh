#!/usr/bin/env bash
# Lays out the build context of deploy/Dockerfile.prebuilt: BINARY as /podscale, every
# shared library it loads (as ldd resolves them on this machine, the dynamic loader
# included) at its path, and the CA bundle for HTTPS to Prometheus.
#
#   bash deploy/image-rootfs.sh BINARY CONTEXT_DIR
set -euo pipefail
bin=${1:?usage: image-rootfs.sh BINARY CONTEXT_DIR}
ctx=${2:?usage: image-rootfs.sh BINARY CONTEXT_DIR}
root="$ctx/rootfs"
rm -rf "$root"
mkdir -p "$root/etc/ssl/certs" "$root/tmp"
cp "$bin" "$root/podscale"
cp deploy/Dockerfile.prebuilt "$ctx/" 2>/dev/null || true
# ldd prints "name => /path (addr)" or "/path (addr)"; a static binary prints neither.
# (ldd exits 1 on a static binary: that is not an error here.)
{ ldd "$bin" 2>/dev/null || true; } | { grep -o '/[^ ]*' || true; } | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
fi
# glibc's resolver reads /etc/nsswitch.conf; without it, it still tries files then DNS.
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
find "$root" -type f | sed "s|^$root||" | sort
