#!/usr/bin/env bash
# Take a backup by hand, exactly like the pre-migration step of a deploy: pg_dump in custom
# format into the stack's backup volume as <db>-<UTC timestamp>.dump, next to a tar of the
# media volume, <db>-<UTC timestamp>.media.tar (each written under a .partial name, then
# renamed, the dump last, so a half-written pair is never listed as a backup).
#
#   scripts/backup.sh [--prefix PREFIX] [--keep N]
#
#   --prefix PREFIX  the stack's namePrefix (default djangostack-prod)
#   --keep N         afterwards delete all but the newest N backups (default: delete nothing)
#
# pg_dump runs inside the Postgres container over its local socket (no password, no port);
# the dump is streamed into a throw-away container that mounts the backup volume.
# Restore with scripts/restore.sh.
set -euo pipefail
source "$(dirname "$0")/lib/backups.sh"

prefix=djangostack-prod
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a value}"; shift 2 ;;
    --keep) keep="${2:?--keep needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ -z "$keep" || "$keep" =~ ^[1-9][0-9]*$ ]] || die "--keep must be a positive number"
stack_postgres "$prefix"

file="$database-$(date -u +%Y%m%dT%H%M%SZ).dump"
if [ -n "$media" ]; then
  archive="$(media_archive_of "$file")"
  in_media 999:999 tar -C /media -cf - . |
    BACKUPS_WRITABLE=1 in_backups sh -c 'cat > "$1"' sh "/backups/$archive.partial"
  BACKUPS_WRITABLE=1 in_backups mv "/backups/$archive.partial" "/backups/$archive"
fi
# With pipefail, a failing pg_dump stops here: the .partial file is never renamed.
docker exec "$postgres" pg_dump --format=custom -U "$user" "$database" |
  BACKUPS_WRITABLE=1 in_backups sh -c 'cat > "$1"' sh "/backups/$file.partial"
BACKUPS_WRITABLE=1 in_backups mv "/backups/$file.partial" "/backups/$file"
if [ -n "$keep" ]; then
  BACKUPS_WRITABLE=1 in_backups sh -c \
    'ls -1t /backups/*.dump | tail -n +"$(($1 + 1))" |
       while read -r old; do rm -f -- "$old" "${old%.dump}$2"; done' sh "$keep" "$MEDIA_ARCHIVE_SUFFIX"
fi
echo "$file"
