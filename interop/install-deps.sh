#!/bin/sh
# Installs the Debian packages `make test` needs, only those missing, with
# apt-get; as root (CI) or with sudo. Run by `make deps`, before the race
# tests and the interop suite:
#
#   gcc, libc6-dev      a C toolchain: -race needs cgo, and go turns cgo off
#                       when no C compiler works (checked by compiling and
#                       linking a C program, not just by finding gcc)
#   nodejs, npm         the Node ws peer (npm ci installs ws from the lockfile)
#   nginx               the reverse-proxy peer
#   python3-websockets  the Python peer, for Debian's /usr/bin/python3 (the
#                       python3 on PATH may be another build that cannot see
#                       Debian's packages)
#   redis-server        the Redis session Store's tests (session/redisstore),
#                       which start their own on 127.0.0.1
#
# Each is checked by what the tests use, so a machine that has node and npm
# from elsewhere (nodesource, nvm) gets no Debian nodejs on top.
set -eu

pkgs=""
# go builds cgo with $CC, gcc by default.
cc_test=$(mktemp -d)
printf 'int main(void) { return 0; }\n' >"$cc_test/t.c"
"${CC:-gcc}" -o "$cc_test/t" "$cc_test/t.c" >/dev/null 2>&1 || pkgs="$pkgs gcc libc6-dev"
rm -rf "$cc_test"
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || pkgs="$pkgs nginx"
/usr/bin/python3 -c 'import websockets.legacy.server' >/dev/null 2>&1 || pkgs="$pkgs python3-websockets"
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || pkgs="$pkgs redis-server"
[ -n "$pkgs" ] || exit 0

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "deps: installing$pkgs with apt-get"

# Debian's nginx package starts a system nginx on port 80 of every address
# where the service manager lets it, and redis-server one on port 6379. The
# suites run their own, on 127.0.0.1 only, so no service may start during
# the install: a policy-rc.d that
# denies it is put in place unless one is there already.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# temporary, from resocket interop/install-deps.sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	trap '$sudo rm -f "$policy"' EXIT
fi

$sudo apt-get update
# shellcheck disable=SC2086 # $pkgs is a list of words
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs
