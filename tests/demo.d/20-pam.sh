# make demo, PAM part (sourced by tests/demo.sh: REDIS_URL, SEATGATE_BUILD,
# DEMO_TMP, say, run). Real PAM transactions through libpam and
# pam_seatgate.so, with pam_wrapper (the service file lives in a temporary
# directory, not /etc/pam.d; no root) and pamtester playing the login program.

PAM_B=${SEATGATE_BUILD:-$B}
pam_wrapper_lib() {
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
        [ -e "$d/libpam_wrapper.so" ] && { echo "$d/libpam_wrapper.so"; return 0; }
    done
    return 1
}

say "PAM: pam_seatgate.so through real libpam (pam_wrapper + pamtester; no root, /etc/pam.d untouched)"
if [ ! -f "$PAM_B/pam_seatgate.so" ] || ! command -v pamtester >/dev/null 2>&1 ||
    ! PAM_WRAPPER_LIB=$(pam_wrapper_lib); then
    echo "  skipped: needs $PAM_B/pam_seatgate.so, pamtester and libpam_wrapper.so (make deps)"
else
    PAMDIR=$DEMO_TMP/pam.d
    mkdir -p "$PAMDIR"
    : >"$PAMDIR/other"
    cat >"$DEMO_TMP/seatgate.conf" <<EOF
# the site's /etc/security/seatgate.conf
redis = $REDIS_URL
timeout = 500
fail = closed
EOF
    line="$PAM_B/pam_seatgate.so pool=jumphost conf=$DEMO_TMP/seatgate.conf debug"
    printf 'account  required  %s\nsession  required  %s\n' "$line" "$line" >"$PAMDIR/sshd-demo"

    # pamtester as the login program; the module's syslog lines, which
    # pam_wrapper prints on stderr, are shown as "syslog: ..."
    pam_login() { # USER OPERATION...
        printf '$ pamtester sshd-demo %s\n' "$*"
        set +e
        LD_PRELOAD=$PAM_WRAPPER_LIB PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$PAMDIR \
            PAM_WRAPPER_DEBUGLEVEL=2 pamtester -v sshd-demo "$@" >"$DEMO_TMP/pam.out" 2>&1
        rc=$?
        set -e
        sed -n -e 's/^PWRAP_[A-Z]*\[[^]]*\] - SYSLOG([0-9]): /  syslog: /p' -e t \
            -e '/^PWRAP_/d' -e '/^$/d' -e 's/^/  /p' "$DEMO_TMP/pam.out"
        printf '  -> exit %s\n' "$rc"
    }

    say "PAM: a pool 'jumphost' (1 named seat for alice, 2 floating) and the service file"
    run pool set jumphost --named 1 --floating 2 --idle-timeout 15m
    run assign jumphost alice
    sed 's/^/  /' "$PAMDIR/sshd-demo"

    say "PAM: alice logs in and out (account, session open, session close): named seat"
    pam_login alice acct_mgmt open_session close_session

    say "PAM: carol and dave log in; their login processes end without closing the session"
    pam_login carol acct_mgmt open_session
    pam_login dave acct_mgmt open_session
    run sessions jumphost

    say "PAM: erin is denied, and told why"
    pam_login erin acct_mgmt

    say "PAM: carol's and dave's login processes are gone; seatctl reap frees their seats"
    run reap
    say "PAM: now erin gets a floating seat; closing her session releases it"
    pam_login erin acct_mgmt open_session close_session
    run status jumphost
fi
