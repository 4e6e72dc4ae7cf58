#!/bin/bash
# A one-host Ceph cluster made the manual way of Ceph's documentation
# ("Manual Deployment"), not by osdeploy's ceph role: the cinder scenario
# uses it as an existing cluster (osdeploy.yml's ceph:, the role variable
# ceph_external). Its pools and users have names of its own. Writes the
# clients' files (ceph.conf, one keyring per OpenStack user) to $2.
#
# Usage: make-ceph-cluster.sh <monitor address> <clients' directory>
set -euo pipefail
address=$1
out=$2
name=$(hostname -s)
fsid=$(cat /proc/sys/kernel/random/uuid)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

install -d -m 0755 /etc/ceph "$out"
cat >/etc/ceph/ceph.conf <<CONF
[global]
fsid = $fsid
mon initial members = $name
mon host = $address
public network = $address/32
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 10
CONF

# Monitor: its keyring with mon. and client.admin, a map naming it, --mkfs.
ceph-authtool --create-keyring "$tmp/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring /etc/ceph/ceph.client.admin.keyring --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
chmod 0600 /etc/ceph/ceph.client.admin.keyring
ceph-authtool "$tmp/mon.keyring" --import-keyring /etc/ceph/ceph.client.admin.keyring >/dev/null
monmaptool --create --add "$name" "$address" --fsid "$fsid" "$tmp/monmap" >/dev/null
chown -R ceph:ceph "$tmp"
install -d -o ceph -g ceph -m 0750 "/var/lib/ceph/mon/ceph-$name"
ceph-mon --mkfs -i "$name" --monmap "$tmp/monmap" --keyring "$tmp/mon.keyring" \
  --setuser ceph --setgroup ceph
systemctl enable --now "ceph-mon@$name" ceph-mon.target ceph.target
until ceph --connect-timeout 5 quorum_status >/dev/null 2>&1; do sleep 1; done
# The map above gave the monitor a v1 address only.
ceph mon enable-msgr2

# Manager.
install -d -o ceph -g ceph -m 0750 "/var/lib/ceph/mgr/ceph-$name"
ceph auth get-or-create "mgr.$name" mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
  -o "/var/lib/ceph/mgr/ceph-$name/keyring"
chown ceph:ceph "/var/lib/ceph/mgr/ceph-$name/keyring"
systemctl enable --now "ceph-mgr@$name" ceph-mgr.target

# One BlueStore OSD on a sparse file.
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
id=$(ceph osd new "$osd_uuid")
dir=/var/lib/ceph/osd/ceph-$id
install -d -o ceph -g ceph -m 0750 /srv/ceph-osd "$dir"
truncate --size 4G /srv/ceph-osd/block.img
chown ceph:ceph /srv/ceph-osd/block.img
ln -s /srv/ceph-osd/block.img "$dir/block"
ceph auth get-or-create "osd.$id" mon 'allow profile osd' mgr 'allow profile osd' osd 'allow *' \
  -o "$dir/keyring"
chown -h ceph:ceph "$dir/keyring" "$dir/block"
ceph-osd -i "$id" --mkfs --osd-uuid "$osd_uuid" --osd-objectstore bluestore \
  --setuser ceph --setgroup ceph
systemctl enable --now "ceph-osd@$id" ceph-osd.target

# Pools and the OpenStack users, named as this site likes.
for pool in cloud-volumes cloud-vms cloud-images cloud-backups; do
  ceph osd pool create "$pool" 8 >/dev/null
  ceph osd pool set "$pool" size 1 --yes-i-really-mean-it >/dev/null
  rbd pool init "$pool"
done
ceph auth get-or-create client.cinder mon 'profile rbd' \
  osd 'profile rbd pool=cloud-volumes, profile rbd pool=cloud-vms, profile rbd-read-only pool=cloud-images' \
  mgr 'profile rbd pool=cloud-volumes, profile rbd pool=cloud-vms' -o "$out/ceph.client.cinder.keyring"
ceph auth get-or-create client.cinder-backup mon 'profile rbd' \
  osd 'profile rbd pool=cloud-backups' mgr 'profile rbd pool=cloud-backups' \
  -o "$out/ceph.client.cinder-backup.keyring"
cp /etc/ceph/ceph.conf "$out/ceph.conf"

# Debian 13's ceph-mgr modules cannot load (roles/ceph/defaults/main.yml).
ceph health mute MGR_MODULE_DEPENDENCY --sticky
for _ in $(seq 120); do
  case $(ceph health) in HEALTH_OK*) exit 0 ;; esac  # "HEALTH_OK (muted: ...)"
  sleep 1
done
ceph health detail >&2
exit 1
