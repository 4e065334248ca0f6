#!/usr/bin/env bash
# Makes sure the system packages the interop tests drive are installed:
# installs them with apt-get when possible, else stops naming what is missing.
set -euo pipefail

declare -A need=(
  [cryptsetup]=cryptsetup
  [qemu-img]=qemu-utils
  [qemu-io]=qemu-utils
  [etcd]=etcd-server
  [barbican]=python3-barbicanclient
  [openstack]=python3-openstackclient
  [losetup]=mount
  [keystone-manage]=python3-keystone
  [uwsgi]=uwsgi-core
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
/usr/bin/python3 -c 'import kmip' >/dev/null 2>&1 || missing+=(python3-pykmip)
/usr/bin/python3 -c 'import castellan' >/dev/null 2>&1 || missing+=(python3-castellan)
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing+=(uwsgi-plugin-python3)
[ ${#missing[@]} -eq 0 ] && exit 0

pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing test dependencies: $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq $pkgs >/dev/null
  exit 0
fi
echo "make test needs these Debian packages: $pkgs" >&2
echo "install them with: sudo apt-get install -y $pkgs" >&2
exit 1
