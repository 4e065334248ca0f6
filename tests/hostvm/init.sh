#!/bin/busybox sh
# /init of the test VM: mount the kernel filesystems, load the modules listed
# in /modules.list, run each line of /tests/plan and report on the serial
# console with KWVM-* marker lines, then power off.
/bin/busybox --install -s /bin
export PATH=/bin LD_LIBRARY_PATH=/lib/x86_64-linux-gnu HOME=/tmp TMPDIR=/tmp LC_ALL=C
mkdir -p /proc /sys /dev /run /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
ln -s /proc/self/fd /dev/fd # what udev would add; cryptsetup reads second passphrases there
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
while read -r m; do
	insmod "/lib/modules/$m" || echo "KWVM-ERROR insmod $m"
done </modules.list
ip link set lo up
echo "KWVM-BOOTED $(cut -d' ' -f1 /proc/uptime)"
# Each plan line: NAME BINARY ARGS... (run from /tmp with the plan's env).
while read -r name bin args; do
	[ -z "$name" ] && continue
	echo "KWVM-BEGIN $name"
	start=$(cut -d' ' -f1 /proc/uptime)
	(cd /tmp && env KEYWARDEN_REQUIRE_DM=1 KEYWARDEN_IN_VM=1 $bin $args </dev/null 2>&1)
	rc=$?
	echo "KWVM-END $name $rc $start $(cut -d' ' -f1 /proc/uptime)"
done </tests/plan
echo "KWVM-DONE $(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
