#!/usr/bin/env bash
# prereqs.sh checks that this machine has every program `make test` needs,
# and installs what is missing when it can. `make test` runs it first (as
# `make prereqs`), and so does .ci/run.
#
# - Nothing missing: prints nothing, exits 0.
# - Missing programs that Debian's apt provides, as root with apt-get: one
#   `apt-get update` and ONE `apt-get install` of all of them, then checks again.
#   When Node.js is missing (or too old) and apt offers no version vite 8
#   accepts, the update comes first and apt is asked again: a fresh Debian
#   has no package lists, so apt-cache offers nothing before it.
# - Otherwise (not root, no apt-get, or Go or Node.js missing, which need
#   versions apt may not have): one message on stderr that lists everything
#   missing and the command that installs it, exit 1, within a second or two
#   and before any test suite runs. Without apt-get or apt-cache (not Debian
#   or Ubuntu) it says so instead of blaming apt's versions; of Node.js it
#   says what apt offers, or that the package lists were not updated when
#   apt-cache offers none and this run did not update them (Go missing too,
#   or not root).
#
# With --build (make run, make build) it checks only what building and
# running chatd needs: make, Go, Node.js with npm, and CA certificates.
# Run by hand (bash scripts/prereqs.sh --build) on a machine without make,
# such as a minimal Debian, it installs make there as root.
#
# Environment:
#   PREREQS_APT_GET   the apt-get to run instead of installing only as root
#                     with the apt-get on PATH, e.g. "sudo apt-get" for a
#                     user with sudo (tests point it at a fake)
#   PREREQS_DRY_RUN=1 print the apt-get commands instead of running them
#   PREREQS_EXTRA_PATH the directories appended to PATH, by default
#                     /usr/local/go/bin:/usr/sbin:/sbin (tests replace them)
#
# Uses bash built-ins only (no coreutils), so it also runs with a bare PATH.
set -uo pipefail

# nginx and logrotate live in /usr/sbin on Debian, which a user's PATH (or
# root's after a plain su) may lack; Go's own archive installs into
# /usr/local/go/bin. The Makefile appends the same directories.
extra_path=${PREREQS_EXTRA_PATH-/usr/local/go/bin:/usr/sbin:/sbin}
[ -z "$extra_path" ] || PATH="${PATH:+$PATH:}$extra_path"

# What the check is for: the test suites (make test), or --build (make run).
build=
[ "${1:-}" = --build ] && build=1

# Node.js versions vite 8 accepts (its engines: ^20.19.0 || >=22.12.0):
# 20.19 and later 20.x, or 22.12 and later; not 21.x nor 22.0 to 22.11.
node_versions="20.19 or later 20.x, or 22.12 or later"
min_go=1.21     # from 1.21 on, go fetches the toolchain go.mod names by itself

apt=()     # apt packages to install
why=()     # one line per missing program
manual=()  # what apt cannot provide here, with how to get it

# need PROGRAM PACKAGE PURPOSE: PROGRAM must be on PATH; PACKAGE provides it.
need() {
	command -v "$1" >/dev/null 2>&1 && return
	apt+=("$2")
	why+=("$(printf '  %-16s %s (apt package %s)' "$1" "$3" "$2")")
}

