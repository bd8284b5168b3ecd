#!/usr/bin/env bash
# net_test.sh SCENARIO NET_RANK_BINARY - multi-host tests on one machine. Each test host is a
# network namespace with its own address, its own hostname (UTS namespace) and its own /dev/shm
# (a mount namespace with a fresh tmpfs), so nothing can take a shared-memory shortcut between
# hosts; ranks of one host share its namespaces (and use shm between them). Hosts are joined by
# a veth pair (2 hosts) or a bridge in a namespace of its own (4 hosts). Only addresses created
# here are used (198.18.0.0/24, the benchmarking range, and fd00:f0cc::/64), and every namespace
# is removed on exit. Without root (or without namespaces) a scenario exits 77: ctest's skip.
#   2x1 2x2 4x1   every collective and a fused program, checked exactly (net_rank check)
#   2x2hier       2x2 with FCCL_ALGO=hier: the two-level AllReduce at every size
#   ipv6          2x1 over an IPv6-only link
#   victim        2x1, rank 1 SIGKILLs itself: rank 0 must name it and its host within 1.5 s
#   stranger      2x1 soak; meanwhile junk and silent connections hit both ranks' data ports
#                 from the other host: refused, logged, the collectives go on
#   netem         2x1 over a link with 2 ms delay and 1% loss (sch_netem), or where the kernel
#                 lacks it 1% random loss by nftables and a 200 Mbit/s token bucket
#   errors        a wrong FCCL_SOCKET_IFNAME and an unreachable root fail fast, naming them
#   ucx ucx2x2    2x1 and 2x2 with FCCL_NET=ucx over UCX's tcp transport (NET_UCX=1: built with UCX)
#   ucxvictim     victim over UCX: the endpoint's error names the dead rank and its host
#   fcclrun       fcclrun -n 4 -H h0:2,h1:2 --rsh (ip netns exec into each host, ssh's way)
#                 starts the 2x2 check through fcclCommInitFromEnv; then a rank that fails on
#                 one host ends the job at once with its status (FCCLRUN=path of fcclrun)
set -uo pipefail
scenario=${1:?scenario}
bin=${2:?net_rank binary}
[ -x "$bin" ] || { echo "net_test: $bin is not executable" >&2; exit 2; }

skip() { echo "net_test: SKIP $scenario: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, veth pairs, mounts)"
command -v ip >/dev/null || skip "needs iproute2 (ip)"
command -v unshare >/dev/null || skip "needs unshare (util-linux)"

P=fn$$  # every name made here starts with this
log=$(mktemp -d "${TMPDIR:-/tmp}/fccl-net-$scenario.XXXXXX")
hosts=()
cleanup() {
  for h in "${hosts[@]}" "${P}sw"; do
    ip netns pids "$h" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$h" 2>/dev/null
  done
  if [ "${keep_log:-0}" = 1 ]; then echo "net_test: logs in $log"; else rm -rf "$log"; fi
}
trap cleanup EXIT
ip netns add "${P}probe" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "${P}probe"
unshare --uts --mount true 2>/dev/null || skip "cannot create UTS and mount namespaces here"

addr4() { echo "198.18.0.$(($1 + 1))"; }
addr6() { echo "fd00:f0cc::$(($1 + 1))"; }

# host I: a namespace named ${P}hI with loopback up.
make_host() {
  ip netns add "${P}h$1" && ip -n "${P}h$1" link set lo up && hosts+=("${P}h$1")
}
# addresses on host I's eth0: family 4, 6 or 46.
address_host() {
  local i=$1 fam=$2 ns=${P}h$1
  ip -n "$ns" link set eth0 up
  case $fam in *4*) ip -n "$ns" addr add "$(addr4 "$i")/24" dev eth0 ;; esac
  case $fam in *6*) ip -n "$ns" addr add "$(addr6 "$i")/64" dev eth0 nodad ;; esac
  # No IPv4 at all on an IPv6-only host's link (and no IPv6 on an IPv4-only one).
  case $fam in 4) ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 ;; esac
}
# N hosts: a veth pair for 2, else a bridge in ${P}sw.
make_net() {
  local n=$1 fam=$2
  for ((i = 0; i < n; i++)); do make_host "$i" || return 1; done
  if [ "$n" = 2 ]; then
    ip link add "${P}a" type veth peer name "${P}b" || return 1
    ip link set "${P}a" netns "${P}h0" && ip -n "${P}h0" link set "${P}a" name eth0
    ip link set "${P}b" netns "${P}h1" && ip -n "${P}h1" link set "${P}b" name eth0
  else
    ip netns add "${P}sw" && ip -n "${P}sw" link add br0 type bridge && ip -n "${P}sw" link set br0 up || return 1
    for ((i = 0; i < n; i++)); do
      ip link add "${P}p$i" type veth peer name "${P}q$i" || return 1
      ip link set "${P}p$i" netns "${P}h$i" && ip -n "${P}h$i" link set "${P}p$i" name eth0
      ip link set "${P}q$i" netns "${P}sw" && ip -n "${P}sw" link set "${P}q$i" master br0 up
    done
  fi
  for ((i = 0; i < n; i++)); do address_host "$i" "$fam" || return 1; done
}

# run_host I "RANK..." NRANKS ROOT MODE ARGS...: the ranks of host I, each with its own log
# (log/rankR.out); returns the first nonzero exit status of its ranks.
run_host() {
  local i=$1 ranks=$2 n=$3 root=$4
  shift 4
  local launch="" r
  for r in $ranks; do
    launch+="NET_RANK=$r NET_NRANKS=$n FCCL_COMM_ID=$root \"$bin\" $* >\"$log/rank$r.out\" 2>&1 & pids=\"\$pids \$!\"; "
  done
  timeout -k 5 "${NET_TIMEOUT:-150}" ip netns exec "${P}h$i" unshare --uts --mount --propagation private \
    sh -c "hostname fccl-h$i && mount -t tmpfs -o size=512m tmpfs /dev/shm || exit 3
           pids=''; $launch
           st=0; for p in \$pids; do wait \$p || { c=\$?; [ \$st = 0 ] && st=\$c; }; done; exit \$st"
}

# run_all NHOSTS RANKS_PER_HOST ROOT MODE ARGS...: every host at once; 0 when every rank exits 0.
run_all() {
  local nh=$1 per=$2 root=$3
  shift 3
  local n=$((nh * per)) pids=() st=0 i k ranks
  for ((i = 0; i < nh; i++)); do
    ranks=""
    for ((k = 0; k < per; k++)); do ranks+="$((i * per + k)) "; done
    run_host "$i" "$ranks" "$n" "$root" "$@" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || st=1; done
  return $st
}

show_logs() {
  for f in "$log"/rank*.out; do
    echo "---- $(basename "$f")"
    tail -n 30 "$f"
  done
}

expect_ok() {
  if "$@"; then
    show_logs | grep -E "^----|net_rank:" | grep -v "^$"
    echo "net_test: PASS $scenario"
    exit 0
  fi
  show_logs
  echo "net_test: FAIL $scenario" >&2
  exit 1
}

export FCCL_DEBUG=${FCCL_DEBUG:-WARN}
case $scenario in
  2x1 | 2x2 | 4x1 | 2x2hier)
    [ "$scenario" = 2x2hier ] && export FCCL_ALGO=hier
    nh=${scenario%x*} per=${scenario#*x}
    per=${per%hier}
    make_net "$nh" 4 || skip "cannot build the test network (veth/bridge)"
    expect_ok run_all "$nh" "$per" "$(addr4 0):29500" check
    ;;
  ipv6)
    make_net 2 6 || skip "cannot build the test network"
    export FCCL_SOCKET_FAMILY=AF_INET6
    expect_ok run_all 2 1 "[$(addr6 0)]:29500" check
    ;;
  victim | ucxvictim)
    if [ "$scenario" = ucxvictim ]; then
      [ "${NET_UCX:-0}" = 1 ] || skip "fccl was built without UCX (libucx-dev)"
      export FCCL_NET=ucx UCX_TLS=tcp UCX_NET_DEVICES=eth0
    fi
    make_net 2 4 || skip "cannot build the test network"
    export NET_VICTIM_HOST=fccl-h1 NET_VICTIM_NEIGHBOURS_REMOTE=1
    run_all 2 1 "$(addr4 0):29500" victim 1
    # Rank 1 died by SIGKILL (its host's status says so); rank 0 must have passed its checks.
    show_logs
    if grep -q "allreduce ended" "$log/rank0.out" && ! grep -q "net_rank: rank 0 on .*: expected\|noticed\|does not name" "$log/rank0.out" &&
      grep -q "fcclRemoteError\|remote process exited" "$log/rank0.out"; then
      echo "net_test: PASS $scenario"
      exit 0
    fi
    echo "net_test: FAIL $scenario" >&2
    exit 1
    ;;
  stranger)
    make_net 2 4 || skip "cannot build the test network"
    export FCCL_DEBUG=INFO FCCL_DEBUG_SUBSYS=NET
    run_all 2 1 "$(addr4 0):29500" soak 4 &
    all=$!
    # Each rank's data port, from its INFO line "socket: listening on eth0 ADDR:PORT".
    ports=()
    for r in 0 1; do
      for _ in $(seq 100); do
        l=$(grep -ho "socket: listening on eth0 [0-9.]*:[0-9]*" "$log/rank$r.out" 2>/dev/null | head -1)
        [ -n "$l" ] && break
        sleep 0.05
      done
      ports+=("${l##*:}")
    done
    sleep 0.5
    for r in 0 1; do
      from=$((1 - r))
      [ -n "${ports[$r]}" ] || continue
      # Junk, then a connection that says nothing and hangs up, from the other host.
      ip netns exec "${P}h$from" bash -c "exec 3<>/dev/tcp/$(addr4 "$r")/${ports[$r]} && head -c 4096 /dev/urandom >&3; sleep 0.3" 2>/dev/null
      ip netns exec "${P}h$from" bash -c "exec 3<>/dev/tcp/$(addr4 "$r")/${ports[$r]}; sleep 0.2" 2>/dev/null
    done
    wait $all
    st=$?
    refused=$(cat "$log"/rank*.out | grep -c "refused a connection from 198.18.0.")
    show_logs | grep -E "net_rank: rank [0-9]: [0-9]+ rounds|refused|FAIL|error" | head -20
    if [ $st = 0 ] && [ "${#ports[@]}" = 2 ] && [ "$refused" -ge 2 ]; then
      echo "net_test: PASS $scenario ($refused connections refused, the collectives went on)"
      exit 0
    fi
    show_logs
    echo "net_test: FAIL $scenario (status $st, ${#ports[@]} ports found, $refused refusals)" >&2
    exit 1
    ;;
  netem)
    make_net 2 4 || skip "cannot build the test network"
    if ip netns exec "${P}h0" tc qdisc add dev eth0 root netem delay 2ms loss 1% 2>/dev/null; then
      ip netns exec "${P}h1" tc qdisc add dev eth0 root netem delay 2ms loss 1%
    else
      # No sch_netem in this kernel: 1% of the packets each host receives dropped at random by
      # nftables, and a token bucket (200 Mbit/s, 20 ms of queue) on each sender for the delay
      # that queueing adds. TCP's retransmissions are what this exercises either way.
      command -v nft >/dev/null || skip "neither tc netem (sch_netem) nor nft (nftables) is available"
      for h in 0 1; do
        ip netns exec "${P}h$h" nft -f - <<'NFT' || skip "nftables cannot drop packets at random here"
