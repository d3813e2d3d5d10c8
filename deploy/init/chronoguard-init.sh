#!/bin/sh
# chronoguard-init: the pod's egress rules for transparent capture (SPEC §10, README "Nothing goes
# around it"). Run once, as root with NET_ADMIN, in the pod's network namespace before the agent
# starts (an init container). Every outbound TCP connection not made by the sidecar's UID is
# redirected to Transparent:Listen, DNS (UDP and TCP port 53, whatever the address) to Dns:Listen,
# and everything else a non-sidecar process sends (other UDP, QUIC, ICMP, IPv6 without Listen6) is
# dropped, so nothing leaves the pod except through the sidecar.
#
# Settings come from the sidecar's own variables, so one env block (or ConfigMap) feeds both:
#   CHRONOGUARD__Transparent__Listen, CHRONOGUARD__Transparent__Listen6, CHRONOGUARD__Dns__Listen,
#   CHRONOGUARD__Transparent__ExcludeCidrs__N, CHRONOGUARD__Transparent__Listeners__N__{Listen,Uid},
#   CHRONOGUARD_SIDECAR_UID
# and flags override them (see --help). Running it twice gives the same rules: they live in chains
# (iptables) or a table (nft) of their own, replaced whole on every run.
set -eu

me=chronoguard-init
chain=CHRONOGUARD_OUTPUT

fail() {
  echo "$me: $*" >&2
  exit 1
}

usage() {
  cat <<'EOF'
usage: chronoguard-init.sh [options]
  --sidecar-uid UID         the sidecar's user; its connections are never touched (default 1654;
                            env CHRONOGUARD_SIDECAR_UID)
  --transparent-port PORT   Transparent:Listen's port; "" = no default listener (default 15001)
  --transparent6-port PORT  Transparent:Listen6's port; "" (default) = IPv6 egress is dropped
  --dns-port PORT           Dns:Listen's port; "" = port 53 is not sent to a DNS guard (default 15053)
  --exclude-cidrs LIST      destinations TCP may reach directly, comma or space separated
                            (default "127.0.0.0/8,::1/128", as Transparent:ExcludeCidrs)
  --listener UID=PORT       another agent: TCP from UID goes to PORT (repeatable; as
                            Transparent:Listeners:N:{Uid,Listen})
  --backend auto|iptables|nft  auto: iptables, and nft when iptables is missing or fails
  --dry-run                 print the commands that would be run, run nothing
  --remove                  remove the rules this script installs
EOF
}

# Defaults, then the sidecar's variables, then flags.
sidecar_uid=${CHRONOGUARD_SIDECAR_UID:-1654}
tport=15001
t6port=
dnsport=15053
excludes="127.0.0.0/8 ::1/128"
# Where each value came from, for the error that names it.
uid_from=--sidecar-uid tport_from=--transparent-port t6port_from=--transparent6-port dnsport_from=--dns-port excludes_from=--exclude-cidrs
[ -z "${CHRONOGUARD_SIDECAR_UID:-}" ] || uid_from=CHRONOGUARD_SIDECAR_UID
listeners=
backend=auto
dry_run=false
remove=false

