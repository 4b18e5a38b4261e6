#!/bin/sh
# The sysadmin's peer of pam_seatgate for make bench: pam_exec runs this
# for account, open_session and close_session, and it asks Redis with
# redis-cli what the module asks (the same decide and release scripts, the
# same keys and named arguments). Exit 0 lets the login on.
# Arguments (pam_exec passes no environment of its caller): the Redis URL,
# the pool, the decide and release function names (FCALL); pam_exec sets
# PAM_USER and PAM_TYPE.
SG_URL=$1 SG_POOL=$2 SG_DECIDE=$3 SG_RELEASE=$4
K="sg:{$SG_POOL}"
KEYS="$K:leases $K:sess $K:sessidx $K:sessinfo $K:gcount $K:hg $K:fold $K:lastused $K:stats $K:mux:"
case "$PAM_TYPE" in
account) op=check; sess='' ;;
open_session) op=acquire; sess="exec-$PPID" ;;
close_session)
    redis-cli -u "$SG_URL" FCALL "$SG_RELEASE" 10 $KEYS pool "$SG_POOL" user "$PAM_USER" \
        via pam session "exec-$PPID" host "$(hostname)" >/dev/null
    exit 0 ;;
*) exit 0 ;;
esac
out=$(redis-cli -u "$SG_URL" FCALL "$SG_DECIDE" 10 $KEYS op $op pool "$SG_POOL" \
    user "$PAM_USER" via pam ${sess:+session "$sess"} lease 43200 host "$(hostname)" \
    pid "$PPID")
case "$out" in
*granted_*) exit 0 ;;
*) exit 1 ;;
esac
