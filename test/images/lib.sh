# Helpers for test/images/run and bench/images: a private nginx on a free
# loopback port serving a directory, a stalling server, catalogs, vmenvctl
# with a config of its own. Everything lives in $T (a temp directory).

say() { printf '# %s\n' "$*"; }
pass() { echo "ok - $*"; }
fail() { echo "not ok - $*"; }
skip() { echo "skip - $*"; }

check() { # description command...
	local d=$1; shift
	if "$@"; then pass "$d"; else fail "$d"; fi
}

check_contains() { # description haystack needle
	if printf '%s' "$2" | grep -qF -- "$3"; then
		pass "$1"
	else
		fail "$1"
		printf '#   %q not in:\n' "$3"
		printf '%s\n' "$2" | head -20 | sed 's/^/#   /'
	fi
}

free_port() {
	perl -MIO::Socket::INET -e \
		'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0", ReuseAddr => 1)->sockport, "\n"'
}

# nginx serving $T/www on $PORT, logging one line per request to
# $T/nginx/access.log ("METHOD URI STATUS BYTES RANGE"). RATE limits the
# transfer rate (e.g. 2m) to make a download last.
nginx_start() {
	local rate=${RATE:-0}
	mkdir -p "$T/nginx" "$T/www"
	chmod 755 "$T" "$T/www"
	PORT=${PORT:-$(free_port)}
	cat >"$T/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 64; }
http {
	log_format req '\$request_method \$uri \$status \$body_bytes_sent \$http_range';
	access_log $T/nginx/access.log req;
	client_body_temp_path $T/nginx/body;
	proxy_temp_path $T/nginx/proxy;
	fastcgi_temp_path $T/nginx/fastcgi;
	uwsgi_temp_path $T/nginx/uwsgi;
	scgi_temp_path $T/nginx/scgi;
	types { application/octet-stream img; }
	default_type application/octet-stream;
	sendfile on;
	server {
		listen 127.0.0.1:$PORT;
		root $T/www;
		limit_rate $rate;
	}
}
CONF
	# A port just freed by a killed nginx may take a moment.
	for _ in $(seq 50); do
		nginx -c "$T/nginx/nginx.conf" -p "$T/nginx" -e "$T/nginx/error.log" 2>>"$T/nginx/start.log" && break
		sleep 0.1
	done
	for _ in $(seq 50); do
		[ -s "$T/nginx/nginx.pid" ] && curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return 0
		sleep 0.1
	done
	return 1
}

nginx_stop() {
	[ -s "$T/nginx/nginx.pid" ] || return 0
	local pid pids
	pid=$(cat "$T/nginx/nginx.pid")
	pids="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
	kill $pids 2>/dev/null
	for _ in $(seq 50); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
	kill -KILL $pids 2>/dev/null
	rm -f "$T/nginx/nginx.pid"
}

# Kills nginx at once (master and workers, by pid), as a crash would, and
# waits until they are gone.
nginx_kill() {
	local pid pids p
	pid=$(cat "$T/nginx/nginx.pid" 2>/dev/null) || return 0
	pids="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
	kill -KILL $pids 2>/dev/null
	for _ in $(seq 50); do
		p=0
		for x in $pids; do [ -d "/proc/$x" ] && ! grep -q '^State:.*Z' "/proc/$x/status" 2>/dev/null && p=1; done
		[ "$p" = 0 ] && break
		sleep 0.1
	done
	rm -f "$T/nginx/nginx.pid"
}

