#!/usr/bin/env bash
# Installs a callfleet node on a Debian or Ubuntu host: packages, the `callfleet` binary, a system
# user, the node's configuration, music on hold, the database schema and a systemd unit.
# Safe to run again: it upgrades the binary and keeps an existing configuration.
set -euo pipefail

# Not root: ask sudo for it (a Rust toolchain of the calling user still builds the binary, below).
case "${1:-}" in -h|--help) ;; *)
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install.sh: run it as root (there is no sudo here)" >&2; exit 1; }
    exec sudo -- bash "$0" "$@"
  fi ;;
esac

usage() {
  cat <<'USAGE'
usage: ./install.sh [options]        (as root; through sudo when run as another user)

Installs (or upgrades) a callfleet node on this host.

  --postgres URL   shared PostgreSQL database, e.g. postgres://callfleet:PW@10.0.0.5/callfleet
                   (default: an SQLite file in /var/lib/callfleet, for a single host)
  --name NAME      node name, unique in the cluster (default: this host's short name)
  --role ROLE      main | extra (default: main)
  --sip ADDR       SIP address the carriers reach, IP[:PORT] (default: first host IP, port 5060)
  --http ADDR      HTTP address other nodes reach, IP[:PORT] (default: same IP, port 8080)
  --start          enable and (re)start the callfleet systemd service
  --no-build       do not run cargo; install the existing target/release/callfleet
  --binary FILE    install this callfleet binary (built elsewhere); implies --no-build
  --prefix DIR     install under DIR instead of / (DIR/usr/local/bin/callfleet,
                   DIR/etc/callfleet, DIR/var/lib/callfleet, DIR/usr/share/callfleet, and the
                   unit file in DIR/etc/systemd/system, never enabled): a trial install next to
                   a real one; not with --start
  -h, --help       show this help

From a snapshot (callfleet snapshot create): no build, binary, settings and sounds from the file
  --snapshot FILE  install the node from FILE; needs --name and --sip, takes --role, --http,
                   --capacity N (default: the snapshot's) and --no-start (default: start it)

--postgres, --name, --role, --sip and --http only shape a new callfleet.toml; an existing one is
never changed. A new one gets a random [http] secret: give every node of a cluster the same.
USAGE
}

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

opt_postgres="" opt_name="" opt_role="" opt_sip="" opt_http="" opt_start=0 opt_build=1
opt_binary="" opt_prefix=""
opt_snapshot="" opt_capacity="" opt_no_start=0
while [ $# -gt 0 ]; do
  case "$1" in
    --postgres|--name|--role|--sip|--http|--binary|--prefix)
      { [ $# -ge 2 ] && [ -n "$2" ]; } || die "$1 needs a value (see --help)"
      case "$1" in
        --postgres) opt_postgres="$2" ;;
        --name) opt_name="$2" ;;
        --role) opt_role="$2" ;;
        --sip) opt_sip="$2" ;;
        --http) opt_http="$2" ;;
        --binary) opt_binary="$2"; opt_build=0 ;;
        --prefix) opt_prefix="$2" ;;
      esac
      shift 2 ;;
    --start) opt_start=1; shift ;;
    --no-build) opt_build=0; shift ;;
    --snapshot|--capacity)
      { [ $# -ge 2 ] && [ -n "$2" ]; } || die "$1 needs a value (see --help)"
      if [ "$1" = --snapshot ]; then opt_snapshot="$2"; else opt_capacity="$2"; fi
      shift 2 ;;
    --no-start) opt_no_start=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

case "$opt_role" in ""|main|extra) ;; *) die "--role must be main or extra, not '$opt_role'" ;; esac
case "$opt_postgres" in ""|postgres://*|postgresql://*) ;; *) die "--postgres wants a postgres://... URL" ;; esac
case "$opt_name" in *[!A-Za-z0-9._-]*) die "--name may use letters, digits, '.', '_' and '-' only" ;; esac
if [ -n "$opt_prefix" ]; then
  case "$opt_prefix" in /*) ;; *) die "--prefix wants an absolute path" ;; esac
  [ "$opt_start" -eq 0 ] || die "--start cannot be used with --prefix (the unit file there is not the system's)"
  opt_prefix="${opt_prefix%/}"
fi
if [ -n "$opt_binary" ]; then
  [ -f "$opt_binary" ] && [ -x "$opt_binary" ] || die "--binary $opt_binary is not an executable file"
fi

[ "$(id -u)" -eq 0 ] || die "run as root: sudo ./install.sh"
command -v apt-get >/dev/null 2>&1 || die "this installer needs a Debian or Ubuntu host (apt-get)"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$opt_prefix"
bin=$root/usr/local/bin/callfleet
etc=$root/etc/callfleet
conf=$etc/callfleet.toml
data=$root/var/lib/callfleet
moh=$root/usr/share/callfleet/moh
prompts=$root/usr/share/callfleet/prompts
unit=$root/etc/systemd/system/callfleet.service
export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------
apt_updated=0
apt_update() {
  [ "$apt_updated" -eq 0 ] || return 0
  apt_updated=1
  apt-get update -q >/dev/null || warn "apt-get update failed; trying with the package lists there are"
}
apt_install() {
  local want=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || want+=("$p"); done
  [ "${#want[@]}" -gt 0 ] || return 0
  note "apt-get install ${want[*]}"
  apt_update
  apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# From a snapshot (--snapshot FILE): binary, cluster settings and sounds come from the file
# ---------------------------------------------------------------------------------------------
# `callfleet snapshot restore` checks the whole file before it installs anything and writes the
# node's config; the binary that runs it is taken out of the snapshot and checked against the
# manifest's SHA-256 first. Then the user, ownership and the systemd unit, as below.
install_snapshot() {
  local work sum size restore unit_file
  [ -r "$opt_snapshot" ] || die "cannot read the snapshot $opt_snapshot"
  { [ -n "$opt_name" ] && [ -n "$opt_sip" ]; } || die "--snapshot needs --name and --sip"
  [ -z "$opt_postgres" ] || die "--postgres does not go with --snapshot: the snapshot has the database URL"
  case "$opt_capacity" in ""|[1-9]|[1-9][0-9]*) ;; *) die "--capacity wants a number of calls" ;; esac
  say "packages"
  apt_install ca-certificates tar zstd
  say "snapshot $opt_snapshot"
  work="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand $work now
  trap "rm -rf '$work'" EXIT
  tar --zstd -xf "$opt_snapshot" -C "$work" manifest.json bin/callfleet 2>/dev/null ||
    die "$opt_snapshot is not a callfleet snapshot, or it is damaged: nothing installed"
  { [ -f "$work/bin/callfleet" ] && [ ! -L "$work/bin/callfleet" ]; } ||
    die "$opt_snapshot has no regular bin/callfleet: refused, nothing installed"
  sum="$(sha256sum "$work/bin/callfleet" | cut -d' ' -f1)"
  size="$(stat -c %s "$work/bin/callfleet")"
  tr -d ' \n' < "$work/manifest.json" |
    grep -q "\"path\":\"bin/callfleet\",\"size\":$size,\"sha256\":\"$sum\"" ||
    die "bin/callfleet in $opt_snapshot does not match its checksum: refused, nothing installed"
  chmod 0755 "$work/bin/callfleet"
  restore=(snapshot restore "$opt_snapshot" --root "${root:-/}" --name "$opt_name" --role "${opt_role:-main}"
    --sip "$opt_sip" --no-start)
  [ -z "$opt_http" ] || restore+=(--http "$opt_http")
  [ -z "$opt_capacity" ] || restore+=(--capacity "$opt_capacity")
  "$work/bin/callfleet" "${restore[@]}" || die "callfleet snapshot restore failed (above)"
  say "user and folders"
  if ! getent passwd callfleet >/dev/null; then
    useradd --system --user-group --home-dir "$data" --no-create-home --shell /usr/sbin/nologin callfleet
    note "created system user callfleet"
  fi
  chown root:callfleet "$etc" "$conf"
  chmod 0750 "$etc"
  chmod 0640 "$conf"
  chown -R callfleet:callfleet "$data"
  chmod 0750 "$data"
  say "systemd unit"
  # The same unit as a build installs (below).
  unit_file="[Unit]
Description=callfleet call-centre node
Wants=network-online.target
After=network-online.target postgresql.service

[Service]
Type=simple
User=callfleet
Group=callfleet
WorkingDirectory=$data
StateDirectory=callfleet
StateDirectoryMode=0750
ExecStart=$bin node --config $conf
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=6min
LimitNOFILE=65536
AmbientCapabilities=CAP_NET_BIND_SERVICE

[Install]
WantedBy=multi-user.target"
  printf '%s\n' "$unit_file" > "$unit"
  chmod 0644 "$unit"
  note "wrote $unit"
  if [ "$opt_no_start" -eq 1 ] || [ -n "$root" ]; then
    note "not started (--no-start or --prefix): systemctl enable --now callfleet"
  elif [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
    systemctl daemon-reload
    systemctl enable --quiet callfleet
    systemctl restart callfleet
    note "callfleet.service: $(systemctl is-active callfleet || true)"
  else
    warn "systemd is not PID 1 here; start the node by hand:
    runuser -u callfleet -- $bin node --config $conf"
  fi
  printf '\ncallfleet node %s is installed from %s; it joins the cluster with its heartbeat.\n' \
    "$opt_name" "$opt_snapshot"
}
if [ -n "$opt_snapshot" ]; then
  install_snapshot
  exit 0
fi

say "packages"
pkgs=(ca-certificates curl sox libsox-fmt-base sqlite3 espeak-ng)
[ "$opt_build" -eq 0 ] || pkgs+=(build-essential pkg-config)
apt_install "${pkgs[@]}"

# ---------------------------------------------------------------------------------------------
# Rust toolchain and build
# ---------------------------------------------------------------------------------------------
cargo_cmd=()
find_cargo() {
  local home
  cargo_cmd=()
  if command -v cargo >/dev/null 2>&1; then
    cargo_cmd=(cargo)
  elif [ -x "${CARGO_HOME:-${HOME:-/root}/.cargo}/bin/cargo" ]; then
    cargo_cmd=("${CARGO_HOME:-${HOME:-/root}/.cargo}/bin/cargo")
  elif [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    # `sudo ./install.sh` from a user who installed Rust with rustup: build as that user.
    home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
    if [ -n "$home" ] && [ -x "$home/.cargo/bin/cargo" ]; then
      cargo_cmd=(runuser -u "$SUDO_USER" -- env "HOME=$home" "PATH=$home/.cargo/bin:$PATH" cargo)
    fi
  fi
  [ "${#cargo_cmd[@]}" -gt 0 ]
}

install_rust() {
  note "cargo not found: looking for the distribution's rustup package"
  apt_update
  if ! apt-cache madison rustup 2>/dev/null | grep -q .; then
    die "cargo is missing and this distribution has no 'rustup' package. Install a Rust toolchain
    (1.88 or newer) with rustup for root or for the user running sudo, then run ./install.sh again,
    or build elsewhere and use --no-build with target/release/callfleet in place."
  fi
  apt_install rustup
  rustup default stable >/dev/null || die "rustup could not install the stable toolchain"
  hash -r
  find_cargo || die "rustup is installed but cargo is still not on PATH"
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

if [ "$opt_build" -eq 1 ]; then
  say "build"
  find_cargo || install_rust
  need="$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$repo/Cargo.toml" | head -n1)"
  have="$("${cargo_cmd[@]}" --version | awk '{print $2}')"
  if [ -n "$need" ] && ! version_ge "${have%%-*}" "$need"; then
    die "cargo $have is older than Rust $need, which callfleet needs: update it (rustup update stable)"
  fi
  note "cargo $have: cargo build --release"
  (cd "$repo" && "${cargo_cmd[@]}" build --release)
fi
built="${opt_binary:-$repo/target/release/callfleet}"
[ -x "$built" ] || die "no $built (build it, or drop --no-build)"

say "binary"
install -d -m 0755 "$(dirname "$bin")"
install -m 0755 "$built" "$bin"
note "$bin"

# ---------------------------------------------------------------------------------------------
# User, folders, configuration
# ---------------------------------------------------------------------------------------------
say "user and folders"
if ! getent passwd callfleet >/dev/null; then
  # The home is the system data folder even for a --prefix install (it is never created).
  useradd --system --user-group --home-dir /var/lib/callfleet --no-create-home --shell /usr/sbin/nologin callfleet
  note "created system user callfleet"
fi
install -d -m 0755 "$(dirname "$etc")"
install -d -m 0750 -o root -g callfleet "$etc"
install -d -m 0755 "$(dirname "$data")"
install -d -m 0750 -o callfleet -g callfleet "$data"
# A callfleet command run as root (doctor, migrate) may have created the SQLite files as root.
chown -R callfleet:callfleet "$data"
install -d -m 0755 "$moh"
install -d -m 0755 "$prompts"

toml_string() { local s="${1//\\/\\\\}"; s="${s//\"/\\\"}"; printf '"%s"' "$s"; }

# set_toml FILE SECTION KEY VALUE: replaces the first `KEY = ...` line of [SECTION].
set_toml() {
  SECTION="$2" KEY="$3" VALUE="$4" awk '
    /^[[:space:]]*\[/ { sec = $0; gsub(/^[[:space:]]*\[|\][[:space:]]*(#.*)?$/, "", sec) }
    !done && sec == ENVIRON["SECTION"] && $0 ~ ("^[[:space:]]*" ENVIRON["KEY"] "[[:space:]]*=") {
      print ENVIRON["KEY"] " = " ENVIRON["VALUE"]; done = 1; next
    }
    { print }
    END { exit done ? 0 : 3 }' "$1" > "$1.new" || { rm -f "$1.new"; die "no key $3 in [$2] of $1"; }
  mv "$1.new" "$1"
}

# uncomment_toml FILE SECTION KEY: turns the first `# KEY = ...` line of [SECTION] into `KEY = ...`
# (a key the example file shows commented out), unless KEY is set in [SECTION] already.
uncomment_toml() {
  [ -z "$(get_toml "$1" "$2" "$3")" ] || return 0
  SECTION="$2" KEY="$3" awk '
    /^[[:space:]]*\[/ { sec = $0; gsub(/^[[:space:]]*\[|\][[:space:]]*(#.*)?$/, "", sec) }
    !done && sec == ENVIRON["SECTION"] && $0 ~ ("^#[[:space:]]*" ENVIRON["KEY"] "[[:space:]]*=") {
      sub(/^#[[:space:]]*/, ""); done = 1
    }
    { print }' "$1" > "$1.new" && mv "$1.new" "$1"
}

