#!/usr/bin/env bash
# Runs every check of the project: formatting, lints, and the whole test suite against real peers
# (SIPp, Kamailio, baresip, memcached, PostgreSQL, headless Chromium on loopback addresses), the
# demo, and install.sh (a trial install under a temporary --prefix; needs root).
# On a Debian/Ubuntu machine as root it installs what the tests need when it is missing, and starts
# PostgreSQL and memcached when they are not running. A machine that has everything does no apt work.
#
# usage: bash scripts/test.sh [--setup-only]
#   --setup-only  install and start what the tests need, then stop before the cargo checks
# Environment: CALLFLEET_TEST_PG (default postgres://postgres@127.0.0.1) is the PostgreSQL server the
# tests create their databases on; CALLFLEET_TEST_MEMCACHED (default 127.0.0.1:11211).
set -euo pipefail

setup_only=0
case "${1:-}" in
  "") ;;
  --setup-only) setup_only=1 ;;
  *) printf 'usage: bash scripts/test.sh [--setup-only]\n' >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
cargo_home_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
if [ -d "$cargo_home_bin" ]; then
  case ":$PATH:" in *":$cargo_home_bin:"*) ;; *) PATH="$cargo_home_bin:$PATH" ;; esac
fi
export PATH

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------
missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || missing+=("$1"); }
pg_server_installed() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }

step "checking test dependencies"
need_cmd sipp sip-tester
need_cmd kamailio kamailio
need_cmd baresip baresip-core
need_cmd memcached memcached
need_cmd sox sox
# The CPU hog of the load-shedding test (node/tests/shed.rs):
need_cmd stress-ng stress-ng
# The recording test decodes the node's MP3 with sox (libsox-fmt-mp3, checked below).
# install.sh (run by node/tests/install.rs) renders music on hold and prompts with these:
need_cmd espeak-ng espeak-ng
need_cmd sqlite3 sqlite3
need_cmd curl curl
need_cmd pkg-config pkg-config
need_cmd taskset util-linux
need_cmd python3 python3
need_cmd chromium chromium
need_cmd chromedriver chromium-driver
need_cmd promtool prometheus
# The SIP trace tests read the node's pcap with tshark and receive its HEP export with sngrep.
need_cmd tshark tshark
need_cmd sngrep sngrep
# axe-core (accessibility checks in the browser tests) comes from npm, below.
need_cmd npm npm
# Stock XML-RPC clients in other languages (the CRM API's interop test).
perl -MRPC::XML::Client -e 1 >/dev/null 2>&1 || missing+=(librpc-xml-perl)
need_cmd php php-cli
if ! php -r 'exit(function_exists("xmlrpc_encode_request") ? 0 : 1);' >/dev/null 2>&1; then missing+=(php-xmlrpc); fi
if command -v dpkg >/dev/null 2>&1; then need_pkg build-essential; need_pkg libsox-fmt-base; need_pkg libsox-fmt-mp3; else need_cmd cc build-essential; fi
if ! command -v psql >/dev/null 2>&1 || ! pg_server_installed; then missing+=(postgresql); fi

if [ "${#missing[@]}" -gt 0 ]; then
  note "missing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "installing ${missing[*]} needs root, and there is no sudo: run it as root"
    note "installing ${missing[*]} needs root: asking sudo"
    exec sudo -E -- env "PATH=$PATH" bash "$0" "$@"
  fi
  command -v apt-get >/dev/null 2>&1 || die "no apt-get here: install ${missing[*]} by hand"
  # Keep freshly installed daemons (kamailio on *:5060, postgresql, memcached, prometheus) from
  # being started by their packages: the tests start what they need on loopback addresses themselves.
  policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    policy_added=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # tshark's package asks whether non-root users may capture: answer no, without a prompt.
  if command -v debconf-set-selections >/dev/null 2>&1; then
    echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  fi
  rc=0
  apt-get update -q || printf 'test.sh: warning: apt-get update failed; trying with the package lists there are\n' >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
  if [ "$policy_added" -eq 1 ]; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
  [ "$rc" -eq 0 ] || die "apt-get install ${missing[*]} failed (exit $rc)"
  # The packaged Kamailio service would listen on *:5060 after the next boot; the tests run their own.
  if [[ " ${missing[*]} " == *" kamailio "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable kamailio >/dev/null 2>&1 || true
  fi
  # Only promtool is needed from the prometheus package, not its server.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable prometheus >/dev/null 2>&1 || true
  fi
else
  note "all present"
fi

# Nodes under test bind 127.0.0.x:5060; a SIP server on the wildcard address would take that port.
if command -v ss >/dev/null 2>&1; then
  wildcard_sip="$(ss -H -lunp 'sport = :5060' 2>/dev/null | awk '$4 ~ /^(0\.0\.0\.0|\*|\[::\]):5060$/' || true)"
  [ -z "$wildcard_sip" ] || printf 'test.sh: warning: a process listens on UDP *:5060, SIP tests will fail to bind:\n%s\n' "$wildcard_sip" >&2
fi

if [ "$setup_only" -eq 0 ]; then
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain with rustup (see README.md)"
  cargo fmt --version >/dev/null 2>&1 || die "rustfmt missing: rustup component add rustfmt"
  cargo clippy --version >/dev/null 2>&1 || die "clippy missing: rustup component add clippy"
fi

# ---------------------------------------------------------------------------------------------
# PostgreSQL on 127.0.0.1:5432
# ---------------------------------------------------------------------------------------------
# PGPORT: Debian's psql wrapper would otherwise pick the port of its default local cluster, while
# the tests' URLs without a port mean 5432.
export PGPORT=5432
as_postgres() {
  if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
}
pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 -t 2 >/dev/null 2>&1; }
pg_works() { PGCONNECT_TIMEOUT=5 psql -w -X -q -d "$1" -c 'select 1' >/dev/null 2>&1; }

start_postgres() {
  command -v pg_lsclusters >/dev/null 2>&1 || die "PostgreSQL is not answering on 127.0.0.1:5432 and pg_lsclusters is missing"
  [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not running on 127.0.0.1:5432; start it or run this script as root"
  local ver
  ver="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)"
  [ -n "$ver" ] || die "no PostgreSQL server version found under /usr/lib/postgresql"
  if ! pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
    note "creating cluster $ver/main"
    pg_createcluster "$ver" main >/dev/null
  fi
  note "starting cluster $ver/main"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 60); do pg_ready && return 0; sleep 0.5; done
  die "PostgreSQL $ver/main did not come up on 127.0.0.1:5432 (see /var/log/postgresql/)"
}

# A role the tests can use over TCP when the server wants a password (stock Debian pg_hba.conf).
make_test_role() {
  [ "$(id -u)" -eq 0 ] || return 1
  note "creating superuser role callfleet_test (password auth over TCP)"
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'callfleet_test') THEN
    CREATE ROLE callfleet_test LOGIN SUPERUSER PASSWORD 'callfleet_test';
  ELSE
    ALTER ROLE callfleet_test LOGIN SUPERUSER PASSWORD 'callfleet_test';
  END IF;
END $$;
SQL
  if [ "$(as_postgres psql -X -tA -d postgres -c "select count(*) from pg_database where datname = 'callfleet_test'")" = 0 ]; then
    as_postgres createdb -O callfleet_test callfleet_test
  fi
}