gets() { # uri: how many GETs of it nginx logged
	grep -c "^GET $1 " "$T/nginx/access.log" 2>/dev/null || true
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# A file of N MiB with content that differs per name (not sparse: the
# bytes go over the wire).
mkfile() { # path mib
	head -c "$(($2 * 1048576))" /dev/urandom >"$1"
}

# JSON of one disk image version served by nginx: name file [format]
disk_image() {
	local name=$1 file=$2 fmt=${3:-raw}
	printf '{"name": "%s", "versions": [{"version": "1", "boot": "disk", "disk": {"source": "%s", "sha256": "%s", "size": %s, "format": "%s"}}]}' \
		"$name" "$(basename "$file")" "$(sha "$file")" "$(size "$file")" "$fmt"
}

# vmmd.conf for vmenvctl and the harness: cache in $CACHE, catalog $CATALOG.
write_conf() {
	cat >"$T/vmmd.conf" <<CONF
node_name = t1
catalog = $CATALOG
image_cache = $CACHE
image_cache_max_mib = ${CACHE_MIB:-4096}
fetch_connect_timeout_s = 2
fetch_low_speed_time_s = ${LOW_SPEED_S:-3}
fetch_low_speed_bps = 1024
fetch_retries = ${RETRIES:-2}
fetch_retry_delay_ms = ${RETRY_MS:-200}
# The build's download helper; as nobody unless FETCH_USER says (the
# machine may not have vmenv-fetch, the default).
fetch_helper = $BUILD/fetch/vmenv-fetch
fetch_user = ${FETCH_USER:-nobody}
run_dir = $T/run
console_dir = $T/console
socket = $T/run/vmmd.sock
policy_dir = $T/policies
# A 2-CPU fixture node for placement (test/data/sysfs), no GPUs or VFs.
sysfs_root = $SRC/test/data/sysfs/plain/sys
proc_root = $SRC/test/data/sysfs/plain/proc
gres_conf = $T/gres.conf
CONF
}

ctl() { "$VMENVCTL" --config "$T/vmmd.conf" "$@"; }

# No partial file anywhere in the cache.
no_partials() {
	! find "$CACHE" -name '*.part' 2>/dev/null | grep -q .
}

# A caching proxy in front of the nginx above (what a rack or a site would
# run between the nodes and the image store): $PROXY_PORT, its own log.
# proxy_cache_lock: concurrent misses for one file make one upstream GET.
proxy_start() {
	mkdir -p "$T/proxy/cache"
	PROXY_PORT=${PROXY_PORT:-$(free_port)}
	cat >"$T/proxy/nginx.conf" <<CONF
worker_processes 2;
pid $T/proxy/nginx.pid;
error_log $T/proxy/error.log;
events { worker_connections 256; }
http {
	log_format req '\$request_method \$uri \$status \$body_bytes_sent \$upstream_cache_status';
	access_log $T/proxy/access.log req;
	client_body_temp_path $T/proxy/body;
	proxy_temp_path $T/proxy/tmp;
	fastcgi_temp_path $T/proxy/fastcgi;
	uwsgi_temp_path $T/proxy/uwsgi;
	scgi_temp_path $T/proxy/scgi;
	proxy_cache_path $T/proxy/cache keys_zone=img:10m max_size=20g inactive=1d use_temp_path=off;
	sendfile on;
	server {
		listen 127.0.0.1:$PROXY_PORT;
		location / {
			proxy_pass http://127.0.0.1:$PORT;
			proxy_cache img;
			proxy_cache_valid 200 1d;
			proxy_cache_lock on;
			proxy_cache_lock_timeout 10m;
			proxy_cache_lock_age 10m;
		}
	}
}
CONF
	chmod 755 "$T/proxy"
	nginx -c "$T/proxy/nginx.conf" -p "$T/proxy" -e "$T/proxy/error.log" || return 1
	for _ in $(seq 50); do
		[ -s "$T/proxy/nginx.pid" ] && return 0
		sleep 0.1
	done
	return 1
}

proxy_stop() {
	local pid pids
	pid=$(cat "$T/proxy/nginx.pid" 2>/dev/null) || return 0
	pids="$pid $(pgrep -P "$pid" | tr '\n' ' ')"
	kill $pids 2>/dev/null
	for _ in $(seq 50); do kill -0 $pids 2>/dev/null || break; sleep 0.1; done
	rm -f "$T/proxy/nginx.pid"
}