# random_hex BYTES: that many random bytes from the kernel, as lowercase hex.
random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# get_toml FILE SECTION KEY: prints the value of KEY in [SECTION] (strings unquoted).
get_toml() {
  SECTION="$2" KEY="$3" awk '
    /^[[:space:]]*\[/ { sec = $0; gsub(/^[[:space:]]*\[|\][[:space:]]*(#.*)?$/, "", sec) }
    sec == ENVIRON["SECTION"] && $0 ~ ("^[[:space:]]*" ENVIRON["KEY"] "[[:space:]]*=") {
      v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]+#.*$/, "", v); gsub(/^"|"$/, "", v)
      print v; exit
    }' "$1"
}

host_ip() {
  local ip
  ip="$(hostname -I 2>/dev/null | awk '{print $1}')"
  printf '%s' "${ip:-127.0.0.1}"
}

# with_port ADDR DEFAULT_PORT: "10.0.0.11" -> "10.0.0.11:5060"; "10.0.0.11:5070" unchanged.
with_port() { case "$1" in *:*) printf '%s' "$1" ;; *) printf '%s:%s' "$1" "$2" ;; esac; }

say "configuration"
if [ -e "$conf" ]; then
  note "$conf exists: kept as it is"
  if [ -z "$(get_toml "$conf" http secret)" ]; then
    warn "$conf has no [http] secret: a node now refuses to start without one; add"
    warn "  secret = \"$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')\""
    warn "under [http], the same on every node and lockd of the cluster"
  fi
  if [ -n "$opt_postgres$opt_name$opt_role$opt_sip$opt_http" ]; then
    warn "--postgres/--name/--role/--sip/--http only shape a new config; edit $conf to change it"
  fi
else
  ip="$(host_ip)"
  name="${opt_name:-$(hostname -s 2>/dev/null || echo node-1)}"
  sip="$(with_port "${opt_sip:-$ip}" 5060)"
  http="$(with_port "${opt_http:-${sip%:*}}" 8080)"
  tmp="$(mktemp "$etc/.callfleet.toml.XXXXXX")"
  cp "$repo/node/callfleet.example.toml" "$tmp"
  set_toml "$tmp" node name "$(toml_string "$name")"
  set_toml "$tmp" node role "$(toml_string "${opt_role:-main}")"
  set_toml "$tmp" sip listen "$(toml_string "$sip")"
  set_toml "$tmp" http listen "$(toml_string "$http")"
  set_toml "$tmp" database url "$(toml_string "${opt_postgres:-sqlite://$data/cluster.db}")"
  uncomment_toml "$tmp" http secret
  set_toml "$tmp" http secret "$(toml_string "$(random_hex 32)")"
  set_toml "$tmp" media moh_dir "$(toml_string "$moh")"
  set_toml "$tmp" media prompts_dir "$(toml_string "$prompts")"
  set_toml "$tmp" media voicemail_dir "$(toml_string "$data/voicemail")"
  set_toml "$tmp" records spool_dir "$(toml_string "$data/spool")"
  chown root:callfleet "$tmp"
  chmod 0640 "$tmp"
  mv "$tmp" "$conf"
  note "wrote $conf"
fi

# ---------------------------------------------------------------------------------------------
# Music on hold: short original tunes synthesised here (8 kHz, mono, 16-bit)
# ---------------------------------------------------------------------------------------------
# render_voice OUT BEAT BEATS_PER_NOTE INSTRUMENT NOTES...: one note per token, in semitones from
# A4 (440 Hz); "-" is a rest.
render_voice() {
  local out="$1" beat="$2" per="$3" inst="$4" len args=() n
  shift 4
  len="$(awk -v b="$beat" -v p="$per" 'BEGIN { printf "%.3f", b * p }')"
  for n in "$@"; do
    [ "${#args[@]}" -eq 0 ] || args+=(:)
    if [ "$n" = "-" ]; then
      args+=(synth "$len" sine 440 vol 0)
    elif [ "$inst" = pluck ]; then
      args+=(synth "$len" pluck "%$n" fade q 0.005 "$len" 0.08)
    else
      args+=(synth "$len" "$inst" "%$n" fade h 0.04 "$len" 0.25)
    fi
  done
  sox -q -n -r 8000 -c 1 -b 16 "$out" "${args[@]}"
}

# render_tune OUT BEAT INSTRUMENT "MELODY" "BASS" (bass notes last four beats each)
render_tune() {
  local out="$1" beat="$2" inst="$3" work
  work="$(mktemp -d)"
  # shellcheck disable=SC2086 # the note lists are meant to split into words
  render_voice "$work/melody.wav" "$beat" 1 "$inst" $4
  # shellcheck disable=SC2086
  render_voice "$work/bass.wav" "$beat" 4 sine $5
  sox -q -m -v 0.6 "$work/melody.wav" -v 0.4 "$work/bass.wav" -r 8000 -b 16 -e signed-integer \
    "$work/mix.wav" reverb 35 50 70 channels 1 gain -n -3
  # a second pass: after reverb in the same chain, fade cannot find the end of the audio
  sox -q "$work/mix.wav" -r 8000 -c 1 -b 16 -e signed-integer "$work/tune.wav" fade t 0.5 0 2
  mv "$work/tune.wav" "$out"
  rm -rf "$work"
}

say "music on hold"
tune1_a="3 7 10 7 12 10 7 5 3 5 7 10 7 5 3 -"
tune1_b="5 7 10 12 15 12 10 7 10 7 5 3 5 - 3 -"
tune1_c="3 7 10 12 15 12 10 7 5 7 10 7 5 3 0 -"
tune2_a="0 3 7 3 5 7 5 3 2 5 10 7 7 - - - 0 3 7 10 12 10 7 5 3 5 2 0 0 - - -"
tune2_b="7 10 12 10 7 5 3 5 7 5 3 2 0 - - -"
tune3_a="-4 0 3 8 3 0 5 3 0 -2 -4 -2 0 3 - -"
tune3_b="8 5 3 5 8 12 8 5 3 0 -2 0 -4 - - -"
tunes=(
  "01-harbour|0.375|pluck|$tune1_a $tune1_b $tune1_c $tune1_b|-21 -24 -28 -26 -21 -24 -28 -26 -21 -24 -28 -26 -21 -24 -28 -26"
  "02-lanterns|0.5|sine|$tune2_a $tune2_b|-24 -28 -21 -26 -24 -28 -21 -26 -24 -28 -26 -24"
  "03-tidewalk|0.3|pluck|$tune3_a $tune3_b $tune3_a $tune3_b $tune3_a|-28 -31 -23 -21 -28 -31 -23 -21 -28 -31 -23 -21 -28 -31 -23 -21 -28 -31 -23 -21"
)
for t in "${tunes[@]}"; do
  IFS='|' read -r tname tbeat tinst tmelody tbass <<< "$t"
  if [ -s "$moh/$tname.wav" ]; then
    note "$moh/$tname.wav (kept)"
  else
    render_tune "$moh/$tname.wav" "$tbeat" "$tinst" "$tmelody" "$tbass"
    chmod 0644 "$moh/$tname.wav"
    note "$moh/$tname.wav ($(soxi -D "$moh/$tname.wav" | cut -d. -f1) s)"
  fi
done

# Spoken prompts, synthesised here with espeak-ng (no third-party recordings), 8 kHz mono 16-bit.
say "prompts"
speak() { # speak FILE TEXT
  local raw
  raw="$(mktemp --suffix=.wav)"
  espeak-ng -v en-us -s 150 -w "$raw" "$2"
  sox -q "$raw" -r 8000 -c 1 -b 16 -e signed-integer "$1" gain -n -3
  rm -f "$raw"
  chmod 0644 "$1"
}
prompt_texts=(
  "you-are-next|You are next in line."
  "there-are|There are"
  "calls-ahead|calls ahead of you."
  "all-busy|Sorry, all our agents are busy. Please call again later."
  "leave-message|Please leave a message after the tone."
  "mailbox-full|Sorry, this mailbox is full. Goodbye."
  "enter-agent|Please enter your agent number."
  "enter-pin|Please enter your pin."
  "logged-in|You are logged in."
  "logged-out|You are logged out."
  "login-failed|Login failed."
  "goodbye|Goodbye."
  "may-be-recorded|This call may be recorded."
)
for n in $(seq 1 20); do prompt_texts+=("n$n|$n"); done
made=0
# The site's own prompts (IVR menus, hang-up messages of numbers): one "name|text" line each in
# $etc/prompts.txt, spoken as <name>.wav; made again when prompts.txt is newer than the file.
# Read first, so a line may also replace one of the node's own prompts.
site_prompts=$etc/prompts.txt
if [ -f "$site_prompts" ]; then
  while IFS='|' read -r pname ptext || [ -n "$pname" ]; do
    case "$pname" in ''|'#'*) continue ;; esac
    if ! [[ "$pname" =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] || [ -z "$ptext" ]; then
      warn "$site_prompts: \"$pname\" needs a name of letters, digits, - and _, then |text; skipped"
      continue
    fi
    [ -s "$prompts/$pname.wav" ] && [ "$prompts/$pname.wav" -nt "$site_prompts" ] && continue
    speak "$prompts/$pname.wav" "$ptext"
    made=$((made + 1))
  done < "$site_prompts"
fi
for p in "${prompt_texts[@]}"; do
  IFS='|' read -r pname ptext <<< "$p"
  [ -s "$prompts/$pname.wav" ] && continue
  speak "$prompts/$pname.wav" "$ptext"
  made=$((made + 1))
done
if [ ! -s "$prompts/beep.wav" ]; then
  sox -q -n -r 8000 -c 1 -b 16 -e signed-integer "$prompts/beep.wav" synth 0.4 sine 1000 gain -6
  chmod 0644 "$prompts/beep.wav"
  made=$((made + 1))
fi
note "$prompts: $made new, $(find "$prompts" -maxdepth 1 -name '*.wav' | wc -l) in all"

# ---------------------------------------------------------------------------------------------
# Database schema
# ---------------------------------------------------------------------------------------------
say "database"
db_url="$(get_toml "$conf" database url)"
note "callfleet migrate (${db_url%%://*} database)"
runuser -u callfleet -- "$bin" migrate --config "$conf" ||
  die "callfleet migrate failed: check [database] url in $conf and that the database accepts this host"

# ---------------------------------------------------------------------------------------------
# systemd unit
# ---------------------------------------------------------------------------------------------
say "systemd unit"
unit_text="[Unit]
Description=callfleet call-centre node
Wants=network-online.target
After=network-online.target postgresql.service

[Service]
Type=simple
User=callfleet
Group=callfleet
WorkingDirectory=$data
StateDirectory=callfleet
StateDirectoryMode=0750
ExecStart=$bin node --config $conf
Restart=on-failure
RestartSec=2
KillSignal=SIGTERM
TimeoutStopSec=6min
LimitNOFILE=65536
AmbientCapabilities=CAP_NET_BIND_SERVICE

[Install]
WantedBy=multi-user.target
"
systemd_running=0
[ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && [ -z "$root" ] && systemd_running=1
if [ -e "$unit" ] && [ "$(cat "$unit")" = "${unit_text%$'\n'}" ]; then
  note "$unit (unchanged)"
else
  install -d -m 0755 "$(dirname "$unit")"
  printf '%s' "$unit_text" > "$unit"
  chmod 0644 "$unit"
  note "wrote $unit"
  [ "$systemd_running" -eq 0 ] || systemctl daemon-reload
fi

service_state="installed, not started (use --start)"
[ -z "$root" ] || service_state="unit file written under $root, not enabled (--prefix)"
if [ "$opt_start" -eq 1 ]; then
  if [ "$systemd_running" -eq 1 ]; then
    systemctl enable --quiet callfleet
    systemctl restart callfleet
    sleep 1
    service_state="$(systemctl is-active callfleet || true)"
    [ "$service_state" = active ] || warn "callfleet.service is $service_state: journalctl -u callfleet"
  else
    service_state="not started: systemd is not running on this host"
    warn "systemd is not PID 1 here; start the node by hand:
    runuser -u callfleet -- $bin node --config $conf"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------
if [ -n "$root" ]; then
  start_hint="runuser -u callfleet -- $bin node --config $conf   # installed under $root"
elif [ "$systemd_running" -eq 1 ]; then
  start_hint="systemctl enable --now callfleet"
else
  start_hint="runuser -u callfleet -- $bin node --config $conf   # no systemd here"
fi
db_shown="$(printf '%s' "$db_url" | sed -E 's#(://[^:/@]+):[^@/]*@#\1:***@#')"
cat <<SUMMARY

callfleet is installed.
  binary    $bin
  config    $conf
  node      $(get_toml "$conf" node name) ($(get_toml "$conf" node role))
  SIP       $(get_toml "$conf" sip listen)
  HTTP      http://$(get_toml "$conf" http listen)/
  database  $db_shown
  data      $data
  MOH       $moh ($(find "$moh" -maxdepth 1 -name '*.wav' | wc -l) files)
  service   $service_state

Next: allow your carriers' networks in [carriers] allow of $conf
and give every node of the cluster the same [http] secret; then
  $start_hint
  curl http://$(get_toml "$conf" http listen)/api/v1/nodes
Try a whole cluster on this host first with: callfleet demo
SUMMARY
