# Shared by scripts/backup.sh and scripts/restore.sh (sourced, not run): the stack's Postgres
# container and backup volume, found by the stack's namePrefix.
#   stack_postgres PREFIX   sets postgres, volume, image, user, database (or dies)
#   in_backups CMD...       runs CMD in a throw-away container with the backup volume at
#                           /backups (writable only with BACKUPS_WRITABLE=1)

die() { echo "$(basename "$0" .sh): $*" >&2; exit 1; }

stack_postgres() {
  postgres="$1-postgres"
  volume="$1-backups"
  docker inspect "$postgres" >/dev/null 2>&1 || die "no container $postgres (wrong --prefix?)"
  docker volume inspect "$volume" >/dev/null 2>&1 || die "no backup volume $volume"
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
