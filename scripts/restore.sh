#!/usr/bin/env bash
# Restore a backup (pg_dump custom format, and the media archive taken with it) from a stack's
# backup volume, or from its restic repository (config backupRepository).
#
#   scripts/restore.sh [--prefix PREFIX] [--from-repository] --list
#   scripts/restore.sh [--prefix PREFIX] [--into DATABASE] [BACKUP]
#   scripts/restore.sh [--prefix PREFIX] [--into DATABASE] --from-repository [SNAPSHOT]
#
#   --prefix PREFIX    the stack's namePrefix (default djangostack-prod): Docker objects are
#                      PREFIX-postgres, PREFIX-backups, PREFIX-backend, PREFIX-web, ...
#   --list             list the backups, newest first (with --from-repository: the
#                      repository's snapshots of every stack), and exit
#   --into DATABASE    restore into a new database DATABASE (created here; must not exist),
#                      e.g. to inspect a backup or check it, leaving the live one alone
#   BACKUP             a file name from --list (default: the newest)
#   --from-repository  first fetch the dump and media archive of SNAPSHOT (a snapshot id from
#                      --list, default: the latest of any stack) from the restic repository
#                      into the backup volume, then restore them like a local backup; needs the
#                      stack's scheduled backup with the same backupRepository (and password)
#                      running: restic runs inside it, with its secrets
#
# Without --into, the live database is replaced (pg_restore --clean --if-exists in a single
# transaction: on any error nothing changes), then the media volume's contents by the backup's
# <name>.media.tar (when there is one: backups older than the media volume have none). Web,
# every process (the Celery worker and the other process types of config `processes`) and the
# scheduled backup are stopped first (Swarm services scaled to 0, or containers stopped) so
# nothing writes during the restore, and started again afterwards, also when it fails.
# --into restores the database only.
#
# The dump is streamed from a throw-away, read-only container that mounts the backup volume
# into pg_restore inside the Postgres container, over its local socket: no password is read
# or passed anywhere, and no port is opened.
set -euo pipefail
source "$(dirname "$0")/lib/backups.sh"

prefix=djangostack-prod
list=0
into=""
backup=""
from_repository=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a value}"; shift 2 ;;
    --list) list=1; shift ;;
    --into) into="${2:?--into needs a database name}"; shift 2 ;;
    --from-repository) from_repository=1; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) backup="$1"; shift ;;
  esac
done
stack_postgres "$prefix"

if [ "$from_repository" = 1 ]; then
  backup_process "$prefix"
  if [ "$list" = 1 ]; then
    in_restic 'restic --no-cache snapshots --tag "$BACKUP_TAG"'
    exit 0
  fi
  backup="$(fetch_snapshot "${backup:-latest}")"
fi

backups="$(in_backups sh -c 'cd /backups && ls -1t -- *.dump 2>/dev/null || true')"
if [ "$list" = 1 ]; then
  [ -z "$backups" ] || echo "$backups"
  exit 0
fi
if [ -z "$backup" ]; then
  backup="$(echo "$backups" | head -n 1)"
  [ -n "$backup" ] || die "no backup in volume $volume"
fi
case "$backup" in */*|.*|"") die "BACKUP must be a file name from --list, got '$backup'" ;; esac
in_backups test -f "/backups/$backup" || die "no backup $backup in $volume (see --list)"

if [ -n "$into" ]; then
  [[ "$into" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "--into must match [a-z_][a-z0-9_]*"
  docker exec "$postgres" createdb -U "$user" "$into"
  in_backups cat "/backups/$backup" |
    docker exec -i "$postgres" pg_restore --exit-on-error --no-owner -U "$user" -d "$into"
  echo "restored $backup into new database $into"
  exit 0
fi

# Stop the writers; whatever happens below, start them again on exit.
declare -A replicas=()
stopped_containers=()
# All at once, stopping and starting: the writers go down and come back together, so the
# outage is the slowest writer's, not the sum of all of theirs.
restart_app() {
  local scales=() service
  for service in "${!replicas[@]}"; do scales+=("$service=${replicas[$service]}"); done
  if [ "${#scales[@]}" -gt 0 ]; then
    timeout 300 docker service scale --detach=false "${scales[@]}" >/dev/null
  fi
  if [ "${#stopped_containers[@]}" -gt 0 ]; then
    docker start "${stopped_containers[@]}" >/dev/null
  fi
}
trap restart_app EXIT
# `docker service scale --detach=false S=0` can wait forever (CLI 28 against engine 20.10):
# wait for the task containers to be gone instead, bounded.
wait_no_tasks() {
  local deadline=$((SECONDS + 180))
  while [ -n "$(docker ps -q --filter "label=com.docker.swarm.service.name=$1")" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "tasks of $1 still running after 180 s"
    sleep 1
  done
}
# The stack's writers: every service or container with an app role (web, celery,
# process) on the stack's backend network (names alone cannot tell PREFIX-x-y of this stack
# from process y of a stack PREFIX-x), and the scheduled backup (role backup), which must not
# take a backup of a half-restored database and media volume.
app_names() {
  echo "$prefix-web"
  local backend role service
  backend="$(docker network inspect -f '{{.Id}}' "$prefix-backend" 2>/dev/null)" || return 0
  for role in web celery process backup; do
    for service in $(docker service ls -q --filter "label=djangostack.role=$role"); do
      docker service inspect -f \
        '{{.Spec.Name}}{{range .Spec.TaskTemplate.Networks}} {{.Target}}{{end}}' "$service" |
        awk -v net="$backend" '{ for (i = 2; i <= NF; i++) if ($i == net) print $1 }'
    done
    # Plain containers only: a Swarm task's container goes and comes with its service.
    docker ps -a --filter "label=djangostack.role=$role" --filter "network=$prefix-backend" \
      --format '{{.Names}} {{.Label "com.docker.swarm.service.id"}}' | awk 'NF == 1 { print $1 }'
  done
}
containers=()
for app in $(app_names | sort -u); do
  if docker service inspect "$app" >/dev/null 2>&1; then
    replicas[$app]="$(docker service inspect -f '{{.Spec.Mode.Replicated.Replicas}}' "$app")"
    docker service scale --detach "$app=0" >/dev/null
  elif docker container inspect "$app" >/dev/null 2>&1; then
    containers+=("$app")
  fi
done
if [ "${#containers[@]}" -gt 0 ]; then
  stopped_containers=("${containers[@]}")
  docker stop "${containers[@]}" >/dev/null  # in parallel, each with its own grace period
fi
for app in "${!replicas[@]}"; do wait_no_tasks "$app"; done
in_backups cat "/backups/$backup" |
  docker exec -i "$postgres" pg_restore --clean --if-exists --single-transaction \
    --exit-on-error --no-owner -U "$user" -d "$database"
echo "restored $backup into $database"
archive="$(media_archive_of "$backup")"
if [ -z "$media" ]; then
  echo "no media volume $prefix-media: media left alone"
elif in_backups test -f "/backups/$archive"; then
  # A readable archive before anything is deleted; then extracted as the app's user (10001),
  # who owns the media volume's files; the volume's root keeps its own owner and mode.
  in_backups tar -tf "/backups/$archive" >/dev/null
  in_backups cat "/backups/$archive" |
    MEDIA_WRITABLE=1 in_media 10001:10001 sh -c 'find /media -mindepth 1 -delete && tar -C /media --no-overwrite-dir -xf -'
  echo "restored $archive into volume $media"
else
  echo "no media archive $archive (a backup older than the media volume): media left alone"
fi