# HOST:PORT or [V6]:PORT -> PORT, after checking the host is one REDIRECT delivers to.
port_of() { # name value loopback-host...
  name=$1 value=$2
  shift 2
  [ -n "$value" ] || { echo ""; return; }
  host=${value%:*}
  port=${value##*:}
  [ "$host" != "$value" ] || fail "$name: '$value' is not HOST:PORT"
  ok=false
  for h in "$@"; do [ "$host" = "$h" ] && ok=true; done
  $ok || fail "$name: '$value' listens on $host, but REDIRECT delivers to $1: listen on $1:$port"
  echo "$port"
}

if [ "${CHRONOGUARD__Transparent__Listen+set}" = set ]; then
  tport=$(port_of Transparent:Listen "$CHRONOGUARD__Transparent__Listen" 127.0.0.1 0.0.0.0 '[::]')
  tport_from=Transparent:Listen
fi
if [ "${CHRONOGUARD__Transparent__Listen6+set}" = set ]; then
  t6port=$(port_of Transparent:Listen6 "$CHRONOGUARD__Transparent__Listen6" '[::1]' '[::]')
  t6port_from=Transparent:Listen6
fi
if [ "${CHRONOGUARD__Dns__Listen+set}" = set ]; then
  dnsport=$(port_of Dns:Listen "$CHRONOGUARD__Dns__Listen" 127.0.0.1 0.0.0.0 '[::]')
  dnsport_from=Dns:Listen
fi
if [ "${CHRONOGUARD__Transparent__ExcludeCidrs__0+set}" = set ]; then
  excludes= i=0 excludes_from=Transparent:ExcludeCidrs
  while eval "[ \"\${CHRONOGUARD__Transparent__ExcludeCidrs__$i+set}\" = set ]"; do
    eval "excludes=\"\$excludes \$CHRONOGUARD__Transparent__ExcludeCidrs__$i\""
    i=$((i + 1))
  done
fi
i=0
while eval "[ \"\${CHRONOGUARD__Transparent__Listeners__${i}__Listen+set}\" = set ]"; do
  eval "l_listen=\$CHRONOGUARD__Transparent__Listeners__${i}__Listen"
  eval "l_uid=\${CHRONOGUARD__Transparent__Listeners__${i}__Uid:-}"
  [ -n "$l_uid" ] || fail "Transparent:Listeners:$i:Uid is missing: the rules need the UID whose connections go to $l_listen"
  listeners="$listeners $l_uid=$(port_of "Transparent:Listeners:$i:Listen" "$l_listen" 127.0.0.1 0.0.0.0 '[::]')"
  i=$((i + 1))
done

need_value() { [ $# -ge 2 ] || fail "$1 needs a value (see --help)"; }
cli_listeners=
while [ $# -gt 0 ]; do
  case $1 in
    --sidecar-uid) need_value "$@"; sidecar_uid=$2 uid_from=$1; shift 2 ;;
    --transparent-port) need_value "$@"; tport=$2 tport_from=$1; shift 2 ;;
    --transparent6-port) need_value "$@"; t6port=$2 t6port_from=$1; shift 2 ;;
    --dns-port) need_value "$@"; dnsport=$2 dnsport_from=$1; shift 2 ;;
    --exclude-cidrs) need_value "$@"; excludes=$2 excludes_from=$1; shift 2 ;;
    --listener) need_value "$@"; cli_listeners="$cli_listeners $2"; shift 2 ;;
    --backend) need_value "$@"; backend=$2; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    --remove) remove=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) fail "unknown option '$1' (see --help)" ;;
  esac
done
# Flags name the whole set of listeners: they replace the variables' set rather than add to it.
[ -z "$cli_listeners" ] || listeners=$cli_listeners

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
check_port() { # name value (may be empty)
  [ -z "$2" ] && return 0
  is_uint "$2" && [ "$2" -ge 1 ] && [ "$2" -le 65535 ] || fail "$1: '$2' is not a port (1-65535)"
}
is_uint "$sidecar_uid" || fail "$uid_from: '$sidecar_uid' is not a numeric UID"
check_port "$tport_from" "$tport"
check_port "$t6port_from" "$t6port"
check_port "$dnsport_from" "$dnsport"
case $backend in auto | iptables | nft) ;; *) fail "--backend: '$backend' is not auto, iptables or nft" ;; esac

excludes=$(echo "$excludes" | tr ',' ' ')
ex4= ex6=
for c in $excludes; do
  case $c in
    *:*)
      echo "$c" | grep -Eq '^[0-9A-Fa-f:.]+(/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))?$' || fail "$excludes_from: '$c' is not an IPv6 address or CIDR"
      ex6="$ex6 $c" ;;
    *)
      echo "$c" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}(/([0-9]|[12][0-9]|3[0-2]))?$' || fail "$excludes_from: '$c' is not an IPv4 address or CIDR"
      ex4="$ex4 $c" ;;
  esac
done