# need_file FILE PACKAGE PURPOSE: like need, for a file.
need_file() {
	[ -e "$1" ] && return
	apt+=("$2")
	why+=("$(printf '  %-16s %s (apt package %s)' "${1##*/}" "$3" "$2")")
}

# version_ge A B: whether dotted version A >= B (numeric parts, at most 3).
version_ge() {
	local IFS=.
	local -a a=($1) b=($2)
	local i
	for i in 0 1 2; do
		((${a[i]:-0} > ${b[i]:-0})) && return 0
		((${a[i]:-0} < ${b[i]:-0})) && return 1
	done
	return 0
}

# apt_candidate PACKAGE prints the version apt would install, if any.
apt_candidate() {
	command -v apt-cache >/dev/null 2>&1 || return
	local line
	while read -r line; do
		if [[ $line =~ ^Candidate:\ ([0-9]+\.[0-9]+\.[0-9]+) ]]; then
			echo "${BASH_REMATCH[1]}"
			return
		fi
	done < <(apt-cache policy "$1" 2>/dev/null)
}

# gomod_go prints the version on go.mod's go line (this script's ../go.mod).
gomod_go() {
	local dir=${BASH_SOURCE[0]%/*} line
	[ "$dir" != "${BASH_SOURCE[0]}" ] || dir=.
	while read -r line; do
		if [[ $line =~ ^go[[:space:]]+([0-9]+\.[0-9]+(\.[0-9]+)?) ]]; then
			echo "${BASH_REMATCH[1]}"
			return
		fi
	done <"$dir/../go.mod"
}

check_go() {
	local v="" tc want
	if command -v go >/dev/null 2>&1 && [[ $(GOTOOLCHAIN=local go version 2>/dev/null) =~ go([0-9]+\.[0-9]+(\.[0-9]+)?) ]]; then
		v=${BASH_REMATCH[1]}
		# GOTOOLCHAIN local, path or <name>+path (the environment, or go.env as
		# Homebrew's Go sets it): go fetches no toolchain, so this Go must be
		# the version go.mod names, or go build fails after the web client's build.
		tc=$(go env GOTOOLCHAIN 2>/dev/null)
		case "$tc" in
		local | path | *+path)
			want=$(gomod_go 2>/dev/null)
			version_ge "$v" "${want:-$min_go}" && return
			manual+=("  Go ${want:-$min_go} or later, go.mod's go line (found $v, and GOTOOLCHAIN=$tc, from the environment or go.env, forbids fetching it): https://go.dev/doc/install, or let go fetch it: GOTOOLCHAIN=auto")
			return
			;;
		esac
		version_ge "$v" "$min_go" && return
	fi
	manual+=("  Go${v:+ (found $v)}: the version go.mod names, or any Go ${min_go}+ (it fetches that one itself): https://go.dev/doc/install")
}

# node_ok VERSION: whether vite 8 runs on this Node.js version.
node_ok() {
	local major=${1%%.*}
	{ [ "$major" = 20 ] && version_ge "$1" 20.19; } || version_ge "$1" 22.12
}

# update_lists runs apt-get update once, when this run can install: a
# fresh Debian (a container, a new cloud image) has no package lists, and
# apt-cache then offers nothing at all.
updated=
update_lists() {
	[ -z "$updated" ] && [ ${#installer[@]} -gt 0 ] && [ "${PREREQS_DRY_RUN:-}" != 1 ] || return 1
	updated=1
	echo "prereqs: updating the package lists (${installer[*]} update)" >&2
	DEBIAN_FRONTEND=noninteractive "${installer[@]}" update -qq
}

check_node() {
	local v="" cand
	if command -v node >/dev/null 2>&1; then
		v=$(node -p 'process.versions.node' 2>/dev/null)
		if [ -n "$v" ] && node_ok "$v"; then
			need npm npm "installs the web client's packages (npm ci)"
			return
		fi
	fi
	cand=$(apt_candidate nodejs)
	# Lists never updated (or old): ask apt again after updating them, unless
	# something apt cannot install is missing already (nothing is installed then).
	if ! { [ -n "$cand" ] && node_ok "$cand"; } && [ ${#manual[@]} -eq 0 ] && update_lists; then
		cand=$(apt_candidate nodejs)
	fi
	if [ -n "$cand" ] && node_ok "$cand"; then
		apt+=(nodejs npm)
		why+=("$(printf '  %-16s %s (apt packages nodejs npm)' node "Node.js ${node_versions} for the web client's build and tests${v:+, found $v}")")
		return
	fi
	# What apt said, and only that: without apt-cache nothing (the heading
	# says so); without an answer from lists this run did not update, that
	# they may be missing.
	local apt_said=
	if [ -n "$cand" ]; then
		apt_said="; apt offers only $cand"
	elif [ -n "$updated" ]; then
		apt_said="; apt offers none"
	elif command -v apt-cache >/dev/null 2>&1; then
		apt_said="; apt-cache offers none, but its package lists were not updated here (update them, then run this again)"
	fi
	manual+=("  Node.js ${node_versions} (what vite 8 accepts), with npm${v:+ (found $v)}${apt_said}: https://nodejs.org/en/download (Debian/Ubuntu: https://github.com/nodesource/distributions)")
}

# The installer: PREREQS_APT_GET, else apt-get as root; none once it ran.
installer=()
if [ -n "${_PREREQS_INSTALLED:-}" ]; then
	:
elif [ -n "${PREREQS_APT_GET:-}" ]; then
	read -r -a installer <<<"$PREREQS_APT_GET"
elif [ "$EUID" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	installer=(apt-get)
fi

if [ -n "$build" ]; then
	need make make "runs make run (and make build)"
else
	need make make "runs the test suites"
	need git git "the benchmark report names the commit"
	need curl curl "deploy/smoke.sh and the deployment tests"
	need openssl openssl "test certificates (deploy/nginx-local.sh, deployment tests)"
fi
need_file /etc/ssl/certs/ca-certificates.crt ca-certificates "HTTPS to the Go and npm registries"
if [ -z "$build" ]; then
	need gcc gcc "go test -race needs cgo"
	need_file /usr/include/stdio.h libc6-dev "go test -race needs cgo"
	need nginx nginx "deployment tests and make test-e2e-nginx run nginx.conf"
	need logrotate logrotate "deployment tests check deploy/logrotate-chatd"
	need systemd-analyze systemd "deployment tests verify deploy/chatd.service"
	need chromium chromium "browser tests (deployment tests, make test-e2e)"
fi
check_go
check_node

[ ${#why[@]} -eq 0 ] && [ ${#manual[@]} -eq 0 ] && exit 0

install_cmd="apt-get update && apt-get install -y --no-install-recommends ${apt[*]}"
[ "$EUID" -eq 0 ] || install_cmd="sudo apt-get update && sudo apt-get install -y --no-install-recommends ${apt[*]}"

if [ ${#manual[@]} -eq 0 ] && [ ${#installer[@]} -gt 0 ]; then
	echo "prereqs: installing ${apt[*]} (${installer[*]})" >&2
	if [ "${PREREQS_DRY_RUN:-}" = 1 ]; then
		echo "${installer[*]} update"
		echo "${installer[*]} install -y --no-install-recommends ${apt[*]}"
		exit 0
	fi
	export DEBIAN_FRONTEND=noninteractive
	if { [ -n "$updated" ] || "${installer[@]}" update -qq; } && "${installer[@]}" install -y -qq --no-install-recommends "${apt[@]}"; then
		# Check again: the packages must really provide the programs.
		_PREREQS_INSTALLED="${apt[*]}" exec "$BASH" "${BASH_SOURCE[0]}" "$@"
	fi
	echo "prereqs: ${installer[*]} install ${apt[*]} failed" >&2
	exit 1
fi

goal="make test"
if [ -n "$build" ]; then
	goal="make run"
	echo "make run cannot start: this machine lacks what building chatd needs."
else
	echo "make test cannot run: this machine lacks what the test suites need."
fi >&2
{
	[ -z "${_PREREQS_INSTALLED:-}" ] || echo "(still missing after apt-get install ${_PREREQS_INSTALLED})"
	if [ ${#why[@]} -gt 0 ]; then
		echo
		printf '%s\n' "${why[@]}"
		echo
		if [ ${#installer[@]} -gt 0 ] || command -v apt-get >/dev/null 2>&1; then
			echo "Install them all with one command:"
		else
			echo "apt-get is not on this machine (not Debian or Ubuntu?): install them with its own package manager."
			echo "On Debian or Ubuntu, one command installs them all:"
		fi
		echo
		echo "  $install_cmd"
	fi
	if [ ${#manual[@]} -gt 0 ]; then
		echo
		if command -v apt-cache >/dev/null 2>&1; then
			echo "Install these yourself:"
		else
			echo "Install these yourself (apt-cache is not on this machine, so apt was not asked for them):"
		fi
		echo
		printf '%s\n' "${manual[@]}"
	fi
	echo
	echo "Then run $goal again."
} >&2
exit 1
