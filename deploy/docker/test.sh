#!/usr/bin/env bash
# Builds Ferry's container image and runs deploy/docker/compose.yaml with podman, end to end:
#
#  1. base images, each only when missing (cached in podman's image store): `debian:12` and
#     `debian:12-slim` from `debootstrap --variant=minbase bookworm` + `podman import`, and
#     stand-ins for `redis:7` and `postgres:15` built FROM them with Debian's packages
#     (deploy/docker/test/redis, .../postgres; real images of those names are used when present);
#  2. `ferry:latest` from deploy/docker/Dockerfile (its size is checked against a budget);
#  3. `compose up` (Redis, PostgreSQL, server, 2 workers, scheduler), then every health check;
#  4. examples/hello.yaml applied through the API, a signed webhook sent to the published port,
#     the run followed to `succeeded`;
#  5. a slow run (deploy/docker/test/slow.yaml): the worker container running it is killed with
#     `podman kill -s KILL`; the run must succeed on the other worker without redoing its
#     finished step;
#  6. a fresh worker container's start-up time (`podman run` to its `worker.started` log line);
#  7. `compose stop` (every Ferry process must exit 0 on SIGTERM), `compose down -v`; nothing of
#     the stack may remain.
#
# Run from anywhere, as root (podman runs rootful here): deploy/docker/test.sh
# It installs what is missing with `scripts/setup.sh containers`. CI runs it when
# FERRY_CONTAINER_TESTS=1 (scripts/test.sh). docs/operations.md §6 describes the podman route.
#
# Environment:
#   FERRY_CONTAINER_STATE   podman settings and work files (default ~/.cache/ferry-containers)
#   FERRY_DEBIAN_MIRROR     Debian archive for debootstrap (default http://deb.debian.org/debian)
#   FERRY_IMAGE_BUDGET_MB   largest accepted size of ferry:latest (default 120)
#   FERRY_CONTAINER_KEEP=1  leave the stack up when a step fails, for inspection
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

state=${FERRY_CONTAINER_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-containers}
mirror=${FERRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${FERRY_DEBIAN_SECURITY_MIRROR:-${mirror%/debian}/debian-security}
budget_mb=${FERRY_IMAGE_BUDGET_MB:-120}
project="ferry-test-$$"
started=$(date +%s)

log() { printf '[%4ds] %s\n' "$(($(date +%s) - started))" "$*" >&2; }
die() {
  log "FAIL: $*"
  exit 1
}

# --- tools and podman settings ----------------------------------------------------------------
for tool in podman runc podman-compose debootstrap curl openssl python3; do
  if ! command -v "$tool" >/dev/null; then
    ./scripts/setup.sh containers
    break
  fi
done
mkdir -p "$state"
# What makes Debian 12's podman 4.3 run containers on hosts like CI's: runc (crun fails on hybrid
# cgroup layouts), cgroupfs (no systemd as PID 1), and no default ulimits (setting RLIMIT_NPROC /
# NOFILE is refused in nested setups). A file of our own: the host's podman settings stay as they are.
cat >"$state/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_CONF="$state/containers.conf"

# A Python expression over the JSON document on stdin (`d`), printed (JSON for lists and maps).
json() {
  python3 -c 'import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1], {"d": d})
print(v if isinstance(v, str) else json.dumps(v))' "$1"
}

# --- 1. base images ---------------------------------------------------------------------------
prepare_base() {
  if podman image exists debian:12 && podman image exists debian:12-slim; then
    log "base images debian:12, debian:12-slim: present"
    return
  fi
  local rootfs="$state/rootfs"
  rm -rf "$rootfs"
  log "debootstrap --variant=minbase bookworm from $mirror (a few minutes; log: $state/debootstrap.log)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $state/debootstrap.log"
  # What Debian's official images carry: the three suites, no cached packages or lists, and no
  # host identity files (the container runtime provides them).
  rm -f "$rootfs/etc/apt/sources.list" "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
APT::Keep-Downloaded-Packages "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/*
  local changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'CMD ["bash"]')
  tar -C "$rootfs" -c . | podman import -q "${changes[@]}" - debian:12 >/dev/null
  # slim: no documentation, manual pages or translations, now or from later installs.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/*
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  tar -C "$rootfs" -c . | podman import -q "${changes[@]}" - debian:12-slim >/dev/null
  rm -rf "$rootfs"
  log "base images debian:12, debian:12-slim: imported"
}

