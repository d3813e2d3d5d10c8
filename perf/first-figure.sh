#!/usr/bin/env bash
# First load figure for the proxy core (issue 2): forwarded requests/s and new CONNECT+TLS tunnels/s,
# chronoguard vs squid, one run, loopback, with `hey` as the client and nginx as the origin.
# The full side-by-side harness is perf/compare; this is the quick version.
# Usage: perf/first-figure.sh [seconds-per-cell] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conc=${2:-32}
need=()
for p in squid:squid nginx:nginx-light hey:hey openssl:openssl; do
  command -v "${p%%:*}" >/dev/null || need+=("${p##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
[ -x artifacts/chronoguard ] || dotnet publish src/ChronoGuard.Sidecar -c Release -o artifacts >/dev/null

work=$(mktemp -d)
# squid drops to its own user and must be able to write its logs here.
chmod 755 "$work"; touch "$work/squid-access.log" "$work/squid-cache.log"; chmod 666 "$work"/squid-*.log
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 -subj /CN=localhost >/dev/null 2>&1
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:18080; location / { return 200 "hello\n"; } }
  server { listen 127.0.0.1:18443 ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem;
           location / { return 200 "hello\n"; } }
}
NGINX
nginx -c "$work/nginx.conf" & pids+=($!)

cat >"$work/squid.conf" <<SQUID
http_port 127.0.0.1:13128
acl localnet src 127.0.0.1/32
acl origin dst 127.0.0.1/32
acl SSL_ports port 18443
acl Safe_ports port 18080 18443
acl CONNECT method CONNECT
http_access deny !Safe_ports
http_access deny CONNECT !SSL_ports
http_access allow localnet origin
http_access deny all
cache deny all
cache_mem 8 MB
access_log stdio:$work/squid-access.log
cache_log $work/squid-cache.log
pid_filename $work/squid.pid
coredump_dir $work
workers 1
SQUID
squid -N -f "$work/squid.conf" & pids+=($!)
squid_pid=$!

artifacts/chronoguard run --listen 127.0.0.1:13129 --stats 127.0.0.1:19479 --audit-dir "$work/audit" >"$work/cg.log" 2>&1 & pids+=($!)
cg_pid=$!
for port in 18080 18443 13128 13129; do
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

# CPU ticks (utime+stime, all threads) of a process tree: squid forks a worker, so sum its children.
ticks() { local total=0; for p in $(pgrep -P "$1") "$1"; do total=$((total + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $total; }
hz=$(getconf CLK_TCK)
# One cell: requests/s (200s and anything else) and the proxy's CPU milliseconds per 1,000 requests.
cell() {
  local pid=$1; shift
  local before after out n
  before=$(ticks "$pid")
  out=$(hey "$@")
  after=$(ticks "$pid")
  n=$(echo "$out" | grep -E "^\s+\[200\]" | awk '{print $2}')
  printf "%s req/s, %s ok, %s, %.0f CPU ms/1k" "$(echo "$out" | grep -E "Requests/sec" | awk '{printf "%.0f", $2}')" "${n:-0}" \
    "$(echo "$out" | grep -E "^\s+\[[0-9]+\]" | grep -vc "\[200\]") other codes" \
    "$(echo "$after $before ${n:-1} $hz" | awk '{print ($1-$2)*1000/$4*1000/$3}')"
}
echo "| proxy | forwarded, keep-alive, c=$conc | new CONNECT+TLS tunnel per request, c=$conc |"
echo "| --- | --- | --- |"
for name in chronoguard:13129:$cg_pid squid:13128:$squid_pid; do
  IFS=: read -r label port pid <<<"$name"
  fwd=$(cell "$pid" -z "${secs}s" -c "$conc" -x "http://127.0.0.1:$port" http://127.0.0.1:18080/)
  tls=$(cell "$pid" -z "${secs}s" -c "$conc" -disable-keepalive -x "http://127.0.0.1:$port" https://127.0.0.1:18443/)
  echo "| $label | $fwd | $tls |"
done
direct_fwd=$(hey -z "${secs}s" -c "$conc" http://127.0.0.1:18080/ | grep -E "Requests/sec" | awk '{printf "%.0f", $2}')
direct_tls=$(hey -z "${secs}s" -c "$conc" -disable-keepalive https://127.0.0.1:18443/ | grep -E "Requests/sec" | awk '{printf "%.0f", $2}')
echo "| direct (no proxy) | $direct_fwd req/s | $direct_tls req/s |"