step "PostgreSQL"
pg_ready || start_postgres
if [ -n "${CALLFLEET_TEST_PG:-}" ]; then
  pg_works "$CALLFLEET_TEST_PG" || die "CALLFLEET_TEST_PG=$CALLFLEET_TEST_PG does not accept connections"
else
  CALLFLEET_TEST_PG="postgres://postgres@127.0.0.1"
  if ! pg_works "$CALLFLEET_TEST_PG"; then
    CALLFLEET_TEST_PG="postgres://callfleet_test:callfleet_test@127.0.0.1"
    if ! pg_works "$CALLFLEET_TEST_PG"; then
      make_test_role || die "cannot log in as postgres over TCP; set CALLFLEET_TEST_PG to a superuser URL"
      pg_works "$CALLFLEET_TEST_PG" || die "cannot log in as $CALLFLEET_TEST_PG either; check pg_hba.conf"
    fi
  fi
fi
export CALLFLEET_TEST_PG
note "CALLFLEET_TEST_PG=$CALLFLEET_TEST_PG"

# ---------------------------------------------------------------------------------------------
# memcached on 127.0.0.1:11211
# ---------------------------------------------------------------------------------------------
memcached_up() {
  timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/11211 && printf "version\r\n" >&3 && head -c 8 <&3' 2>/dev/null | grep -q '^VERSION'
}
step "memcached"
if ! memcached_up; then
  mc_user=nobody
  getent passwd memcache >/dev/null 2>&1 && mc_user=memcache
  note "starting memcached on 127.0.0.1:11211"
  memcached -d -u "$mc_user" -l 127.0.0.1 -p 11211 -U 0 -m 64
  for _ in $(seq 30); do memcached_up && break; sleep 0.2; done
  memcached_up || die "memcached did not come up on 127.0.0.1:11211"
fi
export CALLFLEET_TEST_MEMCACHED="${CALLFLEET_TEST_MEMCACHED:-127.0.0.1:11211}"
note "CALLFLEET_TEST_MEMCACHED=$CALLFLEET_TEST_MEMCACHED"

# ---------------------------------------------------------------------------------------------
# axe-core for the browser tests' accessibility checks (target/npm, where they look for it)
# ---------------------------------------------------------------------------------------------
step "axe-core"
axe_js="$root/target/npm/node_modules/axe-core/axe.min.js"
if [ ! -f "$axe_js" ]; then
  note "installing axe-core@4 into target/npm"
  npm install --prefix "$root/target/npm" --no-audit --no-fund --loglevel=error axe-core@4 >/dev/null \
    || die "npm install axe-core@4 failed"
fi
export CALLFLEET_AXE="$axe_js"
note "CALLFLEET_AXE=$CALLFLEET_AXE"

if [ "$setup_only" -eq 1 ]; then
  printf '\ntest.sh: setup done (cargo checks skipped)\n'
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Rust checks
# ---------------------------------------------------------------------------------------------
step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "promtool: the Prometheus alert rules (docs/alerts.rules.yml) and their tests"
promtool check rules docs/alerts.rules.yml
(cd docs && promtool test rules alerts.rules.test.yml)

step "cargo test --workspace"
cargo test --workspace

step "fuzz targets, briefly (fuzz/: the SIP edge's parse path and the SDP parser)"
if ! cargo fuzz --version >/dev/null 2>&1; then
  note "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
fuzz_seconds="${CALLFLEET_FUZZ_SECONDS:-30}"
fuzz_tmp="$(mktemp -d)"
for target in sip_front sdp; do
  mkdir -p "$fuzz_tmp/$target"
  # The stable toolchain builds cargo-fuzz targets with RUSTC_BOOTSTRAP=1 and no sanitizer.
  # New inputs go to a scratch directory; the seed corpus in fuzz/corpus is read only.
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" --sanitizer none "$fuzz_tmp/$target" "fuzz/corpus/$target" \
    -- -max_total_time="$fuzz_seconds"
done
rm -rf "$fuzz_tmp"

step "cargo doc --workspace --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

printf '\ntest.sh: all checks passed\n'