for l in $listeners; do
  uid=${l%%=*}
  port=${l#*=}
  [ "$uid" != "$l" ] || fail "--listener: '$l' is not UID=PORT"
  is_uint "$uid" || fail "--listener: '$uid' in '$l' is not a numeric UID"
  [ "$uid" != "$sidecar_uid" ] || fail "--listener: UID $uid is the sidecar's own; its connections are never redirected"
  check_port "--listener $l" "$port"
done
[ -n "$tport" ] || [ -n "$listeners" ] || fail "no listener: give --transparent-port or --listener (Transparent:Listen or Transparent:Listeners)"

# --- iptables ---------------------------------------------------------------------------------
# One iptables-restore per family, into chains of our own (declaring a chain under --noflush
# empties it, so a second run replaces rather than adds), then one jump from OUTPUT, added only
# when it is not there yet. The nat chain decides where a new connection goes; the filter chain,
# seeing the rewritten destination, lets through what goes to the sidecar's ports or is excluded, refuses any other
# TCP connect and drops everything else (a local sender gets EPERM for a dropped datagram).

iptables_rules() { # family: 4 or 6
  fam=$1
  if [ "$fam" = 4 ]; then ex=$ex4 lo=127.0.0.1 tp=$tport dp=$dnsport; else ex=$ex6 lo=::1 tp=$t6port dp=; fi
  echo '*nat'
  echo ":$chain - [0:0]"
  echo "-A $chain -m owner --uid-owner $sidecar_uid -j RETURN"
  # DNS before the exclusions: a resolver on loopback (127.0.0.53) is still asked through the guard.
  if [ -n "$dp" ]; then
    echo "-A $chain -p udp --dport 53 -j REDIRECT --to-ports $dp"
    echo "-A $chain -p tcp --dport 53 -j REDIRECT --to-ports $dp"
  fi
  for c in $ex; do echo "-A $chain -p tcp -d $c -j RETURN"; done
  for l in $listeners; do
    if [ "$fam" = 4 ]; then
      echo "-A $chain -p tcp -m owner --uid-owner ${l%%=*} -j REDIRECT --to-ports ${l#*=}"
    else
      # A listener's agent has no IPv6 listener: its IPv6 stays unredirected and the filter drops it.
      echo "-A $chain -m owner --uid-owner ${l%%=*} -j RETURN"
    fi
  done
  [ -z "$tp" ] || echo "-A $chain -p tcp -j REDIRECT --to-ports $tp"
  echo 'COMMIT'
  echo '*filter'
  echo ":$chain - [0:0]"
  echo "-A $chain -m owner --uid-owner $sidecar_uid -j RETURN"
  # Replies of connections that came in, and ICMP errors about allowed ones; no new flow is either.
  echo "-A $chain -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN"
  ports=$tp
  for l in $listeners; do [ "$fam" = 6 ] || ports="$ports ${l#*=}"; done
  # The sidecar's ports, redirected to or not (a REDIRECT onto the same address and port is no NAT
  # to conntrack): the listener refuses its own address itself (own_listener), and records it.
  for p in $ports; do echo "-A $chain -p tcp -d $lo --dport $p -j RETURN"; done
  if [ -n "$dp" ]; then
    echo "-A $chain -p udp -d $lo --dport $dp -j RETURN"
    echo "-A $chain -p tcp -d $lo --dport $dp -j RETURN"
  fi
  for c in $ex; do echo "-A $chain -p tcp -d $c -j RETURN"; done
  if [ "$fam" = 6 ]; then
    # Neighbour discovery: without it no IPv6 packet, not even a reply, finds the next hop.
    for t in router-solicitation neighbour-solicitation neighbour-advertisement; do
      echo "-A $chain -p ipv6-icmp --icmpv6-type $t -j RETURN"
    done
  fi
  # A refused TCP connect fails at once (host unreachable) instead of hanging until its timeout:
  # a client trying IPv6 first falls back to IPv4 straight away.
  if [ "$fam" = 4 ]; then
    echo "-A $chain -p tcp -j REJECT --reject-with icmp-admin-prohibited"
  else
    echo "-A $chain -p tcp -j REJECT --reject-with icmp6-adm-prohibited"
  fi
  echo "-A $chain -j DROP"
  echo 'COMMIT'
}

iptables_plan() {
  for fam in 4 6; do
    if [ "$fam" = 4 ]; then ipt=iptables; else ipt=ip6tables; fi
    echo "$ipt-restore --noflush <<'RULES'"
    iptables_rules "$fam"
    echo 'RULES'
    for table in nat filter; do
      echo "$ipt -t $table -C OUTPUT -j $chain 2>/dev/null || $ipt -t $table -I OUTPUT 1 -j $chain"
    done
  done
}

iptables_remove_plan() {
  for ipt in iptables ip6tables; do
    for table in nat filter; do
      echo "while $ipt -t $table -D OUTPUT -j $chain 2>/dev/null; do :; done"
      echo "$ipt -t $table -F $chain 2>/dev/null || true"
      echo "$ipt -t $table -X $chain 2>/dev/null || true"
    done
  done
}

# --- nft ----------------------------------------------------------------------------------------
# One table of our own for both families, replaced in one transaction: "table" creates it if
# absent so that "delete table" cannot fail, then the whole table is defined anew.

nft_set() { # words -> "{ a, b }" or "a"
  set -- $*
  [ $# -ne 1 ] || { echo "$1"; return; }
  out="{ $1"
  shift
  for w in "$@"; do out="$out, $w"; done
  echo "$out }"
}

nft_plan() {
  echo "nft -f - <<'RULES'"
  echo 'table inet chronoguard'
  echo 'delete table inet chronoguard'
  echo 'table inet chronoguard {'
  echo '  chain nat_output {'
  echo '    type nat hook output priority -100; policy accept;'
  echo "    meta skuid $sidecar_uid return"
  if [ -n "$dnsport" ]; then
    echo "    meta nfproto ipv4 udp dport 53 redirect to :$dnsport"
    echo "    meta nfproto ipv4 tcp dport 53 redirect to :$dnsport"
  fi
  [ -z "$ex4" ] || echo "    meta l4proto tcp ip daddr $(nft_set $ex4) return"
  [ -z "$ex6" ] || echo "    meta l4proto tcp ip6 daddr $(nft_set $ex6) return"
  for l in $listeners; do
    echo "    meta nfproto ipv4 meta l4proto tcp meta skuid ${l%%=*} redirect to :${l#*=}"
    echo "    meta nfproto ipv6 meta skuid ${l%%=*} return"
  done
  [ -z "$tport" ] || echo "    meta nfproto ipv4 meta l4proto tcp redirect to :$tport"
  [ -z "$t6port" ] || echo "    meta nfproto ipv6 meta l4proto tcp redirect to :$t6port"
  echo '  }'
  echo '  chain filter_output {'
  echo '    type filter hook output priority 0; policy accept;'
  echo "    meta skuid $sidecar_uid return"
  echo '    ct state established,related return'
  ports=$tport
  for l in $listeners; do ports="$ports ${l#*=}"; done
  [ -z "$(echo $ports)" ] || echo "    ip daddr 127.0.0.1 tcp dport $(nft_set $ports) return"
  [ -z "$t6port" ] || echo "    ip6 daddr ::1 tcp dport $t6port return"
  if [ -n "$dnsport" ]; then
    echo "    ip daddr 127.0.0.1 udp dport $dnsport return"
    echo "    ip daddr 127.0.0.1 tcp dport $dnsport return"
  fi
  [ -z "$ex4" ] || echo "    meta l4proto tcp ip daddr $(nft_set $ex4) return"
  [ -z "$ex6" ] || echo "    meta l4proto tcp ip6 daddr $(nft_set $ex6) return"
  echo '    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } return'
  echo '    meta l4proto tcp reject with icmpx admin-prohibited'
  echo '    drop'
  echo '  }'
  echo '}'
  echo 'RULES'
}

nft_remove_plan() {
  echo "nft -f - <<'RULES'"
  echo 'table inet chronoguard'
  echo 'delete table inet chronoguard'
  echo 'RULES'
}

# --- run ----------------------------------------------------------------------------------------

have() { command -v "$1" >/dev/null 2>&1; }

# Runs a plan (the text --dry-run prints) with sh -e; on failure, the first line the tools said.
run_plan() { # description plan
  err=$(sh -ec "$2" 2>&1 >/dev/null) && return 0
  echo "$me: $1 failed: $(printf '%s\n' "$err" | grep -v '^$' | head -n 1)" >&2
  return 1
}

if [ "$backend" = auto ]; then
  if have iptables-restore && have ip6tables-restore; then chosen=iptables
  elif have nft; then chosen=nft
  else fail "neither iptables (with ip6tables) nor nft is installed: the init image needs one of them"
  fi
else
  chosen=$backend
  if [ "$chosen" = iptables ]; then
    have iptables-restore && have ip6tables-restore || fail "--backend iptables: iptables-restore or ip6tables-restore is not installed"
  else
    have nft || fail "--backend nft: nft is not installed"
  fi
fi

if $remove; then
  plan=
  have iptables && plan=$(iptables_remove_plan)
  have nft && plan="$plan
$(nft_remove_plan)"
  if $dry_run; then printf '%s\n' "$plan"; exit 0; fi
  run_plan "removing the rules" "$plan" || exit 1
  echo "$me: rules removed"
  exit 0
fi

if [ "$chosen" = iptables ]; then plan=$(iptables_plan); else plan=$(nft_plan); fi
if $dry_run; then
  printf '%s\n' "$plan"
  exit 0
fi

summary="sidecar uid $sidecar_uid, tcp -> ${tport:-none}, tcp6 -> ${t6port:-dropped}, dns -> ${dnsport:-none}, excluded${ex4:- none}${ex6}${listeners:+, listeners$listeners}"
if run_plan "$chosen" "$plan"; then
  echo "$me: $chosen rules installed ($summary)"
  exit 0
fi
if [ "$backend" = auto ] && [ "$chosen" = iptables ] && have nft; then
  # Leave no half of the iptables rules behind beside the nft ones.
  sh -c "$(iptables_remove_plan)" 2>/dev/null || true
  echo "$me: falling back to nft" >&2
  run_plan nft "$(nft_plan)" || exit 1
  echo "$me: nft rules installed ($summary)"
  exit 0
fi
exit 1
