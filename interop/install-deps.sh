#!/bin/sh
# Installs the Debian packages the interop suite needs, only those missing:
# nginx, and python3-websockets for Debian's /usr/bin/python3 (the python3
# on PATH may be another build that cannot see Debian's packages). Run by
# `make interop-deps`; as root (CI) or with sudo.
set -eu

pkgs=""
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || pkgs="$pkgs nginx"
/usr/bin/python3 -c 'import websockets.legacy.server' >/dev/null 2>&1 || pkgs="$pkgs python3-websockets"
[ -n "$pkgs" ] || exit 0

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "interop-deps: installing$pkgs with apt-get"

# Debian's nginx package starts a system nginx on port 80 of every address
# where the service manager lets it. The suite runs its own, on 127.0.0.1
# only, so no service may start during the install: a policy-rc.d that
# denies it is put in place unless one is there already.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# temporary, from resocket interop/install-deps.sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	trap '$sudo rm -f "$policy"' EXIT
fi

$sudo apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs
