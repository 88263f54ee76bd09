#!/usr/bin/env bash
# make demo: a 3-node cluster on this machine running seed use case 1, replicating to the
# DR node, rehearsing DR there (a drill), failing over when n1 dies, and activating DR on
# n3 with one command.
# make demo-down removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."

export FERRY_TESTBED_DIR=${FERRY_TESTBED_DIR:-/var/tmp/ferry-demo}
export FERRY_TESTBED_PREFIX=${FERRY_TESTBED_PREFIX:-ferry-demo-}
PY=$PWD/.venv/bin/python
FERRY=$PWD/.venv/bin/ferry
TB="$PY -m tests.testbed"
STARTED=$(date +%s)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
on() { local node=$1; shift; $TB exec "$node" -- "$@"; }
fail() {
  printf '\n\033[31mdemo failed: %s\033[0m\n' "$*" >&2
  echo "cleaning up (make demo-down)..." >&2
  $TB down >/dev/null 2>&1 || true
  exit 1
}
trap 'fail "a command failed (line $LINENO)"' ERR
trap 'rm -f /tmp/ferry-demo-svc1.conf' EXIT

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for: $what"
    sleep 0.5
  done
}

avail_on() {  # avail_on NODE STATUS
  on "$1" "$FERRY" svc1 print status -o json | "$PY" -c \
    "import json,sys; sys.exit(0 if json.load(sys.stdin)['avail']=='$2' else 1)"
}

standby_up() {  # standby_up NODE: fs#0 and fs#1 are stdby up there
  on "$1" "$FERRY" svc1 print status -o json | "$PY" -c \
    "import json,sys; r=json.load(sys.stdin)['resources']; sys.exit(0 if all(r[x]['status']=='stdby up' for x in ('fs#0','fs#1')) else 1)"
}

node_dead() {  # node_dead OBSERVER NODE
  on "$1" "$FERRY" mon -o json | "$PY" -c \
    "import json,sys; n={x['name']: x for x in json.load(sys.stdin)['nodes']}; sys.exit(0 if n.get('$2', {}).get('state') != 'up' else 1)"
}

step "1. a cluster of three nodes: n1 and n2 share a disk (primary site), n3 is the DR site"
$TB up --ferryd
$TB status

step "2. deploy seed use case 1 (conf.d/uc1-failover/svc1.conf): created on n1, it reaches n2 and n3"
CONF=/tmp/ferry-demo-svc1.conf   # /tmp is visible inside the nodes
sed 's/^drpnodes = n3$/drpnodes = n3\nsync_schedule = @1/' conf.d/uc1-failover/svc1.conf > "$CONF"
on n1 "$FERRY" svc1 create --config "$CONF"
on n1 "$FERRY" svc1 validate config

step "3. the service's private Docker engine lives on the shared disk: load the images once"
on n1 "$FERRY" svc1 start --local --rid fs#0,fs#1
on n1 sh -c "docker save google/pause opensvc/nginx:build5 | $FERRY svc1 docker -- load"
on n1 "$FERRY" svc1 stop --local --force
echo "turn automatic failover on (the change reaches every node):"
on n1 "$FERRY" svc1 set --kw DEFAULT.orchestrate=ha

step "4. start it (the daemon places it on the leader, n1; every node's instance is thawed) and write some data"
on n1 "$FERRY" svc1 start --wait --time 120
wait_for 60 "svc1 up on n1" avail_on n1 up
on n1 sh -c 'date > /srv/svc1/data/written-on-n1; echo "hello from the primary site" >> /srv/svc1/data/written-on-n1'
on n2 "$PY" -c "import urllib.request; print('HTTP', urllib.request.urlopen('http://10.0.3.3/', timeout=5).status, 'from 10.0.3.3, seen from n2')"

step "5. replicate to the DR node n3 (btrfs snapshots + docker images)"
echo "n3 keeps its standby filesystems mounted (standby@drpnodes = true) to receive:"
wait_for 60 "n3's standby filesystems" standby_up n3
on n1 "$FERRY" svc1 sync all --wait --time 300
on n1 "$FERRY" svc1 print status

step "6. rehearse before the disaster: a drill on n3 (an isolated bubble; production and replication go on)"
on n3 "$FERRY" svc1 drill --yes --check 'wget -qO- http://10.0.3.3/ && cat /srv/svc1/data/written-on-n1'
on n2 "$PY" -c "import urllib.request; print('HTTP', urllib.request.urlopen('http://10.0.3.3/', timeout=5).status, 'from production, seen from n2, after the drill')"

step "7. n1 dies: the cluster fails over to n2"
KILLED=$(date +%s%N)
$TB kill n1
wait_for 90 "svc1 up on n2" avail_on n2 up
UP=$(date +%s%N)
ELAPSED_MS=$(( (UP - KILLED) / 1000000 ))
printf 'failover: svc1 up on n2 %d.%01d s after n1 was killed\n' $((ELAPSED_MS / 1000)) $(((ELAPSED_MS % 1000) / 100))
on n2 cat /srv/svc1/data/written-on-n1
on n2 "$FERRY" svc1 print status

step "8. the whole primary site is lost: activate DR on n3 with one command"
on n2 "$FERRY" svc1 sync all --wait --time 300 || true
$TB kill n2
wait_for 30 "n3 to see n2 dead" node_dead n3 n2
on n3 "$FERRY" svc1 takeover --yes --wait --time 300
wait_for 90 "svc1 up on n3" avail_on n3 up
on n3 cat /srv/svc1/data/written-on-n1
on n3 "$FERRY" svc1 print status
on n3 "$FERRY" mon once

trap - ERR
step "done in $(( $(date +%s) - STARTED )) s. The cluster is still running:"
cat <<EOF
  python -m tests.testbed status                      # nodes, links, daemons
  python -m tests.testbed exec n3 -- $FERRY svc1 print status
  python -m tests.testbed exec n3 -- $FERRY mon once
  python -m tests.testbed revive n1                   # bring the primary site back
  make demo-down                                      # remove everything
(set FERRY_TESTBED_DIR=$FERRY_TESTBED_DIR FERRY_TESTBED_PREFIX=$FERRY_TESTBED_PREFIX first)
EOF
