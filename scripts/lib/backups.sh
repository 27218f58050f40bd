# Shared by scripts/backup.sh and scripts/restore.sh (sourced, not run): the stack's Postgres
# container, backup volume and media volume, found by the stack's namePrefix.
#   stack_postgres PREFIX   sets postgres, volume, media, image, user, database (or dies);
#                           media is empty when the stack has no media volume (deployed before it)
#   in_backups CMD...       runs CMD in a throw-away container with the backup volume at
#                           /backups (writable only with BACKUPS_WRITABLE=1)
#   backup_process PREFIX   sets restic_container: the stack's running scheduled backup (or dies)
#   in_restic CMD...        runs CMD in it, with the repository's secrets exported
#   fetch_snapshot SNAPSHOT fetches a snapshot's dump and media archive from the repository into
#                           the backup volume; prints the dump's file name
#   in_media USER CMD...    runs CMD as USER in a throw-away container with the media volume
#                           at /media (writable only with MEDIA_WRITABLE=1); volume-nocopy: the
#                           image's own /media (root's) must never be copied up into an empty
#                           volume, which would hand the volume's root to root
# Backup files are private to the Postgres image's user (999, umask 077): media archives are
# streamed between the two containers, never read across users.

# A media archive sits next to its dump: <db>-<ts>.dump -> <db>-<ts>.media.tar
# (components/jobs.py MEDIA_ARCHIVE_SUFFIX).
MEDIA_ARCHIVE_SUFFIX=.media.tar
media_archive_of() { echo "${1%.dump}$MEDIA_ARCHIVE_SUFFIX"; }

die() { echo "$(basename "$0" .sh): $*" >&2; exit 1; }

stack_postgres() {
  postgres="$1-postgres"
  volume="$1-backups"
  docker inspect "$postgres" >/dev/null 2>&1 || die "no container $postgres (wrong --prefix?)"
  docker volume inspect "$volume" >/dev/null 2>&1 || die "no backup volume $volume"
  media="$1-media"
  docker volume inspect "$media" >/dev/null 2>&1 || media=""
  image="$(docker inspect -f '{{.Config.Image}}' "$postgres")"
  user="$(_env_of POSTGRES_USER)"
  database="$(_env_of POSTGRES_DB)"
}

_env_of() {
  docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$postgres" | sed -n "s/^$1=//p"
}

# Hardened and without network, as the Postgres image's own user (999, like the program's
# backup step that writes the files).
in_backups() {
  local readonly_flag=",readonly"
  [ "${BACKUPS_WRITABLE:-0}" = 1 ] && readonly_flag=""
  docker run --rm -i --network none --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true --user 999:999 \
    --mount "type=volume,source=$volume,target=/backups$readonly_flag" "$image" "$@"
}

# The app's files are owned by its user (10001): a restore writes them as that user, so the app
# can still change and delete them; a backup reads them as the Postgres image's user (999),
# like the program's backup step.
in_media() {
  local as="$1" readonly_flag=",readonly"
  shift
  [ "${MEDIA_WRITABLE:-0}" = 1 ] && readonly_flag=""
  docker run --rm -i --network none --read-only --cap-drop ALL \
    --security-opt no-new-privileges:true --user "$as" \
    --mount "type=volume,source=$media,target=/media,volume-nocopy$readonly_flag" "$image" "$@"
}

# The stack's scheduled backup (config backupSchedule, components/scheduledbackup.py): a
# container in dev, a Swarm task in prod. It alone holds the repository's URL and password, as
# files, and BACKUP_TAG, the tag of the stacks' snapshots.
backup_process() {
  local name="$1-scheduled-backup"
  restic_container="$(docker ps -q --filter "name=^$name\$")"
  [ -n "$restic_container" ] ||
    restic_container="$(docker ps -q --filter "label=com.docker.swarm.service.name=$name" | head -n 1)"
  [ -n "$restic_container" ] ||
    die "no running $name: deploy the stack with backupSchedule and backupRepository (the repository's URL and password) first"
  docker exec "$restic_container" sh -c 'test -n "${RESTIC_REPOSITORY_FILE:-}"' ||
    die "$name has no backupRepository: set it (and backupRepositoryPassword) and deploy"
}

# `sh -c SCRIPT sh ARGS...` in it, through the product's entrypoint, which exports
# backupRepositoryEnv's names from their files; restic reads RESTIC_REPOSITORY_FILE and
# RESTIC_PASSWORD_FILE itself. No cache: the process's own is its.
in_restic() {
  local script="$1"
  shift
  docker exec -i "$restic_container" /opt/djangostack/entrypoint sh -c "set -e; $script" sh "$@"
}

# The pair of a snapshot (`latest`: the newest of any stack's) into the backup volume under its
# own name, each file under a .partial name first, the dump last (like a backup), so a listed
# dump always has its media next to it.
fetch_snapshot() {
  local snapshot="$1" listing header id dump file
  case "$snapshot" in -*|*/*|"") die "SNAPSHOT must be an id from --list or latest, got '$snapshot'" ;; esac
  listing="$(in_restic 'restic --no-cache ls --tag "$BACKUP_TAG" "$1"' "$snapshot")" ||
    die "no snapshot $snapshot in the repository (see --from-repository --list)"
  header="${listing%%$'\n'*}"  # snapshot <id> of [<paths>] filtered by [] at <time>):
  echo "$header" >&2
  id="$(sed -n 's/^snapshot \([0-9a-f]*\) .*/\1/p' <<<"$header")"
  [ -n "$id" ] || die "restic named no snapshot: $header"
  dump="$(grep '\.dump$' <<<"$listing" | head -n 1)" || die "snapshot $id holds no .dump file"
  local files=("$dump")
  if grep -qxF "$(media_archive_of "$dump")" <<<"$listing"; then
    files=("$(media_archive_of "$dump")" "$dump")
  fi
  for file in "${files[@]}"; do
    in_restic 'target="$BACKUP_DIR/$(basename "$2")"
      restic --no-cache dump "$1" "$2" > "$target.partial"; mv "$target.partial" "$target"' \
      "$id" "$file"
  done
  echo "fetched $(basename "$dump") (snapshot $id) from the repository into $volume" >&2
  basename "$dump"
}
