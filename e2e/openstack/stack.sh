#!/usr/bin/env bash
# hke OpenStack test bed: real Keystone, Placement, Glance, Neutron, Nova
# (fake virt driver) and Octavia (amphora agent no-op) on 127.0.0.1, with
# MariaDB and RabbitMQ as private instances; all state lives in one DIR.
# See README.md beside this file.
#
#   stack.sh install        venv + Debian packages (cached, idempotent)
#   stack.sh up DIR         start everything, bootstrap on first use
#   stack.sh down DIR       stop everything started for DIR
#   stack.sh status DIR     processes, API answers, memory
#
# Environment:
#   HKE_CACHE          cache root (default ~/.cache/hke); venv in $HKE_CACHE/openstack/venv
#   HKE_OS_PYTHON      interpreter for the venv (default python3.11)
#   HKE_OS_PORT_BASE   first of 10 consecutive loopback ports (default 18700),
#                      read on the first `up` of a DIR and kept in DIR/stack.env
#   HKE_OS_OCTAVIA     0 to skip Octavia (default 1)
#   HKE_OS_KEEP_ON_FAILURE  1 to leave processes running when `up` fails
#   HKE_OS_FORCE       1 to rebuild the venv even while stacks use it

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${HKE_CACHE:-$HOME/.cache/hke}/openstack
VENV=$CACHE/venv
PY=${HKE_OS_PYTHON:-python3.11}

# Test-only secrets: nothing here protects anything outside this machine.
ADMIN_PASSWORD=admin-secret
USER_NAME=hke
USER_PASSWORD=hke-secret
PROJECT_NAME=hke
APPCRED_NAME=hke-test-appcred
APPCRED_SECRET=hke-appcred-secret
SERVICE_PASSWORD=service-secret
DB_USER=hke
DB_PASSWORD=db-secret
REGION=RegionOne
COMPUTE_HOST=hke-compute-1
TEMPLATE_VERSION=1  # bump when the schema steps below change

# Stop order for `down`: API and workers first, then the brokers and the DB.
SERVICES_ORDER=(octavia-worker octavia-api nova-compute nova-scheduler nova-conductor
  nova-api neutron-api glance-api placement-api keystone rabbitmq epmd mariadb)

now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN{printf "%.1f", e-s}'; }
log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
  sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

# ---------------------------------------------------------------- install

apt_packages() { grep -v '^\s*#' "$HERE/apt.txt" | awk 'NF{print $1}'; }

apt_ensure() {
  local missing=() p
  for p in $(apt_packages); do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) == 0 ]] || die "missing Debian packages (${missing[*]}); run install as root"
  log "apt-get install ${missing[*]}"
  # Debian's maintainer scripts start rabbitmq/mariadb system services unless
  # policy-rc.d says no (invoke-rc.d(8)); we run private instances instead.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1
  fi
  local rc=0
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${missing[@]}"; } >"$CACHE/apt.log" 2>&1 || rc=$?
  ((made_policy)) && rm -f "$policy"
  ((rc == 0)) || { tail -20 "$CACHE/apt.log" >&2; die "apt-get failed (see $CACHE/apt.log)"; }
}

venv_stamp() {
  { cat "$HERE/requirements.txt"
    (cd "$HERE/ml2_bind_all" && find . -type f \( -name '*.py' -o -name '*.toml' \) \
      -not -path '*/build/*' | LC_ALL=C sort | xargs cat)
    "$PY" -c 'import sys; print(sys.version)'
  } | sha256sum | cut -c1-16
}

cmd_install() {
  local t0; t0=$(now)
  mkdir -p "$CACHE"
  apt_ensure
  command -v "$PY" >/dev/null || die "$PY not found (set HKE_OS_PYTHON to a Python 3.11)"
  local want; want=$(venv_stamp)
  if [[ -f $VENV/.hke-stamp && $(<"$VENV/.hke-stamp") == "$want" ]]; then
    log "install: venv up to date ($VENV), $(since "$t0") s"
    return 0
  fi
  if [[ -d $VENV ]] && [[ ${HKE_OS_FORCE:-0} != 1 ]]; then
    # Rebuilding pulls files from under running services (another DIR's stack).
    local users
    users=$(grep -l -F "$VENV/" /proc/[0-9]*/maps 2>/dev/null | cut -d/ -f3 | tr '\n' ' ' || true)
    [[ -z $users ]] || die "the venv must be rebuilt but processes use it (pids $users); stop those stacks (stack.sh down DIR) or set HKE_OS_FORCE=1"
  fi
  log "install: building venv in $VENV (cold: about 1.5 minutes, uWSGI compiles)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" \
    >"$CACHE/pip.log" 2>&1 || { tail -30 "$CACHE/pip.log" >&2; die "pip install failed"; }
  # Build from a copy so no build/ or egg-info lands in the work tree.
  local tmp; tmp=$(mktemp -d)
  cp -r "$HERE/ml2_bind_all" "$tmp/"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$tmp/ml2_bind_all" \
    >>"$CACHE/pip.log" 2>&1 || { rm -rf "$tmp"; tail -30 "$CACHE/pip.log" >&2; die "ml2 driver install failed"; }
  rm -rf "$tmp"
  "$VENV/bin/pip" check --disable-pip-version-check >/dev/null || die "pip check failed"
  echo "$want" >"$VENV/.hke-stamp"
  log "install: done in $(since "$t0") s"
}