# Builds a stand-in from deploy/docker/test/<dir> unless an image of that name exists: a real
# one is used as it is; a stand-in is rebuilt when its files changed (label org.ferry.standin).
prepare_standin() {
  local name=$1 dir=$2 digest have
  digest=$(cd "$dir" && find . -type f | sort | xargs sha256sum | sha256sum | cut -c1-16)
  if podman image exists "$name"; then
    have=$(podman image inspect --format '{{index .Config.Labels "org.ferry.standin"}}' "$name")
    if [ -z "$have" ] || [ "$have" = "<no value>" ]; then
      log "$name: present (not a stand-in)"
      return
    fi
    if [ "$have" = "$digest" ]; then
      log "$name: stand-in present"
      return
    fi
  fi
  log "$name: building the stand-in from $dir"
  podman build --pull=never --label "org.ferry.standin=$digest" -t "$name" "$dir" \
    >"$state/standin-${name%%:*}.log" 2>&1 ||
    die "building $name failed; see $state/standin-${name%%:*}.log"
}

# --- 3-7. the stack ---------------------------------------------------------------------------
compose() {
  podman-compose -p "$project" -f deploy/docker/compose.yaml -f deploy/docker/test/compose.test.yaml \
    "$@"
}
containers_of() {  # [service]: container names of this stack (of one service)
  local filter=(--filter "label=com.docker.compose.project=$project")
  if [ $# -gt 0 ]; then filter+=(--filter "label=com.docker.compose.service=$1"); fi
  podman ps -a "${filter[@]}" --format '{{.Names}}' | sort
}

finished=0
extra_worker=""
teardown() {
  local rc=$?
  if [ "$finished" != 1 ]; then
    for c in $(containers_of) $extra_worker; do
      echo "----- $c ($(podman inspect -f '{{.State.Status}} exit {{.State.ExitCode}}' "$c" 2>/dev/null)): last lines" >&2
      podman logs --tail 30 "$c" >&2 2>&1 || true
    done
    if [ "${FERRY_CONTAINER_KEEP:-}" = 1 ]; then
      log "stack $project left running (FERRY_CONTAINER_KEEP=1); remove it with:"
      log "  podman-compose -p $project -f deploy/docker/compose.yaml down -v; podman network rm ${project}_default"
      exit "$rc"
    fi
  fi
  if [ -n "$extra_worker" ]; then podman rm -f "$extra_worker" >/dev/null 2>&1 || true; fi
  compose down -v -t 45 >"$state/compose-down.log" 2>&1 || true
  # podman-compose 1.0.3 leaves the network it created.
  podman network rm -f "${project}_default" >/dev/null 2>&1 || true
  exit "$rc"
}

api() {  # METHOD PATH [BODY]: the API answer on stdout; fails on a non-2xx status
  local method=$1 path=$2 body=${3:-} out code
  out=$(mktemp)
  code=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "$base$path" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    ${body:+--data-binary "$body"}) || code=000
  body=$(cat "$out")
  rm -f "$out"
  [ "${code:0:1}" = 2 ] || die "$method $path: HTTP $code: $body"
  printf '%s\n' "$body"
}

wait_run() {  # ID SECONDS: waits for the run to succeed; fails when it fails or time runs out
  local id=$1 deadline=$(($(date +%s) + $2)) run status
  while :; do
    run=$(api GET "/api/v1/runs/$id")
    status=$(json 'd["run"]["status"]' <<<"$run")
    case "$status" in
      succeeded)
        echo "$run"
        return 0
        ;;
      failed | cancelled) die "run $id ended $status: $run" ;;
    esac
    [ "$(date +%s)" -lt "$deadline" ] || die "run $id still $status after $2 s: $run"
    sleep 0.5
  done
}