table inet fcclloss {
  chain input { type filter hook input priority 0; numgen random mod 100 < 1 counter drop; }
}
NFT
        ip netns exec "${P}h$h" tc qdisc add dev eth0 root tbf rate 200mbit burst 64kb latency 20ms ||
          skip "tc tbf is not available"
      done
      echo "net_test: no sch_netem; 1% loss by nftables and a 200 Mbit/s token bucket instead"
      run_all 2 1 "$(addr4 0):29500" check
      st=$?
      dropped=0
      for h in 0 1; do
        n=$(ip netns exec "${P}h$h" nft list table inet fcclloss | grep -o 'packets [0-9]*' | grep -o '[0-9]*')
        dropped=$((dropped + ${n:-0}))
      done
      if [ $st = 0 ] && [ "$dropped" -gt 0 ]; then
        echo "net_test: PASS $scenario ($dropped packets dropped, the check passed)"
        exit 0
      fi
      show_logs
      echo "net_test: FAIL $scenario (status $st, $dropped packets dropped)" >&2
      exit 1
    fi
    expect_ok run_all 2 1 "$(addr4 0):29500" check
    ;;
  errors)
    make_net 2 4 || skip "cannot build the test network"
    FCCL_SOCKET_IFNAME=nosuchif0 NET_TIMEOUT=30 run_all 2 1 "$(addr4 0):29500" check
    st1=$?
    ok=1
    grep -q "FCCL_SOCKET_IFNAME=nosuchif0" "$log/rank1.out" || ok=0
    # A root address nobody has, on the hosts' own subnet: no route answers, not a timeout.
    t0=$(date +%s)
    NET_TIMEOUT=30 run_host 1 1 2 "$(addr4 9):29500" check
    st2=$?
    t1=$(date +%s)
    grep -q "$(addr4 9):29500" "$log/rank1.out" || ok=0
    show_logs
    if [ $st1 != 0 ] && [ $st2 != 0 ] && [ $ok = 1 ] && [ $((t1 - t0)) -lt 25 ]; then
      echo "net_test: PASS $scenario (errors name the interface and the address; $((t1 - t0)) s)"
      exit 0
    fi
    echo "net_test: FAIL $scenario" >&2
    exit 1
    ;;
  ucx | ucx2x2)
    [ "${NET_UCX:-0}" = 1 ] || skip "fccl was built without UCX (libucx-dev)"
    nh=2 per=1
    [ "$scenario" = ucx2x2 ] && per=2
    make_net 2 4 || skip "cannot build the test network"
    # UCX's own tcp transport on the hosts' link: the UCP code path RDMA fabrics take.
    export FCCL_NET=ucx UCX_TLS=tcp UCX_NET_DEVICES=eth0 FCCL_DEBUG=INFO FCCL_DEBUG_SUBSYS=INIT
    run_all "$nh" "$per" "$(addr4 0):29500" check
    st=$?
    used=$(cat "$log"/rank*.out | grep -c "transport ucx to rank")
    show_logs | grep -E "^----|net_rank:|transport|WARN" | grep -v "^$"
    if [ $st = 0 ] && [ "$used" -ge 2 ]; then
      echo "net_test: PASS $scenario (every check over UCX tcp between the hosts)"
      exit 0
    fi
    show_logs
    echo "net_test: FAIL $scenario (status $st, $used ranks chose ucx)" >&2
    exit 1
    ;;
  fcclrun)
    [ -x "${FCCLRUN:-}" ] || { echo "net_test: FCCLRUN is not an executable" >&2; exit 2; }
    make_net 2 4 || skip "cannot build the test network"
    # Each host's UTS and mount namespaces live in a holder process, so that every rank fcclrun
    # starts there (one rsh call each) shares the host's hostname and /dev/shm.
    for i in 0 1; do
      ip netns exec "${P}h$i" unshare --uts --mount --propagation private \
        sh -c "hostname fccl-h$i && mount -t tmpfs -o size=512m tmpfs /dev/shm && exec sleep 600" >/dev/null 2>&1 &
      echo $! >"$log/h$i.pid"
      for _ in $(seq 100); do
        [ "$(nsenter -t "$(cat "$log/h$i.pid")" --uts hostname 2>/dev/null)" = "fccl-h$i" ] && break
        sleep 0.05
      done
    done
    # The remote shell: `rsh HOST 'command line'`, run as ssh runs it (the line goes to sh -c).
    printf '#!/bin/sh\nh=$1; shift\nexec ip netns exec "%s$h" nsenter -t "$(cat "%s/$h.pid")" --uts --mount sh -c "$*"\n' \
      "$P" "$log" >"$log/rsh"
    chmod +x "$log/rsh"
    run=("$FCCLRUN" --rsh "$log/rsh" --master-addr "$(addr4 0)")
    timeout -k 5 150 "${run[@]}" -n 4 -H h0:2,h1:2 "$bin" check >"$log/rank-all.out" 2>&1
    st1=$?
    started=$(grep -c "launcher env" "$log/rank-all.out")
    pairs=$(grep -o "on fccl-h[01], local [01] of 2" "$log/rank-all.out" | sort -u | wc -l)
    t0=$(date +%s)
    timeout -k 5 60 "${run[@]}" -n 2 -H h0,h1 sh -c '[ "$RANK" = 1 ] && exit 3; exec sleep 30' >>"$log/rank-all.out" 2>&1
    st2=$?
    t1=$(date +%s)
    show_logs
    if [ $st1 = 0 ] && [ "$started" = 4 ] && [ "$pairs" = 4 ] && [ $st2 = 3 ] && [ $((t1 - t0)) -lt 15 ]; then
      echo "net_test: PASS $scenario (4 ranks on 2 hosts through --rsh; a failed rank ended the job in $((t1 - t0)) s)"
      exit 0
    fi
    echo "net_test: FAIL $scenario (check: status $st1, $started ranks, $pairs host/local pairs; failing job: status $st2 after $((t1 - t0)) s)" >&2
    exit 1
    ;;
  *)
    echo "net_test: unknown scenario $scenario" >&2
    exit 2
    ;;
esac
