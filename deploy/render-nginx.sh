#!/usr/bin/env bash
# render-nginx.sh prints the repository's nginx.conf with its example values
# replaced, so the one configuration we ship can run on another domain, other
# paths or unprivileged ports (a staging box, the end-to-end test) without
# keeping a second copy of it.
#
# Usage: deploy/render-nginx.sh [options] [-i nginx.conf] [-o out.conf]
#
#   --domain NAME         replaces chat.example.com (server_name, CSP)
#   --cert FILE           replaces /etc/ssl/chatd/fullchain.pem
#   --key FILE            replaces /etc/ssl/chatd/privkey.pem
#   --root DIR            replaces /srv/chatd/frontend (the built front end)
#   --upstream HOST:PORT  replaces 127.0.0.1:8080 (the chatd server); several
#                         instances: repeat the option or give a comma list
#                         (one "server" line each, round-robin)
#   --http-port PORT      replaces port 80
#   --https-port PORT     replaces port 443 (and adds it to the redirect
#                         target and the CSP's wss:// source when not 443)
#   --listen-addr ADDR    binds every listener to ADDR (e.g. 127.0.0.1) and
#                         drops the IPv6 wildcard listeners
#   --prefix DIR          pid file, error/access logs and temporary files go
#                         under DIR (so nginx needs no write access elsewhere)
#   --user NAME           replaces the worker user www-data
#   --no-user             removes the "user" line (nginx not started as root)
#   --ws-read-timeout S   replaces the WebSocket proxy_read_timeout (3600s)
#   --request-timeout D   chatd's CHATD_REQUEST_TIMEOUT (D as chatd takes it:
#                         90s, 2m, 1m30s, 1500ms): the read timeout of /api/
#                         becomes D + 5 s when that exceeds its 35s, and that
#                         of the SSE routes the same when it exceeds their
#                         600s, so chatd answers a slow request before
#                         nginx's 504
#
# client_max_body_size (2m) is not replaced: with CHATD_BODY_LIMIT at 2MiB
# or more, raise it above that limit in nginx.conf, or nginx answers a large
# body's 413 itself, in HTML, before chatd's JSON one.
#
# Every value it replaces must be present in the input exactly once or as
# expected; if nginx.conf changed so that a value is gone, the script fails
# instead of printing a configuration that silently differs.
#
# Example (what the test does):
#   deploy/render-nginx.sh --domain localhost --listen-addr 127.0.0.1 \
#     --http-port 18080 --https-port 18443 --prefix /tmp/ngx --no-user \
#     --cert /tmp/ngx/cert.pem --key /tmp/ngx/key.pem \
#     --root "$PWD/frontend/dist" --upstream 127.0.0.1:8080 -o /tmp/ngx/nginx.conf
#   nginx -t -p /tmp/ngx -c /tmp/ngx/nginx.conf
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

die() { echo "render-nginx.sh: $*" >&2; exit 2; }

in="$(dirname "$0")/../nginx.conf"
out=""
domain="" cert="" key="" root="" upstream="" http_port="" https_port=""
listen_addr="" prefix="" user="" no_user=0 ws_timeout="" request_timeout=""

while [ $# -gt 0 ]; do
	case "$1" in
	-i) in="$2"; shift 2 ;;
	-o) out="$2"; shift 2 ;;
	--domain) domain="$2"; shift 2 ;;
	--cert) cert="$2"; shift 2 ;;
	--key) key="$2"; shift 2 ;;
	--root) root="$2"; shift 2 ;;
	--upstream) upstream="${upstream:+$upstream,}$2"; shift 2 ;;
	--http-port) http_port="$2"; shift 2 ;;
	--https-port) https_port="$2"; shift 2 ;;
	--listen-addr) listen_addr="$2"; shift 2 ;;
	--prefix) prefix="$2"; shift 2 ;;
	--user) user="$2"; shift 2 ;;
	--no-user) no_user=1; shift ;;
	--ws-read-timeout) ws_timeout="$2"; shift 2 ;;
	--request-timeout) request_timeout="$2"; shift 2 ;;
	-h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
done

# millis DURATION: a Go duration of whole units (h, m, s, ms), as
# CHATD_REQUEST_TIMEOUT takes it, in milliseconds.
millis() {
	local rest="$1" total=0 n unit
	[ -n "$rest" ] || die "--request-timeout: empty"
	while [ -n "$rest" ]; do
		[[ "$rest" =~ ^([0-9]+)(ms|h|m|s)(.*)$ ]] ||
			die "--request-timeout: \"$1\" is not a duration of whole units such as 90s, 2m or 1m30s"
		n="$((10#${BASH_REMATCH[1]}))" unit="${BASH_REMATCH[2]}" rest="${BASH_REMATCH[3]}"
		case "$unit" in
		h) total=$((total + n * 3600000)) ;;
		m) total=$((total + n * 60000)) ;;
		s) total=$((total + n * 1000)) ;;
		ms) total=$((total + n)) ;;
		esac
	done
	echo "$total"
}

