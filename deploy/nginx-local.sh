#!/usr/bin/env bash
# nginx-local.sh runs the repository's nginx.conf in the foreground on this
# machine, over TLS with a fresh self-signed certificate, in front of a chatd
# you started: to try the production proxy locally, or to point a browser
# test at it. No root needed (with root, workers run as root so they can read
# private temporary directories).
#
#   deploy/nginx-local.sh --upstream 127.0.0.1:8080[,127.0.0.1:8081...] [--root frontend/dist]
#       [--https-port 8443] [--http-port 8081] [--ws-read-timeout S]
#       [--request-timeout D] [--dir DIR]
#
# --ws-read-timeout and --request-timeout (chatd's CHATD_REQUEST_TIMEOUT,
# when set above 30s) are render-nginx.sh's options.
#
# It prints, before nginx starts serving:
#   BASE_URL=https://localhost:<https port>
#   HTTP_URL=http://localhost:<http port>
#   CERT=<dir>/fullchain.pem       (trust it, or accept the certificate error)
# and then runs nginx until it gets SIGTERM or SIGINT (Ctrl-C). Ports default
# to free ones; files (certificate, rendered nginx.conf, logs) go to --dir or
# a new temporary directory, removed on exit unless --dir was given. Several
# chatd instances (a cluster, docs/scale.md): a comma list or several
# --upstream options, balanced round-robin as in production.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
upstream="" root="$here/../frontend/dist" https_port="" http_port="" ws_timeout="" request_timeout="" dir=""
while [ $# -gt 0 ]; do
	case "$1" in
	--upstream) upstream="${upstream:+$upstream,}$2"; shift 2 ;;
	--root) root="$2"; shift 2 ;;
	--https-port) https_port="$2"; shift 2 ;;
	--http-port) http_port="$2"; shift 2 ;;
	--ws-read-timeout) ws_timeout="$2"; shift 2 ;;
	--request-timeout) request_timeout="$2"; shift 2 ;;
	--dir) dir="$2"; shift 2 ;;
	-h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
	*) echo "nginx-local.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -n "$upstream" ] || { echo "nginx-local.sh: --upstream HOST:PORT is required" >&2; exit 2; }
command -v nginx >/dev/null || { echo "nginx-local.sh: nginx is not installed (apt-get install -y nginx)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "nginx-local.sh: openssl is not installed" >&2; exit 1; }
[ -f "$root/index.html" ] || { echo "nginx-local.sh: no index.html in $root (build the front end: make frontend)" >&2; exit 1; }
root="$(cd "$root" && pwd)"

# free_port prints a loopback port nothing listens on (a moment ago), below
# the kernel's ephemeral range, where outgoing connections could hold it.
free_port() {
	local p low=32768
	[ -r /proc/sys/net/ipv4/ip_local_port_range ] && read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	[ "$low" -gt 12000 ] || low=32768
	for _ in $(seq 50); do
		p=$((10000 + RANDOM % (low - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "nginx-local.sh: found no free port" >&2
	exit 1
}
https_port="${https_port:-$(free_port)}"
http_port="${http_port:-$(free_port)}"

if [ -z "$dir" ]; then
	dir="$(mktemp -d -t chatd-nginx-XXXXXX)"
	trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
	-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	-keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" 2>/dev/null

render=(--domain localhost --listen-addr 127.0.0.1 --http-port "$http_port" --https-port "$https_port"
	--prefix "$dir" --cert "$dir/fullchain.pem" --key "$dir/privkey.pem"
	--root "$root" --upstream "$upstream" -o "$dir/nginx.conf")
if [ "$(id -u)" = 0 ]; then render+=(--user root); else render+=(--no-user); fi
if [ -n "$ws_timeout" ]; then render+=(--ws-read-timeout "$ws_timeout"); fi
if [ -n "$request_timeout" ]; then render+=(--request-timeout "$request_timeout"); fi
"$here/render-nginx.sh" "${render[@]}"
nginx -q -t -p "$dir" -c "$dir/nginx.conf"

echo "BASE_URL=https://localhost:$https_port"
echo "HTTP_URL=http://localhost:$http_port"
echo "CERT=$dir/fullchain.pem"
# Not exec: the EXIT trap must still remove the directory. nginx stops
# gracefully on SIGQUIT and at once on SIGTERM/SIGINT; pass those on.
nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
wait "$pid" || true
wait "$pid" 2>/dev/null || true
