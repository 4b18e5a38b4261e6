# make demo, nginx part (sourced by tests/demo.sh): nginx with the module in
# front of a small sample portal on a loopback port, each case shown with curl.
# Uses REDIS_URL, SEATGATE_BUILD, DEMO_TMP and the functions say and run.

NGX_MOD=$SEATGATE_BUILD/ngx_http_seatgate_module.so
NGX_PREFIX=$DEMO_TMP/nginx
NGX_PORT=$(free_port)
NGX_BACKEND=$(free_port)
mkdir -p "$NGX_PREFIX/logs"
chmod 755 "$DEMO_TMP" "$NGX_PREFIX"
for u in alice carol dave eve; do echo "$u:{PLAIN}secret-$u"; done > "$NGX_PREFIX/htpasswd"
chmod 644 "$NGX_PREFIX/htpasswd"
cat > "$NGX_PREFIX/nginx.conf" <<CONF
load_module $NGX_MOD;
worker_processes 2;
pid $NGX_PREFIX/nginx.pid;
error_log $NGX_PREFIX/logs/error.log notice;
events { worker_connections 256; }
http {
    access_log $NGX_PREFIX/logs/access.log;
    client_body_temp_path $NGX_PREFIX/body;
    proxy_temp_path $NGX_PREFIX/proxy;
    default_type text/plain;
    seatgate_redis $REDIS_URL timeout=500ms;
    seatgate_zone seatgate:1m ttl=30s;

    # the "ITSM platform": echoes who nginx says is behind the request
    server {
        listen 127.0.0.1:$NGX_BACKEND;
        location / {
            return 200 "portal page \$uri for user=\$http_x_seatgate_user seat=\$http_x_seatgate_seat\n";
        }
    }

    server {
        listen 127.0.0.1:$NGX_PORT;
        auth_basic "ITSM";
        auth_basic_user_file $NGX_PREFIX/htpasswd;
        proxy_set_header X-Seatgate-User \$seatgate_user;
        proxy_set_header X-Seatgate-Seat \$seatgate_seat;
        add_header X-Seatgate-Result \$seatgate_result always;

        location /portal/ { seatgate off;          proxy_pass http://127.0.0.1:$NGX_BACKEND; }
        location /agent/  { seatgate web-agents;   proxy_pass http://127.0.0.1:$NGX_BACKEND; }
        location /cmdb/   { seatgate web-agents; seatgate_feature cmdb;
                            proxy_pass http://127.0.0.1:$NGX_BACKEND; }
        location /change/ { seatgate web-agents; seatgate_feature change-advanced;
                            proxy_pass http://127.0.0.1:$NGX_BACKEND; }
        location = /logout { seatgate_release web-agents; }
        location = /metrics { auth_basic off; allow 127.0.0.1; deny all; seatgate_metrics; }
    }
}
CONF
echo "kill \$(cat '$NGX_PREFIX/nginx.pid')" > "$DEMO_TMP/nginx.stop"

say "nginx: the module in front of a sample portal on 127.0.0.1:$NGX_PORT"
run pool set web-agents --named 1 --floating 1 --idle-timeout 15m --features cmdb --exclude contractors
run assign web-agents alice
if ! nginx -p "$NGX_PREFIX" -c "$NGX_PREFIX/nginx.conf" -e "$NGX_PREFIX/logs/error.log" -t -q; then
    echo "nginx -t failed:"; cat "$NGX_PREFIX/logs/error.log"; exit 1
fi
nginx -p "$NGX_PREFIX" -c "$NGX_PREFIX/nginx.conf" -e "$NGX_PREFIX/logs/error.log"
for _ in $(seq 50); do [ -s "$NGX_PREFIX/nginx.pid" ] && curl -s -o /dev/null "http://127.0.0.1:$NGX_PORT/" && break; sleep 0.1; done

web() { # user password path [curl args...]
    u=$1 p=$2 path=$3; shift 3
    printf '$ curl -u %s:%s http://127.0.0.1:%s%s %s\n' "$u" "$p" "$NGX_PORT" "$path" "$*"
    curl -s -u "$u:$p" -D "$DEMO_TMP/h" -o "$DEMO_TMP/b" "$@" "http://127.0.0.1:$NGX_PORT$path"
    printf '  %s\n' "$(head -1 "$DEMO_TMP/h" | tr -d '\r')"
    grep -i '^\(X-Seatgate-[A-Za-z]*\|Retry-After\):' "$DEMO_TMP/h" | tr -d '\r' | sed 's/^/  /'
    sed 's/<[^>]*>//g; /^[[:space:]]*$/d; s/^/  | /' "$DEMO_TMP/b" | head -4
}

say "nginx: free tier: the self-service portal needs no seat, the user is still identified"
web carol secret-carol /portal/tickets
say "nginx: authentication first: a wrong password is refused by auth_basic and takes no seat"
web carol wrong /agent/
run status web-agents
say "nginx: named seat (alice) and the one floating seat (carol)"
web alice secret-alice /agent/
web carol secret-carol /agent/
say "nginx: all floating seats taken: 503 with Retry-After; JSON for API clients"
web dave secret-dave /agent/
web dave secret-dave /agent/ -H 'Accept: application/json'
say "nginx: exclusive modules: the pool carries cmdb, not change-advanced"
web carol secret-carol /cmdb/
web carol secret-carol /change/
say "nginx: excluded group: eve is a contractor"
web eve secret-eve /agent/
say "nginx: carol logs out, which frees her seat; dave gets in"
web carol secret-carol /logout
web dave secret-dave /agent/
say "nginx: Prometheus metrics (excerpt)"
curl -s "http://127.0.0.1:$NGX_PORT/metrics" | grep -E '^seatgate_(decisions_total|seats_in_use|cache_hits_total)' | head -12 | sed 's/^/  /'
