#!/usr/bin/env bash
# `cpack -G DEB` on the build directory makes a .deb that holds the binary, the systemd unit and the
# configuration as a conffile, with maintainer scripts that create the `tumbled` user, Depends
# computed by dpkg-shlibdeps, and a binary that runs from the package. The package goes to a temp
# dir; the build directory must be built (cpack's preinstall step only checks it is up to date).
# Exit 77 (skipped) without dpkg-deb or dpkg-shlibdeps.
# Usage: package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build_dir=$1
source_dir=$2
for tool in cpack dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || { echo "$tool not found (deploy/install-deps.sh installs it)"; exit 77; }
done
work=$(mktemp -d /tmp/tumbled-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cpack --config "$build_dir/CPackConfig.cmake" -G DEB -B "$work" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack -G DEB"; }
debs=("$work"/tumbled_*.deb)
if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then fail "no single tumbled_*.deb in $work"; fi
deb=${debs[0]}
echo "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

dpkg-deb -c "$deb" | tee "$work/contents"
for path in ./usr/bin/tumbled ./lib/systemd/system/tumbled.service ./etc/tumbled/tumbled.yaml; do
  grep -q " $path\$" "$work/contents" || fail "$path is not in the package"
done

dpkg-deb -I "$deb" | tee "$work/info"
[ "$(dpkg-deb -f "$deb" Package)" = tumbled ] || fail "package name"
depends=$(dpkg-deb -f "$deb" Depends)
for dep in adduser libc6 libsystemd0 libyaml-cpp0.7; do
  [[ ", $depends," == *", $dep"[\ ,]* ]] || fail "Depends lacks $dep: $depends"
done

mkdir "$work/control" "$work/root"
dpkg-deb -e "$deb" "$work/control"
dpkg-deb -x "$deb" "$work/root"
[ "$(cat "$work/control/conffiles")" = /etc/tumbled/tumbled.yaml ] ||
  fail "conffiles is not exactly /etc/tumbled/tumbled.yaml: $(cat "$work/control/conffiles")"
for script in postinst prerm postrm; do
  [ -x "$work/control/$script" ] || fail "$script missing or not executable"
  sh -n "$work/control/$script" || fail "$script is not valid sh"
done
grep -q 'adduser --system --group --home /var/lib/tumbled' "$work/control/postinst" ||
  fail "postinst does not create the system user tumbled"
grep -q '/run/systemd/system' "$work/control/postinst" ||
  fail "postinst calls systemctl without checking the host runs systemd"

cmp "$work/root/lib/systemd/system/tumbled.service" "$source_dir/deploy/tumbled.service" ||
  fail "packaged unit differs from deploy/tumbled.service"
cmp "$work/root/etc/tumbled/tumbled.yaml" "$source_dir/deploy/tumbled.yaml" ||
  fail "packaged configuration differs from deploy/tumbled.yaml"

# The packaged (stripped) binary runs, and accepts the packaged configuration as the unit's
# ExecStartPre= does; the state lives where StateDirectory= puts it.
binary=$work/root/usr/bin/tumbled
version=$(dpkg-deb -f "$deb" Version)
[ "$("$binary" --version)" = "tumbled $version" ] || fail "tumbled --version is not $version"
INFLUX_PASSWORD='' "$binary" --config "$work/root/etc/tumbled/tumbled.yaml" --check-config ||
  fail "the packaged configuration does not pass --check-config"
INFLUX_PASSWORD='' "$binary" --config "$work/root/etc/tumbled/tumbled.yaml" --print-config |
  grep -q 'dir: /var/lib/tumbled$' || fail "packaged state.dir is not /var/lib/tumbled"
echo "PASS"
