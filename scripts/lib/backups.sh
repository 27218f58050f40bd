# Shared by scripts/backup.sh and scripts/restore.sh (sourced, not run): the stack's Postgres
# container, backup volume and media volume, found by the stack's namePrefix.
#   stack_postgres PREFIX   sets postgres, volume, media, image, user, database (or dies);
#                           media is empty when the stack has no media volume (deployed before it)
#   in_backups CMD...       runs CMD in a throw-away container with the backup volume at
#                           /backups (writable only with BACKUPS_WRITABLE=1)
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