# ---------------------------------------------------------------- layout

set_dir() {
  [[ -n ${1:-} ]] || usage
  DIR=$(realpath -m "$1")
  ETC=$DIR/etc DATA=$DIR/data LOGS=$DIR/log RUN=$DIR/run
  # A unix socket path must fit sockaddr_un.sun_path (108 bytes, unix(7)).
  MYSQL_SOCK=$RUN/mysqld.sock
  ((${#MYSQL_SOCK} < 100)) || MYSQL_SOCK=/tmp/hke-os-mysqld-$(echo "$DIR" | sha256sum | cut -c1-12).sock
}

load_ports() {
  if [[ -f $DIR/stack.env ]]; then
    # shellcheck disable=SC1091
    source "$DIR/stack.env"
  else
    local b=${HKE_OS_PORT_BASE:-18700}
    [[ $b =~ ^[0-9]+$ ]] && ((b > 1024 && b < 65525)) || die "bad HKE_OS_PORT_BASE=$b"
    PORT_BASE=$b
    KEYSTONE_PORT=$b GLANCE_PORT=$((b + 1)) PLACEMENT_PORT=$((b + 2))
    NEUTRON_PORT=$((b + 3)) NOVA_PORT=$((b + 4)) OCTAVIA_PORT=$((b + 5))
    MYSQL_PORT=$((b + 6)) RABBIT_PORT=$((b + 7)) RABBIT_DIST_PORT=$((b + 8))
    EPMD_PORT=$((b + 9))
    WITH_OCTAVIA=${HKE_OS_OCTAVIA:-1}
  fi
  DB_URL_BASE="mysql+pymysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MYSQL_PORT"
  TRANSPORT_URL="rabbit://guest:guest@127.0.0.1:$RABBIT_PORT/"
  KEYSTONE_URL="http://127.0.0.1:$KEYSTONE_PORT"
}

save_ports() {
  cat >"$DIR/stack.env" <<EOF
# Written by stack.sh up; sourced by stack.sh down/status and the tests.
PORT_BASE=$PORT_BASE
KEYSTONE_PORT=$KEYSTONE_PORT
GLANCE_PORT=$GLANCE_PORT
PLACEMENT_PORT=$PLACEMENT_PORT
NEUTRON_PORT=$NEUTRON_PORT
NOVA_PORT=$NOVA_PORT
OCTAVIA_PORT=$OCTAVIA_PORT
MYSQL_PORT=$MYSQL_PORT
RABBIT_PORT=$RABBIT_PORT
RABBIT_DIST_PORT=$RABBIT_DIST_PORT
EPMD_PORT=$EPMD_PORT
WITH_OCTAVIA=$WITH_OCTAVIA
EOF
}

# ---------------------------------------------------------------- processes

pid_of() { [[ -f $RUN/$1.pid ]] && cat "$RUN/$1.pid"; }
# Each service is started by setsid as a session and process-group leader, so
# its pid is also the id of the group that holds it and all its children.
# Right after the fork the child may not have called setsid() yet: then the
# group does not exist, but the pid does.
group_alive() { kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null; }

spawn() { # spawn NAME COMMAND... ; stdout/stderr to log/NAME.log
  local name=$1; shift
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

check_alive() { # fail fast when a service died while we wait for it
  local name=$1 pid
  pid=$(pid_of "$name") || return 0
  group_alive "$pid" && return 0
  log "$name exited; last lines of $LOGS/$name.log:"
  tail -25 "$LOGS/$name.log" >&2 || true
  return 1
}

wait_for() { # wait_for TIMEOUT DESCRIPTION SERVICE COMMAND...
  local timeout=$1 what=$2 svc=$3; shift 3
  local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    check_alive "$svc" || die "$what: $svc died"
    ((SECONDS - t0 < timeout)) || die "$what: not ready after ${timeout}s (see $LOGS/$svc.log)"
    sleep 0.5
  done
}

http_answers() { # any HTTP status from 200 to 499 means the app is loaded
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$1") || return 1
  ((code >= 200 && code < 500))
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- configs

write_configs() {
  mkdir -p "$ETC"/{keystone,glance,placement,neutron/plugins/ml2,nova,octavia,uwsgi,rabbitmq} \
    "$DATA"/{keystone/fernet-keys,keystone/credential-keys,glance/images,glance/staging,glance/tasks} \
    "$DATA"/{nova/instances,neutron,octavia,rabbitmq,locks} "$LOGS" "$RUN/tmp"
  chmod 700 "$DATA/keystone/fernet-keys" "$DATA/keystone/credential-keys"
  local V=$VENV/etc
  cp "$V/nova/api-paste.ini" "$ETC/nova/api-paste.ini"
  cp "$V/neutron/api-paste.ini" "$ETC/neutron/api-paste.ini"
  cp "$V/glance/glance-api-paste.ini" "$ETC/glance/glance-api-paste.ini"

  # Shared sections. keystonemiddleware options: keystonemiddleware/auth_token/_opts.py.
  authtoken() { cat <<EOF
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
auth_type = password
username = $1
password = $SERVICE_PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = $REGION
EOF
  }
  svcauth() { # [section] with keystoneauth password options (keystoneauth1 loading)
    cat <<EOF
[$1]
auth_url = $KEYSTONE_URL
auth_type = password
username = $2
password = $SERVICE_PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = $REGION
EOF
  }

  cat >"$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
graceful_shutdown_timeout = 5
[database]
connection = $DB_URL_BASE/keystone?charset=utf8
[fernet_tokens]
key_repository = $DATA/keystone/fernet-keys
[fernet_receipts]
key_repository = $DATA/keystone/fernet-keys
[credential]
key_repository = $DATA/keystone/credential-keys
[token]
# Longer than the 3600 s default so a long e2e run keeps one token.
expiration = 14400
[identity]
# bcrypt cost 4 (the minimum) keeps password auth cheap on 2 cores:
# keystone/conf/identity.py password_hash_rounds.
password_hash_rounds = 4
[cache]
# Without a cache Keystone runs ~180 SQL queries per token validation (about
# 0.7 s here). One uWSGI process, so an in-process dogpile memory region stays
# coherent (oslo.cache backends: oslo_cache/_opts.py 'backend').
enabled = true
backend = dogpile.cache.memory
EOF

  cat >"$ETC/placement/placement.conf" <<EOF
[DEFAULT]
graceful_shutdown_timeout = 5
[placement_database]
connection = $DB_URL_BASE/placement?charset=utf8
[api]
auth_strategy = keystone
$(authtoken placement)
EOF

  cat >"$ETC/glance/glance-api.conf" <<EOF
[DEFAULT]
# Multi-store syntax; the reserved os_glance_* stores must be file stores
# (glance/common/wsgi_app.py RESERVED_STORES).
enabled_backends = local:file
graceful_shutdown_timeout = 5
[database]
connection = $DB_URL_BASE/glance?charset=utf8
[glance_store]
default_backend = local
[local]
filesystem_store_datadir = $DATA/glance/images/
[os_glance_staging_store]
filesystem_store_datadir = $DATA/glance/staging/
[os_glance_tasks_store]
filesystem_store_datadir = $DATA/glance/tasks/
[paste_deploy]
flavor = keystone
config_file = $ETC/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $DATA/locks
$(authtoken glance)
EOF

  cat >"$ETC/neutron/neutron.conf" <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
allow_overlapping_ips = true
transport_url = $TRANSPORT_URL
state_path = $DATA/neutron
api_paste_config = $ETC/neutron/api-paste.ini
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
# No DHCP or L3 agent exists; do not queue RPC casts for them.
dhcp_agent_notification = false
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
graceful_shutdown_timeout = 5
[database]
connection = $DB_URL_BASE/neutron?charset=utf8
[quotas]
quota_network = 100
quota_subnet = 100
quota_port = 500
quota_router = 50
quota_floatingip = 100
quota_security_group = 100
quota_security_group_rule = 1000
[oslo_concurrency]
lock_path = $DATA/locks
[oslo_messaging_notifications]
driver = noop
$(authtoken neutron)
$(svcauth nova neutron)
EOF
  cat >"$ETC/neutron/plugins/ml2/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
# The driver from e2e/openstack/ml2_bind_all: binds every port, no agent.
mechanism_drivers = hke_bind_all
extension_drivers = port_security
[ml2_type_flat]
flat_networks = public
[ml2_type_vxlan]
vni_ranges = 1:10000
EOF

  cat >"$ETC/nova/nova.conf" <<EOF
[DEFAULT]
host = $COMPUTE_HOST
my_ip = 127.0.0.1
transport_url = $TRANSPORT_URL
state_path = $DATA/nova
instances_path = $DATA/nova/instances
# nova/virt/fake.py: FakeDriver reports 1000 vCPU, 800000 MiB RAM, 600000 GiB
# disk; its subclass FakeDriverWithoutFakeNodes keeps one stable node UUID in
# state_path/compute_id, so nova-compute can restart (FakeDriver draws a new
# random node UUID per process and nova-compute then refuses to start).
compute_driver = fake.FakeDriverWithoutFakeNodes
enabled_apis = osapi_compute
osapi_compute_workers = 1
metadata_workers = 1
allow_resize_to_same_host = true
graceful_shutdown_timeout = 5
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[api_database]
connection = $DB_URL_BASE/nova_api?charset=utf8
[database]
connection = $DB_URL_BASE/nova?charset=utf8
[conductor]
workers = 1
[scheduler]
workers = 1
# Maps new compute hosts without a manual discover_hosts
# (nova/conf/scheduler.py discover_hosts_in_cells_interval).
discover_hosts_in_cells_interval = 10
[quota]
instances = 200
cores = 2000
ram = 8192000
key_pairs = 200
[oslo_concurrency]
lock_path = $DATA/locks
[oslo_messaging_notifications]
driver = noop
[vnc]
enabled = false
[glance]
region_name = $REGION
$(authtoken nova)
$(svcauth placement nova)
$(svcauth neutron nova)
$(svcauth service_user nova)
send_service_user_token = true
EOF

  cat >"$ETC/octavia/octavia.conf" <<EOF
[DEFAULT]
transport_url = $TRANSPORT_URL
graceful_shutdown_timeout = 5
[api_settings]
auth_strategy = keystone
# The amphora provider runs its flows in octavia-worker. Only the amphora
# agent is a no-op: the "amphora" is a real Nova server (fake virt driver) and
# the VIP and member ports are real Neutron ports, so VIP addresses come from
# the user's subnet and a floating IP can point at a VIP. (The all-no-op
# network driver invents VIP networks and addresses and fails member deletes:
# octavia/controller/worker/v2/tasks/network_tasks.py CalculateAmphoraDelta
# raises KeyError when the invented VIP network is not "plugged".)
enabled_provider_drivers = amphora:Octavia amphora provider (amphora agent no-op in the hke test bed)
default_provider_driver = amphora
[database]
connection = $DB_URL_BASE/octavia?charset=utf8
[controller_worker]
# Entry points in octavia's setup.cfg: octavia.amphora.drivers etc.
amphora_driver = amphora_noop_driver
compute_driver = compute_nova_driver
network_driver = allowed_address_pairs_driver
image_driver = image_glance_driver
volume_driver = volume_noop_driver
loadbalancer_topology = SINGLE
workers = 1
# The image, flavor, network and security group bootstrap.py makes in the
# service project; their ids go to octavia-ids.conf (a second --config-file).
amp_image_tag = hke-amphora
# Poll the fake amphora every second, not every 10 s (octavia/common/config.py).
amp_active_wait_sec = 1
# The create flow still makes (and encrypts) an amphora agent certificate and
# hands it to Nova as a file: octavia/controller/worker/v2/tasks/
# compute_tasks.py CertComputeCreate reads client_ca, and the
# local_cert_generator signs with this CA (octavia/certificates/common/local.py).
client_ca = $DATA/octavia/certs/ca.pem
[nova]
region_name = $REGION
[neutron]
region_name = $REGION
[glance]
region_name = $REGION
[task_flow]
jobboard_enabled = false
[certificates]
cert_manager = noop_cert_manager
cert_generator = local_cert_generator
ca_certificate = $DATA/octavia/certs/ca.pem
ca_private_key = $DATA/octavia/certs/ca.key
[health_manager]
bind_ip = 127.0.0.1
heartbeat_key = not-used-here
[oslo_concurrency]
lock_path = $DATA/locks
[oslo_messaging_notifications]
driver = noop
$(authtoken octavia)
$(svcauth service_auth octavia)
EOF

  uwsgi_ini keystone "$KEYSTONE_PORT" keystone.wsgi.api:application \
    "OS_KEYSTONE_CONFIG_DIR=$ETC/keystone"
  uwsgi_ini placement-api "$PLACEMENT_PORT" placement.wsgi.api:application \
    "OS_PLACEMENT_CONFIG_DIR=$ETC/placement"
  uwsgi_ini glance-api "$GLANCE_PORT" glance.wsgi.api:application \
    "OS_GLANCE_CONFIG_DIR=$ETC/glance"
  uwsgi_ini neutron-api "$NEUTRON_PORT" neutron.wsgi.api:application \
    "OS_NEUTRON_CONFIG_DIR=$ETC/neutron"
  uwsgi_ini nova-api "$NOVA_PORT" nova.wsgi.osapi_compute:application \
    "OS_NOVA_CONFIG_DIR=$ETC/nova"
  # octavia/api/app.py setup_app parses sys.argv, which uWSGI fills from pyargv.
  uwsgi_ini octavia-api "$OCTAVIA_PORT" octavia.wsgi.api:application "" \
    "--config-file $ETC/octavia/octavia.conf"

  # RabbitMQ: a private node; rabbitmq.conf syntax from the RabbitMQ docs
  # ("Configuration"), env variables from /usr/lib/rabbitmq/bin/rabbitmq-env.
  cat >"$ETC/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
loopback_users.guest = true
disk_free_limit.absolute = 50MB
log.console = true
log.file = false
EOF
  echo '[].' >"$ETC/rabbitmq/enabled_plugins"
  : >"$ETC/rabbitmq/rabbitmq-env.conf"
}

uwsgi_ini() { # NAME PORT MODULE ENV [PYARGV]
  # One process with a few threads, served straight over HTTP (http-socket, no
  # front proxy). lazy-apps: load the app in the worker, after the fork.
  # die-on-term: uWSGI 2.0's master otherwise answers SIGTERM by reloading
  # (uWSGI docs, "Managing the uWSGI server" / signals).
  cat >"$ETC/uwsgi/$1.ini" <<EOF
[uwsgi]
http-socket = 127.0.0.1:$2
module = $3
virtualenv = $VENV
master = true
processes = 1
threads = 4
enable-threads = true
lazy-apps = true
need-app = true
die-on-term = true
exit-on-reload = false
worker-reload-mercy = 5
buffer-size = 65535
add-header = Connection: close
procname-prefix-spaced = hke-$1
EOF
  [[ -n $4 ]] && echo "env = $4" >>"$ETC/uwsgi/$1.ini"
  [[ -n ${5:-} ]] && echo "pyargv = $5" >>"$ETC/uwsgi/$1.ini"
  return 0
}

# ---------------------------------------------------------------- services

start_mariadb() {
  local first=0
  if [[ ! -d $DATA/mysql/mysql ]]; then
    first=1
    mkdir -p "$DATA/mysql"
    mariadb-install-db --no-defaults --user=root --datadir="$DATA/mysql" \
      --auth-root-authentication-method=normal --skip-test-db \
      >"$LOGS/mariadb-install.log" 2>&1 || { tail "$LOGS/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
  fi
  # --no-defaults: ignore /etc/mysql; utf8 server charset as OpenStack's
  # install guides configure it.
  spawn mariadb mariadbd --no-defaults --user=root --datadir="$DATA/mysql" \
    --bind-address=127.0.0.1 --port="$MYSQL_PORT" --socket="$MYSQL_SOCK" \
    --pid-file="$RUN/mysqld.pidfile" --skip-name-resolve --skip-log-bin \
    --character-set-server=utf8 --collation-server=utf8_general_ci \
    --max-connections=1000 --innodb-buffer-pool-size=128M --innodb-log-file-size=32M \
    --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --skip-innodb-adaptive-hash-index
  wait_for 60 "MariaDB" mariadb mariadb-admin --no-defaults --socket="$MYSQL_SOCK" -uroot ping
  if ((first)); then
    local sql="CREATE USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';"
    sql+="GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'127.0.0.1';"
    local db
    for db in keystone glance placement neutron nova_api nova nova_cell0 octavia; do
      sql+="CREATE DATABASE $db CHARACTER SET utf8;"
    done
    mariadb --no-defaults --socket="$MYSQL_SOCK" -uroot -e "$sql"
  fi
}

start_rabbitmq() {
  # Our own epmd on our own port, in our process group, so nothing outlives down.
  spawn epmd epmd -port "$EPMD_PORT" -address 127.0.0.1
  wait_for 20 "epmd" epmd port_open "$EPMD_PORT"
  spawn rabbitmq env HOME="$DATA/rabbitmq" \
    RABBITMQ_NODENAME="hke$RABBIT_PORT@localhost" RABBITMQ_USE_LONGNAME=false \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$RABBIT_PORT" \
    RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT" ERL_EPMD_PORT="$EPMD_PORT" \
    RABBITMQ_CONF_ENV_FILE="$ETC/rabbitmq/rabbitmq-env.conf" \
    RABBITMQ_CONFIG_FILE="$ETC/rabbitmq/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$ETC/rabbitmq/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$ETC/rabbitmq/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$DATA/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$LOGS/rabbitmq" \
    RABBITMQ_PID_FILE="$RUN/rabbitmq.pidfile" \
    RABBITMQ_FEATURE_FLAGS_FILE="$DATA/rabbitmq/feature_flags" \
    RABBITMQ_QUORUM_DIR="$DATA/rabbitmq/quorum" \
    RABBITMQ_STREAM_DIR="$DATA/rabbitmq/stream" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    /usr/lib/rabbitmq/bin/rabbitmq-server
}

run_logged() { # run_logged NAME COMMAND... (synchronous, output to log/NAME.log)
  local name=$1; shift
  "$@" >>"$LOGS/$name.log" 2>&1 || { log "$name failed:"; tail -30 "$LOGS/$name.log" >&2; return 1; }
}

keystone_init() { # per DIR: key repositories and the bootstrap admin + catalog entry
  local c=(--config-file "$ETC/keystone/keystone.conf") pid rc=0
  keystone-manage "${c[@]}" fernet_setup --keystone-user root --keystone-group root || return 1
  keystone-manage "${c[@]}" credential_setup --keystone-user root --keystone-group root & pid=$!
  keystone-manage "${c[@]}" bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
    --bootstrap-admin-url "$KEYSTONE_URL/v3" --bootstrap-internal-url "$KEYSTONE_URL/v3" \
    --bootstrap-public-url "$KEYSTONE_URL/v3" --bootstrap-region-id "$REGION" || rc=1
  wait "$pid" || rc=1
  return $rc
}

migrate_nova() {
  local c=(--config-file "$ETC/nova/nova.conf")
  # Cells v2 layout as in nova's docs (admin/cells.rst, "Setup of a new deployment").
  nova-manage "${c[@]}" api_db sync &&
  nova-manage "${c[@]}" cell_v2 map_cell0 --database_connection "$DB_URL_BASE/nova_cell0?charset=utf8" &&
  nova-manage "${c[@]}" cell_v2 create_cell --name cell1 --verbose &&
  nova-manage "${c[@]}" db sync
}

migrate_all() {
  local pids=() names=() i rc=0
  run_logged migrate-keystone keystone-manage --config-file "$ETC/keystone/keystone.conf" db_sync \
    & pids+=($!); names+=(keystone)
  run_logged migrate-nova migrate_nova & pids+=($!); names+=(nova)
  run_logged migrate-neutron neutron-db-manage --config-file "$ETC/neutron/neutron.conf" \
    --config-file "$ETC/neutron/plugins/ml2/ml2_conf.ini" upgrade heads & pids+=($!); names+=(neutron)
  run_logged migrate-glance glance-manage --config-file "$ETC/glance/glance-api.conf" db_sync \
    & pids+=($!); names+=(glance)
  run_logged migrate-placement placement-manage --config-file "$ETC/placement/placement.conf" db sync \
    & pids+=($!); names+=(placement)
  # Always, so one template serves DIRs with and without Octavia.
  run_logged migrate-octavia octavia-db-manage --config-file "$ETC/octavia/octavia.conf" upgrade head \
    & pids+=($!); names+=(octavia)
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { log "migration of ${names[$i]} failed"; rc=1; }
  done
  return $rc
}

octavia_ca() { # a throwaway CA, made once per DIR
  [[ -f $DATA/octavia/certs/ca.pem ]] && return 0
  mkdir -p "$DATA/octavia/certs"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=hke-test-octavia-ca" \
    -keyout "$DATA/octavia/certs/ca.key" -out "$DATA/octavia/certs/ca.pem" >>"$LOGS/octavia-ca.log" 2>&1
  chmod 600 "$DATA/octavia/certs/ca.key"
}

# ---------------------------------------------------------------- DB template
# Creating the schemas costs 1.5-4 minutes of CPU (six alembic histories), and
# depends only on the package versions. The first fresh `up` for a venv stamp
# snapshots the cleanly shut down MariaDB datadir right after the migrations;
# later fresh DIRs start from a copy. Only Nova's cell mappings hold anything
# DIR-specific at that point (URLs with this DIR's ports): fix_cell_mappings.
template_dir() { echo "$CACHE/db-template/$(<"$VENV/.hke-stamp")-v$TEMPLATE_VERSION"; }

restore_template() {
  local tpl; tpl=$(template_dir)
  [[ -d $tpl/mysql ]] || return 1
  mkdir -p "$DATA/mysql"
  cp -a "$tpl/." "$DATA/mysql/"
}

save_template() {
  local tpl tmp pid
  tpl=$(template_dir)
  [[ -d $tpl ]] && return 0
  mariadb-admin --no-defaults --socket="$MYSQL_SOCK" -uroot shutdown
  pid=$(pid_of mariadb) && stop_wait mariadb "$pid" 60
  mkdir -p "$CACHE/db-template"
  tmp=$(mktemp -d "$CACHE/db-template/tmp.XXXXXX")
  cp -a "$DATA/mysql/." "$tmp/"
  mv -T "$tmp" "$tpl" 2>/dev/null || rm -rf "$tmp"  # another up may have won
  # Keep only this stamp's template.
  find "$CACHE/db-template" -mindepth 1 -maxdepth 1 -not -path "$tpl" -not -name 'tmp.*' \
    -exec rm -rf {} + 2>/dev/null || true
  start_mariadb
}

fix_cell_mappings() {
  # nova_api.cell_mappings (nova/db/api/models.py CellMapping): what
  # `nova-manage cell_v2 map_cell0` / `create_cell` stored for the template's DIR.
  local sql="UPDATE nova_api.cell_mappings SET database_connection='$DB_URL_BASE/nova_cell0?charset=utf8'"
  sql+=" WHERE uuid='00000000-0000-0000-0000-000000000000';"
  sql+="UPDATE nova_api.cell_mappings SET database_connection='$DB_URL_BASE/nova?charset=utf8',"
  sql+=" transport_url='$TRANSPORT_URL' WHERE name='cell1';"
  mariadb --no-defaults --socket="$MYSQL_SOCK" -uroot -e "$sql"
}

start_octavia_worker() {
  ((WITH_OCTAVIA)) || return 0
  [[ -f $DATA/octavia/octavia-ids.conf ]] || die "octavia-ids.conf missing (bootstrap resources did not run)"
  WORKER_LOG_OFFSET=$(stat -c %s "$LOGS/octavia-worker.log" 2>/dev/null || echo 0)
  spawn octavia-worker octavia-worker --config-file "$ETC/octavia/octavia.conf" \
    --config-file "$DATA/octavia/octavia-ids.conf"
}

# A topic queue exists only once a consumer declared it; until then RabbitMQ
# drops what the API casts. octavia/controller/queue/v2/consumer.py logs this
# line just before it starts consuming; the sleep covers the declaration.
worker_listening() {
  tail -c +"$((WORKER_LOG_OFFSET + 1))" "$LOGS/octavia-worker.log" | grep -q "Starting V2 consumer" &&
    sleep 2
}

start_apis() {
  # None of these calls Keystone while starting, so they load (the slow part:
  # imports) while Keystone is still being bootstrapped.
  local s
  for s in placement-api glance-api neutron-api nova-api; do
    spawn "$s" uwsgi --ini "$ETC/uwsgi/$s.ini"
  done
  local nc=(--config-file "$ETC/nova/nova.conf")
  spawn nova-conductor nova-conductor "${nc[@]}"
  spawn nova-scheduler nova-scheduler "${nc[@]}"
  if ((WITH_OCTAVIA)); then
    octavia_ca
    spawn octavia-api uwsgi --ini "$ETC/uwsgi/octavia-api.ini"
  fi
}

write_client_files() {
  local appcred_id=""
  [[ -f $DATA/appcred.id ]] && appcred_id=$(<"$DATA/appcred.id")
  cat >"$DIR/clouds.yaml" <<EOF
# Written by e2e/openstack/stack.sh up. Test-only credentials.
clouds:
  hke-test:
    auth_type: password
    auth:
      auth_url: $KEYSTONE_URL/v3
      username: $USER_NAME
      password: $USER_PASSWORD
      project_name: $PROJECT_NAME
      user_domain_name: Default
      project_domain_name: Default
    region_name: $REGION
    interface: public
    identity_api_version: 3
  $APPCRED_NAME:
    auth_type: v3applicationcredential
    auth:
      auth_url: $KEYSTONE_URL/v3
      application_credential_id: $appcred_id
      application_credential_secret: $APPCRED_SECRET
    region_name: $REGION
    interface: public
    identity_api_version: 3
  hke-test-admin:
    auth_type: password
    auth:
      auth_url: $KEYSTONE_URL/v3
      username: admin
      password: $ADMIN_PASSWORD
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: $REGION
    interface: public
    identity_api_version: 3
EOF
  cat >"$DIR/env" <<EOF
# Password auth for the hke test bed (source this file).
export OS_AUTH_TYPE=password
export OS_AUTH_URL=$KEYSTONE_URL/v3
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=$USER_NAME
export OS_PASSWORD=$USER_PASSWORD
export OS_PROJECT_NAME=$PROJECT_NAME
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=$REGION
export OS_INTERFACE=public
EOF
  cat >"$DIR/env-appcred" <<EOF
# Application-credential auth for the hke test bed (source this file).
export OS_AUTH_TYPE=v3applicationcredential
export OS_AUTH_URL=$KEYSTONE_URL/v3
export OS_IDENTITY_API_VERSION=3
export OS_APPLICATION_CREDENTIAL_ID=$appcred_id
export OS_APPLICATION_CREDENTIAL_SECRET=$APPCRED_SECRET
export OS_REGION_NAME=$REGION
export OS_INTERFACE=public
EOF
}

bootstrap_py() { # phase
  "$VENV/bin/python" "$HERE/bootstrap.py" "$1" "$DIR" >>"$LOGS/bootstrap.log" 2>&1 ||
    { tail -30 "$LOGS/bootstrap.log" >&2; return 1; }
}

any_running() {
  local s pid
  for s in "${SERVICES_ORDER[@]}"; do
    pid=$(pid_of "$s") && group_alive "$pid" && return 0
  done
  return 1
}

on_up_failure() {
  local rc=$?
  ((rc == 0)) && return 0
  log "up failed (exit $rc); logs in $LOGS"
  if [[ ${HKE_OS_KEEP_ON_FAILURE:-0} == 1 ]]; then
    log "HKE_OS_KEEP_ON_FAILURE=1: leaving processes running; run: $0 down $DIR"
  else
    cmd_down "$DIR" || true
  fi
  exit "$rc"
}

cmd_up() {
  set_dir "${1:-}"
  local t0; t0=$(now)
  cmd_install
  mkdir -p "$DIR"
  [[ -d $DIR/run ]] && any_running && die "services for $DIR are already running (stack.sh down $DIR first)"
  load_ports
  local p
  for p in $(seq "$PORT_BASE" $((PORT_BASE + 9))); do
    port_open "$p" && die "127.0.0.1:$p is already in use; pick another HKE_OS_PORT_BASE (new DIR)"
  done
  local first=1
  if [[ -f $DIR/.bootstrapped ]]; then
    first=0
    # nova/virt/fake.py keeps its instances and their interfaces in memory only.
    log "restarting an existing DIR: servers (and LB amphorae) made before are" \
      "unknown to the fresh fake hypervisor, so deleting them may fail; tests want a fresh DIR"
  fi
  ((first)) && rm -rf "$ETC" "$DATA" "$LOGS" "$RUN"
  save_ports
  write_configs
  trap on_up_failure EXIT
  export PATH=$VENV/bin:$PATH HKE_OS_STACK_DIR=$DIR TMPDIR=$RUN/tmp
  # Services keep dot-files in $HOME (e.g. novaclient's ~/.novaclient cache).
  mkdir -p "$DATA/home"
  export HOME=$DATA/home
  local t from_template=0; t=$(now)
  ((first)) && restore_template && from_template=1
  start_mariadb
  start_rabbitmq
  log "MariaDB up ($(since "$t") s); RabbitMQ starting"
  if ((first)); then
    t=$(now)
    if ((from_template)); then
      fix_cell_mappings
      log "schemas copied from $(template_dir)"
    else
      migrate_all || die "database migrations failed (see $LOGS/migrate-*.log)"
      save_template
      log "schemas created and saved as a template ($(since "$t") s)"
    fi
  fi
  t=$(now)
  local kpid=""
  if ((first)); then
    run_logged keystone-init keystone_init & kpid=$!
  fi
  start_apis
  if [[ -n $kpid ]]; then
    wait "$kpid" || die "keystone bootstrap failed"
    log "keystone keys and admin bootstrapped ($(since "$t") s)"
  fi
  spawn keystone uwsgi --ini "$ETC/uwsgi/keystone.ini"
  wait_for 120 "RabbitMQ" rabbitmq port_open "$RABBIT_PORT"
  wait_for 120 "Keystone" keystone http_answers "$KEYSTONE_URL/v3"
  if ((first)); then
    bootstrap_py identity || die "identity bootstrap failed"
    log "identity bootstrapped ($(since "$t") s)"
  fi
  write_client_files
  # nova-compute registers in Placement as soon as it starts: after identity.
  spawn nova-compute nova-compute --config-file "$ETC/nova/nova.conf"
  wait_for 180 "Placement" placement-api http_answers "http://127.0.0.1:$PLACEMENT_PORT/"
  wait_for 180 "Glance" glance-api http_answers "http://127.0.0.1:$GLANCE_PORT/"
  wait_for 180 "Neutron" neutron-api http_answers "http://127.0.0.1:$NEUTRON_PORT/"
  wait_for 180 "Nova API" nova-api http_answers "http://127.0.0.1:$NOVA_PORT/"
  if ((WITH_OCTAVIA)); then
    wait_for 180 "Octavia API" octavia-api http_answers "http://127.0.0.1:$OCTAVIA_PORT/"
  fi
  log "APIs answer ($(since "$t") s)"
  t=$(now)
  local s
  for s in nova-conductor nova-scheduler nova-compute; do check_alive "$s" || die "$s died"; done
  bootstrap_py wait-compute || die "nova-compute did not come up"
  run_logged nova-manage nova-manage --config-file "$ETC/nova/nova.conf" cell_v2 discover_hosts --verbose ||
    die "discover_hosts failed"
  log "compute host up and mapped ($(since "$t") s)"
  if ((first)); then
    t=$(now)
    bootstrap_py resources || die "resource bootstrap failed"
    log "flavors, images, public network created ($(since "$t") s)"
  fi
  start_octavia_worker
  ((WITH_OCTAVIA)) && wait_for 60 "octavia-worker" octavia-worker worker_listening
  touch "$DIR/.bootstrapped"
  trap - EXIT
  local took; took=$(since "$t0")
  echo "$took" >"$DIR/up.seconds"
  log "up: all services running for $DIR in $took s"
  echo "clouds.yaml: $DIR/clouds.yaml (clouds: hke-test, $APPCRED_NAME, hke-test-admin); env: $DIR/env"
  echo "up took $took s"
}

cmd_down() {
  set_dir "${1:-}"
  [[ -d $RUN ]] || { log "down: nothing started in $DIR"; return 0; }
  local s pid
  for s in "${SERVICES_ORDER[@]}"; do
    pid=$(pid_of "$s") || continue
    group_alive "$pid" || { rm -f "$RUN/$s.pid"; continue; }
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    # The DB and broker go last and only once their clients are gone.
    if [[ $s == rabbitmq || $s == epmd || $s == mariadb ]]; then stop_wait "$s" "$pid" 30; fi
  done
  for s in "${SERVICES_ORDER[@]}"; do
    pid=$(pid_of "$s") || continue
    stop_wait "$s" "$pid" 20
    rm -f "$RUN/$s.pid"
  done
  # Anything that left its group (daemonised helpers) still carries our marker.
  local stray=() p
  for p in /proc/[0-9]*; do
    if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "HKE_OS_STACK_DIR=$DIR"; then
      [[ ${p#/proc/} == "$$" || ${p#/proc/} == "$BASHPID" ]] && continue
      stray+=("${p#/proc/}")
    fi
  done
  if ((${#stray[@]})); then
    log "down: killing strays ${stray[*]}"
    kill -KILL "${stray[@]}" 2>/dev/null || true
  fi
  log "down: everything for $DIR stopped"
}

stop_wait() { # NAME PID SECONDS
  local t0=$SECONDS
  while group_alive "$2"; do
    if ((SECONDS - t0 >= $3)); then
      log "down: $1 did not stop in $3 s, SIGKILL"
      kill -KILL -- "-$2" 2>/dev/null || kill -KILL "$2" 2>/dev/null || true
      sleep 0.2
      return 0
    fi
    sleep 0.2
  done
}

cmd_status() {
  set_dir "${1:-}"
  [[ -f $DIR/stack.env ]] || { echo "no stack in $DIR"; return 1; }
  load_ports
  local s pid rss total=0 n=0 down=0
  printf '%-16s %-8s %s\n' SERVICE PID STATE
  for s in "${SERVICES_ORDER[@]}"; do
    if pid=$(pid_of "$s") && group_alive "$pid"; then
      rss=$(ps -o rss= -g "$pid" | awk '{s+=$1} END{print s+0}')
      total=$((total + rss)); n=$((n + 1))
      printf '%-16s %-8s running, RSS %d MiB\n' "$s" "$pid" $((rss / 1024))
    else
      [[ $s == octavia-* && $WITH_OCTAVIA == 0 ]] && continue
      printf '%-16s %-8s stopped\n' "$s" "-"; down=$((down + 1))
    fi
  done
  local name url code
  for name in keystone:$KEYSTONE_PORT/v3 glance:$GLANCE_PORT/ placement:$PLACEMENT_PORT/ \
    neutron:$NEUTRON_PORT/ nova:$NOVA_PORT/ octavia:$OCTAVIA_PORT/; do
    url="http://127.0.0.1:${name#*:}"
    [[ ${name%%:*} == octavia && $WITH_OCTAVIA == 0 ]] && continue
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)
    printf '%-10s %-34s HTTP %s\n' "${name%%:*}" "$url" "$code"
  done
  echo "processes: $n groups running, total RSS $((total / 1024)) MiB"
  ((down == 0))
}

case ${1:-} in
  install) cmd_install ;;
  up) cmd_up "${2:-}" ;;
  down) cmd_down "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  *) usage ;;
esac