[ -r "$in" ] || die "cannot read $in"
conf="$(cat "$in")"

# replace OLD NEW: every literal occurrence of OLD; OLD must occur.
replace() {
	case "$conf" in
	*"$1"*) conf="${conf//"$1"/"$2"}" ;;
	*) die "\"$1\" not found in $in: nginx.conf and this script disagree" ;;
	esac
}

# drop_lines TEXT: remove every line containing TEXT; TEXT must occur.
drop_lines() {
	case "$conf" in
	*"$1"*) conf="$(printf '%s\n' "$conf" | grep -vF -- "$1")" ;;
	*) die "\"$1\" not found in $in: nginx.conf and this script disagree" ;;
	esac
}

if [ -n "$domain" ]; then replace "chat.example.com" "$domain"; fi
d="${domain:-chat.example.com}"
if [ -n "$cert" ]; then replace "/etc/ssl/chatd/fullchain.pem" "$cert"; fi
if [ -n "$key" ]; then replace "/etc/ssl/chatd/privkey.pem" "$key"; fi
if [ -n "$root" ]; then replace "root /srv/chatd/frontend;" "root $root;"; fi
if [ -n "$upstream" ]; then
	servers="" sep=""
	IFS=, read -r -a addrs <<<"$upstream"
	for addr in "${addrs[@]}"; do
		addr="${addr// /}"
		[ -n "$addr" ] || continue
		case "$addr" in *[!A-Za-z0-9.:_\[\]-]*) die "--upstream: \"$addr\" is not a HOST:PORT" ;; esac
		servers="$servers${sep}server $addr max_fails=1 fail_timeout=5s;"
		sep=$'\n        '
	done
	[ -n "$servers" ] || die "--upstream names no server"
	replace "server 127.0.0.1:8080 max_fails=1 fail_timeout=5s;" "$servers"
fi
if [ -n "$ws_timeout" ]; then replace "proxy_read_timeout 3600s;" "proxy_read_timeout ${ws_timeout}s;"; fi
if [ -n "$request_timeout" ]; then
	# A request (the token check and the route together; on the SSE
	# routes, every step of an answer's or a stream's start) waits
	# CHATD_REQUEST_TIMEOUT at most before chatd answers; 5 s more for the
	# answer to arrive.
	ms="$(millis "$request_timeout")"
	api=$(( (ms + 5000 + 999) / 1000 ))
	if [ "$api" -gt 35 ]; then replace "proxy_read_timeout 35s;" "proxy_read_timeout ${api}s;"; fi
	if [ "$api" -gt 600 ]; then replace "proxy_read_timeout 600s;" "proxy_read_timeout ${api}s;"; fi
fi

if [ -n "$listen_addr" ]; then
	drop_lines "listen [::]:"
	a="$listen_addr:"
else
	a=""
fi
hp="${http_port:-80}" sp="${https_port:-443}"
if [ -n "$listen_addr$http_port" ]; then
	replace "listen 80;" "listen $a$hp;"
	replace "listen 80 default_server;" "listen $a$hp default_server;"
	if [ -z "$listen_addr" ]; then
		replace "listen [::]:80;" "listen [::]:$hp;"
		replace "listen [::]:80 default_server;" "listen [::]:$hp default_server;"
	fi
fi
if [ -n "$listen_addr$https_port" ]; then
	replace "listen 443 ssl default_server;" "listen $a$sp ssl default_server;"
	replace "listen 443 ssl http2;" "listen $a$sp ssl http2;"
	if [ -z "$listen_addr" ]; then
		replace "listen [::]:443 ssl default_server;" "listen [::]:$sp ssl default_server;"
		replace "listen [::]:443 ssl http2;" "listen [::]:$sp ssl http2;"
	fi
fi
if [ "$sp" != 443 ]; then
	replace 'https://$server_name$request_uri' "https://\$server_name:$sp\$request_uri"
	replace "wss://$d;" "wss://$d:$sp;"
fi

if [ -n "$prefix" ]; then
	prefix="${prefix%/}"
	replace "pid /run/nginx.pid;" "pid $prefix/nginx.pid;"
	replace "error_log /var/log/nginx/error.log" "error_log $prefix/error.log"
	replace "access_log /var/log/nginx/access.log" "access_log $prefix/access.log"
	replace " /var/lib/nginx/" " $prefix/tmp/"
	mkdir -p "$prefix/tmp"
fi
if [ "$no_user" = 1 ]; then
	drop_lines "user www-data;"
elif [ -n "$user" ]; then
	replace "user www-data;" "user $user;"
fi

if [ -n "$out" ]; then
	printf '%s\n' "$conf" >"$out"
else
	printf '%s\n' "$conf"
fi
