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
  [openssl]=openssl
)
# The test VM's tools (tests/hostvm) and the os-brick/libvirt checks, installed
# without recommends: qemu's pull in GUI libraries and minutes of work. The
# kernel itself is unpacked by the test (apt-get download), not installed.
declare -A lean=(
  [qemu-system-x86_64]=qemu-system-x86
  [modprobe]=kmod
  [depmod]=kmod
  [virt-xml-validate]=libvirt-clients
  [xmllint]=libxml2-utils
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
/usr/bin/python3 -c 'import kmip' >/dev/null 2>&1 || missing+=(python3-pykmip)
/usr/bin/python3 -c 'import castellan' >/dev/null 2>&1 || missing+=(python3-castellan)
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing+=(uwsgi-plugin-python3)
missing_lean=()
for cmd in "${!lean[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing_lean+=("${lean[$cmd]}")
done
# The initramfs needs a static busybox; Debian's busybox package is dynamic.
bb_ldd=$(ldd "$(command -v busybox || echo /nonexistent)" 2>&1 || true)
[[ $bb_ldd == *"not a dynamic executable"* ]] || missing_lean+=(busybox-static)
/usr/bin/python3 -c 'import os_brick.encryptors.luks' >/dev/null 2>&1 || missing_lean+=(python3-os-brick)
[ ${#missing[@]} -eq 0 ] && [ ${#missing_lean[@]} -eq 0 ] && exit 0

pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
lean_pkgs=$(printf '%s\n' "${missing_lean[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing test dependencies: $pkgs $lean_pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  [ -z "${pkgs// /}" ] || apt-get install -y -qq $pkgs >/dev/null
  [ -z "${lean_pkgs// /}" ] || apt-get install -y -qq --no-install-recommends $lean_pkgs >/dev/null
  exit 0
fi
echo "make test needs these Debian packages: $pkgs $lean_pkgs" >&2
echo "install them with: sudo apt-get install -y $pkgs && sudo apt-get install -y --no-install-recommends $lean_pkgs" >&2
exit 1