main() {
  prepare_base
  prepare_standin redis:7 deploy/docker/test/redis
  prepare_standin postgres:15 deploy/docker/test/postgres

  # --- 2. the image ---
  local t0 t1
  log "building ferry:latest (log: $state/image-build.log)"
  t0=$(date +%s)
  podman build --format docker --pull=never --ignorefile deploy/docker/Dockerfile.dockerignore \
    -f deploy/docker/Dockerfile -t ferry:latest . >"$state/image-build.log" 2>&1 ||
    {
      tail -40 "$state/image-build.log" >&2
      die "image build failed; see $state/image-build.log"
    }
  t1=$(date +%s)
  local size_mb
  size_mb=$(($(podman image inspect --format '{{.Size}}' ferry:latest) / 1000000))
  log "ferry:latest built in $((t1 - t0)) s: $size_mb MB"
  [ "$size_mb" -lt "$budget_mb" ] || die "ferry:latest is $size_mb MB, over the $budget_mb MB budget"
  local who
  who=$(podman run --rm --entrypoint id ferry:latest 2>/dev/null) || die "cannot run ferry:latest"
  [ "$who" = "uid=10001(ferry) gid=10001(ferry) groups=10001(ferry)" ] ||
    die "ferry:latest runs as $who, not as user and group ferry (10001)"

  # --- 3. the stack ---
  if [ -n "$(podman ps -a --filter "label=com.docker.compose.project=$project" -q)" ]; then
    die "containers of project $project exist already"
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  base="http://127.0.0.1:$port"
  export FERRY_PUBLISH="127.0.0.1:$port"
  export HELLO_WEBHOOK_SECRET
  HELLO_WEBHOOK_SECRET=$(openssl rand -hex 16)
  trap teardown EXIT
  log "compose up: project $project, API published on $base"
  compose up -d >"$state/compose-up.log" 2>&1 || {
    cat "$state/compose-up.log" >&2
    die "compose up failed"
  }
  local all
  all=$(containers_of)
  [ "$(wc -w <<<"$all")" = 6 ] || die "expected 6 containers, found: $all"
  [ "$(containers_of worker | wc -l)" = 2 ] || die "expected 2 workers: $(containers_of worker)"

  # Health checks: run each container's own check until it passes (podman schedules them with
  # systemd timers, which a host without systemd lacks, so this does not rely on that).
  local deadline=$(($(date +%s) + 180)) pending c
  while :; do
    pending=""
    for c in $all; do
      if ! podman healthcheck run "$c" >/dev/null 2>&1; then pending+=" $c"; fi
    done
    [ -n "$pending" ] || break
    [ "$(date +%s)" -lt "$deadline" ] || die "health checks still failing after 180 s:$pending"
    sleep 1
  done
  log "all 6 containers healthy"

  # --- 4. hello through the API and a signed webhook ---
  local server
  server=$(containers_of server)
  token=$(podman exec "$server" ferry token create container-test --scopes apply,secret:HELLO_WEBHOOK 2>"$state/token.err") ||
    die "ferry token create failed in $server: $(cat "$state/token.err")"
  local source body ts sig answer run_id run
  source=$(python3 -c 'import json, sys; print(json.dumps({"source": open(sys.argv[1]).read()}))' \
    examples/hello.yaml)
  answer=$(api POST /api/v1/workflows "$source")
  log "applied examples/hello.yaml: version $(json 'd["version"]["version"] if isinstance(d["version"], dict) else d["version"]' <<<"$answer")"
  body='{"who":"Podman"}'
  ts=$(date +%s)
  sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$HELLO_WEBHOOK_SECRET" | sed 's/^.* //')
  answer=$(curl -sS -X POST "$base/hooks/hello" -H 'Content-Type: application/json' \
    -H "X-Ferry-Timestamp: $ts" -H "X-Ferry-Signature: sha256=$sig" --data-binary "$body" \
    -w '\n%{http_code}')
  [ "$(tail -1 <<<"$answer")" = 202 ] || die "webhook answered $answer"
  run_id=$(head -1 <<<"$answer" | json 'd["run_id"]')
  run=$(wait_run "$run_id" 60)
  grep -q 'Hello, Podman!' <<<"$run" || die "run $run_id succeeded without the greeting: $run"
  log "webhook run $run_id succeeded on $(json 'd["run"]["worker"]' <<<"$run")"

  # --- 5. kill the worker running a slow run ---
  source=$(python3 -c 'import json, sys; print(json.dumps({"source": open(sys.argv[1]).read()}))' \
    deploy/docker/test/slow.yaml)
  api POST /api/v1/workflows "$source" >/dev/null
  run_id=$(api POST /api/v1/runs '{"workflow":"slow"}' | json 'd["run"]["id"]')
  local worker="" mark_at="" steps
  deadline=$(($(date +%s) + 60))
  while :; do
    run=$(api GET "/api/v1/runs/$run_id")
    steps=$(json '{s["node"]: s["status"] for s in d["run"]["steps"]}' <<<"$run")
    if [ "$(json 'd["run"]["status"]' <<<"$run")" = running ] && grep -q '"mark": "succeeded"' <<<"$steps"; then
      worker=$(json 'd["run"]["worker"]' <<<"$run")
      mark_at=$(json '[s["finished_at"] for s in d["run"]["steps"] if s["node"] == "mark"][0]' <<<"$run")
      break
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "run $run_id did not reach its nap: $run"
    sleep 0.2
  done
  local victim="" survivor="" host
  for c in $(containers_of worker); do
    host=$(podman inspect -f '{{.Config.Hostname}}' "$c")
    if [ "${worker#"$host"-}" != "$worker" ]; then victim=$c; else survivor=$c; fi
  done
  [ -n "$victim" ] && [ -n "$survivor" ] || die "run $run_id runs on $worker, which is no worker container of this stack"
  podman kill -s KILL "$victim" >/dev/null
  log "run $run_id in its nap on $victim ($worker): killed it with SIGKILL"
  run=$(wait_run "$run_id" 150)
  local final_worker survivor_host
  final_worker=$(json 'd["run"]["worker"]' <<<"$run")
  survivor_host=$(podman inspect -f '{{.Config.Hostname}}' "$survivor")
  [ "${final_worker#"$survivor_host"-}" != "$final_worker" ] ||
    die "run $run_id finished on $final_worker, not on the other worker $survivor ($survivor_host)"
  [ "$(json '[s["finished_at"] for s in d["run"]["steps"] if s["node"] == "mark"][0]' <<<"$run")" = "$mark_at" ] ||
    die "step mark ran again after the kill: $run"
  log "run $run_id succeeded on $survivor ($final_worker), resumed after its finished step"
  log "killed container now: $(podman inspect -f '{{.State.Status}}, exit code {{.State.ExitCode}}, restarted {{.RestartCount}} times' "$victim")"

  # --- 6. a fresh worker container's start-up, and the image's own HEALTHCHECK ---
  # (podman's complaints that it cannot schedule health checks without systemd go to a file.)
  local t_start seen=""
  extra_worker="${project}_worker_startup"
  t_start=$(date +%s%3N)
  podman run -d --name "$extra_worker" --network "${project}_default" \
    --env-file deploy/docker/ferry.env ferry:latest \
    worker start --health-port 9101 --health-host 0.0.0.0 >/dev/null 2>"$state/extra-worker.err" ||
    die "podman run of a worker failed: $(cat "$state/extra-worker.err")"
  deadline=$(($(date +%s) + 60))
  while [ -z "$seen" ]; do
    seen=$(podman logs "$extra_worker" 2>&1 | grep -m1 '"msg":"worker.started' || true)
    [ -n "$seen" ] || [ "$(date +%s)" -lt "$deadline" ] || die "$extra_worker logged no worker.started"
    [ -n "$seen" ] || sleep 0.05
  done
  local ready_ms startup_ms stop_s
  ready_ms=$(json 'd["ts"]' <<<"$seen" | python3 -c 'import sys, datetime
t = datetime.datetime.strptime(sys.stdin.read().strip(), "%Y-%m-%dT%H:%M:%S.%fZ")
print(int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))')
  startup_ms=$((ready_ms - t_start))
  log "worker container start-up (podman run to worker.started): $startup_ms ms"
  deadline=$(($(date +%s) + 30))
  until podman healthcheck run "$extra_worker" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "the image's HEALTHCHECK fails on $extra_worker"
    sleep 0.2
  done
  log "the image's HEALTHCHECK passes on $extra_worker"
  t0=$(date +%s%3N)
  podman stop -t 45 "$extra_worker" >/dev/null 2>>"$state/extra-worker.err"
  stop_s=$(($(date +%s%3N) - t0))
  [ "$(podman inspect -f '{{.State.ExitCode}}' "$extra_worker")" = 0 ] ||
    die "$extra_worker exited $(podman inspect -f '{{.State.ExitCode}}' "$extra_worker") on SIGTERM"
  log "idle worker container stopped on SIGTERM in $stop_s ms, exit 0"
  podman rm "$extra_worker" >/dev/null 2>>"$state/extra-worker.err"
  extra_worker=""

  # --- 7. stop, then down ---
  compose stop -t 45 >"$state/compose-stop.log" 2>&1 || die "compose stop failed"
  local code
  local stopped=("$survivor")
  # podman may have restarted the killed worker (restart: unless-stopped); then it stops too.
  if [ "$(podman inspect -f '{{.RestartCount}}' "$victim")" != 0 ]; then stopped+=("$victim"); fi
  for c in $(containers_of server) $(containers_of scheduler) "${stopped[@]}"; do
    code=$(podman inspect -f '{{.State.ExitCode}}' "$c")
    [ "$code" = 0 ] || die "$c exited $code on SIGTERM (expected 0)"
  done
  log "compose stop: server, scheduler and worker(s) exited 0 on SIGTERM"
  compose down -v -t 45 >"$state/compose-down.log" 2>&1 || die "compose down failed"
  podman network rm -f "${project}_default" >/dev/null 2>&1 || true
  local left
  left="$(containers_of)$(podman volume ls -q --filter "label=io.podman.compose.project=$project")"
  left+="$(podman network ls -q --filter "name=^${project}_")"
  [ -z "$left" ] || die "left behind after down -v: $left"
  finished=1
  trap - EXIT
  log "compose down -v: no container, volume or network of $project left"
  log "PASS: image $size_mb MB, worker container start-up $startup_ms ms, total $(($(date +%s) - started)) s"
}

main "$@"; exit
